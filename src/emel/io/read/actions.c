/* Actions of the read strategy: each performs one effect or computes one
 * outcome; statecharts/io_read.rl decides what follows. */
#include "read.h"

#include <errno.h>
#include <string.h>

static const emel_io_request *request_of(const io_read_ctx *m) { return m->member->request; }

static read_file *file_of(const io_read_ctx *m) {
  return &m->self->file_state[request_of(m)->file_index];
}

static read_slot *slot_of(const io_read_ctx *m, const read_member *member) {
  return &m->self->slots[member->slot];
}

/* Returns a slot (and an owned buffer with it) to the pool; a new generation
 * makes every handle to its previous use stale. */
static void free_slot(io_read *self, uint32_t index) {
  read_slot *s = &self->slots[index];
  if (s->base) self->platform.free(self->platform.user, s->base, s->alloc_size);
  s->base = NULL;
  s->data = NULL;
  s->alloc_size = 0;
  s->size = 0;
  s->state = SLOT_FREE;
  s->generation++;
  s->next_free = self->free_head;
  self->free_head = index + 1;
}

void emel_read_refuse(io_read_ctx *m, emel_status code) { m->error.code = code; }

/* ---- validation ---- */

io_read_event emel_read_check_request(io_read_ctx *m) {
  const emel_io_request *r = request_of(m);
  const unsigned known = EMEL_LOAD_DIRECT | EMEL_LOAD_DROP_CACHE; /* POPULATE/LOCK are mmap's */
  if (r->size == 0 || (r->flags & ~known) || (uint64_t)(size_t)r->size != r->size)
    return IO_READ_EV_REQUEST_INVALID;
  return IO_READ_EV_REQUEST_VALID;
}

io_read_event emel_read_check_file_index(io_read_ctx *m) {
  const uint32_t i = request_of(m)->file_index;
  return i < m->self->files->count && i < m->self->file_capacity ? IO_READ_EV_FILE_INDEX_VALID
                                                                  : IO_READ_EV_FILE_INDEX_INVALID;
}

io_read_event emel_read_check_path(io_read_ctx *m) {
  const emel_io_file *f = &m->self->files->files[request_of(m)->file_index];
  if (!f->path || f->path_len == 0 || f->path_len > EMEL_IO_MAX_PATH || memchr(f->path, '\0', f->path_len))
    return IO_READ_EV_PATH_INVALID;
  return IO_READ_EV_PATH_VALID;
}

io_read_event emel_read_check_span(io_read_ctx *m) {
  const emel_io_request *r = request_of(m);
  /* Positions are off_t on the way to the OS: the end must fit in int64. */
  if (r->offset > (uint64_t)INT64_MAX || r->size > (uint64_t)INT64_MAX - r->offset)
    return IO_READ_EV_SPAN_OVERFLOWS;
  return IO_READ_EV_SPAN_VALID;
}

io_read_event emel_read_check_target(io_read_ctx *m) {
  const emel_io_request *r = request_of(m);
  if (!r->target) return IO_READ_EV_NO_TARGET;
  return r->target_size >= r->size ? IO_READ_EV_TARGET_FITS : IO_READ_EV_TARGET_TOO_SMALL;
}

/* ---- file ---- */

/* Direct reads go straight into the destination only when the destination
 * and the file agree modulo the block: then every block-aligned file position
 * lands on a block-aligned address. An owned buffer is always placed so (see
 * emel_read_allocate_buffer), whatever the span's offset. */
static int direct_alignable(const io_read_ctx *m) {
  const emel_io_request *r = request_of(m);
  const size_t block = m->self->block;
  if (r->target) return (uintptr_t)r->target % block == r->offset % block;
  return 1;
}

io_read_event emel_read_choose_io_mode(io_read_ctx *m) {
  m->member->mode = READ_BUFFERED;
  if (!(request_of(m)->flags & EMEL_LOAD_DIRECT)) return IO_READ_EV_BUFFERED_IO;
  if (file_of(m)->direct_refused) return IO_READ_EV_DIRECT_KNOWN_REFUSED;
  if (!direct_alignable(m)) return IO_READ_EV_DIRECT_UNALIGNED;
  m->member->mode = READ_DIRECT;
  return IO_READ_EV_DIRECT_IO;
}

static int open_mode(io_read_ctx *m, int mode) {
  read_file *f = file_of(m);
  m->member->mode = mode;
  if (f->fd[mode] >= 0) {
    m->member->fd = f->fd[mode];
    return IO_READ_EV_FILE_ALREADY_OPEN;
  }
  const emel_platform_ops *p = &m->self->platform;
  const char *path = m->self->files->files[request_of(m)->file_index].path;
  int fd = p->open(p->user, path, mode == READ_DIRECT ? EMEL_OPEN_DIRECT : EMEL_OPEN_READ);
  if (fd < 0) {
    if (mode == READ_DIRECT && fd == -EINVAL) { /* the filesystem has no O_DIRECT */
      f->direct_refused = 1;
      m->member->mode = READ_BUFFERED;
      return IO_READ_EV_DIRECT_REFUSED;
    }
    m->error.os_errno = -fd;
    return IO_READ_EV_OPEN_FAILED;
  }
  f->fd[mode] = fd;
  m->member->fd = fd;
  return IO_READ_EV_FILE_OPENED;
}

io_read_event emel_read_open_direct(io_read_ctx *m) { return open_mode(m, READ_DIRECT); }

io_read_event emel_read_open_buffered(io_read_ctx *m) { return open_mode(m, READ_BUFFERED); }

void emel_read_count_direct_fallback(io_read_ctx *m) { m->self->stats.direct_fallbacks++; }

void emel_read_count_direct_unaligned(io_read_ctx *m) { m->self->stats.direct_unaligned++; }

static int same_file(const emel_file_identity *a, const emel_file_identity *b) {
  return a->size == b->size && a->device == b->device && a->inode == b->inode && a->mtime_ns == b->mtime_ns;
}

/* A fresh descriptor answers to what the file was when it was indexed (the
 * boundary's expectation) or, when another mode's descriptor is open already,
 * to what that one found: a rename or truncation in between is caught here,
 * before any read. Without either, what it finds becomes the reference. */
io_read_event emel_read_identify_file(io_read_ctx *m) {
  read_file *f = file_of(m);
  const emel_io_file *entry = &m->self->files->files[request_of(m)->file_index];
  const emel_platform_ops *p = &m->self->platform;
  emel_file_identity now = {0}; /* an op that leaves `type` alone reports a regular file */
  int r = p->file_identity(p->user, m->member->fd, &now);
  if (r < 0) {
    m->error.os_errno = -r;
    return IO_READ_EV_STAT_FAILED;
  }
  if (now.type != EMEL_FILE_REGULAR) return IO_READ_EV_NOT_A_REGULAR_FILE; /* a FIFO's read could block */
  const emel_file_identity *want = f->size_known ? &f->seen : entry->has_expected ? &entry->expected : NULL;
  if (want && !same_file(&now, want)) return IO_READ_EV_FILE_CHANGED;
  f->seen = now;
  f->size = now.size;
  f->size_known = 1;
  return IO_READ_EV_FILE_UNCHANGED;
}

/* Only descriptors that proved their file are kept (FILE_ALREADY_OPEN trusts them). */
void emel_read_close_fresh_descriptor(io_read_ctx *m) {
  read_file *f = file_of(m);
  const emel_platform_ops *p = &m->self->platform;
  (void)p->close(p->user, f->fd[m->member->mode]); /* read-only: nothing to lose */
  f->fd[m->member->mode] = -1;
  m->member->fd = -1;
}

io_read_event emel_read_check_span_in_file(io_read_ctx *m) {
  const emel_io_request *r = request_of(m);
  return r->offset + r->size <= file_of(m)->size ? IO_READ_EV_SPAN_INSIDE_FILE : IO_READ_EV_SPAN_BEYOND_EOF;
}

/* ---- storage ---- */

io_read_event emel_read_reserve_slot(io_read_ctx *m) {
  io_read *self = m->self;
  if (self->free_head == 0) return IO_READ_EV_POOL_EXHAUSTED;
  uint32_t index = self->free_head - 1;
  read_slot *s = &self->slots[index];
  self->free_head = s->next_free;
  s->state = SLOT_RESERVED;
  s->size = request_of(m)->size;
  m->member->slot = index;
  return IO_READ_EV_SLOT_RESERVED;
}

io_read_event emel_read_choose_storage(io_read_ctx *m) {
  return request_of(m)->target ? IO_READ_EV_EXTERNAL_STORAGE : IO_READ_EV_OWNED_STORAGE;
}

io_read_event emel_read_allocate_buffer(io_read_ctx *m) {
  io_read *self = m->self;
  const emel_io_request *r = request_of(m);
  read_slot *s = slot_of(m, m->member);
  size_t size = (size_t)r->size, align = self->alignment, shift = 0, lower = 0;
  if (m->member->mode == READ_DIRECT) {
    /* Read the data where it agrees with the file modulo the block, in whole
     * blocks: the head and tail blocks are then read in place. GGUF aligns
     * tensors to 32 only: where that placement breaks the buffer's alignment,
     * the data moves down `lower` (< alignment) bytes once every block is in
     * (emel_read_place_data), still cheaper than reading through the cache. */
    if (align < self->block) align = self->block;
    shift = (size_t)(r->offset % self->block);
    lower = shift % self->alignment;
    if (size > SIZE_MAX - 2 * self->block) return IO_READ_EV_ALLOC_FAILED;
    size = (shift + size + self->block - 1) / self->block * self->block;
    m->member->slack = 1;
  }
  const int huge = size >= self->huge_page;
  if (huge && align < self->huge_page) align = self->huge_page;
  void *base = self->platform.alloc(self->platform.user, size, align);
  if (!base) return IO_READ_EV_ALLOC_FAILED;
  s->base = base;
  s->alloc_size = size;
  s->data = (unsigned char *)base + shift - lower;
  m->member->data = (unsigned char *)base + shift; /* where the transfer writes */
  m->member->lower = lower;
  return huge ? IO_READ_EV_HUGE_BUFFER_READY : IO_READ_EV_STORAGE_READY;
}

/* The buffer is fresh: advised before the copy, its first touch faults whole
 * huge pages. Only whole pages inside the allocation are advised. */
io_read_event emel_read_advise_huge_pages(io_read_ctx *m) {
  io_read *self = m->self;
  const read_slot *s = slot_of(m, m->member);
  const size_t len = s->alloc_size - s->alloc_size % self->block;
  if (self->platform.advise(self->platform.user, s->base, len, EMEL_ADVISE_HUGEPAGE) < 0)
    return IO_READ_EV_HUGE_PAGE_ADVICE_REFUSED;
  self->stats.huge_page_advised++;
  return IO_READ_EV_HUGE_PAGES_ADVISED;
}

void emel_read_count_huge_page_refusal(io_read_ctx *m) { m->self->stats.huge_page_refusals++; }

io_read_event emel_read_adopt_target(io_read_ctx *m) {
  read_slot *s = slot_of(m, m->member);
  s->base = NULL; /* the caller's: never freed here */
  s->data = request_of(m)->target;
  m->member->data = s->data;
  return IO_READ_EV_STORAGE_READY;
}

void emel_read_release_slot(io_read_ctx *m) { free_slot(m->self, m->member->slot); }

/* ---- transfer ---- */

void emel_read_start_single_run(io_read_ctx *m) {
  m->run = m->member;
  m->run_count = 1;
  m->run_start = request_of(m)->offset;
  m->run_end = m->run_start + request_of(m)->size;
  m->done = 0;
  m->cursor = 0;
  m->retries = 0;
}

static uint64_t member_offset(const read_member *x) { return x->request->offset; }
static uint64_t member_end(const read_member *x) { return x->request->offset + x->request->size; }

/* Classifies what one read returned against what it asked for. */
static int chunk_outcome(io_read_ctx *m, int64_t got, uint64_t asked) {
  m->last_got = got;
  if (got < 0) {
    if (got == -EINTR) return IO_READ_EV_CHUNK_INTERRUPTED;
    m->error.os_errno = (int)-got;
    return IO_READ_EV_CHUNK_FAILED;
  }
  if (got == 0) return IO_READ_EV_CHUNK_END_OF_FILE;
  if ((uint64_t)got < asked) {
    m->lane->stats.short_reads++;
    return IO_READ_EV_CHUNK_SHORT;
  }
  return IO_READ_EV_CHUNK_READ;
}

/* The transfer actions below may run on a worker thread: they touch only the
 * run's own members and destinations, this context, and m->lane (never the
 * pool, the stats of the strategy or another lane). */

/* Direct reads: block-aligned positions, lengths and addresses. An owned
 * buffer has room for whole blocks around the span, so every chunk lands in
 * place. In a caller's buffer the head (position inside a block) and the tail
 * (less than a block left) go through the one-block bounce; the rest lands
 * in the destination. */
static int read_direct_chunk(io_read_ctx *m) {
  io_read *self = m->self;
  const emel_platform_ops *p = &self->platform;
  const uint64_t block = self->block, pos = m->run_start + m->done, left = m->run_end - pos;
  unsigned char *dst = (unsigned char *)m->run[0].data + m->done;
  const uint64_t lead = pos % block;
  read_lane *lane = m->lane;
  lane->stats.preads++;
  if (m->run[0].slack) {
    /* Whole blocks from the one holding pos, straight into the owned buffer
     * (its padding takes the bytes outside the span): no bounce round trip. */
    uint64_t len = (lead + left + block - 1) / block * block;
    if (len > self->direct_chunk) len = self->direct_chunk;
    const uint64_t need = len - lead < left ? len - lead : left;
    int64_t got = p->pread(p->user, m->run[0].fd, dst - lead, (size_t)len, pos - lead);
    if (got > 0) lane->stats.bytes_read += (uint64_t)got;
    if (got <= 0) return chunk_outcome(m, got, need);
    if ((uint64_t)got <= lead) return chunk_outcome(m, 0, need); /* the file ends before our byte */
    const uint64_t usable = (uint64_t)got - lead < need ? (uint64_t)got - lead : need;
    return chunk_outcome(m, (int64_t)usable, need);
  }
  if (lead != 0 || left < block) {
    const uint64_t need = left < block - lead ? left : block - lead;
    int64_t got = p->pread(p->user, m->run[0].fd, lane->bounce, (size_t)block, pos - lead);
    if (got > 0) lane->stats.bytes_read += (uint64_t)got;
    if (got <= 0) return chunk_outcome(m, got, need);
    if ((uint64_t)got <= lead) return chunk_outcome(m, 0, need); /* the file ends before our byte */
    uint64_t usable = (uint64_t)got - lead < need ? (uint64_t)got - lead : need;
    memcpy(dst, lane->bounce + lead, (size_t)usable);
    return chunk_outcome(m, (int64_t)usable, need);
  }
  uint64_t len = left - left % block;
  if (len > self->direct_chunk) len = self->direct_chunk;
  int64_t got = p->pread(p->user, m->run[0].fd, dst, (size_t)len, pos);
  if (got > 0) lane->stats.bytes_read += (uint64_t)got;
  return chunk_outcome(m, got, len);
}

/* Buffered reads: one chunk of the run, scattered over the members' buffers
 * (and the gap scratch between them) from where the transfer stands. */
static int read_buffered_chunk(io_read_ctx *m) {
  io_read *self = m->self;
  const emel_platform_ops *p = &self->platform;
  const uint64_t pos = m->run_start + m->done;
  uint64_t left = m->run_end - pos;
  if (left > self->chunk_size) left = self->chunk_size;
  emel_iovec iov[EMEL_PLATFORM_IOV_MAX];
  int count = 0;
  uint64_t at = pos;
  for (size_t k = m->cursor; left > 0 && count < EMEL_PLATFORM_IOV_MAX && k < m->run_count; count++) {
    const read_member *x = &m->run[k];
    uint64_t len;
    if (at < member_offset(x)) { /* padding before this member: at most EMEL_IO_READ_MAX_GAP */
      len = member_offset(x) - at;
      if (len > left) len = left;
      iov[count].base = m->lane->gap_scratch;
    } else {
      len = member_end(x) - at;
      if (len > left) len = left;
      iov[count].base = (unsigned char *)x->data + (at - member_offset(x));
      if (at + len == member_end(x)) k++;
    }
    iov[count].len = (size_t)len;
    at += len;
    left -= len;
  }
  const uint64_t asked = at - pos;
  m->lane->stats.preads++;
  int64_t got = count == 1 ? p->pread(p->user, m->run[0].fd, iov[0].base, iov[0].len, pos)
                           : p->preadv(p->user, m->run[0].fd, iov, count, pos);
  if (got > 0) m->lane->stats.bytes_read += (uint64_t)got;
  return chunk_outcome(m, got, asked);
}

/* ---- the ring engine ---- */

/* Whether transfer `r` reads through the ring (choose_engine's rule). */
static int ring_eligible(const io_read *self, const io_read_ctx *r) {
  return self->ring_depth > 0 && !(r->run[0].mode == READ_DIRECT && !r->run[0].slack);
}

io_read_event emel_read_choose_engine(io_read_ctx *m) {
  m->engine = ENGINE_PREAD;
  /* A caller's buffer has no room for whole blocks: its direct head and tail
   * go through the bounce, one synchronous pread at a time. */
  if (!ring_eligible(m->self, m)) return IO_READ_EV_PREAD_ENGINE;
  switch (m->lane->ring.state) {
  case EMEL_RING_OPEN: return IO_READ_EV_RING_ENGINE;
  case EMEL_RING_UNTRIED: return IO_READ_EV_RING_WANTED;
  default: return IO_READ_EV_PREAD_ENGINE;
  }
}

/* Any refusal is final for the lane: an ENOSYS or EPERM will not change, and
 * a transient one (ENOMEM) costs only the ring's speed, never the load. */
io_read_event emel_read_open_ring(io_read_ctx *m) {
  read_lane *lane = m->lane;
  const int r = emel_ring_open(&lane->ring);
  if (r < 0) {
    lane->stats.ring_errno = (uint64_t)-r;
    return IO_READ_EV_RING_UNAVAILABLE;
  }
  lane->stats.ring_opens++;
  return IO_READ_EV_RING_OPENED;
}

void emel_read_count_ring_fallback(io_read_ctx *m) { m->lane->stats.ring_fallbacks++; }

/* The lane's next transfer after `r` in this window, or NULL: a batch lane
 * transfers the runs it took from the window's counter in the order it took
 * them (transfer_lane); when `r` is the last it took, the next is taken from
 * the counter now, before any read is made into it, so it is this lane's
 * alone and the lane transfers it next. One request alone has none. */
static const io_read_ctx *next_run_of_lane(read_lane *lane, const io_read_ctx *r) {
  const io_read *self = r->self;
  const uintptr_t at = (uintptr_t)r, runs = (uintptr_t)self->runs; /* r may be a lone request's, on a stack */
  if (at < runs || at >= runs + self->run_count * sizeof *self->runs) return NULL;
  if (r->lane_next) return r->lane_next;
  if (r != lane->last_taken) return NULL; /* not a run of this lane's chain (never: defensive) */
  io_read_ctx *next = emel_read_take_run(lane);
  if (next && !lane->taken_ahead) lane->taken_ahead = next;
  return next;
}

/* Where the reads of transfer `r` begin and end: direct ones in whole blocks
 * from the block holding the span's first byte (the owned buffer has room for
 * them), the others exactly the run. */
static void ring_fill_from(read_lane *lane, const io_read_ctx *r) {
  const uint64_t block = r->self->block;
  lane->fill_run = r;
  lane->fill_member = 0;
  lane->fill_at = r->run_start;
  lane->fill_end = r->run_end;
  if (r->run[0].mode == READ_DIRECT) {
    lane->fill_at -= r->run_start % block;
    lane->fill_end = (r->run_end + block - 1) / block * block;
  }
}

/* Before a transfer that ended early rests: every read still in flight
 * completes (its buffer may be freed at settlement); a ring that cannot be
 * waited for is closed, and the lane opens another on its next transfer. */
static void ring_drain(read_lane *lane) { emel_ring_drain(&lane->ring, EMEL_IO_READ_MAX_EINTR, &lane->stats.bytes_read); }

/* This transfer's reads: some may be in flight already, made while the
 * lane's previous transfer ended (see ring_fill); else none is yet. */
void emel_read_start_ring_transfer(io_read_ctx *m) {
  read_lane *lane = m->lane;
  m->engine = ENGINE_RING;
  lane->stats.ring_runs++;
  if (lane->ring.count > 0 && emel_ring_at(&lane->ring, 0)->owner == m) return;
  ring_drain(lane); /* never more than nothing: reads in flight are this transfer's (above) */
  ring_fill_from(lane, m);
}

static int ring_send(read_lane *lane, emel_ring_req *q) {
  const int r = emel_ring_send(&lane->ring, q);
  if (r < 0) return r;
  lane->stats.ring_reads++;
  lane->stats.preads++;
  return 0;
}

/* Makes the next read of the fill transfer: into the member holding fill_at,
 * up to its end (buffered) or in whole blocks (direct); a gap between members
 * is an entry done at once (its bytes are nobody's). */
static void ring_make_next(read_lane *lane, emel_ring_req *q) {
  const io_read_ctx *r = lane->fill_run;
  const io_read *self = r->self;
  const uint64_t at = lane->fill_at;
  q->owner = r;
  q->fd = r->run[0].fd;
  q->off = at;
  if (r->run[0].mode == READ_DIRECT) {
    const uint64_t first = r->run_start - r->run_start % self->block;
    q->len = lane->fill_end - at < self->ring_direct_request ? lane->fill_end - at : self->ring_direct_request;
    q->dst = (unsigned char *)r->run[0].data - (r->run_start - first) + (at - first);
  } else {
    while (member_end(&r->run[lane->fill_member]) <= at) lane->fill_member++;
    const read_member *x = &r->run[lane->fill_member];
    if (at < member_offset(x)) {
      q->len = member_offset(x) - at;
      q->dst = NULL;
      q->state = EMEL_RING_DONE;
      q->res = (int64_t)q->len;
    } else {
      q->len = member_end(x) - at < self->ring_request ? member_end(x) - at : self->ring_request;
      q->dst = (unsigned char *)x->data + (at - member_offset(x));
    }
  }
  lane->fill_at += q->len;
}

/* Sends what waits to be sent (the head again after a short or interrupted
 * read) and makes new reads until ring_depth are in the circle: this
 * transfer's, then the lane's next ones'. */
static int ring_fill(io_read_ctx *m) {
  read_lane *lane = m->lane;
  uint64_t sent = 0;
  const int again = emel_ring_send_waiting(&lane->ring, &sent);
  lane->stats.ring_reads += sent;
  lane->stats.preads += sent;
  if (again < 0) return again;
  while (lane->ring.count < lane->ring.depth) {
    if (lane->fill_at == lane->fill_end) {
      /* This transfer is all asked for: a direct one reads ahead into the
       * lane's next one, whose buffers are ready, so the device never waits
       * between runs. A buffered read of cached pages is copied as it is
       * sent, on this lane's thread: reading ahead would take the next runs
       * from the lanes that would copy them in parallel (measured: a job's
       * 8 MiB units ran on one lane, 0.6 of the batch's speed). */
      if (lane->fill_run->run[0].mode != READ_DIRECT) break;
      const io_read_ctx *next = next_run_of_lane(lane, lane->fill_run);
      if (!next || !ring_eligible(m->self, next)) break;
      ring_fill_from(lane, next);
    }
    emel_ring_req *q = emel_ring_push(&lane->ring);
    ring_make_next(lane, q);
    if (q->state == EMEL_RING_TO_SEND) {
      const int r = ring_send(lane, q);
      if (r < 0) return r;
    }
  }
  return 0;
}

/* One chunk of a ring transfer: the completion of the read at the transfer's
 * position, the reads after it kept in flight. A short read asks again for
 * the rest (direct: from its block), an interrupted one (-EINTR, -EAGAIN) for
 * all of it; the chart decides, as for a pread. */
static int read_ring_chunk(io_read_ctx *m) {
  read_lane *lane = m->lane;
  int r = ring_fill(m);
  if (r == 0) r = emel_ring_reap(&lane->ring, emel_ring_at(&lane->ring, 0), &lane->stats.bytes_read);
  /* -EAGAIN: the kernel short of resources for now. Asked again within the
   * budget like -EINTR; last_got keeps which, for the errno of a spent budget. */
  if (r == -EINTR || r == -EAGAIN) {
    m->last_got = r;
    return IO_READ_EV_CHUNK_INTERRUPTED;
  }
  if (r < 0) return chunk_outcome(m, r, 1);
  emel_ring_req *q = emel_ring_at(&lane->ring, 0);
  const uint64_t pos = m->run_start + m->done, end = q->off + q->len;
  const uint64_t need = (end < m->run_end ? end : m->run_end) - pos;
  if (q->res == -EINTR || q->res == -EAGAIN) {
    q->state = EMEL_RING_TO_SEND;
    m->last_got = q->res;
    return IO_READ_EV_CHUNK_INTERRUPTED;
  }
  if (q->res <= 0) return chunk_outcome(m, q->res, need);
  const uint64_t got_end = q->off + (uint64_t)q->res;
  if (got_end <= pos) return chunk_outcome(m, 0, need); /* the file ends before our byte */
  const uint64_t usable = (got_end < m->run_end ? got_end : m->run_end) - pos;
  if (usable >= need) {
    emel_ring_pop(&lane->ring);
  } else {
    emel_ring_retry_from(q, m->run[0].mode == READ_DIRECT ? got_end - got_end % m->self->block : got_end);
  }
  return chunk_outcome(m, (int64_t)usable, need);
}

void emel_read_drain_ring(io_read_ctx *m) {
  if (m->engine == ENGINE_RING) ring_drain(m->lane);
}

io_read_event emel_read_chunk(io_read_ctx *m) {
  if (m->engine == ENGINE_RING) return read_ring_chunk(m);
  return m->run[0].mode == READ_DIRECT ? read_direct_chunk(m) : read_buffered_chunk(m);
}

/* A direct transfer wrote the data where it agrees with the file modulo the
 * block; the buffer's alignment wants it `lower` bytes lower (see
 * emel_read_allocate_buffer). One move, inside the run's own buffer. */
void emel_read_place_data(io_read_ctx *m) {
  read_member *x = &m->run[0];
  if (x->lower == 0) return;
  unsigned char *to = (unsigned char *)x->data - x->lower;
  memmove(to, x->data, (size_t)x->request->size);
  x->data = to;
}

io_read_event emel_read_advance_transfer(io_read_ctx *m) {
  m->done += (uint64_t)m->last_got;
  m->retries = 0; /* the retry budget is per stall, not per transfer */
  while (m->cursor < m->run_count && member_end(&m->run[m->cursor]) <= m->run_start + m->done) m->cursor++;
  return m->run_start + m->done == m->run_end ? IO_READ_EV_TRANSFER_COMPLETE : IO_READ_EV_CHUNK_DUE;
}

io_read_event emel_read_check_retry_budget(io_read_ctx *m) {
  if (++m->retries > EMEL_IO_READ_MAX_EINTR) {
    /* The errno of the interruption that spent it (EINTR, or the ring's
     * EAGAIN): the caller tells a signal storm from a kernel short of resources. */
    m->error.os_errno = m->last_got < 0 ? (int)-m->last_got : EINTR;
    return IO_READ_EV_RETRIES_EXHAUSTED;
  }
  m->lane->stats.eintr_retries++;
  return IO_READ_EV_RETRY_ALLOWED;
}

/* One fstat on the run's descriptor (on the run's lane): a file truncated or
 * rewritten in place since it was opened shows another size or modification
 * time. A file replaced by rename does not: the descriptor still reads the
 * inode that was checked when it was opened, which is the indexed file. */
io_read_event emel_read_recheck_file(io_read_ctx *m) {
  const emel_platform_ops *p = &m->self->platform;
  const read_file *f = &m->self->file_state[m->run[0].request->file_index];
  emel_file_identity now = {0};
  int r = p->file_identity(p->user, m->run[0].fd, &now);
  if (r < 0) {
    m->error.os_errno = -r;
    return IO_READ_EV_STAT_FAILED;
  }
  return same_file(&now, &f->seen) ? IO_READ_EV_FILE_UNCHANGED : IO_READ_EV_FILE_CHANGED;
}

/* Settlement (calling thread): the pool, the live count and the results. */

void emel_read_discard_run(io_read_ctx *m) {
  for (size_t k = 0; k < m->run_count; k++) {
    read_member *x = &m->run[k];
    free_slot(m->self, x->slot);
    x->data = NULL;
    x->result->error = m->error;
  }
}

io_read_event emel_read_check_cache_policy(io_read_ctx *m) {
  return m->run[0].request->flags & EMEL_LOAD_DROP_CACHE ? IO_READ_EV_DROP_CACHE : IO_READ_EV_KEEP_CACHE;
}

io_read_event emel_read_drop_cache(io_read_ctx *m) {
  const emel_platform_ops *p = &m->self->platform;
  int r = p->fadvise(p->user, m->run[0].fd, m->run_start, m->run_end - m->run_start, EMEL_FADVISE_DONTNEED);
  if (r < 0) return IO_READ_EV_CACHE_DROP_FAILED;
  m->lane->stats.cache_drops++;
  return IO_READ_EV_CACHE_DROPPED;
}

void emel_read_count_cache_drop_failure(io_read_ctx *m) { m->lane->stats.cache_drop_failures++; }

void emel_read_grant_run(io_read_ctx *m) {
  io_read *self = m->self;
  self->stats.runs++;
  if (m->run[0].mode == READ_DIRECT) self->stats.direct_reads++;
  for (size_t k = 0; k < m->run_count; k++) {
    read_member *x = &m->run[k];
    read_slot *s = slot_of(m, x);
    s->state = SLOT_LIVE;
    self->live++;
    emel_io_result *res = x->result;
    res->data = s->data;
    res->size = s->size;
    res->residency = s->base ? EMEL_RESIDENCY_OWNED : EMEL_RESIDENCY_EXTERNAL;
    res->strategy = EMEL_STRATEGY_READ;
    res->handle.strategy = EMEL_STRATEGY_READ;
    res->handle.slot = x->slot;
    res->handle.generation = s->generation;
    res->error.code = EMEL_OK;
    res->error.os_errno = 0;
  }
}

/* The file changed under a load: its descriptors go, so the next load opens
 * it again and compares it with the expectation afresh. Runs once every lane is done
 * with the window (parked), when no lane reads any descriptor. */
void emel_read_forget_file(io_read_ctx *m) {
  io_read *self = m->self;
  read_file *f = &self->file_state[m->run[0].request->file_index];
  for (int mode = 0; mode < 2; mode++) {
    if (f->fd[mode] >= 0) (void)self->platform.close(self->platform.user, f->fd[mode]);
    f->fd[mode] = -1;
  }
  f->size_known = 0;
}

/* ---- release ---- */

io_read_event emel_read_check_handle(io_read_ctx *m) {
  const emel_io_handle h = m->handle;
  const io_read *self = m->self;
  if (h.strategy != EMEL_STRATEGY_READ || h.slot >= self->slot_capacity) return IO_READ_EV_HANDLE_STALE;
  const read_slot *s = &self->slots[h.slot];
  return s->state == SLOT_LIVE && s->generation == h.generation ? IO_READ_EV_HANDLE_LIVE : IO_READ_EV_HANDLE_STALE;
}

void emel_read_release_residency(io_read_ctx *m) {
  free_slot(m->self, m->handle.slot);
  m->self->live--;
}

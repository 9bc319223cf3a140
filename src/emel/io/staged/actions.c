/* Actions of the staged strategy: each performs one effect or computes one
 * outcome; statecharts/io_staged.rl decides what follows.
 *
 * Threads: PREPARE, STREAM and RELEASE actions run on the calling thread;
 * FILL actions on the reader (or, inline, the calling thread). The reader
 * writes only its window's ring buffer and staged_window entry, its own
 * counters (m->stats) and the `filled` count; it reads descriptors and the
 * identities PREPARE recorded before the stream began. The handoff is the
 * atomics `filled` / `freed` (release/acquire), with events only to wake the
 * waiter early. */
#include "staged.h"
#include "emel/util/struct_size.h"

#include <errno.h>
#include <string.h>

static const emel_io_request *request_of(const io_staged_ctx *m) { return m->member->request; }

static staged_file *file_of(const io_staged_ctx *m) { return &m->self->file_state[request_of(m)->file_index]; }

void emel_staged_refuse(io_staged_ctx *m, emel_status code) { m->error.code = code; }

/* ---- PREPARE ---- */

io_staged_event emel_staged_check_request(io_staged_ctx *m) {
  const emel_io_request *r = request_of(m);
  const unsigned known = EMEL_LOAD_DIRECT | EMEL_LOAD_CONSUMER; /* POPULATE/LOCK are mmap's, DROP_CACHE read's */
  return r->size == 0 || (r->flags & ~known) ? IO_STAGED_EV_REQUEST_INVALID : IO_STAGED_EV_REQUEST_VALID;
}

/* The consumer is copied (only the members the caller's header knew): a
 * consumer built against an older header reads as one with the rest NULL. */
io_staged_event emel_staged_check_consumer(io_staged_ctx *m) {
  const emel_io_request *r = request_of(m);
  if (!(r->flags & EMEL_LOAD_CONSUMER) || !r->target) return IO_STAGED_EV_CONSUMER_MISSING;
  emel_staged_consumer *c = &m->member->consumer_copy;
  if (emel_struct_take(c, sizeof *c, r->target) != EMEL_OK || !c->consume) return IO_STAGED_EV_CONSUMER_INVALID;
  if (c->target && c->target_size < r->size) return IO_STAGED_EV_CONSUMER_INVALID;
  return IO_STAGED_EV_CONSUMER_VALID;
}

io_staged_event emel_staged_check_file_index(io_staged_ctx *m) {
  const uint32_t i = request_of(m)->file_index;
  return i < m->self->files->count && i < m->self->file_capacity ? IO_STAGED_EV_FILE_INDEX_VALID
                                                                  : IO_STAGED_EV_FILE_INDEX_INVALID;
}

io_staged_event emel_staged_check_path(io_staged_ctx *m) {
  const emel_io_file *f = &m->self->files->files[request_of(m)->file_index];
  if (!f->path || f->path_len == 0 || f->path_len > EMEL_IO_MAX_PATH || memchr(f->path, '\0', f->path_len))
    return IO_STAGED_EV_PATH_INVALID;
  return IO_STAGED_EV_PATH_VALID;
}

io_staged_event emel_staged_check_span(io_staged_ctx *m) {
  const emel_io_request *r = request_of(m);
  /* Positions are off_t on the way to the OS; direct reads round the end up a block. */
  const uint64_t most = (uint64_t)INT64_MAX - m->self->block;
  if (r->offset > most || r->size > most - r->offset) return IO_STAGED_EV_SPAN_OVERFLOWS;
  return IO_STAGED_EV_SPAN_VALID;
}

/* The ring's buffers are block-aligned and a window's head is placed at the
 * file's offset modulo the block, so any span can be read direct. */
io_staged_event emel_staged_choose_io_mode(io_staged_ctx *m) {
  m->member->mode = STAGED_BUFFERED;
  if (!(request_of(m)->flags & EMEL_LOAD_DIRECT)) return IO_STAGED_EV_BUFFERED_IO;
  if (file_of(m)->direct_refused) return IO_STAGED_EV_DIRECT_KNOWN_REFUSED;
  m->member->mode = STAGED_DIRECT;
  return IO_STAGED_EV_DIRECT_IO;
}

static io_staged_event open_mode(io_staged_ctx *m, int mode) {
  staged_file *f = file_of(m);
  m->member->mode = mode;
  if (f->fd[mode] >= 0) {
    m->member->fd = f->fd[mode];
    return IO_STAGED_EV_FILE_ALREADY_OPEN;
  }
  const emel_platform_ops *p = &m->self->platform;
  const char *path = m->self->files->files[request_of(m)->file_index].path;
  const int fd = p->open(p->user, path, mode == STAGED_DIRECT ? EMEL_OPEN_DIRECT : EMEL_OPEN_READ);
  if (fd < 0) {
    if (mode == STAGED_DIRECT && fd == -EINVAL) { /* the filesystem has no O_DIRECT */
      f->direct_refused = 1;
      m->member->mode = STAGED_BUFFERED;
      return IO_STAGED_EV_DIRECT_REFUSED;
    }
    m->error.os_errno = -fd;
    return IO_STAGED_EV_OPEN_FAILED;
  }
  f->fd[mode] = fd;
  m->member->fd = fd;
  return IO_STAGED_EV_FILE_OPENED;
}

io_staged_event emel_staged_open_direct(io_staged_ctx *m) { return open_mode(m, STAGED_DIRECT); }

io_staged_event emel_staged_open_buffered(io_staged_ctx *m) { return open_mode(m, STAGED_BUFFERED); }

void emel_staged_count_direct_fallback(io_staged_ctx *m) { m->self->stats.direct_fallbacks++; }

static int same_file(const emel_file_identity *a, const emel_file_identity *b) {
  return a->size == b->size && a->device == b->device && a->inode == b->inode && a->mtime_ns == b->mtime_ns;
}

/* A fresh descriptor answers to the boundary's expectation or to what the
 * other mode's descriptor found; without either, what it finds is the reference. */
io_staged_event emel_staged_identify_file(io_staged_ctx *m) {
  staged_file *f = file_of(m);
  const emel_io_file *entry = &m->self->files->files[request_of(m)->file_index];
  const emel_platform_ops *p = &m->self->platform;
  emel_file_identity now = {0};
  const int r = p->file_identity(p->user, m->member->fd, &now);
  if (r < 0) {
    m->error.os_errno = -r;
    return IO_STAGED_EV_STAT_FAILED;
  }
  if (now.type != EMEL_FILE_REGULAR) return IO_STAGED_EV_NOT_A_REGULAR_FILE;
  const emel_file_identity *want = f->size_known ? &f->seen : entry->has_expected ? &entry->expected : NULL;
  if (want && !same_file(&now, want)) return IO_STAGED_EV_FILE_CHANGED;
  f->seen = now;
  f->size = now.size;
  f->size_known = 1;
  return IO_STAGED_EV_FILE_UNCHANGED;
}

void emel_staged_close_fresh_descriptor(io_staged_ctx *m) {
  staged_file *f = file_of(m);
  const emel_platform_ops *p = &m->self->platform;
  (void)p->close(p->user, f->fd[m->member->mode]); /* read-only: nothing to lose */
  f->fd[m->member->mode] = -1;
  m->member->fd = -1;
}

io_staged_event emel_staged_check_span_in_file(io_staged_ctx *m) {
  const emel_io_request *r = request_of(m);
  return r->offset + r->size <= file_of(m)->size ? IO_STAGED_EV_SPAN_INSIDE_FILE : IO_STAGED_EV_SPAN_BEYOND_EOF;
}

io_staged_event emel_staged_reserve_slot(io_staged_ctx *m) {
  io_staged *self = m->self;
  if (self->free_head == 0) return IO_STAGED_EV_POOL_EXHAUSTED;
  const uint32_t index = self->free_head - 1;
  staged_slot *s = &self->slots[index];
  self->free_head = s->next_free;
  s->state = STAGED_SLOT_RESERVED;
  s->tensor = request_of(m)->tensor;
  s->release = m->member->consumer_copy.release;
  s->user = m->member->consumer_copy.user;
  m->member->slot = index;
  return IO_STAGED_EV_SLOT_RESERVED;
}

/* ---- STREAM (calling thread) ---- */

static void signal_event(io_staged *self, int which, emel_io_staged_stats *stats) {
  const emel_platform_ops *p = &self->platform;
  if (p->event_signal(p->user, self->events[which]) < 0) stats->signal_failures++;
}

static void *reader_main(void *arg) {
  io_staged *self = arg;
  for (uint64_t w = 0; w < self->total_windows; w++) {
    if (atomic_load_explicit(&self->stop, memory_order_acquire)) break;
    emel_staged_fill(self, w, &self->reader_stats);
    /* Not published (a stop, or a failure): the stream ends here. */
    if (atomic_load_explicit(&self->filled, memory_order_relaxed) <= w) break;
  }
  return NULL;
}

/* Both events, opened once and kept (a failure is tried again next stream). */
static int events_ready(io_staged *self) {
  const emel_platform_ops *p = &self->platform;
  for (int i = 0; i < 2; i++) {
    if (self->events[i] >= 0) continue;
    const int fd = p->event_open(p->user);
    if (fd < 0) return 0;
    self->events[i] = fd;
  }
  return 1;
}

io_staged_event emel_staged_start_reader(io_staged_ctx *m) {
  io_staged *self = m->self;
  const emel_platform_ops *p = &self->platform;
  atomic_store_explicit(&self->filled, 0, memory_order_relaxed);
  atomic_store_explicit(&self->freed, 0, memory_order_relaxed);
  atomic_store_explicit(&self->stop, 0, memory_order_relaxed);
  atomic_store_explicit(&self->failed_at, UINT64_MAX, memory_order_relaxed);
  self->failure = (emel_error){.code = EMEL_OK};
  memset(&self->reader_stats, 0, sizeof self->reader_stats);
  m->next = 0;
  self->stats.streams++;
  self->inline_reader = 1;
  if (!self->want_thread || !events_ready(self)) return IO_STAGED_EV_READER_INLINE;
  self->inline_reader = 0; /* before the thread reads it */
  if (p->thread_start(p->user, reader_main, self, &self->thread) != 0) {
    self->inline_reader = 1;
    return IO_STAGED_EV_READER_INLINE;
  }
  self->reader_running = 1;
  self->stats.threaded_streams++;
  return IO_STAGED_EV_READER_STARTED;
}

void emel_staged_count_inline_stream(io_staged_ctx *m) { m->self->stats.inline_streams++; }

io_staged_event emel_staged_await_window(io_staged_ctx *m) {
  io_staged *self = m->self;
  const emel_platform_ops *p = &self->platform;
  const uint64_t w = m->next;
  uint64_t offset, bytes;
  emel_staged_locate(self, w, &m->fill_member, &offset, &bytes); /* whose window a failure is */
  if (self->inline_reader && atomic_load_explicit(&self->filled, memory_order_relaxed) <= w)
    emel_staged_fill(self, w, &self->stats);
  int stalled = 0;
  while (atomic_load_explicit(&self->filled, memory_order_acquire) <= w) {
    if (atomic_load_explicit(&self->failed_at, memory_order_acquire) == w) return IO_STAGED_EV_WINDOW_FAILED;
    if (!stalled) self->stats.consumer_stalls++;
    stalled = 1;
    const int r = p->event_wait(p->user, self->events[0], EMEL_IO_STAGED_WAIT_MS);
    if (r < 0 && r != -EINTR) {
      m->error.os_errno = -r;
      return IO_STAGED_EV_HANDOFF_FAILED;
    }
  }
  return IO_STAGED_EV_WINDOW_READY;
}

/* Read after failed_at's acquire: the reader wrote it before. */
void emel_staged_take_window_error(io_staged_ctx *m) { m->error = m->self->failure; }

io_staged_event emel_staged_consume_window(io_staged_ctx *m) {
  io_staged *self = m->self;
  const staged_window *win = &self->windows[m->next % self->ring_count];
  staged_member *x = &self->members[win->member];
  const emel_staged_consumer *c = &x->consumer_copy;
  const int rc = c->consume(c->user, x->request->tensor, win->offset, win->bytes, win->data);
  if (rc != 0) {
    m->error.os_errno = rc; /* the consumer's own code, kept */
    return IO_STAGED_EV_CONSUMER_FAILED;
  }
  x->consumed += win->bytes;
  self->stats.windows++;
  return IO_STAGED_EV_CONSUMED;
}

io_staged_event emel_staged_free_window(io_staged_ctx *m) {
  io_staged *self = m->self;
  atomic_store_explicit(&self->freed, m->next + 1, memory_order_release);
  if (!self->inline_reader) signal_event(self, 1, &self->stats);
  m->next++;
  return m->next < self->total_windows ? IO_STAGED_EV_WINDOWS_LEFT : IO_STAGED_EV_ALL_CONSUMED;
}

static void merge_stats(emel_io_staged_stats *to, const emel_io_staged_stats *from) {
  to->bytes_read += from->bytes_read;
  to->preads += from->preads;
  to->eintr_retries += from->eintr_retries;
  to->short_reads += from->short_reads;
  to->direct_reads += from->direct_reads;
  to->reader_stalls += from->reader_stalls;
  to->signal_failures += from->signal_failures;
  to->ring_windows += from->ring_windows;
  to->ring_reads += from->ring_reads;
  to->ring_opens += from->ring_opens;
  to->ring_fallbacks += from->ring_fallbacks;
  if (from->ring_errno) to->ring_errno = from->ring_errno;
}

/* The reader sees `stop` before its next window or within one bounded wait. */
io_staged_event emel_staged_stop_reader(io_staged_ctx *m) {
  io_staged *self = m->self;
  const emel_platform_ops *p = &self->platform;
  atomic_store_explicit(&self->stop, 1, memory_order_release);
  if (self->inline_reader) return IO_STAGED_EV_READER_STOPPED;
  signal_event(self, 1, &self->stats);
  const int joined = p->thread_join(p->user, self->thread); /* returns once the thread is gone, either way */
  self->reader_running = 0;
  merge_stats(&self->stats, &self->reader_stats);
  return joined == 0 ? IO_STAGED_EV_READER_STOPPED : IO_STAGED_EV_READER_JOIN_FAILED;
}

void emel_staged_count_join_failure(io_staged_ctx *m) { m->self->stats.thread_join_failures++; }

static void free_slot(io_staged *self, uint32_t index) {
  staged_slot *s = &self->slots[index];
  s->state = STAGED_SLOT_FREE;
  s->release = NULL;
  s->user = NULL;
  s->generation++;
  s->next_free = self->free_head;
  self->free_head = index + 1;
}

/* A changed file's descriptors are closed: the next load opens and compares it afresh. */
static void forget_file(io_staged *self, uint32_t file_index) {
  staged_file *f = &self->file_state[file_index];
  const emel_platform_ops *p = &self->platform;
  for (int mode = 0; mode < 2; mode++)
    if (f->fd[mode] >= 0) (void)p->close(p->user, f->fd[mode]);
  *f = (staged_file){.fd = {-1, -1}, .direct_refused = f->direct_refused};
}

/* Every member whose bytes all went to its consumer is granted; the one that
 * failed gets the stream's error, those never reached STAGED_STREAM_STOPPED. */
void emel_staged_settle_stream(io_staged_ctx *m) {
  io_staged *self = m->self;
  if (m->error.code != EMEL_OK) self->members[m->fill_member].error = m->error;
  for (size_t i = 0; i < self->member_count; i++) {
    staged_member *x = &self->members[i];
    emel_io_result *res = x->result;
    staged_slot *s = &self->slots[x->slot];
    if (x->error.code == EMEL_OK && x->consumed == x->request->size) {
      s->state = STAGED_SLOT_LIVE;
      self->live++;
      const emel_staged_consumer *c = &x->consumer_copy;
      res->data = c->target;
      res->size = x->request->size;
      res->residency = c->target ? EMEL_RESIDENCY_EXTERNAL : EMEL_RESIDENCY_DELIVERED;
      res->strategy = EMEL_STRATEGY_STAGED;
      res->handle = (emel_io_handle){EMEL_STRATEGY_STAGED, x->slot, s->generation};
      res->error = (emel_error){.code = EMEL_OK};
      continue;
    }
    res->error = x->error.code != EMEL_OK ? x->error : (emel_error){.code = EMEL_STAGED_STREAM_STOPPED};
    if (res->error.code == EMEL_FILE_CHANGED) forget_file(self, x->request->file_index);
    free_slot(self, x->slot);
  }
}

/* ---- FILL (the reader) ---- */

io_staged_event emel_staged_await_free_buffer(io_staged_ctx *m) {
  io_staged *self = m->self;
  const emel_platform_ops *p = &self->platform;
  int stalled = 0;
  for (;;) {
    if (atomic_load_explicit(&self->stop, memory_order_acquire)) return IO_STAGED_EV_STOP_REQUESTED;
    if (m->window - atomic_load_explicit(&self->freed, memory_order_acquire) < self->ring_count)
      return IO_STAGED_EV_BUFFER_FREE;
    if (!stalled) m->stats->reader_stalls++;
    stalled = 1;
    const int r = p->event_wait(p->user, self->events[1], EMEL_IO_STAGED_WAIT_MS);
    if (r < 0 && r != -EINTR) {
      m->error.os_errno = -r;
      return IO_STAGED_EV_HANDOFF_FAILED;
    }
  }
}

static const staged_member *fill_member_of(const io_staged_ctx *m) { return &m->self->members[m->fill_member]; }

static unsigned char *fill_buffer(const io_staged_ctx *m) { return m->self->ring[m->window % m->self->ring_count]; }

static io_staged_event read_pread_chunk(io_staged_ctx *m) {
  const emel_platform_ops *p = &m->self->platform;
  const staged_member *x = fill_member_of(m);
  /* O_DIRECT takes whole blocks only: after a short read that ended inside a
   * block, that block is read again from its start (its bytes are the same). */
  m->from = x->mode == STAGED_DIRECT ? m->got - m->got % m->self->block : m->got;
  const uint64_t len = m->asked - m->from;
  const int64_t r = p->pread(p->user, x->fd, fill_buffer(m) + m->from, (size_t)len, m->file_start + m->from);
  m->last = r;
  m->stats->preads++;
  if (r == -EINTR) return IO_STAGED_EV_CHUNK_INTERRUPTED;
  if (r < 0) {
    m->error.os_errno = (int)-r;
    return IO_STAGED_EV_CHUNK_FAILED;
  }
  if (r == 0) return IO_STAGED_EV_CHUNK_END_OF_FILE;
  m->stats->bytes_read += (uint64_t)r;
  if (m->from + (uint64_t)r <= m->got) { /* direct: a block read again came up short again */
    if (++m->retries > EMEL_IO_STAGED_MAX_EINTR) {
      m->error.os_errno = EIO; /* a device that never completes the block must not hang the load */
      return IO_STAGED_EV_CHUNK_FAILED;
    }
    m->last = (int64_t)(m->got - m->from); /* no progress: got stays */
    return IO_STAGED_EV_CHUNK_SHORT;
  }
  m->retries = 0;
  return (uint64_t)r < len ? IO_STAGED_EV_CHUNK_SHORT : IO_STAGED_EV_CHUNK_READ;
}

/* ---- the ring engine (the reader's: one thread at a time uses it) ---- */

io_staged_event emel_staged_choose_engine(io_staged_ctx *m) {
  m->engine = STAGED_ENGINE_PREAD;
  if (m->self->reads.depth == 0) return IO_STAGED_EV_PREAD_ENGINE;
  switch (m->self->reads.state) {
  case EMEL_RING_OPEN: return IO_STAGED_EV_RING_ENGINE;
  case EMEL_RING_UNTRIED: return IO_STAGED_EV_RING_WANTED;
  default: return IO_STAGED_EV_PREAD_ENGINE;
  }
}

/* Any refusal is final for this strategy: an ENOSYS or EPERM will not change,
 * and a transient one (ENOMEM) costs only the ring's speed, never the load. */
io_staged_event emel_staged_open_ring(io_staged_ctx *m) {
  const int r = emel_ring_open(&m->self->reads);
  if (r < 0) {
    m->stats->ring_errno = (uint64_t)-r;
    return IO_STAGED_EV_RING_UNAVAILABLE;
  }
  m->stats->ring_opens++;
  return IO_STAGED_EV_RING_OPENED;
}

void emel_staged_count_ring_fallback(io_staged_ctx *m) { m->stats->ring_fallbacks++; }

/* Before the window's buffer is published or given up: every read still in
 * flight completes; a ring that cannot be waited for is closed, and the next
 * window opens another. */
static void ring_drain(io_staged *self) { emel_ring_drain(&self->reads, EMEL_IO_STAGED_MAX_EINTR, NULL); }

/* Nothing is in flight between windows (every way out of one drains), so
 * this only empties the circle. */
void emel_staged_start_ring_window(io_staged_ctx *m) {
  io_staged *self = m->self;
  m->engine = STAGED_ENGINE_RING;
  ring_drain(self);
  self->ring_fill_at = 0;
  m->stats->ring_windows++;
}

void emel_staged_drain_ring(io_staged_ctx *m) {
  if (m->engine == STAGED_ENGINE_RING) ring_drain(m->self);
}

/* Sends what waits to be sent (the head again after a short or interrupted
 * read), then makes reads of ring_request bytes until the circle is full or
 * the window's bytes are all asked for. */
static int ring_fill(io_staged_ctx *m) {
  io_staged *self = m->self;
  emel_ring *ring = &self->reads;
  uint64_t sent = 0;
  int r = emel_ring_send_waiting(ring, &sent);
  while (r == 0 && ring->count < ring->depth && self->ring_fill_at < m->asked) {
    const uint64_t left = m->asked - self->ring_fill_at;
    emel_ring_req *q = emel_ring_push(ring);
    q->off = m->file_start + self->ring_fill_at;
    q->len = left < self->ring_request ? left : self->ring_request;
    q->dst = fill_buffer(m) + self->ring_fill_at;
    q->fd = fill_member_of(m)->fd;
    self->ring_fill_at += q->len;
    r = emel_ring_send(ring, q);
    if (r == 0) sent++;
  }
  m->stats->ring_reads += sent;
  m->stats->preads += sent;
  return r;
}

/* One chunk through the ring: the completion of the read at the window's
 * position, the reads after it kept in flight. Its outcome is the one a
 * pread of the same bytes would have had: a short read asks again for the
 * rest (direct: from its block), an interrupted one (-EINTR, -EAGAIN) for all
 * of it, a failed one keeps its errno, an empty one is the end of the file. */
static io_staged_event read_ring_chunk(io_staged_ctx *m) {
  io_staged *self = m->self;
  emel_ring *ring = &self->reads;
  int r = ring_fill(m);
  if (r == 0 && ring->count == 0) r = -EPROTO; /* all asked for and taken: complete before, never here */
  if (r == 0) r = emel_ring_reap(ring, emel_ring_at(ring, 0), NULL);
  emel_ring_req *q = emel_ring_at(ring, 0);
  if (r == 0) r = q->res < 0 ? (int)q->res : 0;
  /* -EAGAIN: the kernel short of resources for now. Asked again within the
   * budget like -EINTR; m->last keeps which, for the errno of a spent budget. */
  if (r == -EINTR || r == -EAGAIN) {
    if (q->state == EMEL_RING_DONE) q->state = EMEL_RING_TO_SEND;
    m->last = r;
    return IO_STAGED_EV_CHUNK_INTERRUPTED;
  }
  if (r < 0) {
    m->error.os_errno = -r;
    return IO_STAGED_EV_CHUNK_FAILED;
  }
  if (q->res == 0) return IO_STAGED_EV_CHUNK_END_OF_FILE;
  m->stats->bytes_read += (uint64_t)q->res;
  const uint64_t off = q->off - m->file_start; /* the window's coordinates from here */
  const uint64_t end = off + q->len, got_end = off + (uint64_t)q->res;
  m->from = off;
  m->last = q->res;
  if (got_end <= m->got) { /* direct: a block read again came up short again */
    if (++m->retries > EMEL_IO_STAGED_MAX_EINTR) {
      m->error.os_errno = EIO; /* a device that never completes the block must not hang the load */
      return IO_STAGED_EV_CHUNK_FAILED;
    }
    q->state = EMEL_RING_TO_SEND;
    m->last = (int64_t)(m->got - m->from); /* no progress: got stays */
    return IO_STAGED_EV_CHUNK_SHORT;
  }
  m->retries = 0;
  if (got_end < end) { /* the rest asked again (O_DIRECT: from the block the read ended in) */
    const uint64_t from = fill_member_of(m)->mode == STAGED_DIRECT ? got_end - got_end % self->block : got_end;
    emel_ring_retry_from(q, m->file_start + from);
    return IO_STAGED_EV_CHUNK_SHORT;
  }
  emel_ring_pop(ring);
  return IO_STAGED_EV_CHUNK_READ;
}

io_staged_event emel_staged_read_chunk(io_staged_ctx *m) {
  return m->engine == STAGED_ENGINE_RING ? read_ring_chunk(m) : read_pread_chunk(m);
}

void emel_staged_count_short_read(io_staged_ctx *m) { m->stats->short_reads++; }

/* A direct window asks for whole blocks and may get fewer at the end of the
 * file: complete once the span's bytes are in. */
io_staged_event emel_staged_advance_window(io_staged_ctx *m) {
  m->got = m->from + (uint64_t)m->last;
  return m->got >= m->need ? IO_STAGED_EV_WINDOW_COMPLETE : IO_STAGED_EV_CHUNK_DUE;
}

io_staged_event emel_staged_check_retry_budget(io_staged_ctx *m) {
  if (++m->retries <= EMEL_IO_STAGED_MAX_EINTR) {
    m->stats->eintr_retries++; /* retries made, as the read strategy counts them */
    return IO_STAGED_EV_RETRY_ALLOWED;
  }
  /* The errno of the interruption that spent it (EINTR, or the ring's EAGAIN). */
  m->error.os_errno = m->last < 0 ? (int)-m->last : EINTR;
  return IO_STAGED_EV_RETRIES_EXHAUSTED;
}

io_staged_event emel_staged_recheck_file(io_staged_ctx *m) {
  const emel_platform_ops *p = &m->self->platform;
  const staged_member *x = fill_member_of(m);
  emel_file_identity now = {0};
  const int r = p->file_identity(p->user, x->fd, &now);
  if (r < 0) {
    m->error.os_errno = -r;
    return IO_STAGED_EV_STAT_FAILED;
  }
  return same_file(&now, &m->self->file_state[x->request->file_index].seen) ? IO_STAGED_EV_FILE_UNCHANGED
                                                                             : IO_STAGED_EV_FILE_CHANGED;
}

/* Only once its buffer is free (BUFFER_FREE) does the reader write a window's slot. */
void emel_staged_publish_window(io_staged_ctx *m) {
  io_staged *self = m->self;
  const staged_member *x = fill_member_of(m);
  const uint64_t head = x->request->offset + m->fill_offset - m->file_start;
  if (x->mode == STAGED_DIRECT) m->stats->direct_reads++;
  self->windows[m->window % self->ring_count] =
      (staged_window){m->fill_member, m->fill_offset, m->fill_bytes, fill_buffer(m) + head};
  atomic_store_explicit(&self->filled, m->window + 1, memory_order_release);
  if (!self->inline_reader) signal_event(self, 0, m->stats);
}

/* A failure may come before the window's buffer is free (a failed wait for
 * it): it goes apart from the ring, never into a slot the consumer may read. */
void emel_staged_publish_failure(io_staged_ctx *m) {
  io_staged *self = m->self;
  self->failure = m->error;
  atomic_store_explicit(&self->failed_at, m->window, memory_order_release);
  if (!self->inline_reader) signal_event(self, 0, m->stats);
}

/* ---- RELEASE ---- */

io_staged_event emel_staged_check_handle(io_staged_ctx *m) {
  const io_staged *self = m->self;
  const emel_io_handle h = m->handle;
  if (h.strategy != EMEL_STRATEGY_STAGED || h.slot >= self->slot_capacity) return IO_STAGED_EV_HANDLE_STALE;
  const staged_slot *s = &self->slots[h.slot];
  return s->state == STAGED_SLOT_LIVE && s->generation == h.generation ? IO_STAGED_EV_HANDLE_LIVE
                                                                       : IO_STAGED_EV_HANDLE_STALE;
}

/* The consumer's release runs before the slot is reused: it may look the tensor up again. */
void emel_staged_release_residency(io_staged_ctx *m) {
  io_staged *self = m->self;
  staged_slot *s = &self->slots[m->handle.slot];
  if (s->release) s->release(s->user, s->tensor);
  self->live--;
  free_slot(self, m->handle.slot);
}

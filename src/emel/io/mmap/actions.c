/* Actions of the mmap strategy's machine: each performs one effect through the
 * platform operations or computes one outcome; statecharts/io_mmap.rl decides
 * what follows. The layout (one shared mapping per file) and its measurements
 * are described in mmap.h. */
#include "mmap.h"

#include <errno.h>
#include <string.h>

static uintptr_t page_down(const mmap_strategy *s, uintptr_t v) { return v & ~(uintptr_t)(s->page - 1); }
static uint64_t page_down64(const mmap_strategy *s, uint64_t v) { return v & ~(uint64_t)(s->page - 1); }
static uint64_t page_up64(const mmap_strategy *s, uint64_t v) { return page_down64(s, v + s->page - 1); }

static const emel_platform_ops *os(const io_mmap_ctx *m) { return m->s->platform; }

/* Keeps the errno of a failed OS call (negative return) for the refusal that follows. */
static int failed(io_mmap_ctx *m, int64_t r) {
  m->os_errno = r < 0 ? (int)-r : 0;
  return r < 0;
}

/* ---- map: validation, no OS call ---- */

io_mmap_event emel_mmap_check_request(io_mmap_ctx *m) {
  const emel_io_request *r = m->request;
  const unsigned known = EMEL_LOAD_POPULATE | EMEL_LOAD_LOCK;
  /* A caller buffer makes no sense for bytes that stay in the page cache. */
  const int valid = r->size > 0 && (r->flags & ~known) == 0 && !r->target && r->target_size == 0;
  return valid ? IO_MMAP_EV_REQUEST_VALID : IO_MMAP_EV_REQUEST_INVALID;
}

io_mmap_event emel_mmap_check_file_index(io_mmap_ctx *m) {
  return m->request->file_index < m->s->files->count && m->request->file_index < m->s->file_capacity
             ? IO_MMAP_EV_FILE_INDEX_VALID
             : IO_MMAP_EV_FILE_INDEX_INVALID;
}

io_mmap_event emel_mmap_check_path(io_mmap_ctx *m) {
  const emel_io_file *f = &m->s->files->files[m->request->file_index];
  const int valid = f->path && f->path_len > 0 && f->path_len <= EMEL_IO_MAX_PATH &&
                    memchr(f->path, '\0', f->path_len) == NULL;
  return valid ? IO_MMAP_EV_PATH_VALID : IO_MMAP_EV_PATH_INVALID;
}

io_mmap_event emel_mmap_check_span(io_mmap_ctx *m) {
  return m->request->offset > UINT64_MAX - m->request->size ? IO_MMAP_EV_SPAN_OVERFLOWS : IO_MMAP_EV_SPAN_VALID;
}

io_mmap_event emel_mmap_check_platform(io_mmap_ctx *m) {
  return os(m)->can_map(os(m)->user) ? IO_MMAP_EV_MAPPING_SUPPORTED : IO_MMAP_EV_MAPPING_UNSUPPORTED;
}

/* Slots reserved by a batch's deferred tensors are taken already. */
io_mmap_event emel_mmap_check_pool(io_mmap_ctx *m) {
  return m->s->free_count > m->s->reserved ? IO_MMAP_EV_SLOT_AVAILABLE : IO_MMAP_EV_POOL_FULL;
}

io_mmap_event emel_mmap_check_file_mapped(io_mmap_ctx *m) {
  m->file = &m->s->file_table[m->request->file_index];
  return m->file->base ? IO_MMAP_EV_FILE_MAPPED : IO_MMAP_EV_FILE_NOT_MAPPED;
}

io_mmap_event emel_mmap_check_bounds(io_mmap_ctx *m) {
  return m->request->offset + m->request->size <= m->file->size ? IO_MMAP_EV_SPAN_INSIDE_FILE
                                                                : IO_MMAP_EV_SPAN_BEYOND_EOF;
}

/* ---- map: OS calls ---- */

io_mmap_event emel_mmap_open_file(io_mmap_ctx *m) {
  int fd = os(m)->open(os(m)->user, m->s->files->files[m->request->file_index].path, EMEL_OPEN_READ);
  if (failed(m, fd)) return IO_MMAP_EV_OPEN_FAILED;
  m->file->fd = fd;
  return IO_MMAP_EV_OPEN_OK;
}

/* One fstat gives the size to map and what the file is: only a regular file
 * is mapped (its descriptor was opened without blocking); when the boundary
 * expects the file as it was indexed, any other size, inode or modification
 * time is refused before a page is mapped. */
io_mmap_event emel_mmap_identify_file(io_mmap_ctx *m) {
  emel_file_identity now = {0}; /* an op that leaves `type` alone reports a regular file */
  if (failed(m, os(m)->file_identity(os(m)->user, m->file->fd, &now))) return IO_MMAP_EV_SIZE_FAILED;
  if (now.type != EMEL_FILE_REGULAR) return IO_MMAP_EV_NOT_A_REGULAR_FILE; /* no size, nothing to map */
  const emel_io_file *entry = &m->s->files->files[m->request->file_index];
  const emel_file_identity *want = &entry->expected;
  if (entry->has_expected && (now.size != want->size || now.device != want->device || now.inode != want->inode ||
                              now.mtime_ns != want->mtime_ns))
    return IO_MMAP_EV_FILE_CHANGED;
  m->file->size = now.size;
  return IO_MMAP_EV_FILE_UNCHANGED;
}

io_mmap_event emel_mmap_map_file(io_mmap_ctx *m) {
  if ((uint64_t)(size_t)m->file->size != m->file->size) { /* larger than the address space */
    m->os_errno = EFBIG;
    return IO_MMAP_EV_MAP_FAILED;
  }
  void *addr = NULL;
  if (failed(m, os(m)->map(os(m)->user, m->file->fd, 0, (size_t)m->file->size, &addr)))
    return IO_MMAP_EV_MAP_FAILED;
  m->mapped = addr;
  return IO_MMAP_EV_MAP_OK;
}

void emel_mmap_adopt_mapping(io_mmap_ctx *m) {
  m->file->base = m->mapped;
  m->file->refs = 0;
  m->file->locked = 0;
}

void emel_mmap_close_file(io_mmap_ctx *m) {
  /* Linux releases the descriptor even when close reports an error, and
   * nothing was written through it: there is nothing to retry or report. */
  (void)os(m)->close(os(m)->user, m->file->fd);
  m->file->fd = -1;
}

void emel_mmap_take_file_reference(io_mmap_ctx *m) {
  const uint64_t offset = m->request->offset;
  const uint64_t first_page = page_down64(m->s, offset);
  m->file->refs++;
  m->data = m->file->base + offset;
  m->pages = m->file->base + first_page;
  m->pages_len = (size_t)(offset + m->request->size - first_page);
}

/* A locked tensor is populated and locked at once, as alone: mlock after a
 * populate on another lane would only read the pages a second time. */
io_mmap_event emel_mmap_check_populate(io_mmap_ctx *m) {
  if (!(m->request->flags & EMEL_LOAD_POPULATE)) return IO_MMAP_EV_POPULATE_NOT_REQUESTED;
  return m->defer && !(m->request->flags & EMEL_LOAD_LOCK) ? IO_MMAP_EV_POPULATE_DEFERRED
                                                          : IO_MMAP_EV_POPULATE_REQUESTED;
}

void emel_mmap_defer_populate(io_mmap_ctx *m) {
  mmap_strategy *s = m->s;
  s->deferred[s->deferred_count++] = (mmap_deferred){.request = m->request, .result = m->result, .file = m->file,
                                                     .data = m->data, .pages = m->pages, .pages_len = m->pages_len};
  s->reserved++;
}

/* ---- a batch's populates on lanes ---- */

static int populate_errno(const emel_platform_ops *p, const mmap_deferred *d) {
  const int r = p->advise(p->user, d->pages, d->pages_len, EMEL_ADVISE_POPULATE_READ);
  return r < 0 ? -r : 0;
}

static void populate_lane(mmap_lane *lane) {
  for (size_t i = lane->first; i < lane->end; i++)
    lane->s->deferred[i].populate_errno = populate_errno(lane->s->platform, &lane->s->deferred[i]);
}

static void *populate_lane_main(void *arg) {
  populate_lane(arg);
  return NULL;
}

/* The deferred tensors split in file order, about the same bytes a lane (a
 * lane reads on from where its last tensor ended); lanes 1.. start threads. */
io_mmap_event emel_mmap_start_populate_lanes(io_mmap_ctx *m) {
  mmap_strategy *s = m->s;
  const emel_platform_ops *p = s->platform;
  const size_t n = s->deferred_count;
  const uint32_t lanes = n < s->lanes ? (uint32_t)n : s->lanes;
  uint64_t total = 0, seen = 0;
  for (size_t i = 0; i < n; i++) total += s->deferred[i].pages_len;
  size_t at = 0;
  for (uint32_t k = 0; k < lanes; k++) {
    mmap_lane *lane = &s->lane_table[k];
    *lane = (mmap_lane){.s = s, .first = at};
    if (k + 1 == lanes) {
      at = n; /* the rest */
    } else { /* at least one tensor, and one left for each lane after */
      const uint64_t until = total / lanes * (k + 1);
      do seen += s->deferred[at++].pages_len;
      while (at < n - (lanes - 1 - k) && seen < until);
    }
    lane->end = at;
  }
  s->lanes_inline = 0;
  for (uint32_t k = 1; k < lanes; k++) {
    mmap_lane *lane = &s->lane_table[k];
    lane->started = p->thread_start(p->user, populate_lane_main, lane, &lane->thread) == 0;
    if (lane->started) s->stats.populate_threads++;
    else s->lanes_inline++;
  }
  for (uint32_t k = lanes; k < s->lanes; k++) s->lane_table[k] = (mmap_lane){.s = s};
  s->stats.populate_batches++;
  s->stats.populate_ranges += n;
  return s->lanes_inline ? IO_MMAP_EV_SOME_LANES_INLINE : IO_MMAP_EV_LANES_STARTED;
}

void emel_mmap_count_inline_lanes(io_mmap_ctx *m) { m->s->stats.inline_lanes += m->s->lanes_inline; }

void emel_mmap_populate_own_ranges(io_mmap_ctx *m) {
  mmap_strategy *s = m->s;
  for (uint32_t k = 0; k < s->lanes; k++)
    if (k == 0 || !s->lane_table[k].started) populate_lane(&s->lane_table[k]);
}

/* A join that fails still returns once the thread is gone (platform.h): its
 * outcomes are written either way. */
io_mmap_event emel_mmap_join_populate_lanes(io_mmap_ctx *m) {
  mmap_strategy *s = m->s;
  const emel_platform_ops *p = s->platform;
  int failures = 0;
  for (uint32_t k = 1; k < s->lanes; k++) {
    mmap_lane *lane = &s->lane_table[k];
    if (!lane->started) continue;
    if (p->thread_join(p->user, lane->thread) != 0) failures++;
    lane->started = 0;
  }
  s->lanes_inline = (uint32_t)failures; /* reused for the count that follows */
  return failures ? IO_MMAP_EV_LANE_JOIN_FAILED : IO_MMAP_EV_LANES_JOINED;
}

void emel_mmap_count_join_failure(io_mmap_ctx *m) { m->s->stats.thread_join_failures += m->s->lanes_inline; }

/* A deferred tensor's lane outcome, reported as populate_pages would have:
 * its reserved slot is the grant's to take again. */
io_mmap_event emel_mmap_take_lane_populate(io_mmap_ctx *m) {
  m->s->reserved--;
  m->os_errno = m->member->populate_errno;
  if (m->os_errno == 0) return IO_MMAP_EV_POPULATED;
  if (m->os_errno != EFAULT && m->os_errno != EIO) return IO_MMAP_EV_POPULATE_FAILED;
  m->fault_errno = m->os_errno;
  return IO_MMAP_EV_POPULATE_FAULTED;
}

/* MADV_POPULATE_READ reports a page that an access would have taken SIGBUS
 * on (past the end of a file that shrank, or unreadable storage) as EFAULT
 * (EIO on some filesystems) instead of raising it. */
io_mmap_event emel_mmap_populate_pages(io_mmap_ctx *m) {
  if (!failed(m, os(m)->advise(os(m)->user, m->pages, m->pages_len, EMEL_ADVISE_POPULATE_READ)))
    return IO_MMAP_EV_POPULATED;
  if (m->os_errno != EFAULT && m->os_errno != EIO) return IO_MMAP_EV_POPULATE_FAILED;
  m->fault_errno = m->os_errno;
  return IO_MMAP_EV_POPULATE_FAULTED;
}

/* After a populate fault, through a descriptor opened again for this: the
 * file shrank below the size mapped, or is no longer the file indexed. */
io_mmap_event emel_mmap_check_file_shrank(io_mmap_ctx *m) {
  emel_file_identity now;
  if (failed(m, os(m)->file_identity(os(m)->user, m->file->fd, &now))) return IO_MMAP_EV_SIZE_FAILED;
  const emel_io_file *entry = &m->s->files->files[m->request->file_index];
  const emel_file_identity *want = &entry->expected;
  const int other = entry->has_expected && (now.size != want->size || now.device != want->device ||
                                            now.inode != want->inode || now.mtime_ns != want->mtime_ns);
  return other || now.size < m->file->size ? IO_MMAP_EV_FILE_CHANGED : IO_MMAP_EV_FILE_UNCHANGED;
}

io_mmap_event emel_mmap_check_lock(io_mmap_ctx *m) {
  return m->request->flags & EMEL_LOAD_LOCK ? IO_MMAP_EV_LOCK_REQUESTED : IO_MMAP_EV_LOCK_NOT_REQUESTED;
}

io_mmap_event emel_mmap_lock_pages(io_mmap_ctx *m) {
  return failed(m, os(m)->lock(os(m)->user, m->pages, m->pages_len)) ? IO_MMAP_EV_LOCK_FAILED : IO_MMAP_EV_LOCKED;
}

void emel_mmap_grant_mapping(io_mmap_ctx *m) {
  mmap_strategy *s = m->s;
  const uint32_t index = s->free_slots[--s->free_count];
  mmap_slot *slot = &s->slots[index];
  slot->file = m->request->file_index;
  slot->live = 1;
  slot->locked = (m->request->flags & EMEL_LOAD_LOCK) != 0; /* reached only once locked, if asked */
  slot->data = m->data;
  slot->size = m->request->size;
  slot->pages = m->pages;
  slot->pages_len = m->pages_len;
  m->file->locked += (uint32_t)slot->locked;
  s->live++;
  m->result->data = m->data;
  m->result->size = m->request->size;
  m->result->residency = EMEL_RESIDENCY_MAPPED;
  m->result->strategy = EMEL_STRATEGY_MMAP;
  m->result->handle.strategy = EMEL_STRATEGY_MMAP;
  m->result->handle.slot = index;
  m->result->handle.generation = slot->generation;
  emel_mmap_succeed(m);
}

/* ---- map: cleanup after a failure part-way ---- */

io_mmap_event emel_mmap_drop_file_reference(io_mmap_ctx *m) {
  return --m->file->refs == 0 ? IO_MMAP_EV_LAST_REFERENCE_DROPPED : IO_MMAP_EV_REFERENCE_KEPT;
}

io_mmap_event emel_mmap_unmap_file(io_mmap_ctx *m) {
  return failed(m, os(m)->unmap(os(m)->user, m->file->base, (size_t)m->file->size)) ? IO_MMAP_EV_UNMAP_FAILED
                                                                                    : IO_MMAP_EV_UNMAPPED;
}

void emel_mmap_forget_file_mapping(io_mmap_ctx *m) {
  m->file->base = NULL;
  m->file->size = 0; /* read again on the next open */
}

/* ---- release ---- */

io_mmap_event emel_mmap_check_handle(io_mmap_ctx *m) {
  const emel_io_handle h = m->handle;
  mmap_strategy *s = m->s;
  if (h.strategy != EMEL_STRATEGY_MMAP || h.slot >= s->capacity || !s->slots[h.slot].live ||
      s->slots[h.slot].generation != h.generation)
    return IO_MMAP_EV_HANDLE_INVALID;
  m->slot = &s->slots[h.slot];
  m->file = &s->file_table[m->slot->file];
  return IO_MMAP_EV_HANDLE_VALID;
}

io_mmap_event emel_mmap_check_slot_locked(io_mmap_ctx *m) {
  return m->slot->locked ? IO_MMAP_EV_SLOT_LOCKED : IO_MMAP_EV_SLOT_NOT_LOCKED;
}

io_mmap_event emel_mmap_unlock_pages(io_mmap_ctx *m) {
  return failed(m, os(m)->unlock(os(m)->user, m->slot->pages, m->slot->pages_len)) ? IO_MMAP_EV_UNLOCK_FAILED
                                                                                   : IO_MMAP_EV_UNLOCKED;
}

void emel_mmap_mark_unlocked(io_mmap_ctx *m) {
  m->slot->locked = 0;
  m->file->locked--;
}

io_mmap_event emel_mmap_check_references(io_mmap_ctx *m) {
  if (m->file->refs == 1) return IO_MMAP_EV_LAST_REFERENCE;
  /* Only pages wholly inside the tensor: a boundary page may hold a
   * neighbour's bytes. Locked pages refuse MADV_DONTNEED, so a file with
   * locked tensors keeps its pages until the last reference goes. */
  const uint64_t offset = (uint64_t)(m->slot->data - m->file->base);
  const uint64_t first = page_up64(m->s, offset);
  const uint64_t end = page_down64(m->s, offset + m->slot->size);
  if (end <= first || m->file->locked > 0) return IO_MMAP_EV_NO_PAGES_OF_ITS_OWN;
  m->pages = m->file->base + first;
  m->pages_len = (size_t)(end - first);
  return IO_MMAP_EV_PAGES_OF_ITS_OWN;
}

io_mmap_event emel_mmap_drop_own_pages(io_mmap_ctx *m) {
  return failed(m, os(m)->advise(os(m)->user, m->pages, m->pages_len, EMEL_ADVISE_DONTNEED))
             ? IO_MMAP_EV_DROP_FAILED
             : IO_MMAP_EV_PAGES_DROPPED;
}

void emel_mmap_free_slot(io_mmap_ctx *m) {
  mmap_strategy *s = m->s;
  m->slot->live = 0;
  m->slot->generation++;
  s->free_slots[s->free_count++] = (uint32_t)(m->slot - s->slots);
  m->file->refs--;
  s->live--;
  emel_mmap_succeed(m);
}

/* ---- advise ---- */

io_mmap_event emel_mmap_check_advice(io_mmap_ctx *m) {
  switch (m->advice) {
  case EMEL_ADVISE_NORMAL:
  case EMEL_ADVISE_SEQUENTIAL:
  case EMEL_ADVISE_WILLNEED:
  case EMEL_ADVISE_DONTNEED:
  case EMEL_ADVISE_POPULATE_READ: return IO_MMAP_EV_ADVICE_VALID;
  case EMEL_ADVISE_HUGEPAGE: break; /* file-backed huge pages are not ours to ask for */
  }
  return IO_MMAP_EV_ADVICE_INVALID;
}

io_mmap_event emel_mmap_check_advise_range(io_mmap_ctx *m) {
  const uint64_t size = m->slot->size;
  if (m->advise_len == 0 || m->advise_offset > size || m->advise_len > size - m->advise_offset)
    return IO_MMAP_EV_RANGE_INVALID;
  char *first = m->slot->data + m->advise_offset;
  m->pages = (char *)page_down(m->s, (uintptr_t)first);
  m->pages_len = (size_t)(first - m->pages) + (size_t)m->advise_len;
  return IO_MMAP_EV_RANGE_VALID;
}

io_mmap_event emel_mmap_advise_pages(io_mmap_ctx *m) {
  return failed(m, os(m)->advise(os(m)->user, m->pages, m->pages_len, m->advice)) ? IO_MMAP_EV_ADVISE_FAILED
                                                                                  : IO_MMAP_EV_ADVISED;
}

/* ---- outcomes of the request ---- */

void emel_mmap_succeed(io_mmap_ctx *m) {
  m->error.code = EMEL_OK;
  m->error.os_errno = 0;
}

void emel_mmap_fail(io_mmap_ctx *m, emel_status code) {
  m->error.code = code;
  m->error.os_errno = m->os_errno; /* 0 unless an OS call's failure led here */
}

void emel_mmap_fail_after_fault(io_mmap_ctx *m, emel_status code) {
  m->error.code = code;
  m->error.os_errno = m->fault_errno; /* the fault's, not the look at the file after it */
}

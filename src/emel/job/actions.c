/* Actions of the load job machine: each performs one effect or reports one
 * outcome; statecharts/load_job.rl decides what follows. They reach the bytes
 * only through the tensor table and the io boundary. */
#include "job.h"
#include "emel/model/tensor/job_access.h"

#include <errno.h>
#include <string.h>

enum { PIECE_MIN = 64u << 10 }; /* a budget smaller than this still moves this much (at most a chunk) of a big tensor */

uint64_t emel_job_size_at(const load_job_ctx *m, uint32_t pos) {
  emel_tensor_info info;
  return emel_tensors_info(m->t, m->order[pos], &info) ? info.span.size : 0;
}

/* A tensor larger than a chunk is moved chunk by chunk, so that it never
 * delays a cancel by more than a chunk: read into its final buffer, or (mmap
 * with EMEL_LOAD_POPULATE) mapped whole, then pre-faulted a chunk at a time.
 * Mapping alone moves no bytes; a locked mapping (EMEL_LOAD_LOCK) is one
 * unit, since unlocking a piece would unlock the tensor's pages. */
static int in_pieces(const load_job_ctx *m, uint64_t size) {
  if (size <= m->chunk) return 0;
  if (m->options.strategy == EMEL_STRATEGY_READ) return 1;
  return m->options.strategy == EMEL_STRATEGY_MMAP && (m->options.flags & EMEL_LOAD_POPULATE) &&
         !(m->options.flags & EMEL_LOAD_LOCK);
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

load_job_event emel_job_begin(load_job_ctx *m) {
  atomic_store(&m->begun_ns, m->platform.clock_ns(m->platform.user));
  atomic_store_explicit(&m->state, EMEL_JOB_RUNNING, memory_order_release); /* for pollers, before the first unit ends */
  return LOAD_JOB_EV_JOB_BEGUN;
}

load_job_event emel_job_pick_unit(load_job_ctx *m) {
  /* The end first: a cancel stops the next unit, and with none left every
   * tensor is settled already (reporting CANCELLED would deny resident ones). */
  if (m->next >= m->count) return LOAD_JOB_EV_NO_UNITS_LEFT;
  if (atomic_load(&m->cancel)) return LOAD_JOB_EV_CANCEL_SEEN;
  const uint64_t left = m->budget > m->moved ? m->budget - m->moved : 0;
  const uint64_t limit = left < m->chunk ? left : m->chunk;
  const uint64_t first = emel_job_size_at(m, m->next);
  if (in_pieces(m, first)) {
    m->unit_count = 0;
    /* A tiny budget still moves something; never more than a chunk (the cancel latency). */
    const uint64_t floor = min_u64(PIECE_MIN, m->chunk);
    m->piece_len = min_u64(first - m->piece_offset, limit > floor ? limit : floor);
    return LOAD_JOB_EV_UNIT_CHOSEN;
  }
  /* A window of whole tensors: at least one, then as many as fit the limit. */
  uint32_t n = 1;
  uint64_t bytes = first;
  while (m->next + n < m->count && n < EMEL_TENSOR_BATCH_WINDOW) {
    const uint64_t size = emel_job_size_at(m, m->next + n);
    if (in_pieces(m, size) || bytes + size > limit) break;
    bytes += size;
    n++;
  }
  m->unit_count = n;
  m->unit_bytes = bytes;
  return LOAD_JOB_EV_UNIT_CHOSEN;
}

/* A tensor moved in part loses its buffer or mapping, and its pieces leave bytes_done. */
static void free_buffer(load_job_ctx *m) {
  atomic_fetch_sub(&m->bytes_done, m->piece_offset);
  /* A refused release (its DONTNEED advice failed) keeps the residency live:
   * tried once more, then it stays in the boundary, unreferenced, until the
   * boundary is destroyed (as a mapping whose unmap failed does). */
  if (m->has_mapping && emel_io_release(m->io, m->mapping.handle, NULL) != EMEL_OK)
    (void)emel_io_release(m->io, m->mapping.handle, NULL);
  m->has_mapping = 0;
  if (m->buffer) m->platform.free(m->platform.user, m->buffer, m->buffer_size);
  m->buffer = NULL;
  m->buffer_size = 0;
  m->piece_offset = 0;
}

static emel_io_result acquire(load_job_ctx *m, const emel_io_request *req) {
  emel_io_result r;
  if (!m->io) r = (emel_io_result){.error = {.code = EMEL_UNKNOWN_STRATEGY}};
  else emel_io_acquire(m->io, req, &r);
  return r;
}

/* mmap: the first piece maps the whole tensor (its residency, held by the job
 * until adopted); each piece pre-faults its pages by advice on that residency.
 * (Not through a residency of its own over them: releasing it would advise
 * DONTNEED on the pages just populated, and a refused release would leave it
 * held by nobody.) */
static load_job_event populate_piece(load_job_ctx *m, uint32_t index, const emel_tensor_info *info) {
  emel_io_request req = {.tensor = index, .file_index = info->span.file_index, .offset = info->span.offset,
                         .size = info->span.size, .strategy = EMEL_STRATEGY_MMAP,
                         .flags = m->options.flags & ~(unsigned)EMEL_LOAD_POPULATE};
  if (!m->has_mapping) {
    m->mapping = acquire(m, &req);
    if (m->mapping.error.code != EMEL_OK) {
      m->unit_error = m->mapping.error;
      return LOAD_JOB_EV_UNIT_FAILED;
    }
    m->has_mapping = 1;
  }
  emel_error e;
  if (emel_io_advise(m->io, m->mapping.handle, m->piece_offset, m->piece_len, EMEL_ADVISE_POPULATE_READ, &e) !=
      EMEL_OK) {
    /* Named as a populated load's failure is, with the advice's errno: a
     * fault (EFAULT, EIO) in a file that shrank or was replaced is
     * FILE_CHANGED, as the mmap strategy says of a populate that faults. */
    if (e.code == EMEL_MMAP_ADVISE_FAILED) {
      const int fault = e.os_errno == EFAULT || e.os_errno == EIO;
      e.code = fault && emel_tensors_job_file_changed(m->t, index) ? EMEL_FILE_CHANGED : EMEL_MMAP_POPULATE_FAILED;
    }
    m->unit_error = e;
    free_buffer(m);
    return LOAD_JOB_EV_UNIT_FAILED;
  }
  m->moved += m->piece_len;
  return m->piece_offset + m->piece_len == info->span.size ? LOAD_JOB_EV_TENSOR_FILLED : LOAD_JOB_EV_PIECE_LOADED;
}

static load_job_event transfer_piece(load_job_ctx *m) {
  const uint32_t index = m->order[m->next];
  emel_tensor_info info;
  emel_tensors_info(m->t, index, &info);
  if (m->options.strategy == EMEL_STRATEGY_MMAP) return populate_piece(m, index, &info);
  if (!m->buffer) {
    /* Aligned as the read strategy aligns its owned buffers, and advised for
     * transparent huge pages as it advises them (a refusal only costs speed). */
    const size_t huge = 2u << 20;
    const size_t align = info.span.size >= huge ? huge : 64;
    m->buffer_size = (size_t)info.span.size;
    m->buffer = (uint64_t)m->buffer_size == info.span.size
                    ? m->platform.alloc(m->platform.user, m->buffer_size, align)
                    : NULL;
    if (!m->buffer) {
      m->buffer_size = 0;
      m->unit_error = (emel_error){.code = EMEL_READ_ALLOC_FAILED};
      return LOAD_JOB_EV_UNIT_FAILED;
    }
    if (align == huge)
      (void)m->platform.advise(m->platform.user, m->buffer, m->buffer_size & ~(huge - 1), EMEL_ADVISE_HUGEPAGE);
  }
  /* The piece in parts, one batch: the read strategy spreads them over its lanes. */
  uint64_t parts = m->piece_len / JOB_PART_MIN;
  if (parts > JOB_PIECE_PARTS) parts = JOB_PIECE_PARTS;
  if (parts < 1) parts = 1;
  const uint64_t part = (m->piece_len + parts - 1) / parts;
  uint32_t n = 0;
  for (uint64_t at = 0; at < m->piece_len; at += part, n++) {
    const uint64_t len = min_u64(part, m->piece_len - at);
    m->parts[n] = (emel_io_request){
        .tensor = index,
        .file_index = info.span.file_index,
        .offset = info.span.offset + m->piece_offset + at,
        .size = len,
        .strategy = EMEL_STRATEGY_READ,
        .flags = m->options.flags,
        .target = (unsigned char *)m->buffer + m->piece_offset + at,
        .target_size = len,
    };
  }
  if (m->io) {
    emel_io_acquire_batch(m->io, m->parts, m->part_results, n);
  } else {
    for (uint32_t k = 0; k < n; k++) m->part_results[k] = (emel_io_result){.error = {.code = EMEL_UNKNOWN_STRATEGY}};
  }
  /* The bytes are in the job's buffer: the boundary's slots for them go back. */
  emel_error first = {.code = EMEL_OK};
  for (uint32_t k = 0; k < n; k++) {
    if (m->part_results[k].error.code == EMEL_OK) (void)emel_io_release(m->io, m->part_results[k].handle, NULL);
    else if (first.code == EMEL_OK) first = m->part_results[k].error;
  }
  if (first.code != EMEL_OK) {
    m->unit_error = first;
    free_buffer(m);
    return LOAD_JOB_EV_UNIT_FAILED;
  }
  m->moved += m->piece_len;
  return m->piece_offset + m->piece_len == info.span.size ? LOAD_JOB_EV_TENSOR_FILLED : LOAD_JOB_EV_PIECE_LOADED;
}

load_job_event emel_job_transfer_unit(load_job_ctx *m) {
  if (m->unit_count == 0) return transfer_piece(m);
  const emel_status s =
      emel_tensors_job_load_batch(m->t, &m->order[m->next], m->unit_count, &m->options, m->unit_statuses);
  m->moved += m->unit_bytes;
  return s == EMEL_OK ? LOAD_JOB_EV_UNIT_LOADED : LOAD_JOB_EV_UNIT_FAILED;
}

/* Position `pos` is resident: published (view first, then the flag) and announced. */
static void mark_ready(load_job_ctx *m, uint32_t pos, int count_bytes) {
  const uint32_t index = m->order[pos];
  (void)emel_tensors_view(m->t, index, &m->views[pos], NULL);
  atomic_store_explicit(&m->done[pos], JOB_READY, memory_order_release);
  atomic_fetch_add(&m->tensors_done, 1);
  if (count_bytes) atomic_fetch_add(&m->bytes_done, m->views[pos].size);
  if (m->on_ready) m->on_ready(m->user, index, &m->views[pos]);
}

static emel_error tensor_failure(const load_job_ctx *m, uint32_t pos) {
  return emel_tensors_last_error(m->t, m->order[pos]);
}

static void mark_failed(load_job_ctx *m, uint32_t pos, emel_error e) {
  m->statuses[pos] = e.code;
  atomic_store_explicit(&m->done[pos], JOB_FAILED, memory_order_release);
  atomic_fetch_add(&m->tensors_failed, 1);
  if (m->result.code == EMEL_OK) m->result = e;
}

void emel_job_publish_unit(load_job_ctx *m) {
  for (uint32_t k = 0; k < m->unit_count; k++) mark_ready(m, m->next + k, 1);
  m->next += m->unit_count;
}

void emel_job_record_piece(load_job_ctx *m) {
  m->piece_offset += m->piece_len;
  atomic_fetch_add(&m->bytes_done, m->piece_len);
}

void emel_job_adopt_buffer(load_job_ctx *m) {
  const uint32_t pos = m->next;
  const emel_status s = m->has_mapping
                            ? emel_tensors_job_adopt_result(m->t, m->order[pos], &m->mapping, NULL)
                            : emel_tensors_job_adopt(m->t, m->order[pos], m->buffer, m->buffer_size, NULL);
  if (s == EMEL_OK) {
    /* The table owns the buffer or mapping now; the earlier pieces were counted already. */
    atomic_fetch_add(&m->bytes_done, m->piece_len);
    m->buffer = NULL;
    m->buffer_size = 0;
    m->has_mapping = 0;
    m->piece_offset = 0;
    mark_ready(m, pos, 0);
  } else { /* never for a held, bound tensor: a broken tensor machine */
    free_buffer(m);
    emel_tensors_job_note(m->t, m->order[pos], s, 0);
    mark_failed(m, pos, tensor_failure(m, pos));
  }
  m->next++;
}

load_job_event emel_job_judge_failure(load_job_ctx *m) {
  return m->flags & EMEL_JOB_CONTINUE_ON_FAILURE ? LOAD_JOB_EV_FAILURE_TOLERATED : LOAD_JOB_EV_FAILURE_FATAL;
}

/* Tolerated: the failed unit's loaded tensors are ready, the others failed. */
void emel_job_record_failures(load_job_ctx *m) {
  if (m->unit_count == 0) {
    emel_tensors_job_note(m->t, m->order[m->next], m->unit_error.code, m->unit_error.os_errno);
    mark_failed(m, m->next, tensor_failure(m, m->next));
    m->next++;
    return;
  }
  for (uint32_t k = 0; k < m->unit_count; k++) {
    if (m->unit_statuses[k] == EMEL_OK) mark_ready(m, m->next + k, 1);
    else mark_failed(m, m->next + k, tensor_failure(m, m->next + k));
  }
  m->next += m->unit_count;
}


static void cancel_position(load_job_ctx *m, uint32_t pos) {
  emel_tensors_job_note(m->t, m->order[pos], EMEL_CANCELLED, 0);
  atomic_store_explicit(&m->done[pos], JOB_CANCELLED, memory_order_release);
}

static void finish(load_job_ctx *m) {
  atomic_store(&m->ended_ns, m->platform.clock_ns(m->platform.user));
}

/* Fatal: the failure is recorded, then every other tensor of the job goes
 * back to the table unloaded (EMEL_CANCELLED), the ready ones evicted. */
void emel_job_release_all(load_job_ctx *m) {
  if (m->unit_count == 0) {
    emel_tensors_job_note(m->t, m->order[m->next], m->unit_error.code, m->unit_error.os_errno);
    mark_failed(m, m->next, tensor_failure(m, m->next));
  } else {
    /* The failed window's loaded tensors were never announced: evicted unseen. */
    for (uint32_t k = 0; k < m->unit_count; k++) {
      const uint32_t pos = m->next + k;
      if (m->unit_statuses[k] != EMEL_OK) mark_failed(m, pos, tensor_failure(m, pos));
      else if (emel_tensors_job_evict(m->t, m->order[pos]) != EMEL_OK) mark_ready(m, pos, 1); /* still resident */
    }
  }
  for (uint32_t pos = 0; pos < m->count; pos++) {
    const int was = atomic_load(&m->done[pos]);
    if (was == JOB_FAILED) continue;
    if (was == JOB_READY) {
      /* A refused eviction (its release failed) leaves the tensor resident:
       * then it stays ready, so ready still means resident. */
      if (emel_tensors_job_evict(m->t, m->order[pos]) != EMEL_OK) continue;
      atomic_fetch_sub(&m->tensors_done, 1);
      atomic_fetch_sub(&m->bytes_done, m->views[pos].size);
    }
    cancel_position(m, pos);
  }
  m->next = m->count;
  finish(m);
}

/* Cancelled: what is ready stays; a tensor half read loses its buffer; the rest
 * is recorded cancelled. */
void emel_job_release_unfinished(load_job_ctx *m) {
  free_buffer(m);
  for (uint32_t pos = m->next; pos < m->count; pos++) cancel_position(m, pos);
  m->next = m->count;
  if (m->result.code == EMEL_OK) m->result = (emel_error){.code = EMEL_CANCELLED};
  finish(m);
}

void emel_job_finish(load_job_ctx *m) { finish(m); }

void emel_job_report_completed(load_job_ctx *m) { m->status = m->result.code; }

void emel_job_report_cancelled(load_job_ctx *m) { m->status = EMEL_CANCELLED; }

void emel_job_report_failed(load_job_ctx *m) { m->status = m->result.code; }

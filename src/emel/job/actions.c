/* Actions of the load job machine: each performs one effect or reports one
 * outcome; statecharts/load_job.rl decides what follows. They reach the bytes
 * only through the tensor table and the io boundary. */
#include "job.h"
#include "emel/io/read/lanes.h"
#include "emel/io_read.h"
#include "emel/model/tensor/job_access.h"
#include "emel/util/struct_size.h"

#include <errno.h>
#include <string.h>

enum { PIECE_MIN = 64u << 10 }; /* a budget smaller than this still moves this much (at most a chunk) of a big tensor */

uint64_t emel_job_size_at(const load_job_ctx *m, uint32_t pos) { return m->slices[pos].size; }

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
  emel_tensors_job_unreserve(m->t, m->reserved);
  m->reserved = 0;
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
static load_job_event populate_piece(load_job_ctx *m, uint32_t index, const emel_tensor_info *info,
                                     const emel_tensor_slice *slice) {
  emel_io_request req = {.tensor = index, .file_index = info->span.file_index, .offset = slice->offset,
                         .size = slice->size, .strategy = EMEL_STRATEGY_MMAP,
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
  return m->piece_offset + m->piece_len == slice->size ? LOAD_JOB_EV_TENSOR_FILLED : LOAD_JOB_EV_PIECE_LOADED;
}

/* A tensor's final buffer: aligned as the read strategy aligns its owned
 * buffers, and advised for transparent huge pages as it advises them (a
 * refusal only costs speed). NULL when it cannot be had. */
static void *take_buffer(load_job_ctx *m, uint64_t size) {
  const size_t huge = 2u << 20;
  const size_t align = size >= huge ? huge : 64;
  void *buffer = (uint64_t)(size_t)size == size ? m->platform.alloc(m->platform.user, (size_t)size, align) : NULL;
  if (buffer && align == huge)
    (void)m->platform.advise(m->platform.user, buffer, (size_t)size & ~(huge - 1), EMEL_ADVISE_HUGEPAGE);
  return buffer;
}

/* A buffer the job reads a tensor's bytes into itself: the table's residency
 * budget admits (and reserves) `size` first; the reservation is given back
 * when the buffer cannot be had. NULL with *e set (BUDGET_EXCEEDED or a
 * victim's release error, or READ_ALLOC_FAILED). */
static void *take_reserved_buffer(load_job_ctx *m, uint64_t size, emel_error *e) {
  int os_errno = 0;
  const emel_status admitted = emel_tensors_job_reserve(m->t, size, &os_errno);
  if (admitted != EMEL_OK) {
    *e = (emel_error){.code = admitted, .os_errno = os_errno};
    return NULL;
  }
  void *buffer = take_buffer(m, size);
  if (!buffer) {
    emel_tensors_job_unreserve(m->t, size);
    *e = (emel_error){.code = EMEL_READ_ALLOC_FAILED};
  }
  return buffer;
}

/* Parts of `bytes` of file (from `offset`) into `dst`, for window member
 * `member`: each at least JOB_PART_MIN bytes, a unit cut into about
 * JOB_PARTS of them at most. */
static void add_parts(load_job_ctx *m, uint32_t *n, uint32_t member, uint32_t index, uint32_t file,
                      uint64_t offset, uint64_t bytes, unsigned char *dst, uint64_t part) {
  for (uint64_t at = 0; at < bytes; at += part) {
    const uint64_t len = min_u64(part, bytes - at);
    m->part_member[*n] = member;
    m->parts[(*n)++] = (emel_io_request){
        .tensor = index,
        .file_index = file,
        .offset = offset + at,
        .size = len,
        .strategy = EMEL_STRATEGY_READ,
        .flags = m->options.flags,
        .target = dst + at,
        .target_size = len,
    };
  }
}

/* The lanes a read unit of `bytes` uses: the job's threads, else the read
 * strategy's, one per JOB_PART_MIN at most. */
static uint32_t unit_lanes(const load_job_ctx *m, uint64_t bytes) {
  const int direct = (m->options.flags & EMEL_LOAD_DIRECT) != 0;
  uint64_t lanes = m->threads ? m->threads : (m->io ? emel_io_read_lanes(m->io, direct) : 1);
  if (lanes > bytes / JOB_PART_MIN) lanes = bytes / JOB_PART_MIN;
  if (lanes > JOB_PARTS) lanes = JOB_PARTS;
  return lanes > 1 ? (uint32_t)lanes : 1;
}

/* EMEL_IO_READ_RUNS_PER_LANE parts per lane, as the strategy cuts a
 * window's runs: the lanes take them in turn, so a lane that starts late
 * takes fewer. A tensor smaller than a part is one. */
static uint64_t part_size(uint64_t unit_bytes, uint32_t lanes) {
  const uint64_t cut = (uint64_t)lanes * EMEL_IO_READ_RUNS_PER_LANE;
  const uint64_t even = (unit_bytes + cut - 1) / cut;
  return even > JOB_PART_MIN ? even : JOB_PART_MIN;
}

/* The parts go to the boundary as one batch on the lanes the job chose
 * (emel_job_config.threads, else the read strategy's), a lane per
 * JOB_PART_MIN at most. Afterwards the boundary's slots for them go back
 * (the bytes are in the job's buffers) and each member's first failure is
 * in unit_statuses (with the tensor's last error). */
static void read_parts(load_job_ctx *m, uint32_t n, uint32_t lanes, uint32_t members) {
  if (!m->io) {
    for (uint32_t k = 0; k < n; k++) m->part_results[k] = (emel_io_result){.error = {.code = EMEL_UNKNOWN_STRATEGY}};
  } else {
    emel_io_read_force_lanes(m->io, lanes);
    emel_io_acquire_batch(m->io, m->parts, m->part_results, n);
    emel_io_read_force_lanes(m->io, 0);
  }
  emel_error first[EMEL_TENSOR_BATCH_WINDOW];
  for (uint32_t k = 0; k < members; k++) first[k] = (emel_error){.code = EMEL_OK};
  for (uint32_t k = 0; k < n; k++) {
    emel_error *f = &first[m->part_member[k]];
    if (m->part_results[k].error.code == EMEL_OK) (void)emel_io_release(m->io, m->part_results[k].handle, NULL);
    else if (f->code == EMEL_OK) *f = m->part_results[k].error;
  }
  for (uint32_t k = 0; k < members; k++) {
    if (first[k].code == EMEL_OK) continue;
    m->unit_statuses[k] = first[k].code;
    m->unit_error = first[k];
    emel_tensors_job_note(m->t, m->order[m->next + k], first[k].code, first[k].os_errno);
  }
}

static load_job_event transfer_piece(load_job_ctx *m) {
  const uint32_t index = m->order[m->next];
  const emel_tensor_slice *slice = &m->slices[m->next];
  emel_tensor_info info;
  emel_tensors_info(m->t, index, &info);
  if (m->options.strategy == EMEL_STRATEGY_MMAP) return populate_piece(m, index, &info, slice);
  if (!m->buffer) {
    m->buffer = take_reserved_buffer(m, slice->size, &m->unit_error);
    if (!m->buffer) return LOAD_JOB_EV_UNIT_FAILED;
    m->reserved = slice->size;
    m->buffer_size = (size_t)slice->size;
  }
  uint32_t n = 0;
  const uint32_t lanes = unit_lanes(m, m->piece_len);
  add_parts(m, &n, 0, index, info.span.file_index, slice->offset + m->piece_offset, m->piece_len,
            (unsigned char *)m->buffer + m->piece_offset, part_size(m->piece_len, lanes));
  m->unit_statuses[0] = EMEL_OK;
  read_parts(m, n, lanes, 1);
  if (m->unit_statuses[0] != EMEL_OK) {
    free_buffer(m);
    return LOAD_JOB_EV_UNIT_FAILED;
  }
  m->moved += m->piece_len;
  return m->piece_offset + m->piece_len == slice->size ? LOAD_JOB_EV_TENSOR_FILLED : LOAD_JOB_EV_PIECE_LOADED;
}

/* Read, a window of whole tensors (whole slices): each read into its final
 * buffer in parts, the parts of all of them one batch over the lanes (the
 * table's batch would give each tensor to one lane, and a window of a few
 * big tensors to one lane in all), then each adopted by the table. An empty
 * or uncut slice goes through the table, which settles it without I/O. */
static load_job_event transfer_window(load_job_ctx *m) {
  const uint32_t lanes = unit_lanes(m, m->unit_bytes);
  const uint64_t part = part_size(m->unit_bytes, lanes);
  uint32_t n = 0;
  for (uint32_t k = 0; k < m->unit_count; k++) {
    const uint32_t index = m->order[m->next + k];
    const emel_tensor_slice *slice = &m->slices[m->next + k];
    m->unit_statuses[k] = EMEL_OK;
    m->unit_buffers[k] = NULL;
    if (slice->size == 0) {
      (void)emel_tensors_job_load_batch(m->t, &index, 1, &m->options, &m->unit_statuses[k]);
      continue;
    }
    /* Reserved until the table adopts the buffer (which charges it) or it is freed. */
    emel_error e;
    m->unit_buffers[k] = take_reserved_buffer(m, slice->size, &e);
    if (!m->unit_buffers[k]) {
      m->unit_statuses[k] = e.code;
      emel_tensors_job_note(m->t, index, e.code, e.os_errno);
      continue;
    }
    m->unit_buffer_sizes[k] = (size_t)slice->size;
    emel_tensor_info info;
    emel_tensors_info(m->t, index, &info);
    add_parts(m, &n, k, index, info.span.file_index, slice->offset, slice->size, m->unit_buffers[k], part);
  }
  read_parts(m, n, lanes, m->unit_count);
  int failed = 0;
  for (uint32_t k = 0; k < m->unit_count; k++) {
    void *buffer = m->unit_buffers[k];
    m->unit_buffers[k] = NULL;
    const uint32_t index = m->order[m->next + k];
    emel_status s = m->unit_statuses[k];
    if (buffer && s == EMEL_OK) {
      s = emel_tensors_job_adopt(m->t, index, buffer, m->unit_buffer_sizes[k], &m->slices[m->next + k], NULL);
      if (s != EMEL_OK) { /* never for a held, bound tensor: a broken tensor machine */
        m->unit_statuses[k] = s;
        emel_tensors_job_note(m->t, index, s, 0);
      }
    }
    if (buffer) emel_tensors_job_unreserve(m->t, m->unit_buffer_sizes[k]); /* adopted: the tensor's charge replaces it */
    if (s != EMEL_OK) {
      if (buffer) m->platform.free(m->platform.user, buffer, m->unit_buffer_sizes[k]);
      failed = 1;
    }
  }
  m->moved += m->unit_bytes;
  return failed ? LOAD_JOB_EV_UNIT_FAILED : LOAD_JOB_EV_UNIT_LOADED;
}

/* The job whose unit this thread is loading through the table: the staged
 * strategy calls the consumer on the thread that called the load
 * (io_staged.h), and the wrapper's `user` must stay the caller's, since the
 * residency keeps it for the caller's release, which may run after the job
 * is gone. Saved and restored, so a consumer that drives a job of its own
 * finds its own. */
static _Thread_local load_job_ctx *delivering;

/* A window the consumer accepted counts in bytes_done at once, so a big
 * tensor's delivery moves progress window by window. Its unit member is found
 * through pos_of (constant time, whatever the unit's size or order); a member
 * never counts past its slice, so bytes_done stays within bytes_total. */
static void count_window(load_job_ctx *m, uint32_t tensor, uint64_t bytes) {
  if (tensor >= m->table_count || !m->pos_of[tensor]) return;
  const uint32_t pos = m->pos_of[tensor] - 1;
  if (pos < m->next || pos - m->next >= m->unit_count) return;
  uint64_t *streamed = &m->unit_streamed[pos - m->next];
  const uint64_t add = min_u64(bytes, emel_job_size_at(m, pos) - *streamed);
  *streamed += add;
  atomic_fetch_add(&m->bytes_done, add);
}

/* The wrapper's consume: once the job is cancelled, the next window is
 * refused (the stream then stops: the cut tensor fails, those after it are
 * STREAM_STOPPED), so a tensor of hundreds of MiB delays a cancel by one
 * window, not by the rest of the tensor. The refusal is the job's own, told
 * apart from a consumer failure by `cut`, not by its code. */
static int deliver(void *user, uint32_t tensor, uint64_t offset, uint64_t bytes, const void *data) {
  load_job_ctx *m = delivering;
  if (!m) return EMEL_INTERNAL; /* only the job's own loads carry the wrapper */
  if (atomic_load_explicit(&m->cancel, memory_order_relaxed)) {
    m->cut = 1;
    m->cut_tensor = tensor;
    return EMEL_CANCELLED;
  }
  const int r = m->consumer.consume(user, tensor, offset, bytes, data);
  if (r == 0) {
    count_window(m, tensor, bytes);
    emel_job_progress_mid_unit(m);
  }
  return r;
}

void emel_job_wrap_consumer(load_job_ctx *m) {
  /* A consumer the strategy would refuse (a bad struct_size, no consume)
   * goes as it is, to be refused by name as without a job. */
  if (m->options.strategy != EMEL_STRATEGY_STAGED || !m->options.consumer) return;
  if (emel_struct_take(&m->consumer, sizeof m->consumer, m->options.consumer) != EMEL_OK || !m->consumer.consume)
    return;
  m->wrapper = m->consumer; /* release, user and target are the caller's */
  m->wrapper.consume = deliver;
  m->options.consumer = &m->wrapper;
}

load_job_event emel_job_transfer_unit(load_job_ctx *m) {
  if (m->unit_count == 0) return transfer_piece(m);
  for (uint32_t k = 0; k < m->unit_count; k++) m->unit_streamed[k] = 0;
  /* Direct reads keep the table's batch: the strategy places owned buffers
   * for O_DIRECT, which a job's buffer would not be. */
  if (m->options.strategy == EMEL_STRATEGY_READ && !(m->options.flags & EMEL_LOAD_DIRECT))
    return transfer_window(m);
  m->cut = 0;
  load_job_ctx *outer = delivering;
  delivering = m;
  const emel_status s =
      emel_tensors_job_load_batch(m->t, &m->order[m->next], m->unit_count, &m->options, m->unit_statuses);
  delivering = outer;
  m->moved += m->unit_bytes;
  if (m->cut) return LOAD_JOB_EV_UNIT_CANCELLED;
  return s == EMEL_OK ? LOAD_JOB_EV_UNIT_LOADED : LOAD_JOB_EV_UNIT_FAILED;
}

/* Position `pos` is resident: published (view first, then the flag) and
 * announced. `counted`: its bytes bytes_done has already (pieces, staged
 * windows); the rest is added in one step, so a poller sees neither a dip nor
 * a count above the total. */
static void mark_ready(load_job_ctx *m, uint32_t pos, uint64_t counted) {
  const uint32_t index = m->order[pos];
  (void)emel_tensors_view(m->t, index, &m->views[pos], NULL);
  atomic_store_explicit(&m->done[pos], JOB_READY, memory_order_release);
  atomic_fetch_add(&m->tensors_done, 1);
  const uint64_t size = m->views[pos].size;
  if (size >= counted) atomic_fetch_add(&m->bytes_done, size - counted);
  else atomic_fetch_sub(&m->bytes_done, counted - size);
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

/* Unit member k did not become ready (failed, cut, evicted unseen): the
 * windows of it counted as they went by leave bytes_done. */
static void uncount_member(load_job_ctx *m, uint32_t k) {
  atomic_fetch_sub(&m->bytes_done, m->unit_streamed[k]);
  m->unit_streamed[k] = 0;
}

void emel_job_publish_unit(load_job_ctx *m) {
  for (uint32_t k = 0; k < m->unit_count; k++) mark_ready(m, m->next + k, m->unit_streamed[k]);
  m->next += m->unit_count;
}

void emel_job_record_piece(load_job_ctx *m) {
  m->piece_offset += m->piece_len;
  atomic_fetch_add(&m->bytes_done, m->piece_len);
}

void emel_job_adopt_buffer(load_job_ctx *m) {
  const uint32_t pos = m->next;
  const emel_status s = m->has_mapping
                            ? emel_tensors_job_adopt_result(m->t, m->order[pos], &m->mapping, &m->options, NULL)
                            : emel_tensors_job_adopt(m->t, m->order[pos], m->buffer, m->buffer_size,
                                                     &m->slices[pos], NULL);
  if (s == EMEL_OK) {
    /* The table owns the buffer or mapping now; the earlier pieces were counted already. */
    const uint64_t counted = m->piece_offset;
    m->buffer = NULL;
    m->buffer_size = 0;
    emel_tensors_job_unreserve(m->t, m->reserved); /* the tensor's charge replaces it */
    m->reserved = 0;
    m->has_mapping = 0;
    m->piece_offset = 0;
    mark_ready(m, pos, counted);
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
    if (m->unit_statuses[k] == EMEL_OK) {
      mark_ready(m, m->next + k, m->unit_streamed[k]);
    } else {
      uncount_member(m, k);
      mark_failed(m, m->next + k, tensor_failure(m, m->next + k));
    }
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
      if (m->unit_statuses[k] == EMEL_OK && emel_tensors_job_evict(m->t, m->order[pos]) != EMEL_OK) {
        mark_ready(m, pos, m->unit_streamed[k]); /* still resident */
        continue;
      }
      uncount_member(m, k);
      if (m->unit_statuses[k] != EMEL_OK) mark_failed(m, pos, tensor_failure(m, pos));
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

/* The job's cancel cut a staged unit: the tensors delivered wholly before it
 * are resident and reported ready; the cut one and those the stream stopped
 * go back to bound with EMEL_CANCELLED (the consumer treats the windows it got
 * of the cut one as void, as after any failed load: io_staged.h; no residency
 * was made, so there is nothing to release); a member's own earlier failure
 * (refused before the stream) stays reported against it. */
void emel_job_settle_cut_unit(load_job_ctx *m) {
  for (uint32_t k = 0; k < m->unit_count; k++) {
    const uint32_t pos = m->next + k;
    const emel_status s = m->unit_statuses[k];
    if (s == EMEL_OK) {
      mark_ready(m, pos, m->unit_streamed[k]);
      continue;
    }
    uncount_member(m, k); /* the consumer treats the cut tensor's windows as void: so does progress */
    if (s == EMEL_STAGED_STREAM_STOPPED || (s == EMEL_STAGED_CONSUMER_FAILED && m->order[pos] == m->cut_tensor))
      cancel_position(m, pos);
    else mark_failed(m, pos, tensor_failure(m, pos));
  }
  m->next += m->unit_count;
}

/* Cancelled: what is ready stays; a tensor half read loses its buffer; the rest
 * is recorded cancelled. */
void emel_job_release_unfinished(load_job_ctx *m) {
  free_buffer(m);
  for (uint32_t pos = m->next; pos < m->count; pos++) cancel_position(m, pos);
  m->next = m->count;
  /* Cancelled is the outcome, as the state says, also after failures a
   * continuing job tolerated: those stay reported against their tensors. */
  m->result = (emel_error){.code = EMEL_CANCELLED};
  finish(m);
}

void emel_job_finish(load_job_ctx *m) { finish(m); }

void emel_job_report_completed(load_job_ctx *m) { m->status = m->result.code; }

void emel_job_report_cancelled(load_job_ctx *m) { m->status = EMEL_CANCELLED; }

void emel_job_report_failed(load_job_ctx *m) { m->status = m->result.code; }

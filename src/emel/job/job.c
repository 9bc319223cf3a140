/* Load jobs: creation, the two drivers (emel_job_step, the job's thread) and
 * the queries other threads may make. Which unit follows which is decided by
 * statecharts/load_job.rl; this file feeds it STEP and publishes the result. */
#include "job.h"
#include "emel/model/tensor/job_access.h"
#include "emel/report.h"
#include "emel/io_read.h"
#include "emel/util/struct_size.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "emel_job_cancel must be async-signal-safe: lock-free atomics");

static emel_job_state state_of(int cs) {
  switch (cs) {
  case load_job_state_created: return EMEL_JOB_CREATED;
  case load_job_state_completed: return EMEL_JOB_COMPLETED;
  case load_job_state_cancelled: return EMEL_JOB_CANCELLED;
  case load_job_state_running: return EMEL_JOB_RUNNING;
  default: return EMEL_JOB_FAILED; /* a broken machine (machine.h) */
  }
}

static int finished(emel_job_state s) { return s >= EMEL_JOB_COMPLETED; }

static void *take(const emel_platform_ops *p, size_t n, size_t size, size_t align) {
  if (n == 0) n = 1;
  if (n > SIZE_MAX / size) return NULL;
  return p->alloc(p->user, n * size, align);
}

static void give(const emel_platform_ops *p, void *ptr, size_t n, size_t size) {
  if (ptr) p->free(p->user, ptr, (n ? n : 1) * size);
}

static void free_job(emel_job *job) {
  load_job_ctx *m = &job->m;
  const emel_platform_ops p = m->platform;
  /* A half-moved tensor's buffer or mapping, left by a job whose machine broke mid-tensor. */
  if (m->buffer) p.free(p.user, m->buffer, m->buffer_size);
  emel_tensors_job_unreserve(m->t, m->reserved);
  if (m->has_mapping) (void)emel_io_release(m->io, m->mapping.handle, NULL);
  if (m->holding) {
    for (uint32_t i = 0; i < m->count; i++) (void)emel_tensors_job_hold(m->t, m->order[i], 0);
  }
  give(&p, m->order, m->count, sizeof *m->order);
  give(&p, m->pos_of, m->table_count, sizeof *m->pos_of);
  give(&p, m->views, m->count, sizeof *m->views);
  give(&p, m->slices, m->count, sizeof *m->slices);
  give(&p, m->statuses, m->count, sizeof *m->statuses);
  give(&p, (void *)m->done, m->count, sizeof *m->done);
  p.free(p.user, job, sizeof *job);
}

/* File order: by file, then offset. */
typedef struct sort_key {
  uint32_t file, index;
  uint64_t offset;
} sort_key;

static int by_file_order(const void *a, const void *b) {
  const sort_key *x = a, *y = b;
  if (x->file != y->file) return x->file < y->file ? -1 : 1;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  return (x->index > y->index) - (x->index < y->index);
}

static emel_error tensor_refusal(emel_tensors *t, uint32_t index, emel_status code) {
  emel_error e = {.code = code, .tensor = index + 1};
  emel_tensor_info info;
  if (code != EMEL_TENSOR_UNKNOWN && emel_tensors_info(t, index, &info) && info.span.size > 0)
    e.file = info.span.file_index + 1;
  if (code == EMEL_TENSOR_UNKNOWN) e.tensor = 0; /* names no tensor of the table */
  return e;
}

/* Order, holds and checks; `e` is the first refusal. */
static emel_error fill(load_job_ctx *m, const emel_job_config *c) {
  for (uint32_t i = 0; i < m->table_count; i++) m->pos_of[i] = 0;
  for (uint32_t k = 0; k < m->count; k++) {
    const uint32_t index = c->indices ? c->indices[k] : k;
    if (index >= m->table_count) return tensor_refusal(m->t, index, EMEL_TENSOR_UNKNOWN);
    if (m->pos_of[index]) return (emel_error){.code = EMEL_INVALID_ARGUMENT, .detail = "emel_job_config.indices",
                                              .tensor = index + 1};
    m->pos_of[index] = k + 1; /* for now: marks membership */
    switch (emel_tensors_state(m->t, index)) {
    case EMEL_TENSOR_BOUND:
    case EMEL_TENSOR_EVICTED: break;
    case EMEL_TENSOR_UNBOUND: return tensor_refusal(m->t, index, EMEL_TENSOR_NOT_BOUND);
    case EMEL_TENSOR_RESIDENT: return tensor_refusal(m->t, index, EMEL_TENSOR_ALREADY_RESIDENT);
    default: return tensor_refusal(m->t, index, EMEL_INTERNAL);
    }
  }
  for (size_t k = 0; k < c->priority_count; k++)
    if (!c->priority || c->priority[k] >= m->table_count || !m->pos_of[c->priority[k]])
      return (emel_error){.code = EMEL_INVALID_ARGUMENT, .detail = "emel_job_config.priority"};
  sort_key *keys = take(&m->platform, m->count, sizeof *keys, _Alignof(sort_key));
  if (!keys) return (emel_error){.code = EMEL_OUT_OF_MEMORY};
  /* Priority first, in its order (a repeat counts once); then file order. */
  uint32_t placed = 0;
  for (size_t k = 0; k < c->priority_count; k++) {
    const uint32_t index = c->priority[k];
    if (m->pos_of[index] == UINT32_MAX) continue;
    m->order[placed++] = index;
    m->pos_of[index] = UINT32_MAX;
  }
  uint32_t rest = 0;
  for (uint32_t k = 0; k < m->count; k++) {
    const uint32_t index = c->indices ? c->indices[k] : k;
    if (m->pos_of[index] == UINT32_MAX) continue;
    emel_tensor_info info;
    emel_tensors_info(m->t, index, &info);
    keys[rest++] = (sort_key){.file = info.span.file_index, .index = index, .offset = info.span.offset};
  }
  qsort(keys, rest, sizeof *keys, by_file_order);
  for (uint32_t k = 0; k < rest; k++) m->order[placed++] = keys[k].index;
  give(&m->platform, keys, m->count, sizeof *keys);
  for (uint32_t i = 0; i < m->table_count; i++) m->pos_of[i] = 0;
  for (uint32_t pos = 0; pos < m->count; pos++) {
    m->pos_of[m->order[pos]] = pos + 1;
    atomic_init(&m->done[pos], JOB_PENDING);
    m->statuses[pos] = EMEL_OK;
    /* The bytes it loads: its shard's slice. One that cannot be cut (its
     * type and dims disagree with its size) is left to the table, which
     * refuses it with INVALID_SHARD when the job reaches it. */
    emel_tensor_info info;
    emel_tensors_info(m->t, m->order[pos], &info);
    if (emel_tensor_shard_cut(&info.span, m->options.shard_rank, m->options.shard_count, &m->slices[pos], NULL) !=
        EMEL_OK)
      m->slices[pos] = (emel_tensor_slice){0};
    m->bytes_total += emel_job_size_at(m, pos);
  }
  /* Hold last: a refusal above leaves no tensor held. */
  for (uint32_t pos = 0; pos < m->count; pos++) {
    if (emel_tensors_job_hold(m->t, m->order[pos], 1) != EMEL_OK) {
      for (uint32_t q = 0; q < pos; q++) (void)emel_tensors_job_hold(m->t, m->order[q], 0);
      return tensor_refusal(m->t, m->order[pos], EMEL_TENSOR_BUSY);
    }
  }
  m->holding = 1;
  return (emel_error){.code = EMEL_OK};
}

emel_status emel_job_create(emel_job **out, emel_tensors *t, const emel_job_config *given, emel_error *err) {
  if (!out || !t) return emel_report(err, EMEL_INVALID_ARGUMENT);
  *out = NULL;
  emel_job_config c;
  if (emel_struct_take(&c, sizeof c, given) != EMEL_OK)
    return emel_report_detail(err, EMEL_STRUCT_SIZE_UNKNOWN, "emel_job_config.struct_size");
  emel_load_options options;
  if (emel_struct_take(&options, sizeof options, c.options) != EMEL_OK)
    return emel_report_detail(err, EMEL_STRUCT_SIZE_UNKNOWN, "emel_load_options.struct_size");
  if (!c.options) options.strategy = EMEL_STRATEGY_READ;
  if (options.target) return emel_report_detail(err, EMEL_INVALID_ARGUMENT, "emel_load_options.target");
  /* A rank outside the count would fail every tensor alike: refused here, as a load would name it. */
  if (options.shard_count ? options.shard_rank >= options.shard_count : options.shard_rank != 0)
    return emel_report_detail(err, EMEL_INVALID_SHARD, "emel_load_options.shard_rank");
  if (c.threads > EMEL_IO_READ_MAX_THREADS)
    return emel_report_detail(err, EMEL_INVALID_ARGUMENT, "emel_job_config.threads");
  const uint32_t table_count = emel_tensors_count(t);
  const size_t count = c.indices ? c.count : table_count;
  if (count > table_count) return emel_report_detail(err, EMEL_INVALID_ARGUMENT, "emel_job_config.count");
  const emel_platform_ops *p = emel_tensors_platform(t);
  emel_job *job = p->alloc(p->user, sizeof *job, _Alignof(emel_job));
  if (!job) return emel_report(err, EMEL_OUT_OF_MEMORY);
  memset(job, 0, sizeof *job);
  load_job_ctx *m = &job->m;
  emel_machine_init(&m->core, &emel_load_job_desc);
  m->t = t;
  m->io = emel_tensors_io(t);
  m->platform = *p;
  m->options = options;
  emel_job_wrap_consumer(m);
  m->flags = c.flags;
  m->chunk = c.chunk_bytes ? c.chunk_bytes : EMEL_JOB_DEFAULT_CHUNK;
  m->threads = c.threads;
  m->on_ready = c.on_ready;
  m->on_progress = c.on_progress;
  m->interval_ns = (uint64_t)c.progress_interval_ms * 1000000u;
  m->user = c.user;
  m->count = (uint32_t)count;
  m->table_count = table_count;
  atomic_init(&m->cancel, 0);
  atomic_init(&m->state, EMEL_JOB_CREATED);
  atomic_init(&m->fd, -1);
  atomic_init(&m->fd_watched, 0);
  atomic_init(&m->bytes_done, 0);
  atomic_init(&m->tensors_done, 0);
  atomic_init(&m->tensors_failed, 0);
  atomic_init(&m->begun_ns, 0);
  atomic_init(&m->ended_ns, 0);
  atomic_init(&m->rate, 0);
  m->order = take(p, count, sizeof *m->order, _Alignof(uint32_t));
  m->pos_of = take(p, table_count, sizeof *m->pos_of, _Alignof(uint32_t));
  m->views = take(p, count, sizeof *m->views, _Alignof(emel_tensor_view));
  m->slices = take(p, count, sizeof *m->slices, _Alignof(emel_tensor_slice));
  m->statuses = take(p, count, sizeof *m->statuses, _Alignof(emel_status));
  m->done = take(p, count, sizeof *m->done, _Alignof(atomic_uchar));
  emel_error e = {.code = EMEL_OUT_OF_MEMORY};
  if (m->order && m->pos_of && m->views && m->slices && m->statuses && m->done) e = fill(m, &c);
  if (e.code != EMEL_OK) {
    free_job(job); /* fill holds nothing when it refuses */
    return emel_report_error(err, e);
  }
  *out = job;
  return emel_report(err, EMEL_OK);
}

static void fill_progress(load_job_ctx *m, emel_job_progress *out) {
  if (!out || out->struct_size < sizeof(size_t)) return;
  emel_job_progress p = {.struct_size = out->struct_size};
  p.state = (emel_job_state)atomic_load(&m->state);
  p.bytes_done = atomic_load(&m->bytes_done);
  p.bytes_total = m->bytes_total;
  p.tensors_done = atomic_load(&m->tensors_done);
  p.tensors_failed = atomic_load(&m->tensors_failed);
  p.tensors_total = m->count;
  const uint64_t begun = atomic_load(&m->begun_ns);
  const uint64_t ended = atomic_load(&m->ended_ns);
  if (begun) {
    const uint64_t until = ended ? ended : m->platform.clock_ns(m->platform.user);
    p.elapsed_ns = until > begun ? until - begun : 0;
  }
  /* While it runs: the rate of the last window; once finished (or before a
   * window closed): bytes over the whole elapsed time. */
  const uint64_t rate = atomic_load(&m->rate);
  if (!ended && rate) p.bytes_per_second = (double)rate;
  else if (p.elapsed_ns > 0) p.bytes_per_second = (double)p.bytes_done * 1e9 / (double)p.elapsed_ns;
  memcpy(out, &p, out->struct_size < sizeof p ? out->struct_size : sizeof p);
}

/* One STEP through the machine, then what it changed is published: the
 * state for other threads, the event descriptor, the progress callback. */
enum { RATE_WINDOW_NS = 250000000 }; /* transfer time per throughput sample */

/* The current throughput: bytes over transfer time (a cooperative caller's
 * time between steps is not the job's), sampled every RATE_WINDOW_NS of it. */
static void sample_rate(load_job_ctx *m, uint64_t spent_ns) {
  m->busy_ns += spent_ns;
  const uint64_t bytes = atomic_load(&m->bytes_done);
  const uint64_t busy = m->busy_ns - m->window_busy_ns;
  if (busy < RATE_WINDOW_NS) return;
  const uint64_t moved = bytes > m->window_bytes ? bytes - m->window_bytes : 0;
  atomic_store(&m->rate, (uint64_t)((double)moved * 1e9 / (double)busy));
  m->window_busy_ns = m->busy_ns;
  m->window_bytes = bytes;
}

/* Inside a unit (a staged job's window of a long tensor): on_progress once its
 * interval has passed, so a callback-only caller sees a 1 GiB tensor move. With
 * no interval (0: after every unit) only the step's own call is made. */
/* on_progress with the job's figures at `now`, in state `st`. */
static void call_progress(load_job_ctx *m, uint64_t now, emel_job_state st) {
  m->last_progress_ns = now;
  emel_job_progress p = EMEL_JOB_PROGRESS_INIT();
  fill_progress(m, &p);
  p.state = st;
  m->on_progress(m->user, &p);
}

void emel_job_progress_mid_unit(load_job_ctx *m) {
  if (!m->on_progress || m->interval_ns == 0) return;
  const uint64_t now = m->platform.clock_ns(m->platform.user);
  if (now - m->last_progress_ns < m->interval_ns) return;
  call_progress(m, now, EMEL_JOB_RUNNING); /* the state is published after the step; running meanwhile */
}

static emel_status dispatch_step(load_job_ctx *m) {
  m->status = EMEL_OK;
  const uint64_t before = m->platform.clock_ns(m->platform.user);
  emel_status s = emel_machine_dispatch(&m->core, &emel_load_job_desc, m, LOAD_JOB_EV_STEP);
  const uint64_t after = m->platform.clock_ns(m->platform.user);
  sample_rate(m, after > before ? after - before : 0);
  const emel_job_state st = state_of(m->core.cs);
  if (s != EMEL_OK && m->result.code == EMEL_OK) m->result = (emel_error){.code = s};
  atomic_store_explicit(&m->state, st, memory_order_release);
  /* The end always wakes the descriptor; a unit only when the caller watches
   * it (emel_job_fd): emel_job_wait waits for the end, and a waiter woken per
   * unit takes a core from the lanes (measured: ~5 % of a 2-core load). */
  const int fd = atomic_load(&m->fd);
  if (fd >= 0 && (finished(st) || atomic_load_explicit(&m->fd_watched, memory_order_relaxed)))
    (void)m->platform.event_signal(m->platform.user, fd);
  if (m->on_progress && (finished(st) || after - m->last_progress_ns >= m->interval_ns || !m->last_progress_ns))
    call_progress(m, after, st);
  return s != EMEL_OK ? s : m->status;
}

emel_status emel_job_step(emel_job *job, uint64_t budget_bytes, emel_job_progress *progress, emel_error *err) {
  if (!job) return emel_report(err, EMEL_INVALID_ARGUMENT);
  load_job_ctx *m = &job->m;
  if (m->started) return emel_report_detail(err, EMEL_INVALID_ARGUMENT, "emel_job_step: the job runs in the background");
  m->budget = budget_bytes;
  m->moved = 0;
  emel_status s;
  do {
    s = dispatch_step(m);
    /* Once every unit is done, the step that finds none left costs nothing:
     * taken here, so the step that moved the last bytes reports the end. */
  } while (s == EMEL_OK && !finished(state_of(m->core.cs)) && (m->moved < m->budget || m->next >= m->count));
  fill_progress(m, progress);
  if (s == EMEL_OK && finished(state_of(m->core.cs))) s = m->result.code;
  return emel_report_error(err, s == m->result.code ? m->result : (emel_error){.code = s});
}

static void *run(void *arg) {
  load_job_ctx *m = arg;
  m->budget = UINT64_MAX;
  m->moved = 0;
  while (!finished(state_of(m->core.cs))) {
    if (dispatch_step(m) != EMEL_OK && !finished(state_of(m->core.cs))) break;
  }
  return NULL;
}

emel_status emel_job_start(emel_job *job, emel_error *err) {
  if (!job) return emel_report(err, EMEL_INVALID_ARGUMENT);
  load_job_ctx *m = &job->m;
  if (m->started || finished(state_of(m->core.cs)))
    return emel_report_detail(err, EMEL_INVALID_ARGUMENT, "emel_job_start: started or finished already");
  const int fd = m->platform.event_open(m->platform.user);
  if (fd < 0)
    return emel_report_error(err, (emel_error){.code = EMEL_JOB_START_FAILED, .os_errno = -fd,
                                               .detail = "emel_platform_ops.event_open"});
  atomic_store(&m->fd, fd);
  m->started = 1;
  const int r = m->platform.thread_start(m->platform.user, run, m, &m->thread);
  if (r != 0) {
    m->started = 0;
    atomic_store(&m->fd, -1);
    (void)m->platform.event_close(m->platform.user, fd);
    return emel_report_error(err, (emel_error){.code = EMEL_JOB_START_FAILED, .os_errno = -r,
                                               .detail = "emel_platform_ops.thread_start"});
  }
  return emel_report(err, EMEL_OK);
}

emel_job_state emel_job_poll(emel_job *job, emel_job_progress *progress) {
  if (!job) return EMEL_JOB_FAILED;
  fill_progress(&job->m, progress);
  return (emel_job_state)atomic_load_explicit(&job->m.state, memory_order_acquire);
}

enum { WAIT_SLICE_MS = 100 };

emel_job_state emel_job_wait(emel_job *job, int timeout_ms) {
  if (!job) return EMEL_JOB_FAILED;
  load_job_ctx *m = &job->m;
  const uint64_t start = m->platform.clock_ns(m->platform.user);
  for (;;) {
    const emel_job_state st = (emel_job_state)atomic_load_explicit(&m->state, memory_order_acquire);
    const int fd = atomic_load(&m->fd);
    if (finished(st) || !m->started || fd < 0) return st;
    /* Never longer than a slice: a wakeup lost (an event_signal that failed)
     * costs a slice, not a waiter blocked forever on a finished job. */
    int left = WAIT_SLICE_MS;
    if (timeout_ms >= 0) {
      const uint64_t spent = (m->platform.clock_ns(m->platform.user) - start) / 1000000u;
      if (spent >= (uint64_t)timeout_ms) return st;
      if ((uint64_t)timeout_ms - spent < (uint64_t)left) left = (int)((uint64_t)timeout_ms - spent);
    }
    /* A failed wait (other than EINTR) is no answer: the state is looked at
     * anyway, so the slice is slept without the descriptor (no fd: poll(2)
     * just sleeps) and the job looked at again, until it ends or time is up. */
    const int r = m->platform.event_wait(m->platform.user, fd, left);
    if (r < 0 && r != -EINTR) (void)m->platform.event_wait(m->platform.user, -1, left);
  }
}

int emel_job_fd(const emel_job *job) {
  if (!job) return -1;
  /* The job is the caller's (allocated, never const itself): marking it watched is allowed. */
  atomic_store_explicit(&((emel_job *)job)->m.fd_watched, 1, memory_order_relaxed);
  return atomic_load(&job->m.fd);
}

void emel_job_cancel(emel_job *job) {
  if (!job) return;
  atomic_store(&job->m.cancel, 1);
  const int fd = atomic_load(&job->m.fd);
  if (fd >= 0) (void)job->m.platform.event_signal(job->m.platform.user, fd);
}

static uint32_t position(const emel_job *job, uint32_t index) {
  return job && index < job->m.table_count ? job->m.pos_of[index] : 0;
}

int emel_job_tensor_ready(const emel_job *job, uint32_t index) {
  const uint32_t pos = position(job, index);
  return pos && atomic_load_explicit(&job->m.done[pos - 1], memory_order_acquire) == JOB_READY;
}

emel_status emel_job_view(const emel_job *job, uint32_t index, emel_tensor_view *view, emel_error *err) {
  if (!job || !view) return emel_report(err, EMEL_INVALID_ARGUMENT);
  const uint32_t pos = position(job, index);
  if (!pos) return emel_report(err, EMEL_TENSOR_UNKNOWN);
  emel_status s = EMEL_TENSOR_NOT_RESIDENT;
  switch (atomic_load_explicit(&job->m.done[pos - 1], memory_order_acquire)) {
  case JOB_READY:
    *view = job->m.views[pos - 1];
    return emel_report(err, EMEL_OK);
  case JOB_FAILED: s = job->m.statuses[pos - 1]; break;
  case JOB_CANCELLED: s = EMEL_CANCELLED; break;
  default: break;
  }
  return emel_report_error(err, (emel_error){.code = s, .tensor = index + 1});
}

emel_status emel_job_result(const emel_job *job, emel_error *err) {
  if (!job) return emel_report(err, EMEL_INVALID_ARGUMENT);
  const emel_job_state st = (emel_job_state)atomic_load_explicit(&job->m.state, memory_order_acquire);
  if (!finished(st)) return emel_report(err, EMEL_OK);
  return emel_report_error(err, job->m.result);
}

void emel_job_destroy(emel_job *job) {
  if (!job) return;
  load_job_ctx *m = &job->m;
  emel_job_cancel(job);
  if (m->started) {
    (void)m->platform.thread_join(m->platform.user, m->thread);
    m->started = 0;
  }
  /* A job stopped between units sees its cancel and releases what is
   * unfinished; the caller hears of it no more (its callbacks' user may be gone). */
  m->on_ready = NULL;
  m->on_progress = NULL;
  if (!finished(state_of(m->core.cs))) (void)dispatch_step(m);
  const int fd = atomic_load(&m->fd);
  if (fd >= 0) (void)m->platform.event_close(m->platform.user, fd);
  free_job(job);
}

const char *emel_job_state_name(emel_job_state state) {
  switch (state) {
  case EMEL_JOB_CREATED: return "created";
  case EMEL_JOB_RUNNING: return "running";
  case EMEL_JOB_COMPLETED: return "completed";
  case EMEL_JOB_CANCELLED: return "cancelled";
  case EMEL_JOB_FAILED: return "failed";
  }
  return "unknown";
}

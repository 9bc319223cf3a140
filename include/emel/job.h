/* Load jobs: asynchronous, cancellable loads of a set of tensors, with
 * progress, tensor by tensor.
 *
 * A job owns a set of tensors of one table (emel_tensors, or a model's) and
 * one set of load options (a shard too: then everything below is about each
 * tensor's slice). It moves created -> running -> completed,
 * cancelled or failed (statecharts/load_job.rl), a unit of work at a time: a
 * window of whole tensors of at most a chunk's bytes, or the next chunk of a
 * tensor larger than a chunk (read: read into the tensors' final buffers in
 * parts spread over the read strategy's lanes, config.threads; mmap with
 * EMEL_LOAD_POPULATE: mapped whole, pre-faulted a chunk at a
 * time). Tensors become resident one by one, in file order
 * unless a priority list moves some to the front, and each is reported ready
 * (emel_job_tensor_ready, the on_ready callback) as soon as its bytes are in.
 *
 * Two ways to drive the same job:
 *  - cooperative: emel_job_step(job, budget_bytes, ...) does about
 *    budget_bytes of transfer on the calling thread, then returns;
 *  - background: emel_job_start(job) runs it on a thread of its own (started
 *    through the platform op thread_start; the read strategy's lanes still
 *    copy each read unit in parallel); poll with emel_job_poll, block with
 *    emel_job_wait, or watch emel_job_fd in an event loop.
 *
 * Threads. While a job runs in the background, its table (and the table's io
 * boundary, and every table on it) belongs to the job's thread: other threads
 * call only emel_job_* on it (cancel, poll, wait, fd, tensor_ready, view,
 * result) until emel_job_wait or emel_job_poll reports it finished. A
 * cooperative job runs only inside emel_job_step, on the caller's thread; in
 * between, the caller may use the table for tensors the job does not hold.
 * Either way, from creation to emel_job_destroy the job holds its tensors:
 * a load, batch load, external bind or evict of one of them from outside the
 * job is refused with EMEL_TENSOR_BUSY (emel_tensors_destroy still releases
 * them: destroy jobs before their table). emel_job_cancel may be called from
 * any thread and from a signal handler (it sets an atomic flag and signals
 * the event descriptor, nothing else). Callbacks run on the thread that drives
 * the job (the caller of emel_job_step, or the job's thread).
 *
 * Cancel: seen before the next unit, so within one chunk of work; a cancel
 * after the last unit finds none left, and the job completes. A staged
 * job's unit is whole tensors: it sees the cancel at the next window instead
 * (the job gives the strategy a wrapper of the consumer, with the caller's
 * release, user and target, that refuses the next window once cancelled), so
 * within one staging window, which may be larger than a chunk; the tensors
 * delivered wholly before it are ready, the cut one is cancelled like the rest. Afterwards
 * every tensor of the job is either resident (ready before the cancel) or
 * back to bound/evicted with EMEL_CANCELLED as its last error
 * (emel_tensors_last_error); a partly read tensor's buffer is freed.
 *
 * Failure: by default the first tensor that fails fails the job, and every
 * other tensor of the job is released (evicted, those already reported ready
 * included; their last error becomes EMEL_CANCELLED): a runtime that computes
 * on ready tensors while loading uses EMEL_JOB_CONTINUE_ON_FAILURE, with which
 * the job goes on and each failure is reported against its tensor
 * (emel_job_view, emel_tensors_last_error); the job then completes with its
 * first failure as result.
 */
#ifndef EMEL_JOB_H
#define EMEL_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "emel/api.h"
#include "emel/status.h"
#include "emel/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct emel_job emel_job;

typedef enum emel_job_state {
  EMEL_JOB_CREATED = 0,
  EMEL_JOB_RUNNING = 1,
  EMEL_JOB_COMPLETED = 2, /* every tensor done (with EMEL_JOB_CONTINUE_ON_FAILURE: or failed) */
  EMEL_JOB_CANCELLED = 3,
  EMEL_JOB_FAILED = 4
} emel_job_state;

enum {
  EMEL_JOB_CONTINUE_ON_FAILURE = 1u << 0 /* a tensor's failure is its own; the job goes on */
};

enum { EMEL_JOB_DEFAULT_CHUNK = 8u << 20 }; /* bytes per unit of work: the cancel latency */

/* What a job has done. Filled by the library up to the caller's struct_size
 * (EMEL_JOB_PROGRESS_INIT sets it), so it can grow. */
typedef struct emel_job_progress {
  size_t struct_size;
  emel_job_state state;
  uint64_t bytes_done;  /* bytes transferred into tensors that are or will be resident: read/mmap
                           pieces and staged windows the consumer accepted count as they go;
                           a tensor that fails or is cut gives them back */
  uint64_t bytes_total; /* every tensor of the job (each one's slice under a shard) */
  uint32_t tensors_done; /* ready */
  uint32_t tensors_failed;
  uint32_t tensors_total;
  uint64_t elapsed_ns;  /* since the first unit began (to the end, once finished) */
  /* The current throughput: bytes over the time spent transferring them, in
   * windows of 250 ms (a cooperative caller's time between steps is not
   * counted); before the first window closes and once finished, bytes_done
   * over elapsed_ns. 0 before the first unit. */
  double bytes_per_second;
} emel_job_progress;

#define EMEL_JOB_PROGRESS_INIT(...) EMEL_STRUCT_INIT_(emel_job_progress, __VA_ARGS__)

/* Called as each tensor becomes resident: `index` in the table, its view (the
 * same as emel_job_view's, valid as a table view is). */
typedef void (*emel_job_ready_fn)(void *user, uint32_t index, const emel_tensor_view *view);
/* Called at most once every progress_interval_ms while the job runs, and once
 * when it finishes, on the thread driving the job: after a unit, and (a staged
 * job, interval not 0) between two windows of a tensor, so a long tensor's
 * delivery is seen as it goes. */
typedef void (*emel_job_progress_fn)(void *user, const emel_job_progress *progress);

typedef struct emel_job_config {
  size_t struct_size;         /* sizeof(emel_job_config): EMEL_JOB_CONFIG_INIT sets it */
  const uint32_t *indices;    /* the job's tensors (table indices, each once); NULL: every tensor */
  size_t count;               /* entries of indices (ignored when it is NULL) */
  const emel_load_options *options; /* NULL: the read strategy, no flags; target must be NULL; a
                                       shard loads each tensor's slice */
  const uint32_t *priority;   /* tensors of the job to load first, in this order; the rest follow */
  size_t priority_count;      /* in file order (file, then offset) */
  uint64_t chunk_bytes;       /* bytes per unit of work; 0: EMEL_JOB_DEFAULT_CHUNK */
  unsigned flags;             /* EMEL_JOB_* */
  emel_job_ready_fn on_ready; /* optional */
  emel_job_progress_fn on_progress; /* optional */
  uint32_t progress_interval_ms;    /* at most one on_progress per interval; 0: after every unit */
  void *user;                 /* passed to the callbacks */
  /* Threads that transfer each read unit: the driving thread (the job's own,
   * or the caller of emel_job_step) and threads - 1 of the read strategy's
   * lanes, one per MiB of the unit at most; 1: the driving thread alone.
   * 0: the strategy's lanes (emel_io_read_config.threads, or .direct_threads
   * with EMEL_LOAD_DIRECT). At most the lanes the strategy has (the larger of
   * the two) are used; more than EMEL_IO_READ_MAX_THREADS is refused. mmap
   * units ignore it (a populate is one madvise). */
  uint32_t threads;
} emel_job_config;

#define EMEL_JOB_CONFIG_INIT(...) EMEL_STRUCT_INIT_(emel_job_config, __VA_ARGS__)

/* Creates a job over tensors of `t` (each bound or evicted, and held by no
 * other job) and holds them. Nothing is loaded yet. Refusals, each naming the
 * tensor in err->tensor where one is at fault: EMEL_TENSOR_UNKNOWN,
 * EMEL_TENSOR_NOT_BOUND, EMEL_TENSOR_ALREADY_RESIDENT, EMEL_TENSOR_BUSY,
 * EMEL_INVALID_ARGUMENT (an index twice, a priority outside the job, a
 * target buffer, threads above EMEL_IO_READ_MAX_THREADS; err->detail names
 * the member), EMEL_INVALID_SHARD (a shard rank not below its count; a tensor
 * that cannot be cut fails when the job reaches it, as a load would),
 * EMEL_STRUCT_SIZE_UNKNOWN, EMEL_OUT_OF_MEMORY. `config` may be NULL: every tensor, read strategy. */
EMEL_API emel_status emel_job_create(emel_job **out, emel_tensors *t, const emel_job_config *config, emel_error *err);

/* Cooperative driving: does units of work until about budget_bytes moved (at
 * least one unit; 0: exactly one), or the job finished. Returns EMEL_OK while
 * it runs, then its outcome (emel_job_result) on this and every later call.
 * `progress` may be NULL. EMEL_INVALID_ARGUMENT on a job started in the background. */
EMEL_API emel_status emel_job_step(emel_job *job, uint64_t budget_bytes, emel_job_progress *progress, emel_error *err);

/* Background driving: runs the rest of the job on a thread of its own.
 * EMEL_JOB_START_FAILED (with the errno) when the thread or the event
 * descriptor cannot be had: the job is then as it was (step it instead).
 * EMEL_INVALID_ARGUMENT when already started or finished. */
EMEL_API emel_status emel_job_start(emel_job *job, emel_error *err);

/* The state now, and (progress not NULL) the progress. Any thread; never blocks. */
EMEL_API emel_job_state emel_job_poll(emel_job *job, emel_job_progress *progress);

/* Blocks until the job finished or timeout_ms passed (< 0: no limit) and
 * returns its state. A job not started in the background is not waited for.
 * The state is looked at every 100 ms at least (a wakeup lost to a failed
 * event_signal costs no more); after a failed event_wait (not EINTR) the
 * waiter sleeps the slice without the descriptor and looks again. */
EMEL_API emel_job_state emel_job_wait(emel_job *job, int timeout_ms);

/* A descriptor that becomes readable after each unit of work and when the job
 * finishes (an eventfd; read it, or let emel_job_wait drain it). -1 until
 * emel_job_start. Owned by the job. Until this is first called, the units do
 * not signal it (only the end does), so a job only waited for never wakes
 * its waiter per unit. */
EMEL_API int emel_job_fd(const emel_job *job);

/* Asks the job to stop before its next unit. Any thread, async-signal-safe;
 * idempotent; no effect on a finished job. */
EMEL_API void emel_job_cancel(emel_job *job);

/* 1 when tensor `index` (of the table) is resident through this job, else 0. Any thread. */
EMEL_API int emel_job_tensor_ready(const emel_job *job, uint32_t index);

/* The view of a ready tensor. Otherwise: EMEL_TENSOR_NOT_RESIDENT (not yet),
 * its failure's code, EMEL_CANCELLED, or EMEL_TENSOR_UNKNOWN (not the job's). Any thread. */
EMEL_API emel_status emel_job_view(const emel_job *job, uint32_t index, emel_tensor_view *view, emel_error *err);

/* The outcome of a finished job: EMEL_OK (every tensor loaded), EMEL_CANCELLED
 * (a cancelled job, also one that had tolerated failures before: those stay
 * reported against their tensors), or the first failure (err: its tensor,
 * errno and file). EMEL_OK while it runs. */
EMEL_API emel_status emel_job_result(const emel_job *job, emel_error *err);

/* Cancels a running job, joins its thread, hands its tensors back to the
 * table (resident ones stay resident) and frees it. NULL is allowed. */
EMEL_API void emel_job_destroy(emel_job *job);

EMEL_API const char *emel_job_state_name(emel_job_state state);

#ifdef __cplusplus
}
#endif

#endif

/* Internals of load jobs shared by the spec, the actions and the driver. */
#ifndef EMEL_JOB_INTERNAL_H
#define EMEL_JOB_INTERNAL_H

#include <stdatomic.h>

#include "emel/io_read.h"
#include "emel/io_staged.h"
#include "emel/job.h"
#include "emel/platform.h"
#include "emel/machine/machine.h"
#include "load_job_machine.h" /* events, states, action prototypes: generated from the spec */

/* What became of each tensor of the job (load_job_ctx.done, by position). */
enum { JOB_PENDING = 0, JOB_READY = 1, JOB_FAILED = 2, JOB_CANCELLED = 3 };

/* Read units go to the boundary in parts, a few per lane and at least
 * JOB_PART_MIN bytes (at most JOB_PARTS lanes), so the read strategy's lanes
 * share even a single tensor. */
enum { JOB_PARTS = 16, JOB_PART_MIN = 1u << 20 };
enum { JOB_MAX_REQUESTS = EMEL_TENSOR_BATCH_WINDOW + JOB_PARTS * EMEL_IO_READ_RUNS_PER_LANE };

/* The job is the machine's context: it rests between units with its cursor. */
struct load_job_ctx {
  emel_machine core;
  emel_tensors *t;
  emel_io *io;
  emel_platform_ops platform; /* the table's */
  emel_load_options options;
  unsigned flags;
  uint64_t chunk;
  uint32_t threads;       /* lanes of the job's read units (emel_job_config.threads); 0: the strategy's */
  emel_job_ready_fn on_ready;
  emel_job_progress_fn on_progress;
  uint64_t interval_ns;
  void *user;
  /* the tensors, by position in load order */
  uint32_t count;
  uint32_t *order;        /* table index of each position */
  uint32_t table_count;
  uint32_t *pos_of;       /* table index -> position + 1; 0: not the job's */
  emel_tensor_view *views;
  emel_tensor_slice *slices; /* the bytes each position loads: its shard's slice, or the whole span
                                (size 0: empty or not cut; such a tensor goes through the table) */
  emel_status *statuses;  /* a failed tensor's code (written before done[] says so) */
  atomic_uchar *done;     /* JOB_* */
  uint64_t bytes_total;
  /* the cursor: positions before `next` are done */
  uint32_t next;
  uint32_t unit_count;    /* whole tensors in the current unit (0: a piece of `next`) */
  uint64_t unit_bytes;
  uint64_t piece_offset;  /* bytes of tensor `next` already read into `buffer` */
  uint64_t piece_len;
  void *buffer;           /* read: tensor `next`'s final buffer while it is read in pieces */
  size_t buffer_size;
  uint64_t reserved;      /* budget bytes the table reserved for `buffer` (job_access.h) */
  emel_io_result mapping; /* mmap: tensor `next`'s residency while its pages are populated in pieces */
  int has_mapping;
  emel_error unit_error;  /* a piece's failure */
  /* Staged: the caller's consumer, and the wrapper the strategy is given in
   * its place (options.consumer), which refuses the next window once the job
   * is cancelled; cut says it did, during the current unit, to tensor cut_tensor. */
  emel_staged_consumer consumer, wrapper;
  int cut;
  uint32_t cut_tensor;
  /* Bytes of each unit member the consumer accepted during the current unit
   * (staged; 0 otherwise): counted in bytes_done as they go by, so the member's
   * end adds only the rest (ready) or takes them back (failed, cut). */
  uint64_t unit_streamed[EMEL_TENSOR_BATCH_WINDOW];
  /* A read unit as parts the boundary takes as one batch, so the read
   * strategy's lanes copy it in parallel: each part's window member, and
   * each member's final buffer while the unit is read. */
  emel_io_request parts[JOB_MAX_REQUESTS];
  emel_io_result part_results[JOB_MAX_REQUESTS];
  uint32_t part_member[JOB_MAX_REQUESTS];
  void *unit_buffers[EMEL_TENSOR_BATCH_WINDOW];
  size_t unit_buffer_sizes[EMEL_TENSOR_BATCH_WINDOW];
  emel_status unit_statuses[EMEL_TENSOR_BATCH_WINDOW];
  /* the current emel_job_step's budget (UINT64_MAX in the background) */
  uint64_t budget, moved;
  /* outcome */
  emel_error result;      /* first failure, or CANCELLED; code OK otherwise */
  emel_status status;     /* the current request's */
  /* what other threads read */
  atomic_int cancel;
  atomic_int state;       /* emel_job_state */
  atomic_int fd;
  atomic_int fd_watched;  /* emel_job_fd was asked: progress wakes the descriptor too */
  atomic_uint_fast64_t bytes_done;
  atomic_uint tensors_done, tensors_failed;
  atomic_uint_fast64_t begun_ns, ended_ns;
  atomic_uint_fast64_t rate; /* bytes per second over the last window of transfer time; 0: none yet */
  uint64_t busy_ns;          /* time spent in units (not between emel_job_step calls) */
  uint64_t window_busy_ns, window_bytes;
  uint64_t last_progress_ns;
  int holding; /* the table marks the tensors held */
  int started;
  uintptr_t thread;
};

struct emel_job {
  load_job_ctx m;
};

/* Staged options: the caller's consumer is wrapped (see load_job_ctx.wrapper). */
void emel_job_wrap_consumer(load_job_ctx *m);
/* on_progress from inside a unit, once its interval has passed (job.c). */
void emel_job_progress_mid_unit(load_job_ctx *m);

/* The bytes position `pos` loads (its slice's). */
uint64_t emel_job_size_at(const load_job_ctx *m, uint32_t pos);

#endif

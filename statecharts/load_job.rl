/* A load job: a set of tensors of one table made resident under one set of
 * options, a unit of work at a time, by whoever drives it (emel_job_step on
 * the caller's thread, or the job's own thread after emel_job_start).
 *
 * created -> running (resting between units) -> completed | cancelled | failed.
 * STEP does one unit: pick_unit chooses it (a window of whole tensors, or the
 * next chunk of a tensor larger than a chunk) or sees the cancel flag or the
 * end; transfer_unit moves its bytes through the tensor table and io boundary
 * (the strategies know nothing of jobs). A cancel is seen at the next pick, so
 * within one chunk of work; a staged unit (whole tensors, the ring bounding
 * what it holds) also sees it at its next window, where the job's wrapper of
 * the consumer refuses the delivery: the unit ends cut (UNIT_CANCELLED), not
 * failed. A failure is judged by the job's policy: tolerated
 * (recorded against its tensor, the job goes on) or fatal (every tensor of the
 * job is released). A finished job answers STEP with its outcome.
 */
/* The tables of gen/load_job_machine.h are defined in this translation unit. */
#define EMEL_MACHINE_TABLES
#include "emel/job/job.h"

%%{
  machine load_job;
  alphtype int;
  access m->core.;

  # request
  export STEP = 1;
  # outcomes reported by actions
  export JOB_BEGUN = 2;
  export UNIT_CHOSEN = 3;
  export NO_UNITS_LEFT = 4;
  export CANCEL_SEEN = 5;
  export UNIT_LOADED = 6;
  export PIECE_LOADED = 7;
  export TENSOR_FILLED = 8;
  export UNIT_FAILED = 9;
  export FAILURE_TOLERATED = 10;
  export FAILURE_FATAL = 11;
  export UNIT_CANCELLED = 12;

  action begin_job { EMEL_REPORT(m, emel_job_begin(m)); }
  action pick_unit { EMEL_REPORT(m, emel_job_pick_unit(m)); }
  action transfer_unit { EMEL_REPORT(m, emel_job_transfer_unit(m)); }
  action publish_unit { emel_job_publish_unit(m); }
  action record_piece { emel_job_record_piece(m); }
  action adopt_buffer { emel_job_adopt_buffer(m); }
  action judge_failure { EMEL_REPORT(m, emel_job_judge_failure(m)); }
  action record_failures { emel_job_record_failures(m); }
  action release_all { emel_job_release_all(m); }
  action release_unfinished { emel_job_release_unfinished(m); }
  action settle_cut_unit { emel_job_settle_cut_unit(m); }
  action finish_job { emel_job_finish(m); }
  action report_completed { emel_job_report_completed(m); }
  action report_cancelled { emel_job_report_cancelled(m); }
  action report_failed { emel_job_report_failed(m); }

  main := (
    start: created: (
        STEP @begin_job -> beginning
    ),
    beginning: (
        JOB_BEGUN @pick_unit -> picking
    ),
    running: (
        STEP @pick_unit -> picking
    ),
    picking: (
        UNIT_CHOSEN @transfer_unit -> transferring
      | NO_UNITS_LEFT @finish_job -> completed
      | CANCEL_SEEN @release_unfinished -> cancelled
    ),
    transferring: (
        UNIT_LOADED @publish_unit -> running
      | PIECE_LOADED @record_piece -> running
      | TENSOR_FILLED @adopt_buffer -> running
      | UNIT_FAILED @judge_failure -> judging
      | UNIT_CANCELLED @settle_cut_unit @release_unfinished -> cancelled
    ),
    judging: (
        FAILURE_TOLERATED @record_failures -> running
      | FAILURE_FATAL @release_all -> failed
    ),
    completed: (
        STEP @report_completed -> completed
    ),
    cancelled: (
        STEP @report_cancelled -> cancelled
    ),
    failed: (
        STEP @report_failed -> failed
    )
  );
}%%

static void load_job_exec(void *ctx, int event) {
  load_job_ctx *m = ctx;
  const int *p = &event;
  const int *pe = p + 1;
EMEL_GENERATED_EXEC_BEGIN
  %% write exec;
EMEL_GENERATED_EXEC_END
}

const emel_machine_desc emel_load_job_desc = EMEL_MACHINE_DESC(load_job);

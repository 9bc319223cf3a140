/* Internals of the read strategy shared by the spec, the actions and the
 * strategy entry points (read.c). */
#ifndef EMEL_IO_READ_INTERNAL_H
#define EMEL_IO_READ_INTERNAL_H

#include <stdatomic.h>

#include "emel/io.h"
#include "emel/io_strategy.h"
#include "emel/io_read.h"
#include "emel/machine/machine.h"
#include "emel/io/ring/ring.h"
#include "io_read_machine.h" /* events, states, action prototypes: generated from the spec */

enum read_mode { READ_BUFFERED = 0, READ_DIRECT = 1 };

enum read_engine { ENGINE_PREAD = 0, ENGINE_RING = 1 };

typedef struct io_read_ctx io_read_ctx;

enum read_slot_state { SLOT_FREE = 0, SLOT_RESERVED = 1, SLOT_LIVE = 2 };

/* One residency of the fixed pool. Reserved while its request is prepared
 * and transferred, live once granted, free after release. */
typedef struct read_slot {
  uint32_t generation;
  uint32_t next_free;
  int state;
  void *base;        /* owned allocation (NULL for external storage) */
  size_t alloc_size; /* bytes asked of ops.alloc */
  void *data;        /* first byte of the span (inside base, or the caller's target) */
  uint64_t size;
} read_slot;

/* What the strategy keeps per model file: one descriptor per access mode
 * and what the file was when the first of them was opened (the expectation,
 * when the boundary has one). Every kept descriptor was checked against it. */
typedef struct read_file {
  int fd[2];          /* by read_mode; -1 until opened */
  uint64_t size;      /* seen.size */
  int size_known;     /* seen is set: some descriptor is open */
  emel_file_identity seen;
  int direct_refused; /* O_DIRECT open failed with EINVAL: serve direct loads buffered */
} read_file;

/* One request on its way: filled by the preparation, consumed by the run. */
typedef struct read_member {
  const emel_io_request *request;
  emel_io_result *result;
  uint32_t slot;
  int mode;
  int fd;
  void *data;
  int slack; /* owned direct buffer: the blocks around the span are ours, so reads need no bounce */
  size_t lower; /* bytes the data moves down after a direct transfer (see emel_read_place_data) */
} read_member;

typedef struct io_read io_read;

/* What one thread of a batch transfer owns: its scratch and its counters
 * (merged into the strategy's once the window's lanes are all done). Lane 0 is the calling thread. */
typedef struct read_lane {
  io_read *self;
  uint32_t index;
  unsigned char *bounce;      /* one block, block-aligned: direct head/tail */
  unsigned char *gap_scratch; /* EMEL_IO_READ_MAX_GAP bytes: padding between coalesced spans */
  emel_io_read_stats stats;   /* transfer counters of this lane's runs */
  uint64_t load;              /* bytes assigned in the current window */
  /* Lanes 1..: the thread serving the lane. A parked worker (`running`) is
   * started at the first window that gives the lane work, woken through
   * `event` for each window it has work in and joined at destroy; where no
   * events can be had, a thread of the window alone (`transient`) is started
   * and joined as the window ends. Fields the calling thread owns, except
   * `gen` (bumped by the caller, release, once the window is published) and
   * `seen` (the worker's: the last generation it transferred). */
  uintptr_t thread;
  int running;                /* a parked worker thread serves this lane (joined at destroy) */
  int transient;              /* this window: a thread of its own, joined at the window's end */
  int event;                  /* wakes the parked worker; -1: not open */
  atomic_uint gen;            /* windows given to the lane's worker */
  atomic_int state;           /* LANE_PARKED, LANE_CLAIMED (a window is being given) or LANE_RETIRED */
  unsigned seen;              /* worker only (set before its start) */
  /* The lane's ring (one thread at a time uses a lane, so it needs no lock):
   * its circle is in file order, the head the read at the transfer's
   * position, each read's owner the transfer it belongs to (the lane's next
   * runs are read ahead); a gap between coalesced spans is an entry DONE at
   * once, read by no one. fill_at..fill_end is what is not yet asked for.
   * Between transfers nothing is in flight. */
  emel_ring ring;               /* ring_depth requests */
  const io_read_ctx *fill_run;  /* the transfer whose reads are being made (this one or a later one of the lane) */
  uint64_t fill_at, fill_end;
  size_t fill_member;           /* buffered: the run member holding fill_at (or the next one) */
  /* The runs the lane took from the window's counter: a chain through
   * io_read_ctx.lane_next from the run being transferred to `last_taken`.
   * The read-ahead takes the lane's next run from the counter before making
   * any read into it (emel_read_take_run), so a run is read by one lane only;
   * `taken_ahead` is the first of them not yet transferred (transfer_lane
   * transfers it next). Reset at each window. */
  io_read_ctx *last_taken;
  io_read_ctx *taken_ahead;
} read_lane;

struct io_read {
  emel_platform_ops platform;
  emel_io *io;
  const emel_io_files *files;
  read_file *file_state;
  uint32_t file_capacity;
  read_slot *slots;
  uint32_t slot_capacity;
  uint32_t free_head; /* slot index + 1; 0: pool exhausted */
  size_t live;
  size_t chunk_size;
  size_t direct_chunk; /* chunk_size rounded down to whole blocks (at least one) */
  size_t alignment;
  size_t huge_page;   /* owned buffers at least this large: aligned to it and huge-page advised */
  size_t block;       /* direct I/O alignment of offsets, lengths and memory: the page size */
  size_t min_parallel; /* bytes per thread below which a window is not split */
  uint32_t ring_depth;  /* reads in flight per lane ring; 0: no ring (EMEL_IO_READ_NO_RING) */
  size_t ring_request;  /* bytes per buffered ring read */
  size_t ring_direct_request; /* the same in whole blocks (direct) */
  read_lane *lanes;    /* lane_count lanes; lane 0 is the calling thread's */
  uint32_t lane_count;  /* the larger of copy_lanes and direct_lanes */
  uint32_t copy_lanes;  /* lanes of a buffered window (config.threads) */
  uint32_t direct_lanes; /* lanes of a window with direct runs (config.direct_threads) */
  uint32_t forced_lanes; /* a load job's choice for its batches (lanes.h); 0: lanes_for decides */
  read_member *batch;  /* EMEL_IO_READ_BATCH_WINDOW members, sorted by (file, offset) */
  io_read_ctx *runs;   /* EMEL_IO_READ_BATCH_WINDOW run machines of the current window */
  uint32_t *run_lane;  /* the runs, largest first: the order lanes take them in (by next_run) */
  atomic_size_t next_run; /* the next of run_lane a lane takes (lanes pull runs, so a
                             lane that starts late on a busy machine takes fewer) */
  size_t run_count;
  /* The parked lanes' handshake (read.c transfer_window): the caller holds
   * one count of `pending` while it hands the window out and adds one per
   * worker woken; each worker takes its count off when its share is done
   * (acq_rel), and the one that brings it to 0 signals `done_event`. */
  atomic_uint pending;
  atomic_int quit;    /* destroy: parked workers return (seen after any wait) */
  int done_event;     /* the caller waits on it for pending to reach 0; -1: not open */
  emel_io_read_stats stats;
  int broken; /* an action defect broke a machine of this strategy: every request is EMEL_INTERNAL */
};

/* The context of one dispatch: on the caller's stack for one request, or one
 * of self->runs for a batch run (TRANSFER_RUN on its lane, then SETTLE_RUN on
 * the calling thread). */
struct io_read_ctx {
  emel_machine core;
  io_read *self;
  read_lane *lane;    /* TRANSFER_RUN: whose scratch and counters the transfer uses (set when a lane takes the run) */
  io_read_ctx *lane_next; /* the run its lane took after this one (NULL: none yet) */
  /* PREPARE (then READ_NOW): the member being prepared */
  read_member *member;
  /* TRANSFER_RUN: members in file order, all of one file and one mode */
  read_member *run;
  size_t run_count;
  uint64_t run_start, run_end;
  uint64_t done;      /* bytes of [run_start, run_end) transferred */
  size_t cursor;      /* first member not yet wholly transferred */
  uint64_t last_len;  /* bytes the last chunk asked for */
  int64_t last_got;   /* what it returned (or -errno) */
  uint32_t retries;   /* consecutive interrupted reads */
  int engine;         /* enum read_engine of this transfer */
  /* RELEASE */
  emel_io_handle handle;
  /* outcome of the request */
  emel_error error;
};

/* The next run of the window for `lane`, taken from the counter (each run
 * once): chained after the lane's last taken run, its lane set; NULL when
 * every run is taken. On the lane's thread (read.c). */
io_read_ctx *emel_read_take_run(read_lane *lane);

#endif

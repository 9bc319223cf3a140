/* Internals of the read strategy shared by the spec, the actions and the
 * strategy entry points (read.c). */
#ifndef EMEL_IO_READ_INTERNAL_H
#define EMEL_IO_READ_INTERNAL_H

#include "emel/io.h"
#include "emel/io_strategy.h"
#include "emel/io_read.h"
#include "emel/machine/machine.h"

/* Events of statecharts/io_read.rl (checked against its exports). */
enum io_read_event {
  READ_EV_ACQUIRE = 1,
  READ_EV_PREPARE = 2,
  READ_EV_TRANSFER_RUN = 3,
  READ_EV_RELEASE = 4,
  READ_EV_REQUEST_VALID = 5,
  READ_EV_REQUEST_INVALID = 6,
  READ_EV_FILE_INDEX_VALID = 7,
  READ_EV_FILE_INDEX_INVALID = 8,
  READ_EV_PATH_VALID = 9,
  READ_EV_PATH_INVALID = 10,
  READ_EV_SPAN_VALID = 11,
  READ_EV_SPAN_OVERFLOWS = 12,
  READ_EV_TARGET_FITS = 13,
  READ_EV_NO_TARGET = 14,
  READ_EV_TARGET_TOO_SMALL = 15,
  READ_EV_BUFFERED_IO = 16,
  READ_EV_DIRECT_IO = 17,
  READ_EV_DIRECT_UNALIGNED = 18,
  READ_EV_DIRECT_KNOWN_REFUSED = 19,
  READ_EV_FILE_ALREADY_OPEN = 20,
  READ_EV_FILE_OPENED = 21,
  READ_EV_DIRECT_REFUSED = 22,
  READ_EV_OPEN_FAILED = 23,
  READ_EV_FILE_UNCHANGED = 24,
  READ_EV_STAT_FAILED = 25,
  READ_EV_SPAN_INSIDE_FILE = 26,
  READ_EV_SPAN_BEYOND_EOF = 27,
  READ_EV_SLOT_RESERVED = 28,
  READ_EV_POOL_EXHAUSTED = 29,
  READ_EV_OWNED_STORAGE = 30,
  READ_EV_EXTERNAL_STORAGE = 31,
  READ_EV_STORAGE_READY = 32,
  READ_EV_ALLOC_FAILED = 33,
  READ_EV_READ_NOW = 34,
  READ_EV_READ_WITH_RUN = 35,
  READ_EV_CHUNK_READ = 36,
  READ_EV_CHUNK_SHORT = 37,
  READ_EV_CHUNK_INTERRUPTED = 38,
  READ_EV_CHUNK_END_OF_FILE = 39,
  READ_EV_CHUNK_FAILED = 40,
  READ_EV_RETRY_ALLOWED = 41,
  READ_EV_RETRIES_EXHAUSTED = 42,
  READ_EV_CHUNK_DUE = 43,
  READ_EV_TRANSFER_COMPLETE = 44,
  READ_EV_KEEP_CACHE = 45,
  READ_EV_DROP_CACHE = 46,
  READ_EV_CACHE_DROPPED = 47,
  READ_EV_CACHE_DROP_FAILED = 48,
  READ_EV_HANDLE_LIVE = 49,
  READ_EV_HANDLE_STALE = 50,
  READ_EV_HUGE_BUFFER_READY = 51,
  READ_EV_HUGE_PAGES_ADVISED = 52,
  READ_EV_HUGE_PAGE_ADVICE_REFUSED = 53,
  READ_EV_SETTLE_RUN = 54,
  READ_EV_FILE_CHANGED = 55,
  READ_EV_NOT_A_REGULAR_FILE = 56
};

enum read_mode { READ_BUFFERED = 0, READ_DIRECT = 1 };

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
} read_member;

typedef struct io_read io_read;
typedef struct io_read_ctx io_read_ctx;

/* What one thread of a batch transfer owns: its scratch and its counters
 * (merged into the strategy's after the join). Lane 0 is the calling thread. */
typedef struct read_lane {
  io_read *self;
  uint32_t index;
  unsigned char *bounce;      /* one block, block-aligned: direct head/tail */
  unsigned char *gap_scratch; /* EMEL_IO_READ_MAX_GAP bytes: padding between coalesced spans */
  emel_io_read_stats stats;   /* transfer counters of this lane's runs */
  uint64_t load;              /* bytes assigned in the current window */
  uintptr_t thread;
  int started;                /* a thread runs this lane (else the calling thread does) */
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
  read_lane *lanes;    /* lane_count lanes; lane 0 is the calling thread's */
  uint32_t lane_count;  /* the larger of copy_lanes and direct_lanes */
  uint32_t copy_lanes;  /* lanes of a buffered window (config.threads) */
  uint32_t direct_lanes; /* lanes of a window with direct runs (config.direct_threads) */
  read_member *batch;  /* EMEL_IO_READ_BATCH_WINDOW members, sorted by (file, offset) */
  io_read_ctx *runs;   /* EMEL_IO_READ_BATCH_WINDOW run machines of the current window */
  uint32_t *run_lane;  /* which lane transfers each run */
  size_t run_count;
  emel_io_read_stats stats;
};

/* The context of one dispatch: on the caller's stack for one request, or one
 * of self->runs for a batch run (TRANSFER_RUN on its lane, then SETTLE_RUN on
 * the calling thread). */
struct io_read_ctx {
  emel_machine core;
  io_read *self;
  read_lane *lane;    /* TRANSFER_RUN: whose scratch and counters the transfer uses */
  /* PREPARE / ACQUIRE: the member being prepared */
  read_member *member;
  int read_now;       /* ACQUIRE: transfer right after the preparation */
  int prepared;       /* PREPARE: the member waits for its run */
  /* TRANSFER_RUN: members in file order, all of one file and one mode */
  read_member *run;
  size_t run_count;
  uint64_t run_start, run_end;
  uint64_t done;      /* bytes of [run_start, run_end) transferred */
  size_t cursor;      /* first member not yet wholly transferred */
  uint64_t last_len;  /* bytes the last chunk asked for */
  int64_t last_got;   /* what it returned (or -errno) */
  uint32_t retries;   /* consecutive interrupted reads */
  /* RELEASE */
  emel_io_handle handle;
  /* outcome of the request */
  emel_error error;
};

extern const emel_machine_desc emel_io_read_desc;

/* validation */
int emel_read_check_request(io_read_ctx *m);
int emel_read_check_file_index(io_read_ctx *m);
int emel_read_check_path(io_read_ctx *m);
int emel_read_check_span(io_read_ctx *m);
int emel_read_check_target(io_read_ctx *m);
/* file */
int emel_read_choose_io_mode(io_read_ctx *m);
int emel_read_open_direct(io_read_ctx *m);
int emel_read_open_buffered(io_read_ctx *m);
void emel_read_count_direct_fallback(io_read_ctx *m);
void emel_read_count_direct_unaligned(io_read_ctx *m);
int emel_read_identify_file(io_read_ctx *m);
void emel_read_close_fresh_descriptor(io_read_ctx *m);
int emel_read_check_span_in_file(io_read_ctx *m);
/* storage */
int emel_read_reserve_slot(io_read_ctx *m);
int emel_read_choose_storage(io_read_ctx *m);
int emel_read_allocate_buffer(io_read_ctx *m);
int emel_read_adopt_target(io_read_ctx *m);
int emel_read_advise_huge_pages(io_read_ctx *m);
void emel_read_count_huge_page_refusal(io_read_ctx *m);
void emel_read_release_slot(io_read_ctx *m);
int emel_read_finish_preparation(io_read_ctx *m);
void emel_read_keep_member_for_its_run(io_read_ctx *m);
/* transfer */
void emel_read_start_single_run(io_read_ctx *m);
int emel_read_chunk(io_read_ctx *m);
int emel_read_advance_transfer(io_read_ctx *m);
int emel_read_check_retry_budget(io_read_ctx *m);
void emel_read_discard_run(io_read_ctx *m);
int emel_read_check_cache_policy(io_read_ctx *m);
int emel_read_drop_cache(io_read_ctx *m);
void emel_read_count_cache_drop_failure(io_read_ctx *m);
void emel_read_grant_run(io_read_ctx *m);
int emel_read_recheck_file(io_read_ctx *m);
void emel_read_forget_file(io_read_ctx *m);
/* release */
int emel_read_check_handle(io_read_ctx *m);
void emel_read_release_residency(io_read_ctx *m);
/* A refusal records its code; the errno of a failed call was kept by the call's action. */
void emel_read_refuse(io_read_ctx *m, emel_status code);

#endif

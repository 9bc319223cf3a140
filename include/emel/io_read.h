/* The read strategy: a tensor's bytes copied from the file into an owned,
 * aligned buffer (residency OWNED) or into caller storage (EXTERNAL).
 *
 * For deployments where mapping is wrong: network filesystems, unified-memory
 * machines (mapped pages plus a device copy would double memory), files about
 * to be replaced. Control flow is statecharts/io_read.rl.
 *
 * - One open per model file and access mode: descriptors and the file's
 *   identity (size, device, inode, modification time) are cached per file
 *   index until the boundary is destroyed, or until the file is found changed.
 * - Files that change: a fresh descriptor whose file is not the one expected
 *   (emel_io_expect_file) is closed and the load refused with
 *   EMEL_FILE_CHANGED before any read; after each run's transfer, and at an
 *   early end of file, the descriptor is fstat'ed again and a file truncated
 *   or rewritten in place fails the run with EMEL_FILE_CHANGED (its
 *   descriptors are closed on settlement). A file renamed over after it was
 *   opened keeps serving the opened (indexed) inode.
 * - Only regular files: a FIFO, directory, device or socket is refused with
 *   EMEL_NOT_A_REGULAR_FILE when opened, before any read (opening never blocks).
 * - Transfers are a loop of chunks straight into the destination; no second
 *   buffer except a one-page aligned bounce for the unaligned head and tail of
 *   a direct (O_DIRECT) read into a caller's buffer, and a small scratch for
 *   padding gaps of a coalesced batch read with preadv.
 * - The ring engine: each lane has a ring (platform ops ring_*, io_uring by
 *   default) keeping ring_depth reads of ring_request bytes in flight, into
 *   its current run's buffers and ahead into its next runs' (runs it took
 *   from the window's counter before reading into them); a chunk is the
 *   completion of the read at the transfer's position. Where no ring opens
 *   (ENOSYS, EPERM, ...) the lane reads with pread from then on: counted in
 *   ring_fallbacks, with ring_errno. EMEL_IO_READ_NO_RING: pread lanes only.
 *   A transfer that ends early waits for its lane's reads in flight first.
 * - Request flags: EMEL_LOAD_DIRECT (O_DIRECT; falls back to buffered reads
 *   where the filesystem refuses it or the destination cannot be aligned with
 *   the file; both are counted in the stats), EMEL_LOAD_DROP_CACHE
 *   (posix_fadvise DONTNEED over the span after the copy, so the model is not
 *   held twice; advisory: a refusal is counted, the load still succeeds).
 *   EMEL_LOAD_POPULATE / EMEL_LOAD_LOCK are mmap options: EMEL_INVALID_REQUEST.
 * - Owned buffers of at least huge_page_size bytes are aligned to it and
 *   advised for transparent huge pages (EMEL_ADVISE_HUGEPAGE): a fresh buffer
 *   then faults in 2 MiB steps instead of 4 KiB ones, which measured 2-3x
 *   faster loads (README "Performance"). Advisory: a refusal is counted.
 * - An interrupted read (EINTR; on the ring also EAGAIN, the kernel short of
 *   resources for now) is asked again up to EMEL_IO_READ_MAX_EINTR times in a
 *   row; one more fails the load with EMEL_READ_FAILED and the errno of that
 *   last interruption (a storm must not hang it, nor hide which it was).
 *
 * Batches (emel_io_acquire_batch): requests are prepared one by one (validated,
 * opened, slot and buffer taken; a refusal is that request's own result), then
 * the prepared ones are sorted by (file, offset) and spans at most
 * EMEL_IO_READ_MAX_GAP bytes apart are read as one run with preadv into the
 * tensors' own buffers (gaps into a scratch). A run is all-or-nothing: if its
 * transfer fails, every request of the run gets the run's error and none keeps
 * a buffer; other runs are unaffected. A direct-I/O request is a run of its own.
 *
 * Parallel batches (config.threads; one thread per core by default): when a
 * window holds at least min_parallel_bytes per thread, its runs are cut to
 * about a quarter of a thread's share and taken largest first, each lane
 * taking the next run when done with its last (a lane that starts late or
 * runs slow takes fewer); the calling thread is lane 0, each other lane a thread
 * started with ops.thread_start (buffered: one copy per core; direct: the
 * copy is the device's, so direct_threads lanes keep more reads in flight,
 * measured 4.0 -> 4.8 GB/s cold from 2 to 8 lanes here). A lane's thread is
 * started at the first window that gives it work and kept: parked on an event
 * (ops.event_open/event_wait) between windows, woken (event_signal) for each
 * window it has work in, joined at destroy, so many small windows (a load
 * job's units) pay no thread start, join or ring setup each. A parked lane
 * (and the caller waiting for the lanes) spins about 0.25 ms before it
 * waits; one given no window for 1 s retires (its thread returns, joined
 * by the next window, which starts another), so an idle boundary has no
 * thread waking. Concurrency rules:
 * - Phases: prepare every request (calling thread), transfer the runs (lanes
 *   in parallel), wait until every lane is done, then settle every run
 *   (calling thread). Each phase starts after the previous one ended for
 *   every lane: the window is written before a lane's generation is bumped
 *   (release; the worker reads it with acquire), and the caller waits until
 *   a pending count, decremented by each lane with acq_rel, reaches 0.
 * - Only the calling thread touches shared mutable state: the slot pool and
 *   the live count, buffer allocation and release, file descriptors and
 *   sizes, the results, the strategy's stats.
 * - A lane writes only its own runs' machine contexts and destination
 *   buffers (its ring's reads too: only into its own runs'), and its own
 *   bounce block, gap scratch, ring and counters (merged into the stats once
 *   the window's pending count reached 0); which runs are its own is decided by one atomic counter, which
 *   hands each run out once. A lane reads ahead only into runs it has taken
 *   from that counter already (it takes its next run before reading ahead
 *   into it, and transfers every run it took), so no run is read by two
 *   lanes. Runs never overlap in memory: each member has its own slot and
 *   buffer. The window's plan (its runs, the order lanes take them in) is
 *   written before any lane started.
 * - Workers read, never write: the members, the config, the descriptors
 *   and the identity each file had when opened (pread/preadv are positional
 *   and fstat reads nothing shared, so one descriptor serves every thread).
 * - A thread that cannot be started is counted (thread_start_failures) and
 *   its lane's runs are transferred by the calling thread: same results; the
 *   next window that gives the lane work tries again.
 * - Events that cannot be opened: the window starts threads of its own for
 *   those lanes and joins them before it returns (counted as started).
 * - A lost wakeup (a failed event_signal) or a failed wait costs at most a
 *   bounded wait slice (100 ms): workers and the caller look at the
 *   generation / pending count after every wait, whatever it returned.
 * - Destroy (never with a window in flight) sets quit, wakes and joins every
 *   parked worker. A failed join is counted (thread_join_failures);
 *   ops.thread_join must return only once the thread is gone, as the
 *   default does.
 * Not thread-safe per instance: one batch at a time.
 */
#ifndef EMEL_IO_READ_H
#define EMEL_IO_READ_H

#include <stddef.h>
#include <stdint.h>

#include "emel/api.h"
#include "emel/io.h"
#include "emel/status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  EMEL_IO_READ_DEFAULT_BUFFERS = 65536,
  EMEL_IO_READ_DEFAULT_CHUNK = 8u << 20,
  EMEL_IO_READ_MIN_ALIGNMENT = 64,
  EMEL_IO_READ_MAX_EINTR = 16,       /* consecutive interrupted reads of one chunk */
  EMEL_IO_READ_MAX_GAP = 4096,       /* bytes between two spans still read as one run */
  EMEL_IO_READ_BATCH_WINDOW = 256,   /* requests prepared, sorted and coalesced at once */
  EMEL_IO_READ_DEFAULT_HUGE_PAGE = 2u << 20,
  EMEL_IO_READ_MAX_THREADS = 64,
  EMEL_IO_READ_DEFAULT_MIN_PARALLEL = 4u << 20,
  EMEL_IO_READ_RUNS_PER_LANE = 4,    /* runs a thread's share is cut into, for balance */
  EMEL_IO_READ_DIRECT_LANES_PER_THREAD = 4,
  EMEL_IO_READ_DEFAULT_RING_DEPTH = 8,       /* reads in flight per lane's ring (measured: README Performance) */
  EMEL_IO_READ_MAX_RING_DEPTH = 4096,
  EMEL_IO_READ_DEFAULT_RING_REQUEST = 4u << 20 /* bytes per ring read (the device splits at 4 MiB here) */
};

/* emel_io_read_config.flags */
enum {
  EMEL_IO_READ_NO_RING = 1u << 0 /* transfers use the pread lanes only, never the platform's ring */
};

typedef struct emel_io_read_config {
  size_t struct_size;   /* sizeof(emel_io_read_config): EMEL_IO_READ_CONFIG_INIT sets it */
  uint32_t max_buffers; /* pool of live residencies; 0: EMEL_IO_READ_DEFAULT_BUFFERS */
  size_t chunk_size;    /* bytes per pread; 0: EMEL_IO_READ_DEFAULT_CHUNK */
  size_t alignment;     /* owned buffer alignment, a power of two >= 64; 0: 64 */
  size_t huge_page_size; /* owned buffers this large are huge-page advised; a power of two; 0: 2 MiB */
  uint32_t threads;     /* lanes of a batch transfer; 0: one per core (ops.cpu_count); 1: no threads;
                           at most EMEL_IO_READ_MAX_THREADS */
  size_t min_parallel_bytes; /* a window is split only with this many bytes per lane; 0: 4 MiB */
  uint32_t direct_threads; /* lanes of a window with direct runs (the device, not the cores, is the
                              limit: more reads in flight); 0: EMEL_IO_READ_DIRECT_LANES_PER_THREAD
                              per lane of `threads` (1 when threads is 1); at most EMEL_IO_READ_MAX_THREADS */
  uint32_t ring_depth;  /* reads a lane keeps in flight on its ring; 0: EMEL_IO_READ_DEFAULT_RING_DEPTH;
                           at most EMEL_IO_READ_MAX_RING_DEPTH */
  size_t ring_request;  /* bytes per ring read (direct: rounded down to whole blocks); 0:
                           EMEL_IO_READ_DEFAULT_RING_REQUEST; at most 1 GiB */
  uint32_t flags;       /* EMEL_IO_READ_NO_RING */
} emel_io_read_config;

#define EMEL_IO_READ_CONFIG_INIT(...) EMEL_STRUCT_INIT_(emel_io_read_config, __VA_ARGS__)

typedef struct emel_io_read_stats {
  uint64_t bytes_read;          /* bytes delivered by pread/preadv, gaps included */
  uint64_t preads;              /* pread and preadv calls */
  uint64_t eintr_retries;       /* interrupted reads retried */
  uint64_t short_reads;         /* reads that returned less than asked (then continued) */
  uint64_t direct_reads;        /* loads served with O_DIRECT */
  uint64_t direct_fallbacks;    /* direct loads served buffered: the filesystem refused O_DIRECT */
  uint64_t direct_unaligned;    /* direct loads served buffered: destination misaligned with the file */
  uint64_t cache_drops;         /* DONTNEED advice given */
  uint64_t cache_drop_failures; /* DONTNEED advice refused (the load still succeeded) */
  uint64_t runs;                /* transfers (a coalesced batch run counts once) */
  uint64_t coalesced;           /* requests that shared a run with an earlier one */
  uint64_t gap_bytes;           /* padding read into the scratch between coalesced spans */
  uint64_t huge_page_advised;   /* owned buffers advised for transparent huge pages */
  uint64_t huge_page_refusals;  /* that advice refused (the load still succeeded) */
  uint64_t parallel_windows;    /* batch windows transferred by more than one lane */
  uint64_t threads_started;     /* worker threads started (lane 0 is the caller's) */
  uint64_t thread_start_failures; /* lanes whose thread did not start: the caller did their work */
  uint64_t thread_join_failures;  /* joins reported as failed */
  uint64_t ring_runs;           /* transfers whose reads went through a ring (io_uring) */
  uint64_t ring_reads;          /* reads sent to a ring (each is also one of `preads`) */
  uint64_t ring_opens;          /* rings opened (one per lane that needed one) */
  uint64_t ring_fallbacks;      /* lanes whose ring could not be opened (no io_uring: ENOSYS, EPERM, ...):
                                   their transfers used pread instead, as without a ring */
  uint64_t ring_errno;          /* the errno of the last ring that could not be opened (0: none) */
} emel_io_read_stats;

/* Creates the read strategy with the io's platform ops and file table and
 * attaches it (the boundary owns it from then on). Pools are allocated here,
 * once. EMEL_INVALID_ARGUMENT for a bad config or a boundary that already has
 * a read strategy, EMEL_OUT_OF_MEMORY when the pools cannot be allocated,
 * EMEL_STRUCT_SIZE_UNKNOWN for a config it cannot take. */
EMEL_API emel_status emel_io_read_attach(emel_io *io, const emel_io_read_config *config, emel_error *err);

/* Counters of the attached read strategy; EMEL_UNKNOWN_STRATEGY when none is. */
EMEL_API emel_status emel_io_read_stats_of(const emel_io *io, emel_io_read_stats *stats, emel_error *err);

#ifdef __cplusplus
}
#endif

#endif

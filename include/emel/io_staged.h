/* The staged strategy: a tensor's bytes handed to a consumer window by window
 * through a bounded ring of staging buffers (residency DELIVERED), for
 * runtimes whose weights go where emel-io cannot write: device memory, a
 * compute library's allocator, a converter, a checksum. The whole model is
 * never held in host memory: the ring (emel_io_staged_config.budget) is all
 * the strategy ever reads into. Control flow is statecharts/io_staged.rl.
 *
 * The consumer contract:
 * - consume(user, tensor, offset_in_tensor, bytes, data) is called once per
 *   window, for each tensor in order of offset_in_tensor (0, then each window
 *   after the last), always from the thread that called the load (a load
 *   job's thread when the job runs in the background; a load job passes a
 *   wrapper of the consumer, which refuses the next window once the job is
 *   cancelled: see job.h). `tensor`
 *   is emel_io_request.tensor (the tensor's index in its table). `data` is
 *   valid only during the call: copy or convert it before returning.
 * - It returns 0 to go on, or any non-zero code of its own: the load then
 *   fails with EMEL_STAGED_CONSUMER_FAILED and that code in
 *   emel_error.os_errno (not an errno), and no further window is delivered.
 * - A failed load may have delivered some windows of its tensor: the
 *   consumer must treat what it got as void. Tensors of the same load after a
 *   failed one get EMEL_STAGED_STREAM_STOPPED and no window; those delivered
 *   wholly before it succeed.
 * - A completed load is residency EMEL_RESIDENCY_DELIVERED (view data NULL,
 *   size the bytes delivered), or EMEL_RESIDENCY_EXTERNAL with data = target
 *   when the consumer says it wrote them into caller storage (target). The
 *   consumer must outlive the residency: evicting it (emel_tensors_evict, or
 *   destroying the table) calls release(user, tensor) when release is set.
 * - emel_tensors_hash of a DELIVERED tensor is EMEL_STAGED_NO_BYTES: hash in
 *   the consumer (emel-load --strategy staged --verify does).
 *
 * How the consumer travels (ABI): emel_load_options.consumer (a member added
 * at the end, so older callers' struct_size leaves it NULL); the tensor table
 * passes it to the strategy in the request's `target` with the flag
 * EMEL_LOAD_CONSUMER (emel_io_request has no struct_size and keeps its size).
 * A request without a consumer: EMEL_STAGED_NO_CONSUMER.
 *
 * Windows: a direct window fills a buffer (less a block); a buffered one is at
 * most EMEL_IO_STAGED_BUFFERED_WINDOW (1 MiB), so what the reader filled
 * ahead is still in the cache when the consumer copies it.
 *
 * Overlap and the memory bound: a reader thread (ops.thread_start) fills
 * buffer k+1 while the calling thread consumes buffer k; handoffs go through
 * ops.event_signal/event_wait (bounded waits, so a lost wakeup only costs
 * time). A slow consumer stalls the reader on a full ring; the ring never
 * grows. When the thread or the events cannot be had, the calling thread
 * reads each window itself before consuming it (counted: inline_streams):
 * same bytes, no overlap.
 *
 * Reads: the reader keeps ring_depth reads of ring_request bytes of a window
 * in flight through the platform's ring (ops.ring_*, io_uring by default);
 * where no ring opens (ENOSYS, EPERM: an old kernel, seccomp), or with
 * EMEL_IO_STAGED_NO_RING, it reads each window with pread instead (counted:
 * ring_fallbacks, ring_errno). A short, failed or interrupted completion takes
 * the route a pread's would. Reads are
 * buffered, or O_DIRECT with EMEL_LOAD_DIRECT (the buffers are
 * block-aligned; a filesystem refusing O_DIRECT falls back to buffered reads,
 * counted). Each window is read whole (short reads continue; more than
 * EMEL_IO_STAGED_MAX_EINTR interruptions in a row, EINTR or the ring's EAGAIN,
 * are EMEL_READ_FAILED with the last one's errno), and the file
 * is looked at again (fstat) before the window goes to the consumer: a file
 * truncated or rewritten in place fails the load with EMEL_FILE_CHANGED, an
 * early end of an unchanged file with EMEL_READ_UNEXPECTED_EOF. Files are
 * opened once per mode and checked against emel_io_expect_file, as the read
 * strategy does.
 *
 * Batches (emel_io_acquire_batch, emel_tensors_load_batch): the requests are
 * validated one by one (a refusal is that request's own result), then
 * streamed in (file, offset) order through one ring. Not thread-safe per
 * instance: one load at a time.
 */
#ifndef EMEL_IO_STAGED_H
#define EMEL_IO_STAGED_H

#include <stddef.h>
#include <stdint.h>

#include "emel/api.h"
#include "emel/io.h"
#include "emel/status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  EMEL_IO_STAGED_DEFAULT_BUDGET = 64u << 20, /* bytes of staging ring */
  EMEL_IO_STAGED_DEFAULT_BUFFERS = 4,
  EMEL_IO_STAGED_MIN_BUFFERS = 2,            /* double buffering at least: read k+1 while k is consumed */
  EMEL_IO_STAGED_MAX_BUFFERS = 64,
  EMEL_IO_STAGED_BUFFER_ALIGN = 2u << 20,    /* buffers are 2 MiB-aligned and huge-page advised */
  EMEL_IO_STAGED_DEFAULT_RESIDENCIES = 16384,
  EMEL_IO_STAGED_MAX_EINTR = 16,             /* consecutive interruptions of one read asked again */
  EMEL_IO_STAGED_BATCH_WINDOW = 256,         /* requests validated and streamed at once */
  EMEL_IO_STAGED_WAIT_MS = 100,              /* longest single wait for the other side (re-checked after) */
  EMEL_IO_STAGED_DEFAULT_RING_DEPTH = 8,     /* reads the reader keeps in flight (README Performance) */
  EMEL_IO_STAGED_MAX_RING_DEPTH = 256,
  EMEL_IO_STAGED_DEFAULT_RING_REQUEST = 2u << 20, /* bytes per ring read: a default direct window is 8 of them */
  EMEL_IO_STAGED_BUFFERED_WINDOW = 1u << 20 /* a buffered window's bytes at most (a direct one fills its buffer):
                                               copied twice while warm, what the reader has filled ahead stays in
                                               the cache (README Performance) */
};

enum {
  EMEL_IO_STAGED_NO_RING = 1u << 0 /* emel_io_staged_config.flags: read each window with pread, never the ring */
};

/* Returns 0, or a non-zero code of the consumer's own (kept in emel_error.os_errno). */
typedef int (*emel_staged_consume_fn)(void *user, uint32_t tensor, uint64_t offset_in_tensor, uint64_t bytes,
                                      const void *data);
typedef void (*emel_staged_release_fn)(void *user, uint32_t tensor);

typedef struct emel_staged_consumer {
  size_t struct_size;             /* sizeof(emel_staged_consumer): EMEL_STAGED_CONSUMER_INIT sets it */
  emel_staged_consume_fn consume; /* required */
  emel_staged_release_fn release; /* optional: called when a residency it received is evicted */
  void *user;
  /* Optional: caller storage consume writes each window into (at offset_in_tensor):
   * the residency is then EXTERNAL with data = target. At least the request's
   * size, else EMEL_INVALID_REQUEST. One tensor per consumer when set. */
  void *target;
  uint64_t target_size;
} emel_staged_consumer;

#define EMEL_STAGED_CONSUMER_INIT(...) EMEL_STRUCT_INIT_(emel_staged_consumer, __VA_ARGS__)

typedef struct emel_io_staged_config {
  size_t struct_size; /* sizeof(emel_io_staged_config): EMEL_IO_STAGED_CONFIG_INIT sets it */
  uint64_t budget;    /* total bytes of the ring; 0: EMEL_IO_STAGED_DEFAULT_BUDGET; each buffer
                         must come to at least two pages */
  uint32_t buffers;   /* EMEL_IO_STAGED_MIN_BUFFERS..EMEL_IO_STAGED_MAX_BUFFERS; 0: 4 */
  uint32_t max_residencies; /* live DELIVERED/EXTERNAL residencies; 0: EMEL_IO_STAGED_DEFAULT_RESIDENCIES */
  uint32_t threads;   /* 1: no reader thread (the caller reads, then consumes); 0 or 2: a reader thread */
  uint32_t ring_depth;  /* reads kept in flight on the reader's ring; 0: EMEL_IO_STAGED_DEFAULT_RING_DEPTH;
                           at most EMEL_IO_STAGED_MAX_RING_DEPTH */
  size_t ring_request;  /* bytes per ring read (rounded down to whole pages, at least one); 0:
                           EMEL_IO_STAGED_DEFAULT_RING_REQUEST */
  uint32_t flags;       /* EMEL_IO_STAGED_NO_RING */
} emel_io_staged_config;

#define EMEL_IO_STAGED_CONFIG_INIT(...) EMEL_STRUCT_INIT_(emel_io_staged_config, __VA_ARGS__)

typedef struct emel_io_staged_stats {
  uint64_t bytes_read;       /* bytes delivered by pread or the ring (direct: whole blocks around the spans) */
  uint64_t preads;           /* reads made: pread calls and ring reads */
  uint64_t windows;          /* windows handed to consumers */
  uint64_t eintr_retries;
  uint64_t short_reads;
  uint64_t direct_reads;     /* windows read with O_DIRECT */
  uint64_t direct_fallbacks; /* direct loads served buffered: the filesystem refused O_DIRECT */
  uint64_t streams;          /* loads (a batch counts once) */
  uint64_t threaded_streams; /* ... whose reading overlapped consuming (a reader thread) */
  uint64_t inline_streams;   /* ... read by the calling thread: no thread or no events to be had */
  uint64_t reader_stalls;    /* the reader found the ring full (the consumer was slower) */
  uint64_t consumer_stalls;  /* the consumer found no window ready (the reader was slower) */
  uint64_t signal_failures;  /* event_signal refusals (waits are bounded: only time is lost) */
  uint64_t thread_join_failures;
  uint64_t huge_page_refusals; /* ring buffers whose huge-page advice was refused */
  uint64_t ring_bytes;       /* the ring's total: the most the strategy reads into at once */
  uint64_t ring_windows;     /* windows whose reads went through the platform's ring (io_uring) */
  uint64_t ring_reads;       /* reads sent to the ring (each is also one of `preads`) */
  uint64_t ring_opens;       /* rings opened (the reader keeps one until destroy) */
  uint64_t ring_fallbacks;   /* rings that could not be opened (no io_uring: ENOSYS, EPERM, ...): pread instead */
  uint64_t ring_errno;       /* the errno of the last ring that could not be opened (0: none) */
} emel_io_staged_stats;

/* Creates the staged strategy (its ring is allocated here, once) and attaches
 * it. EMEL_INVALID_ARGUMENT for a bad config (buffers out of range, a buffer
 * under two pages) or a boundary that already has one, EMEL_OUT_OF_MEMORY,
 * EMEL_STRUCT_SIZE_UNKNOWN. On failure nothing is attached or held. */
EMEL_API emel_status emel_io_staged_attach(emel_io *io, const emel_io_staged_config *config, emel_error *err);

/* Counters of the attached staged strategy; EMEL_UNKNOWN_STRATEGY when none is. */
EMEL_API emel_status emel_io_staged_stats_of(const emel_io *io, emel_io_staged_stats *stats, emel_error *err);

#ifdef __cplusplus
}
#endif

#endif

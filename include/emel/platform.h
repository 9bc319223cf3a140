/* Platform operations: every OS call emel-io makes goes through this table.
 *
 * Why: tests (and embedders with their own file layer) replace any entry to make
 * one call fail, count what is acquired, or redirect I/O. A NULL entry means
 * "use the production default", so overriding one entry keeps the defaults for
 * the rest: emel_platform_resolve() fills the NULL entries. Entries that undo
 * each other (open/close, alloc/free, …) are replaced together or not at all.
 *
 * Conventions: calls return 0 (or a non-negative count / descriptor) on success
 * and a negative errno on failure, so the failing errno travels with the result
 * and no thread-local errno is read after the fact. `user` is passed back
 * unchanged to every call.
 */
#ifndef EMEL_PLATFORM_H
#define EMEL_PLATFORM_H

#include "emel/api.h"
#include "emel/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Open flags (emel's own, mapped to O_* by the default implementation). */
enum {
  EMEL_OPEN_READ = 0,      /* read-only, close-on-exec: always implied */
  EMEL_OPEN_DIRECT = 1u << 0 /* bypass the page cache (O_DIRECT) */
};

/* Advice for a mapped range (madvise). */
typedef enum emel_map_advice {
  EMEL_ADVISE_NORMAL = 0,
  EMEL_ADVISE_SEQUENTIAL = 1,
  EMEL_ADVISE_WILLNEED = 2,
  EMEL_ADVISE_DONTNEED = 3,
  EMEL_ADVISE_POPULATE_READ = 4, /* pre-fault readable pages (MADV_POPULATE_READ) */
  EMEL_ADVISE_HUGEPAGE = 5
} emel_map_advice;

/* Advice for a file range (posix_fadvise). */
typedef enum emel_file_advice {
  EMEL_FADVISE_NORMAL = 0,
  EMEL_FADVISE_SEQUENTIAL = 1,
  EMEL_FADVISE_WILLNEED = 2,
  EMEL_FADVISE_DONTNEED = 3
} emel_file_advice;

/* One piece of a scattered read (layout mirrors struct iovec; converted by the default). */
typedef struct emel_iovec {
  void *base;
  size_t len;
} emel_iovec;

/* Pieces per preadv call: callers split longer lists (POSIX guarantees IOV_MAX >= 16). */
enum { EMEL_PLATFORM_IOV_MAX = 16 };

/* One finished read of a ring (ring_wait): the tag given to ring_read and what
 * the read returned (bytes, 0 at end of file, or -errno). */
typedef struct emel_ring_completion {
  uint64_t tag;
  int64_t res;
} emel_ring_completion;

/* What kind of file a descriptor refers to (st_mode). Only regular files are
 * loaded: the others have no fixed size and bytes to map or read (a FIFO or a
 * terminal can block forever, /dev/zero never ends, a directory has no bytes),
 * so they are refused with EMEL_NOT_A_REGULAR_FILE before any read. REGULAR is
 * 0: a file_identity that does not set the field (written before it existed)
 * reports a regular file, since the library zeroes the struct first. */
typedef enum emel_file_type {
  EMEL_FILE_REGULAR = 0,
  EMEL_FILE_DIRECTORY = 1,
  EMEL_FILE_FIFO = 2,
  EMEL_FILE_CHAR_DEVICE = 3,
  EMEL_FILE_BLOCK_DEVICE = 4,
  EMEL_FILE_SOCKET = 5,
  EMEL_FILE_OTHER = 6
} emel_file_type;

/* What a file is, as far as telling whether it changed goes: two identities
 * differ when any field differs. A file truncated or rewritten in place keeps
 * device and inode but changes size or modification time; a file replaced by
 * rename has another inode. */
typedef struct emel_file_identity {
  uint64_t size;     /* bytes (0 for anything but a regular file) */
  uint64_t device;   /* st_dev */
  uint64_t inode;    /* st_ino */
  int64_t mtime_ns;  /* last modification, nanoseconds since the epoch */
  emel_file_type type; /* what the descriptor refers to; only EMEL_FILE_REGULAR is loaded */
} emel_file_identity;

/* The operations, written once: X(NAME, name, return type, (parameters), pair).
 * From this list come the struct's members, the filling of NULL entries with
 * the defaults, the pair check and the names tests and diagnostics print.
 * `pair` is the operation that undoes this one (close for open, free for
 * alloc); one without a pair names itself. A table that sets one member of a
 * pair and leaves the other NULL is refused (EMEL_PLATFORM_OPS_UNPAIRED): the
 * default free cannot free what the caller's alloc returned, nor the default
 * close a descriptor of the caller's file layer. New operations are only ever
 * appended (struct_size tells the library which ones a caller knows). */
#define EMEL_PLATFORM_OPS_LIST(X)                                                          \
  /* fd >= 0, or -errno. `path` is NUL-terminated. Must not block on what the path is    \
   * (the default opens with O_NONBLOCK, so a FIFO without a writer or a terminal        \
   * returns at once; file_identity then says it is not a regular file). A signal that   \
   * interrupts it (a handler installed without SA_RESTART) gives -EINTR and is not      \
   * retried. The descriptor returned reads blocking (O_NONBLOCK cleared). */            \
  X(OPEN, open, int, (void *user, const char *path, unsigned flags), close)               \
  /* 0 or -errno; the descriptor is gone either way. */                                  \
  X(CLOSE, close, int, (void *user, int fd), open)                                        \
  /* Bytes read (0 at end of file), or -errno (-EINTR included: the caller retries). */  \
  X(PREAD, pread, int64_t, (void *user, int fd, void *buf, size_t len, uint64_t offset), pread) \
  /* Like pread, scattered over `iovcnt` (1..EMEL_PLATFORM_IOV_MAX) pieces in order. */  \
  X(PREADV, preadv, int64_t, (void *user, int fd, const emel_iovec *iov, int iovcnt, uint64_t offset), preadv) \
  /* 0 or -errno. `offset` is a multiple of page_size(). Read-only, private mapping. */  \
  X(MAP, map, int, (void *user, int fd, uint64_t offset, size_t len, void **addr), unmap) \
  X(UNMAP, unmap, int, (void *user, void *addr, size_t len), map)                          \
  /* 0 or -errno. `addr` is page-aligned. */                                             \
  X(ADVISE, advise, int, (void *user, void *addr, size_t len, emel_map_advice advice), advise) \
  X(FADVISE, fadvise, int, (void *user, int fd, uint64_t offset, uint64_t len, emel_file_advice advice), fadvise) \
  /* 0 or -errno. `addr` is page-aligned. */                                             \
  X(LOCK, lock, int, (void *user, void *addr, size_t len), unlock)                         \
  X(UNLOCK, unlock, int, (void *user, void *addr, size_t len), lock)                       \
  /* Aligned allocation (alignment a power of two); NULL on failure. */                  \
  X(ALLOC, alloc, void *, (void *user, size_t size, size_t alignment), free)              \
  /* Frees what alloc returned; `size` is the size that was asked for. */                \
  X(FREE, free, void, (void *user, void *ptr, size_t size), alloc)                        \
  /* The page size, a power of two. */                                                   \
  X(PAGE_SIZE, page_size, size_t, (void *user), page_size)                                 \
  /* Non-zero when map/unmap work on this platform. */                                   \
  X(CAN_MAP, can_map, int, (void *user), can_map)                                          \
  /* Starts a thread running fn(arg); 0 and *thread set, or -errno (then fn never runs:  \
   * the caller does the work itself). */                                               \
  X(THREAD_START, thread_start, int, (void *user, void *(*fn)(void *), void *arg, uintptr_t *thread), thread_join) \
  /* Waits for a started thread to return; 0 or -errno. Afterwards the thread is gone    \
   * either way (as with close), so it is joined exactly once. */                        \
  X(THREAD_JOIN, thread_join, int, (void *user, uintptr_t thread), thread_start)          \
  /* Processors online (>= 1). */                                                        \
  X(CPU_COUNT, cpu_count, int, (void *user), cpu_count)                                    \
  /* 0 and *out = what the open descriptor refers to now (fstat), or -errno. Any kind of \
   * file is described (out->type); the caller refuses what is not regular. Safe to     \
   * call from several threads on one descriptor. */                                     \
  X(FILE_IDENTITY, file_identity, int, (void *user, int fd, emel_file_identity *out), file_identity) \
  /* Runs touch(arg), which reads mapped memory inside [addr, addr + len), so that a     \
   * SIGBUS raised by such a read (the file under the mapping shrank, or its storage     \
   * failed to deliver the page) ends touch early instead of the process: 0 when touch   \
   * returned, -EFAULT when a SIGBUS cut it short. touch must own nothing it would leak  \
   * when cut short (no locks, no allocations). Safe from several threads at once; nests.\
   * The default installs one process-wide SIGBUS handler (sigaction, once, on the first \
   * call). A SIGBUS that is not an access inside a guarded range of the faulting thread \
   * goes to the handler installed before it, as the kernel would have delivered it.     \
   * An embedder that installs its own SIGBUS handler after the first guard must chain  \
   * to the handler its sigaction call returned (and leave SIGBUS unblocked in threads   \
   * that touch mappings); else a guarded read of a shrunken file kills the process. */  \
  X(GUARD, guard, int, (void *user, const void *addr, size_t len, void (*touch)(void *arg), void *arg), guard) \
  /* 0 and buf[0..len) filled with unpredictable bytes, or -errno; never blocks          \
   * (getrandom with GRND_NONBLOCK). Seeds the hash of the name tables (one call per     \
   * GGUF index or standalone tensor table); a failure is not an error: the table uses a \
   * fallback seed. Return fixed bytes for reproducible runs (tests, fuzzing). */        \
  X(RANDOM, random, int, (void *user, void *buf, size_t len), random)                     \
  /* A wakeup descriptor for load jobs (eventfd, non-blocking, close-on-exec): fd >= 0,  \
   * or -errno. It can be polled for readability by the caller's event loop. */         \
  X(EVENT_OPEN, event_open, int, (void *user), event_close)                                \
  X(EVENT_CLOSE, event_close, int, (void *user, int fd), event_open)                      \
  /* Makes the descriptor readable; 0 or -errno. Must be async-signal-safe (a load job  \
   * is cancelled from signal handlers): the default is one write(2). */                 \
  X(EVENT_SIGNAL, event_signal, int, (void *user, int fd), event_signal)                  \
  /* Waits up to timeout_ms (< 0: forever) for the descriptor to be readable, then       \
   * drains it: 1 signalled, 0 timed out, or -errno (-EINTR included). fd -1: no         \
   * descriptor, only the wait (as poll(2)); a job's waiter sleeps so after a failure. */ \
  X(EVENT_WAIT, event_wait, int, (void *user, int fd, int timeout_ms), event_wait)        \
  /* A monotonic clock in nanoseconds (CLOCK_MONOTONIC): progress rates and intervals. */ \
  X(CLOCK_NS, clock_ns, uint64_t, (void *user), clock_ns)                                 \
  /* A queue of positional reads kept in flight together (io_uring; the four ring ops  \
   * are replaced together). 0 and *ring set, or -errno: -ENOSYS / -EPERM (no io_uring: \
   * old kernel, seccomp, built without liburing), anything else: the caller reads with  \
   * pread instead. `depth`: reads in flight at most. */                                 \
  X(RING_OPEN, ring_open, int, (void *user, unsigned depth, void **ring), ring_close)      \
  /* Cancels what is still in flight and returns once the kernel writes no buffer of it  \
   * any more; the ring is gone either way (0 or -errno). */                              \
  X(RING_CLOSE, ring_close, int, (void *user, void *ring), ring_open)                     \
  /* Queues one read of `len` bytes at `offset` into `buf` (sent by the next ring_wait); \
   * its completion carries `tag`. 0 or -errno. `buf` stays the kernel's until then. */  \
  X(RING_READ, ring_read, int, (void *user, void *ring, int fd, void *buf, size_t len, uint64_t offset, uint64_t tag), ring_wait) \
  /* Sends what was queued, waits for at least `min` completions and returns up to `max` \
   * of them in out[]: their count, or -errno (-EINTR: nothing was lost, call again). */ \
  X(RING_WAIT, ring_wait, int, (void *user, void *ring, unsigned min, emel_ring_completion *out, unsigned max), ring_read)

/* Callers fill this in; set struct_size with EMEL_PLATFORM_OPS_INIT (it tells
 * a newer library which members this caller knows: those after it are NULL,
 * so the defaults). A NULL member: the default. */
typedef struct emel_platform_ops {
  size_t struct_size; /* sizeof(emel_platform_ops) of the header the caller was built with */
  void *user;         /* passed back unchanged to every call */
#define EMEL_PLATFORM_OP_MEMBER_(NAME, name, ret, params, pair) ret(*name) params;
  EMEL_PLATFORM_OPS_LIST(EMEL_PLATFORM_OP_MEMBER_)
#undef EMEL_PLATFORM_OP_MEMBER_
} emel_platform_ops;

/* `emel_platform_ops ops = EMEL_PLATFORM_OPS_INIT(.open = my_open, .close = my_close);` */
#define EMEL_PLATFORM_OPS_INIT(...) EMEL_STRUCT_INIT_(emel_platform_ops, __VA_ARGS__)

/* The production defaults (POSIX). Never NULL; all entries set. */
EMEL_API const emel_platform_ops *emel_platform_default(void);

/* Copies `ops` (or the defaults when `ops` is NULL) into `out`, a whole
 * emel_platform_ops of this library, filling every NULL entry (and every
 * member the caller's struct_size does not reach) with its default. `user` is
 * copied as given. EMEL_STRUCT_SIZE_UNKNOWN: ops->struct_size is 0 or larger
 * than this library's; EMEL_PLATFORM_OPS_UNPAIRED: one op of a pair is set
 * and the other is not (err->detail names the pair's first op,
 * "emel_platform_ops.alloc" say). `out` is then all
 * defaults. */
EMEL_API emel_status emel_platform_resolve(emel_platform_ops *out, const emel_platform_ops *ops, emel_error *err);

/* "open", "close", … for op 0..count-1 in list order; NULL past the end. */
EMEL_API const char *emel_platform_op_name(size_t op);

#ifdef __cplusplus
}
#endif

#endif

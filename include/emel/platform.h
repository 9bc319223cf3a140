/* Platform operations: every OS call emel-io makes goes through this table.
 *
 * Why: tests (and embedders with their own file layer) replace any entry to make
 * one call fail, count what is acquired, or redirect I/O. A NULL entry means
 * "use the production default", so overriding one entry keeps the defaults for
 * the rest: emel_platform_resolve() fills the NULL entries.
 *
 * Conventions: calls return 0 (or a non-negative count / descriptor) on success
 * and a negative errno on failure, so the failing errno travels with the result
 * and no thread-local errno is read after the fact. `user` is passed back
 * unchanged to every call.
 */
#ifndef EMEL_PLATFORM_H
#define EMEL_PLATFORM_H

#include "emel/api.h"

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

/* Mapping flags. */
enum {
  EMEL_MAP_POPULATE = 1u << 0 /* pre-fault the whole mapping (MAP_POPULATE) */
};

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

typedef struct emel_platform_ops {
  void *user;

  /* fd >= 0, or -errno. `path` is NUL-terminated. Must not block on what the
   * path is (the default opens with O_NONBLOCK, so a FIFO without a writer or a
   * terminal returns at once; file_identity then says it is not a regular file).
   * A signal that interrupts it (a handler installed without SA_RESTART) gives
   * -EINTR and is not retried: the caller's signal must be able to stop a
   * blocking open. The descriptor returned reads blocking (O_NONBLOCK cleared). */
  int (*open)(void *user, const char *path, unsigned flags);
  /* 0 or -errno. */
  int (*close)(void *user, int fd);
  /* 0 and *size = file size in bytes, or -errno. */
  int (*file_size)(void *user, int fd, uint64_t *size);
  /* bytes read (0 at end of file), or -errno (-EINTR included: the caller retries). */
  int64_t (*pread)(void *user, int fd, void *buf, size_t len, uint64_t offset);
  /* Like pread, scattered over `iovcnt` (1..EMEL_PLATFORM_IOV_MAX) pieces in order. */
  int64_t (*preadv)(void *user, int fd, const emel_iovec *iov, int iovcnt, uint64_t offset);
  /* 0 or -errno. `offset` is a multiple of page_size(). Read-only, private mapping. */
  int (*map)(void *user, int fd, uint64_t offset, size_t len, unsigned flags, void **addr);
  /* 0 or -errno. */
  int (*unmap)(void *user, void *addr, size_t len);
  /* 0 or -errno. `addr` is page-aligned. */
  int (*advise)(void *user, void *addr, size_t len, emel_map_advice advice);
  /* 0 or -errno. */
  int (*fadvise)(void *user, int fd, uint64_t offset, uint64_t len, emel_file_advice advice);
  /* 0 or -errno. `addr` is page-aligned. */
  int (*lock)(void *user, void *addr, size_t len);
  int (*unlock)(void *user, void *addr, size_t len);
  /* Aligned allocation (alignment a power of two); NULL on failure. */
  void *(*alloc)(void *user, size_t size, size_t alignment);
  /* Frees what alloc returned; `size` is the size that was asked for. */
  void (*free)(void *user, void *ptr, size_t size);
  /* The page size, a power of two. */
  size_t (*page_size)(void *user);
  /* Non-zero when map/unmap work on this platform. */
  int (*can_map)(void *user);
  /* Starts a thread running fn(arg); 0 and *thread set, or -errno (then fn
   * never runs: the caller does the work itself). */
  int (*thread_start)(void *user, void *(*fn)(void *), void *arg, uintptr_t *thread);
  /* Waits for a started thread to return; 0 or -errno. Afterwards the thread
   * is gone either way (as with close), so it is joined exactly once. */
  int (*thread_join)(void *user, uintptr_t thread);
  /* Processors online (>= 1). */
  int (*cpu_count)(void *user);
  /* 0 and *out = what the open descriptor refers to now (fstat), or -errno.
   * Any kind of file is described (out->type); the caller refuses what is not
   * regular. Safe to call from several threads on one descriptor. */
  int (*file_identity)(void *user, int fd, emel_file_identity *out);
  /* Runs touch(arg), which reads mapped memory inside [addr, addr + len), so
   * that a SIGBUS raised by such a read (the file under the mapping shrank,
   * or its storage failed to deliver the page) ends touch early instead of
   * the process: 0 when touch returned, -EFAULT when a SIGBUS cut it short.
   * touch must own nothing it would leak when cut short (no locks, no
   * allocations). Safe from several threads at once; nests.
   *
   * The default installs one process-wide SIGBUS handler (sigaction, once,
   * on the first call). A SIGBUS that is not an access inside a guarded range
   * of the faulting thread goes to the handler installed before it, as the
   * kernel would have delivered it (SIG_DFL: terminates; SIG_IGN; sa_handler
   * or sa_sigaction). An embedder that installs its own SIGBUS handler after
   * the first guard must chain to the handler its sigaction call returned
   * (and leave SIGBUS unblocked in threads that touch mappings); else a
   * guarded read of a shrunken file kills the process as an unguarded one
   * would. */
  int (*guard)(void *user, const void *addr, size_t len, void (*touch)(void *arg), void *arg);
  /* 0 and buf[0..len) filled with unpredictable bytes, or -errno; never
   * blocks (getrandom with GRND_NONBLOCK). Seeds the hash of the name tables
   * (one call per GGUF index or standalone tensor table); a failure is not an
   * error: the table uses a fallback seed. Return fixed bytes for
   * reproducible runs (tests, fuzzing). */
  int (*random)(void *user, void *buf, size_t len);
} emel_platform_ops;

/* The production defaults (POSIX). Never NULL; all entries set. */
EMEL_API const emel_platform_ops *emel_platform_default(void);

/* Copies `ops` (or the defaults when `ops` is NULL) into `out`, filling every
 * NULL entry with its default. `user` is copied as given. */
EMEL_API void emel_platform_resolve(emel_platform_ops *out, const emel_platform_ops *ops);

#ifdef __cplusplus
}
#endif

#endif

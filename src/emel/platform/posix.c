/* Production platform operations (POSIX / Linux).
 *
 * The only file of the library that includes OS headers: everything else calls
 * the operations table, so tests can replace any call (tests/test_platform.c
 * checks this rule).
 */
#define _GNU_SOURCE 1

#include "emel/platform.h"
#include "emel/report.h"
#include "emel/util/struct_size.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif
#include <string.h>
#include <sys/mman.h>
#ifdef __linux__
#include <sys/random.h>
#endif
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#ifdef EMEL_HAVE_URING
#include <liburing.h>
#endif
#ifdef EMEL_HAVE_MEMCHECK_H
#include <valgrind/memcheck.h> /* client requests: no-ops outside valgrind */
#endif

/* Opening never waits on what the path is: with O_NONBLOCK a FIFO without a
 * writer or a terminal waiting for carrier opens at once, and the caller
 * refuses it (file_identity: not a regular file) before any read. O_NOCTTY: a
 * terminal never becomes the controlling one. No retry on EINTR: a signal
 * handler installed without SA_RESTART asks for blocking calls to stop
 * (emel-load's SIGINT does), and a retry loop would swallow it. */
static int os_open(void *user, const char *path, unsigned flags) {
  (void)user;
  int oflags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
#ifdef O_DIRECT
  if (flags & EMEL_OPEN_DIRECT) oflags |= O_DIRECT;
#else
  if (flags & EMEL_OPEN_DIRECT) return -EINVAL;
#endif
  int fd = open(path, oflags | O_NONBLOCK);
  /* Only a file lease (F_SETLEASE, held by a file server, say) refuses a
   * non-blocking read-only open (a FIFO never does): wait for its holder to
   * release it, as a plain open would (bounded by the kernel's
   * lease-break-time; a signal still stops it, as it does should the path
   * become a FIFO in between). */
  if (fd < 0 && (errno == EWOULDBLOCK || errno == EAGAIN)) fd = open(path, oflags);
  if (fd < 0) return -errno;
  /* Local filesystems ignore O_NONBLOCK for regular files, but network and
   * FUSE ones may honour it (EAGAIN from a read): reads are blocking again. */
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

static int os_close(void *user, int fd) {
  (void)user;
  /* Linux releases the descriptor even when close reports EINTR: never retry. */
  return close(fd) == 0 ? 0 : -errno;
}

static emel_file_type file_type_of(mode_t mode) {
  if (S_ISREG(mode)) return EMEL_FILE_REGULAR;
  if (S_ISDIR(mode)) return EMEL_FILE_DIRECTORY;
  if (S_ISFIFO(mode)) return EMEL_FILE_FIFO;
  if (S_ISCHR(mode)) return EMEL_FILE_CHAR_DEVICE;
  if (S_ISBLK(mode)) return EMEL_FILE_BLOCK_DEVICE;
  if (S_ISSOCK(mode)) return EMEL_FILE_SOCKET;
  return EMEL_FILE_OTHER;
}

static int os_file_identity(void *user, int fd, emel_file_identity *out) {
  (void)user;
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  out->type = file_type_of(st.st_mode);
  /* st_size means bytes only for a regular file (a directory's, a block
   * device's 0): nothing else may be taken for a span's bound. */
  out->size = out->type == EMEL_FILE_REGULAR ? (uint64_t)st.st_size : 0;
  out->device = (uint64_t)st.st_dev;
  out->inode = (uint64_t)st.st_ino;
  out->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + (int64_t)st.st_mtim.tv_nsec;
  return 0;
}

static int64_t os_pread(void *user, int fd, void *buf, size_t len, uint64_t offset) {
  (void)user;
  if (offset > (uint64_t)INT64_MAX) return -EINVAL;
  ssize_t n = pread(fd, buf, len, (off_t)offset);
  return n < 0 ? -errno : (int64_t)n;
}

static int64_t os_preadv(void *user, int fd, const emel_iovec *iov, int iovcnt, uint64_t offset) {
  (void)user;
  if (offset > (uint64_t)INT64_MAX || iovcnt < 1 || iovcnt > EMEL_PLATFORM_IOV_MAX) return -EINVAL;
  struct iovec v[EMEL_PLATFORM_IOV_MAX];
  for (int i = 0; i < iovcnt; i++) {
    v[i].iov_base = iov[i].base;
    v[i].iov_len = iov[i].len;
  }
  ssize_t n = preadv(fd, v, iovcnt, (off_t)offset);
  return n < 0 ? -errno : (int64_t)n;
}

static int os_map(void *user, int fd, uint64_t offset, size_t len, void **addr) {
  (void)user;
  if (offset > (uint64_t)INT64_MAX) return -EINVAL;
  void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, (off_t)offset);
  if (p == MAP_FAILED) return -errno;
  *addr = p;
  return 0;
}

static int os_unmap(void *user, void *addr, size_t len) {
  (void)user;
  return munmap(addr, len) == 0 ? 0 : -errno;
}

static int os_advise(void *user, void *addr, size_t len, emel_map_advice advice) {
  (void)user;
  int a;
  switch (advice) {
  case EMEL_ADVISE_NORMAL: a = MADV_NORMAL; break;
  case EMEL_ADVISE_SEQUENTIAL: a = MADV_SEQUENTIAL; break;
  case EMEL_ADVISE_WILLNEED: a = MADV_WILLNEED; break;
  case EMEL_ADVISE_DONTNEED: a = MADV_DONTNEED; break;
#ifdef MADV_POPULATE_READ
  case EMEL_ADVISE_POPULATE_READ: a = MADV_POPULATE_READ; break;
#endif
#ifdef MADV_HUGEPAGE
  case EMEL_ADVISE_HUGEPAGE: a = MADV_HUGEPAGE; break;
#endif
  default: return -EINVAL;
  }
  return madvise(addr, len, a) == 0 ? 0 : -errno;
}

static int os_fadvise(void *user, int fd, uint64_t offset, uint64_t len, emel_file_advice advice) {
  (void)user;
  int a;
  switch (advice) {
  case EMEL_FADVISE_NORMAL: a = POSIX_FADV_NORMAL; break;
  case EMEL_FADVISE_SEQUENTIAL: a = POSIX_FADV_SEQUENTIAL; break;
  case EMEL_FADVISE_WILLNEED: a = POSIX_FADV_WILLNEED; break;
  case EMEL_FADVISE_DONTNEED: a = POSIX_FADV_DONTNEED; break;
  default: return -EINVAL;
  }
  if (offset > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX) return -EINVAL;
  return -posix_fadvise(fd, (off_t)offset, (off_t)len, a); /* returns the error number itself */
}

static int os_lock(void *user, void *addr, size_t len) {
  (void)user;
  return mlock(addr, len) == 0 ? 0 : -errno;
}

static int os_unlock(void *user, void *addr, size_t len) {
  (void)user;
  return munlock(addr, len) == 0 ? 0 : -errno;
}

static void *os_alloc(void *user, size_t size, size_t alignment) {
  (void)user;
  void *p = NULL;
  if (size == 0) size = 1;
  if (alignment < sizeof(void *)) alignment = sizeof(void *); /* posix_memalign's minimum */
  return posix_memalign(&p, alignment, size) == 0 ? p : NULL;
}

static void os_free(void *user, void *ptr, size_t size) {
  (void)user;
  (void)size;
  free(ptr);
}

static size_t os_page_size(void *user) {
  (void)user;
  long n = sysconf(_SC_PAGESIZE);
  return n > 0 ? (size_t)n : 4096u;
}

static int os_can_map(void *user) {
  (void)user;
  return 1;
}

static int os_thread_start(void *user, void *(*fn)(void *), void *arg, uintptr_t *thread) {
  (void)user;
  pthread_t t;
  int e = pthread_create(&t, NULL, fn, arg);
  if (e != 0) return -e;
  _Static_assert(sizeof(pthread_t) <= sizeof(uintptr_t), "pthread_t must fit a uintptr_t");
  *thread = (uintptr_t)t;
  return 0;
}

static int os_thread_join(void *user, uintptr_t thread) {
  (void)user;
  return -pthread_join((pthread_t)thread, NULL); /* returns the error number itself */
}

static int os_cpu_count(void *user) {
  (void)user;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (n < 4096 ? (int)n : 4096) : 1;
}

/* ---- guarded reads of mapped memory ----
 *
 * One process-wide SIGBUS handler, installed once. Each thread keeps a stack
 * of the guarded reads it is inside (records on its own stack): a SIGBUS the
 * kernel raised for an access inside one of them jumps back to that guard;
 * anything else goes to the handler that was there before, as the kernel
 * would have delivered it. */

typedef struct guard_record {
  sigjmp_buf jump;
  uintptr_t lo, hi; /* the guarded range [lo, hi) */
  struct guard_record *outer;
} guard_record;

/* initial-exec: the handler reads it without the TLS allocator, which is not
 * async-signal-safe. */
#if defined(__GNUC__)
static _Thread_local guard_record *guard_top __attribute__((tls_model("initial-exec")));
#else
static _Thread_local guard_record *guard_top;
#endif
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static struct sigaction guard_previous; /* written once, before the handler is installed */
static int guard_installed;

/* A SIGBUS that is not ours, delivered as if the guard were not installed. */
static void guard_chain(int sig, siginfo_t *info, void *context) {
  const struct sigaction *prev = &guard_previous;
  const int fault = info && info->si_code > 0; /* raised by the kernel for an access, not sent */
  if (prev->sa_flags & SA_SIGINFO) {
    prev->sa_sigaction(sig, info, context);
    return;
  }
  if (prev->sa_handler == SIG_IGN && !fault) return; /* a sent SIGBUS that was ignored */
  if (prev->sa_handler != SIG_IGN && prev->sa_handler != SIG_DFL) {
    prev->sa_handler(sig);
    return;
  }
  /* SIG_DFL, or SIG_IGN for a fault (which the kernel does not let a process
   * ignore): the default action, terminate with a core. Returning re-runs a
   * faulting access, which faults again into it; a sent signal is raised
   * again and delivered when this handler returns. */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGBUS, &dfl, NULL);
  if (!fault) raise(SIGBUS);
}

static void guard_handler(int sig, siginfo_t *info, void *context) {
  if (info && info->si_code > 0) {
    const uintptr_t at = (uintptr_t)info->si_addr;
    for (guard_record *g = guard_top; g; g = g->outer)
      if (at >= g->lo && at < g->hi) siglongjmp(g->jump, 1);
  }
  guard_chain(sig, info, context);
}

static void guard_install(void) {
  /* Read the previous handler before ours can run, so no SIGBUS of another
   * thread ever finds guard_previous unset. */
  if (sigaction(SIGBUS, NULL, &guard_previous) != 0) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = guard_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  guard_installed = sigaction(SIGBUS, &sa, NULL) == 0;
}

static int os_guard(void *user, const void *addr, size_t len, void (*touch)(void *arg), void *arg) {
  (void)user;
  pthread_once(&guard_once, guard_install);
  if (!guard_installed) { /* sigaction refused: no guard to give */
    touch(arg);
    return 0;
  }
  /* A SIGBUS raised while it is blocked kills the process whatever the
   * handler: unblock it for the touch, restore the caller's mask after. */
  sigset_t bus, old;
  sigemptyset(&bus);
  sigaddset(&bus, SIGBUS);
  pthread_sigmask(SIG_UNBLOCK, &bus, &old);
  guard_record r;
  r.lo = (uintptr_t)addr;
  r.hi = len > UINTPTR_MAX - r.lo ? UINTPTR_MAX : r.lo + len;
  r.outer = guard_top;
  int faulted = 0;
  if (sigsetjmp(r.jump, 1) == 0) {
    guard_top = &r;
    touch(arg);
  } else {
    faulted = 1;
  }
  guard_top = r.outer;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return faulted ? -EFAULT : 0;
}

static int os_random(void *user, void *buf, size_t len) {
  (void)user;
  unsigned char *p = buf;
  while (len > 0) {
#ifdef __linux__
    /* Non-blocking: early in boot, before the pool is initialized, this
     * fails with EAGAIN instead of hanging the caller. */
    ssize_t n = getrandom(p, len, GRND_NONBLOCK);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? -errno : -EIO;
#else
    size_t n = len < 256 ? len : 256; /* getentropy's most per call */
    if (getentropy(p, n) != 0) return -errno;
#endif
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* ---- load jobs' wakeup descriptor and clock ---- */

static int os_event_open(void *user) {
  (void)user;
#ifdef __linux__
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return fd >= 0 ? fd : -errno;
#else
  return -ENOSYS;
#endif
}

static int os_event_close(void *user, int fd) {
  (void)user;
  return close(fd) == 0 ? 0 : -errno;
}

/* One write(2): async-signal-safe, and errno is saved for the interrupted code. */
static int os_event_signal(void *user, int fd) {
  (void)user;
  const int saved = errno;
  const uint64_t one = 1;
  const ssize_t n = write(fd, &one, sizeof one);
  /* EAGAIN: the counter is at its maximum, so the descriptor is readable anyway. */
  const int r = n == (ssize_t)sizeof one || errno == EAGAIN ? 0 : -errno;
  errno = saved;
  return r;
}

static int os_event_wait(void *user, int fd, int timeout_ms) {
  (void)user;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  const int n = poll(&p, 1, timeout_ms < 0 ? -1 : timeout_ms);
  if (n < 0) return -errno;
  if (n == 0) return 0;
  uint64_t count;
  if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN) return -errno;
  return 1;
}

static uint64_t os_clock_ns(void *user) {
  (void)user;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The ring: io_uring through liburing where the build has it. A ring is used
 * by one thread at a time (a read strategy lane). `inflight` counts reads
 * queued or sent and not yet returned by ring_wait, so that close can wait for
 * them: the kernel must never write a buffer the caller freed. */
#ifdef EMEL_HAVE_URING
/* One read in flight: the caller's tag, and its buffer (memcheck is told the
 * kernel wrote it: valgrind cannot see io_uring's writes). */
typedef struct os_ring_slot {
  uint64_t tag;
  void *buf;
  unsigned next_free;
} os_ring_slot;

typedef struct os_ring {
  struct io_uring ring;
  unsigned inflight, depth, free_head; /* free_head: slot + 1; 0: every slot in flight */
  os_ring_slot slots[];
} os_ring;

enum { OS_RING_CANCEL_TAG = 0 }; /* the cancel's own completion; a read's is its slot + 1 */

static int os_ring_open(void *user, unsigned depth, void **out) {
  (void)user;
  if (depth == 0) depth = 1;
  if (depth > 65536) return -EINVAL;
  os_ring *r = calloc(1, sizeof *r + depth * sizeof r->slots[0]);
  if (!r) return -ENOMEM;
  int e = io_uring_queue_init(depth, &r->ring, 0);
  if (e < 0) {
    free(r);
    return e; /* -ENOSYS: no io_uring; -EPERM: forbidden (seccomp, io_uring_disabled) */
  }
  r->depth = depth;
  for (unsigned i = 0; i < depth; i++) r->slots[i].next_free = i + 2 <= depth ? i + 2 : 0;
  r->free_head = 1;
  *out = r;
  return 0;
}

/* A completion's slot back to the free list; its tag and how much was written. */
static uint64_t os_ring_complete(os_ring *r, uint64_t data, int res) {
  os_ring_slot *s = &r->slots[data - 1];
#ifdef EMEL_HAVE_MEMCHECK_H
  if (res > 0) VALGRIND_MAKE_MEM_DEFINED(s->buf, (size_t)res);
#else
  (void)res;
#endif
  s->next_free = r->free_head;
  r->free_head = (unsigned)data;
  r->inflight--;
  return s->tag;
}

static int os_ring_close(void *user, void *ring) {
  (void)user;
  os_ring *r = ring;
  int cancel_pending = 0;
  if (r->inflight > 0) {
    /* Regular-file reads always complete; the cancel (5.19+) only makes it sooner. */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe && io_uring_submit(&r->ring) >= 0) sqe = io_uring_get_sqe(&r->ring);
    if (sqe) {
      io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
      io_uring_sqe_set_data64(sqe, OS_RING_CANCEL_TAG);
      cancel_pending = 1;
    }
  }
  int rc = 0;
  while (r->inflight > 0 || cancel_pending) {
    struct io_uring_cqe *cqe;
    int e = io_uring_submit_and_wait(&r->ring, 1);
    if (e < 0 && e != -EINTR) {
      rc = e; /* cannot wait: leak the ring rather than free memory the kernel may write */
      break;
    }
    while (io_uring_peek_cqe(&r->ring, &cqe) == 0) {
      if (io_uring_cqe_get_data64(cqe) == OS_RING_CANCEL_TAG) cancel_pending = 0;
      else (void)os_ring_complete(r, io_uring_cqe_get_data64(cqe), cqe->res);
      io_uring_cqe_seen(&r->ring, cqe);
    }
  }
  if (rc != 0) return rc;
  io_uring_queue_exit(&r->ring);
  free(r);
  return 0;
}

static int os_ring_read(void *user, void *ring, int fd, void *buf, size_t len, uint64_t offset, uint64_t tag) {
  (void)user;
  os_ring *r = ring;
  if (len > UINT32_MAX || offset > (uint64_t)INT64_MAX) return -EINVAL;
  if (r->free_head == 0) return -EBUSY; /* more in flight than the depth asked for */
  struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
  if (!sqe) { /* the submission queue is full: send it */
    int e = io_uring_submit(&r->ring);
    if (e < 0) return e;
    sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return -EBUSY;
  }
  const unsigned slot = r->free_head;
  r->free_head = r->slots[slot - 1].next_free;
  r->slots[slot - 1].tag = tag;
  r->slots[slot - 1].buf = buf;
  io_uring_prep_read(sqe, fd, buf, (unsigned)len, offset);
  io_uring_sqe_set_data64(sqe, slot);
  r->inflight++;
  return 0;
}

static int os_ring_wait(void *user, void *ring, unsigned min, emel_ring_completion *out, unsigned max) {
  (void)user;
  os_ring *r = ring;
  if (min > r->inflight) min = r->inflight; /* never wait for what cannot come */
  int e = io_uring_submit_and_wait(&r->ring, min);
  unsigned n = 0;
  struct io_uring_cqe *cqe;
  while (n < max && io_uring_peek_cqe(&r->ring, &cqe) == 0) {
    const uint64_t data = io_uring_cqe_get_data64(cqe);
    if (data != OS_RING_CANCEL_TAG) {
      out[n].tag = os_ring_complete(r, data, cqe->res);
      out[n].res = cqe->res;
      n++;
    }
    io_uring_cqe_seen(&r->ring, cqe);
  }
  if (n == 0 && e < 0) return e;
  return (int)n;
}
#else
static int os_ring_open(void *user, unsigned depth, void **out) {
  (void)user, (void)depth, (void)out;
  return -ENOSYS; /* built without liburing */
}

static int os_ring_close(void *user, void *ring) {
  (void)user, (void)ring;
  return 0;
}

static int os_ring_read(void *user, void *ring, int fd, void *buf, size_t len, uint64_t offset, uint64_t tag) {
  (void)user, (void)ring, (void)fd, (void)buf, (void)len, (void)offset, (void)tag;
  return -ENOSYS;
}

static int os_ring_wait(void *user, void *ring, unsigned min, emel_ring_completion *out, unsigned max) {
  (void)user, (void)ring, (void)min, (void)out, (void)max;
  return -ENOSYS;
}
#endif

/* A caller's own file layer (open, pread or preadv replaced) with the default
 * ring: the ring would read the caller's descriptors behind its back, so it is
 * one that never opens and every read goes through the caller's pread. */
static int no_ring_open(void *user, unsigned depth, void **out) {
  (void)user, (void)depth, (void)out;
  return -ENOSYS;
}

/* Every op of the list is os_<name> (posix_ would meet libc: posix_fadvise). */
static const emel_platform_ops posix_ops = {
    .struct_size = sizeof(emel_platform_ops),
    .user = NULL,
#define EMEL_POSIX_OP_(NAME, name, ret, params, pair) .name = os_##name,
    EMEL_PLATFORM_OPS_LIST(EMEL_POSIX_OP_)
#undef EMEL_POSIX_OP_
};

const emel_platform_ops *emel_platform_default(void) { return &posix_ops; }

emel_status emel_platform_resolve(emel_platform_ops *out, const emel_platform_ops *ops, emel_error *err) {
  emel_error e = {.code = emel_struct_take(out, sizeof *out, ops)};
  if (e.code != EMEL_OK) e.detail = "emel_platform_ops.struct_size";
  /* An op given without its pair: the default of the other could not undo
   * (or would wrongly undo) what the caller's did. */
#define EMEL_PAIRED_(NAME, name, ret, params, pair)           \
  if (e.code == EMEL_OK && !out->name != !out->pair) {       \
    e.code = EMEL_PLATFORM_OPS_UNPAIRED;                     \
    e.detail = "emel_platform_ops." #name;                   \
  }
  EMEL_PLATFORM_OPS_LIST(EMEL_PAIRED_)
#undef EMEL_PAIRED_
  if (e.code != EMEL_OK) *out = posix_ops; /* never half the caller's: a later free must match its alloc */
  if (!ops) out->user = posix_ops.user;
#define EMEL_FILL_(NAME, name, ret, params, pair) \
  if (!out->name) out->name = posix_ops.name;
  EMEL_PLATFORM_OPS_LIST(EMEL_FILL_)
#undef EMEL_FILL_
  if ((out->open != os_open || out->pread != os_pread || out->preadv != os_preadv) && out->ring_open == os_ring_open)
    out->ring_open = no_ring_open; /* its pair, the default close, is then never called */
  return emel_report_error(err, e);
}

const char *emel_platform_op_name(size_t op) {
  static const char *const names[] = {
#define EMEL_OP_NAME_(NAME, name, ret, params, pair) #name,
      EMEL_PLATFORM_OPS_LIST(EMEL_OP_NAME_)
#undef EMEL_OP_NAME_
  };
  return op < sizeof names / sizeof names[0] ? names[op] : NULL;
}

/* The platform seam: defaults, partial overrides, that only the defaults'
 * file includes OS headers (so every OS call is injectable), and the real
 * POSIX operations themselves, called directly: the fault platform sits above
 * them, so only these tests see a mistake inside src/emel/platform/posix.c.
 * Each test names the mutation of posix.c it was seen to catch. */
#define _GNU_SOURCE 1
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <setjmp.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "emel/platform.h"

static int failing_open(void *user, const char *path, unsigned flags) {
  (void)user;
  (void)path;
  (void)flags;
  return -EACCES;
}

static int passing_close(void *user, int fd) {
  (void)user;
  (void)fd;
  return 0;
}

static void *no_alloc(void *user, size_t size, size_t alignment) {
  (void)user;
  (void)size;
  (void)alignment;
  return NULL;
}

static int failing_guard(void *user, const void *addr, size_t len, void (*touch)(void *), void *arg) {
  (void)user;
  (void)addr;
  (void)len;
  (void)touch;
  (void)arg;
  return -ENOSYS;
}

START_TEST(test_overriding_one_entry_keeps_the_defaults_for_the_rest) {
  emel_platform_ops mine = EMEL_PLATFORM_OPS_INIT(.open = failing_open, .close = passing_close);
  emel_platform_ops resolved;
  ck_assert_int_eq(emel_platform_resolve(&resolved, &mine, NULL), EMEL_OK);
  const emel_platform_ops *d = emel_platform_default();
  ck_assert(resolved.open == failing_open);
  ck_assert(resolved.close == passing_close);
  ck_assert(resolved.pread == d->pread);
  ck_assert(resolved.map == d->map);
  ck_assert(resolved.free == d->free);
  ck_assert(resolved.random == d->random); /* the newest entry too: the table's end */
  ck_assert_uint_eq(resolved.struct_size, sizeof resolved);
  ck_assert_int_eq(resolved.open(resolved.user, "/", 0), -EACCES);
  size_t page = resolved.page_size(resolved.user);
  ck_assert_uint_eq(page & (page - 1), 0);
}
END_TEST

/* Guards against the default ring reading behind a caller's own file layer
 * (its descriptors are not the kernel's, or its pread is how it reads): a
 * table that replaces open, pread or preadv and not the ring gets a ring that
 * never opens, so the read strategy falls back to the caller's pread. */
START_TEST(test_a_callers_file_layer_never_meets_the_default_ring) {
  const emel_platform_ops *d = emel_platform_default();
  emel_platform_ops resolved;
  void *ring = NULL;
  emel_platform_ops mine = EMEL_PLATFORM_OPS_INIT(.open = failing_open, .close = passing_close);
  ck_assert_int_eq(emel_platform_resolve(&resolved, &mine, NULL), EMEL_OK);
  ck_assert_int_eq(resolved.ring_open(resolved.user, 4, &ring), -ENOSYS);
  ck_assert_ptr_null(ring);
  emel_platform_ops copied = *d; /* a copy of the defaults, then one with its own file layer */
  ck_assert_int_eq(emel_platform_resolve(&resolved, &copied, NULL), EMEL_OK);
  ck_assert(resolved.ring_open == d->ring_open); /* every file op the default: the default ring */
  copied.open = failing_open;
  copied.close = passing_close;
  ck_assert_int_eq(emel_platform_resolve(&resolved, &copied, NULL), EMEL_OK);
  ck_assert_int_eq(resolved.ring_open(resolved.user, 4, &ring), -ENOSYS);
  ck_assert_int_eq(emel_platform_resolve(&resolved, NULL, NULL), EMEL_OK);
  ck_assert(resolved.ring_open == d->ring_open);
}
END_TEST

/* Guards against the caller's alloc paired with the POSIX free (or a caller's
 * open with the POSIX close): every pair of the list, each member alone. */
START_TEST(test_an_op_given_without_its_pair_is_refused_by_name) {
  static const struct {
    size_t a, b; /* offsets of the two members */
  } pairs[] = {
      {offsetof(emel_platform_ops, open), offsetof(emel_platform_ops, close)},
      {offsetof(emel_platform_ops, map), offsetof(emel_platform_ops, unmap)},
      {offsetof(emel_platform_ops, lock), offsetof(emel_platform_ops, unlock)},
      {offsetof(emel_platform_ops, alloc), offsetof(emel_platform_ops, free)},
      {offsetof(emel_platform_ops, thread_start), offsetof(emel_platform_ops, thread_join)},
      {offsetof(emel_platform_ops, event_open), offsetof(emel_platform_ops, event_close)},
  };
  const emel_platform_ops *d = emel_platform_default();
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    for (int which = 0; which < 2; which++) {
      emel_platform_ops mine = EMEL_PLATFORM_OPS_INIT(.user = &mine), resolved;
      /* any non-NULL function pointer will do: it is never called */
      memcpy((char *)&mine + (which ? pairs[i].b : pairs[i].a), (const char *)d + (which ? pairs[i].b : pairs[i].a),
             sizeof(void (*)(void)));
      ck_assert_int_eq(emel_platform_resolve(&resolved, &mine, NULL), EMEL_PLATFORM_OPS_UNPAIRED);
      ck_assert(resolved.alloc == d->alloc && resolved.free == d->free); /* all defaults, never half */
      ck_assert_ptr_eq(resolved.user, d->user);
    }
  }
  emel_platform_ops alloc_only = EMEL_PLATFORM_OPS_INIT(.alloc = no_alloc), resolved;
  ck_assert_int_eq(emel_platform_resolve(&resolved, &alloc_only, NULL), EMEL_PLATFORM_OPS_UNPAIRED);
  /* The one error convention: err is filled whole and names the pair. */
  emel_error err = {.code = EMEL_OK, .tensor = 7};
  ck_assert_int_eq(emel_platform_resolve(&resolved, &alloc_only, &err), EMEL_PLATFORM_OPS_UNPAIRED);
  ck_assert_int_eq(err.code, EMEL_PLATFORM_OPS_UNPAIRED);
  ck_assert_uint_eq(err.tensor, 0);
  ck_assert_str_eq(err.detail, "emel_platform_ops.alloc");
  ck_assert_str_eq(emel_status_name(EMEL_PLATFORM_OPS_UNPAIRED), "PLATFORM_OPS_UNPAIRED");
}
END_TEST

/* Guards against reading members a caller's (older) header did not have, and
 * against taking a table from a newer header, or one never initialized. */
START_TEST(test_struct_size_decides_which_ops_are_read) {
  const emel_platform_ops *d = emel_platform_default();
  emel_platform_ops resolved;
  /* An older caller: its table ended before guard and random. */
  emel_platform_ops old = EMEL_PLATFORM_OPS_INIT(.guard = failing_guard);
  old.struct_size = offsetof(emel_platform_ops, guard);
  ck_assert_int_eq(emel_platform_resolve(&resolved, &old, NULL), EMEL_OK);
  ck_assert(resolved.guard == d->guard);
  ck_assert_uint_eq(resolved.struct_size, sizeof resolved);
  /* A newer caller, and one that never set struct_size. */
  emel_platform_ops newer = EMEL_PLATFORM_OPS_INIT(.guard = failing_guard);
  newer.struct_size = sizeof newer + sizeof(void *);
  ck_assert_int_eq(emel_platform_resolve(&resolved, &newer, NULL), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert(resolved.guard == d->guard);
  emel_platform_ops zero;
  memset(&zero, 0, sizeof zero);
  ck_assert_int_eq(emel_platform_resolve(&resolved, &zero, NULL), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_int_eq(emel_platform_resolve(&resolved, NULL, NULL), EMEL_OK);
  ck_assert(resolved.open == d->open);
}
END_TEST

/* The load jobs' wakeup descriptor: readable once signalled (any number of
 * times), drained by the wait; a wait on an unsignalled one times out. The
 * clock never goes back. */
START_TEST(test_event_descriptor_and_clock) {
  const emel_platform_ops *d = emel_platform_default();
  const int fd = d->event_open(d->user);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(d->event_wait(d->user, fd, 0), 0);
  ck_assert_int_eq(d->event_signal(d->user, fd), 0);
  ck_assert_int_eq(d->event_signal(d->user, fd), 0);
  ck_assert_int_eq(d->event_wait(d->user, fd, -1), 1);
  ck_assert_int_eq(d->event_wait(d->user, fd, 1), 0); /* drained */
  ck_assert_int_eq(d->event_close(d->user, fd), 0);
  const uint64_t a = d->clock_ns(d->user), b = d->clock_ns(d->user);
  ck_assert_uint_ge(b, a);
  ck_assert_uint_gt(a, 0);
}
END_TEST

/* Guards against the list and the names drifting apart, and against entries
 * the library never calls (file_size was one) coming back. */
START_TEST(test_the_ops_list_names_every_member_once) {
  static const char *const expected[] = {"open",      "close",       "pread",        "preadv",    "map",
                                         "unmap",     "advise",      "fadvise",      "lock",      "unlock",
                                         "alloc",     "free",        "page_size",    "can_map",   "thread_start",
                                         "thread_join", "cpu_count", "file_identity", "guard",    "random",
                                         "event_open", "event_close", "event_signal", "event_wait", "clock_ns",
                                         "ring_open", "ring_close", "ring_read", "ring_wait"};
  const size_t n = sizeof expected / sizeof expected[0];
  for (size_t i = 0; i < n; i++) ck_assert_str_eq(emel_platform_op_name(i), expected[i]);
  ck_assert_ptr_null(emel_platform_op_name(n));
  ck_assert_uint_eq(sizeof(emel_platform_ops), 2 * sizeof(void *) + n * sizeof(void (*)(void)));
  const emel_platform_ops *d = emel_platform_default();
  ck_assert_uint_eq(d->struct_size, sizeof *d);
  const char *p = (const char *)d + offsetof(emel_platform_ops, open);
  for (size_t i = 0; i < n; i++) { /* every default set */
    void (*fn)(void);
    memcpy(&fn, p + i * sizeof fn, sizeof fn);
    ck_assert_msg(fn != NULL, "default %s is NULL", expected[i]);
  }
}
END_TEST

START_TEST(test_the_defaults_report_errors_as_negative_errno) {
  const emel_platform_ops *d = emel_platform_default();
  ck_assert_int_eq(d->open(d->user, "/nonexistent/emel-io/file", 0), -ENOENT);
  int fd = d->open(d->user, EMEL_SOURCE_DIR "/CMakeLists.txt", 0);
  ck_assert_int_ge(fd, 0);
  emel_file_identity id;
  ck_assert_int_eq(d->file_identity(d->user, fd, &id), 0);
  uint64_t size = id.size;
  ck_assert_uint_gt(size, 100);
  char buf[16];
  ck_assert_int_eq(d->pread(d->user, fd, buf, sizeof buf, size), 0); /* end of file */
  ck_assert_int_eq(d->close(d->user, fd), 0);
  ck_assert_int_eq(d->close(d->user, fd), -EBADF);
  int dir = d->open(d->user, EMEL_SOURCE_DIR, 0);
  ck_assert_int_ge(dir, 0);
  ck_assert_int_eq(d->file_identity(d->user, dir, &id), 0);
  ck_assert_int_eq(id.type, EMEL_FILE_DIRECTORY); /* not a regular file: refused by the caller */
  d->close(d->user, dir);
  void *p = d->alloc(d->user, 100, 64);
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_eq((uintptr_t)p % 64, 0);
  d->free(d->user, p, 100);
}
END_TEST

static const char *const os_headers[] = {"<sys/", "<unistd.h>", "<fcntl.h>", "<dlfcn.h>", "<pthread.h>",
                                         "<signal.h>", "<dirent.h>", "<linux/"};

static int scan(const char *dir, int *files) {
  int offenders = 0;
  DIR *d = opendir(dir);
  ck_assert_msg(d != NULL, "cannot open %s", dir);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      offenders += scan(path, files);
      continue;
    }
    size_t n = strlen(path);
    if (n < 2 || (strcmp(path + n - 2, ".c") && strcmp(path + n - 2, ".h") && strcmp(path + n - 3, ".rl"))) continue;
    if (strstr(path, "/src/emel/platform/posix.c")) continue;
    (*files)++;
    FILE *f = fopen(path, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f)) {
      if (!strstr(line, "#include")) continue;
      for (size_t h = 0; h < sizeof os_headers / sizeof *os_headers; h++) {
        if (strstr(line, os_headers[h])) {
          fprintf(stderr, "%s includes an OS header: %s", path, line);
          offenders++;
        }
      }
    }
    if (f) fclose(f);
  }
  closedir(d);
  return offenders;
}

/* Guards against: a random op that returns without filling the buffer, or
 * fills it with the same bytes every time (every table's seed equal). */
START_TEST(test_the_default_random_fills_the_buffer) {
  const emel_platform_ops *d = emel_platform_default();
  unsigned char a[300], b[300]; /* more than getentropy's 256 per call */
  memset(a, 0, sizeof a);
  memset(b, 0, sizeof b);
  ck_assert_int_eq(d->random(d->user, a, sizeof a), 0);
  ck_assert_int_eq(d->random(d->user, b, sizeof b), 0);
  ck_assert(memcmp(a, b, sizeof a) != 0);
  int zeros = 0;
  for (size_t i = 256; i < sizeof a; i++) zeros += a[i] == 0;
  ck_assert_int_lt(zeros, 10); /* the tail past 256 bytes is filled too */
}
END_TEST

START_TEST(test_only_the_defaults_file_includes_os_headers) {
  int files = 0;
  int offenders = scan(EMEL_SOURCE_DIR "/src", &files) + scan(EMEL_SOURCE_DIR "/include", &files) +
                  scan(EMEL_SOURCE_DIR "/statecharts", &files) + scan(EMEL_SOURCE_DIR "/gen", &files);
  ck_assert_int_gt(files, 5);
  ck_assert_int_eq(offenders, 0);
}
END_TEST

/* ---- the real POSIX operations ---- */

static const emel_platform_ops *d;
static char tmp_path[64];
static unsigned char file_bytes[3 * 4096 + 100];

static unsigned char byte_at(size_t i) { return (unsigned char)((i * 131u) ^ (i >> 8)); }

/* A regular file of known bytes on the disk's filesystem (not tmpfs, for O_DIRECT). */
static void real_setup(void) {
  d = emel_platform_default();
  snprintf(tmp_path, sizeof tmp_path, "/var/tmp/emel-platform-XXXXXX");
  int fd = mkstemp(tmp_path);
  ck_assert_int_ge(fd, 0);
  for (size_t i = 0; i < sizeof file_bytes; i++) file_bytes[i] = byte_at(i);
  ck_assert_int_eq(write(fd, file_bytes, sizeof file_bytes), (ssize_t)sizeof file_bytes);
  ck_assert_int_eq(fsync(fd), 0);
  close(fd);
}

static void real_teardown(void) { unlink(tmp_path); }

static int open_ok(unsigned flags) {
  int fd = d->open(d->user, tmp_path, flags);
  ck_assert_msg(fd >= 0, "open: %s", strerror(-fd));
  return fd;
}

/* Signals sent to the test's thread until `stop`, from a helper thread; the
 * handler is installed without SA_RESTART, as emel-load's SIGINT handler is,
 * so a blocking call it interrupts returns EINTR. A storm, not one signal:
 * one sent before the call blocks would interrupt nothing. */
typedef struct pester {
  pthread_t target, thread;
  volatile sig_atomic_t stop;
  int lease_fd; /* >= 0: release this lease after a while instead of signalling */
} pester;

static volatile sig_atomic_t signals_seen;
static void on_signal(int sig) {
  (void)sig;
  signals_seen++;
}

static void *pester_run(void *arg) {
  pester *p = arg;
  struct timespec tick = {0, 20 * 1000 * 1000};
  if (p->lease_fd >= 0) {
    nanosleep(&tick, NULL);
    nanosleep(&tick, NULL);
    fcntl(p->lease_fd, F_SETLEASE, F_UNLCK);
    return NULL;
  }
  while (!p->stop) {
    pthread_kill(p->target, SIGUSR1);
    nanosleep(&tick, NULL);
  }
  return NULL;
}

static void pester_start(pester *p, int lease_fd) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* sa_flags 0: no SA_RESTART */
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
  signal(SIGIO, SIG_IGN); /* a lease holder (this process) is told of the break by SIGIO */
  p->target = pthread_self();
  p->stop = 0;
  p->lease_fd = lease_fd;
  ck_assert_int_eq(pthread_create(&p->thread, NULL, pester_run, p), 0);
}

static void pester_stop(pester *p) {
  p->stop = 1;
  pthread_join(p->thread, NULL);
}

/* A write lease on the test file: an open for reading by anyone then waits
 * (up to /proc/sys/fs/lease-break-time, 45 s by default) for it to be
 * released. The one real blocking open left once FIFOs no longer block.
 * -1 (and a message) where leases are not available. */
static int take_lease(void) {
  int fd = open(tmp_path, O_RDONLY);
  ck_assert_int_ge(fd, 0);
  if (fcntl(fd, F_SETLEASE, F_WRLCK) != 0) {
    fprintf(stderr, "skipped: no file lease on %s: %s\n", tmp_path, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

/* Mutation caught: `do open() while (errno == EINTR)` (the old loop): the
 * open then waits out the lease-break-time and the test times out. */
START_TEST(test_a_signal_stops_a_blocking_open_with_eintr) {
  int lease = take_lease();
  if (lease < 0) return;
  pester p;
  pester_start(&p, -1);
  int fd = d->open(d->user, tmp_path, EMEL_OPEN_READ);
  pester_stop(&p);
  ck_assert_int_eq(fd, -EINTR);
  ck_assert_int_gt(signals_seen, 0);
  fcntl(lease, F_SETLEASE, F_UNLCK);
  close(lease);
}
END_TEST

/* Mutation caught: dropping the blocking retry after EWOULDBLOCK: a leased
 * file would fail with EAGAIN instead of opening once the lease is released. */
START_TEST(test_an_open_waits_for_a_lease_to_be_released) {
  int lease = take_lease();
  if (lease < 0) return;
  pester p;
  pester_start(&p, lease);
  int fd = d->open(d->user, tmp_path, EMEL_OPEN_READ);
  pester_stop(&p);
  ck_assert_int_ge(fd, 0);
  d->close(d->user, fd);
  close(lease);
}
END_TEST

/* Mutation caught: opening without O_NONBLOCK (blocks until a writer comes:
 * the test times out, signals or not). */
START_TEST(test_a_fifo_opens_at_once_even_under_signals_and_is_identified) {
  char fifo[96];
  snprintf(fifo, sizeof fifo, "%s.fifo", tmp_path);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  alarm(10); /* without Check's fork (valgrind runs), a regression dies here instead of hanging */
  pester p;
  pester_start(&p, -1);
  int fd = d->open(d->user, fifo, EMEL_OPEN_READ);
  pester_stop(&p);
  alarm(0);
  unlink(fifo);
  ck_assert_int_ge(fd, 0);
  emel_file_identity id;
  memset(&id, 0xff, sizeof id);
  ck_assert_int_eq(d->file_identity(d->user, fd, &id), 0);
  ck_assert_int_eq(id.type, EMEL_FILE_FIFO);
  ck_assert_uint_eq(id.size, 0);
  ck_assert_int_eq(d->close(d->user, fd), 0);
}
END_TEST

/* Mutations caught: O_NONBLOCK left set, O_CLOEXEC or O_RDONLY dropped,
 * O_DIRECT dropped or always set. */
START_TEST(test_open_flags_are_what_the_contract_says) {
  int fd = open_ok(EMEL_OPEN_READ);
  int fl = fcntl(fd, F_GETFL);
  ck_assert_int_eq(fl & O_ACCMODE, O_RDONLY);
  ck_assert_int_eq(fl & O_NONBLOCK, 0); /* only the open itself is non-blocking */
  ck_assert_int_eq(fl & O_DIRECT, 0);
  ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  d->close(d->user, fd);

  fd = d->open(d->user, tmp_path, EMEL_OPEN_DIRECT);
  if (fd == -EINVAL) {
    fprintf(stderr, "skipped: the filesystem of %s refuses O_DIRECT\n", tmp_path);
    return;
  }
  ck_assert_int_ge(fd, 0);
  fl = fcntl(fd, F_GETFL);
  ck_assert_int_ne(fl & O_DIRECT, 0);
  ck_assert_int_eq(fl & O_NONBLOCK, 0); /* clearing O_NONBLOCK kept O_DIRECT */
  d->close(d->user, fd);
}
END_TEST

/* Mutations caught: a wrong field (st_size of a directory, mtime without the
 * nanoseconds or in the wrong unit, device and inode swapped), a type not set. */
START_TEST(test_file_identity_describes_every_kind_of_file) {
  struct timespec when[2] = {{1700000000, 123456789}, {1700000000, 123456789}};
  ck_assert_int_eq(utimensat(AT_FDCWD, tmp_path, when, 0), 0);
  struct stat st;
  ck_assert_int_eq(stat(tmp_path, &st), 0);
  int fd = open_ok(EMEL_OPEN_READ);
  emel_file_identity id;
  memset(&id, 0xff, sizeof id);
  ck_assert_int_eq(d->file_identity(d->user, fd, &id), 0);
  ck_assert_int_eq(id.type, EMEL_FILE_REGULAR);
  ck_assert_uint_eq(id.size, sizeof file_bytes);
  ck_assert_uint_eq(id.device, (uint64_t)st.st_dev);
  ck_assert_uint_eq(id.inode, (uint64_t)st.st_ino);
  ck_assert_int_eq(id.mtime_ns, 1700000000123456789LL);
  d->close(d->user, fd);

  static const struct {
    const char *path;
    emel_file_type type;
  } kinds[] = {{"/var/tmp", EMEL_FILE_DIRECTORY}, {"/dev/null", EMEL_FILE_CHAR_DEVICE}};
  for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
    fd = d->open(d->user, kinds[k].path, EMEL_OPEN_READ);
    ck_assert_int_ge(fd, 0);
    memset(&id, 0xff, sizeof id);
    ck_assert_int_eq(d->file_identity(d->user, fd, &id), 0);
    ck_assert_msg(id.type == kinds[k].type, "%s: type %d", kinds[k].path, (int)id.type);
    ck_assert_uint_eq(id.size, 0); /* a directory's st_size is no byte count */
    d->close(d->user, fd);
  }
  ck_assert_int_eq(d->file_identity(d->user, -1, &id), -EBADF);
}
END_TEST

/* Mutations caught: pread/preadv at the wrong offset, a count that is not
 * the bytes transferred, pieces filled out of order, no limit on iovcnt. */
START_TEST(test_pread_and_preadv_return_the_bytes_at_the_offset) {
  int fd = open_ok(EMEL_OPEN_READ);
  unsigned char buf[300];
  const uint64_t at = 4096 + 7;
  ck_assert_int_eq(d->pread(d->user, fd, buf, sizeof buf, at), (int64_t)sizeof buf);
  ck_assert_mem_eq(buf, file_bytes + at, sizeof buf);
  const uint64_t tail = sizeof file_bytes - 50;
  ck_assert_int_eq(d->pread(d->user, fd, buf, sizeof buf, tail), 50); /* short at the end */
  ck_assert_mem_eq(buf, file_bytes + tail, 50);
  ck_assert_int_eq(d->pread(d->user, fd, buf, sizeof buf, sizeof file_bytes), 0);
  ck_assert_int_eq(d->pread(d->user, fd, buf, sizeof buf, (uint64_t)INT64_MAX + 1), -EINVAL);
  ck_assert_int_eq(d->pread(d->user, -1, buf, sizeof buf, 0), -EBADF);

  unsigned char a[10], b[1], c[200];
  emel_iovec v[3] = {{a, sizeof a}, {b, sizeof b}, {c, sizeof c}};
  ck_assert_int_eq(d->preadv(d->user, fd, v, 3, at), (int64_t)(sizeof a + sizeof b + sizeof c));
  ck_assert_mem_eq(a, file_bytes + at, sizeof a);
  ck_assert_mem_eq(b, file_bytes + at + sizeof a, sizeof b);
  ck_assert_mem_eq(c, file_bytes + at + sizeof a + sizeof b, sizeof c);
  ck_assert_int_eq(d->preadv(d->user, fd, v, 3, tail), 50);
  ck_assert_mem_eq(a, file_bytes + tail, sizeof a);
  ck_assert_mem_eq(c, file_bytes + tail + sizeof a + sizeof b, 50 - sizeof a - sizeof b);
  emel_iovec many[EMEL_PLATFORM_IOV_MAX + 1];
  for (int i = 0; i <= EMEL_PLATFORM_IOV_MAX; i++) many[i] = (emel_iovec){buf, 1};
  ck_assert_int_eq(d->preadv(d->user, fd, many, EMEL_PLATFORM_IOV_MAX, 0), EMEL_PLATFORM_IOV_MAX);
  ck_assert_int_eq(d->preadv(d->user, fd, many, EMEL_PLATFORM_IOV_MAX + 1, 0), -EINVAL);
  ck_assert_int_eq(d->preadv(d->user, fd, many, 0, 0), -EINVAL);
  ck_assert_int_eq(d->preadv(d->user, fd, v, 3, (uint64_t)INT64_MAX + 1), -EINVAL);
  ck_assert_int_eq(d->preadv(d->user, -1, v, 3, 0), -EBADF);
  d->close(d->user, fd);
}
END_TEST

/* ASan turns mlock/munlock into no-ops that succeed. */
#if defined(__SANITIZE_ADDRESS__)
#define ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN_BUILD 1
#endif
#endif
#ifndef ASAN_BUILD
#define ASAN_BUILD 0
#endif

/* The /proc/self/smaps entry of the mapping starting at `addr`: its Rss in
 * kB and its VmFlags line (sr: sequential advised, hg: huge pages advised,
 * lo: locked; the permissions come first on the header line). */
typedef struct vma_info {
  char perms[8];
  long rss_kb;
  char flags[512];
} vma_info;

static vma_info vma_of(const void *addr) {
  vma_info v = {"", -1, ""};
  FILE *f = fopen("/proc/self/smaps", "r");
  ck_assert_ptr_nonnull(f);
  char line[512];
  int in = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long start, end;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3 && strchr(line, '-') < strchr(line, ' ')) {
      in = start == (unsigned long)(uintptr_t)addr;
      if (in) snprintf(v.perms, sizeof v.perms, "%s", perms);
      continue;
    }
    if (!in) continue;
    if (strncmp(line, "Rss:", 4) == 0) v.rss_kb = strtol(line + 4, NULL, 10);
    if (strncmp(line, "VmFlags:", 8) == 0) snprintf(v.flags, sizeof v.flags, "%s", line + 8);
  }
  fclose(f);
  ck_assert_msg(v.rss_kb >= 0, "no mapping at %p in /proc/self/smaps", addr);
  return v;
}

static int has_flag(const vma_info *v, const char *flag) {
  char want[8];
  snprintf(want, sizeof want, " %s", flag);
  const char *p = strstr(v->flags, want);
  return p && (p[3] == ' ' || p[3] == '\n' || p[3] == '\0');
}

/* Mutations caught: `return 0` (or p) instead of -errno from a failed mmap
 * (NULL versus MAP_FAILED), a writable or shared mapping, the offset ignored. */
/* The default ring: several reads in flight, completions by tag with what a
 * pread would return, and a close with reads still in flight that returns
 * only once they are done (guards against freeing a buffer the kernel still
 * writes). Skipped where the kernel refuses io_uring (the library then falls
 * back to pread, tested in test_io_read). */
START_TEST(test_the_default_ring_reads_at_offsets_and_closes_with_reads_in_flight) {
  void *ring = NULL;
  int r = d->ring_open(d->user, 8, &ring);
  if (r == -ENOSYS || r == -EPERM) {
    fprintf(stderr, "skipped: no io_uring here: %s\n", strerror(-r));
    return;
  }
  ck_assert_int_eq(r, 0);
  int fd = open_ok(EMEL_OPEN_READ);
  static unsigned char buf[3][300];
  const uint64_t at[3] = {4096 + 7, 0, sizeof file_bytes - 50};
  for (int k = 0; k < 3; k++) ck_assert_int_eq(d->ring_read(d->user, ring, fd, buf[k], sizeof buf[k], at[k], 10 + k), 0);
  emel_ring_completion c[8];
  int got = 0;
  while (got < 3) {
    int n = d->ring_wait(d->user, ring, 1, c + got, 8 - got);
    if (n == -EINTR) continue;
    ck_assert_int_gt(n, 0);
    got += n;
  }
  ck_assert_int_eq(got, 3);
  for (int i = 0; i < 3; i++) {
    const int k = (int)c[i].tag - 10;
    ck_assert(k >= 0 && k < 3);
    const int64_t want = k == 2 ? 50 : 300; /* short at the end, as pread */
    ck_assert_int_eq(c[i].res, want);
    ck_assert_mem_eq(buf[k], file_bytes + at[k], (size_t)want);
  }
  ck_assert_int_eq(d->ring_wait(d->user, ring, 0, c, 8), 0); /* nothing left, nothing waited for */
  ck_assert_int_eq(d->ring_read(d->user, ring, fd, buf[0], (size_t)UINT32_MAX + 1, 0, 1), -EINVAL);
  for (int k = 0; k < 3; k++) ck_assert_int_eq(d->ring_read(d->user, ring, fd, buf[k], sizeof buf[k], 0, k), 0);
  ck_assert_int_eq(d->ring_close(d->user, ring), 0); /* waits for the three */
  ck_assert_mem_eq(buf[2], file_bytes, sizeof buf[2]);
  ck_assert_int_eq(d->close(d->user, fd), 0);
}
END_TEST

START_TEST(test_map_maps_read_only_private_bytes_and_reports_failure_as_negative_errno) {
  size_t page = d->page_size(d->user);
  ck_assert_uint_eq(page, (size_t)sysconf(_SC_PAGESIZE));
  ck_assert_int_ne(d->can_map(d->user), 0);
  int fd = open_ok(EMEL_OPEN_READ);
  void *addr = NULL;
  ck_assert_int_eq(d->map(d->user, fd, page, 2 * page, &addr), 0);
  ck_assert_ptr_nonnull(addr);
  ck_assert_ptr_ne(addr, MAP_FAILED);
  ck_assert_mem_eq(addr, file_bytes + page, 2 * page);
  vma_info v = vma_of(addr);
  ck_assert_str_eq(v.perms, "r--p");
  ck_assert_int_eq(d->unmap(d->user, addr, 2 * page), 0);
  ck_assert_int_eq(d->unmap(d->user, addr, 0), -EINVAL);

  void *sentinel = &addr;
  addr = sentinel;
  ck_assert_int_eq(d->map(d->user, -1, 0, page, &addr), -EBADF);
  ck_assert_ptr_eq(addr, sentinel); /* untouched on failure */
  d->close(d->user, fd);
  int wfd = open(tmp_path, O_WRONLY);
  ck_assert_int_ge(wfd, 0);
  ck_assert_int_eq(d->map(d->user, wfd, 0, page, &addr), -EACCES); /* a write-only descriptor */
  ck_assert_ptr_eq(addr, sentinel);
  close(wfd);
  ck_assert_int_eq(d->map(d->user, fd, 0, page, &addr), -EBADF); /* closed */
  ck_assert_int_eq(d->map(d->user, fd, (uint64_t)INT64_MAX + 1, page, &addr), -EINVAL);
}
END_TEST

/* Pages of [addr, addr + len) in the page cache (mincore), polled for up to
 * 100 ms: read-ahead may complete after the call that started it. */
static size_t resident_within_100ms(void *addr, size_t len) {
  size_t page = d->page_size(d->user), pages = len / page, n = 0;
  unsigned char vec[8];
  ck_assert_uint_le(pages, sizeof vec);
  for (int tries = 0; tries < 100; tries++) {
    ck_assert_int_eq(mincore(addr, len, vec), 0);
    n = 0;
    for (size_t i = 0; i < pages; i++) n += vec[i] & 1;
    if (n == pages) break;
    struct timespec ms = {0, 1000 * 1000};
    nanosleep(&ms, NULL);
  }
  return n;
}

/* Mutations caught: any two advice values swapped or mapped to another
 * MADV_* (seen in VmFlags and Rss), POPULATE_READ or DONTNEED doing nothing,
 * an unknown value not refused, lock/unlock not reaching mlock/munlock. */
START_TEST(test_advise_and_lock_reach_the_mapping_as_asked) {
  size_t page = d->page_size(d->user);
  int fd = open_ok(EMEL_OPEN_READ);
  void *addr = NULL;
  ck_assert_int_eq(d->map(d->user, fd, 0, 3 * page, &addr), 0);
  vma_info v = vma_of(addr);
  ck_assert_int_eq(v.rss_kb, 0);
  ck_assert(!has_flag(&v, "sr"));

  ck_assert_int_eq(d->advise(d->user, addr, 3 * page, EMEL_ADVISE_SEQUENTIAL), 0);
  v = vma_of(addr);
  ck_assert_msg(has_flag(&v, "sr") && !has_flag(&v, "rr"), "VmFlags:%s", v.flags);
  ck_assert_int_eq(d->advise(d->user, addr, 3 * page, EMEL_ADVISE_NORMAL), 0);
  v = vma_of(addr);
  ck_assert_msg(!has_flag(&v, "sr") && !has_flag(&v, "rr"), "VmFlags:%s", v.flags);
  ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0); /* out of the page cache (synced) */
  ck_assert_int_eq(d->advise(d->user, addr, 3 * page, EMEL_ADVISE_WILLNEED), 0);
  v = vma_of(addr);
  ck_assert_msg(!has_flag(&v, "sr") && !has_flag(&v, "rr") && !has_flag(&v, "hg"), "VmFlags:%s", v.flags);
  ck_assert_int_eq(v.rss_kb, 0); /* WILLNEED reads ahead into the cache, maps nothing */
  ck_assert_uint_eq(resident_within_100ms(addr, 3 * page), 3);

  int r = d->advise(d->user, addr, 3 * page, EMEL_ADVISE_POPULATE_READ);
  if (r == -EINVAL) {
    fprintf(stderr, "skipped: this kernel has no MADV_POPULATE_READ\n");
  } else {
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(vma_of(addr).rss_kb, (long)(3 * page / 1024));
    ck_assert_int_eq(d->advise(d->user, addr, 3 * page, EMEL_ADVISE_DONTNEED), 0);
    ck_assert_int_eq(vma_of(addr).rss_kb, 0);
  }
  ck_assert_int_eq(d->advise(d->user, addr, 3 * page, (emel_map_advice)99), -EINVAL);
  ck_assert_int_eq(d->advise(d->user, (char *)addr + 1, page, EMEL_ADVISE_NORMAL), -EINVAL); /* unaligned */

  ck_assert_int_eq(d->lock(d->user, addr, page), 0);
  v = vma_of(addr); /* mlock splits the mapping: the locked page is its own entry */
  ck_assert_msg(has_flag(&v, "lo") || ASAN_BUILD, "VmFlags:%s", v.flags);
  ck_assert_int_eq(d->unlock(d->user, addr, page), 0);
  v = vma_of(addr);
  ck_assert_msg(!has_flag(&v, "lo"), "VmFlags:%s", v.flags);
  ck_assert_int_eq(d->unmap(d->user, addr, 3 * page), 0);
  d->close(d->user, fd);

  /* Huge pages: anonymous memory, where the advice is always accepted when THP exists. */
  size_t len = 4u << 20;
  void *anon = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(anon, MAP_FAILED);
  r = d->advise(d->user, anon, len, EMEL_ADVISE_HUGEPAGE);
  if (r == -EINVAL) {
    fprintf(stderr, "skipped: no transparent huge pages\n");
  } else {
    ck_assert_int_eq(r, 0);
    v = vma_of(anon);
    ck_assert_msg(has_flag(&v, "hg") && !has_flag(&v, "sr"), "VmFlags:%s", v.flags);
  }
  munmap(anon, len);
}
END_TEST

/* Resident pages of the test file in the page cache (mincore of a mapping). */
static size_t cached_pages(int fd, size_t page, size_t pages, int wait) {
  void *addr = NULL;
  ck_assert_int_eq(d->map(d->user, fd, 0, pages * page, &addr), 0);
  unsigned char vec[8];
  ck_assert_uint_le(pages, sizeof vec);
  ck_assert_int_eq(mincore(addr, pages * page, vec), 0);
  size_t n = 0;
  for (size_t i = 0; i < pages; i++) n += vec[i] & 1;
  if (wait) n = resident_within_100ms(addr, pages * page);
  d->unmap(d->user, addr, pages * page);
  return n;
}

/* Mutations caught: the error number returned positive (posix_fadvise
 * returns it instead of setting errno), NORMAL or SEQUENTIAL mapped to
 * DONTNEED, DONTNEED doing nothing, an unknown value not refused. */
START_TEST(test_fadvise_reaches_the_page_cache_as_asked) {
  size_t page = d->page_size(d->user);
  const size_t pages = 3;
  int fd = open_ok(EMEL_OPEN_READ);
  ck_assert_int_eq(d->fadvise(d->user, fd, 0, 0, (emel_file_advice)99), -EINVAL);
  ck_assert_int_eq(d->fadvise(d->user, fd, (uint64_t)INT64_MAX + 1, 0, EMEL_FADVISE_NORMAL), -EINVAL);
  ck_assert_int_eq(d->fadvise(d->user, -1, 0, 0, EMEL_FADVISE_NORMAL), -EBADF);
  unsigned char buf[sizeof file_bytes];
  /* Can pages be dropped here at all? Not on tmpfs (the pages are the file),
   * nor under valgrind (its file mappings keep them). */
  ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  if (cached_pages(fd, page, pages, 0) != 0) {
    fprintf(stderr, "skipped: the page cache of %s cannot be dropped here\n", tmp_path);
    d->close(d->user, fd);
    return;
  }
  ck_assert_int_eq(d->pread(d->user, fd, buf, sizeof buf, 0), (int64_t)sizeof buf); /* cached again */
  ck_assert_uint_eq(cached_pages(fd, page, pages, 0), pages);
  ck_assert_int_eq(d->fadvise(d->user, fd, 0, 0, EMEL_FADVISE_SEQUENTIAL), 0);
  ck_assert_int_eq(d->fadvise(d->user, fd, 0, 0, EMEL_FADVISE_NORMAL), 0);
  ck_assert_uint_eq(cached_pages(fd, page, pages, 0), pages); /* neither drops anything */
  ck_assert_int_eq(d->fadvise(d->user, fd, 0, 0, EMEL_FADVISE_DONTNEED), 0);
  ck_assert_uint_eq(cached_pages(fd, page, pages, 0), 0); /* the file was synced: clean pages go */
  ck_assert_int_eq(d->fadvise(d->user, fd, 0, 0, EMEL_FADVISE_WILLNEED), 0);
  ck_assert_uint_eq(cached_pages(fd, page, pages, 1), pages);
  d->close(d->user, fd);
}
END_TEST

/* Mutations caught: no floor on the alignment (posix_memalign refuses less
 * than a pointer), the alignment ignored. (A failing allocation is not tried:
 * ASan aborts on one instead of returning NULL.) */
START_TEST(test_alloc_aligns_as_asked) {
  static const size_t aligns[] = {1, 2, 4, 8, 16, 64, 4096, 2u << 20};
  for (size_t k = 0; k < sizeof aligns / sizeof *aligns; k++) {
    void *p = d->alloc(d->user, 100, aligns[k]);
    ck_assert_msg(p != NULL, "alignment %zu", aligns[k]);
    ck_assert_uint_eq((uintptr_t)p % aligns[k], 0);
    memset(p, 0xab, 100);
    d->free(d->user, p, 100);
  }
  void *z = d->alloc(d->user, 0, 64); /* a unique, freeable pointer */
  ck_assert_ptr_nonnull(z);
  d->free(d->user, z, 0);
}
END_TEST

static void *add_one(void *arg) {
  int *n = arg;
  (*n)++;
  return NULL;
}

/* Mutations caught: pthread's error number returned positive, a thread not
 * run or not joined, a made-up processor count. */
START_TEST(test_threads_close_and_cpu_count) {
  int n = 0;
  uintptr_t t;
  ck_assert_int_eq(d->thread_start(d->user, add_one, &n, &t), 0);
  ck_assert_int_eq(d->thread_join(d->user, t), 0);
  ck_assert_int_eq(n, 1);
  ck_assert_int_eq(d->cpu_count(d->user), (int)sysconf(_SC_NPROCESSORS_ONLN));
  ck_assert_int_eq(d->close(d->user, -1), -EBADF);
  int fd = open_ok(EMEL_OPEN_READ);
  emel_file_identity id;
  ck_assert_int_eq(d->file_identity(d->user, fd, &id), 0);
  ck_assert_uint_eq(id.size, sizeof file_bytes);
  ck_assert_int_eq(d->close(d->user, fd), 0);
  ck_assert_int_eq(d->file_identity(d->user, fd, &id), -EBADF);
}
END_TEST

/* ---- the guard: a SIGBUS inside a guarded read is an error, any other
 * SIGBUS is the embedder's (or the default action) as before ---- */

typedef struct shrunk {
  char path[64];
  volatile const char *map; /* two pages; the file now holds only the first */
  size_t page;
} shrunk;

/* 0, or -1 when the scratch file could not be made: plain C, no ck_assert,
 * since the SIGBUS children (new processes) run outside Check. */
static int map_then_shrink(shrunk *s) {
  s->page = (size_t)sysconf(_SC_PAGESIZE);
  snprintf(s->path, sizeof s->path, "/tmp/emel-guard-XXXXXX");
  int fd = mkstemp(s->path);
  if (fd < 0) return -1;
  if (ftruncate(fd, (off_t)(2 * s->page)) != 0) return -1;
  void *p = mmap(NULL, 2 * s->page, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) return -1;
  if (ftruncate(fd, (off_t)s->page) != 0) return -1;
  close(fd);
  unlink(s->path);
  s->map = p;
  return 0;
}

static void read_second_page(void *arg) {
  const shrunk *s = arg;
  (void)s->map[s->page];
}

static void read_first_page(void *arg) {
  const shrunk *s = arg;
  (void)s->map[0];
}

static volatile sig_atomic_t theirs_called, theirs_code;
static sigjmp_buf theirs_jump;
static void their_handler(int sig, siginfo_t *info, void *ctx) {
  (void)sig;
  (void)ctx;
  theirs_called++;
  theirs_code = info->si_code;
  if (info->si_code > 0) siglongjmp(theirs_jump, 1); /* a fault: do not run the access again */
}

/* Guards against: a SIGBUS in a guarded read killing the process (exit 135)
 * instead of coming back as -EFAULT. */
START_TEST(test_the_guard_turns_a_sigbus_inside_its_range_into_efault) {
  const emel_platform_ops *d = emel_platform_default();
  shrunk s;
  ck_assert_int_eq(map_then_shrink(&s), 0);
  ck_assert_int_eq(d->guard(d->user, (const void *)s.map, 2 * s.page, read_first_page, &s), 0);
  ck_assert_int_eq(d->guard(d->user, (const void *)s.map, 2 * s.page, read_second_page, &s), -EFAULT);
  ck_assert_int_eq(d->guard(d->user, (const void *)s.map, 2 * s.page, read_second_page, &s), -EFAULT); /* again */
  /* SIGBUS stays as the caller had it in its mask */
  sigset_t bus, old, now;
  sigemptyset(&bus);
  sigaddset(&bus, SIGBUS);
  pthread_sigmask(SIG_BLOCK, &bus, &old);
  ck_assert_int_eq(d->guard(d->user, (const void *)s.map, 2 * s.page, read_second_page, &s), -EFAULT);
  pthread_sigmask(SIG_SETMASK, &old, &now);
  ck_assert(sigismember(&now, SIGBUS));
  munmap((void *)s.map, 2 * s.page);
}
END_TEST

static void *guard_on_a_thread(void *arg) {
  const emel_platform_ops *d = emel_platform_default();
  shrunk *s = arg;
  intptr_t faults = 0;
  for (int i = 0; i < 200; i++)
    faults += d->guard(d->user, (const void *)s->map, 2 * s->page, read_second_page, s) == -EFAULT;
  return (void *)faults;
}

/* Guards against: a guard record shared between threads (one thread's fault
 * jumping into another's stack). */
START_TEST(test_guards_on_several_threads_each_catch_their_own_faults) {
  shrunk s;
  ck_assert_int_eq(map_then_shrink(&s), 0);
  pthread_t t[3];
  for (int i = 0; i < 3; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, guard_on_a_thread, &s), 0);
  for (int i = 0; i < 3; i++) {
    void *faults;
    pthread_join(t[i], &faults);
    ck_assert_int_eq((intptr_t)faults, 200);
  }
  munmap((void *)s.map, 2 * s.page);
}
END_TEST

static void with_their_handler_installed_first(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = their_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGBUS, &sa, NULL) != 0) _exit(10);
  const emel_platform_ops *d = emel_platform_default();
  shrunk s;
  if (map_then_shrink(&s) != 0) _exit(9);
  if (d->guard(d->user, (const void *)s.map, 2 * s.page, read_second_page, &s) != -EFAULT) _exit(11);
  if (theirs_called != 0) _exit(12); /* ours, not theirs */
  raise(SIGBUS);                     /* sent, not a fault: theirs */
  if (theirs_called != 1 || theirs_code > 0) _exit(13);
  if (sigsetjmp(theirs_jump, 1) == 0) read_second_page(&s); /* a fault outside any guard: theirs */
  if (theirs_called != 2 || theirs_code <= 0) _exit(14);
  /* a fault outside the guarded range, inside a guarded read: theirs */
  if (sigsetjmp(theirs_jump, 1) == 0)
    (void)d->guard(d->user, (const void *)s.map, s.page, read_second_page, &s);
  if (theirs_called != 3) _exit(15);
  _exit(0);
}

/* Runs fn in a new process (this executable again, told which child to be):
 * a fork alone would inherit this process's SIGBUS disposition and the guard's
 * once-only installation, so with CK_FORK=no (valgrind) an earlier test's
 * guard would decide the outcome. Returns the child's wait status. */
static int in_child(const char *name) {
  char self[4096]; /* resolved first: under valgrind, exec of /proc/self/exe would start valgrind's tool */
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  ck_assert(len > 0);
  self[len] = '\0';
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    setenv("EMEL_TEST_PLATFORM_CHILD", name, 1);
    execl(self, "test_platform", (char *)NULL);
    _exit(127);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  return status;
}

/* Guards against: the library's handler swallowing, or killing on, a SIGBUS
 * the embedder's own handler was installed to receive. */
START_TEST(test_a_sigbus_not_from_a_guarded_read_reaches_the_previous_handler) {
  int status = in_child("their_handler_first");
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}
END_TEST

/* SIG_DFL before the guard's first use (a sanitizer runtime installs its own
 * SIGBUS handler, which would then be the previous one). */
static void default_sigbus(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGBUS, &sa, NULL) != 0) _exit(10);
}

static void fault_outside_a_guard_with_the_default_action(void) {
  default_sigbus();
  const emel_platform_ops *d = emel_platform_default();
  shrunk s;
  if (map_then_shrink(&s) != 0) _exit(9);
  if (d->guard(d->user, (const void *)s.map, 2 * s.page, read_second_page, &s) != -EFAULT) _exit(11);
  read_second_page(&s); /* unguarded: the default action, as without the library */
  _exit(0);
}

static void sent_sigbus_with_the_default_action(void) {
  default_sigbus();
  const emel_platform_ops *d = emel_platform_default();
  shrunk s;
  if (map_then_shrink(&s) != 0) _exit(9);
  (void)d->guard(d->user, (const void *)s.map, 2 * s.page, read_first_page, &s);
  raise(SIGBUS);
  _exit(0);
}

/* Guards against: a SIGBUS that is not the guard's being ignored (the access
 * would spin) or turned into anything but the default termination. */
START_TEST(test_a_sigbus_not_from_a_guarded_read_keeps_the_default_action) {
  int status = in_child("fault_outside_a_guard");
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS, "child status %d", status);
  status = in_child("sent_sigbus");
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS, "child status %d", status);
}
END_TEST

static Suite *platform_suite(void) {
  Suite *s = suite_create("platform");
  TCase *tc = tcase_create("ops");
  tcase_add_test(tc, test_overriding_one_entry_keeps_the_defaults_for_the_rest);
  tcase_add_test(tc, test_an_op_given_without_its_pair_is_refused_by_name);
  tcase_add_test(tc, test_a_callers_file_layer_never_meets_the_default_ring);
  tcase_add_test(tc, test_struct_size_decides_which_ops_are_read);
  tcase_add_test(tc, test_the_ops_list_names_every_member_once);
  tcase_add_test(tc, test_event_descriptor_and_clock);
  tcase_add_test(tc, test_the_defaults_report_errors_as_negative_errno);
  tcase_add_test(tc, test_the_default_random_fills_the_buffer);
  tcase_add_test(tc, test_only_the_defaults_file_includes_os_headers);
  tcase_add_test(tc, test_the_guard_turns_a_sigbus_inside_its_range_into_efault);
  tcase_add_test(tc, test_guards_on_several_threads_each_catch_their_own_faults);
  tcase_add_test(tc, test_a_sigbus_not_from_a_guarded_read_reaches_the_previous_handler);
  tcase_add_test(tc, test_a_sigbus_not_from_a_guarded_read_keeps_the_default_action);
  suite_add_tcase(s, tc);
  TCase *real = tcase_create("posix");
  tcase_add_checked_fixture(real, real_setup, real_teardown);
  tcase_add_test(real, test_a_signal_stops_a_blocking_open_with_eintr);
  tcase_add_test(real, test_an_open_waits_for_a_lease_to_be_released);
  tcase_add_test(real, test_a_fifo_opens_at_once_even_under_signals_and_is_identified);
  tcase_add_test(real, test_open_flags_are_what_the_contract_says);
  tcase_add_test(real, test_file_identity_describes_every_kind_of_file);
  tcase_add_test(real, test_pread_and_preadv_return_the_bytes_at_the_offset);
  tcase_add_test(real, test_the_default_ring_reads_at_offsets_and_closes_with_reads_in_flight);
  tcase_add_test(real, test_map_maps_read_only_private_bytes_and_reports_failure_as_negative_errno);
  tcase_add_test(real, test_advise_and_lock_reach_the_mapping_as_asked);
  tcase_add_test(real, test_fadvise_reaches_the_page_cache_as_asked);
  tcase_add_test(real, test_alloc_aligns_as_asked);
  tcase_add_test(real, test_threads_close_and_cpu_count);
  suite_add_tcase(s, real);
  return s;
}

/* The suite, or one of the SIGBUS children in_child starts. */
int main(void) {
  static const struct {
    const char *name;
    void (*fn)(void);
  } children[] = {{"their_handler_first", with_their_handler_installed_first},
                  {"fault_outside_a_guard", fault_outside_a_guard_with_the_default_action},
                  {"sent_sigbus", sent_sigbus_with_the_default_action}};
  const char *child = getenv("EMEL_TEST_PLATFORM_CHILD");
  for (size_t i = 0; child && i < sizeof children / sizeof *children; i++)
    if (strcmp(child, children[i].name) == 0) {
      children[i].fn();
      _exit(0);
    }
  if (child) _exit(126);
  SRunner *sr = srunner_create(platform_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

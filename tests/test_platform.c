/* The platform seam: defaults, partial overrides, and that only the defaults'
 * file includes OS headers (so every OS call is injectable). */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "emel/platform.h"

static int failing_open(void *user, const char *path, unsigned flags) {
  (void)user;
  (void)path;
  (void)flags;
  return -EACCES;
}

START_TEST(test_overriding_one_entry_keeps_the_defaults_for_the_rest) {
  emel_platform_ops mine = {0};
  mine.open = failing_open;
  emel_platform_ops resolved;
  emel_platform_resolve(&resolved, &mine);
  const emel_platform_ops *d = emel_platform_default();
  ck_assert(resolved.open == failing_open);
  ck_assert(resolved.pread == d->pread);
  ck_assert(resolved.map == d->map);
  ck_assert(resolved.free == d->free);
  ck_assert_int_eq(resolved.open(resolved.user, "/", 0), -EACCES);
  size_t page = resolved.page_size(resolved.user);
  ck_assert_uint_eq(page & (page - 1), 0);
}
END_TEST

START_TEST(test_the_defaults_report_errors_as_negative_errno) {
  const emel_platform_ops *d = emel_platform_default();
  ck_assert_int_eq(d->open(d->user, "/nonexistent/emel-io/file", 0), -ENOENT);
  int fd = d->open(d->user, EMEL_SOURCE_DIR "/CMakeLists.txt", 0);
  ck_assert_int_ge(fd, 0);
  uint64_t size = 0;
  ck_assert_int_eq(d->file_size(d->user, fd, &size), 0);
  ck_assert_uint_gt(size, 100);
  char buf[16];
  ck_assert_int_eq(d->pread(d->user, fd, buf, sizeof buf, size), 0); /* end of file */
  ck_assert_int_eq(d->close(d->user, fd), 0);
  ck_assert_int_eq(d->close(d->user, fd), -EBADF);
  int dir = d->open(d->user, EMEL_SOURCE_DIR, 0);
  ck_assert_int_ge(dir, 0);
  ck_assert_int_eq(d->file_size(d->user, dir, &size), -EINVAL); /* not a regular file */
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

START_TEST(test_only_the_defaults_file_includes_os_headers) {
  int files = 0;
  int offenders = scan(EMEL_SOURCE_DIR "/src", &files) + scan(EMEL_SOURCE_DIR "/include", &files) +
                  scan(EMEL_SOURCE_DIR "/statecharts", &files) + scan(EMEL_SOURCE_DIR "/gen", &files);
  ck_assert_int_gt(files, 5);
  ck_assert_int_eq(offenders, 0);
}
END_TEST

/* ---- the guard: a SIGBUS inside a guarded read is an error, any other
 * SIGBUS is the embedder's (or the default action) as before ---- */

typedef struct shrunk {
  char path[64];
  volatile const char *map; /* two pages; the file now holds only the first */
  size_t page;
} shrunk;

static void map_then_shrink(shrunk *s) {
  s->page = (size_t)sysconf(_SC_PAGESIZE);
  snprintf(s->path, sizeof s->path, "/tmp/emel-guard-XXXXXX");
  int fd = mkstemp(s->path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(ftruncate(fd, (off_t)(2 * s->page)), 0);
  void *p = mmap(NULL, 2 * s->page, PROT_READ, MAP_PRIVATE, fd, 0);
  ck_assert(p != MAP_FAILED);
  ck_assert_int_eq(ftruncate(fd, (off_t)s->page), 0);
  close(fd);
  unlink(s->path);
  s->map = p;
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
  map_then_shrink(&s);
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
  map_then_shrink(&s);
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

/* Runs fn in a child process; returns its wait status. */
static int in_child(void (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    fn();
    _exit(0);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  return status;
}

static void with_their_handler_installed_first(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = their_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGBUS, &sa, NULL) != 0) _exit(10);
  const emel_platform_ops *d = emel_platform_default();
  shrunk s;
  map_then_shrink(&s);
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

/* Guards against: the library's handler swallowing, or killing on, a SIGBUS
 * the embedder's own handler was installed to receive. */
START_TEST(test_a_sigbus_not_from_a_guarded_read_reaches_the_previous_handler) {
  int status = in_child(with_their_handler_installed_first);
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
  map_then_shrink(&s);
  if (d->guard(d->user, (const void *)s.map, 2 * s.page, read_second_page, &s) != -EFAULT) _exit(11);
  read_second_page(&s); /* unguarded: the default action, as without the library */
  _exit(0);
}

static void sent_sigbus_with_the_default_action(void) {
  default_sigbus();
  const emel_platform_ops *d = emel_platform_default();
  shrunk s;
  map_then_shrink(&s);
  (void)d->guard(d->user, (const void *)s.map, 2 * s.page, read_first_page, &s);
  raise(SIGBUS);
  _exit(0);
}

/* Guards against: a SIGBUS that is not the guard's being ignored (the access
 * would spin) or turned into anything but the default termination. */
START_TEST(test_a_sigbus_not_from_a_guarded_read_keeps_the_default_action) {
  int status = in_child(fault_outside_a_guard_with_the_default_action);
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS, "child status %d", status);
  status = in_child(sent_sigbus_with_the_default_action);
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS, "child status %d", status);
}
END_TEST

static Suite *platform_suite(void) {
  Suite *s = suite_create("platform");
  TCase *tc = tcase_create("ops");
  tcase_add_test(tc, test_overriding_one_entry_keeps_the_defaults_for_the_rest);
  tcase_add_test(tc, test_the_defaults_report_errors_as_negative_errno);
  tcase_add_test(tc, test_only_the_defaults_file_includes_os_headers);
  tcase_add_test(tc, test_the_guard_turns_a_sigbus_inside_its_range_into_efault);
  tcase_add_test(tc, test_guards_on_several_threads_each_catch_their_own_faults);
  tcase_add_test(tc, test_a_sigbus_not_from_a_guarded_read_reaches_the_previous_handler);
  tcase_add_test(tc, test_a_sigbus_not_from_a_guarded_read_keeps_the_default_action);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(platform_suite)

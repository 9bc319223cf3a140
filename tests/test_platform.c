/* The platform seam: defaults, partial overrides, and that only the defaults'
 * file includes OS headers (so every OS call is injectable). */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
  ck_assert(resolved.random == d->random); /* the newest entry too: the table's end */
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

static Suite *platform_suite(void) {
  Suite *s = suite_create("platform");
  TCase *tc = tcase_create("ops");
  tcase_add_test(tc, test_overriding_one_entry_keeps_the_defaults_for_the_rest);
  tcase_add_test(tc, test_the_defaults_report_errors_as_negative_errno);
  tcase_add_test(tc, test_the_default_random_fills_the_buffer);
  tcase_add_test(tc, test_only_the_defaults_file_includes_os_headers);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(platform_suite)

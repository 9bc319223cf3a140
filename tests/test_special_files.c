/* Paths that are not regular files: a FIFO without a writer, a directory,
 * character devices. Each is refused with NOT_A_REGULAR_FILE (no errno: no OS
 * call failed) by the GGUF index and by both strategies before any read, with
 * nothing leaked, and never blocks. Guards against: a FIFO hanging the open
 * forever (blocking open, EINTR retried), and directories or devices reported
 * as STAT_FAILED "Invalid argument". Every test runs under alarm() (and
 * Check's timeout): a regression that blocks fails instead of hanging. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "emel/gguf.h"
#include "emel/io.h"
#include "emel/io_mmap.h"
#include "emel/io_read.h"
#include "emel/model.h"
#include "fault_platform.h"
#include "memory_file.h"

enum { DEADLINE_SECONDS = 10 }; /* each refusal takes microseconds; valgrind runs are slower */

static fault_platform fp;
static char dir[64];
static char fifo[96];

static void setup(void) {
  alarm(DEADLINE_SECONDS);
  fault_platform_init(&fp);
  snprintf(dir, sizeof dir, "/tmp/emel-special-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(fifo, sizeof fifo, "%s/model.gguf", dir); /* named like a model: the name is no proof */
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
}

static void teardown(void) {
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
  unlink(fifo);
  rmdir(dir);
  alarm(0);
}

/* The kinds of path, by _i of a loop test. */
static const char *path_of(int i) {
  switch (i) {
  case 0: return fifo;
  case 1: return dir;
  case 2: return "/dev/null";
  default: return "/dev/zero";
  }
}
enum { KINDS = 4 };

static void assert_not_regular(emel_status got, int os_errno, const char *path) {
  ck_assert_msg(got == EMEL_NOT_A_REGULAR_FILE, "%s: got %s", path, emel_status_name(got));
  ck_assert_int_eq(os_errno, 0);
}

START_TEST(test_the_index_refuses_a_path_that_is_not_a_regular_file) {
  const char *path = path_of(_i);
  emel_gguf_config cfg = EMEL_GGUF_CONFIG_INIT(.platform = &fp.ops);
  emel_gguf *g = (emel_gguf *)1;
  emel_error err = {.code = EMEL_OK, .os_errno = -1};
  emel_status st = emel_gguf_open(&g, path, &cfg, &err);
  assert_not_regular(st, err.os_errno, path);
  ck_assert_int_eq(err.code, st);
  ck_assert_ptr_null(g);
  ck_assert_uint_eq(fp.calls[FP_PREAD] + fp.calls[FP_PREADV] + fp.calls[FP_MAP], 0); /* refused before reading */
}
END_TEST

START_TEST(test_a_model_open_refuses_a_path_that_is_not_a_regular_file) {
  const char *path = path_of(_i);
  emel_model_config cfg = EMEL_MODEL_CONFIG_INIT(.platform = &fp.ops);
  emel_model *m = (emel_model *)1;
  emel_error err = {.code = EMEL_OK, .os_errno = -1};
  emel_status st = emel_model_open(&m, path, &cfg, &err);
  assert_not_regular(st, err.os_errno, path);
  ck_assert_ptr_null(m);
}
END_TEST

static emel_io *io_with(const char *path, uint32_t *file) {
  emel_io *io;
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
  ck_assert_int_eq(emel_io_create(&io, &ic, NULL), EMEL_OK);
  emel_io_mmap_config mc = EMEL_IO_MMAP_CONFIG_INIT();
  ck_assert_int_eq(emel_io_mmap_attach(io, &mc, NULL), EMEL_OK);
  emel_io_read_config rc = EMEL_IO_READ_CONFIG_INIT(.threads = 1);
  ck_assert_int_eq(emel_io_read_attach(io, &rc, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_add_file(io, path, strlen(path), file, NULL), EMEL_OK);
  return io;
}

static void assert_strategy_refuses(emel_io *io, uint32_t file, emel_strategy strategy, unsigned flags,
                                    const char *path) {
  emel_io_request r = {.file_index = file, .offset = 0, .size = 16, .strategy = strategy, .flags = flags};
  emel_io_result res;
  emel_io_acquire(io, &r, &res);
  assert_not_regular(res.error.code, res.error.os_errno, path);
  ck_assert_ptr_null(res.data);
  ck_assert_int_eq(res.residency, EMEL_RESIDENCY_NONE);
  ck_assert_int_eq(fp.open_fds, 0); /* the descriptor opened to look was closed */
}

START_TEST(test_both_strategies_refuse_a_path_that_is_not_a_regular_file) {
  const char *path = path_of(_i);
  uint32_t file;
  emel_io *io = io_with(path, &file);
  assert_strategy_refuses(io, file, EMEL_STRATEGY_MMAP, 0, path);
  assert_strategy_refuses(io, file, EMEL_STRATEGY_READ, 0, path);
  assert_strategy_refuses(io, file, EMEL_STRATEGY_READ, EMEL_LOAD_DIRECT, path);
  /* and again: a refusal leaves nothing behind that would change the answer */
  assert_strategy_refuses(io, file, EMEL_STRATEGY_MMAP, 0, path);
  assert_strategy_refuses(io, file, EMEL_STRATEGY_READ, 0, path);
  ck_assert_uint_eq(fp.calls[FP_PREAD] + fp.calls[FP_PREADV] + fp.calls[FP_MAP], 0);
  emel_io_destroy(io);
}
END_TEST

/* The route is the platform's answer, not the OS's: an in-memory platform
 * that reports a FIFO gets the same refusal (how a fuzz target or an
 * embedder's file layer drives it). */
START_TEST(test_a_platform_that_reports_a_fifo_is_refused_without_the_os) {
  static const uint8_t bytes[64] = {'G', 'G', 'U', 'F', 3};
  memory_file mf;
  memory_file_init(&mf);
  ck_assert_int_eq(memory_file_add(&mf, "pipe.gguf", bytes, sizeof bytes), 0);
  mf.files[0].type = EMEL_FILE_FIFO;
  emel_gguf_config gc = EMEL_GGUF_CONFIG_INIT(.platform = &mf.ops);
  emel_gguf *g;
  emel_error err;
  ck_assert_int_eq(emel_gguf_open(&g, "pipe.gguf", &gc, &err), EMEL_NOT_A_REGULAR_FILE);

  emel_io *io;
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &mf.ops);
  ck_assert_int_eq(emel_io_create(&io, &ic, NULL), EMEL_OK);
  emel_io_mmap_config mc = EMEL_IO_MMAP_CONFIG_INIT();
  ck_assert_int_eq(emel_io_mmap_attach(io, &mc, NULL), EMEL_OK);
  emel_io_read_config rc = EMEL_IO_READ_CONFIG_INIT(.threads = 1);
  ck_assert_int_eq(emel_io_read_attach(io, &rc, NULL), EMEL_OK);
  uint32_t file;
  ck_assert_int_eq(emel_io_add_file(io, "pipe.gguf", 9, &file, NULL), EMEL_OK);
  emel_strategy strategies[] = {EMEL_STRATEGY_MMAP, EMEL_STRATEGY_READ};
  for (int s = 0; s < 2; s++) {
    emel_io_request r = {.file_index = file, .offset = 0, .size = 16, .strategy = strategies[s]};
    emel_io_result res;
    emel_io_acquire(io, &r, &res);
    ck_assert_int_eq(res.error.code, EMEL_NOT_A_REGULAR_FILE);
  }
  emel_io_destroy(io);
  ck_assert_uint_eq(mf.preads + mf.maps_made, 0);
  ck_assert_int_eq(memory_file_outstanding(&mf), 0);
}
END_TEST

static Suite *special_files_suite(void) {
  Suite *s = suite_create("special_files");
  TCase *tc = tcase_create("not_regular");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_the_index_refuses_a_path_that_is_not_a_regular_file, 0, KINDS);
  tcase_add_loop_test(tc, test_a_model_open_refuses_a_path_that_is_not_a_regular_file, 0, KINDS);
  tcase_add_loop_test(tc, test_both_strategies_refuse_a_path_that_is_not_a_regular_file, 0, KINDS);
  tcase_add_test(tc, test_a_platform_that_reports_a_fifo_is_refused_without_the_os);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(special_files_suite)

/* The in-memory platform (tests/support/memory_file) that fuzz targets and
 * tests feed bytes through: it must serve exactly the registered bytes and
 * count every resource, or the fuzz harness's leak checks mean nothing. */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "emel/gguf.h"
#include "gguf_writer.h"
#include "memory_file.h"

static const uint8_t bytes[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};

START_TEST(test_a_registered_path_serves_its_bytes_and_nothing_past_them) {
  memory_file mf;
  memory_file_init(&mf);
  ck_assert_int_eq(memory_file_add(&mf, "a.bin", bytes, sizeof bytes), 0);
  const emel_platform_ops *ops = &mf.ops;
  int fd = ops->open(ops->user, "a.bin", EMEL_OPEN_READ);
  ck_assert_int_ge(fd, 0);
  emel_file_identity id;
  ck_assert_int_eq(ops->file_identity(ops->user, fd, &id), 0);
  ck_assert_uint_eq(id.size, sizeof bytes);
  uint8_t buf[16] = {0};
  ck_assert_int_eq(ops->pread(ops->user, fd, buf, sizeof buf, 6), 4); /* short at the end */
  ck_assert_int_eq(memcmp(buf, bytes + 6, 4), 0);
  ck_assert_int_eq(ops->pread(ops->user, fd, buf, sizeof buf, 10), 0);
  ck_assert_int_eq(mf.open_fds, 1);
  ck_assert_int_eq(ops->close(ops->user, fd), 0);
  ck_assert_int_eq(memory_file_outstanding(&mf), 0);
}
END_TEST

START_TEST(test_an_unknown_path_is_not_found_and_an_unknown_fd_is_a_bad_call) {
  memory_file mf;
  memory_file_init(&mf);
  memory_file_add(&mf, "a.bin", bytes, sizeof bytes);
  ck_assert_int_eq(mf.ops.open(mf.ops.user, "b.bin", EMEL_OPEN_READ), -ENOENT);
  ck_assert_int_eq(mf.ops.close(mf.ops.user, 3), -EBADF);
  ck_assert_int_eq(memory_file_outstanding(&mf), 1); /* the bad close is counted */
}
END_TEST

START_TEST(test_the_chosen_pread_fails_with_the_chosen_errno) {
  memory_file mf;
  memory_file_init(&mf);
  memory_file_add(&mf, "a.bin", bytes, sizeof bytes);
  mf.pread_fail_at = 2;
  mf.pread_errno = EIO;
  int fd = mf.ops.open(mf.ops.user, "a.bin", EMEL_OPEN_READ);
  uint8_t buf[4];
  ck_assert_int_eq(mf.ops.pread(mf.ops.user, fd, buf, sizeof buf, 0), 4);
  ck_assert_int_eq(mf.ops.pread(mf.ops.user, fd, buf, sizeof buf, 0), -EIO);
  ck_assert_int_eq(mf.ops.pread(mf.ops.user, fd, buf, sizeof buf, 0), 4);
  mf.ops.close(mf.ops.user, fd);
  ck_assert_int_eq(memory_file_outstanding(&mf), 0);
}
END_TEST

START_TEST(test_a_mapping_is_a_zero_padded_copy_released_by_unmap) {
  memory_file mf;
  memory_file_init(&mf);
  memory_file_add(&mf, "a.bin", bytes, sizeof bytes);
  int fd = mf.ops.open(mf.ops.user, "a.bin", EMEL_OPEN_READ);
  size_t page = mf.ops.page_size(mf.ops.user);
  void *addr = NULL;
  ck_assert_int_eq(mf.ops.map(mf.ops.user, fd, 0, page, &addr), 0);
  ck_assert_int_eq(memcmp(addr, bytes, sizeof bytes), 0);
  ck_assert_int_eq(((uint8_t *)addr)[page - 1], 0);
  ck_assert_int_eq(mf.ops.map(mf.ops.user, fd, 1, page, &addr), -EINVAL); /* unaligned offset */
  mf.bad_calls = 0;
  ck_assert_int_eq(mf.live_maps, 1);
  ck_assert_int_eq(mf.ops.lock(mf.ops.user, addr, page), 0);
  ck_assert_int_gt(memory_file_outstanding(&mf), 1);
  ck_assert_int_eq(mf.ops.unlock(mf.ops.user, addr, page), 0);
  ck_assert_int_eq(mf.ops.unmap(mf.ops.user, addr, page), 0);
  mf.ops.close(mf.ops.user, fd);
  ck_assert_int_eq(memory_file_outstanding(&mf), 0);
}
END_TEST

START_TEST(test_allocations_are_counted_and_a_limit_makes_them_fail) {
  memory_file mf;
  memory_file_init(&mf);
  mf.alloc_limit = 100;
  void *a = mf.ops.alloc(mf.ops.user, 60, 16);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_null(mf.ops.alloc(mf.ops.user, 60, 16));
  ck_assert_int_eq(mf.peak_alloc_bytes, 60);
  mf.ops.free(mf.ops.user, a, 50); /* the wrong size shows as bytes left over */
  ck_assert_int_eq(mf.live_allocs, 0);
  ck_assert_int_eq(memory_file_outstanding(&mf), 1);
}
END_TEST

START_TEST(test_the_gguf_index_opens_a_file_held_in_memory) {
  /* the writer needs a real file; the index then reads only memory */
  char path[] = "/tmp/emel-memory-file-XXXXXX";
  int tmp = mkstemp(path);
  ck_assert_int_ge(tmp, 0);
  close(tmp);
  gw *w = gw_new();
  uint64_t ne[1] = {8};
  gw_tensor(w, "t", EMEL_GGML_TYPE_F32, 1, ne);
  ck_assert_int_eq(gw_write(w, path), 0);
  gw_free(w);
  static uint8_t file[4096];
  FILE *f = fopen(path, "rb");
  size_t n = fread(file, 1, sizeof file, f);
  fclose(f);
  unlink(path);

  memory_file mf;
  memory_file_init(&mf);
  memory_file_add(&mf, "model.gguf", file, n);
  emel_gguf_config cfg = EMEL_GGUF_CONFIG_INIT(.platform = &mf.ops);
  emel_gguf *g = NULL;
  ck_assert_int_eq(emel_gguf_open(&g, "model.gguf", &cfg, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_gguf_tensor_count(g), 1);
  ck_assert_uint_eq(emel_gguf_tensor_at(g, 0)->size, 32);
  emel_gguf_close(g);
  ck_assert_uint_ge(mf.preads, 1);
  ck_assert_int_eq(memory_file_outstanding(&mf), 0);
}
END_TEST

static Suite *memory_file_suite(void) {
  Suite *s = suite_create("memory_file");
  TCase *tc = tcase_create("ops");
  tcase_add_test(tc, test_a_registered_path_serves_its_bytes_and_nothing_past_them);
  tcase_add_test(tc, test_an_unknown_path_is_not_found_and_an_unknown_fd_is_a_bad_call);
  tcase_add_test(tc, test_the_chosen_pread_fails_with_the_chosen_errno);
  tcase_add_test(tc, test_a_mapping_is_a_zero_padded_copy_released_by_unmap);
  tcase_add_test(tc, test_allocations_are_counted_and_a_limit_makes_them_fail);
  tcase_add_test(tc, test_the_gguf_index_opens_a_file_held_in_memory);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(memory_file_suite)

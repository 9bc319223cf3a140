/* The io boundary: file table, strategy attachment and routing. */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "check_main.h"
#include "emel/io.h"
#include "emel/io_strategy.h"
#include "fake_strategy.h"
#include "fault_platform.h"

static fault_platform fp;
static fake_strategy fake;
static emel_io *io;

static void setup(void) {
  fault_platform_init(&fp);
  memset(&fake, 0, sizeof fake);
  emel_io_config c = EMEL_IO_CONFIG_INIT(.platform = &fp.ops, .max_files = 2);
  ck_assert_int_eq(emel_io_create(&io, &c, NULL), EMEL_OK);
}

static void teardown(void) {
  emel_io_destroy(io);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
}

START_TEST(test_files_are_added_up_to_the_declared_capacity) {
  uint32_t a, b, c;
  ck_assert_int_eq(emel_io_add_file(io, "model-00001-of-00002.gguf", 25, &a, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_add_file(io, "model-00002-of-00002.gguf", 25, &b, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_add_file(io, "third.gguf", 10, &c, NULL), EMEL_FILE_TABLE_FULL);
  ck_assert_uint_eq(a, 0);
  ck_assert_uint_eq(b, 1);
  const emel_io_files *files = emel_io_files_of(io);
  ck_assert_uint_eq(files->count, 2);
  ck_assert_str_eq(files->files[1].path, "model-00002-of-00002.gguf");
}
END_TEST

START_TEST(test_a_path_with_an_embedded_nul_is_kept_whole_for_its_strategy_to_refuse) {
  uint32_t a;
  ck_assert_int_eq(emel_io_add_file(io, "a\0b", 3, &a, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_io_files_of(io)->files[a].path_len, 3);
  static char long_path[EMEL_IO_MAX_PATH + 2];
  memset(long_path, 'x', sizeof long_path - 1);
  ck_assert_int_eq(emel_io_add_file(io, long_path, sizeof long_path - 1, &a, NULL), EMEL_INVALID_PATH);
}
END_TEST

START_TEST(test_a_request_for_an_absent_strategy_is_unknown_strategy) {
  emel_io_request req = {.strategy = EMEL_STRATEGY_MMAP, .size = 8};
  emel_io_result res;
  emel_io_acquire(io, &req, &res);
  ck_assert_int_eq(res.error.code, EMEL_UNKNOWN_STRATEGY);
  ck_assert_ptr_null(res.data);
  req.strategy = EMEL_STRATEGY_NONE;
  emel_io_acquire(io, &req, &res);
  ck_assert_int_eq(res.error.code, EMEL_UNKNOWN_STRATEGY);
  emel_io_handle h = {.strategy = EMEL_STRATEGY_MMAP};
  ck_assert_int_eq(emel_io_release(io, h, NULL), EMEL_INVALID_HANDLE);
  ck_assert_int_eq(emel_io_advise(io, h, 0, 1, EMEL_ADVISE_WILLNEED, NULL), EMEL_INVALID_HANDLE);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 0);
}
END_TEST

START_TEST(test_requests_reach_the_attached_strategy_and_carry_its_error_code) {
  ck_assert_int_eq(emel_io_attach(io, &fake_strategy_ops, &fake, NULL), EMEL_OK);
  ck_assert(emel_io_has_strategy(io, EMEL_STRATEGY_READ));
  emel_io_request req = {.strategy = EMEL_STRATEGY_READ, .offset = 8, .size = 16};
  emel_io_result res;
  emel_io_acquire(io, &req, &res);
  ck_assert_int_eq(res.error.code, EMEL_OK);
  ck_assert_ptr_eq(res.data, fake.bytes + 8);
  ck_assert_int_eq(res.strategy, EMEL_STRATEGY_READ);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_READ), 1);
  ck_assert_int_eq(emel_io_advise(io, res.handle, 0, 1, EMEL_ADVISE_WILLNEED, NULL), EMEL_INVALID_REQUEST);
  ck_assert_int_eq(emel_io_release(io, res.handle, NULL), EMEL_OK);
  fake.acquire_error = (emel_error){.code = EMEL_READ_FAILED, .os_errno = EIO};
  emel_io_acquire(io, &req, &res);
  ck_assert_int_eq(res.error.code, EMEL_READ_FAILED);
  ck_assert_int_eq(res.error.os_errno, EIO);
  emel_io_handle none = {0};
  ck_assert_int_eq(emel_io_release(io, none, NULL), EMEL_OK); /* caller-owned: nothing held */
}
END_TEST

START_TEST(test_a_uniform_batch_goes_to_the_strategy_in_one_call_and_a_mixed_one_request_by_request) {
  ck_assert_int_eq(emel_io_attach(io, &fake_strategy_ops, &fake, NULL), EMEL_OK);
  emel_io_request reqs[3] = {{.strategy = EMEL_STRATEGY_READ, .offset = 0, .size = 8},
                             {.strategy = EMEL_STRATEGY_READ, .offset = 8, .size = 8},
                             {.strategy = EMEL_STRATEGY_READ, .offset = 16, .size = 8}};
  emel_io_result res[3];
  emel_io_acquire_batch(io, reqs, res, 3);
  ck_assert_uint_eq(fake.batches, 1);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(res[i].error.code, EMEL_OK);
    emel_io_release(io, res[i].handle, NULL);
  }
  reqs[1].strategy = EMEL_STRATEGY_MMAP;
  emel_io_acquire_batch(io, reqs, res, 3);
  ck_assert_uint_eq(fake.batches, 1);
  ck_assert_int_eq(res[1].error.code, EMEL_UNKNOWN_STRATEGY);
  emel_io_release(io, res[0].handle, NULL);
  emel_io_release(io, res[2].handle, NULL);
  ck_assert_uint_eq(fake.live, 0);
}
END_TEST

START_TEST(test_a_second_strategy_of_one_kind_is_refused_and_destroyed) {
  fake_strategy second;
  memset(&second, 0, sizeof second);
  ck_assert_int_eq(emel_io_attach(io, &fake_strategy_ops, &fake, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_attach(io, &fake_strategy_ops, &second, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(second.destroyed, 1);
  ck_assert_int_eq(fake.destroyed, 0);
}
END_TEST

START_TEST(test_destroying_the_boundary_destroys_its_strategies) {
  ck_assert_int_eq(emel_io_attach(io, &fake_strategy_ops, &fake, NULL), EMEL_OK);
  emel_io_destroy(io);
  io = NULL;
  ck_assert_int_eq(fake.destroyed, 1);
}
END_TEST

START_TEST(test_creation_failures_are_named_and_leak_nothing) {
  emel_io *x;
  emel_io_config too_many = EMEL_IO_CONFIG_INIT(.platform = &fp.ops, .max_files = EMEL_IO_MAX_FILES + 1);
  ck_assert_int_eq(emel_io_create(&x, &too_many, NULL), EMEL_INVALID_ARGUMENT);
  for (uint64_t k = 1; k <= 2; k++) {
    fault_platform_fail(&fp, FP_ALLOC, fp.calls[FP_ALLOC] + k, ENOMEM);
    emel_io_config c = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
    ck_assert_int_eq(emel_io_create(&x, &c, NULL), EMEL_OUT_OF_MEMORY);
    fault_platform_clear_faults(&fp);
  }
  fault_platform_fail(&fp, FP_ALLOC, fp.calls[FP_ALLOC] + 1, ENOMEM);
  uint32_t i;
  ck_assert_int_eq(emel_io_add_file(io, "m.gguf", 6, &i, NULL), EMEL_OUT_OF_MEMORY);
}
END_TEST

static Suite *io_boundary_suite(void) {
  Suite *s = suite_create("io_boundary");
  TCase *tc = tcase_create("routing");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_files_are_added_up_to_the_declared_capacity);
  tcase_add_test(tc, test_a_path_with_an_embedded_nul_is_kept_whole_for_its_strategy_to_refuse);
  tcase_add_test(tc, test_a_request_for_an_absent_strategy_is_unknown_strategy);
  tcase_add_test(tc, test_requests_reach_the_attached_strategy_and_carry_its_error_code);
  tcase_add_test(tc, test_a_uniform_batch_goes_to_the_strategy_in_one_call_and_a_mixed_one_request_by_request);
  tcase_add_test(tc, test_a_second_strategy_of_one_kind_is_refused_and_destroyed);
  tcase_add_test(tc, test_destroying_the_boundary_destroys_its_strategies);
  tcase_add_test(tc, test_creation_failures_are_named_and_leak_nothing);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(io_boundary_suite)

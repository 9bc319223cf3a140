/* The C API conventions (README "C API conventions"): one error convention
 * (status returned, details in an optional emel_error, errno, tensor and file
 * in one call) and the lifetimes stated in the headers (a view's data, the io
 * boundary against the tables that use it, what attach does with `self`).
 * Real files and strategies where a lifetime is about real memory, so the
 * ASan build turns a broken rule into a report. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "emel/model.h"
#include "fake_strategy.h"
#include "fault_platform.h"
#include "gguf_writer.h"

#ifndef EMEL_TEST_WORKDIR
#define EMEL_TEST_WORKDIR "."
#endif

enum { TENSORS = 4 };

static fault_platform fp;
static char path[512];

static void setup(void) {
  fault_platform_init(&fp);
  snprintf(path, sizeof path, "%s/api_conventions.gguf", EMEL_TEST_WORKDIR);
  static const uint32_t types[] = {EMEL_GGML_TYPE_F16};
  gw *w = gw_new();
  ck_assert_int_eq(gw_model_shape(w, TENSORS, (uint64_t)TENSORS << 14, types, 1), 0);
  ck_assert_int_eq(gw_write(w, path), 0);
  gw_free(w);
}

static void teardown(void) {
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
  remove(path);
}

static emel_model *open_model(void) {
  const emel_io_read_config rc = EMEL_IO_READ_CONFIG_INIT(.threads = 1);
  const emel_model_config cfg = EMEL_MODEL_CONFIG_INIT(.platform = &fp.ops, .read = &rc);
  emel_model *m;
  ck_assert_int_eq(emel_model_open(&m, path, &cfg, NULL), EMEL_OK);
  return m;
}

static const char *name_of(emel_model *m, size_t i) { return emel_gguf_tensor_at(emel_model_index(m), i)->name; }

/* ---- errors ---- */

START_TEST(test_a_failed_model_load_gives_code_errno_tensor_and_file_in_one_call) {
  /* Guards against the three-call lookup (emel_model_load, then
   * emel_tensors_find, then emel_tensors_last_error) to learn the errno and
   * the tensor: one call's emel_error must carry them all. */
  emel_model *m = open_model();
  const emel_load_options read = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);
  emel_tensor_view v;
  emel_error err = {.code = EMEL_INTERNAL, .os_errno = -1, .tensor = 99, .file = 99};
  fault_platform_fail(&fp, FP_OPEN, fp.calls[FP_OPEN] + 1, EACCES);
  ck_assert_int_eq(emel_model_load(m, name_of(m, 2), &read, &v, &err), EMEL_OPEN_FAILED);
  ck_assert_int_eq(err.code, EMEL_OPEN_FAILED);
  ck_assert_int_eq(err.os_errno, EACCES);
  ck_assert_uint_eq(err.tensor, 3); /* tensor 2 */
  ck_assert_uint_eq(err.file, 1);   /* the first (only) file */
  /* The per-tensor record tells the same afterwards. */
  emel_error kept = emel_tensors_last_error(emel_model_tensors(m), 2);
  ck_assert_int_eq(kept.code, EMEL_OPEN_FAILED);
  ck_assert_int_eq(kept.os_errno, EACCES);
  ck_assert_uint_eq(kept.tensor, 3);
  ck_assert_uint_eq(kept.file, 1);
  fault_platform_clear_faults(&fp);

  /* Success fills `err` whole: code OK, nothing left from before. */
  ck_assert_int_eq(emel_model_load(m, name_of(m, 2), &read, &v, &err), EMEL_OK);
  ck_assert_int_eq(err.code, EMEL_OK);
  ck_assert_int_eq(err.os_errno, 0);
  ck_assert_uint_eq(err.tensor, 0);
  ck_assert_uint_eq(err.file, 0);
  ck_assert_ptr_null(err.detail);

  /* A refusal by state names the tensor, with no errno. */
  ck_assert_int_eq(emel_model_load(m, name_of(m, 2), &read, &v, &err), EMEL_TENSOR_ALREADY_RESIDENT);
  ck_assert_uint_eq(err.tensor, 3);
  ck_assert_int_eq(err.os_errno, 0);
  ck_assert_int_eq(emel_model_evict(m, name_of(m, 2), &err), EMEL_OK);
  ck_assert_int_eq(emel_model_evict(m, name_of(m, 2), &err), EMEL_TENSOR_ALREADY_EVICTED);
  ck_assert_uint_eq(err.tensor, 3);

  /* No such tensor: no tensor to name. NULL `err` is allowed everywhere. */
  ck_assert_int_eq(emel_model_load(m, "no.such.tensor", &read, &v, &err), EMEL_TENSOR_UNKNOWN);
  ck_assert_uint_eq(err.tensor, 0);
  ck_assert_int_eq(emel_model_load(m, "no.such.tensor", &read, &v, NULL), EMEL_TENSOR_UNKNOWN);
  ck_assert_int_eq(emel_model_load(NULL, "x", &read, &v, &err), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(err.code, EMEL_INVALID_ARGUMENT);
  emel_model_close(m);
}
END_TEST

START_TEST(test_a_batch_error_names_its_first_failing_tensor_with_its_errno) {
  /* Guards against a batch that says only "something failed": its `err` is
   * the first failure in `indices` order, with that tensor's errno. */
  emel_model *m = open_model();
  emel_tensors *t = emel_model_tensors(m);
  const emel_load_options read = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);
  emel_tensor_view v;
  ck_assert_int_eq(emel_tensors_load(t, 1, &read, &v, NULL), EMEL_OK);
  const uint32_t idx[3] = {3, 1, 0}; /* 1 is resident: refused */
  emel_status st[3];
  emel_error err;
  ck_assert_int_eq(emel_tensors_load_batch(t, idx, 3, &read, st, &err), EMEL_TENSOR_ALREADY_RESIDENT);
  ck_assert_int_eq(err.code, EMEL_TENSOR_ALREADY_RESIDENT);
  ck_assert_uint_eq(err.tensor, 2); /* tensor 1 */
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);

  fault_platform_fail_many(&fp, FP_PREAD, fp.calls[FP_PREAD] + 1, 1000, EIO);
  fault_platform_fail_many(&fp, FP_PREADV, fp.calls[FP_PREADV] + 1, 1000, EIO);
  fault_platform_ring_completion(&fp, fp.completions + 1, 1000, EIO, 0); /* and through the ring */
  ck_assert_int_eq(emel_tensors_load_batch(t, idx, 3, &read, st, &err), EMEL_READ_FAILED);
  ck_assert_int_eq(err.os_errno, EIO);
  ck_assert_uint_eq(err.tensor, 4); /* tensor 3, first in the batch */
  ck_assert_uint_eq(err.file, 1);
  fault_platform_clear_faults(&fp);
  emel_model_close(m);
}
END_TEST

START_TEST(test_a_failed_open_names_no_tensor_and_lookups_fill_err_too) {
  emel_model *m;
  emel_error err = {.tensor = 7};
  const emel_model_config cfg = EMEL_MODEL_CONFIG_INIT(.platform = &fp.ops);
  fault_platform_fail(&fp, FP_OPEN, 1, ENOENT);
  ck_assert_int_eq(emel_model_open(&m, path, &cfg, &err), EMEL_OPEN_FAILED);
  ck_assert_int_eq(err.os_errno, ENOENT);
  ck_assert_uint_eq(err.tensor, 0);
  ck_assert_uint_eq(err.file, 1);
  fault_platform_clear_faults(&fp);
  m = open_model();
  uint64_t u;
  err.code = EMEL_OK;
  ck_assert_int_eq(emel_gguf_get_uint(emel_model_index(m), "no.such.key", &u, &err), EMEL_GGUF_KEY_NOT_FOUND);
  ck_assert_int_eq(err.code, EMEL_GGUF_KEY_NOT_FOUND);
  emel_model_close(m);
}
END_TEST

START_TEST(test_the_io_boundary_returns_statuses_with_the_errno_in_err) {
  /* Guards against the boundary's own second convention (release and advise
   * returned an emel_error by value, acquire returned nothing). */
  fake_strategy fake;
  memset(&fake, 0, sizeof fake);
  emel_io *io;
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
  ck_assert_int_eq(emel_io_create(&io, &ic, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_attach(io, &fake_strategy_ops, &fake, NULL), EMEL_OK);
  emel_io_request req = {.size = 64, .strategy = EMEL_STRATEGY_READ};
  emel_io_result res;
  ck_assert_int_eq(emel_io_acquire(io, &req, &res), EMEL_OK);
  fake.release_error = (emel_error){.code = EMEL_READ_FAILED, .os_errno = EIO};
  emel_error err;
  ck_assert_int_eq(emel_io_release(io, res.handle, &err), EMEL_READ_FAILED);
  ck_assert_int_eq(err.os_errno, EIO);
  fake.release_error.code = EMEL_OK;
  ck_assert_int_eq(emel_io_advise(io, res.handle, 0, 1, EMEL_ADVISE_WILLNEED, &err), EMEL_INVALID_REQUEST);
  ck_assert_int_eq(err.code, EMEL_INVALID_REQUEST);
  ck_assert_int_eq(emel_io_release(io, res.handle, &err), EMEL_OK);
  ck_assert_int_eq(err.code, EMEL_OK);
  req.strategy = EMEL_STRATEGY_MMAP;
  ck_assert_int_eq(emel_io_acquire(io, &req, &res), EMEL_UNKNOWN_STRATEGY);
  emel_io_destroy(io);
}
END_TEST

/* ---- lifetimes ---- */

START_TEST(test_a_view_stays_valid_until_its_own_tensor_is_evicted) {
  /* Guards the view lifetime stated in tensor.h: loads, failed loads and
   * evictions of other tensors neither move nor free a resident tensor's bytes. */
  emel_model *m = open_model();
  emel_tensors *t = emel_model_tensors(m);
  const emel_load_options read = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);
  const emel_load_options mapped = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP);
  emel_tensor_view a, b, c, now;
  ck_assert_int_eq(emel_tensors_load(t, 0, &read, &a, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_load(t, 3, &mapped, &c, NULL), EMEL_OK);
  unsigned char *copy = malloc((size_t)a.size);
  memcpy(copy, a.data, (size_t)a.size);
  ck_assert_int_eq(emel_tensors_load(t, 1, &read, &b, NULL), EMEL_OK);
  fault_platform_fail(&fp, FP_OPEN, fp.calls[FP_OPEN] + 1, EIO);
  fault_platform_fail(&fp, FP_ALLOC, fp.calls[FP_ALLOC] + 1, ENOMEM);
  ck_assert_int_ne(emel_tensors_load(t, 2, &read, &now, NULL), EMEL_OK);
  fault_platform_clear_faults(&fp);
  ck_assert_int_eq(emel_tensors_evict(t, 1, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_view(t, 0, &now, NULL), EMEL_OK);
  ck_assert_ptr_eq(now.data, a.data);
  ck_assert_int_eq(memcmp(a.data, copy, (size_t)a.size), 0);
  ck_assert_int_eq(memcmp(a.data, copy, (size_t)a.size), 0);
  /* The mapped one too, while another tensor of its file comes and goes. */
  ck_assert_int_eq(emel_tensors_load(t, 2, &mapped, &now, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_evict(t, 2, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_view(t, 3, &now, NULL), EMEL_OK);
  ck_assert_ptr_eq(now.data, c.data);
  volatile unsigned char touch = ((const unsigned char *)c.data)[c.size - 1];
  (void)touch;
  /* Its own eviction ends it: the table no longer gives it out. */
  ck_assert_int_eq(emel_tensors_evict(t, 0, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_view(t, 0, &now, NULL), EMEL_TENSOR_NOT_RESIDENT);
  free(copy);
  emel_model_close(m);
}
END_TEST

START_TEST(test_destroying_the_io_before_its_table_keeps_it_until_the_table_goes) {
  /* Guards against emel_io_destroy freeing the strategies (and the resident
   * tensors' bytes) under a table that still holds residencies through it:
   * the table's destroy then released through a freed boundary. */
  emel_io *io;
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
  ck_assert_int_eq(emel_io_create(&io, &ic, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_read_attach(io, NULL, NULL), EMEL_OK);
  uint32_t file;
  ck_assert_int_eq(emel_io_add_file(io, path, strlen(path), &file, NULL), EMEL_OK);
  emel_tensors *t;
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 2);
  ck_assert_int_eq(emel_tensors_create(&t, &tc, NULL), EMEL_OK);
  emel_tensor_span span = {.n_dims = 1, .dims = {64, 1, 1, 1}, .file_index = file, .offset = 0, .size = 128};
  uint32_t a, b;
  ck_assert_int_eq(emel_tensors_add(t, "a", 1, &span, &a, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_add(t, "b", 1, &span, &b, NULL), EMEL_OK);
  const emel_load_options read = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);
  emel_tensor_view v;
  ck_assert_int_eq(emel_tensors_load(t, a, &read, &v, NULL), EMEL_OK);

  emel_io_destroy(io); /* the caller is done with it; the table is not */
  ck_assert_int_eq(memcmp(v.data, "GGUF", 4), 0); /* still the file's first bytes */
  ck_assert_int_eq(emel_tensors_load(t, b, &read, NULL, NULL), EMEL_OK); /* still loads through it */
  ck_assert_int_gt(fault_platform_outstanding(&fp), 0);
  emel_tensors_destroy(t); /* the last user: releases both tensors, then the boundary */
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
}
END_TEST

START_TEST(test_the_io_outlives_every_table_on_it_in_any_order) {
  fake_strategy fake;
  memset(&fake, 0, sizeof fake);
  emel_io *io;
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
  ck_assert_int_eq(emel_io_create(&io, &ic, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_attach(io, &fake_strategy_ops, &fake, NULL), EMEL_OK);
  emel_tensors *t1, *t2;
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 1);
  ck_assert_int_eq(emel_tensors_create(&t1, &tc, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_create(&t2, &tc, NULL), EMEL_OK);
  emel_tensor_span span = {.n_dims = 1, .dims = {16, 1, 1, 1}, .size = 64};
  const emel_load_options by_fake = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);
  ck_assert_int_eq(emel_tensors_add(t1, "x", 1, &span, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_add(t2, "x", 1, &span, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_load(t1, 0, &by_fake, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_load(t2, 0, &by_fake, NULL, NULL), EMEL_OK);
  emel_io_destroy(io);
  ck_assert_int_eq(fake.destroyed, 0);
  emel_tensors_destroy(t1);
  ck_assert_int_eq(fake.destroyed, 0);
  ck_assert_uint_eq(fake.live, 1);
  emel_tensors_destroy(t2);
  ck_assert_int_eq(fake.destroyed, 1);
  ck_assert_uint_eq(fake.live, 0);
  /* A table created and destroyed before the boundary changes nothing. */
  ck_assert_int_eq(emel_io_create(&io, &ic, NULL), EMEL_OK);
  tc.io = io;
  ck_assert_int_eq(emel_tensors_create(&t1, &tc, NULL), EMEL_OK);
  emel_tensors_destroy(t1);
  emel_io_destroy(io);
}
END_TEST

static int destroyed_count;
static void counting_destroy(void *self) {
  (void)self;
  destroyed_count++;
}

START_TEST(test_a_refused_attach_has_destroyed_self_whatever_the_reason) {
  /* Guards the one rule of emel_io_attach: on failure `self` is destroyed
   * before it returns (so it is never leaked nor destroyed twice). */
  emel_io *io;
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
  ck_assert_int_eq(emel_io_create(&io, &ic, NULL), EMEL_OK);
  emel_io_strategy_ops ops = fake_strategy_ops;
  ops.destroy = counting_destroy;
  fake_strategy fake;
  memset(&fake, 0, sizeof fake);
  struct {
    emel_io *io;
    emel_strategy kind;
    int drop_acquire, drop_release;
  } cases[] = {
      {NULL, EMEL_STRATEGY_READ, 0, 0},  {io, EMEL_STRATEGY_NONE, 0, 0}, {io, EMEL_STRATEGY_COUNT, 0, 0},
      {io, EMEL_STRATEGY_READ, 1, 0},    {io, EMEL_STRATEGY_READ, 0, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    emel_io_strategy_ops o = ops;
    o.kind = cases[i].kind;
    if (cases[i].drop_acquire) o.acquire = NULL;
    if (cases[i].drop_release) o.release = NULL;
    destroyed_count = 0;
    emel_error err;
    ck_assert_int_eq(emel_io_attach(cases[i].io, &o, &fake, &err), EMEL_INVALID_ARGUMENT);
    ck_assert_int_eq(err.code, EMEL_INVALID_ARGUMENT);
    ck_assert_msg(destroyed_count == 1, "case %zu: self destroyed %d times", i, destroyed_count);
  }
  /* Ops from a newer header (unknown struct_size): the same rule. */
  emel_io_strategy_ops newer = ops;
  newer.struct_size = sizeof newer + 8;
  destroyed_count = 0;
  emel_error err;
  ck_assert_int_eq(emel_io_attach(io, &newer, &fake, &err), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_int_eq(err.code, EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_int_eq(destroyed_count, 1);
  /* Attached, then a second of the same kind: only the second is destroyed. */
  destroyed_count = 0;
  ck_assert_int_eq(emel_io_attach(io, &ops, &fake, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_attach(io, &ops, &fake, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(destroyed_count, 1);
  /* No destroy to call: refused, and self stays the caller's. */
  emel_io_strategy_ops no_destroy = ops;
  no_destroy.kind = EMEL_STRATEGY_MMAP;
  no_destroy.destroy = NULL;
  ck_assert_int_eq(emel_io_attach(io, &no_destroy, &fake, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(emel_io_attach(io, NULL, &fake, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(destroyed_count, 1);
  emel_io_destroy(io);
  ck_assert_int_eq(destroyed_count, 2);
}
END_TEST

START_TEST(test_a_failed_strategy_attach_attaches_and_holds_nothing) {
  /* The library's own strategies follow the same rule: every allocation
   * failure, and a second attach of one kind, leave nothing behind. */
  for (int kind = EMEL_STRATEGY_MMAP; kind <= EMEL_STRATEGY_READ; kind++) {
    for (uint64_t nth = 1;; nth++) {
      emel_io *io;
      emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
      ck_assert_int_eq(emel_io_create(&io, &ic, NULL), EMEL_OK);
      const int64_t before = fault_platform_outstanding(&fp);
      fault_platform_fail(&fp, FP_ALLOC, fp.calls[FP_ALLOC] + nth, ENOMEM);
      emel_error err;
      emel_status s = kind == EMEL_STRATEGY_MMAP ? emel_io_mmap_attach(io, NULL, &err)
                                                 : emel_io_read_attach(io, NULL, &err);
      fault_platform_clear_faults(&fp);
      ck_assert_int_eq(s, err.code);
      if (s == EMEL_OK) {
        s = kind == EMEL_STRATEGY_MMAP ? emel_io_mmap_attach(io, NULL, &err) : emel_io_read_attach(io, NULL, &err);
        ck_assert_int_eq(s, EMEL_INVALID_ARGUMENT);
        ck_assert_int_eq(emel_io_has_strategy(io, (emel_strategy)kind), 1);
        emel_io_destroy(io);
        ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
        break;
      }
      ck_assert_int_eq(s, EMEL_OUT_OF_MEMORY);
      ck_assert_int_eq(emel_io_has_strategy(io, (emel_strategy)kind), 0);
      ck_assert_int_eq(fault_platform_outstanding(&fp), before);
      emel_io_destroy(io);
      ck_assert_uint_lt(nth, 64);
    }
  }
}
END_TEST

static Suite *api_conventions_suite(void) {
  Suite *s = suite_create("api_conventions");
  TCase *errors = tcase_create("errors");
  tcase_add_checked_fixture(errors, setup, teardown);
  tcase_add_test(errors, test_a_failed_model_load_gives_code_errno_tensor_and_file_in_one_call);
  tcase_add_test(errors, test_a_batch_error_names_its_first_failing_tensor_with_its_errno);
  tcase_add_test(errors, test_a_failed_open_names_no_tensor_and_lookups_fill_err_too);
  tcase_add_test(errors, test_the_io_boundary_returns_statuses_with_the_errno_in_err);
  suite_add_tcase(s, errors);
  TCase *lifetimes = tcase_create("lifetimes");
  tcase_add_checked_fixture(lifetimes, setup, teardown);
  tcase_add_test(lifetimes, test_a_view_stays_valid_until_its_own_tensor_is_evicted);
  tcase_add_test(lifetimes, test_destroying_the_io_before_its_table_keeps_it_until_the_table_goes);
  tcase_add_test(lifetimes, test_the_io_outlives_every_table_on_it_in_any_order);
  tcase_add_test(lifetimes, test_a_refused_attach_has_destroyed_self_whatever_the_reason);
  tcase_add_test(lifetimes, test_a_failed_strategy_attach_attaches_and_holds_nothing);
  suite_add_tcase(s, lifetimes);
  return s;
}

EMEL_CHECK_MAIN(api_conventions_suite)

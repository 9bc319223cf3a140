/* An action that reports an outcome its state does not accept (an action
 * defect) must not leave its instance stuck in a transient state: the
 * instance is broken, answers EMEL_INTERNAL to this and every later call, and
 * its owner's destroy still releases everything (see machine.h).
 *
 * The defect is injected with the linker: this suite is linked with
 * -Wl,--wrap=<action> (tests/CMakeLists.txt), so the generated machine's call
 * of that action reaches __wrap_<action> here, which runs the real action and,
 * when armed, reports `bogus` instead of its outcome. The library is unchanged.
 *
 * Each test guards against the old driver, which restored the transient state
 * the refused outcome found: mmap then refused every later request as
 * EMEL_UNEXPECTED_EVENT, a tensor stuck in `loading` did the same, and the
 * read strategy went on as if nothing happened with a pool slot reserved for
 * good. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "emel/io.h"
#include "emel/io/mmap/mmap.h"
#include "emel/io/read/read.h"
#include "emel/io/staged/staged.h"
#include "emel/io_mmap.h"
#include "emel/io_read.h"
#include "emel/io_staged.h"
#include "emel/job.h"
#include "emel/job/job.h"
#include "emel/model/tensor/residency.h"
#include "emel/tensor.h"
#include "fault_platform.h"

/* ---- the wrapped actions: armed[] names the one that reports `bogus` ---- */

enum { W_MMAP_IDENTIFY, W_MMAP_CHECK_LOCK, W_READ_CHOOSE_STORAGE, W_READ_RECHECK_FILE, W_TENSOR_REQUEST, W_JOB_TRANSFER,
       W_STAGED_RESERVE, W_STAGED_RECHECK, W_STAGED_FREE, W_COUNT };
static int armed[W_COUNT];
static int bogus;

io_mmap_event __real_emel_mmap_identify_file(io_mmap_ctx *m);
io_mmap_event __real_emel_mmap_check_lock(io_mmap_ctx *m);
io_read_event __real_emel_read_choose_storage(io_read_ctx *m);
io_read_event __real_emel_read_recheck_file(io_read_ctx *m);
tensor_residency_event __real_emel_tensor_request_residency(tensor_residency_ctx *m);
io_mmap_event __wrap_emel_mmap_identify_file(io_mmap_ctx *m);
io_mmap_event __wrap_emel_mmap_check_lock(io_mmap_ctx *m);
io_read_event __wrap_emel_read_choose_storage(io_read_ctx *m);
io_read_event __wrap_emel_read_recheck_file(io_read_ctx *m);
tensor_residency_event __wrap_emel_tensor_request_residency(tensor_residency_ctx *m);
load_job_event __real_emel_job_transfer_unit(load_job_ctx *m);
load_job_event __wrap_emel_job_transfer_unit(load_job_ctx *m);

#define WRAP(ret, name, ctx, which)                  \
  ret __wrap_##name(ctx *m) {                        \
    ret outcome = __real_##name(m);                  \
    return armed[which] ? (ret)bogus : outcome;      \
  }
WRAP(io_mmap_event, emel_mmap_identify_file, io_mmap_ctx, W_MMAP_IDENTIFY)
WRAP(io_mmap_event, emel_mmap_check_lock, io_mmap_ctx, W_MMAP_CHECK_LOCK)
WRAP(io_read_event, emel_read_choose_storage, io_read_ctx, W_READ_CHOOSE_STORAGE)
WRAP(io_read_event, emel_read_recheck_file, io_read_ctx, W_READ_RECHECK_FILE)
WRAP(tensor_residency_event, emel_tensor_request_residency, tensor_residency_ctx, W_TENSOR_REQUEST)
WRAP(load_job_event, emel_job_transfer_unit, load_job_ctx, W_JOB_TRANSFER)
io_staged_event __real_emel_staged_reserve_slot(io_staged_ctx *m);
io_staged_event __real_emel_staged_recheck_file(io_staged_ctx *m);
io_staged_event __real_emel_staged_free_window(io_staged_ctx *m);
io_staged_event __wrap_emel_staged_reserve_slot(io_staged_ctx *m);
io_staged_event __wrap_emel_staged_recheck_file(io_staged_ctx *m);
io_staged_event __wrap_emel_staged_free_window(io_staged_ctx *m);
WRAP(io_staged_event, emel_staged_reserve_slot, io_staged_ctx, W_STAGED_RESERVE)
WRAP(io_staged_event, emel_staged_recheck_file, io_staged_ctx, W_STAGED_RECHECK)
WRAP(io_staged_event, emel_staged_free_window, io_staged_ctx, W_STAGED_FREE)

static void arm(int which, int outcome) {
  memset(armed, 0, sizeof armed);
  armed[which] = 1;
  bogus = outcome;
}

static void disarm(void) { memset(armed, 0, sizeof armed); }

/* ---- a real file behind the fault platform, which counts what is held ---- */

static fault_platform fp;
static emel_io *io;
static char path[64];
static uint32_t file;
enum { FILE_BYTES = 3 * 4096 + 100 };

static void setup(void) {
  disarm();
  fault_platform_init(&fp);
  snprintf(path, sizeof path, "/tmp/emel-unaccepted-XXXXXX");
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unsigned char bytes[FILE_BYTES];
  for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (unsigned char)(i * 7);
  ck_assert_int_eq(write(fd, bytes, sizeof bytes), (ssize_t)sizeof bytes);
  close(fd);
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
  ck_assert_int_eq(emel_io_create(&io, &ic, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_mmap_attach(io, NULL, NULL), EMEL_OK);
  emel_io_read_config rc = EMEL_IO_READ_CONFIG_INIT(.threads = 1);
  ck_assert_int_eq(emel_io_read_attach(io, &rc, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_add_file(io, path, strlen(path), &file, NULL), EMEL_OK);
}

static void teardown(void) {
  disarm();
  emel_io_destroy(io);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0); /* nothing leaked: fds, mappings, memory */
  unlink(path);
}

static emel_io_result acquire(emel_strategy strategy, uint64_t offset, uint64_t size) {
  emel_io_request r = {.file_index = file, .offset = offset, .size = size, .strategy = strategy};
  emel_io_result res;
  emel_io_acquire(io, &r, &res);
  return res;
}

/* ---- io_mmap ---- */

/* The defect strikes with the file open (identifying): the descriptor is
 * closed by destroy, never leaked. */
START_TEST(test_mmap_outcome_refused_while_identifying_breaks_the_strategy) {
  arm(W_MMAP_IDENTIFY, IO_MMAP_EV_MAP_OK);
  emel_io_result res = acquire(EMEL_STRATEGY_MMAP, 0, 100);
  ck_assert_str_eq(emel_status_name(res.error.code), "INTERNAL");
  ck_assert_int_eq(fp.open_fds, 1); /* held by the broken request until destroy */
  disarm();
  res = acquire(EMEL_STRATEGY_MMAP, 0, 100);
  ck_assert_str_eq(emel_status_name(res.error.code), "INTERNAL");
  ck_assert_int_eq(emel_io_release(io, (emel_io_handle){EMEL_STRATEGY_MMAP, 0, 0}, NULL), EMEL_INTERNAL);
  ck_assert_int_eq(emel_io_advise(io, (emel_io_handle){EMEL_STRATEGY_MMAP, 0, 0}, 0, 1, EMEL_ADVISE_WILLNEED, NULL),
                   EMEL_INTERNAL);
  /* The other strategy of the boundary is another instance: it still works. */
  res = acquire(EMEL_STRATEGY_READ, 0, 100);
  ck_assert_int_eq(res.error.code, EMEL_OK);
  ck_assert_int_eq(emel_io_release(io, res.handle, NULL), EMEL_OK);
}
END_TEST

/* The defect strikes with the file mapped, a tensor granted before it and a
 * reference taken for the request: destroy releases both. */
START_TEST(test_mmap_outcome_refused_after_mapping_breaks_the_strategy) {
  emel_io_result first = acquire(EMEL_STRATEGY_MMAP, 0, 100);
  ck_assert_int_eq(first.error.code, EMEL_OK);
  arm(W_MMAP_CHECK_LOCK, IO_MMAP_EV_UNMAPPED);
  emel_io_result res = acquire(EMEL_STRATEGY_MMAP, 4096, 100);
  ck_assert_int_eq(res.error.code, EMEL_INTERNAL);
  disarm();
  ck_assert_int_eq(emel_io_release(io, first.handle, NULL), EMEL_INTERNAL);
  res = acquire(EMEL_STRATEGY_MMAP, 0, 100);
  ck_assert_int_eq(res.error.code, EMEL_INTERNAL);
  ck_assert_int_eq(fp.live_maps, 1);
}
END_TEST

/* ---- io_read ---- */

START_TEST(test_read_outcome_refused_while_preparing_breaks_the_strategy) {
  emel_io_result first = acquire(EMEL_STRATEGY_READ, 0, 100);
  ck_assert_int_eq(first.error.code, EMEL_OK);
  arm(W_READ_CHOOSE_STORAGE, IO_READ_EV_CHUNK_READ); /* a slot is reserved by now */
  emel_io_result res = acquire(EMEL_STRATEGY_READ, 200, 100);
  ck_assert_str_eq(emel_status_name(res.error.code), "INTERNAL");
  disarm();
  res = acquire(EMEL_STRATEGY_READ, 200, 100);
  ck_assert_int_eq(res.error.code, EMEL_INTERNAL);
  emel_io_request batch[2] = {
      {.file_index = file, .offset = 0, .size = 10, .strategy = EMEL_STRATEGY_READ},
      {.file_index = file, .offset = 4096, .size = 10, .strategy = EMEL_STRATEGY_READ},
  };
  emel_io_result results[2];
  emel_io_acquire_batch(io, batch, results, 2);
  ck_assert_int_eq(results[0].error.code, EMEL_INTERNAL);
  ck_assert_int_eq(results[1].error.code, EMEL_INTERNAL);
  ck_assert_int_eq(emel_io_release(io, first.handle, NULL), EMEL_INTERNAL);
}
END_TEST

/* The defect strikes a batch run after its transfer (on its lane): the run's
 * members are refused, the members of other runs settle as usual, and the
 * strategy refuses what follows. */
START_TEST(test_read_outcome_refused_in_a_batch_run_breaks_the_strategy) {
  arm(W_READ_RECHECK_FILE, IO_READ_EV_HANDLE_LIVE);
  emel_io_request batch[2] = {
      {.file_index = file, .offset = 0, .size = 10, .strategy = EMEL_STRATEGY_READ},
      {.file_index = file, .offset = 8192, .size = 10, .strategy = EMEL_STRATEGY_READ},
  };
  emel_io_result results[2];
  emel_io_acquire_batch(io, batch, results, 2);
  ck_assert_int_eq(results[0].error.code, EMEL_INTERNAL);
  ck_assert_int_eq(results[1].error.code, EMEL_INTERNAL);
  disarm();
  emel_io_result res = acquire(EMEL_STRATEGY_READ, 0, 100);
  ck_assert_int_eq(res.error.code, EMEL_INTERNAL);
}
END_TEST

/* ---- io_staged ---- */

static int staged_consume(void *user, uint32_t tensor, uint64_t offset, uint64_t bytes, const void *data) {
  (void)user, (void)tensor, (void)offset, (void)bytes, (void)data;
  return 0;
}

static const emel_staged_consumer staged_consumer = EMEL_STAGED_CONSUMER_INIT(.consume = staged_consume);

static emel_io_result staged_acquire(uint64_t offset, uint64_t size) {
  emel_io_request r = {.file_index = file, .offset = offset, .size = size, .strategy = EMEL_STRATEGY_STAGED,
                       .flags = EMEL_LOAD_CONSUMER, .target = (void *)&staged_consumer};
  emel_io_result res;
  emel_io_acquire(io, &r, &res);
  return res;
}

/* Guards: a staged defect anywhere (PREPARE on the calling thread, a FILL on
 * the reader, the stream mid-way with the reader running) breaks the
 * strategy; the reader is always joined, and destroy releases the rest. */
START_TEST(test_staged_outcome_refused_anywhere_breaks_the_strategy_and_joins_the_reader) {
  static const struct {
    int which, bogus;
  } defects[] = {{W_STAGED_RESERVE, IO_STAGED_EV_CHUNK_READ},
                 {W_STAGED_RECHECK, IO_STAGED_EV_HANDLE_LIVE},
                 {W_STAGED_FREE, IO_STAGED_EV_SPAN_VALID}};
  for (size_t d = 0; d < sizeof defects / sizeof *defects; d++) {
    emel_io_staged_config c = EMEL_IO_STAGED_CONFIG_INIT(.budget = 4 * 4096, .buffers = 2);
    ck_assert_int_eq(emel_io_staged_attach(io, &c, NULL), EMEL_OK);
    emel_io_result first = staged_acquire(0, 100);
    ck_assert_int_eq(first.error.code, EMEL_OK);
    arm(defects[d].which, defects[d].bogus);
    emel_io_result res = staged_acquire(0, FILE_BYTES);
    ck_assert_msg(res.error.code == EMEL_INTERNAL, "defect %zu: %s", d, emel_status_name(res.error.code));
    ck_assert_int_eq(fp.live_threads, 0);
    disarm();
    ck_assert_int_eq(staged_acquire(0, 100).error.code, EMEL_INTERNAL);
    ck_assert_int_eq(emel_io_release(io, first.handle, NULL), EMEL_INTERNAL);
    /* The other strategies of the boundary are other instances: they still work. */
    res = acquire(EMEL_STRATEGY_READ, 0, 100);
    ck_assert_int_eq(res.error.code, EMEL_OK);
    ck_assert_int_eq(emel_io_release(io, res.handle, NULL), EMEL_OK);
    teardown();
    setup();
  }
}
END_TEST

/* ---- tensor_residency ---- */

START_TEST(test_tensor_outcome_refused_while_loading_breaks_that_tensor) {
  emel_tensors *t;
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 2);
  ck_assert_int_eq(emel_tensors_create(&t, &tc, NULL), EMEL_OK);
  emel_tensor_span span = {.n_dims = 1, .dims = {100, 1, 1, 1}, .file_index = file, .offset = 0, .size = 100};
  uint32_t a, b;
  ck_assert_int_eq(emel_tensors_add(t, "a", 1, &span, &a, NULL), EMEL_OK);
  span.offset = 4096;
  ck_assert_int_eq(emel_tensors_add(t, "b", 1, &span, &b, NULL), EMEL_OK);
  emel_load_options mapped = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP);
  emel_tensor_view view;

  /* The real request acquires the bytes; the bogus outcome leaves them unrecorded. */
  arm(W_TENSOR_REQUEST, TENSOR_RESIDENCY_EV_SPAN_VALID);
  ck_assert_str_eq(emel_status_name(emel_tensors_load(t, a, &mapped, &view, NULL)), "INTERNAL");
  disarm();
  ck_assert_int_eq(emel_tensors_state(t, a), EMEL_TENSOR_STATE_UNKNOWN);
  ck_assert_int_eq(emel_tensors_load(t, a, &mapped, &view, NULL), EMEL_INTERNAL);
  ck_assert_int_eq(emel_tensors_evict(t, a, NULL), EMEL_INTERNAL);
  ck_assert_int_eq(emel_tensors_bind(t, a, &span, NULL), EMEL_INTERNAL);
  ck_assert_int_eq(emel_tensors_view(t, a, &view, NULL), EMEL_INTERNAL);
  uint64_t h;
  ck_assert_int_eq(emel_tensors_hash(t, a, &h, NULL), EMEL_INTERNAL);
  emel_status st[1];
  ck_assert_int_eq(emel_tensors_load_batch(t, &a, 1, &mapped, st, NULL), EMEL_INTERNAL);
  ck_assert_int_eq(st[0], EMEL_INTERNAL);
  ck_assert_uint_eq(emel_tensors_resident_count(t), 0);

  /* Its neighbour is another instance: it loads, counts and evicts as usual. */
  ck_assert_int_eq(emel_tensors_load(t, b, &mapped, &view, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_tensors_resident_count(t), 1);
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_tensors_resident_count(t), 0);
  ck_assert_int_eq(emel_tensors_state(t, b), EMEL_TENSOR_EVICTED);
  emel_tensors_destroy(t); /* the residency `a` never recorded goes with the io boundary */
}
END_TEST

/* ---- load_job ---- */

/* The defect strikes with the first piece of a tensor read into the job's
 * buffer: the job is broken (failed, EMEL_INTERNAL from then on) and its
 * destroy frees that buffer and hands the tensor back. */
START_TEST(test_job_outcome_refused_mid_tensor_breaks_the_job) {
  emel_tensors *t;
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 1);
  ck_assert_int_eq(emel_tensors_create(&t, &tc, NULL), EMEL_OK);
  emel_tensor_span span = {.n_dims = 1, .dims = {10000, 1, 1, 1}, .file_index = file, .offset = 0, .size = 10000};
  uint32_t a;
  ck_assert_int_eq(emel_tensors_add(t, "a", 1, &span, &a, NULL), EMEL_OK);
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.chunk_bytes = 4096);
  emel_job *job;
  ck_assert_int_eq(emel_job_create(&job, t, &c, NULL), EMEL_OK);
  arm(W_JOB_TRANSFER, LOAD_JOB_EV_JOB_BEGUN);
  ck_assert_int_eq(emel_job_step(job, 0, NULL, NULL), EMEL_INTERNAL);
  disarm();
  ck_assert_int_eq(emel_job_poll(job, NULL), EMEL_JOB_FAILED);
  ck_assert_int_eq(emel_job_step(job, 0, NULL, NULL), EMEL_INTERNAL);
  ck_assert_int_eq(emel_job_result(job, NULL), EMEL_INTERNAL);
  ck_assert_int_gt(fp.live_allocs, 0);
  emel_job_destroy(job);
  ck_assert_int_eq(emel_tensors_state(t, a), EMEL_TENSOR_BOUND);
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);
  ck_assert_int_eq(emel_tensors_load(t, a, &o, NULL, NULL), EMEL_OK); /* no longer held */
  emel_tensors_destroy(t);
}
END_TEST

static Suite *unaccepted_outcome_suite(void) {
  Suite *s = suite_create("unaccepted_outcome");
  TCase *tc = tcase_create("machines");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_mmap_outcome_refused_while_identifying_breaks_the_strategy);
  tcase_add_test(tc, test_mmap_outcome_refused_after_mapping_breaks_the_strategy);
  tcase_add_test(tc, test_read_outcome_refused_while_preparing_breaks_the_strategy);
  tcase_add_test(tc, test_read_outcome_refused_in_a_batch_run_breaks_the_strategy);
  tcase_add_test(tc, test_tensor_outcome_refused_while_loading_breaks_that_tensor);
  tcase_add_test(tc, test_job_outcome_refused_mid_tensor_breaks_the_job);
  tcase_add_test(tc, test_staged_outcome_refused_anywhere_breaks_the_strategy_and_joins_the_reader);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(unaccepted_outcome_suite)

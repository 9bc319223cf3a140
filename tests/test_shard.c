/* Shard loads (emel_load_options.shard_rank/shard_count, issue 12): rank K of
 * N gets rows [floor(K*R/N), floor((K+1)*R/N)) of the outermost dimension,
 * which must be exactly those bytes of the file, with every strategy (mmap,
 * read, one by one and in a batch). The expected bytes come from the file
 * read with stdio and the row sizes written down here per tensor, not from the
 * library's own arithmetic. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "check_main.h"
#include "emel/job.h"
#include "emel/model.h"
#include "fault_platform.h"
#include "gguf_writer.h"

#ifndef EMEL_TEST_WORKDIR
#define EMEL_TEST_WORKDIR "."
#endif

/* Shapes chosen for uneven splits, quantized rows, a 3-D tensor, 1-D tensors
 * (plain and block-quantized: cut between blocks) and fewer rows than ranks.
 * rows/row_bytes are worked out by hand from ggml's block tables. */
typedef struct shape {
  const char *name;
  uint32_t type, n_dims;
  uint64_t ne[4];
  uint64_t rows, row_bytes;
} shape;

static const shape shapes[] = {
    {"f32_2d", EMEL_GGML_TYPE_F32, 2, {8, 7, 1, 1}, 7, 32},
    {"q4_0_2d", EMEL_GGML_TYPE_Q4_0, 2, {64, 5, 1, 1}, 5, 2 * 18},
    {"q6_k_3d", EMEL_GGML_TYPE_Q6_K, 3, {256, 3, 4, 1}, 4, 3 * 210},
    {"f16_1d", EMEL_GGML_TYPE_F16, 1, {13, 1, 1, 1}, 13, 2},
    {"q8_0_1d", EMEL_GGML_TYPE_Q8_0, 1, {96, 1, 1, 1}, 3, 34},
    {"tiny", EMEL_GGML_TYPE_F32, 2, {4, 2, 1, 1}, 2, 16},
    {"bf16_4d", EMEL_GGML_TYPE_BF16, 4, {6, 2, 3, 9}, 9, 6 * 2 * 3 * 2},
};
enum { SHAPES = sizeof shapes / sizeof shapes[0] };
static const uint32_t counts[] = {1, 2, 3, 4, 5, 7, 8, 16};

static fault_platform fp;
static char path[512];
static unsigned char *file_bytes;
static size_t file_size;

static void setup(void) {
  fault_platform_init(&fp);
  snprintf(path, sizeof path, "%s/shard.gguf", EMEL_TEST_WORKDIR);
  gw *w = gw_new();
  for (size_t i = 0; i < SHAPES; i++)
    ck_assert_int_eq(gw_tensor(w, shapes[i].name, shapes[i].type, shapes[i].n_dims, shapes[i].ne), 0);
  ck_assert_int_eq(gw_write(w, path), 0);
  gw_free(w);
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
  file_size = (size_t)ftell(f);
  rewind(f);
  file_bytes = malloc(file_size);
  ck_assert_ptr_nonnull(file_bytes);
  ck_assert_uint_eq(fread(file_bytes, 1, file_size, f), file_size);
  fclose(f);
}

static void teardown(void) {
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
  free(file_bytes);
  remove(path);
}

static emel_model *open_model(void) {
  const emel_io_read_config rc = EMEL_IO_READ_CONFIG_INIT(.threads = 1);
  const emel_model_config cfg = EMEL_MODEL_CONFIG_INIT(.platform = &fp.ops, .read = &rc);
  emel_model *m;
  ck_assert_int_eq(emel_model_open(&m, path, &cfg, NULL), EMEL_OK);
  return m;
}

/* The expected slice, by the formula in plain 64-bit arithmetic (the
 * values here are small). */
typedef struct expect {
  uint64_t begin, end, offset, size;
} expect;

static expect expected(emel_tensors *t, uint32_t index, uint32_t k, uint32_t n) {
  const shape *s = &shapes[index];
  emel_tensor_info info;
  ck_assert_ptr_nonnull(emel_tensors_info(t, index, &info));
  ck_assert_uint_eq(info.span.size, s->rows * s->row_bytes); /* the table above is right */
  expect e = {k * s->rows / n, (k + 1) * s->rows / n, 0, 0};
  e.offset = info.span.offset + e.begin * s->row_bytes;
  e.size = (e.end - e.begin) * s->row_bytes;
  return e;
}

/* Checks a resident tensor's view and hash against the file's bytes. */
static void check_slice(emel_tensors *t, uint32_t index, uint32_t k, uint32_t n, const emel_tensor_view *v) {
  const expect e = expected(t, index, k, n);
  ck_assert_msg(v->row_begin == e.begin && v->row_end == e.end, "%s %u/%u: rows [%llu, %llu), want [%llu, %llu)",
                shapes[index].name, k, n, (unsigned long long)v->row_begin, (unsigned long long)v->row_end,
                (unsigned long long)e.begin, (unsigned long long)e.end);
  ck_assert_uint_eq(v->size, e.size);
  ck_assert_int_eq(emel_tensors_state(t, index), EMEL_TENSOR_RESIDENT);
  uint64_t h = 0;
  ck_assert_int_eq(emel_tensors_hash(t, index, &h, NULL), EMEL_OK);
  ck_assert_uint_eq(h, XXH3_64bits(file_bytes + e.offset, (size_t)e.size));
  if (e.size == 0) { /* an empty slice: resident, no bytes */
    ck_assert_ptr_null(v->data);
    ck_assert_int_eq(v->residency, EMEL_RESIDENCY_NONE);
    return;
  }
  ck_assert_uint_le(e.offset + e.size, file_size);
  ck_assert_msg(memcmp(v->data, file_bytes + e.offset, (size_t)e.size) == 0, "%s %u/%u: bytes differ",
                shapes[index].name, k, n);
}

static void load_every_slice_one_by_one(emel_strategy strategy, unsigned flags) {
  emel_model *m = open_model();
  emel_tensors *t = emel_model_tensors(m);
  for (uint32_t i = 0; i < SHAPES; i++) {
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
      for (uint32_t k = 0; k < counts[c]; k++) {
        const emel_load_options o =
            EMEL_LOAD_OPTIONS_INIT(.strategy = strategy, .flags = flags, .shard_rank = k, .shard_count = counts[c]);
        emel_tensor_view v;
        emel_error err;
        ck_assert_int_eq(emel_tensors_load(t, i, &o, &v, &err), EMEL_OK);
        check_slice(t, i, k, counts[c], &v);
        emel_tensor_view again;
        ck_assert_int_eq(emel_tensors_view(t, i, &again, NULL), EMEL_OK);
        ck_assert_mem_eq(&again, &v, sizeof v);
        ck_assert_int_eq(emel_tensors_evict(t, i, NULL), EMEL_OK);
      }
    }
  }
  ck_assert_uint_eq(emel_io_live(emel_model_io(m), strategy), 0);
  emel_model_close(m);
}

static void load_every_slice_in_batches(emel_strategy strategy, unsigned flags) {
  emel_model *m = open_model();
  emel_tensors *t = emel_model_tensors(m);
  for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
    for (uint32_t k = 0; k < counts[c]; k++) {
      const emel_load_options o =
          EMEL_LOAD_OPTIONS_INIT(.strategy = strategy, .flags = flags, .shard_rank = k, .shard_count = counts[c]);
      emel_status statuses[SHAPES];
      ck_assert_int_eq(emel_tensors_load_batch(t, NULL, SHAPES, &o, statuses, NULL), EMEL_OK);
      for (uint32_t i = 0; i < SHAPES; i++) {
        ck_assert_int_eq(statuses[i], EMEL_OK);
        emel_tensor_view v;
        ck_assert_int_eq(emel_tensors_view(t, i, &v, NULL), EMEL_OK);
        check_slice(t, i, k, counts[c], &v);
      }
      ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
    }
  }
  ck_assert_uint_eq(emel_io_live(emel_model_io(m), strategy), 0);
  emel_model_close(m);
}

/* Guards against a slice taken from the wrong rows (an off-by-one in the row
 * formula, rounding up instead of down, a row size that ignores the block
 * size) or from the whole tensor, with each strategy. */
START_TEST(test_mmap_slices_are_the_right_bytes) { load_every_slice_one_by_one(EMEL_STRATEGY_MMAP, 0); }
END_TEST

START_TEST(test_mmap_populated_slices_are_the_right_bytes) {
  load_every_slice_one_by_one(EMEL_STRATEGY_MMAP, EMEL_LOAD_POPULATE);
}
END_TEST

START_TEST(test_read_slices_are_the_right_bytes) { load_every_slice_one_by_one(EMEL_STRATEGY_READ, 0); }
END_TEST

START_TEST(test_read_direct_slices_are_the_right_bytes) {
  load_every_slice_one_by_one(EMEL_STRATEGY_READ, EMEL_LOAD_DIRECT);
}
END_TEST

/* Guards against the batch path asking the boundary for whole spans (it
 * builds its requests apart from the single load) or for empty slices. */
START_TEST(test_read_batch_slices_are_the_right_bytes) { load_every_slice_in_batches(EMEL_STRATEGY_READ, 0); }
END_TEST

START_TEST(test_mmap_batch_slices_are_the_right_bytes) { load_every_slice_in_batches(EMEL_STRATEGY_MMAP, 0); }
END_TEST


/* Every slice through load jobs: `chunk` bytes per unit (small: every tensor
 * in pieces), stepped a unit at a time or in the background. */
static void load_every_slice_in_jobs(emel_strategy strategy, unsigned flags, uint64_t chunk, int background) {
  emel_model *m = open_model();
  emel_tensors *t = emel_model_tensors(m);
  for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
    for (uint32_t k = 0; k < counts[c]; k++) {
      const emel_load_options o =
          EMEL_LOAD_OPTIONS_INIT(.strategy = strategy, .flags = flags, .shard_rank = k, .shard_count = counts[c]);
      const emel_job_config jc = EMEL_JOB_CONFIG_INIT(.options = &o, .chunk_bytes = chunk);
      emel_job *job;
      ck_assert_int_eq(emel_job_create(&job, t, &jc, NULL), EMEL_OK);
      uint64_t slices = 0;
      for (uint32_t i = 0; i < SHAPES; i++) slices += expected(t, i, k, counts[c]).size;
      emel_job_progress p = EMEL_JOB_PROGRESS_INIT();
      (void)emel_job_poll(job, &p);
      ck_assert_uint_eq(p.bytes_total, slices); /* the slices' bytes, not the spans' */
      if (background) {
        ck_assert_int_eq(emel_job_start(job, NULL), EMEL_OK);
        ck_assert_int_eq(emel_job_wait(job, -1), EMEL_JOB_COMPLETED);
      } else {
        while (emel_job_poll(job, NULL) < EMEL_JOB_COMPLETED) ck_assert_int_eq(emel_job_step(job, 0, NULL, NULL), EMEL_OK);
      }
      ck_assert_int_eq(emel_job_poll(job, &p), EMEL_JOB_COMPLETED);
      ck_assert_int_eq(emel_job_result(job, NULL), EMEL_OK);
      ck_assert_uint_eq(p.bytes_done, slices);
      for (uint32_t i = 0; i < SHAPES; i++) {
        emel_tensor_view v, jv;
        ck_assert_int_eq(emel_tensors_view(t, i, &v, NULL), EMEL_OK);
        check_slice(t, i, k, counts[c], &v);
        ck_assert_int_eq(emel_job_view(job, i, &jv, NULL), EMEL_OK);
        ck_assert_mem_eq(&jv, &v, sizeof v);
      }
      emel_job_destroy(job);
      ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
    }
  }
  ck_assert_uint_eq(emel_io_live(emel_model_io(m), strategy), 0);
  emel_model_close(m);
}

/* Guards against a job that refused shards, or loaded whole spans (or read
 * a big tensor's pieces from the span's start) where its options ask for a
 * slice, and against progress counting span bytes: read in windows and in
 * pieces, populated mmap in pieces, plain mmap, direct read, and in the
 * background. */
START_TEST(test_job_slices_are_the_right_bytes) {
  load_every_slice_in_jobs(EMEL_STRATEGY_READ, 0, 0, 0);
  load_every_slice_in_jobs(EMEL_STRATEGY_READ, 0, 64, 0);
  load_every_slice_in_jobs(EMEL_STRATEGY_MMAP, EMEL_LOAD_POPULATE, 64, 0);
  load_every_slice_in_jobs(EMEL_STRATEGY_MMAP, 0, 0, 0);
  load_every_slice_in_jobs(EMEL_STRATEGY_READ, EMEL_LOAD_DIRECT, 64, 0);
  load_every_slice_in_jobs(EMEL_STRATEGY_READ, 0, 100, 1);
}
END_TEST

/* Guards against a load without a shard reporting no rows: the view of a
 * whole tensor holds every row. */
START_TEST(test_a_whole_load_reports_every_row) {
  emel_model *m = open_model();
  emel_tensors *t = emel_model_tensors(m);
  const emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);
  for (uint32_t i = 0; i < SHAPES; i++) {
    emel_tensor_view v;
    ck_assert_int_eq(emel_tensors_load(t, i, &o, &v, NULL), EMEL_OK);
    ck_assert_uint_eq(v.row_begin, 0);
    ck_assert_uint_eq(v.row_end, shapes[i].rows); /* a 1-D block type counts blocks */
    ck_assert_uint_eq(v.size, shapes[i].rows * shapes[i].row_bytes);
  }
  emel_model_close(m);
}
END_TEST

/* Guards against a rank past its count being loaded (as the whole tensor, or
 * a slice past the span's end) instead of refused by name. */
START_TEST(test_an_invalid_shard_is_refused_by_name) {
  emel_model *m = open_model();
  emel_tensors *t = emel_model_tensors(m);
  static const uint32_t bad[][2] = {{2, 2}, {1, 0}, {5, 3}, {UINT32_MAX, 1}};
  for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
    const emel_load_options o =
        EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP, .shard_rank = bad[b][0], .shard_count = bad[b][1]);
    emel_tensor_view v;
    emel_error err;
    ck_assert_int_eq(emel_tensors_load(t, 1, &o, &v, &err), EMEL_INVALID_SHARD);
    ck_assert_int_eq(err.code, EMEL_INVALID_SHARD);
    ck_assert_uint_eq(err.tensor, 2);
    ck_assert_int_eq(emel_tensors_state(t, 1), EMEL_TENSOR_BOUND);
    ck_assert_int_eq(emel_tensors_last_error(t, 1).code, EMEL_INVALID_SHARD);
    emel_status statuses[SHAPES];
    ck_assert_int_eq(emel_tensors_load_batch(t, NULL, SHAPES, &o, statuses, &err), EMEL_INVALID_SHARD);
    ck_assert_uint_eq(err.tensor, 1);
    for (uint32_t i = 0; i < SHAPES; i++) ck_assert_int_eq(statuses[i], EMEL_INVALID_SHARD);
    ck_assert_uint_eq(emel_tensors_resident_count(t), 0);
  }
  /* From evicted, too: refused, and nothing held. */
  const emel_load_options whole = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP);
  const emel_load_options bad_rank = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP, .shard_rank = 3,
                                                            .shard_count = 3);
  ck_assert_int_eq(emel_tensors_load(t, 0, &whole, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_evict(t, 0, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_load(t, 0, &bad_rank, NULL, NULL), EMEL_INVALID_SHARD);
  ck_assert_uint_eq(emel_io_live(emel_model_io(m), EMEL_STRATEGY_MMAP), 0);
  ck_assert_str_eq(emel_status_name(EMEL_INVALID_SHARD), "INVALID_SHARD");
  emel_model_close(m);
}
END_TEST

/* Guards against a shard cut by a span whose type and dims do not describe
 * its bytes (a hand-bound span): rows of unknown size are refused, not
 * guessed; the whole span still loads. */
START_TEST(test_shard_cut_needs_a_span_its_type_describes) {
  emel_tensor_span span = {.type = EMEL_GGML_TYPE_F32, .n_dims = 2, .dims = {4, 3, 1, 1}, .offset = 64, .size = 48};
  emel_tensor_slice s;
  emel_error err;
  ck_assert_int_eq(emel_tensor_shard_cut(&span, 1, 2, &s, &err), EMEL_OK);
  ck_assert_uint_eq(s.rows, 3);
  ck_assert_uint_eq(s.row_begin, 1);
  ck_assert_uint_eq(s.row_end, 3);
  ck_assert_uint_eq(s.offset, 64 + 16);
  ck_assert_uint_eq(s.size, 32);
  span.size = 40; /* not 4 * 3 floats */
  ck_assert_int_eq(emel_tensor_shard_cut(&span, 0, 2, &s, &err), EMEL_INVALID_SHARD);
  ck_assert_int_eq(err.code, EMEL_INVALID_SHARD);
  ck_assert_int_eq(emel_tensor_shard_cut(&span, 0, 0, &s, NULL), EMEL_OK); /* the whole span: type not used */
  ck_assert_uint_eq(s.size, 40);
  span.size = 48;
  span.type = 4; /* a removed ggml type */
  ck_assert_int_eq(emel_tensor_shard_cut(&span, 0, 2, &s, NULL), EMEL_INVALID_SHARD);
  ck_assert_int_eq(emel_tensor_shard_cut(NULL, 0, 2, &s, NULL), EMEL_INVALID_ARGUMENT);
  /* The boundaries of rows that do not fit 64 bits when multiplied by the rank. */
  span = (emel_tensor_span){.type = EMEL_GGML_TYPE_I8, .n_dims = 1, .dims = {(1ull << 62) + 3, 1, 1, 1},
                            .size = (1ull << 62) + 3};
  ck_assert_int_eq(emel_tensor_shard_cut(&span, 4000000000u, 4000000001u, &s, NULL), EMEL_OK);
  ck_assert_uint_eq(s.row_end, span.size);
  ck_assert_uint_eq(s.row_begin, span.size - ((1ull << 62) + 3) / 4000000001u - 1);
}
END_TEST

/* Guards against populate (and the pages a mapped tensor calls its own)
 * covering the whole tensor when only a slice was asked for. */
START_TEST(test_mmap_populates_only_the_slice_pages) {
  emel_model *m = open_model();
  emel_tensors *t = emel_model_tensors(m);
  const uint32_t index = 2; /* q6_k_3d: 4 rows of 630 bytes */
  const emel_load_options o =
      EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP, .flags = EMEL_LOAD_POPULATE, .shard_rank = 2,
                             .shard_count = 4);
  fp_advice before[FP_ADVICE_LOG];
  const size_t n0 = fault_platform_advices(&fp, FP_ADVISE, before, FP_ADVICE_LOG);
  emel_tensor_view v;
  ck_assert_int_eq(emel_tensors_load(t, index, &o, &v, NULL), EMEL_OK);
  fp_advice after[FP_ADVICE_LOG];
  const size_t n1 = fault_platform_advices(&fp, FP_ADVISE, after, FP_ADVICE_LOG);
  ck_assert_uint_eq(n1, n0 + 1);
  const fp_advice *a = &after[n0];
  ck_assert_int_eq(a->advice, EMEL_ADVISE_POPULATE_READ);
  const uintptr_t page = (uintptr_t)fp.ops.page_size(fp.ops.user);
  const uintptr_t first = (uintptr_t)v.data & ~(page - 1);
  ck_assert_ptr_eq(a->addr, (const void *)first);
  ck_assert_uint_eq(a->len, (uintptr_t)v.data + v.size - first);
  ck_assert_uint_eq(v.size, 630);
  emel_model_close(m);
}
END_TEST

/* Guards against an empty slice being refused or sent to a strategy (which
 * refuses size 0): it is resident with no bytes and evicts like any other. */
START_TEST(test_an_empty_slice_is_resident_without_bytes) {
  emel_model *m = open_model();
  emel_tensors *t = emel_model_tensors(m);
  const uint32_t index = 5; /* tiny: 2 rows; rank 0 of 3: rows [0, 0) */
  const emel_load_options o =
      EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ, .shard_rank = 0, .shard_count = 3);
  emel_tensor_view v;
  ck_assert_int_eq(emel_tensors_load(t, index, &o, &v, NULL), EMEL_OK);
  ck_assert_ptr_null(v.data);
  ck_assert_uint_eq(v.size, 0);
  ck_assert_uint_eq(v.row_begin, 0);
  ck_assert_uint_eq(v.row_end, 0);
  ck_assert_int_eq(v.residency, EMEL_RESIDENCY_NONE);
  ck_assert_int_eq(v.strategy, EMEL_STRATEGY_READ);
  ck_assert_uint_eq(emel_tensors_resident_count(t), 1);
  ck_assert_uint_eq(emel_io_live(emel_model_io(m), EMEL_STRATEGY_READ), 0);
  ck_assert_int_eq(emel_tensors_verify(t, index, XXH3_64bits(NULL, 0), NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_load(t, index, &o, &v, NULL), EMEL_TENSOR_ALREADY_RESIDENT);
  ck_assert_int_eq(emel_tensors_evict(t, index, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, index), EMEL_TENSOR_EVICTED);
  emel_model_close(m);
}
END_TEST

/* Guards against a caller buffer sized for the slice being refused as too
 * small for the whole tensor (the read strategy gets the slice's size). */
START_TEST(test_read_fills_a_target_sized_for_the_slice) {
  emel_model *m = open_model();
  emel_tensors *t = emel_model_tensors(m);
  const uint32_t index = 1; /* q4_0_2d: 5 rows of 36 bytes; rank 1 of 2: rows [2, 5) */
  emel_tensor_info info;
  emel_tensor_slice s;
  ck_assert_int_eq(emel_tensor_shard_cut(&emel_tensors_info(t, index, &info)->span, 1, 2, &s, NULL), EMEL_OK);
  ck_assert_uint_eq(s.size, 3 * 36);
  unsigned char buf[3 * 36];
  const emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ, .target = buf,
                                                     .target_size = sizeof buf, .shard_rank = 1, .shard_count = 2);
  emel_tensor_view v;
  ck_assert_int_eq(emel_tensors_load(t, index, &o, &v, NULL), EMEL_OK);
  ck_assert_ptr_eq(v.data, buf);
  ck_assert_int_eq(v.residency, EMEL_RESIDENCY_EXTERNAL);
  check_slice(t, index, 1, 2, &v);
  emel_model_close(m);
}
END_TEST

static Suite *shard_suite(void) {
  Suite *s = suite_create("shard");
  TCase *tc = tcase_create("shard");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_mmap_slices_are_the_right_bytes);
  tcase_add_test(tc, test_mmap_populated_slices_are_the_right_bytes);
  tcase_add_test(tc, test_read_slices_are_the_right_bytes);
  tcase_add_test(tc, test_read_direct_slices_are_the_right_bytes);
  tcase_add_test(tc, test_read_batch_slices_are_the_right_bytes);
  tcase_add_test(tc, test_mmap_batch_slices_are_the_right_bytes);
  tcase_add_test(tc, test_job_slices_are_the_right_bytes);
  tcase_add_test(tc, test_a_whole_load_reports_every_row);
  tcase_add_test(tc, test_an_invalid_shard_is_refused_by_name);
  tcase_add_test(tc, test_shard_cut_needs_a_span_its_type_describes);
  tcase_add_test(tc, test_mmap_populates_only_the_slice_pages);
  tcase_add_test(tc, test_an_empty_slice_is_resident_without_bytes);
  tcase_add_test(tc, test_read_fills_a_target_sized_for_the_slice);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(shard_suite)

/* GGUF index tests: round trips through the deterministic writer, every
 * validation error by its exact code, truncation at every header byte, hostile
 * counts under a counting allocator, injected OS failures, and the real
 * llama.cpp fixtures. Tests may use OS headers; the library may not. */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emel/gguf.h"
#include "emel/io.h"
#include "gguf_writer.h"

#ifndef EMEL_GGUF_FIXTURES_DIR
#define EMEL_GGUF_FIXTURES_DIR "/work/shared/fixtures/gguf"
#endif

static char tmpdir[256];

static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/emel-gguf-test-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

static const char *tmp_path(const char *name) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  return path;
}

/* Writes `w` to NAME in the temp dir, frees it, returns the path. */
static const char *emit(gw *w, const char *name) {
  const char *path = tmp_path(name);
  ck_assert_int_eq(gw_write(w, path), 0);
  gw_free(w);
  return path;
}

static emel_status open_status(const char *path, const emel_gguf_config *cfg, emel_error *err) {
  emel_gguf *g = NULL;
  emel_status st = emel_gguf_open(&g, path, cfg, err);
  ck_assert_int_eq(st == EMEL_OK, g != NULL);
  emel_gguf_close(g);
  return st;
}

static emel_gguf *open_ok(const char *path) {
  emel_gguf *g = NULL;
  emel_error err;
  emel_status st = emel_gguf_open(&g, path, NULL, &err);
  ck_assert_msg(st == EMEL_OK, "open %s: %s", path, emel_status_name(st));
  return g;
}

/* --- a counting, failure-injecting platform --------------------------------- */

typedef struct counter {
  const emel_platform_ops *real;
  long calls, allocs, frees, opens, closes;
  size_t cur, peak;
  long fail_alloc_at; /* the n-th alloc (from 1) fails; 0 = never */
  int open_errno, size_errno, pread_errno;
  int eintr_left;       /* preads answering -EINTR first */
  size_t max_pread;     /* short reads when non-zero */
} counter;

static void *c_alloc(void *u, size_t size, size_t align) {
  counter *c = u;
  c->calls++;
  if (c->fail_alloc_at && c->calls == c->fail_alloc_at) return NULL;
  void *p = c->real->alloc(c->real->user, size, align);
  if (p) {
    c->allocs++;
    c->cur += size;
    if (c->cur > c->peak) c->peak = c->cur;
  }
  return p;
}

static void c_free(void *u, void *p, size_t size) {
  counter *c = u;
  c->frees++;
  c->cur -= size;
  c->real->free(c->real->user, p, size);
}

static int c_open(void *u, const char *path, unsigned flags) {
  counter *c = u;
  if (c->open_errno) return -c->open_errno;
  int fd = c->real->open(c->real->user, path, flags);
  if (fd >= 0) c->opens++;
  return fd;
}

static int c_close(void *u, int fd) {
  counter *c = u;
  c->closes++;
  return c->real->close(c->real->user, fd);
}

static int c_file_identity(void *u, int fd, emel_file_identity *out) {
  counter *c = u;
  return c->size_errno ? -c->size_errno : c->real->file_identity(c->real->user, fd, out);
}

static int64_t c_pread(void *u, int fd, void *buf, size_t len, uint64_t off) {
  counter *c = u;
  if (c->pread_errno) return -c->pread_errno;
  if (c->eintr_left > 0) {
    c->eintr_left--;
    return -EINTR;
  }
  if (c->max_pread && len > c->max_pread) len = c->max_pread;
  return c->real->pread(c->real->user, fd, buf, len, off);
}

static emel_platform_ops counting_ops(counter *c) {
  memset(c, 0, sizeof *c);
  c->real = emel_platform_default();
  emel_platform_ops ops = EMEL_PLATFORM_OPS_INIT();
  ops.user = c;
  ops.alloc = c_alloc;
  ops.free = c_free;
  ops.open = c_open;
  ops.close = c_close;
  ops.file_identity = c_file_identity;
  ops.pread = c_pread;
  return ops;
}

static void assert_balanced(const counter *c) {
  ck_assert_int_eq(c->allocs, c->frees);
  ck_assert_uint_eq(c->cur, 0);
  ck_assert_int_eq(c->opens, c->closes);
}

/* --- files used by several tests ---------------------------------------------- */

static const char *tokens[] = {"<unk>", "<s>", "</s>", "hello", "wörld", ""};

static gw *all_types_writer(void) {
  gw *w = gw_new();
  gw_kv_str(w, "general.architecture", "llama");
  gw_kv_str(w, "general.name", "round-trip");
  gw_kv_u8(w, "t.u8", 200);
  gw_kv_i8(w, "t.i8", -100);
  gw_kv_u16(w, "t.u16", 60000);
  gw_kv_i16(w, "t.i16", -30000);
  gw_kv_u32(w, "t.u32", 4000000000u);
  gw_kv_i32(w, "t.i32", -2000000000);
  gw_kv_f32(w, "t.f32", 1.5f);
  gw_kv_bool(w, "t.bool", 1);
  gw_kv_u64(w, "t.u64", UINT64_MAX);
  gw_kv_i64(w, "t.i64", INT64_MIN);
  gw_kv_f64(w, "t.f64", -2.25);
  const int32_t ints[] = {3, -1, 7};
  gw_kv_array(w, "a.i32", EMEL_GGUF_TYPE_INT32, 3, ints);
  const double dbl[] = {0.5, 1e300};
  gw_kv_array(w, "a.f64", EMEL_GGUF_TYPE_FLOAT64, 2, dbl);
  gw_kv_array(w, "a.str", EMEL_GGUF_TYPE_STRING, 6, tokens);
  gw_kv_array(w, "a.empty", EMEL_GGUF_TYPE_UINT8, 0, NULL);
  gw_kv_begin(w, "a.nested", EMEL_GGUF_TYPE_ARRAY); /* [[1,2],[],["x","yz"]] */
  gw_put_array_header(w, EMEL_GGUF_TYPE_ARRAY, 3);
  gw_put_array_header(w, EMEL_GGUF_TYPE_UINT32, 2);
  gw_put_u32(w, 1);
  gw_put_u32(w, 2);
  gw_put_array_header(w, EMEL_GGUF_TYPE_UINT32, 0);
  gw_put_array_header(w, EMEL_GGUF_TYPE_STRING, 2);
  gw_put_str(w, "x");
  gw_put_str(w, "yz");
  return w;
}

static void add_small_tensors(gw *w) {
  const uint64_t a[2] = {64, 3}, b[1] = {256}, c[3] = {256, 2, 2};
  ck_assert_int_eq(gw_tensor(w, "blk.0.attn_q.weight", EMEL_GGML_TYPE_Q4_0, 2, a), 0);
  ck_assert_int_eq(gw_tensor(w, "blk.0.attn_norm.weight", EMEL_GGML_TYPE_F32, 1, b), 0);
  ck_assert_int_eq(gw_tensor(w, "blk.0.ffn_up.weight", EMEL_GGML_TYPE_Q4_K, 3, c), 0);
}

/* --- round trips ----------------------------------------------------------------- */

START_TEST(test_every_value_type_and_nested_arrays_round_trip) {
  emel_gguf *g = open_ok(emit(all_types_writer(), "types.gguf"));
  uint64_t u;
  int64_t i;
  double d;
  bool b;
  const char *s;
  size_t len;
  ck_assert_int_eq(emel_gguf_kv_count(g), 18);
  ck_assert_str_eq(emel_gguf_architecture(g), "llama");
  ck_assert_str_eq(emel_gguf_name(g), "round-trip");
  ck_assert_int_eq(emel_gguf_get_uint(g, "t.u8", &u, NULL), EMEL_OK); ck_assert_uint_eq(u, 200);
  ck_assert_int_eq(emel_gguf_get_int(g, "t.i8", &i, NULL), EMEL_OK); ck_assert_int_eq(i, -100);
  ck_assert_int_eq(emel_gguf_get_uint(g, "t.u16", &u, NULL), EMEL_OK); ck_assert_uint_eq(u, 60000);
  ck_assert_int_eq(emel_gguf_get_int(g, "t.i16", &i, NULL), EMEL_OK); ck_assert_int_eq(i, -30000);
  ck_assert_int_eq(emel_gguf_get_uint(g, "t.u32", &u, NULL), EMEL_OK); ck_assert_uint_eq(u, 4000000000u);
  ck_assert_int_eq(emel_gguf_get_int(g, "t.i32", &i, NULL), EMEL_OK); ck_assert_int_eq(i, -2000000000);
  ck_assert_int_eq(emel_gguf_get_float(g, "t.f32", &d, NULL), EMEL_OK); ck_assert(d == 1.5);
  ck_assert_int_eq(emel_gguf_get_bool(g, "t.bool", &b, NULL), EMEL_OK); ck_assert(b);
  ck_assert_int_eq(emel_gguf_get_uint(g, "t.u64", &u, NULL), EMEL_OK); ck_assert(u == UINT64_MAX);
  ck_assert_int_eq(emel_gguf_get_int(g, "t.i64", &i, NULL), EMEL_OK); ck_assert(i == INT64_MIN);
  ck_assert_int_eq(emel_gguf_get_float(g, "t.f64", &d, NULL), EMEL_OK); ck_assert(d == -2.25);
  ck_assert_int_eq(emel_gguf_get_string(g, "general.name", &s, &len, NULL), EMEL_OK); ck_assert_uint_eq(len, 10);

  emel_gguf_array a;
  emel_gguf_value v;
  ck_assert_int_eq(emel_gguf_get_array(g, "a.i32", &a, NULL), EMEL_OK);
  ck_assert_uint_eq(a.count, 3);
  ck_assert_int_eq(emel_gguf_array_get(&a, 1, &v, NULL), EMEL_OK); ck_assert_int_eq(v.v.i32, -1);
  ck_assert_int_eq(emel_gguf_array_get(&a, 3, &v, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(emel_gguf_get_array(g, "a.f64", &a, NULL), EMEL_OK);
  ck_assert_int_eq(emel_gguf_array_get(&a, 1, &v, NULL), EMEL_OK); ck_assert(v.v.f64 == 1e300);
  ck_assert_int_eq(emel_gguf_get_array(g, "a.str", &a, NULL), EMEL_OK);
  for (uint64_t k = 0; k < 6; k++) {
    ck_assert_int_eq(emel_gguf_array_get(&a, k, &v, NULL), EMEL_OK);
    ck_assert_uint_eq(v.v.str.len, strlen(tokens[k]));
    ck_assert(memcmp(v.v.str.ptr, tokens[k], v.v.str.len) == 0);
  }
  ck_assert_int_eq(emel_gguf_get_array(g, "a.empty", &a, NULL), EMEL_OK); ck_assert_uint_eq(a.count, 0);
  ck_assert_int_eq(emel_gguf_get_array(g, "a.nested", &a, NULL), EMEL_OK);
  ck_assert_uint_eq(a.elem_type, EMEL_GGUF_TYPE_ARRAY);
  ck_assert_int_eq(emel_gguf_array_get(&a, 2, &v, NULL), EMEL_OK);
  emel_gguf_array inner = v.v.arr;
  ck_assert_uint_eq(inner.elem_type, EMEL_GGUF_TYPE_STRING);
  ck_assert_int_eq(emel_gguf_array_get(&inner, 1, &v, NULL), EMEL_OK);
  ck_assert(v.v.str.len == 2 && memcmp(v.v.str.ptr, "yz", 2) == 0);
  ck_assert_int_eq(emel_gguf_array_get(&a, 0, &v, NULL), EMEL_OK);
  inner = v.v.arr;
  ck_assert_int_eq(emel_gguf_array_get(&inner, 1, &v, NULL), EMEL_OK); ck_assert_uint_eq(v.v.u32, 2);
  emel_gguf_close(g);
}
END_TEST

START_TEST(test_lookups_find_keys_and_tensors_by_name_and_report_type_mismatches) {
  gw *w = all_types_writer();
  add_small_tensors(w);
  emel_gguf *g = open_ok(emit(w, "lookup.gguf"));
  size_t idx;
  uint64_t u;
  double d;
  ck_assert_int_eq(emel_gguf_kv_find(g, "t.u16", &idx, NULL), EMEL_OK);
  ck_assert_str_eq(emel_gguf_kv_key(g, idx), "t.u16");
  ck_assert_uint_eq(emel_gguf_kv_type(g, idx), EMEL_GGUF_TYPE_UINT16);
  ck_assert_int_eq(emel_gguf_kv_find(g, "t.nope", &idx, NULL), EMEL_GGUF_KEY_NOT_FOUND);
  ck_assert_int_eq(emel_gguf_get_uint(g, "t.i8", &u, NULL), EMEL_GGUF_KEY_TYPE_MISMATCH);
  ck_assert_int_eq(emel_gguf_get_float(g, "t.u8", &d, NULL), EMEL_GGUF_KEY_TYPE_MISMATCH);
  ck_assert_uint_eq(emel_gguf_tensor_count(g), 3);
  ck_assert_int_eq(emel_gguf_tensor_find(g, "blk.0.ffn_up.weight", &idx, NULL), EMEL_OK);
  ck_assert_uint_eq(idx, 2);
  const emel_gguf_tensor *t = emel_gguf_tensor_at(g, idx);
  ck_assert_str_eq(t->name, "blk.0.ffn_up.weight");
  ck_assert_uint_eq(t->n_dims, 3);
  ck_assert_uint_eq(t->ne[2], 2); ck_assert_uint_eq(t->ne[3], 1);
  ck_assert_uint_eq(t->size, 4 * 144);
  ck_assert_int_eq(emel_gguf_tensor_find(g, "missing", &idx, NULL), EMEL_TENSOR_UNKNOWN);
  ck_assert_ptr_null(emel_gguf_tensor_at(g, 3));
  emel_gguf_close(g);
}
END_TEST

START_TEST(test_versions_2_and_3_are_both_read) {
  for (uint32_t version = 2; version <= 3; version++) {
    gw *w = all_types_writer();
    gw_set_version(w, version);
    add_small_tensors(w);
    emel_gguf *g = open_ok(emit(w, "version.gguf"));
    ck_assert_uint_eq(emel_gguf_version(g), version);
    ck_assert_uint_eq(emel_gguf_tensor_count(g), 3);
    emel_gguf_close(g);
  }
}
END_TEST

/* Reads n bytes of a file with stdio (independent of the index). */
static void read_at(const char *path, uint64_t off, void *buf, size_t n) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fseek(f, (long)off, SEEK_SET), 0);
  ck_assert_uint_eq(fread(buf, 1, n, f), n);
  fclose(f);
}

static void assert_tensor_bytes(const emel_gguf *g, uint64_t seed) {
  for (size_t i = 0; i < emel_gguf_tensor_count(g); i++) {
    const emel_gguf_tensor *t = emel_gguf_tensor_at(g, i);
    uint8_t got[64], want[64];
    size_t n = t->size < 64 ? (size_t)t->size : 64;
    read_at(emel_gguf_file_path(g, t->file_index), t->offset, got, n);
    gw_fill(seed, t->name, 0, want, n);
    ck_assert_msg(memcmp(got, want, n) == 0, "bytes of %s", t->name);
  }
}

START_TEST(test_tensors_sit_at_offsets_aligned_to_32_64_and_4096) {
  const uint32_t alignments[] = {32, 64, 4096};
  for (size_t k = 0; k < 3; k++) {
    gw *w = gw_new();
    if (alignments[k] != 32) gw_set_alignment(w, alignments[k]);
    gw_set_seed(w, 42 + k);
    add_small_tensors(w);
    emel_gguf *g = open_ok(emit(w, "aligned.gguf"));
    ck_assert_uint_eq(emel_gguf_alignment(g), alignments[k]);
    ck_assert_uint_eq(emel_gguf_data_offset(g, 0) % alignments[k], 0);
    for (size_t i = 0; i < emel_gguf_tensor_count(g); i++)
      ck_assert_uint_eq(emel_gguf_tensor_at(g, i)->offset % alignments[k], 0);
    assert_tensor_bytes(g, 42 + k);
    emel_gguf_close(g);
  }
}
END_TEST

/* ggml's block elements and bytes, written out independently of the index. */
static const struct { uint32_t type, block, bytes; } ggml_sizes[] = {
  {0, 1, 4}, {1, 1, 2}, {2, 32, 18}, {3, 32, 20}, {6, 32, 22}, {7, 32, 24}, {8, 32, 34}, {9, 32, 36},
  {10, 256, 84}, {11, 256, 110}, {12, 256, 144}, {13, 256, 176}, {14, 256, 210}, {15, 256, 292},
  {16, 256, 66}, {17, 256, 74}, {18, 256, 98}, {19, 256, 50}, {20, 32, 18}, {21, 256, 110}, {22, 256, 82},
  {23, 256, 136}, {24, 1, 1}, {25, 1, 2}, {26, 1, 4}, {27, 1, 8}, {28, 1, 8}, {29, 256, 56}, {30, 1, 2},
  {34, 256, 54}, {35, 256, 66}, {39, 32, 17}, {40, 64, 36}, {41, 128, 18},
};

START_TEST(test_mixed_quantized_tensors_have_the_byte_sizes_ggml_gives) {
  gw *w = gw_new();
  size_t n = sizeof ggml_sizes / sizeof ggml_sizes[0];
  for (size_t i = 0; i < n; i++) {
    char name[32];
    uint64_t ne[2] = {ggml_sizes[i].block * 2, 3};
    snprintf(name, sizeof name, "t%zu", i);
    ck_assert_int_eq(gw_tensor(w, name, ggml_sizes[i].type, 2, ne), 0);
  }
  emel_gguf *g = open_ok(emit(w, "mixed.gguf"));
  ck_assert_uint_eq(emel_gguf_tensor_count(g), n);
  for (size_t i = 0; i < n; i++) {
    const emel_gguf_tensor *t = emel_gguf_tensor_at(g, i);
    ck_assert_uint_eq(t->type, ggml_sizes[i].type);
    ck_assert_uint_eq(t->size, 6ull * ggml_sizes[i].bytes);
    uint32_t back;
    ck_assert_int_eq(emel_ggml_type_from_name(emel_ggml_type_name(t->type), &back, NULL), EMEL_OK);
    ck_assert_uint_eq(back, t->type);
  }
  emel_gguf_close(g);
  const uint32_t removed[] = {4, 5, 31, 32, 33, 36, 37, 38, 42, 1000};
  for (size_t i = 0; i < 10; i++) ck_assert_ptr_null(emel_ggml_type_name(removed[i]));
}
END_TEST

START_TEST(test_a_file_with_no_tensors_ends_before_its_data_offset_and_is_valid) {
  gw *w = gw_new();
  gw_kv_str(w, "general.architecture", "x"); /* 4+4+8+8 + 8+20+4+8+1 = 65 bytes */
  emel_gguf *g = open_ok(emit(w, "empty.gguf"));
  ck_assert_uint_eq(emel_gguf_file_size(g, 0), 65);
  ck_assert_uint_eq(emel_gguf_data_offset(g, 0), 96);
  ck_assert_uint_eq(emel_gguf_tensor_count(g), 0);
  emel_gguf_close(g);
}
END_TEST

static gw *model_writer(uint64_t seed) {
  const uint32_t types[] = {EMEL_GGML_TYPE_Q4_K, EMEL_GGML_TYPE_Q8_0, EMEL_GGML_TYPE_F16};
  gw *w = gw_new();
  gw_kv_str(w, "general.architecture", "llama");
  gw_set_alignment(w, 64);
  gw_set_seed(w, seed);
  ck_assert_int_eq(gw_model_shape(w, 25, 1 << 20, types, 3), 0);
  return w;
}

START_TEST(test_a_split_model_of_three_files_indexes_every_file) {
  gw *w = model_writer(9);
  char prefix[512];
  snprintf(prefix, sizeof prefix, "%s", tmp_path("split"));
  ck_assert_int_eq(gw_write_split(w, prefix, 3), 0);
  gw_free(w);
  char first[600];
  gw_split_path(first, sizeof first, prefix, 0, 3);
  emel_gguf *g = open_ok(first);
  ck_assert_uint_eq(emel_gguf_file_count(g), 3);
  ck_assert_uint_eq(emel_gguf_tensor_count(g), 25);
  ck_assert_str_eq(emel_gguf_architecture(g), "llama");
  uint32_t seen[3] = {0};
  for (size_t i = 0; i < 25; i++) {
    const emel_gguf_tensor *t = emel_gguf_tensor_at(g, i);
    ck_assert_uint_lt(t->file_index, 3);
    seen[t->file_index]++;
    ck_assert_uint_ge(t->offset, emel_gguf_data_offset(g, t->file_index));
    ck_assert_uint_le(t->offset + t->size, emel_gguf_file_size(g, t->file_index));
  }
  ck_assert(seen[0] && seen[1] && seen[2]);
  char third[600];
  gw_split_path(third, sizeof third, prefix, 2, 3);
  ck_assert_str_eq(emel_gguf_file_path(g, 2), third);
  size_t idx;
  ck_assert_int_eq(emel_gguf_tensor_find(g, "blk.2.attn_v.weight", &idx, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_gguf_tensor_at(g, idx)->file_index, 2);
  assert_tensor_bytes(g, 9);
  emel_gguf_close(g);

  /* a sibling whose split.no lies breaks the set */
  char second[600];
  gw_split_path(second, sizeof second, prefix, 1, 3);
  gw *bad = gw_new();
  gw_kv_u16(bad, "split.no", 2);
  gw_kv_u16(bad, "split.count", 3);
  ck_assert_int_eq(gw_write(bad, second), 0);
  gw_free(bad);
  ck_assert_int_eq(open_status(first, NULL, NULL), EMEL_GGUF_SPLIT_INVALID);
  /* a missing sibling is an open failure with its errno */
  ck_assert_int_eq(unlink(second), 0);
  emel_error err;
  ck_assert_int_eq(open_status(first, NULL, &err), EMEL_OPEN_FAILED);
  ck_assert_int_eq(err.os_errno, ENOENT);
}
END_TEST

START_TEST(test_a_split_first_file_with_a_foreign_name_is_invalid) {
  gw *w = gw_new();
  gw_kv_u16(w, "split.no", 0);
  gw_kv_u16(w, "split.count", 2);
  emel_error err;
  ck_assert_int_eq(open_status(emit(w, "renamed.gguf"), NULL, &err), EMEL_GGUF_SPLIT_INVALID);
  ck_assert_uint_eq(err.file, 1);
  ck_assert_ptr_nonnull(strstr(err.detail, "PREFIX-00001-of-NNNNN.gguf"));
}
END_TEST

/* --- split sets: the part at fault and the check that failed (issue 13) -------- */

/* Part `i` of a hand-made split set of `n_parts` at PREFIX-0000i-of-0000n.gguf,
 * carrying split.no `no`, split.count `count` and split.tensors.count `total`
 * (each left out when negative) and `n` F32 tensors named TAG.i.j. */
static void split_part(const char *prefix, uint32_t i, uint32_t n_parts, int no, int count, int total, uint32_t n,
                       const char *tag) {
  gw *w = gw_new();
  if (i == 0) gw_kv_str(w, "general.architecture", "llama");
  if (no >= 0) gw_kv_u16(w, "split.no", (uint16_t)no);
  if (count >= 0) gw_kv_u16(w, "split.count", (uint16_t)count);
  if (total >= 0) gw_kv_i32(w, "split.tensors.count", total);
  for (uint32_t j = 0; j < n; j++) {
    char name[64];
    uint64_t ne[1] = {8};
    snprintf(name, sizeof name, "%s.%u.%u", tag, (unsigned)i, (unsigned)j);
    ck_assert_int_eq(gw_tensor(w, name, EMEL_GGML_TYPE_F32, 1, ne), 0);
  }
  char path[600];
  gw_split_path(path, sizeof path, prefix, i, n_parts);
  ck_assert_int_eq(gw_write(w, path), 0);
  gw_free(w);
}

/* A valid set of three parts of two tensors each, named after `name`; the
 * first part's path goes to `first`. */
static const char *split_set(const char *name, char *first, size_t size) {
  static char prefix[512];
  snprintf(prefix, sizeof prefix, "%s", tmp_path(name));
  for (uint32_t i = 0; i < 3; i++) split_part(prefix, i, 3, (int)i, 3, 6, 2, "t");
  gw_split_path(first, size, prefix, 0, 3);
  emel_gguf_close(open_ok(first));
  return prefix;
}

/* Opens `first` expecting `code` charged to part `file` with a detail holding
 * `why` (NULL: no detail). */
static void expect_split_error(const char *first, emel_status code, uint32_t file, const char *why) {
  emel_error err;
  ck_assert_str_eq(emel_status_name(open_status(first, NULL, &err)), emel_status_name(code));
  ck_assert_int_eq(err.code, code);
  ck_assert_uint_eq(err.file, file);
  if (why) ck_assert_msg(err.detail && strstr(err.detail, why), "detail '%s' lacks '%s'", err.detail, why);
  else ck_assert_ptr_null(err.detail);
}

/* Guards against reporting a missing middle part as OPEN_FAILED on part 1:
 * the error must name part 2, whose path the caller can rebuild. */
START_TEST(test_a_missing_middle_part_is_an_open_failure_of_that_part) {
  char first[600], missing[600], part[600];
  const char *prefix = split_set("missing", first, sizeof first);
  gw_split_path(missing, sizeof missing, prefix, 1, 3);
  ck_assert_int_eq(unlink(missing), 0);
  emel_error err;
  ck_assert_int_eq(open_status(first, NULL, &err), EMEL_OPEN_FAILED);
  ck_assert_int_eq(err.os_errno, ENOENT);
  ck_assert_uint_eq(err.file, 2);
  ck_assert_ptr_null(err.detail);
  uint32_t count = 0;
  ck_assert_int_eq(emel_gguf_split_path(part, sizeof part, first, err.file, &count, NULL), EMEL_OK);
  ck_assert_str_eq(part, missing);
  ck_assert_uint_eq(count, 3);
  /* a part that is there but broken is charged to that part too */
  FILE *f = fopen(missing, "wb");
  ck_assert_ptr_nonnull(f);
  fputs("GGUF", f);
  fclose(f);
  expect_split_error(first, EMEL_GGUF_TRUNCATED, 2, NULL);
  /* and a broken first file to part 1 */
  f = fopen(first, "wb");
  ck_assert_ptr_nonnull(f);
  fclose(f);
  expect_split_error(first, EMEL_GGUF_TRUNCATED, 1, NULL);
}
END_TEST

/* Guards against GGUF_SPLIT_INVALID without the part or the check (split.no). */
START_TEST(test_bad_split_numbering_names_the_part_and_split_no) {
  char first[600];
  const char *prefix = split_set("numbering", first, sizeof first);
  split_part(prefix, 1, 3, 2, 3, 6, 2, "t"); /* part 2 says it is the third */
  expect_split_error(first, EMEL_GGUF_SPLIT_INVALID, 2, "split.no is not this part's place");
  split_part(prefix, 1, 3, 1, 3, 6, 2, "t");
  split_part(prefix, 2, 3, -1, 3, 6, 2, "t"); /* part 3 carries no split.no */
  expect_split_error(first, EMEL_GGUF_SPLIT_INVALID, 3, "split.no is missing");
  split_part(prefix, 2, 3, 2, 3, 6, 2, "t");
  split_part(prefix, 0, 3, 1, 3, 6, 2, "t"); /* the first part says it is the second */
  expect_split_error(first, EMEL_GGUF_SPLIT_INVALID, 1, "split.no says this is not the first part");
}
END_TEST

/* Guards against GGUF_SPLIT_INVALID without the part or the check (split.count). */
START_TEST(test_a_split_count_that_disagrees_names_the_part) {
  char first[600];
  const char *prefix = split_set("count", first, sizeof first);
  split_part(prefix, 2, 3, 2, 4, 6, 2, "t");
  expect_split_error(first, EMEL_GGUF_SPLIT_INVALID, 3, "split.count differs from the first part's");
  split_part(prefix, 2, 3, 2, -1, 6, 2, "t");
  expect_split_error(first, EMEL_GGUF_SPLIT_INVALID, 3, "split.count is missing");
}
END_TEST

/* Guards against accepting a part whose split.tensors.count differs from the
 * first part's while the tensor counts still add up (item 6 of issue 13). */
START_TEST(test_a_part_whose_split_tensors_count_differs_is_refused) {
  char first[600];
  const char *prefix = split_set("tensors", first, sizeof first);
  split_part(prefix, 1, 3, 1, 3, 7, 2, "t");
  expect_split_error(first, EMEL_GGUF_SPLIT_INVALID, 2, "split.tensors.count differs from the first part's");
  split_part(prefix, 1, 3, 1, 3, -1, 2, "t"); /* present in part 1, absent from part 2 */
  expect_split_error(first, EMEL_GGUF_SPLIT_INVALID, 2, "split.tensors.count differs from the first part's");
  split_part(prefix, 1, 3, 1, 3, 6, 2, "t");
  split_part(prefix, 2, 3, 2, 3, -1, 2, "t");
  expect_split_error(first, EMEL_GGUF_SPLIT_INVALID, 3, "split.tensors.count differs from the first part's");
}
END_TEST

/* Guards against a GGUF_SPLIT_INVALID for a short part that says nothing:
 * no one part is at fault (file 0), the check is named. */
START_TEST(test_part_tensor_counts_that_do_not_add_up_are_named) {
  char first[600];
  const char *prefix = split_set("sum", first, sizeof first);
  split_part(prefix, 1, 3, 1, 3, 6, 1, "t");
  expect_split_error(first, EMEL_GGUF_SPLIT_INVALID, 0, "do not add up to split.tensors.count");
  split_part(prefix, 1, 3, 1, 3, 6, 3, "t");
  expect_split_error(first, EMEL_GGUF_SPLIT_INVALID, 0, "do not add up to split.tensors.count");
  /* a tensor name repeated in a later part is charged to that part */
  split_part(prefix, 1, 3, 1, 3, 6, 2, "t");
  split_part(prefix, 2, 3, 2, 3, 6, 2, "t");
  char third[600];
  gw_split_path(third, sizeof third, prefix, 2, 3);
  gw *w = gw_new();
  gw_kv_u16(w, "split.no", 2);
  gw_kv_u16(w, "split.count", 3);
  gw_kv_i32(w, "split.tensors.count", 6);
  uint64_t ne[1] = {8};
  ck_assert_int_eq(gw_tensor(w, "t.2.0", EMEL_GGML_TYPE_F32, 1, ne), 0);
  ck_assert_int_eq(gw_tensor(w, "t.0.1", EMEL_GGML_TYPE_F32, 1, ne), 0);
  ck_assert_int_eq(gw_write(w, third), 0);
  gw_free(w);
  expect_split_error(first, EMEL_GGUF_DUPLICATE_NAME, 3, "also a tensor of an earlier part");
  emel_error err;
  ck_assert_int_eq(open_status(first, NULL, &err), EMEL_GGUF_DUPLICATE_NAME);
  ck_assert_uint_eq(err.tensor, 6); /* the model's tensor 5: the third part's second */
}
END_TEST

static gw *model_writer_n(uint64_t seed, uint32_t n) {
  static const uint32_t types[] = {EMEL_GGML_TYPE_Q4_0, EMEL_GGML_TYPE_F16};
  gw *w = gw_new();
  gw_kv_str(w, "general.architecture", "llama");
  gw_set_seed(w, seed);
  ck_assert_int_eq(gw_model_shape(w, n, 1 << 18, types, 2), 0);
  return w;
}

/* Guards against mixing parts of two models of the same architecture whose
 * part 2 holds as many tensors (25 and 24 tensors in 3 parts: 8, 8, 9 and
 * 8, 8, 8), so the counts add up: only split.tensors.count tells them apart. */
START_TEST(test_parts_of_two_different_models_are_not_mixed) {
  char a[512], b[512], first[600], a2[600], b2[600];
  snprintf(a, sizeof a, "%s", tmp_path("model-a"));
  snprintf(b, sizeof b, "%s", tmp_path("model-b"));
  gw *w = model_writer_n(1, 25);
  ck_assert_int_eq(gw_write_split(w, a, 3), 0);
  gw_free(w);
  w = model_writer_n(2, 24);
  ck_assert_int_eq(gw_write_split(w, b, 3), 0);
  gw_free(w);
  gw_split_path(first, sizeof first, a, 0, 3);
  gw_split_path(a2, sizeof a2, a, 1, 3);
  gw_split_path(b2, sizeof b2, b, 1, 3);
  emel_gguf_close(open_ok(first));
  ck_assert_int_eq(rename(b2, a2), 0);
  expect_split_error(first, EMEL_GGUF_SPLIT_INVALID, 2, "split.tensors.count differs from the first part's");
}
END_TEST

/* Guards the path helper against off-by-one part numbers, names that are not a
 * first part's, and buffers too small for the path. */
START_TEST(test_split_path_rebuilds_each_part_name) {
  char buf[128];
  uint32_t count = 0;
  ck_assert_int_eq(emel_gguf_split_path(buf, sizeof buf, "d/m-00001-of-00012.gguf", 12, &count, NULL), EMEL_OK);
  ck_assert_str_eq(buf, "d/m-00012-of-00012.gguf");
  ck_assert_uint_eq(count, 12);
  ck_assert_int_eq(emel_gguf_split_path(buf, sizeof buf, "d/m-00001-of-00012.gguf", 1, NULL, NULL), EMEL_OK);
  ck_assert_str_eq(buf, "d/m-00001-of-00012.gguf");
  ck_assert_int_eq(emel_gguf_split_path(buf, sizeof buf, "m-00001-of-00012.gguf", 13, NULL, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(emel_gguf_split_path(buf, sizeof buf, "m-00001-of-00012.gguf", 0, NULL, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(emel_gguf_split_path(buf, 21, "m-00001-of-00012.gguf", 2, NULL, NULL), EMEL_INVALID_PATH);
  ck_assert_int_eq(emel_gguf_split_path(buf, 22, "m-00001-of-00012.gguf", 2, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_gguf_split_path(buf, sizeof buf, "m-00001-of-123456.gguf", 123456, &count, NULL), EMEL_OK);
  ck_assert_str_eq(buf, "m-123456-of-123456.gguf");
  /* not a first part's name: one part, itself */
  static const char *const single[] = {"model.gguf", "m-00002-of-00003.gguf", "m-00001-of-0003.gguf",
                                       "m-00001-of-000003.gguf", "m-00001-of-00000.gguf", "-00001-of-00003.gguf.bin"};
  for (size_t i = 0; i < sizeof single / sizeof single[0]; i++) {
    ck_assert_int_eq(emel_gguf_split_path(buf, sizeof buf, single[i], 1, &count, NULL), EMEL_OK);
    ck_assert_str_eq(buf, single[i]);
    ck_assert_uint_eq(count, 1);
    ck_assert_int_eq(emel_gguf_split_path(buf, sizeof buf, single[i], 2, NULL, NULL), EMEL_INVALID_ARGUMENT);
  }
  ck_assert_int_eq(emel_gguf_split_path(NULL, 1, "m.gguf", 1, NULL, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(emel_gguf_split_path(buf, sizeof buf, NULL, 1, NULL, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(emel_gguf_split_path(buf, 6, "m.gguf", 1, NULL, NULL), EMEL_INVALID_PATH);
}
END_TEST

/* A single file's errors are charged to file 1; argument errors to none. */
START_TEST(test_a_single_file_error_names_file_1) {
  emel_error err;
  ck_assert_int_eq(open_status(tmp_path("absent.gguf"), NULL, &err), EMEL_OPEN_FAILED);
  ck_assert_uint_eq(err.file, 1);
  ck_assert_int_eq(open_status("", NULL, &err), EMEL_INVALID_PATH);
  ck_assert_uint_eq(err.file, 0);
  ck_assert_ptr_null(err.detail);
}
END_TEST

/* Guards: a configured cap (emel_gguf_config) was reported as GGUF_COUNT_TOO_LARGE
 * ("larger than the file can hold"), blaming a valid file; max_files gave the io
 * boundary's FILE_TABLE_FULL; max_tensors ("per model") was only applied per split;
 * an over-long path was OPEN_FAILED instead of the documented INVALID_PATH. */
START_TEST(test_configured_caps_have_their_own_status_and_corrupt_counts_keep_theirs) {
  const char *path = emit(model_writer(9), "caps.gguf"); /* 25 tensors, a few KVs */
  emel_gguf_config few_tensors = EMEL_GGUF_CONFIG_INIT(.max_tensors = 24),
                   few_kv = EMEL_GGUF_CONFIG_INIT(.max_kv = 1), enough = EMEL_GGUF_CONFIG_INIT(.max_tensors = 25);
  ck_assert_int_eq(open_status(path, &few_tensors, NULL), EMEL_GGUF_LIMIT_EXCEEDED);
  ck_assert_int_eq(open_status(path, &few_kv, NULL), EMEL_GGUF_LIMIT_EXCEEDED);
  ck_assert_int_eq(open_status(path, &enough, NULL), EMEL_OK);
  /* a count the file cannot hold stays a corrupt file, even when over the cap too */
  gw *lie = model_writer(2);
  gw_override_n_tensors(lie, 1u << 30);
  ck_assert_int_eq(open_status(emit(lie, "lie.gguf"), NULL, NULL), EMEL_GGUF_COUNT_TOO_LARGE);

  gw *w = model_writer(9);
  char prefix[512], first[600];
  snprintf(prefix, sizeof prefix, "%s", tmp_path("capsplit"));
  ck_assert_int_eq(gw_write_split(w, prefix, 3), 0);
  gw_free(w);
  gw_split_path(first, sizeof first, prefix, 0, 3);
  emel_gguf_config two_files = EMEL_GGUF_CONFIG_INIT(.max_files = 2),
                   per_model = EMEL_GGUF_CONFIG_INIT(.max_tensors = 20);
  ck_assert_int_eq(open_status(first, &two_files, NULL), EMEL_GGUF_LIMIT_EXCEEDED);
  ck_assert_int_eq(open_status(first, &per_model, NULL), EMEL_GGUF_LIMIT_EXCEEDED); /* 25 in all, each split fewer */

  static char longest[EMEL_IO_MAX_PATH + 2];
  memset(longest, 'a', EMEL_IO_MAX_PATH + 1);
  emel_error err;
  ck_assert_int_eq(open_status(longest, NULL, &err), EMEL_INVALID_PATH);
  ck_assert_int_eq(err.os_errno, 0);
  longest[EMEL_IO_MAX_PATH] = '\0'; /* at the limit: the OS decides (ENAMETOOLONG here) */
  ck_assert_int_eq(open_status(longest, NULL, NULL), EMEL_OPEN_FAILED);
}
END_TEST

/* --- every validation error ------------------------------------------------------ */

typedef struct bad_case {
  const char *name;
  void (*build)(gw *w);
  emel_status want;
} bad_case;

static const uint64_t one_dim[1] = {32};

static void tensor_at(gw *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t off) {
  uint64_t bytes = 0;
  if (emel_ggml_tensor_nbytes(type, n_dims, ne, &bytes, NULL) != EMEL_OK || bytes > 4096) bytes = 0;
  gw_tensor_raw(w, name, type, n_dims, ne, off, bytes);
}

static void b_magic(gw *w) { gw_override_magic(w, "GGUG"); }
static void b_version1(gw *w) { gw_set_version(w, 1); }
static void b_version4(gw *w) { gw_set_version(w, 4); }
static void b_big_endian(gw *w) { gw_big_endian_version(w); }
static void b_huge_kv(gw *w) { gw_override_n_kv(w, 1ull << 63); }
static void b_huge_tensors(gw *w) { gw_override_n_tensors(w, (1ull << 63) - 1); }
static void b_kv_count_lies(gw *w) { gw_override_n_kv(w, 40); }
static void b_key_len(gw *w) {
  static const uint8_t filler[16];
  gw_override_n_kv(w, 1);
  gw_put_u64(w, 1ull << 63);
  gw_put_bytes(w, filler, sizeof filler); /* room for one KV, so the count passes */
}
static void b_str_len(gw *w) {
  gw_kv_begin(w, "s", EMEL_GGUF_TYPE_STRING);
  gw_put_u64(w, UINT64_MAX);
}
static void b_array_len(gw *w) {
  gw_kv_begin(w, "a", EMEL_GGUF_TYPE_ARRAY);
  gw_put_array_header(w, EMEL_GGUF_TYPE_UINT32, 1ull << 62);
}
static void b_key_type(gw *w) { gw_kv_begin(w, "k", 13); gw_put_u32(w, 0); }
static void b_elem_type(gw *w) {
  gw_kv_begin(w, "k", EMEL_GGUF_TYPE_ARRAY);
  gw_put_array_header(w, 99, 0);
}
static void b_empty_key(gw *w) { gw_kv_u8(w, "", 1); }
static void b_dup_key(gw *w) { gw_kv_u8(w, "k", 1); gw_kv_u32(w, "k", 2); }
static void b_nesting(gw *w) {
  gw_kv_begin(w, "deep", EMEL_GGUF_TYPE_ARRAY);
  for (int i = 0; i < 9; i++) gw_put_array_header(w, EMEL_GGUF_TYPE_ARRAY, 1);
  gw_put_array_header(w, EMEL_GGUF_TYPE_UINT8, 0);
}
static void b_align3(gw *w) { gw_set_alignment(w, 3); }
static void b_align0(gw *w) { gw_set_alignment(w, 0); }
static void b_align_u64(gw *w) { gw_kv_u64(w, "general.alignment", 64); }
static void b_dims0(gw *w) { tensor_at(w, "t", EMEL_GGML_TYPE_F32, 0, one_dim, 0); }
static void b_dims5(gw *w) {
  const uint64_t ne[5] = {32, 1, 1, 1, 1};
  tensor_at(w, "t", EMEL_GGML_TYPE_F32, 5, ne, 0);
}
static void b_dim_negative(gw *w) {
  const uint64_t ne[2] = {32, UINT64_MAX};
  tensor_at(w, "t", EMEL_GGML_TYPE_F32, 2, ne, 0);
}
static void b_elements_overflow(gw *w) {
  const uint64_t ne[2] = {1ull << 32, 1ull << 31};
  tensor_at(w, "t", EMEL_GGML_TYPE_F32, 2, ne, 0);
}
static void b_bytes_overflow(gw *w) {
  const uint64_t ne[1] = {1ull << 61};
  tensor_at(w, "t", EMEL_GGML_TYPE_F32, 1, ne, 0);
}
static void b_removed_type(gw *w) { tensor_at(w, "t", 4, 1, one_dim, 0); }
static void b_unknown_type(gw *w) { tensor_at(w, "t", 1000, 1, one_dim, 0); }
static void b_block(gw *w) {
  const uint64_t ne[1] = {33};
  tensor_at(w, "t", EMEL_GGML_TYPE_Q4_0, 1, ne, 0);
}
static void b_misaligned(gw *w) { tensor_at(w, "t", EMEL_GGML_TYPE_F32, 1, one_dim, 8); }
static void b_beyond_eof(gw *w) {
  tensor_at(w, "t", EMEL_GGML_TYPE_F32, 1, one_dim, 1 << 20);
  gw_override_data_size(w, 128);
}
static void b_offset_wraps(gw *w) { tensor_at(w, "t", EMEL_GGML_TYPE_F32, 1, one_dim, UINT64_MAX - 31); }
static void b_overlap(gw *w) {
  tensor_at(w, "a", EMEL_GGML_TYPE_F32, 1, one_dim, 0);
  tensor_at(w, "b", EMEL_GGML_TYPE_F32, 1, one_dim, 96);
  tensor_at(w, "c", EMEL_GGML_TYPE_F32, 1, one_dim, 64); /* 64..192 overlaps b */
}
/* Kills parse.c's overlap check `begin < end` mutated to `begin + 1 < end`:
 * a 33-byte I8 tensor at 0 and one at 32 share exactly one byte. */
static const uint64_t i8_33[1] = {33};
static void b_overlap_one_byte(gw *w) {
  tensor_at(w, "a", EMEL_GGML_TYPE_I8, 1, i8_33, 0);
  tensor_at(w, "b", EMEL_GGML_TYPE_I8, 1, i8_33, 32);
}
/* ggml refuses a tensor whose ne0 reaches INT64_MAX / ne1 (`INT64_MAX/ne[1]
 * <= ne[0]`), though its elements would still fit: kills ggml_types.c's
 * `<=` mutated to `<`. I8 (one byte per element) so the byte-size check,
 * which comes after, cannot refuse it instead. */
static void b_elements_at_ggml_limit(gw *w) {
  const uint64_t ne[2] = {(uint64_t)INT64_MAX / 2, 2};
  tensor_at(w, "t", EMEL_GGML_TYPE_I8, 2, ne, 0);
}
static void b_elements_past_ggml_limit(gw *w) {
  const uint64_t ne[2] = {(uint64_t)INT64_MAX / 2 + 1, 2};
  tensor_at(w, "t", EMEL_GGML_TYPE_I8, 2, ne, 0);
}
/* One below the limit passes every size check: what refuses it is that its
 * 2^63 - 4 bytes are not in the file. */
static void b_elements_below_ggml_limit(gw *w) {
  const uint64_t ne[2] = {(uint64_t)INT64_MAX / 2 - 1, 2};
  tensor_at(w, "t", EMEL_GGML_TYPE_I8, 2, ne, 0);
}
static void b_dup_name(gw *w) {
  tensor_at(w, "same", EMEL_GGML_TYPE_F32, 1, one_dim, 0);
  tensor_at(w, "same", EMEL_GGML_TYPE_F32, 1, one_dim, 128);
}
static void b_no_data(gw *w) {
  tensor_at(w, "t", EMEL_GGML_TYPE_F32, 1, one_dim, 0);
  gw_override_data_size(w, 0);
  gw_truncate_at(w, 60); /* infos end at 57, data would start at 64 */
}

static const bad_case bad_cases[] = {
  {"bad magic", b_magic, EMEL_GGUF_BAD_MAGIC},
  {"version 1", b_version1, EMEL_GGUF_BAD_VERSION},
  {"version 4", b_version4, EMEL_GGUF_BAD_VERSION},
  {"big-endian version", b_big_endian, EMEL_GGUF_BIG_ENDIAN},
  {"2^63 kvs", b_huge_kv, EMEL_GGUF_COUNT_TOO_LARGE},
  {"2^63-1 tensors", b_huge_tensors, EMEL_GGUF_COUNT_TOO_LARGE},
  {"kv count larger than the file", b_kv_count_lies, EMEL_GGUF_COUNT_TOO_LARGE},
  {"key length 2^63", b_key_len, EMEL_GGUF_STRING_TOO_LONG},
  {"string length 2^64-1", b_str_len, EMEL_GGUF_STRING_TOO_LONG},
  {"array length 2^62", b_array_len, EMEL_GGUF_ARRAY_TOO_LONG},
  {"value type 13", b_key_type, EMEL_GGUF_BAD_KEY_TYPE},
  {"array element type 99", b_elem_type, EMEL_GGUF_BAD_KEY_TYPE},
  {"empty key", b_empty_key, EMEL_GGUF_EMPTY_KEY},
  {"duplicate key", b_dup_key, EMEL_GGUF_DUPLICATE_KEY},
  {"arrays nested 10 deep", b_nesting, EMEL_GGUF_NESTING_TOO_DEEP},
  {"alignment 3", b_align3, EMEL_GGUF_BAD_ALIGNMENT},
  {"alignment 0", b_align0, EMEL_GGUF_BAD_ALIGNMENT},
  {"alignment as u64", b_align_u64, EMEL_GGUF_BAD_ALIGNMENT},
  {"0 dims", b_dims0, EMEL_GGUF_BAD_DIMS},
  {"5 dims", b_dims5, EMEL_GGUF_BAD_DIMS},
  {"negative dim", b_dim_negative, EMEL_GGUF_BAD_DIMS},
  {"element count overflow", b_elements_overflow, EMEL_GGUF_SIZE_OVERFLOW},
  {"byte size overflow", b_bytes_overflow, EMEL_GGUF_SIZE_OVERFLOW},
  {"removed type 4", b_removed_type, EMEL_GGUF_BAD_TENSOR_TYPE},
  {"type 1000", b_unknown_type, EMEL_GGUF_BAD_TENSOR_TYPE},
  {"row not a multiple of the block", b_block, EMEL_GGUF_BAD_BLOCK_SIZE},
  {"misaligned offset", b_misaligned, EMEL_GGUF_MISALIGNED_OFFSET},
  {"offset past the end", b_beyond_eof, EMEL_GGUF_SPAN_OUTSIDE_FILE},
  {"offset wrapping around", b_offset_wraps, EMEL_GGUF_SPAN_OUTSIDE_FILE},
  {"overlapping spans", b_overlap, EMEL_GGUF_OVERLAPPING_SPANS},
  {"spans overlapping by one byte", b_overlap_one_byte, EMEL_GGUF_OVERLAPPING_SPANS},
  {"element count at ggml's limit", b_elements_at_ggml_limit, EMEL_GGUF_SIZE_OVERFLOW},
  {"element count past ggml's limit", b_elements_past_ggml_limit, EMEL_GGUF_SIZE_OVERFLOW},
  {"element count below ggml's limit, bytes not in the file", b_elements_below_ggml_limit,
   EMEL_GGUF_SPAN_OUTSIDE_FILE},
  {"duplicate tensor name", b_dup_name, EMEL_GGUF_DUPLICATE_NAME},
  {"tensors but no data section", b_no_data, EMEL_GGUF_TRUNCATED},
};

/* Spans that touch without sharing a byte are valid; sharing one is not
 * (the bad case "spans overlapping by one byte"). Guards the same `begin <
 * end` of parse.c's overlap check from the other side: `begin <= end` would
 * refuse tensors packed back to back. */
START_TEST(test_tensors_that_touch_without_sharing_a_byte_are_valid) {
  gw *w = gw_new();
  tensor_at(w, "a", EMEL_GGML_TYPE_I8, 1, one_dim, 0);
  tensor_at(w, "b", EMEL_GGML_TYPE_I8, 1, one_dim, 32); /* a is 0..32, b 32..64 */
  tensor_at(w, "c", EMEL_GGML_TYPE_I8, 1, one_dim, 64);
  emel_gguf *g = open_ok(emit(w, "touching.gguf"));
  ck_assert_uint_eq(emel_gguf_tensor_count(g), 3);
  const uint64_t base = emel_gguf_data_offset(g, 0);
  for (size_t i = 0; i < 3; i++) {
    ck_assert_uint_eq(emel_gguf_tensor_at(g, i)->offset, base + 32 * i);
    ck_assert_uint_eq(emel_gguf_tensor_at(g, i)->size, 32);
  }
  emel_gguf_close(g);
}
END_TEST

/* ggml's element-count rule (gguf.cpp: refused when INT64_MAX / ne[j] <=
 * ne[0] * ... * ne[j-1]) on both sides of its limit, for each dimension that
 * can reach it. Kills ggml_types.c's `<=` mutated to `<`, which accepts the
 * tensor exactly at the limit. I8: one byte per element, so the byte-size
 * check cannot refuse in its place. */
START_TEST(test_element_counts_at_ggmls_limit_are_refused_and_just_below_it_are_sized) {
  /* The limit sits at dimension `dim`: the dims before it multiply to L (held
   * by dimension `big`, the others 1) and dimension `dim` is `outer`. */
  static const struct { uint32_t big, dim; uint64_t outer; } at[] = {
    {0, 1, 2}, {0, 1, 3}, {0, 1, 1000}, {0, 1, (1ull << 31) + 11}, {1, 2, 2}, {0, 2, 7}, {2, 3, 3}, {0, 3, 5},
  };
  for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
    const uint64_t limit = (uint64_t)INT64_MAX / at[i].outer;
    for (int side = -1; side <= 1; side++) {
      uint64_t ne[4] = {1, 1, 1, 1}, bytes = 0;
      ne[at[i].big] = limit + (uint64_t)(int64_t)side;
      ne[at[i].dim] = at[i].outer;
      emel_status st = emel_ggml_tensor_nbytes(EMEL_GGML_TYPE_I8, at[i].dim + 1, ne, &bytes, NULL);
      const emel_status want = side < 0 ? EMEL_OK : EMEL_GGUF_SIZE_OVERFLOW;
      ck_assert_msg(st == want, "case %zu side %d: got %s, want %s", i, side, emel_status_name(st),
                    emel_status_name(want));
      if (side < 0) ck_assert_uint_eq(bytes, (limit - 1) * at[i].outer);
    }
  }
}
END_TEST

START_TEST(test_each_malformed_file_fails_with_its_own_status) {
  const bad_case *c = &bad_cases[_i];
  gw *w = gw_new();
  c->build(w);
  counter cnt;
  emel_platform_ops ops = counting_ops(&cnt);
  emel_gguf_config cfg = EMEL_GGUF_CONFIG_INIT(.platform = &ops);
  const char *path = emit(w, "bad.gguf");
  emel_status st = open_status(path, &cfg, NULL);
  ck_assert_msg(st == c->want, "%s: got %s, want %s", c->name, emel_status_name(st), emel_status_name(c->want));
  assert_balanced(&cnt);
  ck_assert_uint_lt(cnt.peak, 2u << 20); /* tiny files: never more than the reader's step and tables */
}
END_TEST

/* Guards against an index error that leaves the caller to guess which of
 * thousands of tensor infos is bad: emel_error.tensor names it (k + 1),
 * and 0 for an error of no one tensor. */
static void one_good_then(gw *w, void (*bad)(gw *)) {
  tensor_at(w, "good.0", EMEL_GGML_TYPE_F32, 1, one_dim, 0);
  tensor_at(w, "good.1", EMEL_GGML_TYPE_F32, 1, one_dim, 128);
  bad(w);
}
static void bad_misaligned(gw *w) { tensor_at(w, "bad", EMEL_GGML_TYPE_F32, 1, one_dim, 264); }
static void bad_type(gw *w) { tensor_at(w, "bad", 4, 1, one_dim, 256); }
static void bad_outside(gw *w) {
  tensor_at(w, "bad", EMEL_GGML_TYPE_F32, 1, one_dim, 1 << 20);
  gw_override_data_size(w, 384);
}
static void bad_overlap(gw *w) { tensor_at(w, "bad", EMEL_GGML_TYPE_F32, 1, one_dim, 64); }
static void bad_dup(gw *w) { tensor_at(w, "good.0", EMEL_GGML_TYPE_F32, 1, one_dim, 256); }

START_TEST(test_an_error_of_one_tensor_info_names_that_tensor) {
  static const struct {
    void (*bad)(gw *);
    emel_status want;
  } cases[] = {
      {bad_misaligned, EMEL_GGUF_MISALIGNED_OFFSET}, {bad_type, EMEL_GGUF_BAD_TENSOR_TYPE},
      {bad_outside, EMEL_GGUF_SPAN_OUTSIDE_FILE},    {bad_overlap, EMEL_GGUF_OVERLAPPING_SPANS},
      {bad_dup, EMEL_GGUF_DUPLICATE_NAME},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    gw *w = gw_new();
    one_good_then(w, cases[i].bad);
    emel_error err;
    ck_assert_int_eq(open_status(emit(w, "bad_tensor.gguf"), NULL, &err), cases[i].want);
    ck_assert_msg(err.tensor == 3, "case %zu (%s): tensor %u, want 3", i, emel_status_name(cases[i].want),
                  err.tensor);
    ck_assert_uint_eq(err.file, 1);
  }
  gw *w = gw_new();
  gw_override_magic(w, "GGUG");
  emel_error err = {.tensor = 9};
  ck_assert_int_eq(open_status(emit(w, "bad_magic.gguf"), NULL, &err), EMEL_GGUF_BAD_MAGIC);
  ck_assert_uint_eq(err.tensor, 0);
}
END_TEST

START_TEST(test_truncation_at_every_header_byte_gives_a_named_error) {
  gw *w = all_types_writer();
  add_small_tensors(w);
  const char *full = emit(w, "full.gguf");
  emel_gguf *g = open_ok(full);
  uint64_t data_offset = emel_gguf_data_offset(g, 0), size = emel_gguf_file_size(g, 0);
  emel_gguf_close(g);
  for (uint64_t cut = 0; cut < size; cut += cut < data_offset ? 1 : 97) {
    gw *t = all_types_writer();
    add_small_tensors(t);
    gw_truncate_at(t, cut);
    emel_status st = open_status(emit(t, "cut.gguf"), NULL, NULL);
    ck_assert_msg(st >= EMEL_GGUF_BAD_MAGIC && st <= EMEL_GGUF_EMPTY_KEY, "cut at %llu: %s",
                  (unsigned long long)cut, emel_status_name(st));
    if (cut >= data_offset) ck_assert_int_eq(st, EMEL_GGUF_SPAN_OUTSIDE_FILE);
  }
}
END_TEST

START_TEST(test_counts_near_2_pow_63_are_refused_before_any_large_allocation) {
  void (*builds[])(gw *) = {b_huge_kv, b_huge_tensors, b_key_len, b_str_len, b_array_len};
  for (size_t i = 0; i < sizeof builds / sizeof builds[0]; i++) {
    gw *w = gw_new();
    builds[i](w);
    const char *path = emit(w, "huge.gguf");
    counter cnt;
    emel_platform_ops ops = counting_ops(&cnt);
    emel_gguf_config cfg = EMEL_GGUF_CONFIG_INIT(.platform = &ops);
    ck_assert_int_ne(open_status(path, &cfg, NULL), EMEL_OK);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    ck_assert_uint_lt(cnt.peak, (size_t)size * 4 + (1u << 20));
    assert_balanced(&cnt);
  }
}
END_TEST

START_TEST(test_a_vocab_sized_string_array_stays_within_a_small_multiple_of_the_file) {
  enum { N = 40000 };
  static char storage[N][12];
  static const char *strs[N];
  for (int i = 0; i < N; i++) snprintf(storage[i], sizeof storage[i], "tok%d", i), strs[i] = storage[i];
  gw *w = gw_new();
  gw_kv_array(w, "tokenizer.ggml.tokens", EMEL_GGUF_TYPE_STRING, N, strs);
  const char *path = emit(w, "vocab.gguf");
  counter cnt;
  emel_platform_ops ops = counting_ops(&cnt);
  emel_gguf_config cfg = EMEL_GGUF_CONFIG_INIT(.platform = &ops);
  emel_gguf *g = NULL;
  ck_assert_int_eq(emel_gguf_open(&g, path, &cfg, NULL), EMEL_OK);
  emel_gguf_array a;
  emel_gguf_value v;
  ck_assert_int_eq(emel_gguf_get_array(g, "tokenizer.ggml.tokens", &a, NULL), EMEL_OK);
  ck_assert_int_eq(emel_gguf_array_get(&a, 31337, &v, NULL), EMEL_OK);
  ck_assert(v.v.str.len == 8 && memcmp(v.v.str.ptr, "tok31337", 8) == 0);
  ck_assert_uint_lt(cnt.peak, emel_gguf_file_size(g, 0) * 4 + (1u << 20));
  emel_gguf_close(g);
  assert_balanced(&cnt);
}
END_TEST

/* --- injected failures ------------------------------------------------------------- */

static const char *small_model(void) {
  gw *w = all_types_writer();
  add_small_tensors(w);
  return emit(w, "inject.gguf");
}

static emel_status open_with(counter *cnt, const char *path, emel_error *err, void (*setup)(counter *)) {
  emel_platform_ops ops = counting_ops(cnt);
  if (setup) setup(cnt);
  emel_gguf_config cfg = EMEL_GGUF_CONFIG_INIT(.platform = &ops);
  return open_status(path, &cfg, err);
}

static void s_open(counter *c) { c->open_errno = EACCES; }
static void s_size(counter *c) { c->size_errno = EIO; }
static void s_pread(counter *c) { c->pread_errno = EIO; }
static void s_eintr(counter *c) { c->eintr_left = 3; }
static void s_short(counter *c) { c->max_pread = 7; }

START_TEST(test_injected_os_failures_return_their_status_with_errno_and_free_everything) {
  const char *path = small_model();
  struct { void (*setup)(counter *); emel_status want; int err; } cases[] = {
    {s_open, EMEL_OPEN_FAILED, EACCES}, {s_size, EMEL_STAT_FAILED, EIO}, {s_pread, EMEL_READ_FAILED, EIO},
    {s_eintr, EMEL_OK, 0}, {s_short, EMEL_OK, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    counter cnt;
    emel_error err;
    ck_assert_int_eq(open_with(&cnt, path, &err, cases[i].setup), cases[i].want);
    ck_assert_int_eq(err.code, cases[i].want);
    ck_assert_int_eq(err.os_errno, cases[i].err);
    assert_balanced(&cnt);
  }
}
END_TEST

static long fail_at;
static void s_fail_alloc(counter *c) { c->fail_alloc_at = fail_at; }

START_TEST(test_every_failed_allocation_returns_out_of_memory_and_frees_everything) {
  const char *path = small_model();
  counter cnt;
  ck_assert_int_eq(open_with(&cnt, path, NULL, NULL), EMEL_OK);
  long total = cnt.calls;
  ck_assert_int_gt(total, 3);
  for (fail_at = 1; fail_at <= total; fail_at++) {
    emel_error err;
    ck_assert_int_eq(open_with(&cnt, path, &err, s_fail_alloc), EMEL_OUT_OF_MEMORY);
    ck_assert_int_eq(err.code, EMEL_OUT_OF_MEMORY);
    assert_balanced(&cnt);
  }
}
END_TEST

/* --- the real fixtures ------------------------------------------------------------- */

static const char *fixtures_dir(void) {
  const char *env = getenv("EMEL_GGUF_FIXTURES");
  return env && *env ? env : EMEL_GGUF_FIXTURES_DIR;
}

START_TEST(test_the_llama_cpp_fixtures_index_as_their_readme_says) {
  static const struct {
    const char *file, *arch, *tokens_head;
    uint64_t size, n_kv, data_offset, n_tokens;
  } fx[] = {
    {"ggml-vocab-llama-spm.gguf", "llama", "<unk>", 723869, 22, 723872, 32000},
    {"ggml-vocab-bert-bge.gguf", "bert", "[PAD]", 627549, 20, 627552, 30522},
    {"ggml-vocab-gpt-2.gguf", "gpt2", "!", 1766807, 16, 1766816, 50257},
  };
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", fixtures_dir(), fx[0].file);
  if (access(path, R_OK) != 0) {
    fprintf(stderr, "fixtures absent at %s: skipping\n", fixtures_dir());
    return;
  }
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", fixtures_dir(), fx[i].file);
    emel_gguf *g = open_ok(path);
    ck_assert_uint_eq(emel_gguf_file_size(g, 0), fx[i].size);
    ck_assert_uint_eq(emel_gguf_version(g), 3);
    ck_assert_uint_eq(emel_gguf_kv_count(g), fx[i].n_kv);
    ck_assert_uint_eq(emel_gguf_tensor_count(g), 0);
    ck_assert_uint_eq(emel_gguf_alignment(g), 32);
    ck_assert_uint_eq(emel_gguf_data_offset(g, 0), fx[i].data_offset);
    ck_assert_str_eq(emel_gguf_architecture(g), fx[i].arch);
    emel_gguf_array a;
    emel_gguf_value v;
    ck_assert_int_eq(emel_gguf_get_array(g, "tokenizer.ggml.tokens", &a, NULL), EMEL_OK);
    ck_assert_uint_eq(a.count, fx[i].n_tokens);
    ck_assert_int_eq(emel_gguf_array_get(&a, 0, &v, NULL), EMEL_OK);
    ck_assert(v.v.str.len == strlen(fx[i].tokens_head) && !memcmp(v.v.str.ptr, fx[i].tokens_head, v.v.str.len));
    emel_gguf_close(g);
  }
}
END_TEST

Suite *gguf_suite(void) {
  Suite *s = suite_create("gguf");
  TCase *tc = tcase_create("index");
  tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
  tcase_set_timeout(tc, 0); /* none: CTest's TIMEOUT bounds the suite */
  tcase_add_test(tc, test_every_value_type_and_nested_arrays_round_trip);
  tcase_add_test(tc, test_lookups_find_keys_and_tensors_by_name_and_report_type_mismatches);
  tcase_add_test(tc, test_versions_2_and_3_are_both_read);
  tcase_add_test(tc, test_tensors_sit_at_offsets_aligned_to_32_64_and_4096);
  tcase_add_test(tc, test_mixed_quantized_tensors_have_the_byte_sizes_ggml_gives);
  tcase_add_test(tc, test_tensors_that_touch_without_sharing_a_byte_are_valid);
  tcase_add_test(tc, test_an_error_of_one_tensor_info_names_that_tensor);
  tcase_add_test(tc, test_element_counts_at_ggmls_limit_are_refused_and_just_below_it_are_sized);
  tcase_add_test(tc, test_a_file_with_no_tensors_ends_before_its_data_offset_and_is_valid);
  tcase_add_test(tc, test_a_split_model_of_three_files_indexes_every_file);
  tcase_add_test(tc, test_a_split_first_file_with_a_foreign_name_is_invalid);
  tcase_add_test(tc, test_a_missing_middle_part_is_an_open_failure_of_that_part);
  tcase_add_test(tc, test_bad_split_numbering_names_the_part_and_split_no);
  tcase_add_test(tc, test_a_split_count_that_disagrees_names_the_part);
  tcase_add_test(tc, test_a_part_whose_split_tensors_count_differs_is_refused);
  tcase_add_test(tc, test_part_tensor_counts_that_do_not_add_up_are_named);
  tcase_add_test(tc, test_parts_of_two_different_models_are_not_mixed);
  tcase_add_test(tc, test_split_path_rebuilds_each_part_name);
  tcase_add_test(tc, test_a_single_file_error_names_file_1);
  tcase_add_test(tc, test_configured_caps_have_their_own_status_and_corrupt_counts_keep_theirs);
  tcase_add_loop_test(tc, test_each_malformed_file_fails_with_its_own_status, 0,
                      (int)(sizeof bad_cases / sizeof bad_cases[0]));
  tcase_add_test(tc, test_truncation_at_every_header_byte_gives_a_named_error);
  tcase_add_test(tc, test_counts_near_2_pow_63_are_refused_before_any_large_allocation);
  tcase_add_test(tc, test_a_vocab_sized_string_array_stays_within_a_small_multiple_of_the_file);
  tcase_add_test(tc, test_injected_os_failures_return_their_status_with_errno_and_free_everything);
  tcase_add_test(tc, test_every_failed_allocation_returns_out_of_memory_and_frees_everything);
  tcase_add_test(tc, test_the_llama_cpp_fixtures_index_as_their_readme_says);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(gguf_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

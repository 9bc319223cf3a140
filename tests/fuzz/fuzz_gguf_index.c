/* Fuzz target: arbitrary bytes as a GGUF file -> emel_gguf_open.
 *
 * The bytes are served by an in-memory platform (no disk), and after each
 * input the harness checks what the index promises: either EMEL_OK and a
 * table whose every tensor is a valid, aligned, in-file, non-overlapping span
 * with a unique name, or a named error; in both cases the file closed, every
 * allocation freed, and peak memory linear in the input size. On success it
 * also walks the metadata through every accessor, so ASan sees each byte the
 * index hands out. A violated invariant aborts, which libFuzzer reports. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emel/gguf.h"
#include "memory_file.h"

#define PATH "fuzz.gguf"

/* Worst case of the index's tables per header byte: a minimal key/value is 14
 * bytes (8 length + 1 key byte + 4 type + 1 value) and costs a 64-byte table
 * entry, a 4-byte hash slot at load <= 1/4 .. 1/2 (16 bytes at worst), and 2
 * pool bytes: 82/14 < 6; plus the header buffer (1x, 2x while it grows).
 * Tensor infos (32 bytes minimum, ~113 bytes of tables) stay below that. */
enum { PEAK_PER_BYTE = 8, PEAK_FIXED = 1 << 20 };

/* Arrays are walked only at their ends: nested arrays cost O(i) per element. */
enum { WALK_ELEMS = 32, WALK_DEPTH = 3 };

static volatile uint64_t sink; /* keeps byte reads from being optimized away */

#define REQUIRE(cond)                                                                    \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      fprintf(stderr, "fuzz_gguf_index: %s:%d: invariant failed: %s\n", __FILE__,        \
              __LINE__, #cond);                                                          \
      abort();                                                                           \
    }                                                                                    \
  } while (0)

static void touch(const void *p, uint64_t n) {
  const uint8_t *b = p;
  uint64_t h = 0;
  for (uint64_t i = 0; i < n; i++) h = h * 31 + b[i];
  sink += h;
}

static void check_value(const emel_gguf_value *v, int depth);

static void check_element(const emel_gguf_array *a, uint64_t i, int depth) {
  emel_gguf_value e;
  REQUIRE(emel_gguf_array_get(a, i, &e, NULL) == EMEL_OK);
  REQUIRE(e.type == a->elem_type);
  check_value(&e, depth + 1);
}

static void check_array(const emel_gguf_array *a, int depth) {
  emel_gguf_value e;
  REQUIRE(a->elem_type < EMEL_GGUF_TYPE_COUNT);
  REQUIRE(emel_gguf_array_get(a, a->count, &e, NULL) == EMEL_INVALID_ARGUMENT);
  if (depth >= WALK_DEPTH) return;
  for (uint64_t i = 0; i < a->count && i < WALK_ELEMS; i++) check_element(a, i, depth);
  for (uint64_t i = a->count > 2 * WALK_ELEMS ? a->count - WALK_ELEMS : WALK_ELEMS; i < a->count; i++)
    check_element(a, i, depth);
}

static void check_value(const emel_gguf_value *v, int depth) {
  REQUIRE(v->type < EMEL_GGUF_TYPE_COUNT);
  if (v->type == EMEL_GGUF_TYPE_STRING) {
    REQUIRE(v->v.str.ptr != NULL || v->v.str.len == 0);
    touch(v->v.str.ptr, v->v.str.len);
  } else if (v->type == EMEL_GGUF_TYPE_ARRAY) {
    check_array(&v->v.arr, depth);
  }
}

static int is_unsigned(uint32_t t) {
  return t == EMEL_GGUF_TYPE_UINT8 || t == EMEL_GGUF_TYPE_UINT16 || t == EMEL_GGUF_TYPE_UINT32 ||
         t == EMEL_GGUF_TYPE_UINT64;
}

static int is_signed(uint32_t t) {
  return t == EMEL_GGUF_TYPE_INT8 || t == EMEL_GGUF_TYPE_INT16 || t == EMEL_GGUF_TYPE_INT32 ||
         t == EMEL_GGUF_TYPE_INT64;
}

/* The typed getters agree with the value's type. Keys with an embedded NUL
 * are reachable by index only, so lookups by their C-string prefix may find
 * another entry or none; then only the status's name is checked. */
static void check_getters(const emel_gguf *g, const char *key, uint32_t type) {
  uint64_t u;
  int64_t i;
  double d;
  bool b;
  const char *s;
  size_t len;
  emel_gguf_array arr;
  size_t found;
  if (emel_gguf_kv_find(g, key, &found, NULL) != EMEL_OK || emel_gguf_kv_type(g, found) != type) return;
  REQUIRE((emel_gguf_get_uint(g, key, &u, NULL) == EMEL_OK) <= (is_unsigned(type) || is_signed(type)));
  REQUIRE((emel_gguf_get_int(g, key, &i, NULL) == EMEL_OK) <= (is_unsigned(type) || is_signed(type)));
  if (is_unsigned(type) || is_signed(type))
    REQUIRE(emel_gguf_get_uint(g, key, &u, NULL) == EMEL_OK || emel_gguf_get_int(g, key, &i, NULL) == EMEL_OK);
  REQUIRE((emel_gguf_get_float(g, key, &d, NULL) == EMEL_OK) ==
          (type == EMEL_GGUF_TYPE_FLOAT32 || type == EMEL_GGUF_TYPE_FLOAT64));
  REQUIRE((emel_gguf_get_bool(g, key, &b, NULL) == EMEL_OK) == (type == EMEL_GGUF_TYPE_BOOL));
  REQUIRE((emel_gguf_get_string(g, key, &s, &len, NULL) == EMEL_OK) == (type == EMEL_GGUF_TYPE_STRING));
  if (type == EMEL_GGUF_TYPE_STRING) REQUIRE(s[len] == '\0'); /* scalar strings are NUL-terminated */
  REQUIRE((emel_gguf_get_array(g, key, &arr, NULL) == EMEL_OK) == (type == EMEL_GGUF_TYPE_ARRAY));
}

static void check_metadata(const emel_gguf *g) {
  size_t n = emel_gguf_kv_count(g), found;
  emel_gguf_value v;
  for (size_t k = 0; k < n; k++) {
    const char *key = emel_gguf_kv_key(g, k);
    REQUIRE(key != NULL); /* may start with NUL: the index checks only the length */
    uint32_t type = emel_gguf_kv_type(g, k);
    REQUIRE(emel_gguf_kv_value(g, k, &v, NULL) == EMEL_OK && v.type == type);
    check_value(&v, 0);
    emel_status st = emel_gguf_kv_find(g, key, &found, NULL);
    REQUIRE(st == EMEL_OK || st == EMEL_GGUF_KEY_NOT_FOUND);
    if (st == EMEL_OK) REQUIRE(found < n && strcmp(emel_gguf_kv_key(g, found), key) == 0);
    check_getters(g, key, type);
  }
  REQUIRE(emel_gguf_kv_key(g, n) == NULL);
  REQUIRE(emel_gguf_kv_type(g, n) == EMEL_GGUF_TYPE_COUNT);
  REQUIRE(emel_gguf_kv_value(g, n, &v, NULL) == EMEL_INVALID_ARGUMENT);
  const char *arch = emel_gguf_architecture(g), *name = emel_gguf_name(g);
  if (arch) touch(arch, strlen(arch));
  if (name) touch(name, strlen(name));
}

typedef struct span {
  uint64_t begin, end;
} span;

static int span_cmp(const void *a, const void *b) {
  const span *x = a, *y = b;
  return (x->begin > y->begin) - (x->begin < y->begin);
}

static int name_cmp(const void *a, const void *b) {
  const emel_gguf_tensor *x = *(const emel_gguf_tensor *const *)a, *y = *(const emel_gguf_tensor *const *)b;
  if (x->name_len != y->name_len) return x->name_len < y->name_len ? -1 : 1;
  return memcmp(x->name, y->name, x->name_len);
}

static void check_tensor(const emel_gguf *g, size_t i, uint64_t file_size) {
  const emel_gguf_tensor *t = emel_gguf_tensor_at(g, i);
  uint64_t bytes, align = emel_gguf_alignment(g), data = emel_gguf_data_offset(g, 0);
  REQUIRE(t != NULL && t->name != NULL && t->name[t->name_len] == '\0');
  touch(t->name, t->name_len);
  REQUIRE(t->file_index == 0);
  REQUIRE(t->n_dims >= 1 && t->n_dims <= 4);
  for (uint32_t d = t->n_dims; d < 4; d++) REQUIRE(t->ne[d] == 1);
  REQUIRE(emel_ggml_type_name(t->type) != NULL);
  REQUIRE(emel_ggml_tensor_nbytes(t->type, t->n_dims, t->ne, &bytes, NULL) == EMEL_OK && bytes == t->size);
  REQUIRE(t->offset >= data && t->offset % align == 0);
  REQUIRE(t->size <= file_size && t->offset <= file_size - t->size);
  size_t found;
  if (strlen(t->name) == t->name_len) REQUIRE(emel_gguf_tensor_find(g, t->name, &found, NULL) == EMEL_OK && found == i);
}

/* Names unique and non-empty spans disjoint: both by sorting. */
static void check_tensors(const emel_gguf *g, uint64_t file_size) {
  size_t n = emel_gguf_tensor_count(g);
  REQUIRE(emel_gguf_tensor_at(g, n) == NULL);
  if (n == 0) return;
  for (size_t i = 0; i < n; i++) check_tensor(g, i, file_size);
  span *spans = malloc(n * sizeof *spans);
  const emel_gguf_tensor **order = malloc(n * sizeof *order);
  size_t n_spans = 0;
  REQUIRE(spans && order);
  for (size_t i = 0; i < n; i++) {
    const emel_gguf_tensor *t = emel_gguf_tensor_at(g, i);
    order[i] = t;
    if (t->size) spans[n_spans++] = (span){t->offset, t->offset + t->size};
  }
  qsort(spans, n_spans, sizeof *spans, span_cmp);
  for (size_t i = 1; i < n_spans; i++) REQUIRE(spans[i].begin >= spans[i - 1].end);
  qsort(order, n, sizeof *order, name_cmp);
  for (size_t i = 1; i < n; i++) REQUIRE(name_cmp(&order[i - 1], &order[i]) != 0);
  free(spans);
  free(order);
}

static void check_index(const emel_gguf *g, uint64_t size) {
  uint32_t version = emel_gguf_version(g);
  uint64_t align = emel_gguf_alignment(g), data = emel_gguf_data_offset(g, 0);
  REQUIRE(version == 2 || version == 3);
  REQUIRE(align != 0 && (align & (align - 1)) == 0);
  REQUIRE(emel_gguf_file_count(g) == 1 && emel_gguf_file_size(g, 0) == size);
  REQUIRE(strcmp(emel_gguf_file_path(g, 0), PATH) == 0 && emel_gguf_file_path(g, 1) == NULL);
  REQUIRE(data % align == 0);
  REQUIRE(emel_gguf_tensor_count(g) == 0 || data <= size);
  check_metadata(g);
  check_tensors(g, size);
}

typedef struct run {
  emel_status status;
  emel_error err;
  uint64_t preads;
  int64_t peak;
} run;

/* One open of the input, with the given fault armed. Nothing may outlive it. */
static run open_once(const uint8_t *data, size_t size, size_t alloc_limit, uint64_t pread_fail_at, int pread_errno) {
  memory_file mf;
  memory_file_init(&mf);
  REQUIRE(memory_file_add(&mf, PATH, data, size) == 0);
  mf.alloc_limit = alloc_limit;
  mf.pread_fail_at = pread_fail_at;
  mf.pread_errno = pread_errno;
  emel_gguf_config cfg = EMEL_GGUF_CONFIG_INIT(.platform = &mf.ops);
  emel_gguf *g = NULL;
  run r = {0};
  r.status = emel_gguf_open(&g, PATH, &cfg, &r.err);
  REQUIRE(r.err.code == r.status);
  if (r.status == EMEL_OK) {
    REQUIRE(g != NULL);
    check_index(g, size);
  } else {
    REQUIRE(g == NULL);
    REQUIRE(strcmp(emel_status_name(r.status), "UNKNOWN_STATUS") != 0);
  }
  REQUIRE(mf.open_fds == 0); /* the index never keeps a descriptor */
  emel_gguf_close(g);
  REQUIRE(memory_file_outstanding(&mf) == 0);
  r.preads = mf.preads;
  r.peak = mf.peak_alloc_bytes;
  return r;
}

/* The input as is, then its failure paths: memory running out halfway, the
 * last read failing (every read the index makes is needed), and the first
 * read interrupted (retried, so nothing changes). Each must release all. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  run plain = open_once(data, size, 0, 0, 0);
  REQUIRE((uint64_t)plain.peak <= (uint64_t)PEAK_PER_BYTE * size + PEAK_FIXED);
  if (plain.peak > 1) {
    run oom = open_once(data, size, (size_t)plain.peak / 2, 0, 0);
    REQUIRE(oom.status == EMEL_OUT_OF_MEMORY);
  }
  if (plain.preads > 0) {
    run eio = open_once(data, size, 0, plain.preads, EIO);
    REQUIRE(eio.status == EMEL_READ_FAILED && eio.err.os_errno == EIO);
    run eintr = open_once(data, size, 0, 1, EINTR);
    REQUIRE(eintr.status == plain.status);
  }
  return 0;
}

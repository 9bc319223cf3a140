/* Writes the seed corpus of fuzz_gguf_index (tests/fuzz/corpus/gguf_index),
 * or with --residency that of fuzz_residency (tests/fuzz/corpus/residency).
 *
 * Why seeds: libFuzzer reaches deep paths (tensor infos, nested arrays, span
 * checks) far sooner from valid files than from nothing, and corrupt variants
 * point it at each validation. The same program always writes the same bytes.
 *
 * Usage: fuzz_make_seeds OUT_DIR [FIXTURES_DIR]
 *        fuzz_make_seeds --residency OUT_DIR
 * With FIXTURES_DIR (llama.cpp's vocab files), the first 8 KiB of each
 * *.gguf there is added as well: real-world headers, cut inside the vocab. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emel/io.h"
#include "fault_platform.h"
#include "gguf_writer.h"
#include "residency_program.h"

static const char *out_dir;
static int failed;

static void emit(gw *w, const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", out_dir, name);
  if (gw_write(w, path) != 0) {
    fprintf(stderr, "cannot write %s\n", path);
    failed = 1;
  }
  gw_free(w);
}

static void tensor(gw *w, const char *name, uint32_t type, uint64_t ne0, uint64_t ne1) {
  uint64_t ne[2] = {ne0, ne1};
  if (gw_tensor(w, name, type, ne1 ? 2 : 1, ne) != 0) {
    fprintf(stderr, "bad seed tensor %s\n", name);
    failed = 1;
  }
}

/* Every scalar type, a string and numeric array, three tensor types. */
static gw *basic(uint32_t version) {
  static const uint32_t u32s[] = {1, 2, 3, 4};
  static const char *const strs[] = {"<s>", "</s>", "", "hello"};
  gw *w = gw_new();
  gw_set_version(w, version);
  gw_kv_str(w, "general.architecture", "llama");
  gw_kv_str(w, "general.name", "seed");
  gw_kv_u8(w, "t.u8", 200);
  gw_kv_i8(w, "t.i8", -5);
  gw_kv_u16(w, "t.u16", 60000);
  gw_kv_i16(w, "t.i16", -300);
  gw_kv_u32(w, "t.u32", 4000000000u);
  gw_kv_i32(w, "t.i32", -70000);
  gw_kv_f32(w, "t.f32", 1.5f);
  gw_kv_bool(w, "t.bool", 1);
  gw_kv_u64(w, "t.u64", 1ull << 40);
  gw_kv_i64(w, "t.i64", -(1ll << 40));
  gw_kv_f64(w, "t.f64", -2.25);
  gw_kv_array(w, "t.arr.u32", EMEL_GGUF_TYPE_UINT32, 4, u32s);
  gw_kv_array(w, "t.arr.str", EMEL_GGUF_TYPE_STRING, 4, strs);
  tensor(w, "token_embd.weight", EMEL_GGML_TYPE_F32, 8, 4);
  tensor(w, "blk.0.attn_q.weight", EMEL_GGML_TYPE_Q4_0, 64, 2);
  tensor(w, "output_norm.weight", EMEL_GGML_TYPE_F16, 16, 0);
  return w;
}

/* Arrays of arrays (of strings, of numbers, of arrays), three levels deep. */
static void nested(void) {
  gw *w = gw_new();
  gw_kv_begin(w, "nested.str", EMEL_GGUF_TYPE_ARRAY);
  gw_put_array_header(w, EMEL_GGUF_TYPE_ARRAY, 2);
  gw_put_array_header(w, EMEL_GGUF_TYPE_STRING, 2);
  gw_put_str(w, "a");
  gw_put_str(w, "bc");
  gw_put_array_header(w, EMEL_GGUF_TYPE_STRING, 0);
  gw_kv_begin(w, "nested.num", EMEL_GGUF_TYPE_ARRAY);
  gw_put_array_header(w, EMEL_GGUF_TYPE_ARRAY, 2);
  gw_put_array_header(w, EMEL_GGUF_TYPE_INT16, 3);
  for (int i = 0; i < 3; i++) gw_put_bytes(w, "\x01\x80", 2);
  gw_put_array_header(w, EMEL_GGUF_TYPE_FLOAT64, 1);
  gw_put_u64(w, 0x3ff0000000000000ull);
  gw_kv_begin(w, "nested.deep", EMEL_GGUF_TYPE_ARRAY);
  gw_put_array_header(w, EMEL_GGUF_TYPE_ARRAY, 1);
  gw_put_array_header(w, EMEL_GGUF_TYPE_ARRAY, 1);
  gw_put_array_header(w, EMEL_GGUF_TYPE_BOOL, 2);
  gw_put_u8(w, 1);
  gw_put_u8(w, 0);
  tensor(w, "t", EMEL_GGML_TYPE_I8, 3, 0);
  emit(w, "nested_arrays.gguf");
}

/* Alignment 64 and block-quantized types; a tokenizer-like set of arrays. */
static void align64(void) {
  gw *w = gw_new();
  gw_set_alignment(w, 64);
  tensor(w, "q8", EMEL_GGML_TYPE_Q8_0, 32, 3);
  tensor(w, "q4k", EMEL_GGML_TYPE_Q4_K, 256, 1);
  tensor(w, "bf16", EMEL_GGML_TYPE_BF16, 5, 0);
  tensor(w, "i32", EMEL_GGML_TYPE_I32, 7, 0);
  uint64_t ne[4] = {2, 3, 4, 5};
  gw_tensor(w, "four_dims", EMEL_GGML_TYPE_F32, 4, ne);
  emit(w, "align64_quantized.gguf");
}

static void tokenizer(void) {
  enum { N = 64 };
  const char *tokens[N];
  char text[N][8];
  float scores[N];
  int32_t kinds[N];
  for (int i = 0; i < N; i++) {
    snprintf(text[i], sizeof text[i], "tok%d", i);
    tokens[i] = text[i];
    scores[i] = -(float)i;
    kinds[i] = i % 3;
  }
  gw *w = gw_new();
  gw_kv_str(w, "general.architecture", "gpt2");
  gw_kv_str(w, "tokenizer.ggml.model", "gpt2");
  gw_kv_array(w, "tokenizer.ggml.tokens", EMEL_GGUF_TYPE_STRING, N, tokens);
  gw_kv_array(w, "tokenizer.ggml.scores", EMEL_GGUF_TYPE_FLOAT32, N, scores);
  gw_kv_array(w, "tokenizer.ggml.token_type", EMEL_GGUF_TYPE_INT32, N, kinds);
  gw_kv_u32(w, "tokenizer.ggml.bos_token_id", 1);
  emit(w, "tokenizer_no_tensors.gguf");
}

/* A header beyond the index's 64 KiB first read, so its buffer grows. */
static void large_header(void) {
  enum { N = 4600 };
  static char text[N][12];
  static const char *tokens[N];
  for (int i = 0; i < N; i++) {
    snprintf(text[i], sizeof text[i], "tok%04d", i);
    tokens[i] = text[i];
  }
  gw *w = gw_new();
  gw_kv_array(w, "tokenizer.ggml.tokens", EMEL_GGUF_TYPE_STRING, N, tokens);
  tensor(w, "token_embd.weight", EMEL_GGML_TYPE_F16, 8, 2);
  emit(w, "large_header.gguf");
}

/* One tensor of every known ggml type, one block each. */
static void all_types(void) {
  gw *w = gw_new();
  for (uint32_t t = 0; t < EMEL_GGML_TYPE_COUNT; t++) {
    uint32_t block;
    const char *name = emel_ggml_type_name(t);
    if (!name || emel_ggml_type_info(t, &block, NULL, NULL) != EMEL_OK) continue;
    tensor(w, name, t, block, 0);
  }
  emit(w, "all_tensor_types.gguf");
}

/* Many tiny keys: the worst table-to-file ratio (the harness's memory bound). */
static void tiny_keys(void) {
  gw *w = gw_new();
  char key[8];
  for (int i = 0; i < 1000; i++) {
    snprintf(key, sizeof key, "%03d", i);
    gw_kv_u8(w, key, (uint8_t)i);
  }
  emit(w, "many_tiny_keys.gguf");
}

static void simple_files(void) {
  emit(basic(3), "v3_basic.gguf");
  emit(basic(2), "v2_basic.gguf");
  emit(gw_new(), "empty_header.gguf");
  gw *w = gw_new();
  uint64_t zero[2] = {0, 4};
  gw_tensor(w, "empty", EMEL_GGML_TYPE_F32, 2, zero);
  tensor(w, "after_empty", EMEL_GGML_TYPE_F16, 4, 0);
  emit(w, "empty_tensor.gguf");
}

/* Each validation the index performs, once. */
static void corrupt_files(void) {
  static const uint64_t cuts[] = {3, 10, 23, 60, 200, 400, 500, 700};
  char name[64];
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    gw *w = basic(3);
    gw_truncate_at(w, cuts[i]);
    snprintf(name, sizeof name, "bad_truncated_at_%llu.gguf", (unsigned long long)cuts[i]);
    emit(w, name);
  }
  gw *w = basic(3);
  gw_override_magic(w, "GGML");
  emit(w, "bad_magic.gguf");
  w = basic(3);
  gw_big_endian_version(w);
  emit(w, "bad_big_endian.gguf");
  emit((gw_set_version(w = basic(3), 1), w), "bad_version_1.gguf");
  emit((gw_override_n_kv(w = basic(3), 1ull << 62), w), "bad_n_kv_huge.gguf");
  emit((gw_override_n_tensors(w = basic(3), 5), w), "bad_n_tensors_more.gguf");
  emit((gw_override_data_size(w = basic(3), 100), w), "bad_data_short.gguf");
  emit((gw_set_alignment(w = basic(3), 48), w), "bad_alignment_48.gguf");
  w = basic(3);
  gw_kv_u8(w, "general.alignment", 64);
  emit(w, "bad_alignment_type.gguf");
  w = basic(3);
  gw_kv_u8(w, "t.u8", 1);
  emit(w, "bad_duplicate_key.gguf");
  w = basic(3);
  gw_kv_begin(w, "t.unknown", 13);
  gw_put_u32(w, 0);
  emit(w, "bad_value_type.gguf");
  w = basic(3);
  gw_kv_begin(w, "", EMEL_GGUF_TYPE_UINT8);
  gw_put_u8(w, 0);
  emit(w, "bad_empty_key.gguf");
  w = gw_new();
  gw_kv_begin(w, "too.deep", EMEL_GGUF_TYPE_ARRAY);
  for (int i = 0; i < 9; i++) gw_put_array_header(w, EMEL_GGUF_TYPE_ARRAY, 1);
  gw_put_array_header(w, EMEL_GGUF_TYPE_UINT8, 0);
  emit(w, "bad_nesting_too_deep.gguf");
  w = gw_new();
  gw_kv_begin(w, "long.array", EMEL_GGUF_TYPE_ARRAY);
  gw_put_array_header(w, EMEL_GGUF_TYPE_UINT64, 1ull << 40);
  emit(w, "bad_array_too_long.gguf");
  w = gw_new();
  gw_kv_u16(w, "split.count", 2);
  gw_kv_u16(w, "split.no", 0);
  emit(w, "bad_split_not_named.gguf");

  uint64_t ne[5] = {32, 2, 1, 1, 1};
  w = gw_new();
  gw_tensor_raw(w, "five_dims", EMEL_GGML_TYPE_F32, 5, ne, 0, 256);
  emit(w, "bad_dims_5.gguf");
  w = gw_new();
  gw_tensor_raw(w, "removed_type", 4, 1, ne, 0, 64);
  emit(w, "bad_tensor_type.gguf");
  w = gw_new();
  gw_tensor_raw(w, "q4_ragged", EMEL_GGML_TYPE_Q4_0, 1, (uint64_t[]){33}, 0, 64);
  emit(w, "bad_block_size.gguf");
  w = gw_new();
  gw_tensor_raw(w, "misaligned", EMEL_GGML_TYPE_F32, 1, ne, 8, 128);
  emit(w, "bad_misaligned_offset.gguf");
  w = gw_new();
  gw_tensor_raw(w, "a", EMEL_GGML_TYPE_F32, 1, ne, 0, 128);
  gw_tensor_raw(w, "b", EMEL_GGML_TYPE_F32, 1, ne, 64, 128);
  emit(w, "bad_overlapping.gguf");
  w = gw_new();
  tensor(w, "same", EMEL_GGML_TYPE_F32, 4, 0);
  tensor(w, "same", EMEL_GGML_TYPE_F32, 4, 0);
  emit(w, "bad_duplicate_name.gguf");
  w = gw_new();
  gw_tensor_raw(w, "huge", EMEL_GGML_TYPE_F32, 2, (uint64_t[]){1ull << 40, 1ull << 40}, 0, 0);
  emit(w, "bad_size_overflow.gguf");
}

static void fixture_heads(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return; /* the fixtures are optional */
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    size_t n = strlen(e->d_name);
    if (n < 6 || strcmp(e->d_name + n - 5, ".gguf") != 0) continue;
    char in[1024], out[1024];
    static unsigned char head[8192];
    snprintf(in, sizeof in, "%s/%s", dir, e->d_name);
    snprintf(out, sizeof out, "%s/head_%s", out_dir, e->d_name);
    FILE *f = fopen(in, "rb"), *o = NULL;
    size_t got = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    if (got == 0 || !(o = fopen(out, "wb")) || fwrite(head, 1, got, o) != got) failed = 1;
    if (o && fclose(o) != 0) failed = 1;
  }
  closedir(d);
}

/* ---- fuzz_residency: programs (encoding in residency_program.h) ---- */

typedef struct rprog {
  uint8_t b[1024];
  size_t n;
} rprog;

static void rp_put(rprog *p, const uint8_t *b, size_t n) {
  if (p->n + n > sizeof p->b) {
    fprintf(stderr, "residency seed too long\n");
    failed = 1;
    return;
  }
  memcpy(p->b + p->n, b, n);
  p->n += n;
}

#define RP(p, ...)                                 \
  do {                                             \
    const uint8_t b_[] = {__VA_ARGS__};            \
    rp_put((p), b_, sizeof b_);                    \
  } while (0)

static void rp_emit(const rprog *p, const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", out_dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p->b, 1, p->n, f) != p->n || fclose(f) != 0) {
    fprintf(stderr, "cannot write %s\n", path);
    failed = 1;
  }
}

/* A model of `tensors` tensors of 100 + 700 i bytes (some cross pages), spread
 * over `files` files in turn; `file_byte` for every file, `unbound` tensors
 * (a bit mask) left unbound. */
static rprog shape(int files, int tensors, int align_index, uint8_t no_map, uint8_t config, uint8_t params,
                   uint8_t file_byte, unsigned unbound) {
  rprog p = {.n = 0};
  RP(&p, (uint8_t)(files - 1), (uint8_t)((tensors - 1) | align_index << 4 | no_map), config, params);
  for (int f = 0; f < files; f++) RP(&p, file_byte);
  for (int i = 0; i < tensors; i++) {
    unsigned size = 100u + 700u * (unsigned)i - 1;
    RP(&p, (uint8_t)size, (uint8_t)(size >> 8), (uint8_t)((i % files) | (unbound >> i & 1 ? RP_UNBOUND : 0)));
  }
  return p;
}

static rprog plain_shape(void) { return shape(2, 6, 1, 0, 0, 0, 0, 0); }

/* Batches through emel_tensors_load_batch: both strategies, a repeated index,
 * an unbound tensor, and a read fault in the middle of a threaded window. */
static void residency_tensor_batches(void) {
  rprog p = shape(2, 6, 1, 0, 0, 0, 0, 1u << 5);
  RP(&p, RP_LOAD_BATCH, 4, RP_READ, 0, 0, 1, 2, 3, 5, RP_EVICT_ALL);
  RP(&p, RP_LOAD_BATCH, 3, RP_MMAP, EMEL_LOAD_POPULATE, 0, 0, 1, 4, RP_EVICT_ALL);
  RP(&p, RP_FAULT, FP_PREAD, 2, RP_EIO, RP_LOAD_BATCH, 5, RP_READ, 0, 0, 1, 2, 3, 4, 0, RP_CLEAR, RP_EVICT_ALL);
  rp_emit(&p, "tensor_batches");
}

static void residency_loads(void) {
  rprog p = plain_shape();
  RP(&p, RP_LOAD, 0, RP_MMAP, 0, RP_NO_TARGET, RP_LOAD, 1, RP_MMAP, 0, RP_NO_TARGET);
  RP(&p, RP_LOAD, 2, RP_READ, 0, RP_NO_TARGET, RP_LOAD, 3, RP_READ, 0, RP_TARGET);
  RP(&p, RP_LOAD, 4, RP_READ, 0, RP_TARGET_MISALIGNED, RP_LOAD, 4, RP_READ, 0, RP_NO_TARGET);
  RP(&p, RP_EVICT, 0, RP_EVICT, 0, RP_LOAD, 0, RP_READ, 0, RP_NO_TARGET, RP_EVICT_ALL);
  RP(&p, RP_LOAD, 5, RP_NONE, 0, 0, RP_LOAD, 5, RP_BOGUS_STRATEGY, 0, 0, RP_LOAD, 5, RP_MMAP, 0, 0);
  rp_emit(&p, "loads_with_each_strategy");

  p = plain_shape();
  RP(&p, RP_LOAD, 0, RP_MMAP, EMEL_LOAD_POPULATE, 0, RP_LOAD, 1, RP_MMAP, EMEL_LOAD_LOCK, 0);
  RP(&p, RP_LOAD, 2, RP_MMAP, EMEL_LOAD_POPULATE | EMEL_LOAD_LOCK, 0, RP_LOAD, 3, RP_MMAP, EMEL_LOAD_DIRECT, 0);
  RP(&p, RP_LOAD, 3, RP_MMAP, 0, RP_TARGET, RP_LOAD, 3, RP_MMAP, RP_UNKNOWN_FLAG, 0);
  RP(&p, RP_EVICT, 1, RP_EVICT, 2, RP_LOAD, 1, RP_MMAP, EMEL_LOAD_LOCK, 0, RP_EVICT_ALL);
  rp_emit(&p, "mmap_options");

  for (int small = 0; small < 2; small++) {
    p = small ? shape(1, 6, 3, 0, RP_SMALL_CHUNKS | RP_ALIGN_4096, 0x10, 0, 0) : plain_shape();
    RP(&p, RP_LOAD, 0, RP_READ, EMEL_LOAD_DIRECT, 0, RP_LOAD, 1, RP_READ, EMEL_LOAD_DROP_CACHE, 0);
    RP(&p, RP_LOAD, 2, RP_READ, EMEL_LOAD_DIRECT | EMEL_LOAD_DROP_CACHE, RP_TARGET);
    RP(&p, RP_LOAD, 3, RP_READ, EMEL_LOAD_DIRECT, RP_TARGET_MISALIGNED, RP_LOAD, 4, RP_READ, 0, RP_TARGET_TOO_SMALL);
    RP(&p, RP_LOAD, 5, RP_READ, EMEL_LOAD_POPULATE, 0, RP_LOAD, 5, RP_READ, RP_UNKNOWN_FLAG, 0);
    RP(&p, RP_EVICT_ALL, RP_LOAD, 5, RP_READ, EMEL_LOAD_DIRECT, 0);
    rp_emit(&p, small ? "read_options_small_chunks_4096" : "read_options");
  }

  p = shape(1, 6, 1, 0, 0, 0, 0, 0x3);
  RP(&p, RP_BIND_EXTERNAL, 0, 0, RP_LOAD, 0, RP_MMAP, 0, 0, RP_EVICT, 0);
  RP(&p, RP_BIND, 0, 1, RP_BIND, 0, 2, RP_BIND, 0, 3, RP_BIND, 0, 0, RP_BIND, 0, 0, RP_BIND, 2, 0);
  RP(&p, RP_BIND_EXTERNAL, 0, 0, RP_BIND_EXTERNAL, 2, 1, RP_BIND_EXTERNAL, 3, 2, RP_BIND_EXTERNAL, 4, 3);
  RP(&p, RP_LOAD, 0, RP_MMAP, 0, 0, RP_BIND_EXTERNAL, 0, 0, RP_EVICT, 0, RP_LOAD, 0, RP_READ, 0, 0);
  RP(&p, RP_EVICT, 1, RP_EVICT_ALL, RP_BIND_EXTERNAL, 2, 0, RP_BIND, 2, 0, RP_EVICT, 2, RP_BIND, 2, 0);
  rp_emit(&p, "bind_and_external_storage");
}

static void residency_batches(void) {
  rprog p = shape(1, 8, 0, 0, 0, 0, 0, 0); /* alignment 1: spans adjacent, one coalesced run */
  RP(&p, RP_ACQUIRE, 7, RP_READ, 0, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, RP_TARGET);
  RP(&p, RP_RELEASE, RP_HELD, RP_RELEASE, RP_HELD | 1 << 2, RP_RELEASE, RP_STALE);
  RP(&p, RP_ACQUIRE, 2, RP_READ, EMEL_LOAD_DIRECT, 0, 0, 1, RP_TARGET_MISALIGNED, 2, 0);
  RP(&p, RP_ACQUIRE, 2, RP_READ, EMEL_LOAD_DROP_CACHE, 0, RP_TARGET_TOO_SMALL, 0, 0, 3, 0);
  RP(&p, RP_ACQUIRE, 3 | RP_MIXED, RP_READ, 0, 0, RP_MMAP, 0, 1, RP_READ, 0, 2, RP_NONE, 0, 3, RP_BOGUS_STRATEGY, 0);
  RP(&p, RP_ACQUIRE, RP_SINGLE, RP_READ, 0, 5, RP_TARGET);
  RP(&p, RP_ACQUIRE, 1, RP_READ, 0, 0, RP_BAD_FILE_INDEX, 1, RP_OFFSET_OVERFLOW);
  RP(&p, RP_ACQUIRE, 1, RP_MMAP, 0, 0, RP_BAD_FILE_INDEX, 1, RP_OFFSET_OVERFLOW);
  rp_emit(&p, "batches_read");

  p = plain_shape();
  RP(&p, RP_ACQUIRE, 3, RP_MMAP, EMEL_LOAD_POPULATE, 0, 0, 1, 0, 2, 0, 3, 0);
  RP(&p, RP_ADVISE, RP_HELD, RP_WHOLE, EMEL_ADVISE_WILLNEED);
  RP(&p, RP_ADVISE, RP_HELD, RP_INSIDE, 10, 0, 20, 0, EMEL_ADVISE_DONTNEED);
  RP(&p, RP_ADVISE, RP_HELD, RP_ANY_RANGE, 0, 1, 0, 1, EMEL_ADVISE_SEQUENTIAL);
  RP(&p, RP_ADVISE, RP_HELD, RP_PAST_END, EMEL_ADVISE_NORMAL);
  RP(&p, RP_ADVISE, RP_HELD, RP_WHOLE, EMEL_ADVISE_HUGEPAGE, RP_ADVISE, RP_HELD, RP_WHOLE, 6);
  RP(&p, RP_ADVISE, RP_HELD | 1 << 2, RP_WHOLE, EMEL_ADVISE_POPULATE_READ);
  RP(&p, RP_RELEASE, RP_HELD, RP_RELEASE, RP_STALE, RP_ADVISE, RP_STALE, RP_WHOLE, 0);
  RP(&p, RP_RELEASE, RP_FORGED, EMEL_STRATEGY_MMAP, 0, 1, 0, RP_RELEASE, RP_FORGED, EMEL_STRATEGY_READ, 200, 0, 0);
  RP(&p, RP_RELEASE, RP_FORGED, EMEL_STRATEGY_NONE, 0, 0, 0, RP_RELEASE, RP_FORGED, 3, 0, 0, 0);
  RP(&p, RP_ADVISE, RP_FORGED, EMEL_STRATEGY_MMAP, 0, 1, 0, RP_WHOLE, 0);
  RP(&p, RP_ACQUIRE, RP_SINGLE, RP_READ, 0, 4, 0, RP_ADVISE, RP_HELD | 2 << 2, RP_WHOLE, 0);
  RP(&p, RP_FAULT, FP_ADVISE, 0, RP_EIO, RP_ADVISE, RP_HELD, RP_WHOLE, EMEL_ADVISE_WILLNEED);
  rp_emit(&p, "batches_mmap_advice_and_handles");
}

static void residency_shapes(void) {
  static const struct {
    const char *name;
    int files, tensors, align;
    uint8_t no_map, config, params, file_byte;
  } shapes[] = {
      {"shape_missing_file", 2, 4, 1, 0, 0, 0, 5},
      {"shape_nul_in_path", 2, 4, 1, 0, 0, 0, 6},
      {"shape_truncated_files", 3, 9, 2, 0, 0, 0, RP_TRUNCATE | 0x70},
      {"shape_platform_cannot_map", 1, 4, 1, RP_NO_MAP, 0, 0, 0},
      {"shape_no_mmap_strategy", 1, 4, 1, 0, RP_NO_MMAP, 0, 0},
      {"shape_no_read_strategy", 1, 4, 1, 0, RP_NO_READ, 0, 0},
      {"shape_pools_of_one", 2, 6, 1, 0, RP_SMALL_POOLS, 0, 0},
      {"shape_16_tensors_3_files_page_aligned", 3, 16, 3, 0, RP_ALIGN_4096, 0, 0},
      {"shape_unaligned", 1, 5, 0, 0, RP_SMALL_CHUNKS, 0, 0},
      {"shape_small_huge_pages", 1, 8, 3, 0, RP_SMALL_HUGE_PAGES, 0, 0},
  };
  for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
    rprog p = shape(shapes[k].files, shapes[k].tensors, shapes[k].align, shapes[k].no_map, shapes[k].config,
                    shapes[k].params, shapes[k].file_byte, 0);
    for (int i = 0; i < shapes[k].tensors && i < 6; i++)
      RP(&p, RP_LOAD, (uint8_t)i, i % 2 ? RP_READ : RP_MMAP, 0, 0);
    RP(&p, RP_ACQUIRE, 3, RP_READ, 0, 0, 0, 1, 0, 2, 0, 3, 0, RP_EVICT, 0, RP_EVICT_ALL);
    for (int i = shapes[k].tensors - 1; i >= 0; i--) RP(&p, RP_LOAD, (uint8_t)i, RP_MMAP, 0, 0);
    rp_emit(&p, shapes[k].name);
  }
}

/* One seed per operation that can fail: arm it, then run loads of both
 * strategies and a batch that reach it; releases for the release path. */
static void residency_faults(void) {
  static const struct {
    const char *name;
    uint8_t op, kind, len;
  } faults[] = {
      {"fault_open_eacces", FP_OPEN, RP_EACCES, 0},
      {"fault_open_emfile", FP_OPEN, RP_EMFILE, 0},
      {"fault_open_einval_direct", FP_OPEN, RP_EINVAL, 0},
      {"fault_close_eio", FP_CLOSE, RP_EIO, 0},
      {"fault_file_identity_eio", FP_FILE_IDENTITY, RP_EIO, 0},
      {"fault_pread_eio", FP_PREAD, RP_EIO, 0},
      {"fault_pread_eintr_once", FP_PREAD, RP_EINTR, 0},
      {"fault_pread_eintr_storm", FP_PREAD, RP_EINTR | RP_STORM, 0},
      {"fault_pread_eagain", FP_PREAD, RP_EAGAIN, 0},
      {"fault_pread_short", FP_PREAD, RP_SHORT | 2 << 4, 1},
      {"fault_pread_eof", FP_PREAD, RP_SHORT, 0},
      {"fault_preadv_eio", FP_PREADV, RP_EIO, 0},
      {"fault_preadv_short", FP_PREADV, RP_SHORT, 1},
      {"fault_preadv_eintr_storm", FP_PREADV, RP_EINTR | RP_STORM, 0},
      {"fault_map_enomem", FP_MAP, RP_ENOMEM, 0},
      {"fault_advise_einval", FP_ADVISE, RP_EINVAL, 0},
      {"fault_fadvise_einval", FP_FADVISE, RP_EINVAL, 0},
      {"fault_lock_eagain", FP_LOCK, RP_EAGAIN, 0},
      {"fault_lock_enomem", FP_LOCK, RP_ENOMEM, 0},
      {"fault_alloc", FP_ALLOC, RP_ENOMEM, 0},
  };
  for (size_t k = 0; k < sizeof faults / sizeof faults[0]; k++) {
    rprog p = plain_shape();
    const uint8_t op = faults[k].op, kind = faults[k].kind;
    for (int round = 0; round < 3; round++) {
      RP(&p, RP_FAULT, op, 0, kind);
      if (kind & RP_SHORT) RP(&p, faults[k].len, 0x10, 0);
      if (round == 0) RP(&p, RP_LOAD, 0, RP_MMAP, EMEL_LOAD_POPULATE | EMEL_LOAD_LOCK, 0);
      if (round == 1) RP(&p, RP_LOAD, 1, RP_READ, EMEL_LOAD_DROP_CACHE, 0, RP_LOAD, 2, RP_READ, EMEL_LOAD_DIRECT, 0);
      if (round == 2) RP(&p, RP_ACQUIRE, 2, RP_READ, 0, 3, 0, 5, 0, RP_RELEASE, RP_HELD);
    }
    RP(&p, RP_EVICT_ALL, RP_CLEAR, RP_LOAD, 0, RP_MMAP, 0, 0);
    rp_emit(&p, faults[k].name);
  }
  /* direct reads: the filesystem refuses O_DIRECT (EINVAL), or the open fails */
  rprog p = shape(2, 6, 2, 0, 0, 0, 0, 0); /* alignment 64: owned buffers can match the file */
  RP(&p, RP_FAULT, FP_OPEN, 0, RP_EINVAL, RP_LOAD, 0, RP_READ, EMEL_LOAD_DIRECT, 0);
  RP(&p, RP_LOAD, 2, RP_READ, EMEL_LOAD_DIRECT, 0, RP_FAULT, FP_OPEN, 0, RP_EIO);
  RP(&p, RP_LOAD, 1, RP_READ, EMEL_LOAD_DIRECT, 0, RP_LOAD, 1, RP_READ, EMEL_LOAD_DIRECT, 0);
  rp_emit(&p, "fault_direct_open");
  /* huge-page advice refused: the load still succeeds */
  p = shape(1, 8, 3, 0, RP_SMALL_HUGE_PAGES, 0, 0, 0);
  RP(&p, RP_FAULT, FP_ADVISE, 0, RP_EINVAL, RP_LOAD, 7, RP_READ, 0, 0, RP_LOAD, 6, RP_READ, 0, 0);
  rp_emit(&p, "fault_huge_page_advice");
  /* a populate or lock failure with the file still referenced, or unmapped
   * after the failure by a failing munmap */
  p = plain_shape();
  RP(&p, RP_LOAD, 0, RP_MMAP, 0, 0, RP_FAULT, FP_LOCK, 0, RP_ENOMEM, RP_LOAD, 2, RP_MMAP, EMEL_LOAD_LOCK, 0);
  RP(&p, RP_FAULT, FP_ADVISE, 0, RP_EIO, RP_LOAD, 2, RP_MMAP, EMEL_LOAD_POPULATE, 0);
  RP(&p, RP_FAULT, FP_LOCK, 0, RP_EAGAIN, RP_FAULT, FP_UNMAP, 0, RP_EINVAL);
  RP(&p, RP_LOAD, 1, RP_MMAP, EMEL_LOAD_LOCK, 0, RP_LOAD, 3, RP_MMAP, 0, 0, RP_EVICT_ALL);
  rp_emit(&p, "fault_mmap_options_shared_file");
  /* dropping the pages only a released tensor covered fails (page-aligned tensors) */
  p = shape(1, 8, 3, 0, 0, 0, 0, 0);
  RP(&p, RP_LOAD, 6, RP_MMAP, 0, 0, RP_LOAD, 7, RP_MMAP, 0, 0, RP_FAULT, FP_ADVISE, 0, RP_EIO);
  RP(&p, RP_EVICT, 6, RP_EVICT, 6, RP_LOAD, 6, RP_MMAP, 0, 0, RP_EVICT, 7);
  rp_emit(&p, "fault_drop_own_pages");
  /* files cut under the loads: reads past the new end fail, mapped bytes stay */
  p = shape(2, 8, 1, 0, RP_SMALL_CHUNKS, 0, 0, 0);
  RP(&p, RP_LOAD, 0, RP_MMAP, 0, 0, RP_LOAD, 1, RP_READ, 0, 0, RP_CUT_FILE, 0, 0x00, 0x10);
  RP(&p, RP_LOAD, 6, RP_READ, 0, 0, RP_LOAD, 4, RP_MMAP, 0, 0, RP_LOAD, 6, RP_READ, EMEL_LOAD_DIRECT, 0);
  RP(&p, RP_CUT_FILE, 1, 0xff, 0xff, RP_ACQUIRE, 2, RP_READ, 0, 3, 0, 5, 0, 7, 0);
  RP(&p, RP_CUT_FILE, 0, 0, 0, RP_LOAD, 6, RP_READ, 0, 0, RP_EVICT_ALL, RP_CUT_FILE, 1, 0x00, 0x01);
  rp_emit(&p, "files_cut_under_loads");

  /* releases that fail: the residency stays live, a second release frees it */
  static const struct {
    const char *name;
    uint8_t op, kind;
  } releases[] = {
      {"fault_unlock_eperm", FP_UNLOCK, RP_EPERM},
      {"fault_unmap_einval", FP_UNMAP, RP_EINVAL},
      {"fault_advise_dontneed_on_release", FP_ADVISE, RP_EIO},
  };
  for (size_t k = 0; k < sizeof releases / sizeof releases[0]; k++) {
    p = plain_shape();
    RP(&p, RP_LOAD, 0, RP_MMAP, EMEL_LOAD_LOCK, 0, RP_LOAD, 2, RP_MMAP, 0, 0, RP_LOAD, 4, RP_MMAP, 0, 0);
    RP(&p, RP_FAULT, releases[k].op, 0, releases[k].kind, RP_EVICT, 4, RP_EVICT, 4);
    RP(&p, RP_FAULT, releases[k].op, 0, releases[k].kind, RP_EVICT, 0, RP_EVICT, 0, RP_EVICT, 2);
    RP(&p, RP_FAULT, releases[k].op, 0, releases[k].kind, RP_EVICT_ALL, RP_EVICT_ALL);
    RP(&p, RP_ACQUIRE, 1, RP_MMAP, EMEL_LOAD_LOCK, 0, 0, 2, 0);
    RP(&p, RP_FAULT, releases[k].op, 0, releases[k].kind, RP_RELEASE, RP_HELD, RP_RELEASE, RP_HELD);
    RP(&p, RP_FAULT, releases[k].op, 0, releases[k].kind | 1 << 4, RP_FAULT, FP_MAP, 0, RP_ENOMEM);
    RP(&p, RP_LOAD, 1, RP_MMAP, EMEL_LOAD_POPULATE, 0, RP_CLEAR, RP_LOAD, 1, RP_MMAP, 0, 0);
    rp_emit(&p, releases[k].name);
  }
}

/* Load jobs: stepped with budgets, in the background, cancelled, under
 * faults of their own ops and the io's, and holding their tensors. */
static void residency_jobs(void) {
  rprog p = plain_shape();
  RP(&p, RP_JOB, RP_JOB_CREATE, RP_JOB_ALL, RP_READ, 0, 0, 0);
  RP(&p, RP_JOB, RP_JOB_STEP, 0, RP_JOB, RP_JOB_STEP, 1, RP_JOB, RP_JOB_STEP, 4, RP_JOB, RP_JOB_STEP_ALL);
  RP(&p, RP_JOB, RP_JOB_STEP, 0, RP_JOB, RP_JOB_DESTROY, RP_EVICT_ALL);
  rp_emit(&p, "job_step_read_small_chunks");

  p = plain_shape();
  RP(&p, RP_JOB, RP_JOB_CREATE, RP_JOB_ALL, RP_MMAP, EMEL_LOAD_POPULATE, 1, 0);
  RP(&p, RP_JOB, RP_JOB_STEP, 0, RP_JOB, RP_JOB_STEP, 0, RP_JOB, RP_JOB_STEP, 0, RP_JOB, RP_JOB_CANCEL);
  RP(&p, RP_LOAD, 5, RP_READ, 0, 0, RP_JOB, RP_JOB_STEP, 0, RP_JOB, RP_JOB_WAIT, RP_JOB, RP_JOB_DESTROY);
  RP(&p, RP_JOB, RP_JOB_CREATE, RP_JOB_ALL, RP_MMAP, EMEL_LOAD_POPULATE, 1, 0, RP_EVICT_ALL);
  rp_emit(&p, "job_step_mmap_populate_cancelled");

  p = shape(2, 6, 3, 0, RP_ALIGN_4096, 0, 0, 0);
  RP(&p, RP_JOB, RP_JOB_CREATE, RP_JOB_ALL | RP_JOB_CONTINUE, RP_READ, EMEL_LOAD_DIRECT, 2, 0);
  RP(&p, RP_JOB, RP_JOB_START, 0, RP_JOB, RP_JOB_STEP, 0, RP_JOB, RP_JOB_START, 0, RP_JOB, RP_JOB_DESTROY);
  RP(&p, RP_JOB, RP_JOB_CREATE, 2, RP_READ, 0, 3, 0, 1, 2, RP_JOB, RP_JOB_START, 1, RP_JOB, RP_JOB_DESTROY);
  rp_emit(&p, "job_background_direct_and_cancelled");

  p = plain_shape();
  RP(&p, RP_FAULT, FP_PREAD, 2, RP_EIO, RP_JOB, RP_JOB_CREATE, RP_JOB_ALL | RP_JOB_CONTINUE, RP_READ, 0, 1, 0);
  RP(&p, RP_JOB, RP_JOB_STEP_ALL, RP_JOB, RP_JOB_DESTROY, RP_CLEAR, RP_EVICT_ALL);
  RP(&p, RP_FAULT, FP_PREAD, 3, RP_EIO, RP_JOB, RP_JOB_CREATE, RP_JOB_ALL, RP_READ, 0, 1, 0);
  RP(&p, RP_JOB, RP_JOB_STEP_ALL, RP_JOB, RP_JOB_DESTROY, RP_CLEAR, RP_EVICT_ALL);
  RP(&p, RP_FAULT, FP_EVENT_OPEN, 0, RP_EMFILE, RP_JOB, RP_JOB_CREATE, RP_JOB_ALL, RP_READ, 0, 1, 0);
  RP(&p, RP_JOB, RP_JOB_START, 0, RP_JOB, RP_JOB_STEP, 2, RP_FAULT, FP_THREAD_START, 0, RP_EAGAIN);
  RP(&p, RP_JOB, RP_JOB_START, 0, RP_JOB, RP_JOB_DESTROY, RP_EVICT_ALL);
  RP(&p, RP_FAULT, FP_EVENT_SIGNAL, 0, RP_EINVAL | RP_STORM, RP_FAULT, FP_CLOCK_NS, 1, RP_EIO | 3 << 4);
  RP(&p, RP_FAULT, FP_EVENT_WAIT, 0, RP_ENOMEM, RP_JOB, RP_JOB_CREATE, RP_JOB_ALL, RP_READ, 0, 1, 0);
  RP(&p, RP_JOB, RP_JOB_START, 2, RP_JOB, RP_JOB_DESTROY, RP_CLEAR, RP_EVICT_ALL);
  RP(&p, RP_FAULT, FP_ALLOC, 1, RP_ENOMEM, RP_JOB, RP_JOB_CREATE, RP_JOB_ALL, RP_MMAP, EMEL_LOAD_POPULATE, 0, 0);
  RP(&p, RP_FAULT, FP_ADVISE, 1, RP_EIO, RP_JOB, RP_JOB_CREATE, RP_JOB_ALL, RP_MMAP, EMEL_LOAD_POPULATE, 0, 0);
  RP(&p, RP_JOB, RP_JOB_STEP_ALL, RP_JOB, RP_JOB_DESTROY, RP_CLEAR);
  rp_emit(&p, "job_faults");

  p = plain_shape();
  RP(&p, RP_JOB, RP_JOB_CREATE, 1 | RP_JOB_PRIORITY, RP_READ, 0, 2, 0, 2, 2);
  RP(&p, RP_LOAD, 0, RP_READ, 0, 0, RP_LOAD_BATCH, 1, RP_READ, 0, 2, 3, RP_BIND_EXTERNAL, 0, 0, RP_BIND, 2, 0);
  RP(&p, RP_JOB, RP_JOB_STEP, 0, RP_EVICT, 2, RP_EVICT_ALL, RP_JOB, RP_JOB_CREATE, 0, RP_READ, 0, 0, 0);
  RP(&p, RP_JOB, RP_JOB_CREATE, 1, RP_READ, 0, 0, 1, 1, RP_JOB, RP_JOB_STEP_ALL, RP_EVICT, 0, RP_JOB, RP_JOB_DESTROY);
  RP(&p, RP_EVICT, 0);
  rp_emit(&p, "job_holds_its_tensors");
}

/* The residency budget (RP_BUDGET_OPS): a budget the first three tensors fill
 * exactly (100 + 800 + 1500), LRU evictions after views and touches, pins
 * (an evict refused, an unpin too many), batches and jobs over the budget. */
static void residency_budget(void) {
  rprog p = shape(2, 6, 1, 0, RP_BUDGET_OPS, 0, 0, 0);
  RP(&p, RP_BUDGET, 2400 & 0xff, 2400 >> 8, 0, 1);
  RP(&p, RP_LOAD, 0, RP_READ, 0, 0, RP_LOAD, 1, RP_READ, 0, 0, RP_LOAD, 2, RP_READ, 0, 0);
  RP(&p, RP_TOUCH, 0, RP_PIN, 1, RP_LOAD, 3, RP_READ, 0, 0, RP_EVICT, 1, RP_UNPIN, 1, RP_UNPIN, 1);
  RP(&p, RP_LOAD, 4, RP_MMAP, 0, 0, RP_LOAD, 5, RP_READ, 0, RP_TARGET, RP_TOUCH, 5, RP_PIN, 3, RP_PIN, 3);
  RP(&p, RP_LOAD_BATCH, 2, RP_READ, 0, 0, 1, 2, RP_EVICT_ALL, RP_UNPIN, 3, RP_UNPIN, 3, RP_EVICT_ALL);
  RP(&p, RP_LOAD_BATCH, 5, RP_READ, 0, 0, 1, 2, 3, 4, 5, RP_EVICT_ALL);
  rp_emit(&p, "budget_evict_lru_and_pins");

  p = shape(2, 6, 1, 0, RP_BUDGET_OPS, 0, 0, 0);
  RP(&p, RP_BUDGET, 3000 & 0xff, 3000 >> 8, 0, 0);
  RP(&p, RP_LOAD, 2, RP_READ, 0, 0, RP_LOAD, 3, RP_READ, 0, 0, RP_LOAD, 0, RP_READ, 0, 0, RP_EVICT_ALL);
  RP(&p, RP_JOB, RP_JOB_CREATE, RP_JOB_ALL | RP_JOB_CONTINUE, RP_READ, 0, 0, 0, RP_JOB, RP_JOB_STEP_ALL);
  RP(&p, RP_BUDGET, 3000 & 0xff, 3000 >> 8, 0, 1, RP_LOAD, 0, RP_READ, 0, 0, RP_JOB, RP_JOB_DESTROY);
  RP(&p, RP_LOAD, 0, RP_READ, 0, 0, RP_PIN, 0, RP_EVICT_ALL);
  RP(&p, RP_JOB, RP_JOB_CREATE, RP_JOB_ALL | RP_JOB_CONTINUE, RP_READ, 0, 2, 0, RP_JOB, RP_JOB_STEP_ALL);
  RP(&p, RP_BUDGET, 100, 0, 0, 1, RP_JOB, RP_JOB_DESTROY, RP_LOAD, 5, RP_READ, 0, 0, RP_EVICT, 0);
  rp_emit(&p, "budget_fail_then_jobs");
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--residency") == 0) {
    out_dir = argv[2];
    residency_loads();
    residency_tensor_batches();
    residency_batches();
    residency_shapes();
    residency_faults();
    residency_jobs();
    residency_budget();
    return failed;
  }
  if (argc < 2) {
    fprintf(stderr, "usage: %s OUT_DIR [FIXTURES_DIR] | --residency OUT_DIR\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  simple_files();
  nested();
  align64();
  tokenizer();
  all_types();
  tiny_keys();
  large_header();
  corrupt_files();
  if (argc > 2) fixture_heads(argv[2]);
  return failed;
}

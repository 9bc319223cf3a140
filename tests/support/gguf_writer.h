/* Deterministic GGUF writer for tests, benchmarks and tools.
 *
 * Why a separate writer: tests need files of every shape, including corrupt
 * ones, without depending on llama.cpp. The same inputs always give the same
 * bytes. Metadata is serialized as it is added (so raw helpers can write any
 * byte sequence, e.g. wrong counts or unknown types); tensors are laid out at
 * write time. Uses stdio: it is a helper, not library code.
 */
#ifndef EMEL_TESTS_GGUF_WRITER_H
#define EMEL_TESTS_GGUF_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "emel/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gw gw;

gw *gw_new(void); /* version 3, alignment 32, seed 0 */
void gw_free(gw *w);

/* --- file-wide settings ----------------------------------------------------- */
void gw_set_version(gw *w, uint32_t version); /* written as is: any value */
/* Adds general.alignment (u32) and lays tensors out with it (when it is a
 * power of two; otherwise layout stays at 32 so corrupt values can be written). */
void gw_set_alignment(gw *w, uint32_t alignment);
void gw_set_seed(gw *w, uint64_t seed); /* tensor bytes derive from it */

/* --- raw overrides for corrupt files --------------------------------------- */
void gw_override_magic(gw *w, const char magic[4]);
void gw_override_n_kv(gw *w, uint64_t n_kv);
void gw_override_n_tensors(gw *w, uint64_t n_tensors);
void gw_override_data_size(gw *w, uint64_t bytes); /* data section length */
void gw_truncate_at(gw *w, uint64_t file_bytes);    /* stop writing there */
/* Swap the byte order of the version field (a big-endian file's header). */
void gw_big_endian_version(gw *w);

/* --- metadata ---------------------------------------------------------------- */
void gw_kv_u8(gw *w, const char *key, uint8_t v);
void gw_kv_i8(gw *w, const char *key, int8_t v);
void gw_kv_u16(gw *w, const char *key, uint16_t v);
void gw_kv_i16(gw *w, const char *key, int16_t v);
void gw_kv_u32(gw *w, const char *key, uint32_t v);
void gw_kv_i32(gw *w, const char *key, int32_t v);
void gw_kv_f32(gw *w, const char *key, float v);
void gw_kv_bool(gw *w, const char *key, int v);
void gw_kv_u64(gw *w, const char *key, uint64_t v);
void gw_kv_i64(gw *w, const char *key, int64_t v);
void gw_kv_f64(gw *w, const char *key, double v);
void gw_kv_str(gw *w, const char *key, const char *v);
/* Array of fixed-size elements given in host representation (e.g. uint32_t[]
 * for UINT32, uint8_t 0/1 for BOOL), or of strings (const char *const *). */
void gw_kv_array(gw *w, const char *key, uint32_t elem_type, uint64_t count, const void *elems);

/* Low level: gw_kv_begin writes key + type and counts one KV; the put calls
 * append raw little-endian bytes, so nested arrays and lies are possible. */
void gw_kv_begin(gw *w, const char *key, uint32_t type);
void gw_put_u8(gw *w, uint8_t v);
void gw_put_u32(gw *w, uint32_t v);
void gw_put_u64(gw *w, uint64_t v);
void gw_put_str(gw *w, const char *s); /* u64 length + bytes */
void gw_put_bytes(gw *w, const void *p, size_t n);
void gw_put_array_header(gw *w, uint32_t elem_type, uint64_t count);

/* --- tensors ----------------------------------------------------------------- */
/* Laid out at write time, in order, each at the next aligned offset. Returns 0,
 * or -1 if the shape is invalid for the type. */
int gw_tensor(gw *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne);
/* Written exactly as given (relative offset too); `data_bytes` of tensor data
 * are written at that offset. n_dims may exceed 4 (ne must hold n_dims dims). */
void gw_tensor_raw(gw *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t offset,
                   uint64_t data_bytes);
size_t gw_tensor_count(const gw *w);
/* Sum of the tensors' byte sizes (padding excluded). */
uint64_t gw_tensor_bytes(const gw *w);

/* N tensors of llama-like names and shapes (token_embd, output, blk.L.attn_q…)
 * totalling about `target_bytes`; 2-D weights cycle through `types`, norms
 * are F32. Returns 0 or -1. */
int gw_model_shape(gw *w, uint32_t n_tensors, uint64_t target_bytes, const uint32_t *types, size_t n_types);

/* --- output ------------------------------------------------------------------ */
int gw_write(gw *w, const char *path); /* 0 or -1 */
/* A file of gw_model_shape's tensors, in one call: 0 or -1. */
int gw_write_model(const char *path, uint32_t n_tensors, uint64_t target_bytes, const uint32_t *types, size_t n_types);
/* Writes PREFIX-00001-of-0000K.gguf …: the first holds every KV, all hold
 * split.no (u16), split.count (u16), split.tensors.count (i32); tensors are
 * divided in order into K nearly equal groups. */
int gw_write_split(gw *w, const char *prefix, uint32_t n_splits);
/* llama.cpp's split name (i from 0). Returns snprintf's result. */
int gw_split_path(char *buf, size_t size, const char *prefix, uint32_t i, uint32_t count);

/* The deterministic content of tensor `name`: bytes [off, off+n). */
void gw_fill(uint64_t seed, const char *name, uint64_t off, void *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif

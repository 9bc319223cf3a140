/* GGUF index: reads the header, metadata and tensor infos of a GGUF model
 * (one file or a llama.cpp split set) into a validated, read-only table.
 *
 * Why an index and not a loader: it only answers "which tensors exist, of what
 * shape and type, and at which byte span of which file"; residency and I/O
 * strategies build on that answer. Every file access goes through an
 * emel_platform_ops table, so tests can count and fail any call.
 *
 * Trust model: the file is hostile. Every count and length is checked against
 * the bytes the file still holds before anything is allocated for it, so a
 * header claiming 2^63 entries fails fast with a named status.
 *
 * Lifetime: every pointer returned (names, strings, array views) stays valid
 * until emel_gguf_close(). The index is immutable after open, so concurrent
 * readers need no locking.
 */
#ifndef EMEL_GGUF_H
#define EMEL_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emel/api.h"
#include "emel/platform.h"
#include "emel/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Metadata value types, numbered as in the GGUF specification. */
typedef enum emel_gguf_type {
  EMEL_GGUF_TYPE_UINT8 = 0,
  EMEL_GGUF_TYPE_INT8 = 1,
  EMEL_GGUF_TYPE_UINT16 = 2,
  EMEL_GGUF_TYPE_INT16 = 3,
  EMEL_GGUF_TYPE_UINT32 = 4,
  EMEL_GGUF_TYPE_INT32 = 5,
  EMEL_GGUF_TYPE_FLOAT32 = 6,
  EMEL_GGUF_TYPE_BOOL = 7,
  EMEL_GGUF_TYPE_STRING = 8,
  EMEL_GGUF_TYPE_ARRAY = 9,
  EMEL_GGUF_TYPE_UINT64 = 10,
  EMEL_GGUF_TYPE_INT64 = 11,
  EMEL_GGUF_TYPE_FLOAT64 = 12,
  EMEL_GGUF_TYPE_COUNT = 13
} emel_gguf_type;

/* ggml tensor types, numbered as in ggml.h. Gaps (4, 5, 31-33, 36-38) are
 * removed types: the index reports them as unknown, as ggml does. */
typedef enum emel_ggml_type {
  EMEL_GGML_TYPE_F32 = 0,
  EMEL_GGML_TYPE_F16 = 1,
  EMEL_GGML_TYPE_Q4_0 = 2,
  EMEL_GGML_TYPE_Q4_1 = 3,
  EMEL_GGML_TYPE_Q5_0 = 6,
  EMEL_GGML_TYPE_Q5_1 = 7,
  EMEL_GGML_TYPE_Q8_0 = 8,
  EMEL_GGML_TYPE_Q8_1 = 9,
  EMEL_GGML_TYPE_Q2_K = 10,
  EMEL_GGML_TYPE_Q3_K = 11,
  EMEL_GGML_TYPE_Q4_K = 12,
  EMEL_GGML_TYPE_Q5_K = 13,
  EMEL_GGML_TYPE_Q6_K = 14,
  EMEL_GGML_TYPE_Q8_K = 15,
  EMEL_GGML_TYPE_IQ2_XXS = 16,
  EMEL_GGML_TYPE_IQ2_XS = 17,
  EMEL_GGML_TYPE_IQ3_XXS = 18,
  EMEL_GGML_TYPE_IQ1_S = 19,
  EMEL_GGML_TYPE_IQ4_NL = 20,
  EMEL_GGML_TYPE_IQ3_S = 21,
  EMEL_GGML_TYPE_IQ2_S = 22,
  EMEL_GGML_TYPE_IQ4_XS = 23,
  EMEL_GGML_TYPE_I8 = 24,
  EMEL_GGML_TYPE_I16 = 25,
  EMEL_GGML_TYPE_I32 = 26,
  EMEL_GGML_TYPE_I64 = 27,
  EMEL_GGML_TYPE_F64 = 28,
  EMEL_GGML_TYPE_IQ1_M = 29,
  EMEL_GGML_TYPE_BF16 = 30,
  EMEL_GGML_TYPE_TQ1_0 = 34,
  EMEL_GGML_TYPE_TQ2_0 = 35,
  EMEL_GGML_TYPE_MXFP4 = 39,
  EMEL_GGML_TYPE_NVFP4 = 40,
  EMEL_GGML_TYPE_Q1_0 = 41,
  EMEL_GGML_TYPE_COUNT = 42
} emel_ggml_type;

/* "UINT8" … "FLOAT64" (gguf-py's names); "UNKNOWN" for other numbers. */
EMEL_API const char *emel_gguf_type_name(uint32_t type);

/* "F32", "Q4_K", "IQ2_XXS" … (gguf-py's names); NULL for unknown/removed ids. */
EMEL_API const char *emel_ggml_type_name(uint32_t type);

/* Case-insensitive inverse of emel_ggml_type_name. EMEL_GGUF_BAD_TENSOR_TYPE if none. */
EMEL_API emel_status emel_ggml_type_from_name(const char *name, uint32_t *type, emel_error *err);

/* Elements per block and bytes per block, from ggml's type traits.
 * EMEL_GGUF_BAD_TENSOR_TYPE for unknown ids. Either out pointer may be NULL. */
EMEL_API emel_status emel_ggml_type_info(uint32_t type, uint32_t *block_size, uint32_t *type_size, emel_error *err);

/* Byte size of a tensor, validated as the index validates tensor infos:
 * 1..4 dims (EMEL_GGUF_BAD_DIMS, also for a dim above INT64_MAX), known type,
 * ne[0] a multiple of the block size (EMEL_GGUF_BAD_BLOCK_SIZE), element count
 * and byte size below INT64_MAX (EMEL_GGUF_SIZE_OVERFLOW). Dims of 0 are
 * allowed (ggml allows empty tensors). */
EMEL_API emel_status emel_ggml_tensor_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t *bytes, emel_error *err);

typedef struct emel_gguf emel_gguf;

/* 0 in any field means the default. Initialize with EMEL_GGUF_CONFIG_INIT. */
typedef struct emel_gguf_config {
  size_t struct_size;                /* sizeof(emel_gguf_config): EMEL_GGUF_CONFIG_INIT sets it */
  const emel_platform_ops *platform; /* NULL: emel_platform_default() */
  uint32_t max_tensors;              /* per model; default 1 << 20 */
  uint32_t max_kv;                   /* per file; default 1 << 20 */
  uint32_t max_files;                /* split files; default 1024 */
  uint32_t max_nesting;              /* array-in-array depth; default 8 */
} emel_gguf_config;

#define EMEL_GGUF_CONFIG_INIT(...) EMEL_STRUCT_INIT_(emel_gguf_config, __VA_ARGS__)

/* One tensor. `offset` is absolute within file `file_index`. `ne` holds the
 * dims in ggml order (ne[0] is the row length); unused dims are 1. */
typedef struct emel_gguf_tensor {
  const char *name; /* NUL-terminated */
  size_t name_len;
  uint32_t type; /* emel_ggml_type */
  uint32_t n_dims;
  uint64_t ne[4];
  uint32_t file_index;
  uint64_t offset;
  uint64_t size; /* bytes, from ggml's block and type sizes */
} emel_gguf_tensor;

/* A view of an array value. Fields marked internal are for the accessors. */
typedef struct emel_gguf_array {
  uint32_t elem_type; /* emel_gguf_type */
  uint64_t count;
  const uint8_t *base_;   /* internal: the file's header bytes */
  uint64_t pos_;          /* internal: position of element 0 */
  const uint64_t *index_; /* internal: string element positions, or NULL */
} emel_gguf_array;

/* A decoded value. Scalar strings (metadata values, not array elements) are
 * NUL-terminated; array string elements are not: always use `len`. */
typedef struct emel_gguf_value {
  uint32_t type; /* emel_gguf_type */
  union {
    uint8_t u8;
    int8_t i8;
    uint16_t u16;
    int16_t i16;
    uint32_t u32;
    int32_t i32;
    float f32;
    bool b;
    uint64_t u64;
    int64_t i64;
    double f64;
    struct {
      const char *ptr;
      uint64_t len;
    } str;
    emel_gguf_array arr;
  } v;
} emel_gguf_value;

/* Indexes `path`, and when it is the first file of a split set
 * (NAME-00001-of-0000N.gguf with split.count N > 1) every sibling, named as
 * llama.cpp names them. On failure *out is NULL, nothing is leaked and `err`
 * (may be NULL) holds the status, the failing call's errno, the part at fault
 * (err->file: 1-based, 0 when no one part is; emel_gguf_split_path gives its
 * path) and, for split checks, the check that failed (err->detail). A path
 * that is not a regular file (FIFO, directory, device, socket) is refused with
 * EMEL_NOT_A_REGULAR_FILE before anything is read, without blocking. A
 * config it cannot take is EMEL_STRUCT_SIZE_UNKNOWN (err->detail
 * "emel_gguf_config.struct_size") or, for its platform table,
 * EMEL_PLATFORM_OPS_UNPAIRED ("emel_gguf_config.platform").
 *
 * A split set is one model only when every part carries split.no (its place,
 * from 0), the first part's split.count and split.tensors.count (the keys
 * llama.cpp's gguf-split writes into every part), and the parts' tensors add
 * up to split.tensors.count; otherwise EMEL_GGUF_SPLIT_INVALID. */
EMEL_API emel_status emel_gguf_open(emel_gguf **out, const char *path, const emel_gguf_config *cfg, emel_error *err);

/* The path of part `no` (1-based, as emel_error.file counts) of the split set
 * whose first part is `first_path` (PREFIX-00001-of-NNNNN.gguf: the others are
 * PREFIX-%05u-of-NNNNN.gguf). Part 1 is `first_path` itself, whatever its name.
 * `count` (may be NULL) gets the parts the name declares, 1 when it is not a
 * first part's name. EMEL_INVALID_ARGUMENT: a NULL pointer, `no` 0 or above
 * that count; EMEL_INVALID_PATH: the path does not fit in `size` bytes. */
EMEL_API emel_status emel_gguf_split_path(char *buf, size_t size, const char *first_path, uint32_t no, uint32_t *count, emel_error *err);

/* Frees everything. NULL is allowed. */
EMEL_API void emel_gguf_close(emel_gguf *g);

/* Of the first file. */
EMEL_API uint32_t emel_gguf_version(const emel_gguf *g);
EMEL_API uint64_t emel_gguf_alignment(const emel_gguf *g);

/* Files: 1 for a single model, N for a split set, in split order. The paths
 * are the ones the tensors' file_index refers to. Out-of-range indices give
 * NULL / 0. */
EMEL_API uint32_t emel_gguf_file_count(const emel_gguf *g);
EMEL_API const char *emel_gguf_file_path(const emel_gguf *g, uint32_t file_index);
EMEL_API uint64_t emel_gguf_file_size(const emel_gguf *g, uint32_t file_index);
/* What file i was when it was indexed (size, device, inode, modification
 * time): emel_model_open hands it to the loaders, which refuse a file that
 * changed since with EMEL_FILE_CHANGED. NULL when out of range. */
EMEL_API const emel_file_identity *emel_gguf_file_identity(const emel_gguf *g, uint32_t file_index);
/* Where file i's tensor data starts (header end padded to its alignment). A
 * file with no tensors may end before it. */
EMEL_API uint64_t emel_gguf_data_offset(const emel_gguf *g, uint32_t file_index);

/* Metadata of the first file (for a split set it holds the model's keys), in
 * file order. Lookup by key is a hash probe. */
EMEL_API size_t emel_gguf_kv_count(const emel_gguf *g);
EMEL_API emel_status emel_gguf_kv_find(const emel_gguf *g, const char *key, size_t *index, emel_error *err);
EMEL_API const char *emel_gguf_kv_key(const emel_gguf *g, size_t index); /* NULL if out of range */
EMEL_API uint32_t emel_gguf_kv_type(const emel_gguf *g, size_t index);  /* EMEL_GGUF_TYPE_COUNT if out of range */
EMEL_API emel_status emel_gguf_kv_value(const emel_gguf *g, size_t index, emel_gguf_value *out, emel_error *err);

/* Element i of an array, O(1) for fixed-size and top-level string arrays.
 * EMEL_INVALID_ARGUMENT when i >= count. */
EMEL_API emel_status emel_gguf_array_get(const emel_gguf_array *a, uint64_t i, emel_gguf_value *out, emel_error *err);

/* Typed lookups by key. EMEL_GGUF_KEY_NOT_FOUND, or EMEL_GGUF_KEY_TYPE_MISMATCH
 * when the value cannot be represented: get_uint takes any unsigned or
 * non-negative signed integer, get_int any integer that fits int64, get_float
 * FLOAT32/FLOAT64. */
EMEL_API emel_status emel_gguf_get_uint(const emel_gguf *g, const char *key, uint64_t *out, emel_error *err);
EMEL_API emel_status emel_gguf_get_int(const emel_gguf *g, const char *key, int64_t *out, emel_error *err);
EMEL_API emel_status emel_gguf_get_float(const emel_gguf *g, const char *key, double *out, emel_error *err);
EMEL_API emel_status emel_gguf_get_bool(const emel_gguf *g, const char *key, bool *out, emel_error *err);
EMEL_API emel_status emel_gguf_get_string(const emel_gguf *g, const char *key, const char **str, size_t *len, emel_error *err);
EMEL_API emel_status emel_gguf_get_array(const emel_gguf *g, const char *key, emel_gguf_array *out, emel_error *err);

/* general.architecture / general.name when present as strings, else NULL. */
EMEL_API const char *emel_gguf_architecture(const emel_gguf *g);
EMEL_API const char *emel_gguf_name(const emel_gguf *g);

/* Tensors of all files, in file order then info order. Lookup by name is a
 * hash probe (EMEL_TENSOR_UNKNOWN when absent). */
EMEL_API size_t emel_gguf_tensor_count(const emel_gguf *g);
EMEL_API const emel_gguf_tensor *emel_gguf_tensor_at(const emel_gguf *g, size_t index); /* NULL if out of range */
EMEL_API emel_status emel_gguf_tensor_find(const emel_gguf *g, const char *name, size_t *index, emel_error *err);

#ifdef __cplusplus
}
#endif

#endif

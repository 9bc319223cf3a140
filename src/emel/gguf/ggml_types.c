/* ggml's type table (block elements, block bytes) and GGUF value type names.
 *
 * Sizes are ggml's sizeof(block_*) from ggml-common.h; names are gguf-py's so
 * dumps compare directly with gguf-py manifests. Removed ids stay zero rows,
 * which every lookup treats as unknown. */
#include "emel/gguf.h"
#include "emel/report.h"

#include <string.h>

typedef struct ggml_type_row {
  const char *name;
  uint32_t block_size;
  uint32_t type_size;
} ggml_type_row;

static const ggml_type_row ggml_types[EMEL_GGML_TYPE_COUNT] = {
  [EMEL_GGML_TYPE_F32] = {"F32", 1, 4},
  [EMEL_GGML_TYPE_F16] = {"F16", 1, 2},
  [EMEL_GGML_TYPE_Q4_0] = {"Q4_0", 32, 18},
  [EMEL_GGML_TYPE_Q4_1] = {"Q4_1", 32, 20},
  [EMEL_GGML_TYPE_Q5_0] = {"Q5_0", 32, 22},
  [EMEL_GGML_TYPE_Q5_1] = {"Q5_1", 32, 24},
  [EMEL_GGML_TYPE_Q8_0] = {"Q8_0", 32, 34},
  [EMEL_GGML_TYPE_Q8_1] = {"Q8_1", 32, 36},
  [EMEL_GGML_TYPE_Q2_K] = {"Q2_K", 256, 84},
  [EMEL_GGML_TYPE_Q3_K] = {"Q3_K", 256, 110},
  [EMEL_GGML_TYPE_Q4_K] = {"Q4_K", 256, 144},
  [EMEL_GGML_TYPE_Q5_K] = {"Q5_K", 256, 176},
  [EMEL_GGML_TYPE_Q6_K] = {"Q6_K", 256, 210},
  [EMEL_GGML_TYPE_Q8_K] = {"Q8_K", 256, 292},
  [EMEL_GGML_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66},
  [EMEL_GGML_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74},
  [EMEL_GGML_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98},
  [EMEL_GGML_TYPE_IQ1_S] = {"IQ1_S", 256, 50},
  [EMEL_GGML_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18},
  [EMEL_GGML_TYPE_IQ3_S] = {"IQ3_S", 256, 110},
  [EMEL_GGML_TYPE_IQ2_S] = {"IQ2_S", 256, 82},
  [EMEL_GGML_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136},
  [EMEL_GGML_TYPE_I8] = {"I8", 1, 1},
  [EMEL_GGML_TYPE_I16] = {"I16", 1, 2},
  [EMEL_GGML_TYPE_I32] = {"I32", 1, 4},
  [EMEL_GGML_TYPE_I64] = {"I64", 1, 8},
  [EMEL_GGML_TYPE_F64] = {"F64", 1, 8},
  [EMEL_GGML_TYPE_IQ1_M] = {"IQ1_M", 256, 56},
  [EMEL_GGML_TYPE_BF16] = {"BF16", 1, 2},
  [EMEL_GGML_TYPE_TQ1_0] = {"TQ1_0", 256, 54},
  [EMEL_GGML_TYPE_TQ2_0] = {"TQ2_0", 256, 66},
  [EMEL_GGML_TYPE_MXFP4] = {"MXFP4", 32, 17},
  [EMEL_GGML_TYPE_NVFP4] = {"NVFP4", 64, 36},
  [EMEL_GGML_TYPE_Q1_0] = {"Q1_0", 128, 18},
};

static const char *const gguf_type_names[EMEL_GGUF_TYPE_COUNT] = {
  "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
  "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64",
};

const char *emel_gguf_type_name(uint32_t type) {
  return type < EMEL_GGUF_TYPE_COUNT ? gguf_type_names[type] : "UNKNOWN";
}

static const ggml_type_row *ggml_row(uint32_t type) {
  if (type >= EMEL_GGML_TYPE_COUNT || ggml_types[type].block_size == 0) return NULL;
  return &ggml_types[type];
}

const char *emel_ggml_type_name(uint32_t type) {
  const ggml_type_row *row = ggml_row(type);
  return row ? row->name : NULL;
}

static int ascii_lower(int c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }

static int same_name(const char *a, const char *b) {
  for (; *a && *b; a++, b++)
    if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b)) return 0;
  return *a == *b;
}

static emel_status unreported_ggml_type_from_name(const char *name, uint32_t *type) {
  if (!name || !type) return EMEL_INVALID_ARGUMENT;
  for (uint32_t t = 0; t < EMEL_GGML_TYPE_COUNT; t++) {
    if (ggml_types[t].name && same_name(ggml_types[t].name, name)) {
      *type = t;
      return EMEL_OK;
    }
  }
  return EMEL_GGUF_BAD_TENSOR_TYPE;
}

emel_status emel_ggml_type_from_name(const char *name, uint32_t *type, emel_error *err) {
  return emel_report(err, unreported_ggml_type_from_name(name, type));
}

static emel_status unreported_ggml_type_info(uint32_t type, uint32_t *block_size, uint32_t *type_size) {
  const ggml_type_row *row = ggml_row(type);
  if (!row) return EMEL_GGUF_BAD_TENSOR_TYPE;
  if (block_size) *block_size = row->block_size;
  if (type_size) *type_size = row->type_size;
  return EMEL_OK;
}

emel_status emel_ggml_type_info(uint32_t type, uint32_t *block_size, uint32_t *type_size, emel_error *err) {
  return emel_report(err, unreported_ggml_type_info(type, block_size, type_size));
}

/* ggml's rule: the running products ne0, ne0*ne1, ... must stay below
 * INT64_MAX / next dim, so the element count is representable. */
static int elements_overflow(const uint64_t ne[4]) {
  for (int j = 0; j < 4; j++)
    if (ne[j] == 0) return 0; /* an empty tensor is trivially representable */
  uint64_t prod = ne[0];
  for (int j = 1; j < 4; j++) {
    if ((uint64_t)INT64_MAX / ne[j] <= prod) return 1;
    prod *= ne[j];
  }
  return 0;
}

static emel_status unreported_ggml_tensor_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t *bytes) {
  if (!bytes || (n_dims && !ne)) return EMEL_INVALID_ARGUMENT;
  if (n_dims < 1 || n_dims > 4) return EMEL_GGUF_BAD_DIMS;
  uint64_t d[4] = {1, 1, 1, 1};
  for (uint32_t j = 0; j < n_dims; j++) {
    if (ne[j] > (uint64_t)INT64_MAX) return EMEL_GGUF_BAD_DIMS; /* negative as ggml's int64 */
    d[j] = ne[j];
  }
  if (elements_overflow(d)) return EMEL_GGUF_SIZE_OVERFLOW;
  const ggml_type_row *row = ggml_row(type);
  if (!row) return EMEL_GGUF_BAD_TENSOR_TYPE;
  if (d[0] % row->block_size != 0) return EMEL_GGUF_BAD_BLOCK_SIZE;
  uint64_t blocks = d[0] * d[1] * d[2] * d[3] / row->block_size;
  if (blocks > (uint64_t)INT64_MAX / row->type_size) return EMEL_GGUF_SIZE_OVERFLOW;
  *bytes = blocks * row->type_size;
  return EMEL_OK;
}

emel_status emel_ggml_tensor_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t *bytes, emel_error *err) {
  return emel_report(err, unreported_ggml_tensor_nbytes(type, n_dims, ne, bytes));
}

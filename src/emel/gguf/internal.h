/* GGUF index internals shared by reader.c, parse.c and gguf.c. */
#ifndef EMEL_GGUF_INTERNAL_H
#define EMEL_GGUF_INTERNAL_H

#include "emel/gguf.h"
#include "emel/util/name_table.h"

/* Loads a file's leading bytes on demand: [0, len) is always resident, and it
 * grows (by pread, in >= 64 KiB steps) only as far as parsing asks, capped at
 * the file size, so a lying header cannot make it allocate past the file. */
typedef struct gguf_reader {
  const emel_platform_ops *ops;
  int fd;
  uint64_t file_size;
  uint8_t *buf;
  size_t cap;
  size_t len;
  int os_errno; /* of the failing pread */
} gguf_reader;

emel_status emel_gguf_reader_ensure(gguf_reader *r, uint64_t pos, uint64_t n);
void emel_gguf_reader_release(gguf_reader *r);

typedef struct gguf_kv {
  const char *key; /* NUL-terminated, in the file's pool */
  size_t key_len;
  uint32_t type;
  uint32_t elem_type; /* arrays */
  uint64_t count;     /* arrays: elements; scalars: 1 */
  uint64_t pos;       /* value bytes (arrays: element 0) in the header copy */
  const char *str;    /* scalar strings: NUL-terminated copy */
  uint64_t str_len;
  const uint64_t *index; /* top-level string arrays: element positions */
} gguf_kv;

typedef struct gguf_limits {
  uint32_t max_tensors;
  uint32_t max_kv;
  uint32_t max_nesting;
} gguf_limits;

/* Everything indexed from one file. All memory comes from `ops`. */
typedef struct gguf_file {
  char *path;
  size_t path_size;
  uint64_t size;
  emel_file_identity identity; /* when it was indexed */
  uint32_t version;
  uint64_t alignment;
  uint64_t header_end;
  uint64_t data_offset;
  gguf_reader rd; /* rd.buf holds bytes [0, header_end) */
  size_t n_kv;
  gguf_kv *kv;
  emel_name_table kv_names; /* keys -> kv index, seeded with `seed` */
  uint64_t seed;            /* set by the caller before parsing: the index's */
  size_t n_tensors;
  emel_gguf_tensor *tensors;
  char *pool;
  size_t pool_size;
  size_t pool_len;
  uint64_t *str_index;
  size_t str_index_n;
  size_t str_index_len;
} gguf_file;

/* Indexes the open descriptor `fd` into `f` (zeroed by the caller, path and seed set).
 * On failure `f` may hold partial allocations: emel_gguf_file_release frees them. */
emel_status emel_gguf_file_parse(gguf_file *f, const emel_platform_ops *ops, int fd, uint32_t file_index,
                            const gguf_limits *lim, int *os_errno);
void emel_gguf_file_release(gguf_file *f, const emel_platform_ops *ops);

/* Slots examined building the index's name tables (every file's keys and the
 * tensor names): what hostile names would make quadratic. For tests. */
uint64_t emel_gguf_name_probes(const emel_gguf *g);
/* The tensor-name table (shared by the model's tensor table) and whether its
 * seed came from the OS. */
const emel_name_table *emel_gguf_tensor_names(const emel_gguf *g);
int emel_gguf_seeded_by_os(const emel_gguf *g);

/* Little-endian decoding (host-independent). */
static inline uint16_t gguf_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t gguf_le32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t gguf_le64(const uint8_t *p) {
  return (uint64_t)gguf_le32(p) | ((uint64_t)gguf_le32(p + 4) << 32);
}

/* Bytes of a fixed-size value type, 0 for STRING/ARRAY/unknown. */
uint32_t emel_gguf_value_size(uint32_t type);

/* Decodes the value at `pos` of `base` (validated). For strings, `ptr` points
 * into `base` (not NUL-terminated). Arrays get no string index. */
void emel_gguf_decode(const uint8_t *base, uint64_t pos, uint32_t type, emel_gguf_value *out);
/* Bytes a validated value of `type` at `pos` occupies. */
uint64_t emel_gguf_value_span(const uint8_t *base, uint64_t pos, uint32_t type);

#endif

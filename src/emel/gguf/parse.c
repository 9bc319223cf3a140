/* Parses one GGUF file in two passes over the same walker.
 *
 * Pass 1 loads the header bytes on demand and validates every count, length,
 * type and shape against the bytes the file holds, counting what the tables
 * will need. Only then are tables allocated, and pass 2 (over bytes already in
 * memory, so it cannot fail on I/O) fills them. A hostile header therefore
 * fails before anything is allocated for its claims. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

enum {
  MIN_KV_BYTES = 8 + 4 + 1,             /* key length, type, u8 (an empty key is reported by name) */
  MIN_TENSOR_BYTES = 8 + 4 + 8 + 4 + 8, /* name length, n_dims, 1 dim, type, offset */
  HEADER_BYTES = 4 + 4 + 8 + 8
};

static const char KEY_ALIGNMENT[] = "general.alignment";

typedef struct parser {
  gguf_file *f;
  gguf_reader *r;
  const gguf_limits *lim;
  uint64_t pos;
  int build;
  uint32_t file_index;
  size_t pool_need;
  size_t index_need;
} parser;

static emel_status need(parser *p, uint64_t n) { return emel_gguf_reader_ensure(p->r, p->pos, n); }
static uint64_t remaining(const parser *p) { return p->r->file_size - p->pos; }
static const uint8_t *at(const parser *p, uint64_t pos) { return p->r->buf + pos; }

static emel_status rd_u32(parser *p, uint32_t *v) {
  emel_status st = need(p, 4);
  if (st != EMEL_OK) return st;
  *v = gguf_le32(at(p, p->pos));
  p->pos += 4;
  return EMEL_OK;
}

static emel_status rd_u64(parser *p, uint64_t *v) {
  emel_status st = need(p, 8);
  if (st != EMEL_OK) return st;
  *v = gguf_le64(at(p, p->pos));
  p->pos += 8;
  return EMEL_OK;
}

static emel_status skip(parser *p, uint64_t n) {
  emel_status st = need(p, n);
  if (st == EMEL_OK) p->pos += n;
  return st;
}

/* A length-prefixed string: *start = its first byte. */
static emel_status rd_string(parser *p, uint64_t *start, uint64_t *len) {
  emel_status st = rd_u64(p, len);
  if (st != EMEL_OK) return st;
  if (*len > remaining(p)) return EMEL_GGUF_STRING_TOO_LONG;
  *start = p->pos;
  return skip(p, *len);
}

/* Copies bytes into the pool, NUL-terminated (pass 2 only; sized by pass 1). */
static const char *pool_copy(parser *p, uint64_t start, uint64_t len) {
  if (!p->build) {
    p->pool_need += (size_t)len + 1;
    return NULL;
  }
  char *s = p->f->pool + p->f->pool_len;
  if (len) memcpy(s, at(p, start), (size_t)len);
  s[len] = '\0';
  p->f->pool_len += (size_t)len + 1;
  return s;
}

static uint64_t min_elem_bytes(uint32_t type) {
  if (type == EMEL_GGUF_TYPE_STRING) return 8;
  if (type == EMEL_GGUF_TYPE_ARRAY) return 4 + 8;
  return emel_gguf_value_size(type);
}

static emel_status skip_value(parser *p, uint32_t type, uint32_t depth);

/* Array body after its type tag; `index` (or NULL) receives string positions. */
static emel_status parse_array(parser *p, uint32_t depth, gguf_kv *e, uint64_t *index) {
  emel_status st = rd_u32(p, &e->elem_type);
  if (st == EMEL_OK) st = rd_u64(p, &e->count);
  if (st != EMEL_OK) return st;
  if (e->elem_type >= EMEL_GGUF_TYPE_COUNT) return EMEL_GGUF_BAD_KEY_TYPE;
  if (e->count > remaining(p) / min_elem_bytes(e->elem_type)) return EMEL_GGUF_ARRAY_TOO_LONG;
  if (e->elem_type == EMEL_GGUF_TYPE_ARRAY && depth + 1 > p->lim->max_nesting)
    return EMEL_GGUF_NESTING_TOO_DEEP;
  e->pos = p->pos;
  uint32_t size = emel_gguf_value_size(e->elem_type);
  if (size) return skip(p, e->count * size);
  if (e->elem_type != EMEL_GGUF_TYPE_STRING) index = NULL; /* only string arrays are indexed */
  for (uint64_t i = 0; i < e->count; i++) {
    if (index) index[i] = p->pos;
    st = skip_value(p, e->elem_type, depth + 1);
    if (st != EMEL_OK) return st;
  }
  return EMEL_OK;
}

static emel_status skip_value(parser *p, uint32_t type, uint32_t depth) {
  if (type == EMEL_GGUF_TYPE_STRING) {
    uint64_t start, len;
    return rd_string(p, &start, &len);
  }
  if (type == EMEL_GGUF_TYPE_ARRAY) {
    gguf_kv nested = {0};
    return parse_array(p, depth, &nested, NULL);
  }
  return skip(p, emel_gguf_value_size(type));
}

static emel_status check_alignment(parser *p, const gguf_kv *e, uint64_t key_start, uint64_t key_len) {
  if (key_len != sizeof KEY_ALIGNMENT - 1 || memcmp(at(p, key_start), KEY_ALIGNMENT, (size_t)key_len) != 0)
    return EMEL_OK;
  if (e->type != EMEL_GGUF_TYPE_UINT32) return EMEL_GGUF_BAD_ALIGNMENT; /* ggml requires u32 */
  uint32_t a = gguf_le32(at(p, e->pos));
  if (a == 0 || (a & (a - 1)) != 0) return EMEL_GGUF_BAD_ALIGNMENT;
  p->f->alignment = a;
  return EMEL_OK;
}

static emel_status kv_insert(parser *p, size_t i) {
  return emel_name_table_insert(&p->f->kv_names, (uint32_t)i, NULL) == EMEL_NAME_INSERTED ? EMEL_OK
                                                                                         : EMEL_GGUF_DUPLICATE_KEY;
}

static emel_status parse_value(parser *p, gguf_kv *e) {
  e->count = 1;
  e->pos = p->pos;
  if (e->type == EMEL_GGUF_TYPE_ARRAY) {
    /* str_index is NULL when the file has no string array elements: no arithmetic on it then */
    uint64_t *index = p->build && p->f->str_index ? p->f->str_index + p->f->str_index_len : NULL;
    emel_status st = parse_array(p, 1, e, index);
    if (st != EMEL_OK || e->elem_type != EMEL_GGUF_TYPE_STRING) return st;
    if (p->build) {
      e->index = index;
      p->f->str_index_len += (size_t)e->count;
    } else {
      p->index_need += (size_t)e->count;
    }
    return EMEL_OK;
  }
  if (e->type == EMEL_GGUF_TYPE_STRING) {
    uint64_t start;
    emel_status st = rd_string(p, &start, &e->str_len);
    if (st == EMEL_OK) e->str = pool_copy(p, start, e->str_len);
    return st;
  }
  return skip(p, emel_gguf_value_size(e->type));
}

static emel_status parse_kv(parser *p, size_t i) {
  uint64_t key_start, key_len;
  gguf_kv e = {0};
  emel_status st = rd_string(p, &key_start, &key_len);
  if (st != EMEL_OK) return st;
  if (key_len == 0) return EMEL_GGUF_EMPTY_KEY;
  st = rd_u32(p, &e.type);
  if (st != EMEL_OK) return st;
  if (e.type >= EMEL_GGUF_TYPE_COUNT) return EMEL_GGUF_BAD_KEY_TYPE;
  st = parse_value(p, &e);
  if (st == EMEL_OK) st = check_alignment(p, &e, key_start, key_len);
  if (st != EMEL_OK) return st;
  e.key = pool_copy(p, key_start, key_len);
  e.key_len = (size_t)key_len;
  if (!p->build) return EMEL_OK;
  p->f->kv[i] = e;
  return kv_insert(p, i);
}

static emel_status parse_tensor(parser *p, size_t i) {
  uint64_t name_start, name_len, ne[4] = {1, 1, 1, 1}, offset, bytes;
  uint32_t n_dims, type;
  emel_status st = rd_string(p, &name_start, &name_len);
  if (st == EMEL_OK) st = rd_u32(p, &n_dims);
  if (st != EMEL_OK) return st;
  if (n_dims < 1 || n_dims > 4) return EMEL_GGUF_BAD_DIMS;
  for (uint32_t j = 0; j < n_dims && st == EMEL_OK; j++) st = rd_u64(p, &ne[j]);
  if (st == EMEL_OK) st = rd_u32(p, &type);
  if (st == EMEL_OK) st = rd_u64(p, &offset);
  if (st == EMEL_OK) st = emel_ggml_tensor_nbytes(type, n_dims, ne, &bytes);
  if (st != EMEL_OK) return st;
  if (offset % p->f->alignment != 0) return EMEL_GGUF_MISALIGNED_OFFSET;
  const char *name = pool_copy(p, name_start, name_len);
  if (!p->build) return EMEL_OK;
  emel_gguf_tensor *t = &p->f->tensors[i];
  t->name = name;
  t->name_len = (size_t)name_len;
  t->type = type;
  t->n_dims = n_dims;
  memcpy(t->ne, ne, sizeof ne);
  t->file_index = p->file_index;
  t->offset = offset; /* relative until the data offset is known */
  t->size = bytes;
  return EMEL_OK;
}

static emel_status parse_version(uint32_t v) {
  if (v == 2 || v == 3) return EMEL_OK;
  /* a byte-swapped small version has its low half zero (ggml's test) */
  if (v != 0 && (v & 0xFFFFu) == 0) return EMEL_GGUF_BIG_ENDIAN;
  return EMEL_GGUF_BAD_VERSION;
}

static emel_status parse_header(parser *p) {
  gguf_file *f = p->f;
  emel_status st = need(p, 4);
  if (st != EMEL_OK) return st;
  if (memcmp(at(p, 0), "GGUF", 4) != 0) return EMEL_GGUF_BAD_MAGIC;
  p->pos = 4;
  uint64_t n_tensors, n_kv;
  st = rd_u32(p, &f->version);
  if (st == EMEL_OK) st = parse_version(f->version);
  if (st == EMEL_OK) st = rd_u64(p, &n_tensors);
  if (st == EMEL_OK) st = rd_u64(p, &n_kv);
  if (st != EMEL_OK) return st;
  uint64_t rest = remaining(p);
  /* A count the file cannot hold is a corrupt file; one it can hold but the
   * configured cap refuses is a limit of this index: two different fixes. */
  if (n_kv > rest / MIN_KV_BYTES || n_tensors > rest / MIN_TENSOR_BYTES) return EMEL_GGUF_COUNT_TOO_LARGE;
  if (n_kv * MIN_KV_BYTES + n_tensors * MIN_TENSOR_BYTES > rest) return EMEL_GGUF_COUNT_TOO_LARGE;
  if (n_kv > p->lim->max_kv || n_tensors > p->lim->max_tensors) return EMEL_GGUF_LIMIT_EXCEEDED;
  f->n_kv = (size_t)n_kv;
  f->n_tensors = (size_t)n_tensors;
  return EMEL_OK;
}

static emel_status parse_all(parser *p) {
  p->pos = 0;
  p->f->alignment = 32;
  emel_status st = parse_header(p);
  for (size_t i = 0; st == EMEL_OK && i < p->f->n_kv; i++) st = parse_kv(p, i);
  for (size_t i = 0; st == EMEL_OK && i < p->f->n_tensors; i++) st = parse_tensor(p, i);
  if (st == EMEL_OK) p->f->header_end = p->pos;
  return st;
}

static void *alloc_n(const emel_platform_ops *ops, size_t n, size_t elem, int *failed) {
  if (n == 0 || *failed) return NULL;
  void *ptr = ops->alloc(ops->user, n * elem, 16);
  if (!ptr) *failed = 1;
  else memset(ptr, 0, n * elem);
  return ptr;
}

/* The owner is the kv array, not the file: the array of files moves when a
 * split set's siblings are added, the kv array does not. */
static const char *kv_key_of(const void *owner, uint32_t index, size_t *len) {
  const gguf_kv *e = &((const gguf_kv *)owner)[index];
  *len = e->key_len;
  return e->key;
}

static emel_status alloc_tables(gguf_file *f, const emel_platform_ops *ops, const parser *p) {
  int failed = 0;
  f->kv = alloc_n(ops, f->n_kv, sizeof *f->kv, &failed);
  emel_status st = emel_name_table_init(&f->kv_names, ops, (uint32_t)f->n_kv, f->seed, kv_key_of, f->kv);
  if (st == EMEL_INVALID_ARGUMENT) return EMEL_GGUF_LIMIT_EXCEEDED; /* more keys than a table can index */
  if (st != EMEL_OK) failed = 1;
  f->pool_size = p->pool_need;
  f->pool = alloc_n(ops, f->pool_size, 1, &failed);
  f->str_index_n = p->index_need;
  f->str_index = alloc_n(ops, f->str_index_n, sizeof *f->str_index, &failed);
  f->tensors = alloc_n(ops, f->n_tensors, sizeof *f->tensors, &failed);
  return failed ? EMEL_OUT_OF_MEMORY : EMEL_OK;
}

typedef struct span {
  uint64_t begin, end;
} span;

static int span_cmp(const void *a, const void *b) {
  const span *x = a, *y = b;
  return (x->begin > y->begin) - (x->begin < y->begin);
}

static emel_status check_overlaps(gguf_file *f, const emel_platform_ops *ops) {
  if (f->n_tensors < 2) return EMEL_OK;
  span *s = ops->alloc(ops->user, f->n_tensors * sizeof *s, 16);
  if (!s) return EMEL_OUT_OF_MEMORY;
  for (size_t i = 0; i < f->n_tensors; i++)
    s[i] = (span){f->tensors[i].offset, f->tensors[i].offset + f->tensors[i].size};
  qsort(s, f->n_tensors, sizeof *s, span_cmp);
  emel_status st = EMEL_OK;
  uint64_t end = 0;
  for (size_t i = 0; i < f->n_tensors && st == EMEL_OK; i++) {
    if (s[i].begin == s[i].end) continue; /* empty tensors occupy nothing */
    if (s[i].begin < end) st = EMEL_GGUF_OVERLAPPING_SPANS;
    if (s[i].end > end) end = s[i].end;
  }
  ops->free(ops->user, s, f->n_tensors * sizeof *s);
  return st;
}

/* Places tensors at data_offset + offset and checks each lies in the file. */
static emel_status check_spans(gguf_file *f, const emel_platform_ops *ops) {
  uint64_t pad = (f->alignment - f->header_end % f->alignment) % f->alignment;
  f->data_offset = f->header_end + pad;
  if (f->n_tensors == 0) return EMEL_OK; /* such files need not be padded */
  if (f->data_offset > f->size) return EMEL_GGUF_TRUNCATED;
  uint64_t room = f->size - f->data_offset;
  for (size_t i = 0; i < f->n_tensors; i++) {
    emel_gguf_tensor *t = &f->tensors[i];
    if (t->offset > room || t->size > room - t->offset) return EMEL_GGUF_SPAN_OUTSIDE_FILE;
    t->offset += f->data_offset;
  }
  return check_overlaps(f, ops);
}

emel_status emel_gguf_file_parse(gguf_file *f, const emel_platform_ops *ops, int fd, uint32_t file_index,
                            const gguf_limits *lim, int *os_errno) {
  /* The identity, not just the size: the loaders compare it when they open
   * the file, so a file changed after it was indexed is refused by name. */
  f->identity = (emel_file_identity){0}; /* an op that leaves `type` alone reports a regular file */
  int rc = ops->file_identity(ops->user, fd, &f->identity);
  if (rc < 0) {
    *os_errno = -rc;
    return EMEL_STAT_FAILED;
  }
  /* Before the first read: a FIFO or terminal could block it, /dev/zero never ends. */
  if (f->identity.type != EMEL_FILE_REGULAR) return EMEL_NOT_A_REGULAR_FILE;
  f->size = f->identity.size;
  f->rd = (gguf_reader){.ops = ops, .fd = fd, .file_size = f->size};
  parser p = {.f = f, .r = &f->rd, .lim = lim, .file_index = file_index};
  emel_status st = parse_all(&p);
  if (st == EMEL_OK) st = alloc_tables(f, ops, &p);
  if (st == EMEL_OK) {
    p.build = 1;
    st = parse_all(&p);
  }
  if (st == EMEL_OK) st = check_spans(f, ops);
  if (st == EMEL_READ_FAILED) *os_errno = f->rd.os_errno;
  return st;
}

static void free_n(const emel_platform_ops *ops, void *ptr, size_t n, size_t elem) {
  if (ptr) ops->free(ops->user, ptr, n * elem);
}

void emel_gguf_file_release(gguf_file *f, const emel_platform_ops *ops) {
  emel_gguf_reader_release(&f->rd);
  free_n(ops, f->kv, f->n_kv, sizeof *f->kv);
  emel_name_table_release(&f->kv_names, ops);
  free_n(ops, f->pool, f->pool_size, 1);
  free_n(ops, f->str_index, f->str_index_n, sizeof *f->str_index);
  free_n(ops, f->tensors, f->n_tensors, sizeof *f->tensors);
  free_n(ops, f->path, f->path_size, 1);
  memset(f, 0, sizeof *f);
}

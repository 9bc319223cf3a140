/* GGUF index: opening (single files and llama.cpp split sets) and lookups. */
#include "internal.h"
#include "emel/report.h"

#include "emel/io.h"
#include "emel/util/struct_size.h"

#include <stdio.h>
#include <string.h>

struct emel_gguf {
  emel_platform_ops ops;
  gguf_file *files;
  uint32_t n_files;
  uint32_t files_cap;
  emel_gguf_tensor *tensors; /* files[0].tensors for one file, else owned */
  size_t n_tensors;
  emel_name_seed seed;         /* of every name table of this index */
  emel_name_table tensor_names; /* tensor name -> index into `tensors` */
};

static const char SPLIT_NO[] = "split.no";
static const char SPLIT_COUNT[] = "split.count";
static const char SPLIT_TENSORS[] = "split.tensors.count";

/* Static reasons for split-set failures (emel_error.detail): one per check. */
static const char WHY_COUNT_TYPE[] = "split.count is not a non-negative integer";
static const char WHY_FIRST_NAME[] = "the first part is not named PREFIX-00001-of-NNNNN.gguf with NNNNN its split.count";
static const char WHY_NOT_FIRST[] = "split.no says this is not the first part (open PREFIX-00001-of-NNNNN.gguf)";
static const char WHY_MAX_FILES[] = "split.count is larger than emel_gguf_config.max_files";
static const char WHY_NO_MISSING[] = "split.no is missing or not a non-negative integer";
static const char WHY_NO_WRONG[] = "split.no is not this part's place in the set (numbered from 0)";
static const char WHY_COUNT_MISSING[] = "split.count is missing or not a non-negative integer";
static const char WHY_COUNT_DIFFERS[] = "split.count differs from the first part's";
static const char WHY_TENSORS_DIFFERS[] = "split.tensors.count differs from the first part's (a part of another model?)";
static const char WHY_TENSORS_TYPE[] = "split.tensors.count is not a non-negative integer";
static const char WHY_TENSORS_SUM[] = "the parts' tensor counts do not add up to split.tensors.count";
static const char WHY_DUPLICATE_ACROSS[] = "the name is also a tensor of an earlier part";

/* A failure while opening: its code and errno plus the part (1-based) and the
 * check, so a caller can name the file at fault. */
static emel_status fail_at(emel_error *e, emel_status st, uint32_t file_index, const char *detail) {
  e->code = st;
  e->file = file_index + 1;
  e->detail = detail;
  return st;
}

/* --- lookups within one file --------------------------------------------- */

static int file_find(const gguf_file *f, const char *key, size_t *index) {
  uint32_t i;
  if (!key || !emel_name_table_find(&f->kv_names, key, strlen(key), &i)) return 0;
  *index = i;
  return 1;
}

static void file_value(const gguf_file *f, size_t i, emel_gguf_value *out) {
  const gguf_kv *e = &f->kv[i];
  if (e->type == EMEL_GGUF_TYPE_ARRAY) {
    memset(out, 0, sizeof *out);
    out->type = e->type;
    out->v.arr = (emel_gguf_array){e->elem_type, e->count, f->rd.buf, e->pos, e->index};
  } else {
    emel_gguf_decode(f->rd.buf, e->pos, e->type, out);
    if (e->type == EMEL_GGUF_TYPE_STRING) out->v.str.ptr = e->str;
  }
}

static int value_uint(const emel_gguf_value *v, uint64_t *out) {
  switch (v->type) {
  case EMEL_GGUF_TYPE_UINT8: *out = v->v.u8; return 1;
  case EMEL_GGUF_TYPE_UINT16: *out = v->v.u16; return 1;
  case EMEL_GGUF_TYPE_UINT32: *out = v->v.u32; return 1;
  case EMEL_GGUF_TYPE_UINT64: *out = v->v.u64; return 1;
  case EMEL_GGUF_TYPE_INT8: *out = (uint64_t)v->v.i8; return v->v.i8 >= 0;
  case EMEL_GGUF_TYPE_INT16: *out = (uint64_t)v->v.i16; return v->v.i16 >= 0;
  case EMEL_GGUF_TYPE_INT32: *out = (uint64_t)v->v.i32; return v->v.i32 >= 0;
  case EMEL_GGUF_TYPE_INT64: *out = (uint64_t)v->v.i64; return v->v.i64 >= 0;
  default: return 0;
  }
}

static emel_status file_get_uint(const gguf_file *f, const char *key, uint64_t *out) {
  size_t i;
  emel_gguf_value v;
  if (!file_find(f, key, &i)) return EMEL_GGUF_KEY_NOT_FOUND;
  file_value(f, i, &v);
  return value_uint(&v, out) ? EMEL_OK : EMEL_GGUF_KEY_TYPE_MISMATCH;
}

/* --- opening --------------------------------------------------------------- */

static emel_status copy_path(gguf_file *f, const emel_platform_ops *ops, const char *path) {
  size_t n = strlen(path) + 1;
  f->path = ops->alloc(ops->user, n, 16);
  if (!f->path) return EMEL_OUT_OF_MEMORY;
  f->path_size = n;
  memcpy(f->path, path, n);
  return EMEL_OK;
}

/* Indexes one more file. A failure is charged to that file (its part number),
 * except running out of memory, which is no fault of the file. */
static emel_status open_file(emel_gguf *g, const char *path, const gguf_limits *lim, emel_error *e) {
  uint32_t index = g->n_files;
  gguf_file *f = &g->files[index];
  memset(f, 0, sizeof *f);
  g->n_files++; /* counted now so a failure releases its partial tables */
  f->seed = g->seed.value;
  emel_status st = copy_path(f, &g->ops, path);
  if (st != EMEL_OK) return st;
  int fd = g->ops.open(g->ops.user, path, EMEL_OPEN_READ);
  if (fd < 0) {
    e->os_errno = -fd;
    return fail_at(e, EMEL_OPEN_FAILED, index, NULL);
  }
  uint32_t tensor = 0;
  st = emel_gguf_file_parse(f, &g->ops, fd, index, lim, &e->os_errno, &tensor);
  g->ops.close(g->ops.user, fd); /* a read-only close failure loses nothing */
  if (st == EMEL_OK || st == EMEL_OUT_OF_MEMORY) return st;
  /* The model's tensor index: the earlier parts' tensors come first. */
  if (tensor) {
    size_t before = 0;
    for (uint32_t i = 0; i < index; i++) before += g->files[i].n_tensors;
    e->tensor = (uint32_t)(before + tensor);
  }
  return fail_at(e, st, index, NULL);
}

/* llama.cpp's naming: PREFIX-%05d-of-%05d.gguf, parts numbered from 1. True
 * when `path` is a first part's name; gives the prefix length and the count
 * the name declares (its digits exactly as %05u writes them). */
static int split_first_name(const char *path, size_t *prefix_len, uint32_t *count) {
  static const char head[] = "-00001-of-", ext[] = ".gguf";
  size_t len = strlen(path), e = sizeof ext - 1, h = sizeof head - 1;
  if (len < h + 5 + e || strcmp(path + len - e, ext) != 0) return 0;
  size_t digits_end = len - e, d = digits_end;
  while (d > 0 && path[d - 1] >= '0' && path[d - 1] <= '9') d--;
  size_t n_digits = digits_end - d;
  if (n_digits < 5 || n_digits > 9 || d < h || memcmp(path + d - h, head, h) != 0) return 0;
  uint32_t v = 0;
  for (size_t i = d; i < digits_end; i++) v = v * 10 + (uint32_t)(path[i] - '0');
  if (v == 0 || (n_digits > 5 && path[d] == '0')) return 0; /* not what %05u writes */
  *prefix_len = d - h;
  *count = v;
  return 1;
}

static int split_format(char *buf, size_t size, const char *first, size_t prefix_len, uint32_t no, uint32_t count) {
  int n = snprintf(buf, size, "%.*s-%05u-of-%05u.gguf", (int)prefix_len, first, (unsigned)no, (unsigned)count);
  return n > 0 && (size_t)n < size;
}

static emel_status unreported_gguf_split_path(char *buf, size_t size, const char *first_path, uint32_t no, uint32_t *count) {
  size_t prefix_len;
  uint32_t n = 1;
  if (!buf || !first_path) return EMEL_INVALID_ARGUMENT;
  int split = split_first_name(first_path, &prefix_len, &n);
  if (count) *count = n;
  if (no == 0 || no > n) return EMEL_INVALID_ARGUMENT;
  if (no == 1) {
    size_t len = strlen(first_path);
    if (len >= size) return EMEL_INVALID_PATH;
    memcpy(buf, first_path, len + 1);
    return EMEL_OK;
  }
  return split && split_format(buf, size, first_path, prefix_len, no, n) ? EMEL_OK : EMEL_INVALID_PATH;
}

emel_status emel_gguf_split_path(char *buf, size_t size, const char *first_path, uint32_t no, uint32_t *count, emel_error *err) {
  return emel_report(err, unreported_gguf_split_path(buf, size, first_path, no, count));
}

/* split.no and split.count of part `index` (0-based), split.tensors.count
 * against the first part's: the keys llama.cpp's gguf-split writes into every
 * part, so a part that disagrees is not of this set (or not of this model). */
static emel_status check_split_keys(const emel_gguf *g, uint32_t index, uint64_t count, emel_error *e) {
  const gguf_file *f = &g->files[index];
  uint64_t v_no, v_count, first_tensors = 0, tensors = 0;
  if (file_get_uint(f, SPLIT_NO, &v_no) != EMEL_OK) return fail_at(e, EMEL_GGUF_SPLIT_INVALID, index, WHY_NO_MISSING);
  if (v_no != index) return fail_at(e, EMEL_GGUF_SPLIT_INVALID, index, WHY_NO_WRONG);
  if (file_get_uint(f, SPLIT_COUNT, &v_count) != EMEL_OK)
    return fail_at(e, EMEL_GGUF_SPLIT_INVALID, index, WHY_COUNT_MISSING);
  if (v_count != count) return fail_at(e, EMEL_GGUF_SPLIT_INVALID, index, WHY_COUNT_DIFFERS);
  emel_status first_st = file_get_uint(&g->files[0], SPLIT_TENSORS, &first_tensors);
  emel_status st = file_get_uint(f, SPLIT_TENSORS, &tensors);
  if (st == EMEL_GGUF_KEY_TYPE_MISMATCH) return fail_at(e, EMEL_GGUF_SPLIT_INVALID, index, WHY_TENSORS_TYPE);
  /* present in one part and absent from another is a difference too */
  if (st != first_st || tensors != first_tensors)
    return fail_at(e, EMEL_GGUF_SPLIT_INVALID, index, WHY_TENSORS_DIFFERS);
  return EMEL_OK;
}

static emel_status open_siblings(emel_gguf *g, const char *first, uint32_t count, const gguf_limits *lim,
                                 emel_error *e) {
  size_t prefix_len;
  uint32_t name_count;
  uint64_t no;
  if (file_get_uint(&g->files[0], SPLIT_NO, &no) == EMEL_OK && no != 0) /* a user naming a later part */
    return fail_at(e, EMEL_GGUF_SPLIT_INVALID, 0, WHY_NOT_FIRST);
  if (!split_first_name(first, &prefix_len, &name_count) || name_count != count)
    return fail_at(e, EMEL_GGUF_SPLIT_INVALID, 0, WHY_FIRST_NAME);
  emel_status st = check_split_keys(g, 0, count, e);
  size_t size = prefix_len + 32;
  char *path = st == EMEL_OK ? g->ops.alloc(g->ops.user, size, 16) : NULL;
  if (st == EMEL_OK && !path) st = EMEL_OUT_OF_MEMORY;
  for (uint32_t i = 1; st == EMEL_OK && i < count; i++) {
    split_format(path, size, first, prefix_len, i + 1, count); /* fits: size has room for 2 x 10 digits */
    st = open_file(g, path, lim, e);
    if (st == EMEL_OK) st = check_split_keys(g, i, count, e);
  }
  if (path) g->ops.free(g->ops.user, path, size);
  return st;
}

static emel_status alloc_files(emel_gguf *g, uint32_t n) {
  gguf_file *files = g->ops.alloc(g->ops.user, n * sizeof *files, 16);
  if (!files) return EMEL_OUT_OF_MEMORY;
  memset(files, 0, n * sizeof *files);
  if (g->files) {
    memcpy(files, g->files, g->n_files * sizeof *files);
    g->ops.free(g->ops.user, g->files, g->files_cap * sizeof *files);
  }
  g->files = files;
  g->files_cap = n;
  return EMEL_OK;
}

/* Opens the rest of a split set when the first file declares one. */
static emel_status open_split(emel_gguf *g, const char *path, uint32_t max_files, const gguf_limits *lim,
                              emel_error *e) {
  uint64_t count = 1;
  emel_status st = file_get_uint(&g->files[0], SPLIT_COUNT, &count);
  if (st == EMEL_GGUF_KEY_NOT_FOUND || (st == EMEL_OK && count <= 1)) return EMEL_OK;
  if (st != EMEL_OK) return fail_at(e, EMEL_GGUF_SPLIT_INVALID, 0, WHY_COUNT_TYPE);
  if (count > max_files) return fail_at(e, EMEL_GGUF_LIMIT_EXCEEDED, 0, WHY_MAX_FILES);
  st = alloc_files(g, (uint32_t)count);
  if (st == EMEL_OK) st = open_siblings(g, path, (uint32_t)count, lim, e);
  return st;
}

/* Every part agreed on split.tensors.count; their own tensors must add up to
 * it (a part missing tensors, or a part of another model with as many parts).
 * No one part is at fault, so the error names none. */
static emel_status check_split_total(const emel_gguf *g, emel_error *e) {
  uint64_t expected, total = 0;
  if (g->n_files < 2) return EMEL_OK;
  emel_status st = file_get_uint(&g->files[0], SPLIT_TENSORS, &expected);
  if (st == EMEL_GGUF_KEY_NOT_FOUND) return EMEL_OK;
  if (st != EMEL_OK) return fail_at(e, EMEL_GGUF_SPLIT_INVALID, 0, WHY_TENSORS_TYPE);
  for (uint32_t i = 0; i < g->n_files; i++) total += g->files[i].n_tensors;
  if (total == expected) return EMEL_OK;
  st = fail_at(e, EMEL_GGUF_SPLIT_INVALID, 0, WHY_TENSORS_SUM);
  e->file = 0;
  return st;
}

/* --- the model-wide tensor table ------------------------------------------ */

/* The owner is the tensor array (stable once gathered). */
static const char *tensor_name_of(const void *owner, uint32_t index, size_t *len) {
  const emel_gguf_tensor *t = &((const emel_gguf_tensor *)owner)[index];
  *len = t->name_len;
  return t->name;
}

static emel_status name_insert(emel_gguf *g, size_t i, emel_error *e) {
  uint32_t first;
  const emel_name_insert_result r = emel_name_table_insert(&g->tensor_names, (uint32_t)i, &first);
  if (r == EMEL_NAME_INSERTED) return EMEL_OK;
  if (r == EMEL_NAME_FULL) return EMEL_GGUF_LIMIT_EXCEEDED; /* cannot happen: the table holds n_tensors */
  const emel_gguf_tensor *t = &g->tensors[i], *o = &g->tensors[first];
  e->tensor = (uint32_t)i + 1; /* the second of the two names */
  return fail_at(e, EMEL_GGUF_DUPLICATE_NAME, t->file_index,
                 o->file_index != t->file_index ? WHY_DUPLICATE_ACROSS : NULL);
}

/* Moves every file's tensors into one table (no copy for a single file). */
static emel_status gather_tensors(emel_gguf *g) {
  size_t total = 0;
  for (uint32_t i = 0; i < g->n_files; i++) total += g->files[i].n_tensors;
  if (g->n_files == 1) {
    g->tensors = g->files[0].tensors;
  } else if (total) {
    g->tensors = g->ops.alloc(g->ops.user, total * sizeof *g->tensors, 16);
    if (!g->tensors) return EMEL_OUT_OF_MEMORY;
    size_t k = 0;
    for (uint32_t i = 0; i < g->n_files; i++) {
      gguf_file *f = &g->files[i];
      if (f->n_tensors) memcpy(g->tensors + k, f->tensors, f->n_tensors * sizeof *f->tensors);
      k += f->n_tensors;
      if (f->tensors) g->ops.free(g->ops.user, f->tensors, f->n_tensors * sizeof *f->tensors);
      f->tensors = NULL; /* the names stay in the file's pool */
    }
  }
  g->n_tensors = total;
  return EMEL_OK;
}

static emel_status index_tensors(emel_gguf *g, uint32_t max_tensors, emel_error *e) {
  size_t total = 0;
  for (uint32_t i = 0; i < g->n_files; i++) total += g->files[i].n_tensors;
  if (total > max_tensors) return EMEL_GGUF_LIMIT_EXCEEDED; /* the cap is per model, splits together */
  emel_status st = gather_tensors(g);
  if (st != EMEL_OK || g->n_tensors == 0) return st;
  /* n_tensors <= max_tensors, a uint32 */
  st = emel_name_table_init(&g->tensor_names, &g->ops, (uint32_t)g->n_tensors, g->seed.value, tensor_name_of,
                            g->tensors);
  if (st == EMEL_INVALID_ARGUMENT) return EMEL_GGUF_LIMIT_EXCEEDED;
  for (size_t i = 0; st == EMEL_OK && i < g->n_tensors; i++) st = name_insert(g, i, e);
  return st;
}

static uint32_t or_default(uint32_t v, uint32_t def) { return v ? v : def; }

static emel_status open_all(emel_gguf *g, const char *path, const emel_gguf_config *cfg, emel_error *e) {
  gguf_limits lim = {or_default(cfg ? cfg->max_tensors : 0, 1u << 20), or_default(cfg ? cfg->max_kv : 0, 1u << 20),
                     or_default(cfg ? cfg->max_nesting : 0, 8)};
  uint32_t max_files = or_default(cfg ? cfg->max_files : 0, 1024);
  emel_status st = alloc_files(g, 1);
  if (st == EMEL_OK) st = open_file(g, path, &lim, e);
  if (st == EMEL_OK) st = open_split(g, path, max_files, &lim, e);
  if (st == EMEL_OK) st = check_split_total(g, e);
  if (st == EMEL_OK) st = index_tensors(g, lim.max_tensors, e);
  return st;
}

emel_status emel_gguf_open(emel_gguf **out, const char *path, const emel_gguf_config *cfg, emel_error *err) {
  emel_platform_ops ops;
  emel_error e = {.code = EMEL_OK};
  if (err) *err = e;
  if (!out || !path) e.code = EMEL_INVALID_ARGUMENT;
  /* The io boundary's limit, checked here too so an over-long path gets the
   * same named error whether it is indexed or loaded (not OPEN_FAILED). */
  else if (path[0] == '\0' || strlen(path) > EMEL_IO_MAX_PATH) e.code = EMEL_INVALID_PATH;
  if (out) *out = NULL;
  emel_gguf_config c;
  if (e.code == EMEL_OK && emel_struct_take(&c, sizeof c, cfg) != EMEL_OK) {
    e.code = EMEL_STRUCT_SIZE_UNKNOWN;
    e.detail = "emel_gguf_config.struct_size";
  }
  if (e.code == EMEL_OK && (e.code = emel_platform_resolve(&ops, c.platform, NULL)) != EMEL_OK)
    e.detail = "emel_gguf_config.platform";
  if (e.code != EMEL_OK) {
    if (err) *err = e;
    return e.code;
  }
  emel_gguf *g = ops.alloc(ops.user, sizeof *g, 16);
  if (!g) {
    e.code = EMEL_OUT_OF_MEMORY;
    if (err) *err = e;
    return e.code;
  }
  memset(g, 0, sizeof *g);
  g->ops = ops;
  g->seed = emel_name_seed_get(&g->ops); /* one per index: its files' keys and its tensor names */
  emel_status st = open_all(g, path, &c, &e);
  if (st != EMEL_OK) {
    emel_gguf_close(g);
    e.code = st;
    if (err) *err = e;
    return st;
  }
  *out = g;
  return EMEL_OK;
}

void emel_gguf_close(emel_gguf *g) {
  if (!g) return;
  emel_platform_ops ops = g->ops;
  emel_name_table_release(&g->tensor_names, &ops);
  if (g->n_files > 1 && g->tensors) ops.free(ops.user, g->tensors, g->n_tensors * sizeof *g->tensors);
  for (uint32_t i = 0; i < g->n_files; i++) emel_gguf_file_release(&g->files[i], &ops);
  if (g->files) ops.free(ops.user, g->files, g->files_cap * sizeof *g->files);
  ops.free(ops.user, g, sizeof *g);
}

/* --- accessors ------------------------------------------------------------- */

uint32_t emel_gguf_version(const emel_gguf *g) { return g ? g->files[0].version : 0; }
uint64_t emel_gguf_alignment(const emel_gguf *g) { return g ? g->files[0].alignment : 0; }
uint32_t emel_gguf_file_count(const emel_gguf *g) { return g ? g->n_files : 0; }

const char *emel_gguf_file_path(const emel_gguf *g, uint32_t i) {
  return g && i < g->n_files ? g->files[i].path : NULL;
}

const emel_file_identity *emel_gguf_file_identity(const emel_gguf *g, uint32_t i) {
  return g && i < g->n_files ? &g->files[i].identity : NULL;
}

uint64_t emel_gguf_file_size(const emel_gguf *g, uint32_t i) {
  return g && i < g->n_files ? g->files[i].size : 0;
}

uint64_t emel_gguf_data_offset(const emel_gguf *g, uint32_t i) {
  return g && i < g->n_files ? g->files[i].data_offset : 0;
}

size_t emel_gguf_kv_count(const emel_gguf *g) { return g ? g->files[0].n_kv : 0; }

static emel_status unreported_gguf_kv_find(const emel_gguf *g, const char *key, size_t *index) {
  if (!g || !key || !index) return EMEL_INVALID_ARGUMENT;
  return file_find(&g->files[0], key, index) ? EMEL_OK : EMEL_GGUF_KEY_NOT_FOUND;
}

emel_status emel_gguf_kv_find(const emel_gguf *g, const char *key, size_t *index, emel_error *err) {
  return emel_report(err, unreported_gguf_kv_find(g, key, index));
}

const char *emel_gguf_kv_key(const emel_gguf *g, size_t i) {
  return g && i < g->files[0].n_kv ? g->files[0].kv[i].key : NULL;
}

uint32_t emel_gguf_kv_type(const emel_gguf *g, size_t i) {
  return g && i < g->files[0].n_kv ? g->files[0].kv[i].type : EMEL_GGUF_TYPE_COUNT;
}

static emel_status unreported_gguf_kv_value(const emel_gguf *g, size_t i, emel_gguf_value *out) {
  if (!g || !out || i >= g->files[0].n_kv) return EMEL_INVALID_ARGUMENT;
  file_value(&g->files[0], i, out);
  return EMEL_OK;
}

emel_status emel_gguf_kv_value(const emel_gguf *g, size_t i, emel_gguf_value *out, emel_error *err) {
  return emel_report(err, unreported_gguf_kv_value(g, i, out));
}

static emel_status lookup(const emel_gguf *g, const char *key, emel_gguf_value *v) {
  size_t i;
  emel_status st = emel_gguf_kv_find(g, key, &i, NULL);
  if (st == EMEL_OK) file_value(&g->files[0], i, v);
  return st;
}

static emel_status unreported_gguf_get_uint(const emel_gguf *g, const char *key, uint64_t *out) {
  emel_gguf_value v;
  emel_status st = out ? lookup(g, key, &v) : EMEL_INVALID_ARGUMENT;
  if (st != EMEL_OK) return st;
  return value_uint(&v, out) ? EMEL_OK : EMEL_GGUF_KEY_TYPE_MISMATCH;
}

emel_status emel_gguf_get_uint(const emel_gguf *g, const char *key, uint64_t *out, emel_error *err) {
  return emel_report(err, unreported_gguf_get_uint(g, key, out));
}

static emel_status unreported_gguf_get_int(const emel_gguf *g, const char *key, int64_t *out) {
  emel_gguf_value v;
  uint64_t u;
  emel_status st = out ? lookup(g, key, &v) : EMEL_INVALID_ARGUMENT;
  if (st != EMEL_OK) return st;
  switch (v.type) {
  case EMEL_GGUF_TYPE_INT8: *out = v.v.i8; return EMEL_OK;
  case EMEL_GGUF_TYPE_INT16: *out = v.v.i16; return EMEL_OK;
  case EMEL_GGUF_TYPE_INT32: *out = v.v.i32; return EMEL_OK;
  case EMEL_GGUF_TYPE_INT64: *out = v.v.i64; return EMEL_OK;
  default: break;
  }
  if (!value_uint(&v, &u) || u > (uint64_t)INT64_MAX) return EMEL_GGUF_KEY_TYPE_MISMATCH;
  *out = (int64_t)u;
  return EMEL_OK;
}

emel_status emel_gguf_get_int(const emel_gguf *g, const char *key, int64_t *out, emel_error *err) {
  return emel_report(err, unreported_gguf_get_int(g, key, out));
}

static emel_status unreported_gguf_get_float(const emel_gguf *g, const char *key, double *out) {
  emel_gguf_value v;
  emel_status st = out ? lookup(g, key, &v) : EMEL_INVALID_ARGUMENT;
  if (st != EMEL_OK) return st;
  if (v.type == EMEL_GGUF_TYPE_FLOAT32) *out = v.v.f32;
  else if (v.type == EMEL_GGUF_TYPE_FLOAT64) *out = v.v.f64;
  else return EMEL_GGUF_KEY_TYPE_MISMATCH;
  return EMEL_OK;
}

emel_status emel_gguf_get_float(const emel_gguf *g, const char *key, double *out, emel_error *err) {
  return emel_report(err, unreported_gguf_get_float(g, key, out));
}

static emel_status unreported_gguf_get_bool(const emel_gguf *g, const char *key, bool *out) {
  emel_gguf_value v;
  emel_status st = out ? lookup(g, key, &v) : EMEL_INVALID_ARGUMENT;
  if (st != EMEL_OK) return st;
  if (v.type != EMEL_GGUF_TYPE_BOOL) return EMEL_GGUF_KEY_TYPE_MISMATCH;
  *out = v.v.b;
  return EMEL_OK;
}

emel_status emel_gguf_get_bool(const emel_gguf *g, const char *key, bool *out, emel_error *err) {
  return emel_report(err, unreported_gguf_get_bool(g, key, out));
}

static emel_status unreported_gguf_get_string(const emel_gguf *g, const char *key, const char **str, size_t *len) {
  emel_gguf_value v;
  emel_status st = str ? lookup(g, key, &v) : EMEL_INVALID_ARGUMENT;
  if (st != EMEL_OK) return st;
  if (v.type != EMEL_GGUF_TYPE_STRING) return EMEL_GGUF_KEY_TYPE_MISMATCH;
  *str = v.v.str.ptr;
  if (len) *len = (size_t)v.v.str.len;
  return EMEL_OK;
}

emel_status emel_gguf_get_string(const emel_gguf *g, const char *key, const char **str, size_t *len, emel_error *err) {
  return emel_report(err, unreported_gguf_get_string(g, key, str, len));
}

static emel_status unreported_gguf_get_array(const emel_gguf *g, const char *key, emel_gguf_array *out) {
  emel_gguf_value v;
  emel_status st = out ? lookup(g, key, &v) : EMEL_INVALID_ARGUMENT;
  if (st != EMEL_OK) return st;
  if (v.type != EMEL_GGUF_TYPE_ARRAY) return EMEL_GGUF_KEY_TYPE_MISMATCH;
  *out = v.v.arr;
  return EMEL_OK;
}

emel_status emel_gguf_get_array(const emel_gguf *g, const char *key, emel_gguf_array *out, emel_error *err) {
  return emel_report(err, unreported_gguf_get_array(g, key, out));
}

static const char *string_or_null(const emel_gguf *g, const char *key) {
  const char *s = NULL;
  return emel_gguf_get_string(g, key, &s, NULL, NULL) == EMEL_OK ? s : NULL;
}

const char *emel_gguf_architecture(const emel_gguf *g) { return string_or_null(g, "general.architecture"); }
const char *emel_gguf_name(const emel_gguf *g) { return string_or_null(g, "general.name"); }

size_t emel_gguf_tensor_count(const emel_gguf *g) { return g ? g->n_tensors : 0; }

const emel_gguf_tensor *emel_gguf_tensor_at(const emel_gguf *g, size_t i) {
  return g && i < g->n_tensors ? &g->tensors[i] : NULL;
}

static emel_status unreported_gguf_tensor_find(const emel_gguf *g, const char *name, size_t *index) {
  if (!g || !name || !index) return EMEL_INVALID_ARGUMENT;
  uint32_t i;
  if (!emel_name_table_find(&g->tensor_names, name, strlen(name), &i)) return EMEL_TENSOR_UNKNOWN;
  *index = i;
  return EMEL_OK;
}

emel_status emel_gguf_tensor_find(const emel_gguf *g, const char *name, size_t *index, emel_error *err) {
  return emel_report(err, unreported_gguf_tensor_find(g, name, index));
}

/* --- internals for the model and tests ------------------------------------- */

uint64_t emel_gguf_name_probes(const emel_gguf *g) {
  uint64_t n = g->tensor_names.probes;
  for (uint32_t i = 0; i < g->n_files; i++) n += g->files[i].kv_names.probes;
  return n;
}

const emel_name_table *emel_gguf_tensor_names(const emel_gguf *g) { return &g->tensor_names; }

int emel_gguf_seeded_by_os(const emel_gguf *g) { return g->seed.from_os; }

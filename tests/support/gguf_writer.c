/* Deterministic GGUF writer (see gguf_writer.h). */
#include "gguf_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
  uint8_t *p;
  size_t len, cap;
} buf;

typedef struct gw_tensor_info {
  char *name;
  uint32_t type, n_dims;
  uint64_t ne[8];
  uint64_t offset;
  uint64_t bytes;
  int automatic;
} gw_tensor_info;

struct gw {
  uint32_t version, alignment;
  uint64_t seed;
  char magic[4];
  int version_swapped;
  int has_n_kv, has_n_tensors, has_data_size;
  uint64_t n_kv_override, n_tensors_override, data_size, truncate_at;
  buf kv;
  uint64_t n_kv;
  gw_tensor_info *t;
  size_t n_t, cap_t;
};

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fprintf(stderr, "gguf_writer: out of memory\n");
    abort();
  }
  return q;
}

static void buf_put(buf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->p = xrealloc(b->p, b->cap);
  }
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void buf_le(buf *b, uint64_t v, int n) {
  uint8_t tmp[8];
  for (int i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8 * i));
  buf_put(b, tmp, (size_t)n);
}

static void buf_str(buf *b, const char *s) {
  size_t n = strlen(s);
  buf_le(b, n, 8);
  buf_put(b, s, n);
}

gw *gw_new(void) {
  gw *w = xrealloc(NULL, sizeof *w);
  memset(w, 0, sizeof *w);
  w->version = 3;
  w->alignment = 32;
  memcpy(w->magic, "GGUF", 4);
  w->truncate_at = UINT64_MAX;
  return w;
}

void gw_free(gw *w) {
  if (!w) return;
  for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
  free(w->t);
  free(w->kv.p);
  free(w);
}

void gw_set_version(gw *w, uint32_t version) { w->version = version; }
void gw_set_seed(gw *w, uint64_t seed) { w->seed = seed; }
void gw_override_magic(gw *w, const char magic[4]) { memcpy(w->magic, magic, 4); }
void gw_big_endian_version(gw *w) { w->version_swapped = 1; }
void gw_truncate_at(gw *w, uint64_t file_bytes) { w->truncate_at = file_bytes; }

void gw_override_n_kv(gw *w, uint64_t n) {
  w->has_n_kv = 1;
  w->n_kv_override = n;
}

void gw_override_n_tensors(gw *w, uint64_t n) {
  w->has_n_tensors = 1;
  w->n_tensors_override = n;
}

void gw_override_data_size(gw *w, uint64_t bytes) {
  w->has_data_size = 1;
  w->data_size = bytes;
}

void gw_set_alignment(gw *w, uint32_t alignment) {
  gw_kv_u32(w, "general.alignment", alignment);
  if (alignment && (alignment & (alignment - 1)) == 0) w->alignment = alignment;
}

/* --- metadata ---------------------------------------------------------------- */

void gw_kv_begin(gw *w, const char *key, uint32_t type) {
  buf_str(&w->kv, key);
  buf_le(&w->kv, type, 4);
  w->n_kv++;
}

void gw_put_u8(gw *w, uint8_t v) { buf_le(&w->kv, v, 1); }
void gw_put_u32(gw *w, uint32_t v) { buf_le(&w->kv, v, 4); }
void gw_put_u64(gw *w, uint64_t v) { buf_le(&w->kv, v, 8); }
void gw_put_str(gw *w, const char *s) { buf_str(&w->kv, s); }
void gw_put_bytes(gw *w, const void *p, size_t n) { buf_put(&w->kv, p, n); }

void gw_put_array_header(gw *w, uint32_t elem_type, uint64_t count) {
  gw_put_u32(w, elem_type);
  gw_put_u64(w, count);
}

static void kv_scalar(gw *w, const char *key, uint32_t type, uint64_t bits, int n) {
  gw_kv_begin(w, key, type);
  buf_le(&w->kv, bits, n);
}

void gw_kv_u8(gw *w, const char *k, uint8_t v) { kv_scalar(w, k, EMEL_GGUF_TYPE_UINT8, v, 1); }
void gw_kv_i8(gw *w, const char *k, int8_t v) { kv_scalar(w, k, EMEL_GGUF_TYPE_INT8, (uint8_t)v, 1); }
void gw_kv_u16(gw *w, const char *k, uint16_t v) { kv_scalar(w, k, EMEL_GGUF_TYPE_UINT16, v, 2); }
void gw_kv_i16(gw *w, const char *k, int16_t v) { kv_scalar(w, k, EMEL_GGUF_TYPE_INT16, (uint16_t)v, 2); }
void gw_kv_u32(gw *w, const char *k, uint32_t v) { kv_scalar(w, k, EMEL_GGUF_TYPE_UINT32, v, 4); }
void gw_kv_i32(gw *w, const char *k, int32_t v) { kv_scalar(w, k, EMEL_GGUF_TYPE_INT32, (uint32_t)v, 4); }
void gw_kv_bool(gw *w, const char *k, int v) { kv_scalar(w, k, EMEL_GGUF_TYPE_BOOL, v != 0, 1); }
void gw_kv_u64(gw *w, const char *k, uint64_t v) { kv_scalar(w, k, EMEL_GGUF_TYPE_UINT64, v, 8); }
void gw_kv_i64(gw *w, const char *k, int64_t v) { kv_scalar(w, k, EMEL_GGUF_TYPE_INT64, (uint64_t)v, 8); }

void gw_kv_f32(gw *w, const char *k, float v) {
  uint32_t bits;
  memcpy(&bits, &v, 4);
  kv_scalar(w, k, EMEL_GGUF_TYPE_FLOAT32, bits, 4);
}

void gw_kv_f64(gw *w, const char *k, double v) {
  uint64_t bits;
  memcpy(&bits, &v, 8);
  kv_scalar(w, k, EMEL_GGUF_TYPE_FLOAT64, bits, 8);
}

void gw_kv_str(gw *w, const char *k, const char *v) {
  gw_kv_begin(w, k, EMEL_GGUF_TYPE_STRING);
  buf_str(&w->kv, v);
}

static uint64_t host_elem(const void *elems, uint64_t i, int size) {
  const uint8_t *p = (const uint8_t *)elems + i * (uint64_t)size;
  switch (size) {
  case 1: return p[0];
  case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
  case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
  default: { uint64_t v; memcpy(&v, p, 8); return v; }
  }
}

void gw_kv_array(gw *w, const char *key, uint32_t elem_type, uint64_t count, const void *elems) {
  static const int sizes[EMEL_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  gw_kv_begin(w, key, EMEL_GGUF_TYPE_ARRAY);
  gw_put_array_header(w, elem_type, count);
  for (uint64_t i = 0; i < count; i++) {
    if (elem_type == EMEL_GGUF_TYPE_STRING) buf_str(&w->kv, ((const char *const *)elems)[i]);
    else if (elem_type < EMEL_GGUF_TYPE_COUNT && sizes[elem_type])
      buf_le(&w->kv, host_elem(elems, i, sizes[elem_type]), sizes[elem_type]);
  }
}

/* --- tensors ----------------------------------------------------------------- */

static gw_tensor_info *add_tensor(gw *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne) {
  if (w->n_t == w->cap_t) {
    w->cap_t = w->cap_t ? w->cap_t * 2 : 16;
    w->t = xrealloc(w->t, w->cap_t * sizeof *w->t);
  }
  gw_tensor_info *t = &w->t[w->n_t++];
  memset(t, 0, sizeof *t);
  size_t n = strlen(name) + 1;
  t->name = xrealloc(NULL, n);
  memcpy(t->name, name, n);
  t->type = type;
  t->n_dims = n_dims;
  for (uint32_t j = 0; j < n_dims && j < 8; j++) t->ne[j] = ne[j];
  return t;
}

int gw_tensor(gw *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne) {
  uint64_t bytes;
  if (emel_ggml_tensor_nbytes(type, n_dims, ne, &bytes, NULL) != EMEL_OK) return -1;
  gw_tensor_info *t = add_tensor(w, name, type, n_dims, ne);
  t->bytes = bytes;
  t->automatic = 1;
  return 0;
}

void gw_tensor_raw(gw *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t offset,
                   uint64_t data_bytes) {
  gw_tensor_info *t = add_tensor(w, name, type, n_dims, ne);
  t->offset = offset;
  t->bytes = data_bytes;
}

size_t gw_tensor_count(const gw *w) { return w->n_t; }

uint64_t gw_tensor_bytes(const gw *w) {
  uint64_t total = 0;
  for (size_t i = 0; i < w->n_t; i++) total += w->t[i].bytes;
  return total;
}

/* --- deterministic content ----------------------------------------------------- */

static uint64_t mix64(uint64_t x) { /* splitmix64 finalizer */
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static uint64_t name_hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
  return h;
}

/* Byte k of a tensor is byte k%8 of mix64(key + k/8): any range can be
 * recomputed on its own, so readers can verify what they loaded. */
void gw_fill(uint64_t seed, const char *name, uint64_t off, void *out, size_t n) {
  uint64_t key = mix64(seed ^ name_hash(name));
  uint8_t *p = out;
  size_t i = 0;
  while (i < n) {
    uint64_t pos = off + i, word = mix64(key + pos / 8);
    for (unsigned b = (unsigned)(pos % 8); b < 8 && i < n; b++, i++) p[i] = (uint8_t)(word >> (8 * b));
  }
}

/* --- output -------------------------------------------------------------------- */

typedef struct out {
  FILE *f;
  uint64_t pos, limit;
  int failed;
} out;

static void out_put(out *o, const void *p, uint64_t n) {
  if (o->pos >= o->limit) return;
  uint64_t take = n < o->limit - o->pos ? n : o->limit - o->pos;
  if (take && fwrite(p, 1, (size_t)take, o->f) != take) o->failed = 1;
  o->pos += take;
}

static void out_le(out *o, uint64_t v, int n) {
  uint8_t tmp[8];
  for (int i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8 * i));
  out_put(o, tmp, (uint64_t)n);
}

static void out_zeros(out *o, uint64_t n) {
  static const uint8_t zeros[4096];
  while (n) {
    uint64_t k = n < sizeof zeros ? n : sizeof zeros;
    out_put(o, zeros, k);
    n -= k;
  }
}

static uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

typedef struct part {
  size_t first, count; /* tensor range */
  const buf *extra;    /* split keys */
  uint64_t extra_n;
  int main_kv;         /* include every KV */
} part;

static void write_header(gw *w, out *o, const part *pt) {
  uint64_t n_kv = (pt->main_kv ? w->n_kv : 0) + pt->extra_n;
  uint32_t v = w->version;
  if (w->version_swapped) v = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
  out_put(o, w->magic, 4);
  out_le(o, v, 4);
  out_le(o, w->has_n_tensors ? w->n_tensors_override : pt->count, 8);
  out_le(o, w->has_n_kv ? w->n_kv_override : n_kv, 8);
  if (pt->main_kv) out_put(o, w->kv.p, w->kv.len);
  if (pt->extra) out_put(o, pt->extra->p, pt->extra->len);
}

/* Assigns offsets to automatic tensors; returns the data section's end. */
static uint64_t layout(gw *w, const part *pt) {
  uint64_t cur = 0;
  for (size_t i = pt->first; i < pt->first + pt->count; i++) {
    gw_tensor_info *t = &w->t[i];
    if (t->automatic) t->offset = pad_to(cur, w->alignment);
    if (t->offset + t->bytes > cur) cur = t->offset + t->bytes;
  }
  return pad_to(cur, w->alignment);
}

static void write_infos(gw *w, out *o, const part *pt) {
  for (size_t i = pt->first; i < pt->first + pt->count; i++) {
    const gw_tensor_info *t = &w->t[i];
    uint64_t n = strlen(t->name);
    out_le(o, n, 8);
    out_put(o, t->name, n);
    out_le(o, t->n_dims, 4);
    for (uint32_t j = 0; j < t->n_dims && j < 8; j++) out_le(o, t->ne[j], 8);
    out_le(o, t->type, 4);
    out_le(o, t->offset, 8);
  }
}

static int by_offset(const void *a, const void *b) {
  const gw_tensor_info *x = *(const gw_tensor_info *const *)a, *y = *(const gw_tensor_info *const *)b;
  return (x->offset > y->offset) - (x->offset < y->offset);
}

static void write_tensor_bytes(gw *w, out *o, const gw_tensor_info *t, uint64_t from) {
  uint8_t chunk[1 << 16];
  for (uint64_t k = from; k < t->bytes && o->pos < o->limit;) {
    uint64_t n = t->bytes - k < sizeof chunk ? t->bytes - k : sizeof chunk;
    gw_fill(w->seed, t->name, k, chunk, (size_t)n);
    out_put(o, chunk, n);
    k += n;
  }
}

/* Tensor bytes in offset order; overlapping parts are written once. */
static void write_data(gw *w, out *o, const part *pt, uint64_t data_end) {
  gw_tensor_info **order = xrealloc(NULL, (pt->count ? pt->count : 1) * sizeof *order);
  for (size_t i = 0; i < pt->count; i++) order[i] = &w->t[pt->first + i];
  qsort(order, pt->count, sizeof *order, by_offset);
  uint64_t cur = 0;
  for (size_t i = 0; i < pt->count && cur < data_end; i++) {
    const gw_tensor_info *t = order[i];
    if (t->offset >= data_end) break;
    if (t->offset > cur) out_zeros(o, t->offset - cur), cur = t->offset;
    uint64_t end = t->offset + t->bytes;
    if (end > data_end) end = data_end;
    if (end <= cur) continue;
    gw_tensor_info clipped = *t;
    clipped.bytes = end - t->offset;
    write_tensor_bytes(w, o, &clipped, cur - t->offset);
    cur = end;
  }
  if (data_end > cur) out_zeros(o, data_end - cur);
  free(order);
}

static int write_part(gw *w, const char *path, const part *pt) {
  out o = {fopen(path, "wb"), 0, w->truncate_at, 0};
  if (!o.f) return -1;
  uint64_t data_end = layout(w, pt);
  if (w->has_data_size) data_end = w->data_size;
  write_header(w, &o, pt);
  write_infos(w, &o, pt);
  if (pt->count) { /* like gguf-py, a file without tensors is not padded */
    out_zeros(&o, pad_to(o.pos, w->alignment) - o.pos);
    write_data(w, &o, pt, data_end);
  }
  if (fclose(o.f) != 0) o.failed = 1;
  return o.failed ? -1 : 0;
}

int gw_write(gw *w, const char *path) {
  part pt = {0, w->n_t, NULL, 0, 1};
  return write_part(w, path, &pt);
}

int gw_split_path(char *b, size_t size, const char *prefix, uint32_t i, uint32_t count) {
  return snprintf(b, size, "%s-%05d-of-%05d.gguf", prefix, (int)i + 1, (int)count);
}

static void split_keys(gw *w, buf *b, uint32_t i, uint32_t count, int with_alignment) {
  buf_str(b, "split.no");
  buf_le(b, EMEL_GGUF_TYPE_UINT16, 4);
  buf_le(b, i, 2);
  buf_str(b, "split.count");
  buf_le(b, EMEL_GGUF_TYPE_UINT16, 4);
  buf_le(b, count, 2);
  buf_str(b, "split.tensors.count");
  buf_le(b, EMEL_GGUF_TYPE_INT32, 4);
  buf_le(b, (uint32_t)w->n_t, 4);
  if (with_alignment) { /* later splits carry no KVs but must keep the layout */
    buf_str(b, "general.alignment");
    buf_le(b, EMEL_GGUF_TYPE_UINT32, 4);
    buf_le(b, w->alignment, 4);
  }
}

int gw_write_split(gw *w, const char *prefix, uint32_t n_splits) {
  size_t len = strlen(prefix) + 32;
  char *path = xrealloc(NULL, len);
  int rc = 0;
  for (uint32_t i = 0; i < n_splits && rc == 0; i++) {
    buf extra = {0};
    int later = i > 0 && w->alignment != 32;
    split_keys(w, &extra, i, n_splits, later);
    size_t first = w->n_t * i / n_splits, end = w->n_t * (i + 1) / n_splits;
    part pt = {first, end - first, &extra, 3u + (later ? 1u : 0u), i == 0};
    gw_split_path(path, len, prefix, i, n_splits);
    rc = write_part(w, path, &pt);
    free(extra.p);
  }
  free(path);
  return rc;
}

/* --- llama-like model shapes ----------------------------------------------------- */

typedef struct shape {
  char name[64];
  uint32_t n_dims;
  uint64_t ne[2];
  int weight; /* 2-D: takes the next of `types` */
} shape;

/* Tensor k of the endless sequence token_embd, output_norm, output, blk.0.… */
static void shape_at(uint64_t k, uint64_t e, shape *s) {
  static const char *const layer[] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                      "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};
  uint64_t ff = 2 * e, vocab = 2 * e;
  s->n_dims = 2;
  s->weight = 1;
  if (k < 3) {
    static const char *const top[] = {"token_embd.weight", "output_norm.weight", "output.weight"};
    snprintf(s->name, sizeof s->name, "%s", top[k]);
    s->ne[0] = e;
    s->ne[1] = vocab;
    if (k == 1) s->n_dims = 1, s->weight = 0;
    return;
  }
  uint64_t l = (k - 3) / 9, j = (k - 3) % 9;
  snprintf(s->name, sizeof s->name, "blk.%llu.%s.weight", (unsigned long long)l, layer[j]);
  s->ne[0] = j == 8 ? ff : e;
  s->ne[1] = (j == 6 || j == 7) ? ff : e;
  if (j == 0 || j == 5) s->n_dims = 1, s->weight = 0;
}

static uint64_t shape_bytes(const shape *s, uint32_t type) {
  uint64_t bytes = 0;
  if (emel_ggml_tensor_nbytes(s->weight ? type : EMEL_GGML_TYPE_F32, s->n_dims, s->ne, &bytes, NULL) != EMEL_OK)
    return UINT64_MAX / 4;
  return bytes;
}

static uint64_t model_bytes(uint32_t n, uint64_t e, const uint32_t *types, size_t n_types) {
  uint64_t total = 0, wi = 0;
  shape s;
  for (uint32_t k = 0; k < n && total < UINT64_MAX / 8; k++) {
    shape_at(k, e, &s);
    total += shape_bytes(&s, types[wi % n_types]);
    wi += (uint64_t)s.weight;
  }
  return total;
}

int gw_model_shape(gw *w, uint32_t n, uint64_t target, const uint32_t *types, size_t n_types) {
  uint32_t step = 32, bs;
  for (size_t i = 0; i < n_types; i++) {
    if (emel_ggml_type_info(types[i], &bs, NULL, NULL) != EMEL_OK) return -1;
    if (bs > step) step = bs;
  }
  uint64_t e = step;
  while (model_bytes(n, e + step, types, n_types) <= target && e < (1u << 20)) e += step;
  shape s;
  uint64_t wi = 0;
  for (uint32_t k = 0; k < n; k++) {
    shape_at(k, e, &s);
    uint32_t type = s.weight ? types[wi++ % n_types] : EMEL_GGML_TYPE_F32;
    if (gw_tensor(w, s.name, type, s.n_dims, s.ne) != 0) return -1;
  }
  return 0;
}

int gw_write_model(const char *path, uint32_t n, uint64_t target, const uint32_t *types, size_t n_types) {
  gw *w = gw_new();
  if (!w) return -1;
  const int r = gw_model_shape(w, n, target, types, n_types) == 0 && gw_write(w, path) == 0 ? 0 : -1;
  gw_free(w);
  return r;
}

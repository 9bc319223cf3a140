/* The composition root: index -> boundary + strategies -> tensor table. */
#include "emel/model.h"
#include "emel/gguf/internal.h"
#include "emel/model/tensor/tensors_shared.h"
#include "emel/util/struct_size.h"

#include <string.h>

struct emel_model {
  emel_platform_ops platform;
  emel_gguf *index;
  emel_io *io;
  emel_tensors *tensors;
};

static emel_status fail(emel_error *error, emel_status code, int os_errno) {
  if (error) *error = (emel_error){.code = code, .os_errno = os_errno};
  return code;
}

/* A config the library cannot read, named by error->detail. */
static emel_status refuse(emel_error *error, emel_status code, const char *what) {
  if (error) *error = (emel_error){.code = code, .detail = what};
  return code;
}

/* The caller's configs, each read up to its own struct_size. */
typedef struct model_configs {
  emel_model_config model;
  emel_gguf_config gguf;
  emel_io_mmap_config mmap;
  emel_io_read_config read;
} model_configs;

static const char *take_configs(model_configs *c, const emel_model_config *config) {
  if (emel_struct_take(&c->model, sizeof c->model, config) != EMEL_OK) return "emel_model_config.struct_size";
  if (emel_struct_take(&c->gguf, sizeof c->gguf, c->model.gguf) != EMEL_OK) return "emel_model_config.gguf";
  if (emel_struct_take(&c->mmap, sizeof c->mmap, c->model.mmap) != EMEL_OK) return "emel_model_config.mmap";
  if (emel_struct_take(&c->read, sizeof c->read, c->model.read) != EMEL_OK) return "emel_model_config.read";
  return NULL;
}

/* The tensor table borrows the index's names and name table: each name is
 * stored and hashed once per model. A tensor the table refuses (name too
 * long, …) is charged to its file. */
static emel_status bind_tensors(emel_model *m, emel_error *e) {
  size_t n = emel_gguf_tensor_count(m->index);
  emel_tensors_config tc =
      EMEL_TENSORS_CONFIG_INIT(.io = m->io, .capacity = n ? (uint32_t)n : 1, .platform = &m->platform);
  if (n > EMEL_TENSOR_MAX_CAPACITY) return EMEL_TENSOR_TABLE_FULL;
  emel_status s = emel_tensors_create_shared(&m->tensors, &tc, emel_gguf_tensor_names(m->index));
  for (size_t i = 0; s == EMEL_OK && i < n; i++) {
    const emel_gguf_tensor *g = emel_gguf_tensor_at(m->index, i);
    emel_tensor_span span = {.type = g->type, .n_dims = g->n_dims, .file_index = g->file_index,
                             .offset = g->offset, .size = g->size};
    memcpy(span.dims, g->ne, sizeof span.dims);
    uint32_t index;
    s = emel_tensors_declare_shared(m->tensors, &index);
    if (s == EMEL_OK) s = emel_tensors_bind(m->tensors, index, &span, NULL);
    if (s != EMEL_OK) {
      e->file = g->file_index + 1;
      e->tensor = (uint32_t)i + 1;
    }
  }
  return s;
}

emel_status emel_model_open(emel_model **out, const char *path, const emel_model_config *config,
                            emel_error *error) {
  if (!out || !path) return fail(error, EMEL_INVALID_ARGUMENT, 0);
  *out = NULL;
  model_configs c;
  const char *bad = take_configs(&c, config);
  if (bad) return refuse(error, EMEL_STRUCT_SIZE_UNKNOWN, bad);
  emel_platform_ops platform;
  emel_status resolved = emel_platform_resolve(&platform, c.model.platform, NULL);
  if (resolved != EMEL_OK) return refuse(error, resolved, "emel_model_config.platform");
  emel_model *m = platform.alloc(platform.user, sizeof *m, _Alignof(emel_model));
  if (!m) return fail(error, EMEL_OUT_OF_MEMORY, 0);
  memset(m, 0, sizeof *m);
  m->platform = platform;

  emel_gguf_config gc = c.gguf;
  gc.platform = &m->platform;
  emel_error e = {.code = EMEL_OK};
  emel_status s = emel_gguf_open(&m->index, path, &gc, &e);
  if (s == EMEL_OK) {
    uint32_t files = emel_gguf_file_count(m->index);
    emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &m->platform, .max_files = files);
    s = emel_io_create(&m->io, &ic, NULL);
    for (uint32_t f = 0; s == EMEL_OK && f < files; f++) {
      const char *p = emel_gguf_file_path(m->index, f);
      uint32_t index;
      s = emel_io_add_file(m->io, p, strlen(p), &index, NULL);
      if (s == EMEL_OK) s = emel_io_expect_file(m->io, index, emel_gguf_file_identity(m->index, f), NULL);
      if (s != EMEL_OK) e.file = f + 1;
    }
    /* Default pools hold every tensor of the model at once. */
    const size_t n = emel_gguf_tensor_count(m->index);
    emel_io_mmap_config mc = c.mmap;
    emel_io_read_config rc = c.read;
    if (!mc.max_mappings && n > EMEL_IO_MMAP_DEFAULT_MAPPINGS) mc.max_mappings = (uint32_t)n;
    if (!rc.max_buffers && n > EMEL_IO_READ_DEFAULT_BUFFERS) rc.max_buffers = (uint32_t)n;
    if (s == EMEL_OK) s = emel_io_mmap_attach(m->io, &mc, NULL);
    if (s == EMEL_OK) s = emel_io_read_attach(m->io, &rc, NULL);
    if (s == EMEL_OK) s = bind_tensors(m, &e);
    e.code = s;
  }
  if (s != EMEL_OK) {
    emel_model_close(m);
    if (error) *error = e;
    return e.code;
  }
  *out = m;
  return fail(error, EMEL_OK, 0);
}

void emel_model_close(emel_model *m) {
  if (!m) return;
  emel_tensors_destroy(m->tensors); /* evicts through the boundary first */
  emel_io_destroy(m->io);
  emel_gguf_close(m->index);
  emel_platform_ops p = m->platform;
  p.free(p.user, m, sizeof *m);
}

const emel_gguf *emel_model_index(const emel_model *m) { return m ? m->index : NULL; }
emel_tensors *emel_model_tensors(emel_model *m) { return m ? m->tensors : NULL; }
emel_io *emel_model_io(emel_model *m) { return m ? m->io : NULL; }

emel_status emel_model_load(emel_model *m, const char *name, const emel_load_options *options,
                            emel_tensor_view *view, emel_error *err) {
  if (!m || !name) return fail(err, EMEL_INVALID_ARGUMENT, 0);
  uint32_t i;
  emel_status s = emel_tensors_find(m->tensors, name, strlen(name), &i, err);
  return s == EMEL_OK ? emel_tensors_load(m->tensors, i, options, view, err) : s;
}

emel_status emel_model_evict(emel_model *m, const char *name, emel_error *err) {
  if (!m || !name) return fail(err, EMEL_INVALID_ARGUMENT, 0);
  uint32_t i;
  emel_status s = emel_tensors_find(m->tensors, name, strlen(name), &i, err);
  return s == EMEL_OK ? emel_tensors_evict(m->tensors, i, err) : s;
}

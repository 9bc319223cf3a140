/* A model: a GGUF index, an io boundary with both strategies attached, and a
 * tensor table with every tensor of the index bound to its span.
 *
 * This is the composition an embedder usually wants; each piece can also be
 * used on its own (emel/gguf.h, emel/io.h, emel/tensor.h).
 */
#ifndef EMEL_MODEL_H
#define EMEL_MODEL_H

#include "emel/api.h"
#include "emel/gguf.h"
#include "emel/io.h"
#include "emel/io_mmap.h"
#include "emel/io_read.h"
#include "emel/status.h"
#include "emel/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct emel_model emel_model;

/* The parts' configs are pointers, not members: each carries its own
 * struct_size, so any of them can grow without moving the others. */
typedef struct emel_model_config {
  size_t struct_size;                /* sizeof(emel_model_config): EMEL_MODEL_CONFIG_INIT sets it */
  const emel_platform_ops *platform; /* NULL: defaults; NULL entries: defaults */
  const emel_gguf_config *gguf;      /* index limits (its platform is ignored: the one above); NULL: defaults */
  const emel_io_mmap_config *mmap;   /* pool size etc.; NULL or zero: defaults, pools at least the tensor count */
  const emel_io_read_config *read;   /* chunk size, alignment, pool; NULL or zero: defaults (as for mmap) */
} emel_model_config;

#define EMEL_MODEL_CONFIG_INIT(...) EMEL_STRUCT_INIT_(emel_model_config, __VA_ARGS__)

/* Indexes `path` (every split when it names the first of NAME-00001-of-0000N.gguf),
 * and binds every tensor. `config` may be NULL. On failure *out is NULL and
 * `error` (if given) has the code, the failing errno, the part at fault and
 * the failed check, as emel_gguf_open reports them. A config (its own, a
 * part's or the platform table) it cannot take is EMEL_STRUCT_SIZE_UNKNOWN or
 * EMEL_PLATFORM_OPS_UNPAIRED, refused before anything is allocated, with
 * `detail` naming it ("emel_model_config.read"). */
EMEL_API emel_status emel_model_open(emel_model **out, const char *path, const emel_model_config *config,
                                     emel_error *error);

/* Evicts every resident tensor and releases everything: every pointer the
 * model gave (index, tensors, io, names, views' data) is invalid afterwards. */
EMEL_API void emel_model_close(emel_model *model);

EMEL_API const emel_gguf *emel_model_index(const emel_model *model);
EMEL_API emel_tensors *emel_model_tensors(emel_model *model);
EMEL_API emel_io *emel_model_io(emel_model *model);

/* By name: emel_tensors_find + emel_tensors_load / evict, in one call: `err`
 * (may be NULL) gets the code, the errno, the tensor (index + 1) and the file
 * (part number) of a failure. */
EMEL_API emel_status emel_model_load(emel_model *model, const char *name, const emel_load_options *options,
                                     emel_tensor_view *view, emel_error *err);
EMEL_API emel_status emel_model_evict(emel_model *model, const char *name, emel_error *err);

#ifdef __cplusplus
}
#endif

#endif

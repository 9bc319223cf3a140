/* The strategy plug-in interface of the io boundary: what a loading strategy
 * implements (emel_io_strategy_ops) and what the boundary gives it (the table
 * of model files, the platform ops). The strategies shipped (emel/io_mmap.h,
 * emel/io_read.h, emel/io_staged.h) are built on it; an embedder needs it only to write its
 * own. Everything else a caller uses is in emel/io.h.
 */
#ifndef EMEL_IO_STRATEGY_H
#define EMEL_IO_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#include "emel/api.h"
#include "emel/io.h"
#include "emel/platform.h"
#include "emel/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct emel_io_file {
  const char *path; /* NUL-terminated copy owned by the boundary */
  size_t path_len;  /* length as given; a NUL before it is an invalid path */
  int has_expected; /* the strategies refuse the file with EMEL_FILE_CHANGED */
  emel_file_identity expected; /* unless it is still this (when it was indexed) */
} emel_io_file;

/* The table of model files, shared read-only with the strategies. */
typedef struct emel_io_files {
  uint32_t count;
  uint32_t capacity;
  emel_io_file *files;
} emel_io_files;

/* What a strategy implements. acquire/release/destroy are required; the rest
 * optional. Initialize with EMEL_IO_STRATEGY_OPS_INIT: the boundary copies
 * the members the strategy's header knew (struct_size), later ones NULL. */
typedef struct emel_io_strategy_ops {
  size_t struct_size; /* sizeof(emel_io_strategy_ops) */
  emel_strategy kind;
  const char *name;
  void (*acquire)(void *self, const emel_io_request *request, emel_io_result *result);
  emel_error (*release)(void *self, emel_io_handle handle);
  /* Advise a sub-range [offset, offset+len) of a live residency; NULL: unsupported. */
  emel_error (*advise)(void *self, emel_io_handle handle, uint64_t offset, uint64_t len,
                       emel_map_advice advice);
  /* Many requests at once (the strategy may reorder and coalesce them);
   * NULL: the boundary calls acquire for each. */
  void (*acquire_batch)(void *self, const emel_io_request *requests, emel_io_result *results,
                        size_t count);
  /* Live residencies (for leak checks and reports). */
  size_t (*live)(const void *self);
  void (*destroy)(void *self);
} emel_io_strategy_ops;

#define EMEL_IO_STRATEGY_OPS_INIT(...) EMEL_STRUCT_INIT_(emel_io_strategy_ops, __VA_ARGS__)

/* Hands a strategy instance `self` to the boundary. One rule for every strategy:
 * whatever attach returns, `self` is no longer the caller's. On EMEL_OK the
 * boundary owns it (emel_io_destroy calls ops->destroy(self)); on a failure
 * (EMEL_STRUCT_SIZE_UNKNOWN for ops with a struct_size the library does not
 * know; EMEL_INVALID_ARGUMENT: io NULL, kind out of range or already attached,
 * acquire/release/destroy missing) attach has called ops->destroy(self) before
 * returning. Only when `ops` or `ops->destroy` is NULL can it not destroy
 * `self`, which then stays the caller's. emel_io_mmap_attach and
 * emel_io_read_attach follow it: on failure nothing is attached or held. */
EMEL_API emel_status emel_io_attach(emel_io *io, const emel_io_strategy_ops *ops, void *self, emel_error *err);

EMEL_API const emel_io_files *emel_io_files_of(const emel_io *io);
EMEL_API const emel_platform_ops *emel_io_platform(const emel_io *io);

/* The instance attached for `kind` when it was attached with exactly `ops`,
 * else NULL: lets a strategy module's own API (stats, say) find its instance
 * without the boundary knowing its type. */
EMEL_API void *emel_io_strategy_self(const emel_io *io, emel_strategy kind, const emel_io_strategy_ops *ops);

#ifdef __cplusplus
}
#endif

#endif

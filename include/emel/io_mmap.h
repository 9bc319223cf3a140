/* The mmap strategy: a tensor's bytes mapped read-only from its model file.
 *
 * Attach it to an io boundary, then load with .strategy = EMEL_STRATEGY_MMAP.
 * The result points at the tensor's first byte inside a shared, read-only
 * mapping of the whole file (one open and one mapping per model file, however
 * many tensors it holds); it stays valid until the handle is released.
 *
 * Request flags: EMEL_LOAD_POPULATE pre-faults the tensor's pages so first use
 * does not stall; EMEL_LOAD_LOCK mlocks them (EMEL_MMAP_LOCK_FAILED when
 * RLIMIT_MEMLOCK forbids it). Any other flag, a zero size or a caller target
 * buffer is EMEL_INVALID_REQUEST. emel_io_advise() takes a sub-range of the
 * tensor and EMEL_ADVISE_NORMAL, _SEQUENTIAL, _WILLNEED, _DONTNEED or
 * _POPULATE_READ.
 */
#ifndef EMEL_IO_MMAP_H
#define EMEL_IO_MMAP_H

#include <stdint.h>

#include "emel/api.h"
#include "emel/io.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { EMEL_IO_MMAP_DEFAULT_MAPPINGS = 65536 };

typedef struct emel_io_mmap_config {
  size_t struct_size;    /* sizeof(emel_io_mmap_config): EMEL_IO_MMAP_CONFIG_INIT sets it */
  uint32_t max_mappings; /* live tensor mappings (pool capacity); 0: EMEL_IO_MMAP_DEFAULT_MAPPINGS */
} emel_io_mmap_config;

#define EMEL_IO_MMAP_CONFIG_INIT(...) EMEL_STRUCT_INIT_(emel_io_mmap_config, __VA_ARGS__)

/* Creates the strategy with `io`'s platform operations and file table and
 * attaches it; every table it needs is allocated here, once. `config` may be
 * NULL. EMEL_OUT_OF_MEMORY, EMEL_INVALID_ARGUMENT (no io, or an mmap strategy
 * is already attached), EMEL_STRUCT_SIZE_UNKNOWN. */
EMEL_API emel_status emel_io_mmap_attach(emel_io *io, const emel_io_mmap_config *config, emel_error *err);

#ifdef __cplusplus
}
#endif

#endif

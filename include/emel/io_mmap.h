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
 *
 * Batches (emel_io_acquire_batch, emel_tensors_load_batch) with
 * EMEL_LOAD_POPULATE: every tensor is mapped first, then their pages are
 * populated on populate_lanes lanes at once (lane 0 the calling thread, the
 * others threads from ops.thread_start), the tensors split between lanes in
 * file order by bytes; each lane MADV_POPULATE_READs its tensors' ranges. A
 * cold model is read from several places at once, which one populate per
 * tensor cannot do. A tensor whose range failed takes the route a populate of
 * it alone would (MMAP_POPULATE_FAILED, or FILE_CHANGED when the file shrank,
 * with the errno) and holds nothing; the others are granted. A lane whose
 * thread cannot start is populated by the calling thread (counted). With
 * EMEL_LOAD_LOCK a tensor is populated and locked alone, as outside a batch.
 */
#ifndef EMEL_IO_MMAP_H
#define EMEL_IO_MMAP_H

#include <stdint.h>

#include "emel/api.h"
#include "emel/io.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  EMEL_IO_MMAP_DEFAULT_MAPPINGS = 65536,
  EMEL_IO_MMAP_DEFAULT_POPULATE_LANES = 4, /* measured: README Performance */
  EMEL_IO_MMAP_MAX_POPULATE_LANES = 64,
  EMEL_IO_MMAP_BATCH_WINDOW = 256          /* tensors of a batch populated together */
};

typedef struct emel_io_mmap_config {
  size_t struct_size;    /* sizeof(emel_io_mmap_config): EMEL_IO_MMAP_CONFIG_INIT sets it */
  uint32_t max_mappings; /* live tensor mappings (pool capacity); 0: EMEL_IO_MMAP_DEFAULT_MAPPINGS */
  uint32_t populate_lanes; /* a batch's populates run on this many lanes at once; 0:
                              EMEL_IO_MMAP_DEFAULT_POPULATE_LANES, 1: one at a time on the calling
                              thread; at most EMEL_IO_MMAP_MAX_POPULATE_LANES */
} emel_io_mmap_config;

typedef struct emel_io_mmap_stats {
  uint64_t populate_batches;  /* batches whose populates ran on lanes */
  uint64_t populate_ranges;   /* tensors populated on lanes */
  uint64_t populate_threads;  /* lane threads started */
  uint64_t inline_lanes;      /* lanes whose thread could not start: the calling thread populated them */
  uint64_t thread_join_failures;
} emel_io_mmap_stats;

#define EMEL_IO_MMAP_CONFIG_INIT(...) EMEL_STRUCT_INIT_(emel_io_mmap_config, __VA_ARGS__)

/* Creates the strategy with `io`'s platform operations and file table and
 * attaches it; every table it needs is allocated here, once. `config` may be
 * NULL. EMEL_OUT_OF_MEMORY, EMEL_INVALID_ARGUMENT (no io, or an mmap strategy
 * is already attached), EMEL_STRUCT_SIZE_UNKNOWN. */
EMEL_API emel_status emel_io_mmap_attach(emel_io *io, const emel_io_mmap_config *config, emel_error *err);

/* Counters of the attached mmap strategy; EMEL_UNKNOWN_STRATEGY when none is. */
EMEL_API emel_status emel_io_mmap_stats_of(const emel_io *io, emel_io_mmap_stats *stats, emel_error *err);

#ifdef __cplusplus
}
#endif

#endif

/* What a load job (src/emel/job) may ask of the read strategy that the
 * public API does not offer: how many lanes it has, and how many the next
 * batches use. A job cuts its units into parts of at least 1 MiB itself, so
 * it chooses the lanes (emel_job_config.threads) instead of the strategy's
 * min_parallel_bytes threshold, which a window of whole tensors needs.
 * Internal; calling thread only (the boundary's owner, as for every load). */
#ifndef EMEL_IO_READ_LANES_H
#define EMEL_IO_READ_LANES_H

#include <stdint.h>

#include "emel/io.h"

/* The lanes a buffered (direct = 0) or direct (1) window may use at most:
 * emel_io_read_config.threads or .direct_threads as resolved at attach; with
 * direct = -1, the lanes the strategy has (the larger). 0: no read strategy. */
uint32_t emel_io_read_lanes(const emel_io *io, int direct);

/* Later batches use exactly min(lanes, their requests, the strategy's lanes)
 * lanes, whatever their bytes; 0: the strategy chooses again. */
void emel_io_read_force_lanes(emel_io *io, uint32_t lanes);

#endif

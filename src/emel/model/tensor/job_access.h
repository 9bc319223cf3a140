/* What a load job (src/emel/job) may do to a tensor table that the public
 * API does not offer: hold tensors (the table refuses loads of them from
 * outside with EMEL_TENSOR_BUSY), load them as the job, adopt a buffer the job
 * filled in pieces, and record a tensor's cancellation. Internal. */
#ifndef EMEL_MODEL_TENSOR_JOB_ACCESS_H
#define EMEL_MODEL_TENSOR_JOB_ACCESS_H

#include "emel/tensor.h"

/* Marks (held = 1) or unmarks tensor `index` as a job's. EMEL_TENSOR_BUSY when
 * holding one another job holds. */
emel_status emel_tensors_job_hold(emel_tensors *t, uint32_t index, int held);

/* emel_tensors_load_batch / emel_tensors_evict on behalf of the job that holds
 * the tensors (no EMEL_TENSOR_BUSY). */
emel_status emel_tensors_job_load_batch(emel_tensors *t, const uint32_t *indices, size_t count,
                                        const emel_load_options *options, emel_status *statuses);
emel_status emel_tensors_job_evict(emel_tensors *t, uint32_t index);

/* Makes a bound or evicted tensor resident in `data` (alloc_size bytes from the
 * table's platform alloc, the tensor's bytes, or its `slice`'s when not NULL,
 * already in it): residency owned, strategy read, freed by the table when the
 * tensor is released. */
emel_status emel_tensors_job_adopt(emel_tensors *t, uint32_t index, void *data, size_t alloc_size,
                                   const emel_tensor_slice *slice, emel_tensor_view *view);

/* Makes a bound or evicted tensor resident with a residency the job acquired
 * from the boundary itself under `options` (ADOPT_RESIDENCY, as a batch does:
 * it cuts the options' shard slice, the one acquired). */
emel_status emel_tensors_job_adopt_result(emel_tensors *t, uint32_t index, const emel_io_result *result,
                                          const emel_load_options *options, emel_tensor_view *view);

/* Records `code` (EMEL_CANCELLED, a piece's failure) as the tensor's last
 * error without changing its state. */
void emel_tensors_job_note(emel_tensors *t, uint32_t index, emel_status code, int os_errno);

/* Non-zero when tensor `index`'s file is now shorter than its span or no
 * longer the file indexed (looked at through a descriptor of its own): what
 * a fault in its mapped pages means FILE_CHANGED for, as the strategies say. */
int emel_tensors_job_file_changed(const emel_tensors *t, uint32_t index);

/* The residency budget for a buffer the job allocates itself (a tensor read
 * in pieces): admits `bytes` as a load would (evicting LRU tensors if the
 * policy allows) and reserves them until the job hands the buffer to the
 * table (emel_tensors_job_adopt charges it) and gives the reservation back
 * with emel_tensors_job_unreserve, as it does when it frees the buffer.
 * EMEL_BUDGET_EXCEEDED, or a victim's release error (with its errno). */
emel_status emel_tensors_job_reserve(emel_tensors *t, uint64_t bytes, int *os_errno);
void emel_tensors_job_unreserve(emel_tensors *t, uint64_t bytes);

/* The table's platform ops (the job allocates and signals through them) and boundary. */
const emel_platform_ops *emel_tensors_platform(const emel_tensors *t);
emel_io *emel_tensors_io(const emel_tensors *t);

#endif

/* Tensor tables whose names live elsewhere: how a model stores each tensor
 * name once and hashes it once (in its GGUF index), not again in its tensor
 * table. Internal: the public emel_tensors_* API is unchanged. */
#ifndef EMEL_MODEL_TENSOR_SHARED_H
#define EMEL_MODEL_TENSOR_SHARED_H

#include "emel/tensor.h"
#include "emel/util/name_table.h"

/* A table with no name arena and no name index of its own: tensor i is the
 * name `names` has for index i, and emel_tensors_find asks `names`. `names`
 * (and the names it returns) must outlive the table. config->name_bytes is
 * ignored. */
emel_status emel_tensors_create_shared(emel_tensors **out, const emel_tensors_config *config,
                                       const emel_name_table *names);

/* Declares the next tensor (index = emel_tensors_count) under the shared
 * table's name for that index, borrowed. EMEL_TENSOR_NAME_INVALID for a name
 * the table could not have declared (empty, too long, NUL inside);
 * EMEL_INVALID_ARGUMENT on a table with names of its own, or past the shared
 * table's count. emel_tensors_declare refuses a shared table with
 * EMEL_TENSOR_TABLE_FULL (a model's table always held exactly its tensors). */
emel_status emel_tensors_declare_shared(emel_tensors *t, uint32_t *index);

/* Slots examined by every insert into the table's own name index (0 for a
 * shared table). For tests. */
uint64_t emel_tensors_name_probes(const emel_tensors *t);

#endif

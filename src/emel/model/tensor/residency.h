/* Internals of tensor residency shared by the spec, the actions and the table. */
#ifndef EMEL_MODEL_TENSOR_RESIDENCY_H
#define EMEL_MODEL_TENSOR_RESIDENCY_H

#include "emel/io.h"
#include "emel/tensor.h"
#include "emel/machine/machine.h"
#include "tensor_residency_machine.h" /* events, states, action prototypes: generated from the spec */

/* One tensor as the table stores it: the machine's state is just `cs`. */
typedef struct tensor_record {
  int cs;
  const char *name; /* NUL-terminated: in the table's arena, or the shared table's owner's */
  uint32_t name_len;
  emel_tensor_span span;
  emel_tensor_view view; /* valid while resident */
  emel_io_handle handle; /* release handle of the residency */
  emel_error last_error;
  /* A load job's buffer this tensor adopted (emel_tensors_job_adopt): freed
   * with the table's platform on release; NULL otherwise. */
  void *owned;
  size_t owned_size;
  unsigned char held; /* a load job holds it: loads from outside are EMEL_TENSOR_BUSY */
} tensor_record;

/* The context of one dispatch: the record's state plus the request's inputs
 * and outputs. Lives on the caller's stack for the length of one request. */
struct tensor_residency_ctx {
  emel_machine core;
  tensor_record *tensor;
  uint32_t index;
  emel_io *io;
  const emel_platform_ops *platform; /* the table's: frees an adopted job buffer */
  /* inputs */
  const emel_tensor_span *span;
  const emel_load_options *options;
  void *external_data;
  uint64_t external_size;
  const emel_io_result *batch_result; /* ADOPT_RESIDENCY: this tensor's result in the batch */
  /* scratch between an action and the next */
  emel_status verdict;
  emel_tensor_slice slice; /* the shard LOAD / ADOPT_RESIDENCY cut (the whole span without one) */
  emel_io_result result;
  emel_error release_error;
  /* output: the request's status and, for a failure of an OS call, its errno */
  emel_status status;
  int os_errno;
};

/* The io request that makes `slice` of tensor `index` (record r) resident with options o. */
emel_io_request emel_tensor_io_request(const tensor_record *r, uint32_t index, const emel_load_options *o,
                                       const emel_tensor_slice *slice);

/* emel_tensor_shard_cut without the error report. */
emel_status emel_tensor_cut(const emel_tensor_span *span, uint32_t rank, uint32_t count, emel_tensor_slice *slice);

#endif

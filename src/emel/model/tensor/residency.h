/* Internals of tensor residency shared by the spec, the actions and the table. */
#ifndef EMEL_MODEL_TENSOR_RESIDENCY_H
#define EMEL_MODEL_TENSOR_RESIDENCY_H

#include "emel/io.h"
#include "emel/tensor.h"
#include "emel/machine/machine.h"

/* Events of statecharts/tensor_residency.rl (checked against its exports). */
enum tensor_event {
  TENSOR_EV_BIND_SPAN = 1,
  TENSOR_EV_BIND_EXTERNAL = 2,
  TENSOR_EV_LOAD = 3,
  TENSOR_EV_EVICT = 4,
  TENSOR_EV_SPAN_VALID = 5,
  TENSOR_EV_SPAN_INVALID = 6,
  TENSOR_EV_EXTERNAL_FITS = 7,
  TENSOR_EV_EXTERNAL_TOO_SMALL = 8,
  TENSOR_EV_RESIDENCY_GRANTED = 9,
  TENSOR_EV_RESIDENCY_REFUSED = 10,
  TENSOR_EV_RESIDENCY_RELEASED = 11,
  TENSOR_EV_RELEASE_REFUSED = 12,
  TENSOR_EV_ADOPT_RESIDENCY = 13
};

/* One tensor as the table stores it: the machine's state is just `cs`. */
typedef struct tensor_record {
  int cs;
  const char *name; /* NUL-terminated: in the table's arena, or the shared table's owner's */
  uint32_t name_len;
  emel_tensor_span span;
  emel_tensor_view view; /* valid while resident */
  emel_io_handle handle; /* release handle of the residency */
  emel_error last_error;
} tensor_record;

/* The context of one dispatch: the record's state plus the request's inputs
 * and outputs. Lives on the caller's stack for the length of one request. */
typedef struct tensor_residency_ctx {
  emel_machine core;
  tensor_record *tensor;
  uint32_t index;
  emel_io *io;
  /* inputs */
  const emel_tensor_span *span;
  const emel_load_options *options;
  void *external_data;
  uint64_t external_size;
  const emel_io_result *batch_result; /* ADOPT_RESIDENCY: this tensor's result in the batch */
  /* scratch between an action and the next */
  emel_status verdict;
  emel_io_result result;
  emel_error release_error;
  /* output: the request's status and, for a failure of an OS call, its errno */
  emel_status status;
  int os_errno;
} tensor_residency_ctx;

extern const emel_machine_desc emel_tensor_residency_desc;

/* The io request that makes tensor `index` (record r) resident with options o. */
emel_io_request emel_tensor_io_request(const tensor_record *r, uint32_t index, const emel_load_options *o);

int emel_tensor_check_span(tensor_residency_ctx *m);
void emel_tensor_record_span(tensor_residency_ctx *m);
void emel_tensor_refuse_span(tensor_residency_ctx *m);
int emel_tensor_check_external(tensor_residency_ctx *m);
void emel_tensor_adopt_external(tensor_residency_ctx *m);
void emel_tensor_refuse_external(tensor_residency_ctx *m);
int emel_tensor_request_residency(tensor_residency_ctx *m);
int emel_tensor_check_batch_result(tensor_residency_ctx *m);
void emel_tensor_record_residency(tensor_residency_ctx *m);
void emel_tensor_record_load_error(tensor_residency_ctx *m);
int emel_tensor_release_residency(tensor_residency_ctx *m);
void emel_tensor_forget_residency(tensor_residency_ctx *m);
void emel_tensor_record_release_error(tensor_residency_ctx *m);
void emel_tensor_refuse(tensor_residency_ctx *m, emel_status code);

#endif

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
  /* Residency budget (tensors.c): the owned bytes this tensor counts, its
   * pins, and its links in the table's LRU list (of evictable tensors only). */
  unsigned char in_lru;
  unsigned char in_batch; /* a member of the batch being loaded: not evictable by it */
  uint32_t pins;
  uint32_t lru_newer, lru_older; /* record indices; meaningful while in_lru */
  uint64_t charged;
} tensor_record;

/* The context of one dispatch: the record's state plus the request's inputs
 * and outputs. Lives on the caller's stack for the length of one request. */
struct tensor_residency_ctx {
  emel_machine core;
  tensor_record *tensor;
  uint32_t index;
  emel_io *io;
  const emel_platform_ops *platform; /* the table's: frees an adopted job buffer */
  emel_tensors *table;                /* for the budget: its accounts and its LRU victims */
  int force;                          /* the table is being destroyed: EVICT ignores pins */
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
  uint64_t need;            /* owned bytes the load would add to the budget's account */
  emel_error room_error;    /* why making room failed */
  /* output: the request's status and, for a failure of an OS call, its errno */
  emel_status status;
  int os_errno;
};

/* The io request that makes `slice` of tensor `index` (record r) resident with options o. */
emel_io_request emel_tensor_io_request(const tensor_record *r, uint32_t index, const emel_load_options *o,
                                       const emel_tensor_slice *slice);

/* The budget (tensors.c), asked by the machine's actions. */
typedef enum budget_verdict { BUDGET_VERDICT_FITS, BUDGET_VERDICT_SHORT, BUDGET_VERDICT_EXCEEDED } budget_verdict;
/* Whether `need` more owned bytes fit: now, after evicting LRU victims, or not at all. */
budget_verdict emel_tensors_budget_verdict(const emel_tensors *t, uint64_t need);
/* Evicts LRU victims, oldest first, until `need` fits (call after a SHORT
 * verdict). EMEL_OK, or the refused release's error (that victim stays resident). */
emel_error emel_tensors_make_room(emel_tensors *t, uint64_t need);
/* The owned bytes a load with options o of `slice` would add: the read
 * strategy without a target is the only load that owns its bytes. */
uint64_t emel_tensor_owned_need(const emel_load_options *o, const emel_tensor_slice *slice);

/* emel_tensor_shard_cut without the error report. */
emel_status emel_tensor_cut(const emel_tensor_span *span, uint32_t rank, uint32_t count, emel_tensor_slice *slice);

#endif

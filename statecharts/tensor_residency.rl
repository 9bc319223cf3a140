/* Tensor residency: the lifecycle of one tensor.
 *
 * unbound -> bound (span known, no bytes) -> resident (mapped | owned | external)
 * -> evicted (bytes released, span still known) -> resident again on a new load.
 * A failed load leaves the tensor bound with the error recorded, never half-resident.
 * Every request is accepted in every resting state: a request that does not fit
 * the state is refused by a named action, so the refusal is visible here.
 * (Evicting twice is its own error; it is also what keeps Ragel's minimizer
 * from merging evicted into bound.)
 * ADOPT_RESIDENCY is LOAD for a batch (emel_tensors_load_batch): the io
 * boundary already acquired every tensor of the batch at once, and the
 * tensor adopts its precomputed result through the same `loading` outcomes.
 * Both first cut the shard the options ask for (the whole tensor when they
 * ask for none): an invalid shard is refused, an empty slice (more ranks than
 * rows) is resident with no bytes and never asks the boundary.
 * A table's residency budget (owned bytes): LOAD checks it before asking the
 * boundary (budgeting): it fits, or fits once the table evicts its
 * least-recently-used evictable tensors (making_room; a victim's refused
 * release fails the load), or is refused with BUDGET_EXCEEDED, nothing evicted.
 * A batch is admitted by the table for the whole window before it acquires
 * anything (one tensor's machine cannot see the window); a tensor it could not
 * admit adopts BUDGET_EXCEEDED as its outcome in `loading`.
 * EVICT of a pinned tensor is refused (checking_pin) unless the table is
 * being destroyed.
 */
/* The tables of gen/tensor_residency_machine.h are defined in this translation unit. */
#define EMEL_MACHINE_TABLES
#include "emel/model/tensor/residency.h"

%%{
  machine tensor_residency;
  alphtype int;
  access m->core.;

  # requests
  export BIND_SPAN = 1;
  export BIND_EXTERNAL = 2;
  export LOAD = 3;
  export EVICT = 4;
  # outcomes reported by actions
  export SPAN_VALID = 5;
  export SPAN_INVALID = 6;
  export EXTERNAL_FITS = 7;
  export EXTERNAL_TOO_SMALL = 8;
  export RESIDENCY_GRANTED = 9;
  export RESIDENCY_REFUSED = 10;
  export RESIDENCY_RELEASED = 11;
  export RELEASE_REFUSED = 12;
  export ADOPT_RESIDENCY = 13;
  export SHARD_CUT = 14;
  export SHARD_EMPTY = 15;
  export SHARD_INVALID = 16;
  export BUDGET_FITS = 17;
  export BUDGET_SHORT = 18;
  export BUDGET_EXCEEDED = 19;
  export ROOM_MADE = 20;
  export ROOM_REFUSED = 21;
  export EVICTION_ALLOWED = 22;
  export EVICTION_PINNED = 23;

  action check_span { EMEL_REPORT(m, emel_tensor_check_span(m)); }
  action record_span { emel_tensor_record_span(m); }
  action refuse_span { emel_tensor_refuse_span(m); }
  action check_external { EMEL_REPORT(m, emel_tensor_check_external(m)); }
  action adopt_external { emel_tensor_adopt_external(m); }
  action refuse_external { emel_tensor_refuse_external(m); }
  action cut_shard { EMEL_REPORT(m, emel_tensor_cut_shard(m)); }
  action adopt_empty_shard { emel_tensor_adopt_empty_shard(m); }
  action refuse_shard { emel_tensor_refuse_shard(m); }
  action request_residency { EMEL_REPORT(m, emel_tensor_request_residency(m)); }
  action check_batch_result { EMEL_REPORT(m, emel_tensor_check_batch_result(m)); }
  action record_residency { emel_tensor_record_residency(m); }
  action record_load_error { emel_tensor_record_load_error(m); }
  action release_residency { EMEL_REPORT(m, emel_tensor_release_residency(m)); }
  action forget_residency { emel_tensor_forget_residency(m); }
  action record_release_error { emel_tensor_record_release_error(m); }
  action check_budget { EMEL_REPORT(m, emel_tensor_check_budget(m)); }
  action make_room { EMEL_REPORT(m, emel_tensor_make_room(m)); }
  action refuse_budget { emel_tensor_refuse_budget(m); }
  action record_room_error { emel_tensor_record_room_error(m); }
  action check_pin { EMEL_REPORT(m, emel_tensor_check_pin(m)); }
  action refuse_not_bound { emel_tensor_refuse(m, EMEL_TENSOR_NOT_BOUND); }
  action refuse_already_bound { emel_tensor_refuse(m, EMEL_TENSOR_ALREADY_BOUND); }
  action refuse_not_resident { emel_tensor_refuse(m, EMEL_TENSOR_NOT_RESIDENT); }
  action refuse_already_resident { emel_tensor_refuse(m, EMEL_TENSOR_ALREADY_RESIDENT); }
  action refuse_already_evicted { emel_tensor_refuse(m, EMEL_TENSOR_ALREADY_EVICTED); }
  action refuse_pinned { emel_tensor_refuse(m, EMEL_TENSOR_PINNED); }

  main := (
    start: unbound: (
        BIND_SPAN @check_span -> checking_span
      | BIND_EXTERNAL @refuse_not_bound -> unbound
      | LOAD @refuse_not_bound -> unbound
      | ADOPT_RESIDENCY @refuse_not_bound -> unbound
      | EVICT @refuse_not_resident -> unbound
    ),
    checking_span: (
        SPAN_VALID @record_span -> bound
      | SPAN_INVALID @refuse_span -> unbound
    ),
    bound: (
        LOAD @cut_shard -> cutting_shard
      | ADOPT_RESIDENCY @cut_shard -> cutting_batch_shard
      | BIND_EXTERNAL @check_external -> checking_external
      | BIND_SPAN @refuse_already_bound -> bound
      | EVICT @refuse_not_resident -> bound
    ),
    cutting_shard: (
        SHARD_CUT @check_budget -> budgeting
      | SHARD_EMPTY @adopt_empty_shard -> resident
      | SHARD_INVALID @refuse_shard -> bound
    ),
    budgeting: (
        BUDGET_FITS @request_residency -> loading
      | BUDGET_SHORT @make_room -> making_room
      | BUDGET_EXCEEDED @refuse_budget -> bound
    ),
    making_room: (
        ROOM_MADE @request_residency -> loading
      | ROOM_REFUSED @record_room_error -> bound
    ),
    cutting_batch_shard: (
        SHARD_CUT @check_batch_result -> loading
      | SHARD_EMPTY @adopt_empty_shard -> resident
      | SHARD_INVALID @refuse_shard -> bound
    ),
    loading: (
        RESIDENCY_GRANTED @record_residency -> resident
      | RESIDENCY_REFUSED @record_load_error -> bound
      | BUDGET_EXCEEDED @refuse_budget -> bound
    ),
    checking_external: (
        EXTERNAL_FITS @adopt_external -> resident
      | EXTERNAL_TOO_SMALL @refuse_external -> bound
    ),
    resident: (
        EVICT @check_pin -> checking_pin
      | LOAD @refuse_already_resident -> resident
      | ADOPT_RESIDENCY @refuse_already_resident -> resident
      | BIND_EXTERNAL @refuse_already_resident -> resident
      | BIND_SPAN @refuse_already_bound -> resident
    ),
    checking_pin: (
        EVICTION_ALLOWED @release_residency -> releasing
      | EVICTION_PINNED @refuse_pinned -> resident
    ),
    releasing: (
        RESIDENCY_RELEASED @forget_residency -> evicted
      | RELEASE_REFUSED @record_release_error -> resident
    ),
    evicted: (
        LOAD @cut_shard -> cutting_shard
      | ADOPT_RESIDENCY @cut_shard -> cutting_batch_shard
      | BIND_EXTERNAL @check_external -> checking_external
      | BIND_SPAN @refuse_already_bound -> evicted
      | EVICT @refuse_already_evicted -> evicted
    )
  );
}%%

static void tensor_residency_exec(void *ctx, int event) {
  tensor_residency_ctx *m = ctx;
  const int *p = &event;
  const int *pe = p + 1;
EMEL_GENERATED_EXEC_BEGIN
  %% write exec;
EMEL_GENERATED_EXEC_END
}

const emel_machine_desc emel_tensor_residency_desc = EMEL_MACHINE_DESC(tensor_residency);

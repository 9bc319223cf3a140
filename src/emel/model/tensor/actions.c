/* Actions of the tensor residency machine: each performs one effect or
 * computes one outcome; statecharts/tensor_residency.rl decides what follows. */
#include "residency.h"
#include "emel/gguf.h"
#include "emel/report.h"

#include <string.h>

static void set_error(tensor_residency_ctx *m, emel_status code, int os_errno) {
  m->status = code;
  m->os_errno = os_errno;
  m->tensor->last_error.code = code;
  m->tensor->last_error.os_errno = os_errno;
}

static void clear_error(tensor_residency_ctx *m) { set_error(m, EMEL_OK, 0); }

static emel_status span_verdict(const emel_tensor_span *s) {
  if (s->size == 0 || s->n_dims < 1 || s->n_dims > EMEL_TENSOR_MAX_DIMS) return EMEL_INVALID_REQUEST;
  if (s->offset > UINT64_MAX - s->size) return EMEL_SPAN_OVERFLOW;
  return EMEL_OK;
}

tensor_residency_event emel_tensor_check_span(tensor_residency_ctx *m) {
  m->verdict = span_verdict(m->span);
  return m->verdict == EMEL_OK ? TENSOR_RESIDENCY_EV_SPAN_VALID : TENSOR_RESIDENCY_EV_SPAN_INVALID;
}

void emel_tensor_record_span(tensor_residency_ctx *m) {
  m->tensor->span = *m->span;
  clear_error(m);
}

void emel_tensor_refuse_span(tensor_residency_ctx *m) { set_error(m, m->verdict, 0); }

tensor_residency_event emel_tensor_check_external(tensor_residency_ctx *m) {
  return m->external_data && m->external_size >= m->tensor->span.size ? TENSOR_RESIDENCY_EV_EXTERNAL_FITS
                                                                      : TENSOR_RESIDENCY_EV_EXTERNAL_TOO_SMALL;
}

/* The rows of the outermost dimension (what a shard cuts), as ggml orders
 * dims. A 1-D tensor's rows are its blocks (elements for a plain type), so a
 * whole load and a shard count them alike. */
static uint64_t outer_rows(const emel_tensor_span *s) {
  uint32_t block_size;
  if (s->n_dims == 1 && emel_ggml_type_info(s->type, &block_size, NULL, NULL) == EMEL_OK)
    return s->dims[0] / block_size;
  return s->dims[s->n_dims - 1];
}

void emel_tensor_adopt_external(tensor_residency_ctx *m) {
  m->tensor->view.row_begin = 0;
  m->tensor->view.row_end = outer_rows(&m->tensor->span);
  m->tensor->view.data = m->external_data;
  m->tensor->view.size = m->tensor->span.size;
  m->tensor->view.residency = EMEL_RESIDENCY_EXTERNAL;
  m->tensor->view.strategy = EMEL_STRATEGY_NONE;
  memset(&m->tensor->handle, 0, sizeof m->tensor->handle); /* strategy NONE: nothing to release */
  clear_error(m);
}

void emel_tensor_refuse_external(tensor_residency_ctx *m) { set_error(m, EMEL_EXTERNAL_TOO_SMALL, 0); }

/* floor(k * r / n) for k < n, without the product overflowing: with
 * r = q * n + rest, it is k * q + floor(k * rest / n), and k * rest < n * n
 * fits 64 bits (n < 2^32). */
static uint64_t row_boundary(uint64_t k, uint64_t r, uint64_t n) { return k * (r / n) + k * (r % n) / n; }

emel_status emel_tensor_cut(const emel_tensor_span *span, uint32_t rank, uint32_t count, emel_tensor_slice *slice) {
  if (!span || !slice) return EMEL_INVALID_ARGUMENT;
  if (span->n_dims < 1 || span->n_dims > EMEL_TENSOR_MAX_DIMS) return EMEL_INVALID_SHARD;
  const uint64_t whole_rows = outer_rows(span);
  if (count == 0) { /* no shard: the span as bound, its type never looked at */
    if (rank != 0) return EMEL_INVALID_SHARD;
    *slice = (emel_tensor_slice){whole_rows, 0, whole_rows, span->offset, span->size};
    return EMEL_OK;
  }
  if (rank >= count) return EMEL_INVALID_SHARD;
  /* Rows are cut by byte arithmetic, so the span's type and dims must give
   * exactly its size (a GGUF index checks that; a hand-bound span may not). */
  uint64_t total, row_bytes, rows;
  uint32_t type_size;
  if (emel_ggml_tensor_nbytes(span->type, span->n_dims, span->dims, &total, NULL) != EMEL_OK ||
      total != span->size || emel_ggml_type_info(span->type, NULL, &type_size, NULL) != EMEL_OK)
    return EMEL_INVALID_SHARD;
  rows = whole_rows; /* > 0: total is not 0 */
  /* total == rows * row_bytes exactly: ne[0] is a whole number of blocks. */
  row_bytes = span->n_dims == 1 ? type_size : total / rows;
  const uint64_t begin = row_boundary(rank, rows, count), end = row_boundary(rank + 1ull, rows, count);
  *slice = (emel_tensor_slice){rows, begin, end, span->offset + begin * row_bytes, (end - begin) * row_bytes};
  return EMEL_OK;
}

emel_status emel_tensor_shard_cut(const emel_tensor_span *span, uint32_t rank, uint32_t count,
                                  emel_tensor_slice *slice, emel_error *err) {
  return emel_report(err, emel_tensor_cut(span, rank, count, slice));
}

tensor_residency_event emel_tensor_cut_shard(tensor_residency_ctx *m) {
  const emel_load_options *o = m->options;
  m->verdict = emel_tensor_cut(&m->tensor->span, o->shard_rank, o->shard_count, &m->slice);
  if (m->verdict != EMEL_OK) return TENSOR_RESIDENCY_EV_SHARD_INVALID;
  return m->slice.size == 0 ? TENSOR_RESIDENCY_EV_SHARD_EMPTY : TENSOR_RESIDENCY_EV_SHARD_CUT;
}

/* More ranks than rows: this rank holds none. Nothing to map or read, so
 * nothing is asked of the boundary and nothing needs releasing. */
void emel_tensor_adopt_empty_shard(tensor_residency_ctx *m) {
  m->tensor->view = (emel_tensor_view){.data = NULL,
                                       .size = 0,
                                       .residency = EMEL_RESIDENCY_NONE,
                                       .strategy = m->options->strategy,
                                       .row_begin = m->slice.row_begin,
                                       .row_end = m->slice.row_end};
  memset(&m->tensor->handle, 0, sizeof m->tensor->handle); /* strategy NONE: nothing to release */
  clear_error(m);
}

void emel_tensor_refuse_shard(tensor_residency_ctx *m) { set_error(m, m->verdict, 0); }

emel_io_request emel_tensor_io_request(const tensor_record *r, uint32_t index, const emel_load_options *o,
                                       const emel_tensor_slice *slice) {
  emel_io_request req = {
      .tensor = index,
      .file_index = r->span.file_index,
      .offset = slice->offset,
      .size = slice->size,
      .strategy = o->strategy,
      .flags = o->flags,
      .target = o->target,
      .target_size = o->target_size,
  };
  if (o->consumer) { /* emel_io_request has no room of its own for it (no struct_size): see io_staged.h */
    req.flags |= EMEL_LOAD_CONSUMER;
    req.target = (void *)o->consumer; /* the strategy only reads it */
    req.target_size = 0;
  }
  return req;
}

uint64_t emel_tensor_owned_need(const emel_load_options *o, const emel_tensor_slice *slice) {
  return o->strategy == EMEL_STRATEGY_READ && !o->target ? slice->size : 0;
}

tensor_residency_event emel_tensor_check_budget(tensor_residency_ctx *m) {
  m->need = emel_tensor_owned_need(m->options, &m->slice);
  switch (emel_tensors_budget_verdict(m->table, m->need)) {
  case BUDGET_VERDICT_FITS: return TENSOR_RESIDENCY_EV_BUDGET_FITS;
  case BUDGET_VERDICT_SHORT: return TENSOR_RESIDENCY_EV_BUDGET_SHORT;
  case BUDGET_VERDICT_EXCEEDED: break;
  }
  return TENSOR_RESIDENCY_EV_BUDGET_EXCEEDED;
}

tensor_residency_event emel_tensor_make_room(tensor_residency_ctx *m) {
  m->room_error = emel_tensors_make_room(m->table, m->need);
  return m->room_error.code == EMEL_OK ? TENSOR_RESIDENCY_EV_ROOM_MADE : TENSOR_RESIDENCY_EV_ROOM_REFUSED;
}

void emel_tensor_refuse_budget(tensor_residency_ctx *m) { set_error(m, EMEL_BUDGET_EXCEEDED, 0); }

/* The load fails with the victim's release error: the reason there is no room. */
void emel_tensor_record_room_error(tensor_residency_ctx *m) {
  set_error(m, m->room_error.code, m->room_error.os_errno);
}

tensor_residency_event emel_tensor_check_pin(tensor_residency_ctx *m) {
  return m->tensor->pins > 0 && !m->force ? TENSOR_RESIDENCY_EV_EVICTION_PINNED
                                          : TENSOR_RESIDENCY_EV_EVICTION_ALLOWED;
}

tensor_residency_event emel_tensor_request_residency(tensor_residency_ctx *m) {
  const emel_io_request req = emel_tensor_io_request(m->tensor, m->index, m->options, &m->slice);
  if (!m->io) {
    memset(&m->result, 0, sizeof m->result);
    m->result.error.code = EMEL_UNKNOWN_STRATEGY;
  } else {
    emel_io_acquire(m->io, &req, &m->result);
  }
  return m->result.error.code == EMEL_OK ? TENSOR_RESIDENCY_EV_RESIDENCY_GRANTED : TENSOR_RESIDENCY_EV_RESIDENCY_REFUSED;
}

/* The batch acquired this tensor's span already: its result is the outcome. */
tensor_residency_event emel_tensor_check_batch_result(tensor_residency_ctx *m) {
  m->result = *m->batch_result;
  /* The table did not admit it to the window: nothing was asked of the boundary. */
  if (m->result.error.code == EMEL_BUDGET_EXCEEDED) return TENSOR_RESIDENCY_EV_BUDGET_EXCEEDED;
  return m->result.error.code == EMEL_OK ? TENSOR_RESIDENCY_EV_RESIDENCY_GRANTED : TENSOR_RESIDENCY_EV_RESIDENCY_REFUSED;
}

void emel_tensor_record_residency(tensor_residency_ctx *m) {
  m->tensor->view.data = m->result.data;
  m->tensor->view.size = m->result.size;
  m->tensor->view.residency = m->result.residency;
  m->tensor->view.strategy = m->result.strategy;
  m->tensor->view.row_begin = m->slice.row_begin;
  m->tensor->view.row_end = m->slice.row_end;
  m->tensor->handle = m->result.handle;
  clear_error(m);
}

void emel_tensor_record_load_error(tensor_residency_ctx *m) {
  set_error(m, m->result.error.code, m->result.error.os_errno);
}

tensor_residency_event emel_tensor_release_residency(tensor_residency_ctx *m) {
  if (m->tensor->handle.strategy == EMEL_STRATEGY_NONE) {
    /* A load job's buffer is the table's to free; caller-owned storage stays with its owner. */
    if (m->tensor->owned) m->platform->free(m->platform->user, m->tensor->owned, m->tensor->owned_size);
    m->tensor->owned = NULL;
    m->release_error.code = EMEL_OK;
    m->release_error.os_errno = 0;
  } else {
    m->release_error = (emel_error){.code = EMEL_INVALID_HANDLE};
    if (m->io) (void)emel_io_release(m->io, m->tensor->handle, &m->release_error);
  }
  return m->release_error.code == EMEL_OK ? TENSOR_RESIDENCY_EV_RESIDENCY_RELEASED : TENSOR_RESIDENCY_EV_RELEASE_REFUSED;
}

void emel_tensor_forget_residency(tensor_residency_ctx *m) {
  memset(&m->tensor->view, 0, sizeof m->tensor->view);
  memset(&m->tensor->handle, 0, sizeof m->tensor->handle);
  clear_error(m);
}

void emel_tensor_record_release_error(tensor_residency_ctx *m) {
  set_error(m, m->release_error.code, m->release_error.os_errno);
}

void emel_tensor_refuse(tensor_residency_ctx *m, emel_status code) {
  /* A refused request does not overwrite the tensor's last load error:
   * only the call's status reports it. */
  m->status = code;
}

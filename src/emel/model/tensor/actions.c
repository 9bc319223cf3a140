/* Actions of the tensor residency machine: each performs one effect or
 * computes one outcome; statecharts/tensor_residency.rl decides what follows. */
#include "residency.h"

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

void emel_tensor_adopt_external(tensor_residency_ctx *m) {
  m->tensor->view.data = m->external_data;
  m->tensor->view.size = m->tensor->span.size;
  m->tensor->view.residency = EMEL_RESIDENCY_EXTERNAL;
  m->tensor->view.strategy = EMEL_STRATEGY_NONE;
  memset(&m->tensor->handle, 0, sizeof m->tensor->handle); /* strategy NONE: nothing to release */
  clear_error(m);
}

void emel_tensor_refuse_external(tensor_residency_ctx *m) { set_error(m, EMEL_EXTERNAL_TOO_SMALL, 0); }

emel_io_request emel_tensor_io_request(const tensor_record *r, uint32_t index, const emel_load_options *o) {
  emel_io_request req = {
      .tensor = index,
      .file_index = r->span.file_index,
      .offset = r->span.offset,
      .size = r->span.size,
      .strategy = o->strategy,
      .flags = o->flags,
      .target = o->target,
      .target_size = o->target_size,
  };
  return req;
}

tensor_residency_event emel_tensor_request_residency(tensor_residency_ctx *m) {
  const emel_io_request req = emel_tensor_io_request(m->tensor, m->index, m->options);
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
  return m->result.error.code == EMEL_OK ? TENSOR_RESIDENCY_EV_RESIDENCY_GRANTED : TENSOR_RESIDENCY_EV_RESIDENCY_REFUSED;
}

void emel_tensor_record_residency(tensor_residency_ctx *m) {
  m->tensor->view.data = m->result.data;
  m->tensor->view.size = m->result.size;
  m->tensor->view.residency = m->result.residency;
  m->tensor->view.strategy = m->result.strategy;
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

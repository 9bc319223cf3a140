#include "machine.h"

void emel_machine_init(emel_machine *m, const emel_machine_desc *desc) {
  m->cs = desc->start_state;
  m->pending = EMEL_NO_EVENT;
}

emel_status emel_machine_dispatch(emel_machine *m, const emel_machine_desc *desc, void *ctx,
                                  int event) {
  int first = 1;
  while (event != EMEL_NO_EVENT) {
    const int from = m->cs;
    m->pending = EMEL_NO_EVENT;
    desc->exec(ctx, event);
    if (m->cs == desc->error_state) {
      m->cs = from;
      m->pending = EMEL_NO_EVENT;
      return first ? EMEL_UNEXPECTED_EVENT : EMEL_INTERNAL;
    }
#ifdef EMEL_TRACE_TRANSITIONS
    emel_trace_transition(desc, from, event);
#endif
    event = m->pending;
    first = 0;
  }
  return EMEL_OK;
}

const char *emel_machine_state_name(const emel_machine_desc *desc, int state) {
  if (state < 0 || state >= desc->state_count || !desc->state_names[state]) return "?";
  return desc->state_names[state];
}

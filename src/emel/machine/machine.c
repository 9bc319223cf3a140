#include "machine.h"

void emel_machine_init(emel_machine *m, const emel_machine_desc *desc) {
  m->cs = desc->start_state;
  m->pending = EMEL_NO_EVENT;
}

emel_status emel_machine_dispatch(emel_machine *m, const emel_machine_desc *desc, void *ctx,
                                  int event) {
  /* Checked before exec: -G2 code fed in the error state would restart silently. */
  if (m->cs == desc->error_state) return EMEL_INTERNAL;
  int first = 1;
  while (event != EMEL_NO_EVENT) {
    const int from = m->cs;
    m->pending = EMEL_NO_EVENT;
    desc->exec(ctx, event);
    if (m->cs == desc->error_state) {
      m->pending = EMEL_NO_EVENT;
      if (!first) return EMEL_INTERNAL; /* an action's outcome: the instance stays broken */
      m->cs = from;                     /* a request: refused, nothing was done */
      return EMEL_UNEXPECTED_EVENT;
    }
#ifdef EMEL_TRACE_TRANSITIONS
    emel_trace_transition(desc, from, event);
#endif
    event = m->pending;
    first = 0;
  }
  /* An action owed an outcome and reported none: the chain stopped half-way. */
  if (!desc->resting[m->cs]) {
    m->cs = desc->error_state;
    return EMEL_INTERNAL;
  }
  return EMEL_OK;
}

const char *emel_machine_state_name(const emel_machine_desc *desc, int state) {
  if (state < 0 || state >= desc->state_count || !desc->state_names[state]) return "?";
  return desc->state_names[state];
}

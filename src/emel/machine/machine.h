/* The conventions every generated machine follows (see README "Machines").
 *
 * An instance is a context struct whose first member is an emel_machine (the
 * Ragel `cs` and the pending outcome event). Dispatch runs to completion: an
 * action performs one effect, stores the outcome event it observed in
 * `pending`, and the driver feeds that event back until none is pending. Which
 * state follows is decided by the spec, never by the action.
 *
 * An event the current state does not accept is refused with
 * EMEL_UNEXPECTED_EVENT and the machine stays where it was (Ragel would move to
 * its error state, and -G2 code would silently restart from there).
 * The driver allocates nothing and keeps no global state, so instances on
 * different threads are independent.
 */
#ifndef EMEL_MACHINE_H
#define EMEL_MACHINE_H

#include "emel/status.h"

/* Event code 0 means "no event pending"; specs export events from 1. */
#define EMEL_NO_EVENT 0

typedef struct emel_machine {
  int cs;      /* Ragel's current state */
  int pending; /* outcome event reported by the last action, or EMEL_NO_EVENT */
} emel_machine;

/* One transition of a machine's table (generated into gen/NAME_names.h). */
typedef struct emel_transition {
  int from, event, to;
} emel_transition;

typedef struct emel_machine_desc {
  const char *name;
  void (*exec)(void *ctx, int event); /* feeds one event to Ragel's write exec */
  int start_state;
  int error_state;
  const char *const *state_names; /* indexed by state id; NULL for unnamed */
  int state_count;
  const char *const *event_names; /* indexed by event code */
  int event_count;
  const emel_transition *transitions;
  int transition_count;
} emel_machine_desc;

/* Puts the machine in its start state with nothing pending. */
void emel_machine_init(emel_machine *m, const emel_machine_desc *desc);

/* Feeds `event` and every outcome the actions report, until none is pending.
 * `ctx` is the context struct whose first member is `m`.
 * Returns EMEL_OK, EMEL_UNEXPECTED_EVENT (state unchanged) or EMEL_INTERNAL
 * (the spec refused its own outcome event: a spec defect). */
emel_status emel_machine_dispatch(emel_machine *m, const emel_machine_desc *desc, void *ctx,
                                  int event);

/* State name for diagnostics ("?" when out of range). */
const char *emel_machine_state_name(const emel_machine_desc *desc, int state);

/* Called by actions to report their outcome. */
static inline void emel_machine_report(emel_machine *m, int outcome) { m->pending = outcome; }

/* ---- helpers used by the specs in statecharts/ ---- */

/* An action reports the outcome event it observed. */
#define EMEL_REPORT(ctx, outcome) ((ctx)->core.pending = (outcome))

/* The C enum of events must equal the spec's exports: a drifted value fails the build. */
#define EMEL_CHECK_EVENT(machine, spec_name, c_name) \
  _Static_assert(machine##_ex_##spec_name == (c_name), #machine " event " #spec_name " drifted from the C enum")

/* -G2 code falls through between case labels on purpose. */
#define EMEL_GENERATED_EXEC_BEGIN \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wimplicit-fallthrough\"")
#define EMEL_GENERATED_EXEC_END _Pragma("GCC diagnostic pop")

/* Builds the descriptor from the names, transitions and state ids tools/regen
 * writes into gen/<machine>_names.h and the spec's <machine>_exec. */
#define EMEL_MACHINE_DESC(machine)                                                          \
  {                                                                                         \
    #machine, machine##_exec, machine##_START_STATE, machine##_ERROR_STATE,                  \
        machine##_state_names, machine##_STATE_COUNT, machine##_event_names,                \
        machine##_EVENT_COUNT, machine##_transitions, machine##_TRANSITION_COUNT            \
  }

#ifdef EMEL_TRACE_TRANSITIONS
/* Test builds: records (machine, from-state, event) for the transition coverage test. */
void emel_trace_transition(const emel_machine_desc *desc, int from, int event);
#endif

#endif

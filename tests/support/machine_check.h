/* Drives a generated machine with every event its states do not accept. */
#ifndef EMEL_TESTS_MACHINE_CHECK_H
#define EMEL_TESTS_MACHINE_CHECK_H

#include "emel/machine/machine.h"

/* For every named state and every event the state's transitions do not name:
 * puts `core` (the first member of `ctx`) in that state, dispatches the event
 * and checks it is refused with EMEL_UNEXPECTED_EVENT and the state kept.
 * Returns the number of (state, event) pairs checked; fails the running Check
 * test at the first violation. */
int machine_check_unexpected_events(const emel_machine_desc *desc, emel_machine *core, void *ctx);

/* Checks the generated queries of gen/<machine>_machine.h against the
 * machine's transition table, for every (state, event) pair including the
 * error state and unused codes: target gives the table's target or the error
 * state, accepts agrees with it, rests with the descriptor's resting table;
 * and a dispatch can end only in a resting state that accepts no outcome the
 * actions report. Fails the running Check test at the first disagreement. */
void machine_check_queries(const emel_machine_desc *desc, int (*target)(int, int), int (*accepts)(int, int),
                           int (*rests)(int));

/* State id by name, or -1 (fails the test when absent). */
int machine_state(const emel_machine_desc *desc, const char *name);

#endif

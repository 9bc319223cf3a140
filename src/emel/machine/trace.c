/* Transition trace for test builds (EMEL_TRACE_TRANSITIONS).
 *
 * Each (machine, from-state, event) seen for the first time in this process is
 * appended as one line to the file named by $EMEL_TRANSITION_LOG. Check runs
 * each test in a forked child, so lines are written at once rather than at
 * exit; O_APPEND-style writes of one short line do not interleave. Global
 * state is acceptable here: it exists only in test builds. It is atomic
 * because the read strategy's batch runs dispatch on worker threads.
 */
#include "machine.h"

#ifdef EMEL_TRACE_TRANSITIONS
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TRACE_MACHINES = 16, TRACE_DIM = 128, TRACE_CELLS = TRACE_DIM * TRACE_DIM };

static struct {
  _Atomic(const emel_machine_desc *) desc;
  atomic_uchar seen[TRACE_CELLS];
} trace_table[TRACE_MACHINES];

/* The slot of `desc`, claimed on first sight; TRACE_MACHINES when full. */
static int trace_slot(const emel_machine_desc *desc) {
  for (int slot = 0; slot < TRACE_MACHINES; slot++) {
    const emel_machine_desc *seen = atomic_load(&trace_table[slot].desc);
    if (seen == desc) return slot;
    if (!seen) {
      const emel_machine_desc *expected = NULL;
      if (atomic_compare_exchange_strong(&trace_table[slot].desc, &expected, desc) || expected == desc) return slot;
    }
  }
  return TRACE_MACHINES;
}

void emel_trace_transition(const emel_machine_desc *desc, int from, int event) {
  const char *path = getenv("EMEL_TRANSITION_LOG");
  if (!path || !*path) return;
  const int slot = trace_slot(desc);
  if (slot == TRACE_MACHINES) return;
  if (from < 0 || from >= TRACE_DIM || event < 0 || event >= TRACE_DIM) return;
  if (atomic_exchange(&trace_table[slot].seen[from * TRACE_DIM + event], 1)) return;
  FILE *f = fopen(path, "a");
  if (!f) return;
  const char *ev = (event < desc->event_count && desc->event_names[event]) ? desc->event_names[event] : "?";
  char line[256];
  int n = snprintf(line, sizeof line, "%s %s %s\n", desc->name, emel_machine_state_name(desc, from), ev);
  if (n > 0) fwrite(line, 1, strlen(line), f);
  fclose(f);
}
#else
typedef int emel_trace_disabled_; /* ISO C forbids an empty translation unit */
#endif

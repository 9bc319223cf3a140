#include "machine_check.h"

#include <check.h>
#include <string.h>

static int accepts(const emel_machine_desc *d, int state, int event) {
  for (int i = 0; i < d->transition_count; i++)
    if (d->transitions[i].from == state && d->transitions[i].event == event) return 1;
  return 0;
}

int machine_check_unexpected_events(const emel_machine_desc *d, emel_machine *core, void *ctx) {
  int checked = 0;
  for (int s = 0; s < d->state_count; s++) {
    if (!d->state_names[s]) continue;
    for (int e = 1; e < d->event_count; e++) {
      if (!d->event_names[e] || accepts(d, s, e)) continue;
      core->cs = s;
      core->pending = 0;
      emel_status st = emel_machine_dispatch(core, d, ctx, e);
      ck_assert_msg(st == EMEL_UNEXPECTED_EVENT, "%s: state %s accepted %s (status %s)", d->name,
                    d->state_names[s], d->event_names[e], emel_status_name(st));
      ck_assert_msg(core->cs == s, "%s: state %s moved on refused %s", d->name, d->state_names[s],
                    d->event_names[e]);
      checked++;
    }
  }
  return checked;
}

void machine_check_queries(const emel_machine_desc *d, int (*target)(int, int), int (*accepts)(int, int),
                           int (*rests)(int)) {
  for (int s = 0; s < d->state_count; s++) {
    ck_assert_msg(rests(s) == d->resting[s], "%s: rests(%d) disagrees with the table", d->name, s);
    for (int e = 0; e <= d->event_count; e++) {
      int want = d->error_state;
      for (int i = 0; i < d->transition_count; i++)
        if (d->transitions[i].from == s && d->transitions[i].event == e) want = d->transitions[i].to;
      ck_assert_msg(target(s, e) == want, "%s: target(%d, %d) is %d, the table says %d", d->name, s, e,
                    target(s, e), want);
      ck_assert_msg(accepts(s, e) == (want != d->error_state), "%s: accepts(%d, %d) disagrees", d->name, s, e);
    }
  }
  ck_assert(!rests(d->error_state));
  ck_assert(rests(d->start_state));
}

int machine_state(const emel_machine_desc *d, const char *name) {
  for (int s = 0; s < d->state_count; s++)
    if (d->state_names[s] && strcmp(d->state_names[s], name) == 0) return s;
  ck_abort_msg("%s has no state %s", d->name, name);
  return -1;
}

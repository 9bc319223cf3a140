/* The run-to-completion driver every generated machine uses, exercised with a
 * hand-written two-state exec so each of its routes is reached on purpose. */
#include <check.h>

#include "check_main.h"
#include "emel/machine/machine.h"

/* idle --GO/report(DONE)--> busy --DONE--> idle; busy --BAD_OUTCOME--> error;
 * idle --GO_SILENT/report nothing--> busy, which does not rest: a defect too. */
enum { ST_ERROR = 0, ST_IDLE = 1, ST_BUSY = 2 };
enum { EV_GO = 1, EV_DONE = 2, EV_GO_WRONG = 3, EV_BAD = 4, EV_GO_SILENT = 5 };

typedef struct toy {
  emel_machine core;
  int steps;
} toy;

static void toy_exec(void *ctx, int ev) {
  toy *m = ctx;
  m->steps++;
  if (m->core.cs == ST_IDLE && ev == EV_GO) {
    m->core.cs = ST_BUSY;
    m->core.pending = EV_DONE;
  } else if (m->core.cs == ST_IDLE && ev == EV_GO_WRONG) {
    m->core.cs = ST_BUSY;
    m->core.pending = EV_BAD; /* an outcome busy does not accept: an action defect */
  } else if (m->core.cs == ST_IDLE && ev == EV_GO_SILENT) {
    m->core.cs = ST_BUSY; /* the action owed busy an outcome and reported none */
  } else if (m->core.cs == ST_BUSY && ev == EV_DONE) {
    m->core.cs = ST_IDLE;
  } else {
    m->core.cs = ST_ERROR;
  }
}

static const char *const toy_states[] = {NULL, "idle", "busy"};
static const unsigned char toy_resting[] = {0, 1, 0};
static const char *const toy_events[] = {NULL, "GO", "DONE", "GO_WRONG", "BAD", "GO_SILENT"};
static const emel_transition toy_transitions[] = {{1, 1, 2}, {1, 3, 2}, {1, 5, 2}, {2, 2, 1}};
static const emel_machine_desc toy_desc = {"toy", toy_exec, ST_IDLE, ST_ERROR, toy_states, toy_resting, 3,
                                           toy_events, 6, toy_transitions, 4};

START_TEST(test_dispatch_feeds_reported_outcomes_until_none_is_pending) {
  toy m = {{0, 0}, 0};
  emel_machine_init(&m.core, &toy_desc);
  ck_assert_int_eq(m.core.cs, ST_IDLE);
  ck_assert_int_eq(emel_machine_dispatch(&m.core, &toy_desc, &m, EV_GO), EMEL_OK);
  ck_assert_int_eq(m.core.cs, ST_IDLE);
  ck_assert_int_eq(m.steps, 2);
}
END_TEST

START_TEST(test_an_event_the_state_does_not_accept_is_refused_and_the_state_kept) {
  toy m = {{0, 0}, 0};
  emel_machine_init(&m.core, &toy_desc);
  ck_assert_int_eq(emel_machine_dispatch(&m.core, &toy_desc, &m, EV_DONE), EMEL_UNEXPECTED_EVENT);
  ck_assert_int_eq(m.core.cs, ST_IDLE);
  /* The machine is not stuck in Ragel's error state: the next event works. */
  ck_assert_int_eq(emel_machine_dispatch(&m.core, &toy_desc, &m, EV_GO), EMEL_OK);
}
END_TEST

/* Guards against leaving the instance in the transient state the refused
 * outcome found it in (it then refused every later request as unexpected, an
 * error that named the caller's request, not the defect). */
START_TEST(test_a_refused_outcome_breaks_the_machine_and_every_later_dispatch_is_internal) {
  toy m = {{0, 0}, 0};
  emel_machine_init(&m.core, &toy_desc);
  ck_assert_int_eq(emel_machine_dispatch(&m.core, &toy_desc, &m, EV_GO_WRONG), EMEL_INTERNAL);
  ck_assert_int_eq(m.core.cs, ST_ERROR);
  ck_assert_int_eq(m.core.pending, EMEL_NO_EVENT);
  ck_assert(emel_machine_broken(&m.core, &toy_desc));
  const int steps = m.steps;
  ck_assert_int_eq(emel_machine_dispatch(&m.core, &toy_desc, &m, EV_GO), EMEL_INTERNAL);
  ck_assert_int_eq(emel_machine_dispatch(&m.core, &toy_desc, &m, EV_DONE), EMEL_INTERNAL);
  ck_assert_int_eq(m.steps, steps); /* never fed to exec: -G2 code would restart from the error state */
}
END_TEST

/* Guards against a dispatch that stops in a state that waits for an outcome
 * (an action returned EMEL_NO_EVENT) passing as EMEL_OK. */
START_TEST(test_a_dispatch_that_ends_where_an_outcome_is_due_breaks_the_machine) {
  toy m = {{0, 0}, 0};
  emel_machine_init(&m.core, &toy_desc);
  ck_assert_int_eq(emel_machine_dispatch(&m.core, &toy_desc, &m, EV_GO_SILENT), EMEL_INTERNAL);
  ck_assert(emel_machine_broken(&m.core, &toy_desc));
  ck_assert_int_eq(emel_machine_dispatch(&m.core, &toy_desc, &m, EV_DONE), EMEL_INTERNAL);
}
END_TEST

START_TEST(test_state_names_are_given_and_out_of_range_ids_are_question_marks) {
  ck_assert_str_eq(emel_machine_state_name(&toy_desc, ST_BUSY), "busy");
  ck_assert_str_eq(emel_machine_state_name(&toy_desc, ST_ERROR), "?");
  ck_assert_str_eq(emel_machine_state_name(&toy_desc, 99), "?");
  ck_assert_str_eq(emel_machine_state_name(&toy_desc, -1), "?");
}
END_TEST

static Suite *machine_suite(void) {
  Suite *s = suite_create("machine");
  TCase *tc = tcase_create("driver");
  tcase_add_test(tc, test_dispatch_feeds_reported_outcomes_until_none_is_pending);
  tcase_add_test(tc, test_an_event_the_state_does_not_accept_is_refused_and_the_state_kept);
  tcase_add_test(tc, test_a_refused_outcome_breaks_the_machine_and_every_later_dispatch_is_internal);
  tcase_add_test(tc, test_a_dispatch_that_ends_where_an_outcome_is_due_breaks_the_machine);
  tcase_add_test(tc, test_state_names_are_given_and_out_of_range_ids_are_question_marks);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(machine_suite)

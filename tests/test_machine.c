/* The run-to-completion driver every generated machine uses, exercised with a
 * hand-written two-state exec so each of its routes is reached on purpose. */
#include <check.h>

#include "check_main.h"
#include "emel/machine/machine.h"

/* idle --GO/report(DONE)--> busy --DONE--> idle; busy --BAD_OUTCOME--> error. */
enum { ST_ERROR = 0, ST_IDLE = 1, ST_BUSY = 2 };
enum { EV_GO = 1, EV_DONE = 2, EV_GO_WRONG = 3, EV_BAD = 4 };

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
    m->core.pending = EV_BAD; /* an outcome busy does not accept: a spec defect */
  } else if (m->core.cs == ST_BUSY && ev == EV_DONE) {
    m->core.cs = ST_IDLE;
  } else {
    m->core.cs = ST_ERROR;
  }
}

static const char *const toy_states[] = {NULL, "idle", "busy"};
static const char *const toy_events[] = {NULL, "GO", "DONE", "GO_WRONG", "BAD"};
static const emel_transition toy_transitions[] = {{1, 1, 2}, {1, 3, 2}, {2, 2, 1}};
static const emel_machine_desc toy_desc = {"toy", toy_exec, ST_IDLE, ST_ERROR, toy_states, 3,
                                           toy_events, 5, toy_transitions, 3};

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

START_TEST(test_a_refused_outcome_is_an_internal_error_that_keeps_the_last_state) {
  toy m = {{0, 0}, 0};
  emel_machine_init(&m.core, &toy_desc);
  ck_assert_int_eq(emel_machine_dispatch(&m.core, &toy_desc, &m, EV_GO_WRONG), EMEL_INTERNAL);
  ck_assert_int_eq(m.core.cs, ST_BUSY);
  ck_assert_int_eq(m.core.pending, EMEL_NO_EVENT);
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
  tcase_add_test(tc, test_a_refused_outcome_is_an_internal_error_that_keeps_the_last_state);
  tcase_add_test(tc, test_state_names_are_given_and_out_of_range_ids_are_question_marks);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(machine_suite)

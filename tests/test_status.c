/* The error model: one list, stable numbers, a name and a message for each. */
#include <check.h>
#include <string.h>

#include "check_main.h"
#include "emel/status.h"

static const struct {
  emel_status code;
  const char *name;
  int number;
} every[] = {
#define ROW_(name, number, message) {EMEL_##name, #name, number},
    EMEL_STATUS_LIST(ROW_)
#undef ROW_
};

START_TEST(test_every_code_has_its_own_name_and_a_message) {
  size_t n = sizeof every / sizeof every[0];
  for (size_t i = 0; i < n; i++) {
    ck_assert_str_eq(emel_status_name(every[i].code), every[i].name);
    const char *msg = emel_status_message(every[i].code);
    ck_assert_uint_gt(strlen(msg), 5);
    ck_assert_msg(msg[strlen(msg) - 1] != '.', "%s: messages end without a period", every[i].name);
    for (size_t j = i + 1; j < n; j++) {
      ck_assert_msg(every[i].number != every[j].number, "%s and %s share %d", every[i].name, every[j].name,
                    every[i].number);
    }
  }
}
END_TEST

START_TEST(test_codes_keep_their_published_numbers) {
  /* Callers log and compare these numbers: they never change. */
  ck_assert_int_eq(EMEL_OK, 0);
  ck_assert_int_eq(EMEL_UNEXPECTED_EVENT, 100);
  ck_assert_int_eq(EMEL_SPAN_BEYOND_EOF, 110);
  ck_assert_int_eq(EMEL_TENSOR_UNKNOWN, 200);
  ck_assert_int_eq(EMEL_MMAP_FAILED, 301);
  ck_assert_int_eq(EMEL_READ_UNEXPECTED_EOF, 403);
  ck_assert_int_eq(EMEL_GGUF_BAD_MAGIC, 500);
}
END_TEST

START_TEST(test_an_unknown_number_still_gets_a_name_and_a_message) {
  ck_assert_str_eq(emel_status_name((emel_status)9999), "UNKNOWN_STATUS");
  ck_assert_str_eq(emel_status_message((emel_status)-1), "unknown status code");
}
END_TEST

static Suite *status_suite(void) {
  Suite *s = suite_create("status");
  TCase *tc = tcase_create("codes");
  tcase_add_test(tc, test_every_code_has_its_own_name_and_a_message);
  tcase_add_test(tc, test_codes_keep_their_published_numbers);
  tcase_add_test(tc, test_an_unknown_number_still_gets_a_name_and_a_message);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(status_suite)

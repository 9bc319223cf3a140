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

/* Every released name=number pair, written out by hand (NOT generated from
 * EMEL_STATUS_LIST): callers log, store and compare these numbers, so a code
 * is never renumbered or removed. Adding a code means adding its line here. */
static const struct {
  const char *name;
  int number;
} pinned[] = {
    {"OK", 0},
    {"UNEXPECTED_EVENT", 100},
    {"INVALID_ARGUMENT", 101},
    {"OUT_OF_MEMORY", 102},
    {"UNKNOWN_STRATEGY", 103},
    {"INVALID_REQUEST", 104},
    {"INVALID_PATH", 105},
    {"INVALID_FILE_INDEX", 106},
    {"SPAN_OVERFLOW", 107},
    {"OPEN_FAILED", 108},
    {"STAT_FAILED", 109},
    {"SPAN_BEYOND_EOF", 110},
    {"INVALID_HANDLE", 111},
    {"POOL_EXHAUSTED", 112},
    {"FILE_TABLE_FULL", 113},
    {"FILE_CHANGED", 114},
    {"NOT_A_REGULAR_FILE", 115},
    {"STRUCT_SIZE_UNKNOWN", 116},
    {"PLATFORM_OPS_UNPAIRED", 117},
    {"CANCELLED", 118},
    {"JOB_START_FAILED", 119},
    {"INTERNAL", 199},
    {"TENSOR_UNKNOWN", 200},
    {"TENSOR_ALREADY_RESIDENT", 201},
    {"TENSOR_NOT_RESIDENT", 202},
    {"TENSOR_NOT_BOUND", 203},
    {"TENSOR_ALREADY_BOUND", 204},
    {"TENSOR_TABLE_FULL", 205},
    {"TENSOR_DUPLICATE_NAME", 206},
    {"TENSOR_NAME_INVALID", 207},
    {"EXTERNAL_TOO_SMALL", 208},
    {"TENSOR_ALREADY_EVICTED", 209},
    {"TENSOR_HASH_MISMATCH", 210},
    {"INVALID_SHARD", 211},
    {"TENSOR_BUSY", 212},
    {"BUDGET_EXCEEDED", 213},
    {"TENSOR_PINNED", 214},
    {"MMAP_UNSUPPORTED", 300},
    {"MMAP_FAILED", 301},
    {"MMAP_LOCK_FAILED", 302},
    {"MMAP_ADVISE_RANGE_INVALID", 303},
    {"MMAP_ADVISE_FAILED", 304},
    {"MMAP_UNMAP_FAILED", 305},
    {"MMAP_POPULATE_FAILED", 306},
    {"MMAP_UNLOCK_FAILED", 307},
    {"READ_TARGET_TOO_SMALL", 400},
    {"READ_ALLOC_FAILED", 401},
    {"READ_FAILED", 402},
    {"READ_UNEXPECTED_EOF", 403},
    {"GGUF_BAD_MAGIC", 500},
    {"GGUF_BIG_ENDIAN", 501},
    {"GGUF_BAD_VERSION", 502},
    {"GGUF_TRUNCATED", 503},
    {"GGUF_COUNT_TOO_LARGE", 504},
    {"GGUF_STRING_TOO_LONG", 505},
    {"GGUF_ARRAY_TOO_LONG", 506},
    {"GGUF_BAD_KEY_TYPE", 507},
    {"GGUF_BAD_DIMS", 508},
    {"GGUF_SIZE_OVERFLOW", 509},
    {"GGUF_BAD_TENSOR_TYPE", 510},
    {"GGUF_BAD_ALIGNMENT", 511},
    {"GGUF_MISALIGNED_OFFSET", 512},
    {"GGUF_SPAN_OUTSIDE_FILE", 513},
    {"GGUF_OVERLAPPING_SPANS", 514},
    {"GGUF_DUPLICATE_NAME", 515},
    {"GGUF_DUPLICATE_KEY", 516},
    {"GGUF_BAD_BLOCK_SIZE", 517},
    {"GGUF_SPLIT_INVALID", 518},
    {"GGUF_KEY_NOT_FOUND", 519},
    {"GGUF_KEY_TYPE_MISMATCH", 520},
    {"GGUF_NESTING_TOO_DEEP", 521},
    {"GGUF_EMPTY_KEY", 522},
    {"GGUF_LIMIT_EXCEEDED", 523},
    {"STAGED_CONSUMER_FAILED", 600},
    {"STAGED_NO_CONSUMER", 601},
    {"STAGED_NO_BYTES", 602},
    {"STAGED_HANDOFF_FAILED", 603},
    {"STAGED_STREAM_STOPPED", 604},
};

START_TEST(test_codes_keep_their_published_numbers) {
  /* Guards against renumbering a code (its number then names another code or
   * none) and against removing one (its number becomes UNKNOWN_STATUS). */
  for (size_t i = 0; i < sizeof pinned / sizeof pinned[0]; i++)
    ck_assert_msg(strcmp(emel_status_name((emel_status)pinned[i].number), pinned[i].name) == 0,
                  "%s must stay %d, but %d is now %s", pinned[i].name, pinned[i].number, pinned[i].number,
                  emel_status_name((emel_status)pinned[i].number));
}
END_TEST

START_TEST(test_every_code_is_pinned) {
  /* Guards against a code added to the list without being pinned above (its
   * number would then be free to drift before anyone notices). */
  for (size_t i = 0; i < sizeof every / sizeof every[0]; i++) {
    int found = 0;
    for (size_t j = 0; j < sizeof pinned / sizeof pinned[0]; j++)
      if (strcmp(pinned[j].name, every[i].name) == 0) found = pinned[j].number == every[i].number ? 1 : -1;
    ck_assert_msg(found == 1, "EMEL_%s (%d) is %s in this test's pinned list", every[i].name, every[i].number,
                  found ? "numbered differently" : "missing");
  }
  ck_assert_uint_eq(sizeof every / sizeof every[0], sizeof pinned / sizeof pinned[0]);
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
  tcase_add_test(tc, test_every_code_is_pinned);
  tcase_add_test(tc, test_an_unknown_number_still_gets_a_name_and_a_message);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(status_suite)

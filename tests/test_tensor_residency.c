/* Tensor residency: every route of statecharts/tensor_residency.rl, with the
 * error code and the tensor's state asserted after each. Loads go through the
 * io boundary to a fake strategy (the real strategies have their own suites). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "emel/tensor.h"
#include "emel/model/tensor/residency.h"
#include "fake_strategy.h"
#include "fault_platform.h"
#include "machine_check.h"

static fault_platform fp;
static fake_strategy fake;
static emel_io *io;
static emel_tensors *t;

static emel_tensor_span span_of(uint64_t offset, uint64_t size) {
  emel_tensor_span s = {.type = 0, .n_dims = 1, .dims = {size / 4, 1, 1, 1}, .file_index = 0,
                        .offset = offset, .size = size};
  return s;
}

static const emel_load_options by_fake = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);

static void setup(void) {
  fault_platform_init(&fp);
  memset(&fake, 0, sizeof fake);
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
  ck_assert_int_eq(emel_io_create(&io, &ic, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_attach(io, &fake_strategy_ops, &fake, NULL), EMEL_OK);
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 8);
  ck_assert_int_eq(emel_tensors_create(&t, &tc, NULL), EMEL_OK);
}

static void teardown(void) {
  emel_tensors_destroy(t);
  emel_io_destroy(io);
  ck_assert_int_eq(fake.live, 0);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
}

static uint32_t bound_tensor(const char *name, uint64_t offset, uint64_t size) {
  uint32_t i;
  emel_tensor_span s = span_of(offset, size);
  ck_assert_int_eq(emel_tensors_add(t, name, strlen(name), &s, &i, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_BOUND);
  return i;
}

START_TEST(test_a_declared_tensor_is_unbound_and_binding_a_span_makes_it_bound) {
  uint32_t i;
  ck_assert_int_eq(emel_tensors_declare(t, "blk.0.attn_q.weight", 19, &i, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_UNBOUND);
  emel_tensor_span s = span_of(64, 256);
  s.n_dims = 2;
  s.dims[0] = 8;
  s.dims[1] = 8;
  ck_assert_int_eq(emel_tensors_bind(t, i, &s, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_BOUND);
  emel_tensor_info info;
  ck_assert_ptr_nonnull(emel_tensors_info(t, i, &info));
  ck_assert_str_eq(info.name, "blk.0.attn_q.weight");
  ck_assert_uint_eq(info.span.offset, 64);
  ck_assert_uint_eq(info.span.size, 256);
  ck_assert_uint_eq(info.span.dims[1], 8);
}
END_TEST

START_TEST(test_an_invalid_span_is_refused_and_the_tensor_stays_unbound) {
  uint32_t i;
  ck_assert_int_eq(emel_tensors_declare(t, "w", 1, &i, NULL), EMEL_OK);
  emel_tensor_span zero = span_of(0, 0);
  ck_assert_int_eq(emel_tensors_bind(t, i, &zero, NULL), EMEL_INVALID_REQUEST);
  ck_assert_int_eq(emel_tensors_last_error(t, i).code, EMEL_INVALID_REQUEST);
  emel_tensor_span dims = span_of(0, 16);
  dims.n_dims = 5;
  ck_assert_int_eq(emel_tensors_bind(t, i, &dims, NULL), EMEL_INVALID_REQUEST);
  emel_tensor_span overflow = span_of(UINT64_MAX - 3, 16);
  ck_assert_int_eq(emel_tensors_bind(t, i, &overflow, NULL), EMEL_SPAN_OVERFLOW);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_UNBOUND);
}
END_TEST

START_TEST(test_an_unbound_tensor_refuses_load_external_and_evict) {
  uint32_t i;
  unsigned char buf[16];
  ck_assert_int_eq(emel_tensors_declare(t, "w", 1, &i, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_load(t, i, &by_fake, NULL, NULL), EMEL_TENSOR_NOT_BOUND);
  ck_assert_int_eq(emel_tensors_bind_external(t, i, buf, sizeof buf, NULL), EMEL_TENSOR_NOT_BOUND);
  ck_assert_int_eq(emel_tensors_evict(t, i, NULL), EMEL_TENSOR_NOT_RESIDENT);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_UNBOUND);
  ck_assert_uint_eq(fake.acquires, 0);
}
END_TEST

START_TEST(test_a_bound_tensor_refuses_a_second_span_and_an_evict) {
  uint32_t i = bound_tensor("w", 0, 64);
  emel_tensor_span other = span_of(128, 64);
  ck_assert_int_eq(emel_tensors_bind(t, i, &other, NULL), EMEL_TENSOR_ALREADY_BOUND);
  ck_assert_int_eq(emel_tensors_evict(t, i, NULL), EMEL_TENSOR_NOT_RESIDENT);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_BOUND);
  emel_tensor_info info;
  emel_tensors_info(t, i, &info);
  ck_assert_uint_eq(info.span.offset, 0);
}
END_TEST

START_TEST(test_caller_storage_makes_a_bound_tensor_externally_resident_without_a_strategy) {
  emel_tensors *solo;
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = NULL, .capacity = 2, .platform = &fp.ops);
  ck_assert_int_eq(emel_tensors_create(&solo, &tc, NULL), EMEL_OK);
  uint32_t i;
  emel_tensor_span s = span_of(0, 32);
  ck_assert_int_eq(emel_tensors_add(solo, "emb", 3, &s, &i, NULL), EMEL_OK);
  unsigned char storage[40];
  memset(storage, 0xab, sizeof storage);
  ck_assert_int_eq(emel_tensors_bind_external(solo, i, storage, sizeof storage, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(solo, i), EMEL_TENSOR_RESIDENT);
  emel_tensor_view v;
  ck_assert_int_eq(emel_tensors_view(solo, i, &v, NULL), EMEL_OK);
  ck_assert_ptr_eq(v.data, storage);
  ck_assert_uint_eq(v.size, 32);
  ck_assert_int_eq(v.residency, EMEL_RESIDENCY_EXTERNAL);
  ck_assert_int_eq(v.strategy, EMEL_STRATEGY_NONE);
  ck_assert_uint_eq(emel_tensors_resident_count(solo), 1);
  ck_assert_int_eq(emel_tensors_evict(solo, i, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(solo, i), EMEL_TENSOR_EVICTED);
  ck_assert_int_eq(emel_tensors_view(solo, i, &v, NULL), EMEL_TENSOR_NOT_RESIDENT);
  ck_assert_uint_eq(storage[0], 0xab); /* the owner's bytes are left alone */
  ck_assert_uint_eq(emel_tensors_resident_count(solo), 0);
  emel_tensors_destroy(solo);
}
END_TEST

START_TEST(test_caller_storage_smaller_than_the_tensor_is_refused_and_it_stays_bound) {
  uint32_t i = bound_tensor("w", 0, 64);
  unsigned char small[63];
  ck_assert_int_eq(emel_tensors_bind_external(t, i, small, sizeof small, NULL), EMEL_EXTERNAL_TOO_SMALL);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_BOUND);
  ck_assert_int_eq(emel_tensors_last_error(t, i).code, EMEL_EXTERNAL_TOO_SMALL);
  ck_assert_int_eq(emel_tensors_bind_external(t, i, NULL, 64, NULL), EMEL_EXTERNAL_TOO_SMALL);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_BOUND);
}
END_TEST

START_TEST(test_loading_through_a_strategy_makes_the_tensor_resident_with_its_bytes) {
  uint32_t i = bound_tensor("w", 100, 24);
  for (int b = 0; b < 4096; b++) fake.bytes[b] = (unsigned char)b;
  emel_tensor_view v;
  ck_assert_int_eq(emel_tensors_load(t, i, &by_fake, &v, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_RESIDENT);
  ck_assert_ptr_eq(v.data, fake.bytes + 100);
  ck_assert_uint_eq(v.size, 24);
  ck_assert_int_eq(v.residency, EMEL_RESIDENCY_OWNED);
  ck_assert_int_eq(v.strategy, EMEL_STRATEGY_READ);
  ck_assert_uint_eq(fake.live, 1);
  ck_assert_int_eq(emel_tensors_evict(t, i, NULL), EMEL_OK);
  ck_assert_uint_eq(fake.live, 0);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_EVICTED);
}
END_TEST

START_TEST(test_a_failed_load_leaves_the_tensor_bound_with_the_error_and_errno_recorded) {
  uint32_t i = bound_tensor("w", 0, 64);
  fake.acquire_error = (emel_error){.code = EMEL_READ_FAILED, .os_errno = EIO};
  ck_assert_int_eq(emel_tensors_load(t, i, &by_fake, NULL, NULL), EMEL_READ_FAILED);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_BOUND);
  emel_error e = emel_tensors_last_error(t, i);
  ck_assert_int_eq(e.code, EMEL_READ_FAILED);
  ck_assert_int_eq(e.os_errno, EIO);
  emel_tensor_view v;
  ck_assert_int_eq(emel_tensors_view(t, i, &v, NULL), EMEL_TENSOR_NOT_RESIDENT);
  ck_assert_uint_eq(emel_tensors_resident_count(t), 0);
  /* The next load succeeds and clears the error. */
  fake.acquire_error.code = EMEL_OK;
  ck_assert_int_eq(emel_tensors_load(t, i, &by_fake, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_last_error(t, i).code, EMEL_OK);
}
END_TEST

START_TEST(test_a_load_with_no_such_strategy_attached_is_refused_and_the_tensor_stays_bound) {
  uint32_t i = bound_tensor("w", 0, 64);
  emel_load_options mmap_opts = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP);
  ck_assert_int_eq(emel_tensors_load(t, i, &mmap_opts, NULL, NULL), EMEL_UNKNOWN_STRATEGY);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_BOUND);
  /* A table without a boundary refuses every strategy the same way. */
  emel_tensors *solo;
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.capacity = 1, .platform = &fp.ops);
  ck_assert_int_eq(emel_tensors_create(&solo, &tc, NULL), EMEL_OK);
  emel_tensor_span s = span_of(0, 8);
  ck_assert_int_eq(emel_tensors_add(solo, "x", 1, &s, &i, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_load(solo, i, &by_fake, NULL, NULL), EMEL_UNKNOWN_STRATEGY);
  ck_assert_int_eq(emel_tensors_state(solo, i), EMEL_TENSOR_BOUND);
  emel_tensors_destroy(solo);
}
END_TEST

START_TEST(test_a_resident_tensor_refuses_another_load_external_storage_and_span) {
  uint32_t i = bound_tensor("w", 0, 64);
  ck_assert_int_eq(emel_tensors_load(t, i, &by_fake, NULL, NULL), EMEL_OK);
  unsigned char buf[64];
  emel_tensor_span s = span_of(0, 64);
  ck_assert_int_eq(emel_tensors_load(t, i, &by_fake, NULL, NULL), EMEL_TENSOR_ALREADY_RESIDENT);
  ck_assert_int_eq(emel_tensors_bind_external(t, i, buf, sizeof buf, NULL), EMEL_TENSOR_ALREADY_RESIDENT);
  ck_assert_int_eq(emel_tensors_bind(t, i, &s, NULL), EMEL_TENSOR_ALREADY_BOUND);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_RESIDENT);
  ck_assert_uint_eq(fake.acquires, 1);
  ck_assert_uint_eq(fake.live, 1);
}
END_TEST

START_TEST(test_a_refused_release_keeps_the_tensor_resident_with_the_error_recorded) {
  uint32_t i = bound_tensor("w", 0, 64);
  ck_assert_int_eq(emel_tensors_load(t, i, &by_fake, NULL, NULL), EMEL_OK);
  fake.release_error = (emel_error){.code = EMEL_MMAP_UNMAP_FAILED, .os_errno = EINVAL};
  ck_assert_int_eq(emel_tensors_evict(t, i, NULL), EMEL_MMAP_UNMAP_FAILED);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_RESIDENT);
  ck_assert_int_eq(emel_tensors_last_error(t, i).os_errno, EINVAL);
  emel_tensor_view v;
  ck_assert_int_eq(emel_tensors_view(t, i, &v, NULL), EMEL_OK); /* the bytes are still there */
  fake.release_error.code = EMEL_OK;
  ck_assert_int_eq(emel_tensors_evict(t, i, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_EVICTED);
}
END_TEST

START_TEST(test_an_evicted_tensor_refuses_a_second_evict_and_span_and_loads_again) {
  uint32_t i = bound_tensor("w", 0, 64);
  ck_assert_int_eq(emel_tensors_load(t, i, &by_fake, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_evict(t, i, NULL), EMEL_OK);
  emel_tensor_span s = span_of(0, 64);
  ck_assert_int_eq(emel_tensors_evict(t, i, NULL), EMEL_TENSOR_ALREADY_EVICTED);
  ck_assert_int_eq(emel_tensors_bind(t, i, &s, NULL), EMEL_TENSOR_ALREADY_BOUND);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_EVICTED);
  ck_assert_int_eq(emel_tensors_load(t, i, &by_fake, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_RESIDENT);
  ck_assert_uint_eq(fake.acquires, 2);
}
END_TEST

START_TEST(test_an_evicted_tensor_takes_caller_storage_or_refuses_too_small_storage) {
  uint32_t i = bound_tensor("w", 0, 64);
  unsigned char buf[64];
  ck_assert_int_eq(emel_tensors_bind_external(t, i, buf, sizeof buf, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_evict(t, i, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_bind_external(t, i, buf, 10, NULL), EMEL_EXTERNAL_TOO_SMALL);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_BOUND);
  ck_assert_int_eq(emel_tensors_load(t, i, &by_fake, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_evict(t, i, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_bind_external(t, i, buf, sizeof buf, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_RESIDENT);
}
END_TEST

START_TEST(test_a_failed_reload_of_an_evicted_tensor_leaves_it_bound) {
  uint32_t i = bound_tensor("w", 0, 64);
  ck_assert_int_eq(emel_tensors_load(t, i, &by_fake, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_evict(t, i, NULL), EMEL_OK);
  fake.acquire_error = (emel_error){.code = EMEL_OPEN_FAILED, .os_errno = ENOENT};
  ck_assert_int_eq(emel_tensors_load(t, i, &by_fake, NULL, NULL), EMEL_OPEN_FAILED);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_BOUND);
  ck_assert_int_eq(emel_tensors_last_error(t, i).os_errno, ENOENT);
}
END_TEST

START_TEST(test_naming_an_unknown_tensor_is_a_named_error_for_every_request) {
  uint32_t i;
  emel_tensor_span s = span_of(0, 8);
  emel_tensor_view v;
  ck_assert_int_eq(emel_tensors_find(t, "nope", 4, &i, NULL), EMEL_TENSOR_UNKNOWN);
  ck_assert_int_eq(emel_tensors_bind(t, 0, &s, NULL), EMEL_TENSOR_UNKNOWN);
  ck_assert_int_eq(emel_tensors_load(t, 7, &by_fake, NULL, NULL), EMEL_TENSOR_UNKNOWN);
  ck_assert_int_eq(emel_tensors_bind_external(t, 3, &v, 8, NULL), EMEL_TENSOR_UNKNOWN);
  ck_assert_int_eq(emel_tensors_evict(t, 0, NULL), EMEL_TENSOR_UNKNOWN);
  ck_assert_int_eq(emel_tensors_view(t, 0, &v, NULL), EMEL_TENSOR_UNKNOWN);
  ck_assert_int_eq(emel_tensors_state(t, 0), EMEL_TENSOR_STATE_UNKNOWN);
  ck_assert_int_eq(emel_tensors_last_error(t, 0).code, EMEL_TENSOR_UNKNOWN);
}
END_TEST

START_TEST(test_names_are_unique_valid_and_found_by_name_among_many) {
  emel_tensors *big;
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 5000);
  ck_assert_int_eq(emel_tensors_create(&big, &tc, NULL), EMEL_OK);
  char name[64];
  emel_tensor_span s = span_of(0, 8);
  for (uint32_t k = 0; k < 5000; k++) {
    int n = snprintf(name, sizeof name, "blk.%u.ffn_up.weight", k);
    uint32_t i;
    ck_assert_int_eq(emel_tensors_add(big, name, (size_t)n, &s, &i, NULL), EMEL_OK);
    ck_assert_uint_eq(i, k);
  }
  for (uint32_t k = 0; k < 5000; k += 499) {
    int n = snprintf(name, sizeof name, "blk.%u.ffn_up.weight", k);
    uint32_t i;
    ck_assert_int_eq(emel_tensors_find(big, name, (size_t)n, &i, NULL), EMEL_OK);
    ck_assert_uint_eq(i, k);
  }
  uint32_t i;
  ck_assert_int_eq(emel_tensors_declare(big, "blk.0.ffn_up.weight", 19, &i, NULL), EMEL_TENSOR_TABLE_FULL);
  emel_tensors_destroy(big);
  ck_assert_int_eq(emel_tensors_declare(t, "a", 1, &i, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_declare(t, "a", 1, &i, NULL), EMEL_TENSOR_DUPLICATE_NAME);
  ck_assert_int_eq(emel_tensors_declare(t, "a\0b", 3, &i, NULL), EMEL_TENSOR_NAME_INVALID);
  ck_assert_int_eq(emel_tensors_declare(t, "", 0, &i, NULL), EMEL_TENSOR_NAME_INVALID);
  ck_assert_uint_eq(emel_tensors_count(t), 1);
}
END_TEST

START_TEST(test_the_name_arena_limit_is_a_table_full_error) {
  emel_tensors *tiny;
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 4, .name_bytes = 7);
  ck_assert_int_eq(emel_tensors_create(&tiny, &tc, NULL), EMEL_OK);
  uint32_t i;
  ck_assert_int_eq(emel_tensors_declare(tiny, "abcd", 4, &i, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_declare(tiny, "ef", 2, &i, NULL), EMEL_TENSOR_TABLE_FULL);
  ck_assert_int_eq(emel_tensors_declare(tiny, "e", 1, &i, NULL), EMEL_OK);
  emel_tensors_destroy(tiny);
}
END_TEST

START_TEST(test_destroying_the_table_releases_every_resident_tensor) {
  for (int k = 0; k < 5; k++) {
    char name[8] = {'t', (char)('0' + k), 0};
    uint32_t i = bound_tensor(name, (uint64_t)k * 64, 64);
    ck_assert_int_eq(emel_tensors_load(t, i, &by_fake, NULL, NULL), EMEL_OK);
  }
  ck_assert_uint_eq(fake.live, 5);
  ck_assert_uint_eq(emel_tensors_resident_count(t), 5);
  emel_tensors_destroy(t);
  t = NULL;
  ck_assert_uint_eq(fake.live, 0);
}
END_TEST

START_TEST(test_a_failed_allocation_at_creation_is_out_of_memory_and_leaks_nothing) {
  for (uint64_t k = 1; k <= 7; k++) { /* the table, records, names, index, and the batch window's three */
    fault_platform_fail(&fp, FP_ALLOC, fp.calls[FP_ALLOC] + k, ENOMEM);
    emel_tensors *x = (emel_tensors *)&fp;
    emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 4);
    ck_assert_int_eq(emel_tensors_create(&x, &tc, NULL), EMEL_OUT_OF_MEMORY);
    ck_assert_ptr_null(x);
    fault_platform_clear_faults(&fp);
  }
  emel_tensors_config bad = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 0);
  emel_tensors *x;
  ck_assert_int_eq(emel_tensors_create(&x, &bad, NULL), EMEL_INVALID_ARGUMENT);
}
END_TEST

/* The queries C asks instead of restating the chart (gen/tensor_residency_machine.h)
 * answer what the transition table says: guards against a hand-kept list of
 * states or events drifting from the spec. */
START_TEST(test_the_generated_queries_agree_with_the_transition_table) {
  machine_check_queries(&emel_tensor_residency_desc, tensor_residency_target, tensor_residency_accepts, tensor_residency_rests);
}
END_TEST

START_TEST(test_every_state_refuses_the_events_it_does_not_accept_and_stays_put) {
  tensor_residency_ctx m;
  memset(&m, 0, sizeof m);
  int n = machine_check_unexpected_events(&emel_tensor_residency_desc, &m.core, &m);
  ck_assert_int_gt(n, 50);
}
END_TEST

/* ---- batches ---- */

START_TEST(test_a_batch_makes_bound_and_evicted_tensors_resident_in_one_boundary_call) {
  uint32_t a = bound_tensor("a", 0, 64), b = bound_tensor("b", 64, 64), c = bound_tensor("c", 128, 64);
  ck_assert_int_eq(emel_tensors_load(t, b, &by_fake, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_evict(t, b, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, b), EMEL_TENSOR_EVICTED);
  const uint32_t idx[3] = {c, a, b};
  emel_status st[3];
  const size_t batches = fake.batches;
  ck_assert_int_eq(emel_tensors_load_batch(t, idx, 3, &by_fake, st, NULL), EMEL_OK);
  ck_assert_uint_eq(fake.batches, batches + 1);
  for (int k = 0; k < 3; k++) {
    ck_assert_int_eq(st[k], EMEL_OK);
    ck_assert_int_eq(emel_tensors_state(t, idx[k]), EMEL_TENSOR_RESIDENT);
    emel_tensor_view v;
    ck_assert_int_eq(emel_tensors_view(t, idx[k], &v, NULL), EMEL_OK);
    emel_tensor_info info;
    ck_assert_ptr_eq(v.data, fake.bytes + emel_tensors_info(t, idx[k], &info)->span.offset);
  }
  ck_assert_uint_eq(emel_tensors_resident_count(t), 3);
  ck_assert_uint_eq(fake.live, 3);
}
END_TEST

START_TEST(test_a_batch_with_no_indices_loads_the_first_count_tensors) {
  bound_tensor("a", 0, 64);
  bound_tensor("b", 64, 64);
  bound_tensor("c", 128, 64);
  ck_assert_int_eq(emel_tensors_load_batch(t, NULL, 2, &by_fake, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, 0), EMEL_TENSOR_RESIDENT);
  ck_assert_int_eq(emel_tensors_state(t, 1), EMEL_TENSOR_RESIDENT);
  ck_assert_int_eq(emel_tensors_state(t, 2), EMEL_TENSOR_BOUND);
}
END_TEST

START_TEST(test_a_batch_refusal_of_one_tensor_leaves_it_bound_with_its_error_and_the_rest_resident) {
  uint32_t a = bound_tensor("a", 0, 64), far = bound_tensor("far", 8192, 64), c = bound_tensor("c", 128, 64);
  ck_assert_int_eq(emel_tensors_load(t, c, &by_fake, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_evict(t, c, NULL), EMEL_OK);
  const uint32_t idx[3] = {a, far, c};
  emel_status st[3];
  ck_assert_int_eq(emel_tensors_load_batch(t, idx, 3, &by_fake, st, NULL), EMEL_SPAN_BEYOND_EOF);
  ck_assert_int_eq(st[0], EMEL_OK);
  ck_assert_int_eq(st[1], EMEL_SPAN_BEYOND_EOF);
  ck_assert_int_eq(st[2], EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, far), EMEL_TENSOR_BOUND);
  ck_assert_int_eq(emel_tensors_last_error(t, far).code, EMEL_SPAN_BEYOND_EOF);
  /* an evicted tensor whose batch load is refused is bound again, as with LOAD */
  ck_assert_int_eq(emel_tensors_evict(t, c, NULL), EMEL_OK);
  fake.acquire_error = (emel_error){.code = EMEL_READ_FAILED, .os_errno = EIO};
  ck_assert_int_eq(emel_tensors_load_batch(t, &c, 1, &by_fake, st, NULL), EMEL_READ_FAILED);
  ck_assert_int_eq(emel_tensors_state(t, c), EMEL_TENSOR_BOUND);
  ck_assert_int_eq(emel_tensors_last_error(t, c).os_errno, EIO);
  ck_assert_uint_eq(fake.live, 1);
}
END_TEST

START_TEST(test_a_batch_refuses_unbound_resident_repeated_and_unknown_tensors_by_name_and_holds_nothing_extra) {
  uint32_t u;
  ck_assert_int_eq(emel_tensors_declare(t, "unbound", 7, &u, NULL), EMEL_OK);
  uint32_t r = bound_tensor("resident", 0, 64), b = bound_tensor("bound", 64, 64);
  ck_assert_int_eq(emel_tensors_load(t, r, &by_fake, NULL, NULL), EMEL_OK);
  const uint32_t idx[5] = {u, r, b, b, 99};
  emel_status st[5];
  const size_t acquires = fake.acquires;
  ck_assert_int_eq(emel_tensors_load_batch(t, idx, 5, &by_fake, st, NULL), EMEL_TENSOR_NOT_BOUND);
  ck_assert_int_eq(st[0], EMEL_TENSOR_NOT_BOUND);
  ck_assert_int_eq(st[1], EMEL_TENSOR_ALREADY_RESIDENT);
  ck_assert_int_eq(st[2], EMEL_OK);
  ck_assert_int_eq(st[3], EMEL_TENSOR_ALREADY_RESIDENT); /* the repeat shared the first request */
  ck_assert_int_eq(st[4], EMEL_TENSOR_UNKNOWN);
  ck_assert_uint_eq(fake.acquires, acquires + 1); /* only the bound tensor, once: nothing to give back */
  ck_assert_uint_eq(fake.live, 2);
  ck_assert_uint_eq(emel_tensors_resident_count(t), 2);
  ck_assert_int_eq(emel_tensors_state(t, u), EMEL_TENSOR_UNBOUND);
}
END_TEST

START_TEST(test_a_batch_into_one_caller_buffer_or_without_a_table_is_an_invalid_argument) {
  unsigned char buf[64];
  uint32_t a = bound_tensor("a", 0, 64);
  emel_load_options into = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ, .target = buf, .target_size = sizeof buf);
  ck_assert_int_eq(emel_tensors_load_batch(t, &a, 1, &into, NULL, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(emel_tensors_load_batch(NULL, &a, 1, &by_fake, NULL, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(emel_tensors_load_batch(t, &a, 1, NULL, NULL, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(emel_tensors_load_batch(t, &a, 0, &by_fake, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, a), EMEL_TENSOR_BOUND);
}
END_TEST

START_TEST(test_a_batch_larger_than_the_window_and_a_table_without_io_are_handled) {
  emel_tensors_destroy(t);
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = EMEL_TENSOR_BATCH_WINDOW + 10);
  ck_assert_int_eq(emel_tensors_create(&t, &tc, NULL), EMEL_OK);
  char name[32];
  for (uint32_t k = 0; k < EMEL_TENSOR_BATCH_WINDOW + 10; k++) {
    snprintf(name, sizeof name, "t%u", k);
    bound_tensor(name, (uint64_t)(k % 64) * 64, 64);
  }
  ck_assert_int_eq(emel_tensors_load_batch(t, NULL, EMEL_TENSOR_BATCH_WINDOW + 10, &by_fake, NULL, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_tensors_resident_count(t), EMEL_TENSOR_BATCH_WINDOW + 10);
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);

  emel_tensors *lone;
  emel_tensors_config no_io = EMEL_TENSORS_CONFIG_INIT(.platform = &fp.ops, .capacity = 2);
  ck_assert_int_eq(emel_tensors_create(&lone, &no_io, NULL), EMEL_OK);
  uint32_t i;
  emel_tensor_span s = span_of(0, 64);
  ck_assert_int_eq(emel_tensors_add(lone, "w", 1, &s, &i, NULL), EMEL_OK);
  emel_status st;
  ck_assert_int_eq(emel_tensors_load_batch(lone, &i, 1, &by_fake, &st, NULL), EMEL_UNKNOWN_STRATEGY);
  ck_assert_int_eq(st, EMEL_UNKNOWN_STRATEGY);
  ck_assert_int_eq(emel_tensors_state(lone, i), EMEL_TENSOR_BOUND);
  emel_tensors_destroy(lone);
}
END_TEST

Suite *tensor_residency_suite(void) {
  Suite *s = suite_create("tensor_residency");
  TCase *tc = tcase_create("lifecycle");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_a_declared_tensor_is_unbound_and_binding_a_span_makes_it_bound);
  tcase_add_test(tc, test_an_invalid_span_is_refused_and_the_tensor_stays_unbound);
  tcase_add_test(tc, test_an_unbound_tensor_refuses_load_external_and_evict);
  tcase_add_test(tc, test_a_bound_tensor_refuses_a_second_span_and_an_evict);
  tcase_add_test(tc, test_caller_storage_makes_a_bound_tensor_externally_resident_without_a_strategy);
  tcase_add_test(tc, test_caller_storage_smaller_than_the_tensor_is_refused_and_it_stays_bound);
  tcase_add_test(tc, test_loading_through_a_strategy_makes_the_tensor_resident_with_its_bytes);
  tcase_add_test(tc, test_a_failed_load_leaves_the_tensor_bound_with_the_error_and_errno_recorded);
  tcase_add_test(tc, test_a_load_with_no_such_strategy_attached_is_refused_and_the_tensor_stays_bound);
  tcase_add_test(tc, test_a_resident_tensor_refuses_another_load_external_storage_and_span);
  tcase_add_test(tc, test_a_refused_release_keeps_the_tensor_resident_with_the_error_recorded);
  tcase_add_test(tc, test_an_evicted_tensor_refuses_a_second_evict_and_span_and_loads_again);
  tcase_add_test(tc, test_an_evicted_tensor_takes_caller_storage_or_refuses_too_small_storage);
  tcase_add_test(tc, test_a_failed_reload_of_an_evicted_tensor_leaves_it_bound);
  tcase_add_test(tc, test_naming_an_unknown_tensor_is_a_named_error_for_every_request);
  tcase_add_test(tc, test_names_are_unique_valid_and_found_by_name_among_many);
  tcase_add_test(tc, test_the_name_arena_limit_is_a_table_full_error);
  tcase_add_test(tc, test_destroying_the_table_releases_every_resident_tensor);
  tcase_add_test(tc, test_a_failed_allocation_at_creation_is_out_of_memory_and_leaks_nothing);
  tcase_add_test(tc, test_every_state_refuses_the_events_it_does_not_accept_and_stays_put);
  tcase_add_test(tc, test_the_generated_queries_agree_with_the_transition_table);
  tcase_add_test(tc, test_a_batch_makes_bound_and_evicted_tensors_resident_in_one_boundary_call);
  tcase_add_test(tc, test_a_batch_with_no_indices_loads_the_first_count_tensors);
  tcase_add_test(tc, test_a_batch_refusal_of_one_tensor_leaves_it_bound_with_its_error_and_the_rest_resident);
  tcase_add_test(tc, test_a_batch_refuses_unbound_resident_repeated_and_unknown_tensors_by_name_and_holds_nothing_extra);
  tcase_add_test(tc, test_a_batch_into_one_caller_buffer_or_without_a_table_is_an_invalid_argument);
  tcase_add_test(tc, test_a_batch_larger_than_the_window_and_a_table_without_io_are_handled);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(tensor_residency_suite)

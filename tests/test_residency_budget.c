/* A tensor table's residency budget (issue 12): the fail and evict-LRU
 * policies, pins, uses, batches and load jobs, with every new route of
 * statecharts/tensor_residency.rl (budgeting, making_room, checking_pin)
 * taken, its code asserted and nothing left held. Loads go to the fake
 * strategy, whose residency is owned. Each test names the mistake it catches. */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "check_main.h"
#include "emel/job.h"
#include "emel/model.h"
#include "emel/tensor.h"
#include "fake_strategy.h"
#include "fault_platform.h"
#include "gguf_writer.h"

#ifndef EMEL_TEST_WORKDIR
#define EMEL_TEST_WORKDIR "."
#endif

static fault_platform fp;
static fake_strategy fake;
static emel_io *io;
static emel_tensors *t;

static const emel_load_options by_read = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);

static void create_table(uint64_t budget, emel_budget_policy policy) {
  emel_tensors_config tc =
      EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 16, .budget_bytes = budget, .budget_policy = policy);
  ck_assert_int_eq(emel_tensors_create(&t, &tc, NULL), EMEL_OK);
}

static void setup(void) {
  fault_platform_init(&fp);
  memset(&fake, 0, sizeof fake);
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
  ck_assert_int_eq(emel_io_create(&io, &ic, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_attach(io, &fake_strategy_ops, &fake, NULL), EMEL_OK);
  t = NULL;
}

static void teardown(void) {
  emel_tensors_destroy(t); /* pinned tensors too */
  emel_io_destroy(io);
  ck_assert_int_eq(fake.live, 0);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
}

/* Tensors are laid out one after the other in the fake's 4096 bytes. */
static uint64_t next_offset;

static uint32_t tensor(const char *name, uint64_t size) {
  emel_tensor_span s = {.type = 0, .n_dims = 1, .dims = {size, 1, 1, 1}, .offset = next_offset, .size = size};
  next_offset += size;
  uint32_t i;
  ck_assert_int_eq(emel_tensors_add(t, name, strlen(name), &s, &i, NULL), EMEL_OK);
  return i;
}

static emel_status load(uint32_t i) { return emel_tensors_load(t, i, &by_read, NULL, NULL); }

static int resident(uint32_t i) { return emel_tensors_state(t, i) == EMEL_TENSOR_RESIDENT; }

/* Steps a cooperative job until it finished; returns its outcome. */
static emel_status run_job(emel_job *job) {
  emel_status s;
  do s = emel_job_step(job, 0, NULL, NULL);
  while (emel_job_poll(job, NULL) == EMEL_JOB_RUNNING);
  return s;
}

static emel_tensors_stats stats(void) {
  emel_tensors_stats s = EMEL_TENSORS_STATS_INIT();
  ck_assert_int_eq(emel_tensors_stats_get(t, &s, NULL), EMEL_OK);
  return s;
}

/* Guards an off-by-one at the limit (`<` for `<=`): a load of exactly the
 * remaining budget fits; one byte more fails, leaves the tensor bound with
 * the error recorded, asks nothing of the boundary and evicts nothing. */
START_TEST(test_a_load_of_exactly_the_remaining_budget_fits_and_one_byte_more_fails) {
  next_offset = 0;
  create_table(256, EMEL_BUDGET_FAIL);
  const uint32_t a = tensor("a", 100), b = tensor("b", 156), c = tensor("c", 1);
  ck_assert_int_eq(load(a), EMEL_OK);
  ck_assert_int_eq(load(b), EMEL_OK);
  ck_assert_uint_eq(emel_tensors_resident_bytes(t), 256);
  const size_t acquires = fake.acquires;
  emel_error e;
  ck_assert_int_eq(emel_tensors_load(t, c, &by_read, NULL, &e), EMEL_BUDGET_EXCEEDED);
  ck_assert_uint_eq(e.tensor, c + 1);
  ck_assert_int_eq(emel_tensors_state(t, c), EMEL_TENSOR_BOUND);
  ck_assert_int_eq(emel_tensors_last_error(t, c).code, EMEL_BUDGET_EXCEEDED);
  ck_assert_uint_eq(fake.acquires, acquires);
  ck_assert(resident(a) && resident(b));
  /* Room made by an eviction is room. */
  ck_assert_int_eq(emel_tensors_evict(t, b, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_tensors_resident_bytes(t), 100);
  ck_assert_int_eq(load(c), EMEL_OK);
  ck_assert_uint_eq(stats().owned_bytes, 101);
  ck_assert_uint_eq(stats().budget_evictions, 0);
}
END_TEST

/* Guards a budget check that evicts first and looks after: a tensor larger
 * than the whole budget fails at once, under either policy, and evicts nothing. */
START_TEST(test_a_tensor_larger_than_the_budget_fails_under_either_policy_and_evicts_nothing) {
  next_offset = 0;
  create_table(200, EMEL_BUDGET_EVICT_LRU);
  const uint32_t small = tensor("small", 150), big = tensor("big", 201);
  ck_assert_int_eq(load(small), EMEL_OK);
  ck_assert_int_eq(load(big), EMEL_BUDGET_EXCEEDED);
  ck_assert(resident(small));
  ck_assert_int_eq(emel_tensors_set_budget(t, 200, EMEL_BUDGET_FAIL, NULL), EMEL_OK);
  ck_assert_int_eq(load(big), EMEL_BUDGET_EXCEEDED);
  ck_assert(resident(small));
  ck_assert_uint_eq(stats().budget_evictions, 0);
  /* No budget: anything goes. */
  ck_assert_int_eq(emel_tensors_set_budget(t, 0, EMEL_BUDGET_FAIL, NULL), EMEL_OK);
  ck_assert_int_eq(load(big), EMEL_OK);
}
END_TEST

/* Guards evicting the most recently used (or in load order) instead of the
 * least recently used: views, explicit touches and hashes are uses. */
START_TEST(test_evict_lru_evicts_the_least_recently_used_first) {
  next_offset = 0;
  create_table(300, EMEL_BUDGET_EVICT_LRU);
  const uint32_t a = tensor("a", 100), b = tensor("b", 100), c = tensor("c", 100), d = tensor("d", 100),
                 e = tensor("e", 100), f = tensor("f", 100);
  ck_assert_int_eq(load(a), EMEL_OK);
  ck_assert_int_eq(load(b), EMEL_OK);
  ck_assert_int_eq(load(c), EMEL_OK);
  emel_tensor_view v;
  ck_assert_int_eq(emel_tensors_view(t, a, &v, NULL), EMEL_OK); /* oldest now: b, c, a */
  ck_assert_int_eq(load(d), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, b), EMEL_TENSOR_EVICTED);
  ck_assert(resident(a) && resident(c) && resident(d));
  ck_assert_int_eq(emel_tensors_touch(t, c, NULL), EMEL_OK); /* a, d, c */
  ck_assert_int_eq(load(e), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, a), EMEL_TENSOR_EVICTED);
  ck_assert(resident(c) && resident(d) && resident(e));
  uint64_t h;
  ck_assert_int_eq(emel_tensors_hash(t, d, &h, NULL), EMEL_OK); /* c, e, d */
  ck_assert_int_eq(load(f), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, c), EMEL_TENSOR_EVICTED);
  ck_assert(resident(d) && resident(e) && resident(f));
  ck_assert_uint_eq(stats().budget_evictions, 3);
  ck_assert_uint_eq(stats().owned_bytes, 300);
  /* Touching what is not resident is refused by name. */
  ck_assert_int_eq(emel_tensors_touch(t, a, NULL), EMEL_TENSOR_NOT_RESIDENT);
  ck_assert_int_eq(emel_tensors_touch(t, 99, NULL), EMEL_TENSOR_UNKNOWN);
}
END_TEST

/* Guards an LRU that evicts pinned tensors, an evict that ignores a pin, and
 * pins that do not nest. */
START_TEST(test_a_pinned_tensor_is_never_evicted_and_an_explicit_evict_is_refused) {
  next_offset = 0;
  create_table(200, EMEL_BUDGET_EVICT_LRU);
  const uint32_t a = tensor("a", 100), b = tensor("b", 100), c = tensor("c", 100);
  ck_assert_int_eq(emel_tensors_pin(t, a, NULL), EMEL_OK); /* before it is resident: pins any state */
  ck_assert_int_eq(load(a), EMEL_OK);
  ck_assert_int_eq(load(b), EMEL_OK);
  ck_assert_int_eq(load(c), EMEL_OK); /* a is the oldest, but pinned: b goes */
  ck_assert(resident(a) && resident(c));
  ck_assert_int_eq(emel_tensors_state(t, b), EMEL_TENSOR_EVICTED);
  emel_error e;
  ck_assert_int_eq(emel_tensors_evict(t, a, &e), EMEL_TENSOR_PINNED);
  ck_assert_uint_eq(e.tensor, a + 1);
  ck_assert(resident(a));
  ck_assert_int_eq(emel_tensors_last_error(t, a).code, EMEL_OK); /* a refusal is the call's only */
  ck_assert_int_eq(emel_tensors_evict_all(t, &e), EMEL_TENSOR_PINNED);
  ck_assert(resident(a));
  ck_assert_int_eq(emel_tensors_state(t, c), EMEL_TENSOR_EVICTED);
  /* Counted: two pins need two unpins. */
  ck_assert_int_eq(emel_tensors_pin(t, a, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_tensors_pin_count(t, a), 2);
  ck_assert_uint_eq(stats().pinned, 1);
  ck_assert_int_eq(emel_tensors_unpin(t, a, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_evict(t, a, NULL), EMEL_TENSOR_PINNED);
  ck_assert_int_eq(emel_tensors_unpin(t, a, NULL), EMEL_OK);
  ck_assert_uint_eq(stats().pinned, 0);
  ck_assert_int_eq(emel_tensors_unpin(t, a, &e), EMEL_INVALID_ARGUMENT);
  ck_assert_str_eq(e.detail, "the tensor is not pinned");
  ck_assert_int_eq(emel_tensors_pin(t, 99, NULL), EMEL_TENSOR_UNKNOWN);
  ck_assert_int_eq(emel_tensors_unpin(t, 99, NULL), EMEL_TENSOR_UNKNOWN);
  ck_assert_int_eq(emel_tensors_evict(t, a, NULL), EMEL_OK);
  /* Destroying the table releases pinned tensors anyway (teardown checks nothing is live). */
  ck_assert_int_eq(load(b), EMEL_OK);
  ck_assert_int_eq(emel_tensors_pin(t, b, NULL), EMEL_OK);
}
END_TEST

/* Guards evicting for nothing: when the load cannot fit even after every
 * unpinned tensor is evicted, it fails and nothing is evicted. */
START_TEST(test_a_load_that_cannot_fit_after_evicting_all_unpinned_evicts_nothing) {
  next_offset = 0;
  create_table(300, EMEL_BUDGET_EVICT_LRU);
  const uint32_t a = tensor("a", 100), b = tensor("b", 100), c = tensor("c", 100), d = tensor("d", 200);
  ck_assert_int_eq(load(a), EMEL_OK);
  ck_assert_int_eq(load(b), EMEL_OK);
  ck_assert_int_eq(load(c), EMEL_OK);
  ck_assert_int_eq(emel_tensors_pin(t, a, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_pin(t, b, NULL), EMEL_OK);
  ck_assert_uint_eq(stats().evictable_bytes, 100);
  ck_assert_int_eq(load(d), EMEL_BUDGET_EXCEEDED);
  ck_assert(resident(a) && resident(b) && resident(c));
  ck_assert_uint_eq(stats().budget_evictions, 0);
  /* One pin fewer and it fits, evicting the two it needs, oldest first. */
  ck_assert_int_eq(emel_tensors_unpin(t, b, NULL), EMEL_OK); /* b is evictable again, as the newest */
  ck_assert_int_eq(load(d), EMEL_OK);
  ck_assert(resident(a) && resident(d));
  ck_assert_int_eq(emel_tensors_state(t, b), EMEL_TENSOR_EVICTED);
  ck_assert_int_eq(emel_tensors_state(t, c), EMEL_TENSOR_EVICTED);
  ck_assert_uint_eq(stats().budget_evictions, 2);
}
END_TEST

/* Guards a make-room loop that spins on (or skips) a victim whose release is
 * refused: the load fails with that release's error and errno, the victim
 * stays resident with it, and the next load (release fixed) evicts it. */
START_TEST(test_a_refused_release_of_a_victim_fails_the_load_with_its_error) {
  next_offset = 0;
  create_table(100, EMEL_BUDGET_EVICT_LRU);
  const uint32_t a = tensor("a", 100), b = tensor("b", 100);
  ck_assert_int_eq(load(a), EMEL_OK);
  fake.release_error = (emel_error){.code = EMEL_MMAP_UNMAP_FAILED, .os_errno = EINVAL};
  emel_error e;
  ck_assert_int_eq(emel_tensors_load(t, b, &by_read, NULL, &e), EMEL_MMAP_UNMAP_FAILED);
  ck_assert_int_eq(e.os_errno, EINVAL);
  ck_assert_uint_eq(e.tensor, b + 1);
  ck_assert_int_eq(emel_tensors_state(t, b), EMEL_TENSOR_BOUND);
  ck_assert_int_eq(emel_tensors_last_error(t, b).code, EMEL_MMAP_UNMAP_FAILED);
  ck_assert(resident(a));
  ck_assert_int_eq(emel_tensors_last_error(t, a).code, EMEL_MMAP_UNMAP_FAILED);
  fake.release_error.code = EMEL_OK;
  ck_assert_int_eq(load(b), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, a), EMEL_TENSOR_EVICTED);
}
END_TEST

/* Guards a batch that acquires first and checks after, or that evicts its own
 * tensors (loaded by it, or resident already among its indices) to fit others. */
START_TEST(test_a_batch_respects_the_budget_and_never_evicts_its_own_tensors) {
  next_offset = 0;
  create_table(300, EMEL_BUDGET_EVICT_LRU);
  const uint32_t x = tensor("x", 100), a = tensor("a", 100), b = tensor("b", 100), c = tensor("c", 100),
                 d = tensor("d", 100);
  ck_assert_int_eq(load(x), EMEL_OK);
  const uint32_t abc[] = {a, b, c};
  emel_status st[4];
  ck_assert_int_eq(emel_tensors_load_batch(t, abc, 3, &by_read, st, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, x), EMEL_TENSOR_EVICTED); /* outside the batch: the LRU's */
  ck_assert(resident(a) && resident(b) && resident(c));
  /* a, already resident, is of the batch: d cannot evict it, so b (oldest of the rest) goes. */
  const uint32_t ad[] = {a, d};
  ck_assert_int_eq(emel_tensors_load_batch(t, ad, 2, &by_read, st, NULL), EMEL_TENSOR_ALREADY_RESIDENT);
  ck_assert_int_eq(st[1], EMEL_OK);
  ck_assert(resident(a) && resident(c) && resident(d));
  ck_assert_int_eq(emel_tensors_state(t, b), EMEL_TENSOR_EVICTED);
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  /* Four of 100 in a budget of 300: the fourth cannot evict the batch's first three. */
  const uint32_t four[] = {x, a, b, c};
  const size_t acquires = fake.acquires;
  emel_error e;
  ck_assert_int_eq(emel_tensors_load_batch(t, four, 4, &by_read, st, &e), EMEL_BUDGET_EXCEEDED);
  ck_assert_uint_eq(e.tensor, c + 1);
  ck_assert_int_eq(st[0], EMEL_OK);
  ck_assert_int_eq(st[1], EMEL_OK);
  ck_assert_int_eq(st[2], EMEL_OK);
  ck_assert_int_eq(st[3], EMEL_BUDGET_EXCEEDED);
  ck_assert_uint_eq(fake.acquires, acquires + 3); /* c was never asked of the boundary */
  ck_assert_int_eq(emel_tensors_state(t, c), EMEL_TENSOR_BOUND); /* as any failed load leaves it */
  ck_assert_int_eq(emel_tensors_last_error(t, c).code, EMEL_BUDGET_EXCEEDED);
  ck_assert(resident(x) && resident(a) && resident(b));
  emel_tensors_stats s = stats();
  ck_assert_uint_eq(s.owned_bytes, 300);
  ck_assert_uint_eq(s.reserved_bytes, 0);
  ck_assert_uint_eq(s.evictable_bytes, 300); /* the batch is over: its tensors are the LRU's again */
  /* The batch's tensors are the newest: a single load evicts x, the batch's first. */
  ck_assert_int_eq(load(d), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, x), EMEL_TENSOR_EVICTED);
}
END_TEST

/* Guards counting what the caller or the kernel owns: external residency is
 * not charged, and neither is a target the read strategy fills. */
START_TEST(test_external_residency_does_not_count) {
  next_offset = 0;
  create_table(100, EMEL_BUDGET_FAIL);
  const uint32_t a = tensor("a", 100), b = tensor("b", 100);
  static unsigned char storage[100];
  ck_assert_int_eq(emel_tensors_bind_external(t, a, storage, sizeof storage, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_tensors_resident_bytes(t), 0);
  ck_assert_int_eq(load(b), EMEL_OK);
  ck_assert_uint_eq(emel_tensors_resident_bytes(t), 100);
  ck_assert_int_eq(emel_tensors_evict(t, a, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_tensors_resident_bytes(t), 100);
  ck_assert_int_eq(emel_tensors_evict(t, b, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_tensors_resident_bytes(t), 0);
}
END_TEST

/* Guards a config or setter that takes an unknown policy, and stats that
 * write past an older caller's struct. */
START_TEST(test_budget_config_setter_and_stats_validate_their_arguments) {
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 2, .budget_bytes = 1,
                                                    .budget_policy = (emel_budget_policy)7);
  ck_assert_int_eq(emel_tensors_create(&t, &tc, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_ptr_null(t);
  /* An older caller's config (without the budget members): no budget. */
  tc = (emel_tensors_config)EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 2, .budget_bytes = 1);
  tc.struct_size = offsetof(emel_tensors_config, budget_bytes);
  ck_assert_int_eq(emel_tensors_create(&t, &tc, NULL), EMEL_OK);
  ck_assert_uint_eq(stats().budget_bytes, 0);
  ck_assert_int_eq(emel_tensors_set_budget(t, 5, (emel_budget_policy)2, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(emel_tensors_set_budget(NULL, 5, EMEL_BUDGET_FAIL, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(emel_tensors_set_budget(t, 5, EMEL_BUDGET_EVICT_LRU, NULL), EMEL_OK);
  emel_tensors_stats s = stats();
  ck_assert_uint_eq(s.budget_bytes, 5);
  ck_assert_int_eq(s.budget_policy, EMEL_BUDGET_EVICT_LRU);
  struct {
    emel_tensors_stats known;
    unsigned char guard[8];
  } older;
  memset(&older, 0xee, sizeof older);
  older.known.struct_size = offsetof(emel_tensors_stats, budget_policy);
  ck_assert_int_eq(emel_tensors_stats_get(t, &older.known, NULL), EMEL_OK);
  ck_assert_uint_eq(older.known.budget_bytes, 5);
  ck_assert_uint_eq(((unsigned char *)&older.known)[offsetof(emel_tensors_stats, budget_policy)], 0xee);
  emel_error e;
  older.known.struct_size = sizeof older;
  ck_assert_int_eq(emel_tensors_stats_get(t, &older.known, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_str_eq(e.detail, "emel_tensors_stats.struct_size");
  ck_assert_int_eq(emel_tensors_stats_get(NULL, &s, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_uint_eq(emel_tensors_resident_bytes(NULL), 0);
}
END_TEST

/* Guards a budget that lets a job's tensors be evicted by loads from outside
 * while the job holds them, and a job that allocates a big tensor's buffer
 * without asking the budget. */
START_TEST(test_a_load_job_respects_the_budget_and_its_held_tensors_are_not_evicted) {
  next_offset = 0;
  create_table(200, EMEL_BUDGET_EVICT_LRU);
  const uint32_t a = tensor("a", 100), b = tensor("b", 100), c = tensor("c", 100), big = tensor("big", 300);
  const uint32_t ab[] = {a, b};
  emel_job_config jc = EMEL_JOB_CONFIG_INIT(.indices = ab, .count = 2);
  emel_job *job;
  ck_assert_int_eq(emel_job_create(&job, t, &jc, NULL), EMEL_OK);
  ck_assert_int_eq(run_job(job), EMEL_OK);
  ck_assert(resident(a) && resident(b));
  ck_assert_uint_eq(stats().evictable_bytes, 0); /* held */
  ck_assert_int_eq(load(c), EMEL_BUDGET_EXCEEDED);
  ck_assert(resident(a) && resident(b));
  emel_job_destroy(job); /* hands them back: the LRU's now */
  ck_assert_uint_eq(stats().evictable_bytes, 200);
  ck_assert_int_eq(load(c), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, a), EMEL_TENSOR_EVICTED);
  /* A tensor the job reads in pieces (bigger than a chunk) is admitted before
   * its buffer is allocated: larger than the budget, it fails with nothing allocated. */
  const uint32_t just_big[] = {big};
  jc = (emel_job_config)EMEL_JOB_CONFIG_INIT(.indices = just_big, .count = 1, .chunk_bytes = 128);
  ck_assert_int_eq(emel_job_create(&job, t, &jc, NULL), EMEL_OK);
  const int64_t outstanding = fault_platform_outstanding(&fp);
  ck_assert_int_eq(run_job(job), EMEL_BUDGET_EXCEEDED);
  ck_assert_int_eq(fault_platform_outstanding(&fp), outstanding);
  ck_assert_int_eq(emel_tensors_last_error(t, big).code, EMEL_BUDGET_EXCEEDED);
  ck_assert(resident(b) && resident(c));
  emel_job_destroy(job);
  /* Within the budget it evicts the LRU's tensors to make room, and charges the buffer once. */
  ck_assert_int_eq(emel_tensors_set_budget(t, 300, EMEL_BUDGET_EVICT_LRU, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_create(&job, t, &jc, NULL), EMEL_OK);
  ck_assert_int_eq(run_job(job), EMEL_OK);
  ck_assert(resident(big));
  ck_assert_int_eq(emel_tensors_state(t, b), EMEL_TENSOR_EVICTED);
  ck_assert_int_eq(emel_tensors_state(t, c), EMEL_TENSOR_EVICTED);
  emel_tensors_stats st = stats();
  ck_assert_uint_eq(st.owned_bytes, 300);
  ck_assert_uint_eq(st.reserved_bytes, 0);
  emel_job_destroy(job);
  /* A window of whole tensors, which a read job reads into buffers of its
   * own: each is admitted before its buffer is allocated (under FAIL, no room:
   * BUDGET_EXCEEDED with nothing allocated, nothing left reserved). */
  ck_assert_int_eq(emel_tensors_set_budget(t, 300, EMEL_BUDGET_FAIL, NULL), EMEL_OK);
  const uint32_t just_a[] = {a};
  jc = (emel_job_config)EMEL_JOB_CONFIG_INIT(.indices = just_a, .count = 1);
  ck_assert_int_eq(emel_job_create(&job, t, &jc, NULL), EMEL_OK);
  const int64_t before_window = fault_platform_outstanding(&fp);
  ck_assert_int_eq(run_job(job), EMEL_BUDGET_EXCEEDED);
  ck_assert_int_eq(fault_platform_outstanding(&fp), before_window);
  ck_assert_int_eq(emel_tensors_last_error(t, a).code, EMEL_BUDGET_EXCEEDED);
  st = stats();
  ck_assert_uint_eq(st.owned_bytes, 300);
  ck_assert_uint_eq(st.reserved_bytes, 0);
  emel_job_destroy(job);
  /* Room again: the window's tensor is charged once, its reservation given back. */
  ck_assert_int_eq(emel_tensors_set_budget(t, 400, EMEL_BUDGET_FAIL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_create(&job, t, &jc, NULL), EMEL_OK);
  ck_assert_int_eq(run_job(job), EMEL_OK);
  ck_assert(resident(a));
  st = stats();
  ck_assert_uint_eq(st.owned_bytes, 400);
  ck_assert_uint_eq(st.reserved_bytes, 0);
  emel_job_destroy(job);
}
END_TEST

/* Guards a model whose table cannot be given a budget, and counting what the
 * read strategy allocates (aligned, padded) or maps instead of the tensor's
 * bytes: on a real file through the real strategies, a model's table takes a
 * budget, owned bytes are the views' sizes, mapped ones are free, the LRU
 * victim's buffer really goes back, and closing frees a pinned tensor. */
START_TEST(test_a_models_table_takes_a_budget_and_only_owned_bytes_count) {
  char path[512];
  snprintf(path, sizeof path, "%s/residency_budget.gguf", EMEL_TEST_WORKDIR);
  static const uint32_t types[] = {EMEL_GGML_TYPE_F32};
  gw *w = gw_new();
  ck_assert_int_eq(gw_model_shape(w, 4, 4u << 14, types, 1), 0);
  ck_assert_int_eq(gw_write(w, path), 0);
  gw_free(w);
  const emel_io_read_config rc = EMEL_IO_READ_CONFIG_INIT(.threads = 1);
  const emel_model_config cfg = EMEL_MODEL_CONFIG_INIT(.platform = &fp.ops, .read = &rc);
  emel_model *m;
  ck_assert_int_eq(emel_model_open(&m, path, &cfg, NULL), EMEL_OK);
  emel_tensors *mt = emel_model_tensors(m);
  const emel_gguf *g = emel_model_index(m);
  uint64_t size[4];
  for (size_t i = 0; i < 4; i++) size[i] = emel_gguf_tensor_at(g, i)->size;
  ck_assert_int_eq(emel_tensors_set_budget(mt, size[0] + size[1], EMEL_BUDGET_EVICT_LRU, NULL), EMEL_OK);
  const emel_load_options mapped = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP);
  emel_tensor_view v;
  ck_assert_int_eq(emel_model_load(m, emel_gguf_tensor_at(g, 0)->name, &by_read, &v, NULL), EMEL_OK);
  ck_assert_int_eq(emel_model_load(m, emel_gguf_tensor_at(g, 1)->name, &by_read, &v, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_tensors_resident_bytes(mt), size[0] + size[1]); /* exactly the budget */
  ck_assert_int_eq(emel_model_load(m, emel_gguf_tensor_at(g, 3)->name, &mapped, &v, NULL), EMEL_OK);
  ck_assert_int_eq(v.residency, EMEL_RESIDENCY_MAPPED);
  ck_assert_uint_eq(emel_tensors_resident_bytes(mt), size[0] + size[1]); /* mapped: not counted */
  const int64_t before = fault_platform_outstanding(&fp);
  ck_assert_int_eq(emel_model_load(m, emel_gguf_tensor_at(g, 2)->name, &by_read, &v, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(mt, 0), EMEL_TENSOR_EVICTED); /* the oldest owned one */
  ck_assert_int_eq(emel_tensors_state(mt, 3), EMEL_TENSOR_RESIDENT);   /* mapped: never a victim */
  ck_assert_uint_le(emel_tensors_resident_bytes(mt), size[0] + size[1]);
  if (size[2] <= size[0]) ck_assert_int_eq(fault_platform_outstanding(&fp), before); /* one buffer for one */
  ck_assert_int_eq(emel_tensors_pin(mt, 2, NULL), EMEL_OK);
  ck_assert_int_eq(emel_model_evict(m, emel_gguf_tensor_at(g, 2)->name, NULL), EMEL_TENSOR_PINNED);
  emel_model_close(m); /* frees the pinned tensor too: teardown sees nothing outstanding */
  remove(path);
}
END_TEST

static Suite *residency_budget_suite(void) {
  Suite *s = suite_create("residency_budget");
  TCase *tc = tcase_create("budget");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_a_load_of_exactly_the_remaining_budget_fits_and_one_byte_more_fails);
  tcase_add_test(tc, test_a_tensor_larger_than_the_budget_fails_under_either_policy_and_evicts_nothing);
  tcase_add_test(tc, test_evict_lru_evicts_the_least_recently_used_first);
  tcase_add_test(tc, test_a_pinned_tensor_is_never_evicted_and_an_explicit_evict_is_refused);
  tcase_add_test(tc, test_a_load_that_cannot_fit_after_evicting_all_unpinned_evicts_nothing);
  tcase_add_test(tc, test_a_refused_release_of_a_victim_fails_the_load_with_its_error);
  tcase_add_test(tc, test_a_batch_respects_the_budget_and_never_evicts_its_own_tensors);
  tcase_add_test(tc, test_external_residency_does_not_count);
  tcase_add_test(tc, test_budget_config_setter_and_stats_validate_their_arguments);
  tcase_add_test(tc, test_a_load_job_respects_the_budget_and_its_held_tensors_are_not_evicted);
  tcase_add_test(tc, test_a_models_table_takes_a_budget_and_only_owned_bytes_count);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(residency_budget_suite)

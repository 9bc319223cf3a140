/* The ring module both reading strategies share (src/emel/io/ring), on its
 * own against the fault platform (a real io_uring, or its pread emulation):
 * the request circle across its wrap, completions matched by tag whatever
 * their order, and the drain that must come before buffers are freed. */
#define _DEFAULT_SOURCE 1 /* mkstemp */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "emel/io/ring/ring.h"
#include "fault_platform.h"

enum { FILE_BYTES = 64 * 1024, GUARD = 256 };

static char path[64];
static unsigned char file_bytes[FILE_BYTES];
static int fd = -1;
static fault_platform fp;

static unsigned char byte_at(size_t i) { return (unsigned char)((i * 131u) ^ (i >> 8)); }

static void setup(void) {
  snprintf(path, sizeof path, "/var/tmp/emel-ring-XXXXXX");
  fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  for (size_t i = 0; i < sizeof file_bytes; i++) file_bytes[i] = byte_at(i);
  ck_assert_int_eq(write(fd, file_bytes, sizeof file_bytes), (ssize_t)sizeof file_bytes);
  fault_platform_init(&fp);
}

static void teardown(void) {
  close(fd);
  unlink(path);
}

/* ---- a platform over the fault platform that orders completions ----
 * ring_wait hands out one completion per call, the newest read first (a
 * device that completes out of order, deterministically), optionally with
 * two that are not the ring's reads (a tag past the circle, and a read's
 * second completion). Its allocations end in a guard zone whose every int
 * is 1 (EMEL_RING_IN_FLIGHT): an index one past the circle reads a request
 * that looks in flight, so the mistake shows in a plain build too. */
typedef struct order_platform {
  emel_platform_ops ops;
  const emel_platform_ops *inner;
  emel_ring_completion held[64];
  uint64_t seq_of[64]; /* by tag: when it was sent */
  uint64_t next_seq;
  unsigned held_n, outstanding;
  int lifo;            /* 0: completions as the fault platform gives them */
  int strays;          /* the next wait also returns two completions that are not ours */
  uint64_t stray_tag;
  unsigned waits;
} order_platform;

static order_platform op;

static void *op_alloc(void *u, size_t size, size_t align) {
  order_platform *o = u;
  unsigned char *p = o->inner->alloc(o->inner->user, size + GUARD, align);
  if (p) {
    const int one = EMEL_RING_IN_FLIGHT;
    for (size_t at = size; at + sizeof one <= size + GUARD; at += sizeof one) memcpy(p + at, &one, sizeof one);
  }
  return p;
}

static void op_free(void *u, void *p, size_t size) {
  order_platform *o = u;
  o->inner->free(o->inner->user, p, size + GUARD);
}

static int op_ring_open(void *u, unsigned depth, void **ring) {
  order_platform *o = u;
  return o->inner->ring_open(o->inner->user, depth, ring);
}

static int op_ring_close(void *u, void *ring) {
  order_platform *o = u;
  o->held_n = o->outstanding = 0;
  return o->inner->ring_close(o->inner->user, ring);
}

static int op_ring_read(void *u, void *ring, int f, void *buf, size_t len, uint64_t off, uint64_t tag) {
  order_platform *o = u;
  const int r = o->inner->ring_read(o->inner->user, ring, f, buf, len, off, tag);
  if (r == 0) {
    o->seq_of[tag] = o->next_seq++;
    o->outstanding++;
  }
  return r;
}

static int op_ring_wait(void *u, void *ring, unsigned min, emel_ring_completion *out, unsigned max) {
  order_platform *o = u;
  o->waits++;
  if (!o->lifo) return o->inner->ring_wait(o->inner->user, ring, min, out, max);
  while (o->outstanding > 0) { /* everything sent, collected first: then the order is ours */
    const int n = o->inner->ring_wait(o->inner->user, ring, 1, o->held + o->held_n, 64 - o->held_n);
    if (n < 0) return n;
    o->held_n += (unsigned)n;
    o->outstanding -= (unsigned)n;
  }
  if (o->held_n == 0) return 0;
  unsigned newest = 0;
  for (unsigned i = 1; i < o->held_n; i++)
    if (o->seq_of[o->held[i].tag] > o->seq_of[o->held[newest].tag]) newest = i;
  int n = 0;
  if (o->strays && max >= 3) {
    o->strays = 0;
    out[n++] = (emel_ring_completion){.tag = o->stray_tag, .res = -EIO};
  }
  out[n++] = o->held[newest];
  if (n == 2) out[n++] = o->held[newest]; /* the same read twice: its second is not ours */
  o->held[newest] = o->held[--o->held_n];
  return n;
}

static const emel_platform_ops *ordered(int lifo) {
  memset(&op, 0, sizeof op);
  op.lifo = lifo;
  op.inner = &fp.ops;
  op.ops = fp.ops;
  op.ops.user = &op;
  op.ops.alloc = op_alloc;
  op.ops.free = op_free;
  op.ops.ring_open = op_ring_open;
  op.ops.ring_close = op_ring_close;
  op.ops.ring_read = op_ring_read;
  op.ops.ring_wait = op_ring_wait;
  return &op.ops;
}

/* ---- helpers ---- */

static void check_in_circle(emel_ring *ring, uint32_t k) {
  const emel_ring_req *q = emel_ring_at(ring, k);
  ck_assert_msg(q >= ring->reqs && q < ring->reqs + ring->depth, "read %u of the circle (head %u) is reqs[%td] of %u",
                k, ring->head, q - ring->reqs, ring->depth);
}

static emel_ring_req *push_read(emel_ring *ring, unsigned char *dst, uint64_t off, uint64_t len, uintptr_t owner) {
  emel_ring_req *q = emel_ring_push(ring);
  ck_assert_int_eq(q->state, EMEL_RING_TO_SEND);
  q->off = off;
  q->len = len;
  q->dst = dst;
  q->fd = fd;
  q->owner = (const void *)owner;
  ck_assert_int_eq(emel_ring_send(ring, q), 0);
  ck_assert_int_eq(q->state, EMEL_RING_IN_FLIGHT);
  return q;
}

/* ---- the circle across its wrap ---- */

/* Guards against the off-by-one at the wrap: a read index of head + k taken
 * modulo anything but the depth (depth + 1, a power-of-two mask, `>` where
 * `>=` is meant) names a request outside the circle or the wrong one; and
 * against a short read asked again into the start of its buffer (its
 * destination not moved with its offset). Depth 1 (the head is the only
 * entry and wraps at every read) and depths 3 and 8 (not all powers of two),
 * each through many turns of the circle, every read's bytes checked. */
static void stream_through(uint32_t depth, int with_short) {
  emel_ring ring;
  ck_assert_int_eq(emel_ring_init(&ring, ordered(0), depth), 0);
  ck_assert_int_eq(emel_ring_open(&ring), 0);
  ck_assert_int_eq(ring.state, EMEL_RING_OPEN);
  const uint64_t len = 300, total = 5 * (uint64_t)depth + 2; /* several turns, ending mid-circle */
  static unsigned char dst[FILE_BYTES];
  memset(dst, 0, sizeof dst);
  if (with_short) fault_platform_ring_completion(&fp, 2, 1, 0, 10); /* the second completion: 10 bytes of 300 */
  uint64_t made = 0, taken = 0, bytes = 0, sent_again = 0;
  while (taken < total) {
    while (made < total && ring.count < depth) {
      push_read(&ring, dst + made * len, made * len, len, (uintptr_t)made + 1);
      made++;
    }
    for (uint32_t k = 0; k < ring.count; k++) check_in_circle(&ring, k);
    emel_ring_req *q = emel_ring_at(&ring, 0);
    ck_assert_int_eq(emel_ring_reap(&ring, q, &bytes), 0);
    ck_assert_int_eq(q->state, EMEL_RING_DONE);
    ck_assert_ptr_eq(q->owner, (const void *)(uintptr_t)(taken + 1)); /* file order kept across the wrap */
    if (q->off + (uint64_t)q->res < (taken + 1) * len) { /* short: ask again for the rest */
      ck_assert_int_eq(q->res, 10);
      emel_ring_retry_from(q, q->off + (uint64_t)q->res);
      ck_assert_uint_eq(q->len, len - 10);
      ck_assert_int_eq(emel_ring_send_waiting(&ring, &sent_again), 0);
      continue;
    }
    ck_assert_mem_eq(dst + taken * len, file_bytes + taken * len, len);
    emel_ring_pop(&ring);
    taken++;
  }
  ck_assert_uint_eq(sent_again, with_short ? 1 : 0);
  ck_assert_uint_eq(bytes, total * len);
  ck_assert_uint_eq(ring.count, 0);
  ck_assert_uint_eq(ring.in_flight, 0);
  ck_assert_uint_eq(ring.head, total % depth);
  emel_ring_fini(&ring);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
}

START_TEST(test_a_depth_1_circle_wraps_at_every_read) { stream_through(1, 0); }
END_TEST

START_TEST(test_a_deeper_circle_keeps_file_order_across_its_wrap_and_asks_again_for_a_short_read) {
  stream_through(3, 1);
  fault_platform_clear_faults(&fp);
  stream_through(8, 0);
}
END_TEST

/* ---- reaping up to a read that completed out of order ---- */

/* Guards against matching completions to the circle's order instead of their
 * tags (the head would take the newest read's result), against a reap that
 * stops at the first completion or waits for everything (until ignored: the
 * reads after it are no longer in flight while the caller works), and against
 * taking a completion that is not the ring's (a tag past the circle, or a
 * read's second completion) as one of its reads. */
START_TEST(test_reap_until_takes_out_of_order_completions_by_tag_and_stops_there) {
  const emel_platform_ops *p = ordered(1);
  emel_ring ring;
  ck_assert_int_eq(emel_ring_init(&ring, p, 4), 0);
  ck_assert_int_eq(emel_ring_open(&ring), 0);
  static unsigned char dst[4][400];
  memset(dst, 0, sizeof dst);
  const uint64_t at[4] = {4096, 100, 9000, 20000};
  /* Start past the array's start so that the wrap is crossed. */
  ring.head = 2;
  for (int k = 0; k < 4; k++) push_read(&ring, dst[k], at[k], 100 * (uint64_t)(k + 1), (uintptr_t)k + 1);
  ck_assert_uint_eq(ring.in_flight, 4);
  op.strays = 1;
  op.stray_tag = ring.depth; /* one past the circle */
  uint64_t bytes = 0;
  /* Newest first: the read made last (3) completes, then 2. */
  ck_assert_int_eq(emel_ring_reap(&ring, emel_ring_at(&ring, 2), &bytes), 0);
  ck_assert_uint_eq(op.waits, 2);
  ck_assert_int_eq(emel_ring_at(&ring, 3)->state, EMEL_RING_DONE);
  ck_assert_int_eq(emel_ring_at(&ring, 3)->res, 400);
  ck_assert_int_eq(emel_ring_at(&ring, 2)->state, EMEL_RING_DONE);
  ck_assert_int_eq(emel_ring_at(&ring, 2)->res, 300);
  ck_assert_int_eq(emel_ring_at(&ring, 1)->state, EMEL_RING_IN_FLIGHT);
  ck_assert_int_eq(emel_ring_at(&ring, 0)->state, EMEL_RING_IN_FLIGHT);
  ck_assert_uint_eq(ring.in_flight, 2);
  ck_assert_uint_eq(bytes, 700);
  /* A reap up to a read already done waits for nothing. */
  ck_assert_int_eq(emel_ring_reap(&ring, emel_ring_at(&ring, 3), &bytes), 0);
  ck_assert_uint_eq(op.waits, 2);
  ck_assert_int_eq(emel_ring_reap(&ring, emel_ring_at(&ring, 0), &bytes), 0);
  ck_assert_uint_eq(op.waits, 4);
  ck_assert_uint_eq(ring.in_flight, 0);
  ck_assert_uint_eq(bytes, 1000);
  for (int k = 0; k < 4; k++) {
    const emel_ring_req *q = emel_ring_at(&ring, (uint32_t)k);
    ck_assert_ptr_eq(q->owner, (const void *)(uintptr_t)(k + 1));
    ck_assert_int_eq(q->res, 100 * (k + 1));
    ck_assert_mem_eq(dst[k], file_bytes + at[k], (size_t)q->res);
  }
  emel_ring_drain(&ring, 16, NULL);
  emel_ring_fini(&ring);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
}
END_TEST

/* Failed, short and interrupted completions are the caller's to judge: the
 * reap records them as they came and goes on (guards against a reap that
 * stops, retries or counts on its own). */
START_TEST(test_failed_and_interrupted_completions_are_recorded_not_judged) {
  emel_ring ring;
  ck_assert_int_eq(emel_ring_init(&ring, &fp.ops, 4), 0);
  ck_assert_int_eq(emel_ring_open(&ring), 0);
  static unsigned char dst[4][100];
  const int errs[] = {EIO, EINTR, EAGAIN, 0 /* short: 7 bytes */};
  for (size_t e = 0; e < sizeof errs / sizeof *errs; e++) {
    for (int k = 0; k < 4; k++) push_read(&ring, dst[k], 100 * (uint64_t)k, 100, (uintptr_t)k + 1);
    fault_platform_ring_completion(&fp, fp.completions + 2, 1, errs[e], 7);
    uint64_t bytes = 0;
    ck_assert_int_eq(emel_ring_reap(&ring, NULL, &bytes), 0);
    ck_assert_uint_eq(ring.in_flight, 0);
    int odd = 0, full = 0;
    for (int k = 0; k < 4; k++) {
      const emel_ring_req *q = emel_ring_at(&ring, (uint32_t)k);
      ck_assert_int_eq(q->state, EMEL_RING_DONE);
      odd += q->res == (errs[e] ? -errs[e] : 7);
      full += q->res == 100;
    }
    ck_assert_int_eq(odd, 1);
    ck_assert_int_eq(full, 3);
    ck_assert_uint_eq(bytes, errs[e] ? 300 : 307);
    ck_assert_uint_eq(ring.count, 4); /* the circle is the caller's to move */
    emel_ring_drain(&ring, 16, NULL);
    ck_assert_uint_eq(ring.count, 0);
  }
  emel_ring_fini(&ring);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
}
END_TEST

/* ---- drain, then close ---- */

/* Guards against freeing or closing with reads in flight: a drain that waits
 * once (each wait here returns one read), or empties the circle without
 * waiting, leaves reads the kernel may still write into buffers about to be
 * freed. After it nothing is in flight, every read's bytes arrived, and the
 * ring stays open for the next transfer; the close then leaks nothing. */
START_TEST(test_drain_waits_for_every_read_in_flight_then_the_close_leaks_nothing) {
  const emel_platform_ops *p = ordered(1);
  emel_ring ring;
  ck_assert_int_eq(emel_ring_init(&ring, p, 8), 0);
  ck_assert_int_eq(emel_ring_open(&ring), 0);
  static unsigned char dst[8][512];
  memset(dst, 0, sizeof dst);
  for (int k = 0; k < 8; k++) push_read(&ring, dst[k], 512 * (uint64_t)k, 512, (uintptr_t)k + 1);
  uint64_t bytes = 0;
  emel_ring_drain(&ring, 16, &bytes);
  ck_assert_uint_eq(op.waits, 8);
  ck_assert_int_eq(fp.ring_in_flight, 0);
  ck_assert_uint_eq(ring.in_flight, 0);
  ck_assert_uint_eq(ring.count, 0);
  ck_assert_uint_eq(ring.head, 0);
  ck_assert_uint_eq(bytes, 8 * 512);
  ck_assert_mem_eq(dst, file_bytes, sizeof dst);
  ck_assert_int_eq(ring.state, EMEL_RING_OPEN);
  ck_assert_ptr_nonnull(ring.handle);
  ck_assert_uint_eq(fp.calls[FP_RING_CLOSE], 0);
  emel_ring_fini(&ring);
  ck_assert_uint_eq(fp.calls[FP_RING_CLOSE], 1);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
}
END_TEST

/* Interrupted waits (EINTR, or EAGAIN: the kernel short of resources for
 * now) are waited again within the budget; past it, or on any other failure,
 * the ring is closed (which cancels and waits for its reads), UNTRIED again
 * so the owner opens another, and closed once only (guards against a drain
 * that gives up and leaves reads in flight, spins forever, leaves a closed
 * ring for fini to close again, or drops a ring over one transient EAGAIN). */
START_TEST(test_a_drain_that_cannot_wait_closes_the_ring_once) {
  static unsigned char dst[4][256];
  const struct {
    uint64_t eintrs;
    int err;
    int closed;
  } cases[] = {{3, EINTR, 0}, {17, EINTR, 1}, {3, EAGAIN, 0}, {17, EAGAIN, 1}, {1, EIO, 1}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    fault_platform_init(&fp);
    emel_ring ring;
    ck_assert_int_eq(emel_ring_init(&ring, &fp.ops, 4), 0);
    ck_assert_int_eq(emel_ring_open(&ring), 0);
    for (int k = 0; k < 4; k++) push_read(&ring, dst[k], 256 * (uint64_t)k, 256, (uintptr_t)k + 1);
    fault_platform_fail_many(&fp, FP_RING_WAIT, 1, cases[c].eintrs, cases[c].err);
    emel_ring_drain(&ring, 16, NULL);
    ck_assert_uint_eq(ring.in_flight, 0);
    ck_assert_uint_eq(ring.count, 0);
    if (cases[c].closed) {
      ck_assert_int_eq(ring.state, EMEL_RING_UNTRIED);
      ck_assert_ptr_null(ring.handle);
      ck_assert_int_eq(fp.live_rings, 0);
      ck_assert_int_eq(fp.ring_in_flight, 0);
      ck_assert_uint_eq(fp.calls[FP_RING_CLOSE], 1);
    } else {
      ck_assert_int_eq(ring.state, EMEL_RING_OPEN);
      ck_assert_int_eq(fp.ring_in_flight, 0);
    }
    fault_platform_clear_faults(&fp);
    emel_ring_fini(&ring);
    ck_assert_uint_eq(fp.calls[FP_RING_CLOSE], 1);
    ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
  }
}
END_TEST

/* A refused ring is final (REFUSED, nothing held); the circle's allocation
 * failing is reported with what was allocated freed by fini. */
START_TEST(test_a_refused_open_and_a_failed_allocation_leave_nothing_behind) {
  emel_ring ring;
  fault_platform_fail(&fp, FP_RING_OPEN, 1, ENOSYS);
  ck_assert_int_eq(emel_ring_init(&ring, &fp.ops, 4), 0);
  ck_assert_int_eq(emel_ring_open(&ring), -ENOSYS);
  ck_assert_int_eq(ring.state, EMEL_RING_REFUSED);
  ck_assert_ptr_null(ring.handle);
  emel_ring_fini(&ring);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
  for (uint64_t nth = 1; nth <= 2; nth++) {
    fault_platform_clear_faults(&fp);
    fault_platform_fail(&fp, FP_ALLOC, fp.calls[FP_ALLOC] + nth, ENOMEM);
    ck_assert_int_eq(emel_ring_init(&ring, &fp.ops, 4), -ENOMEM);
    emel_ring_fini(&ring);
    ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
  }
  ck_assert_int_eq(emel_ring_init(&ring, &fp.ops, 0), 0); /* no ring at all: nothing allocated */
  ck_assert_ptr_null(ring.reqs);
  emel_ring_fini(&ring);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
}
END_TEST

static Suite *ring_suite(void) {
  Suite *s = suite_create("io_ring");
  TCase *tc = tcase_create("ring");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_a_depth_1_circle_wraps_at_every_read);
  tcase_add_test(tc, test_a_deeper_circle_keeps_file_order_across_its_wrap_and_asks_again_for_a_short_read);
  tcase_add_test(tc, test_reap_until_takes_out_of_order_completions_by_tag_and_stops_there);
  tcase_add_test(tc, test_failed_and_interrupted_completions_are_recorded_not_judged);
  tcase_add_test(tc, test_drain_waits_for_every_read_in_flight_then_the_close_leaks_nothing);
  tcase_add_test(tc, test_a_drain_that_cannot_wait_closes_the_ring_once);
  tcase_add_test(tc, test_a_refused_open_and_a_failed_allocation_leave_nothing_behind);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(ring_suite)

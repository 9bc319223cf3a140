/* The mmap strategy: every route of statecharts/io_mmap.rl through the io
 * boundary, with real files of known bytes and injected platform failures.
 * Each test asserts the exact code, the preserved errno, and that nothing
 * (fd, mapping, locked range, slot, allocation) leaked. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "emel/io.h"
#include "emel/io_mmap.h"
#include "emel/io/mmap/mmap.h"
#include "emel/tensor.h"
#include "fault_platform.h"
#include "machine_check.h"

static fault_platform fp;
static emel_io *io;
static size_t page;
static char path[64];
static uint64_t file_size;
static uint32_t file; /* index of `path` in io's table */

/* The byte at file offset i: no two nearby offsets share a value pattern. */
static unsigned char pattern(uint64_t i) { return (unsigned char)((i * 2654435761u) >> 13 ^ i); }

static void write_file(const char *p, uint64_t size) {
  FILE *f = fopen(p, "wb");
  ck_assert_ptr_nonnull(f);
  for (uint64_t i = 0; i < size; i++) fputc(pattern(i), f);
  ck_assert_int_eq(fclose(f), 0);
}

static void make_temp(char *out, size_t n, uint64_t size) {
  snprintf(out, n, "/tmp/emel-mmap-XXXXXX");
  int fd = mkstemp(out);
  ck_assert_int_ge(fd, 0);
  close(fd);
  write_file(out, size);
}

static void open_io(uint32_t max_mappings) {
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
  ck_assert_int_eq(emel_io_create(&io, &ic, NULL), EMEL_OK);
  emel_io_mmap_config mc = EMEL_IO_MMAP_CONFIG_INIT(.max_mappings = max_mappings);
  ck_assert_int_eq(emel_io_mmap_attach(io, &mc, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_add_file(io, path, strlen(path), &file, NULL), EMEL_OK);
}

static void setup(void) {
  fault_platform_init(&fp);
  page = emel_platform_default()->page_size(NULL);
  file_size = 5 * page + 123; /* not a multiple of the page size */
  make_temp(path, sizeof path, file_size);
  open_io(0);
}

static void teardown(void) {
  ck_assert_uint_eq(fp.open_fds, 0); /* no descriptor is held between requests */
  emel_io_destroy(io);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
  unlink(path);
}

static emel_io_request request(uint64_t offset, uint64_t size, unsigned flags) {
  emel_io_request r = {.file_index = file, .offset = offset, .size = size, .strategy = EMEL_STRATEGY_MMAP,
                       .flags = flags};
  return r;
}

static emel_io_result map(uint64_t offset, uint64_t size, unsigned flags) {
  emel_io_request r = request(offset, size, flags);
  emel_io_result res;
  emel_io_acquire(io, &r, &res);
  return res;
}

static void assert_bytes(const emel_io_result *r, uint64_t offset, uint64_t size) {
  ck_assert_int_eq(r->error.code, EMEL_OK);
  ck_assert_ptr_nonnull(r->data);
  ck_assert_uint_eq(r->size, size);
  const unsigned char *b = r->data;
  /* One assertion, not one a byte: each Check assertion writes to Check's
   * message file, and under valgrind 400,000 of them (the lane failure test)
   * took 70 s. */
  uint64_t i = 0;
  while (i < size && b[i] == pattern(offset + i)) i++;
  ck_assert_msg(i == size, "byte %llu of the tensor at %llu differs", (unsigned long long)i,
                (unsigned long long)offset);
}

static void assert_refused(emel_io_result r, emel_status code, int os_errno) {
  ck_assert_msg(r.error.code == code, "got %s, wanted %s", emel_status_name(r.error.code), emel_status_name(code));
  ck_assert_int_eq(r.error.os_errno, os_errno);
  ck_assert_ptr_null(r.data);
  ck_assert_int_eq(r.residency, EMEL_RESIDENCY_NONE);
}

static void release_ok(emel_io_result r) {
  emel_error e;
  (void)emel_io_release(io, r.handle, &e);
  ck_assert_msg(e.code == EMEL_OK, "release: %s", emel_status_name(e.code));
}

/* ---- success ---- */

START_TEST(test_a_tensor_at_a_page_aligned_offset_maps_to_the_files_bytes) {
  emel_io_result r = map(page, 1000, 0);
  assert_bytes(&r, page, 1000);
  ck_assert_int_eq(r.residency, EMEL_RESIDENCY_MAPPED);
  ck_assert_int_eq(r.strategy, EMEL_STRATEGY_MMAP);
  ck_assert_int_eq(r.handle.strategy, EMEL_STRATEGY_MMAP);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 1);
  ck_assert_uint_eq(fp.live_maps, 1);
  ck_assert_uint_eq(fp.open_fds, 0); /* closed right after mapping */
  release_ok(r);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 0);
  ck_assert_uint_eq(fp.live_maps, 0);
}
END_TEST

START_TEST(test_tensors_at_unaligned_offsets_point_at_their_first_byte) {
  const uint64_t offsets[] = {32, 96, page - 32, page + 4000, 2 * page + 1, 3 * page + 7};
  emel_io_result r[6];
  for (int i = 0; i < 6; i++) {
    r[i] = map(offsets[i], 200 + (uint64_t)i * 300, 0);
    assert_bytes(&r[i], offsets[i], 200 + (uint64_t)i * 300);
  }
  ck_assert_uint_eq(fp.calls[FP_OPEN], 1);
  ck_assert_uint_eq(fp.calls[FP_FILE_IDENTITY], 1);
  ck_assert_uint_eq(fp.calls[FP_MAP], 1);
  for (int i = 0; i < 6; i++) release_ok(r[i]);
  ck_assert_uint_eq(fp.calls[FP_UNMAP], 1);
  ck_assert_uint_eq(fp.live_maps, 0);
}
END_TEST

START_TEST(test_a_span_ending_on_the_last_byte_of_the_file_maps) {
  emel_io_result r = map(file_size - 300, 300, EMEL_LOAD_POPULATE);
  assert_bytes(&r, file_size - 300, 300);
  emel_io_result whole = map(0, file_size, 0);
  assert_bytes(&whole, 0, file_size);
  release_ok(r);
  release_ok(whole);
}
END_TEST

START_TEST(test_fifteen_hundred_tensors_of_one_file_open_and_map_it_once) {
  enum { N = 1500, STRIDE = 96 };
  char big[64];
  make_temp(big, sizeof big, (uint64_t)N * STRIDE + 17);
  uint32_t idx;
  ck_assert_int_eq(emel_io_add_file(io, big, strlen(big), &idx, NULL), EMEL_OK);
  static emel_io_result r[N];
  for (uint32_t i = 0; i < N; i++) {
    emel_io_request q = request((uint64_t)i * STRIDE, 70 + i % 26, i % 3 == 0 ? EMEL_LOAD_POPULATE : 0);
    q.file_index = idx;
    emel_io_acquire(io, &q, &r[i]);
    ck_assert_int_eq(r[i].error.code, EMEL_OK);
    ck_assert_uint_eq(((unsigned char *)r[i].data)[0], pattern((uint64_t)i * STRIDE));
    ck_assert_uint_eq(((unsigned char *)r[i].data)[r[i].size - 1], pattern((uint64_t)i * STRIDE + r[i].size - 1));
  }
  ck_assert_uint_eq(fp.calls[FP_OPEN], 1);
  ck_assert_uint_eq(fp.calls[FP_MAP], 1);
  ck_assert_uint_eq(fp.live_maps, 1);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), N);
  for (uint32_t i = 0; i < N; i++) release_ok(r[i]);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 0);
  ck_assert_uint_eq(fp.calls[FP_UNMAP], 1);
  ck_assert_uint_eq(fp.live_maps, 0);
  unlink(big);
}
END_TEST

START_TEST(test_releasing_a_tensor_drops_only_the_pages_wholly_its_own) {
  emel_io_result a = map(32, 2 * page, 0);   /* owns page 1 only (page 0 and 2 are shared) */
  emel_io_result b = map(2 * page + 64, 2 * page, 0);
  uint64_t advises = fp.calls[FP_ADVISE];
  release_ok(a);
  ck_assert_uint_eq(fp.calls[FP_ADVISE], advises + 1); /* MADV_DONTNEED of page 1 */
  ck_assert_uint_eq(fp.calls[FP_UNMAP], 0);
  assert_bytes(&b, 2 * page + 64, 2 * page); /* the neighbour is untouched */
  emel_io_result tiny = map(100, 40, 0);     /* no page of its own: nothing to drop */
  release_ok(tiny);
  ck_assert_uint_eq(fp.calls[FP_ADVISE], advises + 1);
  release_ok(b);
  ck_assert_uint_eq(fp.calls[FP_UNMAP], 1);
}
END_TEST

typedef struct span {
  uint64_t offset, size;
} span;

static uint64_t down(uint64_t v) { return v / page * page; }
static uint64_t up(uint64_t v) { return down(v + page - 1); }

/* Releases `r` (the tensor at `t`, in a mapping starting at `base`) while
 * the `n` tensors at `resident` stay mapped, and checks the MADV_DONTNEED it
 * sends: exactly the pages wholly inside the tensor, or nothing when it has
 * none, and never a page a resident neighbour has bytes in. */
static void release_and_check_dropped(emel_io_result r, span t, const char *base, const span *resident, int n) {
  fault_platform_forget_advices(&fp);
  release_ok(r);
  fp_advice a[4];
  const size_t calls = fault_platform_advices(&fp, FP_ADVISE, a, 4);
  ck_assert_uint_eq(fp.advice_lost, 0);
  const uint64_t first = up(t.offset), end = down(t.offset + t.size);
  if (end <= first) {
    ck_assert_uint_eq(calls, 0);
    return;
  }
  ck_assert_uint_eq(calls, 1);
  ck_assert_int_eq(a[0].advice, EMEL_ADVISE_DONTNEED);
  ck_assert_int_eq(a[0].result, 0);
  const uint64_t from = (uint64_t)((const char *)a[0].addr - base), to = from + a[0].len;
  ck_assert_msg(from == first && to == end, "dropped [%llu, %llu) of the tensor at [%llu, %llu), want [%llu, %llu)",
                (unsigned long long)from, (unsigned long long)to, (unsigned long long)t.offset,
                (unsigned long long)(t.offset + t.size), (unsigned long long)first, (unsigned long long)end);
  for (int i = 0; i < n; i++) {
    const uint64_t lo = down(resident[i].offset), hi = up(resident[i].offset + resident[i].size);
    ck_assert_msg(to <= lo || from >= hi, "dropped [%llu, %llu) covers a page of the resident tensor at %llu",
                  (unsigned long long)from, (unsigned long long)to, (unsigned long long)resident[i].offset);
  }
}

/* Kills mmap/actions.c's release range rounded outward (the end rounded up or
 * the start down): MADV_DONTNEED on a private mapping discards a page, so a
 * page shared with a resident neighbour must never be dropped. Only the
 * number of advise calls was checked, not the range. */
START_TEST(test_a_release_drops_exactly_the_pages_only_its_tensor_uses_and_no_neighbours_page) {
  /* left | mid | right, sharing pages 1 and 3; mid alone owns page 2. */
  const span left = {0, page + 100}, mid = {page + 100, 3 * page - 150}, right = {4 * page - 50, page + 173};
  emel_io_result l = map(left.offset, left.size, 0), m = map(mid.offset, mid.size, 0);
  emel_io_result r = map(right.offset, right.size, 0);
  const char *base = (const char *)l.data;
  const span both[2] = {left, right};
  release_and_check_dropped(m, mid, base, both, 2); /* [2p, 3p) */
  assert_bytes(&l, left.offset, left.size);
  assert_bytes(&r, right.offset, right.size);
  release_and_check_dropped(l, left, base, &right, 1); /* [0, p): page 1 held mid's bytes too */
  assert_bytes(&r, right.offset, right.size);

  /* A tensor ending on a page boundary owns the page before it; one that
   * starts on one owns its first page; the rest rounds inward. */
  const span a = {0, 2 * page}, b = {2 * page, page + 10}, c = {3 * page + 10, page - 100};
  emel_io_result ra = map(a.offset, a.size, 0), rb = map(b.offset, b.size, 0), rc = map(c.offset, c.size, 0);
  const span ac[3] = {a, c, right};
  release_and_check_dropped(rb, b, base, ac, 3); /* [2p, 3p): page 3 is c's too */
  const span cr[2] = {c, right};
  release_and_check_dropped(ra, a, base, cr, 2); /* [0, 2p) */
  release_and_check_dropped(rc, c, base, &right, 1); /* 3p+10 .. 4p-90 holds no whole page */
  release_ok(r);
  ck_assert_uint_eq(fp.calls[FP_UNMAP], 1);
}
END_TEST

START_TEST(test_every_advice_over_a_sub_range_of_the_tensor_succeeds) {
  emel_io_result r = map(64, 3 * page, 0);
  const emel_map_advice kinds[] = {EMEL_ADVISE_SEQUENTIAL, EMEL_ADVISE_WILLNEED, EMEL_ADVISE_DONTNEED,
                                   EMEL_ADVISE_POPULATE_READ, EMEL_ADVISE_NORMAL};
  fault_platform_forget_advices(&fp);
  for (int i = 0; i < 5; i++) {
    emel_error e;
    (void)emel_io_advise(io, r.handle, 100, page + 10, kinds[i], &e);
    ck_assert_msg(e.code == EMEL_OK, "advice %d: %s", (int)kinds[i], emel_status_name(e.code));
  }
  /* each passed on as asked, from the page holding the range's first byte to its last byte */
  fp_advice a[5];
  ck_assert_uint_eq(fault_platform_advices(&fp, FP_ADVISE, a, 5), 5);
  const char *first = (const char *)r.data + 100;
  for (int i = 0; i < 5; i++) {
    ck_assert_int_eq(a[i].advice, kinds[i]);
    ck_assert_ptr_eq(a[i].addr, first - 164);
    ck_assert_uint_eq(a[i].len, 164 + page + 10);
  }
  ck_assert_int_eq(emel_io_advise(io, r.handle, 0, 3 * page, EMEL_ADVISE_WILLNEED, NULL), EMEL_OK);
  assert_bytes(&r, 64, 3 * page); /* dropped pages fault back in with the file's bytes */
  release_ok(r);
}
END_TEST

START_TEST(test_an_advise_range_outside_the_tensor_is_refused_without_a_call) {
  emel_io_result r = map(64, 1000, 0);
  uint64_t before = fp.calls[FP_ADVISE];
  ck_assert_int_eq(emel_io_advise(io, r.handle, 0, 0, EMEL_ADVISE_WILLNEED, NULL), EMEL_MMAP_ADVISE_RANGE_INVALID);
  ck_assert_int_eq(emel_io_advise(io, r.handle, 1001, 1, EMEL_ADVISE_WILLNEED, NULL), EMEL_MMAP_ADVISE_RANGE_INVALID);
  ck_assert_int_eq(emel_io_advise(io, r.handle, 999, 2, EMEL_ADVISE_WILLNEED, NULL), EMEL_MMAP_ADVISE_RANGE_INVALID);
  ck_assert_int_eq(emel_io_advise(io, r.handle, 1, UINT64_MAX, EMEL_ADVISE_WILLNEED, NULL),
                   EMEL_MMAP_ADVISE_RANGE_INVALID);
  ck_assert_int_eq(emel_io_advise(io, r.handle, 999, 1, EMEL_ADVISE_WILLNEED, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_advise(io, r.handle, 0, 10, EMEL_ADVISE_HUGEPAGE, NULL), EMEL_INVALID_REQUEST);
  ck_assert_int_eq(emel_io_advise(io, r.handle, 0, 10, (emel_map_advice)77, NULL), EMEL_INVALID_REQUEST);
  ck_assert_uint_eq(fp.calls[FP_ADVISE], before + 1);
  release_ok(r);
  ck_assert_int_eq(emel_io_advise(io, r.handle, 0, 10, EMEL_ADVISE_WILLNEED, NULL), EMEL_INVALID_HANDLE);
}
END_TEST

START_TEST(test_a_failed_madvise_is_advise_failed_with_its_errno) {
  emel_io_result r = map(64, 1000, 0);
  fault_platform_fail(&fp, FP_ADVISE, fp.calls[FP_ADVISE] + 1, EIO);
  emel_error e;
  (void)emel_io_advise(io, r.handle, 0, 10, EMEL_ADVISE_WILLNEED, &e);
  ck_assert_int_eq(e.code, EMEL_MMAP_ADVISE_FAILED);
  ck_assert_int_eq(e.os_errno, EIO);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 1);
  release_ok(r);
}
END_TEST

START_TEST(test_a_released_or_forged_handle_is_an_invalid_handle) {
  emel_io_result r = map(64, 100, 0);
  release_ok(r);
  ck_assert_int_eq(emel_io_release(io, r.handle, NULL), EMEL_INVALID_HANDLE);
  emel_io_result again = map(64, 100, 0); /* reuses the slot with a new generation */
  ck_assert_uint_eq(again.handle.slot, r.handle.slot);
  ck_assert_uint_ne(again.handle.generation, r.handle.generation);
  ck_assert_int_eq(emel_io_release(io, r.handle, NULL), EMEL_INVALID_HANDLE);
  emel_io_handle forged = {EMEL_STRATEGY_MMAP, 1u << 30, 0};
  ck_assert_int_eq(emel_io_release(io, forged, NULL), EMEL_INVALID_HANDLE);
  forged.slot = 7; /* in range, never used */
  ck_assert_int_eq(emel_io_release(io, forged, NULL), EMEL_INVALID_HANDLE);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 1);
  release_ok(again);
}
END_TEST

START_TEST(test_populate_pre_faults_the_tensors_pages_and_lock_locks_them_until_release) {
  emel_io_result p = map(page + 8, 2 * page, EMEL_LOAD_POPULATE);
  ck_assert_uint_eq(fp.calls[FP_ADVISE], 1);
  assert_bytes(&p, page + 8, 2 * page);
  emel_io_result l = map(40, 500, EMEL_LOAD_LOCK);
  ck_assert_int_eq(l.error.code, EMEL_OK);
  ck_assert_uint_eq(fp.calls[FP_LOCK], 1);
  ck_assert_int_eq(fp.locked_bytes, 540); /* the window from the tensor's first page */
  emel_io_result both = map(3 * page, page, EMEL_LOAD_POPULATE | EMEL_LOAD_LOCK);
  assert_bytes(&both, 3 * page, page);
  ck_assert_int_eq(fp.locked_bytes, 540 + (int64_t)page);
  release_ok(l);
  ck_assert_int_eq(fp.locked_bytes, (int64_t)page);
  release_ok(p); /* a file with a locked tensor keeps its pages: no MADV_DONTNEED */
  ck_assert_uint_eq(fp.calls[FP_ADVISE], 2);
  release_ok(both);
  ck_assert_int_eq(fp.locked_bytes, 0);
  ck_assert_uint_eq(fp.calls[FP_UNLOCK], 2);
}
END_TEST

START_TEST(test_a_file_loaded_again_after_its_last_release_is_opened_and_sized_again) {
  emel_io_result r = map(64, 100, 0);
  release_ok(r);
  r = map(64, 100, 0);
  assert_bytes(&r, 64, 100);
  ck_assert_uint_eq(fp.calls[FP_OPEN], 2);
  ck_assert_uint_eq(fp.calls[FP_FILE_IDENTITY], 2);
  release_ok(r);
}
END_TEST

/* ---- refusals before any OS call ---- */

START_TEST(test_a_malformed_request_is_invalid_before_any_os_call) {
  assert_refused(map(0, 0, 0), EMEL_INVALID_REQUEST, 0);
  assert_refused(map(0, 10, EMEL_LOAD_DIRECT), EMEL_INVALID_REQUEST, 0);
  assert_refused(map(0, 10, EMEL_LOAD_DROP_CACHE), EMEL_INVALID_REQUEST, 0);
  assert_refused(map(0, 10, 1u << 12), EMEL_INVALID_REQUEST, 0);
  unsigned char buf[16];
  emel_io_request q = request(0, 10, 0);
  q.target = buf;
  q.target_size = sizeof buf;
  emel_io_result res;
  emel_io_acquire(io, &q, &res);
  assert_refused(res, EMEL_INVALID_REQUEST, 0);
  q.target = NULL;
  emel_io_acquire(io, &q, &res);
  assert_refused(res, EMEL_INVALID_REQUEST, 0);
  ck_assert_uint_eq(fp.calls[FP_OPEN], 0);
}
END_TEST

START_TEST(test_a_file_index_outside_the_table_is_invalid_file_index) {
  emel_io_request q = request(0, 10, 0);
  q.file_index = 5;
  emel_io_result res;
  emel_io_acquire(io, &q, &res);
  assert_refused(res, EMEL_INVALID_FILE_INDEX, 0);
  ck_assert_uint_eq(fp.calls[FP_OPEN], 0);
}
END_TEST

START_TEST(test_an_empty_path_or_one_with_an_embedded_nul_is_invalid_path) {
  uint32_t empty, nul;
  ck_assert_int_eq(emel_io_add_file(io, "", 0, &empty, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_add_file(io, "/tmp\0/x", 7, &nul, NULL), EMEL_OK);
  emel_io_request q = request(0, 10, 0);
  emel_io_result res;
  q.file_index = empty;
  emel_io_acquire(io, &q, &res);
  assert_refused(res, EMEL_INVALID_PATH, 0);
  q.file_index = nul;
  emel_io_acquire(io, &q, &res);
  assert_refused(res, EMEL_INVALID_PATH, 0);
  ck_assert_uint_eq(fp.calls[FP_OPEN], 0);
}
END_TEST

START_TEST(test_a_span_past_two_to_the_64_is_span_overflow) {
  assert_refused(map(UINT64_MAX - 3, 16, 0), EMEL_SPAN_OVERFLOW, 0);
  ck_assert_uint_eq(fp.calls[FP_OPEN], 0);
}
END_TEST

START_TEST(test_a_platform_that_cannot_map_is_mmap_unsupported) {
  fp.can_map = 0;
  assert_refused(map(0, 10, 0), EMEL_MMAP_UNSUPPORTED, 0);
  ck_assert_uint_eq(fp.calls[FP_OPEN], 0);
}
END_TEST

START_TEST(test_a_full_pool_is_pool_exhausted_and_a_release_frees_a_slot) {
  emel_io_destroy(io);
  open_io(2);
  emel_io_result a = map(0, 10, 0), b = map(20, 10, 0);
  ck_assert_int_eq(b.error.code, EMEL_OK);
  uint64_t opens = fp.calls[FP_OPEN];
  assert_refused(map(40, 10, 0), EMEL_POOL_EXHAUSTED, 0);
  ck_assert_uint_eq(fp.calls[FP_OPEN], opens);
  release_ok(a);
  emel_io_result c = map(40, 10, 0);
  assert_bytes(&c, 40, 10);
  release_ok(b);
  release_ok(c);
}
END_TEST

/* ---- OS failures while mapping, and their cleanup ---- */

START_TEST(test_an_open_failure_is_open_failed_with_its_errno) {
  fault_platform_fail(&fp, FP_OPEN, 1, EMFILE);
  assert_refused(map(0, 10, 0), EMEL_OPEN_FAILED, EMFILE);
  uint32_t missing;
  ck_assert_int_eq(emel_io_add_file(io, "/nonexistent/emel/model.gguf", 28, &missing, NULL), EMEL_OK);
  emel_io_request q = request(0, 10, 0);
  q.file_index = missing;
  emel_io_result res;
  emel_io_acquire(io, &q, &res);
  assert_refused(res, EMEL_OPEN_FAILED, ENOENT);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 0);
}
END_TEST

START_TEST(test_a_size_failure_is_stat_failed_and_closes_the_file) {
  fault_platform_fail(&fp, FP_FILE_IDENTITY, 1, EIO);
  assert_refused(map(0, 10, 0), EMEL_STAT_FAILED, EIO);
  ck_assert_uint_eq(fp.calls[FP_CLOSE], 1);
  ck_assert_uint_eq(fp.calls[FP_MAP], 0);
}
END_TEST

START_TEST(test_a_span_past_the_end_of_the_file_is_refused_before_mapping) {
  assert_refused(map(file_size - 10, 11, 0), EMEL_SPAN_BEYOND_EOF, 0);
  ck_assert_uint_eq(fp.calls[FP_MAP], 0); /* nothing mapped: no access can fault */
  ck_assert_uint_eq(fp.calls[FP_CLOSE], 1);
  emel_io_result r = map(0, 10, 0);
  assert_refused(map(file_size, 1, 0), EMEL_SPAN_BEYOND_EOF, 0); /* against the size read at open */
  ck_assert_uint_eq(fp.calls[FP_OPEN], 2);
  release_ok(r);
}
END_TEST

START_TEST(test_a_map_failure_is_mmap_failed_and_closes_the_file) {
  fault_platform_fail(&fp, FP_MAP, 1, ENOMEM);
  assert_refused(map(0, 10, 0), EMEL_MMAP_FAILED, ENOMEM);
  ck_assert_uint_eq(fp.calls[FP_CLOSE], 1);
  ck_assert_uint_eq(fp.live_maps, 0);
}
END_TEST

START_TEST(test_a_populate_failure_unmaps_a_file_no_other_tensor_uses) {
  fault_platform_fail(&fp, FP_ADVISE, 1, EFAULT);
  assert_refused(map(0, 10, EMEL_LOAD_POPULATE), EMEL_MMAP_POPULATE_FAILED, EFAULT);
  ck_assert_uint_eq(fp.live_maps, 0);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 0);
}
END_TEST

START_TEST(test_a_populate_failure_keeps_the_mapping_other_tensors_use) {
  emel_io_result a = map(0, 10, 0);
  fault_platform_fail(&fp, FP_ADVISE, 1, EIO);
  assert_refused(map(100, 10, EMEL_LOAD_POPULATE), EMEL_MMAP_POPULATE_FAILED, EIO);
  ck_assert_uint_eq(fp.live_maps, 1);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 1);
  assert_bytes(&a, 0, 10);
  release_ok(a);
  ck_assert_uint_eq(fp.live_maps, 0);
}
END_TEST

START_TEST(test_a_lock_failure_is_lock_failed_naming_the_memlock_limit_and_unmaps) {
  fault_platform_fail(&fp, FP_LOCK, 1, ENOMEM);
  assert_refused(map(0, 10, EMEL_LOAD_POPULATE | EMEL_LOAD_LOCK), EMEL_MMAP_LOCK_FAILED, ENOMEM);
  ck_assert_ptr_nonnull(strstr(emel_status_message(EMEL_MMAP_LOCK_FAILED), "RLIMIT_MEMLOCK"));
  ck_assert_uint_eq(fp.live_maps, 0);
  ck_assert_int_eq(fp.locked_bytes, 0);
}
END_TEST

START_TEST(test_an_unmap_failing_after_a_failed_load_leaves_the_file_mapped_for_reuse) {
  fault_platform_fail(&fp, FP_LOCK, 1, EAGAIN);
  fault_platform_fail(&fp, FP_UNMAP, 1, EINVAL);
  assert_refused(map(0, 10, EMEL_LOAD_LOCK), EMEL_MMAP_LOCK_FAILED, EAGAIN); /* the first error is kept */
  ck_assert_uint_eq(fp.live_maps, 1);
  emel_io_result r = map(64, 10, 0); /* reuses the unreferenced mapping */
  assert_bytes(&r, 64, 10);
  ck_assert_uint_eq(fp.calls[FP_OPEN], 1);
  release_ok(r);
  ck_assert_uint_eq(fp.live_maps, 0);
}
END_TEST

START_TEST(test_destroy_unmaps_a_mapping_left_by_a_failed_cleanup) {
  fault_platform_fail(&fp, FP_LOCK, 1, EAGAIN);
  fault_platform_fail(&fp, FP_UNMAP, 1, EINVAL);
  assert_refused(map(0, 10, EMEL_LOAD_LOCK), EMEL_MMAP_LOCK_FAILED, EAGAIN);
  ck_assert_uint_eq(fp.live_maps, 1); /* teardown checks destroy gives it back */
}
END_TEST

/* ---- OS failures while releasing ---- */

START_TEST(test_an_unlock_failure_keeps_the_tensor_mapped_and_a_retry_releases_it) {
  emel_io_result r = map(0, 10, EMEL_LOAD_LOCK);
  fault_platform_fail(&fp, FP_UNLOCK, 1, ENOMEM);
  emel_error e;
  (void)emel_io_release(io, r.handle, &e);
  ck_assert_int_eq(e.code, EMEL_MMAP_UNLOCK_FAILED);
  ck_assert_int_eq(e.os_errno, ENOMEM);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 1);
  assert_bytes(&r, 0, 10);
  release_ok(r);
  ck_assert_int_eq(fp.locked_bytes, 0);
}
END_TEST

START_TEST(test_an_unmap_failure_keeps_the_tensor_mapped_and_a_retry_releases_it) {
  emel_io_result r = map(0, 10, 0);
  fault_platform_fail(&fp, FP_UNMAP, 1, EINVAL);
  emel_error e;
  (void)emel_io_release(io, r.handle, &e);
  ck_assert_int_eq(e.code, EMEL_MMAP_UNMAP_FAILED);
  ck_assert_int_eq(e.os_errno, EINVAL);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 1);
  assert_bytes(&r, 0, 10);
  release_ok(r);
  ck_assert_uint_eq(fp.live_maps, 0);
}
END_TEST

START_TEST(test_a_failed_page_drop_keeps_the_tensor_mapped_and_a_retry_releases_it) {
  emel_io_result a = map(0, 2 * page, 0), b = map(3 * page, 10, 0);
  fault_platform_fail(&fp, FP_ADVISE, 1, EAGAIN);
  emel_error e;
  (void)emel_io_release(io, a.handle, &e);
  ck_assert_int_eq(e.code, EMEL_MMAP_ADVISE_FAILED);
  ck_assert_int_eq(e.os_errno, EAGAIN);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 2);
  release_ok(a);
  release_ok(b);
}
END_TEST

START_TEST(test_destroy_releases_what_callers_still_hold) {
  (void)map(0, 10, EMEL_LOAD_LOCK);
  (void)map(page, 10, 0);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 2);
  ck_assert_int_gt(fp.locked_bytes, 0); /* teardown: destroy unlocks and unmaps */
}
END_TEST

START_TEST(test_destroy_gives_back_what_a_refused_release_kept) {
  (void)map(0, 10, EMEL_LOAD_LOCK);
  fault_platform_fail_many(&fp, FP_UNLOCK, 1, 1, EPERM); /* destroy's own release fails once */
}
END_TEST

/* ---- attach ---- */

START_TEST(test_attach_refuses_no_io_and_a_second_mmap_strategy) {
  ck_assert_int_eq(emel_io_mmap_attach(NULL, NULL, NULL), EMEL_INVALID_ARGUMENT);
  int64_t allocs = fp.live_allocs;
  ck_assert_int_eq(emel_io_mmap_attach(io, NULL, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(fp.live_allocs, allocs);
}
END_TEST

START_TEST(test_a_failed_allocation_at_attach_is_out_of_memory_and_leaks_nothing) {
  for (uint64_t nth = 1; nth <= 4; nth++) {
    emel_io *other;
    emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
    ck_assert_int_eq(emel_io_create(&other, &ic, NULL), EMEL_OK);
    int64_t allocs = fp.live_allocs;
    fault_platform_fail(&fp, FP_ALLOC, fp.calls[FP_ALLOC] + nth, ENOMEM);
    ck_assert_int_eq(emel_io_mmap_attach(other, NULL, NULL), EMEL_OUT_OF_MEMORY);
    ck_assert_int_eq(fp.live_allocs, allocs);
    fault_platform_clear_faults(&fp);
    emel_io_destroy(other);
  }
}
END_TEST

/* ---- the machine itself ---- */

/* The queries C asks instead of restating the chart (gen/io_mmap_machine.h)
 * answer what the transition table says: guards against a hand-kept list of
 * states or events drifting from the spec. */
START_TEST(test_the_generated_queries_agree_with_the_transition_table) {
  machine_check_queries(&emel_io_mmap_desc, io_mmap_target, io_mmap_accepts, io_mmap_rests);
}
END_TEST

START_TEST(test_every_state_refuses_the_events_it_does_not_accept_and_stays_put) {
  io_mmap_ctx m;
  memset(&m, 0, sizeof m);
  int n = machine_check_unexpected_events(&emel_io_mmap_desc, &m.core, &m);
  ck_assert_int_gt(n, 1000);
}
END_TEST

/* ---- tensor-owned loading ---- */

static emel_tensor_span span_of(uint64_t offset, uint64_t size) {
  emel_tensor_span s = {.n_dims = 1, .dims = {size, 1, 1, 1}, .file_index = file, .offset = offset, .size = size};
  return s;
}

START_TEST(test_a_tensor_loaded_with_mmap_is_resident_with_the_files_bytes_and_evicts) {
  emel_tensors *t;
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 4);
  ck_assert_int_eq(emel_tensors_create(&t, &tc, NULL), EMEL_OK);
  uint32_t w, b;
  emel_tensor_span sw = span_of(32, 2 * page), sb = span_of(2 * page + 96, 500);
  ck_assert_int_eq(emel_tensors_add(t, "blk.0.w", 7, &sw, &w, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_add(t, "blk.0.b", 7, &sb, &b, NULL), EMEL_OK);
  emel_load_options opt = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP, .flags = EMEL_LOAD_POPULATE);
  emel_tensor_view v;
  ck_assert_int_eq(emel_tensors_load(t, w, &opt, &v, NULL), EMEL_OK);
  ck_assert_int_eq(v.residency, EMEL_RESIDENCY_MAPPED);
  ck_assert_int_eq(v.strategy, EMEL_STRATEGY_MMAP);
  emel_io_result as = {.data = v.data, .size = v.size};
  assert_bytes(&as, 32, 2 * page);
  opt.flags = EMEL_LOAD_LOCK;
  ck_assert_int_eq(emel_tensors_load(t, b, &opt, &v, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 2);
  ck_assert_uint_eq(emel_tensors_resident_count(t), 2);
  ck_assert_int_eq(emel_tensors_evict(t, w, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_state(t, w), EMEL_TENSOR_EVICTED);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 1);
  ck_assert_int_eq(emel_tensors_load(t, w, &opt, &v, NULL), EMEL_OK); /* again after evict */
  as.data = v.data;
  assert_bytes(&as, 32, 2 * page);
  ck_assert_uint_eq(fp.calls[FP_OPEN], 1);
  emel_tensors_destroy(t); /* evicts both */
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 0);
  ck_assert_int_eq(fp.locked_bytes, 0);
  ck_assert_uint_eq(fp.live_maps, 0);
}
END_TEST

START_TEST(test_a_failed_mmap_load_leaves_the_tensor_bound_and_the_pool_unchanged) {
  emel_tensors *t;
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 4);
  ck_assert_int_eq(emel_tensors_create(&t, &tc, NULL), EMEL_OK);
  uint32_t ok, past;
  emel_tensor_span s1 = span_of(0, 100), s2 = span_of(file_size - 50, 51);
  ck_assert_int_eq(emel_tensors_add(t, "ok", 2, &s1, &ok, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_add(t, "past", 4, &s2, &past, NULL), EMEL_OK);
  emel_load_options opt = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP);
  ck_assert_int_eq(emel_tensors_load(t, ok, &opt, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_load(t, past, &opt, NULL, NULL), EMEL_SPAN_BEYOND_EOF);
  ck_assert_int_eq(emel_tensors_state(t, past), EMEL_TENSOR_BOUND);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 1);
  emel_tensors_evict(t, ok, NULL);
  fault_platform_fail(&fp, FP_LOCK, 1, ENOMEM);
  opt.flags = EMEL_LOAD_LOCK;
  ck_assert_int_eq(emel_tensors_load(t, ok, &opt, NULL, NULL), EMEL_MMAP_LOCK_FAILED);
  ck_assert_int_eq(emel_tensors_state(t, ok), EMEL_TENSOR_BOUND);
  ck_assert_int_eq(emel_tensors_last_error(t, ok).code, EMEL_MMAP_LOCK_FAILED);
  ck_assert_int_eq(emel_tensors_last_error(t, ok).os_errno, ENOMEM);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 0);
  ck_assert_uint_eq(emel_tensors_resident_count(t), 0);
  ck_assert_uint_eq(fp.live_maps, 0);
  opt.flags = EMEL_LOAD_DIRECT;
  ck_assert_int_eq(emel_tensors_load(t, ok, &opt, NULL, NULL), EMEL_INVALID_REQUEST);
  ck_assert_int_eq(emel_tensors_state(t, ok), EMEL_TENSOR_BOUND);
  emel_tensors_destroy(t);
}
END_TEST

START_TEST(test_a_refused_mmap_evict_keeps_the_tensor_resident_and_a_retry_evicts) {
  emel_tensors *t;
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 2);
  ck_assert_int_eq(emel_tensors_create(&t, &tc, NULL), EMEL_OK);
  uint32_t i;
  emel_tensor_span s = span_of(64, 64);
  ck_assert_int_eq(emel_tensors_add(t, "w", 1, &s, &i, NULL), EMEL_OK);
  emel_load_options opt = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP);
  ck_assert_int_eq(emel_tensors_load(t, i, &opt, NULL, NULL), EMEL_OK);
  fault_platform_fail(&fp, FP_UNMAP, 1, EINVAL);
  ck_assert_int_eq(emel_tensors_evict(t, i, NULL), EMEL_MMAP_UNMAP_FAILED);
  ck_assert_int_eq(emel_tensors_state(t, i), EMEL_TENSOR_RESIDENT);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 1);
  ck_assert_int_eq(emel_tensors_evict(t, i, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 0);
  emel_tensors_destroy(t);
}
END_TEST


/* ---- a batch's populates on lanes ---- */

enum { BATCH = 5 };

static uint64_t batch_offset(int i) { return (uint64_t)i * page + 8 * (uint64_t)i; }

static void map_batch(emel_io_result *res, unsigned flags) {
  emel_io_request rs[BATCH];
  for (int i = 0; i < BATCH; i++) rs[i] = request(batch_offset(i), page - 100, flags);
  emel_io_acquire_batch(io, rs, res, BATCH);
}

static emel_io_mmap_stats mmap_stats(void) {
  emel_io_mmap_stats st;
  ck_assert_int_eq(emel_io_mmap_stats_of(io, &st, NULL), EMEL_OK);
  return st;
}

static void reopen_io(const emel_io_mmap_config *mc) {
  emel_io_destroy(io);
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
  ck_assert_int_eq(emel_io_create(&io, &ic, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_mmap_attach(io, mc, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_add_file(io, path, strlen(path), &file, NULL), EMEL_OK);
}

/* Guards against a batch that populates one tensor after another on the
 * calling thread (a cold model then reads from one place at a time): its
 * populates run on lanes at once, each tensor's range once, and every tensor
 * is granted with the file's bytes. */
START_TEST(test_a_batch_populates_its_tensors_on_lanes_at_once) {
  emel_io_result res[BATCH];
  map_batch(res, EMEL_LOAD_POPULATE);
  for (int i = 0; i < BATCH; i++) assert_bytes(&res[i], batch_offset(i), page - 100);
  emel_io_mmap_stats st = mmap_stats();
  ck_assert_uint_eq(st.populate_batches, 1);
  ck_assert_uint_eq(st.populate_ranges, BATCH);
  ck_assert_uint_eq(st.populate_threads, EMEL_IO_MMAP_DEFAULT_POPULATE_LANES - 1);
  ck_assert_uint_eq(st.inline_lanes, 0);
  ck_assert_uint_eq(fp.calls[FP_ADVISE], BATCH);
  ck_assert_uint_eq(fp.calls[FP_THREAD_START], EMEL_IO_MMAP_DEFAULT_POPULATE_LANES - 1);
  ck_assert_int_eq(fp.live_threads, 0);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), BATCH);
  for (int i = 0; i < BATCH; i++) release_ok(res[i]);
  ck_assert_uint_eq(fp.live_maps, 0);
  /* One lane: the populates one by one on the calling thread, as before. */
  emel_io_mmap_config mc = EMEL_IO_MMAP_CONFIG_INIT(.populate_lanes = 1);
  reopen_io(&mc);
  const uint64_t started = fp.calls[FP_THREAD_START];
  map_batch(res, EMEL_LOAD_POPULATE);
  for (int i = 0; i < BATCH; i++) assert_bytes(&res[i], batch_offset(i), page - 100);
  ck_assert_uint_eq(mmap_stats().populate_batches, 0);
  ck_assert_uint_eq(fp.calls[FP_THREAD_START], started);
  for (int i = 0; i < BATCH; i++) release_ok(res[i]);
  mc.populate_lanes = EMEL_IO_MMAP_MAX_POPULATE_LANES + 1;
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
  emel_io *other;
  ck_assert_int_eq(emel_io_create(&other, &ic, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_mmap_attach(other, &mc, NULL), EMEL_INVALID_ARGUMENT);
  emel_io_destroy(other);
}
END_TEST

/* Guards against a batch that fails (or loses a lane's tensors) when a
 * thread cannot start, and against a failed join taken for a failed load:
 * the calling thread populates the lane (counted); a failed join is counted. */
START_TEST(test_a_lane_without_its_thread_is_populated_by_the_caller_and_a_failed_join_is_counted) {
  fault_platform_fail(&fp, FP_THREAD_START, 2, EAGAIN);
  emel_io_result res[BATCH];
  map_batch(res, EMEL_LOAD_POPULATE);
  for (int i = 0; i < BATCH; i++) assert_bytes(&res[i], batch_offset(i), page - 100);
  emel_io_mmap_stats st = mmap_stats();
  ck_assert_uint_eq(st.inline_lanes, 1);
  ck_assert_uint_eq(st.populate_threads, EMEL_IO_MMAP_DEFAULT_POPULATE_LANES - 2);
  ck_assert_uint_eq(fp.calls[FP_ADVISE], BATCH);
  for (int i = 0; i < BATCH; i++) release_ok(res[i]);
  fault_platform_fail(&fp, FP_THREAD_JOIN, fp.calls[FP_THREAD_JOIN] + 1, EDEADLK);
  map_batch(res, EMEL_LOAD_POPULATE);
  for (int i = 0; i < BATCH; i++) assert_bytes(&res[i], batch_offset(i), page - 100);
  ck_assert_uint_eq(mmap_stats().thread_join_failures, 1);
  for (int i = 0; i < BATCH; i++) release_ok(res[i]);
}
END_TEST

/* Guards against a lane's failure lost, given to the wrong tensor, or
 * leaving a reference, slot or mapping behind: the tensor whose populate
 * failed takes the lone populate's route with its errno, the others are
 * granted, and a file no tensor holds any more is unmapped. */
START_TEST(test_a_lane_whose_populate_fails_fails_that_tensor_alone_with_its_errno) {
  static const int errs[] = {ENOMEM, EIO, EFAULT, EAGAIN};
  for (size_t e = 0; e < sizeof errs / sizeof *errs; e++) {
    for (uint64_t nth = 1; nth <= BATCH; nth++) {
      fault_platform_fail(&fp, FP_ADVISE, fp.calls[FP_ADVISE] + nth, errs[e]);
      emel_io_result res[BATCH];
      map_batch(res, EMEL_LOAD_POPULATE);
      int failed = 0;
      for (int i = 0; i < BATCH; i++) {
        if (res[i].error.code == EMEL_OK) {
          assert_bytes(&res[i], batch_offset(i), page - 100);
          continue;
        }
        failed++;
        assert_refused(res[i], EMEL_MMAP_POPULATE_FAILED, errs[e]);
      }
      ck_assert_int_eq(failed, 1);
      ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), BATCH - 1);
      for (int i = 0; i < BATCH; i++)
        if (res[i].error.code == EMEL_OK) release_ok(res[i]);
      ck_assert_uint_eq(fp.live_maps, 0);
      fault_platform_clear_faults(&fp);
    }
  }
  /* Every populate failing: nothing is held, the file is unmapped. */
  fault_platform_fail_many(&fp, FP_ADVISE, fp.calls[FP_ADVISE] + 1, BATCH, ENOMEM);
  emel_io_result res[BATCH];
  map_batch(res, EMEL_LOAD_POPULATE);
  for (int i = 0; i < BATCH; i++) assert_refused(res[i], EMEL_MMAP_POPULATE_FAILED, ENOMEM);
  ck_assert_uint_eq(fp.live_maps, 0);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 0);
}
END_TEST

/* Guards against a file truncated under a batch read as a plain failure (or
 * a SIGBUS): the tensors past the new end are FILE_CHANGED with the fault's
 * errno, found on their lane, those before it are granted. */
START_TEST(test_a_file_truncated_under_a_batch_is_file_changed_for_the_tensors_past_its_end) {
  emel_io_result keep = map(0, 10, 0); /* keeps the mapping of the full size */
  ck_assert_int_eq(truncate(path, (off_t)(2 * page)), 0);
  emel_io_result res[BATCH];
  map_batch(res, EMEL_LOAD_POPULATE);
  assert_bytes(&res[0], 0, page - 100);
  for (int i = 2; i < BATCH; i++) {
    ck_assert_msg(res[i].error.code == EMEL_FILE_CHANGED, "tensor %d: %s", i, emel_status_name(res[i].error.code));
    ck_assert(res[i].error.os_errno == EFAULT || res[i].error.os_errno == EIO);
  }
  for (int i = 0; i < 2; i++) release_ok(res[i]);
  release_ok(keep);
  ck_assert_uint_eq(fp.live_maps, 0);
}
END_TEST

/* Guards against the deferred tensors' slots counted twice or not at all:
 * a batch larger than the pool is refused POOL_EXHAUSTED past the pool's
 * size, the others granted. */
START_TEST(test_a_batch_larger_than_the_pool_is_pool_exhausted_past_it) {
  emel_io_mmap_config mc = EMEL_IO_MMAP_CONFIG_INIT(.max_mappings = 3);
  reopen_io(&mc);
  emel_io_result res[BATCH];
  map_batch(res, EMEL_LOAD_POPULATE);
  for (int i = 0; i < 3; i++) assert_bytes(&res[i], batch_offset(i), page - 100);
  for (int i = 3; i < BATCH; i++) assert_refused(res[i], EMEL_POOL_EXHAUSTED, 0);
  for (int i = 0; i < 3; i++) release_ok(res[i]);
}
END_TEST

Suite *io_mmap_suite(void) {
  Suite *s = suite_create("io_mmap");
  TCase *tc = tcase_create("mmap");
  tcase_set_timeout(tc, 0); /* none: CTest's TIMEOUT bounds the suite */
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_a_tensor_at_a_page_aligned_offset_maps_to_the_files_bytes);
  tcase_add_test(tc, test_tensors_at_unaligned_offsets_point_at_their_first_byte);
  tcase_add_test(tc, test_a_span_ending_on_the_last_byte_of_the_file_maps);
  tcase_add_test(tc, test_fifteen_hundred_tensors_of_one_file_open_and_map_it_once);
  tcase_add_test(tc, test_releasing_a_tensor_drops_only_the_pages_wholly_its_own);
  tcase_add_test(tc, test_every_advice_over_a_sub_range_of_the_tensor_succeeds);
  tcase_add_test(tc, test_a_release_drops_exactly_the_pages_only_its_tensor_uses_and_no_neighbours_page);
  tcase_add_test(tc, test_an_advise_range_outside_the_tensor_is_refused_without_a_call);
  tcase_add_test(tc, test_a_failed_madvise_is_advise_failed_with_its_errno);
  tcase_add_test(tc, test_a_released_or_forged_handle_is_an_invalid_handle);
  tcase_add_test(tc, test_populate_pre_faults_the_tensors_pages_and_lock_locks_them_until_release);
  tcase_add_test(tc, test_a_file_loaded_again_after_its_last_release_is_opened_and_sized_again);
  tcase_add_test(tc, test_a_malformed_request_is_invalid_before_any_os_call);
  tcase_add_test(tc, test_a_file_index_outside_the_table_is_invalid_file_index);
  tcase_add_test(tc, test_an_empty_path_or_one_with_an_embedded_nul_is_invalid_path);
  tcase_add_test(tc, test_a_span_past_two_to_the_64_is_span_overflow);
  tcase_add_test(tc, test_a_platform_that_cannot_map_is_mmap_unsupported);
  tcase_add_test(tc, test_a_full_pool_is_pool_exhausted_and_a_release_frees_a_slot);
  tcase_add_test(tc, test_an_open_failure_is_open_failed_with_its_errno);
  tcase_add_test(tc, test_a_size_failure_is_stat_failed_and_closes_the_file);
  tcase_add_test(tc, test_a_span_past_the_end_of_the_file_is_refused_before_mapping);
  tcase_add_test(tc, test_a_map_failure_is_mmap_failed_and_closes_the_file);
  tcase_add_test(tc, test_a_populate_failure_unmaps_a_file_no_other_tensor_uses);
  tcase_add_test(tc, test_a_populate_failure_keeps_the_mapping_other_tensors_use);
  tcase_add_test(tc, test_a_lock_failure_is_lock_failed_naming_the_memlock_limit_and_unmaps);
  tcase_add_test(tc, test_an_unmap_failing_after_a_failed_load_leaves_the_file_mapped_for_reuse);
  tcase_add_test(tc, test_destroy_unmaps_a_mapping_left_by_a_failed_cleanup);
  tcase_add_test(tc, test_an_unlock_failure_keeps_the_tensor_mapped_and_a_retry_releases_it);
  tcase_add_test(tc, test_an_unmap_failure_keeps_the_tensor_mapped_and_a_retry_releases_it);
  tcase_add_test(tc, test_a_failed_page_drop_keeps_the_tensor_mapped_and_a_retry_releases_it);
  tcase_add_test(tc, test_destroy_releases_what_callers_still_hold);
  tcase_add_test(tc, test_destroy_gives_back_what_a_refused_release_kept);
  tcase_add_test(tc, test_attach_refuses_no_io_and_a_second_mmap_strategy);
  tcase_add_test(tc, test_a_failed_allocation_at_attach_is_out_of_memory_and_leaks_nothing);
  tcase_add_test(tc, test_every_state_refuses_the_events_it_does_not_accept_and_stays_put);
  tcase_add_test(tc, test_the_generated_queries_agree_with_the_transition_table);
  tcase_add_test(tc, test_a_tensor_loaded_with_mmap_is_resident_with_the_files_bytes_and_evicts);
  tcase_add_test(tc, test_a_failed_mmap_load_leaves_the_tensor_bound_and_the_pool_unchanged);
  tcase_add_test(tc, test_a_refused_mmap_evict_keeps_the_tensor_resident_and_a_retry_evicts);
  tcase_add_test(tc, test_a_batch_populates_its_tensors_on_lanes_at_once);
  tcase_add_test(tc, test_a_lane_without_its_thread_is_populated_by_the_caller_and_a_failed_join_is_counted);
  tcase_add_test(tc, test_a_lane_whose_populate_fails_fails_that_tensor_alone_with_its_errno);
  tcase_add_test(tc, test_a_file_truncated_under_a_batch_is_file_changed_for_the_tensors_past_its_end);
  tcase_add_test(tc, test_a_batch_larger_than_the_pool_is_pool_exhausted_past_it);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(io_mmap_suite)

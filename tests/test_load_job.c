/* Load jobs (include/emel/job.h, statecharts/load_job.rl) on a real file: both
 * ways of driving, a cancel after every unit, cancels from another thread and
 * from a signal handler, priority and ready order, both failure policies with
 * injected faults, destroy of a running job, and the refusal of outside loads
 * of held tensors. After each test nothing is outstanding (fault platform). */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "emel/io.h"
#include "emel/io_mmap.h"
#include "emel/io_read.h"
#include "emel/io_staged.h"
#include "emel/job.h"
#include "emel/tensor.h"
#include "fault_platform.h"

/* Sizes by table index; three are larger than CHUNK, so they load in pieces.
 * SLOT puts them in the file in another order than the table's. */
enum { N = 8, CHUNK = 65536 };
static const uint64_t SIZE[N] = {4096, 300000, 1000, 5000, 150000, 64, 70000, 2000};
static const int SLOT[N] = {3, 0, 6, 1, 7, 2, 5, 4}; /* file position of each tensor */
/* File order, so the default load order: the tensor at slot 0, 1, ... */
static const uint32_t FILE_ORDER[N] = {1, 3, 5, 0, 7, 6, 2, 4};

static fault_platform fp;
static emel_load_options loop_options; /* the strategy the cancel loop runs with (read by default) */
static emel_io *io;
static emel_tensors *t;
static char path[256];
static uint64_t offset_of[N];
static uint64_t file_size;

/* A pattern whose terms (the low 8 bits of i * 131 and of i >> 9) repeat every
 * PERIOD bytes, except the first STAMP bytes of each period, which carry the
 * period's number: a part read from or into a place a multiple of PERIOD away
 * (two runs swapped, a lane's part off by whole parts: parts are multiples of
 * it) differs there, where the bare pattern matched. Files are written and
 * views compared a period at a time from period_bytes: byte by byte (fputc,
 * a byte_at per byte compared), that was most of this suite's time under
 * valgrind. */
enum { PERIOD = 1 << 17, STAMP = 8 };
static unsigned char period_bytes[PERIOD]; /* the pattern; filled by setup, before any thread starts */

static unsigned char pattern(uint64_t i) { return (unsigned char)((i * 131u) ^ (i >> 9) ^ 0x5a); }

static unsigned char stamp_byte(uint64_t period, uint64_t k) { return (unsigned char)((period >> (8 * k)) ^ 0xa5); }

static unsigned char byte_at(uint64_t i) {
  return i % PERIOD < STAMP ? stamp_byte(i / PERIOD, i % PERIOD) : pattern(i);
}

/* Writes byte_at(0 .. size - 1) to a new file at p. */
static void write_bytes(const char *p, uint64_t size) {
  FILE *f = fopen(p, "wb");
  ck_assert_ptr_nonnull(f);
  for (uint64_t at = 0; at < size; at += PERIOD) {
    const size_t n = (size_t)(size - at < PERIOD ? size - at : PERIOD), h = n < STAMP ? n : STAMP;
    unsigned char head[STAMP];
    for (size_t k = 0; k < h; k++) head[k] = stamp_byte(at / PERIOD, k);
    ck_assert_uint_eq(fwrite(head, 1, h, f), h);
    ck_assert_uint_eq(fwrite(period_bytes + h, 1, n - h, f), n - h);
  }
  ck_assert_int_eq(fclose(f), 0);
}

/* The first k < size where b[k] != byte_at(offset + k), or size when none. */
static uint64_t first_difference(const unsigned char *b, uint64_t offset, uint64_t size) {
  for (uint64_t k = 0; k < size;) {
    const uint64_t in = (offset + k) % PERIOD;
    if (in < STAMP) { /* the period's number */
      if (b[k] != byte_at(offset + k)) return k;
      k++;
      continue;
    }
    const uint64_t n = size - k < PERIOD - in ? size - k : PERIOD - in;
    if (memcmp(b + k, period_bytes + in, (size_t)n) != 0)
      for (uint64_t j = 0; j < n; j++)
        if (b[k + j] != period_bytes[in + j]) return k + j;
    k += n;
  }
  return size;
}

/* Fails the test at the first byte of the view that is not the file's byte from 0. */
static void check_view_from_zero(const emel_tensor_view *v) {
  const uint64_t k = first_difference(v->data, 0, v->size);
  if (k != v->size) ck_abort_msg("byte %llu differs", (unsigned long long)k);
}

static void make_table(void) {
  emel_io_config c = EMEL_IO_CONFIG_INIT(.platform = &fp.ops, .max_files = 2);
  ck_assert_int_eq(emel_io_create(&io, &c, NULL), EMEL_OK);
  /* Pools of 64 (as the fault sweep's), not the default 65,536: tables are
   * made again for each of the 600 fault runs, and clearing and scanning two
   * default pools each time was two thirds of this suite's time under valgrind. */
  emel_io_read_config rc = EMEL_IO_READ_CONFIG_INIT(.threads = 1, .max_buffers = 64);
  ck_assert_int_eq(emel_io_read_attach(io, &rc, NULL), EMEL_OK);
  const emel_io_mmap_config mc = EMEL_IO_MMAP_CONFIG_INIT(.max_mappings = 64);
  ck_assert_int_eq(emel_io_mmap_attach(io, &mc, NULL), EMEL_OK);
  uint32_t file;
  ck_assert_int_eq(emel_io_add_file(io, path, strlen(path), &file, NULL), EMEL_OK);
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = N);
  ck_assert_int_eq(emel_tensors_create(&t, &tc, NULL), EMEL_OK);
  for (uint32_t i = 0; i < N; i++) {
    char name[16];
    snprintf(name, sizeof name, "t%u", i);
    emel_tensor_span s = {.n_dims = 1, .dims = {SIZE[i], 1, 1, 1}, .file_index = file, .offset = offset_of[i],
                          .size = SIZE[i]};
    uint32_t index;
    ck_assert_int_eq(emel_tensors_add(t, name, strlen(name), &s, &index, NULL), EMEL_OK);
    ck_assert_uint_eq(index, i);
  }
}

static void setup(void) {
  loop_options = (emel_load_options)EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);
  fault_platform_init(&fp);
  /* These tests count and fail preads (one per 4096-byte unit): the pread lanes,
   * as on a machine without io_uring. The fault sweep fails a job's ring calls. */
  fp.no_ring = 1;
  for (uint64_t i = 0; i < PERIOD; i++) period_bytes[i] = pattern(i);
  snprintf(path, sizeof path, "%s/load_job_%d.bin", EMEL_TEST_WORKDIR, (int)getpid());
  uint64_t at[N], off = 0;
  for (int slot = 0; slot < N; slot++) {
    for (int i = 0; i < N; i++)
      if (SLOT[i] == slot) {
        at[i] = off;
        off += (SIZE[i] + 31) & ~(uint64_t)31;
      }
  }
  memcpy(offset_of, at, sizeof at);
  file_size = off;
  write_bytes(path, file_size);
  make_table();
}

static void drop_table(void) {
  emel_tensors_destroy(t);
  emel_io_destroy(io);
  t = NULL;
  io = NULL;
}

static void teardown(void) {
  drop_table();
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
  ck_assert_int_eq(fp.live_threads, 0);
  unlink(path);
}

static void check_bytes(uint32_t i, const emel_tensor_view *v) {
  ck_assert_uint_eq(v->size, SIZE[i]);
  const unsigned char *b = v->data;
  const uint64_t k = first_difference(b, offset_of[i], SIZE[i]);
  if (k != SIZE[i]) ck_abort_msg("tensor %u byte %llu differs", i, (unsigned long long)k);
}

/* The ready callback's record. */
static uint32_t ready_order[N];
static atomic_uint ready_count;

static void on_ready(void *user, uint32_t index, const emel_tensor_view *view) {
  (void)user;
  ck_assert_ptr_nonnull(view->data);
  ready_order[atomic_fetch_add(&ready_count, 1)] = index;
}

static unsigned progress_calls;
static emel_job_progress last_progress;

static void on_progress(void *user, const emel_job_progress *p) {
  (void)user;
  progress_calls++;
  last_progress = *p;
}

static emel_job *new_job(const emel_job_config *c) {
  emel_job *job = NULL;
  emel_error e;
  ck_assert_int_eq(emel_job_create(&job, t, c, &e), EMEL_OK);
  return job;
}

/* Every tensor is resident with its bytes, or bound/evicted with `why` recorded. */
static unsigned check_settled(const emel_job *job, emel_status why) {
  unsigned resident = 0, through_io = 0;
  for (uint32_t i = 0; i < N; i++) {
    const emel_tensor_state s = emel_tensors_state(t, i);
    if (s == EMEL_TENSOR_RESIDENT) {
      /* A job reads into buffers the table owns (read in parts over the lanes); mapped ones all hold a mapping. */
      through_io += loop_options.strategy == EMEL_STRATEGY_MMAP;
      emel_tensor_view v;
      ck_assert_int_eq(emel_tensors_view(t, i, &v, NULL), EMEL_OK);
      check_bytes(i, &v);
      if (job) ck_assert_int_eq(emel_job_tensor_ready(job, i), 1);
      resident++;
    } else {
      ck_assert_msg(s == EMEL_TENSOR_BOUND || s == EMEL_TENSOR_EVICTED, "tensor %u is %s", i, emel_tensor_state_name(s));
      if (job) ck_assert_int_eq(emel_job_tensor_ready(job, i), 0);
      ck_assert_int_eq(emel_tensors_last_error(t, i).code, why);
    }
  }
  /* Nothing is held for a tensor that is not resident (one residency each). */
  ck_assert_uint_eq(emel_io_live(io, loop_options.strategy), through_io);
  ck_assert_uint_eq(emel_io_live(io, loop_options.strategy == EMEL_STRATEGY_MMAP ? EMEL_STRATEGY_READ : EMEL_STRATEGY_MMAP), 0);
  return resident;
}

START_TEST(cooperative_job_loads_every_tensor_in_file_order) {
  atomic_store(&ready_count, 0);
  progress_calls = 0;
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.chunk_bytes = CHUNK, .on_ready = on_ready, .on_progress = on_progress);
  emel_job *job = new_job(&c);
  emel_job_progress p = EMEL_JOB_PROGRESS_INIT();
  ck_assert_int_eq(emel_job_poll(job, &p), EMEL_JOB_CREATED);
  uint64_t total = 0;
  for (int i = 0; i < N; i++) total += SIZE[i];
  ck_assert_uint_eq(p.bytes_total, total);
  ck_assert_uint_eq(p.tensors_total, N);
  int steps = 0;
  emel_status s;
  uint64_t before = 0;
  while ((s = emel_job_step(job, 100000, &p, NULL)) == EMEL_OK && p.state == EMEL_JOB_RUNNING) {
    /* A step moves about its budget: never more than budget + one chunk. */
    ck_assert_uint_le(p.bytes_done - before, 100000 + CHUNK);
    before = p.bytes_done;
    steps++;
    ck_assert_int_lt(steps, 100);
  }
  ck_assert_int_eq(s, EMEL_OK);
  ck_assert_int_eq(p.state, EMEL_JOB_COMPLETED);
  ck_assert_uint_eq(p.bytes_done, total);
  ck_assert_uint_eq(p.tensors_done, N);
  ck_assert_uint_eq(p.tensors_failed, 0);
  ck_assert_int_ge(steps, 4); /* 612 kB in steps of about 100 kB */
  ck_assert_uint_eq(atomic_load(&ready_count), N);
  for (int k = 0; k < N; k++) ck_assert_uint_eq(ready_order[k], FILE_ORDER[k]);
  ck_assert_uint_ge(progress_calls, 1);
  ck_assert_int_eq(last_progress.state, EMEL_JOB_COMPLETED);
  /* A finished job answers with its outcome. */
  ck_assert_int_eq(emel_job_step(job, 0, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_result(job, NULL), EMEL_OK);
  for (uint32_t i = 0; i < N; i++) {
    emel_tensor_view v;
    ck_assert_int_eq(emel_job_view(job, i, &v, NULL), EMEL_OK);
    check_bytes(i, &v);
    /* Pieces or not, owned, library-aligned bytes. */
    ck_assert_int_eq(v.residency, EMEL_RESIDENCY_OWNED);
    ck_assert_uint_eq((uintptr_t)v.data % 64, 0);
  }
  ck_assert_uint_eq(check_settled(job, EMEL_OK), N);
  emel_job_destroy(job);
  /* The tensors stay resident and are the table's again. */
  ck_assert_uint_eq(emel_tensors_resident_count(t), N);
  ck_assert_int_eq(emel_tensors_evict(t, 1, NULL), EMEL_OK);
}
END_TEST

START_TEST(priority_list_goes_first_then_file_order) {
  atomic_store(&ready_count, 0);
  const uint32_t prio[] = {4, 2, 4}; /* a repeat counts once */
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.chunk_bytes = CHUNK, .on_ready = on_ready, .priority = prio,
                                           .priority_count = 3);
  emel_job *job = new_job(&c);
  while (emel_job_step(job, 0, NULL, NULL) == EMEL_OK && emel_job_poll(job, NULL) == EMEL_JOB_RUNNING) {
  }
  ck_assert_int_eq(emel_job_poll(job, NULL), EMEL_JOB_COMPLETED);
  const uint32_t want[N] = {4, 2, 1, 3, 5, 0, 7, 6};
  ck_assert_uint_eq(atomic_load(&ready_count), N);
  for (int k = 0; k < N; k++) ck_assert_uint_eq(ready_order[k], want[k]);
  emel_job_destroy(job);
  /* A priority outside the job is refused by name. */
  const uint32_t some[] = {0, 1};
  const uint32_t stray[] = {5};
  emel_job_config bad = EMEL_JOB_CONFIG_INIT(.indices = some, .count = 2, .priority = stray, .priority_count = 1);
  emel_error e;
  emel_job *none = NULL;
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_create(&none, t, &bad, &e), EMEL_INVALID_ARGUMENT);
  ck_assert_str_eq(e.detail, "emel_job_config.priority");
  ck_assert_ptr_null(none);
}
END_TEST

/* Units of a job with budget 0 (one unit per step): 1 + 5 + 1 + 1 + ... */
static int count_units(void) {
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.options = &loop_options, .chunk_bytes = CHUNK);
  emel_job *job = new_job(&c);
  int n = 0;
  while (emel_job_poll(job, NULL) != EMEL_JOB_COMPLETED) {
    ck_assert_int_eq(emel_job_step(job, 0, NULL, NULL), EMEL_OK);
    n++;
  }
  emel_job_destroy(job);
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  return n;
}

/* Guards against a cancel that leaves a tensor half-resident (a buffer or
 * mapping of a tensor moved in part kept, or a tensor marked ready that is
 * not), one that leaks, and one that blocks the next job. */
static void cancel_after_every_step(void) {
  const int units = count_units();
  ck_assert_int_ge(units, 10);
  for (int k = 0; k <= units; k++) {
    drop_table();
    ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
    make_table();
    emel_job_config c = EMEL_JOB_CONFIG_INIT(.options = &loop_options, .chunk_bytes = CHUNK);
    emel_job *job = new_job(&c);
    for (int s = 0; s < k; s++) ck_assert_int_eq(emel_job_step(job, 0, NULL, NULL), EMEL_OK);
    emel_job_cancel(job);
    emel_job_cancel(job); /* idempotent */
    emel_error e;
    const emel_status s = emel_job_step(job, 0, NULL, &e);
    if (k < units) {
      ck_assert_int_eq(s, EMEL_CANCELLED);
      ck_assert_int_eq(emel_job_poll(job, NULL), EMEL_JOB_CANCELLED);
      ck_assert_int_eq(emel_job_step(job, 0, NULL, NULL), EMEL_CANCELLED);
    } else {
      ck_assert_int_eq(s, EMEL_OK); /* finished before the cancel */
    }
    const unsigned resident = check_settled(job, EMEL_CANCELLED);
    emel_job_progress p = EMEL_JOB_PROGRESS_INIT();
    (void)emel_job_poll(job, &p);
    ck_assert_uint_eq(p.tensors_done, resident);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < N; i++)
      if (emel_tensors_state(t, i) == EMEL_TENSOR_RESIDENT) bytes += SIZE[i];
    ck_assert_uint_eq(p.bytes_done, bytes);
    emel_job_destroy(job);
    /* Only the resident tensors' buffers are held (a half-read one was freed). */
    ck_assert_int_eq(fp.live_allocs > 0, 1);
    /* The next job loads the rest. */
    uint32_t rest[N], n = 0;
    for (uint32_t i = 0; i < N; i++)
      if (emel_tensors_state(t, i) != EMEL_TENSOR_RESIDENT) rest[n++] = i;
    emel_job_config again =
        EMEL_JOB_CONFIG_INIT(.options = &loop_options, .indices = rest, .count = n, .chunk_bytes = CHUNK);
    emel_job *next = new_job(&again);
    ck_assert_int_eq(emel_job_step(next, UINT64_MAX, NULL, NULL), EMEL_OK);
    ck_assert_int_eq(emel_job_poll(next, NULL), EMEL_JOB_COMPLETED);
    emel_job_destroy(next);
    ck_assert_uint_eq(check_settled(NULL, EMEL_OK), N);
  }
}

/* Guards against a populated piece's failure named as a failed advice
 * (MMAP_ADVISE_FAILED) where a populated load says MMAP_POPULATE_FAILED. */
START_TEST(populated_piece_failure_is_named_as_a_populate) {
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP, .flags = EMEL_LOAD_POPULATE);
  const uint32_t one[] = {1}; /* 300000 bytes: pieces */
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.indices = one, .count = 1, .options = &o, .chunk_bytes = CHUNK);
  emel_job *job = new_job(&c);
  fault_platform_fail(&fp, FP_ADVISE, fp.calls[FP_ADVISE] + 1, EAGAIN);
  emel_error e;
  ck_assert_int_eq(emel_job_step(job, UINT64_MAX, NULL, &e), EMEL_MMAP_POPULATE_FAILED);
  ck_assert_int_eq(e.os_errno, EAGAIN);
  ck_assert_uint_eq(e.tensor, 2);
  ck_assert_int_eq(emel_tensors_last_error(t, 1).code, EMEL_MMAP_POPULATE_FAILED);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 0);
  emel_job_destroy(job);
}
END_TEST

START_TEST(cancel_after_every_step_leaves_nothing_half_resident) { cancel_after_every_step(); }
END_TEST

/* The same with mmap and EMEL_LOAD_POPULATE: a tensor bigger than a chunk is
 * pre-faulted a chunk at a time (never more than a chunk between cancels). */
START_TEST(cancel_after_every_step_of_a_populated_mapping) {
  loop_options = (emel_load_options)EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP, .flags = EMEL_LOAD_POPULATE);
  fault_platform_forget_advices(&fp);
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.options = &loop_options, .chunk_bytes = CHUNK);
  emel_job *job = new_job(&c);
  while (emel_job_poll(job, NULL) < EMEL_JOB_COMPLETED) ck_assert_int_eq(emel_job_step(job, 0, NULL, NULL), EMEL_OK);
  fp_advice log[64];
  size_t n = fault_platform_advices(&fp, FP_ADVISE, log, 64);
  /* Guards against each piece populated through a residency of its own whose
   * release advised DONTNEED over the pages just populated (undoing the
   * populate), and whose refused release left a residency nobody held. */
  for (size_t i = 0; i < n && i < 64; i++) ck_assert_int_ne(log[i].advice, EMEL_ADVISE_DONTNEED);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), N);
  emel_job_destroy(job);
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  fault_platform_forget_advices(&fp);
  /* Budget 0: one small tensor a step (5), pieces of 300000, 150000, 70000 bytes
   * (5 + 3 + 2); the last one ends the job. */
  ck_assert_int_eq(count_units(), 15);
  n = fault_platform_advices(&fp, FP_ADVISE, log, 64);
  unsigned populates = 0;
  for (size_t i = 0; i < n && i < 64; i++) {
    if (log[i].advice == EMEL_ADVISE_POPULATE_READ) {
      ck_assert_uint_le(log[i].len, CHUNK + 2 * 4096); /* a chunk, widened to whole pages */
      populates++;
    }
  }
  ck_assert_uint_ge(populates, 10);
  cancel_after_every_step();
}
END_TEST

START_TEST(background_job_completes_and_signals_its_fd) {
  atomic_store(&ready_count, 0);
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.chunk_bytes = CHUNK, .on_ready = on_ready);
  emel_job *job = new_job(&c);
  ck_assert_int_eq(emel_job_fd(job), -1);
  ck_assert_int_eq(emel_job_start(job, NULL), EMEL_OK);
  ck_assert_int_ge(emel_job_fd(job), 0);
  /* An event loop sees the descriptor readable once a unit is done. */
  struct pollfd pfd = {.fd = emel_job_fd(job), .events = POLLIN};
  ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
  emel_error e;
  ck_assert_int_eq(emel_job_start(job, &e), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(emel_job_step(job, 0, NULL, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_int_eq(emel_job_wait(job, -1), EMEL_JOB_COMPLETED);
  ck_assert_int_eq(emel_job_result(job, NULL), EMEL_OK);
  ck_assert_uint_eq(atomic_load(&ready_count), N);
  ck_assert_uint_eq(check_settled(job, EMEL_OK), N);
  emel_job_destroy(job);
}
END_TEST

/* A ready callback that holds the job's thread until the test cancelled it. */
static atomic_int first_ready, cancelled_by_test;
static emel_job *signal_job;

static void hold_after_first(void *user, uint32_t index, const emel_tensor_view *view) {
  (void)user;
  (void)index;
  (void)view;
  if (atomic_fetch_add(&first_ready, 1) == 0)
    while (!atomic_load(&cancelled_by_test)) sched_yield();
}

static void *cancel_from_thread(void *arg) {
  while (!atomic_load(&first_ready)) sched_yield();
  emel_job_cancel(arg);
  atomic_store(&cancelled_by_test, 1);
  return NULL;
}

START_TEST(background_cancel_from_another_thread) {
  atomic_store(&first_ready, 0);
  atomic_store(&cancelled_by_test, 0);
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.chunk_bytes = CHUNK, .on_ready = hold_after_first);
  emel_job *job = new_job(&c);
  ck_assert_int_eq(emel_job_start(job, NULL), EMEL_OK);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, cancel_from_thread, job), 0);
  ck_assert_int_eq(emel_job_wait(job, -1), EMEL_JOB_CANCELLED);
  ck_assert_int_eq(pthread_join(th, NULL), 0);
  /* Seen before the next unit: only the first unit's tensor is resident. */
  ck_assert_uint_eq(check_settled(job, EMEL_CANCELLED), 1);
  ck_assert_int_eq(emel_job_result(job, NULL), EMEL_CANCELLED);
  emel_job_destroy(job);
}
END_TEST

static void cancel_on_signal(int sig) {
  (void)sig;
  emel_job_cancel(signal_job);
  atomic_store(&cancelled_by_test, 1);
}

START_TEST(background_cancel_from_a_signal_handler) {
  atomic_store(&first_ready, 0);
  atomic_store(&cancelled_by_test, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = cancel_on_signal;
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.chunk_bytes = CHUNK, .on_ready = hold_after_first);
  signal_job = new_job(&c);
  ck_assert_int_eq(emel_job_start(signal_job, NULL), EMEL_OK);
  while (!atomic_load(&first_ready)) sched_yield();
  ck_assert_int_eq(raise(SIGUSR1), 0); /* delivered to this thread, while the job's waits */
  ck_assert_int_eq(emel_job_wait(signal_job, -1), EMEL_JOB_CANCELLED);
  ck_assert_uint_eq(check_settled(signal_job, EMEL_CANCELLED), 1);
  emel_job_destroy(signal_job);
  signal_job = NULL;
}
END_TEST

/* Guards against a job waking its descriptor after every unit when nobody
 * watches it: emel_job_wait waits for the end, and a waiter woken per unit
 * takes a core from the read lanes (job_vs_batch fell ~5 % on 2 cores). A
 * job whose fd was asked for still signals every unit (the test above). */
START_TEST(a_job_only_waited_for_signals_its_end_alone) {
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.chunk_bytes = CHUNK);
  emel_job *job = new_job(&c);
  const uint64_t before = fp.calls[FP_EVENT_SIGNAL];
  ck_assert_int_eq(emel_job_start(job, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_wait(job, -1), EMEL_JOB_COMPLETED);
  emel_job_destroy(job); /* joins the thread: its count is read after */
  /* The end, and destroy's cancel; N units each signalled before. */
  ck_assert_uint_le(fp.calls[FP_EVENT_SIGNAL] - before, 2);
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);

  emel_job *watched = new_job(&c);
  ck_assert_int_eq(emel_job_fd(watched), -1); /* asked before the start: watched from the first unit */
  const uint64_t base = fp.calls[FP_EVENT_SIGNAL];
  ck_assert_int_eq(emel_job_start(watched, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_wait(watched, -1), EMEL_JOB_COMPLETED);
  emel_job_destroy(watched);
  ck_assert_uint_ge(fp.calls[FP_EVENT_SIGNAL] - base, N); /* a unit per tensor at least (CHUNK) */
}
END_TEST

/* Guards against emel_job_wait(-1) blocking forever on a finished job whose
 * wakeups were lost (event_signal failed: the descriptor never readable). */
START_TEST(wait_returns_when_every_wakeup_is_lost) {
  fault_platform_fail_many(&fp, FP_EVENT_SIGNAL, fp.calls[FP_EVENT_SIGNAL] + 1, 1u << 20, EINVAL);
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.chunk_bytes = CHUNK);
  emel_job *job = new_job(&c);
  ck_assert_int_eq(emel_job_start(job, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_wait(job, -1), EMEL_JOB_COMPLETED);
  emel_job_destroy(job);
  ck_assert_uint_gt(fp.calls[FP_EVENT_SIGNAL], 0); /* read once the job's thread is joined */
  fault_platform_clear_faults(&fp);
}
END_TEST

START_TEST(wait_times_out_while_the_job_runs) {
  atomic_store(&first_ready, 0);
  atomic_store(&cancelled_by_test, 0);
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.chunk_bytes = CHUNK, .on_ready = hold_after_first);
  emel_job *job = new_job(&c);
  ck_assert_int_eq(emel_job_wait(job, 10), EMEL_JOB_CREATED); /* not started: not waited for */
  ck_assert_int_eq(emel_job_start(job, NULL), EMEL_OK);
  /* The first unit is held in its callback: still created or running. */
  ck_assert_int_le(emel_job_wait(job, 20), EMEL_JOB_RUNNING);
  atomic_store(&cancelled_by_test, 1);
  ck_assert_int_eq(emel_job_wait(job, -1), EMEL_JOB_COMPLETED);
  emel_job_destroy(job);
}
END_TEST

START_TEST(destroying_a_running_job_cancels_and_joins_it) {
  atomic_store(&first_ready, 0);
  atomic_store(&cancelled_by_test, 0);
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.chunk_bytes = CHUNK, .on_ready = hold_after_first);
  emel_job *job = new_job(&c);
  ck_assert_int_eq(emel_job_start(job, NULL), EMEL_OK);
  while (!atomic_load(&first_ready)) sched_yield();
  atomic_store(&cancelled_by_test, 1); /* lets the thread go on, racing the destroy */
  emel_job_destroy(job);
  ck_assert_int_eq(fp.live_threads, 0);
  ck_assert_uint_ge(check_settled(NULL, EMEL_CANCELLED), 1);
  /* A cooperative job destroyed half-way releases its half-read tensor too. */
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  emel_job_config c2 = EMEL_JOB_CONFIG_INIT(.chunk_bytes = CHUNK);
  job = new_job(&c2);
  ck_assert_int_eq(emel_job_step(job, 2 * CHUNK, NULL, NULL), EMEL_OK); /* inside tensor 1's pieces */
  emel_job_destroy(job);
  check_settled(NULL, EMEL_CANCELLED);
}
END_TEST

START_TEST(thread_that_does_not_start_leaves_the_job_to_step) {
  fault_platform_fail(&fp, FP_THREAD_START, 1, EAGAIN);
  emel_job *job = new_job(NULL);
  emel_error e;
  ck_assert_int_eq(emel_job_start(job, &e), EMEL_JOB_START_FAILED);
  ck_assert_int_eq(e.os_errno, EAGAIN);
  ck_assert_int_eq(emel_job_fd(job), -1);
  ck_assert_int_eq(emel_job_step(job, UINT64_MAX, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_poll(job, NULL), EMEL_JOB_COMPLETED);
  emel_job_destroy(job);
}
END_TEST

/* The 3rd pread is the 3rd unit: tensor 5 (file order 1, 3, 5, ...), or with
 * CHUNK-sized units, a piece. */
START_TEST(failure_fails_the_job_and_releases_the_others) {
  fault_platform_fail(&fp, FP_PREAD, 3, EIO);
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.chunk_bytes = 4096, .on_ready = on_ready);
  atomic_store(&ready_count, 0);
  emel_job *job = new_job(&c); /* 4096-byte units: tensor 1 (300000) in pieces first */
  emel_error e;
  emel_status s;
  while ((s = emel_job_step(job, 0, NULL, &e)) == EMEL_OK && emel_job_poll(job, NULL) == EMEL_JOB_RUNNING) {
  }
  ck_assert_int_eq(s, EMEL_READ_FAILED);
  ck_assert_int_eq(e.os_errno, EIO);
  ck_assert_uint_eq(e.tensor, 1 + 1);
  ck_assert_int_eq(emel_job_poll(job, NULL), EMEL_JOB_FAILED);
  ck_assert_int_eq(emel_job_step(job, 0, NULL, NULL), EMEL_READ_FAILED);
  ck_assert_int_eq(emel_tensors_last_error(t, 1).code, EMEL_READ_FAILED);
  ck_assert_int_eq(emel_tensors_last_error(t, 1).os_errno, EIO);
  for (uint32_t i = 0; i < N; i++) {
    ck_assert_int_ne(emel_tensors_state(t, i), EMEL_TENSOR_RESIDENT);
    if (i != 1) ck_assert_int_eq(emel_tensors_last_error(t, i).code, EMEL_CANCELLED);
  }
  emel_tensor_view v;
  ck_assert_int_eq(emel_job_view(job, 1, &v, NULL), EMEL_READ_FAILED);
  ck_assert_int_eq(emel_job_view(job, 0, &v, NULL), EMEL_CANCELLED);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_READ), 0);
  emel_job_destroy(job);
  ck_assert_int_eq(fp.live_allocs > 0, 1); /* the table's own */

  /* A whole-tensor window fails: the tensors it loaded are evicted unseen,
   * and so is every tensor already reported ready. */
  fault_platform_clear_faults(&fp);
  fault_platform_fail(&fp, FP_PREAD, 2 + fp.calls[FP_PREAD], EIO);
  const uint32_t small[] = {0, 2, 3, 5, 7};
  emel_job_config w = EMEL_JOB_CONFIG_INIT(.indices = small, .count = 5, .chunk_bytes = 4096);
  job = new_job(&w);
  ck_assert_int_eq(emel_job_step(job, UINT64_MAX, NULL, &e), EMEL_READ_FAILED);
  ck_assert_int_eq(emel_job_poll(job, NULL), EMEL_JOB_FAILED);
  ck_assert_uint_eq(emel_tensors_resident_count(t), 0);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_READ), 0);
  emel_job_destroy(job);
}
END_TEST

START_TEST(continue_on_failure_reports_each_failure_against_its_tensor) {
  /* One pread per unit with 4096-byte units: the 1st fails (tensor 1's first piece). */
  fault_platform_fail(&fp, FP_PREAD, 1, EIO);
  atomic_store(&ready_count, 0);
  emel_job_config c =
      EMEL_JOB_CONFIG_INIT(.chunk_bytes = 4096, .flags = EMEL_JOB_CONTINUE_ON_FAILURE, .on_ready = on_ready);
  emel_job *job = new_job(&c);
  emel_job_progress p = EMEL_JOB_PROGRESS_INIT();
  emel_error e;
  ck_assert_int_eq(emel_job_step(job, UINT64_MAX, &p, &e), EMEL_READ_FAILED);
  ck_assert_int_eq(p.state, EMEL_JOB_COMPLETED);
  ck_assert_uint_eq(p.tensors_failed, 1);
  ck_assert_uint_eq(p.tensors_done, N - 1);
  ck_assert_uint_eq(e.tensor, 2);
  ck_assert_int_eq(emel_job_result(job, NULL), EMEL_READ_FAILED);
  emel_tensor_view v;
  ck_assert_int_eq(emel_job_view(job, 1, &v, NULL), EMEL_READ_FAILED);
  ck_assert_int_eq(emel_tensors_state(t, 1), EMEL_TENSOR_BOUND);
  ck_assert_uint_eq(atomic_load(&ready_count), N - 1);
  for (uint32_t i = 0; i < N; i++)
    if (i != 1) {
      ck_assert_int_eq(emel_job_view(job, i, &v, NULL), EMEL_OK);
      check_bytes(i, &v);
    }
  emel_job_destroy(job);

  /* A window of whole tensors with one failure (its first open): the others of it are ready. */
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  fault_platform_clear_faults(&fp);
  const uint32_t small[] = {0, 2, 3};
  emel_job_config w = EMEL_JOB_CONFIG_INIT(.indices = small, .count = 3, .flags = EMEL_JOB_CONTINUE_ON_FAILURE);
  fault_platform_fail(&fp, FP_OPEN, fp.calls[FP_OPEN] + 1, EACCES);
  drop_table(); /* a fresh boundary opens the file again */
  make_table();
  job = new_job(&w);
  ck_assert_int_eq(emel_job_step(job, UINT64_MAX, &p, NULL), EMEL_OPEN_FAILED);
  ck_assert_uint_eq(p.tensors_failed, 1);
  ck_assert_uint_eq(p.tensors_done, 2);
  ck_assert_int_eq(emel_tensors_last_error(t, 3).code, EMEL_OPEN_FAILED); /* first in file order */
  ck_assert_int_eq(emel_tensors_last_error(t, 3).os_errno, EACCES);
  emel_job_destroy(job);
}
END_TEST

START_TEST(held_tensors_are_busy_to_loads_from_outside) {
  const uint32_t some[] = {0, 2};
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.indices = some, .count = 2);
  emel_job *job = new_job(&c);
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);
  emel_error e;
  emel_tensor_view v;
  ck_assert_int_eq(emel_tensors_load(t, 0, &o, &v, &e), EMEL_TENSOR_BUSY);
  ck_assert_uint_eq(e.tensor, 1);
  emel_status st[2];
  const uint32_t both[] = {2, 3};
  ck_assert_int_eq(emel_tensors_load_batch(t, both, 2, &o, st, NULL), EMEL_TENSOR_BUSY);
  ck_assert_int_eq(st[0], EMEL_TENSOR_BUSY);
  ck_assert_int_eq(st[1], EMEL_OK); /* not the job's */
  static unsigned char buf[8192];
  ck_assert_int_eq(emel_tensors_bind_external(t, 2, buf, sizeof buf, NULL), EMEL_TENSOR_BUSY);
  /* Another job cannot take a held tensor. */
  emel_job *other = NULL;
  ck_assert_int_eq(emel_job_create(&other, t, &c, &e), EMEL_TENSOR_BUSY);
  ck_assert_uint_eq(e.tensor, 1);
  ck_assert_ptr_null(other);
  ck_assert_int_eq(emel_job_step(job, UINT64_MAX, NULL, NULL), EMEL_OK);
  /* Resident now, still held until the job is destroyed. */
  ck_assert_int_eq(emel_tensors_evict(t, 0, NULL), EMEL_TENSOR_BUSY);
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_TENSOR_BUSY);
  ck_assert_int_eq(emel_tensors_state(t, 3), EMEL_TENSOR_EVICTED); /* evict_all went on past the refusal */
  emel_job_destroy(job);
  ck_assert_int_eq(emel_tensors_evict(t, 0, NULL), EMEL_OK);
  /* Refusals at creation name the tensor. */
  emel_job_config resident = EMEL_JOB_CONFIG_INIT(.indices = (const uint32_t[]){2}, .count = 1);
  ck_assert_int_eq(emel_job_create(&other, t, &resident, &e), EMEL_TENSOR_ALREADY_RESIDENT);
  ck_assert_uint_eq(e.tensor, 3);
  emel_job_config twice = EMEL_JOB_CONFIG_INIT(.indices = (const uint32_t[]){1, 1}, .count = 2);
  ck_assert_int_eq(emel_job_create(&other, t, &twice, &e), EMEL_INVALID_ARGUMENT);
  emel_job_config unknown = EMEL_JOB_CONFIG_INIT(.indices = (const uint32_t[]){N}, .count = 1);
  ck_assert_int_eq(emel_job_create(&other, t, &unknown, &e), EMEL_TENSOR_UNKNOWN);
  emel_load_options target = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ, .target = buf);
  emel_job_config targeted = EMEL_JOB_CONFIG_INIT(.options = &target);
  ck_assert_int_eq(emel_job_create(&other, t, &targeted, &e), EMEL_INVALID_ARGUMENT);
  ck_assert_str_eq(e.detail, "emel_load_options.target");
  /* A rank outside its count would fail every tensor: refused, named as a load names it. */
  emel_load_options sharded = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ, .shard_rank = 2, .shard_count = 2);
  emel_job_config sliced = EMEL_JOB_CONFIG_INIT(.options = &sharded);
  ck_assert_int_eq(emel_job_create(&other, t, &sliced, &e), EMEL_INVALID_SHARD);
  ck_assert_str_eq(e.detail, "emel_load_options.shard_rank");
  emel_job_config many = EMEL_JOB_CONFIG_INIT(.threads = EMEL_IO_READ_MAX_THREADS + 1);
  ck_assert_int_eq(emel_job_create(&other, t, &many, &e), EMEL_INVALID_ARGUMENT);
  ck_assert_str_eq(e.detail, "emel_job_config.threads");
  ck_assert_int_eq(emel_job_create(&other, t, &(emel_job_config){0}, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  fault_platform_fail(&fp, FP_ALLOC, fp.calls[FP_ALLOC] + 1, ENOMEM);
  ck_assert_int_eq(emel_job_create(&other, t, NULL, &e), EMEL_OUT_OF_MEMORY);
}
END_TEST

START_TEST(mapped_job_loads_whole_tensors) {
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP, .flags = EMEL_LOAD_POPULATE);
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.options = &o, .chunk_bytes = CHUNK);
  emel_job *job = new_job(&c);
  ck_assert_int_eq(emel_job_step(job, UINT64_MAX, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_poll(job, NULL), EMEL_JOB_COMPLETED);
  for (uint32_t i = 0; i < N; i++) {
    emel_tensor_view v;
    ck_assert_int_eq(emel_job_view(job, i, &v, NULL), EMEL_OK);
    ck_assert_int_eq(v.residency, EMEL_RESIDENCY_MAPPED);
    check_bytes(i, &v);
  }
  emel_job_destroy(job);
  ck_assert_int_eq(emel_job_view(NULL, 0, NULL, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_str_eq(emel_job_state_name(EMEL_JOB_CANCELLED), "cancelled");
}
END_TEST

/* Guards against a progress callback on every unit whatever the interval
 * (a flood for an event loop), and against none at the end. */
START_TEST(progress_callback_runs_at_most_once_per_interval) {
  progress_calls = 0;
  emel_job_config slow = EMEL_JOB_CONFIG_INIT(.chunk_bytes = CHUNK, .on_progress = on_progress,
                                              .progress_interval_ms = 3600 * 1000);
  emel_job *job = new_job(&slow);
  int units = 0;
  while (emel_job_poll(job, NULL) < EMEL_JOB_COMPLETED) {
    ck_assert_int_eq(emel_job_step(job, 0, NULL, NULL), EMEL_OK);
    units++;
  }
  ck_assert_int_ge(units, 10);
  ck_assert_uint_eq(progress_calls, 2); /* the first unit, and the end */
  ck_assert_int_eq(last_progress.state, EMEL_JOB_COMPLETED);
  ck_assert_uint_eq(last_progress.tensors_done, N);
  ck_assert(last_progress.bytes_per_second > 0);
  emel_job_destroy(job);
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  progress_calls = 0;
  emel_job_config every = EMEL_JOB_CONFIG_INIT(.chunk_bytes = CHUNK, .on_progress = on_progress);
  job = new_job(&every);
  while (emel_job_poll(job, NULL) < EMEL_JOB_COMPLETED) ck_assert_int_eq(emel_job_step(job, 0, NULL, NULL), EMEL_OK);
  ck_assert_uint_eq(progress_calls, (unsigned)units + 1); /* after every unit, and at the end */
  /* An older caller's smaller progress struct is filled only that far. */
  struct {
    emel_job_progress p;
    unsigned char canary;
  } small;
  memset(&small, 0xab, sizeof small);
  small.p.struct_size = offsetof(emel_job_progress, bytes_total);
  ck_assert_int_eq(emel_job_poll(job, &small.p), EMEL_JOB_COMPLETED);
  ck_assert_uint_eq(small.p.bytes_done, last_progress.bytes_done);
  ck_assert_uint_eq(small.p.tensors_total, 0xabababab);
  emel_job_destroy(job);
}
END_TEST

/* Guards against a big tensor's pieces copied by one thread into 4 KiB pages:
 * each piece goes to the boundary in parts, which the read strategy's lanes
 * copy in parallel, into a buffer advised for huge pages as the strategy's own. */
START_TEST(big_pieces_use_the_read_lanes_and_huge_pages) {
  enum { BIG = 6 << 20 };
  char big_path[300];
  snprintf(big_path, sizeof big_path, "%s.big", path);
  write_bytes(big_path, BIG);
  fp.cpu_count = 2;
  emel_io_config c = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
  emel_io *bio;
  ck_assert_int_eq(emel_io_create(&bio, &c, NULL), EMEL_OK);
  emel_io_read_config rc = EMEL_IO_READ_CONFIG_INIT(.threads = 2, .min_parallel_bytes = 1 << 20);
  ck_assert_int_eq(emel_io_read_attach(bio, &rc, NULL), EMEL_OK);
  uint32_t file;
  ck_assert_int_eq(emel_io_add_file(bio, big_path, strlen(big_path), &file, NULL), EMEL_OK);
  emel_tensors *bt;
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = bio, .capacity = 1);
  ck_assert_int_eq(emel_tensors_create(&bt, &tc, NULL), EMEL_OK);
  emel_tensor_span span = {.n_dims = 1, .dims = {BIG, 1, 1, 1}, .file_index = file, .size = BIG};
  ck_assert_int_eq(emel_tensors_add(bt, "big", 3, &span, NULL, NULL), EMEL_OK);
  fault_platform_forget_advices(&fp);
  const uint64_t threads_before = fp.calls[FP_THREAD_START];
  emel_job_config jc = EMEL_JOB_CONFIG_INIT(.chunk_bytes = 4 << 20);
  emel_job *job;
  ck_assert_int_eq(emel_job_create(&job, bt, &jc, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_step(job, 4 << 20, NULL, NULL), EMEL_OK); /* the first 4 MiB piece */
  ck_assert_int_eq(emel_job_poll(job, NULL), EMEL_JOB_RUNNING);
  ck_assert_uint_gt(fp.calls[FP_THREAD_START], threads_before);
  fp_advice log[8];
  const size_t n = fault_platform_advices(&fp, FP_ADVISE, log, 8);
  ck_assert_uint_ge(n, 1);
  ck_assert_int_eq(log[0].advice, EMEL_ADVISE_HUGEPAGE);
  ck_assert_uint_eq((uintptr_t)log[0].addr % (2u << 20), 0);
  ck_assert_int_eq(emel_job_step(job, UINT64_MAX, NULL, NULL), EMEL_OK);
  emel_tensor_view v;
  ck_assert_int_eq(emel_job_view(job, 0, &v, NULL), EMEL_OK);
  ck_assert_uint_eq(v.size, BIG);
  check_view_from_zero(&v);
  emel_job_destroy(job);
  emel_tensors_destroy(bt);
  emel_io_destroy(bio);
  unlink(big_path);
}
END_TEST

/* Guards against pieces larger than a small chunk (they were cut to at least
 * 64 KiB whatever the chunk, so a cancel waited for 64 KiB, not the chunk). */
START_TEST(a_piece_is_never_larger_than_the_chunk) {
  const uint32_t one[] = {1}; /* 300000 bytes */
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.indices = one, .count = 1, .chunk_bytes = 4096);
  emel_job *job = new_job(&c);
  const uint64_t before = fp.calls[FP_PREAD];
  int steps = 0;
  while (emel_job_poll(job, NULL) < EMEL_JOB_COMPLETED) {
    ck_assert_int_eq(emel_job_step(job, 0, NULL, NULL), EMEL_OK);
    steps++;
  }
  ck_assert_uint_eq(fp.calls[FP_PREAD] - before, (300000 + 4095) / 4096);
  ck_assert_int_eq(steps, (300000 + 4095) / 4096); /* the step of the last piece reports the end */
  emel_job_destroy(job);
}
END_TEST

/* One job, to its end, with the nth call of `op` (counted from the job's
 * creation) failing once with `err`. Returns how many calls of `op` it made. */
enum { DRIVE_ONE_UNIT, DRIVE_UNLIMITED, DRIVE_BACKGROUND, DRIVE_COUNT };
static int drive; /* how job_with_fault drives its job */

static uint64_t job_with_fault(fp_op op, uint64_t nth, int err, unsigned flags) {
  drop_table();
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
  fault_platform_clear_faults(&fp);
  make_table();
  const uint64_t base = fp.calls[op];
  if (nth) fault_platform_fail(&fp, op, base + nth, err);
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.options = &loop_options, .chunk_bytes = CHUNK, .flags = flags);
  emel_job *job = NULL;
  if (emel_job_create(&job, t, &c, NULL) != EMEL_OK) { /* its own allocation failed: nothing held */
    ck_assert_int_eq(op, FP_ALLOC);
    return fp.calls[op] - base;
  }
  int steps = 0;
  if (drive == DRIVE_BACKGROUND && emel_job_start(job, NULL) == EMEL_OK) (void)emel_job_wait(job, -1);
  while (emel_job_poll(job, NULL) < EMEL_JOB_COMPLETED) { /* also when the thread did not start */
    (void)emel_job_step(job, drive == DRIVE_ONE_UNIT ? 0 : UINT64_MAX, NULL, NULL);
    ck_assert_int_lt(++steps, 1000);
  }
  const emel_job_state st = emel_job_poll(job, NULL);
  emel_error e;
  const emel_status result = emel_job_result(job, &e);
  if (st == EMEL_JOB_FAILED) ck_assert_int_ne(result, EMEL_OK);
  for (uint32_t i = 0; i < N; i++) {
    if (emel_tensors_state(t, i) == EMEL_TENSOR_RESIDENT) {
      emel_tensor_view v;
      ck_assert_int_eq(emel_tensors_view(t, i, &v, NULL), EMEL_OK);
      check_bytes(i, &v);
      ck_assert_int_eq(emel_job_tensor_ready(job, i), 1);
    } else {
      ck_assert_int_ne(emel_tensors_last_error(t, i).code, EMEL_OK);
      ck_assert_int_eq(emel_job_tensor_ready(job, i), 0);
    }
  }
  emel_job_destroy(job);
  fault_platform_clear_faults(&fp);
  return fp.calls[op] - base;
}

/* Every platform call a job makes, failed once with each policy, both
 * strategies and three ways of driving it (a unit a step, unlimited steps,
 * its own thread): the job ends (never hangs), every tensor is resident with its
 * bytes or not resident with an error recorded, and nothing leaks (teardown
 * and each run's start check the fault platform). */
START_TEST(every_platform_call_of_a_job_failed_once) {
  static const struct {
    fp_op op;
    int err;
  } faults[] = {{FP_OPEN, EACCES}, {FP_PREAD, EIO}, {FP_PREADV, EIO}, {FP_MAP, ENOMEM}, {FP_ADVISE, EIO},
                {FP_ALLOC, ENOMEM}, {FP_FILE_IDENTITY, EIO}, {FP_THREAD_START, EAGAIN}};
  const emel_load_options strategies[] = {
      EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ),
      EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP, .flags = EMEL_LOAD_POPULATE)};
  unsigned runs = 0;
  for (size_t k = 0; k < 2 * DRIVE_COUNT; k++) {
    loop_options = strategies[k % 2];
    drive = (int)(k / 2);
    for (size_t f = 0; f < sizeof faults / sizeof faults[0]; f++) {
      const uint64_t calls = job_with_fault(faults[f].op, 0, 0, 0);
      for (uint64_t nth = 1; nth <= calls; nth++) {
        (void)job_with_fault(faults[f].op, nth, faults[f].err, 0);
        (void)job_with_fault(faults[f].op, nth, faults[f].err, EMEL_JOB_CONTINUE_ON_FAILURE);
        runs += 2;
      }
    }
  }
  ck_assert_uint_ge(runs, 400);
}
END_TEST


/* Guards against a cancel that arrives after the last unit (here from the
 * last tensor's ready callback) turning a job whose every tensor is resident
 * into CANCELLED: a cancel stops the next unit, and there is none. */
static emel_job *self_cancelling;

static void cancel_on_last(void *user, uint32_t index, const emel_tensor_view *view) {
  (void)user;
  (void)view;
  if (index == FILE_ORDER[N - 1]) emel_job_cancel(self_cancelling);
}

START_TEST(cancel_after_the_last_unit_completes_the_job) {
  for (int background = 0; background < 2; background++) {
    emel_job_config c = EMEL_JOB_CONFIG_INIT(.chunk_bytes = CHUNK, .on_ready = cancel_on_last);
    self_cancelling = new_job(&c);
    if (background) {
      ck_assert_int_eq(emel_job_start(self_cancelling, NULL), EMEL_OK);
      ck_assert_int_eq(emel_job_wait(self_cancelling, -1), EMEL_JOB_COMPLETED);
    } else {
      while (emel_job_poll(self_cancelling, NULL) < EMEL_JOB_COMPLETED)
        (void)emel_job_step(self_cancelling, 0, NULL, NULL);
    }
    ck_assert_int_eq(emel_job_poll(self_cancelling, NULL), EMEL_JOB_COMPLETED);
    ck_assert_int_eq(emel_job_result(self_cancelling, NULL), EMEL_OK);
    ck_assert_int_eq(emel_job_step(self_cancelling, 0, NULL, NULL), background ? EMEL_INVALID_ARGUMENT : EMEL_OK);
    ck_assert_uint_eq(check_settled(self_cancelling, EMEL_OK), N);
    emel_job_destroy(self_cancelling);
    ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  }
}
END_TEST

/* Guards against emel_job_wait returning a running job as soon as one
 * event_wait failed (not EINTR): it keeps looking, a slice at a time. */
static void slow_first(void *user, uint32_t index, const emel_tensor_view *view) {
  (void)user;
  (void)index;
  (void)view;
  if (atomic_fetch_add(&first_ready, 1) == 0) {
    struct timespec ts = {0, 50 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  }
}

START_TEST(wait_keeps_waiting_after_a_failed_event_wait) {
  atomic_store(&first_ready, 0);
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.chunk_bytes = CHUNK, .on_ready = slow_first);
  emel_job *job = new_job(&c);
  ck_assert_int_eq(emel_job_start(job, NULL), EMEL_OK);
  fault_platform_fail(&fp, FP_EVENT_WAIT, fp.calls[FP_EVENT_WAIT] + 1, ENOMEM);
  ck_assert_int_eq(emel_job_wait(job, 10000), EMEL_JOB_COMPLETED);
  emel_job_destroy(job);
  fault_platform_clear_faults(&fp);
}
END_TEST

/* Guards against a populated mmap job naming a file cut short after indexing
 * MMAP_POPULATE_FAILED where a populated batch load (the same case: the file
 * is mapped already, a populate faults) says FILE_CHANGED. */
START_TEST(a_file_cut_under_a_populated_job_is_file_changed) {
  emel_load_options plain = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP);
  emel_load_options populate = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP, .flags = EMEL_LOAD_POPULATE);
  ck_assert_int_eq(emel_tensors_load(t, 3, &plain, NULL, NULL), EMEL_OK); /* keeps the file mapped */
  ck_assert_int_eq(truncate(path, 100000), 0); /* tensor 1 (300000 bytes at 0) is cut; tensor 4 is gone */
  emel_status st[1];
  const uint32_t four[] = {4};
  ck_assert_int_ne(emel_tensors_load_batch(t, four, 1, &populate, st, NULL), EMEL_OK);
  ck_assert_int_eq(st[0], EMEL_FILE_CHANGED);
  const uint32_t one[] = {1};
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.indices = one, .count = 1, .options = &populate, .chunk_bytes = CHUNK);
  emel_job *job = new_job(&c);
  emel_error e;
  emel_status s;
  while ((s = emel_job_step(job, 0, NULL, &e)) == EMEL_OK && emel_job_poll(job, NULL) < EMEL_JOB_COMPLETED) {}
  ck_assert_int_eq(s, EMEL_FILE_CHANGED);
  ck_assert_int_eq(e.os_errno, EFAULT);
  ck_assert_int_eq(emel_tensors_last_error(t, 1).code, EMEL_FILE_CHANGED);
  emel_job_destroy(job);
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_io_live(io, EMEL_STRATEGY_MMAP), 0);
}
END_TEST


/* One tensor of `size` bytes in a file of its own, on a boundary whose read
 * strategy has 2 copy lanes (and 8 direct ones: 8 lanes in all). */
typedef struct big_model {
  char path[300];
  emel_io *io;
  emel_tensors *t;
} big_model;

static void big_open_with(big_model *b, uint64_t size, const emel_platform_ops *ops);

static void big_open(big_model *b, uint64_t size) { big_open_with(b, size, &fp.ops); }

static void big_open_with(big_model *b, uint64_t size, const emel_platform_ops *ops) {
  snprintf(b->path, sizeof b->path, "%s.big", path);
  write_bytes(b->path, size);
  fp.cpu_count = 2;
  emel_io_config c = EMEL_IO_CONFIG_INIT(.platform = ops);
  ck_assert_int_eq(emel_io_create(&b->io, &c, NULL), EMEL_OK);
  emel_io_read_config rc = EMEL_IO_READ_CONFIG_INIT(.threads = 2);
  ck_assert_int_eq(emel_io_read_attach(b->io, &rc, NULL), EMEL_OK);
  uint32_t file;
  ck_assert_int_eq(emel_io_add_file(b->io, b->path, strlen(b->path), &file, NULL), EMEL_OK);
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = b->io, .capacity = 1);
  ck_assert_int_eq(emel_tensors_create(&b->t, &tc, NULL), EMEL_OK);
  emel_tensor_span span = {.n_dims = 1, .dims = {size, 1, 1, 1}, .file_index = file, .size = size};
  ck_assert_int_eq(emel_tensors_add(b->t, "big", 3, &span, NULL, NULL), EMEL_OK);
}

static void big_close(big_model *b) {
  emel_tensors_destroy(b->t);
  emel_io_destroy(b->io);
  unlink(b->path);
}

/* Loads the tensor through a job with `threads`; returns the worker threads the read strategy started. */
static uint64_t big_job_threads(big_model *b, uint32_t threads, uint64_t *parallel_windows) {
  emel_io_read_stats before, after;
  ck_assert_int_eq(emel_io_read_stats_of(b->io, &before, NULL), EMEL_OK);
  emel_job_config jc = EMEL_JOB_CONFIG_INIT(.threads = threads);
  emel_job *job;
  ck_assert_int_eq(emel_job_create(&job, b->t, &jc, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_step(job, UINT64_MAX, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_poll(job, NULL), EMEL_JOB_COMPLETED);
  emel_tensor_view v;
  ck_assert_int_eq(emel_job_view(job, 0, &v, NULL), EMEL_OK);
  check_view_from_zero(&v);
  emel_job_destroy(job);
  ck_assert_int_eq(emel_tensors_evict_all(b->t, NULL), EMEL_OK);
  ck_assert_int_eq(emel_io_read_stats_of(b->io, &after, NULL), EMEL_OK);
  if (parallel_windows) *parallel_windows = after.parallel_windows - before.parallel_windows;
  return after.threads_started - before.threads_started;
}

/* Guards against a job's window of whole tensors going to the table's batch,
 * where each tensor is one lane's: a window of one 6 MiB tensor (below the
 * 8 MiB chunk) was read by one thread while the batch load of a whole model
 * kept both lanes busy (job_vs_batch 0.63). */
START_TEST(a_window_of_whole_tensors_uses_the_lanes) {
  big_model b;
  big_open(&b, 6u << 20);
  uint64_t parallel = 0;
  ck_assert_uint_eq(big_job_threads(&b, 0, &parallel), 1); /* the strategy's 2 copy lanes */
  ck_assert_uint_eq(parallel, 1);
  big_close(&b);
}
END_TEST

/* The read strategy's worker threads a job with `threads` starts on a fresh
 * boundary of one `size` tensor: the lanes its units used at most (lanes are
 * parked threads, started once per strategy). */
static uint64_t fresh_job_threads(uint64_t size, uint32_t threads) {
  big_model b;
  big_open(&b, size);
  const uint64_t started = big_job_threads(&b, threads, NULL);
  big_close(&b);
  return started;
}

/* emel_job_config.threads: the threads that transfer each read unit (the
 * driving one, and threads - 1 lanes), one per MiB at most, at most the
 * strategy's lanes. Guards too against a thread per unit: two units on 7
 * and 3 lanes started 10 threads, where 7 parked ones serve both. */
START_TEST(threads_sets_the_lanes_of_read_units) {
  ck_assert_uint_eq(fresh_job_threads(6u << 20, 1), 0);
  ck_assert_uint_eq(fresh_job_threads(6u << 20, 3), 2);
  ck_assert_uint_eq(fresh_job_threads(6u << 20, 6), 5);
  ck_assert_uint_eq(fresh_job_threads(6u << 20, 64), 5); /* 6 MiB: a lane per MiB at most */
  ck_assert_uint_eq(fresh_job_threads(4u << 20, 64), 3);
  ck_assert_uint_eq(fresh_job_threads(12u << 20, 64), 7); /* two units: 8 MiB on 8 lanes, then 4 MiB on 4 */
  ck_assert_uint_eq(fresh_job_threads(12u << 20, 1), 0);
  /* (Jobs one after the other on one boundary share its lanes too while
   * they linger, 1 s: not asserted, a sanitizer's pace can outlast it.) */
}
END_TEST


/* A platform whose worker threads start 1 s late (a busy machine), and
 * which counts the reads the first thread (lane 0, the job's driver) makes. */
static pthread_t driver;
static atomic_uint driver_reads, other_reads;

typedef struct late_start {
  void *(*fn)(void *);
  void *arg;
} late_start;

static late_start late_starts[16];
static atomic_uint late_count;

static void *start_late(void *arg) {
  late_start *l = arg;
  struct timespec ts = {1, 0};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  return l->fn(l->arg);
}

static int late_thread_start(void *user, void *(*fn)(void *), void *arg, uintptr_t *thread) {
  late_start *l = &late_starts[atomic_fetch_add(&late_count, 1) % 16];
  *l = (late_start){fn, arg};
  return fp.ops.thread_start(user, start_late, l, thread);
}

static void count_reader(void) {
  if (pthread_equal(pthread_self(), driver)) atomic_fetch_add(&driver_reads, 1);
  else atomic_fetch_add(&other_reads, 1);
}

static int64_t counting_pread(void *user, int fd, void *buf, size_t len, uint64_t offset) {
  count_reader();
  return fp.ops.pread(user, fd, buf, len, offset);
}

static int64_t counting_preadv(void *user, int fd, const emel_iovec *iov, int iovcnt, uint64_t offset) {
  count_reader();
  return fp.ops.preadv(user, fd, iov, iovcnt, offset);
}

static int counting_ring_read(void *user, void *ring, int fd, void *buf, size_t len, uint64_t offset, uint64_t tag) {
  count_reader();
  return fp.ops.ring_read(user, ring, fd, buf, len, offset, tag);
}

/* One 8 MiB tensor, one unit on 2 lanes, the second's thread starting late
 * and every read counted by the thread that made it (through the ring too,
 * with `ring`); the job completes with the bytes right. b is left open. */
static void late_lane_job(big_model *b, int ring) {
  emel_platform_ops ops = fp.ops;
  ops.thread_start = late_thread_start;
  ops.pread = counting_pread;
  ops.preadv = counting_preadv;
  if (ring) ops.ring_read = counting_ring_read;
  big_open_with(b, 8u << 20, &ops);
  driver = pthread_self();
  atomic_store(&driver_reads, 0);
  atomic_store(&other_reads, 0);
  emel_job_config jc = EMEL_JOB_CONFIG_INIT(.threads = 2);
  emel_job *job;
  ck_assert_int_eq(emel_job_create(&job, b->t, &jc, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_step(job, UINT64_MAX, NULL, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_poll(job, NULL), EMEL_JOB_COMPLETED);
  emel_tensor_view v;
  ck_assert_int_eq(emel_job_view(job, 0, &v, NULL), EMEL_OK);
  check_view_from_zero(&v);
  emel_job_destroy(job);
}

/* Guards against a unit's runs dealt to the lanes in fixed shares: a lane
 * whose thread starts late (a busy machine) held the whole unit back by its
 * share, so a job of small units ran at the pace of its slowest lane. Lanes
 * now take the next run when done: here the driving thread takes them all
 * before the late lane starts. */
START_TEST(lanes_take_runs_so_a_late_lane_holds_nothing_back) {
  big_model b;
  late_lane_job(&b, 0);
  /* 8 MiB in 8 runs of 1 MiB over 2 lanes: a fixed share gave the late lane 4
   * (a driver slowed by valgrind may leave it one or two). */
  ck_assert_uint_eq(atomic_load(&driver_reads) + atomic_load(&other_reads), 8);
  ck_assert_uint_ge(atomic_load(&driver_reads), 6);
  big_close(&b);
}
END_TEST

/* Guards against a buffered ring lane reading ahead into runs beyond its
 * own: cached pages are copied as each read is sent, on the sending lane's
 * thread, so a lane that kept its ring full across the job's parts took them
 * all from the other lanes (measured: 8 MiB units ran on one lane, a
 * background job at 0.6 of the batch). Each buffered part is one read and a
 * lane has one in flight at a time (direct lanes still read ahead: see
 * test_io_read). Also: every part is read exactly once (no run twice, none
 * skipped), the bytes are right, and nothing is in flight afterwards. */
START_TEST(buffered_ring_lanes_read_no_part_ahead) {
  fp.no_ring = 0;
  big_model b;
  late_lane_job(&b, 1);
  emel_io_read_stats st;
  ck_assert_int_eq(emel_io_read_stats_of(b.io, &st, NULL), EMEL_OK);
  ck_assert_uint_ge(st.ring_opens, 1);
  ck_assert_uint_eq(st.ring_fallbacks, 0);
  /* 8 parts of 1 MiB, each one ring read (under the 4 MiB request size): 8 reads in all. */
  ck_assert_uint_eq(st.ring_reads, 8);
  ck_assert_uint_eq(atomic_load(&driver_reads) + atomic_load(&other_reads), 8);
  ck_assert_uint_ge(atomic_load(&driver_reads), 6);
  ck_assert_int_le(fp.ring_peak_in_flight, 2); /* one read per lane: none ahead into other parts */
  ck_assert_int_eq(fp.ring_in_flight, 0);
  big_close(&b);
}
END_TEST


/* Guards against a cooperative job slower than a background one (step_overhead
 * 0.52): 8 MiB budgets cut a big tensor's pieces at 8 and 4 MiB, and the
 * read strategy's min_parallel_bytes (4 MiB a lane) gave each piece under
 * 8 MiB one lane; budget-cut pieces and windows were mostly such. Every unit
 * of at least 2 MiB now uses the lanes (a lane per MiB at most). */
START_TEST(budget_cut_pieces_still_use_the_lanes) {
  big_model b;
  big_open(&b, 20u << 20);
  emel_io_read_stats before, after;
  ck_assert_int_eq(emel_io_read_stats_of(b.io, &before, NULL), EMEL_OK);
  emel_job *job;
  ck_assert_int_eq(emel_job_create(&job, b.t, NULL, NULL), EMEL_OK);
  int steps = 0;
  while (emel_job_poll(job, NULL) < EMEL_JOB_COMPLETED) {
    ck_assert_int_eq(emel_job_step(job, 8u << 20, NULL, NULL), EMEL_OK);
    steps++;
  }
  ck_assert_int_eq(steps, 3);
  ck_assert_int_eq(emel_io_read_stats_of(b.io, &after, NULL), EMEL_OK);
  ck_assert_uint_eq(after.parallel_windows - before.parallel_windows, 3); /* 8, 8 and 4 MiB pieces */
  emel_job_destroy(job);
  big_close(&b);
}
END_TEST


/* ---- staged jobs: progress window by window ---- */

/* What the watching consumer saw: the job it polls, each tensor's accepted
 * bytes and windows, and what it does at window `at` of tensor `on` (1: fails
 * it, 2: accepts it, then cancels the job). */
static struct {
  emel_job *job;
  uint32_t on;
  int at, act;
  uint64_t accepted[N];
  int windows[N];
  unsigned inside; /* polls that found bytes_done strictly inside the job's total */
} sw;

/* What bytes_done must be now: the ready tensors whole, the pending ones'
 * accepted windows, nothing of a failed or cancelled one. */
static uint64_t staged_expected(void) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < N; i++) {
    emel_tensor_view v;
    const emel_status s = emel_job_view(sw.job, i, &v, NULL);
    if (s == EMEL_OK) sum += SIZE[i];
    else if (s == EMEL_TENSOR_NOT_RESIDENT) sum += sw.accepted[i];
  }
  return sum;
}

static int watch_consume(void *user, uint32_t tensor, uint64_t offset, uint64_t bytes, const void *data) {
  (void)user;
  (void)data;
  ck_assert_uint_lt(tensor, N);
  ck_assert_uint_eq(offset, sw.accepted[tensor]);
  emel_job_progress p = EMEL_JOB_PROGRESS_INIT();
  (void)emel_job_poll(sw.job, &p);
  ck_assert_uint_le(p.bytes_done, p.bytes_total);
  ck_assert_msg(p.bytes_done == staged_expected(), "tensor %u window %d: bytes_done %llu, expected %llu", tensor,
                sw.windows[tensor], (unsigned long long)p.bytes_done, (unsigned long long)staged_expected());
  if (p.bytes_done > 0 && p.bytes_done < p.bytes_total) sw.inside++;
  const int window = ++sw.windows[tensor];
  if (sw.act == 1 && tensor == sw.on && window == sw.at) return 7;
  sw.accepted[tensor] += bytes;
  if (sw.act == 2 && tensor == sw.on && window == sw.at) emel_job_cancel(sw.job);
  return 0;
}

static emel_staged_consumer watcher;
static emel_load_options staged_options;

/* The staged strategy with windows of one page, no reader thread (threads 1)
 * unless `reader`, and the watching consumer. */
static void attach_staged(int reader) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  emel_io_staged_config c = EMEL_IO_STAGED_CONFIG_INIT(.budget = 4 * page, .buffers = 2, .threads = reader ? 0 : 1);
  ck_assert_int_eq(emel_io_staged_attach(io, &c, NULL), EMEL_OK);
  watcher = (emel_staged_consumer)EMEL_STAGED_CONSUMER_INIT(.consume = watch_consume);
  staged_options = (emel_load_options)EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_STAGED, .consumer = &watcher);
}

/* A stepped staged job of `c` with the watcher acting as asked; returns its final progress. */
static emel_job_progress run_watched(emel_job_config *c, uint32_t on, int at, int act) {
  memset(&sw, 0, sizeof sw);
  sw.on = on;
  sw.at = at;
  sw.act = act;
  c->options = &staged_options;
  c->chunk_bytes = CHUNK;
  sw.job = new_job(c);
  while (emel_job_poll(sw.job, NULL) < EMEL_JOB_COMPLETED) (void)emel_job_step(sw.job, UINT64_MAX, NULL, NULL);
  emel_job_progress p = EMEL_JOB_PROGRESS_INIT();
  (void)emel_job_poll(sw.job, &p);
  ck_assert_uint_le(p.bytes_done, p.bytes_total);
  ck_assert_uint_eq(p.bytes_done, staged_expected());
  return p;
}

static uint64_t all_bytes(void) {
  uint64_t total = 0;
  for (int i = 0; i < N; i++) total += SIZE[i];
  return total;
}

/* Guards against a staged job whose bytes_done moved only when whole tensors
 * completed: a big tensor's delivery (seconds for 1 GiB) showed no progress,
 * and emel-load's bar stalled. Each accepted window counts at once (a poll
 * from the consumer sees the windows delivered so far, strictly inside the
 * tensor), and the end counts each tensor once: bytes_done == bytes_total,
 * not a ready tensor's size added again over its streamed windows. */
START_TEST(staged_job_progress_moves_window_by_window) {
  attach_staged(0);
  const uint32_t big[] = {1}; /* 300000 bytes: 74 windows of a page (4 KiB pages) */
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.indices = big, .count = 1);
  emel_job_progress p = run_watched(&c, 0, 0, 0);
  ck_assert_int_eq(p.state, EMEL_JOB_COMPLETED);
  ck_assert_int_ge(sw.windows[1], 3);
  ck_assert_uint_eq(sw.inside, (unsigned)sw.windows[1] - 1); /* every poll after the first window */
  ck_assert_uint_eq(p.bytes_done, SIZE[1]);
  ck_assert_uint_eq(p.bytes_total, SIZE[1]);
  emel_job_destroy(sw.job);
  /* Every tensor: units of several small ones and big ones alone. */
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  c = (emel_job_config)EMEL_JOB_CONFIG_INIT();
  p = run_watched(&c, 0, 0, 0);
  ck_assert_int_eq(p.state, EMEL_JOB_COMPLETED);
  ck_assert_uint_eq(p.tensors_done, N);
  ck_assert_uint_eq(p.bytes_done, all_bytes());
  ck_assert_uint_eq(p.bytes_total, all_bytes());
  emel_job_destroy(sw.job);
}
END_TEST

static int mid_calls;
static void count_mid_progress(void *user, const emel_job_progress *p) {
  (void)user;
  if (p->state == EMEL_JOB_RUNNING && p->bytes_done > 0 && p->bytes_done < p->bytes_total) mid_calls++;
}

static int slow_consume(void *user, uint32_t tensor, uint64_t offset, uint64_t bytes, const void *data) {
  const struct timespec ms = {0, 1000000};
  nanosleep(&ms, NULL); /* a window takes over the interval */
  return watch_consume(user, tensor, offset, bytes, data);
}

/* Guards against on_progress coming only after a unit: a callback-only caller
 * (no polling) of a staged job saw nothing during a long tensor's delivery. With
 * a 1 ms interval and windows slower than that, it is called between windows,
 * inside the tensor; with interval 0 ("after every unit") it is not. */
START_TEST(staged_job_on_progress_is_called_inside_a_long_tensor) {
  attach_staged(0);
  watcher.consume = slow_consume;
  const uint32_t big[] = {1}; /* 74 windows */
  for (int interval = 1; interval >= 0; interval--) {
    mid_calls = 0;
    emel_job_config c = EMEL_JOB_CONFIG_INIT(.indices = big, .count = 1, .on_progress = count_mid_progress,
                                             .progress_interval_ms = (uint32_t)interval);
    emel_job_progress p = run_watched(&c, 0, 0, 0);
    ck_assert_int_eq(p.state, EMEL_JOB_COMPLETED);
    if (interval) ck_assert_int_ge(mid_calls, 10);
    else ck_assert_int_eq(mid_calls, 0);
    emel_job_destroy(sw.job);
    ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  }
}
END_TEST

/* Guards against a consumer failure or a cancel inside a tensor leaving that
 * tensor's accepted windows in bytes_done (progress above what is resident;
 * for a continuing job, above bytes_total by the end): it leaves with them, and
 * bytes_done is the ready tensors' bytes. */
START_TEST(staged_job_failure_or_cancel_mid_tensor_gives_its_windows_back) {
  attach_staged(0);
  /* Tensor 6 (70000 bytes, a unit of its own) fails at its 3rd window. Fatal:
   * everything is released, bytes_done 0. */
  emel_job_config c = EMEL_JOB_CONFIG_INIT();
  emel_job_progress p = run_watched(&c, 6, 3, 1);
  ck_assert_int_eq(p.state, EMEL_JOB_FAILED);
  ck_assert_uint_eq(sw.accepted[6], 2 * (uint64_t)sysconf(_SC_PAGESIZE));
  ck_assert_uint_eq(p.bytes_done, 0);
  emel_job_destroy(sw.job);
  /* Continuing: its windows leave, the tensors after it (2, 4) count as they go. */
  c = (emel_job_config)EMEL_JOB_CONFIG_INIT(.flags = EMEL_JOB_CONTINUE_ON_FAILURE);
  p = run_watched(&c, 6, 3, 1);
  ck_assert_int_eq(p.state, EMEL_JOB_COMPLETED);
  ck_assert_uint_eq(p.tensors_failed, 1);
  ck_assert_uint_gt(sw.windows[4], 3);
  ck_assert_uint_eq(p.bytes_done, all_bytes() - SIZE[6]);
  emel_job_destroy(sw.job);
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  /* Cancelled at the 3rd window of tensor 4 (the last, 150000 bytes): all but it ready. */
  c = (emel_job_config)EMEL_JOB_CONFIG_INIT();
  p = run_watched(&c, 4, 3, 2);
  ck_assert_int_eq(p.state, EMEL_JOB_CANCELLED);
  ck_assert_uint_eq(sw.accepted[4], 3 * (uint64_t)sysconf(_SC_PAGESIZE));
  ck_assert_uint_eq(p.bytes_done, all_bytes() - SIZE[4]);
  emel_job_destroy(sw.job);
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  /* Cancelled inside a unit of several (3, 5, 0, 7): after tensor 0's window,
   * tensor 7's is refused; 1, 3, 5, 0 ready. */
  c = (emel_job_config)EMEL_JOB_CONFIG_INIT();
  p = run_watched(&c, 0, 1, 2);
  ck_assert_int_eq(p.state, EMEL_JOB_CANCELLED);
  ck_assert_uint_eq(p.bytes_done, SIZE[1] + SIZE[3] + SIZE[5] + SIZE[0]);
  emel_job_destroy(sw.job);
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  /* Cancelled inside the first tensor: nothing ready, nothing counted. */
  c = (emel_job_config)EMEL_JOB_CONFIG_INIT();
  p = run_watched(&c, 1, 5, 2);
  ck_assert_int_eq(p.state, EMEL_JOB_CANCELLED);
  ck_assert_uint_eq(p.bytes_done, 0);
  emel_job_destroy(sw.job);
}
END_TEST

/* The background run's consumer: no assertions off the test thread; it only
 * takes its time a little, so the poller sees the delivery. */
static int count_only_consume(void *user, uint32_t tensor, uint64_t offset, uint64_t bytes, const void *data) {
  (void)user;
  (void)tensor;
  (void)offset;
  (void)bytes;
  (void)data;
  sched_yield();
  return 0;
}

/* A thread polling a background staged job: bytes_done never falls and never
 * passes bytes_total (no unit end that adds a tensor's size before taking its
 * streamed windows back, or the other way round). */
static atomic_int poll_stop;
static atomic_uint poll_falls, poll_over;

static void *poll_staged(void *arg) {
  emel_job *job = arg;
  uint64_t last = 0;
  while (!atomic_load(&poll_stop)) {
    emel_job_progress p = EMEL_JOB_PROGRESS_INIT();
    const emel_job_state st = emel_job_poll(job, &p);
    if (p.bytes_done < last) atomic_fetch_add(&poll_falls, 1);
    if (p.bytes_done > p.bytes_total) atomic_fetch_add(&poll_over, 1);
    last = p.bytes_done;
    if (st >= EMEL_JOB_COMPLETED) break;
    sched_yield();
  }
  return NULL;
}

/* Guards against a momentary overcount or dip at a unit's end, seen by
 * another thread, in a job that succeeds (a race: a unit end that takes a
 * tensor's windows back, then adds its size, was caught in 2 runs of 3 with a
 * spin between the two). */
START_TEST(staged_job_progress_polled_from_another_thread_never_falls) {
  attach_staged(1);
  memset(&sw, 0, sizeof sw);
  atomic_store(&poll_stop, 0);
  atomic_store(&poll_falls, 0);
  atomic_store(&poll_over, 0);
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.options = &staged_options, .chunk_bytes = CHUNK);
  watcher.consume = count_only_consume;
  sw.job = new_job(&c);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, poll_staged, sw.job), 0);
  ck_assert_int_eq(emel_job_start(sw.job, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_wait(sw.job, -1), EMEL_JOB_COMPLETED);
  atomic_store(&poll_stop, 1);
  ck_assert_int_eq(pthread_join(th, NULL), 0);
  emel_job_progress p = EMEL_JOB_PROGRESS_INIT();
  (void)emel_job_poll(sw.job, &p);
  ck_assert_uint_eq(p.bytes_done, all_bytes());
  const unsigned falls = atomic_load(&poll_falls), over = atomic_load(&poll_over);
  ck_assert_uint_eq(falls, 0);
  ck_assert_uint_eq(over, 0);
  emel_job_destroy(sw.job);
}
END_TEST

static Suite *load_job_suite(void) {
  Suite *s = suite_create("load_job");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, cooperative_job_loads_every_tensor_in_file_order);
  tcase_add_test(tc, priority_list_goes_first_then_file_order);
  tcase_add_test(tc, cancel_after_every_step_leaves_nothing_half_resident);
  tcase_add_test(tc, cancel_after_every_step_of_a_populated_mapping);
  tcase_add_test(tc, populated_piece_failure_is_named_as_a_populate);
  tcase_add_test(tc, background_job_completes_and_signals_its_fd);
  tcase_add_test(tc, background_cancel_from_another_thread);
  tcase_add_test(tc, background_cancel_from_a_signal_handler);
  tcase_add_test(tc, wait_times_out_while_the_job_runs);
  tcase_add_test(tc, wait_returns_when_every_wakeup_is_lost);
  tcase_add_test(tc, a_job_only_waited_for_signals_its_end_alone);
  tcase_add_test(tc, destroying_a_running_job_cancels_and_joins_it);
  tcase_add_test(tc, thread_that_does_not_start_leaves_the_job_to_step);
  tcase_add_test(tc, failure_fails_the_job_and_releases_the_others);
  tcase_add_test(tc, continue_on_failure_reports_each_failure_against_its_tensor);
  tcase_add_test(tc, held_tensors_are_busy_to_loads_from_outside);
  tcase_add_test(tc, mapped_job_loads_whole_tensors);
  tcase_add_test(tc, progress_callback_runs_at_most_once_per_interval);
  tcase_add_test(tc, big_pieces_use_the_read_lanes_and_huge_pages);
  tcase_add_test(tc, every_platform_call_of_a_job_failed_once);
  tcase_add_test(tc, a_piece_is_never_larger_than_the_chunk);
  tcase_add_test(tc, cancel_after_the_last_unit_completes_the_job);
  tcase_add_test(tc, wait_keeps_waiting_after_a_failed_event_wait);
  tcase_add_test(tc, a_file_cut_under_a_populated_job_is_file_changed);
  tcase_add_test(tc, a_window_of_whole_tensors_uses_the_lanes);
  tcase_add_test(tc, threads_sets_the_lanes_of_read_units);
  tcase_add_test(tc, lanes_take_runs_so_a_late_lane_holds_nothing_back);
  tcase_add_test(tc, buffered_ring_lanes_read_no_part_ahead);
  tcase_add_test(tc, budget_cut_pieces_still_use_the_lanes);
  tcase_add_test(tc, staged_job_progress_moves_window_by_window);
  tcase_add_test(tc, staged_job_failure_or_cancel_mid_tensor_gives_its_windows_back);
  tcase_add_test(tc, staged_job_on_progress_is_called_inside_a_long_tensor);
  tcase_add_test(tc, staged_job_progress_polled_from_another_thread_never_falls);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(load_job_suite)

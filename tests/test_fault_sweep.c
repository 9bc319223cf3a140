/* Fault-injection sweep: a full model load, once per injected fault.
 *
 * For each scenario (strategy x options that change the calls made, single
 * file and split), a clean run counts the calls of every platform operation.
 * Then, for every operation, every call index k and every errno that call can
 * really return (and short transfers for reads), the k-th call fails and a
 * full load runs: open the model, load every tensor, evict all, close. After
 * each run: the load succeeded (where a retry is right) or ended with a named
 * error that belongs to that operation; nothing is outstanding (fds, mappings,
 * locked ranges, allocations, pool slots); no tensor was caught between
 * states; and a clean load in the same process succeeds.
 * Job scenarios run one load job over every tensor instead (stepped a unit
 * at a time, or on its own thread), fail each of its calls (the job's own
 * event and clock ops too) and also cancel it after each of its units; then
 * a next job over what it left must load it. Their fault runs are sampled
 * one in JOB_STRIDE; EMEL_SWEEP_ONLY=NAME runs one scenario, and
 * EMEL_SWEEP_CALLS=1 prints each scenario's clean load's calls per op (what a
 * scenario's runs are made of, when one grows slow).
 * Prints "fault runs: N, leaks: 0, inconsistent: 0".
 *
 * Sampling: EMEL_SWEEP_STRIDE=S (default 1, every run) makes each run happen
 * with probability 1/S, chosen by a hash of the run's place and a seed
 * (EMEL_SWEEP_SEED, default: new each process, printed), so sanitizer and
 * valgrind builds, tens of times slower, cover a different sample each time
 * and a failure is reproduced by giving its seed back. The clean load of
 * every scenario always runs.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "emel/io_staged.h"
#include "emel/job.h"
#include "emel/model.h"
#include "fault_platform.h"
#include "gguf_writer.h"

#ifndef EMEL_TEST_WORKDIR
#define EMEL_TEST_WORKDIR "."
#endif

/* JOB_STEP: one load job over every tensor, stepped a unit at a time on this
 * thread; JOB_BACKGROUND: the same job on its own thread (stepped here when
 * it cannot start). */
typedef enum { LOAD_EACH, LOAD_BATCH, LOAD_TENSOR_BATCH, JOB_STEP, JOB_BACKGROUND } load_mode;

/* Job units: tensors of the sweep's models are about 20 KiB, so each is moved
 * in pieces (a fault or a cancel lands between or inside pieces). */
enum { JOB_CHUNK = 8192 };

typedef struct scenario {
  const char *name;
  emel_strategy strategy;
  unsigned flags;
  load_mode mode;
  int split;
  uint32_t alignment;
  uint32_t threads; /* read strategy lanes, every window split (0: the default config) */
} scenario;

static const scenario scenarios[] = {
    {"mmap", EMEL_STRATEGY_MMAP, 0, LOAD_EACH, 0, 32, 0},
    {"mmap+populate", EMEL_STRATEGY_MMAP, EMEL_LOAD_POPULATE, LOAD_EACH, 0, 32, 0},
    {"mmap+populate+lock", EMEL_STRATEGY_MMAP, EMEL_LOAD_POPULATE | EMEL_LOAD_LOCK, LOAD_EACH, 0, 32, 0},
    {"mmap split", EMEL_STRATEGY_MMAP, EMEL_LOAD_POPULATE, LOAD_EACH, 1, 32, 0},
    {"read", EMEL_STRATEGY_READ, 0, LOAD_EACH, 0, 32, 0},
    {"read+drop-cache", EMEL_STRATEGY_READ, EMEL_LOAD_DROP_CACHE, LOAD_EACH, 0, 32, 0},
    {"read+direct", EMEL_STRATEGY_READ, EMEL_LOAD_DIRECT, LOAD_EACH, 0, 4096, 0},
    {"read batch", EMEL_STRATEGY_READ, 0, LOAD_BATCH, 0, 32, 0},
    {"read split", EMEL_STRATEGY_READ, 0, LOAD_EACH, 1, 32, 0},
    {"read batch threads", EMEL_STRATEGY_READ, 0, LOAD_TENSOR_BATCH, 0, 32, 2},
    {"read split threads", EMEL_STRATEGY_READ, EMEL_LOAD_DROP_CACHE, LOAD_TENSOR_BATCH, 1, 32, 3},
    {"read direct threads", EMEL_STRATEGY_READ, EMEL_LOAD_DIRECT, LOAD_TENSOR_BATCH, 0, 4096, 2},
    {"job step read", EMEL_STRATEGY_READ, 0, JOB_STEP, 0, 32, 0},
    {"job background read", EMEL_STRATEGY_READ, 0, JOB_BACKGROUND, 0, 32, 0},
    {"job step mmap+populate", EMEL_STRATEGY_MMAP, EMEL_LOAD_POPULATE, JOB_STEP, 0, 32, 0},
    {"job background read direct", EMEL_STRATEGY_READ, EMEL_LOAD_DIRECT, JOB_BACKGROUND, 0, 4096, 2},
    /* a ring of 4 x 16 KiB: a tensor is a few windows, the reader overlaps the consumer */
    {"staged", EMEL_STRATEGY_STAGED, 0, LOAD_EACH, 0, 32, 0},
    {"staged+direct", EMEL_STRATEGY_STAGED, EMEL_LOAD_DIRECT, LOAD_EACH, 0, 4096, 0},
    {"staged batch", EMEL_STRATEGY_STAGED, 0, LOAD_TENSOR_BATCH, 0, 32, 0},
    /* ...whose consumer's k-th call also fails, for every k (split: two files) */
    {"staged failing consumer", EMEL_STRATEGY_STAGED, 0, LOAD_TENSOR_BATCH, 1, 32, 0},
    /* ...and a load job over it (a tensor a unit), cancelled after each unit
     * too, and by its consumer at each window (inside a tensor's delivery) */
    {"job step staged", EMEL_STRATEGY_STAGED, 0, JOB_STEP, 0, 32, 0},
    /* a batch's populates on lanes (threads), two files */
    {"mmap+populate batch lanes", EMEL_STRATEGY_MMAP, EMEL_LOAD_POPULATE, LOAD_TENSOR_BATCH, 1, 32, 0},
};

/* The ring engine of the read strategy and of the staged reader (io_uring, or
 * the fault platform's emulation): its calls and each of its completions fail,
 * shorten or are interrupted. The scenarios above read with pread, as on a
 * machine without io_uring. */
static const scenario ring_scenarios[] = {
    {"read ring", EMEL_STRATEGY_READ, 0, LOAD_EACH, 0, 32, 0},
    {"read ring direct", EMEL_STRATEGY_READ, EMEL_LOAD_DIRECT, LOAD_EACH, 0, 32, 0},
    {"read ring batch threads", EMEL_STRATEGY_READ, EMEL_LOAD_DROP_CACHE, LOAD_TENSOR_BATCH, 1, 32, 2},
    {"job step read ring", EMEL_STRATEGY_READ, 0, JOB_STEP, 0, 32, 0},
    /* the staged reader's ring: 2 reads (8 + 4 KiB) of a 12 KiB window in flight */
    {"staged ring", EMEL_STRATEGY_STAGED, 0, LOAD_EACH, 0, 32, 0},
    {"staged ring direct", EMEL_STRATEGY_STAGED, EMEL_LOAD_DIRECT, LOAD_EACH, 0, 4096, 0},
    {"staged ring batch", EMEL_STRATEGY_STAGED, 0, LOAD_TENSOR_BATCH, 1, 32, 0},
};

enum { SCENARIOS = sizeof scenarios / sizeof *scenarios, RING_SCENARIOS = sizeof ring_scenarios / sizeof *ring_scenarios };

static const scenario *scenario_at(size_t i) { return i < SCENARIOS ? &scenarios[i] : &ring_scenarios[i - SCENARIOS]; }

static int uses_ring(const scenario *s) {
  return (uintptr_t)s >= (uintptr_t)ring_scenarios && (uintptr_t)s < (uintptr_t)(ring_scenarios + RING_SCENARIOS);
}

/* The errnos each operation can really return, and the codes a failure of it
 * may end a load with (EMEL_OK: the library retried or the call was advice). */
typedef struct op_faults {
  int errs[5];
  emel_status codes[6];
} op_faults;

static const op_faults faults_of[FP_OP_COUNT] = {
    /* EINVAL: a filesystem without O_DIRECT (direct loads fall back to buffered reads) */
    [FP_OPEN] = {{EACCES, EMFILE, ENOMEM, EIO, EINVAL}, {EMEL_OPEN_FAILED}},
    [FP_CLOSE] = {{EIO, EINTR}, {EMEL_OK}},
    /* fstat at the index, at every open and after every read transfer */
    [FP_FILE_IDENTITY] = {{EIO, ENOMEM, EOVERFLOW}, {EMEL_STAT_FAILED}},
    [FP_PREAD] = {{EIO, EINTR, EAGAIN, ENOMEM}, {EMEL_OK, EMEL_READ_FAILED}},
    [FP_PREADV] = {{EIO, EINTR, EAGAIN, ENOMEM}, {EMEL_OK, EMEL_READ_FAILED}},
    [FP_MAP] = {{ENOMEM, EACCES, EAGAIN, EMFILE}, {EMEL_MMAP_FAILED}},
    [FP_UNMAP] = {{EINVAL, ENOMEM}, {EMEL_OK, EMEL_MMAP_UNMAP_FAILED}},
    [FP_ADVISE] = {{EAGAIN, ENOMEM, EIO, EINTR}, {EMEL_OK, EMEL_MMAP_POPULATE_FAILED, EMEL_MMAP_ADVISE_FAILED}},
    [FP_FADVISE] = {{EINVAL, EIO}, {EMEL_OK}},
    [FP_LOCK] = {{ENOMEM, EPERM, EAGAIN}, {EMEL_MMAP_LOCK_FAILED}},
    [FP_UNLOCK] = {{ENOMEM, EINVAL}, {EMEL_OK, EMEL_MMAP_UNLOCK_FAILED}},
    [FP_ALLOC] = {{ENOMEM}, {EMEL_OUT_OF_MEMORY, EMEL_READ_ALLOC_FAILED}},
    /* a worker that cannot start leaves its runs to the calling thread; a failed join is counted */
    [FP_THREAD_START] = {{EAGAIN, ENOMEM, EPERM}, {EMEL_OK, EMEL_JOB_START_FAILED}},
    [FP_THREAD_JOIN] = {{EDEADLK, EINVAL, ESRCH}, {EMEL_OK}},
    /* the name tables' seed: a fallback seed is used, the load goes on */
    [FP_RANDOM] = {{EAGAIN, ENOSYS, EPERM}, {EMEL_OK}},
    /* A job that cannot have its thread or descriptor says so (and is then
     * stepped); the read lanes' threads fall back as above. */
    [FP_EVENT_OPEN] = {{EMFILE, ENFILE, ENOMEM, ENOSYS}, {EMEL_JOB_START_FAILED}},
    [FP_EVENT_CLOSE] = {{EIO, EINTR}, {EMEL_OK}},
    /* a lost wakeup or a failed wait: emel_job_wait returns, the caller waits again */
    [FP_EVENT_SIGNAL] = {{EAGAIN, EINVAL}, {EMEL_OK}},
    /* ...; the staging ring's handoff cannot go on without its wait */
    [FP_EVENT_WAIT] = {{EINTR, ENOMEM, EINVAL}, {EMEL_OK, EMEL_STAGED_HANDOFF_FAILED}},
    /* the clock reads 0 once (errno unused): only rates and timeouts see it */
    [FP_CLOCK_NS] = {{EINVAL}, {EMEL_OK}},
    /* no io_uring (old kernel, seccomp, io_uring_disabled) or none to be had: pread lanes */
    [FP_RING_OPEN] = {{ENOSYS, EPERM, ENOMEM, EMFILE}, {EMEL_OK}},
    [FP_RING_CLOSE] = {{EIO, EINTR}, {EMEL_OK}},
    [FP_RING_READ] = {{EBUSY, ENOMEM, EINTR, EAGAIN}, {EMEL_OK, EMEL_READ_FAILED}},
    [FP_RING_WAIT] = {{EINTR, EBUSY, ENOMEM, EBADR}, {EMEL_OK, EMEL_READ_FAILED}},
};

/* What a ring's completion can say instead of its bytes (besides a short
 * one and an empty one): a failure ends the load READ_FAILED, an interruption
 * is asked again. */
static const int completion_errs[] = {EIO, EINTR, EAGAIN, ENOSPC};

typedef struct tally {
  long runs, leaks, inconsistent, wrong_error, no_recovery;
  uint64_t place; /* every candidate run, sampled or not: its place in the sweep */
  double expected; /* runs the sampling should make, about */
} tally;

/* Job scenarios make several times the calls of a load (each unit is a
 * dispatch with its clock reads and wakeups): one run in JOB_STRIDE of theirs
 * (times EMEL_SWEEP_STRIDE) keeps the sweep's time within twice what it was. */
enum { JOB_STRIDE = 4 };

static uint64_t sweep_stride = 1, sweep_seed;

static uint64_t env_u64(const char *name, uint64_t fallback) {
  const char *v = getenv(name);
  if (!v || !*v) return fallback;
  char *end;
  unsigned long long x = strtoull(v, &end, 10);
  ck_assert_msg(*end == '\0', "%s=%s is not a whole number", name, v);
  return x;
}

/* splitmix64: places that are neighbours (call k and k+1 of one op) land far apart. */
static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static int sampled(tally *t, uint64_t extra) {
  uint64_t place = t->place++;
  const uint64_t stride = (sweep_stride ? sweep_stride : 1) * extra;
  t->expected += 1.0 / (double)stride;
  return stride <= 1 || mix(sweep_seed ^ mix(place)) % stride == 0;
}

static char single_path[512], split_path[512], direct_path[512];

static void write_models(void) {
  static const uint32_t types[] = {EMEL_GGML_TYPE_F16, EMEL_GGML_TYPE_Q4_K, EMEL_GGML_TYPE_Q8_0};
  snprintf(single_path, sizeof single_path, "%s/sweep.gguf", EMEL_TEST_WORKDIR);
  snprintf(direct_path, sizeof direct_path, "%s/sweep-4096.gguf", EMEL_TEST_WORKDIR);
  char prefix[512];
  snprintf(prefix, sizeof prefix, "%s/sweep-split", EMEL_TEST_WORKDIR);
  gw_split_path(split_path, sizeof split_path, prefix, 0, 2);
  for (int k = 0; k < 3; k++) {
    gw *w = gw_new();
    if (k == 1) gw_set_alignment(w, 4096);
    ck_assert_int_eq(gw_model_shape(w, 10, 200u << 10, types, 3), 0);
    ck_assert_int_eq(k == 2 ? gw_write_split(w, prefix, 2) : gw_write(w, k == 1 ? direct_path : single_path), 0);
    gw_free(w);
  }
}

static const char *path_of(const scenario *s) {
  return s->split ? split_path : s->alignment == 4096 ? direct_path : single_path;
}

static int consistent(emel_model *m) {
  emel_tensors *t = emel_model_tensors(m);
  uint32_t resident = 0;
  for (uint32_t i = 0; i < emel_tensors_count(t); i++) {
    emel_tensor_state st = emel_tensors_state(t, i);
    if (st != EMEL_TENSOR_BOUND && st != EMEL_TENSOR_RESIDENT && st != EMEL_TENSOR_EVICTED) return 0;
    emel_tensor_view v;
    if ((st == EMEL_TENSOR_RESIDENT) != (emel_tensors_view(t, i, &v, NULL) == EMEL_OK)) return 0;
    resident += st == EMEL_TENSOR_RESIDENT;
  }
  emel_io *io = emel_model_io(m);
  size_t live = emel_io_live(io, EMEL_STRATEGY_MMAP) + emel_io_live(io, EMEL_STRATEGY_READ) +
                emel_io_live(io, EMEL_STRATEGY_STAGED);
  return resident == emel_tensors_resident_count(t) && live == resident;
}

/* Loads every tensor through the boundary's batch call, binding each result as
 * caller storage is not possible, so the batch is checked on its own: every
 * granted residency is released, every refusal carries a named code. */
static emel_status load_batch(emel_model *m, const scenario *s, int *inconsistent) {
  emel_io *io = emel_model_io(m);
  const emel_gguf *g = emel_model_index(m);
  size_t n = emel_gguf_tensor_count(g);
  emel_io_request reqs[32];
  emel_io_result res[32];
  ck_assert_uint_le(n, 32);
  for (size_t i = n; i-- > 0;) { /* reversed, so the batch has to sort */
    const emel_gguf_tensor *t = emel_gguf_tensor_at(g, i);
    reqs[n - 1 - i] = (emel_io_request){.tensor = (uint32_t)i, .file_index = t->file_index, .offset = t->offset,
                                        .size = t->size, .strategy = s->strategy, .flags = s->flags};
  }
  emel_io_acquire_batch(io, reqs, res, n);
  emel_status first = EMEL_OK;
  size_t granted = 0;
  for (size_t i = 0; i < n; i++) {
    if (res[i].error.code == EMEL_OK) granted++;
    else if (first == EMEL_OK) first = res[i].error.code;
  }
  if (emel_io_live(io, s->strategy) != granted) *inconsistent = 1;
  for (size_t i = 0; i < n; i++)
    if (res[i].error.code == EMEL_OK && emel_io_release(io, res[i].handle, NULL) != EMEL_OK) first = EMEL_INTERNAL;
  if (emel_io_live(io, s->strategy) != 0) *inconsistent = 1;
  return first;
}

/* The staged scenarios' consumer: counts its calls, fails the fail_at-th
 * (0: none) with a code of its own, which the load must keep. */
enum { CONSUMER_CODE = 77 };
static unsigned consumer_calls, consumer_fail_at;
static uint64_t consumer_bytes;

/* A job scenario's consumer may also cancel the job at its
 * consumer_cancel_at-th call (inside a tensor's delivery, or at its end),
 * and counts the windows it is still given afterwards (there must be none). */
static emel_job *cancelling_job;
static unsigned consumer_cancel_at, windows_after_cancel;

static int sweep_consume(void *user, uint32_t tensor, uint64_t offset, uint64_t bytes, const void *data) {
  (void)user, (void)tensor, (void)offset, (void)data;
  ++consumer_calls;
  if (cancelling_job && consumer_cancel_at && consumer_calls > consumer_cancel_at) windows_after_cancel++;
  if (consumer_calls == consumer_fail_at) return CONSUMER_CODE;
  consumer_bytes += bytes;
  if (cancelling_job && consumer_calls == consumer_cancel_at) emel_job_cancel(cancelling_job);
  return 0;
}

static const emel_staged_consumer sweep_consumer = EMEL_STAGED_CONSUMER_INIT(.consume = sweep_consume);

/* The k-th unit's progress callback cancels the job (0: never): a cancel
 * after every unit, the same in both driving modes. */
typedef struct job_watch {
  emel_job *job;
  unsigned units, cancel_at;
} job_watch;

static void count_unit(void *user, const emel_job_progress *p) {
  job_watch *w = user;
  if (p->state == EMEL_JOB_RUNNING && ++w->units == w->cancel_at) emel_job_cancel(w->job);
}

/* The lanes a scenario's job units use (emel_job_config.threads): the
 * scenario's read lanes, else 1, so that how a unit is cut does not depend
 * on the machine's cores. */
static uint32_t job_threads(const scenario *s) { return s->threads ? s->threads : 1; }

/* Whether tensor i's bytes are held through the boundary: a read job reads
 * into buffers the table owns, except an O_DIRECT window of whole tensors
 * (a table batch), each at most a chunk. */
static int through_io(const scenario *s, emel_tensors *t, uint32_t i) {
  emel_tensor_info info;
  if (s->mode < JOB_STEP || s->strategy != EMEL_STRATEGY_READ) return 1;
  return (s->flags & EMEL_LOAD_DIRECT) && emel_tensors_info(t, i, &info) && info.span.size <= JOB_CHUNK;
}

/* States, views and residencies agree; a job's tensors are ready exactly when
 * resident, and each one not resident has its error recorded. */
static int job_consistent(const scenario *s, emel_model *m, emel_job *job, int finished) {
  emel_tensors *t = emel_model_tensors(m);
  size_t live = 0;
  for (uint32_t i = 0; i < emel_tensors_count(t); i++) {
    const emel_tensor_state st = emel_tensors_state(t, i);
    if (st != EMEL_TENSOR_BOUND && st != EMEL_TENSOR_RESIDENT && st != EMEL_TENSOR_EVICTED) return 0;
    emel_tensor_view v;
    if ((st == EMEL_TENSOR_RESIDENT) != (emel_tensors_view(t, i, &v, NULL) == EMEL_OK)) return 0;
    if (job && (st == EMEL_TENSOR_RESIDENT) != emel_job_tensor_ready(job, i)) return 0;
    if (finished && st != EMEL_TENSOR_RESIDENT && emel_tensors_last_error(t, i).code == EMEL_OK) return 0;
    live += st == EMEL_TENSOR_RESIDENT && through_io(s, t, i);
  }
  emel_io *io = emel_model_io(m);
  return live == emel_io_live(io, EMEL_STRATEGY_MMAP) + emel_io_live(io, EMEL_STRATEGY_READ) +
                     emel_io_live(io, EMEL_STRATEGY_STAGED);
}

/* Drives a job to its end (bounded: a job that never ends fails the run).
 * Returns its start's failure, else its result. */
static emel_status drive_job(const scenario *s, emel_job *job, int *inconsistent) {
  emel_status first = EMEL_OK;
  if (s->mode == JOB_BACKGROUND) {
    emel_error e;
    /* Watched, as an event loop watches it: every unit signals the descriptor, so each signal is swept. */
    (void)emel_job_fd(job);
    first = emel_job_start(job, &e);
    if (first != EMEL_OK && (first != EMEL_JOB_START_FAILED || e.os_errno == 0)) *inconsistent = 1;
    /* A wait may return early (a lost wakeup, a failed event_wait): wait again. */
    for (int n = 0; first == EMEL_OK && emel_job_poll(job, NULL) < EMEL_JOB_COMPLETED; n++) {
      if (n == 10000) return *inconsistent = 1, EMEL_INTERNAL;
      (void)emel_job_wait(job, 1000);
    }
  }
  for (int n = 0; emel_job_poll(job, NULL) < EMEL_JOB_COMPLETED; n++) {
    if (n == 10000) return *inconsistent = 1, EMEL_INTERNAL;
    (void)emel_job_step(job, 0, NULL, NULL);
  }
  const emel_status result = emel_job_result(job, NULL);
  return first != EMEL_OK ? first : result;
}

/* A job over every tensor of the model, cancelled after unit `cancel_at`
 * (0: never). When it does not complete, the faults are cleared and a second
 * job over the tensors it left must load them: the table is usable again. */
static emel_status job_load(fault_platform *fp, const scenario *s, emel_model *m, unsigned cancel_at, unsigned *units,
                            int *inconsistent) {
  emel_tensors *t = emel_model_tensors(m);
  emel_load_options lo = EMEL_LOAD_OPTIONS_INIT(.strategy = s->strategy, .flags = s->flags);
  if (s->strategy == EMEL_STRATEGY_STAGED) lo.consumer = &sweep_consumer;
  job_watch w = {.cancel_at = cancel_at};
  emel_job_config jc = EMEL_JOB_CONFIG_INIT(.options = &lo, .chunk_bytes = JOB_CHUNK, .on_progress = count_unit,
                                            .user = &w, .threads = job_threads(s));
  emel_error e;
  emel_status first = emel_job_create(&w.job, t, &jc, &e);
  if (first != EMEL_OK) return first;
  cancelling_job = w.job;
  first = drive_job(s, w.job, inconsistent);
  cancelling_job = NULL;
  const emel_job_state st = emel_job_poll(w.job, NULL);
  if (st < EMEL_JOB_COMPLETED) *inconsistent = 1;
  if (st == EMEL_JOB_CANCELLED && emel_job_result(w.job, NULL) != EMEL_CANCELLED) *inconsistent = 1;
  if (!job_consistent(s, m, w.job, 1)) *inconsistent = 1;
  emel_job_destroy(w.job);
  if (!job_consistent(s, m, NULL, 1)) *inconsistent = 1;
  if (units) *units = w.units;
  if (st == EMEL_JOB_COMPLETED && emel_tensors_resident_count(t) == emel_tensors_count(t)) return first;
  /* The next job loads what this one left. */
  fault_platform_clear_faults(fp);
  uint32_t rest[32], n = 0;
  for (uint32_t i = 0; i < emel_tensors_count(t) && n < 32; i++)
    if (emel_tensors_state(t, i) != EMEL_TENSOR_RESIDENT) rest[n++] = i;
  emel_job_config again = EMEL_JOB_CONFIG_INIT(.options = &lo, .indices = rest, .count = n, .chunk_bytes = JOB_CHUNK,
                                               .threads = job_threads(s));
  emel_job *next = NULL;
  if (emel_job_create(&next, t, &again, NULL) != EMEL_OK || emel_job_step(next, UINT64_MAX, NULL, NULL) != EMEL_OK ||
      emel_job_poll(next, NULL) != EMEL_JOB_COMPLETED || emel_tensors_resident_count(t) != emel_tensors_count(t))
    *inconsistent = 1;
  emel_job_destroy(next);
  if (!job_consistent(s, m, NULL, 1)) *inconsistent = 1;
  return first;
}

/* One full load; returns the first error (EMEL_OK if none). */
static emel_status full_load(fault_platform *fp, const scenario *s, unsigned cancel_at, unsigned *units,
                             int *inconsistent) {
  /* several chunks per tensor: faults land mid-transfer */
  emel_io_read_config rc = EMEL_IO_READ_CONFIG_INIT(.chunk_size = 16u << 10, .threads = s->threads,
                                                    .ring_request = 16u << 10);
  fp->no_ring = !uses_ring(s);
  fp->wait_cap_ms = 2; /* lost wakeups: see fault_platform.h */
  if (s->threads) rc.min_parallel_bytes = 1; /* every window spread over the lanes */
  /* Pools for the sweep's few tensors, not the default 65,536 slots: set up
   * and torn down in each of ~35,000 runs, they were most of the sweep's time. */
  rc.max_buffers = 64;
  const emel_io_mmap_config mc = EMEL_IO_MMAP_CONFIG_INIT(.max_mappings = 64);
  emel_model_config cfg = EMEL_MODEL_CONFIG_INIT(.platform = &fp->ops, .read = &rc, .mmap = &mc);
  emel_model *m;
  emel_error err;
  emel_status first = emel_model_open(&m, path_of(s), &cfg, &err);
  if (first != EMEL_OK) return first;
  consumer_calls = 0;
  if (s->strategy == EMEL_STRATEGY_STAGED) {
    emel_io_staged_config sc = EMEL_IO_STAGED_CONFIG_INIT(.budget = 64u << 10, .buffers = 4, .ring_request = 8192,
                                                       .max_residencies = 64);
    first = emel_io_staged_attach(emel_model_io(m), &sc, NULL);
    if (first != EMEL_OK) {
      emel_model_close(m);
      return first;
    }
  }
  if (s->mode == LOAD_BATCH) {
    first = load_batch(m, s, inconsistent);
  } else if (s->mode >= JOB_STEP) {
    first = job_load(fp, s, m, cancel_at, units, inconsistent);
    emel_status evicted = emel_tensors_evict_all(emel_model_tensors(m), NULL);
    if (first == EMEL_OK) first = evicted;
    if (!job_consistent(s, m, NULL, 0)) *inconsistent = 1;
  } else {
    emel_tensors *t = emel_model_tensors(m);
    emel_load_options lo = EMEL_LOAD_OPTIONS_INIT(.strategy = s->strategy, .flags = s->flags);
    if (s->strategy == EMEL_STRATEGY_STAGED) lo.consumer = &sweep_consumer;
    if (s->mode == LOAD_TENSOR_BATCH) {
      emel_status st[32];
      const uint32_t n = emel_tensors_count(t);
      ck_assert_uint_le(n, 32);
      first = emel_tensors_load_batch(t, NULL, n, &lo, st, NULL);
      for (uint32_t i = 0; i < n; i++)
        if ((st[i] == EMEL_OK) != (emel_tensors_state(t, i) == EMEL_TENSOR_RESIDENT)) *inconsistent = 1;
    }
    for (uint32_t i = 0; s->mode == LOAD_EACH && i < emel_tensors_count(t) && first == EMEL_OK; i++) {
      first = emel_tensors_load(t, i, &lo, NULL, NULL);
      if (first != EMEL_OK && emel_tensors_state(t, i) != EMEL_TENSOR_BOUND) *inconsistent = 1;
    }
    if (!consistent(m)) *inconsistent = 1;
    emel_status evicted = emel_tensors_evict_all(t, NULL);
    if (first == EMEL_OK) first = evicted;
    if (!consistent(m)) *inconsistent = 1;
  }
  emel_model_close(m);
  return first;
}

static int code_allowed(fp_op op, emel_status code) {
  for (int i = 0; i < 6; i++)
    if (faults_of[op].codes[i] == code && (i == 0 || code != EMEL_OK)) return 1;
  return 0;
}

/* op FP_OP_COUNT: the k-th completion of a ring, not a call. */
static void run_one(const scenario *s, fp_op op, uint64_t k, int err, int64_t short_len, tally *t) {
  if (!sampled(t, s->mode >= JOB_STEP ? JOB_STRIDE : 1)) return;
  fault_platform fp;
  fault_platform_init(&fp);
  if (op == FP_OP_COUNT) fault_platform_ring_completion(&fp, k, 1, err, short_len);
  else if (short_len >= 0 && op == FP_PREAD) fault_platform_short_read(&fp, k, 1, short_len);
  else if (short_len >= 0) fault_platform_short_readv(&fp, k, 1, short_len);
  else fault_platform_fail(&fp, op, k, err);
  int inconsistent = 0;
  emel_status code = full_load(&fp, s, 0, NULL, &inconsistent);
  t->runs++;
  int64_t outstanding = fault_platform_outstanding(&fp);
  if (outstanding != 0) {
    t->leaks++;
    fprintf(stderr, "LEAK %s: %s call %llu errno %d: %lld outstanding (fds %lld maps %lld allocs %lld rings %lld)\n",
            s->name, fp_op_name(op), (unsigned long long)k, err, (long long)outstanding, (long long)fp.open_fds,
            (long long)fp.live_maps, (long long)fp.live_allocs, (long long)fp.live_rings);
  }
  if (inconsistent) {
    t->inconsistent++;
    fprintf(stderr, "INCONSISTENT %s: %s call %llu errno %d\n", s->name, fp_op_name(op), (unsigned long long)k, err);
  }
  /* EINTR is retried and a short transfer continued; a transfer of nothing is
   * an end of file where the file said there was more. */
  const int ring_retry = (err == EINTR || err == EAGAIN) && (op == FP_RING_READ || op == FP_OP_COUNT);
  int expect_ok = short_len > 0 || ring_retry || (err == EINTR && (op == FP_PREAD || op == FP_PREADV || op == FP_RING_WAIT));
  int named = short_len == 0                 ? code == EMEL_READ_UNEXPECTED_EOF || code == EMEL_GGUF_TRUNCATED
              : op == FP_OP_COUNT ? code == EMEL_READ_FAILED
                                             : code_allowed(op, code);
  /* A direct read starts at the block holding the span: 7 bytes may end before
   * the span's first byte, which is the end of the file (as with pread). */
  if (short_len > 0 && (s->flags & EMEL_LOAD_DIRECT) && code == EMEL_READ_UNEXPECTED_EOF) expect_ok = 0, named = 1;
  if (expect_ok ? code != EMEL_OK : !named && code != EMEL_OK) {
    t->wrong_error++;
    fprintf(stderr, "WRONG ERROR %s: %s call %llu errno %d short %lld ended with %s\n", s->name, fp_op_name(op),
            (unsigned long long)k, err, (long long)short_len, emel_status_name(code));
  }
  /* The next load in the same process succeeds. */
  fault_platform_clear_faults(&fp);
  inconsistent = 0;
  code = full_load(&fp, s, 0, NULL, &inconsistent);
  if (code != EMEL_OK || inconsistent || fault_platform_outstanding(&fp) != 0) {
    t->no_recovery++;
    fprintf(stderr, "NO RECOVERY %s after %s call %llu errno %d: %s\n", s->name, fp_op_name(op), (unsigned long long)k,
            err, emel_status_name(code));
  }
}

/* The consumer fails its k-th call: the load ends with STAGED_CONSUMER_FAILED
 * keeping the consumer's code, nothing leaks, and the next load succeeds. */
static void run_consumer_fault(const scenario *s, unsigned k, tally *t) {
  if (!sampled(t, 1)) return;
  fault_platform fp;
  fault_platform_init(&fp);
  int inconsistent = 0;
  consumer_fail_at = k;
  const emel_status code = full_load(&fp, s, 0, NULL, &inconsistent);
  consumer_fail_at = 0;
  t->runs++;
  if (fault_platform_outstanding(&fp) != 0) {
    t->leaks++;
    fprintf(stderr, "LEAK %s: consumer call %u failed: %lld outstanding\n", s->name, k,
            (long long)fault_platform_outstanding(&fp));
  }
  if (inconsistent) {
    t->inconsistent++;
    fprintf(stderr, "INCONSISTENT %s: consumer call %u failed\n", s->name, k);
  }
  if (code != EMEL_STAGED_CONSUMER_FAILED) {
    t->wrong_error++;
    fprintf(stderr, "WRONG ERROR %s: consumer call %u failed, the load ended with %s\n", s->name, k,
            emel_status_name(code));
  }
  inconsistent = 0;
  if (full_load(&fp, s, 0, NULL, &inconsistent) != EMEL_OK || inconsistent || fault_platform_outstanding(&fp) != 0) {
    t->no_recovery++;
    fprintf(stderr, "NO RECOVERY %s after consumer call %u failed\n", s->name, k);
  }
}

/* The job cancelled after unit k: it ends cancelled, what was ready stays,
 * the rest is released and recorded, nothing leaks, and the next job
 * (job_load) loads the rest. After the last unit (k == units) there is no
 * next unit to stop: the job completes. */
static void run_cancel(const scenario *s, unsigned k, unsigned units, tally *t) {
  if (!sampled(t, 1)) return; /* every cancel: a few dozen runs */
  fault_platform fp;
  fault_platform_init(&fp);
  int inconsistent = 0;
  const emel_status code = full_load(&fp, s, k, NULL, &inconsistent);
  t->runs++;
  if (fault_platform_outstanding(&fp) != 0) {
    t->leaks++;
    fprintf(stderr, "LEAK %s: cancel after unit %u: %lld outstanding\n", s->name, k,
            (long long)fault_platform_outstanding(&fp));
  }
  if (inconsistent) {
    t->inconsistent++;
    fprintf(stderr, "INCONSISTENT %s: cancel after unit %u\n", s->name, k);
  }
  if (code != (k == units ? EMEL_OK : EMEL_CANCELLED)) {
    t->wrong_error++;
    fprintf(stderr, "WRONG ERROR %s: cancel after unit %u ended with %s\n", s->name, k, emel_status_name(code));
  }
}

/* The staged job's consumer cancels it at its k-th window: the next window
 * is refused (none delivered after the cancel), the job ends cancelled with
 * the tensors delivered wholly before it ready and the cut one and the rest
 * recorded CANCELLED (job_consistent), nothing leaks, and the next job loads
 * the rest. At the last window there is nothing left to cut: it completes.
 * Guards against a staged job that saw its cancel only between tensors. */
static void run_consumer_cancel(const scenario *s, unsigned k, unsigned calls, tally *t) {
  if (!sampled(t, 1)) return; /* every window: a few dozen runs */
  fault_platform fp;
  fault_platform_init(&fp);
  int inconsistent = 0;
  consumer_cancel_at = k;
  windows_after_cancel = 0;
  const emel_status code = full_load(&fp, s, 0, NULL, &inconsistent);
  consumer_cancel_at = 0;
  t->runs++;
  if (fault_platform_outstanding(&fp) != 0) {
    t->leaks++;
    fprintf(stderr, "LEAK %s: cancel at window %u: %lld outstanding\n", s->name, k,
            (long long)fault_platform_outstanding(&fp));
  }
  if (inconsistent || windows_after_cancel) {
    t->inconsistent++;
    fprintf(stderr, "INCONSISTENT %s: cancel at window %u (%u windows delivered after it)\n", s->name, k,
            windows_after_cancel);
  }
  if (code != (k == calls ? EMEL_OK : EMEL_CANCELLED)) {
    t->wrong_error++;
    fprintf(stderr, "WRONG ERROR %s: cancel at window %u ended with %s\n", s->name, k, emel_status_name(code));
  }
}

START_TEST(test_every_injected_fault_ends_named_leaks_nothing_and_the_next_load_succeeds) {
  write_models();
  tally t = {0, 0, 0, 0, 0, 0, 0.0};
  sweep_stride = env_u64("EMEL_SWEEP_STRIDE", 1);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  sweep_seed = env_u64("EMEL_SWEEP_SEED", mix((uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 20) ^ (uint64_t)getpid()) % 1000000000u);
  if (sweep_stride > 1)
    fprintf(stderr, "sweep sample: one run in %llu, seed %llu (again: EMEL_SWEEP_STRIDE=%llu EMEL_SWEEP_SEED=%llu)\n",
            (unsigned long long)sweep_stride, (unsigned long long)sweep_seed, (unsigned long long)sweep_stride,
            (unsigned long long)sweep_seed);
  /* EMEL_SWEEP_ONLY=NAME: that scenario alone (to repeat one finding). */
  const char *only = getenv("EMEL_SWEEP_ONLY");
  for (size_t si = 0; si < SCENARIOS + RING_SCENARIOS; si++) {
    const scenario *s = scenario_at(si);
    if (only && *only && strcmp(only, s->name) != 0) continue;
    fault_platform clean;
    fault_platform_init(&clean);
    int inconsistent = 0;
    unsigned units = 0;
    ck_assert_msg(full_load(&clean, s, 0, &units, &inconsistent) == EMEL_OK, "%s: clean load failed", s->name);
    ck_assert_int_eq(inconsistent, 0);
    if (getenv("EMEL_SWEEP_CALLS"))
      for (int op = 0; op < FP_OP_COUNT; op++)
        if (clean.calls[op]) printf("  %s %s: %llu\n", s->name, fp_op_name((fp_op)op), (unsigned long long)clean.calls[op]);
    /* Guards against a sweep blind to jobs: the fault platform counts (so
     * fails) the job's own ops, and its big tensors move in pieces. */
    if (s->mode >= JOB_STEP) {
      ck_assert_uint_gt(units, s->strategy == EMEL_STRATEGY_STAGED ? 9 : 20); /* staged: a tensor a unit */
      ck_assert_uint_gt(clean.calls[FP_CLOCK_NS], 0);
      if (s->mode == JOB_BACKGROUND) ck_assert_uint_eq(clean.calls[FP_EVENT_OPEN], 1);
      if (s->mode == JOB_BACKGROUND) ck_assert_uint_ge(clean.calls[FP_EVENT_SIGNAL], units);
      ck_assert_int_eq(fault_platform_outstanding(&clean), 0);
      for (unsigned k = 1; k <= units; k++) run_cancel(s, k, units, &t);
    }
    /* Guards against an mmap batch whose populates never reached a lane's thread (a sweep of nothing). */
    if (s->strategy == EMEL_STRATEGY_MMAP && s->mode == LOAD_TENSOR_BATCH)
      ck_assert_msg(clean.calls[FP_THREAD_START] > 0, "%s: no populate lanes", s->name);
    /* Guards against a staged scenario that never reaches its consumer. */
    if (s->strategy == EMEL_STRATEGY_STAGED) {
      ck_assert_uint_gt(consumer_calls, 10);
      ck_assert_uint_gt(clean.calls[FP_THREAD_START], 0);
      const unsigned calls = consumer_calls;
      const int consumer_faults = strcmp(s->name, "staged failing consumer") == 0;
      for (unsigned k = 1; consumer_faults && k <= calls; k++) run_consumer_fault(s, k, &t);
      for (unsigned k = 1; s->mode >= JOB_STEP && k <= calls; k++) run_consumer_cancel(s, k, calls, &t);
    }
    long before = t.runs;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int op = 0; op < FP_OP_COUNT; op++) {
      for (uint64_t k = 1; k <= clean.calls[op]; k++) {
        for (int e = 0; e < 5 && faults_of[op].errs[e]; e++) run_one(s, (fp_op)op, k, faults_of[op].errs[e], -1, &t);
        if (op == FP_PREAD || op == FP_PREADV) {
          run_one(s, (fp_op)op, k, 0, 0, &t);  /* a premature end of file... */
          run_one(s, (fp_op)op, k, 0, 7, &t);  /* ...and a short transfer */
        }
      }
    }
    for (uint64_t k = 1; k <= clean.completions; k++) { /* each ring completion: failed, interrupted, short */
      for (size_t e = 0; e < sizeof completion_errs / sizeof *completion_errs; e++)
        run_one(s, FP_OP_COUNT, k, completion_errs[e], -1, &t);
      run_one(s, FP_OP_COUNT, k, 0, 0, &t);
      run_one(s, FP_OP_COUNT, k, 0, 7, &t);
    }
    /* Guards against a ring scenario that silently read with pread (a sweep of nothing). */
    if (uses_ring(s)) ck_assert_msg(clean.calls[FP_RING_READ] > 0 && clean.completions > 0, "%s: no ring reads", s->name);
    uint64_t calls = 0;
    for (int op = 0; op < FP_OP_COUNT; op++) calls += clean.calls[op];
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "scenario %-20s %5ld fault runs over the %llu calls of a clean load, %.1f s\n", s->name,
            t.runs - before, (unsigned long long)calls, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  }
  fprintf(stderr, "fault runs: %ld of %llu, leaks: %ld, inconsistent: %ld\n", t.runs, (unsigned long long)t.place,
          t.leaks, t.inconsistent + t.no_recovery);
  /* A sweep that shrank (a scenario's clean load making far fewer calls) would pass vacuously. */
  if (!only || !*only) ck_assert_uint_gt(t.place, 4000);
  ck_assert_int_ge(t.runs, (long)(t.expected / 2));
  ck_assert_int_eq(t.leaks, 0);
  ck_assert_int_eq(t.inconsistent, 0);
  ck_assert_int_eq(t.no_recovery, 0);
  ck_assert_int_eq(t.wrong_error, 0);
}
END_TEST

static Suite *fault_sweep_suite(void) {
  Suite *s = suite_create("fault_sweep");
  TCase *tc = tcase_create("sweep");
  /* No Check timeout (0 disarms it): CTest's TIMEOUT on the test bounds the run, set per build from measured times. */
  tcase_set_timeout(tc, 0);
  tcase_add_test(tc, test_every_injected_fault_ends_named_leaks_nothing_and_the_next_load_succeeds);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(fault_sweep_suite)

/* The read strategy's entry points: pools allocated once at attach, each
 * request dispatched through statecharts/io_read.rl, batches prepared,
 * sorted, coalesced into runs and spread over lanes here (planning only:
 * every read and every failure route is the machine's). The concurrency
 * rules are in include/emel/io_read.h. */
#include "read.h"
#include "lanes.h"
#include "emel/report.h"
#include "emel/util/struct_size.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const emel_error broken_error = {.code = EMEL_INTERNAL, .os_errno = 0};

/* Feeds `event` to a machine where it rests (prepared, or a run between
 * TRANSFER_RUN and SETTLE_RUN). */
static void resume(io_read_ctx *m, int event) {
  emel_status s = emel_machine_dispatch(&m->core, &emel_io_read_desc, m, event);
  if (s != EMEL_OK) m->error = (emel_error){.code = s, .os_errno = 0}; /* an action defect, reported as such */
}

static void dispatch(io_read_ctx *m, int event) {
  emel_machine_init(&m->core, &emel_io_read_desc);
  resume(m, event);
}

/* Each request has a machine of its own, so the strategy keeps what one of
 * them broke (machine.h): the request may hold a slot it never returns, and
 * every later request is refused with EMEL_INTERNAL. Calling thread only. */
static int note_broken(io_read *self, const io_read_ctx *m) {
  if (emel_machine_broken(&m->core, &emel_io_read_desc)) self->broken = 1;
  return self->broken;
}

/* Adds a lane's transfer counters to the strategy's (calling thread, once the lane is done: pending 0). */
static void merge_lane(io_read *self, read_lane *lane) {
  emel_io_read_stats *to = &self->stats, *from = &lane->stats;
  to->bytes_read += from->bytes_read;
  to->preads += from->preads;
  to->eintr_retries += from->eintr_retries;
  to->short_reads += from->short_reads;
  to->cache_drops += from->cache_drops;
  to->cache_drop_failures += from->cache_drop_failures;
  to->ring_runs += from->ring_runs;
  to->ring_reads += from->ring_reads;
  to->ring_opens += from->ring_opens;
  to->ring_fallbacks += from->ring_fallbacks;
  if (from->ring_errno) to->ring_errno = from->ring_errno;
  memset(from, 0, sizeof *from);
}

/* One request: PREPARE; a member the chart left prepared is read now, and a
 * transfer that came to rest is settled (the chart says which state takes
 * which request). */
static void read_acquire(void *opaque, const emel_io_request *request, emel_io_result *result) {
  io_read *self = opaque;
  if (self->broken) {
    result->error = broken_error;
    return;
  }
  read_member member = {.request = request, .result = result, .fd = -1};
  io_read_ctx m = {.self = self, .lane = &self->lanes[0], .member = &member};
  dispatch(&m, IO_READ_EV_PREPARE);
  if (io_read_accepts(m.core.cs, IO_READ_EV_READ_NOW)) resume(&m, IO_READ_EV_READ_NOW);
  if (io_read_accepts(m.core.cs, IO_READ_EV_SETTLE_RUN)) resume(&m, IO_READ_EV_SETTLE_RUN);
  merge_lane(self, &self->lanes[0]);
  (void)note_broken(self, &m);
  if (m.error.code != EMEL_OK) result->error = m.error;
}

static int by_file_then_offset(const void *a, const void *b) {
  const emel_io_request *x = ((const read_member *)a)->request, *y = ((const read_member *)b)->request;
  if (x->file_index != y->file_index) return x->file_index < y->file_index ? -1 : 1;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  return 0;
}

/* Whether `next` (sorted after `prev`) can share prev's run: same file and
 * options, buffered, not overlapping, at most EMEL_IO_READ_MAX_GAP apart. */
static int joins_run(const read_member *prev, const read_member *next) {
  const emel_io_request *p = prev->request, *n = next->request;
  const uint64_t prev_end = p->offset + p->size;
  return p->file_index == n->file_index && p->flags == n->flags && prev->mode == READ_BUFFERED &&
         next->mode == READ_BUFFERED && n->offset >= prev_end && n->offset - prev_end <= EMEL_IO_READ_MAX_GAP;
}

static uint64_t run_bytes(const io_read_ctx *run) { return run->run_end - run->run_start; }

/* Lanes for a window of `bytes`: each gets at least min_parallel bytes. */
static uint32_t lanes_for(const io_read *self, uint64_t bytes, size_t members, int direct) {
  uint64_t n = bytes / self->min_parallel;
  uint32_t most = direct ? self->direct_lanes : self->copy_lanes;
  if (self->forced_lanes) { /* a load job sized its parts to the lanes it chose */
    n = self->forced_lanes;
    most = self->lane_count;
  }
  if (n > most) n = most;
  if (n > members) n = members;
  return n > 1 ? (uint32_t)n : 1;
}

/* Cuts the sorted members into runs: coalesced while they join and the run
 * stays within max_run bytes (a single member may exceed it). */
static void plan_runs(io_read *self, size_t prepared, uint64_t max_run) {
  self->run_count = 0;
  for (size_t i = 0, j; i < prepared; i = j) {
    read_member *first = &self->batch[i];
    uint64_t end = first->request->offset + first->request->size;
    for (j = i + 1; j < prepared && joins_run(&self->batch[j - 1], &self->batch[j]); j++) {
      const uint64_t next_end = self->batch[j].request->offset + self->batch[j].request->size;
      if (next_end - first->request->offset > max_run) break;
      self->stats.gap_bytes += self->batch[j].request->offset - end;
      end = next_end;
    }
    self->stats.coalesced += j - i - 1;
    io_read_ctx *run = &self->runs[self->run_count++];
    *run = (io_read_ctx){.self = self, .run = first, .run_count = j - i};
    run->run_start = first->request->offset;
    run->run_end = end;
  }
}

typedef struct run_order {
  uint64_t bytes;
  size_t index;
} run_order;

static int larger_first(const void *a, const void *b) {
  const run_order *x = a, *y = b;
  if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* Largest run first to the least loaded of `lanes` lanes (balanced within
 * one run): which lanes have work (so a thread is started for them). The
 * lanes then take the runs in that order, each the next one when it is done
 * with its own (transfer_lane). */
static void assign_lanes(io_read *self, uint32_t lanes) {
  run_order order[EMEL_IO_READ_BATCH_WINDOW];
  for (uint32_t l = 0; l < self->lane_count; l++) self->lanes[l].load = 0;
  for (size_t r = 0; r < self->run_count; r++) order[r] = (run_order){run_bytes(&self->runs[r]), r};
  qsort(order, self->run_count, sizeof *order, larger_first);
  for (size_t k = 0; k < self->run_count; k++) {
    uint32_t best = 0;
    for (uint32_t l = 1; l < lanes; l++)
      if (self->lanes[l].load < self->lanes[best].load) best = l;
    self->lanes[best].load += order[k].bytes;
    self->run_lane[k] = (uint32_t)order[k].index;
  }
  atomic_store_explicit(&self->next_run, 0, memory_order_relaxed); /* published by thread_start */
}

io_read_ctx *emel_read_take_run(read_lane *lane) {
  io_read *self = lane->self;
  const size_t k = atomic_fetch_add_explicit(&self->next_run, 1, memory_order_relaxed);
  if (k >= self->run_count) return NULL;
  io_read_ctx *run = &self->runs[self->run_lane[k]];
  run->lane = lane;
  run->lane_next = NULL;
  if (lane->last_taken) lane->last_taken->lane_next = run;
  lane->last_taken = run;
  return run;
}

/* A lane's share of the window: TRANSFER_RUN of each run it takes, the next
 * untaken one (largest first) until none is left, so lanes that start late or
 * run slow take less and the window ends when its last run does, not when a
 * fixed share of a delayed lane does. A run the lane's ring took ahead (to
 * read into it while the current one ends, see ring_fill) is the lane's next
 * one: every run the lane took, it transfers, so none is skipped and none is
 * read twice. The runs then rest in transferred / transfer_failed until the
 * calling thread settles them. Runs on a worker thread (see the rules in
 * io_read.h): a run is one lane's (the counter hands each out once), and its
 * lane is set before its transfer or any read ahead into it. */
static void *transfer_lane(void *arg) {
  read_lane *lane = arg;
  lane->last_taken = lane->taken_ahead = NULL;
  for (;;) {
    io_read_ctx *run = lane->taken_ahead;
    if (run) lane->taken_ahead = run->lane_next;
    else if (!(run = emel_read_take_run(lane))) break;
    dispatch(run, IO_READ_EV_TRANSFER_RUN);
  }
  lane->last_taken = lane->taken_ahead = NULL;
  return NULL;
}

/* A parked worker or a waiting caller never waits longer than this for a
 * wakeup: one that was lost (a failed event_signal) costs a slice, not a hang.
 * A worker given no window for LANE_LINGER_SLICES waits retires (its thread
 * returns; the next window starts another), so an idle boundary wakes no one.
 * Before it waits, a worker (and the caller, for the lanes' end) spins
 * LANE_SPIN pauses (about 0.25 ms here): a load job's next unit comes within
 * that, and a wakeup through the kernel per 8 MiB unit cost ~10 % of a job's
 * throughput on 2 cores (job_vs_batch 0.87 -> 0.96-1.03, measured). */
enum { LANE_WAIT_SLICE_MS = 100, LANE_LINGER_SLICES = 10, LANE_SPIN = 8192 };
enum { LANE_PARKED = 0, LANE_CLAIMED = 1, LANE_RETIRED = 2 };

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Spins until *word differs from `from` or quit is set (then 1), at most LANE_SPIN pauses (then 0). */
static int spin_while(const atomic_uint *word, unsigned from, const atomic_int *quit) {
  for (int i = 0; i < LANE_SPIN; i++) {
    if (atomic_load_explicit(word, memory_order_acquire) != from) return 1;
    if (quit && atomic_load_explicit(quit, memory_order_acquire)) return 1;
    cpu_relax();
  }
  return 0;
}

/* One bounded wait on `fd`. A failed wait (not EINTR) is no answer: the slice
 * is slept without the descriptor, so a broken descriptor costs time, not a spin. */
static void wait_slice(const emel_platform_ops *p, int fd) {
  const int r = p->event_wait(p->user, fd, LANE_WAIT_SLICE_MS);
  if (r < 0 && r != -EINTR) (void)p->event_wait(p->user, -1, LANE_WAIT_SLICE_MS);
}

/* A parked lane's thread: transfers its share of each window it is given (a
 * new generation, read with acquire: the window was published before it was
 * bumped), takes its count off `pending` and parks again, until destroy sets
 * quit. Both are looked at after every wait, whatever the wait returned. */
static void *lane_worker(void *arg) {
  read_lane *lane = arg;
  io_read *self = lane->self;
  const emel_platform_ops *p = &self->platform;
  unsigned idle = 0; /* waits since the last window */
  for (;;) {
    if (atomic_load_explicit(&self->quit, memory_order_acquire)) break;
    const unsigned g = atomic_load_explicit(&lane->gen, memory_order_acquire);
    if (g != lane->seen) {
      lane->seen = g;
      idle = 0;
      (void)transfer_lane(lane);
      /* Parked before the count drops: a caller that saw it reach 0 may claim the lane at once. */
      atomic_store_explicit(&lane->state, LANE_PARKED, memory_order_release);
      if (atomic_fetch_sub_explicit(&self->pending, 1, memory_order_acq_rel) == 1)
        (void)p->event_signal(p->user, self->done_event); /* lost: the caller looks again after a slice */
      continue;
    }
    if (idle == 0 && spin_while(&lane->gen, g, &self->quit)) continue;
    if (idle >= LANE_LINGER_SLICES) {
      /* Retires only while nobody claims it; a claimed lane's window is on its way. */
      int parked = LANE_PARKED;
      if (atomic_compare_exchange_strong_explicit(&lane->state, &parked, LANE_RETIRED, memory_order_acq_rel,
                                                  memory_order_acquire))
        break;
    }
    wait_slice(p, lane->event);
    idle++;
  }
  return NULL;
}

/* Lane l (1..) is to take part in the window: a parked worker when it has one
 * or one can be started (events open, thread started), else a thread of this
 * window alone (no events: as before lanes were kept), else nothing (the
 * calling thread does its runs). */
static void ready_lane(io_read *self, read_lane *lane) {
  const emel_platform_ops *p = &self->platform;
  lane->transient = 0;
  if (lane->running) {
    int parked = LANE_PARKED;
    if (atomic_compare_exchange_strong_explicit(&lane->state, &parked, LANE_CLAIMED, memory_order_acq_rel,
                                                memory_order_acquire))
      return;
    /* It retired (idle past its linger): its thread returned, joined here; another starts below. */
    if (p->thread_join(p->user, lane->thread) != 0) self->stats.thread_join_failures++;
    lane->running = 0;
  }
  if (self->done_event < 0) {
    const int fd = p->event_open(p->user);
    if (fd >= 0) self->done_event = fd;
  }
  if (self->done_event >= 0 && lane->event < 0) {
    const int fd = p->event_open(p->user);
    if (fd >= 0) lane->event = fd;
  }
  const int parked = self->done_event >= 0 && lane->event >= 0;
  if (parked) { /* published by thread_start */
    lane->seen = atomic_load_explicit(&lane->gen, memory_order_relaxed);
    atomic_store_explicit(&lane->state, LANE_CLAIMED, memory_order_relaxed);
  }
  if (p->thread_start(p->user, parked ? lane_worker : transfer_lane, lane, &lane->thread) == 0) {
    lane->running = parked;
    lane->transient = !parked;
    self->stats.threads_started++;
  } else {
    self->stats.thread_start_failures++;
  }
}

/* Transfers every run of the window: lanes 1.. on their threads, lane 0
 * here; a lane without a thread is done here too. The window (runs, the
 * counter, the lanes' loads) is written before any worker is woken: each
 * lane's generation is bumped with release after it, and the caller holds a
 * count of `pending` until it has handed out every lane, so the count cannot
 * reach 0 early. Returns once every lane is done (pending 0, transient threads
 * joined); only then are the lanes' counters merged. */
static void transfer_window(io_read *self, uint32_t lanes) {
  const emel_platform_ops *p = &self->platform;
  uint32_t busy = 0;
  for (uint32_t l = 0; l < lanes; l++) busy += self->lanes[l].load > 0;
  if (busy > 1) self->stats.parallel_windows++;
  atomic_store_explicit(&self->pending, 1, memory_order_relaxed); /* the caller's count */
  for (uint32_t l = 1; l < lanes; l++) {
    read_lane *lane = &self->lanes[l];
    lane->transient = 0;
    if (lane->load == 0) continue;
    ready_lane(self, lane);
    if (!lane->running) continue;
    atomic_fetch_add_explicit(&self->pending, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&lane->gen, 1, memory_order_release);
    (void)p->event_signal(p->user, lane->event); /* lost: the worker looks again after a slice */
  }
  (void)transfer_lane(&self->lanes[0]);
  for (uint32_t l = 1; l < lanes; l++) {
    read_lane *lane = &self->lanes[l];
    if (lane->load > 0 && !lane->running && !lane->transient) (void)transfer_lane(lane);
  }
  if (atomic_fetch_sub_explicit(&self->pending, 1, memory_order_acq_rel) != 1) {
    unsigned left = atomic_load_explicit(&self->pending, memory_order_acquire);
    while (left != 0 && spin_while(&self->pending, left, NULL)) left = atomic_load_explicit(&self->pending, memory_order_acquire);
    while (atomic_load_explicit(&self->pending, memory_order_acquire) != 0) wait_slice(p, self->done_event);
  }
  for (uint32_t l = 1; l < lanes; l++) {
    read_lane *lane = &self->lanes[l];
    if (lane->transient && p->thread_join(p->user, lane->thread) != 0) self->stats.thread_join_failures++;
    lane->transient = 0;
  }
  for (uint32_t l = 0; l < lanes; l++) merge_lane(self, &self->lanes[l]);
}

/* SETTLE_RUN of a run that came to rest after its transfer. A run a defect
 * broke (on its lane, or now) settles nothing: its members are refused with
 * EMEL_INTERNAL, their slots stay reserved until destroy. */
static void settle(io_read *self, io_read_ctx *run) {
  resume(run, IO_READ_EV_SETTLE_RUN);
  if (!note_broken(self, run) || !emel_machine_broken(&run->core, &emel_io_read_desc)) return;
  for (size_t k = 0; k < run->run_count; k++) run->run[k].result->error = broken_error;
}

static void read_acquire_batch(void *opaque, const emel_io_request *requests, emel_io_result *results,
                               size_t count) {
  io_read *self = opaque;
  for (size_t base = 0; base < count; base += EMEL_IO_READ_BATCH_WINDOW) {
    size_t window = count - base < EMEL_IO_READ_BATCH_WINDOW ? count - base : EMEL_IO_READ_BATCH_WINDOW;
    size_t prepared = 0;
    uint64_t bytes = 0;
    int direct = 0;
    for (size_t i = 0; i < window; i++) {
      if (self->broken) { /* members prepared before the defect are still read and settled below */
        results[base + i].error = broken_error;
        continue;
      }
      read_member *x = &self->batch[prepared];
      *x = (read_member){.request = &requests[base + i], .result = &results[base + i], .fd = -1};
      io_read_ctx m = {.self = self, .lane = &self->lanes[0], .member = x};
      dispatch(&m, IO_READ_EV_PREPARE);
      /* A member the chart left prepared joins a run; any other was refused. */
      const int joins = io_read_accepts(m.core.cs, IO_READ_EV_READ_WITH_RUN);
      if (joins) resume(&m, IO_READ_EV_READ_WITH_RUN);
      if (!note_broken(self, &m) && joins && m.error.code == EMEL_OK) {
        prepared++;
        bytes += x->request->size;
        direct |= x->mode == READ_DIRECT;
      } else {
        results[base + i].error = m.error;
      }
    }
    qsort(self->batch, prepared, sizeof *self->batch, by_file_then_offset);
    const uint32_t lanes = lanes_for(self, bytes, prepared, direct);
    const uint64_t share = lanes > 1 ? bytes / ((uint64_t)lanes * EMEL_IO_READ_RUNS_PER_LANE) : UINT64_MAX;
    plan_runs(self, prepared, share > 0 ? share : 1);
    assign_lanes(self, lanes);
    transfer_window(self, lanes);
    for (size_t r = 0; r < self->run_count; r++) settle(self, &self->runs[r]);
    self->run_count = 0;
  }
}

static emel_error read_release(void *opaque, emel_io_handle handle) {
  io_read *self = opaque;
  if (self->broken) return broken_error;
  io_read_ctx m = {.self = self, .handle = handle};
  dispatch(&m, IO_READ_EV_RELEASE);
  (void)note_broken(self, &m);
  return m.error;
}

static size_t read_live(const void *opaque) { return ((const io_read *)opaque)->live; }

static void read_destroy(void *opaque) {
  io_read *self = opaque;
  emel_platform_ops p = self->platform;
  if (self->slots) {
    for (uint32_t i = 0; i < self->slot_capacity; i++)
      if (self->slots[i].base) p.free(p.user, self->slots[i].base, self->slots[i].alloc_size);
    p.free(p.user, self->slots, (size_t)self->slot_capacity * sizeof *self->slots);
  }
  if (self->file_state) {
    for (uint32_t i = 0; i < self->file_capacity; i++)
      for (int mode = 0; mode < 2; mode++)
        if (self->file_state[i].fd[mode] >= 0) (void)p.close(p.user, self->file_state[i].fd[mode]);
    p.free(p.user, self->file_state, (size_t)self->file_capacity * sizeof *self->file_state);
  }
  if (self->lanes) {
    /* No window is in flight (one caller): every worker is parked or about
     * to park. One that misses the wake sees quit after its slice. */
    atomic_store_explicit(&self->quit, 1, memory_order_release);
    for (uint32_t l = 1; l < self->lane_count; l++)
      if (self->lanes[l].running) (void)p.event_signal(p.user, self->lanes[l].event);
    for (uint32_t l = 1; l < self->lane_count; l++) {
      read_lane *lane = &self->lanes[l];
      if (lane->running && p.thread_join(p.user, lane->thread) != 0) self->stats.thread_join_failures++;
      lane->running = 0;
      if (lane->event >= 0) (void)p.event_close(p.user, lane->event);
    }
    if (self->done_event >= 0) (void)p.event_close(p.user, self->done_event);
    for (uint32_t l = 0; l < self->lane_count; l++) {
      read_lane *lane = &self->lanes[l];
      emel_ring_fini(&lane->ring); /* nothing in flight between transfers */
      if (lane->bounce) p.free(p.user, lane->bounce, self->block);
      if (lane->gap_scratch) p.free(p.user, lane->gap_scratch, EMEL_IO_READ_MAX_GAP);
    }
    p.free(p.user, self->lanes, (size_t)self->lane_count * sizeof *self->lanes);
  }
  if (self->batch) p.free(p.user, self->batch, EMEL_IO_READ_BATCH_WINDOW * sizeof *self->batch);
  if (self->runs) p.free(p.user, self->runs, EMEL_IO_READ_BATCH_WINDOW * sizeof *self->runs);
  if (self->run_lane) p.free(p.user, self->run_lane, EMEL_IO_READ_BATCH_WINDOW * sizeof *self->run_lane);
  p.free(p.user, self, sizeof *self);
}

static const emel_io_strategy_ops read_ops = {
    .struct_size = sizeof(emel_io_strategy_ops),
    .kind = EMEL_STRATEGY_READ,
    .name = "read",
    .acquire = read_acquire,
    .release = read_release,
    .advise = NULL, /* an owned buffer is ordinary memory: nothing to advise through the file */
    .acquire_batch = read_acquire_batch,
    .live = read_live,
    .destroy = read_destroy,
};

static int power_of_two(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

static emel_status unreported_io_read_attach(emel_io *io, const emel_io_read_config *config) {
  if (!io || emel_io_has_strategy(io, EMEL_STRATEGY_READ)) return EMEL_INVALID_ARGUMENT;
  emel_io_read_config taken;
  if (emel_struct_take(&taken, sizeof taken, config) != EMEL_OK) return EMEL_STRUCT_SIZE_UNKNOWN;
  config = &taken; /* only the members the caller's header knew; the rest zero: defaults */
  const size_t alignment = config->alignment ? config->alignment : EMEL_IO_READ_MIN_ALIGNMENT;
  if (!power_of_two(alignment) || alignment < EMEL_IO_READ_MIN_ALIGNMENT) return EMEL_INVALID_ARGUMENT;
  const size_t huge_page = config->huge_page_size ? config->huge_page_size : EMEL_IO_READ_DEFAULT_HUGE_PAGE;
  if (!power_of_two(huge_page)) return EMEL_INVALID_ARGUMENT;
  if (config->threads > EMEL_IO_READ_MAX_THREADS) return EMEL_INVALID_ARGUMENT;
  const emel_platform_ops p = *emel_io_platform(io);
  const size_t block = p.page_size(p.user);
  if (!power_of_two(block)) return EMEL_INVALID_ARGUMENT;
  if (config->direct_threads > EMEL_IO_READ_MAX_THREADS) return EMEL_INVALID_ARGUMENT;
  int copy_lanes = config->threads ? (int)config->threads : p.cpu_count(p.user);
  if (copy_lanes < 1) copy_lanes = 1;
  if (copy_lanes > EMEL_IO_READ_MAX_THREADS) copy_lanes = EMEL_IO_READ_MAX_THREADS;
  int direct_lanes = config->direct_threads ? (int)config->direct_threads
                     : copy_lanes > 1               ? copy_lanes * EMEL_IO_READ_DIRECT_LANES_PER_THREAD
                                                    : 1;
  if (direct_lanes > EMEL_IO_READ_MAX_THREADS) direct_lanes = EMEL_IO_READ_MAX_THREADS;
  const int lanes = copy_lanes > direct_lanes ? copy_lanes : direct_lanes;
  if (config->ring_depth > EMEL_IO_READ_MAX_RING_DEPTH || config->ring_request > (size_t)1 << 30 ||
      (config->flags & ~(uint32_t)EMEL_IO_READ_NO_RING))
    return EMEL_INVALID_ARGUMENT;
  const uint32_t ring_depth = config->flags & EMEL_IO_READ_NO_RING ? 0
                              : config->ring_depth                ? config->ring_depth
                                                                  : EMEL_IO_READ_DEFAULT_RING_DEPTH;
  const size_t ring_request = config->ring_request ? config->ring_request : EMEL_IO_READ_DEFAULT_RING_REQUEST;

  io_read *self = p.alloc(p.user, sizeof *self, _Alignof(io_read));
  if (!self) return EMEL_OUT_OF_MEMORY;
  memset(self, 0, sizeof *self);
  atomic_init(&self->next_run, 0);
  atomic_init(&self->pending, 0);
  atomic_init(&self->quit, 0);
  self->done_event = -1;
  self->platform = p;
  self->io = io;
  self->files = emel_io_files_of(io);
  self->file_capacity = self->files->capacity;
  self->slot_capacity = config->max_buffers ? config->max_buffers : EMEL_IO_READ_DEFAULT_BUFFERS;
  self->chunk_size = config->chunk_size ? config->chunk_size : EMEL_IO_READ_DEFAULT_CHUNK;
  self->direct_chunk = self->chunk_size < block ? block : self->chunk_size - self->chunk_size % block;
  self->alignment = alignment;
  self->huge_page = huge_page < block ? block : huge_page;
  self->block = block;
  self->ring_depth = ring_depth;
  self->ring_request = ring_request;
  self->ring_direct_request = ring_request < block ? block : ring_request - ring_request % block;
  self->slots = p.alloc(p.user, (size_t)self->slot_capacity * sizeof *self->slots, _Alignof(read_slot));
  self->file_state = p.alloc(p.user, (size_t)self->file_capacity * sizeof *self->file_state, _Alignof(read_file));
  self->min_parallel = config->min_parallel_bytes ? config->min_parallel_bytes : EMEL_IO_READ_DEFAULT_MIN_PARALLEL;
  self->batch = p.alloc(p.user, EMEL_IO_READ_BATCH_WINDOW * sizeof *self->batch, _Alignof(read_member));
  self->runs = p.alloc(p.user, EMEL_IO_READ_BATCH_WINDOW * sizeof *self->runs, _Alignof(io_read_ctx));
  self->run_lane = p.alloc(p.user, EMEL_IO_READ_BATCH_WINDOW * sizeof *self->run_lane, _Alignof(uint32_t));
  self->lanes = p.alloc(p.user, (size_t)lanes * sizeof *self->lanes, _Alignof(read_lane));
  int lanes_ready = self->lanes != NULL;
  if (self->lanes) {
    memset(self->lanes, 0, (size_t)lanes * sizeof *self->lanes);
    self->lane_count = (uint32_t)lanes;
    self->copy_lanes = (uint32_t)copy_lanes;
    self->direct_lanes = (uint32_t)direct_lanes;
    for (uint32_t l = 0; l < self->lane_count; l++) {
      read_lane *lane = &self->lanes[l];
      lane->self = self;
      lane->index = l;
      lane->event = -1;
      atomic_init(&lane->gen, 0);
      atomic_init(&lane->state, LANE_PARKED);
      lane->bounce = p.alloc(p.user, block, block);
      lane->gap_scratch = p.alloc(p.user, EMEL_IO_READ_MAX_GAP, EMEL_IO_READ_MIN_ALIGNMENT);
      lanes_ready = lanes_ready && lane->bounce && lane->gap_scratch;
      lanes_ready = emel_ring_init(&lane->ring, &self->platform, ring_depth) == 0 && lanes_ready;
    }
  }
  if (self->slots) memset(self->slots, 0, (size_t)self->slot_capacity * sizeof *self->slots);
  if (self->file_state)
    for (uint32_t i = 0; i < self->file_capacity; i++)
      self->file_state[i] = (read_file){.fd = {-1, -1}};
  if (!self->slots || !self->file_state || !lanes_ready || !self->batch || !self->runs || !self->run_lane) {
    read_destroy(self);
    return EMEL_OUT_OF_MEMORY;
  }
  for (uint32_t i = 0; i < self->slot_capacity; i++) {
    /* Generations start at 1 so that a zeroed handle is never live. */
    self->slots[i] = (read_slot){.generation = 1, .next_free = i + 2 <= self->slot_capacity ? i + 2 : 0};
  }
  self->free_head = 1;
  return emel_io_attach(io, &read_ops, self, NULL);
}

emel_status emel_io_read_attach(emel_io *io, const emel_io_read_config *config, emel_error *err) {
  const emel_status s = unreported_io_read_attach(io, config);
  return emel_report_detail(err, s, s == EMEL_STRUCT_SIZE_UNKNOWN ? "emel_io_read_config.struct_size" : NULL);
}

static emel_status unreported_io_read_stats_of(const emel_io *io, emel_io_read_stats *stats) {
  if (!stats) return EMEL_INVALID_ARGUMENT;
  const io_read *self = emel_io_strategy_self(io, EMEL_STRATEGY_READ, &read_ops);
  if (!self) return EMEL_UNKNOWN_STRATEGY;
  *stats = self->stats;
  return EMEL_OK;
}

emel_status emel_io_read_stats_of(const emel_io *io, emel_io_read_stats *stats, emel_error *err) {
  return emel_report(err, unreported_io_read_stats_of(io, stats));
}

uint32_t emel_io_read_lanes(const emel_io *io, int direct) {
  const io_read *self = emel_io_strategy_self(io, EMEL_STRATEGY_READ, &read_ops);
  if (!self) return 0;
  return direct < 0 ? self->lane_count : direct ? self->direct_lanes : self->copy_lanes;
}

void emel_io_read_force_lanes(emel_io *io, uint32_t lanes) {
  io_read *self = emel_io_strategy_self(io, EMEL_STRATEGY_READ, &read_ops);
  if (self) self->forced_lanes = lanes;
}

#include "fault_platform.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void locked(fault_platform *fp) { pthread_mutex_lock(&fp->lock); }
static void unlocked(fault_platform *fp) { pthread_mutex_unlock(&fp->lock); }

/* Adds `delta` to a counter under the lock. */
static void add(fault_platform *fp, int64_t *counter, int64_t delta) {
  locked(fp);
  *counter += delta;
  unlocked(fp);
}

/* Returns the injected result for this call of `op`, or 1 when it runs for real. */
static int injected(fault_platform *fp, fp_op op, int64_t *short_len) {
  locked(fp);
  uint64_t n = ++fp->calls[op];
  const fp_fault *f = &fp->faults[op];
  int r = 1;
  if (f->first == 0 || n < f->first || n >= f->first + f->count) r = 1;
  else if (f->short_len >= 0 && short_len) *short_len = f->short_len;
  else if (f->touch_ns != 0 && op == FP_FILE_IDENTITY && short_len) *short_len = f->touch_ns;
  else r = -f->err;
  unlocked(fp);
  return r;
}

static int fp_open(void *u, const char *path, unsigned flags) {
  fault_platform *fp = u;
  int r = injected(fp, FP_OPEN, NULL);
  if (r <= 0) return r;
  r = fp->real->open(fp->real->user, path, flags);
  if (r >= 0) add(fp, &fp->open_fds, 1);
  return r;
}

static int fp_close(void *u, int fd) {
  fault_platform *fp = u;
  int r = injected(fp, FP_CLOSE, NULL);
  /* Like Linux, the descriptor is gone even when close reports an error. */
  int real = fp->real->close(fp->real->user, fd);
  if (real == 0) add(fp, &fp->open_fds, -1);
  return r <= 0 ? r : real;
}

static int fp_file_identity(void *u, int fd, emel_file_identity *out) {
  fault_platform *fp = u;
  int64_t touch = 0;
  int r = injected(fp, FP_FILE_IDENTITY, &touch);
  if (r <= 0) return r;
  r = fp->real->file_identity(fp->real->user, fd, out);
  if (r == 0) out->mtime_ns += touch;
  return r;
}

/* Runs the test's hook when this is the read it waits for (outside the lock:
 * the hook may call the platform itself). */
static void before_read(fault_platform *fp) {
  locked(fp);
  const uint64_t n = ++fp->reads;
  void (*fn)(void *) = n == fp->before_read_at ? fp->before_read : NULL;
  unlocked(fp);
  if (fn) fn(fp->before_read_arg);
}

/* A short transfer reads as asked (so O_DIRECT's size rules still hold) and
 * reports fewer bytes: what the caller sees is exactly a short read. */
static int64_t shorten(int64_t got, int64_t short_len) {
  return short_len >= 0 && got > short_len ? short_len : got;
}

static int64_t fp_pread(void *u, int fd, void *buf, size_t len, uint64_t offset) {
  fault_platform *fp = u;
  int64_t short_len = -1;
  int r = injected(fp, FP_PREAD, &short_len);
  if (r <= 0) return r;
  before_read(fp);
  if (short_len == 0) return 0;
  return shorten(fp->real->pread(fp->real->user, fd, buf, len, offset), short_len);
}

static int64_t fp_preadv(void *u, int fd, const emel_iovec *iov, int iovcnt, uint64_t offset) {
  fault_platform *fp = u;
  int64_t short_len = -1;
  int r = injected(fp, FP_PREADV, &short_len);
  if (r <= 0) return r;
  before_read(fp);
  if (short_len == 0) return 0;
  return shorten(fp->real->preadv(fp->real->user, fd, iov, iovcnt, offset), short_len);
}

static int fp_map(void *u, int fd, uint64_t offset, size_t len, void **addr) {
  fault_platform *fp = u;
  int r = injected(fp, FP_MAP, NULL);
  if (r <= 0) return r;
  r = fp->real->map(fp->real->user, fd, offset, len, addr);
  if (r == 0) {
    add(fp, &fp->live_maps, 1);
    add(fp, &fp->mapped_bytes, (int64_t)len);
  }
  return r;
}

static int fp_unmap(void *u, void *addr, size_t len) {
  fault_platform *fp = u;
  int r = injected(fp, FP_UNMAP, NULL);
  if (r <= 0) return r;
  r = fp->real->unmap(fp->real->user, addr, len);
  if (r == 0) {
    add(fp, &fp->live_maps, -1);
    add(fp, &fp->mapped_bytes, -(int64_t)len);
  }
  return r;
}

static void record_advice(fault_platform *fp, fp_advice a) {
  locked(fp);
  if (fp->advice_logged < FP_ADVICE_LOG) fp->advice_log[fp->advice_logged++] = a;
  else fp->advice_lost++;
  unlocked(fp);
}

static int fp_advise(void *u, void *addr, size_t len, emel_map_advice advice) {
  fault_platform *fp = u;
  int r = injected(fp, FP_ADVISE, NULL);
  if (r > 0) r = fp->real->advise(fp->real->user, addr, len, advice);
  record_advice(fp, (fp_advice){.op = FP_ADVISE, .fd = -1, .addr = addr, .len = len, .advice = (int)advice,
                                .result = r});
  return r;
}

static int fp_guard(void *u, const void *addr, size_t len, void (*touch)(void *), void *arg) {
  fault_platform *fp = u;
  int r = injected(fp, FP_GUARD, NULL);
  return r <= 0 ? r : fp->real->guard(fp->real->user, addr, len, touch, arg);
}

static int fp_fadvise(void *u, int fd, uint64_t offset, uint64_t len, emel_file_advice advice) {
  fault_platform *fp = u;
  int r = injected(fp, FP_FADVISE, NULL);
  if (r > 0) r = fp->real->fadvise(fp->real->user, fd, offset, len, advice);
  record_advice(fp, (fp_advice){.op = FP_FADVISE, .fd = fd, .offset = offset, .len = len, .advice = (int)advice,
                                .result = r});
  return r;
}

static int fp_lock(void *u, void *addr, size_t len) {
  fault_platform *fp = u;
  int r = injected(fp, FP_LOCK, NULL);
  if (r <= 0) return r;
  r = fp->real->lock(fp->real->user, addr, len);
  if (r == 0) add(fp, &fp->locked_bytes, (int64_t)len);
  return r;
}

static int fp_unlock(void *u, void *addr, size_t len) {
  fault_platform *fp = u;
  int r = injected(fp, FP_UNLOCK, NULL);
  if (r <= 0) return r;
  r = fp->real->unlock(fp->real->user, addr, len);
  if (r == 0) add(fp, &fp->locked_bytes, -(int64_t)len);
  return r;
}

static void *fp_alloc(void *u, size_t size, size_t alignment) {
  fault_platform *fp = u;
  if (injected(fp, FP_ALLOC, NULL) <= 0) return NULL;
  void *p = fp->real->alloc(fp->real->user, size, alignment);
  if (p) {
    locked(fp);
    fp->live_allocs++;
    fp->alloc_bytes += (int64_t)size;
    if (fp->alloc_bytes > fp->peak_alloc_bytes) fp->peak_alloc_bytes = fp->alloc_bytes;
    unlocked(fp);
  }
  return p;
}

static void fp_free(void *u, void *ptr, size_t size) {
  fault_platform *fp = u;
  injected(fp, FP_FREE, NULL); /* counted; freeing cannot fail */
  if (!ptr) return;
  locked(fp);
  fp->live_allocs--;
  fp->alloc_bytes -= (int64_t)size;
  unlocked(fp);
  fp->real->free(fp->real->user, ptr, size);
}

static int fp_can_map(void *u) { return ((fault_platform *)u)->can_map; }

static int fp_thread_start(void *u, void *(*fn)(void *), void *arg, uintptr_t *thread) {
  fault_platform *fp = u;
  int r = injected(fp, FP_THREAD_START, NULL);
  if (r <= 0) return r;
  r = fp->real->thread_start(fp->real->user, fn, arg, thread);
  if (r == 0) add(fp, &fp->live_threads, 1);
  return r;
}

static int fp_thread_join(void *u, uintptr_t thread) {
  fault_platform *fp = u;
  int r = injected(fp, FP_THREAD_JOIN, NULL);
  /* Like close: the real join happens either way, then the fault is reported. */
  int real = fp->real->thread_join(fp->real->user, thread);
  if (real == 0) add(fp, &fp->live_threads, -1);
  return r <= 0 ? r : real;
}

static int fp_cpu_count(void *u) {
  fault_platform *fp = u;
  return fp->cpu_count > 0 ? fp->cpu_count : fp->real->cpu_count(fp->real->user);
}

static int fp_random(void *u, void *buf, size_t len) {
  fault_platform *fp = u;
  int r = injected(fp, FP_RANDOM, NULL);
  if (r <= 0) return r;
  if (!fp->random_fixed) return fp->real->random(fp->real->user, buf, len);
  for (size_t i = 0; i < len; i++) ((uint8_t *)buf)[i] = (uint8_t)(fp->random_value >> (8 * (i % 8)));
  return 0;
}

/* Load jobs' wakeup descriptor: counted like a file descriptor. */
static int fp_event_open(void *u) {
  fault_platform *fp = u;
  int r = injected(fp, FP_EVENT_OPEN, NULL);
  if (r <= 0) return r;
  r = fp->real->event_open(fp->real->user);
  if (r >= 0) add(fp, &fp->live_events, 1);
  return r;
}

static int fp_event_close(void *u, int fd) {
  fault_platform *fp = u;
  int r = injected(fp, FP_EVENT_CLOSE, NULL);
  /* As close: the descriptor is gone either way. */
  int real = fp->real->event_close(fp->real->user, fd);
  if (real == 0) add(fp, &fp->live_events, -1);
  return r <= 0 ? r : real;
}

/* A failed signal makes nothing readable: a waiter must not rely on every
 * signal arriving. (Async-signal-safe only as far as the lock is: tests that
 * cancel from a signal handler use the defaults for it.) */
static int fp_event_signal(void *u, int fd) {
  fault_platform *fp = u;
  int r = injected(fp, FP_EVENT_SIGNAL, NULL);
  return r <= 0 ? r : fp->real->event_signal(fp->real->user, fd);
}

/* A failed wait returns at once, without waiting or draining. */
static int fp_event_wait(void *u, int fd, int timeout_ms) {
  fault_platform *fp = u;
  int r = injected(fp, FP_EVENT_WAIT, NULL);
  if (fp->wait_cap_ms > 0 && (timeout_ms < 0 || timeout_ms > fp->wait_cap_ms)) timeout_ms = fp->wait_cap_ms;
  return r <= 0 ? r : fp->real->event_wait(fp->real->user, fd, timeout_ms);
}

/* The clock cannot fail; an injected fault makes it read 0 once: a clock that
 * jumps back, which rates and timeouts must survive. */
static uint64_t fp_clock_ns(void *u) {
  fault_platform *fp = u;
  return injected(fp, FP_CLOCK_NS, NULL) <= 0 ? 0 : fp->real->clock_ns(fp->real->user);
}

/* Rings. Where the machine has no io_uring (seccomp, an old kernel) a ring is
 * emulated with the real pread, each read done when queued and its
 * completion kept for ring_wait: the strategy's ring routes are tested on any
 * machine. An injected ring_open fault is what tests of the fallback use. */
typedef struct fp_ring {
  void *real;                 /* the real ring, or NULL: emulated */
  unsigned depth, queued;
  int64_t in_flight;          /* reads sent, not yet returned by a wait */
  emel_ring_completion *done; /* emulated: completions not yet returned */
} fp_ring;

static int fp_ring_open(void *u, unsigned depth, void **ring) {
  fault_platform *fp = u;
  int r = injected(fp, FP_RING_OPEN, NULL);
  if (r <= 0) return r;
  if (fp->no_ring) return -ENOSYS;
  fp_ring *fr = calloc(1, sizeof *fr);
  if (!fr) return -ENOMEM;
  fr->depth = depth ? depth : 1;
  if (fp->real->ring_open(fp->real->user, depth, &fr->real) < 0) {
    fr->real = NULL;
    fr->done = calloc(fr->depth, sizeof *fr->done);
    if (!fr->done) {
      free(fr);
      return -ENOMEM;
    }
    locked(fp);
    fp->emulated_rings++;
    unlocked(fp);
  }
  add(fp, &fp->live_rings, 1);
  *ring = fr;
  return 0;
}

static int fp_ring_close(void *u, void *ring) {
  fault_platform *fp = u;
  fp_ring *fr = ring;
  int r = injected(fp, FP_RING_CLOSE, NULL);
  /* As close: the ring is gone either way (the real close waits for its reads). */
  int real = fr->real ? fp->real->ring_close(fp->real->user, fr->real) : 0;
  add(fp, &fp->ring_in_flight, -fr->in_flight); /* its reads end with it */
  free(fr->done);
  free(fr);
  add(fp, &fp->live_rings, -1);
  return r <= 0 ? r : real;
}

static int fp_ring_read(void *u, void *ring, int fd, void *buf, size_t len, uint64_t offset, uint64_t tag) {
  fault_platform *fp = u;
  fp_ring *fr = ring;
  int r = injected(fp, FP_RING_READ, NULL);
  if (r <= 0) return r;
  before_read(fp);
  if (fr->real) r = fp->real->ring_read(fp->real->user, fr->real, fd, buf, len, offset, tag);
  else if (fr->queued == fr->depth) r = -EBUSY;
  else {
    fr->done[fr->queued++] = (emel_ring_completion){.tag = tag, .res = fp->real->pread(fp->real->user, fd, buf, len, offset)};
    r = 0;
  }
  if (r == 0) {
    fr->in_flight++;
    locked(fp);
    if (++fp->ring_in_flight > fp->ring_peak_in_flight) fp->ring_peak_in_flight = fp->ring_in_flight;
    unlocked(fp);
  }
  return r;
}

/* The nth completion's injected result, if any. */
static int64_t completion_result(fault_platform *fp, int64_t res) {
  locked(fp);
  const uint64_t n = ++fp->completions;
  const fp_fault *f = &fp->completion_fault;
  if (f->first != 0 && n >= f->first && n < f->first + f->count) {
    if (f->err != 0) res = -f->err;
    else if (res > f->short_len) res = f->short_len;
  }
  unlocked(fp);
  return res;
}

/* A failed wait returns at once: nothing sent, nothing taken. */
static int fp_ring_wait(void *u, void *ring, unsigned min, emel_ring_completion *out, unsigned max) {
  fault_platform *fp = u;
  fp_ring *fr = ring;
  int r = injected(fp, FP_RING_WAIT, NULL);
  if (r <= 0) return r;
  int n;
  if (fr->real) {
    n = fp->real->ring_wait(fp->real->user, fr->real, min, out, max);
  } else {
    n = (int)(fr->queued < max ? fr->queued : max);
    memcpy(out, fr->done, (size_t)n * sizeof *out);
    memmove(fr->done, fr->done + n, (size_t)(fr->queued - (unsigned)n) * sizeof *out);
    fr->queued -= (unsigned)n;
  }
  for (int i = 0; i < n; i++) out[i].res = completion_result(fp, out[i].res);
  if (n > 0) {
    fr->in_flight -= n;
    add(fp, &fp->ring_in_flight, -n);
  }
  return n;
}

void fault_platform_init(fault_platform *fp) {
  memset(fp, 0, sizeof *fp);
  pthread_mutex_init(&fp->lock, NULL);
  fp->real = emel_platform_default();
  fp->can_map = 1;
  for (int i = 0; i < FP_OP_COUNT; i++) fp->faults[i].short_len = -1;
  fp->ops = *fp->real;
  fp->ops.user = fp;
  fp->ops.open = fp_open;
  fp->ops.close = fp_close;
  fp->ops.pread = fp_pread;
  fp->ops.preadv = fp_preadv;
  fp->ops.map = fp_map;
  fp->ops.unmap = fp_unmap;
  fp->ops.advise = fp_advise;
  fp->ops.fadvise = fp_fadvise;
  fp->ops.lock = fp_lock;
  fp->ops.unlock = fp_unlock;
  fp->ops.alloc = fp_alloc;
  fp->ops.free = fp_free;
  fp->ops.can_map = fp_can_map;
  fp->ops.thread_start = fp_thread_start;
  fp->ops.thread_join = fp_thread_join;
  fp->ops.cpu_count = fp_cpu_count;
  fp->ops.file_identity = fp_file_identity;
  fp->ops.guard = fp_guard;
  fp->ops.random = fp_random;
  fp->ops.event_open = fp_event_open;
  fp->ops.event_close = fp_event_close;
  fp->ops.event_signal = fp_event_signal;
  fp->ops.event_wait = fp_event_wait;
  fp->ops.clock_ns = fp_clock_ns;
  fp->ops.ring_open = fp_ring_open;
  fp->ops.ring_close = fp_ring_close;
  fp->ops.ring_read = fp_ring_read;
  fp->ops.ring_wait = fp_ring_wait;
}

void fault_platform_ring_completion(fault_platform *fp, uint64_t nth, uint64_t count, int err, int64_t len) {
  locked(fp);
  fp->completion_fault = (fp_fault){.first = nth, .count = count, .err = err, .short_len = len};
  unlocked(fp);
}

void fault_platform_fail_many(fault_platform *fp, fp_op op, uint64_t nth, uint64_t count, int err) {
  fp->faults[op].first = nth;
  fp->faults[op].count = count;
  fp->faults[op].err = err;
  fp->faults[op].short_len = -1;
  fp->faults[op].touch_ns = 0;
}

void fault_platform_fail(fault_platform *fp, fp_op op, uint64_t nth, int err) {
  fault_platform_fail_many(fp, op, nth, 1, err);
}

void fault_platform_short_read(fault_platform *fp, uint64_t nth, uint64_t count, int64_t len) {
  fp->faults[FP_PREAD].first = nth;
  fp->faults[FP_PREAD].count = count;
  fp->faults[FP_PREAD].err = 0;
  fp->faults[FP_PREAD].short_len = len;
}

void fault_platform_short_readv(fault_platform *fp, uint64_t nth, uint64_t count, int64_t len) {
  fp->faults[FP_PREADV].first = nth;
  fp->faults[FP_PREADV].count = count;
  fp->faults[FP_PREADV].err = 0;
  fp->faults[FP_PREADV].short_len = len;
}

void fault_platform_touch(fault_platform *fp, uint64_t nth, uint64_t count, int64_t delta_ns) {
  fp->faults[FP_FILE_IDENTITY].first = nth;
  fp->faults[FP_FILE_IDENTITY].count = count;
  fp->faults[FP_FILE_IDENTITY].err = 0;
  fp->faults[FP_FILE_IDENTITY].touch_ns = delta_ns;
}

void fault_platform_before_read(fault_platform *fp, uint64_t nth, void (*fn)(void *), void *arg) {
  fp->before_read_at = fp->reads + nth;
  fp->before_read = fn;
  fp->before_read_arg = arg;
}

void fault_platform_clear_faults(fault_platform *fp) {
  for (int i = 0; i < FP_OP_COUNT; i++) {
    memset(&fp->faults[i], 0, sizeof fp->faults[i]);
    fp->faults[i].short_len = -1;
  }
  memset(&fp->completion_fault, 0, sizeof fp->completion_fault);
  fp->before_read = NULL;
  fp->before_read_at = 0;
}

size_t fault_platform_advices(fault_platform *fp, fp_op op, fp_advice *out, size_t max) {
  locked(fp);
  size_t n = 0;
  for (size_t i = 0; i < fp->advice_logged; i++) {
    if (fp->advice_log[i].op != op) continue;
    if (n < max) out[n] = fp->advice_log[i];
    n++;
  }
  unlocked(fp);
  return n;
}

void fault_platform_forget_advices(fault_platform *fp) {
  locked(fp);
  fp->advice_logged = 0;
  fp->advice_lost = 0;
  unlocked(fp);
}

int64_t fault_platform_outstanding(const fault_platform *fp) {
  return fp->open_fds + fp->live_maps + (fp->locked_bytes != 0) + fp->live_allocs + fp->live_threads +
         fp->live_events + fp->live_rings;
}

const char *fp_op_name(fp_op op) {
  const char *name = emel_platform_op_name((size_t)op);
  return name ? name : "?";
}

uint64_t fault_platform_calls(fault_platform *fp, fp_op op) {
  locked(fp);
  const uint64_t n = fp->calls[op];
  unlocked(fp);
  return n;
}

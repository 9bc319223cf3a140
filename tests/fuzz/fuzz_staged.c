/* Fuzz target: arbitrary bytes as staged loads, through the io boundary, over
 * a fault_platform stacked on a memory_file (no disk; direct I/O held to
 * O_DIRECT's alignment rules).
 *
 * Input: CONFIG (buffers 2-5, buffer pages 2-5, threads 0 or 1 (inline), pool
 * 1-8), SIZE16 (the file's bytes, 1..16384), FAULT (op, nth, errno, count or
 * a short read), then up to 8 rounds of a batch of up to 8 requests: offset16,
 * size16, FLAGS (bit 0 direct, 1 no consumer flag, 2 a flag staged does not
 * take, 3 a caller target, 4 the consumer fails at its call FAIL, 5 NULL
 * consume), FAIL; after each round every granted residency is released (in
 * reverse) or kept (byte bit 7 of the round header).
 *
 * Invariants: a granted request was delivered whole, once, in order, on the
 * calling thread, with the file's bytes, as DELIVERED (or EXTERNAL at the
 * consumer's target); a refused one has a named code that fits it (a fault
 * fired, or the request was invalid, or a consumer failed, or an earlier one
 * of its batch did); emel_io_live counts the held residencies; each release
 * calls the consumer's release once; nothing is outstanding at the end; and a
 * fault-free load then succeeds. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emel/io.h"
#include "emel/io_staged.h"
#include "fault_platform.h"
#include "memory_file.h"

#define REQUIRE(cond)                                                                                   \
  do {                                                                                                  \
    if (!(cond)) {                                                                                      \
      fprintf(stderr, "fuzz_staged: %s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);        \
      abort();                                                                                          \
    }                                                                                                   \
  } while (0)

enum { MAX_BATCH = 8, MAX_ROUNDS = 8, MAX_FILE = 16384, MAX_HELD = 64 };

typedef struct reader {
  const uint8_t *p, *end;
} reader;

static uint8_t next(reader *r) { return r->p < r->end ? *r->p++ : 0; }
static uint16_t next16(reader *r) { return (uint16_t)(next(r) | next(r) << 8); }

typedef struct sink {
  uint64_t next;      /* the next window's offset */
  uint64_t size;      /* the span's */
  uint64_t offset;    /* in the file */
  int calls, fail_at, failed, released, bad;
  uint8_t *target;
} sink;

typedef struct harness {
  fault_platform fp;
  memory_file mf;
  uint8_t file[MAX_FILE];
  size_t file_size;
  pthread_t main;
  sink sinks[MAX_BATCH];
} harness;

static harness H;

static int consume(void *user, uint32_t tensor, uint64_t offset, uint64_t bytes, const void *data) {
  (void)user;
  REQUIRE(tensor < MAX_BATCH);
  sink *s = &H.sinks[tensor];
  s->calls++;
  REQUIRE(pthread_equal(pthread_self(), H.main));
  REQUIRE(!s->failed);           /* no window after a failure */
  REQUIRE(offset == s->next);    /* in order, each once */
  REQUIRE(bytes > 0 && offset + bytes <= s->size);
  REQUIRE(memcmp(data, H.file + s->offset + offset, bytes) == 0);
  if (s->calls == s->fail_at) {
    s->failed = 1;
    return 1000 + (int)tensor;
  }
  if (s->target) memcpy(s->target + offset, data, bytes);
  s->next = offset + bytes;
  return 0;
}

static void release_cb(void *user, uint32_t tensor) {
  (void)user;
  H.sinks[tensor].released++;
}

static int fired(const harness *h, const uint64_t *before) {
  for (int op = 0; op < FP_OP_COUNT; op++)
    if (h->fp.faults[op].first && h->fp.calls[op] >= h->fp.faults[op].first && before[op] < h->fp.faults[op].first + h->fp.faults[op].count)
      return 1;
  return 0;
}

static const int errs[] = {EIO, ENOMEM, EMFILE, EACCES, EINTR, EAGAIN, EINVAL, ENOENT};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r = {data, data + size};
  harness *h = &H;
  memset(h->sinks, 0, sizeof h->sinks);
  h->main = pthread_self();
  memory_file_init(&h->mf);
  const uint8_t config = next(&r);
  h->file_size = 1 + next16(&r) % MAX_FILE;
  for (size_t i = 0; i < h->file_size; i++) h->file[i] = (uint8_t)(i * 131u ^ i >> 7);
  REQUIRE(memory_file_add(&h->mf, "m.gguf", h->file, h->file_size) == 0);
  fault_platform_init(&h->fp);
  h->fp.real = &h->mf.ops;
  const emel_platform_ops *ops = &h->fp.ops;
  const size_t page = ops->page_size(ops->user);
  emel_io *io;
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = ops);
  REQUIRE(emel_io_create(&io, &ic, NULL) == EMEL_OK);
  uint32_t file;
  REQUIRE(emel_io_add_file(io, "m.gguf", 6, &file, NULL) == EMEL_OK);
  const uint32_t buffers = 2 + (config & 3), pages = 2 + (config >> 2 & 3), pool = 1 + (config >> 5 & 7);
  emel_io_staged_config sc = EMEL_IO_STAGED_CONFIG_INIT(.budget = (uint64_t)buffers * pages * page, .buffers = buffers,
                                                        .max_residencies = pool, .threads = config >> 4 & 1);
  REQUIRE(emel_io_staged_attach(io, &sc, NULL) == EMEL_OK);
  /* The fault, armed after the setup. */
  const uint8_t op = next(&r) % FP_OP_COUNT, nth = next(&r), kind = next(&r);
  if (nth) {
    if (kind & 8) fault_platform_short_read(&h->fp, h->fp.calls[FP_PREAD] + nth, 1 + (kind >> 4 & 3), kind >> 6);
    else fault_platform_fail_many(&h->fp, (fp_op)op, h->fp.calls[op] + nth, 1 + (kind >> 4), errs[kind & 7]);
  }
  emel_io_handle held[MAX_HELD];
  uint32_t held_tensor[MAX_HELD];
  int n_held = 0;
  static uint8_t targets[MAX_BATCH][MAX_FILE];
  for (int round = 0; round < MAX_ROUNDS && r.p < r.end; round++) {
    const uint8_t head = next(&r);
    const int n = 1 + (head & 7);
    emel_io_request q[MAX_BATCH];
    emel_io_result res[MAX_BATCH];
    emel_staged_consumer c[MAX_BATCH];
    int valid[MAX_BATCH], bad_consumer[MAX_BATCH];
    uint64_t before[FP_OP_COUNT];
    memcpy(before, h->fp.calls, sizeof before);
    for (int k = 0; k < n; k++) {
      const uint64_t off = next16(&r) % (MAX_FILE + 64), len = next16(&r) % (MAX_FILE + 64);
      const uint8_t flags = next(&r), fail = next(&r);
      sink *s = &h->sinks[k];
      const int released = s->released;
      *s = (sink){.size = len, .offset = off, .fail_at = flags & 16 ? fail : 0, .released = released,
                  .target = flags & 8 ? targets[k] : NULL};
      c[k] = (emel_staged_consumer)EMEL_STAGED_CONSUMER_INIT(.consume = flags & 32 ? NULL : consume,
                                                             .release = release_cb, .target = s->target,
                                                             .target_size = s->target ? MAX_FILE : 0);
      q[k] = (emel_io_request){.tensor = (uint32_t)k, .file_index = file, .offset = off, .size = len,
                               .strategy = EMEL_STRATEGY_STAGED,
                               .flags = (flags & 1 ? EMEL_LOAD_DIRECT : 0) | (flags & 2 ? 0 : EMEL_LOAD_CONSUMER) |
                                        (flags & 4 ? EMEL_LOAD_POPULATE : 0),
                               .target = &c[k]};
      bad_consumer[k] = (flags & 2) || (flags & 32) || (s->target && len > MAX_FILE);
      valid[k] = len > 0 && off + len <= h->file_size && !(flags & 4) && !bad_consumer[k];
    }
    const size_t live_before = emel_io_live(io, EMEL_STRATEGY_STAGED);
    emel_io_acquire_batch(io, q, res, (size_t)n);
    const int faulted = fired(h, before);
    int granted = 0, a_consumer_failed = 0;
    for (int k = 0; k < n; k++) a_consumer_failed |= h->sinks[k].failed;
    for (int k = 0; k < n; k++) {
      sink *s = &h->sinks[k];
      const emel_error e = res[k].error;
      if (e.code == EMEL_OK) {
        REQUIRE(valid[k]);
        REQUIRE(s->next == s->size && !s->failed);
        REQUIRE(res[k].size == s->size && res[k].strategy == EMEL_STRATEGY_STAGED);
        REQUIRE(res[k].residency == (s->target ? EMEL_RESIDENCY_EXTERNAL : EMEL_RESIDENCY_DELIVERED));
        REQUIRE(res[k].data == s->target);
        if (s->target) REQUIRE(memcmp(s->target, h->file + s->offset, s->size) == 0);
        REQUIRE(n_held < MAX_HELD);
        held_tensor[n_held] = (uint32_t)k;
        held[n_held++] = res[k].handle;
        granted++;
        continue;
      }
      switch (e.code) {
      case EMEL_INVALID_REQUEST: REQUIRE(!valid[k]); break;
      case EMEL_STAGED_NO_CONSUMER: REQUIRE(!(q[k].flags & EMEL_LOAD_CONSUMER)); break;
      case EMEL_SPAN_BEYOND_EOF: REQUIRE(q[k].offset + q[k].size > h->file_size); break;
      case EMEL_POOL_EXHAUSTED: REQUIRE(live_before + (size_t)n > pool); break;
      case EMEL_STAGED_CONSUMER_FAILED: REQUIRE(s->failed && e.os_errno == 1000 + k); break;
      case EMEL_STAGED_STREAM_STOPPED: REQUIRE(s->calls == 0 && (faulted || a_consumer_failed)); break;
      case EMEL_OPEN_FAILED:
      case EMEL_STAT_FAILED:
      case EMEL_READ_FAILED:
      case EMEL_READ_UNEXPECTED_EOF:
      case EMEL_STAGED_HANDOFF_FAILED: REQUIRE(faulted); break;
      default: REQUIRE(!"an unexpected code");
      }
      REQUIRE(!valid[k] || e.code != EMEL_INVALID_REQUEST);
    }
    REQUIRE(emel_io_live(io, EMEL_STRATEGY_STAGED) == live_before + (size_t)granted);
    if (!(head & 128)) { /* release this round's, newest first */
      while (n_held > 0) {
        const uint32_t t = held_tensor[--n_held];
        const int before_released = h->sinks[t].released;
        REQUIRE(emel_io_release(io, held[n_held], NULL) == EMEL_OK);
        REQUIRE(h->sinks[t].released == before_released + 1);
        REQUIRE(emel_io_release(io, held[n_held], NULL) == EMEL_INVALID_HANDLE); /* now stale */
      }
    }
  }
  for (int i = n_held; i-- > 0;) REQUIRE(emel_io_release(io, held[i], NULL) == EMEL_OK);
  REQUIRE(emel_io_live(io, EMEL_STRATEGY_STAGED) == 0);
  /* Recovery: without faults, a valid load of the whole file succeeds. */
  fault_platform_clear_faults(&h->fp);
  memset(h->sinks, 0, sizeof h->sinks);
  h->sinks[0] = (sink){.size = h->file_size};
  emel_staged_consumer c0 = EMEL_STAGED_CONSUMER_INIT(.consume = consume, .release = release_cb);
  emel_io_request q0 = {.file_index = file, .size = h->file_size, .strategy = EMEL_STRATEGY_STAGED,
                        .flags = EMEL_LOAD_CONSUMER, .target = &c0};
  emel_io_result r0;
  REQUIRE(emel_io_acquire(io, &q0, &r0) == EMEL_OK);
  REQUIRE(h->sinks[0].next == h->file_size);
  REQUIRE(emel_io_release(io, r0.handle, NULL) == EMEL_OK);
  emel_io_destroy(io);
  REQUIRE(fault_platform_outstanding(&h->fp) == 0);
  REQUIRE(h->fp.live_threads == 0 && h->fp.live_events == 0);
  REQUIRE(memory_file_outstanding(&h->mf) == 0);
  return 0;
}

/* A platform-operations table for tests: wraps the production defaults,
 * counts every call and everything acquired (fds, mappings, locked ranges,
 * allocations, started threads), and makes chosen calls fail with a chosen
 * errno or return a short transfer. Leak checks read the counters after the
 * code under test has released what it holds.
 *
 * Thread-safe: the read strategy calls pread/preadv/fadvise from its worker
 * threads, so every counter update and fault decision is made under `lock`
 * (the nth call is then the nth in the order the lock was taken). Read the
 * counters directly only when no worker runs (after the call under test). */
#ifndef EMEL_TESTS_FAULT_PLATFORM_H
#define EMEL_TESTS_FAULT_PLATFORM_H

#include <pthread.h>
#include <stdint.h>

#include "emel/platform.h"

/* One per platform op, in the list's order (emel_platform_op_name gives its
 * name). A failure injected at FP_GUARD reports -err without running touch:
 * a SIGBUS that was caught. free cannot fail (its calls are counted);
 * page_size, can_map and cpu_count are answered, never counted or failed.
 * clock_ns cannot fail: a fault injected there reads 0 (the clock jumps back);
 * one at FP_EVENT_SIGNAL signals nothing, one at FP_EVENT_WAIT returns at once. */
typedef enum fp_op {
#define FP_OP_(NAME, name, ret, params, pair) FP_##NAME,
  EMEL_PLATFORM_OPS_LIST(FP_OP_)
#undef FP_OP_
  FP_OP_COUNT
} fp_op;

typedef struct fp_fault {
  uint64_t first; /* 1-based call index of the first failing call; 0 = never */
  uint64_t count; /* how many consecutive calls fail from `first` */
  int err;        /* positive errno to return (as -err) */
  int64_t short_len; /* FP_PREAD/FP_PREADV only: >= 0 means "transfer at most this many bytes" instead of failing */
  int64_t touch_ns;  /* FP_FILE_IDENTITY only: non-zero means "succeed, mtime moved by this" instead of failing */
} fp_fault;

/* One madvise (FP_ADVISE) or posix_fadvise (FP_FADVISE) call as the code
 * under test made it, injected failures included: tests check the advice and
 * the exact range, which counting calls alone cannot (a DONTNEED that covers a
 * neighbour's page, or WILLNEED where DONTNEED was meant, counts the same). */
typedef struct fp_advice {
  fp_op op;         /* FP_ADVISE or FP_FADVISE */
  int fd;           /* FP_FADVISE: the descriptor; -1 for FP_ADVISE */
  const void *addr; /* FP_ADVISE: the first byte; NULL for FP_FADVISE */
  uint64_t offset;  /* FP_FADVISE: the file offset; 0 for FP_ADVISE */
  uint64_t len;
  int advice;       /* emel_map_advice (FP_ADVISE) or emel_file_advice (FP_FADVISE) */
  int result;       /* what the call returned to the code under test */
} fp_advice;

enum { FP_ADVICE_LOG = 256 }; /* calls recorded; later ones are only counted in advice_lost */

typedef struct fault_platform {
  emel_platform_ops ops; /* pass &fp.ops to the code under test */
  pthread_mutex_t lock;  /* guards everything below (the struct must not be copied after init) */
  const emel_platform_ops *real;
  uint64_t calls[FP_OP_COUNT];
  fp_fault faults[FP_OP_COUNT];
  int can_map;           /* what can_map reports (default 1) */
  int cpu_count;         /* what cpu_count reports; 0: the real count */
  int random_fixed;      /* non-zero: random returns random_value's bytes (repeated), not the OS's */
  uint64_t random_value;
  /* outstanding resources */
  int64_t open_fds;
  int64_t live_maps;
  int64_t mapped_bytes;
  int64_t locked_bytes;
  int64_t live_allocs;
  int64_t alloc_bytes;
  int64_t peak_alloc_bytes;
  int64_t live_threads;
  int64_t live_events; /* event_open descriptors not yet closed */
  int64_t live_rings;  /* ring_open rings not yet closed */
  /* ring completions (fault_platform_ring_completion): counted over every ring */
  uint64_t completions;
  fp_fault completion_fault;
  int emulated_rings;  /* rings emulated with pread because the machine has no io_uring */
  int64_t ring_in_flight, ring_peak_in_flight; /* reads queued and not yet returned, over every ring */
  /* > 0: event waits last at most this long. A wakeup lost to an injected
   * event_signal fault then costs this, not the library's bound (100 ms): the
   * sweep injects hundreds of them, and waits too long would dominate it. */
  int wait_cap_ms;
  int no_ring;         /* non-zero: ring_open fails with ENOSYS, as on a machine without io_uring
                          (tests of the pread lanes' routes set it) */
  /* fault_platform_before_read: reads counted over pread and preadv */
  uint64_t reads, before_read_at;
  void (*before_read)(void *);
  void *before_read_arg;
  /* advise and fadvise calls in the order they took the lock (read them with
   * fault_platform_advices) */
  fp_advice advice_log[FP_ADVICE_LOG];
  size_t advice_logged;
  uint64_t advice_lost;
} fault_platform;

void fault_platform_init(fault_platform *fp);

/* The nth call (1-based) of `op` fails with -err. */
void fault_platform_fail(fault_platform *fp, fp_op op, uint64_t nth, int err);
/* `count` consecutive calls from the nth fail with -err (an EINTR storm, say). */
void fault_platform_fail_many(fault_platform *fp, fp_op op, uint64_t nth, uint64_t count, int err);
/* The nth pread transfers at most `len` bytes (0 = a premature end of file). */
void fault_platform_short_read(fault_platform *fp, uint64_t nth, uint64_t count, int64_t len);
/* The same for preadv: the nth preadv transfers at most `len` bytes in all. */
void fault_platform_short_readv(fault_platform *fp, uint64_t nth, uint64_t count, int64_t len);
/* From the nth file_identity call on, `count` calls report `delta_ns` added
 * to the modification time: the file looks rewritten in place. */
void fault_platform_touch(fault_platform *fp, uint64_t nth, uint64_t count, int64_t delta_ns);
/* Called (under no lock) before the nth pread/preadv runs, once: lets a test
 * change the file in the middle of a transfer. */
void fault_platform_before_read(fault_platform *fp, uint64_t nth, void (*fn)(void *), void *arg);
/* From the nth completion a ring returns (1-based, over every ring), `count`
 * completions report -err instead of what happened (err 0: at most `len`
 * bytes, a short read). EINTR / EAGAIN make them interrupted. The read itself
 * ran as asked. */
void fault_platform_ring_completion(fault_platform *fp, uint64_t nth, uint64_t count, int err, int64_t len);
/* Clears the faults, keeps counters. */
void fault_platform_clear_faults(fault_platform *fp);

/* Copies the recorded calls of `op` (FP_ADVISE or FP_FADVISE), oldest first,
 * into out[0..max) and returns how many there are (possibly more than max).
 * Calls past FP_ADVICE_LOG are not recorded: a test that relies on the log
 * forgets it first and can check advice_lost == 0. */
size_t fault_platform_advices(fault_platform *fp, fp_op op, fp_advice *out, size_t max);
/* Empties the log (counters are kept): the next advices are the test's own. */
void fault_platform_forget_advices(fault_platform *fp);

/* Outstanding fds + mappings + locked ranges + allocations + threads + event
 * descriptors + rings: 0 when nothing leaked. */
int64_t fault_platform_outstanding(const fault_platform *fp);

/* calls[op] read under the lock (while worker threads may be counting). */
uint64_t fault_platform_calls(fault_platform *fp, fp_op op);

const char *fp_op_name(fp_op op);

#endif

/* The io_uring bookkeeping both reading strategies share (read: one ring per
 * lane; staged: the reader's): a circle of reads kept in flight through the
 * platform's ring ops, completions matched back to their reads, and the
 * drain that must precede freeing any buffer a read may still write.
 *
 * Policy stays with each strategy: what to read ahead, what a short, failed
 * or interrupted completion means (this module only records `res`), the
 * chart's events and the counters. One thread at a time uses a ring.
 * Internal (hidden symbols). */
#ifndef EMEL_IO_RING_H
#define EMEL_IO_RING_H

#include <stdint.h>

#include "emel/platform.h"

/* Whether the ring is open: a refusal (ENOSYS, EPERM, ENOMEM...) is final for
 * its owner; a ring closed because it could not be waited for is UNTRIED
 * again, so the next transfer opens another. */
enum emel_ring_state { EMEL_RING_UNTRIED = 0, EMEL_RING_OPEN = 1, EMEL_RING_REFUSED = 2 };

enum emel_ring_req_state { EMEL_RING_TO_SEND = 0, EMEL_RING_IN_FLIGHT = 1, EMEL_RING_DONE = 2 };

/* One read: file bytes [off, off + len) of fd into dst. An entry its owner
 * marks DONE itself (a gap nobody reads, dst NULL) is never sent. */
typedef struct emel_ring_req {
  uint64_t off, len;
  unsigned char *dst;
  const void *owner; /* the strategy's: what the read is for */
  int fd;
  int state;         /* enum emel_ring_req_state */
  int64_t res;       /* DONE: what the completion said (bytes, 0 at end of file, -errno) */
} emel_ring_req;

/* reqs[] is a circle: `head` is the oldest read still wanted, head + count
 * the next one to be made; the tag of a read is its index in reqs[]. */
typedef struct emel_ring {
  const emel_platform_ops *platform;
  void *handle; /* the platform's ring; NULL: none open */
  int state;    /* enum emel_ring_state */
  uint32_t depth; /* 0: no ring at all */
  emel_ring_req *reqs;        /* depth entries */
  emel_ring_completion *cqes; /* depth entries */
  uint32_t head, count, in_flight;
} emel_ring;

/* Allocates the circle (nothing with depth 0); 0, or -ENOMEM with what was
 * allocated kept for emel_ring_fini (every allocation is tried, as before). */
int emel_ring_init(emel_ring *ring, const emel_platform_ops *platform, uint32_t depth);

/* Closes the ring (its owner drained it first) and frees the circle. */
void emel_ring_fini(emel_ring *ring);

/* Opens the platform ring: 0, or -errno and the state REFUSED. */
int emel_ring_open(emel_ring *ring);

/* The k-th read of the circle from its head (k < depth). */
emel_ring_req *emel_ring_at(emel_ring *ring, uint32_t k);

/* Appends a read (count < depth), zeroed, TO_SEND: the caller fills it in. */
emel_ring_req *emel_ring_push(emel_ring *ring);

/* The head read is done with: the circle moves on. */
void emel_ring_pop(emel_ring *ring);

/* Queues one read: 0 (IN_FLIGHT) or -errno (still TO_SEND). */
int emel_ring_send(emel_ring *ring, emel_ring_req *q);

/* Queues every TO_SEND read of the circle (those asked again after a short or
 * interrupted completion), oldest first; *sent counts those queued. */
int emel_ring_send_waiting(emel_ring *ring, uint64_t *sent);

/* Takes completions until `until` is DONE (NULL: until none is in flight),
 * each recorded in the read its tag names, in whatever order they come;
 * *bytes (if given) adds every positive result. 0, or -errno of a failed
 * wait (-EINTR: call again), -EPROTO for a wait that returned none. */
int emel_ring_reap(emel_ring *ring, const emel_ring_req *until, uint64_t *bytes);

/* Before a buffer any read may write is freed or reused: waits for every read
 * in flight (max_eintr interrupted waits at most: EINTR or EAGAIN); a ring that cannot
 * be waited for is closed, which cancels and waits for its reads, and is
 * UNTRIED again. Empties the circle. */
void emel_ring_drain(emel_ring *ring, uint32_t max_eintr, uint64_t *bytes);

/* Asks again for the rest of q from file offset `from` (in [q->off, q->off +
 * q->len)): the destination moves with it. */
void emel_ring_retry_from(emel_ring_req *q, uint64_t from);

#endif

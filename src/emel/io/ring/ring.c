/* The shared ring engine (ring.h): bookkeeping only; every decision about a
 * completion's result is the calling strategy's. */
#include "ring.h"

#include <errno.h>
#include <string.h>

int emel_ring_init(emel_ring *ring, const emel_platform_ops *platform, uint32_t depth) {
  memset(ring, 0, sizeof *ring);
  ring->platform = platform;
  ring->depth = depth;
  if (depth == 0) return 0;
  const emel_platform_ops *p = platform;
  ring->reqs = p->alloc(p->user, (size_t)depth * sizeof *ring->reqs, _Alignof(emel_ring_req));
  ring->cqes = p->alloc(p->user, (size_t)depth * sizeof *ring->cqes, _Alignof(emel_ring_completion));
  return ring->reqs && ring->cqes ? 0 : -ENOMEM;
}

void emel_ring_fini(emel_ring *ring) {
  const emel_platform_ops *p = ring->platform;
  if (!p) return; /* never initialised (an owner that failed earlier) */
  if (ring->handle) (void)p->ring_close(p->user, ring->handle);
  if (ring->reqs) p->free(p->user, ring->reqs, (size_t)ring->depth * sizeof *ring->reqs);
  if (ring->cqes) p->free(p->user, ring->cqes, (size_t)ring->depth * sizeof *ring->cqes);
  ring->handle = NULL;
  ring->reqs = NULL;
  ring->cqes = NULL;
}

int emel_ring_open(emel_ring *ring) {
  const emel_platform_ops *p = ring->platform;
  void *handle = NULL;
  const int r = p->ring_open(p->user, ring->depth, &handle);
  if (r < 0) {
    ring->state = EMEL_RING_REFUSED;
    return r;
  }
  ring->handle = handle;
  ring->state = EMEL_RING_OPEN;
  return 0;
}

emel_ring_req *emel_ring_at(emel_ring *ring, uint32_t k) { return &ring->reqs[(ring->head + k) % ring->depth]; }

emel_ring_req *emel_ring_push(emel_ring *ring) {
  emel_ring_req *q = emel_ring_at(ring, ring->count++);
  *q = (emel_ring_req){.state = EMEL_RING_TO_SEND, .fd = -1};
  return q;
}

void emel_ring_pop(emel_ring *ring) {
  ring->head = (ring->head + 1) % ring->depth;
  ring->count--;
}

int emel_ring_send(emel_ring *ring, emel_ring_req *q) {
  const emel_platform_ops *p = ring->platform;
  const int r = p->ring_read(p->user, ring->handle, q->fd, q->dst, (size_t)q->len, q->off, (uint64_t)(q - ring->reqs));
  if (r < 0) return r;
  q->state = EMEL_RING_IN_FLIGHT;
  ring->in_flight++;
  return 0;
}

int emel_ring_send_waiting(emel_ring *ring, uint64_t *sent) {
  for (uint32_t k = 0; k < ring->count; k++) {
    emel_ring_req *q = emel_ring_at(ring, k);
    if (q->state != EMEL_RING_TO_SEND) continue;
    const int r = emel_ring_send(ring, q);
    if (r < 0) return r;
    ++*sent;
  }
  return 0;
}

int emel_ring_reap(emel_ring *ring, const emel_ring_req *until, uint64_t *bytes) {
  const emel_platform_ops *p = ring->platform;
  while (ring->in_flight > 0 && (!until || until->state == EMEL_RING_IN_FLIGHT)) {
    const int n = p->ring_wait(p->user, ring->handle, 1, ring->cqes, ring->depth);
    if (n < 0) return n;
    if (n == 0) return -EPROTO; /* a wait for one that returned none: a broken op, not a reason to spin */
    for (int i = 0; i < n && i < (int)ring->depth; i++) {
      const emel_ring_completion *c = &ring->cqes[i];
      if (c->tag >= ring->depth || ring->reqs[c->tag].state != EMEL_RING_IN_FLIGHT) continue; /* not ours */
      emel_ring_req *q = &ring->reqs[c->tag];
      q->state = EMEL_RING_DONE;
      q->res = c->res;
      ring->in_flight--;
      if (bytes && c->res > 0) *bytes += (uint64_t)c->res;
    }
  }
  return 0;
}

void emel_ring_drain(emel_ring *ring, uint32_t max_eintr, uint64_t *bytes) {
  for (uint32_t tries = 0; ring->in_flight > 0;) {
    const int r = emel_ring_reap(ring, NULL, bytes);
    if (r == 0) break;
    /* EAGAIN (the kernel short of resources for now) is as transient as EINTR:
     * waited again within the budget, not a reason to drop the ring. */
    if ((r == -EINTR || r == -EAGAIN) && ++tries <= max_eintr) continue;
    const emel_platform_ops *p = ring->platform;
    (void)p->ring_close(p->user, ring->handle); /* gone either way: the close waits for its reads */
    ring->handle = NULL;
    ring->state = EMEL_RING_UNTRIED;
    ring->in_flight = 0;
  }
  ring->head = ring->count = 0;
}

void emel_ring_retry_from(emel_ring_req *q, uint64_t from) {
  if (q->dst) q->dst += from - q->off;
  q->len = q->off + q->len - from;
  q->off = from;
  q->state = EMEL_RING_TO_SEND;
}

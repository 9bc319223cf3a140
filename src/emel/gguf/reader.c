/* On-demand, growing buffer of a file's leading bytes, read through ops.pread. */
#include "internal.h"

#include <errno.h>
#include <string.h>

enum { READ_STEP = 64 * 1024 };

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Grows the buffer to hold at least `need` bytes (need <= file_size). */
static emel_status reader_grow(gguf_reader *r, uint64_t need) {
  uint64_t want = (uint64_t)r->cap * 2;
  if (want < need) want = need;
  if (want < READ_STEP) want = READ_STEP;
  want = min_u64(want, r->file_size);
  if (want > SIZE_MAX) return EMEL_OUT_OF_MEMORY;
  uint8_t *nb = r->ops->alloc(r->ops->user, (size_t)want, 16);
  if (!nb) return EMEL_OUT_OF_MEMORY;
  if (r->len) memcpy(nb, r->buf, r->len);
  if (r->buf) r->ops->free(r->ops->user, r->buf, r->cap);
  r->buf = nb;
  r->cap = (size_t)want;
  return EMEL_OK;
}

/* Reads into [len, target), retrying short reads and -EINTR. */
static emel_status reader_fill(gguf_reader *r, uint64_t target) {
  while (r->len < target) {
    int64_t n = r->ops->pread(r->ops->user, r->fd, r->buf + r->len, (size_t)(target - r->len), r->len);
    if (n == -EINTR) continue;
    if (n < 0) {
      r->os_errno = (int)-n;
      return EMEL_READ_FAILED;
    }
    if (n == 0) return EMEL_GGUF_TRUNCATED; /* the file shrank under us */
    r->len += (size_t)n;
  }
  return EMEL_OK;
}

emel_status emel_gguf_reader_ensure(gguf_reader *r, uint64_t pos, uint64_t n) {
  if (pos > r->file_size || n > r->file_size - pos) return EMEL_GGUF_TRUNCATED;
  uint64_t need = pos + n;
  if (need <= r->len) return EMEL_OK;
  if (need > r->cap) {
    emel_status st = reader_grow(r, need);
    if (st != EMEL_OK) return st;
  }
  /* read ahead a step, so many small fields cost one call */
  uint64_t target = min_u64(r->cap, need > r->len + READ_STEP ? need : r->len + READ_STEP);
  return reader_fill(r, target);
}

void emel_gguf_reader_release(gguf_reader *r) {
  if (r->buf) r->ops->free(r->ops->user, r->buf, r->cap);
  r->buf = NULL;
  r->cap = r->len = 0;
}

#include "fake_strategy.h"

#include <string.h>

static void fake_acquire(void *self, const emel_io_request *req, emel_io_result *res) {
  fake_strategy *f = self;
  f->acquires++;
  if (f->acquire_error.code != EMEL_OK) {
    res->error = f->acquire_error;
    return;
  }
  if (req->offset > sizeof f->bytes || req->size > sizeof f->bytes - req->offset) {
    res->error.code = EMEL_SPAN_BEYOND_EOF;
    return;
  }
  res->data = f->bytes + req->offset;
  res->size = req->size;
  res->residency = EMEL_RESIDENCY_OWNED;
  res->handle.strategy = EMEL_STRATEGY_READ;
  res->handle.slot = (uint32_t)req->offset;
  res->handle.generation = ++f->generation;
  f->live++;
}

static emel_error fake_release(void *self, emel_io_handle h) {
  fake_strategy *f = self;
  (void)h;
  f->releases++;
  if (f->release_error.code != EMEL_OK) return f->release_error;
  f->live--;
  return (emel_error){.code = EMEL_OK, .os_errno = 0};
}

static void fake_batch(void *self, const emel_io_request *reqs, emel_io_result *res, size_t n) {
  fake_strategy *f = self;
  f->batches++;
  for (size_t i = 0; i < n; i++) fake_acquire(self, &reqs[i], &res[i]);
}

static size_t fake_live(const void *self) { return ((const fake_strategy *)self)->live; }

static void fake_destroy(void *self) { ((fake_strategy *)self)->destroyed = 1; }

const emel_io_strategy_ops fake_strategy_ops = {
    .struct_size = sizeof(emel_io_strategy_ops),
    .kind = EMEL_STRATEGY_READ,
    .name = "fake",
    .acquire = fake_acquire,
    .release = fake_release,
    .advise = NULL,
    .acquire_batch = fake_batch,
    .live = fake_live,
    .destroy = fake_destroy,
};

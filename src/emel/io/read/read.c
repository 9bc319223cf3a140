/* The read strategy's entry points: pools allocated once at attach, each
 * request dispatched through statecharts/io_read.rl, batches prepared,
 * sorted and coalesced into runs here (planning only: every read and every
 * failure route is the machine's). */
#include "read.h"

#include <stdlib.h>
#include <string.h>

static void dispatch(io_read_ctx *m, int event) {
  emel_machine_init(&m->core, &io_read_desc);
  emel_status s = emel_machine_dispatch(&m->core, &io_read_desc, m, event);
  if (s != EMEL_OK) m->error = (emel_error){s, 0}; /* a spec defect, reported as such */
}

static void read_acquire(void *opaque, const emel_io_request *request, emel_io_result *result) {
  read_member member = {.request = request, .result = result, .fd = -1};
  io_read_ctx m = {.self = opaque, .member = &member, .read_now = 1};
  dispatch(&m, READ_EV_ACQUIRE);
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

static void transfer_run(io_read *self, read_member *run, size_t count) {
  io_read_ctx m = {.self = self, .run = run, .run_count = count};
  m.run_start = run[0].request->offset;
  m.run_end = run[count - 1].request->offset + run[count - 1].request->size;
  for (size_t k = 1; k < count; k++)
    self->stats.gap_bytes += run[k].request->offset - (run[k - 1].request->offset + run[k - 1].request->size);
  self->stats.coalesced += count - 1;
  dispatch(&m, READ_EV_TRANSFER_RUN);
}

static void read_acquire_batch(void *opaque, const emel_io_request *requests, emel_io_result *results,
                               size_t count) {
  io_read *self = opaque;
  for (size_t base = 0; base < count; base += EMEL_IO_READ_BATCH_WINDOW) {
    size_t window = count - base < EMEL_IO_READ_BATCH_WINDOW ? count - base : EMEL_IO_READ_BATCH_WINDOW;
    size_t prepared = 0;
    for (size_t i = 0; i < window; i++) {
      read_member *x = &self->batch[prepared];
      *x = (read_member){.request = &requests[base + i], .result = &results[base + i], .fd = -1};
      io_read_ctx m = {.self = self, .member = x};
      dispatch(&m, READ_EV_PREPARE);
      if (m.prepared) prepared++;
      else results[base + i].error = m.error;
    }
    qsort(self->batch, prepared, sizeof *self->batch, by_file_then_offset);
    for (size_t i = 0, j; i < prepared; i = j) {
      for (j = i + 1; j < prepared && joins_run(&self->batch[j - 1], &self->batch[j]); j++) {}
      transfer_run(self, &self->batch[i], j - i);
    }
  }
}

static emel_error read_release(void *opaque, emel_io_handle handle) {
  io_read_ctx m = {.self = opaque, .handle = handle};
  dispatch(&m, READ_EV_RELEASE);
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
  if (self->bounce) p.free(p.user, self->bounce, self->block);
  if (self->gap_scratch) p.free(p.user, self->gap_scratch, EMEL_IO_READ_MAX_GAP);
  if (self->batch) p.free(p.user, self->batch, EMEL_IO_READ_BATCH_WINDOW * sizeof *self->batch);
  p.free(p.user, self, sizeof *self);
}

static const emel_io_strategy_ops read_ops = {
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

emel_status emel_io_read_attach(emel_io *io, const emel_io_read_config *config) {
  if (!io || emel_io_has_strategy(io, EMEL_STRATEGY_READ)) return EMEL_INVALID_ARGUMENT;
  const emel_io_read_config none = {0};
  if (!config) config = &none;
  const size_t alignment = config->alignment ? config->alignment : EMEL_IO_READ_MIN_ALIGNMENT;
  if (!power_of_two(alignment) || alignment < EMEL_IO_READ_MIN_ALIGNMENT) return EMEL_INVALID_ARGUMENT;
  const size_t huge_page = config->huge_page_size ? config->huge_page_size : EMEL_IO_READ_DEFAULT_HUGE_PAGE;
  if (!power_of_two(huge_page)) return EMEL_INVALID_ARGUMENT;
  const emel_platform_ops p = *emel_io_platform(io);
  const size_t block = p.page_size(p.user);
  if (!power_of_two(block)) return EMEL_INVALID_ARGUMENT;

  io_read *self = p.alloc(p.user, sizeof *self, _Alignof(io_read));
  if (!self) return EMEL_OUT_OF_MEMORY;
  memset(self, 0, sizeof *self);
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
  self->slots = p.alloc(p.user, (size_t)self->slot_capacity * sizeof *self->slots, _Alignof(read_slot));
  self->file_state = p.alloc(p.user, (size_t)self->file_capacity * sizeof *self->file_state, _Alignof(read_file));
  self->bounce = p.alloc(p.user, block, block);
  self->gap_scratch = p.alloc(p.user, EMEL_IO_READ_MAX_GAP, EMEL_IO_READ_MIN_ALIGNMENT);
  self->batch = p.alloc(p.user, EMEL_IO_READ_BATCH_WINDOW * sizeof *self->batch, _Alignof(read_member));
  if (self->slots) memset(self->slots, 0, (size_t)self->slot_capacity * sizeof *self->slots);
  if (self->file_state)
    for (uint32_t i = 0; i < self->file_capacity; i++)
      self->file_state[i] = (read_file){.fd = {-1, -1}};
  if (!self->slots || !self->file_state || !self->bounce || !self->gap_scratch || !self->batch) {
    read_destroy(self);
    return EMEL_OUT_OF_MEMORY;
  }
  for (uint32_t i = 0; i < self->slot_capacity; i++) {
    /* Generations start at 1 so that a zeroed handle is never live. */
    self->slots[i] = (read_slot){.generation = 1, .next_free = i + 2 <= self->slot_capacity ? i + 2 : 0};
  }
  self->free_head = 1;
  return emel_io_attach(io, &read_ops, self);
}

emel_status emel_io_read_stats_of(const emel_io *io, emel_io_read_stats *stats) {
  if (!stats) return EMEL_INVALID_ARGUMENT;
  const io_read *self = emel_io_strategy_self(io, EMEL_STRATEGY_READ, &read_ops);
  if (!self) return EMEL_UNKNOWN_STRATEGY;
  *stats = self->stats;
  return EMEL_OK;
}

/* The staged strategy's entry points: the ring and pools allocated once at
 * attach; each request prepared through statecharts/io_staged.rl, then the
 * prepared ones streamed in file order by one STREAM dispatch (whose reader
 * runs FILL once per window). Planning only here: every read, wait and
 * failure route is the machine's. The contract is in include/emel/io_staged.h. */
#include "staged.h"
#include "emel/report.h"
#include "emel/util/struct_size.h"

#include <stdlib.h>
#include <string.h>

static const emel_error broken_error = {.code = EMEL_INTERNAL, .os_errno = 0};

static emel_status dispatch(io_staged_ctx *m, int event) {
  emel_machine_init(&m->core, &emel_io_staged_desc);
  return emel_machine_dispatch(&m->core, &emel_io_staged_desc, m, event);
}

/* A member's window. A buffered window is copied twice while it is warm (by
 * the kernel into the ring, by the consumer out of it): at most
 * EMEL_IO_STAGED_BUFFERED_WINDOW, the bytes the reader fills ahead of the
 * consumer (the buffers' windows) stay in the cache until they are consumed
 * (measured: 3.0-3.4 GB/s with 16 MiB windows, 4.3-5.8 GB/s with 1 MiB, 2 GiB
 * warm: README, the staged strategy's "Windows"). A direct window fills the
 * buffer: the device, not the cache, is its limit, and it wants large reads. */
static uint64_t window_of(const io_staged *self, const staged_member *x) {
  if (x->mode == STAGED_DIRECT || self->window_bytes <= EMEL_IO_STAGED_BUFFERED_WINDOW) return self->window_bytes;
  return EMEL_IO_STAGED_BUFFERED_WINDOW;
}

static uint64_t windows_of(const io_staged *self, const staged_member *x) {
  const uint64_t size = x->request->size, window = window_of(self, x);
  return size / window + (size % window != 0);
}

void emel_staged_locate(const io_staged *self, uint64_t w, size_t *member, uint64_t *offset, uint64_t *bytes) {
  size_t i = 0;
  for (; i + 1 < self->member_count; i++) {
    const uint64_t n = windows_of(self, &self->members[i]);
    if (w < n) break;
    w -= n;
  }
  const uint64_t size = self->members[i].request->size, window = window_of(self, &self->members[i]);
  *member = i;
  *offset = w * window;
  *bytes = size - *offset < window ? size - *offset : window;
}

/* One window's FILL. A defect (the chart rejected an outcome) publishes the
 * window as failed, so the consumer never waits for a window that cannot come. */
void emel_staged_fill(io_staged *self, uint64_t w, emel_io_staged_stats *stats) {
  io_staged_ctx f = {.self = self, .window = w, .stats = stats};
  emel_staged_locate(self, w, &f.fill_member, &f.fill_offset, &f.fill_bytes);
  const staged_member *x = &self->members[f.fill_member];
  const uint64_t at = x->request->offset + f.fill_offset;
  f.file_start = at;
  f.need = f.asked = f.fill_bytes;
  if (x->mode == STAGED_DIRECT) { /* whole blocks around the window, placed so the block boundaries align */
    f.file_start = at - at % self->block;
    f.need = at - f.file_start + f.fill_bytes;
    f.asked = (f.need + self->block - 1) / self->block * self->block;
  }
  if (dispatch(&f, IO_STAGED_EV_FILL) != EMEL_OK &&
      atomic_load_explicit(&self->filled, memory_order_relaxed) <= w &&
      atomic_load_explicit(&self->failed_at, memory_order_relaxed) != w) {
    self->reader_defect = 1;
    self->failure = broken_error;
    atomic_store_explicit(&self->failed_at, w, memory_order_release);
  }
}

static int note_broken(io_staged *self, const io_staged_ctx *m) {
  if (emel_machine_broken(&m->core, &emel_io_staged_desc)) self->broken = 1;
  return self->broken;
}

static int by_file_then_offset(const void *a, const void *b) {
  const emel_io_request *x = ((const staged_member *)a)->request, *y = ((const staged_member *)b)->request;
  if (x->file_index != y->file_index) return x->file_index < y->file_index ? -1 : 1;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  return 0;
}

/* Prepares each request of one window (a refusal is its own result), then
 * streams the prepared ones in file order. */
static void stream_window(io_staged *self, const emel_io_request *requests, emel_io_result *results, size_t n) {
  size_t prepared = 0;
  for (size_t i = 0; i < n; i++) {
    results[i] = (emel_io_result){.strategy = EMEL_STRATEGY_STAGED};
    if (self->broken) {
      results[i].error = broken_error;
      continue;
    }
    staged_member *x = &self->members[prepared];
    *x = (staged_member){.request = &requests[i], .result = &results[i], .fd = -1};
    io_staged_ctx m = {.self = self, .member = x, .stats = &self->stats};
    (void)dispatch(&m, IO_STAGED_EV_PREPARE);
    const int joins = io_staged_accepts(m.core.cs, IO_STAGED_EV_JOIN_STREAM);
    if (joins) (void)emel_machine_dispatch(&m.core, &emel_io_staged_desc, &m, IO_STAGED_EV_JOIN_STREAM);
    if (!note_broken(self, &m) && joins && m.error.code == EMEL_OK) {
      prepared++;
    } else {
      results[i].error = self->broken ? broken_error : m.error;
    }
  }
  if (prepared == 0) return;
  qsort(self->members, prepared, sizeof *self->members, by_file_then_offset);
  self->member_count = prepared;
  self->total_windows = 0;
  for (size_t i = 0; i < prepared; i++) self->total_windows += windows_of(self, &self->members[i]);
  io_staged_ctx s = {.self = self, .stats = &self->stats};
  self->reader_defect = 0;
  const emel_status streamed = dispatch(&s, IO_STAGED_EV_STREAM);
  /* A FILL the chart broke (on the reader, joined by now) breaks the strategy as a broken request would. */
  if (self->reader_defect) self->broken = 1;
  if (streamed != EMEL_OK || note_broken(self, &s)) {
    /* A defect mid-stream: nothing is granted; the slots stay reserved until
     * destroy. A reader still running is stopped first (it uses the ring). */
    self->broken = 1;
    if (self->reader_running) {
      atomic_store_explicit(&self->stop, 1, memory_order_release);
      (void)self->platform.thread_join(self->platform.user, self->thread);
      self->reader_running = 0;
    }
    for (size_t i = 0; i < prepared; i++) self->members[i].result->error = broken_error;
  }
  self->member_count = 0;
}

static void staged_acquire_batch(void *opaque, const emel_io_request *requests, emel_io_result *results,
                                 size_t count) {
  io_staged *self = opaque;
  for (size_t base = 0; base < count; base += EMEL_IO_STAGED_BATCH_WINDOW) {
    const size_t n = count - base < EMEL_IO_STAGED_BATCH_WINDOW ? count - base : EMEL_IO_STAGED_BATCH_WINDOW;
    stream_window(self, requests + base, results + base, n);
  }
}

static void staged_acquire(void *opaque, const emel_io_request *request, emel_io_result *result) {
  staged_acquire_batch(opaque, request, result, 1);
}

static emel_error staged_release(void *opaque, emel_io_handle handle) {
  io_staged *self = opaque;
  if (self->broken) return broken_error;
  io_staged_ctx m = {.self = self, .handle = handle, .stats = &self->stats};
  const emel_status s = dispatch(&m, IO_STAGED_EV_RELEASE);
  (void)note_broken(self, &m);
  return s != EMEL_OK ? (emel_error){.code = s} : m.error;
}

static size_t staged_live(const void *opaque) { return ((const io_staged *)opaque)->live; }

static void staged_destroy(void *opaque) {
  io_staged *self = opaque;
  const emel_platform_ops p = self->platform;
  if (self->slots) p.free(p.user, self->slots, (size_t)self->slot_capacity * sizeof *self->slots);
  if (self->file_state) {
    for (uint32_t i = 0; i < self->file_capacity; i++)
      for (int mode = 0; mode < 2; mode++)
        if (self->file_state[i].fd[mode] >= 0) (void)p.close(p.user, self->file_state[i].fd[mode]);
    p.free(p.user, self->file_state, (size_t)self->file_capacity * sizeof *self->file_state);
  }
  if (self->ring) {
    for (uint32_t k = 0; k < self->ring_count; k++)
      if (self->ring[k]) p.free(p.user, self->ring[k], self->buffer_size);
    p.free(p.user, self->ring, (size_t)self->ring_count * sizeof *self->ring);
  }
  if (self->members) p.free(p.user, self->members, EMEL_IO_STAGED_BATCH_WINDOW * sizeof *self->members);
  emel_ring_fini(&self->reads); /* the reader is joined: nothing in flight */
  for (int i = 0; i < 2; i++)
    if (self->events[i] >= 0) (void)p.event_close(p.user, self->events[i]);
  p.free(p.user, self, sizeof *self);
}

static const emel_io_strategy_ops staged_ops = {
    .struct_size = sizeof(emel_io_strategy_ops),
    .kind = EMEL_STRATEGY_STAGED,
    .name = "staged",
    .acquire = staged_acquire,
    .release = staged_release,
    .advise = NULL, /* no bytes are held */
    .acquire_batch = staged_acquire_batch,
    .live = staged_live,
    .destroy = staged_destroy,
};

static int power_of_two(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

static emel_status unreported_attach(emel_io *io, const emel_io_staged_config *given) {
  if (!io || emel_io_has_strategy(io, EMEL_STRATEGY_STAGED)) return EMEL_INVALID_ARGUMENT;
  emel_io_staged_config c;
  if (emel_struct_take(&c, sizeof c, given) != EMEL_OK) return EMEL_STRUCT_SIZE_UNKNOWN;
  const uint64_t budget = c.budget ? c.budget : EMEL_IO_STAGED_DEFAULT_BUDGET;
  const uint32_t buffers = c.buffers ? c.buffers : EMEL_IO_STAGED_DEFAULT_BUFFERS;
  if (buffers < EMEL_IO_STAGED_MIN_BUFFERS || buffers > EMEL_IO_STAGED_MAX_BUFFERS) return EMEL_INVALID_ARGUMENT;
  const emel_platform_ops p = *emel_io_platform(io);
  const size_t block = p.page_size(p.user);
  if (!power_of_two(block)) return EMEL_INVALID_ARGUMENT;
  const uint32_t depth = c.flags & EMEL_IO_STAGED_NO_RING ? 0
                         : c.ring_depth                   ? c.ring_depth
                                                          : EMEL_IO_STAGED_DEFAULT_RING_DEPTH;
  if (depth > EMEL_IO_STAGED_MAX_RING_DEPTH || (c.flags & ~(uint32_t)EMEL_IO_STAGED_NO_RING))
    return EMEL_INVALID_ARGUMENT;
  uint64_t each = budget / buffers;
  each -= each % block;
  if (each < 2 * (uint64_t)block || each > SIZE_MAX / 2) return EMEL_INVALID_ARGUMENT;

  io_staged *self = p.alloc(p.user, sizeof *self, _Alignof(io_staged));
  if (!self) return EMEL_OUT_OF_MEMORY;
  memset(self, 0, sizeof *self);
  self->platform = p;
  self->io = io;
  self->files = emel_io_files_of(io);
  self->file_capacity = self->files->capacity;
  self->block = block;
  self->events[0] = self->events[1] = -1;
  self->want_thread = c.threads != 1;
  self->buffer_size = (size_t)each;
  self->window_bytes = each - block; /* room to place a direct window's head at its offset modulo the block */
  self->slot_capacity = c.max_residencies ? c.max_residencies : EMEL_IO_STAGED_DEFAULT_RESIDENCIES;
  /* Ring reads in whole blocks, so a direct window's reads stay aligned. */
  const uint64_t request = c.ring_request ? c.ring_request : EMEL_IO_STAGED_DEFAULT_RING_REQUEST;
  self->ring_request = request < block ? block : request - request % block;
  const int reads_ready = emel_ring_init(&self->reads, &self->platform, depth) == 0;
  atomic_init(&self->filled, 0);
  atomic_init(&self->freed, 0);
  atomic_init(&self->stop, 0);
  atomic_init(&self->failed_at, UINT64_MAX);
  self->slots = p.alloc(p.user, (size_t)self->slot_capacity * sizeof *self->slots, _Alignof(staged_slot));
  self->file_state = p.alloc(p.user, (size_t)self->file_capacity * sizeof *self->file_state, _Alignof(staged_file));
  self->members = p.alloc(p.user, EMEL_IO_STAGED_BATCH_WINDOW * sizeof *self->members, _Alignof(staged_member));
  self->ring = p.alloc(p.user, (size_t)buffers * sizeof *self->ring, _Alignof(unsigned char *));
  int ready = self->slots && self->file_state && self->members && self->ring && reads_ready;
  if (self->file_state)
    for (uint32_t i = 0; i < self->file_capacity; i++) self->file_state[i] = (staged_file){.fd = {-1, -1}};
  if (self->ring) {
    self->ring_count = buffers;
    const size_t align = self->buffer_size >= EMEL_IO_STAGED_BUFFER_ALIGN ? EMEL_IO_STAGED_BUFFER_ALIGN : block;
    for (uint32_t k = 0; k < buffers; k++) {
      self->ring[k] = p.alloc(p.user, self->buffer_size, align);
      if (!self->ring[k]) {
        ready = 0;
        continue;
      }
      /* Advisory: a fresh buffer then faults in huge pages; refused, it still works. */
      if (self->buffer_size >= EMEL_IO_STAGED_BUFFER_ALIGN &&
          p.advise(p.user, self->ring[k], self->buffer_size, EMEL_ADVISE_HUGEPAGE) < 0)
        self->stats.huge_page_refusals++;
    }
  }
  if (!ready) {
    staged_destroy(self);
    return EMEL_OUT_OF_MEMORY;
  }
  for (uint32_t i = 0; i < self->slot_capacity; i++) /* generations from 1: a zeroed handle is never live */
    self->slots[i] = (staged_slot){.generation = 1, .next_free = i + 2 <= self->slot_capacity ? i + 2 : 0};
  self->free_head = 1;
  self->stats.ring_bytes = (uint64_t)self->buffer_size * buffers;
  return emel_io_attach(io, &staged_ops, self, NULL);
}

emel_status emel_io_staged_attach(emel_io *io, const emel_io_staged_config *config, emel_error *err) {
  const emel_status s = unreported_attach(io, config);
  return emel_report_detail(err, s, s == EMEL_STRUCT_SIZE_UNKNOWN ? "emel_io_staged_config.struct_size" : NULL);
}

static emel_status unreported_stats_of(const emel_io *io, emel_io_staged_stats *stats) {
  if (!stats) return EMEL_INVALID_ARGUMENT;
  const io_staged *self = emel_io_strategy_self(io, EMEL_STRATEGY_STAGED, &staged_ops);
  if (!self) return EMEL_UNKNOWN_STRATEGY;
  *stats = self->stats;
  return EMEL_OK;
}

emel_status emel_io_staged_stats_of(const emel_io *io, emel_io_staged_stats *stats, emel_error *err) {
  return emel_report(err, unreported_stats_of(io, stats));
}

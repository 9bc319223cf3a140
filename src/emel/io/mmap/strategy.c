/* The mmap strategy as the io boundary sees it: attach allocates every table
 * once; acquire, advise and release each run one request through the machine
 * (statecharts/io_mmap.rl) and hand back its outcome. */
#include "mmap.h"
#include "emel/report.h"
#include "emel/util/struct_size.h"

#include <string.h>

static void free_tables(mmap_strategy *s) {
  const emel_platform_ops *p = s->platform;
  if (s->lane_table) p->free(p->user, s->lane_table, (size_t)s->lanes * sizeof *s->lane_table);
  if (s->deferred) p->free(p->user, s->deferred, EMEL_IO_MMAP_BATCH_WINDOW * sizeof *s->deferred);
  if (s->slots) p->free(p->user, s->slots, (size_t)s->capacity * sizeof *s->slots);
  if (s->free_slots) p->free(p->user, s->free_slots, (size_t)s->capacity * sizeof *s->free_slots);
  if (s->file_table) p->free(p->user, s->file_table, (size_t)s->file_capacity * sizeof *s->file_table);
  p->free(p->user, s, sizeof *s);
}

/* Runs one request and returns the machine's verdict on the event itself
 * (EMEL_OK when the spec accepted it; the request's outcome is in m->error).
 * A machine an action defect broke stays broken in s->cs: EMEL_INTERNAL for
 * this and every later request (machine.h); destroy still releases all. */
static emel_status run(mmap_strategy *s, io_mmap_ctx *m, int event) {
  m->s = s;
  m->core.cs = s->cs;
  m->core.pending = EMEL_NO_EVENT;
  emel_status st = emel_machine_dispatch(&m->core, &emel_io_mmap_desc, m, event);
  s->cs = m->core.cs;
  return st;
}

/* A request's outcome into its result: a refusal leaves nothing but the error. */
static void settle(const io_mmap_ctx *m, emel_status st) {
  emel_error e = st != EMEL_OK ? (emel_error){.code = st, .os_errno = 0} : m->error;
  if (e.code == EMEL_OK) return;
  emel_strategy kind = m->result->strategy;
  memset(m->result, 0, sizeof *m->result);
  m->result->strategy = kind;
  m->result->error = e;
}

static void mmap_acquire(void *self, const emel_io_request *request, emel_io_result *result) {
  io_mmap_ctx m = {.request = request, .result = result};
  settle(&m, run(self, &m, IO_MMAP_EV_MAP));
}

/* A window of a batch: each tensor mapped (those with populate leave it to the
 * lanes), every deferred populate run on the lanes at once, then each deferred
 * tensor finished through the machine's populate routes. Planning only here. */
static void acquire_window(mmap_strategy *s, const emel_io_request *requests, emel_io_result *results, size_t n) {
  const int defer = s->lanes > 1 && n > 1;
  s->deferred_count = 0;
  for (size_t i = 0; i < n; i++) {
    io_mmap_ctx m = {.request = &requests[i], .result = &results[i], .defer = defer};
    settle(&m, run(s, &m, IO_MMAP_EV_MAP));
  }
  if (s->deferred_count == 0) return;
  io_mmap_ctx b = {.result = NULL};
  (void)run(s, &b, IO_MMAP_EV_POPULATE_BATCH); /* a defect shows in every FINISH_POPULATE below */
  for (size_t k = 0; k < s->deferred_count; k++) {
    mmap_deferred *d = &s->deferred[k];
    io_mmap_ctx m = {.request = d->request, .result = d->result, .member = d, .file = d->file, .data = d->data,
                     .pages = d->pages, .pages_len = d->pages_len};
    settle(&m, run(s, &m, IO_MMAP_EV_FINISH_POPULATE));
  }
  s->deferred_count = 0;
}

static void mmap_acquire_batch(void *self, const emel_io_request *requests, emel_io_result *results, size_t count) {
  for (size_t base = 0; base < count; base += EMEL_IO_MMAP_BATCH_WINDOW) {
    const size_t n = count - base < EMEL_IO_MMAP_BATCH_WINDOW ? count - base : EMEL_IO_MMAP_BATCH_WINDOW;
    acquire_window(self, requests + base, results + base, n);
  }
}

static emel_error mmap_release(void *self, emel_io_handle handle) {
  io_mmap_ctx m = {.handle = handle};
  emel_status st = run(self, &m, IO_MMAP_EV_RELEASE);
  return st != EMEL_OK ? (emel_error){.code = st, .os_errno = 0} : m.error;
}

static emel_error mmap_advise(void *self, emel_io_handle handle, uint64_t offset, uint64_t len,
                              emel_map_advice advice) {
  io_mmap_ctx m = {.handle = handle, .advise_offset = offset, .advise_len = len, .advice = advice};
  emel_status st = run(self, &m, IO_MMAP_EV_ADVISE);
  return st != EMEL_OK ? (emel_error){.code = st, .os_errno = 0} : m.error;
}

static size_t mmap_live(const void *self) { return ((const mmap_strategy *)self)->live; }

static void mmap_destroy(void *self) {
  mmap_strategy *s = self;
  const emel_platform_ops *p = s->platform;
  /* Release what callers still hold through the machine's own route ... */
  for (uint32_t i = 0; s->slots && i < s->capacity && s->live > 0; i++) {
    if (!s->slots[i].live) continue;
    emel_io_handle h = {EMEL_STRATEGY_MMAP, i, s->slots[i].generation};
    (void)mmap_release(s, h);
  }
  /* ... and, when the OS refused that, or an unmap after a failed load did,
   * give the rest back directly: nothing may outlive the strategy. */
  for (uint32_t i = 0; s->slots && i < s->capacity; i++)
    if (s->slots[i].live && s->slots[i].locked) (void)p->unlock(p->user, s->slots[i].pages, s->slots[i].pages_len);
  for (uint32_t f = 0; s->file_table && f < s->file_capacity; f++) {
    if (s->file_table[f].base) (void)p->unmap(p->user, s->file_table[f].base, (size_t)s->file_table[f].size);
    /* open only inside a map request: one an action defect broke (machine.h) */
    if (s->file_table[f].fd >= 0) (void)p->close(p->user, s->file_table[f].fd);
  }
  free_tables(s);
}

static const emel_io_strategy_ops mmap_ops = {
    .struct_size = sizeof(emel_io_strategy_ops),
    .kind = EMEL_STRATEGY_MMAP,
    .name = "mmap",
    .acquire = mmap_acquire,
    .release = mmap_release,
    .advise = mmap_advise,
    .acquire_batch = mmap_acquire_batch, /* the populates of a batch on lanes */
    .live = mmap_live,
    .destroy = mmap_destroy,
};

static emel_status unreported_io_mmap_attach(emel_io *io, const emel_io_mmap_config *config) {
  if (!io) return EMEL_INVALID_ARGUMENT;
  emel_io_mmap_config c;
  if (emel_struct_take(&c, sizeof c, config) != EMEL_OK) return EMEL_STRUCT_SIZE_UNKNOWN;
  const emel_platform_ops *p = emel_io_platform(io);
  mmap_strategy *s = p->alloc(p->user, sizeof *s, _Alignof(mmap_strategy));
  if (!s) return EMEL_OUT_OF_MEMORY;
  memset(s, 0, sizeof *s);
  s->platform = p;
  s->files = emel_io_files_of(io);
  s->page = p->page_size(p->user);
  s->capacity = c.max_mappings ? c.max_mappings : EMEL_IO_MMAP_DEFAULT_MAPPINGS;
  s->file_capacity = s->files->capacity;
  s->lanes = c.populate_lanes ? c.populate_lanes : EMEL_IO_MMAP_DEFAULT_POPULATE_LANES;
  if (s->lanes > EMEL_IO_MMAP_MAX_POPULATE_LANES) {
    p->free(p->user, s, sizeof *s);
    return EMEL_INVALID_ARGUMENT;
  }
  emel_machine core;
  emel_machine_init(&core, &emel_io_mmap_desc);
  s->cs = core.cs;
  s->slots = p->alloc(p->user, (size_t)s->capacity * sizeof *s->slots, _Alignof(mmap_slot));
  s->free_slots = p->alloc(p->user, (size_t)s->capacity * sizeof *s->free_slots, _Alignof(uint32_t));
  s->file_table = p->alloc(p->user, (size_t)s->file_capacity * sizeof *s->file_table, _Alignof(mmap_file));
  s->lane_table = p->alloc(p->user, (size_t)s->lanes * sizeof *s->lane_table, _Alignof(mmap_lane));
  s->deferred = p->alloc(p->user, EMEL_IO_MMAP_BATCH_WINDOW * sizeof *s->deferred, _Alignof(mmap_deferred));
  if (!s->slots || !s->free_slots || !s->file_table || !s->lane_table || !s->deferred) {
    free_tables(s);
    return EMEL_OUT_OF_MEMORY;
  }
  memset(s->slots, 0, (size_t)s->capacity * sizeof *s->slots);
  for (uint32_t i = 0; i < s->capacity; i++) s->free_slots[i] = s->capacity - 1 - i; /* slot 0 first */
  s->free_count = s->capacity;
  memset(s->file_table, 0, (size_t)s->file_capacity * sizeof *s->file_table);
  for (uint32_t f = 0; f < s->file_capacity; f++) s->file_table[f].fd = -1;
  return emel_io_attach(io, &mmap_ops, s, NULL);
}

emel_status emel_io_mmap_attach(emel_io *io, const emel_io_mmap_config *config, emel_error *err) {
  const emel_status s = unreported_io_mmap_attach(io, config);
  return emel_report_detail(err, s, s == EMEL_STRUCT_SIZE_UNKNOWN ? "emel_io_mmap_config.struct_size" : NULL);
}

static emel_status unreported_stats_of(const emel_io *io, emel_io_mmap_stats *stats) {
  if (!stats) return EMEL_INVALID_ARGUMENT;
  const mmap_strategy *s = emel_io_strategy_self(io, EMEL_STRATEGY_MMAP, &mmap_ops);
  if (!s) return EMEL_UNKNOWN_STRATEGY;
  *stats = s->stats;
  return EMEL_OK;
}

emel_status emel_io_mmap_stats_of(const emel_io *io, emel_io_mmap_stats *stats, emel_error *err) {
  return emel_report(err, unreported_stats_of(io, stats));
}

/* Fuzz target: arbitrary bytes as a program that drives the tensor residency,
 * mmap and read machines through the public API (emel_io_*, emel_tensors_*),
 * with arbitrary operation outcomes injected by a fault_platform stacked on a
 * memory_file (no disk; direct I/O held to O_DIRECT's alignment rules).
 *
 * Input (encoding in residency_program.h): a header picks a model shape (1-3
 * files, 1-16 tensors of chosen sizes, alignment and gaps; a file may be
 * missing, have a NUL in its path or end inside its tensors), which
 * strategies are attached, pool, chunk and huge-page sizes; then operations
 * of a few bytes each: load, evict, bind_external, bind, evict_all through
 * the tensor table; acquire (single, batch, mixed batch), advise and release
 * (held, stale or forged handles) straight through the boundary; arm a fault
 * (the nth next call of an operation fails with an errno, fails in a storm,
 * or transfers short); clear the faults; cut a file under the loads.
 *
 * After EVERY operation: each tensor rests in unbound, bound, resident or
 * evicted; resident count == emel_tensors_resident_count; each strategy's
 * emel_io_live == the residencies held through it (table + harness); resident
 * bytes equal the file's at their span; no platform call with an unknown fd,
 * mapping or a misaligned direct transfer; one mapping per mapped file, no
 * locked bytes without a locked residency, and no allocation beyond the
 * setup's plus one per owned buffer. Each refusal has a named status, and
 * the one for the fault behind it, with the fault's errno (a validation or
 * state refusal carries none). A valid request during which no fault fired
 * succeeds. At the end everything is closed with nothing outstanding, and a
 * fresh, fault-free load of every tensor with each strategy succeeds (or
 * fails with its file's own named error). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emel/io.h"
#include "emel/io_mmap.h"
#include "emel/io_read.h"
#include "emel/job.h"
#include "emel/tensor.h"
#include "fault_platform.h"
#include "memory_file.h"
#include "residency_program.h"

#define REQUIRE(cond)                                                                    \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      fprintf(stderr, "fuzz_residency: %s:%d: invariant failed: %s\n", __FILE__,         \
              __LINE__, #cond);                                                          \
      abort();                                                                           \
    }                                                                                    \
  } while (0)

enum {
  MAX_FILES = 3,
  MAX_TENSORS = 16,
  MAX_HELD = 32,  /* residencies this harness holds straight from the boundary */
  MAX_STALE = 16, /* handles it released, kept to try again */
  MAX_OPS = 512,
  MAX_BATCH = 8,
  TARGET_SLACK = 2 * 4096, /* room to misalign a caller buffer */
  POOL = 64 /* > MAX_TENSORS + MAX_HELD: never full unless an input shrinks it (the defaults cost ms per run) */
};

typedef enum file_kind { FILE_PRESENT, FILE_MISSING, FILE_NUL_PATH } file_kind;

typedef struct model_file {
  file_kind kind;
  char path[16];
  size_t path_len;
  uint8_t *data;
  size_t size;     /* bytes served now; less than the layout when truncated */
  size_t original; /* bytes at the start: what earlier loads saw (a cut keeps the rest) */
  int entry;       /* its memory_file entry, or -1 */
} model_file;

typedef struct model_tensor {
  emel_tensor_span span;
  int bound_at_start;
  uint8_t *storage; /* the caller's buffer for this tensor: read targets and bind_external */
  size_t storage_size;
} model_tensor;

/* A residency acquired straight through the boundary. */
typedef struct held {
  emel_io_handle handle;
  emel_io_request request;
  void *data;
  uint64_t size;
  uint8_t *target; /* malloc'd caller buffer, or NULL */
} held;

typedef struct harness {
  memory_file mf;
  fault_platform fp;
  emel_io *io;
  emel_tensors *t;
  int n_files, n_tensors;
  model_file files[MAX_FILES];
  model_tensor tensors[MAX_TENSORS];
  held held[MAX_HELD];
  int n_held;
  emel_io_handle stale[MAX_STALE];
  int n_stale;
  int has_mmap, has_read;
  uint32_t mmap_pool, read_pool;
  size_t chunk, read_alignment, huge_page;
  uint64_t calls_before[FP_OP_COUNT];
  /* A file changed size: strategies keep the size they read first (a read
   * past a cut fails, one past an old cut may still be refused), so from
   * then on only named errors are required, not success. */
  int sizes_changed;
  int unmap_failed;       /* an unmap fault fired: a mapping may stay unreferenced until destroy */
  /* In a job op a release was refused twice (its DONTNEED advice failed): a
   * populated tensor's mapping stays live, unreferenced, until the boundary's destroy. */
  int job_orphans;
  int64_t baseline_allocs; /* allocations after setup: tables and pools */
  unsigned locked[MAX_TENSORS]; /* loaded with EMEL_LOAD_LOCK */
  /* The load job (one at a time), the tensors it holds, and those it read in
   * pieces into a buffer the table owns (resident, but no io residency). */
  emel_job *job;
  emel_load_options job_options;
  uint64_t job_chunk;
  int job_started; /* in the background: stepping it is refused */
  int job_continue; /* EMEL_JOB_CONTINUE_ON_FAILURE: its result is its first failure, from any step */
  unsigned char job_holds[MAX_TENSORS];
  unsigned char adopted[MAX_TENSORS];
  unsigned char job_seen[MAX_TENSORS]; /* resident through the current job, already noted */
  /* The residency budget (RP_BUDGET_OPS): the table's budget, each tensor's
   * pins, and the owned bytes (plus reservations) after the last operation. */
  int budget_ops;
  uint64_t budget;
  uint32_t pins[MAX_TENSORS];
  uint64_t used_before;
} harness;

/* The job's own allocations while it exists: itself and six arrays. */
enum { JOB_ALLOCS = 7 };

typedef struct reader {
  const uint8_t *p;
  size_t n, at;
} reader;

static uint8_t next(reader *r) { return r->at < r->n ? r->p[r->at++] : 0; }
static uint16_t next16(reader *r) {
  uint16_t lo = next(r);
  return (uint16_t)(lo | (uint16_t)(next(r) << 8));
}

static uint8_t file_byte(int file, size_t i) {
  uint32_t x = (uint32_t)i * 2654435761u + (uint32_t)file * 40503u + 0x9e37u;
  return (uint8_t)(x >> 24 ^ x >> 11);
}

static int named(emel_status s) { return strcmp(emel_status_name(s), "UNKNOWN_STATUS") != 0; }

static int loadable(const harness *h, uint32_t file, uint64_t offset, uint64_t size) {
  if (file >= (uint32_t)h->n_files) return 0;
  const model_file *f = &h->files[file];
  return f->kind == FILE_PRESENT && offset <= f->size && size <= f->size - offset;
}

/* Bytes equal the file's as it was when they were loaded: a file cut later
 * keeps its old bytes in memory, so compare against the original length. */
static int bytes_match(const harness *h, uint32_t file, uint64_t offset, const void *data, uint64_t size) {
  if (file >= (uint32_t)h->n_files) return 0;
  const model_file *f = &h->files[file];
  return f->kind == FILE_PRESENT && offset <= f->original && size <= f->original - offset &&
         memcmp(data, f->data + offset, size) == 0;
}

static uint8_t pattern(uint32_t i) { return (uint8_t)(0xA5 ^ i); }

/* ---- faults: which fired during the current operation ---- */

static void op_begin(harness *h) { memcpy(h->calls_before, h->fp.calls, sizeof h->calls_before); }

/* Whether a fault of `op` fired since op_begin. */
static int fired_op(const harness *h, int op) {
  const fp_fault *f = &h->fp.faults[op];
  if (f->first == 0) return 0;
  uint64_t lo = h->calls_before[op] + 1, hi = h->fp.calls[op]; /* calls made: [lo, hi] */
  return lo <= hi && f->first <= hi && f->first + f->count > lo;
}

static int fired_any(const harness *h) {
  for (int op = 0; op < FP_OP_COUNT; op++)
    if (fired_op(h, op)) return 1;
  return 0;
}

static int fired_with(const harness *h, int op, int os_errno) {
  return fired_op(h, op) && h->fp.faults[op].short_len < 0 && h->fp.faults[op].err == os_errno;
}

static int fired_short(const harness *h, int op) { return fired_op(h, op) && h->fp.faults[op].short_len >= 0; }

/* The named error of a refusal is the one for the fault behind it, with its
 * errno; a refusal no fault explains (validation, state) carries no errno. */
static int error_explained(const harness *h, emel_error e) {
  switch (e.code) {
  case EMEL_OK: return e.os_errno == 0;
  case EMEL_OPEN_FAILED: return fired_with(h, FP_OPEN, e.os_errno) || e.os_errno == ENOENT;
  case EMEL_STAT_FAILED: return fired_with(h, FP_FILE_IDENTITY, e.os_errno);
  /* CUT_FILE changed it under the loads (seen at an open, or after a populate fault) */
  case EMEL_FILE_CHANGED: return h->sizes_changed && (e.os_errno == 0 || fired_with(h, FP_ADVISE, e.os_errno));
  /* the read engine: pread lanes, or the ring (io_uring, emulated by the memory platform) */
  case EMEL_READ_FAILED:
    /* A spent retry budget too: the ring engine asks again after EAGAIN as
     * after EINTR and, when they outlast it, reports the last one's errno, so
     * an EAGAIN storm on the ring calls is READ_FAILED with EAGAIN, never EINTR
     * (regressions/residency/ring_wait_eagain_storm_outlasting_the_retry_budget). */
    return fired_with(h, FP_PREAD, e.os_errno) || fired_with(h, FP_PREADV, e.os_errno) ||
           fired_with(h, FP_RING_READ, e.os_errno) || fired_with(h, FP_RING_WAIT, e.os_errno);
  case EMEL_READ_UNEXPECTED_EOF: return fired_short(h, FP_PREAD) || fired_short(h, FP_PREADV) || h->sizes_changed;
  case EMEL_MMAP_FAILED: return fired_with(h, FP_MAP, e.os_errno);
  case EMEL_MMAP_LOCK_FAILED: return fired_with(h, FP_LOCK, e.os_errno);
  case EMEL_MMAP_UNLOCK_FAILED: return fired_with(h, FP_UNLOCK, e.os_errno);
  case EMEL_MMAP_UNMAP_FAILED: return fired_with(h, FP_UNMAP, e.os_errno);
  case EMEL_MMAP_POPULATE_FAILED:
  case EMEL_MMAP_ADVISE_FAILED: return fired_with(h, FP_ADVISE, e.os_errno);
  case EMEL_READ_ALLOC_FAILED:
  case EMEL_OUT_OF_MEMORY: return fired_op(h, FP_ALLOC);
  default: return named(e.code) && e.os_errno == 0;
  }
}

/* ---- the invariants, after every operation ---- */

static int job_finished(const harness *h) { return h->job && emel_job_poll(h->job, NULL) >= EMEL_JOB_COMPLETED; }

/* The budget's accounts agree with the tensors; the owned bytes stay within
 * the budget, or (a budget set below them) never grow while above it. */
static void check_budget(harness *h, int partial) {
  emel_tensors_stats st = EMEL_TENSORS_STATS_INIT();
  REQUIRE(emel_tensors_stats_get(h->t, &st, NULL) == EMEL_OK);
  uint64_t owned = 0, evictable = 0;
  uint32_t pinned = 0;
  for (int i = 0; i < h->n_tensors; i++) {
    REQUIRE(emel_tensors_pin_count(h->t, (uint32_t)i) == h->pins[i]);
    pinned += h->pins[i] > 0;
    emel_tensor_view v;
    if (emel_tensors_state(h->t, (uint32_t)i) != EMEL_TENSOR_RESIDENT) continue;
    REQUIRE(emel_tensors_view(h->t, (uint32_t)i, &v, NULL) == EMEL_OK);
    if (v.residency != EMEL_RESIDENCY_OWNED) continue;
    owned += v.size;
    if (h->pins[i] == 0 && !(h->job && h->job_holds[i])) evictable += v.size;
  }
  REQUIRE(st.owned_bytes == owned && emel_tensors_resident_bytes(h->t) == owned);
  REQUIRE(st.evictable_bytes == evictable && st.pinned == pinned && st.budget_bytes == h->budget);
  REQUIRE(st.reserved_bytes == 0 || partial); /* only a job between the pieces of a tensor reserves */
  const uint64_t used = st.owned_bytes + st.reserved_bytes;
  REQUIRE(h->budget == 0 || used <= h->budget || used <= h->used_before);
  h->used_before = used;
}

static void check(harness *h) {
  size_t live[EMEL_STRATEGY_COUNT] = {0}, owned = 0, locked = 0;
  /* A job between the pieces of a tensor holds its buffer or mapping. */
  const int partial = h->job && !job_finished(h);
  int mapped_file[MAX_FILES] = {0};
  uint32_t resident = 0;
  REQUIRE(h->mf.bad_calls == 0);
  REQUIRE(h->mf.open_fds <= 2 * h->n_files);  /* read: one per file and mode; mmap: none kept */
  REQUIRE(h->mf.live_maps <= h->n_files);     /* one mapping per file, however many tensors */
  REQUIRE(emel_tensors_count(h->t) == (uint32_t)h->n_tensors);
  for (int i = 0; i < h->n_tensors; i++) {
    const model_tensor *mt = &h->tensors[i];
    emel_tensor_state st = emel_tensors_state(h->t, (uint32_t)i);
    emel_tensor_view v;
    REQUIRE(st == EMEL_TENSOR_UNBOUND || st == EMEL_TENSOR_BOUND || st == EMEL_TENSOR_RESIDENT ||
            st == EMEL_TENSOR_EVICTED);
    emel_status vs = emel_tensors_view(h->t, (uint32_t)i, &v, NULL);
    REQUIRE((vs == EMEL_OK) == (st == EMEL_TENSOR_RESIDENT));
    REQUIRE(named(emel_tensors_last_error(h->t, (uint32_t)i).code));
    if (h->job && h->job_holds[i]) REQUIRE(emel_job_tensor_ready(h->job, (uint32_t)i) == (st == EMEL_TENSOR_RESIDENT));
    if (st != EMEL_TENSOR_RESIDENT) h->adopted[i] = 0;
    if (st != EMEL_TENSOR_RESIDENT) continue;
    resident++;
    REQUIRE(v.data != NULL && v.size == mt->span.size);
    switch (v.residency) {
    case EMEL_RESIDENCY_MAPPED: REQUIRE(v.strategy == EMEL_STRATEGY_MMAP); break;
    case EMEL_RESIDENCY_OWNED: REQUIRE(v.strategy == EMEL_STRATEGY_READ); break;
    case EMEL_RESIDENCY_EXTERNAL:
      REQUIRE(v.strategy == EMEL_STRATEGY_READ || v.strategy == EMEL_STRATEGY_NONE);
      REQUIRE((uint8_t *)v.data >= mt->storage && (uint8_t *)v.data + v.size <= mt->storage + mt->storage_size);
      break;
    default: REQUIRE(!"a resident tensor has no residency kind");
    }
    if (!h->adopted[i]) live[v.strategy]++;
    owned += v.residency == EMEL_RESIDENCY_OWNED;
    if (v.residency == EMEL_RESIDENCY_MAPPED) {
      mapped_file[mt->span.file_index] = 1;
      locked += h->locked[i] != 0;
    }
    if (v.strategy == EMEL_STRATEGY_NONE) {
      const uint8_t *b = v.data; /* the caller's bytes: nobody else writes them */
      for (uint64_t k = 0; k < v.size; k++) REQUIRE(b[k] == pattern((uint32_t)i));
    } else {
      REQUIRE(bytes_match(h, mt->span.file_index, mt->span.offset, v.data, v.size));
    }
  }
  REQUIRE(resident == emel_tensors_resident_count(h->t));
  check_budget(h, partial);
  for (int k = 0; k < h->n_held; k++) {
    const held *x = &h->held[k];
    live[x->handle.strategy]++;
    owned += x->handle.strategy == EMEL_STRATEGY_READ && !x->request.target;
    if (x->handle.strategy == EMEL_STRATEGY_MMAP) {
      mapped_file[x->request.file_index] = 1;
      locked += (x->request.flags & EMEL_LOAD_LOCK) != 0;
    }
    REQUIRE(bytes_match(h, x->request.file_index, x->request.offset, x->data, x->size));
  }
  REQUIRE(emel_io_live(h->io, EMEL_STRATEGY_MMAP) >= live[EMEL_STRATEGY_MMAP]);
  if (!h->job_orphans) REQUIRE(emel_io_live(h->io, EMEL_STRATEGY_MMAP) - live[EMEL_STRATEGY_MMAP] <= (size_t)partial);
  REQUIRE(emel_io_live(h->io, EMEL_STRATEGY_READ) == live[EMEL_STRATEGY_READ]);
  /* Nothing held beyond what is live: one mapping per file with a mapped
   * residency, locked bytes only under a locked one, one allocation per
   * owned buffer on top of the tables made at setup. */
  int64_t files_mapped = 0;
  for (int f = 0; f < h->n_files; f++) files_mapped += mapped_file[f];
  REQUIRE(h->mf.live_maps >= files_mapped);
  if (!h->unmap_failed) REQUIRE(h->mf.live_maps - files_mapped <= partial);
  /* (A locked residency may hold no locked bytes: a release that unlocked it
   * and then failed to unmap keeps it live, unlocked.) */
  REQUIRE(h->mf.locked_bytes >= 0 && (h->mf.locked_bytes == 0 || locked != 0));
  const int64_t extra = h->mf.live_allocs - h->baseline_allocs - (int64_t)owned - (h->job ? JOB_ALLOCS : 0);
  REQUIRE(extra == 0 || (partial && extra == 1));
}

/* ---- setup ---- */

static const size_t alignments[4] = {1, 32, 64, 4096};

/* Reads the shape and builds the files; the io and table come in open_all. */
static void build(harness *h, reader *r) {
  uint8_t b0 = next(r), b1 = next(r), b2 = next(r), b3 = next(r);
  h->n_files = 1 + b0 % MAX_FILES;
  h->n_tensors = 1 + b1 % MAX_TENSORS;
  size_t align = alignments[(b1 >> 4) & 3];
  h->mf.can_map = !(b1 & RP_NO_MAP);
  h->has_mmap = !(b2 & RP_NO_MMAP);
  h->has_read = !(b2 & RP_NO_READ);
  h->mmap_pool = b2 & RP_SMALL_POOLS ? 1 + (b3 & 3) : POOL;
  h->read_pool = b2 & RP_SMALL_POOLS ? 1 + ((b3 >> 2) & 3) : POOL;
  h->chunk = b2 & RP_SMALL_CHUNKS ? (size_t)512 << ((b3 >> 4) & 3) : 0;
  h->read_alignment = b2 & RP_ALIGN_4096 ? 4096 : 0;
  h->huge_page = b2 & RP_SMALL_HUGE_PAGES ? 4096 : 0;
  h->budget_ops = (b2 & RP_BUDGET_OPS) != 0;

  uint8_t file_bytes[MAX_FILES];
  for (int f = 0; f < h->n_files; f++) file_bytes[f] = next(r);
  uint64_t end[MAX_FILES];
  for (int f = 0; f < h->n_files; f++) end[f] = 96; /* a header's worth before the data */
  for (int i = 0; i < h->n_tensors; i++) {
    model_tensor *mt = &h->tensors[i];
    uint16_t size = next16(r);
    uint8_t b = next(r);
    uint32_t file = (uint32_t)(b % h->n_files);
    uint64_t at = end[file] + (uint64_t)(b >> 5) * align;
    at = (at + align - 1) / align * align;
    mt->span = (emel_tensor_span){.type = 0, .n_dims = 1, .file_index = file, .offset = at, .size = 1u + size % 12000u};
    mt->span.dims[0] = mt->span.size;
    for (int d = 1; d < EMEL_TENSOR_MAX_DIMS; d++) mt->span.dims[d] = 1;
    mt->bound_at_start = (b & RP_UNBOUND) != RP_UNBOUND;
    end[file] = at + mt->span.size;
    mt->storage_size = mt->span.size + TARGET_SLACK;
    mt->storage = malloc(mt->storage_size);
    REQUIRE(mt->storage);
  }
  for (int f = 0; f < h->n_files; f++) {
    model_file *mf = &h->files[f];
    uint8_t b = file_bytes[f];
    mf->kind = (b & 7) == 5 ? FILE_MISSING : (b & 7) == 6 ? FILE_NUL_PATH : FILE_PRESENT;
    uint64_t cut = b & RP_TRUNCATE ? (uint64_t)((b >> 4) + 1) * 97 : 0;
    mf->size = (size_t)(end[f] > cut ? end[f] - cut : 0);
    mf->data = malloc(mf->size ? mf->size : 1);
    REQUIRE(mf->data);
    for (size_t k = 0; k < mf->size; k++) mf->data[k] = file_byte(f, k);
    int n = snprintf(mf->path, sizeof mf->path, "m-%d.gguf", f);
    mf->path_len = (size_t)n;
    if (mf->kind == FILE_NUL_PATH) mf->path[1] = '\0'; /* "m\0N.gguf": refused, never opened */
    mf->original = mf->size;
    mf->entry = mf->kind == FILE_PRESENT ? h->mf.n_files : -1;
    if (mf->kind == FILE_PRESENT) REQUIRE(memory_file_add(&h->mf, mf->path, mf->data, mf->size) == 0);
  }
}

/* Boundary, strategies and table on `ops`; every tensor declared, most bound. */
static void open_all(harness *h, const emel_platform_ops *ops, int bind_all, emel_io **io, emel_tensors **t) {
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = ops);
  REQUIRE(emel_io_create(io, &ic, NULL) == EMEL_OK);
  for (int f = 0; f < h->n_files; f++) {
    uint32_t index;
    REQUIRE(emel_io_add_file(*io, h->files[f].path, h->files[f].path_len, &index, NULL) == EMEL_OK);
    REQUIRE(index == (uint32_t)f);
  }
  if (bind_all || h->has_mmap) {
    emel_io_mmap_config mc = EMEL_IO_MMAP_CONFIG_INIT(.max_mappings = bind_all ? POOL : h->mmap_pool);
    REQUIRE(emel_io_mmap_attach(*io, &mc, NULL) == EMEL_OK);
  }
  if (bind_all || h->has_read) {
    emel_io_read_config rc = EMEL_IO_READ_CONFIG_INIT(.max_buffers = bind_all ? POOL : h->read_pool,
                                                      .chunk_size = bind_all ? 0 : h->chunk,
                                                      .alignment = bind_all ? 0 : h->read_alignment,
                                                      .huge_page_size = bind_all ? 0 : h->huge_page);
    REQUIRE(emel_io_read_attach(*io, &rc, NULL) == EMEL_OK);
  }
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = *io, .capacity = MAX_TENSORS);
  REQUIRE(emel_tensors_create(t, &tc, NULL) == EMEL_OK);
  for (int i = 0; i < h->n_tensors; i++) {
    char name[16];
    uint32_t index;
    int n = snprintf(name, sizeof name, "t%d", i);
    REQUIRE(emel_tensors_declare(*t, name, (size_t)n, &index, NULL) == EMEL_OK && index == (uint32_t)i);
    if (bind_all || h->tensors[i].bound_at_start)
      REQUIRE(emel_tensors_bind(*t, index, &h->tensors[i].span, NULL) == EMEL_OK);
  }
}

/* ---- operations ---- */

static int strategy_attached(const harness *h, emel_strategy s) {
  return (s == EMEL_STRATEGY_MMAP && h->has_mmap) || (s == EMEL_STRATEGY_READ && h->has_read);
}

static uint32_t pool_of(const harness *h, emel_strategy s) {
  return s == EMEL_STRATEGY_MMAP ? h->mmap_pool : h->read_pool;
}

/* Whether a request is one its strategy must grant when nothing fails. */
static int request_valid(const harness *h, const emel_io_request *q) {
  if (!strategy_attached(h, q->strategy) || !loadable(h, q->file_index, q->offset, q->size)) return 0;
  if (q->strategy == EMEL_STRATEGY_MMAP)
    return h->mf.can_map && (q->flags & ~(unsigned)(EMEL_LOAD_POPULATE | EMEL_LOAD_LOCK)) == 0 && !q->target &&
           q->target_size == 0;
  return (q->flags & ~(unsigned)(EMEL_LOAD_DIRECT | EMEL_LOAD_DROP_CACHE)) == 0 &&
         (!q->target || q->target_size >= q->size);
}

static emel_strategy strategy_of(uint8_t b) {
  static const emel_strategy s[4] = {EMEL_STRATEGY_MMAP, EMEL_STRATEGY_READ, EMEL_STRATEGY_NONE,
                                     (emel_strategy)7};
  return s[b & 3];
}

/* flags: the four known ones, now and then an unknown bit. */
static unsigned flags_of(uint8_t b) { return (b & 15u) | (b & RP_UNKNOWN_FLAG ? 1u << 9 : 0); }

/* A caller buffer inside `storage` of at least `size` + slack bytes. */
static void target_of(uint8_t b, uint8_t *storage, uint64_t size, void **target, uint64_t *target_size) {
  switch (b & 3) {
  case 0: *target = NULL, *target_size = 0; break;
  case 1: *target = storage, *target_size = size; break;
  case 2: *target = storage, *target_size = size - 1; break; /* too small (0 for a 1-byte tensor) */
  default: *target = storage + 1 + (b >> 2) % 4095, *target_size = size; break; /* misaligned */
  }
}

static void op_load(harness *h, reader *r) {
  uint32_t i = next(r) % (uint32_t)h->n_tensors;
  model_tensor *mt = &h->tensors[i];
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = strategy_of(next(r)), .flags = flags_of(next(r)));
  target_of(next(r), mt->storage, mt->span.size, &o.target, &o.target_size);
  emel_tensor_state before = emel_tensors_state(h->t, i);
  uint32_t live_before = (uint32_t)emel_io_live(h->io, o.strategy);
  emel_tensors_stats budget = EMEL_TENSORS_STATS_INIT();
  REQUIRE(emel_tensors_stats_get(h->t, &budget, NULL) == EMEL_OK);
  emel_tensor_view v;
  emel_status s = emel_tensors_load(h->t, i, &o, &v, NULL);
  if (s == EMEL_BUDGET_EXCEEDED) { /* only when it truly does not fit, even after the evictions allowed */
    const uint64_t need = mt->span.size, room = budget.owned_bytes + need -
                                                 (budget.budget_policy == EMEL_BUDGET_EVICT_LRU ? budget.evictable_bytes : 0);
    REQUIRE(o.strategy == EMEL_STRATEGY_READ && !o.target && budget.budget_bytes > 0 &&
            (need > budget.budget_bytes || room > budget.budget_bytes));
  }
  emel_tensors_stats after = EMEL_TENSORS_STATS_INIT();
  REQUIRE(emel_tensors_stats_get(h->t, &after, NULL) == EMEL_OK);
  if (after.budget_evictions != budget.budget_evictions) /* evicted only to make room it needed */
    REQUIRE(budget.owned_bytes + budget.reserved_bytes + mt->span.size > budget.budget_bytes);
  REQUIRE(named(s));
  if (h->job && h->job_holds[i]) { /* the job's: refused, untouched */
    REQUIRE(s == EMEL_TENSOR_BUSY || (before == EMEL_TENSOR_RESIDENT && s == EMEL_TENSOR_ALREADY_RESIDENT));
    REQUIRE(emel_tensors_state(h->t, i) == before);
    return;
  }
  if (s == EMEL_OK) {
    /* read copies now: every byte must be in the file as it is */
    if (o.strategy == EMEL_STRATEGY_READ) REQUIRE(loadable(h, mt->span.file_index, mt->span.offset, mt->span.size));
    h->locked[i] = o.strategy == EMEL_STRATEGY_MMAP && (o.flags & EMEL_LOAD_LOCK);
    REQUIRE(before == EMEL_TENSOR_BOUND || before == EMEL_TENSOR_EVICTED);
    REQUIRE(v.strategy == o.strategy);
    if (o.target) REQUIRE(v.data == o.target && v.residency == EMEL_RESIDENCY_EXTERNAL);
    return;
  }
  if (before == EMEL_TENSOR_UNBOUND) REQUIRE(s == EMEL_TENSOR_NOT_BOUND);
  if (before == EMEL_TENSOR_RESIDENT) REQUIRE(s == EMEL_TENSOR_ALREADY_RESIDENT);
  if (before != EMEL_TENSOR_BOUND && before != EMEL_TENSOR_EVICTED) return;
  emel_error e = emel_tensors_last_error(h->t, i);
  REQUIRE(e.code == s && emel_tensors_state(h->t, i) == EMEL_TENSOR_BOUND);
  REQUIRE(error_explained(h, e));
  emel_io_request q = {.file_index = mt->span.file_index, .offset = mt->span.offset, .size = mt->span.size,
                       .strategy = o.strategy, .flags = o.flags, .target = o.target, .target_size = o.target_size};
  REQUIRE(fired_any(h) || !request_valid(h, &q) || live_before >= pool_of(h, o.strategy) || h->sizes_changed ||
          (s == EMEL_BUDGET_EXCEEDED && h->budget > 0));
}

/* emel_tensors_load_batch over up to 16 indices (repeats allowed): each tensor
 * ends as a single load would have left it, with its own named status. */
static void op_load_batch(harness *h, reader *r) {
  uint32_t idx[16];
  emel_status st[16];
  emel_tensor_state before[16];
  size_t n = (size_t)(next(r) & 15) + 1;
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = strategy_of(next(r)), .flags = flags_of(next(r)));
  for (size_t k = 0; k < n; k++) idx[k] = next(r) % (uint32_t)h->n_tensors;
  for (size_t k = 0; k < n; k++) before[k] = emel_tensors_state(h->t, idx[k]);
  emel_status s = emel_tensors_load_batch(h->t, idx, n, &o, st, NULL);
  REQUIRE(named(s));
  for (size_t k = 0; k < n; k++) {
    model_tensor *mt = &h->tensors[idx[k]];
    emel_tensor_state after = emel_tensors_state(h->t, idx[k]);
    REQUIRE(named(st[k]));
    if (h->job && h->job_holds[idx[k]]) {
      REQUIRE(st[k] == EMEL_TENSOR_BUSY || (before[k] == EMEL_TENSOR_RESIDENT && st[k] == EMEL_TENSOR_ALREADY_RESIDENT));
      REQUIRE(after == before[k]);
      continue;
    }
    if (st[k] == EMEL_OK) {
      REQUIRE(after == EMEL_TENSOR_RESIDENT);
      if (o.strategy == EMEL_STRATEGY_READ) REQUIRE(loadable(h, mt->span.file_index, mt->span.offset, mt->span.size));
      if (before[k] != EMEL_TENSOR_RESIDENT) h->locked[idx[k]] = o.strategy == EMEL_STRATEGY_MMAP && (o.flags & EMEL_LOAD_LOCK);
    } else if (before[k] == EMEL_TENSOR_UNBOUND) {
      REQUIRE(st[k] == EMEL_TENSOR_NOT_BOUND && after == EMEL_TENSOR_UNBOUND);
    } else if (after != EMEL_TENSOR_RESIDENT) {
      REQUIRE(after == EMEL_TENSOR_BOUND); /* a refused load leaves it bound, never in between */
    }
  }
}

static void op_evict(harness *h, reader *r) {
  uint32_t i = next(r) % (uint32_t)h->n_tensors;
  emel_tensor_state before = emel_tensors_state(h->t, i);
  emel_status s = emel_tensors_evict(h->t, i, NULL);
  REQUIRE(named(s));
  if (h->job && h->job_holds[i]) { /* the job's: refused, untouched */
    REQUIRE((s == EMEL_TENSOR_BUSY || (before != EMEL_TENSOR_RESIDENT && s != EMEL_OK)) &&
            emel_tensors_state(h->t, i) == before);
    return;
  }
  if (before == EMEL_TENSOR_RESIDENT && h->pins[i] > 0) { /* refused by name, kept */
    REQUIRE(s == EMEL_TENSOR_PINNED && emel_tensors_state(h->t, i) == EMEL_TENSOR_RESIDENT);
  } else if (before == EMEL_TENSOR_RESIDENT) {
    REQUIRE(s == EMEL_OK || fired_any(h));
    REQUIRE(emel_tensors_state(h->t, i) == (s == EMEL_OK ? EMEL_TENSOR_EVICTED : EMEL_TENSOR_RESIDENT));
    if (s != EMEL_OK) REQUIRE(error_explained(h, emel_tensors_last_error(h->t, i)));
  } else {
    REQUIRE(s == (before == EMEL_TENSOR_EVICTED ? EMEL_TENSOR_ALREADY_EVICTED : EMEL_TENSOR_NOT_RESIDENT));
    REQUIRE(emel_tensors_state(h->t, i) == before);
  }
}

static void op_evict_all(harness *h) {
  emel_status s = emel_tensors_evict_all(h->t, NULL);
  REQUIRE(named(s));
  int any_pinned = 0;
  for (int i = 0; i < h->n_tensors; i++) any_pinned |= h->pins[i] > 0;
  REQUIRE(s == EMEL_OK || fired_any(h) || (h->job && s == EMEL_TENSOR_BUSY) || (any_pinned && s == EMEL_TENSOR_PINNED));
  for (int i = 0; h->job && i < h->n_tensors; i++)
    if (h->job_holds[i]) REQUIRE(emel_tensors_state(h->t, (uint32_t)i) != EMEL_TENSOR_RESIDENT || emel_job_tensor_ready(h->job, (uint32_t)i));
}

static void op_bind_external(harness *h, reader *r) {
  uint32_t i = next(r) % (uint32_t)h->n_tensors;
  model_tensor *mt = &h->tensors[i];
  uint8_t mode = next(r) & 3;
  uint64_t size = mode == 0 ? mt->span.size : mode == 1 ? mt->storage_size : mt->span.size - 1;
  void *data = mode == 3 ? NULL : mt->storage;
  emel_tensor_state before = emel_tensors_state(h->t, i);
  emel_status s = emel_tensors_bind_external(h->t, i, data, size, NULL);
  REQUIRE(named(s));
  int fits = data && size >= mt->span.size;
  if (h->job && h->job_holds[i]) { /* the job's: refused (busy, or the buffer's own refusal), untouched */
    REQUIRE(s != EMEL_OK && emel_tensors_state(h->t, i) == before);
    return;
  }
  if (before == EMEL_TENSOR_BOUND || before == EMEL_TENSOR_EVICTED) {
    REQUIRE((s == EMEL_OK) == fits);
    if (!fits) REQUIRE(s == EMEL_EXTERNAL_TOO_SMALL && emel_tensors_state(h->t, i) == EMEL_TENSOR_BOUND);
  } else {
    REQUIRE(s == (before == EMEL_TENSOR_UNBOUND ? EMEL_TENSOR_NOT_BOUND : EMEL_TENSOR_ALREADY_RESIDENT));
  }
  if (s == EMEL_OK) memset(mt->storage, pattern(i), mt->span.size); /* the caller fills it */
}

static void op_bind(harness *h, reader *r) {
  uint32_t i = next(r) % (uint32_t)h->n_tensors;
  emel_tensor_span span = h->tensors[i].span;
  uint8_t mode = next(r) & 3;
  if (mode == 1) span.size = 0;
  if (mode == 2) span.offset = UINT64_MAX - span.size + 1; /* ends one past 2^64 - 1 */
  if (mode == 3) span.n_dims = 0;
  emel_tensor_state before = emel_tensors_state(h->t, i);
  emel_status s = emel_tensors_bind(h->t, i, &span, NULL);
  REQUIRE(named(s));
  if (before != EMEL_TENSOR_UNBOUND)
    REQUIRE((s == EMEL_TENSOR_ALREADY_BOUND || (h->job && h->job_holds[i] && s == EMEL_TENSOR_BUSY)) &&
            emel_tensors_state(h->t, i) == before);
  else REQUIRE((s == EMEL_OK) == (mode == 0)); /* no OS call: faults cannot matter */
}

static void forget_held(harness *h, int k) {
  free(h->held[k].target);
  h->held[k] = h->held[--h->n_held];
}

/* 1..MAX_BATCH requests for tensors' spans straight through the boundary. */
static void op_acquire(harness *h, reader *r) {
  uint8_t b = next(r);
  size_t count = 1 + (b & 7u);
  int single = count == 1 && (b & RP_SINGLE);
  int mixed = (b & RP_MIXED) != 0;
  emel_strategy strategy = strategy_of(next(r));
  unsigned flags = flags_of(next(r));
  if (count > (size_t)(MAX_HELD - h->n_held)) count = (size_t)(MAX_HELD - h->n_held);
  if (count == 0) return;
  emel_io_request q[MAX_BATCH];
  emel_io_result res[MAX_BATCH];
  uint8_t *targets[MAX_BATCH];
  size_t live_before[EMEL_STRATEGY_COUNT] = {0}, asked[EMEL_STRATEGY_COUNT] = {0};
  for (int s = EMEL_STRATEGY_MMAP; s < EMEL_STRATEGY_COUNT; s++) live_before[s] = emel_io_live(h->io, (emel_strategy)s);
  for (size_t k = 0; k < count; k++) {
    uint8_t c = next(r);
    const emel_tensor_span *sp = &h->tensors[c % h->n_tensors].span;
    q[k] = (emel_io_request){.tensor = c % (uint32_t)h->n_tensors, .file_index = sp->file_index,
                             .offset = sp->offset, .size = sp->size, .strategy = strategy, .flags = flags};
    if (mixed) q[k].strategy = strategy_of(next(r));
    targets[k] = NULL;
    uint8_t t = next(r);
    if (t & RP_BAD_FILE_INDEX) q[k].file_index = (uint32_t)h->n_files + (t >> 7);
    if (t & RP_OFFSET_OVERFLOW) q[k].offset = UINT64_MAX - q[k].size / 2;
    if (t & 3) {
      targets[k] = malloc(sp->size + TARGET_SLACK);
      REQUIRE(targets[k]);
      target_of(t, targets[k], sp->size, &q[k].target, &q[k].target_size);
    }
    if (q[k].strategy < EMEL_STRATEGY_COUNT) asked[q[k].strategy]++;
  }
  if (single) emel_io_acquire(h->io, &q[0], &res[0]);
  else emel_io_acquire_batch(h->io, q, res, count);
  int fired = fired_any(h);
  for (size_t k = 0; k < count; k++) {
    REQUIRE(named(res[k].error.code));
    if (res[k].error.code != EMEL_OK) {
      REQUIRE(error_explained(h, res[k].error));
      int room = q[k].strategy < EMEL_STRATEGY_COUNT &&
                 live_before[q[k].strategy] + asked[q[k].strategy] <= pool_of(h, q[k].strategy);
      REQUIRE(fired || !request_valid(h, &q[k]) || !room || h->sizes_changed);
      free(targets[k]);
      continue;
    }
    REQUIRE(res[k].data != NULL && res[k].size == q[k].size && res[k].strategy == q[k].strategy);
    if (q[k].strategy == EMEL_STRATEGY_READ) REQUIRE(loadable(h, q[k].file_index, q[k].offset, q[k].size));
    REQUIRE(res[k].handle.strategy == (uint32_t)q[k].strategy);
    if (q[k].target) REQUIRE(res[k].data == q[k].target && res[k].residency == EMEL_RESIDENCY_EXTERNAL);
    h->held[h->n_held++] = (held){res[k].handle, q[k], res[k].data, res[k].size, targets[k]};
  }
}

/* A handle: one this harness holds, one it released, or a forged one whose
 * generation no live residency can have. *k is the held index, or -1. */
static emel_io_handle pick_handle(harness *h, reader *r, int *k) {
  uint8_t b = next(r);
  *k = -1;
  if ((b & 3) < RP_STALE && h->n_held > 0) {
    *k = (b >> 2) % h->n_held;
    return h->held[*k].handle;
  }
  if ((b & 3) == RP_STALE && h->n_stale > 0) return h->stale[(b >> 2) % h->n_stale];
  emel_io_handle forged = {.strategy = next(r) % 4u, .slot = next(r), .generation = 0x80000000u | next16(r)};
  return forged;
}

static void op_release(harness *h, reader *r) {
  int k;
  emel_io_handle handle = pick_handle(h, r, &k);
  emel_error e;
  (void)emel_io_release(h->io, handle, &e);
  REQUIRE(named(e.code) && error_explained(h, e));
  if (k < 0) { /* stale or forged: never releases anything (strategy NONE owns nothing) */
    REQUIRE(e.code != EMEL_OK || handle.strategy == EMEL_STRATEGY_NONE);
    return;
  }
  REQUIRE(e.code == EMEL_OK || fired_any(h)); /* a refused release keeps the residency live */
  if (e.code != EMEL_OK) return;
  if (h->n_stale < MAX_STALE) h->stale[h->n_stale++] = handle;
  else h->stale[next(r) % MAX_STALE] = handle;
  forget_held(h, k);
}

static void op_advise(harness *h, reader *r) {
  int k;
  emel_io_handle handle = pick_handle(h, r, &k);
  uint64_t size = k >= 0 ? h->held[k].size : 4096;
  uint8_t mode = next(r);
  uint64_t offset = 0, len = size;
  if ((mode & 3) == RP_INSIDE) {
    offset = next16(r) % size;
    len = 1 + next16(r) % (size - offset);
  } else if ((mode & 3) == RP_ANY_RANGE) {
    offset = next16(r), len = next16(r); /* anything, mostly out of range */
  } else if ((mode & 3) == RP_PAST_END) {
    offset = size, len = 1;
  }
  uint8_t a = next(r) % 7;
  emel_map_advice advice = a == 6 ? (emel_map_advice)99 : (emel_map_advice)a;
  emel_error e;
  (void)emel_io_advise(h->io, handle, offset, len, advice, &e);
  REQUIRE(named(e.code) && error_explained(h, e));
  if (k < 0) {
    REQUIRE(e.code != EMEL_OK);
    return;
  }
  int valid = handle.strategy == EMEL_STRATEGY_MMAP && advice <= EMEL_ADVISE_POPULATE_READ && len > 0 &&
              offset <= size && len <= size - offset;
  if (valid) REQUIRE(e.code == EMEL_OK || fired_any(h));
  else REQUIRE(e.code != EMEL_OK);
}

/* The file changes size under the loads (truncated, or back to its length):
 * a read past the new end must fail with a named error, never succeed.
 * (Mapped bytes of a cut file are memory_file copies here; on a real mapping
 * they would fault: the mmap strategy cannot promise anything for them.) */
static void op_cut_file(harness *h, reader *r) {
  model_file *f = &h->files[next(r) % h->n_files];
  uint16_t cut = next16(r);
  if (f->entry < 0) return;
  size_t size = cut == 0 ? f->original : f->original - (cut % (f->original + 1));
  h->sizes_changed |= size != f->size;
  f->size = size;
  h->mf.files[f->entry].size = f->size;
}

/* ---- load jobs ---- */

/* After a job op: tensors the job made resident by reading pieces into a
 * buffer of its own hold no io residency; its progress agrees with the table. */
static void job_settle(harness *h) {
  if (!h->job) return;
  emel_job_progress p = EMEL_JOB_PROGRESS_INIT();
  const emel_job_state st = emel_job_poll(h->job, &p);
  uint32_t ready = 0, held = 0, failed_or_cancelled = 0;
  uint64_t bytes = 0;
  for (int i = 0; i < h->n_tensors; i++) {
    if (!h->job_holds[i]) continue;
    held++;
    const emel_tensor_state ts = emel_tensors_state(h->t, (uint32_t)i);
    emel_tensor_view v;
    const emel_status vs = emel_job_view(h->job, (uint32_t)i, &v, NULL);
    REQUIRE(named(vs));
    if (ts == EMEL_TENSOR_RESIDENT) {
      REQUIRE(vs == EMEL_OK && v.size == h->tensors[i].span.size);
      /* A read job reads into buffers the table adopts (no io residency),
       * except O_DIRECT windows of whole tensors, which go through a batch. */
      if (!h->adopted[i])
        h->adopted[i] = h->job_options.strategy == EMEL_STRATEGY_READ &&
                        (h->tensors[i].span.size > h->job_chunk || !(h->job_options.flags & EMEL_LOAD_DIRECT));
      if (!h->job_seen[i]) /* loaded by the job: locked as its options say */
        h->locked[i] = h->job_options.strategy == EMEL_STRATEGY_MMAP && (h->job_options.flags & EMEL_LOAD_LOCK);
      h->job_seen[i] = 1;
      ready++;
      bytes += v.size;
    } else {
      REQUIRE(ts == EMEL_TENSOR_BOUND || ts == EMEL_TENSOR_EVICTED);
      REQUIRE(vs != EMEL_OK);
      if (st >= EMEL_JOB_COMPLETED) { /* every tensor not loaded says why */
        REQUIRE(vs != EMEL_TENSOR_NOT_RESIDENT && emel_tensors_last_error(h->t, (uint32_t)i).code != EMEL_OK);
        failed_or_cancelled++;
      }
    }
  }
  REQUIRE(p.state == st && p.tensors_total == held && p.tensors_done == ready);
  REQUIRE(p.tensors_failed <= held - ready);
  if (st >= EMEL_JOB_COMPLETED) {
    REQUIRE(p.bytes_done == bytes && ready + failed_or_cancelled == held);
    REQUIRE((st == EMEL_JOB_COMPLETED && emel_job_result(h->job, NULL) == EMEL_OK) == (ready == held) ||
            st == EMEL_JOB_CANCELLED);
  } else {
    REQUIRE(p.bytes_done >= bytes && p.bytes_done <= p.bytes_total);
  }
}

static void job_destroy(harness *h) {
  emel_job_destroy(h->job);
  h->job = NULL;
  h->job_started = 0;
  memset(h->job_holds, 0, sizeof h->job_holds);
  memset(h->job_seen, 0, sizeof h->job_seen);
}

/* CREATE: a job over some tensors (or all), a strategy, flags, a chunk of
 * 256 << (0..7) bytes (so tensors move in pieces), a policy, a priority. */
static void job_create(harness *h, reader *r) {
  if (h->job) job_destroy(h);
  const uint8_t shape = next(r);
  h->job_options = (emel_load_options)EMEL_LOAD_OPTIONS_INIT(.strategy = strategy_of(next(r)), .flags = flags_of(next(r)));
  h->job_chunk = (uint64_t)256 << (next(r) & 7);
  h->job_continue = (shape & RP_JOB_CONTINUE) != 0;
  uint32_t idx[MAX_TENSORS], prio = 0;
  size_t n = (size_t)(shape & 15) + 1;
  for (size_t k = 0; k < n; k++) idx[k] = next(r) % (uint32_t)h->n_tensors; /* a repeat is refused */
  if (shape & RP_JOB_PRIORITY) prio = next(r) % (uint32_t)h->n_tensors;
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.indices = shape & RP_JOB_ALL ? NULL : idx, .count = n,
                                           .options = &h->job_options, .chunk_bytes = h->job_chunk,
                                           .flags = shape & RP_JOB_CONTINUE ? EMEL_JOB_CONTINUE_ON_FAILURE : 0,
                                           .priority = &prio, .priority_count = shape & RP_JOB_PRIORITY ? 1 : 0);
  emel_error e;
  const emel_status s = emel_job_create(&h->job, h->t, &c, &e);
  REQUIRE(named(s) && e.code == s);
  if (s != EMEL_OK) {
    REQUIRE(h->job == NULL && (s != EMEL_OUT_OF_MEMORY || fired_op(h, FP_ALLOC)));
    return;
  }
  const size_t count = c.indices ? n : (size_t)h->n_tensors;
  for (size_t k = 0; k < count; k++) {
    const uint32_t i = c.indices ? idx[k] : (uint32_t)k;
    REQUIRE(!h->job_holds[i]);
    const emel_tensor_state ts = emel_tensors_state(h->t, i);
    REQUIRE(ts == EMEL_TENSOR_BOUND || ts == EMEL_TENSOR_EVICTED);
    h->job_holds[i] = 1;
  }
}

/* Runs the job on its own thread (then waits for it: while it runs the table
 * is its thread's), or, when it cannot start, says why. */
static void job_start(harness *h, reader *r) {
  const uint8_t b = next(r);
  emel_error e;
  const emel_status s = emel_job_start(h->job, &e);
  REQUIRE(named(s));
  if (s == EMEL_JOB_START_FAILED) {
    REQUIRE(fired_with(h, FP_EVENT_OPEN, e.os_errno) || fired_with(h, FP_THREAD_START, e.os_errno));
    return;
  }
  if (s != EMEL_OK) {
    REQUIRE(s == EMEL_INVALID_ARGUMENT && emel_job_poll(h->job, NULL) >= EMEL_JOB_COMPLETED);
    return;
  }
  REQUIRE(emel_job_fd(h->job) >= 0);
  h->job_started = 1;
  if (b & 1) emel_job_cancel(h->job);
  REQUIRE(emel_job_step(h->job, 0, NULL, NULL) == EMEL_INVALID_ARGUMENT);
  /* A wait ends early on a failed event_wait: wait again (a lost wakeup costs a slice). */
  for (int k = 0; emel_job_wait(h->job, (b & 2) ? 1 : -1) < EMEL_JOB_COMPLETED; k++) REQUIRE(k < 100000);
}

static void op_job(harness *h, reader *r) {
  const uint8_t sub = next(r) % RP_JOB_OP_COUNT;
  if (sub == RP_JOB_CREATE) {
    job_create(h, r);
  } else if (!h->job) {
    return;
  } else if (sub == RP_JOB_STEP || sub == RP_JOB_STEP_ALL) {
    const uint8_t b = sub == RP_JOB_STEP ? next(r) : 0;
    const int was_finished = job_finished(h);
    emel_error e;
    const emel_status s = emel_job_step(h->job, sub == RP_JOB_STEP_ALL ? UINT64_MAX : (uint64_t)b * 512, NULL, &e);
    REQUIRE(named(s) && e.code == s);
    if (h->job_started) {
      REQUIRE(s == EMEL_INVALID_ARGUMENT);
      job_settle(h);
      return;
    }
    if (!job_finished(h)) REQUIRE(s == EMEL_OK);
    /* A failure found by this step is explained by a fault of this step, the
     * file or the request (a validation or state refusal carries no errno). */
    if (!was_finished && s != EMEL_OK && s != EMEL_CANCELLED && !h->sizes_changed) {
      /* A job that goes on after a failure ends with its first one as result,
       * which an earlier step may have met (and reported OK): then it is that
       * tensor's recorded failure. */
      if (h->job_continue && job_finished(h) && !error_explained(h, e)) {
        REQUIRE(e.tensor > 0 && emel_tensors_last_error(h->t, e.tensor - 1).code == s);
      } else {
        REQUIRE(error_explained(h, e));
      }
    }
    if (was_finished) REQUIRE(s == emel_job_result(h->job, NULL));
  } else if (sub == RP_JOB_START) {
    job_start(h, r);
  } else if (sub == RP_JOB_CANCEL) {
    emel_job_cancel(h->job);
  } else if (sub == RP_JOB_WAIT) {
    const emel_job_state before = emel_job_poll(h->job, NULL);
    REQUIRE(emel_job_wait(h->job, 0) == before); /* never started in the background here: returns at once */
  } else {
    job_destroy(h);
  }
  job_settle(h);
}

/* Whether, since the advice log was emptied, two DONTNEED advices in a row
 * failed: a release refused, then refused again when retried. */
static int release_refused_twice(harness *h) {
  fp_advice log[FP_ADVICE_LOG];
  const size_t n = fault_platform_advices(&h->fp, FP_ADVISE, log, FP_ADVICE_LOG);
  if (h->fp.advice_lost) return 1;
  for (size_t k = 1; k < n && k < FP_ADVICE_LOG; k++)
    if (log[k - 1].advice == EMEL_ADVISE_DONTNEED && log[k - 1].result < 0 && log[k].advice == EMEL_ADVISE_DONTNEED &&
        log[k].result < 0)
      return 1;
  return 0;
}

static const int errnos[10] = {EIO, ENOMEM, EMFILE, EACCES, EINTR, EAGAIN, EINVAL, ENOENT, EPERM, ENOSPC};

/* The nth next call of an operation fails (once, a few times, or a storm of
 * 20), or, for the reads, transfers at most a few bytes. */
static void op_fault(harness *h, reader *r) {
  fp_op op = (fp_op)(next(r) % FP_OP_COUNT);
  uint64_t nth = h->fp.calls[op] + 1 + next(r) % 8;
  uint8_t b = next(r);
  uint64_t count = (b & RP_STORM) == RP_STORM ? 20 : 1 + ((b >> 4) & 3);
  if ((op == FP_PREAD || op == FP_PREADV) && (b & RP_SHORT)) {
    uint8_t eof = next(r) % 4 == 0;
    int64_t len = 1 + next16(r) % 8192;
    if (eof) len = 0;
    if (op == FP_PREAD) fault_platform_short_read(&h->fp, nth, count, len);
    else fault_platform_short_readv(&h->fp, nth, count, len);
    return;
  }
  fault_platform_fail_many(&h->fp, op, nth, count, errnos[(b & 15) % 10]);
}

/* ---- the residency budget (RP_BUDGET_OPS) ---- */

static void op_budget(harness *h, reader *r) {
  const uint64_t bytes = (uint64_t)next16(r) << (next(r) & 3);
  const emel_budget_policy policy = next(r) & 1 ? EMEL_BUDGET_EVICT_LRU : EMEL_BUDGET_FAIL;
  REQUIRE(emel_tensors_set_budget(h->t, bytes, policy, NULL) == EMEL_OK);
  h->budget = bytes;
}

static void op_pin(harness *h, reader *r, int pin) {
  const uint32_t i = next(r) % (uint32_t)h->n_tensors;
  const emel_status s = pin ? emel_tensors_pin(h->t, i, NULL) : emel_tensors_unpin(h->t, i, NULL);
  if (!pin && h->pins[i] == 0) {
    REQUIRE(s == EMEL_INVALID_ARGUMENT);
    return;
  }
  REQUIRE(s == EMEL_OK);
  h->pins[i] = pin ? h->pins[i] + 1 : h->pins[i] - 1;
}

static void op_touch(harness *h, reader *r) {
  const uint32_t i = next(r) % (uint32_t)h->n_tensors;
  const int resident = emel_tensors_state(h->t, i) == EMEL_TENSOR_RESIDENT;
  REQUIRE(emel_tensors_touch(h->t, i, NULL) == (resident ? EMEL_OK : EMEL_TENSOR_NOT_RESIDENT));
}

static void run_op(harness *h, reader *r) {
  uint8_t op = next(r) % (h->budget_ops ? RP_OP_COUNT_BUDGET : RP_OP_COUNT);
  /* A pinned tensor stays resident whatever the operation (but a table's destroy). */
  unsigned char pinned_resident[MAX_TENSORS];
  for (int i = 0; i < h->n_tensors; i++)
    pinned_resident[i] = h->pins[i] > 0 && emel_tensors_state(h->t, (uint32_t)i) == EMEL_TENSOR_RESIDENT;
  op_begin(h);
  switch (op) {
  case RP_LOAD: op_load(h, r); break;
  case RP_EVICT: op_evict(h, r); break;
  case RP_BIND_EXTERNAL: op_bind_external(h, r); break;
  case RP_BIND: op_bind(h, r); break;
  case RP_ACQUIRE: op_acquire(h, r); break;
  case RP_RELEASE: op_release(h, r); break;
  case RP_ADVISE: op_advise(h, r); break;
  case RP_FAULT: op_fault(h, r); break;
  case RP_CLEAR: fault_platform_clear_faults(&h->fp); break;
  case RP_CUT_FILE: op_cut_file(h, r); break;
  case RP_LOAD_BATCH: op_load_batch(h, r); break;
  case RP_BUDGET: op_budget(h, r); break;
  case RP_PIN: op_pin(h, r, 1); break;
  case RP_UNPIN: op_pin(h, r, 0); break;
  case RP_TOUCH: op_touch(h, r); break;
  case RP_JOB:
    fault_platform_forget_advices(&h->fp);
    op_job(h, r);
    h->job_orphans |= release_refused_twice(h);
    h->unmap_failed |= h->job_orphans;
    break;
  default: op_evict_all(h); break;
  }
  h->unmap_failed |= fired_op(h, FP_UNMAP);
  for (int i = 0; i < h->n_tensors; i++)
    if (pinned_resident[i]) REQUIRE(emel_tensors_state(h->t, (uint32_t)i) == EMEL_TENSOR_RESIDENT);
  check(h);
}

/* ---- the end: nothing outstanding, and a clean load of everything works ---- */

static emel_status expected_clean(const harness *h, const emel_tensor_span *sp) {
  const model_file *f = &h->files[sp->file_index];
  if (f->kind == FILE_MISSING) return EMEL_OPEN_FAILED;
  if (f->kind == FILE_NUL_PATH) return EMEL_INVALID_PATH;
  return loadable(h, sp->file_index, sp->offset, sp->size) ? EMEL_OK : EMEL_SPAN_BEYOND_EOF;
}

static void clean_load(harness *h) {
  emel_io *io;
  emel_tensors *t;
  h->mf.can_map = 1;
  open_all(h, &h->mf.ops, 1, &io, &t);
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < h->n_tensors; i++) {
      const emel_tensor_span *sp = &h->tensors[i].span;
      emel_load_options o =
          EMEL_LOAD_OPTIONS_INIT(.strategy = (i + pass) % 2 ? EMEL_STRATEGY_READ : EMEL_STRATEGY_MMAP);
      emel_tensor_view v;
      emel_status s = emel_tensors_load(t, (uint32_t)i, &o, &v, NULL);
      REQUIRE(s == expected_clean(h, sp));
      if (s == EMEL_OK) REQUIRE(bytes_match(h, sp->file_index, sp->offset, v.data, v.size));
    }
    REQUIRE(emel_tensors_evict_all(t, NULL) == EMEL_OK);
    REQUIRE(emel_io_live(io, EMEL_STRATEGY_MMAP) == 0 && emel_io_live(io, EMEL_STRATEGY_READ) == 0);
  }
  /* A job over every tensor, in pieces, each tensor ending as a load would. */
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);
  emel_job_config c = EMEL_JOB_CONFIG_INIT(.options = &o, .chunk_bytes = 1024, .flags = EMEL_JOB_CONTINUE_ON_FAILURE);
  emel_job *job;
  REQUIRE(emel_job_create(&job, t, &c, NULL) == EMEL_OK);
  (void)emel_job_step(job, UINT64_MAX, NULL, NULL);
  REQUIRE(emel_job_poll(job, NULL) == EMEL_JOB_COMPLETED);
  for (int i = 0; i < h->n_tensors; i++) {
    emel_tensor_view v;
    const emel_status want = expected_clean(h, &h->tensors[i].span);
    REQUIRE(emel_job_view(job, (uint32_t)i, &v, NULL) == want);
    if (want == EMEL_OK) REQUIRE(bytes_match(h, h->tensors[i].span.file_index, h->tensors[i].span.offset, v.data, v.size));
  }
  emel_job_destroy(job);
  REQUIRE(emel_tensors_evict_all(t, NULL) == EMEL_OK);
  emel_tensors_destroy(t);
  emel_io_destroy(io);
  REQUIRE(memory_file_outstanding(&h->mf) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  harness *h = calloc(1, sizeof *h);
  REQUIRE(h);
  reader r = {data, size, 0};
  memory_file_init(&h->mf);
  build(h, &r);
  fault_platform_init(&h->fp);
  h->fp.real = &h->mf.ops;
  h->fp.can_map = h->mf.can_map;
  open_all(h, &h->fp.ops, 0, &h->io, &h->t);
  h->baseline_allocs = h->mf.live_allocs;
  check(h);
  for (int ops = 0; ops < MAX_OPS && r.at < r.n; ops++) run_op(h, &r);

  /* Teardown runs fault-free: a failing munmap at exit is the fault sweep's
   * subject, and nothing could be done about it here anyway. */
  fault_platform_clear_faults(&h->fp);
  if (h->job) job_destroy(h);
  emel_tensors_destroy(h->t);
  size_t held_live[EMEL_STRATEGY_COUNT] = {0};
  for (int k = 0; k < h->n_held; k++) held_live[h->held[k].handle.strategy]++;
  REQUIRE(emel_io_live(h->io, EMEL_STRATEGY_MMAP) == held_live[EMEL_STRATEGY_MMAP] ||
          (h->job_orphans && emel_io_live(h->io, EMEL_STRATEGY_MMAP) > held_live[EMEL_STRATEGY_MMAP]));
  REQUIRE(emel_io_live(h->io, EMEL_STRATEGY_READ) == held_live[EMEL_STRATEGY_READ]);
  while (h->n_held > 0) {
    REQUIRE(emel_io_release(h->io, h->held[0].handle, NULL) == EMEL_OK);
    forget_held(h, 0);
  }
  REQUIRE((h->job_orphans || emel_io_live(h->io, EMEL_STRATEGY_MMAP) == 0) &&
          emel_io_live(h->io, EMEL_STRATEGY_READ) == 0);
  emel_io_destroy(h->io); /* releases what is still live: nothing outstanding after it */
  REQUIRE(fault_platform_outstanding(&h->fp) == 0);
  REQUIRE(memory_file_outstanding(&h->mf) == 0);

  clean_load(h);
  for (int i = 0; i < h->n_tensors; i++) free(h->tensors[i].storage);
  for (int f = 0; f < h->n_files; f++) free(h->files[f].data);
  free(h);
  return 0;
}

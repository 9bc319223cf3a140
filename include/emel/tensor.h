/* Tensor residency: which tensors exist, where their bytes live, what is loaded.
 *
 * A table of tensors with a fixed capacity declared at creation. Each tensor's
 * lifecycle is a generated machine (statecharts/tensor_residency.rl):
 *
 *   unbound -> bound (span known, no bytes) -> resident (mapped | owned | external)
 *           -> evicted (bytes released, span kept) -> resident again on a new load
 *
 * A failed load leaves the tensor bound with the error recorded, never
 * half-resident. Loads go through the io boundary to a strategy; caller-owned
 * storage can be bound without any strategy (external residency).
 * Not thread-safe per table, nor across tables that share one io boundary;
 * tables on separate boundaries share nothing.
 */
#ifndef EMEL_TENSOR_H
#define EMEL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "emel/api.h"
#include "emel/io.h"
#include "emel/status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  EMEL_TENSOR_MAX_DIMS = 4,
  EMEL_TENSOR_MAX_NAME = 255,       /* bytes; GGUF's own limit is 64 in practice */
  EMEL_TENSOR_MAX_CAPACITY = 1u << 24,
  EMEL_TENSOR_BATCH_WINDOW = 256    /* tensors acquired at once by emel_tensors_load_batch */
};

/* The states a caller can observe between calls. */
typedef enum emel_tensor_state {
  EMEL_TENSOR_UNBOUND = 0,
  EMEL_TENSOR_BOUND = 1,
  EMEL_TENSOR_RESIDENT = 2,
  EMEL_TENSOR_EVICTED = 3,
  EMEL_TENSOR_STATE_UNKNOWN = 4 /* index out of range */
} emel_tensor_state;

/* Where a tensor's bytes are in which file. */
typedef struct emel_tensor_span {
  uint32_t type; /* ggml type id, carried for callers; the table does not interpret it */
  uint32_t n_dims;
  uint64_t dims[EMEL_TENSOR_MAX_DIMS]; /* ggml order; unused dims are 1 */
  uint32_t file_index;                 /* index into the io boundary's file table */
  uint64_t offset;                     /* absolute offset of the first byte */
  uint64_t size;                       /* bytes, > 0 */
} emel_tensor_span;

typedef struct emel_tensor_info {
  const char *name; /* NUL-terminated, owned by the table */
  size_t name_len;
  emel_tensor_span span;
} emel_tensor_info;

/* A resident tensor's bytes. Lifetime of `data`: valid while the tensor stays
 * resident, that is until emel_tensors_evict (or evict_all) of this tensor or
 * emel_tensors_destroy of its table (emel_model_evict / emel_model_close for a
 * model's). Loads, failures and evictions of other tensors never move or free
 * it, except that under an EMEL_BUDGET_EVICT_LRU budget a load of another
 * tensor may evict this one (emel_tensors_pin keeps it). A later load of the same tensor may give another `data`. Mapped bytes
 * (EMEL_RESIDENCY_MAPPED) are read-only. External bytes stay the caller's. */
typedef struct emel_tensor_view {
  void *data;
  uint64_t size;             /* bytes: the slice's for a shard load */
  emel_residency residency;  /* EMEL_RESIDENCY_NONE for an empty slice (data NULL, size 0) */
  emel_strategy strategy;
  /* Rows [row_begin, row_end) of the outermost dimension (dims[n_dims - 1],
   * PyTorch's dim 0) that `data` holds: every row unless the load asked for a
   * shard (emel_load_options.shard_count). */
  uint64_t row_begin, row_end;
} emel_tensor_view;

typedef struct emel_load_options {
  size_t struct_size;   /* sizeof(emel_load_options): EMEL_LOAD_OPTIONS_INIT sets it */
  emel_strategy strategy;
  unsigned flags;       /* EMEL_LOAD_* from emel/io.h */
  void *target;         /* optional caller buffer (read strategy): external residency */
  uint64_t target_size;
  /* Tensor parallelism: load only rank shard_rank's slice of shard_count
   * (0: the whole tensor) along the outermost dimension (R = dims[n_dims - 1]
   * rows, PyTorch's dim 0): rows [floor(K*R/N), floor((K+1)*R/N)), one
   * contiguous byte range of the span (see emel_tensor_shard_cut). A 1-D
   * tensor of a block type (Q4_0, ...) is cut between blocks: its rows are
   * its blocks. shard_rank >= shard_count (or > 0 with count 0), or a span
   * whose type and dims do not give its size, is EMEL_INVALID_SHARD. More
   * ranks than rows gives some ranks an empty slice: resident, with data
   * NULL, size 0 and residency EMEL_RESIDENCY_NONE (nothing is mapped or
   * read; its hash is XXH3 of no bytes). */
  uint32_t shard_rank;
  uint32_t shard_count;
  /* The staged strategy's consumer (emel/io_staged.h: the contract), required
   * with EMEL_STRATEGY_STAGED and refused (EMEL_INVALID_REQUEST) by the
   * others; with it, `target` must be NULL (the consumer has its own). It
   * reaches the strategy as the request's target with EMEL_LOAD_CONSUMER. */
  const struct emel_staged_consumer *consumer;
} emel_load_options;

/* `emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);`
 * Loads refuse options without a struct_size they know (EMEL_STRUCT_SIZE_UNKNOWN). */
#define EMEL_LOAD_OPTIONS_INIT(...) EMEL_STRUCT_INIT_(emel_load_options, __VA_ARGS__)

/* A shard's slice of a span (see emel_load_options.shard_*): rows
 * [row_begin, row_end) of `rows`, which are bytes [offset, offset + size) of
 * the span's file (size 0 for an empty slice). */
typedef struct emel_tensor_slice {
  uint64_t rows;
  uint64_t row_begin, row_end;
  uint64_t offset, size;
} emel_tensor_slice;

/* Computes rank `rank` of `count`'s slice of `span` without loading anything
 * (to size a target buffer, say). count 0 (with rank 0) is the whole span.
 * EMEL_INVALID_SHARD for rank >= count, or a span whose type (a ggml type)
 * and dims do not give its size; EMEL_INVALID_ARGUMENT for a NULL pointer. */
EMEL_API emel_status emel_tensor_shard_cut(const emel_tensor_span *span, uint32_t rank, uint32_t count,
                                           emel_tensor_slice *slice, emel_error *err);

typedef struct emel_tensors emel_tensors;

/* What a load that would take a table's owned residency over its budget does. */
typedef enum emel_budget_policy {
  EMEL_BUDGET_FAIL = 0,     /* the load fails with EMEL_BUDGET_EXCEEDED, nothing evicted */
  EMEL_BUDGET_EVICT_LRU = 1 /* first evicts least-recently-used unpinned tensors, if that makes room */
} emel_budget_policy;

/* A table's residency, as emel_tensors_stats_get reports it: filled up to the
 * caller's struct_size (EMEL_TENSORS_STATS_INIT sets it), so it can grow. */
typedef struct emel_tensors_stats {
  size_t struct_size;
  uint64_t budget_bytes;         /* 0: no budget */
  emel_budget_policy budget_policy;
  uint64_t owned_bytes;          /* view.size of every resident tensor of residency owned */
  uint64_t reserved_bytes;       /* owned bytes a running load job has allocated but not yet handed over */
  uint64_t evictable_bytes;      /* owned bytes of resident tensors the LRU may evict (unpinned, not held by a job) */
  uint32_t resident;             /* emel_tensors_resident_count */
  uint32_t pinned;               /* tensors with a pin count above 0, resident or not */
  uint64_t budget_evictions;     /* tensors the LRU policy evicted since the table was created */
} emel_tensors_stats;

#define EMEL_TENSORS_STATS_INIT(...) EMEL_STRUCT_INIT_(emel_tensors_stats, __VA_ARGS__)

typedef struct emel_tensors_config {
  size_t struct_size;  /* sizeof(emel_tensors_config): EMEL_TENSORS_CONFIG_INIT sets it */
  emel_io *io;         /* the boundary loads go through (used until the table is destroyed:
                          see emel_io_destroy); may be NULL for external-only tables */
  uint32_t capacity;   /* tensors; 1..EMEL_TENSOR_MAX_CAPACITY */
  size_t name_bytes;   /* total bytes for names (NULs included); 0: capacity * 64 */
  const emel_platform_ops *platform; /* for the table's own memory; NULL: the io's, or defaults */
  /* Residency budget (see emel_tensors_set_budget): bytes of owned residency
   * the table may hold (0: no budget), and what a load over it does. */
  uint64_t budget_bytes;
  emel_budget_policy budget_policy;
} emel_tensors_config;

#define EMEL_TENSORS_CONFIG_INIT(...) EMEL_STRUCT_INIT_(emel_tensors_config, __VA_ARGS__)

EMEL_API emel_status emel_tensors_create(emel_tensors **out, const emel_tensors_config *config, emel_error *err);

/* Evicts every resident tensor, then frees the table. */
EMEL_API void emel_tensors_destroy(emel_tensors *t);

/* Adds an unbound tensor (name copied). Names are unique. */
EMEL_API emel_status emel_tensors_declare(emel_tensors *t, const char *name, size_t name_len, uint32_t *index, emel_error *err);

/* Binds a file span to an unbound tensor: unbound -> bound. */
EMEL_API emel_status emel_tensors_bind(emel_tensors *t, uint32_t index, const emel_tensor_span *span, emel_error *err);

/* declare + bind in one call; on a bind failure the tensor stays declared, unbound. */
EMEL_API emel_status emel_tensors_add(emel_tensors *t, const char *name, size_t name_len,
                                      const emel_tensor_span *span, uint32_t *index, emel_error *err);

EMEL_API emel_status emel_tensors_find(const emel_tensors *t, const char *name, size_t name_len, uint32_t *index, emel_error *err);

/* Makes a bound or evicted tensor resident through the io boundary: the
 * whole tensor, or the shard options->shard_rank/shard_count ask for (an
 * invalid one: EMEL_INVALID_SHARD). On failure the tensor is bound; `err` (and emel_tensors_last_error(), which
 * keeps it for the tensor) has the code, the errno, the tensor and its file.
 * Options without a struct_size this library knows: EMEL_STRUCT_SIZE_UNKNOWN,
 * nothing tried (the same for emel_tensors_load_batch). */
EMEL_API emel_status emel_tensors_load(emel_tensors *t, uint32_t index, const emel_load_options *options,
                                       emel_tensor_view *view, emel_error *err);

/* Loads many tensors at once: the io boundary gets them as one batch per
 * EMEL_TENSOR_BATCH_WINDOW (the read strategy coalesces adjacent spans and
 * transfers them on one thread per core), then each tensor's machine adopts
 * its own result, exactly as emel_tensors_load would have left it.
 * `indices` NULL means tensors 0..count-1. statuses (may be NULL) gets each
 * tensor's status: EMEL_OK, the load's error (emel_tensors_last_error tells
 * more), EMEL_TENSOR_UNKNOWN, or a refusal such as EMEL_TENSOR_ALREADY_RESIDENT.
 * Returns the first failure in `indices` order, EMEL_OK if none; `err` is
 * that failure's (its tensor, errno and file).
 * options->target must be NULL (one caller buffer cannot hold many tensors). */
EMEL_API emel_status emel_tensors_load_batch(emel_tensors *t, const uint32_t *indices, size_t count,
                                             const emel_load_options *options, emel_status *statuses, emel_error *err);

/* Makes a bound or evicted tensor resident in caller-owned storage of at least
 * its size, without any strategy (external residency). The caller fills it. */
EMEL_API emel_status emel_tensors_bind_external(emel_tensors *t, uint32_t index, void *data, uint64_t size, emel_error *err);

/* Releases a resident tensor's bytes (an external buffer stays its owner's).
 * A pinned tensor is refused with EMEL_TENSOR_PINNED and stays resident. */
EMEL_API emel_status emel_tensors_evict(emel_tensors *t, uint32_t index, emel_error *err);

/* Evicts every resident tensor but pinned ones (EMEL_TENSOR_PINNED); returns
 * the first failure, EMEL_OK if none. */
EMEL_API emel_status emel_tensors_evict_all(emel_tensors *t, emel_error *err);

/* A resident tensor's view; marks it most recently used (see the budget below). */
EMEL_API emel_status emel_tensors_view(const emel_tensors *t, uint32_t index, emel_tensor_view *view, emel_error *err);

/* XXH3-64 of a resident tensor's bytes (what `xxhsum -H3` prints for them).
 * Mapped bytes are read under the platform's guard (emel_platform_ops.guard):
 * a page the file no longer has (it shrank under the mapping) gives
 * EMEL_FILE_CHANGED, a page it has but could not deliver EMEL_READ_FAILED,
 * both with os_errno EFAULT in emel_tensors_last_error(), never a SIGBUS.
 * EMEL_TENSOR_NOT_RESIDENT when it is not resident. */
EMEL_API emel_status emel_tensors_hash(emel_tensors *t, uint32_t index, uint64_t *xxh3, emel_error *err);

/* emel_tensors_hash, compared: EMEL_OK when the bytes hash to expected_xxh3,
 * EMEL_TENSOR_HASH_MISMATCH when they do not, else the hash's error. */
EMEL_API emel_status emel_tensors_verify(emel_tensors *t, uint32_t index, uint64_t expected_xxh3, emel_error *err);
/* ---- Residency budget ----
 * The budget limits a table's OWNED residency: the bytes of tensors whose
 * view.residency is EMEL_RESIDENCY_OWNED (the read strategy's buffers, a load
 * job's), counted as view.size. Mapped bytes (page cache the kernel may drop)
 * and external ones (the caller's storage) do not count. A load that would
 * make the owned bytes exceed the budget (a read load without a target,
 * emel_tensors_load or a batch, or a load job's) is checked before anything
 * is acquired: it fits (owned + size <= budget: exactly the remaining budget
 * fits), or under EMEL_BUDGET_EVICT_LRU the least-recently-used evictable
 * tensors are evicted first, oldest first, until it fits, or it fails with
 * EMEL_BUDGET_EXCEEDED (the tensor stays bound or evicted, last error set)
 * and nothing is evicted: eviction happens only when it makes room. A tensor
 * larger than the budget is always EMEL_BUDGET_EXCEEDED.
 * Evictable: resident, owned, not pinned, not held by a load job, and not a
 * tensor of the batch being loaded (a batch never evicts its own tensors, those
 * it loads nor those already resident among its indices, to fit another).
 * "Used" (most recently) means: loaded, viewed (emel_tensors_view), hashed or
 * touched (emel_tensors_touch). Each is O(1): an intrusive list in the table.
 * If evicting a victim fails (its release is refused), the load fails with that
 * release's error and the victim stays resident with its error recorded. */

/* Sets (bytes 0: removes) the budget and its policy; also for a model's table
 * (emel_model_tensors). Nothing is evicted now: a budget below what is owned
 * already only constrains later loads. EMEL_INVALID_ARGUMENT for an unknown policy. */
EMEL_API emel_status emel_tensors_set_budget(emel_tensors *t, uint64_t budget_bytes, emel_budget_policy policy,
                                             emel_error *err);

/* Pins a declared tensor (in any state; counted: n pins need n unpins). A
 * pinned tensor is never evicted by the budget's LRU, and emel_tensors_evict
 * (and evict_all) refuse it with EMEL_TENSOR_PINNED; only emel_tensors_destroy
 * (emel_model_close) releases it anyway. */
EMEL_API emel_status emel_tensors_pin(emel_tensors *t, uint32_t index, emel_error *err);
/* Undoes one pin; EMEL_INVALID_ARGUMENT (detail "the tensor is not pinned") if none is left. */
EMEL_API emel_status emel_tensors_unpin(emel_tensors *t, uint32_t index, emel_error *err);
/* The tensor's pin count (0 for an unknown index). */
EMEL_API uint32_t emel_tensors_pin_count(const emel_tensors *t, uint32_t index);

/* Marks a resident tensor most recently used (EMEL_TENSOR_NOT_RESIDENT otherwise). */
EMEL_API emel_status emel_tensors_touch(emel_tensors *t, uint32_t index, emel_error *err);

/* Fills *stats up to its struct_size (NULL table or stats: EMEL_INVALID_ARGUMENT;
 * a struct_size below its first member or above this library's: EMEL_STRUCT_SIZE_UNKNOWN). */
EMEL_API emel_status emel_tensors_stats_get(const emel_tensors *t, emel_tensors_stats *stats, emel_error *err);

/* The owned bytes counted against the budget (emel_tensors_stats.owned_bytes). */
EMEL_API uint64_t emel_tensors_resident_bytes(const emel_tensors *t);

EMEL_API emel_tensor_state emel_tensors_state(const emel_tensors *t, uint32_t index);
EMEL_API const emel_tensor_info *emel_tensors_info(const emel_tensors *t, uint32_t index, emel_tensor_info *out);
/* The error of the last failed load, bind, hash or release of this tensor,
 * with its tensor and file filled in (code EMEL_OK if the last one succeeded).
 * Still useful after a batch, whose `err` tells only the first failure. A
 * refusal by state (TENSOR_ALREADY_RESIDENT, …) is reported by the call only. */
EMEL_API emel_error emel_tensors_last_error(const emel_tensors *t, uint32_t index);
EMEL_API uint32_t emel_tensors_count(const emel_tensors *t);
EMEL_API uint32_t emel_tensors_resident_count(const emel_tensors *t);
EMEL_API const char *emel_tensor_state_name(emel_tensor_state state);

#ifdef __cplusplus
}
#endif

#endif

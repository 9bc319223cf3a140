/* The io boundary: how tensor residency asks for a tensor's bytes.
 *
 * A request names a file (an index into the boundary's table of model files,
 * so split models work), a span (offset, size), a strategy and options, and
 * optionally a caller-provided target buffer. The result gives a pointer, a
 * length, a residency kind and a release handle, or a named error that carries
 * the strategy's own code and the failing OS errno.
 *
 * The boundary knows strategies only through emel_io_strategy_ops; each
 * strategy module (io/mmap, io/read) attaches itself with its own
 * emel_io_*_attach() and never sees another strategy.
 *
 * Not thread-safe per instance; separate instances share nothing.
 */
#ifndef EMEL_IO_H
#define EMEL_IO_H

#include <stddef.h>
#include <stdint.h>

#include "emel/api.h"
#include "emel/platform.h"
#include "emel/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum emel_strategy {
  EMEL_STRATEGY_NONE = 0, /* caller-owned storage: no strategy involved */
  EMEL_STRATEGY_MMAP = 1,
  EMEL_STRATEGY_READ = 2,
  EMEL_STRATEGY_COUNT
} emel_strategy;

typedef enum emel_residency {
  EMEL_RESIDENCY_NONE = 0,
  EMEL_RESIDENCY_MAPPED = 1,  /* bytes mapped from the file (read-only) */
  EMEL_RESIDENCY_OWNED = 2,   /* bytes copied into a library-owned buffer */
  EMEL_RESIDENCY_EXTERNAL = 3 /* bytes in caller-owned storage */
} emel_residency;

/* Request options; a strategy refuses options it does not know with
 * EMEL_INVALID_REQUEST rather than ignoring them. */
enum {
  EMEL_LOAD_POPULATE = 1u << 0,   /* mmap: pre-fault the tensor's pages */
  EMEL_LOAD_LOCK = 1u << 1,       /* mmap: mlock the tensor's pages */
  EMEL_LOAD_DIRECT = 1u << 2,     /* read: O_DIRECT, falling back to buffered reads */
  EMEL_LOAD_DROP_CACHE = 1u << 3  /* read: drop the file's page-cache pages after the copy */
};

/* Limits declared up front (bounded resources). */
enum {
  EMEL_IO_MAX_PATH = 4095,   /* bytes, excluding the terminating NUL */
  EMEL_IO_MAX_FILES = 1024   /* model files (splits) per boundary */
};

typedef struct emel_io_file {
  const char *path; /* NUL-terminated copy owned by the boundary */
  size_t path_len;  /* length as given; a NUL before it is an invalid path */
  int has_expected; /* the strategies refuse the file with EMEL_FILE_CHANGED */
  emel_file_identity expected; /* unless it is still this (when it was indexed) */
} emel_io_file;

/* The table of model files, shared read-only with the strategies. */
typedef struct emel_io_files {
  uint32_t count;
  uint32_t capacity;
  emel_io_file *files;
} emel_io_files;

typedef struct emel_io_request {
  uint32_t tensor;      /* caller's tensor index, for diagnostics */
  uint32_t file_index;  /* index into the boundary's file table */
  uint64_t offset;      /* absolute offset of the first byte in that file */
  uint64_t size;        /* bytes */
  emel_strategy strategy;
  unsigned flags;       /* EMEL_LOAD_* */
  void *target;         /* optional caller buffer (read strategy): external residency */
  uint64_t target_size;
} emel_io_request;

/* Identifies one residency for release. generation makes a stale handle
 * (already released, slot reused) detectable. */
typedef struct emel_io_handle {
  uint32_t strategy; /* emel_strategy */
  uint32_t slot;
  uint32_t generation;
} emel_io_handle;

typedef struct emel_io_result {
  void *data;
  uint64_t size;
  emel_residency residency;
  emel_io_handle handle;
  emel_strategy strategy;
  emel_error error; /* code EMEL_OK on success; else the strategy's code and errno */
} emel_io_result;

/* What a strategy implements. acquire/release are required; the rest optional. */
typedef struct emel_io_strategy_ops {
  emel_strategy kind;
  const char *name;
  void (*acquire)(void *self, const emel_io_request *request, emel_io_result *result);
  emel_error (*release)(void *self, emel_io_handle handle);
  /* Advise a sub-range [offset, offset+len) of a live residency; NULL: unsupported. */
  emel_error (*advise)(void *self, emel_io_handle handle, uint64_t offset, uint64_t len,
                       emel_map_advice advice);
  /* Many requests at once (the strategy may reorder and coalesce them);
   * NULL: the boundary calls acquire for each. */
  void (*acquire_batch)(void *self, const emel_io_request *requests, emel_io_result *results,
                        size_t count);
  /* Live residencies (for leak checks and reports). */
  size_t (*live)(const void *self);
  void (*destroy)(void *self);
} emel_io_strategy_ops;

typedef struct emel_io emel_io;

typedef struct emel_io_config {
  const emel_platform_ops *platform; /* NULL: defaults; NULL entries: defaults */
  uint32_t max_files;                /* 0: 16; at most EMEL_IO_MAX_FILES */
} emel_io_config;

EMEL_API emel_status emel_io_create(emel_io **out, const emel_io_config *config, emel_error *err);

/* Releases every strategy (which releases what it still holds) and the boundary.
 * Lifetime: each tensor table created with this boundary (emel_tensors_config.io)
 * uses it until emel_tensors_destroy. Destroying the boundary first is allowed:
 * the caller gives up `io` at once, but it (and every resident tensor's bytes)
 * lives on until the last such table is destroyed, which destroys it. NULL is
 * allowed. */
EMEL_API void emel_io_destroy(emel_io *io);

/* Adds a model file by path (copied). The path is validated by the strategy
 * that opens it, so a bad path is reported on the load that uses it. */
EMEL_API emel_status emel_io_add_file(emel_io *io, const char *path, size_t path_len, uint32_t *file_index, emel_error *err);

/* Records what file `file_index` must still be when a strategy opens it (the
 * identity it had when it was indexed): a strategy that finds another one
 * refuses the load with EMEL_FILE_CHANGED instead of serving other bytes. */
EMEL_API emel_status emel_io_expect_file(emel_io *io, uint32_t file_index, const emel_file_identity *expected, emel_error *err);

EMEL_API const emel_io_files *emel_io_files_of(const emel_io *io);
EMEL_API const emel_platform_ops *emel_io_platform(const emel_io *io);

/* Hands a strategy instance `self` to the boundary. One rule for every strategy:
 * whatever attach returns, `self` is no longer the caller's. On EMEL_OK the
 * boundary owns it (emel_io_destroy calls ops->destroy(self)); on a failure
 * (EMEL_INVALID_ARGUMENT: io NULL, kind out of range or already attached,
 * acquire/release/destroy missing) attach has called ops->destroy(self) before
 * returning. Only when `ops` or `ops->destroy` is NULL can it not destroy
 * `self`, which then stays the caller's. emel_io_mmap_attach and
 * emel_io_read_attach follow it: on failure nothing is attached or held. */
EMEL_API emel_status emel_io_attach(emel_io *io, const emel_io_strategy_ops *ops, void *self, emel_error *err);

EMEL_API int emel_io_has_strategy(const emel_io *io, emel_strategy strategy);

/* A request's result carries its own emel_error (result->error): these two
 * return the status (the batch: its first failure, in request order) and take
 * no separate emel_error. */
EMEL_API emel_status emel_io_acquire(emel_io *io, const emel_io_request *request, emel_io_result *result);
EMEL_API emel_status emel_io_acquire_batch(emel_io *io, const emel_io_request *requests, emel_io_result *results,
                                           size_t count);
EMEL_API emel_status emel_io_release(emel_io *io, emel_io_handle handle, emel_error *err);
EMEL_API emel_status emel_io_advise(emel_io *io, emel_io_handle handle, uint64_t offset, uint64_t len,
                                    emel_map_advice advice, emel_error *err);

/* Live residencies held by one strategy (0 for an absent one). */
EMEL_API size_t emel_io_live(const emel_io *io, emel_strategy strategy);

/* The instance attached for `kind` when it was attached with exactly `ops`,
 * else NULL: lets a strategy module's own API (stats, say) find its instance
 * without the boundary knowing its type. */
EMEL_API void *emel_io_strategy_self(const emel_io *io, emel_strategy kind, const emel_io_strategy_ops *ops);

EMEL_API const char *emel_strategy_name(emel_strategy strategy);
EMEL_API const char *emel_residency_name(emel_residency residency);

#ifdef __cplusplus
}
#endif

#endif

/* The io boundary: how tensor residency asks for a tensor's bytes.
 *
 * A request names a file (an index into the boundary's table of model files,
 * so split models work), a span (offset, size), a strategy and options, and
 * optionally a caller-provided target buffer. The result gives a pointer, a
 * length, a residency kind and a release handle, or a named error that carries
 * the strategy's own code and the failing OS errno.
 *
 * The boundary knows strategies only through emel_io_strategy_ops (the
 * plug-in interface, in emel/io_strategy.h: only a strategy's author needs
 * it); each strategy module (io/mmap, io/read, io/staged) attaches itself with its own
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
  EMEL_STRATEGY_STAGED = 3, /* bytes handed to a consumer through a bounded staging ring (emel/io_staged.h) */
  EMEL_STRATEGY_COUNT
} emel_strategy;

typedef enum emel_residency {
  EMEL_RESIDENCY_NONE = 0,
  EMEL_RESIDENCY_MAPPED = 1,  /* bytes mapped from the file (read-only) */
  EMEL_RESIDENCY_OWNED = 2,   /* bytes copied into a library-owned buffer */
  EMEL_RESIDENCY_EXTERNAL = 3, /* bytes in caller-owned storage */
  EMEL_RESIDENCY_DELIVERED = 4 /* staged: the bytes went to a consumer; the library holds none (data NULL) */
} emel_residency;

/* Request options; a strategy refuses options it does not know with
 * EMEL_INVALID_REQUEST rather than ignoring them. */
enum {
  EMEL_LOAD_POPULATE = 1u << 0,   /* mmap: pre-fault the tensor's pages */
  EMEL_LOAD_LOCK = 1u << 1,       /* mmap: mlock the tensor's pages */
  EMEL_LOAD_DIRECT = 1u << 2,     /* read: O_DIRECT, falling back to buffered reads */
  EMEL_LOAD_DROP_CACHE = 1u << 3, /* read: drop the file's page-cache pages after the copy */
  /* staged: `target` points at the request's emel_staged_consumer (emel/io_staged.h),
   * not at storage; target_size is ignored. Other strategies refuse it. */
  EMEL_LOAD_CONSUMER = 1u << 4
};

/* Limits declared up front (bounded resources). */
enum {
  EMEL_IO_MAX_PATH = 4095,   /* bytes, excluding the terminating NUL */
  EMEL_IO_MAX_FILES = 1024   /* model files (splits) per boundary */
};

typedef struct emel_io_request {
  uint32_t tensor;      /* caller's tensor index, for diagnostics */
  uint32_t file_index;  /* index into the boundary's file table */
  uint64_t offset;      /* absolute offset of the first byte in that file */
  uint64_t size;        /* bytes */
  emel_strategy strategy;
  unsigned flags;       /* EMEL_LOAD_* */
  void *target;         /* optional caller buffer (read strategy): external residency;
                           with EMEL_LOAD_CONSUMER (staged), the request's emel_staged_consumer */
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

typedef struct emel_io emel_io;

typedef struct emel_io_config {
  size_t struct_size;                /* sizeof(emel_io_config): EMEL_IO_CONFIG_INIT sets it */
  const emel_platform_ops *platform; /* NULL: defaults; NULL entries: defaults */
  uint32_t max_files;                /* 0: 16; at most EMEL_IO_MAX_FILES */
} emel_io_config;

#define EMEL_IO_CONFIG_INIT(...) EMEL_STRUCT_INIT_(emel_io_config, __VA_ARGS__)

/* `config` may be NULL (defaults). EMEL_STRUCT_SIZE_UNKNOWN or
 * EMEL_PLATFORM_OPS_UNPAIRED for a config or platform table it cannot take. */
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

EMEL_API const char *emel_strategy_name(emel_strategy strategy);
EMEL_API const char *emel_residency_name(emel_residency residency);

#ifdef __cplusplus
}
#endif

#endif

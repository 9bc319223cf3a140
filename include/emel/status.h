/* emel-io status codes: the one list every module reports from.
 *
 * Codes are stable: a code's number never changes once released, so callers may
 * log or compare them. Numbers are grouped by module (1xx io boundary and
 * machines, 2xx tensor residency, 3xx mmap, 4xx read, 5xx gguf, 6xx staged). Each failure
 * that comes from an OS call also keeps the call's errno in emel_error.os_errno.
 */
#ifndef EMEL_STATUS_H
#define EMEL_STATUS_H

#include "emel/api.h"
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, number, message) — the single source of the enum and its strings. */
#define EMEL_STATUS_LIST(X)                                                              \
  X(OK, 0, "success")                                                                    \
  /* common to every machine and the io boundary */                                      \
  X(UNEXPECTED_EVENT, 100, "the machine does not accept this event in its current state") \
  X(INVALID_ARGUMENT, 101, "an argument is null or out of range")                        \
  X(OUT_OF_MEMORY, 102, "allocation of bookkeeping memory failed")                       \
  X(UNKNOWN_STRATEGY, 103, "no loading strategy of that kind is attached to the io boundary") \
  X(INVALID_REQUEST, 104, "the request is malformed (zero size, bad flags or shape)")     \
  X(INVALID_PATH, 105, "the file path is empty, too long or contains a NUL byte")        \
  X(INVALID_FILE_INDEX, 106, "the file index is not in the table of model files")        \
  X(SPAN_OVERFLOW, 107, "offset plus size overflows a 64-bit file position")             \
  X(OPEN_FAILED, 108, "opening the model file failed")                                   \
  X(STAT_FAILED, 109, "reading the model file's size failed")                            \
  X(SPAN_BEYOND_EOF, 110, "the span ends past the end of the file")                      \
  X(INVALID_HANDLE, 111, "the handle is unknown or was already released")                \
  X(POOL_EXHAUSTED, 112, "every slot of the fixed-capacity pool is in use")              \
  X(FILE_TABLE_FULL, 113, "the table of model files is full")                            \
  X(FILE_CHANGED, 114, "the file changed since it was indexed (size, identity or modification time)") \
  X(NOT_A_REGULAR_FILE, 115, "the path is not a regular file (a directory, FIFO, device or socket)") \
  X(STRUCT_SIZE_UNKNOWN, 116, "a struct's struct_size is 0 or larger than this library knows (set it with the struct's _INIT macro; built against a newer header?)") \
  X(PLATFORM_OPS_UNPAIRED, 117, "a platform op was given without its pair (open/close, map/unmap, lock/unlock, alloc/free, thread_start/thread_join, event_open/event_close)") \
  X(CANCELLED, 118, "the load job was cancelled before this tensor was loaded")          \
  X(JOB_START_FAILED, 119, "starting the load job's thread or its event descriptor failed") \
  X(INTERNAL, 199, "internal error: a machine rejected its own outcome event")           \
  /* tensor residency */                                                                 \
  X(TENSOR_UNKNOWN, 200, "no tensor has that name or index")                             \
  X(TENSOR_ALREADY_RESIDENT, 201, "the tensor is already resident")                      \
  X(TENSOR_NOT_RESIDENT, 202, "the tensor is not resident")                              \
  X(TENSOR_NOT_BOUND, 203, "the tensor has no file span bound to it")                    \
  X(TENSOR_ALREADY_BOUND, 204, "the tensor already has a span or storage bound")         \
  X(TENSOR_TABLE_FULL, 205, "the tensor table is at its declared capacity")              \
  X(TENSOR_DUPLICATE_NAME, 206, "a tensor with that name already exists")                \
  X(TENSOR_NAME_INVALID, 207, "the tensor name is empty or too long")                    \
  X(EXTERNAL_TOO_SMALL, 208, "the caller-owned storage is smaller than the tensor")      \
  X(TENSOR_ALREADY_EVICTED, 209, "the tensor was already evicted")                       \
  X(TENSOR_HASH_MISMATCH, 210, "the tensor's bytes do not have the expected hash")       \
  X(INVALID_SHARD, 211, "the shard is invalid: its rank is not below its count, or the tensor's type and dims do not give its size") \
  X(TENSOR_BUSY, 212, "a running load job holds the tensor (destroy the job first)")    \
  X(BUDGET_EXCEEDED, 213, "the load does not fit the tensor table's residency budget (even after evicting every unpinned tensor the policy allows)") \
  X(TENSOR_PINNED, 214, "the tensor is pinned: unpin it before evicting it")            \
  /* io/mmap */                                                                          \
  X(MMAP_UNSUPPORTED, 300, "memory mapping is not supported on this platform")           \
  X(MMAP_FAILED, 301, "mapping the file failed")                                         \
  X(MMAP_LOCK_FAILED, 302, "locking the mapping in memory failed (check RLIMIT_MEMLOCK / ulimit -l)") \
  X(MMAP_ADVISE_RANGE_INVALID, 303, "the advise range lies outside the mapped tensor")   \
  X(MMAP_ADVISE_FAILED, 304, "madvise on the mapping failed")                            \
  X(MMAP_UNMAP_FAILED, 305, "unmapping the file failed")                                 \
  X(MMAP_POPULATE_FAILED, 306, "pre-faulting the mapped pages failed")                   \
  X(MMAP_UNLOCK_FAILED, 307, "unlocking the tensor's locked pages failed")                \
  /* io/read */                                                                          \
  X(READ_TARGET_TOO_SMALL, 400, "the caller-provided buffer is smaller than the span")    \
  X(READ_ALLOC_FAILED, 401, "allocating the owned, aligned buffer failed")               \
  X(READ_FAILED, 402, "reading from the model file failed")                              \
  X(READ_UNEXPECTED_EOF, 403, "the file ended before the whole span was read")           \
  /* gguf index */                                                                       \
  X(GGUF_BAD_MAGIC, 500, "the file does not start with the GGUF magic")                  \
  X(GGUF_BIG_ENDIAN, 501, "the file is a big-endian GGUF, which is not supported")       \
  X(GGUF_BAD_VERSION, 502, "the GGUF version is not 2 or 3")                             \
  X(GGUF_TRUNCATED, 503, "the file ends inside the GGUF header, metadata or tensor infos") \
  X(GGUF_COUNT_TOO_LARGE, 504, "a key/value or tensor count is larger than the file can hold") \
  X(GGUF_STRING_TOO_LONG, 505, "a string length is larger than the file can hold")       \
  X(GGUF_ARRAY_TOO_LONG, 506, "an array length is larger than the file can hold")        \
  X(GGUF_BAD_KEY_TYPE, 507, "a metadata value type is unknown")                          \
  X(GGUF_BAD_DIMS, 508, "a tensor has fewer than 1 or more than 4 dimensions, or a negative one") \
  X(GGUF_SIZE_OVERFLOW, 509, "a tensor's element count or byte size overflows")          \
  X(GGUF_BAD_TENSOR_TYPE, 510, "a tensor type is unknown")                               \
  X(GGUF_BAD_ALIGNMENT, 511, "general.alignment is not a power of two")                  \
  X(GGUF_MISALIGNED_OFFSET, 512, "a tensor offset is not a multiple of the alignment")   \
  X(GGUF_SPAN_OUTSIDE_FILE, 513, "a tensor's bytes lie outside the file")                \
  X(GGUF_OVERLAPPING_SPANS, 514, "two tensors' bytes overlap")                           \
  X(GGUF_DUPLICATE_NAME, 515, "two tensors have the same name")                          \
  X(GGUF_DUPLICATE_KEY, 516, "two metadata entries have the same key")                   \
  X(GGUF_BAD_BLOCK_SIZE, 517, "a dimension is not a multiple of its type's block size")  \
  X(GGUF_SPLIT_INVALID, 518, "the split files do not form one model")                    \
  X(GGUF_KEY_NOT_FOUND, 519, "no metadata key of that name")                             \
  X(GGUF_KEY_TYPE_MISMATCH, 520, "the metadata value has another type")                  \
  X(GGUF_NESTING_TOO_DEEP, 521, "arrays are nested deeper than the index allows")        \
  X(GGUF_EMPTY_KEY, 522, "a metadata key is empty")                                     \
  X(GGUF_LIMIT_EXCEEDED, 523, "a tensor, key/value or split file count exceeds the index's limit (emel_gguf_config)") \
  /* io/staged */                                                                        \
  X(STAGED_CONSUMER_FAILED, 600, "the staged load's consumer returned an error (its code is in emel_error.os_errno)") \
  X(STAGED_NO_CONSUMER, 601, "a staged load needs a consumer (emel_load_options.consumer)") \
  X(STAGED_NO_BYTES, 602, "the tensor's bytes were delivered to a consumer: the library holds none to read") \
  X(STAGED_HANDOFF_FAILED, 603, "waiting for the staging ring's reader or consumer failed") \
  X(STAGED_STREAM_STOPPED, 604, "an earlier tensor of the same staged load failed, so this one was not delivered")

typedef enum emel_status {
#define EMEL_STATUS_ENUM_(name, number, message) EMEL_##name = number,
  EMEL_STATUS_LIST(EMEL_STATUS_ENUM_)
#undef EMEL_STATUS_ENUM_
} emel_status;

/* A status plus the errno of the OS call that failed (0 when none did), and,
 * where the code alone cannot say it, which file, which tensor and which check.
 * Fields added later are zero when unused, so `{.code = c, .os_errno = e}`
 * stays complete.
 *
 * The convention (README "C API conventions"): every fallible call returns an
 * emel_status and takes an `emel_error *err` last, which may be NULL; when
 * given, it is filled whole on every return (success: code EMEL_OK, the rest
 * zero), so one call tells the code, errno, file and tensor. */
typedef struct emel_error {
  emel_status code;
  int os_errno;
  /* The file of the model the error concerns: its 1-based part number in a
   * split set (1 for a single file); 0: none in particular. For a split set,
   * emel_gguf_split_path() gives part N's path. */
  uint32_t file;
  /* A static string (never freed, safe to keep and share between threads)
   * naming the check that failed, e.g. "split.count differs from the first
   * part's", or the struct or op refused ("emel_model_config.read",
   * "emel_platform_ops.alloc"); NULL: the code's message says it all. */
  const char *detail;
  /* The tensor the error concerns, as `file` counts: k + 1 for tensor k of
   * the table (emel_tensors) or index (emel_gguf); 0: none in particular. */
  uint32_t tensor;
} emel_error;

/* "EMEL_SPAN_BEYOND_EOF" style names without the prefix: "SPAN_BEYOND_EOF".
 * Unknown numbers give "UNKNOWN_STATUS". Never returns NULL. */
EMEL_API const char *emel_status_name(emel_status code);

/* One sentence, lower case, no trailing period. Never returns NULL. */
EMEL_API const char *emel_status_message(emel_status code);

#ifdef __cplusplus
}
#endif

#endif

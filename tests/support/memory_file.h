/* A platform-operations table whose files live in memory.
 *
 * Why: fuzz targets run thousands of inputs a second and must not touch the
 * disk; tests can build a file set (a split model, say) without a temp dir.
 * Files are byte buffers registered under a path (not copied: they must
 * outlive the table's use). Descriptors, mappings, locked bytes and
 * allocations are counted, so a harness checks after each input that
 * everything acquired was released. Allocations go to the production
 * allocator; map returns a private, zero-padded copy of the range, so a read
 * past the mapped bytes is caught by ASan/valgrind. A descriptor opened with
 * EMEL_OPEN_DIRECT takes only page-aligned buffers, lengths and offsets (as
 * O_DIRECT would; a misaligned transfer counts as a bad call). To inject failures as
 * well, put a fault_platform in front: fp.real = &mf.ops.
 */
#ifndef EMEL_TESTS_MEMORY_FILE_H
#define EMEL_TESTS_MEMORY_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "emel/platform.h"

enum {
  MEMORY_FILE_MAX_FILES = 16,
  MEMORY_FILE_MAX_FDS = 64,
  MEMORY_FILE_MAX_MAPS = 256
};

typedef struct memory_file_entry {
  const char *path; /* NUL-terminated; matched exactly by open */
  const uint8_t *data;
  size_t size;
  int64_t generation; /* reported as the modification time: bump it to change the file */
  emel_file_type type; /* what file_identity reports (0: a regular file) */
} memory_file_entry;

typedef struct memory_file_map {
  void *addr;
  size_t len;
} memory_file_map;

typedef struct memory_file {
  emel_platform_ops ops; /* pass &mf.ops to the code under test */
  const emel_platform_ops *real; /* allocator and page size come from here */
  memory_file_entry files[MEMORY_FILE_MAX_FILES];
  int n_files;
  int fd_file[MEMORY_FILE_MAX_FDS]; /* file index + 1 per descriptor slot; 0 = closed */
  int fd_direct[MEMORY_FILE_MAX_FDS]; /* opened with EMEL_OPEN_DIRECT: page-aligned transfers only */
  memory_file_map maps[MEMORY_FILE_MAX_MAPS];
  int can_map;          /* what can_map reports (default 1) */
  size_t alloc_limit;   /* allocations beyond this many live bytes fail; 0 = no limit */
  uint64_t pread_fail_at; /* the nth pread (1-based) returns -pread_errno; 0 = never */
  int pread_errno;
  /* counters */
  uint64_t opens, preads, maps_made; /* preads counts preadv calls too */
  int64_t bad_calls; /* calls with an unknown fd, mapping or size: a bug in the caller */
  int64_t live_rings; /* emulated rings not yet closed */
  int64_t open_fds;
  int64_t live_maps;
  int64_t locked_bytes;
  int64_t live_allocs;
  int64_t alloc_bytes;
  int64_t peak_alloc_bytes;
  /* What random returns, byte after byte (little-endian, repeated): fixed, so
   * a fuzz input behaves the same in every run. */
  uint64_t seed;
} memory_file;

void memory_file_init(memory_file *mf);

/* Registers `size` bytes at `data` as file `path`. 0, or -1 when full. */
int memory_file_add(memory_file *mf, const char *path, const uint8_t *data, size_t size);

/* Outstanding fds + mappings + locked ranges + allocations + bad calls: 0 when clean. */
int64_t memory_file_outstanding(const memory_file *mf);

#endif

/* Internals of the mmap strategy shared by the spec, the actions and the glue.
 *
 * Layout: ONE shared read-only mapping per model file, not one per tensor.
 * The file is opened, sized (once) and mapped whole on the first tensor that
 * needs it and the descriptor is closed right after mapping, so a model holds
 * no fd at rest. Each tensor takes a reference on its file's mapping; releasing
 * a tensor drops the pages wholly inside it (MADV_DONTNEED; boundary pages may
 * hold a neighbour's bytes) and the last reference unmaps the file.
 *
 * Measured (tools/bench-mmap-layout.c, Linux 6.18, 4 KiB pages, page cache
 * warm, tensors 32-byte aligned so neighbours share pages; map + populate):
 *
 *   case                      per-tensor mappings              one mapping per file
 *   1,000 x 1 KiB             1.5 ms, 3,002 syscalls, 1,000 VMAs   0.12 ms, 1,004 syscalls, 1 VMA
 *   100,000 x 1 KiB           fails at 65,508 VMAs (ENOMEM:        12 ms, 100,004 syscalls, 1 VMA
 *                             vm.max_map_count = 65530), 93 ms
 *   300 x 3.4 MiB (~1 GiB)    16-18 ms, 902 syscalls, 300 VMAs     13 ms, 304 syscalls, 1 VMA
 *   unmap, same cases         1.4 ms / 114 ms / 5 ms               0.02 ms / 0.5 ms / 4 ms
 *
 * Per-tensor mappings cost a VMA each and hit vm.max_map_count long before a
 * large MoE model runs out of tensors; they also map shared boundary pages
 * twice. The shared mapping costs nothing extra at load time (populate
 * dominates on big tensors) and 10x less on many small ones. Its price: mlock
 * is not nested, so unlocking a tensor also unlocks a boundary page it shares
 * with a still-locked neighbour (the bytes stay mapped and valid, only
 * pageable); and pages of a file stay mapped until its last tensor goes.
 *
 * Only a regular file is mapped: a FIFO, directory, device or socket is
 * refused with EMEL_NOT_A_REGULAR_FILE after its (non-blocking) open.
 *
 * Files that change under a load. Guaranteed:
 * - a file changed after it was indexed and before its first mapping (size,
 *   device, inode or modification time differ from emel_io_file.expected) is
 *   refused with EMEL_FILE_CHANGED before anything is mapped, so no mapping
 *   reaches past the end of a file truncated meanwhile;
 * - every span is checked against the size read when the file was mapped;
 * - a file replaced by rename after it was mapped keeps serving the bytes of
 *   the file that was mapped (MAP_PRIVATE of the old inode, which lives as
 *   long as the mapping); once its last tensor is released, the next map
 *   opens the path again and refuses the new file;
 * - release never touches the pages (unmap and MADV_DONTNEED read nothing).
 * A mapped file truncated IN PLACE loses the pages past its new end: reading
 * one raises SIGBUS. What the library reads itself is an error instead:
 * - populate: MADV_POPULATE_READ reports such a page as EFAULT (EIO on some
 *   filesystems) without raising anything; the machine then opens the path
 *   again and reports FILE_CHANGED when the file is shorter than what was
 *   mapped or no longer the file indexed, else MMAP_POPULATE_FAILED (both
 *   with the fault's errno);
 * - emel_tensors_hash/verify read mapped bytes under emel_platform_ops.guard,
 *   a scoped SIGBUS handler (per thread, per range; other SIGBUS go to the
 *   handler installed before it, see platform.h): FILE_CHANGED likewise.
 * Not guaranteed: the caller's own reads of a mapped view are not guarded (a
 * lost page raises SIGBUS in the caller's thread unless it reads through
 * ops.guard itself, and an embedder's own SIGBUS handler installed later must
 * chain to the one it replaced); mlock of lost pages fails as the kernel
 * reports it (MMAP_LOCK_FAILED); and bytes written in place to a mapped file
 * may become visible, since MAP_PRIVATE copies a page only when the process
 * writes it. Use the read strategy when files may change.
 *
 * Residency of the bytes is counted in slots: a fixed-capacity pool sized at
 * attach, with a free list and a generation per slot so a stale handle is
 * refused. Nothing is allocated while a request runs.
 */
#ifndef EMEL_IO_MMAP_MMAP_H
#define EMEL_IO_MMAP_MMAP_H

#include "emel/io.h"
#include "emel/io_strategy.h"
#include "emel/io_mmap.h"
#include "emel/machine/machine.h"
#include "io_mmap_machine.h" /* events, states, action prototypes: generated from the spec */


/* One model file as the strategy sees it. `base` is NULL while unmapped. */
typedef struct mmap_file {
  char *base;
  uint64_t size; /* read once per open */
  uint32_t refs;   /* live slots (and the request in flight) using the mapping */
  uint32_t locked; /* live slots of this file holding locked pages */
  int fd;        /* open only inside a map request, -1 otherwise */
} mmap_file;

/* One live tensor mapping. */
typedef struct mmap_slot {
  uint32_t generation; /* bumped on release: older handles are stale */
  uint32_t file;
  int live;
  int locked;
  char *data;   /* the tensor's first byte */
  uint64_t size;
  char *pages;  /* page-aligned start of the window enclosing the tensor */
  size_t pages_len;
} mmap_slot;

/* A tensor of a batch mapped with its populate left to the lanes: what its
 * FINISH_POPULATE needs, and the lane's outcome (0 or the errno). */
typedef struct mmap_deferred {
  const emel_io_request *request;
  emel_io_result *result;
  mmap_file *file;
  char *data, *pages;
  size_t pages_len;
  int populate_errno;
} mmap_deferred;

/* One populate lane: deferred tensors [first, end). Lane 0, and a lane whose
 * thread did not start, run on the calling thread. A lane writes only its
 * tensors' populate_errno. */
typedef struct mmap_lane {
  struct mmap_strategy *s;
  size_t first, end;
  uintptr_t thread;
  int started;
} mmap_lane;

typedef struct mmap_strategy {
  int cs; /* the machine's state: `ready` between requests */
  const emel_platform_ops *platform;
  const emel_io_files *files;
  size_t page;
  uint32_t capacity, free_count;
  mmap_slot *slots;
  uint32_t *free_slots; /* stack of free slot indices */
  uint32_t file_capacity;
  mmap_file *file_table;
  size_t live;
  /* batches: populates deferred to the lanes (EMEL_IO_MMAP_BATCH_WINDOW), the
   * slots they will take (kept out of check_pool's reach) */
  uint32_t lanes;
  mmap_lane *lane_table;
  mmap_deferred *deferred;
  size_t deferred_count;
  uint32_t reserved;
  uint32_t lanes_inline; /* of the current POPULATE_BATCH, for its count */
  emel_io_mmap_stats stats;
} mmap_strategy;

/* The context of one request: the strategy plus the request's inputs and
 * outputs. Lives on the caller's stack for the length of one dispatch. */
struct io_mmap_ctx {
  emel_machine core;
  mmap_strategy *s;
  /* inputs */
  const emel_io_request *request;
  emel_io_handle handle;
  uint64_t advise_offset, advise_len;
  emel_map_advice advice;
  int defer;              /* MAP in a batch: leave the populate to the lanes */
  mmap_deferred *member;  /* FINISH_POPULATE: the tensor whose lane populated it */
  /* scratch between an action and the next */
  mmap_file *file;
  mmap_slot *slot;
  char *mapped; /* what map returned, until the file adopts it */
  char *data, *pages;
  size_t pages_len;
  int os_errno;
  int fault_errno; /* a populate fault's errno, kept across the look at the file after it */
  /* outputs */
  emel_io_result *result;
  emel_error error;
};

#endif

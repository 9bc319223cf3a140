#include "memory_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { FD_BASE = 1000 }; /* far from 0-2 and real descriptors, so mix-ups show */

static const memory_file_entry *entry_of(memory_file *mf, int fd) {
  int slot = fd - FD_BASE;
  if (slot < 0 || slot >= MEMORY_FILE_MAX_FDS || mf->fd_file[slot] == 0) return NULL;
  return &mf->files[mf->fd_file[slot] - 1];
}

static int bad(memory_file *mf, int err) {
  mf->bad_calls++;
  return -err;
}

static int mf_open(void *u, const char *path, unsigned flags) {
  memory_file *mf = u;
  mf->opens++;
  int file = 0;
  while (file < mf->n_files && strcmp(mf->files[file].path, path) != 0) file++;
  if (file == mf->n_files) return -ENOENT;
  for (int slot = 0; slot < MEMORY_FILE_MAX_FDS; slot++) {
    if (mf->fd_file[slot] == 0) {
      mf->fd_file[slot] = file + 1;
      mf->fd_direct[slot] = (flags & EMEL_OPEN_DIRECT) != 0;
      mf->open_fds++;
      return FD_BASE + slot;
    }
  }
  return -EMFILE;
}

static int mf_close(void *u, int fd) {
  memory_file *mf = u;
  if (!entry_of(mf, fd)) return bad(mf, EBADF);
  mf->fd_file[fd - FD_BASE] = 0;
  mf->open_fds--;
  return 0;
}

/* O_DIRECT's rule, at the page size (the block the library aligns to): a
 * transfer it breaks is EINVAL on a real filesystem, and a caller bug here. */
static int direct_misaligned(memory_file *mf, int fd, const void *buf, size_t len, uint64_t offset) {
  size_t page = mf->real->page_size(mf->real->user);
  return mf->fd_direct[fd - FD_BASE] && ((uintptr_t)buf % page || len % page || offset % page);
}

/* Device 0, inode = file index + 1, mtime = the entry's generation: a test
 * changes a file by bumping it (memory_file_entry.generation). */
static int mf_file_identity(void *u, int fd, emel_file_identity *out) {
  memory_file *mf = u;
  const memory_file_entry *e = entry_of(mf, fd);
  if (!e) return bad(mf, EBADF);
  *out = (emel_file_identity){.size = e->size, .device = 0, .inode = (uint64_t)(e - mf->files) + 1,
                              .mtime_ns = e->generation, .type = e->type};
  return 0;
}

static int64_t mf_pread(void *u, int fd, void *buf, size_t len, uint64_t offset) {
  memory_file *mf = u;
  const memory_file_entry *e = entry_of(mf, fd);
  mf->preads++;
  if (!e) return bad(mf, EBADF);
  if (direct_misaligned(mf, fd, buf, len, offset)) return bad(mf, EINVAL);
  if (mf->preads == mf->pread_fail_at) return -mf->pread_errno;
  if (offset >= e->size) return 0;
  size_t n = e->size - (size_t)offset < len ? e->size - (size_t)offset : len;
  if (n > INT64_MAX) n = INT64_MAX;
  memcpy(buf, e->data + offset, n);
  return (int64_t)n;
}

/* Scattered like pread: the pieces are filled in order from `offset`. */
static int64_t mf_preadv(void *u, int fd, const emel_iovec *iov, int iovcnt, uint64_t offset) {
  memory_file *mf = u;
  const memory_file_entry *e = entry_of(mf, fd);
  mf->preads++;
  if (!e || iovcnt < 1 || iovcnt > EMEL_PLATFORM_IOV_MAX) return bad(mf, e ? EINVAL : EBADF);
  for (int i = 0; i < iovcnt; i++)
    if (direct_misaligned(mf, fd, iov[i].base, iov[i].len, offset)) return bad(mf, EINVAL);
  if (mf->preads == mf->pread_fail_at) return -mf->pread_errno;
  int64_t total = 0;
  for (int i = 0; i < iovcnt && offset < e->size; i++) {
    size_t n = e->size - (size_t)offset < iov[i].len ? e->size - (size_t)offset : iov[i].len;
    memcpy(iov[i].base, e->data + offset, n);
    offset += n;
    total += (int64_t)n;
  }
  return total;
}

static int mf_map(void *u, int fd, uint64_t offset, size_t len, void **addr) {
  memory_file *mf = u;
  const memory_file_entry *e = entry_of(mf, fd);
  size_t page = mf->real->page_size(mf->real->user);
  if (!e || len == 0 || offset % page != 0) return bad(mf, EINVAL);
  int slot = 0;
  while (slot < MEMORY_FILE_MAX_MAPS && mf->maps[slot].addr) slot++;
  if (slot == MEMORY_FILE_MAX_MAPS) return -ENOMEM;
  uint8_t *copy = mf->real->alloc(mf->real->user, len, page);
  if (!copy) return -ENOMEM;
  size_t avail = offset < e->size ? e->size - (size_t)offset : 0;
  size_t n = avail < len ? avail : len;
  if (n) memcpy(copy, e->data + offset, n);
  memset(copy + n, 0, len - n); /* like the zero tail of a file's last page */
  mf->maps[slot] = (memory_file_map){copy, len};
  mf->maps_made++;
  mf->live_maps++;
  *addr = copy;
  return 0;
}

static int mf_unmap(void *u, void *addr, size_t len) {
  memory_file *mf = u;
  for (int slot = 0; slot < MEMORY_FILE_MAX_MAPS; slot++) {
    if (mf->maps[slot].addr == addr && mf->maps[slot].len == len) {
      mf->real->free(mf->real->user, addr, len);
      mf->maps[slot] = (memory_file_map){NULL, 0};
      mf->live_maps--;
      return 0;
    }
  }
  return bad(mf, EINVAL); /* partial unmaps are not modelled */
}

static int mf_advise(void *u, void *addr, size_t len, emel_map_advice advice) {
  (void)u, (void)addr, (void)len, (void)advice;
  return 0;
}

static int mf_fadvise(void *u, int fd, uint64_t offset, uint64_t len, emel_file_advice advice) {
  memory_file *mf = u;
  (void)offset, (void)len, (void)advice;
  return entry_of(mf, fd) ? 0 : bad(mf, EBADF);
}

static int mf_lock(void *u, void *addr, size_t len) {
  memory_file *mf = u;
  (void)addr;
  mf->locked_bytes += (int64_t)len;
  return 0;
}

static int mf_unlock(void *u, void *addr, size_t len) {
  memory_file *mf = u;
  (void)addr;
  mf->locked_bytes -= (int64_t)len;
  return 0;
}

static void *mf_alloc(void *u, size_t size, size_t alignment) {
  memory_file *mf = u;
  if (mf->alloc_limit && size > mf->alloc_limit - (size_t)mf->alloc_bytes) return NULL;
  void *p = mf->real->alloc(mf->real->user, size, alignment);
  if (p) {
    mf->live_allocs++;
    mf->alloc_bytes += (int64_t)size;
    if (mf->alloc_bytes > mf->peak_alloc_bytes) mf->peak_alloc_bytes = mf->alloc_bytes;
  }
  return p;
}

static void mf_free(void *u, void *ptr, size_t size) {
  memory_file *mf = u;
  if (!ptr) return;
  mf->live_allocs--;
  mf->alloc_bytes -= (int64_t)size; /* a wrong size shows as bytes left over */
  mf->real->free(mf->real->user, ptr, size);
}

static int mf_can_map(void *u) { return ((memory_file *)u)->can_map; }

static int mf_random(void *u, void *buf, size_t len) {
  const memory_file *mf = u;
  for (size_t i = 0; i < len; i++) ((uint8_t *)buf)[i] = (uint8_t)(mf->seed >> (8 * (i % 8)));
  return 0;
}

/* A ring emulated over mf_pread: each read is done when queued and its
 * completion kept for ring_wait, so the read strategy's ring engine runs on
 * in-memory files too (with pread's O_DIRECT checks). */
typedef struct mf_ring {
  unsigned depth, queued;
  emel_ring_completion done[];
} mf_ring;

static int mf_ring_open(void *u, unsigned depth, void **ring) {
  memory_file *mf = u;
  if (depth == 0 || depth > 4096) return bad(mf, EINVAL);
  mf_ring *r = calloc(1, sizeof *r + depth * sizeof r->done[0]);
  if (!r) return -ENOMEM;
  r->depth = depth;
  mf->live_rings++;
  *ring = r;
  return 0;
}

static int mf_ring_close(void *u, void *ring) {
  memory_file *mf = u;
  free(ring);
  mf->live_rings--;
  return 0;
}

static int mf_ring_read(void *u, void *ring, int fd, void *buf, size_t len, uint64_t offset, uint64_t tag) {
  mf_ring *r = ring;
  if (r->queued == r->depth) return bad(u, EBUSY); /* more in flight than the depth asked for */
  r->done[r->queued++] = (emel_ring_completion){.tag = tag, .res = mf_pread(u, fd, buf, len, offset)};
  return 0;
}

static int mf_ring_wait(void *u, void *ring, unsigned min, emel_ring_completion *out, unsigned max) {
  mf_ring *r = ring;
  if (min > r->queued) return bad(u, EDEADLK); /* would wait forever */
  const unsigned n = r->queued < max ? r->queued : max;
  memcpy(out, r->done, n * sizeof *out);
  memmove(r->done, r->done + n, (r->queued - n) * sizeof *out);
  r->queued -= n;
  return (int)n;
}

void memory_file_init(memory_file *mf) {
  memset(mf, 0, sizeof *mf);
  mf->real = emel_platform_default();
  mf->can_map = 1;
  mf->ops = *mf->real;
  mf->ops.user = mf;
  mf->ops.open = mf_open;
  mf->ops.close = mf_close;
  mf->ops.file_identity = mf_file_identity;
  mf->ops.pread = mf_pread;
  mf->ops.preadv = mf_preadv;
  mf->ops.map = mf_map;
  mf->ops.unmap = mf_unmap;
  mf->ops.advise = mf_advise;
  mf->ops.fadvise = mf_fadvise;
  mf->ops.lock = mf_lock;
  mf->ops.unlock = mf_unlock;
  mf->ops.alloc = mf_alloc;
  mf->ops.free = mf_free;
  mf->ops.can_map = mf_can_map;
  mf->ops.random = mf_random;
  mf->ops.ring_open = mf_ring_open;
  mf->ops.ring_close = mf_ring_close;
  mf->ops.ring_read = mf_ring_read;
  mf->ops.ring_wait = mf_ring_wait;
}

int memory_file_add(memory_file *mf, const char *path, const uint8_t *data, size_t size) {
  if (mf->n_files == MEMORY_FILE_MAX_FILES) return -1;
  mf->files[mf->n_files++] = (memory_file_entry){.path = path, .data = data, .size = size};
  return 0;
}

int64_t memory_file_outstanding(const memory_file *mf) {
  return mf->open_fds + mf->live_maps + (mf->locked_bytes != 0) + mf->live_allocs + (mf->alloc_bytes != 0) +
         mf->bad_calls + mf->live_rings;
}

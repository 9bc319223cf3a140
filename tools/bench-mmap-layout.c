/* Throwaway measurement behind src/emel/io/mmap/mmap.h's design choice:
 * one mapping per tensor vs one shared mapping per file.
 *
 *   cc -O2 -o /tmp/bench-mmap-layout tools/bench-mmap-layout.c && /tmp/bench-mmap-layout
 *
 * For each case it writes a file of N tensors (sizes rounded to GGUF's 32-byte
 * alignment, so tensors share pages), then times, cold-ish (page cache warm,
 * page tables empty):
 *   per-tensor: open once; per tensor mmap(page window) + MADV_POPULATE_READ;
 *               then munmap each
 *   shared:     open once; one mmap of the file; per tensor MADV_POPULATE_READ
 *               of its window; then one munmap
 * and reports syscalls and the process's VMA count at the peak.
 * Not part of the library (it calls the OS directly); not built by CMake.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int vma_count(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  int n = 0, c;
  while ((c = fgetc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

static void make_file(const char *path, size_t n, size_t tensor, uint64_t *size) {
  uint64_t stride = (tensor + 31) & ~(uint64_t)31;
  *size = 4096 + n * stride; /* a header page, then the tensors */
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, (off_t)*size) != 0) exit(1);
  char buf[1 << 16];
  memset(buf, 0x5a, sizeof buf);
  for (uint64_t o = 0; o < *size; o += sizeof buf)
    if (pwrite(fd, buf, *size - o < sizeof buf ? *size - o : sizeof buf, (off_t)o) < 0) exit(1);
  fsync(fd);
  close(fd);
}

static void run(const char *label, size_t n, size_t tensor) {
  const char *path = "/tmp/emel-bench-mmap.bin";
  uint64_t size;
  make_file(path, n, tensor, &size);
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const uint64_t stride = (tensor + 31) & ~(uint64_t)31;
  void **maps = calloc(n, sizeof *maps);
  size_t *lens = calloc(n, sizeof *lens);
  int base = vma_count();

  /* per tensor */
  int fd = open(path, O_RDONLY);
  long calls = 1;
  size_t ok = 0;
  int err = 0;
  double t0 = now();
  for (size_t i = 0; i < n; i++) {
    uint64_t off = 4096 + i * stride, start = off & ~(uint64_t)(page - 1);
    lens[i] = (size_t)(off + tensor - start);
    void *p = mmap(NULL, lens[i], PROT_READ, MAP_PRIVATE, fd, (off_t)start);
    calls++;
    if (p == MAP_FAILED) {
      err = errno;
      break;
    }
    maps[i] = p;
    madvise(p, lens[i], MADV_POPULATE_READ);
    calls++;
    ok++;
  }
  double t1 = now();
  int peak = vma_count() - base;
  for (size_t i = 0; i < ok; i++) munmap(maps[i], lens[i]);
  calls += (long)ok + 1;
  double t2 = now();
  close(fd);
  printf("%-28s per-tensor: map+populate %8.2f ms, unmap %7.2f ms, %7ld syscalls, %6d VMAs, %zu/%zu mapped%s%s\n",
         label, (t1 - t0) * 1e3, (t2 - t1) * 1e3, calls, peak, ok, n, err ? ", then " : "",
         err ? strerror(err) : "");

  /* shared */
  fd = open(path, O_RDONLY);
  calls = 2;
  t0 = now();
  char *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  calls++;
  for (size_t i = 0; i < n; i++) {
    uint64_t off = 4096 + i * stride, start = off & ~(uint64_t)(page - 1);
    madvise(m + start, (size_t)(off + tensor - start), MADV_POPULATE_READ);
    calls++;
  }
  t1 = now();
  peak = vma_count() - base;
  munmap(m, size);
  calls++;
  t2 = now();
  printf("%-28s shared:     map+populate %8.2f ms, unmap %7.2f ms, %7ld syscalls, %6d VMAs\n", label,
         (t1 - t0) * 1e3, (t2 - t1) * 1e3, calls, peak);
  free(maps);
  free(lens);
  unlink(path);
}

int main(void) {
  run("1,000 x 1 KiB", 1000, 1000);
  run("100,000 x 1 KiB", 100000, 1000);
  run("300 x 3.4 MiB (~1 GiB)", 300, 3u << 20 | 400u << 10);
  return 0;
}

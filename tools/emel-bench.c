/* emel-bench: emel-io's loads against the physical limits of the machine.
 *
 * Run by tools/bench (which builds it, writes the model files and adds the
 * callgrind dispatch figures); usable alone:
 *
 *   emel-bench [--runs R] [--small1k F] [--small100k F] [--cold] MODEL.gguf
 *   emel-bench --smoke MODEL.gguf          (one quick pass of each contender)
 *   emel-bench --fio FILE                   (the device reference alone: fio's O_DIRECT sequential read)
 *   emel-bench --direct-sweep [--runs R] MODEL.gguf
 *                                           (cold: read --direct by lanes and chunk size, buffered, fio
 *                                            by depth and request size; needs drop_caches)
 *   emel-bench --probe-memcpy MIB [--runs R] (the memcpy reference's variants and first touch)
 *   emel-bench --write-small N OUT.gguf     (N tensors of 64 bytes, for the scaling figure)
 *   emel-bench --write-names colliding|random N OUT.gguf
 *                                           (N tensors named to collide under unseeded FNV-1a, or not)
 *   emel-bench --open-names [--runs R] COLLIDING.gguf RANDOM.gguf
 *                                           (only the hostile-names figure, open_colliding_vs_random)
 *   emel-bench --jobs [--runs R] MODEL.gguf (only the load job figures: job_vs_batch,
 *                                           first_tensor_vs_all, cancel_latency_ms_p99, step_overhead)
 *   emel-bench --staged [--runs R] [--cold] MODEL.gguf
 *                                           (only the staged strategy's figures: staged_vs_read,
 *                                            staged_peak_rss_mib, staged_cold_vs_direct, staged_cold_vs_fio)
 *
 * Every contender runs R times, in rotating order, page cache warm; figures
 * are medians. References: cat, memcpy between resident buffers (one lane per
 * core, as the read strategy's batch), a populated mapping, the naive read
 * (one malloc, one pread per tensor) and first touch (writing fresh memory);
 * cold (--cold, caches dropped before each run): fio, cat. The emel-io contenders go through the public API exactly as an
 * embedder would: emel_model_open, then emel_tensors_load_batch of every
 * tensor (the per-tensor cost figure: emel_tensors_load of each).
 * Peak memory is measured in a child process (this program re-executed) so
 * that nothing of the parent's is counted. Prints `key: value` lines.
 *
 * A tool, not library code: it calls the OS directly.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emel/io_read.h"
#include "emel/io_staged.h"
#include "emel/job.h"
#include "emel/model.h"
#include "fnv_names.h"
#include "gguf_writer.h"

#define MAX_RUNS 64

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(const double *v, int n) {
  double s[MAX_RUNS];
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, cmp_double);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void die(const char *what, const char *detail) {
  fprintf(stderr, "emel-bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static uint64_t file_bytes(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) die("cannot stat", path);
  return (uint64_t)st.st_size;
}

/* ---- references ---- */

static double time_cat(const char *path) {
  double t0 = now();
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null < 0 || dup2(null, 1) < 0) _exit(127);
    execlp("cat", "cat", path, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    die("cat failed", path);
  return now() - t0;
}

static double time_populate(const char *path, uint64_t size) {
  double t0 = now();
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open", path);
  void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) die("mmap", strerror(errno));
  double t = now() - t0;
  munmap(p, (size_t)size);
  close(fd);
  return t;
}

/* Anonymous memory aligned to 2 MiB; `huge`: advised for transparent huge
 * pages, as the read strategy's owned buffers are (without it a 4 KiB-page
 * buffer pays a TLB miss per page, twice under virtualization). */
typedef struct region {
  void *map;
  size_t len;
  unsigned char *p;
} region;

static region region_new(uint64_t size, int huge) {
  const size_t align = (size_t)2 << 20;
  region r = {.len = (size_t)size + align};
  r.map = mmap(NULL, r.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r.map == MAP_FAILED) die("mmap anonymous", strerror(errno));
  r.p = (unsigned char *)(((uintptr_t)r.map + align - 1) & ~(uintptr_t)(align - 1));
  if (huge) (void)madvise(r.p, (size_t)size, MADV_HUGEPAGE); /* refused: 4 KiB pages, still correct */
  return r;
}

static void region_free(region *r) { munmap(r->map, r->len); }

/* One write per 4 KiB page: every page present (and in the TLB's reach of the
 * page tables) before a timed copy, whatever happened to it since. */
static void touch(unsigned char *p, uint64_t size) {
  volatile unsigned char *q = p;
  for (uint64_t i = 0; i < size; i += 4096) q[i] = q[i]; /* a write: a read would not undo copy-on-write */
}

/* No two pages alike (xorshift64): nothing for same-page merging, in this
 * kernel or a hypervisor's, to fold back into one shared page. */
static void fill_distinct(unsigned char *p, uint64_t size, uint64_t seed) {
  uint64_t x = 0x9e3779b97f4a7c15u ^ seed;
  for (uint64_t i = 0; i + 8 <= size; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    memcpy(p + i, &x, 8);
  }
}

typedef struct copy_part {
  unsigned char *dst;
  const unsigned char *src;
  size_t len;
} copy_part;

static void *copy_part_run(void *arg) {
  copy_part *c = arg;
  memcpy(c->dst, c->src, c->len);
  return NULL;
}

#define MAX_LANES 64

/* memcpy split over `lanes` threads (the read strategy copies a batch on one
 * lane per core: the fair reference copies on as many). */
static double time_memcpy(unsigned char *dst, const unsigned char *src, uint64_t size, int lanes) {
  copy_part part[MAX_LANES];
  pthread_t th[MAX_LANES];
  const uint64_t share = (size / (uint64_t)lanes + 4095) / 4096 * 4096;
  double t0 = now();
  int started = 0;
  for (int i = 0; i < lanes; i++) {
    const uint64_t at = share * (uint64_t)i, len = at >= size ? 0 : size - at < share ? size - at : share;
    part[i] = (copy_part){dst + at, src + at, (size_t)len};
    if (i == 0) continue;
    if (pthread_create(&th[i], NULL, copy_part_run, &part[i]) != 0) die("pthread_create", NULL);
    started = i;
  }
  copy_part_run(&part[0]);
  for (int i = 1; i <= started; i++) pthread_join(th[i], NULL);
  double t = now() - t0;
  if (dst[size / 2] != src[size / 2] || dst[size - 1] != src[size - 1]) die("memcpy", "mismatch"); /* observable */
  return t;
}

/* Writing into freshly mapped, never-touched memory: every page faulted and
 * zeroed by the kernel, then written. What any loader pays for a fresh buffer. */
static double time_first_touch(uint64_t size, int huge) {
  region r = region_new(size, huge);
  double t0 = now();
  memset(r.p, 0x3c, (size_t)size);
  double t = now() - t0;
  region_free(&r);
  return t;
}

/* The state of the memory a fresh buffer gets. On a virtual machine with free
 * page reporting (virtio-balloon; Firecracker here), memory the guest freed is
 * handed back to the host a few seconds later, and touching it again costs a
 * host fault per page: 2 GiB of huge pages then fill at about 1 GB/s, against
 * about 9 GB/s right after the free (README "Fresh memory"). Every contender
 * that writes fresh memory (owned buffers, page cache) is timed in one stated
 * state, so none is favoured by the order it runs in, warm or cold:
 * - just freed (heat): a buffer of the same size was touched and freed by this
 *   process right before;
 * - settled: nothing was freed for SETTLE_SECONDS, time for the guest to
 *   report what it freed (page reporting works in 2 s passes). */
enum { SETTLE_SECONDS = 8 };

static void heat(uint64_t size) {
  region r = region_new(size, 1);
  memset(r.p, 0x5a, (size_t)size);
  region_free(&r);
}

static void settle(void) {
  const char *e = getenv("EMEL_BENCH_SETTLE_SECONDS"); /* tests: the output's shape without the wait */
  for (unsigned left = e ? (unsigned)atoi(e) : SETTLE_SECONDS; left;) left = sleep(left);
}

/* page_reporting_order, or -1 when the kernel reports no free pages. */
static int page_reporting_order(void) {
  FILE *f = fopen("/sys/module/page_reporting/parameters/page_reporting_order", "r");
  int order = -1;
  if (f) {
    if (fscanf(f, "%d", &order) != 1) order = -1;
    fclose(f);
  }
  return order;
}

/* ---- emel-io through the public API ---- */

typedef struct load_timing {
  double load;     /* emel_model_open + every tensor loaded */
  double evict;    /* every tensor evicted */
  uint64_t bytes;  /* tensor bytes */
  uint32_t count;
} load_timing;

static emel_load_options options_for(emel_strategy strategy, unsigned extra) {
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = strategy);
  o.flags = (strategy == EMEL_STRATEGY_MMAP ? EMEL_LOAD_POPULATE : 0) | extra;
  return o;
}

static emel_model *open_model_with(const char *path, const emel_model_config *config) {
  emel_model *model = NULL;
  emel_error e;
  if (emel_model_open(&model, path, config, &e) != EMEL_OK) die("emel_model_open", emel_status_name(e.code));
  return model;
}

static emel_model *open_model(const char *path) { return open_model_with(path, NULL); }

/* One tensor at a time (the per-tensor cost figure). */
static void load_each_tensor(emel_model *model, const emel_load_options *o, load_timing *t) {
  emel_tensors *tensors = emel_model_tensors(model);
  t->count = emel_tensors_count(tensors);
  t->bytes = 0;
  for (uint32_t i = 0; i < t->count; i++) {
    emel_tensor_view v;
    emel_status s = emel_tensors_load(tensors, i, o, &v, NULL);
    if (s != EMEL_OK) die("emel_tensors_load", emel_status_name(s));
    t->bytes += v.size;
  }
}

/* Every tensor in one call, as an embedder loading a whole model would. */
static void load_every_tensor(emel_model *model, const emel_load_options *o, load_timing *t) {
  emel_tensors *tensors = emel_model_tensors(model);
  t->count = emel_tensors_count(tensors);
  t->bytes = 0;
  emel_status s = emel_tensors_load_batch(tensors, NULL, t->count, o, NULL, NULL);
  if (s != EMEL_OK) die("emel_tensors_load_batch", emel_status_name(s));
  for (uint32_t i = 0; i < t->count; i++) {
    emel_tensor_view v;
    if (emel_tensors_view(tensors, i, &v, NULL) != EMEL_OK) die("emel_tensors_view", NULL);
    t->bytes += v.size;
  }
}

/* The whole load as an embedder sees it: open, load every tensor, with a read
 * config (NULL: defaults) and its stats if asked. The close (freeing or
 * unmapping) is not timed, as cat's exit is not. */
static load_timing time_emel_with(const char *path, emel_strategy strategy, unsigned extra,
                                  const emel_io_read_config *read, emel_io_read_stats *stats) {
  load_timing t = {0};
  const emel_load_options o = options_for(strategy, extra);
  const emel_model_config mc = EMEL_MODEL_CONFIG_INIT(.read = read);
  double t0 = now();
  emel_model *model = open_model_with(path, &mc);
  load_every_tensor(model, &o, &t);
  t.load = now() - t0;
  if (stats && emel_io_read_stats_of(emel_model_io(model), stats, NULL) != EMEL_OK) die("emel_io_read_stats_of", NULL);
  emel_model_close(model);
  return t;
}

static load_timing time_emel(const char *path, emel_strategy strategy, unsigned extra) {
  return time_emel_with(path, strategy, extra, NULL, NULL);
}

/* The naive reference, what llama.cpp's --no-mmap path and ggml's gguf loader
 * do: the same index (emel_model_open), one fresh buffer for all tensors (plain
 * malloc: no huge-page advice), one pread per tensor in file order, one thread.
 * Freeing is not timed, as the emel-io contenders' close is not. */
typedef struct naive_span {
  uint64_t offset, size;
} naive_span;

static int cmp_span(const void *a, const void *b) {
  const naive_span *x = a, *y = b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static load_timing time_naive(const char *path) {
  load_timing t = {0};
  double t0 = now();
  emel_model *model = open_model(path);
  emel_tensors *tensors = emel_model_tensors(model);
  t.count = emel_tensors_count(tensors);
  naive_span *spans = malloc((t.count ? t.count : 1) * sizeof *spans);
  if (!spans) die("out of memory", NULL);
  for (uint32_t i = 0; i < t.count; i++) {
    emel_tensor_info info;
    if (!emel_tensors_info(tensors, i, &info)) die("emel_tensors_info", NULL);
    spans[i] = (naive_span){info.span.offset, info.span.size};
    t.bytes += info.span.size;
  }
  qsort(spans, t.count, sizeof *spans, cmp_span);
  unsigned char *buf = malloc((size_t)t.bytes);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (!buf || fd < 0) die("naive read: malloc or open", path);
  uint64_t at = 0;
  for (uint32_t i = 0; i < t.count; i++) {
    for (uint64_t done = 0; done < spans[i].size;) {
      ssize_t n = pread(fd, buf + at + done, (size_t)(spans[i].size - done), (off_t)(spans[i].offset + done));
      if (n <= 0 && !(n < 0 && errno == EINTR)) die("naive read: pread", n < 0 ? strerror(errno) : "end of file");
      if (n > 0) done += (uint64_t)n;
    }
    at += spans[i].size;
  }
  t.load = now() - t0;
  close(fd);
  free(buf);
  free(spans);
  emel_model_close(model);
  return t;
}

/* Per-tensor cost: every tensor loaded then evicted, model already open. */
static double per_tensor_cost(const char *path, emel_strategy strategy) {
  emel_model *model = open_model(path);
  const emel_load_options o = options_for(strategy, 0);
  load_timing t = {0};
  double t0 = now();
  load_each_tensor(model, &o, &t);
  if (emel_tensors_evict_all(emel_model_tensors(model), NULL) != EMEL_OK) die("emel_tensors_evict_all", NULL);
  double cost = (now() - t0) / t.count;
  emel_model_close(model);
  return cost;
}

/* ---- peak memory, in a child process ---- */

static long status_kib(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t n = strlen(key);
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, key, n) && line[n] == ':') v = strtol(line + n + 1, NULL, 10);
  if (f) fclose(f);
  return v;
}

/* The staged contenders' consumers: a copy into a destination the caller
 * faulted in beforehand (what a runtime copying into its own memory does), or
 * nothing (the peak-memory child: the ring is all the load holds). */
typedef struct staged_dest {
  unsigned char *base; /* NULL: consume nothing */
  const emel_tensors *tensors;
} staged_dest;

static int staged_copy(void *user, uint32_t tensor, uint64_t offset, uint64_t bytes, const void *data) {
  const staged_dest *d = user;
  if (!d->base) return 0;
  emel_tensor_info info;
  emel_tensors_info(d->tensors, tensor, &info);
  memcpy(d->base + info.span.offset + offset, data, bytes);
  return 0;
}

/* Attaches the staged strategy (default ring: 64 MiB) to a model's boundary. */
static void attach_staged(emel_model *model) {
  emel_error e;
  if (emel_io_staged_attach(emel_model_io(model), NULL, &e) != EMEL_OK) die("emel_io_staged_attach", emel_status_name(e.code));
}

/* Child: load every tensor, report VmHWM and RssAnon (KiB) and the tensor bytes. */
static int rss_child(const char *strategy, const char *path) {
  const int staged = !strcmp(strategy, "staged");
  emel_strategy s = staged ? EMEL_STRATEGY_STAGED : !strcmp(strategy, "mmap") ? EMEL_STRATEGY_MMAP : EMEL_STRATEGY_READ;
  emel_load_options o = options_for(s, 0);
  emel_model *model = open_model(path);
  staged_dest none = {NULL, NULL};
  const emel_staged_consumer consumer = EMEL_STAGED_CONSUMER_INIT(.consume = staged_copy, .user = &none);
  if (staged) {
    attach_staged(model);
    o.consumer = &consumer;
  }
  load_timing t = {0};
  load_every_tensor(model, &o, &t);
  printf("%ld %ld %llu\n", status_kib("VmHWM"), status_kib("RssAnon"), (unsigned long long)t.bytes);
  emel_model_close(model);
  return 0;
}

static void measure_rss(const char *self, const char *strategy, const char *path, long *hwm_kib, long *anon_kib,
                        uint64_t *bytes) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "'%s' --rss-child %s '%s'", self, strategy, path);
  FILE *p = popen(cmd, "r");
  unsigned long long b = 0;
  if (!p || fscanf(p, "%ld %ld %llu", hwm_kib, anon_kib, &b) != 3) die("rss child failed", strategy);
  pclose(p);
  *bytes = b;
}

/* ---- cold cache ---- */

/* EMEL_BENCH_DROP_CACHES names another file (tests: one not writable, or a
 * plain file that makes the cold path run without dropping anyone's cache). */
static int drop_caches(void) {
  sync();
  const char *path = getenv("EMEL_BENCH_DROP_CACHES");
  int fd = open(path && *path ? path : "/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, "3\n", 2);
  int e = errno;
  close(fd);
  return n == 2 ? 0 : -e;
}

/* ---- fio, the device's reference ---- */

/* Just past the colon of the first "key" used as a key (a value "read", as in
 * "rw" : "read", is not followed by a colon), or NULL. */
static const char *json_key(const char *from, const char *key) {
  char quoted[64];
  snprintf(quoted, sizeof quoted, "\"%s\"", key);
  for (const char *at = strstr(from, quoted); at; at = strstr(at + 1, quoted)) {
    const char *c = at + strlen(quoted);
    while (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r') c++;
    if (*c == ':') return c + 1;
  }
  return NULL;
}

/* fio's sequential read of FILE (O_DIRECT, `bs`, `depth` in flight with
 * `engine`), `limit` bytes of it (0: all): fio's own bandwidth from its JSON.
 * Returns 0, or -1 when fio is missing, fails or reports nothing read. */
static int run_fio(const char *file, const char *engine, const char *bs, int depth, uint64_t limit, double *gbps_out,
                   uint64_t *bytes_out) {
  char depth_arg[32], size_arg[48], bs_arg[32];
  snprintf(depth_arg, sizeof depth_arg, "--iodepth=%d", depth);
  snprintf(size_arg, sizeof size_arg, "--size=%llu", (unsigned long long)limit);
  snprintf(bs_arg, sizeof bs_arg, "--bs=%s", bs);
  char engine_arg[64], file_arg[4200];
  snprintf(engine_arg, sizeof engine_arg, "--ioengine=%s", engine);
  snprintf(file_arg, sizeof file_arg, "--filename=%s", file);
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null < 0 || dup2(fds[1], 1) < 0 || dup2(null, 2) < 0) _exit(127);
    close(fds[0]);
    char *argv[] = {"fio", "--name=x", file_arg, "--rw=read", bs_arg, depth_arg, engine_arg, "--direct=1",
                    "--readonly", "--output-format=json", limit ? size_arg : NULL, NULL};
    execvp("fio", argv);
    _exit(127);
  }
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    return -1;
  }
  static char out[1 << 20];
  size_t len = 0;
  for (ssize_t n; len < sizeof out - 1 && ((n = read(fds[0], out + len, sizeof out - 1 - len)) > 0 || (n < 0 && errno == EINTR));)
    if (n > 0) len += (size_t)n;
  out[len] = '\0';
  close(fds[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  /* jobs[0].read: "io_bytes" : N, ... "bw_bytes" : N (bytes per second) */
  const char *rd = json_key(out, "read");
  const char *io = rd ? json_key(rd, "io_bytes") : NULL, *bw = rd ? json_key(rd, "bw_bytes") : NULL;
  if (!io || !bw) return -1;
  const double io_bytes = strtod(io, NULL), bw_bytes = strtod(bw, NULL);
  if (io_bytes <= 0 || bw_bytes <= 0) return -1;
  *gbps_out = bw_bytes / 1e9;
  *bytes_out = (uint64_t)io_bytes;
  return 0;
}

/* The first engine that reads 16 MiB of FILE: io_uring, then libaio, then
 * psync (synchronous: one request in flight whatever the depth). NULL: none. */
static const char *fio_engine(const char *file) {
  static const char *const engines[] = {"io_uring", "libaio", "psync"};
  const uint64_t limit = file_bytes(file) > (16u << 20) ? 16u << 20 : 0; /* fio refuses to read past the end */
  for (size_t i = 0; i < sizeof engines / sizeof *engines; i++) {
    double g;
    uint64_t b;
    if (run_fio(file, engines[i], "4M", 32, limit, &g, &b) == 0) return engines[i];
  }
  return NULL;
}

static const char *fio_engine_note(const char *engine) {
  return strcmp(engine, "psync") ? " (QD 32, 4 MiB, O_DIRECT)" : " (QD 1: synchronous, 4 MiB, O_DIRECT)";
}

/* ---- files of small tensors ---- */

/* N one-row F32 tensors of 64 bytes: small enough that the per-tensor cost is
 * the loader's own work, not the copy (100,000 of them still fit in L3). */
static int write_small(const char *count, const char *path) {
  const unsigned long n = strtoul(count, NULL, 10);
  gw *w = gw_new();
  gw_kv_str(w, "general.architecture", "llama");
  const uint64_t ne[1] = {16};
  char name[64];
  for (unsigned long i = 0; i < n; i++) {
    snprintf(name, sizeof name, "blk.%lu.small.weight", i);
    if (gw_tensor(w, name, EMEL_GGML_TYPE_F32, 1, ne) != 0) die("gw_tensor", name);
  }
  int rc = gw_write(w, path);
  gw_free(w);
  return rc == 0 ? 0 : 1;
}

/* ---- hostile names ---- */

/* N tensors of one F32 each whose names all collide in the low 20 bits of
 * unseeded FNV-1a (what the name tables hashed with before they were seeded),
 * or random names of the same length: opening the first must cost about what
 * opening the second does. */
static int write_names(const char *kind, const char *count, const char *path) {
  const unsigned long n = strtoul(count, NULL, 10);
  const int colliding = !strcmp(kind, "colliding");
  if (!colliding && strcmp(kind, "random")) die("--write-names: colliding or random", kind);
  fnv_names *g = fnv_names_new('t');
  if (!g) die("out of memory", NULL);
  gw *w = gw_new();
  gw_kv_str(w, "general.architecture", "llama");
  const uint64_t ne[1] = {1};
  char name[FNV_NAME_LEN + 1];
  for (unsigned long i = 0; i < n; i++) {
    colliding ? fnv_names_colliding(g, name) : fnv_names_random(g, name);
    if (gw_tensor(w, name, EMEL_GGML_TYPE_F32, 1, ne) != 0) die("gw_tensor", name);
  }
  int rc = gw_write(w, path);
  gw_free(w);
  fnv_names_free(g);
  return rc == 0 ? 0 : 1;
}

/* emel_model_open alone (the close is not timed). */
static double time_open(const char *path) {
  double t0 = now();
  emel_model *model = open_model(path);
  double t = now() - t0;
  emel_model_close(model);
  return t;
}

/* Prints open_colliding_ms, open_random_ms and their ratio (medians). */
static void open_names_figure(const char *colliding, const char *random, int runs) {
  double secs[2][MAX_RUNS];
  const char *files[2] = {colliding, random};
  (void)time_open(colliding); /* page cache warm */
  (void)time_open(random);
  for (int r = 0; r < runs; r++)
    for (int k = 0; k < 2; k++) {
      const int f = (k + r) % 2;
      secs[f][r] = time_open(files[f]);
    }
  const double c = median(secs[0], runs), m = median(secs[1], runs);
  printf("open_colliding_ms: %.1f\nopen_random_ms: %.1f\nopen_colliding_vs_random: %.2f\n", c * 1e3, m * 1e3,
         c / m);
}

/* ---- load jobs (issue 11): the same model, read strategy, page cache warm ----
 * The model is opened once; each contender loads every tensor (timed) and the
 * table is then evicted (untimed), contenders rotating each run: the batch
 * (emel_tensors_load_batch), a background job (create, start, wait), and a
 * cooperative one stepped with 8 MiB budgets.
 *
 * Their tensor buffers come from one pool touched once before the runs (the
 * model's platform alloc: what is aligned to a huge page, which only tensor
 * buffers of 2 MiB or more are; the rest from malloc). With malloc, the
 * figure compares allocators, not loaders: on these VMs first-touch memory is
 * zeroed at ~1-2 GB/s, and glibc gives a thread's freed blocks back (a job
 * allocates on its thread: fresh pages every run) while it keeps the calling
 * thread's (the batch: pages already touched). Both are printed. */

enum { POOL_ALIGN = 2u << 20 }; /* tensor buffers of a huge page or more: nothing else is aligned so */
static unsigned char *pool_base;
static size_t pool_size;
static _Atomic size_t pool_used;

static void *pool_alloc(void *user, size_t size, size_t alignment) {
  (void)user;
  if (alignment < POOL_ALIGN || !pool_base) {
    void *p = NULL;
    return posix_memalign(&p, alignment < sizeof(void *) ? sizeof(void *) : alignment, size ? size : 1) == 0 ? p : NULL;
  }
  size_t at = atomic_load(&pool_used), start;
  do {
    start = (at + alignment - 1) & ~(alignment - 1);
    if (start > pool_size || size > pool_size - start) return NULL;
  } while (!atomic_compare_exchange_weak(&pool_used, &at, start + size));
  return pool_base + start;
}

static void pool_free(void *user, void *ptr, size_t size) {
  (void)user, (void)size;
  if ((unsigned char *)ptr < pool_base || (unsigned char *)ptr >= pool_base + pool_size) free(ptr);
}

/* A pool for every tensor of `path` at 2 MiB alignment, touched now (untimed). */
static void pool_open(const char *path) {
  emel_model *model = open_model(path);
  emel_tensors *tensors = emel_model_tensors(model);
  const size_t huge = 2u << 20;
  size_t need = huge;
  for (uint32_t i = 0; i < emel_tensors_count(tensors); i++) {
    emel_tensor_info info;
    emel_tensors_info(tensors, i, &info);
    need += ((size_t)info.span.size + huge - 1) / huge * huge + huge;
  }
  emel_model_close(model);
  void *p = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap", "job figures' buffer pool");
  (void)madvise(p, need, MADV_HUGEPAGE);
  memset(p, 1, need);
  pool_base = p;
  pool_size = need;
  atomic_store(&pool_used, 0);
}

static void pool_close(void) {
  if (pool_base) munmap(pool_base, pool_size);
  pool_base = NULL;
}

typedef struct job_clock {
  double start, first; /* first: when the first tensor was reported ready (0: not yet) */
} job_clock;

static void job_first_ready(void *user, uint32_t index, const emel_tensor_view *view) {
  (void)index, (void)view;
  job_clock *c = user;
  if (c->first == 0) c->first = now(); /* the job's thread; read after emel_job_wait (acquire) */
}

static emel_job *job_begin(emel_tensors *tensors, job_clock *clock) {
  static const emel_load_options read = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);
  emel_job_config config = EMEL_JOB_CONFIG_INIT(.options = &read, .on_ready = job_first_ready, .user = clock);
  emel_job *job;
  emel_error e;
  if (emel_job_create(&job, tensors, &config, &e) != EMEL_OK) die("emel_job_create", emel_status_name(e.code));
  return job;
}

/* Every tensor evicted; the pool (if any) is empty again. */
static void evict_all_tensors(emel_tensors *tensors) {
  if (emel_tensors_evict_all(tensors, NULL) != EMEL_OK) die("emel_tensors_evict_all", NULL);
  atomic_store(&pool_used, 0);
}

static void job_end(emel_job *job, emel_tensors *tensors, emel_job_state want) {
  emel_error e;
  const emel_job_state st = emel_job_wait(job, -1);
  if (st != want && !(want == EMEL_JOB_CANCELLED && st == EMEL_JOB_COMPLETED))
    die("load job ended", emel_status_name(emel_job_result(job, &e)));
  emel_job_destroy(job);
  evict_all_tensors(tensors);
}

enum { J_BATCH, J_BACKGROUND, J_STEP, J_COUNT };

/* One load of every tensor by contender `c`; returns its seconds. */
static double time_job_contender(emel_tensors *tensors, int c, double *first) {
  job_clock clock = {.start = now()};
  double took;
  if (c == J_BATCH) {
    const emel_load_options o = options_for(EMEL_STRATEGY_READ, 0);
    emel_status s = emel_tensors_load_batch(tensors, NULL, emel_tensors_count(tensors), &o, NULL, NULL);
    if (s != EMEL_OK) die("emel_tensors_load_batch", emel_status_name(s));
    took = now() - clock.start;
    evict_all_tensors(tensors);
    return took;
  }
  emel_job *job = job_begin(tensors, &clock);
  emel_error e;
  if (c == J_BACKGROUND) {
    if (emel_job_start(job, &e) != EMEL_OK) die("emel_job_start", emel_status_name(e.code));
    (void)emel_job_wait(job, -1);
  } else {
    while (emel_job_step(job, 8u << 20, NULL, NULL) == EMEL_OK && emel_job_poll(job, NULL) == EMEL_JOB_RUNNING) {}
  }
  took = now() - clock.start;
  if (first) *first = clock.first - clock.start;
  job_end(job, tensors, EMEL_JOB_COMPLETED);
  return took;
}

static void job_figures(const char *path, int runs) {
  double secs[J_COUNT][MAX_RUNS], first[MAX_RUNS];
  (void)time_cat(path); /* page cache warm */

  /* The batch and a background job with malloc's buffers (the allocator's figure). */
  emel_model *model = open_model(path);
  emel_tensors *tensors = emel_model_tensors(model);
  (void)time_job_contender(tensors, J_BATCH, NULL);
  for (int r = 0; r < runs; r++)
    for (int k = 0; k < 2; k++) {
      const int c = (k + r) % 2 == 0 ? J_BATCH : J_BACKGROUND;
      secs[c][r] = time_job_contender(tensors, c, NULL);
    }
  emel_model_close(model);
  const double batch_malloc = median(secs[J_BATCH], runs), background_malloc = median(secs[J_BACKGROUND], runs);
  printf("job_batch_malloc_ms: %.1f\njob_background_malloc_ms: %.1f\n", batch_malloc * 1e3,
         background_malloc * 1e3);

  /* Every figure below: tensor buffers from the pool, touched once. */
  pool_open(path);
  const emel_platform_ops pooled = EMEL_PLATFORM_OPS_INIT(.alloc = pool_alloc, .free = pool_free);
  const emel_model_config config = EMEL_MODEL_CONFIG_INIT(.platform = &pooled);
  model = open_model_with(path, &config);
  tensors = emel_model_tensors(model);
  (void)time_job_contender(tensors, J_BATCH, NULL);
  for (int r = 0; r < runs; r++)
    for (int k = 0; k < J_COUNT; k++) {
      const int c = (k + r) % J_COUNT;
      secs[c][r] = time_job_contender(tensors, c, c == J_BACKGROUND ? &first[r] : NULL);
    }
  const double batch = median(secs[J_BATCH], runs), background = median(secs[J_BACKGROUND], runs),
               step = median(secs[J_STEP], runs), first_ready = median(first, runs);
  printf("job_batch_ms: %.1f\njob_background_ms: %.1f\njob_step_8mib_ms: %.1f\n", batch * 1e3, background * 1e3,
         step * 1e3);

  /* 100 cancels, each at a moment drawn uniformly over a whole background
   * load (default chunks): the time from emel_job_cancel to the job's end as
   * emel_job_wait sees it. Fixed seed: the same moments each run. */
  enum { CANCELS = 100 };
  double latency[CANCELS];
  uint64_t seed = 0x9e3779b97f4a7c15u;
  for (int i = 0; i < CANCELS; i++) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    const double at = background * (double)(seed % 1000000u) / 1e6;
    job_clock clock = {.start = now()};
    emel_job *job = job_begin(tensors, &clock);
    emel_error e;
    if (emel_job_start(job, &e) != EMEL_OK) die("emel_job_start", emel_status_name(e.code));
    const double wake = now() + at;
    struct timespec ts = {(time_t)at, (long)((at - (double)(time_t)at) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    while (now() < wake) {}
    const double t0 = now();
    emel_job_cancel(job);
    (void)emel_job_wait(job, -1);
    latency[i] = now() - t0;
    job_end(job, tensors, EMEL_JOB_CANCELLED);
  }
  qsort(latency, CANCELS, sizeof *latency, cmp_double);
  printf("first_tensor_ms: %.2f\ncancel_latency_ms_median: %.2f\ncancel_latency_ms_max: %.2f\n", first_ready * 1e3,
         latency[CANCELS / 2] * 1e3, latency[CANCELS - 1] * 1e3);
  printf("job_vs_batch: %.2f\nfirst_tensor_vs_all: %.3f\ncancel_latency_ms_p99: %.2f\nstep_overhead: %.2f\n",
         batch / background, first_ready / background, latency[(CANCELS * 99 + 99) / 100 - 1] * 1e3,
         background / step);
  printf("job_vs_batch_malloc: %.2f\n", batch_malloc / background_malloc);
  emel_model_close(model);
  pool_close();
}

/* ---- main ---- */

typedef struct args {
  int runs, cold, smoke, direct_sweep;
  const char *model, *small1k, *small100k, *names_colliding, *names_random;
} args;

static void usage(void) {
  fprintf(stderr, "usage: emel-bench [--runs R] [--small1k F] [--small100k F] [--names COLLIDING RANDOM] [--cold] "
                  "MODEL.gguf\n"
                  "       emel-bench --smoke MODEL.gguf\n"
                  "       emel-bench --direct-sweep [--runs R] MODEL.gguf\n"
                  "       emel-bench --probe-memcpy MIB [--runs R]\n"
                  "       emel-bench --fio FILE\n"
                  "       emel-bench --write-small N OUT.gguf\n"
                  "       emel-bench --write-names colliding|random N OUT.gguf\n"
                  "       emel-bench --open-names [--runs R] COLLIDING.gguf RANDOM.gguf\n"
                  "       emel-bench --settled [--runs R] MODEL.gguf\n"
                  "       emel-bench --jobs [--runs R] MODEL.gguf\n"
                  "       emel-bench --staged [--runs R] [--cold] MODEL.gguf\n");
  exit(2);
}

static args parse(int argc, char **argv) {
  args a = {.runs = 5};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--runs") && i + 1 < argc) a.runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--small1k") && i + 1 < argc) a.small1k = argv[++i];
    else if (!strcmp(argv[i], "--small100k") && i + 1 < argc) a.small100k = argv[++i];
    else if (!strcmp(argv[i], "--names") && i + 2 < argc) {
      a.names_colliding = argv[++i];
      a.names_random = argv[++i];
    } else if (!strcmp(argv[i], "--cold")) a.cold = 1;
    else if (!strcmp(argv[i], "--smoke")) a.smoke = 1;
    else if (!strcmp(argv[i], "--direct-sweep")) a.direct_sweep = 1;
    else if (argv[i][0] == '-' || a.model) usage();
    else a.model = argv[i];
  }
  if (!a.model || a.runs < 1 || a.runs > MAX_RUNS) usage();
  return a;
}

static double gbps(uint64_t bytes, double seconds) { return (double)bytes / seconds / 1e9; }

static int cpu_lanes(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > MAX_LANES ? MAX_LANES : (int)n;
}

/* Why the memcpy reference could fall below the read strategy: each way of
 * copying (4 KiB or huge pages, one lane or one per core, pages touched again
 * right before the copy or not) and first touch, alternated, medians. */
static int probe_memcpy(uint64_t size, int runs) {
  enum { V = 8 };
  double secs[V + 2][MAX_RUNS], retouch_secs[2][MAX_RUNS];
  region src[2] = {region_new(size, 0), region_new(size, 1)}, dst[2] = {region_new(size, 0), region_new(size, 1)};
  for (int h = 0; h < 2; h++) {
    fill_distinct(src[h].p, size, 1);
    fill_distinct(dst[h].p, size, 2); /* another seed: no page of dst equals one of src */
  }
  const int lanes = cpu_lanes();
  for (int r = 0; r < runs; r++)
    for (int k = 0; k < V + 2; k++) {
      const int v = (k + r) % (V + 2);
      if (v >= V) {
        secs[v][r] = time_first_touch(size, v - V);
        continue;
      }
      const int huge = v & 1, many = (v >> 1) & 1, retouch = (v >> 2) & 1;
      (void)time_first_touch(size, 0); /* what the loads between two copies do: map, fill, unmap */
      if (retouch) {
        const double t0 = now();
        touch(src[huge].p, size);
        touch(dst[huge].p, size);
        retouch_secs[huge][r] = now() - t0;
      }
      secs[v][r] = time_memcpy(dst[huge].p, src[huge].p, size, many ? lanes : 1);
    }
  for (int v = 0; v < V; v++)
    printf("memcpy_%s_%dlane_%s_gbps: %.2f\n", v & 1 ? "huge" : "4k", (v >> 1) & 1 ? lanes : 1,
           (v >> 2) & 1 ? "retouched" : "pretouched", gbps(size, median(secs[v], runs)));
  printf("retouch_4k_ms: %.1f\nretouch_huge_ms: %.1f\n", median(retouch_secs[0], runs) * 1e3,
         median(retouch_secs[1], runs) * 1e3);
  printf("first_touch_4k_gbps: %.2f\nfirst_touch_huge_gbps: %.2f\n", gbps(size, median(secs[V], runs)),
         gbps(size, median(secs[V + 1], runs)));
  for (int h = 0; h < 2; h++) {
    region_free(&src[h]);
    region_free(&dst[h]);
  }
  return 0;
}

/* Why --direct is slower than buffered on a cold cache: the direct read at
 * several lane counts and chunk sizes, buffered and fio at several depths and
 * request sizes, caches dropped before each, alternated, medians. */
static int direct_sweep(const char *path, int runs) {
  typedef struct sweep {
    char name[48];
    int kind; /* 0 emel direct, 1 emel buffered, 2 fio */
    uint32_t lanes, threads;
    size_t chunk;
    int ring; /* 0: the pread lanes (EMEL_IO_READ_NO_RING); 1: the ring engine */
    uint32_t ring_depth;
    size_t request;
    const char *bs;
    int depth;
    double secs[MAX_RUNS];
    emel_io_read_stats st;
  } sweep;
  static sweep v[32];
  int n = 0;
  const uint32_t lanes[] = {1, 2, 4, 8, 16, 32};
  const size_t chunks[] = {(size_t)1 << 20, (size_t)4 << 20, (size_t)32 << 20};
  /* The defaults (the ring engine where io_uring is), then the pread lanes as before it. */
  v[n].kind = 1, v[n].ring = 1, snprintf(v[n].name, sizeof v[n].name, "buffered_default"), n++;
  v[n].kind = 0, v[n].ring = 1, snprintf(v[n].name, sizeof v[n].name, "direct_default"), n++;
  v[n].kind = 1, snprintf(v[n].name, sizeof v[n].name, "buffered_pread_default"), n++;
  /* Buffered at more copy lanes: does a lane's read wait for the device, then fault? */
  v[n].kind = 1, v[n].threads = 8, snprintf(v[n].name, sizeof v[n].name, "buffered_pread_lanes8"), n++;
  for (size_t i = 0; i < sizeof lanes / sizeof *lanes; i++)
    v[n].kind = 0, v[n].lanes = lanes[i],
    snprintf(v[n].name, sizeof v[n].name, "direct_pread_lanes%u_chunk8m", lanes[i]), n++;
  (void)chunks;
  /* The ring: lanes x depth x request size (direct), and buffered. */
  const struct {
    uint32_t lanes, depth;
    size_t request;
  } rings[] = {{1, 32, 1u << 20}, {1, 8, 4u << 20}, {2, 8, 4u << 20}, {2, 16, 1u << 20}, {4, 8, 4u << 20},
               {8, 4, 4u << 20}, {8, 8, 4u << 20}, {8, 32, 1u << 20}, {1, 64, 256u << 10}};
  for (size_t i = 0; i < sizeof rings / sizeof *rings; i++)
    v[n].kind = 0, v[n].ring = 1, v[n].lanes = rings[i].lanes, v[n].ring_depth = rings[i].depth,
    v[n].request = rings[i].request,
    snprintf(v[n].name, sizeof v[n].name, "direct_ring_lanes%u_qd%u_req%zuk", rings[i].lanes, rings[i].depth,
             rings[i].request >> 10), n++;
  v[n].kind = 1, v[n].ring = 1, v[n].threads = 1, v[n].ring_depth = 32,
  snprintf(v[n].name, sizeof v[n].name, "buffered_ring_lanes1_qd32_req1024k"), n++;
  v[n].kind = 1, v[n].ring = 1, v[n].threads = 2, v[n].ring_depth = 8, v[n].request = 4u << 20,
  snprintf(v[n].name, sizeof v[n].name, "buffered_ring_lanes2_qd8_req4096k"), n++;
  v[n].kind = 1, v[n].ring = 1, v[n].threads = 8, v[n].ring_depth = 8,
  snprintf(v[n].name, sizeof v[n].name, "buffered_ring_lanes8_qd8_req1024k"), n++;
  v[n].kind = 1, v[n].ring = 1, v[n].threads = 4, v[n].ring_depth = 16, v[n].request = 256u << 10,
  snprintf(v[n].name, sizeof v[n].name, "buffered_ring_lanes4_qd16_req256k"), n++;
  const char *engine = fio_engine(path);
  const struct {
    const char *bs;
    int depth;
  } fios[] = {{"4M", 1}, {"4M", 8}, {"4M", 32}, {"8M", 8}, {"1M", 32}};
  for (size_t i = 0; engine && i < sizeof fios / sizeof *fios; i++)
    v[n].kind = 2, v[n].bs = fios[i].bs, v[n].depth = fios[i].depth,
    snprintf(v[n].name, sizeof v[n].name, "fio_bs%s_qd%d", fios[i].bs, fios[i].depth), n++;
  /* EMEL_BENCH_SWEEP_ONLY=SUBSTRING: only the variants whose name holds it (the machine is shared). */
  const char *only = getenv("EMEL_BENCH_SWEEP_ONLY");
  if (only && *only) {
    int kept = 0;
    for (int i = 0; i < n; i++)
      if (strstr(v[i].name, only) || (v[i].kind == 2 && v[i].depth == 32 && !strcmp(v[i].bs, "4M"))) v[kept++] = v[i];
    n = kept;
  }
  const int e = drop_caches();
  if (e < 0) die("drop_caches not permitted", strerror(-e));
  uint64_t bytes = 0, fio_bytes = 0;
  for (int r = 0; r < runs; r++)
    for (int k = 0; k < n; k++) {
      sweep *x = &v[(k + r) % n];
      if (drop_caches() < 0) die("drop_caches", NULL);
      if (x->kind == 2) {
        double g;
        if (run_fio(path, engine, x->bs, x->depth, 0, &g, &fio_bytes) != 0) die("fio failed", x->name);
        x->secs[r] = (double)fio_bytes / (g * 1e9);
        continue;
      }
      emel_io_read_config rc =
          EMEL_IO_READ_CONFIG_INIT(.direct_threads = x->lanes, .chunk_size = x->chunk, .threads = x->threads,
                                   .ring_depth = x->ring_depth, .ring_request = x->request,
                                   .flags = x->ring ? 0 : EMEL_IO_READ_NO_RING);
      load_timing t = time_emel_with(path, EMEL_STRATEGY_READ, x->kind == 0 ? EMEL_LOAD_DIRECT : 0, &rc, &x->st);
      x->secs[r] = t.load;
      bytes = t.bytes;
    }
  printf("file: %s\ntensor_bytes: %llu\nruns: %d\nfio_engine: %s\n", path, (unsigned long long)bytes, runs,
         engine ? engine : "none");
  for (int i = 0; i < n; i++) {
    printf("%s_gbps: %.2f", v[i].name, gbps(v[i].kind == 2 ? fio_bytes : bytes, median(v[i].secs, runs)));
    if (v[i].kind != 2)
      printf("  (preads %llu, ring reads %llu, ring fallbacks %llu, direct %llu, unaligned %llu, fallbacks %llu, runs %llu)",
             (unsigned long long)v[i].st.preads, (unsigned long long)v[i].st.ring_reads,
             (unsigned long long)v[i].st.ring_fallbacks, (unsigned long long)v[i].st.direct_reads,
             (unsigned long long)v[i].st.direct_unaligned, (unsigned long long)v[i].st.direct_fallbacks,
             (unsigned long long)v[i].st.runs);
    printf("\n");
  }
  return 0;
}

enum { C_CAT, C_MEMCPY, C_POPULATE, C_READ, C_MMAP, C_NAIVE, C_FIRST_TOUCH, C_COUNT };
static const char *const contender_names[C_COUNT] = {"cat", "memcpy", "mmap_populate", "read", "mmap", "naive_read",
                                                     "first_touch"};

/* Fresh memory settled (see settle()): the naive read and read, alternated,
 * each after SETTLE_SECONDS of quiet. */
static int settled_figures(const char *path, int runs) {
  enum { S_NAIVE, S_READ, S_COUNT };
  static const char *const names[S_COUNT] = {"naive_read", "read"};
  double secs[S_COUNT][MAX_RUNS], rate[S_COUNT];
  uint64_t bytes = 0;
  const int order = page_reporting_order();
  if (order >= 0) printf("page_reporting_order: %d\n", order);
  else printf("page_reporting_order: none (this kernel hands no freed memory back)\n");
  (void)time_cat(path); /* page cache warm */
  for (int r = 0; r < runs; r++)
    for (int k = 0; k < S_COUNT; k++) {
      const int c = (k + r) % S_COUNT;
      settle();
      const load_timing t = c == S_NAIVE ? time_naive(path) : time_emel(path, EMEL_STRATEGY_READ, 0);
      secs[c][r] = t.load;
      bytes = t.bytes;
    }
  for (int c = 0; c < S_COUNT; c++) {
    rate[c] = gbps(bytes, median(secs[c], runs));
    printf("%s_settled_gbps: %.2f\n", names[c], rate[c]);
  }
  printf("read_vs_naive_settled: %.2f\n", rate[S_READ] / rate[S_NAIVE]);
  return 0;
}

/* Cold contenders: caches dropped before each. */
enum { K_FIO, K_CAT, K_DIRECT, K_BUFFERED, K_MMAP, K_COUNT };

/* Every cold line is printed; `skipped (why)` when not asked or not permitted. */
static void cold_figures(int asked, const char *path, uint64_t size, int runs, char *vs_cat, size_t vs_cat_len) {
  static const char *const names[K_COUNT] = {"fio_cold", "cat_cold", "read_direct_cold", "read_buffered_cold",
                                             "mmap_cold"};
  int e = asked ? drop_caches() : 0;
  if (!asked || e < 0) {
    char why[128];
    if (asked) snprintf(why, sizeof why, "skipped (drop_caches not permitted: %s)", strerror(-e));
    else snprintf(why, sizeof why, "skipped (not asked: pass --cold)");
    for (int k = 0; k < K_COUNT; k++) printf("%s_gbps: %s\n", names[k], why);
    printf("fio_engine: %s\nread_cold_vs_fio: %s\nread_buffered_cold_vs_fio: %s\nmmap_cold_vs_fio: %s\n", why, why,
           why, why);
    snprintf(vs_cat, vs_cat_len, "%s", why);
    return;
  }
  const char *engine = fio_engine(path);
  double secs[K_COUNT][MAX_RUNS], rate[K_COUNT];
  uint64_t bytes[K_COUNT] = {0};
  for (int r = 0; r < runs; r++)
    for (int k = 0; k < K_COUNT; k++) {
      const int c = (k + r) % K_COUNT;
      if (c == K_FIO && !engine) continue;
      if (drop_caches() < 0) die("drop_caches", NULL);
      /* Every contender but fio (O_DIRECT into one small buffer) writes fresh
       * memory: page cache, owned buffers, or both (buffered read: twice the
       * model). Timed just after a free of that much, so the device is
       * measured, not the host's refill of memory it took back (see heat). */
      if (c != K_FIO) heat(2 * size);
      load_timing t;
      switch (c) {
      case K_FIO: {
        double g;
        if (run_fio(path, engine, "4M", 32, 0, &g, &bytes[c]) != 0) die("fio failed", path);
        secs[c][r] = (double)bytes[c] / (g * 1e9);
        break;
      }
      case K_CAT: secs[c][r] = time_cat(path), bytes[c] = size; break;
      default:
        t = time_emel(path, c == K_MMAP ? EMEL_STRATEGY_MMAP : EMEL_STRATEGY_READ, c == K_DIRECT ? EMEL_LOAD_DIRECT : 0);
        secs[c][r] = t.load, bytes[c] = t.bytes;
        break;
      }
    }
  for (int k = 0; k < K_COUNT; k++) {
    if (k == K_FIO && !engine) {
      printf("fio_cold_gbps: skipped (fio not installed or no engine could read the file)\n");
      continue;
    }
    rate[k] = gbps(bytes[k], median(secs[k], runs));
    printf("%s_gbps: %.2f\n", names[k], rate[k]);
  }
  if (engine) {
    printf("fio_engine: %s%s\n", engine, fio_engine_note(engine));
    printf("read_cold_vs_fio: %.2f\nread_buffered_cold_vs_fio: %.2f\nmmap_cold_vs_fio: %.2f\n", rate[K_DIRECT] / rate[K_FIO],
           rate[K_BUFFERED] / rate[K_FIO], rate[K_MMAP] / rate[K_FIO]);
  } else {
    printf("fio_engine: none\nread_cold_vs_fio: skipped (no fio)\nread_buffered_cold_vs_fio: skipped (no fio)\n"
           "mmap_cold_vs_fio: skipped (no fio)\n");
  }
  snprintf(vs_cat, vs_cat_len, "%.2f", rate[K_DIRECT] / rate[K_CAT]);
}

/* One staged load as an embedder runs it: open, attach the ring, every
 * tensor through the consumer (dest: its copy target, prefaulted). */
static load_timing time_staged(const char *path, unsigned flags, unsigned char *dest) {
  load_timing t = {0};
  double t0 = now();
  emel_model *model = open_model(path);
  attach_staged(model);
  staged_dest d = {dest, emel_model_tensors(model)};
  const emel_staged_consumer consumer = EMEL_STAGED_CONSUMER_INIT(.consume = staged_copy, .user = &d);
  emel_load_options o = options_for(EMEL_STRATEGY_STAGED, flags);
  o.consumer = &consumer;
  load_every_tensor(model, &o, &t);
  t.load = now() - t0;
  emel_model_close(model);
  return t;
}

/* The staged strategy's figures (issue 12): warm, staged copying into a
 * prefaulted destination over the read strategy; its peak memory (a child,
 * default 64 MiB ring); cold, staged --direct over read --direct and fio. */
static int staged_figures(const char *path, int runs, int cold, const char *self) {
  const uint64_t size = file_bytes(path);
  long hwm, anon;
  uint64_t bytes;
  measure_rss(self, "staged", path, &hwm, &anon, &bytes);
  region dest = region_new(size, 1);
  touch(dest.p, size); /* prefaulted: the copy is timed, not the destination's first touch */
  (void)time_cat(path);
  double secs[2][MAX_RUNS];
  uint64_t got[2] = {0, 0};
  for (int r = 0; r < runs; r++)
    for (int k = 0; k < 2; k++) {
      const int c = (k + r) % 2;
      if (!c) heat(size); /* read's fresh buffers in one stated state, as in the main figures */
      const load_timing t = c ? time_staged(path, 0, dest.p) : time_emel(path, EMEL_STRATEGY_READ, 0);
      secs[c][r] = t.load;
      got[c] = t.bytes;
    }
  region_free(&dest);
  const double read_rate = gbps(got[0], median(secs[0], runs)), staged_rate = gbps(got[1], median(secs[1], runs));
  printf("file: %s\nstaged_ring_mib: %u\nstaged_gbps: %.2f\nstaged_read_gbps: %.2f\n", path,
         EMEL_IO_STAGED_DEFAULT_BUDGET >> 20, staged_rate, read_rate);
  char why[128] = "";
  const int e = cold ? drop_caches() : 0;
  if (!cold) snprintf(why, sizeof why, "skipped (not asked: pass --cold)");
  else if (e < 0) snprintf(why, sizeof why, "skipped (drop_caches not permitted: %s)", strerror(-e));
  double cold_rate[3] = {0, 0, 0}; /* read --direct, staged --direct, fio */
  const char *engine = NULL;
  if (!*why) {
    engine = fio_engine(path);
    double csecs[3][MAX_RUNS];
    uint64_t cbytes[3] = {0, 0, 0};
    for (int r = 0; r < runs; r++)
      for (int k = 0; k < 3; k++) {
        const int c = (k + r) % 3;
        if (c == 2 && !engine) continue;
        if (drop_caches() < 0) die("drop_caches", NULL);
        if (c != 2) heat(size); /* fresh memory just freed, as in cold_figures */
        if (c == 2) {
          double g;
          if (run_fio(path, engine, "4M", 32, 0, &g, &cbytes[c]) != 0) die("fio failed", path);
          csecs[c][r] = (double)cbytes[c] / (g * 1e9);
          continue;
        }
        const load_timing t = c ? time_staged(path, EMEL_LOAD_DIRECT, NULL) : time_emel(path, EMEL_STRATEGY_READ, EMEL_LOAD_DIRECT);
        csecs[c][r] = t.load;
        cbytes[c] = t.bytes;
      }
    for (int c = 0; c < 3; c++)
      if (c < 2 || engine) cold_rate[c] = gbps(cbytes[c], median(csecs[c], runs));
  }
  if (*why) printf("staged_direct_cold_gbps: %s\nstaged_read_direct_cold_gbps: %s\n", why, why);
  else printf("staged_direct_cold_gbps: %.2f\nstaged_read_direct_cold_gbps: %.2f\n", cold_rate[1], cold_rate[0]);
  printf("staged_vs_read: %.2f\nstaged_peak_rss_mib: %.1f\n", staged_rate / read_rate, hwm / 1024.0);
  if (*why) printf("staged_cold_vs_direct: %s\nstaged_cold_vs_fio: %s\n", why, why);
  else if (!engine) printf("staged_cold_vs_direct: %.2f\nstaged_cold_vs_fio: skipped (no fio)\n", cold_rate[1] / cold_rate[0]);
  else printf("staged_cold_vs_direct: %.2f\nstaged_cold_vs_fio: %.2f\n", cold_rate[1] / cold_rate[0], cold_rate[1] / cold_rate[2]);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "--rss-child")) return rss_child(argv[2], argv[3]);
  if (argc == 4 && !strcmp(argv[1], "--write-small")) return write_small(argv[2], argv[3]);
  if (argc == 5 && !strcmp(argv[1], "--write-names")) return write_names(argv[2], argv[3], argv[4]);
  if (argc >= 4 && !strcmp(argv[1], "--open-names")) {
    int runs = 5;
    if (argc == 6 && !strcmp(argv[2], "--runs")) runs = atoi(argv[3]);
    else if (argc != 4) usage();
    if (runs < 1 || runs > MAX_RUNS) usage();
    open_names_figure(argv[argc - 2], argv[argc - 1], runs);
    return 0;
  }
  if (argc >= 3 && !strcmp(argv[1], "--probe-memcpy")) {
    const long mib = atol(argv[2]);
    int runs = 5;
    if (argc == 5 && !strcmp(argv[3], "--runs")) runs = atoi(argv[4]);
    else if (argc != 3) usage();
    if (mib < 1 || runs < 1 || runs > MAX_RUNS) usage();
    return probe_memcpy((uint64_t)mib << 20, runs);
  }
  if (argc == 3 && !strcmp(argv[1], "--fio")) { /* the device reference alone (O_DIRECT: no cache to drop) */
    const char *engine = fio_engine(argv[2]);
    double g = 0;
    uint64_t b = 0;
    if (!engine || run_fio(argv[2], engine, "4M", 32, 0, &g, &b) != 0) {
      printf("fio_engine: none\nfio_gbps: skipped (fio not installed or no engine could read the file)\n");
      return 1;
    }
    printf("fio_engine: %s%s\nfio_bytes: %llu\nfio_gbps: %.2f\n", engine, fio_engine_note(engine), (unsigned long long)b, g);
    return 0;
  }
  if (argc >= 3 && !strcmp(argv[1], "--settled")) {
    int runs = 5;
    if (argc == 5 && !strcmp(argv[2], "--runs")) runs = atoi(argv[3]);
    else if (argc != 3) usage();
    if (runs < 1 || runs > MAX_RUNS) usage();
    return settled_figures(argv[argc - 1], runs);
  }
  if (argc >= 3 && !strcmp(argv[1], "--jobs")) {
    int runs = 5;
    if (argc == 5 && !strcmp(argv[2], "--runs")) runs = atoi(argv[3]);
    else if (argc != 3) usage();
    if (runs < 1 || runs > MAX_RUNS) usage();
    job_figures(argv[argc - 1], runs);
    return 0;
  }
  if (argc >= 3 && !strcmp(argv[1], "--staged")) {
    int runs = 5, cold = 0, i = 2;
    for (; i < argc - 1; i++) {
      if (!strcmp(argv[i], "--runs") && i + 1 < argc - 1) runs = atoi(argv[++i]);
      else if (!strcmp(argv[i], "--cold")) cold = 1;
      else usage();
    }
    if (runs < 1 || runs > MAX_RUNS) usage();
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) die("readlink /proc/self/exe", strerror(errno));
    self[n] = '\0';
    return staged_figures(argv[argc - 1], runs, cold, self);
  }
  args a = parse(argc, argv);
  if (a.direct_sweep) return direct_sweep(a.model, a.runs);
  if (a.smoke) a.runs = 1;
  const uint64_t size = file_bytes(a.model);

  /* Peak memory first, before this process holds the copy buffers. */
  long read_hwm, read_anon, mmap_hwm, mmap_anon;
  uint64_t read_bytes, mmap_bytes;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) die("readlink /proc/self/exe", strerror(errno));
  self[n] = '\0';
  measure_rss(self, "read", a.model, &read_hwm, &read_anon, &read_bytes);
  measure_rss(self, "mmap", a.model, &mmap_hwm, &mmap_anon, &mmap_bytes);

  /* The copy reference on the read strategy's terms: huge-page advised
   * buffers, one lane per core, every page touched again right before each
   * timed copy (so no fault or TLB refill of a page idle since is timed). */
  const int lanes = cpu_lanes();
  region src = region_new(size, 1), dst = region_new(size, 1);
  fill_distinct(src.p, size, 1);
  fill_distinct(dst.p, size, 2); /* another seed: no page of dst equals one of src */

  (void)time_cat(a.model); /* page cache warm */
  double secs[C_COUNT][MAX_RUNS];
  uint64_t bytes[C_COUNT] = {size, size, size, 0, 0, 0, size};
  uint32_t tensors = 0;
  for (int r = 0; r < a.runs; r++) {
    for (int k = 0; k < C_COUNT; k++) {
      const int c = (k + r) % C_COUNT; /* rotate: no contender always follows the same one */
      load_timing t;
      if (c == C_READ || c == C_NAIVE || c == C_FIRST_TOUCH) heat(size); /* fresh memory, just freed */
      switch (c) {
      case C_CAT: secs[c][r] = time_cat(a.model); break;
      case C_MEMCPY:
        touch(src.p, size);
        touch(dst.p, size);
        secs[c][r] = time_memcpy(dst.p, src.p, size, lanes);
        break;
      case C_POPULATE: secs[c][r] = time_populate(a.model, size); break;
      case C_FIRST_TOUCH: secs[c][r] = time_first_touch(size, 0); break;
      case C_NAIVE:
        t = time_naive(a.model);
        secs[c][r] = t.load;
        bytes[c] = t.bytes;
        break;
      case C_READ:
      case C_MMAP:
        t = time_emel(a.model, c == C_READ ? EMEL_STRATEGY_READ : EMEL_STRATEGY_MMAP, 0);
        secs[c][r] = t.load;
        bytes[c] = t.bytes;
        tensors = t.count;
        break;
      }
    }
  }
  region_free(&src);
  region_free(&dst);

  double rate[C_COUNT];
  printf("file: %s\nfile_bytes: %llu\ntensors: %u\ntensor_bytes: %llu\nruns: %d\nmemcpy_lanes: %d\n", a.model,
         (unsigned long long)size, tensors, (unsigned long long)bytes[C_READ], a.runs, lanes);
  for (int c = 0; c < C_COUNT; c++) {
    const double m = median(secs[c], a.runs);
    rate[c] = gbps(bytes[c], m);
    printf("%s_ms: %.1f\n%s_gbps: %.2f\n", contender_names[c], m * 1e3, contender_names[c], rate[c]);
  }
  const double read_overhead = ((double)read_hwm * 1024 - (double)read_bytes) / (1 << 20);
  printf("read_peak_rss_mib: %.1f\nmmap_peak_rss_mib: %.1f\nmmap_anon_rss_kib: %ld\n", read_hwm / 1024.0,
         mmap_hwm / 1024.0, mmap_anon);

  double growth = -1;
  if (a.small1k && a.small100k) {
    double cost[2][2][MAX_RUNS]; /* [strategy][file][run] */
    const char *files[2] = {a.small1k, a.small100k};
    for (int r = 0; r < a.runs; r++)
      for (int k = 0; k < 4; k++) {
        const int i = (k + r) % 4, s = i / 2, f = i % 2;
        cost[s][f][r] = per_tensor_cost(files[f], s ? EMEL_STRATEGY_MMAP : EMEL_STRATEGY_READ);
      }
    for (int s = 0; s < 2; s++) {
      const char *name = s ? "mmap" : "read";
      const double c1 = median(cost[s][0], a.runs), c2 = median(cost[s][1], a.runs);
      printf("%s_per_tensor_ns_1k: %.0f\n%s_per_tensor_ns_100k: %.0f\n", name, c1 * 1e9, name, c2 * 1e9);
      if (c2 / c1 > growth) growth = c2 / c1;
    }
  }

  if (a.names_colliding) open_names_figure(a.names_colliding, a.names_random, a.runs);

  char cold[160];
  cold_figures(a.cold, a.model, size, a.runs, cold, sizeof cold);

  printf("read_vs_cat: %.2f\n", rate[C_READ] / rate[C_CAT]);
  printf("read_vs_memcpy: %.2f\n", rate[C_READ] / rate[C_MEMCPY]);
  printf("read_vs_naive: %.2f\n", rate[C_READ] / rate[C_NAIVE]);
  printf("mmap_vs_populate: %.2f\n", rate[C_MMAP] / rate[C_POPULATE]);
  printf("read_rss_overhead_mib: %.1f\n", read_overhead);
  printf("mmap_anon_rss_mib: %.1f\n", mmap_anon / 1024.0);
  if (growth >= 0) printf("per_tensor_growth: %.2f\n", growth);
  else printf("per_tensor_growth: n/a (pass --small1k and --small100k)\n");
  printf("read_cold_vs_cat_cold: %s\n", cold);
  return 0;
}

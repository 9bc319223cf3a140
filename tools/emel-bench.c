/* emel-bench: emel-io's loads against the physical limits of the machine.
 *
 * Run by tools/bench (which builds it, writes the model files and adds the
 * callgrind dispatch figures); usable alone:
 *
 *   emel-bench [--runs R] [--small1k F] [--small100k F] [--cold] MODEL.gguf
 *   emel-bench --smoke MODEL.gguf          (one quick pass of each contender)
 *   emel-bench --write-small N OUT.gguf     (N tensors of 64 bytes, for the scaling figure)
 *   emel-bench --write-names colliding|random N OUT.gguf
 *                                           (N tensors named to collide under unseeded FNV-1a, or not)
 *   emel-bench --open-names [--runs R] COLLIDING.gguf RANDOM.gguf
 *                                           (only the hostile-names figure, open_colliding_vs_random)
 *   emel-bench --jobs [--runs R] MODEL.gguf (only the load job figures: job_vs_batch,
 *                                           first_tensor_vs_all, cancel_latency_ms_p99, step_overhead)
 *
 * Every contender runs R times, in rotating order, page cache warm; figures
 * are medians. The emel-io contenders go through the public API exactly as an
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

static double time_memcpy(unsigned char *dst, const unsigned char *src, uint64_t size) {
  double t0 = now();
  memcpy(dst, src, (size_t)size);
  double t = now() - t0;
  if (dst[size / 2] != src[size / 2]) die("memcpy", "mismatch"); /* keeps the copy observable */
  return t;
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

static emel_model *open_model(const char *path) {
  emel_model *model = NULL;
  emel_error e;
  if (emel_model_open(&model, path, NULL, &e) != EMEL_OK) die("emel_model_open", emel_status_name(e.code));
  return model;
}

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

/* The whole load as an embedder sees it: open, load every tensor. The close
 * (freeing or unmapping) is not timed, as cat's exit is not. */
static load_timing time_emel(const char *path, emel_strategy strategy, unsigned extra) {
  load_timing t = {0};
  const emel_load_options o = options_for(strategy, extra);
  double t0 = now();
  emel_model *model = open_model(path);
  load_every_tensor(model, &o, &t);
  t.load = now() - t0;
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

/* Child: load every tensor, report VmHWM and RssAnon (KiB) and the tensor bytes. */
static int rss_child(const char *strategy, const char *path) {
  emel_strategy s = !strcmp(strategy, "mmap") ? EMEL_STRATEGY_MMAP : EMEL_STRATEGY_READ;
  const emel_load_options o = options_for(s, 0);
  emel_model *model = open_model(path);
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

static int drop_caches(void) {
  sync();
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, "3\n", 2);
  int e = errno;
  close(fd);
  return n == 2 ? 0 : -e;
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
 * cooperative one stepped with 8 MiB budgets. */

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

static void job_end(emel_job *job, emel_tensors *tensors, emel_job_state want) {
  emel_error e;
  const emel_job_state st = emel_job_wait(job, -1);
  if (st != want && !(want == EMEL_JOB_CANCELLED && st == EMEL_JOB_COMPLETED))
    die("load job ended", emel_status_name(emel_job_result(job, &e)));
  emel_job_destroy(job);
  if (emel_tensors_evict_all(tensors, NULL) != EMEL_OK) die("emel_tensors_evict_all", NULL);
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
    if (emel_tensors_evict_all(tensors, NULL) != EMEL_OK) die("emel_tensors_evict_all", NULL);
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
  emel_model *model = open_model(path);
  emel_tensors *tensors = emel_model_tensors(model);
  double secs[J_COUNT][MAX_RUNS], first[MAX_RUNS];
  (void)time_cat(path); /* page cache warm */
  (void)time_job_contender(tensors, J_BATCH, NULL); /* and the allocator */
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
  emel_model_close(model);
}

/* ---- main ---- */

typedef struct args {
  int runs, cold, smoke;
  const char *model, *small1k, *small100k, *names_colliding, *names_random;
} args;

static void usage(void) {
  fprintf(stderr, "usage: emel-bench [--runs R] [--small1k F] [--small100k F] [--names COLLIDING RANDOM] [--cold] "
                  "MODEL.gguf\n"
                  "       emel-bench --smoke MODEL.gguf\n"
                  "       emel-bench --write-small N OUT.gguf\n"
                  "       emel-bench --write-names colliding|random N OUT.gguf\n"
                  "       emel-bench --open-names [--runs R] COLLIDING.gguf RANDOM.gguf\n"
                  "       emel-bench --jobs [--runs R] MODEL.gguf\n");
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
    else if (argv[i][0] == '-' || a.model) usage();
    else a.model = argv[i];
  }
  if (!a.model || a.runs < 1 || a.runs > MAX_RUNS) usage();
  return a;
}

static double gbps(uint64_t bytes, double seconds) { return (double)bytes / seconds / 1e9; }

enum { C_CAT, C_MEMCPY, C_POPULATE, C_READ, C_MMAP, C_COUNT };
static const char *const contender_names[C_COUNT] = {"cat", "memcpy", "mmap_populate", "read", "mmap"};

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
  if (argc >= 3 && !strcmp(argv[1], "--jobs")) {
    int runs = 5;
    if (argc == 5 && !strcmp(argv[2], "--runs")) runs = atoi(argv[3]);
    else if (argc != 3) usage();
    if (runs < 1 || runs > MAX_RUNS) usage();
    job_figures(argv[argc - 1], runs);
    return 0;
  }
  args a = parse(argc, argv);
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

  unsigned char *src = malloc((size_t)size), *dst = malloc((size_t)size);
  if (!src || !dst) die("out of memory for the copy buffers", NULL);
  memset(src, 0x5a, (size_t)size); /* pre-faulted */
  memset(dst, 0xa5, (size_t)size);

  (void)time_cat(a.model); /* page cache warm */
  double secs[C_COUNT][MAX_RUNS];
  uint64_t bytes[C_COUNT] = {size, size, size, 0, 0};
  uint32_t tensors = 0;
  for (int r = 0; r < a.runs; r++) {
    for (int k = 0; k < C_COUNT; k++) {
      const int c = (k + r) % C_COUNT; /* rotate: no contender always follows the same one */
      load_timing t;
      switch (c) {
      case C_CAT: secs[c][r] = time_cat(a.model); break;
      case C_MEMCPY: secs[c][r] = time_memcpy(dst, src, size); break;
      case C_POPULATE: secs[c][r] = time_populate(a.model, size); break;
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
  free(src);
  free(dst);

  double rate[C_COUNT];
  printf("file: %s\nfile_bytes: %llu\ntensors: %u\ntensor_bytes: %llu\nruns: %d\n", a.model,
         (unsigned long long)size, tensors, (unsigned long long)bytes[C_READ], a.runs);
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

  char cold[160] = "n/a (not asked: pass --cold)";
  if (a.cold) {
    int e = drop_caches();
    if (e < 0) {
      snprintf(cold, sizeof cold, "n/a (drop_caches not permitted: %s)", strerror(-e));
    } else {
      double cat_cold[MAX_RUNS], read_cold[MAX_RUNS];
      uint64_t cold_bytes = 0;
      for (int r = 0; r < a.runs; r++) {
        for (int k = 0; k < 2; k++) {
          if (drop_caches() < 0) die("drop_caches", NULL);
          if ((k + r) % 2 == 0) {
            cat_cold[r] = time_cat(a.model);
          } else {
            load_timing t = time_emel(a.model, EMEL_STRATEGY_READ, EMEL_LOAD_DIRECT);
            read_cold[r] = t.load;
            cold_bytes = t.bytes;
          }
        }
      }
      const double cat_rate = gbps(size, median(cat_cold, a.runs)),
                   read_rate = gbps(cold_bytes, median(read_cold, a.runs));
      printf("cat_cold_gbps: %.2f\nread_direct_cold_gbps: %.2f\n", cat_rate, read_rate);
      snprintf(cold, sizeof cold, "%.2f", read_rate / cat_rate);
    }
  }

  printf("read_vs_cat: %.2f\n", rate[C_READ] / rate[C_CAT]);
  printf("read_vs_memcpy: %.2f\n", rate[C_READ] / rate[C_MEMCPY]);
  printf("mmap_vs_populate: %.2f\n", rate[C_MMAP] / rate[C_POPULATE]);
  printf("read_rss_overhead_mib: %.1f\n", read_overhead);
  printf("mmap_anon_rss_mib: %.1f\n", mmap_anon / 1024.0);
  if (growth >= 0) printf("per_tensor_growth: %.2f\n", growth);
  else printf("per_tensor_growth: n/a (pass --small1k and --small100k)\n");
  printf("read_cold_vs_cat_cold: %s\n", cold);
  return 0;
}

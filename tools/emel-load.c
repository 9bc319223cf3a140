/* emel-load: makes every tensor of a GGUF model resident with one strategy
 * (in batches: emel_tensors_load_batch), reports what it did and how fast,
 * optionally hashes the bytes, releases all.
 *
 *   emel-load [--strategy mmap|read] [--populate] [--direct] [--verify] [--json] [--quiet] [--version] [FILE]
 *
 * Exit status: 0 loaded; 1 the model cannot be loaded (one line on stderr:
 * "emel-load: FILE: ERROR_NAME: message") or stdout cannot be written
 * ("emel-load: write error: REASON"); 2 usage; 130 interrupted (SIGINT, in
 * any phase), after releasing everything.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "cli_text.h"
#include "emel/model.h"
#include "emel/version.h"

#ifndef EMEL_SAMPLE_MODEL
#define EMEL_SAMPLE_MODEL ""
#endif
#ifndef EMEL_SAMPLE_MODEL_INSTALLED
#define EMEL_SAMPLE_MODEL_INSTALLED ""
#endif

/* Atomic, not sig_atomic_t: the read strategy's lanes read it from their
 * threads (through the ops below), and a lock-free atomic is signal-safe. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the SIGINT flag must be lock-free");
static atomic_int interrupted;

static void on_sigint(int sig) {
  (void)sig;
  atomic_store(&interrupted, 1);
}

/* SIGINT must end every phase promptly, including the ones inside library
 * calls (indexing, a batch of loads). The library sees the OS only through
 * its platform ops, so emel-load hands it ops that refuse further I/O with
 * ECANCELED once SIGINT arrived: the call then fails like any failed read,
 * releasing what it acquired, and main reports the interruption (130). The
 * handler is installed without SA_RESTART, so a call blocked in the kernel
 * (a slow read, an open) returns EINTR at once instead of resuming. */
typedef enum phase { PHASE_NONE, PHASE_INDEX, PHASE_LOAD, PHASE_VERIFY, PHASE_OUTPUT } phase;
static const char *const phase_names[] = {"none", "index", "load", "verify", "output"};
static atomic_int current_phase, pause_phase;
static emel_platform_ops base_ops;

/* Non-zero once interrupted. Test hook (EMEL_LOAD_TEST_PAUSE=index|load|
 * verify|output): the first check in that phase announces itself on stderr
 * and waits for a signal, so a test can send a real SIGINT at a known moment. */
static int stop_requested(void) {
  int p = atomic_load(&current_phase);
  if (p != PHASE_NONE && atomic_compare_exchange_strong(&pause_phase, &p, PHASE_NONE)) {
    fprintf(stderr, "emel-load: test: paused in %s\n", phase_names[p]);
    struct timespec tick = {0, 10 * 1000 * 1000};
    while (!atomic_load(&interrupted)) nanosleep(&tick, NULL); /* the signal may go to another thread */
  }
  return atomic_load(&interrupted);
}

static int op_open(void *user, const char *path, unsigned flags) {
  (void)user;
  return stop_requested() ? -ECANCELED : base_ops.open(base_ops.user, path, flags);
}

static int64_t op_pread(void *user, int fd, void *buf, size_t len, uint64_t offset) {
  (void)user;
  return stop_requested() ? -ECANCELED : base_ops.pread(base_ops.user, fd, buf, len, offset);
}

static int64_t op_preadv(void *user, int fd, const emel_iovec *iov, int iovcnt, uint64_t offset) {
  (void)user;
  return stop_requested() ? -ECANCELED : base_ops.preadv(base_ops.user, fd, iov, iovcnt, offset);
}

static int op_map(void *user, int fd, uint64_t offset, size_t len, unsigned flags, void **addr) {
  (void)user;
  return stop_requested() ? -ECANCELED : base_ops.map(base_ops.user, fd, offset, len, flags, addr);
}

static int op_advise(void *user, void *addr, size_t len, emel_map_advice advice) {
  (void)user;
  return stop_requested() ? -ECANCELED : base_ops.advise(base_ops.user, addr, len, advice);
}

static void enter_phase(phase p) { atomic_store(&current_phase, (int)p); }

/* XXH3-64 of a tensor in steps, so SIGINT is seen within one step even for a
 * multi-gigabyte tensor paged in from a slow disk. Streaming gives the same
 * hash as the one-shot call. */
static uint64_t hash_bytes(XXH3_state_t *state, const void *data, uint64_t size) {
  const uint64_t step = 64ull << 20;
  XXH3_64bits_reset(state);
  for (uint64_t at = 0; at < size && !stop_requested(); at += step)
    XXH3_64bits_update(state, (const char *)data + at, (size_t)(size - at < step ? size - at : step));
  return XXH3_64bits_digest(state);
}

typedef struct options {
  emel_strategy strategy;
  unsigned flags;
  int verify, json, quiet;
  const char *file;
} options;

static void usage(FILE *f) {
  fprintf(f,
          "usage: emel-load [--strategy mmap|read] [--populate] [--direct] [--verify] [--json] [--quiet]\n"
          "                 [--version] [FILE]\n"
          "  Makes every tensor of the GGUF model FILE resident, reports, then releases all.\n"
          "  With no FILE, loads the bundled sample model.\n"
          "  --strategy S  mmap (default: map the file, zero copy) or read (copy into owned buffers)\n"
          "  --populate    mmap: pre-fault every tensor's pages\n"
          "  --direct      read: O_DIRECT, falling back to buffered reads where refused\n"
          "  --verify      XXH3-64 of each tensor's resident bytes\n"
          "  --json        one JSON object on stdout\n"
          "  --quiet       no human summary, no progress bar\n"
          "  --version     print \"emel-load VERSION\" (the library's, emel_version()) and exit\n");
}

static int parse(int argc, char **argv, options *o) {
  static const struct option longs[] = {
      {"strategy", required_argument, NULL, 's'}, {"populate", no_argument, NULL, 'p'},
      {"direct", no_argument, NULL, 'd'},         {"verify", no_argument, NULL, 'v'},
      {"json", no_argument, NULL, 'j'},           {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},           {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  memset(o, 0, sizeof *o);
  o->strategy = EMEL_STRATEGY_MMAP;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
    switch (c) {
    case 's':
      if (strcmp(optarg, "mmap") == 0) o->strategy = EMEL_STRATEGY_MMAP;
      else if (strcmp(optarg, "read") == 0) o->strategy = EMEL_STRATEGY_READ;
      else {
        fprintf(stderr, "emel-load: unknown strategy '%s' (mmap or read)\n", optarg);
        return 2;
      }
      break;
    case 'p': o->flags |= EMEL_LOAD_POPULATE; break;
    case 'd': o->flags |= EMEL_LOAD_DIRECT; break;
    case 'v': o->verify = 1; break;
    case 'j': o->json = 1; break;
    case 'q': o->quiet = 1; break;
    case 'h': usage(stdout); exit(emel_cli_finish_stdout("emel-load"));
    /* The library's version at run time, which is what answers a bug report. */
    case 'V': printf("emel-load %s\n", emel_version()); exit(emel_cli_finish_stdout("emel-load"));
    default:
      fprintf(stderr, "emel-load: unknown or incomplete option '%s'\n", argv[optind - 1]);
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc - 1) {
    fprintf(stderr, "emel-load: one FILE at most\n");
    usage(stderr);
    return 2;
  }
  if ((o->flags & EMEL_LOAD_POPULATE) && o->strategy != EMEL_STRATEGY_MMAP) {
    fprintf(stderr, "emel-load: --populate goes with --strategy mmap\n");
    return 2;
  }
  if ((o->flags & EMEL_LOAD_DIRECT) && o->strategy != EMEL_STRATEGY_READ) {
    fprintf(stderr, "emel-load: --direct goes with --strategy read\n");
    return 2;
  }
  if (optind < argc && argv[optind][0] == '\0') {
    fprintf(stderr, "emel-load: FILE is empty (give a path, or no FILE for the bundled sample)\n");
    usage(stderr);
    return 2;
  }
  /* The sample is in the build tree, or where `cmake --install` put it. */
  o->file = optind < argc ? argv[optind]
            : access(EMEL_SAMPLE_MODEL, R_OK) == 0 ? EMEL_SAMPLE_MODEL : EMEL_SAMPLE_MODEL_INSTALLED;
  if (!*o->file) {
    fprintf(stderr, "emel-load: no FILE given and no bundled sample model in this build\n");
    return 2;
  }
  return 0;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A progress bar on stderr, only on a terminal and only once the load has
 * taken long enough for one to help (half a second), redrawn at most 10x/s. */
typedef struct progress {
  int enabled;
  double start, last;
  int drawn;
} progress;

static void progress_update(progress *p, uint64_t done, uint64_t total) {
  if (!p->enabled || total == 0) return;
  double t = now();
  if (t - p->start < 0.5 || t - p->last < 0.1) return;
  p->last = t;
  int width = 40, fill = (int)((double)done / (double)total * width);
  fprintf(stderr, "\r[%.*s%*s] %5.1f%%", fill, "########################################", width - fill, "",
          100.0 * (double)done / (double)total);
  p->drawn = 1;
}

static void progress_end(progress *p) {
  if (p->drawn) fprintf(stderr, "\r%*s\r", 60, "");
}

/* One line whatever FILE and the detail (a tensor name) hold: see cli_text.h. */
static int load_error(const char *file, emel_status code, const char *detail) {
  fputs("emel-load: ", stderr);
  emel_cli_text(stderr, file, strlen(file));
  fprintf(stderr, ": %s: %s", emel_status_name(code), emel_status_message(code));
  emel_cli_text(stderr, detail, strlen(detail));
  fputc('\n', stderr);
  return 1;
}

static void print_json(const options *o, emel_model *model, const uint64_t *hashes, uint64_t total,
                       double seconds) {
  const emel_gguf *g = emel_model_index(model);
  size_t n = emel_gguf_tensor_count(g);
  putchar('{');
  emel_cli_json_name(stdout, "file", o->file, strlen(o->file), ":", ",");
  printf(",\"strategy\":\"%s\",\"options\":{\"populate\":%s,\"direct\":%s,\"verify\":%s}",
         emel_strategy_name(o->strategy), (o->flags & EMEL_LOAD_POPULATE) ? "true" : "false",
         (o->flags & EMEL_LOAD_DIRECT) ? "true" : "false", o->verify ? "true" : "false");
  printf(",\"tensor_count\":%zu,\"total_bytes\":%" PRIu64 ",\"seconds\":%.6f,\"tensors\":[", n, total, seconds);
  for (size_t i = 0; i < n && !stop_requested(); i++) {
    const emel_gguf_tensor *t = emel_gguf_tensor_at(g, i);
    printf("%s{", i ? "," : "");
    emel_cli_json_name(stdout, "name", t->name, t->name_len, ":", ",");
    printf(",\"type\":\"%s\",\"dims\":[", emel_ggml_type_name(t->type));
    for (uint32_t d = 0; d < t->n_dims; d++) printf("%s%" PRIu64, d ? "," : "", t->ne[d]);
    printf("],\"offset\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"file_index\":%" PRIu32, t->offset, t->size,
           t->file_index);
    if (hashes) printf(",\"xxh3\":\"%016" PRIx64 "\"", hashes[i]);
    putchar('}');
  }
  printf("]}\n");
}

int main(int argc, char **argv) {
  options o;
  int rc = parse(argc, argv, &o);
  if (rc) return rc;
  /* A report no one can receive (stdout closed or read-only) is refused before
   * the work, not discovered after it. */
  int prints = o.json || !o.quiet, out_errno = prints ? emel_cli_stdout_errno() : 0;
  if (out_errno) {
    fprintf(stderr, "emel-load: write error: %s\n", strerror(out_errno));
    return 1;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint; /* no SA_RESTART: a blocked call returns EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  const char *pause_at = getenv("EMEL_LOAD_TEST_PAUSE");
  for (int p = PHASE_INDEX; pause_at && p <= PHASE_OUTPUT; p++)
    if (strcmp(pause_at, phase_names[p]) == 0) atomic_store(&pause_phase, p);

  base_ops = *emel_platform_default();
  emel_platform_ops ops = {.open = op_open, .pread = op_pread, .preadv = op_preadv, .map = op_map,
                           .advise = op_advise}; /* NULL entries: the defaults */
  emel_model_config config = {.platform = &ops};
  emel_model *model;
  emel_error err;
  enter_phase(PHASE_INDEX);
  if (emel_model_open(&model, o.file, &config, &err) != EMEL_OK) {
    if (atomic_load(&interrupted)) {
      fprintf(stderr, "emel-load: interrupted; everything released\n");
      return 130;
    }
    char detail[64] = "";
    if (err.os_errno) snprintf(detail, sizeof detail, " (%s)", strerror(err.os_errno));
    return load_error(o.file, err.code, detail);
  }
  emel_tensors *tensors = emel_model_tensors(model);
  uint32_t n = emel_tensors_count(tensors);
  uint64_t *hashes = o.verify ? calloc(n ? n : 1, sizeof *hashes) : NULL;
  if (o.verify && !hashes) {
    emel_model_close(model);
    return load_error(o.file, EMEL_OUT_OF_MEMORY, "");
  }
  uint64_t total = 0, all = 0;
  for (uint32_t i = 0; i < n; i++) {
    emel_tensor_info info;
    all += emel_tensors_info(tensors, i, &info)->span.size;
  }
  progress bar = {.enabled = !o.quiet && isatty(2), .start = now()};
  emel_load_options lo = {.strategy = o.strategy, .flags = o.flags};
  /* Test hook: deliver SIGINT to ourselves after N tensors, so the release-all
   * route on interruption is tested deterministically. */
  const char *sigint_after = getenv("EMEL_LOAD_TEST_SIGINT_AFTER");
  long raise_at = sigint_after ? strtol(sigint_after, NULL, 10) : -1;
  double start = now();
  enter_phase(PHASE_LOAD);
  /* Batches of consecutive tensors (emel_tensors_load_batch: coalesced, one
   * thread per core for the read strategy), cut at batch_bytes so the
   * progress bar moves and an interruption is seen between batches. */
  enum { LOAD_BATCH_TENSORS = EMEL_TENSOR_BATCH_WINDOW };
  const uint64_t batch_bytes = 512ull << 20;
  uint32_t indices[LOAD_BATCH_TENSORS];
  emel_status statuses[LOAD_BATCH_TENSORS];
  for (uint32_t i = 0; i < n && !atomic_load(&interrupted) && rc == 0;) {
    uint32_t count = 0;
    uint64_t bytes = 0;
    while (i + count < n && count < LOAD_BATCH_TENSORS && (count == 0 || bytes < batch_bytes)) {
      emel_tensor_info info;
      bytes += emel_tensors_info(tensors, i + count, &info)->span.size;
      indices[count] = i + count;
      count++;
    }
    (void)emel_tensors_load_batch(tensors, indices, count, &lo, statuses);
    for (uint32_t k = 0; k < count && rc == 0 && !atomic_load(&interrupted); k++) {
      if (statuses[k] != EMEL_OK) {
        emel_tensor_info info;
        emel_tensors_info(tensors, indices[k], &info);
        emel_error e = emel_tensors_last_error(tensors, indices[k]);
        char detail[400];
        snprintf(detail, sizeof detail, " (tensor %s%s%s)", info.name, e.os_errno ? ": " : "",
                 e.os_errno ? strerror(e.os_errno) : "");
        progress_end(&bar);
        rc = load_error(o.file, statuses[k], detail);
        break;
      }
      emel_tensor_view v;
      if (emel_tensors_view(tensors, indices[k], &v) == EMEL_OK) total += v.size;
    }
    progress_update(&bar, total, all);
    if (raise_at > (long)i && raise_at <= (long)(i + count)) raise(SIGINT);
    i += count;
  }
  double seconds = now() - start;
  progress_end(&bar);
  enter_phase(PHASE_VERIFY);
  XXH3_state_t *xxh = hashes ? XXH3_createState() : NULL;
  if (hashes && !xxh && rc == 0) rc = load_error(o.file, EMEL_OUT_OF_MEMORY, "");
  for (uint32_t i = 0; xxh && rc == 0 && !stop_requested() && i < n; i++) {
    emel_tensor_view v;
    if (emel_tensors_view(tensors, i, &v) == EMEL_OK) hashes[i] = hash_bytes(xxh, v.data, v.size);
  }
  XXH3_freeState(xxh);
  enter_phase(PHASE_OUTPUT);
  if (stop_requested()) rc = 130;
  errno = 0; /* so a write error emel_cli_finish_stdout no longer sees keeps its reason */
  if (rc == 0 && o.json) print_json(&o, model, hashes, total, seconds);
  if (rc == 0 && !o.json && !o.quiet) {
    double gbs = seconds > 0 ? (double)total / seconds / 1e9 : 0;
    printf("%s: %" PRIu32 " tensors, %" PRIu64 " bytes in %.3f s (%.2f GB/s), strategy %s%s%s%s\n", o.file, n, total,
           seconds, gbs, emel_strategy_name(o.strategy), (o.flags & EMEL_LOAD_POPULATE) ? ", populate" : "",
           (o.flags & EMEL_LOAD_DIRECT) ? ", direct" : "", o.verify ? ", verified (xxh3 per tensor)" : "");
  }
  if (rc == 0 && prints && emel_cli_finish_stdout("emel-load")) rc = 1;
  if (atomic_load(&interrupted)) rc = 130;
  enter_phase(PHASE_NONE); /* releasing is never cut short */
  emel_status released = emel_tensors_evict_all(tensors);
  emel_model_close(model);
  free(hashes);
  if (rc == 0 && released != EMEL_OK) rc = load_error(o.file, released, " (while releasing)");
  if (rc == 130) fprintf(stderr, "emel-load: interrupted; everything released\n");
  return rc;
}

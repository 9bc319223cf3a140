/* emel-load: makes every tensor of a GGUF model (or, with --shard, its
 * slice) resident with one strategy through a load job run in the
 * background, reports what it did and how fast, optionally hashes the bytes,
 * releases all.
 *
 *   emel-load [--strategy mmap|read|staged] [--populate] [--direct] [--budget SIZE] [--shard K/N]
 *             [--verify] [--expect MANIFEST.json] [--json] [--quiet] [--progress=bar|json|none]
 *             [--version] [FILE]
 *
 * Exit status: 0 loaded; 1 the model cannot be loaded (one line on stderr:
 * "emel-load: FILE: ERROR_NAME: message", then, for a split set, the part at
 * fault and the failed check: see emel_cli_open_error), or a tensor's hash
 * differs from the manifest's, or stdout cannot be written ("emel-load: write
 * error: REASON"); 2 usage (an unreadable or invalid manifest included); 130
 * interrupted (SIGINT, in any phase), after releasing everything.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_text.h"
#include "emel/io_read.h"
#include "emel/io_staged.h"
#include "emel/job.h"
#include "emel/model.h"
#include "emel/version.h"
#include "manifest.h"

#include <xxhash.h>

#ifndef EMEL_SAMPLE_MODEL
#define EMEL_SAMPLE_MODEL ""
#endif
#ifndef EMEL_SAMPLE_MODEL_FROM_BINDIR
#define EMEL_SAMPLE_MODEL_FROM_BINDIR ""
#endif

/* Atomic, not sig_atomic_t: the read strategy's lanes read it from their
 * threads (through the ops below), and a lock-free atomic is signal-safe. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the SIGINT flag must be lock-free");
static atomic_int interrupted;
/* The load job while one runs: the handler cancels it (emel_job_cancel is
 * async-signal-safe), so the job stops before its next unit of work. SIGINT
 * is blocked in the job's threads, so the handler runs on the main thread
 * only, and never while main destroys the job. */
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2, "the running job's pointer must be lock-free");
static _Atomic(emel_job *) running_job;

static void on_sigint(int sig) {
  (void)sig;
  atomic_store(&interrupted, 1);
  emel_job *job = atomic_load(&running_job);
  if (job) emel_job_cancel(job);
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

/* Test hook (EMEL_LOAD_TEST_SLOW_MS=N): each read, map or advice of the load
 * phase first waits N ms (less once interrupted), so a test has a load that
 * takes seconds, to watch its progress and interrupt it, without a big file. */
static long slow_ms;
/* Test hook (EMEL_LOAD_TEST_CANCEL_ONLY=1): in the load phase an interruption
 * neither refuses I/O nor shortens the waits above (a slow disk stays slow),
 * so only the job's cancel (emel_job_cancel from the handler) stops the load. */
static int cancel_only;

static int io_refused(void) {
  if (cancel_only && atomic_load(&current_phase) == PHASE_LOAD) return (void)stop_requested(), 0; /* pauses still */
  return stop_requested();
}

static void slow_down(void) {
  if (slow_ms <= 0 || atomic_load(&current_phase) != PHASE_LOAD) return;
  struct timespec tick = {0, 1000 * 1000};
  for (long i = 0; i < slow_ms && (cancel_only || !atomic_load(&interrupted)); i++) nanosleep(&tick, NULL);
}

static int op_open(void *user, const char *path, unsigned flags) {
  (void)user;
  return io_refused() ? -ECANCELED : base_ops.open(base_ops.user, path, flags);
}

static int64_t op_pread(void *user, int fd, void *buf, size_t len, uint64_t offset) {
  (void)user;
  slow_down();
  return io_refused() ? -ECANCELED : base_ops.pread(base_ops.user, fd, buf, len, offset);
}

static int64_t op_preadv(void *user, int fd, const emel_iovec *iov, int iovcnt, uint64_t offset) {
  (void)user;
  slow_down();
  return io_refused() ? -ECANCELED : base_ops.preadv(base_ops.user, fd, iov, iovcnt, offset);
}

static int op_map(void *user, int fd, uint64_t offset, size_t len, void **addr) {
  (void)user;
  slow_down();
  return io_refused() ? -ECANCELED : base_ops.map(base_ops.user, fd, offset, len, addr);
}

/* Releasing goes on when interrupted; these exist because a platform table
 * replaces an op and its pair together (open/close, map/unmap). */
static int op_close(void *user, int fd) {
  (void)user;
  return base_ops.close(base_ops.user, fd);
}

static int op_unmap(void *user, void *addr, size_t len) {
  (void)user;
  return base_ops.unmap(base_ops.user, addr, len);
}

static int op_advise(void *user, void *addr, size_t len, emel_map_advice advice) {
  (void)user;
  slow_down();
  return io_refused() ? -ECANCELED : base_ops.advise(base_ops.user, addr, len, advice);
}

/* The ring reads as pread does: refused once interrupted (so the load stops),
 * slowed by the test hook. Closing and waiting go on, as close does. */
static int ring_refusal; /* test hook EMEL_LOAD_TEST_RING_ERRNO=N: no ring opens (errno N), as without io_uring */

static int op_ring_open(void *user, unsigned depth, void **ring) {
  (void)user;
  if (ring_refusal > 0) return -ring_refusal;
  return io_refused() ? -ECANCELED : base_ops.ring_open(base_ops.user, depth, ring);
}

static int op_ring_close(void *user, void *ring) {
  (void)user;
  return base_ops.ring_close(base_ops.user, ring);
}

static int op_ring_read(void *user, void *ring, int fd, void *buf, size_t len, uint64_t offset, uint64_t tag) {
  (void)user;
  slow_down();
  return io_refused() ? -ECANCELED : base_ops.ring_read(base_ops.user, ring, fd, buf, len, offset, tag);
}

static int op_ring_wait(void *user, void *ring, unsigned min, emel_ring_completion *out, unsigned max) {
  (void)user;
  return base_ops.ring_wait(base_ops.user, ring, min, out, max);
}

/* How the read or staged strategy read (read_io): its ring (io_uring), or
 * pread where no ring could be opened (ring_errno says why) or none was asked for. */
typedef struct io_summary {
  const char *engine;
  uint64_t ring_reads, reads, ring_fallbacks, ring_errno, direct_reads, direct_fallbacks, direct_unaligned;
} io_summary;

static const char *engine_of(uint64_t ring_transfers, uint64_t ring_fallbacks) {
  if (ring_transfers == 0) return "pread";
  return ring_fallbacks ? "mixed" : "io_uring";
}

static int io_summary_of(emel_model *model, emel_strategy strategy, io_summary *out) {
  emel_io_read_stats rs;
  emel_io_staged_stats ss;
  if (strategy == EMEL_STRATEGY_READ && emel_io_read_stats_of(emel_model_io(model), &rs, NULL) == EMEL_OK) {
    *out = (io_summary){engine_of(rs.ring_runs, rs.ring_fallbacks), rs.ring_reads, rs.preads, rs.ring_fallbacks,
                        rs.ring_errno, rs.direct_reads, rs.direct_fallbacks, rs.direct_unaligned};
    return 1;
  }
  if (strategy == EMEL_STRATEGY_STAGED && emel_io_staged_stats_of(emel_model_io(model), &ss, NULL) == EMEL_OK) {
    *out = (io_summary){engine_of(ss.ring_windows, ss.ring_fallbacks), ss.ring_reads, ss.preads, ss.ring_fallbacks,
                        ss.ring_errno, ss.direct_reads, ss.direct_fallbacks, 0};
    return 1;
  }
  return 0;
}

static void enter_phase(phase p) { atomic_store(&current_phase, (int)p); }

/* --progress: AUTO is the bar when stderr is a terminal (none under --quiet). */
typedef enum progress_mode { PROGRESS_AUTO, PROGRESS_BAR, PROGRESS_JSON, PROGRESS_NONE } progress_mode;

typedef struct options {
  emel_strategy strategy;
  unsigned flags;
  int verify, json, quiet;
  progress_mode progress;
  const char *file;
  const char *expect; /* --expect MANIFEST: implies verify */
  uint32_t shard_rank, shard_count; /* --shard K/N; count 0: whole tensors */
  uint64_t budget; /* --budget: the staging ring's bytes (staged); 0: the library's default */
} options;

static void usage(FILE *f) {
  fprintf(f,
          "usage: emel-load [--strategy mmap|read|staged] [--populate] [--direct] [--budget SIZE]\n"
          "                 [--shard K/N] [--verify] [--expect MANIFEST.json] [--json] [--quiet]\n"
          "                 [--progress=bar|json|none] [--version] [FILE]\n"
          "  Makes every tensor of the GGUF model FILE resident, reports, then releases all.\n"
          "  With no FILE, loads the bundled sample model.\n"
          "  --strategy S  mmap (default: map the file, zero copy), read (copy into owned buffers) or\n"
          "                staged (hand each tensor window by window to a consumer through a bounded ring)\n"
          "  --populate    mmap: pre-fault every tensor's pages\n"
          "  --direct      read, staged: O_DIRECT, falling back to buffered reads where refused\n"
          "  --budget SIZE staged: the staging ring's total bytes (K, M, G suffixes: KiB, MiB, GiB;\n"
          "                default 64M): the most the load holds at once\n"
          "  --shard K/N   load only rank K's slice of N (0 <= K < N) of every tensor's outermost dimension\n"
          "  --verify      XXH3-64 of each tensor's resident bytes\n"
          "  --expect M    --verify, and compare each hash with the manifest M (--json --verify output)\n"
          "  --json        one JSON object on stdout\n"
          "  --quiet       no human summary, no progress bar\n"
          "  --progress=M  bar (on stderr; default when it is a terminal), json (one object per update\n"
          "                on stderr) or none\n"
          "  --version     print \"emel-load VERSION\" (the library's, emel_version()) and exit\n");
}

/* The installed sample, found from this executable's own directory (not from
 * the configured prefix), so an install made with --prefix, or moved after, finds
 * its own; else the build tree's. Empty when neither is readable. */
static const char *sample_model(const char *argv0, const char **tried) {
  static char path[PATH_MAX];
  const char *rel = EMEL_SAMPLE_MODEL_FROM_BINDIR;
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n > 0) {
    path[n] = '\0';
  } else if (strchr(argv0, '/') && strlen(argv0) < sizeof path) { /* no /proc: the path we were run by */
    strcpy(path, argv0);
  } else {
    path[0] = '\0';
  }
  char *end = strrchr(path, '/'); /* the directory, then each "../" taken off it: no "bin/.." in the output */
  while (end && end > path && strncmp(rel, "../", 3) == 0) {
    *end = '\0';
    end = strrchr(path, '/');
    rel += 3;
  }
  if (end && *rel && (size_t)(end - path) + 1 + strlen(rel) < sizeof path) {
    strcpy(end + 1, rel);
    *tried = path;
    if (access(path, R_OK) == 0) return path;
  }
  return *EMEL_SAMPLE_MODEL && access(EMEL_SAMPLE_MODEL, R_OK) == 0 ? EMEL_SAMPLE_MODEL : "";
}

/* A decimal uint32 from s up to `end`: digits only, no sign, no overflow. */
static int parse_u32(const char *s, const char *end, uint32_t *out) {
  uint64_t v = 0;
  if (s == end) return -1;
  for (; s < end; s++) {
    if (*s < '0' || *s > '9') return -1;
    v = v * 10 + (uint64_t)(*s - '0');
    if (v > UINT32_MAX) return -1;
  }
  *out = (uint32_t)v;
  return 0;
}

/* --budget SIZE: decimal bytes with an optional K, M or G (KiB, MiB, GiB; a
 * trailing "iB" or "B" is allowed), above 0 and without overflow. */
static int parse_size(const char *arg, uint64_t *out) {
  uint64_t v = 0;
  const char *s = arg;
  if (*s < '0' || *s > '9') return -1;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > (UINT64_MAX - 9) / 10) return -1;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  unsigned shift = 0;
  if (*s == 'K' || *s == 'k') shift = 10, s++;
  else if (*s == 'M' || *s == 'm') shift = 20, s++;
  else if (*s == 'G' || *s == 'g') shift = 30, s++;
  if (shift && strcmp(s, "iB") == 0) s += 2;
  else if (strcmp(s, "B") == 0) s++;
  if (*s != '\0' || v == 0 || v > (UINT64_MAX >> shift)) return -1;
  *out = v << shift;
  return 0;
}

/* --shard K/N: the library's own rule (EMEL_INVALID_SHARD) checked before
 * anything is opened, as a usage error; N = 0 is refused here too, though the
 * library reads a count of 0 as "whole tensors". */
static int parse_shard(const char *arg, options *o) {
  const char *slash = strchr(arg, '/');
  uint32_t k, n;
  if (!slash || parse_u32(arg, slash, &k) != 0 || parse_u32(slash + 1, slash + strlen(slash), &n) != 0) {
    fprintf(stderr, "emel-load: --shard '%s': expected K/N, two decimal numbers below 2^32\n", arg);
    return 2;
  }
  if (n == 0 || k >= n) {
    fprintf(stderr, "emel-load: --shard '%s': %s: the rank K must be below the count N (0 <= K < N)\n", arg,
            emel_status_name(EMEL_INVALID_SHARD));
    return 2;
  }
  o->shard_rank = k;
  o->shard_count = n;
  return 0;
}

static int parse(int argc, char **argv, options *o) {
  static const struct option longs[] = {
      {"strategy", required_argument, NULL, 's'}, {"populate", no_argument, NULL, 'p'},
      {"direct", no_argument, NULL, 'd'},         {"verify", no_argument, NULL, 'v'},
      {"json", no_argument, NULL, 'j'},           {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},           {"expect", required_argument, NULL, 'e'},
      {"version", no_argument, NULL, 'V'},         {"shard", required_argument, NULL, 'S'},
      {"progress", required_argument, NULL, 'P'}, {"budget", required_argument, NULL, 'B'},
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
      else if (strcmp(optarg, "staged") == 0) o->strategy = EMEL_STRATEGY_STAGED;
      else {
        fprintf(stderr, "emel-load: unknown strategy '%s' (mmap, read or staged)\n", optarg);
        return 2;
      }
      break;
    case 'p': o->flags |= EMEL_LOAD_POPULATE; break;
    case 'S':
      if (parse_shard(optarg, o) != 0) return 2;
      break;
    case 'd': o->flags |= EMEL_LOAD_DIRECT; break;
    case 'B':
      if (parse_size(optarg, &o->budget) != 0) {
        fprintf(stderr, "emel-load: --budget '%s': expected a size in bytes, with an optional K, M or G (1024-based)\n",
                optarg);
        return 2;
      }
      break;
    case 'v': o->verify = 1; break;
    case 'e': o->expect = optarg, o->verify = 1; break;
    case 'j': o->json = 1; break;
    case 'q': o->quiet = 1; break;
    case 'P':
      if (strcmp(optarg, "bar") == 0) o->progress = PROGRESS_BAR;
      else if (strcmp(optarg, "json") == 0) o->progress = PROGRESS_JSON;
      else if (strcmp(optarg, "none") == 0) o->progress = PROGRESS_NONE;
      else {
        fprintf(stderr, "emel-load: unknown progress '%s' (bar, json or none)\n", optarg);
        return 2;
      }
      break;
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
  if ((o->flags & EMEL_LOAD_DIRECT) && o->strategy != EMEL_STRATEGY_READ && o->strategy != EMEL_STRATEGY_STAGED) {
    fprintf(stderr, "emel-load: --direct goes with --strategy read or staged\n");
    return 2;
  }
  if (o->budget && o->strategy != EMEL_STRATEGY_STAGED) {
    fprintf(stderr, "emel-load: --budget goes with --strategy staged\n");
    return 2;
  }
  if (optind < argc && argv[optind][0] == '\0') {
    fprintf(stderr, "emel-load: FILE is empty (give a path, or no FILE for the bundled sample)\n");
    usage(stderr);
    return 2;
  }
  const char *tried = "BINDIR/" EMEL_SAMPLE_MODEL_FROM_BINDIR;
  o->file = optind < argc ? argv[optind] : sample_model(argv[0], &tried);
  if (!*o->file) {
    fprintf(stderr, "emel-load: no FILE given and no bundled sample model at %s\n", tried);
    return 2;
  }
  return 0;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Progress on stderr, at most every PROGRESS_INTERVAL and once at the end:
 * the bar (redrawn 20 times a second, so at least 10 updates a second show,
 * and only once the load has taken half a second: a quick load draws
 * nothing), or one JSON object a line for scripts. */
#define PROGRESS_INTERVAL 0.05

typedef struct progress {
  progress_mode mode; /* BAR, JSON or NONE once resolved */
  double start, last;
  int drawn, width; /* width: the longest bar line drawn, to blank it */
} progress;

/* S bytes as "12.3 MB" or "1.23 GB" (decimal, as the summary's GB/s). */
static const char *human(char *buf, size_t size, double bytes) {
  if (bytes >= 1e9) snprintf(buf, size, "%.2f GB", bytes / 1e9);
  else snprintf(buf, size, "%.1f MB", bytes / 1e6);
  return buf;
}

static void progress_show(progress *p, const emel_job_progress *jp, int final) {
  if (p->mode == PROGRESS_NONE) return;
  double t = now();
  if (!final && t - p->last < PROGRESS_INTERVAL) return;
  if (p->mode == PROGRESS_BAR && (jp->bytes_total == 0 || t - p->start < 0.5)) return;
  p->last = t;
  if (p->mode == PROGRESS_JSON) {
    fprintf(stderr,
            "{\"done_bytes\":%" PRIu64 ",\"total_bytes\":%" PRIu64 ",\"done_tensors\":%" PRIu32
            ",\"total_tensors\":%" PRIu32 ",\"seconds\":%.3f}\n",
            jp->bytes_done, jp->bytes_total, jp->tensors_done, jp->tensors_total, t - p->start);
    return;
  }
  if (final) return; /* the bar is wiped at the end, not drawn full */
  double done = (double)jp->bytes_done, total = (double)jp->bytes_total;
  double rate = jp->bytes_per_second > 0 ? jp->bytes_per_second : 0;
  int width = 20, fill = (int)(done / total * width); /* the whole line fits 80 columns */
  char d[32], a[32], r[32], eta[32] = "ETA -";
  if (rate > 0) snprintf(eta, sizeof eta, "ETA %.1f s", (total - done) / rate);
  int len = fprintf(stderr, "\r[%.*s%*s] %5.1f%% %s / %s, %s/s, %s", fill, "####################",
                    width - fill, "", 100.0 * done / total, human(d, sizeof d, done), human(a, sizeof a, total),
                    human(r, sizeof r, rate), eta);
  if (len > 0 && len < p->width) fprintf(stderr, "%*s", p->width - len, ""); /* a shorter line: blank the rest */
  if (len > p->width) p->width = len;
  p->drawn = 1;
}

static void progress_end(progress *p) {
  if (p->drawn) fprintf(stderr, "\r%*s\r", p->width, "");
  p->drawn = 0;
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
                       double seconds, double verify_seconds, int mapped_only, const io_summary *rs) {
  const emel_gguf *g = emel_model_index(model);
  emel_tensors *tensors = emel_model_tensors(model);
  size_t n = emel_gguf_tensor_count(g);
  putchar('{');
  emel_cli_json_name(stdout, "file", o->file, strlen(o->file), ":", ",");
  printf(",\"strategy\":\"%s\",\"options\":{\"populate\":%s,\"direct\":%s,\"verify\":%s",
         emel_strategy_name(o->strategy), (o->flags & EMEL_LOAD_POPULATE) ? "true" : "false",
         (o->flags & EMEL_LOAD_DIRECT) ? "true" : "false", o->verify ? "true" : "false");
  /* The staging ring's bytes (null for the other strategies). */
  if (o->strategy == EMEL_STRATEGY_STAGED) printf(",\"budget\":%" PRIu64 "}", o->budget);
  else printf(",\"budget\":null}");
  if (o->shard_count) printf(",\"shard\":{\"rank\":%" PRIu32 ",\"count\":%" PRIu32 "}", o->shard_rank, o->shard_count);
  else printf(",\"shard\":null");
  printf(",\"tensor_count\":%zu,\"total_bytes\":%" PRIu64 ",\"seconds\":%.6f", n, total, seconds);
  /* seconds is the load alone; hashing is timed apart. mapped_only: the load
   * read no byte (a plain mmap), so bytes / seconds is no throughput. */
  printf(",\"verify_seconds\":%.6f,\"mapped_only\":%s", verify_seconds, mapped_only ? "true" : "false");
  /* read_io: how the read or staged strategy read (null for mmap). A ring that
   * could not be opened (no io_uring) is reported as O_DIRECT's fallback is. */
  if (rs)
    printf(",\"read_io\":{\"engine\":\"%s\",\"ring_reads\":%" PRIu64 ",\"reads\":%" PRIu64
           ",\"ring_fallbacks\":%" PRIu64 ",\"ring_errno\":%" PRIu64 ",\"direct_reads\":%" PRIu64
           ",\"direct_fallbacks\":%" PRIu64 ",\"direct_unaligned\":%" PRIu64 "}",
           rs->engine, rs->ring_reads, rs->reads, rs->ring_fallbacks, rs->ring_errno, rs->direct_reads,
           rs->direct_fallbacks, rs->direct_unaligned);
  else
    printf(",\"read_io\":null");
  printf(",\"tensors\":[");
  for (size_t i = 0; i < n && !stop_requested(); i++) {
    const emel_gguf_tensor *t = emel_gguf_tensor_at(g, i);
    printf("%s{", i ? "," : "");
    emel_cli_json_name(stdout, "name", t->name, t->name_len, ":", ",");
    printf(",\"type\":\"%s\",\"dims\":[", emel_ggml_type_name(t->type));
    for (uint32_t d = 0; d < t->n_dims; d++) printf("%s%" PRIu64, d ? "," : "", t->ne[d]);
    /* Every tensor is resident here (the model's table has the index's order):
     * bytes and rows are what was loaded, the slice under --shard. */
    emel_tensor_view v = {0};
    (void)emel_tensors_view(tensors, (uint32_t)i, &v, NULL);
    printf("],\"offset\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"shard_rows\":[%" PRIu64 ",%" PRIu64
           "],\"file_index\":%" PRIu32,
           t->offset, v.size, v.row_begin, v.row_end, t->file_index);
    if (hashes) printf(",\"xxh3\":\"%016" PRIx64 "\"", hashes[i]);
    putchar('}');
  }
  printf("]}\n");
}

/* A tensor name on an error line: control bytes as \xHH, so one tensor stays one line. */
static void print_name(FILE *f, const char *name, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    if (c < 0x20 || c == 0x7f || c == '\\') fprintf(f, "\\x%02x", c);
    else fputc(c, f);
  }
}

/* Hashes every resident tensor (emel_tensors_hash: mapped bytes are read
 * under the library's SIGBUS guard). 0, or the exit status after the error line. */
static int hash_all(const options *o, emel_tensors *tensors, uint32_t n, uint64_t *hashes) {
  for (uint32_t i = 0; i < n && !stop_requested(); i++) {
    emel_status s = emel_tensors_hash(tensors, i, &hashes[i], NULL);
    if (s == EMEL_OK) continue;
    emel_tensor_info info;
    emel_tensors_info(tensors, i, &info);
    emel_error e = emel_tensors_last_error(tensors, i);
    char detail[400];
    /* EFAULT says only that a page could not be read; say what it means. */
    const char *why = s == EMEL_FILE_CHANGED ? "its pages are no longer in the file"
                      : e.os_errno          ? strerror(e.os_errno)
                                            : "";
    snprintf(detail, sizeof detail, " (tensor %s, while verifying%s%s)", info.name, *why ? ": " : "", why);
    return load_error(o->file, s, detail);
  }
  return 0;
}

/* Every tensor's hash against the manifest, and every manifest entry against
 * the file: one line per difference, then a summary. 0 when all match. */
static int compare_with_manifest(const options *o, emel_tensors *tensors, uint32_t n, const uint64_t *hashes,
                                 manifest *expected) {
  uint64_t differ = 0, unlisted = 0, absent = 0;
  const char *mismatch = emel_status_name(EMEL_TENSOR_HASH_MISMATCH);
  for (uint32_t i = 0; i < n; i++) {
    emel_tensor_info info;
    emel_tensors_info(tensors, i, &info);
    manifest_entry *e = manifest_find(expected, info.name, info.name_len);
    if (e) e->seen = 1;
    if (e && e->xxh3 == hashes[i]) continue;
    fprintf(stderr, "emel-load: %s: %s: tensor ", o->file, mismatch);
    print_name(stderr, info.name, info.name_len);
    if (e) fprintf(stderr, ": expected %016" PRIx64 ", got %016" PRIx64 "\n", e->xxh3, hashes[i]);
    else fprintf(stderr, ": not in the manifest, got %016" PRIx64 "\n", hashes[i]);
    differ += e != NULL;
    unlisted += e == NULL;
  }
  for (size_t k = 0; k < expected->count; k++) {
    if (expected->entries[k].seen) continue;
    fprintf(stderr, "emel-load: %s: %s: tensor ", o->file, emel_status_name(EMEL_TENSOR_UNKNOWN));
    print_name(stderr, expected->entries[k].name, expected->entries[k].name_len);
    fprintf(stderr, ": in the manifest, not in the file\n");
    absent++;
  }
  if (differ + unlisted + absent == 0) return 0;
  fprintf(stderr,
          "emel-load: %s: does not match %s: %" PRIu64 " of %" PRIu32 " tensors differ, %" PRIu64
          " not in the manifest, %" PRIu64 " only in the manifest",
          o->file, o->expect, differ, n, unlisted, absent);
  /* A slice's hash is not its tensor's: say which manifest could match. */
  if (o->shard_count)
    fprintf(stderr, " (hashes of shard %" PRIu32 "/%" PRIu32 "'s slices: the manifest must be made with the same --shard)",
            o->shard_rank, o->shard_count);
  fputc('\n', stderr);
  return 1;
}

/* The built-in consumer of --strategy staged: with --verify, each tensor's
 * XXH3-64 streamed window by window (a tensor's windows come in order and one
 * tensor at a time, so one state serves all), equal to what emel_tensors_hash
 * gives the other strategies' bytes; without it the windows are only read. */
typedef struct staged_sink {
  uint64_t *hashes; /* NULL: no --verify */
  XXH3_state_t *state;
} staged_sink;

static int staged_consume(void *user, uint32_t tensor, uint64_t offset, uint64_t bytes, const void *data) {
  staged_sink *sink = user;
  if (!sink->hashes) return 0;
  if (offset == 0 && XXH3_64bits_reset(sink->state) != XXH_OK) return EMEL_INTERNAL;
  if (XXH3_64bits_update(sink->state, data, (size_t)bytes) != XXH_OK) return EMEL_INTERNAL;
  sink->hashes[tensor] = XXH3_64bits_digest(sink->state); /* so far: the last window's is the tensor's */
  return 0;
}

/* A failed tensor's error line: its name and the OS error. Returns 1. */
static int tensor_error(const options *o, emel_tensors *tensors, uint32_t index, emel_status code, int os_errno) {
  emel_tensor_info info;
  emel_tensors_info(tensors, index, &info);
  char detail[400];
  /* A consumer's failure carries its own code in os_errno, not an errno. */
  const int is_errno = os_errno && code != EMEL_STAGED_CONSUMER_FAILED;
  snprintf(detail, sizeof detail, " (tensor %s%s%s)", info.name, is_errno ? ": " : "", is_errno ? strerror(os_errno) : "");
  return load_error(o->file, code, detail);
}

/* Every tensor through one load job on a thread of its own (in units of
 * EMEL_JOB_DEFAULT_CHUNK: the read strategy's lanes still copy in parallel),
 * while this thread waits on its descriptor with poll(2), waking at least
 * every PROGRESS_INTERVAL to draw progress. SIGINT cancels it (on_sigint).
 * Where no thread can be had, the job is stepped here instead. */
static int load_with_job(const options *o, emel_tensors *tensors, const emel_load_options *lo, progress *bar,
                         long raise_at) {
  emel_job_config config = EMEL_JOB_CONFIG_INIT(.options = lo);
  emel_job *job;
  emel_error err;
  if (emel_job_create(&job, tensors, &config, &err) != EMEL_OK) {
    if (err.tensor) return tensor_error(o, tensors, err.tensor - 1, err.code, err.os_errno);
    return load_error(o->file, err.code, "");
  }
  atomic_store(&running_job, job);
  /* The job's thread, and the lanes it starts, inherit a mask without SIGINT. */
  sigset_t sigint, old;
  sigemptyset(&sigint);
  sigaddset(&sigint, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigint, &old);
  const int background = emel_job_start(job, NULL) == EMEL_OK;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  const int fd = emel_job_fd(job);
  int raised = 0;
  emel_job_state st;
  for (;;) {
    emel_job_progress jp = EMEL_JOB_PROGRESS_INIT();
    st = emel_job_poll(job, &jp);
    const int finished = st >= EMEL_JOB_COMPLETED;
    progress_show(bar, &jp, finished);
    if (raise_at >= 0 && !raised && (long)jp.tensors_done >= raise_at) raised = 1, raise(SIGINT);
    if (finished) break;
    if (!background) {
      (void)emel_job_step(job, EMEL_JOB_DEFAULT_CHUNK, NULL, NULL);
      continue;
    }
    double left = PROGRESS_INTERVAL - (now() - bar->last);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, left > 0 ? (int)(left * 1000) + 1 : 1) > 0) {
      uint64_t count; /* drained, so the next unit wakes us again (EAGAIN: another reader got it) */
      ssize_t got = read(fd, &count, sizeof count);
      (void)got;
    }
  }
  progress_end(bar);
  int rc = 0;
  if (st != EMEL_JOB_COMPLETED && !atomic_load(&interrupted)) {
    emel_status s = emel_job_result(job, &err);
    rc = err.tensor ? tensor_error(o, tensors, err.tensor - 1, s, err.os_errno) : load_error(o->file, s, "");
  }
  atomic_store(&running_job, NULL); /* the handler runs on this thread: it no longer sees the job */
  emel_job_destroy(job);
  return rc;
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
  /* Read before the load: a bad manifest is refused without loading anything. */
  manifest expected = {0};
  char why[256];
  if (o.expect && manifest_read(o.expect, &expected, why, sizeof why) != 0) {
    fprintf(stderr, "emel-load: --expect %s: %s\n", o.expect, why);
    return 2;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint; /* no SA_RESTART: a blocked call returns EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  const char *pause_at = getenv("EMEL_LOAD_TEST_PAUSE"), *slow = getenv("EMEL_LOAD_TEST_SLOW_MS");
  slow_ms = slow ? strtol(slow, NULL, 10) : 0;
  cancel_only = getenv("EMEL_LOAD_TEST_CANCEL_ONLY") != NULL;
  const char *ring_errno = getenv("EMEL_LOAD_TEST_RING_ERRNO");
  ring_refusal = ring_errno ? (int)strtol(ring_errno, NULL, 10) : 0;
  for (int p = PHASE_INDEX; pause_at && p <= PHASE_OUTPUT; p++)
    if (strcmp(pause_at, phase_names[p]) == 0) atomic_store(&pause_phase, p);

  base_ops = *emel_platform_default();
  emel_platform_ops ops = EMEL_PLATFORM_OPS_INIT(.open = op_open, .close = op_close, .pread = op_pread,
                                                 .preadv = op_preadv, .map = op_map, .unmap = op_unmap,
                                                 .advise = op_advise, .ring_open = op_ring_open,
                                                 .ring_close = op_ring_close, .ring_read = op_ring_read,
                                                 .ring_wait = op_ring_wait); /* NULL entries: the defaults */
  emel_model_config config = EMEL_MODEL_CONFIG_INIT(.platform = &ops);
  emel_model *model;
  emel_error err;
  enter_phase(PHASE_INDEX);
  if (emel_model_open(&model, o.file, &config, &err) != EMEL_OK) {
    manifest_free(&expected);
    if (atomic_load(&interrupted)) {
      fprintf(stderr, "emel-load: interrupted; everything released\n");
      return 130;
    }
    return emel_cli_open_error("emel-load", o.file, &err);
  }
  emel_tensors *tensors = emel_model_tensors(model);
  uint32_t n = emel_tensors_count(tensors);
  uint64_t *hashes = o.verify ? calloc(n ? n : 1, sizeof *hashes) : NULL;
  const int staged = o.strategy == EMEL_STRATEGY_STAGED;
  staged_sink sink = {.hashes = hashes, .state = staged && hashes ? XXH3_createState() : NULL};
  if ((o.verify && !hashes) || (staged && hashes && !sink.state)) {
    XXH3_freeState(sink.state);
    free(hashes);
    emel_model_close(model);
    manifest_free(&expected);
    return load_error(o.file, EMEL_OUT_OF_MEMORY, "");
  }
  /* An empty slice is never consumed: its hash is that of no bytes, as emel_tensors_hash gives. */
  for (uint32_t i = 0; hashes && i < n; i++) hashes[i] = XXH3_64bits(NULL, 0);
  if (staged) { /* the model attaches mmap and read; the staging ring is emel-load's choice */
    if (!o.budget) o.budget = EMEL_IO_STAGED_DEFAULT_BUDGET;
    emel_io_staged_config sc = EMEL_IO_STAGED_CONFIG_INIT(.budget = o.budget);
    emel_status s = emel_io_staged_attach(emel_model_io(model), &sc, &err);
    if (s != EMEL_OK) {
      XXH3_freeState(sink.state);
      free(hashes);
      emel_model_close(model);
      manifest_free(&expected);
      return load_error(o.file, s, s == EMEL_INVALID_ARGUMENT ? " (--budget: each of the ring's 4 buffers needs two pages)" : "");
    }
  }
  const emel_staged_consumer consumer = EMEL_STAGED_CONSUMER_INIT(.consume = staged_consume, .user = &sink);
  uint64_t total = 0;
  progress bar = {.mode = o.progress, .start = now()};
  if (bar.mode == PROGRESS_AUTO) bar.mode = !o.quiet && isatty(2) ? PROGRESS_BAR : PROGRESS_NONE;
  emel_load_options lo = EMEL_LOAD_OPTIONS_INIT(.strategy = o.strategy, .flags = o.flags,
                                                .shard_rank = o.shard_rank, .shard_count = o.shard_count,
                                                .consumer = staged ? &consumer : NULL);
  /* Test hook: deliver SIGINT to ourselves after N tensors, so the release-all
   * route on interruption is tested deterministically. */
  const char *sigint_after = getenv("EMEL_LOAD_TEST_SIGINT_AFTER");
  long raise_at = sigint_after ? strtol(sigint_after, NULL, 10) : -1;
  double start = now();
  enter_phase(PHASE_LOAD);
  /* Under --shard too: the job loads the slices. A staged job consumes on its own thread, one tensor a unit. */
  rc = load_with_job(&o, tensors, &lo, &bar, raise_at);
  for (uint32_t i = 0; i < n && rc == 0; i++) { /* what was loaded */
    emel_tensor_view v;
    if (emel_tensors_view(tensors, i, &v, NULL) == EMEL_OK) total += v.size;
  }
  double seconds = now() - start;
  enter_phase(PHASE_VERIFY);
  /* Test hook: cut FILE to N bytes between the load and the hashing, so a
   * file truncated under a mapped load is tested deterministically. */
  const char *cut = getenv("EMEL_LOAD_TEST_TRUNCATE_BEFORE_VERIFY");
  if (cut && hashes && rc == 0 && truncate(o.file, (off_t)strtoll(cut, NULL, 10)) != 0) perror("emel-load: test truncate");
  double verify_start = now();
  /* Staged: the consumer hashed each window as it went by (the library keeps no bytes to hash). */
  if (hashes && !staged && rc == 0 && !stop_requested()) rc = hash_all(&o, tensors, n, hashes);
  double verify_seconds = hashes ? now() - verify_start : 0;
  enter_phase(PHASE_OUTPUT);
  if (stop_requested()) rc = 130;
  if (rc == 0 && o.expect) rc = compare_with_manifest(&o, tensors, n, hashes, &expected);
  /* A plain mmap load maps and reads nothing: its bytes per second would be
   * the page-table setup's, not a throughput. */
  const int mapped_only = o.strategy == EMEL_STRATEGY_MMAP && !(o.flags & EMEL_LOAD_POPULATE);
  errno = 0; /* so a write error emel_cli_finish_stdout no longer sees keeps its reason */
  io_summary read_stats;
  const int read_known = io_summary_of(model, o.strategy, &read_stats);
  if (rc == 0 && o.json)
    print_json(&o, model, hashes, total, seconds, verify_seconds, mapped_only, read_known ? &read_stats : NULL);
  if (rc == 0 && !o.json && !o.quiet) {
    char rate[64] = "mapped, not read", checked[160] = "";
    if (!mapped_only) snprintf(rate, sizeof rate, "%.2f GB/s", seconds > 0 ? (double)total / seconds / 1e9 : 0);
    if (o.verify && staged) /* hashed by the consumer as the windows went by: no time of its own */
      snprintf(checked, sizeof checked, ", verified (xxh3 per tensor, streamed while loading)%s",
               o.expect ? ", matches the manifest" : "");
    else if (o.verify)
      snprintf(checked, sizeof checked, ", verified (xxh3 per tensor) in %.3f s (%.2f GB/s)%s", verify_seconds,
               verify_seconds > 0 ? (double)total / verify_seconds / 1e9 : 0, o.expect ? ", matches the manifest" : "");
    char shard[96] = "", engine[96] = "", budget[64] = "";
    if (read_known && read_stats.ring_fallbacks)
      snprintf(engine, sizeof engine, ", %s (no io_uring: %s)", read_stats.engine,
               strerror((int)read_stats.ring_errno));
    else if (read_known)
      snprintf(engine, sizeof engine, ", %s", read_stats.engine);
    if (staged && o.budget % (1u << 20) == 0) snprintf(budget, sizeof budget, ", budget %" PRIu64 " MiB", o.budget >> 20);
    else if (staged) snprintf(budget, sizeof budget, ", budget %" PRIu64 " bytes", o.budget);
    if (o.shard_count)
      snprintf(shard + strlen(shard), sizeof shard - strlen(shard), ", shard %" PRIu32 "/%" PRIu32, o.shard_rank,
               o.shard_count);
    emel_cli_text(stdout, o.file, strlen(o.file)); /* one line, whatever the name holds */
    printf(": %" PRIu32 " tensors, %" PRIu64 " bytes in %.3f s (%s), strategy %s%s%s%s%s%s%s\n", n, total, seconds,
           rate, emel_strategy_name(o.strategy), (o.flags & EMEL_LOAD_POPULATE) ? ", populate" : "",
           (o.flags & EMEL_LOAD_DIRECT) ? ", direct" : "", budget, engine, shard, checked);
  }
  if (rc == 0 && prints && emel_cli_finish_stdout("emel-load")) rc = 1;
  if (atomic_load(&interrupted)) rc = 130;
  enter_phase(PHASE_NONE); /* releasing is never cut short */
  emel_status released = emel_tensors_evict_all(tensors, NULL);
  emel_model_close(model);
  free(hashes);
  XXH3_freeState(sink.state);
  manifest_free(&expected);
  if (rc == 0 && released != EMEL_OK) rc = load_error(o.file, released, " (while releasing)");
  if (rc == 130) fprintf(stderr, "emel-load: interrupted; everything released\n");
  return rc;
}

/* Replays inputs through every fuzz target without libFuzzer.
 *
 * Why: a crash once found must stay fixed, in every build (gcc, ASan,
 * valgrind), not only where clang's libFuzzer exists. Each target's
 * LLVMFuzzerTestOneInput is compiled under its own name (emel_fuzz_NAME, see
 * CMakeLists.txt), so one executable holds them all. Arguments are files or
 * directories; a directory is replayed with its subdirectories (one level:
 * corpus/TARGET/FILE). Every input goes through every target: all targets
 * accept arbitrary bytes. A failing invariant aborts, naming the input first.
 *
 * Usage: test_fuzz_regressions PATH...   (e.g. a crash file, to reproduce it) */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EMEL_FUZZ_TARGET(name) int emel_fuzz_##name(const uint8_t *data, size_t size);
#include "fuzz_targets.h"
#undef EMEL_FUZZ_TARGET

static const struct {
  const char *name;
  int (*run)(const uint8_t *data, size_t size);
} targets[] = {
#define EMEL_FUZZ_TARGET(name) {#name, emel_fuzz_##name},
#include "fuzz_targets.h"
#undef EMEL_FUZZ_TARGET
};

static size_t replayed;

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  size_t cap = 1 << 16, len = 0, n;
  uint8_t *buf = malloc(cap);
  while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      uint8_t *nb = realloc(buf, cap *= 2);
      if (!nb) free(buf);
      buf = nb;
    }
  }
  fclose(f);
  if (!buf) {
    fprintf(stderr, "%s: out of memory\n", path);
    return 1;
  }
  for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
    fprintf(stderr, "%s <- %s\n", targets[t].name, path); /* the last line before a crash names it */
    /* a copy of exactly `len` bytes, so ASan sees reads past the input */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) return 1;
    memcpy(exact, buf, len);
    targets[t].run(exact, len);
    free(exact);
  }
  free(buf);
  replayed++;
  return 0;
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Replays a directory's entries in name order (deterministic logs). */
static int replay_dir(const char *dir, int depth) {
  DIR *d = opendir(dir);
  if (!d) {
    perror(dir);
    return 1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  int failed = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.') continue; /* ., .., and hidden files like .gitkeep */
    if (n == cap) {
      char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
      if (!nn) break;
      names = nn;
    }
    size_t size = strlen(dir) + strlen(e->d_name) + 2;
    if (!(names[n] = malloc(size))) break;
    snprintf(names[n++], size, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, name_cmp);
  for (size_t i = 0; i < n; i++) {
    if (is_dir(names[i])) {
      if (depth > 0) failed |= replay_dir(names[i], depth - 1);
    } else {
      failed |= replay_file(names[i]);
    }
    free(names[i]);
  }
  free(names);
  return failed;
}

int main(int argc, char **argv) {
  int failed = 0;
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE-OR-DIR...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; i++) failed |= is_dir(argv[i]) ? replay_dir(argv[i], 1) : replay_file(argv[i]);
  printf("replayed %zu inputs through %zu targets\n", replayed, sizeof targets / sizeof targets[0]);
  if (replayed == 0) {
    fprintf(stderr, "no inputs found\n");
    return 1;
  }
  return failed;
}

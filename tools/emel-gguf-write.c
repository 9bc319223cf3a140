/* emel-gguf-write: writes a synthetic llama-shaped GGUF model (or split set)
 * with deterministic tensor bytes, for tests and benchmarks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_writer.h"

static void usage(void) {
  fprintf(stderr,
          "usage: emel-gguf-write [--tensors N] [--bytes S] [--type f16|q4_0|...|mixed] [--alignment A]\n"
          "                       [--splits K] [--seed X] [--version 2|3] OUT.gguf\n");
}

static int parse_u64(const char *s, unsigned long long *v) {
  char *end;
  *v = strtoull(s, &end, 0);
  if (end == s) return -1;
  unsigned long long mul = 1; /* optional K/M/G suffix for sizes */
  if (*end == 'K' || *end == 'k') mul = 1ull << 10, end++;
  else if (*end == 'M' || *end == 'm') mul = 1ull << 20, end++;
  else if (*end == 'G' || *end == 'g') mul = 1ull << 30, end++;
  *v *= mul;
  return *end == '\0' ? 0 : -1;
}

static const uint32_t mixed[] = {EMEL_GGML_TYPE_Q4_K, EMEL_GGML_TYPE_Q6_K, EMEL_GGML_TYPE_Q8_0, EMEL_GGML_TYPE_F16,
                                 EMEL_GGML_TYPE_Q4_0, EMEL_GGML_TYPE_Q5_K, EMEL_GGML_TYPE_IQ4_XS, EMEL_GGML_TYPE_Q2_K,
                                 EMEL_GGML_TYPE_BF16, EMEL_GGML_TYPE_Q5_0, EMEL_GGML_TYPE_Q3_K, EMEL_GGML_TYPE_MXFP4};

typedef struct opts {
  unsigned long long tensors, bytes, alignment, splits, seed, version;
  const char *type, *out;
} opts;

static int parse_args(int argc, char **argv, opts *o) {
  *o = (opts){16, 16ull << 20, 32, 1, 0, 3, "f16", NULL};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    unsigned long long *dst = NULL;
    if (!strcmp(a, "--tensors")) dst = &o->tensors;
    else if (!strcmp(a, "--bytes")) dst = &o->bytes;
    else if (!strcmp(a, "--alignment")) dst = &o->alignment;
    else if (!strcmp(a, "--splits")) dst = &o->splits;
    else if (!strcmp(a, "--seed")) dst = &o->seed;
    else if (!strcmp(a, "--version")) dst = &o->version;
    else if (!strcmp(a, "--type") && i + 1 < argc) { o->type = argv[++i]; continue; }
    else if (a[0] == '-' || o->out) return -1;
    else { o->out = a; continue; }
    if (i + 1 >= argc || parse_u64(argv[++i], dst) != 0) return -1;
  }
  if (!o->out || o->splits < 1 || o->splits > 99999 || o->tensors > 0xffffffffull) return -1;
  return 0;
}

static int build(gw *w, const opts *o) {
  uint32_t one;
  const uint32_t *types = mixed;
  size_t n_types = sizeof mixed / sizeof mixed[0];
  if (strcmp(o->type, "mixed") != 0) {
    if (emel_ggml_type_from_name(o->type, &one) != EMEL_OK) {
      fprintf(stderr, "emel-gguf-write: unknown type %s\n", o->type);
      return -1;
    }
    types = &one;
    n_types = 1;
  }
  gw_set_version(w, (uint32_t)o->version);
  gw_set_seed(w, o->seed);
  gw_kv_str(w, "general.architecture", "llama");
  gw_kv_str(w, "general.name", "emel-synthetic");
  if (o->alignment != 32) gw_set_alignment(w, (uint32_t)o->alignment);
  gw_kv_u64(w, "emel.seed", o->seed);
  if (gw_model_shape(w, (uint32_t)o->tensors, o->bytes, types, n_types) != 0) {
    fprintf(stderr, "emel-gguf-write: cannot shape %llu tensors\n", o->tensors);
    return -1;
  }
  return 0;
}

static int write_out(gw *w, const opts *o) {
  if (o->splits == 1) {
    if (gw_write(w, o->out) != 0) return -1;
    printf("%s\n", o->out);
    return 0;
  }
  size_t len = strlen(o->out);
  char prefix[4096], path[4200];
  if (len >= sizeof prefix) return -1;
  memcpy(prefix, o->out, len + 1);
  if (len > 5 && !strcmp(prefix + len - 5, ".gguf")) prefix[len - 5] = '\0';
  if (gw_write_split(w, prefix, (uint32_t)o->splits) != 0) return -1;
  for (uint32_t i = 0; i < o->splits; i++) {
    gw_split_path(path, sizeof path, prefix, i, (uint32_t)o->splits);
    printf("%s\n", path);
  }
  return 0;
}

int main(int argc, char **argv) {
  opts o;
  if (parse_args(argc, argv, &o) != 0) {
    usage();
    return 2;
  }
  gw *w = gw_new();
  int rc = build(w, &o);
  if (rc == 0 && (rc = write_out(w, &o)) != 0) fprintf(stderr, "emel-gguf-write: writing %s failed\n", o.out);
  gw_free(w);
  return rc == 0 ? 0 : 1;
}

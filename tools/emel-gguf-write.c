/* emel-gguf-write: writes a synthetic llama-shaped GGUF model (or split set)
 * with deterministic tensor bytes, for tests and benchmarks.
 *
 * Exit status: 0 written (the paths on stdout, one a line); 1 writing failed
 * (one line on stderr); 2 usage, or a request that cannot be honoured. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_text.h"
#include "gguf_writer.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: emel-gguf-write [--tensors N] [--bytes S] [--type TYPE|mixed] [--alignment A]\n"
          "                       [--splits K] [--seed X] [--version 2|3] OUT.gguf\n"
          "  --tensors N    llama-shaped tensors (default 16)\n"
          "  --bytes S      at most S bytes of tensor data in all (K/M/G suffixes; default 16M);\n"
          "                 refused when N tensors of the types cannot fit\n"
          "  --type TYPE    type of the 2-D weights (norms are F32), case-insensitive, default f16;\n"
          "                 mixed cycles through Q4_K Q6_K Q8_0 F16 Q4_0 Q5_K IQ4_XS Q2_K BF16 Q5_0 Q3_K MXFP4\n"
          "  --alignment A  general.alignment (default 32)\n"
          "  --splits K     K files NAME-0000i-of-0000K.gguf (default 1)\n"
          "  --seed X       tensor bytes derive from it (default 0)\n"
          "  --version V    GGUF version 2 or 3 (default 3)\n"
          "  TYPE is one of:");
  for (uint32_t t = 0; t < EMEL_GGML_TYPE_COUNT; t++)
    if (emel_ggml_type_name(t)) fprintf(f, " %s", emel_ggml_type_name(t));
  fputc('\n', f);
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

/* 0, 1 for --help, or -1 for a usage error (already explained on stderr
 * where usage() alone would not say what is wrong). */
static int parse_args(int argc, char **argv, opts *o) {
  *o = (opts){16, 16ull << 20, 32, 1, 0, 3, "f16", NULL};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    unsigned long long *dst = NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) return 1;
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
  uint32_t t;
  if (strcmp(o->type, "mixed") != 0 && emel_ggml_type_from_name(o->type, &t, NULL) != EMEL_OK) {
    fprintf(stderr, "emel-gguf-write: unknown type '%s' (--help lists them)\n", o->type);
    return -1;
  }
  if (!*o->out) {
    fprintf(stderr, "emel-gguf-write: OUT.gguf is empty\n");
    return -1;
  }
  return 0;
}

static int build(gw *w, const opts *o) {
  uint32_t one;
  const uint32_t *types = mixed;
  size_t n_types = sizeof mixed / sizeof mixed[0];
  if (strcmp(o->type, "mixed") != 0) {
    emel_ggml_type_from_name(o->type, &one, NULL); /* checked by parse_args */
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
  /* --bytes is a maximum: the smallest shape of N tensors may not fit in it. */
  if (gw_tensor_bytes(w) > o->bytes) {
    fprintf(stderr, "emel-gguf-write: %llu tensors of type %s need at least %" PRIu64 " bytes; --bytes %llu is too small\n",
            o->tensors, o->type, gw_tensor_bytes(w), o->bytes);
    return 2;
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
  int parsed = parse_args(argc, argv, &o);
  if (parsed == 1) {
    usage(stdout);
    return emel_cli_finish_stdout("emel-gguf-write");
  }
  if (parsed != 0) {
    usage(stderr);
    return 2;
  }
  /* The paths written go to stdout: refuse a closed stdout first (else the
   * model file would take descriptor 1 and receive them). */
  int out_errno = emel_cli_stdout_errno();
  if (out_errno) {
    fprintf(stderr, "emel-gguf-write: write error: %s\n", strerror(out_errno));
    return 1;
  }
  gw *w = gw_new();
  int rc = build(w, &o);
  errno = 0;
  if (rc == 0 && (rc = write_out(w, &o)) != 0) {
    fprintf(stderr, "emel-gguf-write: ");
    emel_cli_text(stderr, o.out, strlen(o.out));
    fprintf(stderr, ": writing failed: %s\n", errno ? strerror(errno) : "unknown error");
    rc = 1;
  }
  gw_free(w);
  if (rc == 0) rc = emel_cli_finish_stdout("emel-gguf-write");
  return rc == 2 ? 2 : rc ? 1 : 0;
}

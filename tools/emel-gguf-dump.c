/* emel-gguf-dump: prints what the GGUF index read from a model, as text or as
 * JSON whose field names mirror the fixture manifests (so scripts can diff:
 * `ne`, `nbytes`) and emel-load's JSON (`dims`, `bytes`, the same values).
 *
 * Exit status: 0 printed; 1 the file cannot be indexed (one line on stderr,
 * "emel-gguf-dump: FILE: ERROR_NAME: message") or stdout cannot be written;
 * 2 usage. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli_text.h"
#include "emel/gguf.h"

enum { HEAD = 5 };

/* Strings are bytes: see cli_text.h for how JSON and text keep them valid. */
static void json_string(const char *s, uint64_t n) { emel_cli_json_string(stdout, s, (size_t)n); }

static void text(const char *s, size_t n) { emel_cli_text(stdout, s, n); }

static void print_value(const emel_gguf_value *v, int json);

static void print_array(const emel_gguf_array *a, uint64_t limit, int json) {
  putchar('[');
  for (uint64_t i = 0; i < a->count && i < limit; i++) {
    emel_gguf_value e;
    emel_gguf_array_get(a, i, &e, NULL);
    if (i) printf(", ");
    print_value(&e, json);
  }
  if (!json && a->count > limit) printf(", ...");
  putchar(']');
}

static void print_value(const emel_gguf_value *v, int json) {
  switch (v->type) {
  case EMEL_GGUF_TYPE_UINT8: printf("%u", v->v.u8); break;
  case EMEL_GGUF_TYPE_INT8: printf("%d", v->v.i8); break;
  case EMEL_GGUF_TYPE_UINT16: printf("%u", v->v.u16); break;
  case EMEL_GGUF_TYPE_INT16: printf("%d", v->v.i16); break;
  case EMEL_GGUF_TYPE_UINT32: printf("%" PRIu32, v->v.u32); break;
  case EMEL_GGUF_TYPE_INT32: printf("%" PRId32, v->v.i32); break;
  case EMEL_GGUF_TYPE_FLOAT32: printf("%.9g", (double)v->v.f32); break;
  case EMEL_GGUF_TYPE_BOOL: printf("%s", v->v.b ? "true" : "false"); break;
  case EMEL_GGUF_TYPE_UINT64: printf("%" PRIu64, v->v.u64); break;
  case EMEL_GGUF_TYPE_INT64: printf("%" PRId64, v->v.i64); break;
  case EMEL_GGUF_TYPE_FLOAT64: printf("%.17g", v->v.f64); break;
  case EMEL_GGUF_TYPE_STRING: json_string(v->v.str.ptr, v->v.str.len); break; /* quoted in text too */
  case EMEL_GGUF_TYPE_ARRAY: print_array(&v->v.arr, HEAD, json); break;
  default: printf("null"); break;
  }
}

static void print_kv_json(const emel_gguf *g, size_t i) {
  emel_gguf_value v;
  emel_gguf_kv_value(g, i, &v, NULL);
  const char *key = emel_gguf_kv_key(g, i);
  printf("  {");
  emel_cli_json_name(stdout, "key", key, strlen(key), ": ", ", ");
  printf(", \"type\": \"%s\", ", emel_gguf_type_name(v.type));
  if (v.type == EMEL_GGUF_TYPE_ARRAY) {
    printf("\"elem_type\": \"%s\", \"count\": %" PRIu64 ", \"head\": ", emel_gguf_type_name(v.v.arr.elem_type),
           v.v.arr.count);
    print_array(&v.v.arr, HEAD, 1);
  } else {
    printf("\"value\": ");
    print_value(&v, 1);
  }
  printf("}%s\n", i + 1 < emel_gguf_kv_count(g) ? "," : "");
}

static const char *type_name(uint32_t t) {
  const char *n = emel_ggml_type_name(t);
  return n ? n : "UNKNOWN";
}

static void print_tensor_json(const emel_gguf *g, size_t i) {
  const emel_gguf_tensor *t = emel_gguf_tensor_at(g, i);
  printf("  {");
  emel_cli_json_name(stdout, "name", t->name, t->name_len, ": ", ", ");
  for (int field = 0; field < 2; field++) { /* ne (the manifests' name), dims (emel-load's) */
    printf(", \"%s\": [", field ? "dims" : "ne");
    for (uint32_t j = 0; j < t->n_dims; j++) printf("%s%" PRIu64, j ? ", " : "", t->ne[j]);
    putchar(']');
  }
  printf(", \"type\": \"%s\", \"offset\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"nbytes\": %" PRIu64
         ", \"file_index\": %" PRIu32 "}%s\n",
         type_name(t->type), t->offset, t->size, t->size, t->file_index, i + 1 < emel_gguf_tensor_count(g) ? "," : "");
}

static void dump_json(const emel_gguf *g) {
  printf("{\"file_size\": %" PRIu64 ", \"gguf_version\": %" PRIu32 ", \"n_kv\": %zu, \"n_tensors\": %zu,\n",
         emel_gguf_file_size(g, 0), emel_gguf_version(g), emel_gguf_kv_count(g), emel_gguf_tensor_count(g));
  printf(" \"alignment\": %" PRIu64 ", \"data_offset\": %" PRIu64 ",\n \"files\": [", emel_gguf_alignment(g),
         emel_gguf_data_offset(g, 0));
  for (uint32_t f = 0; f < emel_gguf_file_count(g); f++) {
    const char *p = emel_gguf_file_path(g, f);
    printf("%s{", f ? ", " : "");
    emel_cli_json_name(stdout, "path", p, strlen(p), ": ", ", ");
    printf(", \"file_size\": %" PRIu64 ", \"data_offset\": %" PRIu64 "}", emel_gguf_file_size(g, f),
           emel_gguf_data_offset(g, f));
  }
  printf("],\n \"kv\": [\n");
  for (size_t i = 0; i < emel_gguf_kv_count(g); i++) print_kv_json(g, i);
  printf(" ],\n \"tensors\": [\n");
  for (size_t i = 0; i < emel_gguf_tensor_count(g); i++) print_tensor_json(g, i);
  printf(" ]}\n");
}

static void dump_text(const emel_gguf *g) {
  printf("version: %" PRIu32 "\nalignment: %" PRIu64 "\n", emel_gguf_version(g), emel_gguf_alignment(g));
  for (uint32_t f = 0; f < emel_gguf_file_count(g); f++)
  {
    printf("file %" PRIu32 ": ", f);
    text(emel_gguf_file_path(g, f), strlen(emel_gguf_file_path(g, f)));
    printf(" size %" PRIu64 " data_offset %" PRIu64 "\n", emel_gguf_file_size(g, f), emel_gguf_data_offset(g, f));
  }
  printf("kv: %zu\n", emel_gguf_kv_count(g));
  for (size_t i = 0; i < emel_gguf_kv_count(g); i++) {
    emel_gguf_value v;
    emel_gguf_kv_value(g, i, &v, NULL);
    printf("  ");
    text(emel_gguf_kv_key(g, i), strlen(emel_gguf_kv_key(g, i)));
    printf(" %s", emel_gguf_type_name(v.type));
    if (v.type == EMEL_GGUF_TYPE_ARRAY)
      printf("[%s x %" PRIu64 "]", emel_gguf_type_name(v.v.arr.elem_type), v.v.arr.count);
    printf(" = ");
    print_value(&v, 0);
    putchar('\n');
  }
  printf("tensors: %zu\n", emel_gguf_tensor_count(g));
  for (size_t i = 0; i < emel_gguf_tensor_count(g); i++) {
    const emel_gguf_tensor *t = emel_gguf_tensor_at(g, i);
    printf("  ");
    text(t->name, t->name_len);
    printf(" %s [", type_name(t->type));
    for (uint32_t j = 0; j < t->n_dims; j++) printf("%s%" PRIu64, j ? ", " : "", t->ne[j]);
    printf("] offset %" PRIu64 " bytes %" PRIu64 " file %" PRIu32 "\n", t->offset, t->size, t->file_index);
  }
}

static const char USAGE[] = "usage: emel-gguf-dump [--json] FILE\n"
                            "  Prints the GGUF index of FILE (metadata, tensors, split files); --json as one object.\n";

int main(int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    fputs(USAGE, stdout);
    return emel_cli_finish_stdout("emel-gguf-dump");
  }
  int json = argc == 3 && !strcmp(argv[1], "--json");
  if (argc != 2 + json || argv[argc - 1][0] == '-') {
    fputs(USAGE, stderr);
    return 2;
  }
  const char *file = argv[argc - 1];
  if (!*file) {
    fprintf(stderr, "emel-gguf-dump: FILE is empty\n%s", USAGE);
    return 2;
  }
  int out_errno = emel_cli_stdout_errno();
  if (out_errno) {
    fprintf(stderr, "emel-gguf-dump: write error: %s\n", strerror(out_errno));
    return 1;
  }
  emel_gguf *g;
  emel_error err;
  if (emel_gguf_open(&g, file, NULL, &err) != EMEL_OK) {
    return emel_cli_open_error("emel-gguf-dump", file, &err); /* emel-load's error line */
  }
  errno = 0;
  if (json) dump_json(g);
  else dump_text(g);
  emel_gguf_close(g);
  return emel_cli_finish_stdout("emel-gguf-dump");
}

/* emel-load --expect: the expected XXH3-64 of each tensor, read from a JSON
 * manifest (emel-load's own `--json --verify` output, or any JSON object whose
 * "tensors" array holds objects with a "name" string and an "xxh3" string of
 * 16 hex digits; other members are allowed and skipped).
 *
 * The reader is strict (RFC 8259 grammar, no trailing commas, no comments,
 * nothing after the value) and bounded (file size, nesting depth, name
 * length), so a hostile manifest gives an error message, never a crash.
 */
#ifndef EMEL_TOOLS_MANIFEST_H
#define EMEL_TOOLS_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

enum {
  MANIFEST_MAX_DEPTH = 64,       /* nested arrays/objects */
  MANIFEST_MAX_NAME = 255,       /* bytes, as EMEL_TENSOR_MAX_NAME */
};
#define MANIFEST_MAX_BYTES (1ull << 30) /* a manifest of 2^20 tensors is ~200 MB */

typedef struct manifest_entry {
  char *name; /* decoded bytes, NUL-terminated (a name may hold \u0000: use name_len) */
  size_t name_len;
  uint64_t xxh3;
  int seen; /* set by the caller while comparing */
} manifest_entry;

typedef struct manifest {
  manifest_entry *entries; /* sorted by name after manifest_read */
  size_t count;
} manifest;

/* 0 and *out filled; or -1 with a message (with the byte offset where the
 * manifest went wrong) in err. Nothing to free after a failure. */
int manifest_read(const char *path, manifest *out, char *err, size_t err_size);

/* The entry named exactly (name, len), or NULL. */
manifest_entry *manifest_find(const manifest *m, const char *name, size_t len);

void manifest_free(manifest *m);

#endif

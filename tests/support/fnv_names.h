/* Names crafted against unseeded FNV-1a 64 as emel-io's tensor table hashed
 * them before its names were seeded: slot = low bits of the hash, with the
 * offset basis 1469598103934665603 it used (a digit short of the standard
 * 14695981039346656037; the GGUF index used the standard basis and folded
 * h >> 29 in, so these names did not collide there). Every colliding name's
 * hash has the same low FNV_NAMES_BITS bits, so in any power-of-two table of
 * up to 2^FNV_NAMES_BITS slots indexed by those bits they all start in one
 * slot: opening a model of n such tensors examined n^2/2 slots. Random names
 * of the same length and shape are the control. Deterministic: the same
 * calls give the same names. For tests and the benchmark. */
#ifndef EMEL_TESTS_FNV_NAMES_H
#define EMEL_TESTS_FNV_NAMES_H

#include <stddef.h>
#include <stdint.h>

enum {
  FNV_NAMES_BITS = 20,
  FNV_NAME_LEN = 20 /* prefix byte, "blk.NNNNNNNN.w.", 4 chosen bytes (no NUL counted) */
};

typedef struct fnv_names fnv_names;

/* prefix: one byte put first in every name ('t' for tensors, 'k' for keys, …),
 * so two sets of names never share a name. NULL when out of memory. */
fnv_names *fnv_names_new(char prefix);
void fnv_names_free(fnv_names *g);

/* The next colliding name (FNV_NAME_LEN bytes and a NUL), distinct from all before. */
void fnv_names_colliding(fnv_names *g, char out[FNV_NAME_LEN + 1]);
/* The next random name of the same length and shape. */
void fnv_names_random(fnv_names *g, char out[FNV_NAME_LEN + 1]);

/* The old tensor table's unseeded FNV-1a 64 over n bytes. */
uint64_t fnv_old_hash(const char *s, size_t n);

#endif

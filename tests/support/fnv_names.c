/* Colliding names by meet-in-the-middle: the low b bits of FNV-1a depend only
 * on the low b bits of the state, and each step (h ^ byte) * P is invertible
 * mod 2^b (P is odd). So run 4-byte suffixes backwards from the target to
 * get, for most states s, a suffix that takes s to the target; then hash
 * prefixes with a counter until one ends in such a state. */
#include "fnv_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FNV_OFFSET 1469598103934665603ull /* the old tensor table's (see fnv_names.h) */
#define FNV_PRIME 0x100000001b3ull
#define MASK ((1u << FNV_NAMES_BITS) - 1)
#define TARGET 0x5eedu /* any value below 2^FNV_NAMES_BITS */

static const char alphabet[33] = "abcdefghijklmnopqrstuvwxyz012345"; /* 32: 5 bits a byte */

struct fnv_names {
  uint32_t *suffix_of; /* state -> suffix code + 1 (0: none) */
  uint64_t counter, rng;
  char prefix;
};

uint64_t fnv_old_hash(const char *s, size_t n) {
  uint64_t h = FNV_OFFSET;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * FNV_PRIME;
  return h;
}

static void suffix_bytes(uint32_t code, char out[4]) {
  for (int k = 0; k < 4; k++) out[k] = alphabet[(code >> (5 * k)) & 31];
}

fnv_names *fnv_names_new(char prefix) {
  fnv_names *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->suffix_of = calloc((size_t)MASK + 1, sizeof *g->suffix_of);
  if (!g->suffix_of) {
    free(g);
    return NULL;
  }
  g->prefix = prefix;
  g->rng = 0x9e3779b97f4a7c15ull;
  uint64_t inv = FNV_PRIME; /* Newton: inverse of the prime mod 2^64 */
  for (int i = 0; i < 6; i++) inv *= 2 - FNV_PRIME * inv;
  for (uint32_t code = 0; code < (1u << 20); code++) {
    char s[4];
    suffix_bytes(code, s);
    uint64_t h = TARGET;
    for (int k = 3; k >= 0; k--) h = ((h * inv) ^ (uint8_t)s[k]) & MASK;
    if (!g->suffix_of[h]) g->suffix_of[h] = code + 1;
  }
  return g;
}

void fnv_names_free(fnv_names *g) {
  if (!g) return;
  free(g->suffix_of);
  free(g);
}

/* "Pblk.NNNNNNNN.w." (16 bytes) from the counter. */
static void head(fnv_names *g, char out[FNV_NAME_LEN + 1]) {
  char buf[32];
  snprintf(buf, sizeof buf, "%cblk.%08llu.w.", g->prefix, (unsigned long long)(g->counter++ % 100000000ull));
  memcpy(out, buf, 16);
}

void fnv_names_colliding(fnv_names *g, char out[FNV_NAME_LEN + 1]) {
  for (;;) {
    head(g, out);
    const uint32_t code = g->suffix_of[fnv_old_hash(out, 16) & MASK];
    if (!code) continue;
    suffix_bytes(code - 1, out + 16);
    out[FNV_NAME_LEN] = '\0';
    return;
  }
}

void fnv_names_random(fnv_names *g, char out[FNV_NAME_LEN + 1]) {
  head(g, out);
  g->rng ^= g->rng << 13; /* xorshift64 */
  g->rng ^= g->rng >> 7;
  g->rng ^= g->rng << 17;
  suffix_bytes((uint32_t)(g->rng >> 40), out + 16);
  out[FNV_NAME_LEN] = '\0';
}

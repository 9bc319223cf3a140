/* The seeded name table (see name_table.h). */
#include "name_table.h"

#include <string.h>

/* Inlined: the library gets no link dependency on libxxhash, and its
 * symbols stay static (only emel_ names are exported). */
#define XXH_INLINE_ALL
#include <xxhash.h>

static uint64_t mix64(uint64_t x) { /* splitmix64 finalizer */
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

emel_name_seed emel_name_seed_get(const emel_platform_ops *ops) {
  uint64_t v = 0;
  if (ops->random(ops->user, &v, sizeof v) == 0) return (emel_name_seed){v, 1};
  /* Addresses of the stack, the caller's ops and this code: under ASLR a
   * file's author cannot know them, and no OS call is needed. */
  const uintptr_t here = (uintptr_t)&v, caller = (uintptr_t)ops, code = (uintptr_t)&emel_name_seed_get;
  return (emel_name_seed){mix64(mix64(mix64(here) ^ caller) ^ code), 0};
}

uint64_t emel_name_hash(uint64_t seed, const char *name, size_t len) {
  return XXH3_64bits_withSeed(name, len, seed);
}

emel_status emel_name_table_init(emel_name_table *t, const emel_platform_ops *ops, uint32_t capacity,
                                 uint64_t seed, emel_name_of name_of, const void *owner) {
  memset(t, 0, sizeof *t);
  t->seed = seed;
  t->name_of = name_of;
  t->owner = owner;
  if (capacity == 0) return EMEL_OK;
  if (capacity > EMEL_NAME_TABLE_MAX_CAPACITY || (uint64_t)capacity * 2 > SIZE_MAX / sizeof *t->slots)
    return EMEL_INVALID_ARGUMENT;
  size_t slots = 8;
  while (slots < (size_t)capacity * 2) slots *= 2; /* load factor <= 1/2: expected probes stay under 2.5 */
  t->slots = ops->alloc(ops->user, slots * sizeof *t->slots, _Alignof(uint64_t));
  if (!t->slots) return EMEL_OUT_OF_MEMORY;
  memset(t->slots, 0, slots * sizeof *t->slots);
  t->mask = slots - 1;
  t->capacity = capacity;
  return EMEL_OK;
}

void emel_name_table_release(emel_name_table *t, const emel_platform_ops *ops) {
  if (t->slots) ops->free(ops->user, t->slots, (t->mask + 1) * sizeof *t->slots);
  t->slots = NULL;
  t->mask = 0;
  t->capacity = t->count = 0;
}

/* The slot holding `name`, or the empty slot where it would go; *probes
 * gets the slots examined. */
static size_t probe(const emel_name_table *t, uint64_t h, const char *name, size_t len, uint64_t *probes) {
  const uint64_t tag = h >> 32 << 32;
  uint64_t n = 0;
  for (size_t i = (size_t)h & t->mask;; i = (i + 1) & t->mask) {
    const uint64_t s = t->slots[i];
    n++;
    if (s == 0) {
      *probes = n;
      return i;
    }
    if ((s & 0xffffffff00000000ull) != tag) continue;
    size_t other_len;
    const char *other = t->name_of(t->owner, (uint32_t)s - 1, &other_len);
    if (other_len == len && memcmp(other, name, len) == 0) {
      *probes = n;
      return i;
    }
  }
}

emel_name_insert_result emel_name_table_insert(emel_name_table *t, uint32_t index, uint32_t *existing) {
  if (t->count == t->capacity) return EMEL_NAME_FULL; /* also keeps one empty slot: probing ends */
  size_t len;
  const char *name = t->name_of(t->owner, index, &len);
  uint64_t probes;
  const uint64_t h = emel_name_hash(t->seed, name, len);
  const size_t i = probe(t, h, name, len, &probes);
  t->probes += probes;
  if (t->slots[i]) {
    if (existing) *existing = (uint32_t)t->slots[i] - 1;
    return EMEL_NAME_DUPLICATE;
  }
  t->slots[i] = (h >> 32 << 32) | ((uint64_t)index + 1);
  t->count++;
  return EMEL_NAME_INSERTED;
}

int emel_name_table_find(const emel_name_table *t, const char *name, size_t len, uint32_t *index) {
  if (t->count == 0 || !name) return 0;
  uint64_t probes;
  const uint64_t s = t->slots[probe(t, emel_name_hash(t->seed, name, len), name, len, &probes)];
  if (s == 0) return 0;
  *index = (uint32_t)s - 1;
  return 1;
}

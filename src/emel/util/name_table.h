/* The one table from names to indices (GGUF keys, GGUF tensor names, the
 * tensor table's names).
 *
 * Why seeded: names come from files that must be treated as hostile. With an
 * unkeyed hash a file's author can choose names that all land in one probe
 * chain and make opening a model quadratic; with a seed drawn from the OS per
 * table owner (XXH3-64 keyed by it) the author cannot tell which names collide.
 *
 * Open addressing, linear probing, load factor <= 1/2, capacity fixed at init
 * (no allocation after it). A slot packs the hash's high 32 bits (a tag that
 * rules out almost every unequal name without reading it) and index + 1. The
 * table stores no names: the owner's `name_of` returns the bytes of an index,
 * so each name is stored once, where its owner keeps it. Names are arbitrary
 * bytes of a given length (NUL included). */
#ifndef EMEL_UTIL_NAME_TABLE_H
#define EMEL_UTIL_NAME_TABLE_H

#include "emel/platform.h"
#include "emel/status.h"

#include <stddef.h>
#include <stdint.h>

/* The bytes and length of the owner's name number `index` (< count). */
typedef const char *(*emel_name_of)(const void *owner, uint32_t index, size_t *len);

/* A table's hash seed and where it came from. */
typedef struct emel_name_seed {
  uint64_t value;
  int from_os; /* 0: ops.random failed, value is the fallback (see emel_name_seed_get) */
} emel_name_seed;

typedef struct emel_name_table {
  uint64_t *slots; /* 0: empty; else (hash >> 32) << 32 | (index + 1) */
  size_t mask;     /* slots - 1 (a power of two minus one); 0 with no slots */
  uint32_t capacity, count;
  uint64_t seed;
  emel_name_of name_of;
  const void *owner;
  /* Slots examined by every insert so far (at least one per insert): the
   * table's whole build cost, read by tests and the benchmark. */
  uint64_t probes;
} emel_name_table;

/* Largest capacity: index + 1 must fit the slot's 32 bits. */
#define EMEL_NAME_TABLE_MAX_CAPACITY (UINT32_MAX - 1u)

/* A seed from ops->random. When it fails (no entropy yet, seccomp, an
 * embedder's op) the table still works: the fallback mixes addresses of this
 * process (unpredictable to a file's author under ASLR, fixed without it) and
 * from_os is 0. Opening a model never fails for want of entropy. */
emel_name_seed emel_name_seed_get(const emel_platform_ops *ops);

/* Allocates room for `capacity` names (0: an empty table that finds nothing).
 * EMEL_OK, EMEL_OUT_OF_MEMORY or EMEL_INVALID_ARGUMENT (capacity too large). */
emel_status emel_name_table_init(emel_name_table *t, const emel_platform_ops *ops, uint32_t capacity,
                                 uint64_t seed, emel_name_of name_of, const void *owner);
void emel_name_table_release(emel_name_table *t, const emel_platform_ops *ops);

typedef enum emel_name_insert_result {
  EMEL_NAME_INSERTED = 0,
  EMEL_NAME_DUPLICATE = 1, /* *existing = the index that has the name */
  EMEL_NAME_FULL = 2       /* count == capacity */
} emel_name_insert_result;

/* Adds `index` under its owner's name (name_of(owner, index)). */
emel_name_insert_result emel_name_table_insert(emel_name_table *t, uint32_t index, uint32_t *existing);

/* 1 and *index when some index has exactly these bytes, else 0. */
int emel_name_table_find(const emel_name_table *t, const char *name, size_t len, uint32_t *index);

/* The seeded hash itself (exposed for tests). */
uint64_t emel_name_hash(uint64_t seed, const char *name, size_t len);

#endif

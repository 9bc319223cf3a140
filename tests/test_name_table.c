/* The seeded name table (src/emel/util/name_table) and its three users: GGUF
 * keys, GGUF tensor names, the tensor table. Hostile names are shown harmless
 * by counting probes, not by timing: names crafted to collide under the old
 * unseeded FNV-1a keep every table's build cost linear. */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "emel/gguf/internal.h"
#include "emel/model.h"
#include "emel/model/tensor/tensors_shared.h"
#include "emel/util/name_table.h"
#include "fault_platform.h"
#include "fnv_names.h"
#include "gguf_writer.h"

/* ---- the table alone, over an array of names ---- */

typedef struct names {
  const char *bytes[64];
  size_t len[64];
} names;

static const char *name_of(const void *owner, uint32_t index, size_t *len) {
  const names *n = owner;
  *len = n->len[index];
  return n->bytes[index];
}

/* Two names that start in the same slot of a table of `slots` under `seed`. */
static void same_slot_pair(uint64_t seed, size_t slots, char a[16], char b[16]) {
  snprintf(a, 16, "x0");
  const size_t want = (size_t)emel_name_hash(seed, a, strlen(a)) & (slots - 1);
  for (unsigned i = 1;; i++) {
    snprintf(b, 16, "x%u", i);
    if (((size_t)emel_name_hash(seed, b, strlen(b)) & (slots - 1)) == want) return;
  }
}

START_TEST(test_colliding_names_are_both_found) {
  const emel_platform_ops *ops = emel_platform_default();
  char a[16], b[16], c[16];
  same_slot_pair(7, 8, a, b); /* capacity 3: 8 slots */
  snprintf(c, sizeof c, "%s", b);
  c[0] = 'y'; /* same length, another name */
  names n = {{a, b, c}, {strlen(a), strlen(b), strlen(c)}};
  emel_name_table t;
  ck_assert_int_eq(emel_name_table_init(&t, ops, 3, 7, name_of, &n), EMEL_OK);
  ck_assert_uint_eq(t.mask + 1, 8);
  for (uint32_t i = 0; i < 3; i++) ck_assert_int_eq(emel_name_table_insert(&t, i, NULL), EMEL_NAME_INSERTED);
  ck_assert_uint_ge(t.probes, 4); /* b probed past a */
  uint32_t got;
  for (uint32_t i = 0; i < 3; i++) {
    ck_assert(emel_name_table_find(&t, n.bytes[i], n.len[i], &got));
    ck_assert_uint_eq(got, i);
  }
  emel_name_table_release(&t, ops);
}
END_TEST

/* Guards against: a duplicate inserted twice (the second shadowing nothing
 * and counting), or reported with the wrong index. */
START_TEST(test_duplicates_are_refused_with_the_first_index) {
  const emel_platform_ops *ops = emel_platform_default();
  names n = {{"a.weight", "b", "a.weight"}, {8, 1, 8}};
  emel_name_table t;
  ck_assert_int_eq(emel_name_table_init(&t, ops, 3, 1, name_of, &n), EMEL_OK);
  ck_assert_int_eq(emel_name_table_insert(&t, 0, NULL), EMEL_NAME_INSERTED);
  ck_assert_int_eq(emel_name_table_insert(&t, 1, NULL), EMEL_NAME_INSERTED);
  uint32_t existing = 99;
  ck_assert_int_eq(emel_name_table_insert(&t, 2, &existing), EMEL_NAME_DUPLICATE);
  ck_assert_uint_eq(existing, 0);
  ck_assert_uint_eq(t.count, 2);
  emel_name_table_release(&t, ops);
}
END_TEST

/* Guards against: a full table probing forever for an absent name, or
 * accepting more than its capacity (which would let probing loop). */
START_TEST(test_a_full_table_refuses_more_and_still_answers_absent_names) {
  const emel_platform_ops *ops = emel_platform_default();
  char buf[64][8];
  names n;
  for (int i = 0; i < 64; i++) {
    snprintf(buf[i], sizeof buf[i], "n%d", i);
    n.bytes[i] = buf[i];
    n.len[i] = strlen(buf[i]);
  }
  emel_name_table t;
  ck_assert_int_eq(emel_name_table_init(&t, ops, 63, 3, name_of, &n), EMEL_OK);
  for (uint32_t i = 0; i < 63; i++) ck_assert_int_eq(emel_name_table_insert(&t, i, NULL), EMEL_NAME_INSERTED);
  ck_assert_int_eq(emel_name_table_insert(&t, 63, NULL), EMEL_NAME_FULL);
  uint32_t got;
  ck_assert(!emel_name_table_find(&t, "n63", 3, &got));
  ck_assert(!emel_name_table_find(&t, "n1", 1, &got)); /* a prefix of a present name */
  ck_assert(!emel_name_table_find(&t, "n10x", 4, &got));
  ck_assert(!emel_name_table_find(&t, "", 0, &got));
  for (int probe = 0; probe < 2000; probe++) { /* absent names everywhere in the table */
    char absent[16];
    snprintf(absent, sizeof absent, "absent%d", probe);
    ck_assert(!emel_name_table_find(&t, absent, strlen(absent), &got));
  }
  ck_assert(emel_name_table_find(&t, "n62", 3, &got));
  ck_assert_uint_eq(got, 62);
  emel_name_table_release(&t, ops);
}
END_TEST

/* Names are bytes: every byte value, NUL included when the length says so;
 * equal prefixes of other lengths are other names. */
START_TEST(test_names_are_arbitrary_bytes_of_a_length) {
  const emel_platform_ops *ops = emel_platform_default();
  char all[255], nul[3] = {'a', '\0', 'b'};
  for (int i = 0; i < 255; i++) all[i] = (char)(255 - i); /* 0xff .. 0x01 */
  names n = {{all, all, all + 1, nul, nul}, {255, 254, 254, 3, 1}};
  emel_name_table t;
  ck_assert_int_eq(emel_name_table_init(&t, ops, 5, 0xfeed, name_of, &n), EMEL_OK);
  for (uint32_t i = 0; i < 5; i++) ck_assert_int_eq(emel_name_table_insert(&t, i, NULL), EMEL_NAME_INSERTED);
  uint32_t got;
  for (uint32_t i = 0; i < 5; i++) {
    ck_assert(emel_name_table_find(&t, n.bytes[i], n.len[i], &got));
    ck_assert_uint_eq(got, i);
  }
  ck_assert(!emel_name_table_find(&t, nul, 2, &got));
  emel_name_table_release(&t, ops);
}
END_TEST

START_TEST(test_empty_and_oversized_tables) {
  const emel_platform_ops *ops = emel_platform_default();
  emel_name_table t;
  uint32_t got;
  ck_assert_int_eq(emel_name_table_init(&t, ops, 0, 1, name_of, NULL), EMEL_OK);
  ck_assert(!emel_name_table_find(&t, "x", 1, &got));
  ck_assert_int_eq(emel_name_table_insert(&t, 0, NULL), EMEL_NAME_FULL);
  emel_name_table_release(&t, ops);
  ck_assert_int_eq(emel_name_table_init(&t, ops, UINT32_MAX, 1, name_of, NULL), EMEL_INVALID_ARGUMENT);
  ck_assert_ptr_null(t.slots);
}
END_TEST

/* The hash is keyed: another seed puts the same names elsewhere. */
START_TEST(test_the_seed_changes_the_hash) {
  int differ = 0;
  for (int i = 0; i < 16; i++) {
    char s[16];
    snprintf(s, sizeof s, "blk.%d.attn_q", i);
    differ += emel_name_hash(1, s, strlen(s)) != emel_name_hash(2, s, strlen(s));
  }
  ck_assert_int_eq(differ, 16);
}
END_TEST

/* ---- hostile files ---- */

static char tmpdir[256];

static const char *tmp_path(const char *name) {
  static char path[512];
  if (!tmpdir[0]) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/emel-names-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
  }
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  return path;
}

static void remove_tmp(const char *path) {
  unlink(path);
  rmdir(tmpdir);
  tmpdir[0] = '\0';
}

enum { HOSTILE_N = 20000 };

/* A GGUF whose tensor names and metadata keys all collide in the low 20 bits
 * of unseeded FNV-1a (or random names of the same length when !colliding). */
static void write_names_file(const char *path, int colliding, uint32_t n) {
  fnv_names *tn = fnv_names_new('t'), *kn = fnv_names_new('k');
  ck_assert(tn && kn);
  gw *w = gw_new();
  const uint64_t ne[1] = {1};
  char name[FNV_NAME_LEN + 1];
  uint64_t first_low = 0;
  uint32_t apart = 0, refused = 0; /* counted, asserted once: an assertion a name was most of the time under valgrind */
  for (uint32_t i = 0; i < n; i++) {
    colliding ? fnv_names_colliding(kn, name) : fnv_names_random(kn, name);
    gw_kv_u32(w, name, i);
    colliding ? fnv_names_colliding(tn, name) : fnv_names_random(tn, name);
    const uint64_t low = fnv_old_hash(name, FNV_NAME_LEN) & ((1u << FNV_NAMES_BITS) - 1);
    if (i == 0) first_low = low;
    apart += colliding && low != first_low;
    refused += gw_tensor(w, name, EMEL_GGML_TYPE_F32, 1, ne) != 0;
  }
  ck_assert_uint_eq(apart, 0); /* the names do what they claim */
  ck_assert_uint_eq(refused, 0);
  ck_assert_int_eq(gw_write(w, path), 0);
  gw_free(w);
  fnv_names_free(tn);
  fnv_names_free(kn);
}

/* Guards against: unkeyed hashing of names from files. With the old FNV-1a
 * tables these names all start in one slot and building a table of n names
 * examines about n^2/2 slots (2e8 here); seeded, about 1.2 n. The bound is
 * loose (2 n per table) but far from quadratic. */
START_TEST(test_names_colliding_under_fnv_keep_opening_linear) {
  const char *path = tmp_path("colliding.gguf");
  write_names_file(path, 1, HOSTILE_N);
  emel_model *m;
  emel_error e;
  ck_assert_int_eq(emel_model_open(&m, path, NULL, &e), EMEL_OK);
  const emel_gguf *g = emel_model_index(m);
  ck_assert_uint_eq(emel_gguf_tensor_count(g), HOSTILE_N);
  /* keys and tensor names: two tables of HOSTILE_N names */
  const uint64_t probes = emel_gguf_name_probes(g);
  ck_assert_msg(probes <= 4ull * HOSTILE_N, "%llu probes for %d names", (unsigned long long)probes, 2 * HOSTILE_N);
  /* The model's tensor table hashed nothing again: it asks the index. */
  ck_assert_uint_eq(emel_tensors_name_probes(emel_model_tensors(m)), 0);
  uint32_t i;
  const emel_gguf_tensor *last = emel_gguf_tensor_at(g, HOSTILE_N - 1);
  ck_assert_int_eq(emel_tensors_find(emel_model_tensors(m), last->name, last->name_len, &i, NULL), EMEL_OK);
  ck_assert_uint_eq(i, HOSTILE_N - 1);
  emel_model_close(m);
  remove_tmp(path);
}
END_TEST

/* The same for a standalone tensor table (its own names and index). */
START_TEST(test_a_standalone_tensor_table_stays_linear_under_fnv_collisions) {
  fnv_names *tn = fnv_names_new('t');
  emel_tensors *t;
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.capacity = HOSTILE_N, .name_bytes = (size_t)HOSTILE_N * (FNV_NAME_LEN + 1));
  ck_assert_int_eq(emel_tensors_create(&t, &tc, NULL), EMEL_OK);
  char name[FNV_NAME_LEN + 1];
  uint32_t refused = 0; /* counted, asserted once (see write_names_file) */
  for (uint32_t k = 0; k < HOSTILE_N; k++) {
    fnv_names_colliding(tn, name);
    uint32_t i;
    refused += emel_tensors_declare(t, name, FNV_NAME_LEN, &i, NULL) != EMEL_OK;
  }
  ck_assert_uint_eq(refused, 0);
  const uint64_t probes = emel_tensors_name_probes(t);
  ck_assert_msg(probes <= 2ull * HOSTILE_N, "%llu probes for %d names", (unsigned long long)probes, HOSTILE_N);
  uint32_t i;
  ck_assert_int_eq(emel_tensors_find(t, name, FNV_NAME_LEN, &i, NULL), EMEL_OK);
  ck_assert_uint_eq(i, HOSTILE_N - 1);
  emel_tensors_destroy(t);
  fnv_names_free(tn);
}
END_TEST

/* ---- seeds ---- */

static const char *small_model(void) {
  const char *path = tmp_path("small.gguf");
  gw *w = gw_new();
  const uint64_t ne[1] = {8};
  gw_kv_str(w, "general.architecture", "llama");
  ck_assert_int_eq(gw_tensor(w, "a.weight", EMEL_GGML_TYPE_F32, 1, ne), 0);
  ck_assert_int_eq(gw_tensor(w, "b.weight", EMEL_GGML_TYPE_F32, 1, ne), 0);
  ck_assert_int_eq(gw_write(w, path), 0);
  gw_free(w);
  return path;
}

/* One seed per model, from the platform: the tensor table draws none. */
START_TEST(test_a_model_draws_one_seed_from_the_platform) {
  const char *path = small_model();
  fault_platform fp;
  fault_platform_init(&fp);
  emel_model_config cfg = EMEL_MODEL_CONFIG_INIT(.platform = &fp.ops);
  emel_model *a, *b;
  ck_assert_int_eq(emel_model_open(&a, path, &cfg, NULL), EMEL_OK);
  ck_assert_uint_eq(fp.calls[FP_RANDOM], 1);
  ck_assert_int_eq(emel_model_open(&b, path, &cfg, NULL), EMEL_OK);
  ck_assert(emel_gguf_seeded_by_os(emel_model_index(a)));
  /* two indexes, two seeds (equal with probability 2^-64) */
  ck_assert_uint_ne(emel_gguf_tensor_names(emel_model_index(a))->seed, emel_gguf_tensor_names(emel_model_index(b))->seed);
  emel_model_close(a);
  emel_model_close(b);
  /* A fixed seed from the platform: reproducible runs. */
  fp.random_fixed = 1;
  fp.random_value = 0x0123456789abcdefull;
  ck_assert_int_eq(emel_model_open(&a, path, &cfg, NULL), EMEL_OK);
  ck_assert_uint_eq(emel_gguf_tensor_names(emel_model_index(a))->seed, 0x0123456789abcdefull);
  emel_model_close(a);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
  remove_tmp(path);
}
END_TEST

/* Guards against: a model that cannot be opened for want of entropy. */
START_TEST(test_a_failing_random_op_falls_back_and_the_model_opens) {
  const char *path = small_model();
  fault_platform fp;
  fault_platform_init(&fp);
  fault_platform_fail(&fp, FP_RANDOM, 1, ENOSYS);
  emel_model_config cfg = EMEL_MODEL_CONFIG_INIT(.platform = &fp.ops);
  emel_model *m;
  emel_error e;
  ck_assert_int_eq(emel_model_open(&m, path, &cfg, &e), EMEL_OK);
  ck_assert(!emel_gguf_seeded_by_os(emel_model_index(m)));
  emel_tensor_view v;
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);
  ck_assert_int_eq(emel_model_load(m, "b.weight", &o, &v, NULL), EMEL_OK);
  ck_assert_int_eq(emel_model_load(m, "c.weight", &o, &v, NULL), EMEL_TENSOR_UNKNOWN);
  size_t k;
  ck_assert_int_eq(emel_gguf_kv_find(emel_model_index(m), "general.architecture", &k, NULL), EMEL_OK);
  emel_model_close(m);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
  remove_tmp(path);
}
END_TEST

/* ---- each name stored once per model ---- */

/* Guards against: the model's tensor table copying every name the index
 * already holds (each name stored twice). */
START_TEST(test_a_model_stores_each_name_once) {
  const char *path = small_model();
  emel_model *m;
  ck_assert_int_eq(emel_model_open(&m, path, NULL, NULL), EMEL_OK);
  emel_tensors *t = emel_model_tensors(m);
  for (uint32_t i = 0; i < 2; i++) {
    emel_tensor_info info;
    ck_assert_ptr_nonnull(emel_tensors_info(t, i, &info));
    ck_assert_ptr_eq(info.name, emel_gguf_tensor_at(emel_model_index(m), i)->name);
  }
  /* The model's table is complete: no room for names of one's own. */
  uint32_t i;
  ck_assert_int_eq(emel_tensors_declare(t, "c.weight", 8, &i, NULL), EMEL_TENSOR_TABLE_FULL);
  ck_assert_int_eq(emel_tensors_find(t, "a.weight", 8, &i, NULL), EMEL_OK);
  ck_assert_uint_eq(i, 0);
  ck_assert_int_eq(emel_tensors_find(t, "a.weigh", 7, &i, NULL), EMEL_TENSOR_UNKNOWN);
  emel_model_close(m);
  remove_tmp(path);
}
END_TEST

static Suite *name_table_suite(void) {
  Suite *s = suite_create("name_table");
  TCase *tc = tcase_create("table");
  tcase_add_test(tc, test_colliding_names_are_both_found);
  tcase_add_test(tc, test_duplicates_are_refused_with_the_first_index);
  tcase_add_test(tc, test_a_full_table_refuses_more_and_still_answers_absent_names);
  tcase_add_test(tc, test_names_are_arbitrary_bytes_of_a_length);
  tcase_add_test(tc, test_empty_and_oversized_tables);
  tcase_add_test(tc, test_the_seed_changes_the_hash);
  suite_add_tcase(s, tc);
  TCase *hostile = tcase_create("hostile");
  tcase_add_test(hostile, test_names_colliding_under_fnv_keep_opening_linear);
  tcase_add_test(hostile, test_a_standalone_tensor_table_stays_linear_under_fnv_collisions);
  suite_add_tcase(s, hostile);
  TCase *seeds = tcase_create("seeds");
  tcase_add_test(seeds, test_a_model_draws_one_seed_from_the_platform);
  tcase_add_test(seeds, test_a_failing_random_op_falls_back_and_the_model_opens);
  tcase_add_test(seeds, test_a_model_stores_each_name_once);
  suite_add_tcase(s, seeds);
  return s;
}

EMEL_CHECK_MAIN(name_table_suite)

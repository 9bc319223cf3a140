/* Structs callers fill in (configs, load options, platform and strategy ops)
 * begin with struct_size: a struct from a newer header (or one never
 * initialized) is refused by name, and an older, smaller one is read only up
 * to its size, the members it lacks taking their defaults. */
#include <check.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "emel/io_strategy.h"
#include "emel/job.h"
#include "emel/model.h"
#include "fault_platform.h"
#include "gguf_writer.h"

static char path[64];

static void setup(void) {
  snprintf(path, sizeof path, "structs_%ld.gguf", (long)getpid()); /* cwd: the build tree */
  gw *w = gw_new();
  const uint64_t ne[1] = {1024};
  ck_assert_int_eq(gw_tensor(w, "a.weight", EMEL_GGML_TYPE_F32, 1, ne), 0);
  ck_assert_int_eq(gw_tensor(w, "b.weight", EMEL_GGML_TYPE_F32, 1, ne), 0);
  ck_assert_int_eq(gw_write(w, path), 0);
  gw_free(w);
}

static void teardown(void) { unlink(path); }

/* What a newer header's struct looks like to this library: ours, then more. */
#define NEWER(type)  \
  struct {           \
    type known;      \
    uint64_t later;  \
  }

/* Guards against taking a struct from a newer header (or never initialized)
 * as if it were ours: reading members the library does not know, or a caller
 * believing members it set took effect when they cannot have. */
START_TEST(test_a_struct_from_a_newer_header_is_refused_by_name) {
  fault_platform fp;
  fault_platform_init(&fp);
  emel_error e;

  NEWER(emel_gguf_config) gc = {.known = EMEL_GGUF_CONFIG_INIT(.platform = &fp.ops)};
  gc.known.struct_size = sizeof gc;
  emel_gguf *g = (emel_gguf *)&gc;
  ck_assert_int_eq(emel_gguf_open(&g, path, &gc.known, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_ptr_null(g);
  ck_assert_str_eq(e.detail, "emel_gguf_config.struct_size");

  NEWER(emel_io_config) ic = {.known = EMEL_IO_CONFIG_INIT(.platform = &fp.ops)};
  ic.known.struct_size = sizeof ic;
  emel_io *io;
  ck_assert_int_eq(emel_io_create(&io, &ic.known, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_str_eq(e.detail, "emel_io_config.struct_size"); /* every call with an err names it */
  emel_io_config unset;
  memset(&unset, 0, sizeof unset); /* struct_size 0: never initialized */
  ck_assert_int_eq(emel_io_create(&io, &unset, NULL), EMEL_STRUCT_SIZE_UNKNOWN);

  emel_io_config good = EMEL_IO_CONFIG_INIT(.platform = &fp.ops);
  ck_assert_int_eq(emel_io_create(&io, &good, NULL), EMEL_OK);
  NEWER(emel_io_mmap_config) mc = {.known = EMEL_IO_MMAP_CONFIG_INIT()};
  mc.known.struct_size = sizeof mc;
  ck_assert_int_eq(emel_io_mmap_attach(io, &mc.known, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_str_eq(e.detail, "emel_io_mmap_config.struct_size");
  NEWER(emel_io_read_config) rc = {.known = EMEL_IO_READ_CONFIG_INIT()};
  rc.known.struct_size = sizeof rc;
  ck_assert_int_eq(emel_io_read_attach(io, &rc.known, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_str_eq(e.detail, "emel_io_read_config.struct_size");
  ck_assert(!emel_io_has_strategy(io, EMEL_STRATEGY_MMAP) && !emel_io_has_strategy(io, EMEL_STRATEGY_READ));
  NEWER(emel_tensors_config) tc = {.known = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 2)};
  tc.known.struct_size = sizeof tc;
  emel_tensors *t;
  ck_assert_int_eq(emel_tensors_create(&t, &tc.known, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_str_eq(e.detail, "emel_tensors_config.struct_size");
  emel_io_destroy(io);

  /* The model names the struct it could not take, its own or a part's. */
  NEWER(emel_model_config) newer_model = {.known = EMEL_MODEL_CONFIG_INIT(.platform = &fp.ops)};
  newer_model.known.struct_size = sizeof newer_model;
  emel_model *m;
  ck_assert_int_eq(emel_model_open(&m, path, &newer_model.known, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_str_eq(e.detail, "emel_model_config.struct_size");
  emel_model_config parts = EMEL_MODEL_CONFIG_INIT(.platform = &fp.ops, .read = &rc.known);
  ck_assert_int_eq(emel_model_open(&m, path, &parts, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_str_eq(e.detail, "emel_model_config.read");
  parts = (emel_model_config)EMEL_MODEL_CONFIG_INIT(.platform = &fp.ops, .mmap = &mc.known);
  ck_assert_int_eq(emel_model_open(&m, path, &parts, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_str_eq(e.detail, "emel_model_config.mmap");
  parts = (emel_model_config)EMEL_MODEL_CONFIG_INIT(.platform = &fp.ops, .gguf = &gc.known);
  ck_assert_int_eq(emel_model_open(&m, path, &parts, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_str_eq(e.detail, "emel_model_config.gguf");
  NEWER(emel_platform_ops) ops = {.known = fp.ops};
  ops.known.struct_size = sizeof ops;
  parts = (emel_model_config)EMEL_MODEL_CONFIG_INIT(.platform = &ops.known);
  ck_assert_int_eq(emel_model_open(&m, path, &parts, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_str_eq(e.detail, "emel_model_config.platform");

  /* Load options, on every load call. */
  emel_model_config cfg = EMEL_MODEL_CONFIG_INIT(.platform = &fp.ops);
  ck_assert_int_eq(emel_model_open(&m, path, &cfg, &e), EMEL_OK);
  NEWER(emel_load_options) lo = {.known = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ)};
  lo.known.struct_size = sizeof lo;
  emel_tensor_view v;
  ck_assert_int_eq(emel_model_load(m, "a.weight", &lo.known, &v, NULL), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_int_eq(emel_tensors_load(emel_model_tensors(m), 0, &lo.known, &v, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_str_eq(e.detail, "emel_load_options.struct_size");
  ck_assert_int_eq(emel_tensors_load_batch(emel_model_tensors(m), NULL, 2, &lo.known, NULL, &e),
                   EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_str_eq(e.detail, "emel_load_options.struct_size");
  emel_load_options zero;
  memset(&zero, 0, sizeof zero);
  ck_assert_int_eq(emel_model_load(m, "a.weight", &zero, &v, NULL), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_uint_eq(emel_tensors_resident_count(emel_model_tensors(m)), 0);
  emel_model_close(m);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
}
END_TEST

/* Guards against a caller's alloc paired with the default free: the table is
 * refused before anything is allocated, by every entry point that takes one. */
START_TEST(test_ops_without_their_pair_are_refused_before_anything_is_allocated) {
  fault_platform fp;
  fault_platform_init(&fp);
  emel_platform_ops half = fp.ops;
  half.free = NULL; /* the fault platform's alloc, the default free */
  emel_model_config cfg = EMEL_MODEL_CONFIG_INIT(.platform = &half);
  emel_model *m;
  emel_error e;
  ck_assert_int_eq(emel_model_open(&m, path, &cfg, &e), EMEL_PLATFORM_OPS_UNPAIRED);
  ck_assert_str_eq(e.detail, "emel_model_config.platform");
  emel_gguf_config gc = EMEL_GGUF_CONFIG_INIT(.platform = &half);
  emel_gguf *g;
  ck_assert_int_eq(emel_gguf_open(&g, path, &gc, &e), EMEL_PLATFORM_OPS_UNPAIRED);
  ck_assert_str_eq(e.detail, "emel_gguf_config.platform");
  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &half);
  emel_io *io;
  ck_assert_int_eq(emel_io_create(&io, &ic, &e), EMEL_PLATFORM_OPS_UNPAIRED);
  ck_assert_str_eq(e.detail, "emel_io_config.platform");
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.capacity = 1, .platform = &half);
  emel_tensors *t;
  ck_assert_int_eq(emel_tensors_create(&t, &tc, &e), EMEL_PLATFORM_OPS_UNPAIRED);
  ck_assert_str_eq(e.detail, "emel_tensors_config.platform");
  ck_assert_uint_eq(fp.calls[FP_ALLOC], 0);
  ck_assert_uint_eq(fp.calls[FP_OPEN], 0);
}
END_TEST

static int destroyed;
static void stub_acquire(void *self, const emel_io_request *request, emel_io_result *result) {
  (void)self;
  (void)request;
  (void)result;
}
static emel_error stub_release(void *self, emel_io_handle handle) {
  (void)self;
  (void)handle;
  return (emel_error){.code = EMEL_OK};
}
static void stub_destroy(void *self) { *(int *)self += 1; }

/* Guards against a plug-in built against a newer header being attached (the
 * boundary would call members it does not know), and against leaking the
 * refused strategy: the boundary owns it either way. */
START_TEST(test_a_strategy_from_a_newer_header_is_refused_and_destroyed) {
  emel_io *io;
  ck_assert_int_eq(emel_io_create(&io, NULL, NULL), EMEL_OK);
  NEWER(emel_io_strategy_ops) ops = {.known = EMEL_IO_STRATEGY_OPS_INIT(
                                         .kind = EMEL_STRATEGY_READ, .name = "newer", .acquire = stub_acquire,
                                         .release = stub_release, .destroy = stub_destroy)};
  ops.known.struct_size = sizeof ops;
  destroyed = 0;
  emel_error e;
  ck_assert_int_eq(emel_io_attach(io, &ops.known, &destroyed, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_str_eq(e.detail, "emel_io_strategy_ops.struct_size");
  ck_assert_int_eq(destroyed, 1);
  ck_assert(!emel_io_has_strategy(io, EMEL_STRATEGY_READ));
  ops.known.struct_size = sizeof ops.known;
  ck_assert_int_eq(emel_io_attach(io, &ops.known, &destroyed, NULL), EMEL_OK);
  ck_assert_ptr_eq(emel_io_strategy_self(io, EMEL_STRATEGY_READ, &ops.known), &destroyed);
  emel_io_destroy(io);
  ck_assert_int_eq(destroyed, 2);
}
END_TEST

/* Guards against reading past an older caller's struct: members its header
 * did not have (here set to values that would fail or misdirect) must take
 * their defaults. */
START_TEST(test_an_older_smaller_struct_is_read_up_to_its_size) {
  fault_platform fp;
  fault_platform_init(&fp);
  emel_platform_ops never = EMEL_PLATFORM_OPS_INIT();
  never.struct_size = 0; /* taken, it would be STRUCT_SIZE_UNKNOWN */

  emel_gguf_config gc = EMEL_GGUF_CONFIG_INIT(.platform = &fp.ops, .max_tensors = 1);
  gc.struct_size = offsetof(emel_gguf_config, max_tensors);
  emel_gguf *g;
  ck_assert_int_eq(emel_gguf_open(&g, path, &gc, NULL), EMEL_OK); /* 2 tensors: the default cap */
  ck_assert_uint_eq(emel_gguf_tensor_count(g), 2);
  emel_gguf_close(g);

  emel_io_config ic = EMEL_IO_CONFIG_INIT(.platform = &fp.ops, .max_files = EMEL_IO_MAX_FILES + 1);
  ic.struct_size = offsetof(emel_io_config, max_files);
  emel_io *io;
  ck_assert_int_eq(emel_io_create(&io, &ic, NULL), EMEL_OK);
  uint32_t file;
  ck_assert_int_eq(emel_io_add_file(io, path, strlen(path), &file, NULL), EMEL_OK);
  emel_io_mmap_config mc = EMEL_IO_MMAP_CONFIG_INIT(.max_mappings = 1);
  mc.struct_size = offsetof(emel_io_mmap_config, max_mappings);
  ck_assert_int_eq(emel_io_mmap_attach(io, &mc, NULL), EMEL_OK);
  emel_io_read_config rc = EMEL_IO_READ_CONFIG_INIT(.max_buffers = 1, .threads = EMEL_IO_READ_MAX_THREADS + 1);
  rc.struct_size = offsetof(emel_io_read_config, threads); /* max_buffers read, threads not */
  ck_assert_int_eq(emel_io_read_attach(io, &rc, NULL), EMEL_OK);
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.io = io, .capacity = 2, .platform = &never);
  tc.struct_size = offsetof(emel_tensors_config, platform);
  emel_tensors *t;
  ck_assert_int_eq(emel_tensors_create(&t, &tc, NULL), EMEL_OK);
  uint32_t a, b;
  emel_tensor_span span = {.n_dims = 1, .dims = {1024, 1, 1, 1}, .file_index = file, .size = 4096};
  span.offset = 4096;
  ck_assert_int_eq(emel_tensors_add(t, "a", 1, &span, &a, NULL), EMEL_OK);
  span.offset = 0;
  ck_assert_int_eq(emel_tensors_add(t, "b", 1, &span, &b, NULL), EMEL_OK);
  /* Two mappings live at once: the pool is the default, not the 1 past the size. */
  emel_load_options mapped = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP);
  emel_tensor_view v;
  ck_assert_int_eq(emel_tensors_load(t, a, &mapped, &v, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_load(t, b, &mapped, &v, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  /* Options of a header without target: the buffer past the size is not used. */
  uint8_t small[8];
  emel_load_options old = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ, .target = small,
                                                 .target_size = sizeof small);
  old.struct_size = offsetof(emel_load_options, target);
  ck_assert_int_eq(emel_tensors_load(t, a, &old, &v, NULL), EMEL_OK);
  ck_assert_int_eq(v.residency, EMEL_RESIDENCY_OWNED);
  /* max_buffers, inside the size, was read: one live buffer. */
  ck_assert_int_eq(emel_tensors_load(t, b, &old, &v, NULL), EMEL_POOL_EXHAUSTED);
  ck_assert_int_eq(emel_tensors_evict(t, a, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_load_batch(t, &b, 1, &old, NULL, NULL), EMEL_OK); /* target past the size: not refused */
  emel_tensors_destroy(t);
  emel_io_destroy(io);

  emel_model_config cfg = EMEL_MODEL_CONFIG_INIT(.platform = &fp.ops);
  emel_gguf_config unset_gguf;
  memset(&unset_gguf, 0, sizeof unset_gguf);
  cfg.gguf = &unset_gguf;
  cfg.mmap = (const emel_io_mmap_config *)&never; /* never read: past the size */
  cfg.read = (const emel_io_read_config *)&never;
  cfg.struct_size = offsetof(emel_model_config, gguf);
  emel_model *m;
  ck_assert_int_eq(emel_model_open(&m, path, &cfg, NULL), EMEL_OK);
  ck_assert_int_eq(emel_model_load(m, "b.weight", &mapped, &v, NULL), EMEL_OK);
  emel_model_close(m);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
}
END_TEST

/* Guards against the initializer macros drifting from the structs. */
START_TEST(test_the_init_macros_set_struct_size_and_keep_the_members_given) {
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP, .flags = EMEL_LOAD_POPULATE);
  ck_assert_uint_eq(o.struct_size, sizeof o);
  ck_assert_int_eq(o.strategy, EMEL_STRATEGY_MMAP);
  ck_assert_uint_eq(o.flags, EMEL_LOAD_POPULATE);
  emel_model_config mc = EMEL_MODEL_CONFIG_INIT();
  ck_assert_uint_eq(mc.struct_size, sizeof mc);
  ck_assert_ptr_null(mc.platform);
  const emel_io_read_config rc = EMEL_IO_READ_CONFIG_INIT(.threads = 1);
  ck_assert_uint_eq(rc.struct_size, sizeof rc);
  ck_assert_uint_eq(rc.threads, 1);
  ck_assert_uint_eq(((emel_io_mmap_config)EMEL_IO_MMAP_CONFIG_INIT()).struct_size, sizeof(emel_io_mmap_config));
  ck_assert_uint_eq(((emel_io_config)EMEL_IO_CONFIG_INIT()).struct_size, sizeof(emel_io_config));
  ck_assert_uint_eq(((emel_tensors_config)EMEL_TENSORS_CONFIG_INIT()).struct_size, sizeof(emel_tensors_config));
  ck_assert_uint_eq(((emel_gguf_config)EMEL_GGUF_CONFIG_INIT()).struct_size, sizeof(emel_gguf_config));
  ck_assert_uint_eq(((emel_platform_ops)EMEL_PLATFORM_OPS_INIT()).struct_size, sizeof(emel_platform_ops));
  ck_assert_uint_eq(((emel_io_strategy_ops)EMEL_IO_STRATEGY_OPS_INIT()).struct_size, sizeof(emel_io_strategy_ops));
  ck_assert_str_eq(emel_status_name(EMEL_STRUCT_SIZE_UNKNOWN), "STRUCT_SIZE_UNKNOWN");
}
END_TEST

/* The same for load jobs: a newer emel_job_config is refused by name, an
 * older one is read up to its size (the callbacks it did not know, set here
 * to one that fails the test, are not called), and a platform table from
 * before the event ops gets the defaults for them (a background job starts). */
static void never_called(void *user, uint32_t index, const emel_tensor_view *view) {
  (void)user;
  (void)index;
  (void)view;
  ck_abort_msg("a member past the caller's struct_size was read");
}

START_TEST(test_job_structs_grow) {
  emel_platform_ops old = EMEL_PLATFORM_OPS_INIT();
  old.struct_size = offsetof(emel_platform_ops, event_open);
  emel_model_config mc = EMEL_MODEL_CONFIG_INIT(.platform = &old);
  emel_model *m;
  ck_assert_int_eq(emel_model_open(&m, path, &mc, NULL), EMEL_OK);
  emel_tensors *t = emel_model_tensors(m);
  NEWER(emel_job_config) newer = {.known = EMEL_JOB_CONFIG_INIT()};
  newer.known.struct_size = sizeof newer;
  emel_job *job = NULL;
  emel_error e;
  ck_assert_int_eq(emel_job_create(&job, t, &newer.known, &e), EMEL_STRUCT_SIZE_UNKNOWN);
  ck_assert_str_eq(e.detail, "emel_job_config.struct_size");
  ck_assert_ptr_null(job);
  emel_job_config older = EMEL_JOB_CONFIG_INIT(.on_ready = never_called);
  older.struct_size = offsetof(emel_job_config, on_ready);
  ck_assert_int_eq(emel_job_create(&job, t, &older, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_start(job, NULL), EMEL_OK);
  ck_assert_int_eq(emel_job_wait(job, -1), EMEL_JOB_COMPLETED);
  emel_job_destroy(job);
  ck_assert_uint_eq(emel_tensors_resident_count(t), 2);
  emel_model_close(m);
}
END_TEST

static Suite *structs_suite(void) {
  Suite *s = suite_create("structs");
  TCase *tc = tcase_create("struct_size");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_a_struct_from_a_newer_header_is_refused_by_name);
  tcase_add_test(tc, test_a_strategy_from_a_newer_header_is_refused_and_destroyed);
  tcase_add_test(tc, test_ops_without_their_pair_are_refused_before_anything_is_allocated);
  tcase_add_test(tc, test_an_older_smaller_struct_is_read_up_to_its_size);
  tcase_add_test(tc, test_the_init_macros_set_struct_size_and_keep_the_members_given);
  tcase_add_test(tc, test_job_structs_grow);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(structs_suite)

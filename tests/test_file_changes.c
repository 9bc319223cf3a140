/* Files that change under a load: truncated, rewritten in place or replaced
 * by rename after the GGUF index read them, before or during a load.
 *
 * Read: every change is refused with FILE_CHANGED (before any read, at an
 * early end of file, or after the transfer), nothing leaks, the tensor stays
 * bound, and once the file is restored the next load succeeds. Mmap: what is
 * guaranteed (see src/emel/io/mmap/mmap.h): a file changed before its first
 * mapping is refused; a file replaced by rename after mapping keeps serving
 * the bytes of the file that was mapped. Real files; the fault platform
 * counts what is held and lets a test act between two reads.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "emel/model.h"
#include "fault_platform.h"
#include "gguf_writer.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#ifndef EMEL_TEST_WORKDIR
#define EMEL_TEST_WORKDIR "."
#endif

enum { TENSORS = 6 };

static fault_platform fp;
static char path[512], aside[512];
static unsigned char *original; /* the file as written */
static size_t original_size;
static struct stat original_stat;

static unsigned char *slurp(const char *p, size_t *size) {
  FILE *f = fopen(p, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)n);
  ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *size = (size_t)n;
  return buf;
}

/* A model of TENSORS tensors of 64 KiB (several 16 KiB read chunks each). */
static void write_model(const char *name) {
  static const uint32_t types[] = {EMEL_GGML_TYPE_F16, EMEL_GGML_TYPE_Q8_0};
  snprintf(path, sizeof path, "%s/%s.gguf", EMEL_TEST_WORKDIR, name);
  snprintf(aside, sizeof aside, "%s/%s.aside.gguf", EMEL_TEST_WORKDIR, name);
  gw *w = gw_new();
  ck_assert_int_eq(gw_model_shape(w, TENSORS, (uint64_t)TENSORS << 16, types, 2), 0);
  ck_assert_int_eq(gw_write(w, path), 0);
  gw_free(w);
  free(original);
  original = slurp(path, &original_size);
  ck_assert_int_eq(stat(path, &original_stat), 0);
}

/* Writes the original bytes back into the same inode and sets its old
 * modification time: the file is again exactly what was indexed. */
static void restore_in_place(void) {
  int fd = open(path, O_WRONLY);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(pwrite(fd, original, original_size, 0), (ssize_t)original_size);
  ck_assert_int_eq(ftruncate(fd, (off_t)original_size), 0);
  struct timespec times[2] = {original_stat.st_atim, original_stat.st_mtim};
  ck_assert_int_eq(futimens(fd, times), 0);
  close(fd);
}

/* Same bytes, another modification time: rewritten in place. */
static void rewrite_in_place(void *unused) {
  (void)unused;
  int fd = open(path, O_WRONLY);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(pwrite(fd, original, original_size, 0), (ssize_t)original_size);
  struct timespec times[2] = {original_stat.st_atim, original_stat.st_mtim};
  times[1].tv_sec += 10;
  ck_assert_int_eq(futimens(fd, times), 0);
  close(fd);
}

/* Cut the file in the middle of the data section. */
static void truncate_file(void *unused) {
  (void)unused;
  ck_assert_int_eq(truncate(path, (off_t)(original_size / 2)), 0);
}

/* Moves the indexed file aside and puts a copy (another inode) with other
 * bytes in its place. */
static void replace_by_rename(void) {
  ck_assert_int_eq(rename(path, aside), 0);
  unsigned char *other = malloc(original_size);
  for (size_t i = 0; i < original_size; i++) other[i] = (unsigned char)~original[i];
  FILE *f = fopen(path, "wb");
  ck_assert_uint_eq(fwrite(other, 1, original_size, f), original_size);
  fclose(f);
  free(other);
}

static void put_back(void) { ck_assert_int_eq(rename(aside, path), 0); }

static emel_model *open_model(uint32_t threads) {
  /* Ring reads as large as the preads: the nth read is at the same place with either engine. */
  emel_io_read_config rc = EMEL_IO_READ_CONFIG_INIT(.chunk_size = 16u << 10, .threads = threads, .ring_request = 16u << 10);
  if (threads > 1) rc.min_parallel_bytes = 1;
  emel_model_config cfg = EMEL_MODEL_CONFIG_INIT(.platform = &fp.ops, .read = &rc);
  emel_model *m;
  emel_error err;
  ck_assert_int_eq(emel_model_open(&m, path, &cfg, &err), EMEL_OK);
  return m;
}

static emel_status load(emel_model *m, uint32_t i, emel_strategy strategy, emel_tensor_view *view) {
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = strategy);
  return emel_tensors_load(emel_model_tensors(m), i, &o, view, NULL);
}

/* The tensor's resident bytes are the original file's. */
static void assert_original_bytes(emel_model *m, uint32_t i, const emel_tensor_view *v) {
  const emel_gguf_tensor *t = emel_gguf_tensor_at(emel_model_index(m), i);
  ck_assert_uint_eq(v->size, t->size);
  ck_assert_int_eq(memcmp(v->data, original + t->offset, (size_t)t->size), 0);
}

/* Refused by name, nothing held for it, the tensor still bound. */
static void assert_refused_cleanly(emel_model *m, uint32_t i, emel_status got) {
  ck_assert_str_eq(emel_status_name(got), "FILE_CHANGED");
  ck_assert_int_eq(emel_tensors_state(emel_model_tensors(m), i), EMEL_TENSOR_BOUND);
  ck_assert_uint_eq(emel_io_live(emel_model_io(m), EMEL_STRATEGY_READ), 0);
  ck_assert_uint_eq(emel_io_live(emel_model_io(m), EMEL_STRATEGY_MMAP), 0);
  ck_assert_int_eq(fp.open_fds, 0); /* the descriptor of the changed file is not kept */
  ck_assert_int_eq(fp.live_maps, 0);
}

static void load_and_check(emel_model *m, uint32_t i, emel_strategy strategy) {
  emel_tensor_view v;
  ck_assert_int_eq(load(m, i, strategy, &v), EMEL_OK);
  assert_original_bytes(m, i, &v);
  ck_assert_int_eq(emel_tensors_evict(emel_model_tensors(m), i, NULL), EMEL_OK);
}

static void close_model(emel_model *m) {
  emel_model_close(m);
  ck_assert_int_eq(fault_platform_outstanding(&fp), 0);
}

static void setup(void) { fault_platform_init(&fp); }
static void teardown(void) {
  pthread_mutex_destroy(&fp.lock);
  unlink(aside);
}

START_TEST(test_the_index_records_each_file_as_it_was_indexed) {
  write_model("identity");
  emel_model *m = open_model(1);
  const emel_file_identity *id = emel_gguf_file_identity(emel_model_index(m), 0);
  ck_assert_ptr_nonnull(id);
  ck_assert_uint_eq(id->size, original_size);
  ck_assert_uint_eq(id->inode, (uint64_t)original_stat.st_ino);
  ck_assert_uint_eq(id->device, (uint64_t)original_stat.st_dev);
  ck_assert_int_eq(id->mtime_ns, (int64_t)original_stat.st_mtim.tv_sec * 1000000000 + original_stat.st_mtim.tv_nsec);
  ck_assert_ptr_null(emel_gguf_file_identity(emel_model_index(m), 1));
  ck_assert_int_eq(emel_io_expect_file(emel_model_io(m), 1, id, NULL), EMEL_INVALID_FILE_INDEX);
  ck_assert_int_eq(emel_io_expect_file(emel_model_io(m), 0, NULL, NULL), EMEL_INVALID_ARGUMENT);
  close_model(m);
}
END_TEST

/* ---- read ---- */

START_TEST(test_read_refuses_a_file_truncated_after_it_was_indexed_and_loads_it_once_restored) {
  write_model("read-truncated");
  emel_model *m = open_model(1);
  const uint64_t reads = fp.calls[FP_PREAD] + fp.calls[FP_PREADV];
  truncate_file(NULL);
  assert_refused_cleanly(m, 0, load(m, 0, EMEL_STRATEGY_READ, NULL));
  ck_assert_uint_eq(fp.calls[FP_PREAD] + fp.calls[FP_PREADV], reads); /* refused before any read */
  restore_in_place();
  load_and_check(m, 0, EMEL_STRATEGY_READ);
  close_model(m);
}
END_TEST

START_TEST(test_read_refuses_a_file_replaced_by_rename_before_its_first_load) {
  write_model("read-replaced");
  emel_model *m = open_model(1);
  replace_by_rename();
  assert_refused_cleanly(m, 0, load(m, 0, EMEL_STRATEGY_READ, NULL));
  put_back();
  load_and_check(m, 0, EMEL_STRATEGY_READ);
  close_model(m);
}
END_TEST

START_TEST(test_read_refuses_a_file_rewritten_in_place_during_the_load) {
  write_model("read-rewritten");
  emel_model *m = open_model(1);
  fault_platform_before_read(&fp, 2, rewrite_in_place, NULL); /* between the tensor's first and second chunk */
  assert_refused_cleanly(m, 0, load(m, 0, EMEL_STRATEGY_READ, NULL));
  restore_in_place();
  load_and_check(m, 0, EMEL_STRATEGY_READ);
  ck_assert_uint_eq(fp.calls[FP_OPEN], 1 + 2); /* the index, the refused load, the one after */
  close_model(m);
}
END_TEST

START_TEST(test_read_refuses_a_file_truncated_in_the_middle_of_a_transfer) {
  write_model("read-cut");
  emel_model *m = open_model(1);
  const uint32_t last = TENSORS - 1; /* its bytes lie past the cut */
  fault_platform_before_read(&fp, 2, truncate_file, NULL);
  assert_refused_cleanly(m, last, load(m, last, EMEL_STRATEGY_READ, NULL));
  restore_in_place();
  load_and_check(m, last, EMEL_STRATEGY_READ);
  close_model(m);
}
END_TEST

START_TEST(test_read_refuses_a_file_whose_modification_time_moved_under_a_threaded_batch) {
  write_model("read-batch");
  emel_model *m = open_model(2);
  emel_tensors *t = emel_model_tensors(m);
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);
  emel_status st[TENSORS];
  /* the next look is the batch's open; then one per run, on its lane */
  fault_platform_touch(&fp, fp.calls[FP_FILE_IDENTITY] + 2, 1, 1000);
  ck_assert_int_eq(emel_tensors_load_batch(t, NULL, TENSORS, &o, st, NULL), EMEL_FILE_CHANGED);
  uint32_t refused = 0;
  for (uint32_t i = 0; i < TENSORS; i++) {
    ck_assert(st[i] == EMEL_OK || st[i] == EMEL_FILE_CHANGED);
    ck_assert_int_eq(emel_tensors_state(t, i), st[i] == EMEL_OK ? EMEL_TENSOR_RESIDENT : EMEL_TENSOR_BOUND);
    refused += st[i] == EMEL_FILE_CHANGED;
  }
  ck_assert_uint_gt(refused, 0);
  ck_assert_uint_eq(emel_io_live(emel_model_io(m), EMEL_STRATEGY_READ), TENSORS - refused);
  ck_assert_int_eq(fp.open_fds, 0); /* forgotten on settlement */
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_load_batch(t, NULL, TENSORS, &o, st, NULL), EMEL_OK);
  for (uint32_t i = 0; i < TENSORS; i++) {
    emel_tensor_view v;
    ck_assert_int_eq(emel_tensors_view(t, i, &v, NULL), EMEL_OK);
    assert_original_bytes(m, i, &v);
  }
  close_model(m);
}
END_TEST

START_TEST(test_read_refuses_a_file_truncated_before_a_batch) {
  write_model("read-batch-cut");
  emel_model *m = open_model(2);
  emel_tensors *t = emel_model_tensors(m);
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_READ);
  emel_status st[TENSORS];
  truncate_file(NULL);
  ck_assert_int_eq(emel_tensors_load_batch(t, NULL, TENSORS, &o, st, NULL), EMEL_FILE_CHANGED);
  for (uint32_t i = 0; i < TENSORS; i++) assert_refused_cleanly(m, i, st[i]);
  restore_in_place();
  ck_assert_int_eq(emel_tensors_load_batch(t, NULL, TENSORS, &o, st, NULL), EMEL_OK);
  close_model(m);
}
END_TEST

START_TEST(test_an_early_end_of_file_that_cannot_be_checked_is_stat_failed) {
  write_model("read-eof-stat");
  emel_model *m = open_model(1);
  fault_platform_short_read(&fp, fp.calls[FP_PREAD] + 1, 1, 0);           /* the load's first read: nothing */
  fault_platform_ring_completion(&fp, fp.completions + 1, 1, 0, 0);       /* (or its ring's first completion) */
  fault_platform_fail(&fp, FP_FILE_IDENTITY, fp.calls[FP_FILE_IDENTITY] + 2, EIO); /* the look after it fails */
  ck_assert_int_eq(load(m, 0, EMEL_STRATEGY_READ, NULL), EMEL_STAT_FAILED);
  ck_assert_int_eq(emel_tensors_state(emel_model_tensors(m), 0), EMEL_TENSOR_BOUND);
  fault_platform_clear_faults(&fp);
  load_and_check(m, 0, EMEL_STRATEGY_READ);
  close_model(m);
}
END_TEST

START_TEST(test_read_keeps_serving_the_indexed_bytes_of_a_file_replaced_after_it_was_opened) {
  write_model("read-open-replaced");
  emel_model *m = open_model(1);
  load_and_check(m, 0, EMEL_STRATEGY_READ); /* opens the file: the descriptor is kept */
  replace_by_rename();
  load_and_check(m, 1, EMEL_STRATEGY_READ); /* still the opened inode: the indexed bytes */
  close_model(m);
}
END_TEST

/* ---- mmap ---- */

START_TEST(test_mmap_refuses_a_file_truncated_before_it_is_mapped) {
  write_model("mmap-truncated");
  emel_model *m = open_model(1);
  truncate_file(NULL);
  assert_refused_cleanly(m, TENSORS - 1, load(m, TENSORS - 1, EMEL_STRATEGY_MMAP, NULL));
  ck_assert_uint_eq(fp.calls[FP_MAP], 0); /* nothing mapped past the new end */
  restore_in_place();
  load_and_check(m, TENSORS - 1, EMEL_STRATEGY_MMAP);
  close_model(m);
}
END_TEST

START_TEST(test_mmap_refuses_a_file_replaced_by_rename_before_it_is_mapped) {
  write_model("mmap-replaced");
  emel_model *m = open_model(1);
  replace_by_rename();
  assert_refused_cleanly(m, 0, load(m, 0, EMEL_STRATEGY_MMAP, NULL));
  put_back();
  load_and_check(m, 0, EMEL_STRATEGY_MMAP);
  close_model(m);
}
END_TEST

/* Same size, same inode, only the modification time moved: kills
 * mmap/actions.c's identity check with the mtime comparison dropped (every
 * other mmap test changed the size or the inode). */
START_TEST(test_mmap_refuses_a_file_rewritten_in_place_before_it_is_mapped) {
  write_model("mmap-rewritten");
  emel_model *m = open_model(1);
  rewrite_in_place(NULL);
  struct stat now;
  ck_assert_int_eq(stat(path, &now), 0);
  ck_assert(now.st_ino == original_stat.st_ino && now.st_size == original_stat.st_size);
  assert_refused_cleanly(m, 0, load(m, 0, EMEL_STRATEGY_MMAP, NULL));
  ck_assert_uint_eq(fp.calls[FP_MAP], 0);
  restore_in_place();
  load_and_check(m, 0, EMEL_STRATEGY_MMAP);
  close_model(m);
}
END_TEST

START_TEST(test_mmap_keeps_the_mapped_bytes_of_a_file_replaced_by_rename_after_mapping) {
  write_model("mmap-mapped-replaced");
  emel_model *m = open_model(1);
  emel_tensor_view first, second;
  ck_assert_int_eq(load(m, 0, EMEL_STRATEGY_MMAP, &first), EMEL_OK);
  replace_by_rename();
  assert_original_bytes(m, 0, &first);
  ck_assert_int_eq(load(m, 1, EMEL_STRATEGY_MMAP, &second), EMEL_OK); /* the mapping of the old inode */
  assert_original_bytes(m, 1, &second);
  ck_assert_int_eq(emel_tensors_evict_all(emel_model_tensors(m), NULL), EMEL_OK);
  /* unmapped now: the next map opens the path again and finds the other file */
  assert_refused_cleanly(m, 0, load(m, 0, EMEL_STRATEGY_MMAP, NULL));
  close_model(m);
}
END_TEST

/* ---- mmap: a file truncated in place under its mapping (item: SIGBUS) ---- */

static emel_status load_flags(emel_model *m, uint32_t i, unsigned flags) {
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP, .flags = flags);
  return emel_tensors_load(emel_model_tensors(m), i, &o, NULL, NULL);
}

/* Guards against: MADV_POPULATE_READ's EFAULT on pages the file lost being
 * reported as a populate failure (or, populating by touch, a SIGBUS) instead
 * of FILE_CHANGED; and against the look at the file after it leaking. */
START_TEST(test_mmap_populate_of_a_file_truncated_under_its_mapping_is_file_changed) {
  write_model("mmap-populate-cut");
  emel_model *m = open_model(1);
  const uint32_t last = TENSORS - 1; /* its bytes lie past the cut */
  ck_assert_int_eq(load_flags(m, 0, 0), EMEL_OK); /* maps the whole file */
  truncate_file(NULL);
  ck_assert_int_eq(load_flags(m, last, EMEL_LOAD_POPULATE), EMEL_FILE_CHANGED);
  ck_assert_int_eq(emel_tensors_last_error(emel_model_tensors(m), last).os_errno, EFAULT);
  ck_assert_int_eq(emel_tensors_state(emel_model_tensors(m), last), EMEL_TENSOR_BOUND);
  ck_assert_uint_eq(emel_io_live(emel_model_io(m), EMEL_STRATEGY_MMAP), 1); /* tensor 0 only */
  ck_assert_int_eq(fp.open_fds, 0);
  ck_assert_int_eq(emel_tensors_evict_all(emel_model_tensors(m), NULL), EMEL_OK);
  ck_assert_int_eq(fp.live_maps, 0);
  restore_in_place();
  ck_assert_int_eq(load_flags(m, last, EMEL_LOAD_POPULATE), EMEL_OK);
  close_model(m);
}
END_TEST

/* A populate fault on a file that did not change stays a populate failure,
 * with the fault's errno, however the look at the file goes; a failure that
 * is no fault (ENOMEM) is one without any look. */
START_TEST(test_a_populate_fault_on_an_unchanged_file_is_a_populate_failure) {
  write_model("mmap-populate-fault");
  emel_model *m = open_model(1);
  emel_tensors *t = emel_model_tensors(m);
  for (int how = 0; how < 4; how++) {
    const int err = how == 0 ? EFAULT : how == 3 ? ENOMEM : EIO;
    const uint64_t opens = fp.calls[FP_OPEN];
    fault_platform_fail(&fp, FP_ADVISE, fp.calls[FP_ADVISE] + 1, err);
    if (how == 1) fault_platform_fail(&fp, FP_OPEN, fp.calls[FP_OPEN] + 2, EMFILE); /* the look's open */
    if (how == 2) fault_platform_fail(&fp, FP_FILE_IDENTITY, fp.calls[FP_FILE_IDENTITY] + 2, EIO);
    ck_assert_int_eq(load_flags(m, 0, EMEL_LOAD_POPULATE), EMEL_MMAP_POPULATE_FAILED);
    ck_assert_int_eq(emel_tensors_last_error(t, 0).os_errno, err);
    ck_assert_uint_eq(fp.calls[FP_OPEN] - opens, how == 3 ? 1 : 2); /* the map's open, and the look's */
    ck_assert_int_eq(emel_tensors_state(t, 0), EMEL_TENSOR_BOUND);
    ck_assert_int_eq(fp.open_fds, 0);
    ck_assert_int_eq(fp.live_maps, 0);
    fault_platform_clear_faults(&fp);
  }
  ck_assert_int_eq(load_flags(m, 0, EMEL_LOAD_POPULATE), EMEL_OK);
  close_model(m);
}
END_TEST

/* Guards against: hashing a mapped tensor whose file was cut under it dying
 * of SIGBUS (emel-load --verify exited 135) instead of FILE_CHANGED. */
START_TEST(test_hashing_a_mapped_tensor_of_a_truncated_file_is_file_changed) {
  write_model("mmap-hash-cut");
  emel_model *m = open_model(1);
  emel_tensors *t = emel_model_tensors(m);
  emel_load_options o = EMEL_LOAD_OPTIONS_INIT(.strategy = EMEL_STRATEGY_MMAP);
  ck_assert_int_eq(emel_tensors_load_batch(t, NULL, TENSORS, &o, NULL, NULL), EMEL_OK);
  const emel_gguf_tensor *first = emel_gguf_tensor_at(emel_model_index(m), 0);
  const uint64_t want = XXH3_64bits(original + first->offset, (size_t)first->size);
  uint64_t got = 0;
  ck_assert_int_eq(emel_tensors_hash(t, 0, &got, NULL), EMEL_OK);
  ck_assert_uint_eq(got, want);
  ck_assert_int_eq(emel_tensors_verify(t, 0, want, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_verify(t, 0, want ^ 1, NULL), EMEL_TENSOR_HASH_MISMATCH);
  truncate_file(NULL);
  ck_assert_int_eq(emel_tensors_hash(t, TENSORS - 1, &got, NULL), EMEL_FILE_CHANGED);
  ck_assert_int_eq(emel_tensors_last_error(t, TENSORS - 1).os_errno, EFAULT);
  ck_assert_int_eq(emel_tensors_verify(t, TENSORS - 1, 0, NULL), EMEL_FILE_CHANGED);
  ck_assert_int_eq(emel_tensors_hash(t, 0, &got, NULL), EMEL_OK); /* its pages are still in the file */
  ck_assert_uint_eq(got, want);
  ck_assert_int_eq(fp.open_fds, 0);
  ck_assert_int_eq(emel_tensors_evict_all(t, NULL), EMEL_OK);
  ck_assert_int_eq(emel_tensors_hash(t, 0, &got, NULL), EMEL_TENSOR_NOT_RESIDENT);
  ck_assert_int_eq(emel_tensors_hash(t, TENSORS, &got, NULL), EMEL_TENSOR_UNKNOWN);
  ck_assert_int_eq(emel_tensors_hash(t, 0, NULL, NULL), EMEL_INVALID_ARGUMENT);
  close_model(m);
}
END_TEST

/* A fault on a file that is still whole (unreadable storage, say) is a read
 * failure, not FILE_CHANGED; owned bytes hash without the guard. */
START_TEST(test_a_hash_fault_on_an_unchanged_file_is_read_failed) {
  write_model("mmap-hash-fault");
  emel_model *m = open_model(1);
  emel_tensors *t = emel_model_tensors(m);
  emel_tensor_view v;
  ck_assert_int_eq(load(m, 0, EMEL_STRATEGY_MMAP, &v), EMEL_OK);
  ck_assert_int_eq(load(m, 1, EMEL_STRATEGY_READ, &v), EMEL_OK);
  const int64_t fds = fp.open_fds; /* the read strategy keeps its descriptor */
  fault_platform_fail_many(&fp, FP_GUARD, fp.calls[FP_GUARD] + 1, 10, EFAULT);
  uint64_t got;
  ck_assert_int_eq(emel_tensors_hash(t, 0, &got, NULL), EMEL_READ_FAILED);
  ck_assert_int_eq(emel_tensors_last_error(t, 0).os_errno, EFAULT);
  ck_assert_int_eq(emel_tensors_hash(t, 1, &got, NULL), EMEL_OK);
  const emel_gguf_tensor *second = emel_gguf_tensor_at(emel_model_index(m), 1);
  ck_assert_uint_eq(got, XXH3_64bits(original + second->offset, (size_t)second->size));
  ck_assert_int_eq(fp.open_fds, fds);
  close_model(m);
}
END_TEST

static Suite *file_changes_suite(void) {
  Suite *s = suite_create("file_changes");
  TCase *tc = tcase_create("changes");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_the_index_records_each_file_as_it_was_indexed);
  tcase_add_test(tc, test_read_refuses_a_file_truncated_after_it_was_indexed_and_loads_it_once_restored);
  tcase_add_test(tc, test_read_refuses_a_file_replaced_by_rename_before_its_first_load);
  tcase_add_test(tc, test_read_refuses_a_file_rewritten_in_place_during_the_load);
  tcase_add_test(tc, test_read_refuses_a_file_truncated_in_the_middle_of_a_transfer);
  tcase_add_test(tc, test_read_refuses_a_file_whose_modification_time_moved_under_a_threaded_batch);
  tcase_add_test(tc, test_read_refuses_a_file_truncated_before_a_batch);
  tcase_add_test(tc, test_an_early_end_of_file_that_cannot_be_checked_is_stat_failed);
  tcase_add_test(tc, test_read_keeps_serving_the_indexed_bytes_of_a_file_replaced_after_it_was_opened);
  tcase_add_test(tc, test_mmap_refuses_a_file_truncated_before_it_is_mapped);
  tcase_add_test(tc, test_mmap_refuses_a_file_replaced_by_rename_before_it_is_mapped);
  tcase_add_test(tc, test_mmap_refuses_a_file_rewritten_in_place_before_it_is_mapped);
  tcase_add_test(tc, test_mmap_keeps_the_mapped_bytes_of_a_file_replaced_by_rename_after_mapping);
  tcase_add_test(tc, test_mmap_populate_of_a_file_truncated_under_its_mapping_is_file_changed);
  tcase_add_test(tc, test_a_populate_fault_on_an_unchanged_file_is_a_populate_failure);
  tcase_add_test(tc, test_hashing_a_mapped_tensor_of_a_truncated_file_is_file_changed);
  tcase_add_test(tc, test_a_hash_fault_on_an_unchanged_file_is_read_failed);
  suite_add_tcase(s, tc);
  return s;
}

EMEL_CHECK_MAIN(file_changes_suite)

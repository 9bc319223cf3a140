/* The io boundary: a file table plus the attached strategies, reached only
 * through emel_io_strategy_ops. It validates nothing a strategy validates
 * (path, index, span): it routes. */
#include "emel/io.h"
#include "emel/io/users.h"
#include "emel/io_strategy.h"
#include "emel/report.h"
#include "emel/util/struct_size.h"

#include <string.h>

struct emel_io {
  emel_platform_ops platform;
  emel_io_files files;
  struct {
    emel_io_strategy_ops ops;          /* the strategy's table, read up to its struct_size */
    const emel_io_strategy_ops *given; /* as attached (emel_io_strategy_self); NULL: none */
    void *self;
  } strategies[EMEL_STRATEGY_COUNT];
  uint32_t users;       /* tensor tables loading through this boundary */
  int destroy_pending;  /* emel_io_destroy was called while users > 0 */
};

static emel_error io_error(emel_status code) {
  emel_error e = {.code = code};
  return e;
}

static emel_status unreported_io_create(emel_io **out, const emel_io_config *config, const char **refused) {
  if (!out) return EMEL_INVALID_ARGUMENT;
  *out = NULL;
  emel_io_config c;
  *refused = "emel_io_config.struct_size";
  if (emel_struct_take(&c, sizeof c, config) != EMEL_OK) return EMEL_STRUCT_SIZE_UNKNOWN;
  *refused = "emel_io_config.platform";
  uint32_t max_files = c.max_files ? c.max_files : 16;
  if (max_files > EMEL_IO_MAX_FILES) return EMEL_INVALID_ARGUMENT;
  emel_platform_ops platform;
  emel_status s = emel_platform_resolve(&platform, c.platform, NULL);
  if (s != EMEL_OK) return s;
  emel_io *io = platform.alloc(platform.user, sizeof *io, _Alignof(emel_io));
  if (!io) return EMEL_OUT_OF_MEMORY;
  memset(io, 0, sizeof *io);
  io->platform = platform;
  io->files.capacity = max_files;
  io->files.files = platform.alloc(platform.user, max_files * sizeof(emel_io_file), _Alignof(emel_io_file));
  if (!io->files.files) {
    platform.free(platform.user, io, sizeof *io);
    return EMEL_OUT_OF_MEMORY;
  }
  memset(io->files.files, 0, max_files * sizeof(emel_io_file));
  *out = io;
  return EMEL_OK;
}

emel_status emel_io_create(emel_io **out, const emel_io_config *config, emel_error *err) {
  const char *refused = NULL;
  const emel_status s = unreported_io_create(out, config, &refused);
  const int named = s == EMEL_STRUCT_SIZE_UNKNOWN || s == EMEL_PLATFORM_OPS_UNPAIRED;
  return emel_report_detail(err, s, named ? refused : NULL);
}

static void destroy_now(emel_io *io) {
  for (int s = 0; s < EMEL_STRATEGY_COUNT; s++)
    if (io->strategies[s].given) io->strategies[s].ops.destroy(io->strategies[s].self);
  for (uint32_t i = 0; i < io->files.count; i++)
    io->platform.free(io->platform.user, (void *)io->files.files[i].path, io->files.files[i].path_len + 1);
  io->platform.free(io->platform.user, io->files.files, io->files.capacity * sizeof(emel_io_file));
  emel_platform_ops platform = io->platform;
  platform.free(platform.user, io, sizeof *io);
}

/* Tables that still use the boundary keep it (and what their tensors hold
 * through it) alive: the last one to go destroys it. */
void emel_io_destroy(emel_io *io) {
  if (!io) return;
  if (io->users > 0) {
    io->destroy_pending = 1;
    return;
  }
  destroy_now(io);
}

void emel_io_use(emel_io *io) {
  if (io) io->users++;
}

void emel_io_unuse(emel_io *io) {
  if (!io || io->users == 0) return;
  if (--io->users == 0 && io->destroy_pending) destroy_now(io);
}

static emel_status unreported_io_add_file(emel_io *io, const char *path, size_t path_len, uint32_t *file_index) {
  if (!io || !path || !file_index) return EMEL_INVALID_ARGUMENT;
  if (path_len > EMEL_IO_MAX_PATH) return EMEL_INVALID_PATH;
  if (io->files.count == io->files.capacity) return EMEL_FILE_TABLE_FULL;
  char *copy = io->platform.alloc(io->platform.user, path_len + 1, 1);
  if (!copy) return EMEL_OUT_OF_MEMORY;
  memcpy(copy, path, path_len);
  copy[path_len] = '\0';
  io->files.files[io->files.count].path = copy;
  io->files.files[io->files.count].path_len = path_len;
  io->files.files[io->files.count].has_expected = 0;
  *file_index = io->files.count++;
  return EMEL_OK;
}

emel_status emel_io_add_file(emel_io *io, const char *path, size_t path_len, uint32_t *file_index, emel_error *err) {
  return emel_report(err, unreported_io_add_file(io, path, path_len, file_index));
}

static emel_status unreported_io_expect_file(emel_io *io, uint32_t file_index, const emel_file_identity *expected) {
  if (!io || !expected) return EMEL_INVALID_ARGUMENT;
  if (file_index >= io->files.count) return EMEL_INVALID_FILE_INDEX;
  io->files.files[file_index].expected = *expected;
  io->files.files[file_index].has_expected = 1;
  return EMEL_OK;
}

emel_status emel_io_expect_file(emel_io *io, uint32_t file_index, const emel_file_identity *expected, emel_error *err) {
  return emel_report(err, unreported_io_expect_file(io, file_index, expected));
}

const emel_io_files *emel_io_files_of(const emel_io *io) { return &io->files; }

const emel_platform_ops *emel_io_platform(const emel_io *io) { return &io->platform; }

static emel_status unreported_io_attach(emel_io *io, const emel_io_strategy_ops *given, void *self) {
  if (!given) return EMEL_INVALID_ARGUMENT;
  emel_io_strategy_ops ops;
  if (emel_struct_take(&ops, sizeof ops, given) != EMEL_OK) {
    /* Every header with struct_size has destroy where this one has it. */
    if (given->destroy) given->destroy(self);
    return EMEL_STRUCT_SIZE_UNKNOWN;
  }
  if (!io || ops.kind <= EMEL_STRATEGY_NONE || ops.kind >= EMEL_STRATEGY_COUNT ||
      io->strategies[ops.kind].given || !ops.acquire || !ops.release || !ops.destroy) {
    if (ops.destroy) ops.destroy(self);
    return EMEL_INVALID_ARGUMENT;
  }
  io->strategies[ops.kind].ops = ops;
  io->strategies[ops.kind].given = given;
  io->strategies[ops.kind].self = self;
  return EMEL_OK;
}

emel_status emel_io_attach(emel_io *io, const emel_io_strategy_ops *ops, void *self, emel_error *err) {
  const emel_status s = unreported_io_attach(io, ops, self);
  return emel_report_detail(err, s, s == EMEL_STRUCT_SIZE_UNKNOWN ? "emel_io_strategy_ops.struct_size" : NULL);
}

int emel_io_has_strategy(const emel_io *io, emel_strategy strategy) {
  return io && strategy > EMEL_STRATEGY_NONE && strategy < EMEL_STRATEGY_COUNT &&
         io->strategies[strategy].given != NULL;
}

static void refuse(const emel_io_request *request, emel_io_result *result, emel_status code) {
  memset(result, 0, sizeof *result);
  result->strategy = request ? request->strategy : EMEL_STRATEGY_NONE;
  result->error = io_error(code);
}

emel_status emel_io_acquire(emel_io *io, const emel_io_request *request, emel_io_result *result) {
  if (!result) return EMEL_INVALID_ARGUMENT;
  if (!io || !request) {
    refuse(request, result, EMEL_INVALID_ARGUMENT);
    return result->error.code;
  }
  if (!emel_io_has_strategy(io, request->strategy)) {
    refuse(request, result, EMEL_UNKNOWN_STRATEGY);
    return result->error.code;
  }
  memset(result, 0, sizeof *result);
  result->strategy = request->strategy;
  io->strategies[request->strategy].ops.acquire(io->strategies[request->strategy].self, request, result);
  return result->error.code;
}

static void acquire_batch(emel_io *io, const emel_io_request *requests, emel_io_result *results, size_t count) {
  /* A batch goes to one strategy: the first request's. Mixed batches are split by the caller. */
  emel_strategy s = requests ? requests[0].strategy : EMEL_STRATEGY_NONE;
  int uniform = io && requests && emel_io_has_strategy(io, s);
  for (size_t i = 1; uniform && i < count; i++) uniform = requests[i].strategy == s;
  if (!uniform || !io->strategies[s].ops.acquire_batch) {
    for (size_t i = 0; i < count; i++) emel_io_acquire(io, requests ? &requests[i] : NULL, &results[i]);
    return;
  }
  memset(results, 0, count * sizeof *results);
  io->strategies[s].ops.acquire_batch(io->strategies[s].self, requests, results, count);
}

emel_status emel_io_acquire_batch(emel_io *io, const emel_io_request *requests, emel_io_result *results,
                                  size_t count) {
  if (count == 0) return EMEL_OK;
  if (!results) return EMEL_INVALID_ARGUMENT;
  acquire_batch(io, requests, results, count);
  for (size_t i = 0; i < count; i++)
    if (results[i].error.code != EMEL_OK) return results[i].error.code;
  return EMEL_OK;
}

static emel_error release(emel_io *io, emel_io_handle handle) {
  if (!io) return io_error(EMEL_INVALID_ARGUMENT);
  if (handle.strategy == EMEL_STRATEGY_NONE) return io_error(EMEL_OK); /* caller-owned: nothing held */
  if (!emel_io_has_strategy(io, (emel_strategy)handle.strategy)) return io_error(EMEL_INVALID_HANDLE);
  return io->strategies[handle.strategy].ops.release(io->strategies[handle.strategy].self, handle);
}

emel_status emel_io_release(emel_io *io, emel_io_handle handle, emel_error *err) {
  return emel_report_error(err, release(io, handle));
}

static emel_error advise(emel_io *io, emel_io_handle handle, uint64_t offset, uint64_t len,
                         emel_map_advice advice) {
  if (!io) return io_error(EMEL_INVALID_ARGUMENT);
  if (!emel_io_has_strategy(io, (emel_strategy)handle.strategy)) return io_error(EMEL_INVALID_HANDLE);
  if (!io->strategies[handle.strategy].ops.advise) return io_error(EMEL_INVALID_REQUEST);
  return io->strategies[handle.strategy].ops.advise(io->strategies[handle.strategy].self, handle,
                                                     offset, len, advice);
}

emel_status emel_io_advise(emel_io *io, emel_io_handle handle, uint64_t offset, uint64_t len,
                           emel_map_advice advice, emel_error *err) {
  return emel_report_error(err, advise(io, handle, offset, len, advice));
}

size_t emel_io_live(const emel_io *io, emel_strategy strategy) {
  if (!emel_io_has_strategy(io, strategy) || !io->strategies[strategy].ops.live) return 0;
  return io->strategies[strategy].ops.live(io->strategies[strategy].self);
}

void *emel_io_strategy_self(const emel_io *io, emel_strategy kind, const emel_io_strategy_ops *ops) {
  if (!emel_io_has_strategy(io, kind) || io->strategies[kind].given != ops) return NULL;
  return io->strategies[kind].self;
}

const char *emel_strategy_name(emel_strategy strategy) {
  switch (strategy) {
  case EMEL_STRATEGY_NONE: return "none";
  case EMEL_STRATEGY_MMAP: return "mmap";
  case EMEL_STRATEGY_READ: return "read";
  case EMEL_STRATEGY_STAGED: return "staged";
  case EMEL_STRATEGY_COUNT: break;
  }
  return "unknown";
}

const char *emel_residency_name(emel_residency residency) {
  switch (residency) {
  case EMEL_RESIDENCY_NONE: return "none";
  case EMEL_RESIDENCY_MAPPED: return "mapped";
  case EMEL_RESIDENCY_OWNED: return "owned";
  case EMEL_RESIDENCY_EXTERNAL: return "external";
  case EMEL_RESIDENCY_DELIVERED: return "delivered";
  }
  return "unknown";
}

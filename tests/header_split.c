/* Compiled, not run (CTest header_split_*): what each kind of caller sees.
 *
 * Default: every consumer header together declares nothing of the strategy
 * plug-in interface, so the names below are free here. Guards against the
 * plug-in interface (emel_io_strategy_ops, the file table) leaking back into
 * the headers an embedder reads to load a model.
 * -DEMEL_PLUGIN_VIEW: emel/io_strategy.h alone is enough to write a strategy. */
#ifndef EMEL_PLUGIN_VIEW
#include <emel/api.h>
#include <emel/gguf.h>
#include <emel/io.h>
#include <emel/io_mmap.h>
#include <emel/io_read.h>
#include <emel/job.h>
#include <emel/model.h>
#include <emel/platform.h>
#include <emel/status.h>
#include <emel/tensor.h>

/* Each of these is an error if a header above declared the name. */
typedef int emel_io_strategy_ops;
typedef int emel_io_files;
typedef int emel_io_file;
static int emel_io_attach, emel_io_files_of, emel_io_platform, emel_io_strategy_self, EMEL_IO_STRATEGY_OPS_INIT;

int main(void) {
  emel_model_config c = EMEL_MODEL_CONFIG_INIT();
  return (int)c.struct_size * 0 + emel_io_attach + emel_io_files_of + emel_io_platform + emel_io_strategy_self +
         EMEL_IO_STRATEGY_OPS_INIT;
}
#else
#include <emel/io_strategy.h>

static void acquire(void *self, const emel_io_request *request, emel_io_result *result) {
  const emel_io_files *files = self;
  (void)request;
  result->error.code = files->count ? EMEL_OK : EMEL_INVALID_FILE_INDEX;
}
static emel_error release(void *self, emel_io_handle handle) {
  (void)self;
  (void)handle;
  return (emel_error){.code = EMEL_OK};
}
static void destroy(void *self) { (void)self; }

int main(void) {
  const emel_io_strategy_ops ops = EMEL_IO_STRATEGY_OPS_INIT(.kind = EMEL_STRATEGY_READ, .name = "mine",
                                                             .acquire = acquire, .release = release,
                                                             .destroy = destroy);
  emel_io *io;
  if (emel_io_create(&io, NULL, NULL) != EMEL_OK) return 1;
  emel_status s = emel_io_attach(io, &ops, (void *)emel_io_files_of(io), NULL);
  emel_io_destroy(io);
  return s != EMEL_OK;
}
#endif

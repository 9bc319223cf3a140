/* A strategy for tests of the boundary and of tensor residency: hands out
 * slices of its own buffer and fails on request, so the tensor machine's load
 * and release routes can be driven without real I/O. */
#ifndef EMEL_TESTS_FAKE_STRATEGY_H
#define EMEL_TESTS_FAKE_STRATEGY_H

#include "emel/io.h"
#include "emel/io_strategy.h"

typedef struct fake_strategy {
  unsigned char bytes[4096];
  emel_error acquire_error; /* returned by the next acquires when code != OK */
  emel_error release_error;
  size_t live;
  size_t acquires, releases, batches;
  uint32_t generation;
  int destroyed;
} fake_strategy;

extern const emel_io_strategy_ops fake_strategy_ops; /* kind EMEL_STRATEGY_READ */

#endif

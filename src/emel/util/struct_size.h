/* Reading a caller's struct that carries a leading struct_size (see
 * include/emel/api.h): the library copies what the caller's header knew and
 * gives every member past it its zero (default) value. */
#ifndef EMEL_UTIL_STRUCT_SIZE_H
#define EMEL_UTIL_STRUCT_SIZE_H

#include <stddef.h>
#include <string.h>

#include "emel/status.h"

/* Copies `in` (a struct whose first member is size_t struct_size) into `out`,
 * `known` bytes: this library's sizeof. NULL `in`: all defaults (zero). A size
 * below the struct_size member itself, or above `known`, cannot be read:
 * EMEL_STRUCT_SIZE_UNKNOWN, and `out` is all defaults. out's struct_size is
 * set to `known`, so the copy can be handed on inside the library. */
static inline emel_status emel_struct_take(void *out, size_t known, const void *in) {
  size_t size = known;
  emel_status s = EMEL_OK;
  memset(out, 0, known);
  if (in) {
    memcpy(&size, in, sizeof size);
    if (size < sizeof(size_t) || size > known) s = EMEL_STRUCT_SIZE_UNKNOWN;
    else memcpy(out, in, size);
  }
  memcpy(out, &known, sizeof known);
  return s;
}

#endif

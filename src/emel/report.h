/* The one error convention of the public API (README "C API conventions"):
 * a fallible call returns its status and, when the caller passed an
 * emel_error, fills it whole, success included. */
#ifndef EMEL_REPORT_H
#define EMEL_REPORT_H

#include "emel/status.h"

#include <stddef.h>

/* Writes `e` to `err` (may be NULL) and returns its code. */
static inline emel_status emel_report_error(emel_error *err, emel_error e) {
  if (err) *err = e;
  return e.code;
}

/* For a failure that has no errno, file or tensor to tell. */
static inline emel_status emel_report(emel_error *err, emel_status code) {
  return emel_report_error(err, (emel_error){.code = code});
}

/* A refusal of a struct the caller filled in: `detail` names it (static). */
static inline emel_status emel_report_detail(emel_error *err, emel_status code, const char *detail) {
  return emel_report_error(err, (emel_error){.code = code, .detail = code != EMEL_OK ? detail : NULL});
}

#endif

#include "emel/version.h"

/* Compiled into the library, so these report the library a program runs
 * with, not the header it was compiled against. */
const char *emel_version(void) { return EMEL_IO_VERSION_STRING; }

unsigned emel_version_number(void) { return EMEL_IO_VERSION_NUMBER; }

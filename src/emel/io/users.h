/* Who uses an io boundary besides its creator: each tensor table created with
 * it holds one use, so the boundary outlives every table that loads through
 * it whatever order the caller destroys them in (include/emel/io.h). */
#ifndef EMEL_IO_USERS_H
#define EMEL_IO_USERS_H

#include "emel/io.h"

/* A table starts using `io` (NULL: nothing). */
void emel_io_use(emel_io *io);

/* A table stops using `io`; when emel_io_destroy was called already and this
 * was the last use, the boundary is destroyed now. NULL: nothing. */
void emel_io_unuse(emel_io *io);

#endif

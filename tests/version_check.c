/* Links libemel-io.so (public API only): the library's run-time version is the
 * header's, and both are the project's (EMEL_PROJECT_VERSION, from CMake).
 * Guards: there was no version API at all; a header and a library built from
 * different project() versions would disagree here. */
#include <emel/version.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  int bad = 0;
  if (strcmp(emel_version(), EMEL_IO_VERSION_STRING) != 0 || strcmp(emel_version(), EMEL_PROJECT_VERSION) != 0) {
    fprintf(stderr, "emel_version() %s, header %s, project %s\n", emel_version(), EMEL_IO_VERSION_STRING,
            EMEL_PROJECT_VERSION);
    bad = 1;
  }
  if (emel_version_number() != EMEL_IO_VERSION_NUMBER ||
      EMEL_IO_VERSION_NUMBER != EMEL_IO_VERSION_MAJOR * 10000 + EMEL_IO_VERSION_MINOR * 100 + EMEL_IO_VERSION_PATCH) {
    fprintf(stderr, "emel_version_number() %u, header %d\n", emel_version_number(), EMEL_IO_VERSION_NUMBER);
    bad = 1;
  }
  char parts[32];
  snprintf(parts, sizeof parts, "%d.%d.%d", EMEL_IO_VERSION_MAJOR, EMEL_IO_VERSION_MINOR, EMEL_IO_VERSION_PATCH);
  if (strcmp(parts, EMEL_IO_VERSION_STRING) != 0) {
    fprintf(stderr, "MAJOR.MINOR.PATCH %s, EMEL_IO_VERSION_STRING %s\n", parts, EMEL_IO_VERSION_STRING);
    bad = 1;
  }
  if (!bad) printf("version: %s\n", emel_version());
  return bad;
}

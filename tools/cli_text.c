/* Output helpers shared by the command-line tools: see cli_text.h. */
#define _POSIX_C_SOURCE 200809L

#include "cli_text.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>

#include "emel/gguf.h"

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0], lo = 0x80, hi = 0xbf;
  size_t len;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) len = 2;
  else if (c == 0xe0) len = 3, lo = 0xa0; /* no overlongs */
  else if (c == 0xed) len = 3, hi = 0x9f; /* no surrogates */
  else if (c >= 0xe1 && c <= 0xef) len = 3;
  else if (c == 0xf0) len = 4, lo = 0x90;
  else if (c == 0xf4) len = 4, hi = 0x8f; /* nothing above U+10FFFF */
  else if (c >= 0xf1 && c <= 0xf3) len = 4;
  else return 0;
  if (n < len || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xbf) return 0;
  return len;
}

int emel_cli_is_utf8(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0, k; i < n; i += k)
    if ((k = utf8_seq(u + i, n - i)) == 0) return 0;
  return 1;
}

void emel_cli_json_string(FILE *f, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  putc('"', f);
  for (size_t i = 0; i < n;) {
    size_t k = utf8_seq(u + i, n - i);
    if (k == 0) {
      fputs("\\ufffd", f);
      k = 1;
    } else if (u[i] == '"' || u[i] == '\\') {
      fprintf(f, "\\%c", u[i]);
    } else if (u[i] < 0x20 || u[i] == 0x7f) {
      fprintf(f, "\\u%04x", u[i]);
    } else {
      fwrite(u + i, 1, k, f);
    }
    i += k;
  }
  putc('"', f);
}

void emel_cli_json_name(FILE *f, const char *key, const char *s, size_t n, const char *colon, const char *comma) {
  fprintf(f, "\"%s\"%s", key, colon);
  emel_cli_json_string(f, s, n);
  if (emel_cli_is_utf8(s, n)) return;
  fprintf(f, "%s\"%s_hex\"%s\"", comma, key, colon);
  for (size_t i = 0; i < n; i++) fprintf(f, "%02x", (unsigned char)s[i]);
  putc('"', f);
}

void emel_cli_text(FILE *f, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t k = utf8_seq(u + i, n - i);
    /* C1 controls (U+0080-U+009F, C2 80..C2 9F) steer terminals as C0 does */
    int control = k == 0 || u[i] < 0x20 || u[i] == 0x7f || (k == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0);
    if (!control && u[i] == '\\') {
      fputs("\\\\", f);
    } else if (!control) {
      fwrite(u + i, 1, k, f);
    } else {
      if (k == 0) k = 1;
      for (size_t j = 0; j < k; j++) fprintf(f, "\\x%02x", u[i + j]);
    }
    i += k;
  }
}

int emel_cli_stdout_errno(void) {
  int fl = fcntl(1, F_GETFL);
  if (fl < 0) return errno;
  return (fl & O_ACCMODE) == O_RDONLY ? EBADF : 0;
}

int emel_cli_finish_stdout(const char *prog) {
  int earlier = ferror(stdout), e = errno;
  if (fflush(stdout) != 0) e = errno;
  else if (!earlier) return 0;
  fprintf(stderr, "%s: write error: %s\n", prog, e ? strerror(e) : "output incomplete");
  return 1;
}

int emel_cli_open_error(const char *prog, const char *file, const emel_error *e) {
  char tail[4096 + 512] = "", part[4096];
  size_t n = 0;
  uint32_t count = 1;
  if (e->os_errno) n += (size_t)snprintf(tail + n, sizeof tail - n, " (%s)", strerror(e->os_errno));
  if (e->file > 1 && emel_gguf_split_path(part, sizeof part, file, e->file, &count, NULL) == EMEL_OK)
    n += (size_t)snprintf(tail + n, sizeof tail - n, ": part %" PRIu32 " of %" PRIu32 " (%s)", e->file, count,
                          part); /* fits: tail has room for a whole part path plus the texts around it */
  if (e->detail) snprintf(tail + n, sizeof tail - n, ": %s", e->detail);
  fprintf(stderr, "%s: ", prog);
  emel_cli_text(stderr, file, strlen(file));
  fprintf(stderr, ": %s: %s", emel_status_name(e->code), emel_status_message(e->code));
  emel_cli_text(stderr, tail, strlen(tail));
  fputc('\n', stderr);
  return 1;
}

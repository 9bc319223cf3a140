/* Output helpers shared by the command-line tools (not part of the library).
 *
 * Names (file paths, tensor names, metadata keys) are bytes: a GGUF or a file
 * system guarantees neither UTF-8 nor the absence of control characters. Two
 * rules keep every output usable whatever they hold:
 *
 * - JSON strings are valid UTF-8: valid sequences pass through, `"` and `\`
 *   are escaped, control characters (U+0000-U+001F, U+007F) become \u00XX and
 *   every byte that is not part of a valid UTF-8 sequence becomes U+FFFD
 *   (written \ufffd). Where that loses bytes, emel_cli_json_name adds a
 *   sibling field KEY_hex holding the exact bytes in lowercase hex.
 * - Text lines (error lines, human summaries) stay one line: `\` becomes
 *   `\\`, and control characters (C0, DEL, C1) and bytes outside valid UTF-8
 *   become \xHH, one per byte.
 */
#ifndef EMEL_TOOLS_CLI_TEXT_H
#define EMEL_TOOLS_CLI_TEXT_H

#include <stddef.h>
#include <stdio.h>

#include "emel/status.h"

/* Non-zero when s[0..n) is valid UTF-8 (RFC 3629: no overlongs, surrogates
 * or code points above U+10FFFF). */
int emel_cli_is_utf8(const char *s, size_t n);

/* s[0..n) as a JSON string (quotes included), by the rule above. */
void emel_cli_json_string(FILE *f, const char *s, size_t n);

/* `"key"COLON"value"`, followed by `COMMA"key_hex"COLON"…"` when the value is
 * not valid UTF-8 (so its exact bytes stay recoverable). */
void emel_cli_json_name(FILE *f, const char *key, const char *s, size_t n, const char *colon, const char *comma);

/* s[0..n) escaped for a one-line text message, by the rule above. */
void emel_cli_text(FILE *f, const char *s, size_t n);

/* 0 when descriptor 1 is open for writing, else the errno a write would get
 * (EBADF): lets a tool refuse before doing work whose report would be lost. */
int emel_cli_stdout_errno(void);

/* Flushes stdout; when it or any earlier write to it failed, prints
 * "PROG: write error: REASON" on stderr and returns 1, else 0. Set errno to 0
 * before writing, so a failure that fflush no longer sees still has a reason. */
int emel_cli_finish_stdout(const char *prog);

/* The tools' line for a model that cannot be opened, on stderr, by the text rule:
 * "PROG: FILE: ERROR_NAME: message[ (strerror)][: part K of N (PART_PATH)][: check]".
 * FILE is what the user named and the first fields keep their places (scripts
 * splitting on ": " still work); the part appears when another part of a split
 * set than FILE is at fault, the check when e->detail names one. Returns 1. */
int emel_cli_open_error(const char *prog, const char *file, const emel_error *e);

#endif

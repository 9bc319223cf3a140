/* The strict, bounded JSON reader behind emel-load --expect (see manifest.h).
 * Recursive descent over the whole file in memory; recursion is bounded by
 * MANIFEST_MAX_DEPTH, every read by the buffer's end. */
#include "manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum role { ROLE_TOP, ROLE_TENSORS, ROLE_ENTRY, ROLE_SKIP } role;

typedef struct parser {
  const unsigned char *s;
  size_t n, i;
  int depth;
  char *err;
  size_t err_size;
  int failed;
  manifest *out;
  size_t cap;
  int has_tensors;
} parser;

static int fail(parser *p, const char *what) {
  if (!p->failed) snprintf(p->err, p->err_size, "%s at byte %zu", what, p->i);
  p->failed = 1;
  return -1;
}

static void skip_space(parser *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
    p->i++;
}

static int peek(const parser *p) { return p->i < p->n ? p->s[p->i] : -1; }

static int expect(parser *p, int c, const char *what) {
  skip_space(p);
  if (peek(p) != c) return fail(p, what);
  p->i++;
  return 0;
}

static int hex4(parser *p, unsigned *v) {
  *v = 0;
  for (int k = 0; k < 4; k++, p->i++) {
    int c = peek(p);
    unsigned d;
    if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
    else return fail(p, "bad \\u escape");
    *v = *v << 4 | d;
  }
  return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3F)), 2;
  if (cp < 0x10000)
    return o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | (cp >> 6 & 0x3F)), o[2] = (char)(0x80 | (cp & 0x3F)), 3;
  o[0] = (char)(0xF0 | cp >> 18);
  o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* A string at p->i, decoded into a new buffer (*out, NUL-terminated; the
 * decoded form is never longer than the raw one). Bytes >= 0x80 are kept
 * as they are: emel-load writes non-UTF-8 tensor names raw. */
static int string(parser *p, char **out, size_t *len) {
  *out = NULL;
  if (expect(p, '"', "expected a string") != 0) return -1;
  size_t end = p->i;
  while (end < p->n && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
  if (end >= p->n) return fail(p, "unterminated string");
  char *o = malloc(end - p->i + 1);
  if (!o) return fail(p, "out of memory");
  size_t k = 0;
  while (p->i < end) {
    unsigned char c = p->s[p->i];
    if (c < 0x20) {
      free(o);
      return fail(p, "control character in a string");
    }
    if (c != '\\') {
      o[k++] = (char)c;
      p->i++;
      continue;
    }
    p->i++;
    c = p->s[p->i++];
    unsigned cp, low;
    switch (c) {
    case '"': case '\\': case '/': o[k++] = (char)c; break;
    case 'b': o[k++] = '\b'; break;
    case 'f': o[k++] = '\f'; break;
    case 'n': o[k++] = '\n'; break;
    case 'r': o[k++] = '\r'; break;
    case 't': o[k++] = '\t'; break;
    case 'u':
      if (hex4(p, &cp) != 0) break;
      if (cp >= 0xD800 && cp < 0xDC00) { /* a high surrogate: its low half must follow */
        if (p->i + 2 > end || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
          fail(p, "unpaired surrogate in a \\u escape");
          break;
        }
        p->i += 2;
        if (hex4(p, &low) != 0) break;
        if (low < 0xDC00 || low > 0xDFFF) {
          fail(p, "unpaired surrogate in a \\u escape");
          break;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      } else if (cp >= 0xDC00 && cp < 0xE000) {
        fail(p, "unpaired surrogate in a \\u escape");
        break;
      }
      k += put_utf8(o + k, cp); /* 6 raw bytes (12 for a pair) never decode to more than 4 */
      break;
    default: p->i--; fail(p, "bad escape in a string"); break;
    }
    if (p->failed || p->i > end) {
      free(o);
      return fail(p, "bad escape in a string");
    }
  }
  p->i = end + 1;
  o[k] = '\0';
  *out = o;
  *len = k;
  return 0;
}

static int number(parser *p) {
  size_t start = p->i;
  if (peek(p) == '-') p->i++;
  if (peek(p) == '0') p->i++;
  else if (peek(p) >= '1' && peek(p) <= '9')
    while (peek(p) >= '0' && peek(p) <= '9') p->i++;
  else return fail(p, "bad number");
  if (peek(p) == '.') {
    p->i++;
    if (!(peek(p) >= '0' && peek(p) <= '9')) return fail(p, "bad number");
    while (peek(p) >= '0' && peek(p) <= '9') p->i++;
  }
  if (peek(p) == 'e' || peek(p) == 'E') {
    p->i++;
    if (peek(p) == '+' || peek(p) == '-') p->i++;
    if (!(peek(p) >= '0' && peek(p) <= '9')) return fail(p, "bad number");
    while (peek(p) >= '0' && peek(p) <= '9') p->i++;
  }
  return p->i > start ? 0 : fail(p, "bad number");
}

static int literal(parser *p, const char *word) {
  size_t n = strlen(word);
  if (p->n - p->i < n || memcmp(p->s + p->i, word, n) != 0) return fail(p, "unexpected character");
  p->i += n;
  return 0;
}

static int value(parser *p, role r);

static int parse_xxh3(parser *p, uint64_t *v) {
  char *s;
  size_t len;
  if (peek(p) != '"') return fail(p, "\"xxh3\" is not a string");
  const size_t at = p->i;
  if (string(p, &s, &len) != 0) return -1;
  int ok = len == 16;
  *v = 0;
  for (size_t k = 0; ok && k < 16; k++) {
    char c = s[k];
    unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                 : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                 : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                        : 16u;
    ok = d < 16;
    *v = *v << 4 | d;
  }
  free(s);
  if (!ok) {
    p->i = at;
    return fail(p, "\"xxh3\" is not 16 hex digits");
  }
  return 0;
}

static int add_entry(parser *p, char *name, size_t len, uint64_t xxh3) {
  manifest *m = p->out;
  if (m->count == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 64;
    manifest_entry *e = realloc(m->entries, cap * sizeof *e);
    if (!e) return fail(p, "out of memory");
    m->entries = e;
    p->cap = cap;
  }
  m->entries[m->count++] = (manifest_entry){name, len, xxh3, 0};
  return 0;
}

static int object(parser *p, role r) {
  p->i++; /* '{' */
  char *name = NULL;
  size_t name_len = 0;
  uint64_t xxh3 = 0;
  int has_xxh3 = 0;
  skip_space(p);
  if (peek(p) == '}') p->i++;
  else {
    for (;;) {
      char *key;
      size_t key_len;
      skip_space(p);
      if (string(p, &key, &key_len) != 0) break;
      const int is = r == ROLE_TOP && key_len == 7 && memcmp(key, "tensors", 7) == 0   ? 1
                     : r == ROLE_ENTRY && key_len == 4 && memcmp(key, "name", 4) == 0 ? 2
                     : r == ROLE_ENTRY && key_len == 4 && memcmp(key, "xxh3", 4) == 0 ? 3
                                                                                       : 0;
      free(key);
      if (expect(p, ':', "expected ':'") != 0) break;
      skip_space(p);
      if (is == 1) {
        if (p->has_tensors) {
          fail(p, "a second \"tensors\" member");
          break;
        }
        p->has_tensors = 1;
        if (value(p, ROLE_TENSORS) != 0) break;
      } else if (is == 2) {
        if (name) {
          fail(p, "a second \"name\" member");
          break;
        }
        if (peek(p) != '"') {
          fail(p, "\"name\" is not a string");
          break;
        }
        const size_t at = p->i;
        if (string(p, &name, &name_len) != 0) break;
        if (name_len == 0 || name_len > MANIFEST_MAX_NAME) {
          p->i = at;
          fail(p, "tensor name empty or longer than 255 bytes");
          break;
        }
      } else if (is == 3) {
        if (has_xxh3) {
          fail(p, "a second \"xxh3\" member");
          break;
        }
        if (parse_xxh3(p, &xxh3) != 0) break;
        has_xxh3 = 1;
      } else if (value(p, ROLE_SKIP) != 0) {
        break;
      }
      skip_space(p);
      if (peek(p) == ',') {
        p->i++;
        continue;
      }
      if (peek(p) == '}') {
        p->i++;
        break;
      }
      fail(p, "expected ',' or '}'");
      break;
    }
  }
  if (!p->failed && r == ROLE_ENTRY) {
    if (!name) fail(p, "a tensor without a \"name\"");
    else if (!has_xxh3) fail(p, "a tensor without an \"xxh3\"");
    else if (add_entry(p, name, name_len, xxh3) == 0) name = NULL; /* the manifest owns it */
  }
  free(name);
  return p->failed ? -1 : 0;
}

static int array(parser *p, role r) {
  p->i++; /* '[' */
  skip_space(p);
  if (peek(p) == ']') {
    p->i++;
    return 0;
  }
  for (;;) {
    if (value(p, r == ROLE_TENSORS ? ROLE_ENTRY : ROLE_SKIP) != 0) return -1;
    skip_space(p);
    if (peek(p) == ',') {
      p->i++;
      continue;
    }
    if (peek(p) == ']') {
      p->i++;
      return 0;
    }
    return fail(p, "expected ',' or ']'");
  }
}

static int value(parser *p, role r) {
  skip_space(p);
  const int c = peek(p);
  if (c < 0) return fail(p, "unexpected end");
  if (r == ROLE_TOP && c != '{') return fail(p, "the manifest is not a JSON object");
  if (r == ROLE_TENSORS && c != '[') return fail(p, "\"tensors\" is not an array");
  if (r == ROLE_ENTRY && c != '{') return fail(p, "a \"tensors\" element is not an object");
  if (c == '{' || c == '[') {
    if (++p->depth > MANIFEST_MAX_DEPTH) return fail(p, "nested deeper than 64");
    int rc = c == '{' ? object(p, r) : array(p, r);
    p->depth--;
    return rc;
  }
  if (c == '"') {
    char *s;
    size_t len;
    if (string(p, &s, &len) != 0) return -1;
    free(s);
    return 0;
  }
  if (c == 't') return literal(p, "true");
  if (c == 'f') return literal(p, "false");
  if (c == 'n') return literal(p, "null");
  if (c == '-' || (c >= '0' && c <= '9')) return number(p);
  return fail(p, "unexpected character");
}

static int by_name(const void *a, const void *b) {
  const manifest_entry *x = a, *y = b;
  size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
  int c = memcmp(x->name, y->name, n);
  return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* The whole file, at most MANIFEST_MAX_BYTES (read, not sized: a FIFO or a
 * device has no size to trust). */
static unsigned char *slurp(const char *path, size_t *size, char *err, size_t err_size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, err_size, "%s", strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  unsigned char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    if (cap > MANIFEST_MAX_BYTES) {
      snprintf(err, err_size, "larger than %llu bytes", (unsigned long long)MANIFEST_MAX_BYTES);
      free(buf);
      fclose(f);
      return NULL;
    }
    unsigned char *more = realloc(buf, cap * 2);
    if (!more) free(buf);
    buf = more;
    cap *= 2;
  }
  if (!buf) snprintf(err, err_size, "out of memory");
  else if (ferror(f)) {
    snprintf(err, err_size, "%s", strerror(errno));
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *size = n;
  return buf;
}

int manifest_read(const char *path, manifest *out, char *err, size_t err_size) {
  memset(out, 0, sizeof *out);
  size_t size;
  unsigned char *text = slurp(path, &size, err, err_size);
  if (!text) return -1;
  parser p = {.s = text, .n = size, .err = err, .err_size = err_size, .out = out};
  if (value(&p, ROLE_TOP) == 0) {
    skip_space(&p);
    if (p.i != p.n) fail(&p, "text after the JSON value");
    else if (!p.has_tensors) fail(&p, "no \"tensors\" array");
  }
  free(text);
  if (!p.failed && out->count > 1) {
    qsort(out->entries, out->count, sizeof *out->entries, by_name);
    for (size_t k = 1; k < out->count; k++) {
      if (by_name(&out->entries[k - 1], &out->entries[k]) == 0) {
        snprintf(err, err_size, "tensor \"%.*s\" is listed twice", (int)(out->entries[k].name_len > 80 ? 80 : out->entries[k].name_len),
                 out->entries[k].name);
        p.failed = 1;
        break;
      }
    }
  }
  if (p.failed) {
    manifest_free(out);
    return -1;
  }
  return 0;
}

manifest_entry *manifest_find(const manifest *m, const char *name, size_t len) {
  manifest_entry key = {(char *)name, len, 0, 0};
  return m->count ? bsearch(&key, m->entries, m->count, sizeof key, by_name) : NULL;
}

void manifest_free(manifest *m) {
  for (size_t k = 0; k < m->count; k++) free(m->entries[k].name);
  free(m->entries);
  memset(m, 0, sizeof *m);
}

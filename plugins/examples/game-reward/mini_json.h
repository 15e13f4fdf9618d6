// mini_json.h: a tiny, allocation-light JSON reader for wasmhook C plugins.
//
// It answers one question: "what is the value of top-level key K in this
// JSON object?", then turns string and integer values into C values. The
// whole document is checked while scanning (nested objects and arrays are
// skipped, depth-capped), so malformed input is reported as an error and
// never read out of bounds. Input is a pointer and a length: it need not be
// NUL-terminated. Header-only: include it from one .c file.
//
// Not a general JSON library: no DOM, no floats, no writing.
#ifndef MINI_JSON_H
#define MINI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// The kinds of value mj_find reports.
typedef enum { MJ_STRING, MJ_NUMBER, MJ_OTHER } mj_kind;

// A value found in the document: its kind and its raw text (for a string,
// the text between the quotes, escapes still in place).
typedef struct {
  mj_kind kind;
  const char *raw;
  size_t len;
} mj_value;

// Nesting deeper than this is treated as malformed.
#define MJ_MAX_DEPTH 64

typedef struct {
  const char *s;
  size_t len;
  size_t pos;
} mj_cursor;

static void mj_ws(mj_cursor *c) {
  while (c->pos < c->len) {
    char ch = c->s[c->pos];
    if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') break;
    c->pos++;
  }
}

static int mj_hex(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

// Skips a string whose opening quote is at c->pos; sets *raw/*raw_len to
// its content. Returns false when malformed.
static bool mj_skip_string(mj_cursor *c, const char **raw, size_t *raw_len) {
  if (c->pos >= c->len || c->s[c->pos] != '"') return false;
  size_t start = ++c->pos;
  while (c->pos < c->len) {
    unsigned char ch = (unsigned char)c->s[c->pos];
    if (ch == '"') {
      *raw = c->s + start;
      *raw_len = c->pos - start;
      c->pos++;
      return true;
    }
    if (ch < 0x20) return false;
    if (ch == '\\') {
      if (++c->pos >= c->len) return false;
      char esc = c->s[c->pos];
      if (esc == 'u') {
        if (c->len - c->pos < 5) return false;
        for (int i = 1; i <= 4; i++)
          if (mj_hex(c->s[c->pos + i]) < 0) return false;
        c->pos += 4;
      } else if (!strchr("\"\\/bfnrt", esc) || esc == '\0') {
        return false;
      }
    }
    c->pos++;
  }
  return false;
}

static bool mj_skip_number(mj_cursor *c) {
  size_t start = c->pos;
  if (c->pos < c->len && c->s[c->pos] == '-') c->pos++;
  size_t digits = c->pos;
  while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') c->pos++;
  if (c->pos == digits) return false;
  if (c->pos < c->len && c->s[c->pos] == '.') {
    size_t frac = ++c->pos;
    while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') c->pos++;
    if (c->pos == frac) return false;
  }
  if (c->pos < c->len && (c->s[c->pos] == 'e' || c->s[c->pos] == 'E')) {
    c->pos++;
    if (c->pos < c->len && (c->s[c->pos] == '+' || c->s[c->pos] == '-')) c->pos++;
    size_t exp = c->pos;
    while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') c->pos++;
    if (c->pos == exp) return false;
  }
  return c->pos > start;
}

static bool mj_skip_literal(mj_cursor *c, const char *word) {
  size_t n = strlen(word);
  if (c->len - c->pos < n || memcmp(c->s + c->pos, word, n) != 0) return false;
  c->pos += n;
  return true;
}

// Skips any value at c->pos, filling *out when not NULL.
static bool mj_skip_value(mj_cursor *c, int depth, mj_value *out) {
  mj_value v = {MJ_OTHER, c->s + c->pos, 0};
  size_t start = c->pos;
  if (depth > MJ_MAX_DEPTH || c->pos >= c->len) return false;
  char ch = c->s[c->pos];
  bool ok;
  if (ch == '"') {
    v.kind = MJ_STRING;
    ok = mj_skip_string(c, &v.raw, &v.len);
  } else if (ch == '{' || ch == '[') {
    char close = ch == '{' ? '}' : ']';
    c->pos++;
    mj_ws(c);
    ok = true;
    if (c->pos < c->len && c->s[c->pos] == close) {
      c->pos++;
    } else {
      for (;;) {
        if (ch == '{') {
          const char *k;
          size_t kl;
          mj_ws(c);
          if (!mj_skip_string(c, &k, &kl)) return false;
          mj_ws(c);
          if (c->pos >= c->len || c->s[c->pos] != ':') return false;
          c->pos++;
        }
        mj_ws(c);
        if (!mj_skip_value(c, depth + 1, NULL)) return false;
        mj_ws(c);
        if (c->pos >= c->len) return false;
        if (c->s[c->pos] == ',') { c->pos++; continue; }
        if (c->s[c->pos] == close) { c->pos++; break; }
        return false;
      }
    }
  } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
    v.kind = MJ_NUMBER;
    ok = mj_skip_number(c);
  } else {
    ok = mj_skip_literal(c, "true") || mj_skip_literal(c, "false") ||
         mj_skip_literal(c, "null");
  }
  if (ok && v.kind != MJ_STRING) v.len = c->pos - start;
  if (ok && out) *out = v;
  return ok;
}

// Decodes the 4 hex digits at p.
static uint32_t mj_u16(const char *p) {
  return (uint32_t)(mj_hex(p[0]) << 12 | mj_hex(p[1]) << 8 | mj_hex(p[2]) << 4 | mj_hex(p[3]));
}

// Decodes string content `raw` (already validated by mj_skip_string) into
// `dst`, which must hold at least `len` bytes (decoding never grows text).
// Returns the decoded length.
static size_t mj_unescape(const char *raw, size_t len, char *dst) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    char ch = raw[i];
    if (ch != '\\') { dst[o++] = ch; continue; }
    char esc = raw[++i];
    switch (esc) {
      case 'b': dst[o++] = '\b'; break;
      case 'f': dst[o++] = '\f'; break;
      case 'n': dst[o++] = '\n'; break;
      case 'r': dst[o++] = '\r'; break;
      case 't': dst[o++] = '\t'; break;
      case 'u': {
        uint32_t cp = mj_u16(raw + i + 1);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < len && raw[i + 1] == '\\' &&
            raw[i + 2] == 'u') {
          uint32_t lo = mj_u16(raw + i + 3);
          if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
          }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // lone surrogate
        if (cp < 0x80) {
          dst[o++] = (char)cp;
        } else if (cp < 0x800) {
          dst[o++] = (char)(0xC0 | cp >> 6);
          dst[o++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
          dst[o++] = (char)(0xE0 | cp >> 12);
          dst[o++] = (char)(0x80 | (cp >> 6 & 0x3F));
          dst[o++] = (char)(0x80 | (cp & 0x3F));
        } else {
          dst[o++] = (char)(0xF0 | cp >> 18);
          dst[o++] = (char)(0x80 | (cp >> 12 & 0x3F));
          dst[o++] = (char)(0x80 | (cp >> 6 & 0x3F));
          dst[o++] = (char)(0x80 | (cp & 0x3F));
        }
        break;
      }
      default: dst[o++] = esc; break;  // " \ /
    }
  }
  return o;
}

// Looks up top-level `key` in the JSON object `json[0..len)`. Returns 1 and
// fills *out when found (the last occurrence wins), 0 when absent, -1 when
// the text is not one well-formed JSON object.
static int mj_find(const char *json, size_t len, const char *key, mj_value *out) {
  mj_cursor c = {json, len, 0};
  size_t key_len = strlen(key);
  int found = 0;
  mj_ws(&c);
  if (c.pos >= c.len || json[c.pos] != '{') return -1;
  c.pos++;
  mj_ws(&c);
  if (c.pos < c.len && json[c.pos] == '}') {
    c.pos++;
  } else {
    for (;;) {
      const char *k;
      size_t kl;
      mj_value v;
      mj_ws(&c);
      if (!mj_skip_string(&c, &k, &kl)) return -1;
      mj_ws(&c);
      if (c.pos >= c.len || json[c.pos] != ':') return -1;
      c.pos++;
      mj_ws(&c);
      if (!mj_skip_value(&c, 1, &v)) return -1;
      if (kl >= key_len && kl <= 6 * key_len) {
        char *decoded = malloc(kl ? kl : 1);
        if (!decoded) return -1;
        size_t dl = mj_unescape(k, kl, decoded);
        if (dl == key_len && memcmp(decoded, key, key_len) == 0) {
          *out = v;
          found = 1;
        }
        free(decoded);
      }
      mj_ws(&c);
      if (c.pos >= c.len) return -1;
      if (json[c.pos] == ',') { c.pos++; continue; }
      if (json[c.pos] == '}') { c.pos++; break; }
      return -1;
    }
  }
  mj_ws(&c);
  return c.pos == c.len ? found : -1;
}

// Returns a malloc'd, NUL-terminated copy of a string value with escapes
// decoded, its length in *out_len. NULL when v is not a string or memory
// runs out. The caller frees it.
static char *mj_string_dup(const mj_value *v, size_t *out_len) {
  if (v->kind != MJ_STRING) return NULL;
  char *dst = malloc(v->len + 1);
  if (!dst) return NULL;
  size_t n = mj_unescape(v->raw, v->len, dst);
  dst[n] = '\0';
  if (out_len) *out_len = n;
  return dst;
}

// Parses a decimal integer (optional '-', digits only) from text[0..len)
// into *out. Returns false for anything else or on int64 overflow.
static bool mj_parse_i64(const char *text, size_t len, int64_t *out) {
  size_t i = 0;
  bool neg = len > 0 && text[0] == '-';
  if (neg) i++;
  if (i == len) return false;
  uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  uint64_t acc = 0;
  for (; i < len; i++) {
    if (text[i] < '0' || text[i] > '9') return false;
    uint64_t d = (uint64_t)(text[i] - '0');
    if (acc > (limit - d) / 10) return false;
    acc = acc * 10 + d;
  }
  *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
  return true;
}

// The value as an integer: a JSON number without fraction or exponent.
static bool mj_int64(const mj_value *v, int64_t *out) {
  return v->kind == MJ_NUMBER && mj_parse_i64(v->raw, v->len, out);
}

#endif  // MINI_JSON_H

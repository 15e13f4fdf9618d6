// {{name}}: a wasmhook plugin written in C.
//
// As generated it forwards events: for every event (or only the one named by
// config `event`) it asks the host to POST the event as JSON to config `url`:
//
//   {"id":"evt-1","name":"order.paid","user_id":"u-42",
//    "timestamp_ms":1700000000000,"properties":{"total":"12.00"}}
//
// Change `decide` to build the request your destination expects. The
// plugin never sends anything itself: it returns a decision, and the host
// checks each request against the plugin's egress policy, fills in
// `{{secret:NAME}}` placeholders (in the URL, header values or body), sends
// and retries it.
//
// The API is the header `transformer.h`, generated from the WIT world
// `wasmhook:plugin/transformer` by `wasmhook-toolchain bindgen-c` (the build
// does this; see README.md). Memory follows its ownership rules:
// - `transform`'s argument `event` belongs to the plugin, which frees it
//   (transformer_event_free) before returning;
// - everything put into the returned decision or error is malloc'd and is
//   freed by the generated post-return function once the host has copied
//   it, so no static string and nothing pointing into `event` may ever be
//   returned (copy it: transformer_string_dup, buf_t below);
// - arguments passed to imports (log, config, kv) are borrowed, and values
//   imports return (config's string) belong to the plugin, which frees them.
// Allocation failure traps (the host records a plugin error).

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transformer.h"

// ---------------------------------------------------------------------------
// A growable byte buffer whose storage can be handed over to the bindings.

typedef struct {
  char *ptr;
  size_t len;
  size_t cap;
} buf_t;

static void *xrealloc(void *ptr, size_t size) {
  void *out = realloc(ptr, size ? size : 1);
  if (!out) __builtin_trap();
  return out;
}

static void buf_put(buf_t *b, const char *s, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n) cap *= 2;
    b->ptr = xrealloc(b->ptr, cap);
    b->cap = cap;
  }
  if (n) memcpy(b->ptr + b->len, s, n);
  b->len += n;
}

static void buf_puts(buf_t *b, const char *s) { buf_put(b, s, strlen(s)); }

static void buf_put_u64(buf_t *b, uint64_t v) {
  char tmp[24];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  buf_put(b, tmp + i, sizeof tmp - i);
}

// Appends `s` (UTF-8, as every WIT string is) as a quoted JSON string.
static void buf_put_json(buf_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  buf_puts(b, "\"");
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') {
      char esc[2] = {'\\', (char)ch};
      buf_put(b, esc, 2);
    } else if (ch < 0x20) {
      char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
      buf_put(b, esc, 6);
    } else {
      buf_put(b, (const char *)&ch, 1);
    }
  }
  buf_puts(b, "\"");
}

static void buf_put_str(buf_t *b, const transformer_string_t *s) {
  buf_put(b, (const char *)s->ptr, s->len);
}

// Moves the buffer's storage into a component-model string (the buffer is
// left empty).
static transformer_string_t buf_take(buf_t *b) {
  transformer_string_t s = {(uint8_t *)b->ptr, b->len};
  if (b->len == 0) {
    free(b->ptr);
    s.ptr = NULL;
  }
  *b = (buf_t){0};
  return s;
}

// ---------------------------------------------------------------------------
// Host imports.

static bool is_blank(uint8_t ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

// Config `key` with surrounding blanks trimmed, as a malloc'd NUL-terminated
// string; NULL when unset or blank. The caller frees it.
static char *setting(const char *key) {
  transformer_string_t k, v;
  transformer_string_set(&k, key);  // borrowed by the import
  if (!wasmhook_plugin_config_get(&k, &v)) return NULL;
  size_t start = 0, end = v.len;
  while (start < end && is_blank(v.ptr[start])) start++;
  while (end > start && is_blank(v.ptr[end - 1])) end--;
  char *out = NULL;
  if (end > start) {
    out = xrealloc(NULL, end - start + 1);
    memcpy(out, v.ptr + start, end - start);
    out[end - start] = '\0';
  }
  transformer_string_free(&v);  // returned by the import: ours to free
  return out;
}

// Writes one line to the host's log.
static void log_line(wasmhook_plugin_log_level_t level, buf_t *line) {
  transformer_string_t message = {(uint8_t *)line->ptr, line->len};
  wasmhook_plugin_log_log(level, &message);  // borrowed
  free(line->ptr);
  *line = (buf_t){0};
}

// ---------------------------------------------------------------------------
// The logic.

// Everything `decide` allocates that is not returned; freed by the caller.
typedef struct {
  char *wanted;
  char *url;
} inputs_t;

static bool fail(transformer_string_t *err, const char *message) {
  transformer_string_dup(err, message);  // malloc'd: freed by post-return
  return false;
}

// Fills `ret` (return true) or `err` (return false) for `event`.
static bool decide(const transformer_event_t *event, inputs_t *in, transformer_decision_t *ret,
                   transformer_string_t *err) {
  // Skip events this plugin is not about, with a reason for the log.
  in->wanted = setting("event");
  if (in->wanted &&
      (event->name.len != strlen(in->wanted) ||
       memcmp(event->name.ptr, in->wanted, event->name.len) != 0)) {
    buf_t reason = {0};
    buf_puts(&reason, "event ");
    buf_put_str(&reason, &event->name);
    buf_puts(&reason, " is not ");
    buf_puts(&reason, in->wanted);
    ret->tag = WASMHOOK_PLUGIN_TYPES_DECISION_SKIP;
    ret->val.skip = buf_take(&reason);
    return true;
  }
  // A missing setting is an error: recorded, nothing is sent.
  in->url = setting("url");
  if (!in->url) return fail(err, "config `url` is not set");

  // The event as JSON. The host guarantees `properties` is a JSON object.
  buf_t body = {0};
  buf_puts(&body, "{\"id\":");
  buf_put_json(&body, (const char *)event->id.ptr, event->id.len);
  buf_puts(&body, ",\"name\":");
  buf_put_json(&body, (const char *)event->name.ptr, event->name.len);
  buf_puts(&body, ",\"user_id\":");
  if (event->user_id.is_some) {
    buf_put_json(&body, (const char *)event->user_id.val.ptr, event->user_id.val.len);
  } else {
    buf_puts(&body, "null");
  }
  buf_puts(&body, ",\"timestamp_ms\":");
  buf_put_u64(&body, event->timestamp_ms);
  buf_puts(&body, ",\"properties\":");
  buf_put_str(&body, &event->properties);
  buf_puts(&body, "}");

  buf_t line = {0};
  buf_puts(&line, "forwarding ");
  buf_put_str(&line, &event->name);
  buf_puts(&line, " to ");
  buf_puts(&line, in->url);
  log_line(WASMHOOK_PLUGIN_LOG_LEVEL_DEBUG, &line);

  // One request; every string and list in it is malloc'd.
  transformer_tuple2_string_string_t *headers = xrealloc(NULL, sizeof *headers);
  transformer_string_dup(&headers[0].f0, "content-type");
  transformer_string_dup(&headers[0].f1, "application/json");
  wasmhook_plugin_types_request_t *req = xrealloc(NULL, sizeof *req);
  transformer_string_t body_text = buf_take(&body);
  req->method = WASMHOOK_PLUGIN_TYPES_METHOD_POST;
  transformer_string_dup(&req->url, in->url);
  req->headers = (transformer_list_tuple2_string_string_t){headers, 1};
  req->body = (transformer_list_u8_t){body_text.ptr, body_text.len};

  ret->tag = WASMHOOK_PLUGIN_TYPES_DECISION_FIRE;
  ret->val.fire = (wasmhook_plugin_types_list_request_t){req, 1};
  return true;
}

// The export: called by the host once per event the plugin is subscribed to.
// Return true with `ret` set (skip or fire), or false with `err` set.
bool exports_transformer_transform(transformer_event_t *event, transformer_decision_t *ret,
                                   transformer_string_t *err) {
  inputs_t in = {0};
  bool ok = decide(event, &in, ret, err);
  free(in.wanted);
  free(in.url);
  transformer_event_free(event);  // the argument is ours to free
  return ok;
}

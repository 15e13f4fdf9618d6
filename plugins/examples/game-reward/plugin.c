// game-reward: a wasmhook plugin written in C.
//
// On `level.reached` events whose `level` property is at least the
// configured `min_level`, it asks the game backend to grant the player coins
// and, when the event carries the player's `push_token`, sends a push
// notification through Firebase Cloud Messaging. It never touches the
// network itself: it returns the two requests and the host sends them, with
// the `{{secret:...}}` placeholders filled in.
//
// Memory follows the ownership rules of the wit-bindgen C bindings:
// - `transform`'s argument `event` belongs to the plugin, which frees it
//   (transformer_event_free) before returning;
// - everything put into the returned decision or error is malloc'd and is
//   freed by the generated `cabi_post_transform` once the host has copied it,
//   so no static string may ever be returned;
// - arguments passed to imports are borrowed, and values imports return
//   (config_get's string) belong to the plugin, which frees them.
// Allocation failure traps (the host records a plugin error).

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mini_json.h"
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

static void buf_put_i64(buf_t *b, int64_t v) {
  char tmp[24];
  size_t i = sizeof tmp;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) tmp[--i] = '-';
  buf_put(b, tmp + i, sizeof tmp - i);
}

// Appends `s` as a quoted JSON string.
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

// Whether `s` may be one URL path segment: not empty, "." or "..". The
// host's URL parser removes dot segments ("players/../coins" is "coins"),
// and percent-encoding does not help: "%2e%2e" is a dot segment too.
static bool is_path_segment(const char *s, size_t n) {
  return !(n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'));
}

// Appends `s` percent-encoded as one URL path segment (only unreserved
// characters stay as they are, so "/", "?" or "#" cannot change the URL).
// Refuses, appending nothing and returning false, a segment that is empty,
// "." or ".." (see is_path_segment).
static bool buf_put_segment(buf_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  if (!is_path_segment(s, n)) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
                 ch == '~';
    if (plain) {
      buf_put(b, (const char *)&ch, 1);
    } else {
      char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
      buf_put(b, esc, 3);
    }
  }
  return true;
}

// Appends the push's collapse key for event id `id`: "reward-" and the
// FNV-1a 64-bit hash of the id in 16 hex digits. The same id always gives
// the same key, so a push sent again after a retry replaces the first one
// on the device instead of showing twice; the key is short (23 bytes,
// under APNs' 64-byte limit for apns-collapse-id) and plain ASCII whatever
// the id holds.
static void buf_put_collapse_key(buf_t *b, const uint8_t *id, size_t n) {
  static const char hex[] = "0123456789abcdef";
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a offset basis
  for (size_t i = 0; i < n; i++) {
    h ^= id[i];
    h *= 0x100000001b3ull;  // FNV prime
  }
  char out[16];
  for (int i = 15; i >= 0; i--) {
    out[i] = hex[h & 15];
    h >>= 4;
  }
  buf_puts(b, "reward-");
  buf_put(b, out, sizeof out);
}

// Moves the buffer's storage into a component-model string.
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
// Configuration.

// The setting `key` as a malloc'd NUL-terminated string, or NULL when unset
// or empty. The caller frees it.
static char *config_get(const char *key) {
  transformer_string_t k, v;
  transformer_string_set(&k, key);  // borrowed by the import
  if (!wasmhook_plugin_config_get(&k, &v)) return NULL;
  char *out = NULL;
  if (v.len > 0) {
    out = xrealloc(NULL, v.len + 1);
    memcpy(out, v.ptr, v.len);
    out[v.len] = '\0';
  }
  transformer_string_free(&v);  // returned by the import: ours to free
  return out;
}

// The setting `key` as an integer, `fallback` when unset. False when it is
// set but not an integer.
static bool config_i64(const char *key, int64_t fallback, int64_t *out) {
  char *text = config_get(key);
  bool ok = true;
  *out = fallback;
  if (text) ok = mj_parse_i64(text, strlen(text), out);
  free(text);
  return ok;
}

// ---------------------------------------------------------------------------
// Building the decision.

static bool fail(transformer_string_t *err, const char *message) {
  transformer_string_dup(err, message);  // malloc'd: freed by post-return
  return false;
}

static bool skip(transformer_decision_t *ret, buf_t *reason) {
  ret->tag = WASMHOOK_PLUGIN_TYPES_DECISION_SKIP;
  ret->val.skip = buf_take(reason);
  return true;
}

static bool skip_with(transformer_decision_t *ret, const char *reason) {
  buf_t b = {0};
  buf_puts(&b, reason);
  return skip(ret, &b);
}

// Fills `req` with a JSON POST to `url` authorized by the secret `secret`.
static void json_post(wasmhook_plugin_types_request_t *req, buf_t *url, const char *secret,
                      buf_t *body) {
  buf_t auth = {0};
  buf_puts(&auth, "Bearer {{secret:");
  buf_puts(&auth, secret);
  buf_puts(&auth, "}}");
  transformer_tuple2_string_string_t *headers = xrealloc(NULL, 2 * sizeof *headers);
  transformer_string_dup(&headers[0].f0, "content-type");
  transformer_string_dup(&headers[0].f1, "application/json");
  transformer_string_dup(&headers[1].f0, "authorization");
  headers[1].f1 = buf_take(&auth);
  transformer_string_t body_text = buf_take(body);
  req->method = WASMHOOK_PLUGIN_TYPES_METHOD_POST;
  req->url = buf_take(url);
  req->headers = (transformer_list_tuple2_string_string_t){headers, 2};
  req->body = (transformer_list_u8_t){body_text.ptr, body_text.len};
}

static bool starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

// Everything the decision needs that must be freed afterwards.
typedef struct {
  char *player_id;
  size_t player_id_len;
  char *push_token;
  size_t push_token_len;
  char *backend_url;
  char *push_url;
  char *firebase_project;
} inputs_t;

static void inputs_free(inputs_t *in) {
  free(in->player_id);
  free(in->push_token);
  free(in->backend_url);
  free(in->push_url);
  free(in->firebase_project);
}

static bool decide(const transformer_event_t *event, inputs_t *in, transformer_decision_t *ret,
                   transformer_string_t *err) {
  static const char wanted[] = "level.reached";
  if (event->name.len != sizeof wanted - 1 || memcmp(event->name.ptr, wanted, event->name.len)) {
    buf_t reason = {0};
    size_t n = event->name.len > 64 ? 64 : event->name.len;
    while (n < event->name.len && n > 0 && (event->name.ptr[n] & 0xC0) == 0x80) n--;
    buf_puts(&reason, "not a level.reached event (got ");
    buf_put(&reason, (const char *)event->name.ptr, n);
    buf_puts(&reason, n < event->name.len ? "...)" : ")");
    return skip(ret, &reason);
  }

  const char *props = (const char *)event->properties.ptr;
  size_t props_len = event->properties.len;
  mj_value v;
  int found = mj_find(props, props_len, "level", &v);
  if (found < 0) return fail(err, "event properties are not a valid JSON object");
  int64_t level;
  if (found == 0) return skip_with(ret, "property level is missing");
  if (!mj_int64(&v, &level)) return skip_with(ret, "property level is not an integer");

  int64_t min_level;
  if (!config_i64("min_level", 10, &min_level))
    return fail(err, "config min_level must be an integer");
  if (level < min_level) {
    buf_t reason = {0};
    buf_puts(&reason, "level ");
    buf_put_i64(&reason, level);
    buf_puts(&reason, " is below min_level ");
    buf_put_i64(&reason, min_level);
    return skip(ret, &reason);
  }

  if (mj_find(props, props_len, "player_id", &v) == 1)
    in->player_id = mj_string_dup(&v, &in->player_id_len);
  if (!in->player_id || in->player_id_len == 0)
    return skip_with(ret, "property player_id is missing or not a non-empty string");
  if (mj_find(props, props_len, "push_token", &v) == 1)
    in->push_token = mj_string_dup(&v, &in->push_token_len);

  in->backend_url = config_get("backend_url");
  if (!in->backend_url) return fail(err, "config backend_url is required");
  if (!starts_with(in->backend_url, "https://") && !starts_with(in->backend_url, "http://"))
    return fail(err, "config backend_url must start with https:// or http://");
  int64_t coins;
  if (!config_i64("coins", 100, &coins) || coins <= 0)
    return fail(err, "config coins must be a positive integer");
  in->push_url = config_get("push_url");
  in->firebase_project = config_get("firebase_project");

  // The URLs first, so that an id that cannot be a path segment skips (or
  // fails) before anything of the decision is allocated.
  buf_t url = {0}, push = {0}, body = {0};
  size_t base_len = strlen(in->backend_url);
  while (base_len > 0 && in->backend_url[base_len - 1] == '/') base_len--;
  buf_put(&url, in->backend_url, base_len);
  buf_puts(&url, "/players/");
  if (!buf_put_segment(&url, in->player_id, in->player_id_len)) {
    free(url.ptr);
    buf_t reason = {0};
    buf_puts(&reason, "property player_id \"");
    buf_put(&reason, in->player_id, in->player_id_len);
    buf_puts(&reason, "\" cannot be used in the backend URL (\".\" and \"..\" are refused)");
    return skip(ret, &reason);
  }
  buf_puts(&url, "/coins");

  const char *push_note = "push sent";
  if (!in->push_token || in->push_token_len == 0) {
    push_note = "no push: property push_token missing";
  } else if (!in->push_url && !in->firebase_project) {
    push_note = "no push: neither push_url nor firebase_project configured";
  } else if (in->push_url) {
    buf_puts(&push, in->push_url);
  } else {
    buf_puts(&push, "https://fcm.googleapis.com/v1/projects/");
    if (!buf_put_segment(&push, in->firebase_project, strlen(in->firebase_project))) {
      free(push.ptr);
      free(url.ptr);
      return fail(err, "config firebase_project must not be \".\" or \"..\"");
    }
    buf_puts(&push, "/messages:send");
  }

  // 1. Grant the coins.
  wasmhook_plugin_types_request_t *reqs = xrealloc(NULL, 2 * sizeof *reqs);
  size_t n_reqs = 0;
  buf_puts(&body, "{\"amount\":");
  buf_put_i64(&body, coins);
  buf_puts(&body, ",\"reason\":\"level ");
  buf_put_i64(&body, level);
  buf_puts(&body, " reached\",\"idempotency_key\":");
  buf_put_json(&body, (const char *)event->id.ptr, event->id.len);
  buf_puts(&body, "}");
  json_post(&reqs[n_reqs++], &url, "GAME_API_KEY", &body);

  // 2. Tell the player, when we can reach them.
  if (push.len > 0) {
    buf_t text = {0};
    buf_puts(&text, "You reached level ");
    buf_put_i64(&text, level);
    buf_puts(&text, "! +");
    buf_put_i64(&text, coins);
    buf_puts(&text, " coins");
    buf_puts(&body, "{\"message\":{\"token\":");
    buf_put_json(&body, in->push_token, in->push_token_len);
    buf_puts(&body, ",\"notification\":{\"title\":\"Level up!\",\"body\":");
    buf_put_json(&body, text.ptr, text.len);
    buf_puts(&body, "},\"data\":{\"player_id\":");
    buf_put_json(&body, in->player_id, in->player_id_len);
    buf_puts(&body, ",\"level\":\"");
    buf_put_i64(&body, level);
    // One collapse key from the event id, for Android (collapse_key: of
    // undelivered messages with the key FCM keeps the latest;
    // notification.tag: a notification with the tag replaces the one shown)
    // and Apple devices (apns-collapse-id: shown as one notification).
    buf_t key = {0};
    buf_put_collapse_key(&key, event->id.ptr, event->id.len);
    buf_puts(&body, "\"},\"android\":{\"collapse_key\":\"");
    buf_put(&body, key.ptr, key.len);
    buf_puts(&body, "\",\"notification\":{\"tag\":\"");
    buf_put(&body, key.ptr, key.len);
    buf_puts(&body, "\"}},\"apns\":{\"headers\":{\"apns-collapse-id\":\"");
    buf_put(&body, key.ptr, key.len);
    buf_puts(&body, "\"}}}}");
    free(key.ptr);
    free(text.ptr);
    json_post(&reqs[n_reqs++], &push, "PUSH_TOKEN", &body);
  }

  buf_t line = {0};
  buf_puts(&line, "level ");
  buf_put_i64(&line, level);
  buf_puts(&line, " reached by player ");
  buf_put(&line, in->player_id, in->player_id_len);
  buf_puts(&line, ": granting ");
  buf_put_i64(&line, coins);
  buf_puts(&line, " coins, ");
  buf_puts(&line, push_note);
  transformer_string_t message = {(uint8_t *)line.ptr, line.len};
  wasmhook_plugin_log_log(WASMHOOK_PLUGIN_LOG_LEVEL_INFO, &message);  // borrowed
  free(line.ptr);

  ret->tag = WASMHOOK_PLUGIN_TYPES_DECISION_FIRE;
  ret->val.fire = (wasmhook_plugin_types_list_request_t){reqs, n_reqs};
  return true;
}

bool exports_transformer_transform(transformer_event_t *event, transformer_decision_t *ret,
                                   transformer_string_t *err) {
  inputs_t in = {0};
  bool ok = decide(event, &in, ret, err);
  inputs_free(&in);
  transformer_event_free(event);  // the argument is ours to free
  return ok;
}

// Native unit tests of game-reward's plugin.c: `scripts/plugins/c.sh test`.
//
// plugin.c is compiled into this file for the machine running the tests
// (not wasm32), against the generated transformer.h, with the few binding
// functions it uses written here: the helpers of transformer.c and the
// host's imports (config from a table, log lines recorded). The test
// builds events as the host would (every string malloc'd: the plugin frees
// the event), calls exports_transformer_transform and frees the decision as
// the generated post-return function would. Build it with AddressSanitizer
// (the script does) to catch leaks and bad frees too.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transformer.h"

// ---------------------------------------------------------------------------
// The bindings' helpers (transformer.c) and the host's imports.

void transformer_string_set(transformer_string_t *ret, const char *s) {
  ret->ptr = (uint8_t *)s;
  ret->len = strlen(s);
}

void transformer_string_dup_n(transformer_string_t *ret, const char *s, size_t len) {
  ret->ptr = len ? malloc(len) : NULL;
  if (len) memcpy(ret->ptr, s, len);
  ret->len = len;
}

void transformer_string_dup(transformer_string_t *ret, const char *s) {
  transformer_string_dup_n(ret, s, strlen(s));
}

void transformer_string_free(transformer_string_t *ret) {
  free(ret->ptr);
  ret->ptr = NULL;
  ret->len = 0;
}

void transformer_event_free(transformer_event_t *ptr) {
  transformer_string_free(&ptr->id);
  transformer_string_free(&ptr->name);
  if (ptr->user_id.is_some) transformer_string_free(&ptr->user_id.val);
  transformer_string_free(&ptr->properties);
}

static struct {
  const char *key, *value;
} config[8];
static char last_log[1024];

static void set_config(const char *key, const char *value) {
  for (size_t i = 0; i < sizeof config / sizeof config[0]; i++) {
    if (!config[i].key || strcmp(config[i].key, key) == 0) {
      config[i].key = key;
      config[i].value = value;
      return;
    }
  }
  abort();
}

static void reset(void) {
  memset(config, 0, sizeof config);
  last_log[0] = '\0';
  set_config("backend_url", "https://game.example.com/api");
}

bool wasmhook_plugin_config_get(transformer_string_t *key, transformer_string_t *ret) {
  for (size_t i = 0; i < sizeof config / sizeof config[0] && config[i].key; i++) {
    if (strlen(config[i].key) == key->len && memcmp(config[i].key, key->ptr, key->len) == 0) {
      transformer_string_dup(ret, config[i].value);
      return true;
    }
  }
  return false;
}

void wasmhook_plugin_log_log(wasmhook_plugin_log_level_t level, transformer_string_t *message) {
  (void)level;
  size_t n = message->len < sizeof last_log - 1 ? message->len : sizeof last_log - 1;
  memcpy(last_log, message->ptr, n);
  last_log[n] = '\0';
}

#include "plugin.c"

// ---------------------------------------------------------------------------
// Running the plugin.

typedef struct {
  bool ok;
  transformer_decision_t decision;
  transformer_string_t err;
} outcome_t;

static outcome_t run_id(const char *id, const char *name, const char *properties) {
  transformer_event_t event = {0};
  transformer_string_dup(&event.id, id);
  transformer_string_dup(&event.name, name);
  transformer_string_dup(&event.properties, properties);
  outcome_t out = {0};
  out.ok = exports_transformer_transform(&event, &out.decision, &out.err);
  return out;
}

static outcome_t run(const char *name, const char *properties) {
  return run_id("evt-1", name, properties);
}

// Frees what the plugin returned, as cabi_post_transform does.
static void outcome_free(outcome_t *out) {
  if (!out->ok) {
    transformer_string_free(&out->err);
    return;
  }
  if (out->decision.tag == WASMHOOK_PLUGIN_TYPES_DECISION_SKIP) {
    transformer_string_free(&out->decision.val.skip);
    return;
  }
  wasmhook_plugin_types_list_request_t *reqs = &out->decision.val.fire;
  for (size_t i = 0; i < reqs->len; i++) {
    wasmhook_plugin_types_request_t *r = &reqs->ptr[i];
    transformer_string_free(&r->url);
    for (size_t j = 0; j < r->headers.len; j++) {
      transformer_string_free(&r->headers.ptr[j].f0);
      transformer_string_free(&r->headers.ptr[j].f1);
    }
    free(r->headers.ptr);
    free(r->body.ptr);
  }
  free(reqs->ptr);
}

static int failures;

static bool same(const transformer_string_t *s, const char *want) {
  return s->len == strlen(want) && (s->len == 0 || memcmp(s->ptr, want, s->len) == 0);
}

#define CHECK(cond, ...)                                            \
  do {                                                              \
    if (!(cond)) {                                                  \
      fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, __func__); \
      fprintf(stderr, __VA_ARGS__);                                 \
      fprintf(stderr, "\n");                                        \
      failures++;                                                   \
    }                                                               \
  } while (0)

static void expect_skip(const char *properties, const char *reason) {
  outcome_t out = run("level.reached", properties);
  CHECK(out.ok && out.decision.tag == WASMHOOK_PLUGIN_TYPES_DECISION_SKIP &&
            same(&out.decision.val.skip, reason),
        "%s: want skip \"%s\", got %s \"%.*s\"", properties, reason,
        !out.ok ? "err" : out.decision.tag == WASMHOOK_PLUGIN_TYPES_DECISION_SKIP ? "skip" : "fire",
        !out.ok ? (int)out.err.len
        : out.decision.tag == WASMHOOK_PLUGIN_TYPES_DECISION_SKIP ? (int)out.decision.val.skip.len
                                                                  : 0,
        !out.ok ? (const char *)out.err.ptr : (const char *)out.decision.val.skip.ptr);
  outcome_free(&out);
}

static void expect_err(const char *properties, const char *message) {
  outcome_t out = run("level.reached", properties);
  CHECK(!out.ok && same(&out.err, message), "%s: want err \"%s\"", properties, message);
  outcome_free(&out);
}

// Runs a firing event and checks the URLs of its requests (NULL: none).
static void expect_fire(const char *properties, const char *coins_url, const char *push_url) {
  outcome_t out = run("level.reached", properties);
  bool fired = out.ok && out.decision.tag == WASMHOOK_PLUGIN_TYPES_DECISION_FIRE;
  CHECK(fired, "%s: want fire", properties);
  if (fired) {
    wasmhook_plugin_types_list_request_t *reqs = &out.decision.val.fire;
    CHECK(reqs->len == (push_url ? 2u : 1u), "%s: %zu requests", properties, reqs->len);
    if (reqs->len >= 1)
      CHECK(same(&reqs->ptr[0].url, coins_url), "%s: coins url %.*s, want %s", properties,
            (int)reqs->ptr[0].url.len, (const char *)reqs->ptr[0].url.ptr, coins_url);
    if (reqs->len >= 2 && push_url)
      CHECK(same(&reqs->ptr[1].url, push_url), "%s: push url %.*s, want %s", properties,
            (int)reqs->ptr[1].url.len, (const char *)reqs->ptr[1].url.ptr, push_url);
  }
  outcome_free(&out);
}

// ---------------------------------------------------------------------------
// The tests.

static void test_fires_coins_and_push(void) {
  reset();
  set_config("firebase_project", "my-game");
  expect_fire("{\"level\":12,\"player_id\":\"p-42\",\"push_token\":\"tok\"}",
              "https://game.example.com/api/players/p-42/coins",
              "https://fcm.googleapis.com/v1/projects/my-game/messages:send");
  CHECK(strcmp(last_log, "level 12 reached by player p-42: granting 100 coins, push sent") == 0,
        "log: %s", last_log);
}

// The push body for event `id` (level 12, player p-42, token tok), as a
// malloc'd NUL-terminated string, or NULL when the plugin sent no push.
static char *push_body(const char *id) {
  outcome_t out = run_id(id, "level.reached",
                         "{\"level\":12,\"player_id\":\"p-42\",\"push_token\":\"tok\"}");
  char *body = NULL;
  if (out.ok && out.decision.tag == WASMHOOK_PLUGIN_TYPES_DECISION_FIRE &&
      out.decision.val.fire.len == 2) {
    transformer_list_u8_t *b = &out.decision.val.fire.ptr[1].body;
    body = malloc(b->len + 1);
    memcpy(body, b->ptr, b->len);
    body[b->len] = '\0';
  }
  outcome_free(&out);
  return body;
}

static void test_push_carries_a_collapse_key_from_the_event_id(void) {
  reset();
  set_config("firebase_project", "my-game");
  char *body = push_body("evt-1");
  const char *want =
      "{\"message\":{\"token\":\"tok\",\"notification\":{\"title\":\"Level up!\","
      "\"body\":\"You reached level 12! +100 coins\"},\"data\":{\"player_id\":\"p-42\","
      "\"level\":\"12\"},\"android\":{\"collapse_key\":\"reward-940ac600c414dbc4\","
      "\"notification\":{\"tag\":\"reward-940ac600c414dbc4\"}},\"apns\":{\"headers\":"
      "{\"apns-collapse-id\":\"reward-940ac600c414dbc4\"}}}}";
  CHECK(body && strcmp(body, want) == 0, "push body %s\nwant %s", body ? body : "(none)", want);
  // The same event (a retry or a rerun) gives the same key; another event
  // another one (FNV-1a 64 of the id, checked against a reference).
  char *again = push_body("evt-1");
  CHECK(body && again && strcmp(body, again) == 0, "same event, different push bodies");
  char *other = push_body("evt-2");
  CHECK(other && strstr(other, "\"apns-collapse-id\":\"reward-940ac900c414e0dd\"") &&
            strstr(other, "\"collapse_key\":\"reward-940ac900c414e0dd\""),
        "evt-2: %s", other ? other : "(none)");
  // Any id, however long or odd, gives a 23-byte ASCII key (APNs allows 64).
  char long_id[300];
  memset(long_id, 'x', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  char *odd = push_body(long_id);
  const char *k = odd ? strstr(odd, "\"apns-collapse-id\":\"") : NULL;
  CHECK(k && strlen(k + 20) == 23 + 5 && strncmp(k + 20, "reward-", 7) == 0, "long id: %s",
        odd ? odd : "(none)");
  free(body);
  free(again);
  free(other);
  free(odd);
}

static void test_player_id_is_one_encoded_segment(void) {
  reset();
  expect_fire("{\"level\":12,\"player_id\":\"a/../b?c#d e\"}",
              "https://game.example.com/api/players/a%2F..%2Fb%3Fc%23d%20e/coins", NULL);
  expect_fire("{\"level\":12,\"player_id\":\"...\"}",
              "https://game.example.com/api/players/.../coins", NULL);
  expect_fire("{\"level\":12,\"player_id\":\"%2e%2e\"}",
              "https://game.example.com/api/players/%252e%252e/coins", NULL);
}

static void test_dot_segments_are_skipped(void) {
  reset();
  set_config("firebase_project", "my-game");
  // Would be {backend_url}/coins and {backend_url}/players/coins.
  expect_skip("{\"level\":12,\"player_id\":\"..\",\"push_token\":\"tok\"}",
              "property player_id \"..\" cannot be used in the backend URL (\".\" and \"..\" are refused)");
  expect_skip("{\"level\":12,\"player_id\":\".\"}",
              "property player_id \".\" cannot be used in the backend URL (\".\" and \"..\" are refused)");
  CHECK(last_log[0] == '\0', "logged: %s", last_log);
}

static void test_dot_firebase_project_is_an_error(void) {
  reset();
  set_config("firebase_project", "..");
  expect_err("{\"level\":12,\"player_id\":\"p-42\",\"push_token\":\"tok\"}",
             "config firebase_project must not be \".\" or \"..\"");
  // Unused without a push token, or when push_url replaces the FCM URL.
  expect_fire("{\"level\":12,\"player_id\":\"p-42\"}", "https://game.example.com/api/players/p-42/coins",
              NULL);
  set_config("push_url", "https://push.example.com/send");
  expect_fire("{\"level\":12,\"player_id\":\"p-42\",\"push_token\":\"tok\"}",
              "https://game.example.com/api/players/p-42/coins", "https://push.example.com/send");
}

static void test_other_skips_and_errors(void) {
  reset();
  expect_skip("{\"level\":7,\"player_id\":\"p\"}", "level 7 is below min_level 10");
  expect_skip("{\"level\":12}", "property player_id is missing or not a non-empty string");
  expect_skip("{\"level\":12,\"player_id\":\"\"}",
              "property player_id is missing or not a non-empty string");
  expect_err("{\"level\":", "event properties are not a valid JSON object");
  outcome_t out = run("level.lost", "{}");
  CHECK(out.ok && same(&out.decision.val.skip, "not a level.reached event (got level.lost)"),
        "other event");
  outcome_free(&out);
  memset(config, 0, sizeof config);
  expect_err("{\"level\":12,\"player_id\":\"p\"}", "config backend_url is required");
}

int main(void) {
  test_fires_coins_and_push();
  test_push_carries_a_collapse_key_from_the_event_id();
  test_player_id_is_one_encoded_segment();
  test_dot_segments_are_skipped();
  test_dot_firebase_project_is_an_error();
  test_other_skips_and_errors();
  if (failures) {
    fprintf(stderr, "game-reward: %d check(s) failed\n", failures);
    return 1;
  }
  printf("game-reward: all tests passed\n");
  return 0;
}

//! Every config error, one broken file each (`testdata/broken/*.toml`):
//! the exact message with file, line, column and key.

use std::path::Path;

use super::{SECRET_VALUES, base_dir, test_env};
use crate::config::{Config, ConfigError};

macro_rules! case {
    ($name:literal, $want:expr) => {
        (
            $name,
            include_str!(concat!("../testdata/broken/", $name, ".toml")),
            $want,
        )
    };
}

/// (file stem, contents, expected message after `<stem>.toml:`). `{base}`
/// stands for the directory the config is resolved against.
const CASES: &[(&str, &str, &str)] = &[
    case!(
        "assets_not_found",
        "9:10: plugins[0].assets: assets directory {base}/templates not found"
    ),
    case!(
        "bad_host_pattern",
        "9:44: plugins[0].allowed_hosts[1]: invalid host pattern \"ftp://files.example.com\": the scheme must be http or https"
    ),
    case!(
        "unreachable_host_pattern",
        "9:44: plugins[0].allowed_hosts[1]: \"http://169.254.169.254\" names 169.254.169.254, which is link-local (cloud metadata); it can never be reached unless you also add 169.254.169.254 to allow_private_networks"
    ),
    case!(
        "bad_private_network",
        "9:41: plugins[0].allow_private_networks[1]: invalid network \"10.1.2.3/8\": host bits are set; did you mean 10.0.0.0/8?"
    ),
    case!(
        "secret_host_is_url",
        "11:51: plugins[0].secrets.HUBSPOT_TOKEN.hosts[0]: \"https://api.hubapi.com\" is not a host name: write a host name only, without scheme, port or path"
    ),
    case!(
        "bad_listen",
        "2:10: server.listen: \"localhost\" is not an IP address and port, e.g. \"127.0.0.1:8080\" or \"[::]:8080\""
    ),
    case!(
        "bad_method",
        "9:28: plugins[0].allowed_methods[1]: unknown method \"HEAD\", expected one of GET, POST, PUT, PATCH, DELETE"
    ),
    case!(
        "bad_name",
        "6:8: plugins[0].name: \"CRM Sync\" is not a valid plugin name; use 1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit"
    ),
    case!(
        "bad_store_backend",
        "6:11: store.backend: unknown variant `redis`, expected `sqlite`"
    ),
    case!(
        "bad_variable_syntax",
        "3:17: auth.admin_tokens[0]: unterminated ${ in \"${ADMIN_TOKEN\" (write $${ for a literal ${)"
    ),
    case!(
        "breaker_max_below_pause",
        "7:15: breakers.destinations.max_pause_s: max_pause_s (60 s) is below pause_s (120 s)"
    ),
    case!(
        "breaker_unknown_key",
        "6:1: breakers.destinations.cooldown_s: unknown field `cooldown_s`, expected one of `failure_threshold`, `window_s`, `pause_s`, `max_pause_s`"
    ),
    case!(
        "breaker_zero_threshold",
        "6:21: breakers.plugins.failure_threshold: 0 is too small; expected at least 1"
    ),
    case!(
        "cache_cap_zero",
        "6:16: runtime.cache_max_mb: 0 is out of range; expected 1 to 1048576"
    ),
    case!(
        "component_not_found",
        "7:13: plugins[0].component: component file {base}/target/plugins/crm.wasm not found"
    ),
    case!(
        "config_value_table",
        "11:10: plugins[0].config.nested: invalid type: map, expected a string, number or boolean"
    ),
    case!(
        "delivery_timeout_zero",
        "9:22: plugins[0].delivery.timeout_s: 0 is out of range; expected 1 to 3600"
    ),
    case!(
        "dns_bad_address",
        "6:43: dns.static.\"internal.test\"[1]: \"10.0.0.300\" is not an IP address, e.g. \"10.0.0.7\" or \"fd00::7\""
    ),
    case!(
        "dns_duplicate_name",
        "7:20: dns.static.\"internal.test.\": names \"internal.test\" again (names are compared case-insensitively)"
    ),
    case!(
        "dns_ip_as_name",
        "6:26: dns.static.\"127.0.0.1\": \"127.0.0.1\" is not a host name: it is an IP address, which needs no resolving"
    ),
    case!(
        "dns_no_addresses",
        "6:30: dns.static.\"internal.test\": lists no addresses; give at least one, or remove the entry"
    ),
    case!(
        "dns_unknown_key",
        "7:1: dns.resolve: unknown field `resolve`, expected `static`"
    ),
    case!(
        "duplicate_names",
        "11:8: plugins[1].name: duplicate plugin name \"crm\"; names must be unique"
    ),
    case!(
        "empty_event_pattern",
        "8:22: plugins[0].events[1]: empty event pattern"
    ),
    case!(
        "empty_retry_schedule",
        "10:20: plugins[0].delivery.retry_schedule_s: must list at least one retry delay"
    ),
    case!(
        "event_age_zero",
        "9:19: plugins[0].max_event_age_s: 0 is out of range; expected 1 to 31536000"
    ),
    case!("empty_store_path", "6:8: store.path: must not be empty"),
    case!("empty_token", "2:37: auth.ingest_tokens[1]: token is empty"),
    case!(
        "fuel_without_runtime",
        "9:8: plugins[0].fuel: fuel metering is off; set fuel = true in [runtime] to use fuel limits"
    ),
    case!(
        "insecure_with_tokens",
        "4:20: auth.insecure_no_auth: is set but tokens are configured too; remove the tokens or insecure_no_auth"
    ),
    case!(
        "memory_out_of_range",
        "9:13: plugins[0].memory_mb: 5000 is out of range; expected 1 to 4096"
    ),
    case!(
        "missing_component",
        "5:1: plugins[0]: missing field `component`"
    ),
    case!(
        "negative_memory",
        "9:13: plugins[0].memory_mb: invalid value: integer `-1`, expected u64"
    ),
    case!(
        "no_admin_tokens",
        "1:1: auth.admin_tokens: is empty, so nobody could call the management API; add a token"
    ),
    case!(
        "no_auth_section",
        "1:1: auth: no tokens configured; set auth.ingest_tokens and auth.admin_tokens, or insecure_no_auth = true for local testing"
    ),
    case!(
        "no_events",
        "8:10: plugins[0].events: is empty; list the event names (or patterns; \"*\" = all) to subscribe to"
    ),
    case!(
        "no_methods",
        "9:19: plugins[0].allowed_methods: is empty; list at least one method, or omit the key to allow all five"
    ),
    case!(
        "no_tokens",
        "4:1: auth: no tokens configured; set auth.ingest_tokens and auth.admin_tokens, or insecure_no_auth = true for local testing"
    ),
    case!(
        "previous_secret_alone",
        "10:28: plugins[0].delivery.previous_signing_secrets: needs signing_secret: the previous secrets sign next to the current one"
    ),
    case!(
        "previous_secret_prefix",
        "11:50: plugins[0].delivery.previous_signing_secrets[1]: must start with \"whsec_\" followed by the base64-encoded key"
    ),
    case!(
        "delivery_client_cert_without_key",
        "10:20: plugins[0].delivery.client_cert_file: needs client_key_file too (the certificate's private key)"
    ),
    case!(
        "delivery_ca_file_missing",
        "10:11: plugins[0].delivery.ca_file: {base}/internal-ca.pem: I/O error: No such file or directory (os error 2)"
    ),
    case!(
        "file_value_missing",
        "3:17: auth.admin_tokens[0]: cannot read {base}/tokens/admin: No such file or directory (os error 2)"
    ),
    case!(
        "destination_twice",
        "10:7: destinations[1].url: \"https://API.hubapi.com:443/\" is the same destination as destinations[0]; list each destination once"
    ),
    case!(
        "destination_with_path",
        "6:7: destinations[0].url: \"https://api.hubapi.com/crm/v3\": expected scheme://host[:port], without user, path, query or fragment"
    ),
    case!(
        "destination_in_flight_zero",
        "7:17: destinations[0].max_in_flight: 0 is too small; expected at least 1"
    ),
    case!(
        "destination_unknown_key",
        "8:1: destinations[0].burst: unknown field `burst`, expected one of `url`, `max_in_flight`, `max_per_second`"
    ),
    case!(
        "rate_zero",
        "10:27: plugins[0].delivery.max_per_second_per_host: 0 is out of range; expected 0.001 to 1000000"
    ),
    case!(
        "secret_bad_name",
        "10:19: plugins[0].secrets.HUBSPOT-TOKEN: secret name \"HUBSPOT-TOKEN\" is invalid; use letters, digits and _ only"
    ),
    case!(
        "secret_env_unset",
        "10:25: plugins[0].secrets.HUBSPOT_TOKEN.env: environment variable HUBSPOT_TOKEN_V2 is not set"
    ),
    case!(
        "secret_hosts_missing",
        "10:17: plugins[0].secrets.HUBSPOT_TOKEN: missing field `hosts`"
    ),
    case!(
        "secret_env_and_file",
        "10:17: plugins[0].secrets.HUBSPOT_TOKEN: sets more than one of env, file and oauth2; take the value from one of them"
    ),
    case!(
        "secret_no_source",
        "10:17: plugins[0].secrets.HUBSPOT_TOKEN: needs env (an environment variable), file (a file) or oauth2 (a token endpoint) for the value"
    ),
    case!(
        "oauth2_and_env",
        "10:12: plugins[0].secrets.SF_TOKEN: sets more than one of env, file and oauth2; take the value from one of them"
    ),
    case!(
        "oauth2_jwt_and_client",
        "10:23: plugins[0].secrets.SF_TOKEN.oauth2: mixes client_id/client_secret with a JWT key; use one grant (or client_auth = \"private_key_jwt\" to send client_id with a signed assertion)"
    ),
    case!(
        "oauth2_jwt_not_rsa",
        "10:91: plugins[0].secrets.SF_TOKEN.oauth2.private_key_file: the private key is not an RSA key; JWT assertions are signed with RS256"
    ),
    case!(
        "oauth2_jwt_no_issuer",
        "10:23: plugins[0].secrets.SF_TOKEN.oauth2: needs issuer"
    ),
    case!(
        "oauth2_not_a_service_account",
        "10:49: plugins[0].secrets.FCM_TOKEN.oauth2.service_account_file: {base}/secrets/user.json is not a service account key file (its \"type\" is not \"service_account\")"
    ),
    case!(
        "oauth2_http_token_url",
        "10:37: plugins[0].secrets.SF_TOKEN.oauth2.token_url: must be https: credentials travel in the request (http is accepted only to a loopback address)"
    ),
    case!(
        "oauth2_reserved_param",
        "10:136: plugins[0].secrets.SF_TOKEN.oauth2.params.grant_type: cannot be set here: the grants set grant_type, client_id, client_secret, scope, assertion, client_assertion, client_assertion_type"
    ),
    case!(
        "oauth2_bad_client_auth",
        "10:126: plugins[0].secrets.SF_TOKEN.oauth2.client_auth: unknown variant `jwt`, expected one of `basic`, `post`, `private_key_jwt`"
    ),
    case!(
        "oauth2_private_key_jwt_no_key",
        "10:25: plugins[0].secrets.LINE_TOKEN.oauth2: needs private_key_file: private_key_jwt signs its assertion with it"
    ),
    case!(
        "oauth2_private_key_jwt_with_secret",
        "10:122: plugins[0].secrets.LINE_TOKEN.oauth2.client_secret: is not sent with private_key_jwt: the signed assertion proves the client"
    ),
    case!(
        "oauth2_reserved_claim",
        "10:213: plugins[0].secrets.LINE_TOKEN.oauth2.claims.exp: cannot be set here: the host sets iss, sub, aud, iat, exp, nbf, jti, scope"
    ),
    case!(
        "oauth2_key_id_with_secret",
        "10:119: plugins[0].secrets.SF_TOKEN.oauth2.key_id: belongs to grants signed with a key; client credentials send client_id and client_secret (set client_auth = \"private_key_jwt\" to sign instead)"
    ),
    case!(
        "oauth2_certificate_of_another_key",
        "10:201: plugins[0].secrets.MS_TOKEN.oauth2.certificate_file: the certificate is not for this private key"
    ),
    case!(
        "read_token_is_an_ingest_token",
        "4:29: auth.read_tokens[1]: this token is also an ingest token; use distinct tokens so ingest clients cannot read the delivery log"
    ),
    case!(
        "read_token_is_an_admin_token",
        "4:16: auth.read_tokens[0]: this token is also an admin token; an admin token reads already, so list it once"
    ),
    case!(
        "egress_https_proxy",
        "6:9: egress.proxy: must be an http:// proxy (the tunnel carries TLS to the receiver end to end; TLS to the proxy itself is not supported)"
    ),
    case!(
        "ingest_rate_zero",
        "2:28: server.ingest_events_per_second: must be a number of events from 0.01 to 10000000, got 0"
    ),
    case!(
        "kv_quota_zero",
        "9:13: plugins[0].kv_max_mb: 0 is out of range; expected 1 to 1048576"
    ),
    case!(
        "oauth2_missing_client_id",
        "10:23: plugins[0].secrets.SF_TOKEN.oauth2: needs client_id"
    ),
    case!(
        "secret_file_missing",
        "10:26: plugins[0].secrets.HUBSPOT_TOKEN.file: cannot read {base}/secrets/missing.token: No such file or directory (os error 2)"
    ),
    case!(
        "secret_value_inline",
        "10:70: plugins[0].secrets.HUBSPOT_TOKEN.value: unknown field `value`, expected one of `env`, `file`, `oauth2`, `hosts`"
    ),
    case!(
        "secret_without_hosts",
        "10:50: plugins[0].secrets.HUBSPOT_TOKEN.hosts: is empty; a secret must say which hosts it may be sent to"
    ),
    case!(
        "shared_token",
        "3:35: auth.admin_tokens[1]: this token is also an ingest token; use distinct tokens so ingest clients cannot call the management API"
    ),
    case!(
        "signing_secret_base64",
        "10:18: plugins[0].delivery.signing_secret: signing secret is not valid base64 after the `whsec_` prefix"
    ),
    case!(
        "retry_delay_too_long",
        "10:29: plugins[0].delivery.retry_schedule_s[2]: 18446744073709551615 is out of range; expected 1 to 2592000"
    ),
    case!(
        "signing_secret_short",
        "10:18: plugins[0].delivery.signing_secret: signing secret decodes to 6 bytes; Standard Webhooks keys are 24 to 64 bytes"
    ),
    case!(
        "signing_secret_prefix",
        "10:18: plugins[0].delivery.signing_secret: must start with \"whsec_\" followed by the base64-encoded key"
    ),
    case!("syntax_error", "5:8: unclosed table, expected `]`"),
    case!(
        "timeout_out_of_range",
        "9:14: plugins[0].timeout_ms: 0 is out of range; expected 1 to 60000"
    ),
    case!(
        "tls_cert_not_pem",
        "2:17: server.tls_cert_file: {base}/plugin.wasm: no PEM certificate in it"
    ),
    case!(
        "tls_client_ca_without_cert",
        "2:22: server.tls_client_ca_file: needs tls_cert_file and tls_key_file: client certificates are asked for in a TLS handshake"
    ),
    case!(
        "tls_cert_without_key",
        "2:17: server.tls_cert_file: needs tls_key_file too (the certificate's private key)"
    ),
    case!(
        "token_not_a_list",
        "2:17: auth.ingest_tokens: invalid type: string, expected an array of strings (write [\"...\"])"
    ),
    case!(
        "too_many_redirects",
        "9:20: plugins[0].follow_redirects: 100 is out of range; expected 0 to 20"
    ),
    case!(
        "unknown_plugin_key",
        "9:1: plugins[0].timeot_ms: unknown field `timeot_ms`, expected one of `name`, `component`, `events`, `allowed_hosts`, `allowed_methods`, `allow_private_networks`, `timeout_ms`, `memory_mb`, `kv_max_mb`, `fuel`, `instance_reuse`, `max_requests`, `max_body_bytes`, `assets`, `follow_redirects`, `max_event_age_s`, `config`, `secrets`, `delivery`"
    ),
    case!(
        "unknown_section",
        "5:2: servr: unknown field `servr`, expected one of `server`, `auth`, `store`, `runtime`, `plugins`, `dns`, `egress`, `breakers`, `destinations`"
    ),
    case!(
        "unset_variable",
        "3:18: auth.ingest_tokens[0]: environment variable WASMHOOK_INGEST_TOKEN is not set"
    ),
    case!(
        "wrong_type",
        "9:14: plugins[0].timeout_ms: invalid type: string \"fast\", expected u64"
    ),
    case!(
        "zero_batch",
        "2:20: server.max_batch_events: 0 is too small; expected at least 1"
    ),
    case!(
        "zero_connections",
        "2:19: server.max_connections: 0 is too small; expected at least 1"
    ),
    case!(
        "zero_retry_delay",
        "10:24: plugins[0].delivery.retry_schedule_s[1]: retry delays must be at least 1 second"
    ),
];

#[test]
fn every_broken_config_fails_with_file_line_column_and_key() {
    let dir = base_dir();
    let base = dir.path().to_str().expect("utf-8 temp dir");
    let mut failures = Vec::new();
    for (name, text, want) in CASES {
        let file = format!("{name}.toml");
        let got = match Config::parse(text, Path::new(&file), dir.path(), &test_env) {
            Ok(_) => "<parsed without error>".to_owned(),
            Err(err @ ConfigError::Invalid { .. }) => err.to_string(),
            Err(err) => format!("<unexpected {err:?}>"),
        };
        for secret in SECRET_VALUES.iter().chain(&["tok-super-secret-value"]) {
            assert!(!got.contains(secret), "{name}: secret leaked in {got:?}");
        }
        let want = format!("{file}:{}", want.replace("{base}", base));
        if got != want {
            let got = got
                .strip_prefix(&format!("{file}:"))
                .unwrap_or(&got)
                .replace(base, "{base}");
            failures.push(format!("    case!({name:?}, {got:?}),"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches; got:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_corpus_table_lists_every_broken_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config/testdata/broken");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("testdata/broken exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES
        .iter()
        .map(|(name, ..)| format!("{name}.toml"))
        .collect();
    listed.sort();
    assert_eq!(listed, on_disk);
}

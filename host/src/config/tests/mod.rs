//! Tests of config loading: good configs, defaults, `${VAR}` expansion,
//! secret redaction, the shipped example; `corpus.rs` covers every error.

mod corpus;
mod load_edge;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::*;
use crate::model::{Method, Secret};

/// The environment every test sees.
pub(super) fn test_env(name: &str) -> Option<String> {
    let value = match name {
        "INGEST_TOKEN" => "ingest-secret-1",
        "ADMIN_TOKEN" => "admin-secret-2",
        "HUBSPOT_TOKEN" => "pat-hubspot-secret",
        "SIGNING_SECRET" => "whsec_c2VjcmV0LWtleS1mb3ItdGhlLXRlc3Rz",
        "SIGNING_SECRET_RAW" => "raw-signing-secret",
        "HOME_DIR" => "/home/test",
        _ => return None,
    };
    Some(value.to_owned())
}

/// Secret values of [`test_env`] that must never appear in messages.
pub(super) const SECRET_VALUES: &[&str] = &[
    "ingest-secret-1",
    "admin-secret-2",
    "pat-hubspot-secret",
    "c2VjcmV0LWtleS1mb3ItdGVzdHM",
    "raw-signing-secret",
    "crm-file-secret",
];

/// A directory holding `plugin.wasm`, `assets/` and
/// `secrets/crm.token`, as configs expect.
pub(super) fn base_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("plugin.wasm"), b"\0asm").expect("write component");
    std::fs::create_dir(dir.path().join("assets")).expect("create assets");
    std::fs::create_dir(dir.path().join("secrets")).expect("create secrets");
    std::fs::write(dir.path().join("secrets/crm.token"), "crm-file-secret\n")
        .expect("write a secret file");
    // Keys for `oauth2` JWT grants: RSA (usable), EC (not for RS256), and
    // a Google credentials file that is not a service account's.
    let rsa = include_str!("../../tokens/testdata/test-only-rsa.pem");
    std::fs::write(dir.path().join("secrets/rsa.pem"), rsa).expect("write a key");
    let ec = rcgen::KeyPair::generate()
        .expect("an EC key")
        .serialize_pem();
    std::fs::write(dir.path().join("secrets/ec.pem"), ec).expect("write a key");
    // A certificate of another key than rsa.pem.
    let other = rcgen::CertificateParams::new(vec!["other".into()])
        .and_then(|p| p.self_signed(&rcgen::KeyPair::generate()?))
        .expect("a certificate");
    std::fs::write(dir.path().join("secrets/other.crt"), other.pem()).expect("write a certificate");
    std::fs::write(
        dir.path().join("secrets/user.json"),
        r#"{"type": "authorized_user", "client_id": "x"}"#,
    )
    .expect("write a credentials file");
    dir
}

fn parse(text: &str, base: &Path) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.toml"), base, &test_env)
}

#[test]
fn a_full_config_parses_to_the_values_written() {
    let dir = base_dir();
    let base = dir.path();
    let config = parse(include_str!("../testdata/full.toml"), base).expect("valid config");

    let server = &config.server;
    assert_eq!(server.listen, "0.0.0.0:9090".parse::<SocketAddr>().unwrap());
    assert_eq!(
        (
            server.max_body_bytes,
            server.max_batch_events,
            server.shutdown_grace_s,
            server.max_connections
        ),
        (2048, 10, 3, 64)
    );

    let ingest: Vec<&str> = config
        .auth
        .ingest_tokens
        .iter()
        .map(Secret::expose)
        .collect();
    assert_eq!(ingest, ["ingest-secret-1", "ingest-literal"]);
    assert_eq!(config.auth.admin_tokens, [Secret::new("admin-secret-2")]);
    assert!(!config.auth.insecure_no_auth);

    assert_eq!(config.store.backend, StoreBackend::Sqlite);
    assert_eq!(config.store.path, base.join("data/events.db"));
    assert_eq!(config.runtime.cache_dir, Some(base.join("cache")));
    assert_eq!(config.runtime.cache_max_mb, Some(512));
    assert!(config.runtime.fuel);
    let pinned: Vec<(&str, Vec<std::net::IpAddr>)> = config.dns.pinned().collect();
    assert_eq!(
        pinned,
        [
            ("api.allowed.test", vec!["127.0.0.1".parse().unwrap()]),
            (
                "internal.test",
                vec!["10.0.0.7".parse().unwrap(), "fd00::7".parse().unwrap()]
            ),
        ],
        "names are stored as URL hosts: lower-case, no trailing dot"
    );
    let secs = std::time::Duration::from_secs;
    assert_eq!(
        config.breakers.destinations(),
        BreakerTuning {
            failure_threshold: 3,
            window: secs(10),
            pause: secs(15),
            max_pause: secs(60),
        }
    );
    assert_eq!(
        config.breakers.plugins(),
        BreakerTuning {
            pause: secs(2),
            ..breakers::PLUGIN_DEFAULTS
        },
        "keys left out keep the table's defaults"
    );
    assert_eq!(
        config.destinations,
        [
            DestinationConfig {
                url: "https://api.hubapi.com".into(),
                max_in_flight: Some(4),
                max_per_second: Some(10.0),
            },
            DestinationConfig {
                url: "http://crm.internal.test:8080".into(),
                max_in_flight: None,
                max_per_second: Some(0.5),
            },
            DestinationConfig {
                url: "https://hooks.slack.com".into(),
                max_in_flight: None,
                max_per_second: None,
            },
        ]
    );

    let [crm, audit] = &config.plugins[..] else {
        panic!("expected two plugins, got {:?}", config.plugins);
    };
    assert_eq!(crm.name, "crm-unsubscribe");
    assert_eq!(crm.component, base.join("plugin.wasm"));
    assert_eq!(crm.events, ["email.unsubscribed", "user.*"]);
    assert_eq!(
        crm.allowed_hosts,
        ["https://api.hubapi.com", "https://*.example.com:8443"]
    );
    assert_eq!(crm.allowed_methods, Some(vec![Method::Put, Method::Post]));
    assert_eq!(crm.allow_private_networks, ["10.0.0.0/8", "fd00::/8"]);
    assert_eq!(
        (crm.timeout_ms, crm.memory_mb, crm.fuel),
        (250, 128, Some(1_000_000))
    );
    assert_eq!(
        (crm.instance_reuse, crm.max_requests, crm.max_body_bytes),
        (50, 4, 4096)
    );
    assert_eq!(crm.assets, Some(base.join("assets")));
    assert_eq!(crm.follow_redirects, 2);
    assert_eq!(crm.max_event_age_s, Some(86400));
    let settings: BTreeMap<String, String> = [
        ("home", "/home/test/x"),
        ("literal", "${NOT_EXPANDED}"),
        ("portal", "eu1"),
        ("ratio", "0.5"),
        ("retries", "3"),
        ("verbose", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(crm.config, settings);
    let hubspot = &crm.secrets["HUBSPOT_TOKEN"];
    assert_eq!(hubspot.env.as_deref(), Some("HUBSPOT_TOKEN"));
    assert_eq!(hubspot.hosts, ["api.hubapi.com"]);
    assert_eq!(hubspot.value.expose(), "pat-hubspot-secret");
    let from_file = &crm.secrets["CRM_TOKEN"];
    assert_eq!(
        (from_file.env.as_deref(), from_file.file.as_deref()),
        (None, Some(base.join("secrets/crm.token").as_path())),
        "the file is resolved against the config's directory"
    );
    assert_eq!(
        from_file.value.expose(),
        "crm-file-secret",
        "read without its line break"
    );
    let delivery = &crm.delivery;
    assert_eq!(delivery.timeout_s, 5);
    assert_eq!(delivery.retry_schedule_s, [1, 2, 3]);
    assert_eq!(
        delivery.signing_secret.as_ref().map(Secret::expose),
        Some("whsec_c2VjcmV0LWtleS1mb3ItdGhlLXRlc3Rz")
    );
    assert_eq!(
        delivery
            .previous_signing_secrets
            .iter()
            .map(Secret::expose)
            .collect::<Vec<_>>(),
        ["whsec_c2VjcmV0LWtleS1mb3ItdGhlLXRlc3Rz"]
    );
    assert_eq!(
        (
            delivery.max_in_flight_per_host,
            delivery.response_body_limit_bytes
        ),
        (2, 100)
    );
    assert_eq!(delivery.max_per_second_per_host, Some(0.5));

    assert_eq!(audit.component, base.join("./assets/../plugin.wasm"));
    assert!(audit.subscribes_to("anything.at.all"));
    assert!(crm.subscribes_to("user.deleted") && !crm.subscribes_to("email.opened"));
}

#[test]
fn omitted_keys_take_their_defaults() {
    let dir = base_dir();
    let config = parse(include_str!("../testdata/minimal.toml"), dir.path()).expect("valid config");
    assert_eq!(config.server, ServerConfig::default());
    assert_eq!(
        config.server.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.server.max_body_bytes, 1024 * 1024);
    assert_eq!(config.server.max_batch_events, 1000);
    assert_eq!(config.server.shutdown_grace_s, 10);
    assert_eq!(config.server.max_connections, 1024);
    assert_eq!(config.store.backend, StoreBackend::Sqlite);
    assert_eq!(config.store.path, dir.path().join("wasmhook.db"));
    assert_eq!(config.runtime, RuntimeSection::default());
    assert_eq!(config.dns, DnsConfig::default(), "no names pinned");
    assert_eq!(
        (config.breakers.destinations(), config.breakers.plugins()),
        (breakers::DESTINATION_DEFAULTS, breakers::PLUGIN_DEFAULTS)
    );

    let plugin = &config.plugins[0];
    let expected = PluginConfig {
        name: "crm".into(),
        component: dir.path().join("plugin.wasm"),
        events: vec!["email.*".into()],
        ..PluginConfig::default()
    };
    assert_eq!(*plugin, expected);
    assert_eq!(
        (plugin.timeout_ms, plugin.memory_mb, plugin.max_requests),
        (100, 64, 16)
    );
    assert_eq!(
        (
            plugin.max_body_bytes,
            plugin.instance_reuse,
            plugin.follow_redirects
        ),
        (1 << 20, 0, 0)
    );
    assert_eq!((plugin.fuel, &plugin.allowed_methods), (None, &None));
    let delivery = &plugin.delivery;
    assert_eq!(delivery.timeout_s, 30);
    assert_eq!(
        delivery.retry_schedule_s,
        [5, 300, 1800, 7200, 18000, 36000, 36000]
    );
    assert_eq!(delivery.signing_secret, None);
    assert_eq!(
        (
            delivery.max_in_flight_per_host,
            delivery.response_body_limit_bytes
        ),
        (16, 64 * 1024)
    );
    assert_eq!(delivery.max_per_second_per_host, None);
}

#[test]
fn absolute_paths_are_kept_as_written() {
    let dir = base_dir();
    let component = dir.path().join("plugin.wasm");
    let text = format!(
        "[auth]\ninsecure_no_auth = true\n[store]\npath = \"/var/lib/wh.db\"\n\
         [[plugins]]\nname = \"a\"\ncomponent = {:?}\nevents = [\"*\"]\n",
        component.display().to_string()
    );
    let config = parse(&text, Path::new("/elsewhere")).expect("valid");
    assert_eq!(config.store.path, PathBuf::from("/var/lib/wh.db"));
    assert_eq!(config.plugins[0].component, component);
}

#[test]
fn insecure_no_auth_runs_without_tokens() {
    let config = parse("[auth]\ninsecure_no_auth = true\n", Path::new("")).expect("valid");
    assert!(config.auth.insecure_no_auth);
    assert!(config.auth.ingest_tokens.is_empty() && config.plugins.is_empty());
}

/// A token entry with several lines (a token file listing the new token
/// next to the old during a rotation) is one token per line.
#[test]
fn a_token_entry_holds_one_token_per_line() {
    let text = "[auth]\ningest_tokens = [\"in-new\\r\\nin-old \\n\\n\", \" in-3\"]\nadmin_tokens = [\"ad-1\"]\n";
    let config = parse(text, Path::new("")).expect("valid");
    let shown: Vec<&str> = config
        .auth
        .ingest_tokens
        .iter()
        .map(|t| t.expose())
        .collect();
    // Spaces around a token are dropped: no client could send them.
    assert_eq!(shown, ["in-new", "in-old", "in-3"]);

    let blank = "[auth]\ningest_tokens = [\"a\", \"\\n \\n\"]\nadmin_tokens = [\"b\"]\n";
    let e = parse(blank, Path::new("")).unwrap_err().to_string();
    assert!(e.contains("auth.ingest_tokens[1]: token is empty"), "{e}");
    let shared =
        "[auth]\ningest_tokens = [\"a\\nshared\"]\nadmin_tokens = [\"b\", \"c\\nshared\"]\n";
    let e = parse(shared, Path::new("")).unwrap_err().to_string();
    assert!(
        e.contains("auth.admin_tokens[1]: this token is also an ingest token"),
        "{e}"
    );
    assert!(!e.contains("shared\""), "the token is not quoted: {e}");
}

#[test]
fn variables_expand_in_any_string_value() {
    let env = |name: &str| match name {
        "LISTEN" => Some("127.0.0.1:7000".to_owned()),
        "DB" => Some("state".to_owned()),
        _ => test_env(name),
    };
    let text = "[server]\nlisten = \"${LISTEN}\"\n[store]\npath = \"${DB}/wasmhook.db\"\n\
                [auth]\ningest_tokens = [\"${INGEST_TOKEN}\"]\nadmin_tokens = [\"x$${ADMIN_TOKEN}\"]\n";
    let config =
        Config::parse(text, Path::new("t.toml"), Path::new("/etc/wh"), &env).expect("valid");
    assert_eq!(config.server.listen.port(), 7000);
    assert_eq!(
        config.store.path,
        PathBuf::from("/etc/wh/state/wasmhook.db")
    );
    assert_eq!(config.auth.ingest_tokens[0].expose(), "ingest-secret-1");
    assert_eq!(config.auth.admin_tokens[0].expose(), "x${ADMIN_TOKEN}");
}

#[test]
fn debug_output_of_a_whole_config_shows_no_secret() {
    let dir = base_dir();
    let config = parse(include_str!("../testdata/full.toml"), dir.path()).expect("valid config");
    let debug = format!("{config:?} {config:#?}");
    assert!(
        debug.contains("Secret(***)"),
        "secrets are shown redacted: {debug}"
    );
    assert!(debug.contains("HUBSPOT_TOKEN"), "secret names are shown");
    for secret in SECRET_VALUES.iter().chain(&["ingest-literal"]) {
        assert!(!debug.contains(secret), "{secret} leaked into {debug}");
    }
}

#[test]
fn load_reads_the_file_and_resolves_paths_next_to_it() {
    let dir = base_dir();
    let file = dir.path().join("wasmhook.toml");
    std::fs::write(
        &file,
        "[auth]\ninsecure_no_auth = true\n[store]\npath = \"db/x.db\"\n",
    )
    .unwrap();
    let config = Config::load(&file).expect("valid config");
    assert_eq!(config.store.path, dir.path().join("db/x.db"));

    let missing = dir.path().join("nope.toml");
    let err = Config::load(&missing).expect_err("missing file");
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "{}: cannot read the config file: ",
            missing.display()
        )),
        "{message}"
    );
}

/// A directory laid out like the repository for `examples/wasmhook.toml`
/// (its components in `target/plugins/`), and the `examples` directory.
fn example_root() -> (tempfile::TempDir, std::path::PathBuf) {
    // Components resolve relative to the config file: ../target/plugins/.
    let root = tempfile::tempdir().expect("temp dir");
    let plugins = root.path().join("target/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for name in [
        "slack-notify",
        "messenger-transactional",
        "game-reward",
        "lob-direct-mail",
        "login-to-salesforce",
        "crm-unsubscribe",
        "airline-loyalty",
    ] {
        std::fs::write(plugins.join(format!("{name}.wasm")), b"\0asm").unwrap();
    }
    let examples = root.path().join("examples");
    std::fs::create_dir(&examples).unwrap();
    (root, examples)
}

/// The environment `examples/wasmhook.toml` reads.
fn example_env(name: &str) -> Option<String> {
    match name {
        "WASMHOOK_SIGNING_SECRET" => Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
        "WASMHOOK_INGEST_TOKEN"
        | "WASMHOOK_ADMIN_TOKEN"
        | "SLACK_WEBHOOK_PATH"
        | "LINE_CHANNEL_TOKEN"
        | "MESSENGER_PAGE_TOKEN"
        | "GAME_API_KEY"
        | "FCM_ACCESS_TOKEN"
        | "LOB_API_KEY_BASIC"
        | "SF_CLIENT_ID"
        | "SF_CLIENT_SECRET"
        | "HUBSPOT_TOKEN"
        | "LOYALTY_API_KEY"
        // Only the commented-out alternatives read these two.
        | "LINE_CHANNEL_ID"
        | "LINE_KEY_ID" => Some(format!("value-of-{name}")),
        _ => None,
    }
}

/// The commented-out alternatives of `examples/wasmhook.toml`'s secrets
/// (`# NAME = { … oauth2 = … }`) use keys that exist: each, put in place
/// of the secret it stands for, passes every check up to reading the key
/// file it names, which does not exist here.
#[test]
fn the_example_configs_commented_oauth2_secrets_are_well_formed() {
    let (_root, examples) = example_root();
    let text = include_str!("../../../../examples/wasmhook.toml");
    let alternatives: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| l.contains("oauth2 = {") && l.contains(" = { "))
        .collect();
    assert!(alternatives.len() >= 2, "{alternatives:?}");
    for alternative in alternatives {
        let name = alternative.split(" = ").next().unwrap();
        let current = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("no secret {name} to stand in for"));
        let edited = text.replacen(current, alternative, 1);
        let err = Config::parse(
            &edited,
            Path::new("examples/wasmhook.toml"),
            &examples,
            &example_env,
        )
        .err()
        .unwrap_or_else(|| panic!("{name}: loads without its key file"))
        .to_string();
        assert!(
            err.contains(&format!("secrets.{name}.oauth2."))
                && err.contains("cannot read /run/secrets/"),
            "{name}: {err}"
        );
    }
}

#[test]
fn the_shipped_example_config_is_valid() {
    let (_root, examples) = example_root();
    let env = example_env;
    let text = include_str!("../../../../examples/wasmhook.toml");
    let config = Config::parse(text, Path::new("examples/wasmhook.toml"), &examples, &env)
        .unwrap_or_else(|e| panic!("{e}"));

    let names: Vec<&str> = config.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "slack-notify",
            "messenger-transactional",
            "game-reward",
            "lob-direct-mail",
            "login-to-salesforce",
            "crm-unsubscribe",
            "airline-loyalty"
        ]
    );
    let [slack, messenger, game, _, salesforce, ..] = &config.plugins[..] else {
        unreachable!()
    };
    let oauth = salesforce.secrets["SALESFORCE_TOKEN"]
        .oauth2
        .as_ref()
        .expect("the Salesforce token comes from OAuth2");
    assert_eq!(
        oauth.grant,
        Some(crate::config::OAuth2Grant::ClientCredentials {
            token_url: "https://acme.my.salesforce.com/services/oauth2/token".into(),
            client_id: "value-of-SF_CLIENT_ID".into(),
            client_secret: crate::model::Secret::new("value-of-SF_CLIENT_SECRET"),
            auth: crate::config::ClientAuth::Post,
        })
    );
    assert_eq!(
        slack.component,
        examples.join("../target/plugins/slack-notify.wasm")
    );
    assert_eq!(slack.allowed_hosts, ["https://hooks.slack.com"]);
    assert_eq!(
        slack.secrets["SLACK_WEBHOOK_PATH"].hosts,
        ["hooks.slack.com"]
    );
    assert_eq!(
        slack.secrets["SLACK_WEBHOOK_PATH"].value.expose(),
        "value-of-SLACK_WEBHOOK_PATH"
    );
    assert!(slack.subscribes_to("order.paid") && !slack.subscribes_to("level.reached"));
    assert_eq!(slack.delivery.max_per_second_per_host, Some(1.0));
    let [hubspot] = &config.destinations[..] else {
        panic!("one [[destinations]] entry: {:?}", config.destinations)
    };
    assert_eq!(
        (
            hubspot.url.as_str(),
            hubspot.max_in_flight,
            hubspot.max_per_second
        ),
        ("https://api.hubapi.com", Some(8), Some(10.0))
    );
    assert_eq!(
        messenger.allowed_hosts,
        ["https://api.line.me", "https://graph.facebook.com"]
    );
    assert_eq!(
        messenger.secrets["LINE_CHANNEL_TOKEN"].hosts,
        ["api.line.me"]
    );
    assert_eq!(
        messenger.secrets["MESSENGER_PAGE_TOKEN"].hosts,
        ["graph.facebook.com"]
    );
    assert!(messenger.subscribes_to("order.shipped"));
    assert_eq!(game.config["backend_url"], "https://game.example.com/api");
    assert_eq!(game.config["firebase_project"], "my-game");
    assert_eq!(game.config["min_level"], "10");
    assert!(game.secrets.contains_key("GAME_API_KEY") && game.secrets.contains_key("PUSH_TOKEN"));
    assert!(game.delivery.signing_secret.is_some());
    assert_eq!(
        config.auth.ingest_tokens[0].expose(),
        "value-of-WASMHOOK_INGEST_TOKEN"
    );
}

#[test]
fn a_token_written_into_another_value_is_shown_as_its_variable() {
    let dir = base_dir();
    let text = include_str!("../testdata/minimal.toml").replace(
        "component = \"plugin.wasm\"",
        "component = \"${INGEST_TOKEN}/plugin.wasm\"",
    );
    assert!(
        text.contains("${INGEST_TOKEN}/plugin.wasm"),
        "fixture changed"
    );
    let err = parse(&text, dir.path()).expect_err("no such component");
    let shown = err.to_string();
    assert!(!shown.contains("ingest-secret-1"), "{shown}");
    assert!(shown.contains("${INGEST_TOKEN}/plugin.wasm"), "{shown}");
}

#[test]
fn a_file_value_is_read_next_to_the_config_watched_and_shown_as_its_reference() {
    let dir = base_dir();
    std::fs::write(dir.path().join("secrets/admin.token"), "admin-from-file\n").unwrap();
    let text = include_str!("../testdata/minimal.toml");
    assert!(
        text.contains("admin_tokens = [\"${ADMIN_TOKEN}\"]"),
        "fixture changed"
    );
    let text = text.replace(
        "admin_tokens = [\"${ADMIN_TOKEN}\"]",
        "admin_tokens = [\"${ADMIN_TOKEN}\", \"${file:secrets/admin.token}\"]",
    );
    let config = parse(&text, dir.path()).expect("valid config");
    let admin: Vec<&str> = config
        .auth
        .admin_tokens
        .iter()
        .map(Secret::expose)
        .collect();
    assert_eq!(admin, ["admin-secret-2", "admin-from-file"]);
    assert_eq!(
        config.watched_files,
        [dir.path().join("secrets/admin.token")]
    );

    // A message quoting the value shows where it came from instead.
    let misplaced = text.replace(
        "component = \"plugin.wasm\"",
        "component = \"${file:secrets/admin.token}.wasm\"",
    );
    let shown = parse(&misplaced, dir.path())
        .expect_err("no such component")
        .to_string();
    assert!(!shown.contains("admin-from-file"), "{shown}");
    assert!(
        shown.contains("${file:secrets/admin.token}.wasm"),
        "{shown}"
    );
}

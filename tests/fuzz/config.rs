//! Config parsing: arbitrary text and mutations of a valid config never
//! panic, every error carries a line and column inside the text, and no
//! error message shows a secret value.

use std::path::Path;

use proptest::prelude::*;
use wasmhook::config::{Config, ConfigError};

use super::check;

const SECRET: &str = "fuzz-secret-value-42";

fn env(name: &str) -> Option<String> {
    match name {
        "TOKEN" => Some(SECRET.into()),
        "ADMIN" => Some("fuzz-admin-token".into()),
        _ => None,
    }
}

/// A valid config exercising most sections; mutations start from it.
const VALID: &str = r#"[server]
listen = "127.0.0.1:0"
max_body_bytes = 4096

[auth]
ingest_tokens = ["${TOKEN}"]
admin_tokens = ["${ADMIN}"]

[store]
backend = "sqlite"
path = "db.sqlite"

[[plugins]]
name = "crm"
component = "plugin.wasm"
events = ["user.*", "order.paid"]
allowed_hosts = ["https://api.example.com", "https://*.example.org:8443"]
allow_private_networks = ["10.0.0.0/8"]
timeout_ms = 500
[plugins.config]
mode = "ok"
[plugins.secrets.API]
env = "TOKEN"
hosts = ["api.example.com"]
[plugins.delivery]
retry_schedule_s = [1, 5]
"#;

/// Pieces of TOML worth splicing in.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "=",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "{",
    "}",
    ",",
    ".",
    "\n",
    "#",
    "${",
    "${TOKEN}",
    "$${",
    "0",
    "-1",
    "1e999",
    "18446744073709551616",
    "true",
    "inf",
    "nan",
    "1979-05-27T07:32:00Z",
    "[plugins]",
    "[[plugins]]",
    "[server]",
    "[server]\nlisten = 1",
    "name = \"crm\"",
    "x = 1\nx = 2",
    "\u{0}",
    "\u{feff}",
    "é",
    "\r\n",
    "\\u0000",
    "a.b.c = 1",
];

fn mutated() -> impl Strategy<Value = String> {
    let edit = (
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        prop::sample::select(TOKENS),
        0u8..3,
    );
    prop::collection::vec(edit, 1..6).prop_map(|edits| {
        let mut text = VALID.to_owned();
        for (at, len, token, kind) in edits {
            let boundaries: Vec<usize> = (0..=text.len())
                .filter(|i| text.is_char_boundary(*i))
                .collect();
            let start = boundaries[at.index(boundaries.len())];
            let end = boundaries[(boundaries.iter().position(|b| *b == start).unwrap_or(0)
                + len.index(12))
            .min(boundaries.len() - 1)];
            match kind {
                0 => text.insert_str(start, token),
                1 => text.replace_range(start..end, ""),
                _ => text.replace_range(start..end, token),
            }
        }
        text
    })
}

/// A directory where `plugin.wasm` exists, as [`VALID`] expects.
fn base_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("plugin.wasm"), b"\0asm").expect("write component");
    dir
}

fn error_is_located(text: &str, result: Result<Config, ConfigError>) -> Result<(), TestCaseError> {
    match result {
        Ok(_) => Ok(()),
        Err(ConfigError::Invalid {
            file,
            line,
            column,
            message,
            ..
        }) => {
            let shown = format!("{file:?}:{line}:{column}: {message}");
            prop_assert_eq!(file.as_path(), Path::new("fuzz.toml"));
            let lines: Vec<&str> = text.split('\n').collect();
            prop_assert!(
                line >= 1 && line <= lines.len(),
                "line out of range: {shown}"
            );
            let width = lines[line - 1].chars().count();
            prop_assert!(
                column >= 1 && column <= width + 1,
                "column out of range (width {width}): {shown}"
            );
            prop_assert!(!message.is_empty(), "{shown}");
            // Wherever `${TOKEN}` was written, messages show it unexpanded.
            prop_assert!(!shown.contains(SECRET), "secret shown: {shown}");
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!(
            "parse gave a read error: {other:?}"
        ))),
    }
}

#[test]
fn the_valid_config_parses() {
    let dir = base_dir();
    Config::parse(VALID, Path::new("fuzz.toml"), dir.path(), &env).expect("valid");
}

#[test]
fn arbitrary_text_never_panics_and_errors_are_located() {
    let dir = base_dir();
    check("config", ".{0,200}", |text| {
        error_is_located(
            &text,
            Config::parse(&text, Path::new("fuzz.toml"), dir.path(), &env),
        )
    });
}

#[test]
fn mutated_configs_never_panic_and_errors_are_located() {
    let dir = base_dir();
    check("config", mutated(), |text| {
        error_is_located(
            &text,
            Config::parse(&text, Path::new("fuzz.toml"), dir.path(), &env),
        )
    });
}

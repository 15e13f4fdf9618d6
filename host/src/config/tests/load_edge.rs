//! Files that are broken as files, not as settings (empty, not UTF-8, a
//! directory, huge), and TOML shapes the corpus lacks (duplicate keys,
//! wrong nesting): each fails with the file and, when it was read, the
//! line, column and key.

use std::path::Path;

use super::{base_dir, test_env};
use crate::config::{Config, ConfigError};

fn parse(text: &str) -> String {
    let dir = base_dir();
    match Config::parse(text, Path::new("edge.toml"), dir.path(), &test_env) {
        Ok(_) => "<parsed without error>".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_empty_file_names_the_missing_auth() {
    for text in ["", "\n\n", "# only a comment\n"] {
        assert_eq!(
            parse(text),
            "edge.toml:1:1: auth: no tokens configured; set auth.ingest_tokens and auth.admin_tokens, or insecure_no_auth = true for local testing",
            "{text:?}"
        );
    }
}

#[test]
fn a_duplicate_key_names_its_line_and_column() {
    let got = parse("[auth]\ningest_tokens = [\"a\"]\ningest_tokens = [\"b\"]\n");
    assert!(got.starts_with("edge.toml:3:1: "), "{got}");
    assert!(got.contains("duplicate key"), "{got}");
    let got = parse("[server]\n[server]\n");
    assert!(got.starts_with("edge.toml:2:"), "{got}");
}

#[test]
fn wrong_nesting_names_the_key() {
    let got = parse(
        "[auth]\ningest_tokens = [\"i\"]\nadmin_tokens = [\"a\"]\n[auth.server]\nlisten = \"x\"\n",
    );
    assert!(got.starts_with("edge.toml:4:"), "{got}");
    assert!(got.contains("auth.server: unknown field `server`"), "{got}");
    let got = parse("plugins = 3\n");
    assert!(
        got.starts_with("edge.toml:1:11: plugins: invalid type"),
        "{got}"
    );
}

#[test]
fn files_that_cannot_be_read_name_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let not_utf8 = dir.path().join("latin1.toml");
    std::fs::write(&not_utf8, b"[server]\nlisten = \"\xe9\"\n").expect("write");
    let as_dir = dir.path().join("a-directory.toml");
    std::fs::create_dir(&as_dir).expect("mkdir");
    let missing = dir.path().join("missing.toml");
    for path in [&not_utf8, &as_dir, &missing] {
        match Config::load(path) {
            Err(err @ ConfigError::Read { .. }) => {
                assert!(
                    err.to_string()
                        .starts_with(&format!("{}: cannot read", path.display())),
                    "{err}"
                )
            }
            other => panic!("{}: {other:?}", path.display()),
        }
    }
}

#[test]
fn a_huge_file_fails_with_a_location_not_a_crash() {
    // 200 000 lines of comments, then a mistake on the last line
    let mut text = "# padding\n".repeat(200_000);
    text.push_str("[servr]\n");
    let got = parse(&text);
    assert!(
        got.starts_with("edge.toml:200001:2: servr: unknown field `servr`"),
        "{got}"
    );
    // and a value nested 10 000 deep is refused, not a stack overflow
    let deep = format!("x = {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let got = parse(&deep);
    assert!(got.starts_with("edge.toml:1:"), "{got}");
}

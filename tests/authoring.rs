//! `wasmhook new` for every language, followed by the generated plugin's
//! own tests (in its language), `wasmhook build` (which also checks the
//! component) and `wasmhook run` on an event: each template passes its
//! tests, builds and fires as generated.

#[path = "support/mod.rs"]
mod support;

use std::process::Command;

use serde_json::Value;
use support::{cache_dir, repo_root};

fn wasmhook(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wasmhook"))
        .arg("--cache-dir")
        .arg(cache_dir())
        .args(args)
        .env("WASMHOOK_HOME", repo_root())
        .output()
        .expect("run wasmhook")
}

fn scaffold_build_run(lang: &str) {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().display().to_string();
    let name = format!("demo-{lang}");
    let out = wasmhook(&["new", &name, "--lang", lang, "--dir", &parent]);
    assert!(
        out.status.success(),
        "new {lang}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plugin_dir = dir.path().join(&name);
    let built = plugin_dir.join("build").join(format!("{name}.wasm"));
    // The hint `new` prints is what a newcomer runs next: run it as printed.
    let printed = String::from_utf8_lossy(&out.stdout);
    let hint = printed
        .lines()
        .find_map(|l| l.strip_prefix("next: "))
        .unwrap_or_else(|| panic!("no next: hint in {printed}"));
    let (build_hint, run_hint) = hint.split_once(" && ").expect("build && run");
    assert_eq!(
        build_hint,
        format!("wasmhook build {}", plugin_dir.display())
    );
    let run_args: Vec<&str> = run_hint
        .strip_prefix("wasmhook ")
        .expect("a wasmhook command")
        .split(' ')
        .collect();
    run_own_tests(lang, &plugin_dir);

    let out = wasmhook(&["build", &plugin_dir.display().to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "build {lang}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("implements wasmhook:plugin/transformer"),
        "{stdout}"
    );
    assert!(built.is_file());

    let event: Value =
        serde_json::from_slice(&std::fs::read(plugin_dir.join("event.json")).unwrap()).unwrap();
    let id = event["id"]
        .as_str()
        .expect("the template's event has an id");
    let out = wasmhook(&[&run_args[..], &["--timeout-ms", "1000"]].concat());
    assert_eq!(
        out.status.code(),
        Some(0),
        "run {lang}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "fire", "{lang}: {v}");
    assert_eq!(
        v["requests"][0]["url"], "https://example.com/hook",
        "{lang}: {v}"
    );
    assert!(
        v["requests"][0]["body"].as_str().unwrap().contains(id),
        "{lang}: {v}"
    );
}

/// The template's own tests, as a plugin author runs them.
fn run_own_tests(lang: &str, dir: &std::path::Path) {
    let root = repo_root();
    let d = dir.display().to_string();
    let mut cmd = match lang {
        "rust" => {
            let mut c = Command::new("cargo");
            c.args([
                "test",
                "--quiet",
                "--manifest-path",
                &format!("{d}/Cargo.toml"),
            ])
            .env("CARGO_TARGET_DIR", root.join("target/templates"));
            c
        }
        "js" => {
            let mut c = Command::new("node");
            c.args(["--test", &format!("{d}/plugin.test.mjs")]);
            c
        }
        "python" | "zig" => {
            let mut c = Command::new("bash");
            c.arg(root.join(format!("scripts/plugins/{lang}.sh")))
                .args(["test", &d]);
            c
        }
        // The C template has no test harness of its own (see its README).
        _ => return,
    };
    let out = cmd.output().expect("run the plugin's tests");
    assert!(
        out.status.success(),
        "{lang} template tests failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn new_then_build_rust() {
    scaffold_build_run("rust");
}

#[test]
fn new_then_build_js() {
    scaffold_build_run("js");
}

#[test]
fn new_then_build_python() {
    scaffold_build_run("python");
}

#[test]
fn new_then_build_c() {
    scaffold_build_run("c");
}

#[test]
fn new_then_build_zig() {
    scaffold_build_run("zig");
}

#[test]
fn build_of_a_directory_without_a_plugin_names_what_it_expected() {
    let dir = tempfile::tempdir().unwrap();
    let out = wasmhook(&["build", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no plugin found") && stderr.contains("plugin.js"),
        "{stderr}"
    );
    let out = wasmhook(&["new", "Bad_Name", "--lang", "rust"]);
    assert_eq!(out.status.code(), Some(2));
    let out = wasmhook(&["new", "x", "--lang", "cobol"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rust, js, python, c, zig"));
}

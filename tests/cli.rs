//! The `wasmhook check` and `wasmhook run` commands, run as real processes:
//! exit codes, JSON output, and error messages.

#[path = "support/mod.rs"]
mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::{cache_dir, plugin_path, repo_root};

fn wasmhook(args: &[&str]) -> Output {
    wasmhook_stdin(args, None)
}

fn wasmhook_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmhook"))
        .arg("--cache-dir")
        .arg(cache_dir())
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wasmhook");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn json_stdout(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn path(name: &str) -> String {
    plugin_path(name).display().to_string()
}

fn event_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn check_accepts_each_language_and_lists_imports() {
    for name in ["slack-notify", "messenger-transactional", "game-reward"] {
        let out = wasmhook(&["check", &path(name)]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("implements wasmhook:plugin/transformer@0.1.0"),
            "{stdout}"
        );
        assert!(stdout.contains("wasmhook:plugin/config@0.1.0"), "{stdout}");
        assert!(stdout.contains("transform (func)"), "{stdout}");
        assert!(stdout.contains("size:"), "{stdout}");
    }
}

#[test]
fn check_json_reports_size_hash_and_compile_time() {
    let out = wasmhook(&["check", "--json", &path("hostile")]);
    assert_eq!(out.status.code(), Some(0));
    let v = json_stdout(&out);
    assert_eq!(v["ok"], true);
    assert_eq!(
        v["size"],
        std::fs::metadata(plugin_path("hostile")).unwrap().len()
    );
    assert_eq!(v["hash"].as_str().unwrap().len(), 64);
    assert!(v["compile_ms"].as_f64().unwrap() >= 0.0);
    assert!(
        v["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "wasmhook:plugin/kv@0.1.0")
    );
}

#[test]
fn check_refuses_another_world_and_wasi_http_naming_why() {
    let out = wasmhook(&["check", &path("wrong-world")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing export `transform"), "{stderr}");
    assert!(stderr.contains("exports:"), "{stderr}");

    let out = wasmhook(&["check", &path("wants-http")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wasi:http/outgoing-handler"), "{stderr}");
    assert!(
        stderr.contains("plugins return requests; the host sends them"),
        "{stderr}"
    );
}

#[test]
fn check_of_a_missing_file_exits_2() {
    let out = wasmhook(&["check", "no/such/plugin.wasm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/plugin.wasm"));
}

#[test]
fn run_readme_example_fires_with_the_documented_shape() {
    // The command shown in README.md.
    let out = wasmhook(&[
        "run",
        "target/plugins/slack-notify.wasm",
        "--event",
        "examples/events/slack-notify.json",
        "--config",
        "channel=#orders",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_stdout(&out);
    assert_eq!(v["decision"], "fire");
    let req = &v["requests"][0];
    assert_eq!(req["method"], "POST");
    assert_eq!(
        req["url"],
        "https://hooks.slack.com/services/{{secret:SLACK_WEBHOOK_PATH}}"
    );
    assert_eq!(
        req["headers"][0],
        serde_json::json!(["content-type", "application/json"])
    );
    let body: Value = serde_json::from_str(req["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["channel"], "#orders");
    assert_eq!(
        body["text"],
        "*order.paid* from u-42: order #1042, 3 items, $57.00"
    );
    assert!(v["logs"].is_array());
    assert!(v["elapsed_us"].as_u64().is_some());
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["decision", "requests", "logs", "elapsed_us"]);
}

#[test]
fn run_reads_the_event_from_stdin_and_reports_skips() {
    let out = wasmhook_stdin(
        &[
            "run",
            &path("hostile"),
            "--event",
            "-",
            "--config",
            "mode=skip",
        ],
        Some(r#"{"name":"anything"}"#),
    );
    assert_eq!(out.status.code(), Some(0));
    let v = json_stdout(&out);
    assert_eq!(v["decision"], "skip");
    assert_eq!(v["reason"], "skipped by request");
}

#[test]
fn run_prints_non_utf8_bodies_as_base64() {
    let ev = event_file(r#"{"name":"x"}"#);
    let ev_path = ev.path().display().to_string();
    let out = wasmhook(&[
        "run",
        &path("hostile"),
        "--event",
        &ev_path,
        "--config",
        "mode=binary-body",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_stdout(&out);
    let req = &v["requests"][0];
    assert!(req.get("body").is_none());
    assert_eq!(req["body_base64"], "/wD+AQ==");
}

#[test]
fn run_errors_exit_1_with_their_kind() {
    let ev = event_file(r#"{"name":"x"}"#);
    let ev_path = ev.path().display().to_string();
    for (mode, extra, kind) in [
        ("loop", vec!["--timeout-ms", "30"], "timeout"),
        ("trap", vec![], "trap"),
        (
            "memory",
            vec!["--memory-mb", "16", "--timeout-ms", "5000"],
            "memory",
        ),
        (
            "loop",
            vec!["--fuel", "100000", "--timeout-ms", "10000"],
            "fuel",
        ),
        ("too-many", vec!["--config", "count=17"], "invalid_output"),
        ("error", vec![], "plugin"),
    ] {
        let mode_arg = format!("mode={mode}");
        let mut args = vec![
            "run",
            "target/plugins/hostile.wasm",
            "--event",
            &ev_path,
            "--config",
            &mode_arg,
        ];
        args.extend(extra);
        let out = wasmhook(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = json_stdout(&out);
        assert_eq!(v["decision"], "error", "{mode}");
        assert_eq!(v["kind"], kind, "{mode}: {v}");
        assert!(!v["error"].as_str().unwrap().is_empty());
    }
}

#[test]
fn run_bad_input_exits_2_naming_the_problem() {
    let bad_json = event_file("{\n  \"name\": \"x\",\n}\n");
    let bad_path = bad_json.path().display().to_string();
    let out = wasmhook(&["run", &path("hostile"), "--event", &bad_path]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&bad_path) && stderr.contains("line 3"),
        "{stderr}"
    );

    let no_name = event_file(r#"{"user_id":"u"}"#);
    let out = wasmhook(&[
        "run",
        &path("hostile"),
        "--event",
        &no_name.path().display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`name` is required"));

    let out = wasmhook(&["run", &path("hostile"), "--event", "missing.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));

    let out = wasmhook(&[
        "run",
        &path("hostile"),
        "--event",
        "-",
        "--config",
        "novalue",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEY=VALUE"));

    let out = wasmhook(&["run", &path("hostile")]);
    assert_eq!(out.status.code(), Some(2), "missing --event");

    let out = wasmhook_stdin(
        &["run", &path("wrong-world"), "--event", "-"],
        Some(r#"{"name":"x"}"#),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing export"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sink_prints_requests_and_verifies_signatures() {
    use std::io::BufRead;
    use wasmhook::delivery::SigningKey;

    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmhook"))
        .args([
            "sink",
            "--listen",
            "127.0.0.1:0",
            "--secret",
            secret,
            "--status",
            "202",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("wasmhook sink listening on ")
        .expect(&line)
        .to_owned();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());

    let key = SigningKey::from_whsec(secret).unwrap();
    let body = br#"{"hello":"world"}"#;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sig = key.sign("msg_1", ts, body);
    let ts = ts.to_string();
    let url = format!("http://{addr}/hook?x=1");
    for (sig, expect) in [(sig.as_str(), "valid"), ("v1,AAAA", "INVALID")] {
        let headers = [
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", ts.as_str()),
            ("webhook-signature", sig),
        ];
        let (status, _, _) = support::http::request("POST", &url, &headers, body).await;
        assert_eq!(status, 202);
        let mut out = String::new();
        stdout.read_line(&mut out).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["method"], "POST");
        assert_eq!(v["path"], "/hook?x=1");
        assert_eq!(v["body"], r#"{"hello":"world"}"#);
        assert!(v["signature"].as_str().unwrap().starts_with(expect), "{v}");
    }
    // No signature headers at all: said so, not "no entry matches".
    let (status, _, _) = support::http::request("POST", &url, &[], body).await;
    assert_eq!(status, 202);
    let mut out = String::new();
    stdout.read_line(&mut out).unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["signature"],
        "INVALID: no webhook-id, no webhook-timestamp, no webhook-signature header"
    );
    // A body over the sink's 16 MiB: 413, and the line says why.
    let big = vec![b'x'; 17 << 20];
    let (status, _, _) = support::http::request("POST", &url, &[], &big).await;
    assert_eq!(status, 413);
    let mut out = String::new();
    stdout.read_line(&mut out).unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["body_error"].as_str().unwrap().contains("byte limit"),
        "{v}"
    );
    assert!(
        v["signature"].as_str().unwrap().starts_with("not checked"),
        "{v}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// A compile-cache entry is native code the host runs: one that group or
/// others may write, or a directory they may write, is not loaded (the
/// component is compiled instead), and a new directory is private.
#[test]
fn the_compile_cache_loads_only_what_no_one_else_could_write() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("cache");
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_wasmhook"))
            .args(["--cache-dir", dir.to_str().unwrap()])
            .args(["check", "--json", &path("game-reward")])
            .current_dir(repo_root())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        (
            json_stdout(&out)["cache_hit"].as_bool().unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(!check().0, "first compile");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "created private");
    assert!(check().0, "loaded from the cache");
    let entry = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (hit, stderr) = check();
    assert!(!hit, "an entry others may write is compiled anew");
    assert!(
        stderr.contains("not loading a compile-cache entry"),
        "{stderr}"
    );
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(check().0);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (hit, stderr) = check();
    assert!(!hit, "nor one in a directory others may write");
    assert!(stderr.contains("not using the compile cache"), "{stderr}");
}

/// `--cache-max-mb` caps the compile cache (the least recently used
/// entries go); a cap of 0 is refused naming the flag.
#[test]
fn the_compile_cache_keeps_to_cache_max_mb() {
    let dir = tempfile::tempdir().unwrap();
    let check = |cap: &str, plugin: &str| {
        Command::new(env!("CARGO_BIN_EXE_wasmhook"))
            .args(["--cache-dir", dir.path().to_str().unwrap()])
            .args(["--cache-max-mb", cap, "check", &path(plugin)])
            .current_dir(repo_root())
            .output()
            .unwrap()
    };
    let out = check("0", "game-reward");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--cache-max-mb"), "{stderr}");

    let plugins = [
        "game-reward",
        "airline-loyalty",
        "hostile",
        "slack-notify",
        "lob-direct-mail",
        "login-to-salesforce",
    ];
    for plugin in plugins {
        let out = check("1", plugin);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let sizes: Vec<u64> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    let total: u64 = sizes.iter().sum();
    assert!(total <= 1 << 20, "{total} bytes in {sizes:?}");
    assert!(sizes.len() < plugins.len(), "{sizes:?}");
    // The newest entry is kept: checking it again is a cache hit.
    let out = Command::new(env!("CARGO_BIN_EXE_wasmhook"))
        .args(["--cache-dir", dir.path().to_str().unwrap()])
        .args([
            "--cache-max-mb",
            "1",
            "check",
            "--json",
            &path("login-to-salesforce"),
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert_eq!(json_stdout(&out)["cache_hit"], true, "{out:?}");
}

/// `--log-format` (or `WASMHOOK_LOG_FORMAT`) takes `text` or `json`;
/// anything else is refused naming the flag and the values it takes.
#[test]
fn an_unknown_log_format_is_refused_naming_the_choices() {
    for (args, env) in [(vec!["--log-format", "xml"], None), (vec![], Some("xml"))] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmhook"));
        cmd.args(&args)
            .arg("check")
            .arg(plugin_path("game-reward"))
            .current_dir(repo_root());
        if let Some(v) = env {
            cmd.env("WASMHOOK_LOG_FORMAT", v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("'xml'")
                && stderr.contains("--log-format")
                && stderr.contains("text, json"),
            "{stderr}"
        );
    }
}

/// The compile-cache flags are the CLI's; `serve` takes its cache from
/// `[runtime]`, so passing them to it is an error, not silently ignored.
#[test]
fn cache_flags_are_refused_for_serve() {
    for flags in [vec!["--no-cache"], vec!["--cache-max-mb", "5"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_wasmhook"))
            .args(&flags)
            .args(["serve", "--config", "examples/local.toml", "--check"])
            .current_dir(repo_root())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("[runtime] section"), "{stderr}");
    }
}

/// `run --kv FILE` keeps the plugin's kv store between runs: the Zig
/// airline-loyalty plugin counts bookings per user and fires on every 2nd,
/// and login-to-salesforce sends a Lead only for an email's first login.
#[test]
fn run_with_a_kv_file_remembers_between_runs() {
    let dir = tempfile::tempdir().unwrap();
    let kv = dir.path().join("loyalty-kv.json");
    let kv_arg = kv.display().to_string();
    let booking =
        std::fs::read_to_string(repo_root().join("examples/events/airline-loyalty.json")).unwrap();
    assert!(booking.contains("evt-booking-0001"));
    let bookings = std::cell::Cell::new(0);
    // Each run a new booking (the plugin counts an event id once).
    let book = || {
        bookings.set(bookings.get() + 1);
        let event = event_file(&booking.replace(
            "evt-booking-0001",
            &format!("evt-booking-{}", bookings.get()),
        ));
        let out = wasmhook(&[
            "run",
            &path("airline-loyalty"),
            "--event",
            &event.path().display().to_string(),
            "--config",
            "every=2",
            "--kv",
            &kv_arg,
        ]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        json_stdout(&out)["decision"].as_str().unwrap().to_owned()
    };
    assert_eq!(book(), "skip");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&kv).unwrap()).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"bookings:cust-1042": {"counter": 1}, "last:cust-1042": "evt-booking-1"})
    );
    assert_eq!(book(), "fire");
    assert_eq!(book(), "skip");
    // A redelivery of the last booking (the same event id again) is not
    // counted again: the plugin reads back the counter the host stored.
    bookings.set(bookings.get() - 1);
    assert_eq!(
        book(),
        "skip",
        "booking 3 again: still one short of the 4th"
    );
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&kv).unwrap()).unwrap();
    assert_eq!(
        stored["bookings:cust-1042"],
        serde_json::json!({"counter": 3})
    );
    assert_eq!(book(), "fire", "booking 4 fires");
    // The file is the store: edit it, and the next run sees the edit.
    std::fs::write(
        &kv,
        serde_json::json!({"bookings:cust-1042": {"counter": 9}}).to_string(),
    )
    .unwrap();
    assert_eq!(book(), "fire");

    let kv = dir.path().join("salesforce-kv.json");
    let kv_arg = kv.display().to_string();
    let login =
        std::fs::read_to_string(repo_root().join("examples/events/login-to-salesforce.json"))
            .unwrap();
    let logins = std::cell::Cell::new(0);
    let log_in = || {
        logins.set(logins.get() + 1);
        let event =
            event_file(&login.replace("evt-login-0001", &format!("evt-login-{}", logins.get())));
        let out = wasmhook(&[
            "run",
            &path("login-to-salesforce"),
            "--event",
            &event.path().display().to_string(),
            "--config",
            "instance=acme",
            "--kv",
            &kv_arg,
        ]);
        json_stdout(&out)["decision"].as_str().unwrap().to_owned()
    };
    assert_eq!(log_in(), "fire");
    assert_eq!(log_in(), "skip", "the second login of the same email");

    // A broken file stops the run before it starts, naming file and key.
    std::fs::write(&kv, r#"{"seen": 5}"#).unwrap();
    let event = event_file(&login);
    let out = wasmhook(&[
        "run",
        &path("login-to-salesforce"),
        "--event",
        &event.path().display().to_string(),
        "--kv",
        &kv_arg,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("salesforce-kv.json") && stderr.contains("key \"seen\""),
        "{stderr}"
    );
}

//! A real `wasmhook serve` process on a random loopback port, with its own
//! temporary directory (config, SQLite file), started from a config body.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::{cache_dir, repo_root};

/// Tokens used by every test host.
pub const INGEST_TOKEN: &str = "test-ingest-token";
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// Signing secret used by test configs.
pub const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The common head of a test config: auth with the tokens above, the
/// store in the host's directory, the shared compile cache.
pub fn config_head() -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace_s = 5

[auth]
ingest_tokens = ["{INGEST_TOKEN}"]
admin_tokens = ["{ADMIN_TOKEN}"]

[store]
backend = "sqlite"
path = "wasmhook.db"

[runtime]
cache_dir = "{}"
"#,
        cache_dir().display()
    )
}

/// A config with the hostile fixture in `mode`, POSTing to
/// `{receiver_url}/hook`, with a retry schedule; `server_extra` lines go
/// into `[server]`.
pub fn hostile_config(
    receiver_url: &str,
    mode: &str,
    schedule: &str,
    server_extra: &str,
) -> String {
    format!(
        r#"{head}
[[plugins]]
name = "hostile"
component = "{c}"
events = ["*"]
allowed_hosts = ["{receiver_url}"]
allow_private_networks = ["127.0.0.1/32"]
[plugins.config]
mode = "{mode}"
url = "{receiver_url}/hook"
[plugins.delivery]
timeout_s = 2
retry_schedule_s = {schedule}
"#,
        head = config_head().replace(
            "shutdown_grace_s = 5",
            &format!("shutdown_grace_s = 5\n{server_extra}")
        ),
        c = component("hostile"),
    )
}

/// Path of a built component, for `component = …` lines.
pub fn component(name: &str) -> String {
    super::plugin_path(name).display().to_string()
}

/// game-reward (C) pointed at `receiver_url`: two requests per event, both
/// carrying a secret (`GAME_API_KEY` from `GAME_KEY`, `PUSH_TOKEN` from
/// `PUSH_KEY`), signed.
pub fn game_config(receiver_url: &str, schedule: &str) -> String {
    format!(
        r#"{head}
[[plugins]]
name = "game-reward"
component = "{c}"
events = ["level.*"]
allowed_hosts = ["{url}"]
allow_private_networks = ["127.0.0.1/32"]
[plugins.config]
backend_url = "{url}/game"
push_url = "{url}/push"
min_level = "10"
coins = "100"
[plugins.secrets]
GAME_API_KEY = {{ env = "GAME_KEY", hosts = ["127.0.0.1"] }}
PUSH_TOKEN = {{ env = "PUSH_KEY", hosts = ["127.0.0.1"] }}
[plugins.delivery]
timeout_s = 5
retry_schedule_s = {schedule}
signing_secret = "{SIGNING_SECRET}"
"#,
        head = config_head(),
        c = component("game-reward"),
        url = receiver_url,
    )
}

/// How to spawn the process, beyond config and environment.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Run as this user id (and group id), so file permissions apply to
    /// the host even when the tests run as root. The temp dir is handed to
    /// this user.
    pub uid: Option<u32>,
}

/// A running host.
pub struct Host {
    pub addr: SocketAddr,
    pub dir: Arc<tempfile::TempDir>,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    env: Vec<(String, String)>,
    options: SpawnOptions,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    /// Start with this config (written to `wasmhook.toml` in a new temp dir).
    pub fn start(config: &str, env: &[(&str, &str)]) -> Host {
        Self::start_with(config, env, SpawnOptions::default())
    }

    /// Like [`Host::start`], spawning with `options`.
    pub fn start_with(config: &str, env: &[(&str, &str)], options: SpawnOptions) -> Host {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        std::fs::write(dir.path().join("wasmhook.toml"), config).unwrap();
        if let Some(uid) = options.uid {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid)).unwrap();
        }
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::spawn(dir, env, options)
    }

    /// Start again on the same directory (same config and database).
    pub fn restart(mut self) -> Host {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = self.dir.clone();
        let env = std::mem::take(&mut self.env);
        let options = std::mem::take(&mut self.options);
        drop(self);
        Self::spawn(dir, env, options)
    }

    /// Stop the process, start it again on the same directory and wait
    /// for that start to fail; its exit code and stderr. The host is left
    /// stopped: [`Host::restart`] starts it again.
    pub fn restart_expecting_failure(&mut self, secs: u64) -> (Option<i32>, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.another_expecting_failure(secs)
    }

    /// Start another `wasmhook serve` on the same directory (same config
    /// and database) next to this one, and wait for it to fail; its exit
    /// code and stderr.
    pub fn another_expecting_failure(&self, secs: u64) -> (Option<i32>, String) {
        let mut cmd = Self::command(&self.dir, &self.env, &self.options);
        let mut child = cmd.stderr(Stdio::piped()).spawn().expect("spawn");
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("wasmhook serve did not exit within {secs}s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        use std::io::Read;
        let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
        (status.code(), stderr)
    }

    fn command(
        dir: &tempfile::TempDir,
        env: &[(String, String)],
        options: &SpawnOptions,
    ) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmhook"));
        cmd.args(["serve", "--config"])
            .arg(dir.path().join("wasmhook.toml"))
            .current_dir(repo_root())
            .env("WASMHOOK_LOG", "wasmhook=info,plugin=info")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(uid) = options.uid {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(uid);
        }
        cmd
    }

    fn spawn(
        dir: Arc<tempfile::TempDir>,
        env: Vec<(String, String)>,
        options: SpawnOptions,
    ) -> Host {
        let mut child = Self::command(&dir, &env, &options)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wasmhook serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Text, or the message of a JSON line (`--log-format json`).
                let addr = line
                    .split_once("wasmhook listening on ")
                    .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_owned());
                // Logged before the start is reported, so a test that
                // reads the log once started sees the line.
                sink.lock().unwrap().push(line);
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "wasmhook serve did not start:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Host {
            addr,
            dir,
            child,
            log,
            env,
            options,
        }
    }

    /// The process id of the running `wasmhook serve`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The config file path.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("wasmhook.toml")
    }

    /// Everything the process wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Wait up to `secs` for `text` to show in the log; panics with the
    /// log if it does not.
    pub async fn wait_for_log(&self, text: &str, secs: u64) {
        super::eventually(secs, || self.log().contains(text).then_some(()))
            .await
            .unwrap_or_else(|| panic!("no {text:?} in the log:\n{}", self.log()));
    }

    /// Send a signal to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGHUP, then wait until the host logs one more successful reload
    /// than before.
    pub async fn reload(&self) {
        let before = self.log().matches("wasmhook reloaded").count();
        self.signal("HUP");
        super::eventually(30, || {
            (self.log().matches("wasmhook reloaded").count() > before).then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("no reload:\n{}", self.log()));
    }

    /// Wait for the process to exit; its exit code.
    pub fn wait_exit(&mut self, secs: u64) -> Option<i32> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("wasmhook did not exit within {secs}s");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POST events with the ingest token.
    pub async fn ingest(&self, body: &str) -> (u16, Value) {
        let (status, _, body) = super::http::request(
            "POST",
            &self.url("/v1/events"),
            &[
                ("authorization", &format!("Bearer {INGEST_TOKEN}")),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// An admin-token request; JSON answer.
    pub async fn admin(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let (status, _, body) = super::http::request(
            method,
            &self.url(path),
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            body.as_bytes(),
        )
        .await;
        (
            status,
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
        )
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        match self.admin("GET", "/metrics", "").await {
            (200, Value::String(text)) => text,
            other => panic!("GET /metrics: {other:?}"),
        }
    }

    /// `GET /v1/events/{id}` once every delivery of the event is settled
    /// (succeeded or failed) and every plugin decided.
    pub async fn settled_event(&self, id: &str, secs: u64) -> Value {
        super::eventually_async(secs, || async {
            let (status, v) = self.admin("GET", &format!("/v1/events/{id}"), "").await;
            if status != 200 {
                return None;
            }
            let decided = v["plugins"]
                .as_array()?
                .iter()
                .all(|p| p["status"] == "done");
            let settled = v["deliveries"]
                .as_array()?
                .iter()
                .all(|d| d["status"] != "pending");
            (decided && settled).then_some(v)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "event {id} did not settle within {secs}s; host log:\n{}",
                self.log()
            )
        })
    }
}

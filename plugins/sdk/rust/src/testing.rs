//! A thread-local stand-in for the host, used by [`crate::log`],
//! [`crate::config`] and [`crate::kv`] on every target except `wasm32`, so
//! that plugin logic runs under plain `cargo test`.
//!
//! Each test thread has its own state, so tests do not see each other's
//! config or store; call [`clear`] to start over within a thread.
//!
//! Call the plugin through [`run`] to have its result judged as the host
//! judges it: a request the host would refuse makes
//! [`RunError::InvalidOutput`], a placeholder next to event text holding
//! `{{secret:` makes [`RunError::Refused`], a panic (or a `kv` call past a
//! cap) makes [`RunError::Trap`]. Calling `P::transform` directly checks
//! nothing.
//!
//! The store behaves like the host's: `increment` keeps a counter as 8
//! bytes, a little-endian two's-complement `i64`, in the same key space as
//! `get` and `set`; it treats a value that is not 8 bytes long as 0 and
//! wraps on overflow. Read a counter back with [`crate::kv::get_counter`]
//! or [`crate::kv::counter_value`]. The host's `kv` caps are enforced by
//! panicking (the host traps): keys of at most 1 KiB, values of at most
//! 1 MiB, and per invocation 10 000 calls and 8 MiB written (key plus
//! value of every `set`, key plus 8 bytes of every `increment`). The
//! namespace quota (`kv_max_mb`) is not. Log lines are capped like the
//! host's: 100 per invocation (more are dropped, and [`run`] adds the
//! host's note saying how many), each cut to 2 KiB with the host's
//! `… (N bytes truncated)` mark. An invocation starts at each [`run`] and
//! at [`clear`]; direct calls of `transform` between them count as one.
//! Writes made before a trap or a refusal are kept, as on the host.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::check::{MAX_REASON_BYTES, Rejection, truncate, validate_decision};
use crate::log::Level;
use crate::{Decision, Event, Plugin};

/// Longest `kv` key, in bytes.
pub const MAX_KV_KEY_BYTES: usize = 1024;
/// Largest `kv` value, in bytes.
pub const MAX_KV_VALUE_BYTES: usize = 1024 * 1024;
/// Most `kv` calls per invocation.
pub const MAX_KV_OPS: u32 = 10_000;
/// Most bytes `kv` writes may store per invocation.
pub const MAX_KV_WRITTEN_BYTES: u64 = 8 * 1024 * 1024;
/// Most log lines kept per invocation.
pub const MAX_LOG_LINES: usize = 100;
/// Longest kept log line, in bytes; longer ones are cut.
pub const MAX_LOG_LINE_BYTES: usize = 2048;

#[derive(Default)]
struct Host {
    config: BTreeMap<String, String>,
    kv: BTreeMap<String, Vec<u8>>,
    logs: Vec<(Level, String)>,
    /// Per invocation: log lines kept and dropped, kv calls and bytes.
    log_lines: usize,
    logs_dropped: usize,
    kv_ops: u32,
    kv_written: u64,
}

thread_local! {
    static HOST: RefCell<Host> = RefCell::new(Host::default());
}

fn with<R>(f: impl FnOnce(&mut Host) -> R) -> R {
    HOST.with(|host| f(&mut host.borrow_mut()))
}

/// Forget all config, stored values and logs of this thread; a new
/// invocation starts.
pub fn clear() {
    with(|host| *host = Host::default());
}

/// Set config `key` to `value`, as `[plugins.config]` would. The host's
/// config values are always text (a TOML number or boolean becomes its
/// text, `3` or `true`): pass them as such.
pub fn set_config(key: &str, value: &str) {
    with(|host| host.config.insert(key.to_owned(), value.to_owned()));
}

/// Unset config `key`.
pub fn unset_config(key: &str) {
    with(|host| host.config.remove(key));
}

/// Every message logged so far on this thread, oldest first, as the host
/// keeps them (at most 100 per invocation, each cut to 2 KiB).
pub fn logs() -> Vec<(Level, String)> {
    with(|host| host.logs.clone())
}

/// The value stored under `key`, as the plugin would see it (not counted
/// as a plugin's `kv` call).
pub fn kv_get(key: &str) -> Option<Vec<u8>> {
    with(|host| host.kv.get(key).cloned())
}

/// Store `value` under `key`, e.g. to set up a test (not counted as a
/// plugin's `kv` call, no caps).
pub fn kv_set(key: &str, value: &[u8]) {
    with(|host| host.kv.insert(key.to_owned(), value.to_vec()));
}

/// Why a [`run`] did not produce a decision, with the error kind the host
/// records for it (`wasmhook run` prints it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// `transform` returned `Err(message)` (kind `plugin`).
    Plugin(String),
    /// The decision breaks the contract (kind `invalid_output`).
    InvalidOutput(String),
    /// The event's own data and a request both hold `{{secret:`: nothing
    /// is sent (kind `refused`). Writes to `kv` are kept.
    Refused(String),
    /// The plugin panicked, or a `kv` call went past a cap (kind `trap`).
    Trap(String),
}

impl RunError {
    /// The error kind the host records: `plugin`, `invalid_output`,
    /// `refused` or `trap`.
    pub fn kind(&self) -> &'static str {
        match self {
            RunError::Plugin(_) => "plugin",
            RunError::InvalidOutput(_) => "invalid_output",
            RunError::Refused(_) => "refused",
            RunError::Trap(_) => "trap",
        }
    }

    /// The message (cut to 4 KiB, as the host keeps it).
    pub fn message(&self) -> &str {
        match self {
            RunError::Plugin(m)
            | RunError::InvalidOutput(m)
            | RunError::Refused(m)
            | RunError::Trap(m) => m,
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for RunError {}

impl From<Rejection> for RunError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::InvalidOutput(m) => RunError::InvalidOutput(m),
            Rejection::Refused(m) => RunError::Refused(m),
        }
    }
}

/// Run plugin `P` on `event` as the host would: a new invocation (fresh
/// per-invocation caps), then `P::transform`, then the host's checks on
/// the result ([`crate::validate_decision`]). A skip reason or error
/// message is cut to 4 KiB. Config, `kv` and earlier logs are kept.
///
/// ```
/// use wasmhook_plugin::{Decision, Event, Plugin, Request, testing};
///
/// struct Echo;
/// impl Plugin for Echo {
///     fn transform(event: Event) -> Result<Decision, String> {
///         Ok(Decision::fire_one(Request::post("https://x.test/").header("Host", "x.test")))
///     }
/// }
///
/// let err = testing::run::<Echo>(Event::new("e")).unwrap_err();
/// assert_eq!(err.kind(), "invalid_output"); // Host is the host's to set
/// ```
pub fn run<P: Plugin>(event: Event) -> Result<Decision, RunError> {
    begin_invocation();
    let input = event.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| P::transform(event)));
    finish_logs();
    let decision = match result {
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the plugin panicked".to_owned());
            return Err(RunError::Trap(truncate(&message, MAX_REASON_BYTES)));
        }
        Ok(Err(message)) => return Err(RunError::Plugin(truncate(&message, MAX_REASON_BYTES))),
        Ok(Ok(decision)) => decision,
    };
    validate_decision(&input, &decision)?;
    Ok(match decision {
        Decision::Skip(reason) => Decision::Skip(truncate(&reason, MAX_REASON_BYTES)),
        fire => fire,
    })
}

/// Start a new invocation: the per-invocation caps (`kv` calls and bytes,
/// log lines) count from here.
fn begin_invocation() {
    with(|host| {
        host.log_lines = 0;
        host.logs_dropped = 0;
        host.kv_ops = 0;
        host.kv_written = 0;
    });
}

/// The host's note on log lines dropped during the invocation.
fn finish_logs() {
    with(|host| {
        if host.logs_dropped > 0 {
            let note = format!(
                "{} log lines dropped (cap {MAX_LOG_LINES} per invocation)",
                host.logs_dropped
            );
            host.logs.push((Level::Warn, note));
            host.logs_dropped = 0;
        }
    });
}

pub(crate) fn config_value(key: &str) -> Option<String> {
    with(|host| host.config.get(key).cloned())
}

pub(crate) fn record_log(level: Level, message: &str) {
    with(|host| {
        if host.log_lines >= MAX_LOG_LINES {
            host.logs_dropped += 1;
            return;
        }
        host.log_lines += 1;
        host.logs
            .push((level, truncate(message, MAX_LOG_LINE_BYTES)));
    });
}

/// Count one `kv` call and check its key; panics (the host traps) past a
/// cap.
fn kv_op(key: &str) {
    let over = with(|host| {
        host.kv_ops += 1;
        host.kv_ops > MAX_KV_OPS
    });
    if over {
        panic!("kv: more than {MAX_KV_OPS} operations in one invocation");
    }
    if key.len() > MAX_KV_KEY_BYTES {
        panic!(
            "kv: key of {} bytes exceeds the {MAX_KV_KEY_BYTES}-byte limit",
            key.len()
        );
    }
}

/// Count the bytes a write stores; panics past the per-invocation cap.
fn kv_write(key: &str, value_len: usize) {
    let over = with(|host| {
        host.kv_written = host
            .kv_written
            .saturating_add((key.len() + value_len) as u64);
        host.kv_written > MAX_KV_WRITTEN_BYTES
    });
    if over {
        panic!(
            "kv: more than {MAX_KV_WRITTEN_BYTES} bytes written in one invocation (keys and values of every set and increment)"
        );
    }
}

pub(crate) fn plugin_kv_get(key: &str) -> Option<Vec<u8>> {
    kv_op(key);
    kv_get(key)
}

pub(crate) fn plugin_kv_set(key: &str, value: &[u8]) {
    kv_op(key);
    if value.len() > MAX_KV_VALUE_BYTES {
        panic!(
            "kv: value of {} bytes exceeds the {MAX_KV_VALUE_BYTES}-byte limit",
            value.len()
        );
    }
    kv_write(key, value.len());
    kv_set(key, value);
}

pub(crate) fn kv_delete(key: &str) {
    kv_op(key);
    with(|host| host.kv.remove(key));
}

pub(crate) fn kv_increment(key: &str, delta: i64) -> i64 {
    kv_op(key);
    kv_write(key, 8);
    with(|host| {
        let current = host.kv.get(key).map_or(0, |v| crate::kv::counter_value(v));
        let next = current.wrapping_add(delta);
        host.kv.insert(key.to_owned(), next.to_le_bytes().to_vec());
        next
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Request, config, kv, log};

    #[test]
    fn logs_are_recorded_in_order_with_levels() {
        clear();
        log::info("one");
        log::warn(format!("two {}", 2));
        log::log(Level::Error, "three");
        assert_eq!(
            logs(),
            vec![
                (Level::Info, "one".to_owned()),
                (Level::Warn, "two 2".to_owned()),
                (Level::Error, "three".to_owned()),
            ]
        );
    }

    #[test]
    fn clear_forgets_everything() {
        set_config("a", "1");
        kv_set("k", b"v");
        log::debug("x");
        clear();
        assert_eq!(config::get("a"), None);
        assert_eq!(kv::get("k"), None);
        assert!(logs().is_empty());
    }

    #[test]
    fn unset_config_removes_a_key() {
        clear();
        set_config("a", "1");
        unset_config("a");
        assert_eq!(config::get("a"), None);
    }

    #[test]
    fn state_is_per_thread() {
        clear();
        set_config("a", "1");
        let seen = std::thread::spawn(|| config::get("a")).join().unwrap();
        assert_eq!(seen, None);
        assert_eq!(config::get("a").as_deref(), Some("1"));
    }

    fn panics<R>(f: impl FnOnce() -> R) -> String {
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .err()
            .expect("a panic");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    }

    #[test]
    fn kv_key_and_value_caps_trap() {
        clear();
        let key = "k".repeat(MAX_KV_KEY_BYTES);
        kv::set(&key, "v");
        assert!(panics(|| kv::get(&format!("{key}k"))).contains("1024-byte"));
        assert!(panics(|| kv::delete(&format!("{key}k"))).contains("key of 1025 bytes"));
        kv::set("v", vec![0u8; MAX_KV_VALUE_BYTES]);
        let err = panics(|| kv::set("v", vec![0u8; MAX_KV_VALUE_BYTES + 1]));
        assert!(err.contains("value of 1048577 bytes"), "{err}");
        // The value that was already there stays.
        assert_eq!(kv_get("v").map(|v| v.len()), Some(MAX_KV_VALUE_BYTES));
    }

    #[test]
    fn kv_calls_per_invocation_are_capped() {
        clear();
        for _ in 0..MAX_KV_OPS {
            kv::get("k");
        }
        let err = panics(|| kv::increment("k", 1));
        assert!(err.contains("more than 10000 operations"), "{err}");
        // A new invocation starts over; setup helpers are not counted.
        clear();
        for _ in 0..MAX_KV_OPS {
            kv_set("k", b"v");
        }
        kv::delete("k");
    }

    #[test]
    fn kv_bytes_written_per_invocation_are_capped() {
        clear();
        let value = vec![0u8; 1024 * 1024 - 1];
        for i in 0..8 {
            kv::set(&i.to_string(), &value); // 1 + (1 MiB - 1) bytes each
        }
        // Deleting frees nothing of the budget; an increment writes 8.
        kv::delete("0");
        let err = panics(|| kv::increment("n", 1));
        assert!(err.contains("bytes written"), "{err}");
        assert_eq!(kv_get("n"), None);
    }

    #[test]
    fn logs_are_capped_per_invocation_and_cut_like_the_host() {
        clear();
        log::info("x".repeat(3000));
        let (_, line) = &logs()[0];
        assert!(line.starts_with(&"x".repeat(MAX_LOG_LINE_BYTES)), "{line}");
        assert!(line.ends_with("… (952 bytes truncated)"), "{line}");
        for i in 1..150 {
            log::debug(format!("line {i}"));
        }
        assert_eq!(logs().len(), MAX_LOG_LINES);
        assert_eq!(logs()[99].1, "line 99");
    }

    struct Loud;
    impl Plugin for Loud {
        fn transform(event: Event) -> Result<Decision, String> {
            for i in 0..120 {
                log::info(format!("{i}"));
            }
            Ok(Decision::skip(event.name.repeat(5000)))
        }
    }

    #[test]
    fn run_adds_the_hosts_note_on_dropped_lines_and_cuts_reasons() {
        clear();
        let decision = run::<Loud>(Event::new("é")).unwrap();
        let reason = decision.skip_reason().unwrap();
        assert!(
            reason.len() < 4200 && reason.ends_with("bytes truncated)"),
            "{reason}"
        );
        let logs = logs();
        assert_eq!(logs.len(), 101);
        assert_eq!(
            logs[100],
            (
                Level::Warn,
                "20 log lines dropped (cap 100 per invocation)".to_owned()
            )
        );
        // Each run is an invocation of its own.
        run::<Loud>(Event::new("e")).unwrap();
        assert_eq!(self::logs().len(), 202);
    }

    /// Does what config `mode` says.
    struct Modes;
    impl Plugin for Modes {
        fn transform(event: Event) -> Result<Decision, String> {
            kv::increment("calls", 1);
            let mode = config::get("mode").unwrap_or_default();
            let url = event
                .prop_str("url")
                .unwrap_or_else(|| "https://x.test/".to_owned());
            let request = Request::post(url);
            match mode.as_str() {
                "err" => Err("no".into()),
                "panic" => panic!("boom"),
                "kv-loop" => loop {
                    kv::get("k");
                },
                "host-header" => Ok(request.header("host", "x.test").into()),
                "userinfo" => Ok(Request::get("https://u:p@x.test/").into()),
                "bad-placeholder" => Ok(request.header("x-key", "{{secret:KEY").into()),
                "too-many" => Ok(Decision::fire(vec![request; 17])),
                "copy-note" => {
                    let note = event.prop_str("note").unwrap_or_default();
                    Ok(request.bearer_secret("TOKEN").body(note).into())
                }
                _ => Ok(request.bearer_secret("TOKEN").into()),
            }
        }
    }

    fn run_mode(mode: &str, event: Event) -> Result<Decision, RunError> {
        set_config("mode", mode);
        run::<Modes>(event)
    }

    #[test]
    fn run_reports_what_the_host_would() {
        clear();
        let ok = run_mode("ok", Event::new("e")).unwrap();
        assert_eq!(ok.requests().len(), 1);
        for (mode, kind, text) in [
            ("err", "plugin", "no"),
            ("panic", "trap", "boom"),
            ("kv-loop", "trap", "operations"),
            (
                "host-header",
                "invalid_output",
                "\"host\" is set by the host",
            ),
            ("userinfo", "invalid_output", "user:pass@"),
            (
                "bad-placeholder",
                "invalid_output",
                "malformed secret placeholder",
            ),
            ("too-many", "invalid_output", "17 requests"),
        ] {
            let err = run_mode(mode, Event::new("e")).unwrap_err();
            assert_eq!(err.kind(), kind, "{mode}: {err}");
            assert!(err.message().contains(text), "{mode}: {err}");
        }
        let event = Event::new("e").with_props(serde_json::json!({"url": "ftp://x.test/"}));
        let err = run_mode("ok", event).unwrap_err();
        assert!(err.message().starts_with("request 0: URL scheme"), "{err}");
    }

    #[test]
    fn run_refuses_placeholders_when_the_event_holds_the_text_and_keeps_kv_writes() {
        clear();
        let hostile = Event::new("e").with_props(serde_json::json!({"note": "{{secret:TOKEN}}"}));
        let err = run_mode("copy-note", hostile.clone()).unwrap_err();
        assert_eq!(err.kind(), "refused", "{err}");
        // Only the plugin's own placeholder is in the request: refused all the same.
        assert_eq!(run_mode("ok", hostile).unwrap_err().kind(), "refused");
        // The writes made during the refused runs were kept.
        assert_eq!(kv::get_counter("calls"), 2);
        // The same plugin on an ordinary event fires.
        let fine = Event::new("e").with_props(serde_json::json!({"note": "hello"}));
        assert!(run_mode("copy-note", fine).is_ok());
    }
}

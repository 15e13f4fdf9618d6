//! A thread-local stand-in for the host, used by [`crate::log`],
//! [`crate::config`] and [`crate::kv`] on every target except `wasm32`, so
//! that plugin logic runs under plain `cargo test`.
//!
//! Each test thread has its own state, so tests do not see each other's
//! config or store; call [`clear`] to start over within a thread. The
//! store behaves like the host's: `increment` keeps a counter as 8 bytes,
//! a little-endian two's-complement `i64`, in the same key space as `get`
//! and `set`; it treats a value that is not 8 bytes long as 0 and wraps on
//! overflow. Read a counter back with [`crate::kv::get_counter`] or
//! [`crate::kv::counter_value`]. The host's caps (calls and bytes per
//! invocation, the namespace quota) are not enforced here.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::log::Level;

#[derive(Default)]
struct Host {
    config: BTreeMap<String, String>,
    kv: BTreeMap<String, Vec<u8>>,
    logs: Vec<(Level, String)>,
}

thread_local! {
    static HOST: RefCell<Host> = RefCell::new(Host::default());
}

fn with<R>(f: impl FnOnce(&mut Host) -> R) -> R {
    HOST.with(|host| f(&mut host.borrow_mut()))
}

/// Forget all config, stored values and logs of this thread.
pub fn clear() {
    with(|host| *host = Host::default());
}

/// Set config `key` to `value`, as `[plugins.config]` would.
pub fn set_config(key: &str, value: &str) {
    with(|host| host.config.insert(key.to_owned(), value.to_owned()));
}

/// Unset config `key`.
pub fn unset_config(key: &str) {
    with(|host| host.config.remove(key));
}

/// Every message logged so far on this thread, oldest first.
pub fn logs() -> Vec<(Level, String)> {
    with(|host| host.logs.clone())
}

/// The value stored under `key`, as the plugin would see it.
pub fn kv_get(key: &str) -> Option<Vec<u8>> {
    with(|host| host.kv.get(key).cloned())
}

/// Store `value` under `key`, e.g. to set up a test.
pub fn kv_set(key: &str, value: &[u8]) {
    with(|host| host.kv.insert(key.to_owned(), value.to_vec()));
}

pub(crate) fn config_value(key: &str) -> Option<String> {
    with(|host| host.config.get(key).cloned())
}

pub(crate) fn record_log(level: Level, message: &str) {
    with(|host| host.logs.push((level, message.to_owned())));
}

pub(crate) fn kv_delete(key: &str) {
    with(|host| host.kv.remove(key));
}

pub(crate) fn kv_increment(key: &str, delta: i64) -> i64 {
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
    use crate::{config, kv, log};

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
}

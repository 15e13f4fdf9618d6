//! A small key-value store private to this plugin, persisted by the host:
//! counters and "seen before" flags.
//!
//! On native targets the store is the [`crate::testing`] double.

/// The value stored under `key`, or `None` when absent.
pub fn get(key: &str) -> Option<Vec<u8>> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::wasmhook::plugin::kv::get(key);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::kv_get(key);
}

/// The value stored under `key` as text (invalid UTF-8 replaced), or `None`.
pub fn get_string(key: &str) -> Option<String> {
    get(key).map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Store `value` under `key`, replacing any previous value.
pub fn set(key: &str, value: impl AsRef<[u8]>) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::wasmhook::plugin::kv::set(key, value.as_ref());
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::kv_set(key, value.as_ref());
}

/// Remove `key`; removing an absent key does nothing.
pub fn delete(key: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::wasmhook::plugin::kv::delete(key);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::kv_delete(key);
}

/// Atomically add `delta` to the counter under `key` (absent counts as 0)
/// and return the new value.
pub fn increment(key: &str, delta: i64) -> i64 {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::wasmhook::plugin::kv::increment(key, delta);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::kv_increment(key, delta);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn set_get_delete_round_trip() {
        testing::clear();
        assert_eq!(get("k"), None);
        set("k", "v1");
        assert_eq!(get("k"), Some(b"v1".to_vec()));
        assert_eq!(get_string("k").as_deref(), Some("v1"));
        delete("k");
        delete("k");
        assert_eq!(get("k"), None);
    }

    #[test]
    fn increment_starts_at_zero_and_accumulates() {
        testing::clear();
        assert_eq!(increment("n", 1), 1);
        assert_eq!(increment("n", 41), 42);
        assert_eq!(increment("n", -50), -8);
        assert_eq!(testing::kv_get("n"), Some(b"-8".to_vec()));
    }
}

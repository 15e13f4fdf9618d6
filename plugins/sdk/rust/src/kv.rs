//! A small key-value store private to this plugin, persisted by the host:
//! counters and "seen before" flags.
//!
//! A counter made by [`increment`] is an ordinary value: 8 bytes, the
//! counter as a little-endian two's-complement `i64`, in the same key space
//! as [`get`] and [`set`]. [`get`] returns those 8 bytes, not decimal text;
//! read a counter with [`get_counter`] or [`counter_value`].
//!
//! The host caps it: keys of at most 1 KiB, values of at most 1 MiB, and
//! per invocation 10 000 calls and 8 MiB written (key plus value of every
//! `set`, key plus 8 bytes of every `increment`). A call past a cap traps
//! the invocation; writes made before it are kept.
//!
//! On native targets the store is the [`crate::testing`] double, which
//! enforces the same caps by panicking.

/// The value stored under `key`, or `None` when absent.
pub fn get(key: &str) -> Option<Vec<u8>> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::wasmhook::plugin::kv::get(key);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::plugin_kv_get(key);
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
    crate::testing::plugin_kv_set(key, value.as_ref());
}

/// Remove `key`; removing an absent key does nothing.
pub fn delete(key: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::wasmhook::plugin::kv::delete(key);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::kv_delete(key);
}

/// Atomically add `delta` to the counter under `key` (absent counts as 0)
/// and return the new value, stored as 8 little-endian bytes. A value that
/// is not 8 bytes long counts as 0 (and is overwritten); the addition wraps
/// on overflow. Every call writes, so it counts against the host's
/// per-invocation caps even when `delta` is 0.
pub fn increment(key: &str, delta: i64) -> i64 {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::wasmhook::plugin::kv::increment(key, delta);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::kv_increment(key, delta);
}

/// The counter a stored value holds, as [`increment`] reads it: the 8 bytes
/// as a little-endian `i64`, or 0 for a value of any other length.
pub fn counter_value(bytes: &[u8]) -> i64 {
    <[u8; 8]>::try_from(bytes).map_or(0, i64::from_le_bytes)
}

/// The counter under `key` (0 when absent or not a counter), read without
/// writing anything.
pub fn get_counter(key: &str) -> i64 {
    get(key).map_or(0, |v| counter_value(&v))
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
    }

    #[test]
    fn a_counter_is_stored_as_8_little_endian_bytes_like_on_the_host() {
        testing::clear();
        assert_eq!(increment("n", 1), 1);
        assert_eq!(get("n"), Some(vec![1, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(increment("n", 0x0102), 0x0103);
        assert_eq!(get("n"), Some(vec![3, 1, 0, 0, 0, 0, 0, 0]));
        assert_eq!(get_counter("n"), 0x0103);
        assert_eq!(increment("n", -0x0104), -1);
        assert_eq!(get("n"), Some(vec![0xff; 8]));
        assert_eq!(get_counter("n"), -1);
        assert_eq!(get_counter("absent"), 0);
        assert_eq!(get("absent"), None, "get_counter writes nothing");
    }

    #[test]
    fn increment_treats_a_value_that_is_not_8_bytes_as_0() {
        testing::clear();
        // Decimal text (what an older double stored) is not a counter.
        set("n", "41");
        assert_eq!(get_counter("n"), 0);
        assert_eq!(increment("n", 1), 1);
        set("n", [7u8; 9]);
        assert_eq!(increment("n", 2), 2);
        set("n", []);
        assert_eq!(increment("n", 3), 3);
        // A value set by hand as 8 LE bytes is a counter.
        set("n", 41i64.to_le_bytes());
        assert_eq!(increment("n", 1), 42);
    }

    #[test]
    fn increment_wraps_on_overflow() {
        testing::clear();
        set("n", i64::MAX.to_le_bytes());
        assert_eq!(increment("n", 1), i64::MIN);
        assert_eq!(get_counter("n"), i64::MIN);
        assert_eq!(increment("n", -1), i64::MAX);
    }

    #[test]
    fn counter_value_reads_8_le_bytes_and_nothing_else() {
        assert_eq!(counter_value(&5i64.to_le_bytes()), 5);
        assert_eq!(counter_value(&(-5i64).to_le_bytes()), -5);
        assert_eq!(counter_value(&u64::MAX.to_le_bytes()), -1);
        assert_eq!(counter_value(b"5"), 0);
        assert_eq!(counter_value(b"12345678"), i64::from_le_bytes(*b"12345678"));
        assert_eq!(counter_value(&[]), 0);
    }
}

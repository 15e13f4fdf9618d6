//! The plugin key-value store: one namespace per plugin, atomic increment.
//!
//! The runtime talks to a `dyn KvStore`; the in-memory implementation here
//! serves the CLI and tests, durable backends live beside it.

use std::collections::HashMap;
use std::sync::Mutex;

use super::StoreError;

/// Key-value storage for plugins. Every call names the plugin's namespace so
/// one plugin can never see another's keys.
pub trait KvStore: Send + Sync {
    /// The value under `key`, if any.
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Store `value` under `key`.
    fn set(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Remove `key` (absent keys are fine).
    fn delete(&self, namespace: &str, key: &str) -> Result<(), StoreError>;
    /// Atomically add `delta` to the counter under `key` (absent = 0) and
    /// return the new value. A value that is not an 8-byte little-endian
    /// counter is treated as 0 and overwritten. Overflow wraps.
    fn increment(&self, namespace: &str, key: &str, delta: i64) -> Result<i64, StoreError>;
}

/// An in-memory [`KvStore`]: state lives as long as the process.
#[derive(Debug, Default)]
pub struct MemoryKv {
    map: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-written
        // (every operation is a single insert/remove), so poison is harmless.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Decode a counter as stored by [`KvStore::increment`].
pub(crate) fn decode_counter(bytes: &[u8]) -> i64 {
    <[u8; 8]>::try_from(bytes)
        .map(i64::from_le_bytes)
        .unwrap_or(0)
}

impl KvStore for MemoryKv {
    fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().get(&(ns.to_owned(), key.to_owned())).cloned())
    }

    fn set(&self, ns: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.lock()
            .insert((ns.to_owned(), key.to_owned()), value.to_vec());
        Ok(())
    }

    fn delete(&self, ns: &str, key: &str) -> Result<(), StoreError> {
        self.lock().remove(&(ns.to_owned(), key.to_owned()));
        Ok(())
    }

    fn increment(&self, ns: &str, key: &str, delta: i64) -> Result<i64, StoreError> {
        let mut map = self.lock();
        let slot = map.entry((ns.to_owned(), key.to_owned())).or_default();
        let next = decode_counter(slot).wrapping_add(delta);
        *slot = next.to_le_bytes().to_vec();
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_isolated() {
        let kv = MemoryKv::new();
        kv.set("a", "k", b"1").unwrap();
        assert_eq!(kv.get("a", "k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.get("b", "k").unwrap(), None);
    }

    #[test]
    fn increment_starts_at_zero_and_accumulates() {
        let kv = MemoryKv::new();
        assert_eq!(kv.increment("p", "n", 1).unwrap(), 1);
        assert_eq!(kv.increment("p", "n", 5).unwrap(), 6);
        assert_eq!(kv.increment("p", "n", -10).unwrap(), -4);
        kv.delete("p", "n").unwrap();
        assert_eq!(kv.increment("p", "n", 2).unwrap(), 2);
    }

    #[test]
    fn increment_over_non_counter_value_restarts_from_zero() {
        let kv = MemoryKv::new();
        kv.set("p", "n", b"hello").unwrap();
        assert_eq!(kv.increment("p", "n", 3).unwrap(), 3);
    }
}

//! The plugin key-value store: one namespace per plugin, atomic increment,
//! and a quota per namespace.
//!
//! The runtime talks to a `dyn KvStore`; the in-memory implementation here
//! serves the CLI and tests, durable backends live beside it.
//!
//! Each entry counts its key's and its value's bytes against the plugin's
//! quota (`kv_max_mb`), checked by [`admit`] inside the write that would
//! grow it, so that a plugin storing without end fills its own namespace,
//! not the host's disk.

use std::collections::HashMap;
use std::sync::Mutex;

use super::StoreError;

/// How much of a namespace is in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvUsage {
    /// Entries.
    pub keys: u64,
    /// Their keys' and values' bytes.
    pub bytes: u64,
}

/// One entry, as the management API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    /// Its key.
    pub key: String,
    /// Its value's size in bytes.
    pub value_bytes: u64,
    /// The start of its value.
    pub head: Vec<u8>,
}

/// A `kv` write failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KvError {
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The write would take the namespace over its quota; nothing was
    /// written.
    #[error(
        "the plugin's kv store is full: {used} of its {limit} bytes (kv_max_mb) are in use, and this write needs {needed} more; delete keys, or clear them with DELETE /v1/plugins/{{name}}/kv"
    )]
    Full {
        /// Bytes in use before the write.
        used: u64,
        /// The quota.
        limit: u64,
        /// Bytes the write would add.
        needed: u64,
    },
}

/// Bytes one entry counts for.
pub fn entry_bytes(key: &str, value_len: usize) -> u64 {
    (key.len() + value_len) as u64
}

/// Whether a write that replaces an entry of `old` bytes (0: none) with
/// one of `new` bytes may go ahead in a namespace using `used` of `limit`
/// bytes. A write that does not grow the namespace always may, so that a
/// plugin over a lowered quota can still shrink.
pub(crate) fn admit(used: u64, old: u64, new: u64, limit: u64) -> Result<(), KvError> {
    let after = used.saturating_sub(old).saturating_add(new);
    if after > limit && new > old {
        return Err(KvError::Full {
            used,
            limit,
            needed: new - old,
        });
    }
    Ok(())
}

/// Key-value storage for plugins. Every call names the plugin's namespace so
/// one plugin can never see another's keys; writes that grow a namespace
/// name its quota, `limit` bytes.
pub trait KvStore: Send + Sync {
    /// The value under `key`, if any.
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Store `value` under `key`, unless that takes the namespace over
    /// `limit` bytes.
    fn set(&self, namespace: &str, key: &str, value: &[u8], limit: u64) -> Result<(), KvError>;
    /// Remove `key` (absent keys are fine).
    fn delete(&self, namespace: &str, key: &str) -> Result<(), StoreError>;
    /// Atomically add `delta` to the counter under `key` (absent = 0) and
    /// return the new value. A value that is not an 8-byte little-endian
    /// counter is treated as 0 and overwritten. Overflow wraps. A new
    /// counter counts against `limit` like any entry.
    fn increment(&self, namespace: &str, key: &str, delta: i64, limit: u64)
    -> Result<i64, KvError>;
    /// How much of the namespace is in use.
    fn usage(&self, namespace: &str) -> Result<KvUsage, StoreError>;
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

    /// A store holding `entries` in namespace `ns`.
    pub fn with_entries(ns: &str, entries: impl IntoIterator<Item = (String, Vec<u8>)>) -> Self {
        let map = entries
            .into_iter()
            .map(|(k, v)| ((ns.to_owned(), k), v))
            .collect();
        Self {
            map: Mutex::new(map),
        }
    }

    /// The entries of namespace `ns`, by key.
    pub fn entries(&self, ns: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
        self.lock()
            .iter()
            .filter(|((n, _), _)| n == ns)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect()
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

/// The usage of `ns` in `map`.
fn usage_in(map: &HashMap<(String, String), Vec<u8>>, ns: &str) -> KvUsage {
    map.iter()
        .filter(|((n, _), _)| n == ns)
        .fold(KvUsage::default(), |u, ((_, k), v)| KvUsage {
            keys: u.keys + 1,
            bytes: u.bytes + entry_bytes(k, v.len()),
        })
}

impl MemoryKv {
    /// Put `value` under `key` if the quota allows.
    fn put(&self, ns: &str, key: &str, value: Vec<u8>, limit: u64) -> Result<(), KvError> {
        let mut map = self.lock();
        let slot = (ns.to_owned(), key.to_owned());
        let old = map.get(&slot).map_or(0, |v| entry_bytes(key, v.len()));
        admit(
            usage_in(&map, ns).bytes,
            old,
            entry_bytes(key, value.len()),
            limit,
        )?;
        map.insert(slot, value);
        Ok(())
    }
}

impl KvStore for MemoryKv {
    fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().get(&(ns.to_owned(), key.to_owned())).cloned())
    }

    fn set(&self, ns: &str, key: &str, value: &[u8], limit: u64) -> Result<(), KvError> {
        self.put(ns, key, value.to_vec(), limit)
    }

    fn delete(&self, ns: &str, key: &str) -> Result<(), StoreError> {
        self.lock().remove(&(ns.to_owned(), key.to_owned()));
        Ok(())
    }

    fn increment(&self, ns: &str, key: &str, delta: i64, limit: u64) -> Result<i64, KvError> {
        let current = self.get(ns, key)?.map_or(0, |v| decode_counter(&v));
        let next = current.wrapping_add(delta);
        self.put(ns, key, next.to_le_bytes().to_vec(), limit)?;
        Ok(next)
    }

    fn usage(&self, ns: &str) -> Result<KvUsage, StoreError> {
        Ok(usage_in(&self.lock(), ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_isolated() {
        let kv = MemoryKv::new();
        kv.set("a", "k", b"1", u64::MAX).unwrap();
        assert_eq!(kv.get("a", "k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.get("b", "k").unwrap(), None);
    }

    #[test]
    fn increment_starts_at_zero_and_accumulates() {
        let kv = MemoryKv::new();
        assert_eq!(kv.increment("p", "n", 1, u64::MAX).unwrap(), 1);
        assert_eq!(kv.increment("p", "n", 5, u64::MAX).unwrap(), 6);
        assert_eq!(kv.increment("p", "n", -10, u64::MAX).unwrap(), -4);
        kv.delete("p", "n").unwrap();
        assert_eq!(kv.increment("p", "n", 2, u64::MAX).unwrap(), 2);
    }

    #[test]
    fn increment_over_non_counter_value_restarts_from_zero() {
        let kv = MemoryKv::new();
        kv.set("p", "n", b"hello", u64::MAX).unwrap();
        assert_eq!(kv.increment("p", "n", 3, u64::MAX).unwrap(), 3);
    }

    #[test]
    fn a_namespace_over_its_quota_refuses_growth_but_not_shrinking() {
        let kv = MemoryKv::new();
        // 1 + 4 bytes each: two fit in 10 bytes, a third does not.
        kv.set("p", "a", b"1234", 10).unwrap();
        kv.set("p", "b", b"1234", 10).unwrap();
        let err = kv.set("p", "c", b"1234", 10).unwrap_err();
        assert!(
            matches!(
                err,
                KvError::Full {
                    used: 10,
                    limit: 10,
                    needed: 5
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("10 of its 10 bytes"), "{err}");
        assert!(matches!(
            kv.increment("p", "n", 1, 10),
            Err(KvError::Full { .. })
        ));
        assert_eq!(kv.usage("p").unwrap(), KvUsage { keys: 2, bytes: 10 });
        // Other namespaces have their own quota.
        kv.set("q", "c", b"1234", 10).unwrap();
        // Rewriting or shrinking an entry is fine, even over a lowered quota.
        kv.set("p", "a", b"4321", 10).unwrap();
        kv.set("p", "a", b"1", 4).unwrap();
        assert_eq!(kv.usage("p").unwrap(), KvUsage { keys: 2, bytes: 7 });
        kv.delete("p", "b").unwrap();
        kv.set("p", "c", b"1234", 10).unwrap();
        assert_eq!(kv.get("p", "c").unwrap(), Some(b"1234".to_vec()));
    }
}

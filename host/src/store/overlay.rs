//! A copy-on-write [`KvStore`] for dry runs: reads fall through to the real
//! store, writes stay in memory and vanish with the overlay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::StoreError;
use super::kv::{KvError, KvStore, KvUsage, admit, decode_counter, entry_bytes};

/// (namespace, key) → value written in the overlay; `None` = deleted.
type Writes = HashMap<(String, String), Option<Vec<u8>>>;

/// Writes kept apart from a base store, held to the same quota as if they
/// had been made there.
pub struct OverlayKv {
    base: Arc<dyn KvStore>,
    writes: Mutex<Writes>,
}

impl OverlayKv {
    /// An overlay over `base`.
    pub fn new(base: Arc<dyn KvStore>) -> Self {
        Self {
            base,
            writes: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Writes> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bytes `key`'s entry counts for, as the overlay sees it.
    fn entry(&self, writes: &Writes, ns: &str, key: &str) -> Result<u64, StoreError> {
        let value = match writes.get(&(ns.to_owned(), key.to_owned())) {
            Some(v) => v.clone(),
            None => self.base.get(ns, key)?,
        };
        Ok(value.map_or(0, |v| entry_bytes(key, v.len())))
    }

    fn put(&self, ns: &str, key: &str, value: Vec<u8>, limit: u64) -> Result<(), KvError> {
        let mut writes = self.lock();
        let used = self.usage_with(&writes, ns)?.bytes;
        let old = self.entry(&writes, ns, key)?;
        admit(used, old, entry_bytes(key, value.len()), limit)?;
        writes.insert((ns.to_owned(), key.to_owned()), Some(value));
        Ok(())
    }

    /// The base's usage of `ns` with the overlay's writes applied.
    fn usage_with(&self, writes: &Writes, ns: &str) -> Result<KvUsage, StoreError> {
        let mut usage = self.base.usage(ns)?;
        for ((n, key), value) in writes.iter().filter(|((n, _), _)| n == ns) {
            // Saturating: a real invocation may change the base between
            // the reads of its usage and of this key.
            if let Some(before) = self.base.get(n, key)? {
                usage.keys = usage.keys.saturating_sub(1);
                usage.bytes = usage.bytes.saturating_sub(entry_bytes(key, before.len()));
            }
            if let Some(after) = value {
                usage.keys += 1;
                usage.bytes += entry_bytes(key, after.len());
            }
        }
        Ok(usage)
    }
}

impl KvStore for OverlayKv {
    fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.lock().get(&(ns.to_owned(), key.to_owned())) {
            return Ok(v.clone());
        }
        self.base.get(ns, key)
    }

    fn set(&self, ns: &str, key: &str, value: &[u8], limit: u64) -> Result<(), KvError> {
        self.put(ns, key, value.to_vec(), limit)
    }

    fn delete(&self, ns: &str, key: &str) -> Result<(), StoreError> {
        self.lock().insert((ns.to_owned(), key.to_owned()), None);
        Ok(())
    }

    fn increment(&self, ns: &str, key: &str, delta: i64, limit: u64) -> Result<i64, KvError> {
        let current = self.get(ns, key)?.map_or(0, |v| decode_counter(&v));
        let next = current.wrapping_add(delta);
        self.put(ns, key, next.to_le_bytes().to_vec(), limit)?;
        Ok(next)
    }

    fn usage(&self, ns: &str) -> Result<KvUsage, StoreError> {
        self.usage_with(&self.lock(), ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryKv;

    #[test]
    fn writes_never_reach_the_base() {
        let base = Arc::new(MemoryKv::new());
        base.increment("p", "n", 5, u64::MAX).unwrap();
        base.set("p", "k", b"v", u64::MAX).unwrap();
        let overlay = OverlayKv::new(base.clone());
        assert_eq!(overlay.increment("p", "n", 1, u64::MAX).unwrap(), 6);
        overlay.delete("p", "k").unwrap();
        assert_eq!(overlay.get("p", "k").unwrap(), None);
        assert_eq!(base.increment("p", "n", 0, u64::MAX).unwrap(), 5);
        assert_eq!(base.get("p", "k").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn the_quota_counts_the_base_and_the_overlay_together() {
        let base = Arc::new(MemoryKv::new());
        base.set("p", "a", b"1234", u64::MAX).unwrap();
        let overlay = OverlayKv::new(base.clone());
        overlay.set("p", "b", b"1234", 10).unwrap();
        assert!(matches!(
            overlay.set("p", "c", b"1234", 10),
            Err(KvError::Full { used: 10, .. })
        ));
        overlay.delete("p", "a").unwrap();
        overlay.set("p", "c", b"1234", 10).unwrap();
        assert_eq!(overlay.usage("p").unwrap(), KvUsage { keys: 2, bytes: 10 });
        assert_eq!(base.usage("p").unwrap(), KvUsage { keys: 1, bytes: 5 });
    }
}

//! A copy-on-write [`KvStore`] for dry runs: reads fall through to the real
//! store, writes stay in memory and vanish with the overlay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::StoreError;
use super::kv::{KvStore, decode_counter};

/// (namespace, key) → value written in the overlay; `None` = deleted.
type Writes = HashMap<(String, String), Option<Vec<u8>>>;

/// Writes kept apart from a base store.
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
}

impl KvStore for OverlayKv {
    fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.lock().get(&(ns.to_owned(), key.to_owned())) {
            return Ok(v.clone());
        }
        self.base.get(ns, key)
    }

    fn set(&self, ns: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.lock()
            .insert((ns.to_owned(), key.to_owned()), Some(value.to_vec()));
        Ok(())
    }

    fn delete(&self, ns: &str, key: &str) -> Result<(), StoreError> {
        self.lock().insert((ns.to_owned(), key.to_owned()), None);
        Ok(())
    }

    fn increment(&self, ns: &str, key: &str, delta: i64) -> Result<i64, StoreError> {
        let current = self.get(ns, key)?.map_or(0, |v| decode_counter(&v));
        let next = current.wrapping_add(delta);
        self.set(ns, key, &next.to_le_bytes())?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryKv;

    #[test]
    fn writes_never_reach_the_base() {
        let base = Arc::new(MemoryKv::new());
        base.increment("p", "n", 5).unwrap();
        base.set("p", "k", b"v").unwrap();
        let overlay = OverlayKv::new(base.clone());
        assert_eq!(overlay.increment("p", "n", 1).unwrap(), 6);
        overlay.delete("p", "k").unwrap();
        assert_eq!(overlay.get("p", "k").unwrap(), None);
        assert_eq!(base.increment("p", "n", 0).unwrap(), 5);
        assert_eq!(base.get("p", "k").unwrap(), Some(b"v".to_vec()));
    }
}

//! An operator's pause of a plugin (`POST /v1/plugins/{name}/pause`).
//! While it holds, the plugin's jobs are parked, not run, whatever its
//! breaker says, until `POST /v1/plugins/{name}/resume`. Unlike the
//! breaker's pause it never ends by itself, and it outlasts a reload by
//! plugin name (a new component included: the operator decides when the
//! plugin runs again) and a restart (the store keeps it).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::store::PluginHold;

/// See the module docs. Held by the [`crate::registry::LoadedPlugin`].
#[derive(Debug, Default)]
pub struct Hold {
    held: AtomicBool,
    current: Mutex<Option<PluginHold>>,
}

impl Hold {
    /// Whether the plugin is held (cheap: checked for every job).
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    /// The hold, if any.
    pub fn get(&self) -> Option<PluginHold> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Hold the plugin (`Some`) or let it run (`None`).
    pub fn set(&self, hold: Option<PluginHold>) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        self.held.store(hold.is_some(), Ordering::SeqCst);
        *current = hold;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_until_released() {
        let h = Hold::default();
        assert!(!h.is_held() && h.get().is_none());
        let hold = PluginHold {
            since_ms: 5,
            reason: Some("migration".into()),
        };
        h.set(Some(hold.clone()));
        assert!(h.is_held());
        assert_eq!(h.get(), Some(hold));
        h.set(None);
        assert!(!h.is_held() && h.get().is_none());
    }
}

//! Shared helpers for the end-to-end tests: where the real components are,
//! one shared compile cache, and a runtime/plugin factory.
//!
//! Components are built from `plugins/` by `scripts/build-plugins.sh`
//! (which the test command runs first); a missing one is a hard failure,
//! never a skip.

#![allow(dead_code)]

pub mod host;
pub mod http;
pub mod pki;
pub mod proxy;
pub mod receiver;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use wasmhook::model::Event;
use wasmhook::runtime::{Plugin, PluginLimits, PluginSpec, Runtime, RuntimeConfig};
use wasmhook::store::{KvStore, MemoryKv};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Path of a built plugin component; panics with the fix if it is missing.
pub fn plugin_path(name: &str) -> PathBuf {
    let path = repo_root()
        .join("target/plugins")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build-plugins.sh (the test command does this first)",
        path.display()
    );
    path
}

/// One compile cache shared by every test binary, so each component is
/// compiled once per build rather than once per test.
pub fn cache_dir() -> PathBuf {
    repo_root().join("target/wasmhook-test-cache")
}

/// A process-wide runtime (no fuel).
pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| new_runtime(false))
}

/// A process-wide runtime with fuel metering on.
pub fn fuel_runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| new_runtime(true))
}

fn new_runtime(fuel: bool) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache_dir()),
        fuel,
        max_instances: 64,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// Builder for a plugin under test.
pub struct TestPlugin {
    pub component: String,
    pub name: String,
    pub config: BTreeMap<String, String>,
    pub limits: PluginLimits,
    pub kv: Arc<dyn KvStore>,
    pub assets: Option<PathBuf>,
    pub fuel: bool,
}

impl TestPlugin {
    pub fn new(component: &str) -> Self {
        Self {
            component: component.into(),
            name: component.into(),
            config: BTreeMap::new(),
            limits: PluginLimits::default(),
            kv: Arc::new(MemoryKv::new()),
            assets: None,
            fuel: false,
        }
    }

    /// The hostile fixture in a given mode.
    pub fn hostile(mode: &str) -> Self {
        Self::new("hostile").config("mode", mode)
    }

    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.config.insert(key.into(), value.into());
        self
    }

    pub fn limits(mut self, f: impl FnOnce(&mut PluginLimits)) -> Self {
        f(&mut self.limits);
        self
    }

    pub fn kv(mut self, kv: Arc<dyn KvStore>) -> Self {
        self.kv = kv;
        self
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }

    pub fn assets(mut self, dir: PathBuf) -> Self {
        self.assets = Some(dir);
        self
    }

    /// Load on the runtime with fuel metering on, with no fuel limit of
    /// the plugin's own.
    pub fn metered(mut self) -> Self {
        self.fuel = true;
        self
    }

    pub fn with_fuel(mut self, fuel: u64) -> Self {
        self.fuel = true;
        self.limits.fuel = Some(fuel);
        self
    }

    pub fn load(self) -> Plugin {
        let rt = if self.fuel { fuel_runtime() } else { runtime() };
        let spec = PluginSpec {
            name: self.name,
            config: self.config,
            assets_dir: self.assets,
            limits: self.limits,
            kv: self.kv,
        };
        rt.load_file(&plugin_path(&self.component), spec)
            .unwrap_or_else(|e| panic!("loading {}: {e}", self.component))
    }
}

/// An event with the given name and properties (a JSON object literal).
pub fn event(name: &str, properties: serde_json::Value) -> Event {
    let serde_json::Value::Object(properties) = properties else {
        panic!("properties must be an object");
    };
    Event {
        id: "evt-test-1".into(),
        name: name.into(),
        user_id: Some("user-7".into()),
        timestamp_ms: 1_764_000_000_000,
        properties,
    }
}

/// Poll `check` every 20 ms until it returns `Some`, for at most `secs`.
pub async fn eventually<T>(secs: u64, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Like [`eventually`] with an async check.
pub async fn eventually_async<T, F: std::future::Future<Output = Option<T>>>(
    secs: u64,
    mut check: impl FnMut() -> F,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

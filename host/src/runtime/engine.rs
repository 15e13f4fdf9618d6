//! The shared wasmtime engine: configuration, the epoch ticker that enforces
//! deadlines, the linker with every import a plugin may use, and compilation
//! through the on-disk cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::Transformer;
use super::cache::{ComponentCache, component_hash};
use super::error::LoadError;
use super::state::State;

/// Engine-wide settings, fixed for the life of a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory for precompiled components; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Most bytes the cache directory may hold; least recently used
    /// entries are removed beyond it.
    pub cache_max_bytes: u64,
    /// Enable fuel metering. Costs some speed; needed for `fuel` limits.
    pub fuel: bool,
    /// Largest linear memory any single plugin memory may reach, in MiB.
    /// Sizes the pooling allocator's slots; per-plugin `memory_mb` caps
    /// apply below it.
    pub max_memory_mb: u64,
    /// How many plugin instances may be alive at once (pool size).
    pub max_instances: u32,
    /// Granularity of deadlines.
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: super::cache::default_cache_dir(),
            cache_max_bytes: super::cache::DEFAULT_CACHE_MAX_MB << 20,
            fuel: false,
            max_memory_mb: 512,
            max_instances: 128,
            epoch_tick: Duration::from_millis(1),
        }
    }
}

/// Increments the engine's epoch every tick on a background thread, so that
/// a guest past its deadline is interrupted. Stopped on drop.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wasmhook-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<State>,
    pub(crate) config: RuntimeConfig,
    cache: Option<ComponentCache>,
    /// Every plugin's pool of idle instances (`instance_reuse`), so that a
    /// full instance pool can have them let go.
    pub(super) warm_pools: std::sync::Mutex<Vec<std::sync::Weak<dyn super::plugin::Evict>>>,
    _ticker: EpochTicker,
}

/// The WebAssembly runtime: one per process, shared by all plugins.
/// Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

/// A compiled component, before it is checked against the contract.
pub(crate) struct Compiled {
    pub(crate) component: Component,
    pub(crate) hash: String,
    pub(crate) size: usize,
    pub(crate) compile_time: Duration,
    pub(crate) cache_hit: bool,
}

impl Runtime {
    /// Create the engine, the linker and the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let engine =
            Engine::new(&engine_config(&config)).map_err(|e| LoadError::Engine(e.to_string()))?;
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| super::clock::shadow_monotonic_clock(&mut linker))
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        Transformer::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        let cache = config
            .cache_dir
            .clone()
            .map(|dir| ComponentCache::new(dir, &engine, config.cache_max_bytes));
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick);
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                config,
                cache,
                warm_pools: Default::default(),
                _ticker: ticker,
            }),
        })
    }

    /// Compile component bytes, through the cache when one is configured.
    pub(crate) fn compile(&self, bytes: &[u8]) -> Result<Compiled, LoadError> {
        check_magic(bytes)?;
        let hash = component_hash(bytes);
        let start = Instant::now();
        let engine = &self.inner.engine;
        if let Some(component) = self
            .inner
            .cache
            .as_ref()
            .and_then(|c| c.load(engine, &hash))
        {
            return Ok(Compiled {
                component,
                hash,
                size: bytes.len(),
                compile_time: start.elapsed(),
                cache_hit: true,
            });
        }
        let component =
            Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:?}")))?;
        if let Some(cache) = &self.inner.cache {
            cache.store(&hash, &component);
        }
        Ok(Compiled {
            component,
            hash,
            size: bytes.len(),
            compile_time: start.elapsed(),
            cache_hit: false,
        })
    }
}

/// Bytes of each memory and table slot reset in place rather than returned
/// to the kernel when an instance ends.
const KEEP_RESIDENT: usize = 2 * 1024 * 1024;

fn engine_config(rc: &RuntimeConfig) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    let max_memory =
        usize::try_from(rc.max_memory_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
    pool.total_component_instances(rc.max_instances)
        // JS engines are built from several core instances with a few
        // memories and tables each.
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .total_core_instances(rc.max_instances.saturating_mul(16))
        .total_memories(rc.max_instances.saturating_mul(4))
        .total_tables(rc.max_instances.saturating_mul(8))
        .table_elements(200_000)
        .max_core_instance_size(16 * 1024 * 1024)
        .max_component_instance_size(1024 * 1024)
        .max_memory_size(max_memory)
        // Keep recently used slots warm so copy-on-write re-instantiation
        // touches as little memory as possible.
        .max_unused_warm_slots(rc.max_instances.min(64))
        // Reset the low part of a freed slot with memset (only pages that
        // were touched, via PAGEMAP_SCAN where the kernel has it) instead
        // of madvise: no page faults on the next instantiation and no TLB
        // shootdowns across cores, which dominate a fresh small instance.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(rc.fuel)
        .memory_init_cow(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

fn check_magic(bytes: &[u8]) -> Result<(), LoadError> {
    match bytes.get(..8) {
        Some([0x00, 0x61, 0x73, 0x6d, _, _, 0x01, 0x00]) => Ok(()),
        Some([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]) => Err(LoadError::CoreModule),
        _ => Err(LoadError::NotWasm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_distinguishes_components_modules_and_garbage() {
        assert!(check_magic(b"\0asm\x0d\0\x01\0rest").is_ok());
        assert!(matches!(
            check_magic(b"\0asm\x01\0\0\0"),
            Err(LoadError::CoreModule)
        ));
        assert!(matches!(
            check_magic(b"hello world"),
            Err(LoadError::NotWasm)
        ));
        assert!(matches!(check_magic(b""), Err(LoadError::NotWasm)));
    }
}

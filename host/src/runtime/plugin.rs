//! A loaded plugin: one `InstancePre`, its settings, and the invocation
//! path (fresh instance per event, or bounded instance reuse).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::bindings::{Transformer, TransformerPre};
use super::engine::Runtime;
use super::error::{LoadError, PluginError};
use super::inspect::ComponentInfo;
use super::limits::PluginLimits;
use super::output::{bounded_reason, event_holds_placeholder, to_wit_event, validate_decision};
use super::state::{PluginShared, State};
use super::stdio::Captured;
use crate::model::{Decision, Event, LogLine};
use crate::store::KvStore;

/// Where the assets directory appears inside the guest.
pub const ASSETS_GUEST_PATH: &str = "/assets";

/// Most bytes one `get-random-bytes` call may ask for.
const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// Most idle instances kept per plugin in reuse mode.
const MAX_WARM_INSTANCES: usize = 8;

/// Everything needed to load a plugin besides its bytes.
#[derive(Clone)]
pub struct PluginSpec {
    /// Unique plugin name (also its `kv` namespace).
    pub name: String,
    /// Settings visible through `config.get`.
    pub config: BTreeMap<String, String>,
    /// Optional directory mounted read-only at `/assets`.
    pub assets_dir: Option<PathBuf>,
    /// Resource limits.
    pub limits: PluginLimits,
    /// Backing store for the `kv` import.
    pub kv: Arc<dyn KvStore>,
}

/// The result of one invocation.
#[derive(Debug)]
pub struct Invocation {
    /// The validated decision, or why there is none.
    pub outcome: Result<Decision, PluginError>,
    /// Captured log lines (log import, stdout, stderr).
    pub logs: Vec<LogLine>,
    /// Wall-clock time of the invocation, instantiation included.
    pub elapsed: Duration,
    /// Fuel used, when fuel metering is on for this plugin.
    pub fuel_consumed: Option<u64>,
}

/// An instance kept for reuse.
struct Warm {
    store: Store<State>,
    bindings: Transformer,
    uses: u32,
}

/// What the runtime can ask of a plugin's idle instances when its pool is
/// full: to let them go.
pub(super) trait Evict: Send + Sync {
    /// Drop every idle instance; how many.
    fn evict(&self) -> usize;
}

impl Evict for Mutex<Vec<Warm>> {
    fn evict(&self) -> usize {
        let mut pool = self.lock().unwrap_or_else(|p| p.into_inner());
        let n = pool.len();
        pool.clear();
        n
    }
}

struct PluginInner {
    runtime: Runtime,
    pre: TransformerPre<State>,
    shared: Arc<PluginShared>,
    assets_dir: Option<PathBuf>,
    info: ComponentInfo,
    warm: Arc<Mutex<Vec<Warm>>>,
}

/// A plugin ready to be invoked. Cheap to clone; safe to share across
/// threads. Invocations are synchronous: call them from a blocking thread.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

impl Runtime {
    /// A new plugin's pool of idle instances, known to the runtime so that
    /// a full instance pool can empty it.
    fn register_warm_pool(&self) -> Arc<Mutex<Vec<Warm>>> {
        let pool = Arc::new(Mutex::new(Vec::new()));
        let weak: std::sync::Weak<dyn Evict> = Arc::downgrade(&(pool.clone() as Arc<dyn Evict>));
        let mut pools = self
            .inner
            .warm_pools
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Pools of plugins dropped since (a reload) go from the list.
        pools.retain(|p| p.strong_count() > 0);
        pools.push(weak);
        pool
    }

    /// Let every plugin's idle instances go; how many.
    fn evict_warm(&self) -> usize {
        let pools: Vec<_> = self
            .inner
            .warm_pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .collect();
        let evicted = pools.iter().map(|p| p.evict()).sum();
        if evicted > 0 {
            tracing::info!(
                evicted,
                "instance pool full: idle instances kept for reuse let go"
            );
        }
        evicted
    }

    /// Load a component file as a plugin.
    pub fn load_file(&self, path: &std::path::Path, spec: PluginSpec) -> Result<Plugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.load(&bytes, spec)
    }

    /// Compile (or load from cache), check against the contract, and
    /// pre-link a component.
    pub fn load(&self, bytes: &[u8], spec: PluginSpec) -> Result<Plugin, LoadError> {
        let compiled = self.compile(bytes)?;
        let info = self.info(&compiled);
        self.check_world(&info)?;
        let instance_pre = self
            .inner
            .linker
            .instantiate_pre(&compiled.component)
            .map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        let pre = TransformerPre::new(instance_pre)
            .map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        if let Some(dir) = &spec.assets_dir {
            cap_std::fs::Dir::open_ambient_dir(dir, cap_std::ambient_authority()).map_err(|e| {
                LoadError::Settings(format!(
                    "plugin {}: assets directory {}: {e}",
                    spec.name,
                    dir.display()
                ))
            })?;
        }
        if spec.limits.memory_mb > self.inner.config.max_memory_mb {
            return Err(LoadError::Settings(format!(
                "plugin {}: memory_mb = {} exceeds the runtime maximum of {} MiB \
                 (set from the largest memory_mb when the server started: \
                 raising it needs a restart)",
                spec.name, spec.limits.memory_mb, self.inner.config.max_memory_mb
            )));
        }
        if spec.limits.fuel.is_some() && !self.inner.config.fuel {
            return Err(LoadError::Settings(format!(
                "plugin {}: a fuel limit needs fuel metering, which the runtime was started \
                 without ([runtime] fuel = true, or any plugin's fuel, at start-up): \
                 turning it on needs a restart",
                spec.name
            )));
        }
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                runtime: self.clone(),
                pre,
                shared: Arc::new(PluginShared {
                    name: spec.name,
                    config: spec.config,
                    kv: spec.kv,
                    limits: spec.limits,
                    log_forwarder: super::log_forward::LogForwarder::new(),
                }),
                assets_dir: spec.assets_dir,
                info,
                warm: self.register_warm_pool(),
            }),
        })
    }
}

impl Plugin {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.inner.shared.name
    }

    /// Facts about the component.
    pub fn info(&self) -> &ComponentInfo {
        &self.inner.info
    }

    /// The plugin's limits.
    pub fn limits(&self) -> &PluginLimits {
        &self.inner.shared.limits
    }

    /// Run the plugin on one event. Never panics on guest misbehaviour: a
    /// trap, timeout, memory or fuel exhaustion, or invalid output is
    /// returned as a [`PluginError`] and costs only this invocation.
    pub fn invoke(&self, event: &Event) -> Invocation {
        self.invoke_with_kv(event, None)
    }

    /// Like [`Plugin::invoke`], with the `kv` import backed by `kv` instead
    /// of the plugin's own store for this one invocation (dry runs use an
    /// overlay so that nothing is persisted).
    pub fn invoke_with_kv(&self, event: &Event, kv: Option<Arc<dyn KvStore>>) -> Invocation {
        let start = Instant::now();
        let limits = &self.inner.shared.limits;
        // A dry run (its own kv) never shares an instance with real
        // traffic: state the operator's test event leaves in the guest's
        // memory must not reach real events, nor the other way round.
        let dry_run = kv.is_some();
        let warm = if dry_run { None } else { self.take_warm() };
        let (mut warm, fuel_start) = match warm {
            Some(mut w) => {
                let fuel = self.arm(&mut w.store, kv.as_ref());
                (w, fuel)
            }
            // A fresh instance was armed once, before instantiation: its
            // start-up and the call share one deadline and fuel budget.
            None => match self.instantiate_or_evict(kv.as_ref()) {
                Ok(w) => (w, limits.fuel),
                Err((store, e)) => {
                    let outcome = Err(classify(e, store.data(), limits));
                    let invocation = self.finish(store, outcome, start, None);
                    self.forward_logs(event, &invocation);
                    return invocation;
                }
            },
        };
        let input = to_wit_event(event);
        let result = warm.bindings.call_transform(&mut warm.store, &input);
        let outcome = match result {
            Ok(Ok(decision)) => {
                validate_decision(decision, limits, event_holds_placeholder(&input))
            }
            Ok(Err(message)) => Err(PluginError::Plugin(bounded_reason(message))),
            Err(e) => Err(classify(e, warm.store.data(), limits)),
        };
        // A clock wait cut at the deadline: the guest woke only because
        // its time was up, whatever it made of that.
        let outcome = if warm.store.data().waits.ran_out() {
            Err(PluginError::Timeout {
                timeout_ms: limits.timeout_ms,
            })
        } else {
            outcome
        };
        warm.uses += 1;
        let fuel = fuel_start.map(|f| f.saturating_sub(warm.store.get_fuel().unwrap_or(0)));
        let reusable = outcome
            .as_ref()
            .map_or_else(PluginError::instance_reusable, |_| true);
        let invocation = if reusable && !dry_run && warm.uses < limits.instance_reuse {
            let logs = warm.store.data_mut().finish_logs();
            self.put_warm(warm);
            Invocation {
                outcome,
                logs,
                elapsed: start.elapsed(),
                fuel_consumed: fuel,
            }
        } else {
            self.finish(warm.store, outcome, start, fuel)
        };
        self.forward_logs(event, &invocation);
        invocation
    }

    fn forward_logs(&self, event: &Event, invocation: &Invocation) {
        let shared = &self.inner.shared;
        let error = invocation.outcome.as_ref().err();
        let message = error.map(ToString::to_string);
        let failure = error
            .zip(message.as_deref())
            .map(|(e, m)| (e.kind().as_str(), m));
        shared
            .log_forwarder
            .forward(&shared.name, &event.id, &invocation.logs, failure);
    }

    fn finish(
        &self,
        mut store: Store<State>,
        outcome: Result<Decision, PluginError>,
        start: Instant,
        fuel: Option<u64>,
    ) -> Invocation {
        let logs = store.data_mut().finish_logs();
        drop(store);
        Invocation {
            outcome,
            logs,
            elapsed: start.elapsed(),
            fuel_consumed: fuel,
        }
    }

    /// Set the deadline and fuel for the next stretch of guest code, and
    /// reset per-invocation state. Returns the plugin's fuel budget, if it
    /// has one.
    fn arm(&self, store: &mut Store<State>, kv: Option<&Arc<dyn KvStore>>) -> Option<u64> {
        let limits = &self.inner.shared.limits;
        store.data_mut().begin_invocation(kv);
        let tick = self
            .inner
            .runtime
            .inner
            .config
            .epoch_tick
            .as_millis()
            .max(1) as u64;
        store.set_epoch_deadline(limits.timeout_ms.div_ceil(tick) + 1);
        store.epoch_deadline_trap();
        if self.inner.runtime.inner.config.fuel {
            // With metering on, a store starts with no fuel at all: a
            // plugin without a limit of its own gets all there is.
            let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
        }
        limits.fuel
    }

    fn take_warm(&self) -> Option<Warm> {
        if self.inner.shared.limits.instance_reuse <= 1 {
            return None;
        }
        self.inner
            .warm
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
    }

    fn put_warm(&self, warm: Warm) {
        let mut pool = self.inner.warm.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < MAX_WARM_INSTANCES {
            pool.push(warm);
        }
    }

    /// Like [`Plugin::instantiate`]; when the instance pool is full, the
    /// idle instances every plugin keeps for reuse are let go and it is
    /// tried once more, so warm instances never starve a plugin of slots.
    fn instantiate_or_evict(
        &self,
        kv: Option<&Arc<dyn KvStore>>,
    ) -> Result<Warm, (Store<State>, wasmtime::Error)> {
        match self.instantiate(kv) {
            Err((_, e)) if pool_full(&e) && self.inner.runtime.evict_warm() > 0 => {
                self.instantiate(kv)
            }
            other => other,
        }
    }

    /// A fresh store and instance. On failure the store is returned too, so
    /// that logs written during start-up and the limiter state survive.
    fn instantiate(
        &self,
        kv: Option<&Arc<dyn KvStore>>,
    ) -> Result<Warm, (Store<State>, wasmtime::Error)> {
        let shared = self.inner.shared.clone();
        let stdout = Captured::new(shared.limits.max_stdio_bytes);
        let stderr = Captured::new(shared.limits.max_stdio_bytes);
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            // Host memory outside `memory_mb` (WASI's default is 64 MiB a
            // call); seeding a generator takes a few bytes.
            .max_random_size(MAX_RANDOM_BYTES);
        let preopen_error = self.inner.assets_dir.as_ref().and_then(|dir| {
            builder
                .preopened_dir(dir, ASSETS_GUEST_PATH, FsPerms::ReadOnly)
                .err()
        });
        let mut store = Store::new(
            &self.inner.runtime.inner.engine,
            State::new(builder.build(), shared, stdout, stderr),
        );
        store.limiter(|s| &mut s.limiter);
        if let Some(e) = preopen_error {
            return Err((store, e.context("opening the assets directory")));
        }
        self.arm(&mut store, kv);
        match self.inner.pre.instantiate(&mut store) {
            Ok(bindings) => Ok(Warm {
                store,
                bindings,
                uses: 0,
            }),
            Err(e) => Err((store, e)),
        }
    }
}

/// Whether `e` says the pooling allocator had no free slot.
fn pool_full(e: &wasmtime::Error) -> bool {
    e.chain()
        .any(|cause| cause.is::<wasmtime::PoolConcurrencyLimitError>())
}

/// Turn a wasmtime error from instantiation or a call into a typed error.
fn classify(e: wasmtime::Error, state: &State, limits: &PluginLimits) -> PluginError {
    if pool_full(&e) {
        return PluginError::Busy;
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PluginError::Timeout {
            timeout_ms: limits.timeout_ms,
        },
        Some(Trap::OutOfFuel) => PluginError::OutOfFuel {
            fuel: limits.fuel.unwrap_or(0),
        },
        _ if state.limiter.denied => PluginError::MemoryLimit {
            memory_mb: limits.memory_mb,
        },
        Some(trap) => PluginError::Trap(bounded_reason(trap.to_string())),
        None => PluginError::Trap(bounded_reason(e.root_cause().to_string())),
    }
}

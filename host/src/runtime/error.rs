//! Errors of the runtime boundary: loading a component, and invoking one.

use std::fmt;

/// Why a component could not be loaded as a wasmhook plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path that failed.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly file (bad magic bytes)")]
    NotWasm,
    /// A core module was given where a component is needed.
    #[error(
        "this is a core WebAssembly module, not a component: build for wasm32-wasip2 \
         (Rust), or wrap the module with `wasm-tools component new` / wit-component"
    )]
    CoreModule,
    /// Cranelift rejected the component.
    #[error("the component failed to compile: {0}")]
    Compile(String),
    /// The component imports something wasmhook refuses to provide.
    #[error("the component imports `{import}`, which wasmhook refuses: {why}")]
    ForbiddenImport {
        /// The import name.
        import: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// The component imports something wasmhook does not know.
    #[error(
        "the component imports `{0}`, which wasmhook does not provide \
         (plugins may import wasmhook:plugin/{{log,config,kv}} and wasi:{{cli,io,clocks,random,filesystem}})"
    )]
    UnknownImport(String),
    /// The component does not implement `wasmhook:plugin/transformer`.
    #[error("the component does not implement wasmhook:plugin/transformer: {0}")]
    WrongWorld(String),
    /// The plugin's settings are unusable (e.g. the assets directory).
    #[error("{0}")]
    Settings(String),
    /// The engine could not be created or configured.
    #[error("the WebAssembly engine could not be set up: {0}")]
    Engine(String),
}

/// Why one invocation of a plugin failed. None of these takes the host
/// down; the plugin's other invocations are unaffected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginError {
    /// The guest trapped (unreachable, out-of-bounds access, panic, abort).
    #[error("the plugin trapped: {0}")]
    Trap(String),
    /// The guest ran past its deadline and was interrupted.
    #[error("the plugin ran longer than its {timeout_ms} ms deadline")]
    Timeout {
        /// The deadline that was exceeded.
        timeout_ms: u64,
    },
    /// The guest tried to grow its memory past its cap.
    #[error("the plugin exceeded its {memory_mb} MiB memory limit")]
    MemoryLimit {
        /// The cap that was hit.
        memory_mb: u64,
    },
    /// The guest used up its fuel budget.
    #[error("the plugin used up its fuel budget of {fuel}")]
    OutOfFuel {
        /// The budget.
        fuel: u64,
    },
    /// The guest returned a decision that breaks the contract.
    #[error("invalid plugin output: {0}")]
    InvalidOutput(String),
    /// The guest returned `err(message)`.
    #[error("the plugin returned an error: {0}")]
    Plugin(String),
    /// Output the host will not act on because of the event it was made
    /// from, not a fault of the plugin's: it does not count against the
    /// plugin's breaker.
    #[error("the host refused the plugin's output: {0}")]
    Refused(String),
    /// Not the plugin's doing either: every instance slot of the host's
    /// pool was taken, so the plugin did not run. Worth trying again.
    #[error("the host has no free instance slot for the plugin; it did not run")]
    Busy,
}

impl PluginError {
    /// A short machine-readable kind: `timeout`, `trap`, `memory`, `fuel`,
    /// `invalid_output` or `plugin`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PluginError::Trap(_) => ErrorKind::Trap,
            PluginError::Timeout { .. } => ErrorKind::Timeout,
            PluginError::MemoryLimit { .. } => ErrorKind::Memory,
            PluginError::OutOfFuel { .. } => ErrorKind::Fuel,
            PluginError::InvalidOutput(_) => ErrorKind::InvalidOutput,
            PluginError::Plugin(_) => ErrorKind::Plugin,
            PluginError::Refused(_) => ErrorKind::Refused,
            PluginError::Busy => ErrorKind::Busy,
        }
    }

    /// Whether the instance that produced this error may be used again.
    /// Only a clean `err(..)` return leaves the instance in a known state.
    pub(crate) fn instance_reusable(&self) -> bool {
        matches!(
            self,
            PluginError::Plugin(_) | PluginError::InvalidOutput(_) | PluginError::Refused(_)
        )
    }
}

/// The kind of a [`PluginError`], for metrics and JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// See [`PluginError::Timeout`].
    Timeout,
    /// See [`PluginError::Trap`].
    Trap,
    /// See [`PluginError::MemoryLimit`].
    Memory,
    /// See [`PluginError::OutOfFuel`].
    Fuel,
    /// See [`PluginError::InvalidOutput`].
    InvalidOutput,
    /// See [`PluginError::Plugin`].
    Plugin,
    /// See [`PluginError::Refused`].
    Refused,
    /// See [`PluginError::Busy`].
    Busy,
    /// Not a run's error: the event was older than the plugin's
    /// `max_event_age_s` when its turn came, so it was not run.
    Expired,
}

impl ErrorKind {
    /// The kind's name as used in JSON output and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Trap => "trap",
            ErrorKind::Memory => "memory",
            ErrorKind::Fuel => "fuel",
            ErrorKind::InvalidOutput => "invalid_output",
            ErrorKind::Plugin => "plugin",
            ErrorKind::Refused => "refused",
            ErrorKind::Busy => "busy",
            ErrorKind::Expired => "expired",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

//! Per-plugin resource limits and the memory limiter that enforces them.

/// Limits applied to every invocation of one plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginLimits {
    /// Wall-clock budget for one invocation (instantiation included when a
    /// fresh instance is used), enforced by epoch interruption.
    pub timeout_ms: u64,
    /// Cap on the total linear memory of one instance, in MiB.
    pub memory_mb: u64,
    /// Fuel budget per invocation; `None` disables metering for this plugin
    /// (fuel must also be enabled on the runtime).
    pub fuel: Option<u64>,
    /// Most requests one decision may contain.
    pub max_requests: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest URL, in bytes.
    pub max_url_bytes: usize,
    /// Most headers on one request.
    pub max_headers: usize,
    /// Reuse one instance for up to this many events (0 or 1: a fresh
    /// instance per event). Faster for heavy JS/Python components, but state
    /// left in globals by one event is visible to the next.
    pub instance_reuse: u32,
    /// Most log lines kept per invocation (log import plus stdout/stderr).
    pub max_log_lines: usize,
    /// Longest kept log line, in bytes; longer lines are truncated.
    pub max_log_line_bytes: usize,
    /// Bytes of stdout (and, separately, stderr) kept per invocation.
    pub max_stdio_bytes: usize,
    /// Most `kv` calls per invocation; one more traps the plugin.
    pub max_kv_ops: u32,
    /// Most bytes (keys and values) the plugin's `kv` namespace may hold;
    /// a write that would grow it further traps the plugin.
    pub kv_max_bytes: u64,
    /// Most bytes (keys and values) `kv` writes may store in one
    /// invocation; one more traps the plugin.
    pub max_kv_written_bytes: u64,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            timeout_ms: 100,
            memory_mb: 64,
            fuel: None,
            max_requests: 16,
            max_body_bytes: 1024 * 1024,
            max_url_bytes: 8 * 1024,
            max_headers: 64,
            instance_reuse: 0,
            max_log_lines: 100,
            max_log_line_bytes: 2048,
            max_stdio_bytes: 64 * 1024,
            max_kv_ops: 10_000,
            kv_max_bytes: 64 * 1024 * 1024,
            max_kv_written_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Largest table the host lets a plugin grow to (JS engines need ~10k).
const MAX_TABLE_ELEMENTS: usize = 200_000;

/// A [`wasmtime::ResourceLimiter`] capping the total linear memory of all
/// memories in one store, and remembering whether it had to refuse growth so
/// that the resulting trap can be reported as a memory-limit error.
pub(crate) struct MemoryLimiter {
    cap_bytes: usize,
    used_bytes: usize,
    /// Set when a grow request was refused.
    pub(crate) denied: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(memory_mb: u64) -> Self {
        Self {
            cap_bytes: usize::try_from(memory_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX),
            used_bytes: 0,
            denied: false,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let next = self
            .used_bytes
            .saturating_sub(current)
            .saturating_add(desired);
        if next > self.cap_bytes {
            self.denied = true;
            return Ok(false);
        }
        self.used_bytes = next;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn growth_is_counted_across_memories() {
        let mut l = MemoryLimiter::new(1);
        assert!(l.memory_growing(0, 600 * 1024, None).unwrap());
        assert!(l.memory_growing(0, 400 * 1024, None).unwrap());
        assert!(!l.denied);
        assert!(!l.memory_growing(600 * 1024, 700 * 1024, None).unwrap());
        assert!(l.denied);
    }
}

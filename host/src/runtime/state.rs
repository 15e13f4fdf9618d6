//! The per-instance `Store` data: WASI context, limits, captured logs, and
//! the plugin's settings seen through the `config`/`kv` imports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::clock::WaitLimit;
use super::limits::{MemoryLimiter, PluginLimits};
use super::stdio::Captured;
use crate::model::{LogLevel, LogLine, LogSource};
use crate::store::KvStore;

/// Most WASI resources (streams, pollables, files) one instance may hold
/// at once: each is host memory the guest's `memory_mb` does not count.
const MAX_RESOURCES: usize = 10_000;

/// What every instance of one plugin shares.
pub(crate) struct PluginShared {
    /// The plugin's name: its `kv` namespace and its tag in the host log.
    pub(crate) name: String,
    /// Settings visible through `config.get`.
    pub(crate) config: BTreeMap<String, String>,
    /// Backing store of the `kv` import.
    pub(crate) kv: Arc<dyn KvStore>,
    /// Limits for every invocation.
    pub(crate) limits: PluginLimits,
    /// Rate-capped forwarding of log lines to the host log.
    pub(crate) log_forwarder: super::log_forward::LogForwarder,
}

/// Log lines of one invocation, capped in count and line length.
#[derive(Default)]
pub(crate) struct LogCollector {
    pub(crate) lines: Vec<LogLine>,
    pub(crate) dropped: usize,
}

impl LogCollector {
    pub(crate) fn push(
        &mut self,
        limits: &PluginLimits,
        level: LogLevel,
        source: LogSource,
        message: &str,
    ) {
        if self.lines.len() >= limits.max_log_lines {
            self.dropped += 1;
            return;
        }
        self.lines.push(LogLine {
            level,
            source,
            message: truncate(message, limits.max_log_line_bytes),
        });
    }
}

/// Truncate to at most `max` bytes on a char boundary, marking the cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes truncated)", &s[..end], s.len() - end)
}

/// Store data for one instance.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) shared: Arc<PluginShared>,
    pub(crate) logs: LogCollector,
    pub(crate) stdout: Captured,
    pub(crate) stderr: Captured,
    /// Operations on `kv` in the current invocation.
    pub(crate) kv_ops: u32,
    /// Bytes `kv` writes stored in the current invocation.
    pub(crate) kv_written: u64,
    /// The `kv` backend of the current invocation: the plugin's own store,
    /// or an overlay for dry runs (writes kept apart, nothing persisted).
    pub(crate) kv: Arc<dyn KvStore>,
    /// When the current invocation's time is up, for the clock's waits.
    pub(crate) waits: Arc<WaitLimit>,
}

impl State {
    pub(crate) fn new(
        wasi: WasiCtx,
        shared: Arc<PluginShared>,
        stdout: Captured,
        stderr: Captured,
    ) -> Self {
        Self {
            wasi,
            table: {
                // Host memory outside `memory_mb`: bound it.
                let mut table = ResourceTable::new();
                table.set_max_capacity(MAX_RESOURCES);
                table
            },
            limiter: MemoryLimiter::new(shared.limits.memory_mb),
            kv: shared.kv.clone(),
            shared,
            logs: LogCollector::default(),
            stdout,
            stderr,
            kv_ops: 0,
            kv_written: 0,
            waits: Arc::new(WaitLimit::new()),
        }
    }

    /// Reset what is per invocation, keeping the instance.
    pub(crate) fn begin_invocation(&mut self, kv: Option<&Arc<dyn KvStore>>) {
        self.kv = kv.unwrap_or(&self.shared.kv).clone();
        self.waits
            .start(Duration::from_millis(self.shared.limits.timeout_ms));
        self.logs = LogCollector::default();
        self.kv_ops = 0;
        self.kv_written = 0;
        self.limiter.denied = false;
        let _ = self.stdout.take();
        let _ = self.stderr.take();
    }

    /// All log lines of the invocation: the log import's lines, then stdout
    /// and stderr split into lines, then a note of anything dropped.
    pub(crate) fn finish_logs(&mut self) -> Vec<LogLine> {
        let limits = self.shared.limits.clone();
        let mut logs = std::mem::take(&mut self.logs);
        for (capture, source, level) in [
            (&self.stdout, LogSource::Stdout, LogLevel::Info),
            (&self.stderr, LogSource::Stderr, LogLevel::Warn),
        ] {
            let (bytes, dropped_bytes) = capture.take();
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                logs.push(&limits, level, source, line);
            }
            if dropped_bytes > 0 {
                let note = format!(
                    "{} bytes of {} dropped (cap {} bytes)",
                    dropped_bytes,
                    source.as_str(),
                    limits.max_stdio_bytes
                );
                logs.lines.push(LogLine {
                    level: LogLevel::Warn,
                    source: LogSource::Host,
                    message: note,
                });
            }
        }
        if logs.dropped > 0 {
            let note = format!(
                "{} log lines dropped (cap {} per invocation)",
                logs.dropped, limits.max_log_lines
            );
            logs.lines.push(LogLine {
                level: LogLevel::Warn,
                source: LogSource::Host,
                message: note,
            });
        }
        logs.lines
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 10), "héllo");
        let t = truncate("héllo", 2);
        assert!(t.starts_with("h…"), "{t}");
        assert!(t.contains("5 bytes truncated"), "{t}");
    }

    #[test]
    fn collector_caps_lines() {
        let limits = PluginLimits {
            max_log_lines: 2,
            ..PluginLimits::default()
        };
        let mut c = LogCollector::default();
        for i in 0..5 {
            c.push(
                &limits,
                LogLevel::Info,
                LogSource::Log,
                &format!("line {i}"),
            );
        }
        assert_eq!(c.lines.len(), 2);
        assert_eq!(c.dropped, 3);
    }
}

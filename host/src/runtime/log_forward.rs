//! Forwarding of captured plugin log lines to the host's log (`tracing`),
//! tagged with the plugin name and event id, behind a per-plugin token
//! bucket so that a chatty plugin cannot flood the host's log.

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::Instant;

use crate::model::{LogLevel, LogLine};

/// Lines per second a plugin may write to the host log, sustained.
const LINES_PER_SECOND: f64 = 50.0;
/// Burst allowance.
const BURST: f64 = 200.0;
/// Dropped lines are reported at most this often.
const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A token bucket with an explicit clock, so it can be tested without time
/// passing.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
    /// Lines refused since the last report.
    suppressed: u64,
    /// When refused lines were last reported.
    reported: Option<Instant>,
}

impl TokenBucket {
    pub(crate) fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            last: now,
            rate,
            burst,
            suppressed: 0,
            reported: None,
        }
    }

    /// Take one token; false when the bucket is empty.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// How many lines were refused since the last call.
    pub(crate) fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }

    /// Lines refused since the last report, at most once a second (the
    /// report is a log line too, and must not flood in their place).
    pub(crate) fn report_due(&mut self, now: Instant) -> Option<u64> {
        let due = self
            .reported
            .is_none_or(|at| now.saturating_duration_since(at) >= REPORT_EVERY);
        if self.suppressed == 0 || !due {
            return None;
        }
        self.reported = Some(now);
        Some(self.take_suppressed())
    }
}

/// Plugin text as one log line: line breaks, terminal escapes and other
/// control characters (tab aside) are written as escapes, so a plugin
/// cannot forge host log lines or drive the operator's terminal.
pub(crate) fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The per-plugin forwarder.
pub(crate) struct LogForwarder {
    bucket: Mutex<TokenBucket>,
}

impl LogForwarder {
    pub(crate) fn new() -> Self {
        Self {
            bucket: Mutex::new(TokenBucket::new(LINES_PER_SECOND, BURST, Instant::now())),
        }
    }

    /// Emit the lines of one invocation to `tracing`, and its failure
    /// (kind, message), if it failed: under the same cap, since a plugin
    /// that fails on every event would otherwise write a line per event.
    pub(crate) fn forward(
        &self,
        plugin: &str,
        event_id: &str,
        lines: &[LogLine],
        failure: Option<(&str, &str)>,
    ) {
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some((kind, message)) = failure
            && bucket.take(now)
        {
            let event_id = one_line(event_id);
            let message = one_line(message);
            tracing::warn!(target: "plugin", plugin, event_id = %event_id, kind, "{message}");
        }
        for line in lines {
            if !bucket.take(now) {
                continue;
            }
            let source = line.source.as_str();
            let msg = one_line(&line.message);
            match line.level {
                LogLevel::Trace => {
                    tracing::trace!(target: "plugin", plugin, event_id, source, "{msg}")
                }
                LogLevel::Debug => {
                    tracing::debug!(target: "plugin", plugin, event_id, source, "{msg}")
                }
                LogLevel::Info => {
                    tracing::info!(target: "plugin", plugin, event_id, source, "{msg}")
                }
                LogLevel::Warn => {
                    tracing::warn!(target: "plugin", plugin, event_id, source, "{msg}")
                }
                LogLevel::Error => {
                    tracing::error!(target: "plugin", plugin, event_id, source, "{msg}")
                }
            }
        }
        if let Some(suppressed) = bucket.report_due(now) {
            tracing::warn!(
                target: "plugin",
                plugin,
                suppressed,
                "plugin log rate limit ({LINES_PER_SECOND}/s) reached; lines dropped from the host log"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn plugin_text_stays_on_one_line() {
        assert!(matches!(one_line("plain\ttext é"), Cow::Borrowed(_)));
        assert_eq!(
            one_line("ok\n2026-01-01 ERROR forged\u{1b}[2J\r"),
            "ok\\n2026-01-01 ERROR forged\\u{1b}[2J\\r"
        );
    }

    /// Through the real text formatter: one record, one line, no escape byte.
    #[test]
    fn a_forwarded_line_cannot_forge_another() {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let out = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            LogForwarder::new().forward(
                "p",
                "e-1",
                &[LogLine {
                    level: LogLevel::Info,
                    source: crate::model::LogSource::Log,
                    message: "ok\n2026-01-01T00:00:00Z ERROR wasmhook: forged\u{1b}[2J".into(),
                }],
                None,
            );
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("ok\\n2026-01-01T00:00:00Z ERROR"), "{text}");
    }

    #[test]
    fn bucket_allows_a_burst_then_the_sustained_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 5.0, t0);
        assert_eq!((0..8).filter(|_| b.take(t0)).count(), 5);
        assert_eq!(b.take_suppressed(), 3);
        // after half a second, five more tokens
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!((0..8).filter(|_| b.take(t1)).count(), 5);
        // the bucket never holds more than the burst
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| b.take(t2)).count(), 5);
    }

    #[test]
    fn dropped_lines_are_reported_once_a_second() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1.0, 1.0, t0);
        assert!(b.take(t0));
        assert!(!b.take(t0));
        assert_eq!(b.report_due(t0), Some(1));
        assert!(!b.take(t0));
        assert_eq!(b.report_due(t0), None, "reported a moment ago");
        let t1 = t0 + Duration::from_millis(1_500);
        assert!(b.take(t1));
        assert!(!b.take(t1));
        assert_eq!(
            b.report_due(t1),
            Some(2),
            "both drops since the last report"
        );
        assert_eq!(
            b.report_due(t1 + Duration::from_secs(5)),
            None,
            "nothing new"
        );
    }
}

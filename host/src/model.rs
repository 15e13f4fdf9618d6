//! Domain types shared by every stage of the pipeline.
//!
//! These are plain data: no serde wire formats (those live at the edges, in
//! `ingest/` and the CLI), no wasmtime types (those stay in `runtime/`).

use std::fmt;

/// One event, as accepted by ingest and handed to plugins.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The sender's idempotency key, or one the host generated.
    pub id: String,
    /// The event name, e.g. `email.unsubscribed`.
    pub name: String,
    /// The user the event is about, when known.
    pub user_id: Option<String>,
    /// Event time in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The event's properties; always a JSON object.
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// HTTP method of an outbound request (the five the contract allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The method's canonical upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request a plugin asked the host to send, already validated by the
/// runtime (absolute http(s) URL, well-formed headers, size caps). Secrets
/// are still in `{{secret:NAME}}` placeholder form.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundRequest {
    /// HTTP method.
    pub method: Method,
    /// Absolute http or https URL.
    pub url: String,
    /// Headers in the order the plugin gave them.
    pub headers: Vec<(String, String)>,
    /// Request body; may be empty.
    pub body: Vec<u8>,
}

/// What a plugin decided for one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Send nothing; the reason is recorded.
    Skip {
        /// Human-readable reason given by the plugin.
        reason: String,
    },
    /// Send these requests.
    Fire {
        /// The requests, each delivered independently.
        requests: Vec<OutboundRequest>,
    },
}

/// Severity of a plugin log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Very fine-grained detail.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Handled surprises.
    Warn,
    /// Failures.
    Error,
}

impl LogLevel {
    /// Lower-case name, as printed in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Where a plugin log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    /// The `wasmhook:plugin/log` import.
    Log,
    /// The plugin wrote to WASI stdout.
    Stdout,
    /// The plugin wrote to WASI stderr.
    Stderr,
    /// The host itself (e.g. "N lines dropped").
    Host,
}

impl LogSource {
    /// Lower-case name, as printed in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            LogSource::Log => "log",
            LogSource::Stdout => "stdout",
            LogSource::Stderr => "stderr",
            LogSource::Host => "host",
        }
    }
}

/// One captured plugin log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// Origin of the line.
    pub source: LogSource,
    /// The message, truncated to the host's per-line cap.
    pub message: String,
}

/// A secret value (API key, token, signing key). Its `Debug` and `Display`
/// never show the value, so it cannot leak through logs or error messages
/// by accident; call [`Secret::expose`] at the one place that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself: only for the code that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.expose(), "hunter2");
    }
}

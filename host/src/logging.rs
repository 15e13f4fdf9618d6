//! Where the host's diagnostics go: `tracing` events on stderr, filtered
//! by `WASMHOOK_LOG` (default `warn`), as text (the default) or as one JSON
//! object per line (`--log-format json`, for log collectors), plus the few
//! lines `serve` prints whatever the filter (listening, reloaded, shutting
//! down, a fatal error), which follow the same format.

use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message`, `target`
    /// and the event's fields (`plugin`, `error`…) at the top level.
    Json,
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Install the subscriber for `format`. Later calls change nothing.
pub fn init(format: LogFormat) {
    let _ = FORMAT.set(format);
    let filter = EnvFilter::try_from_env("WASMHOOK_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_env_filter(filter).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            // The notices pass whatever WASMHOOK_LOG says, as in text.
            .with_env_filter(
                filter.add_directive("wasmhook::notice=info".parse().expect("a valid directive")),
            )
            .try_init(),
    };
}

fn json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

/// A line for the operator, printed whatever the level filter: as is in
/// text, an `INFO` event in JSON.
pub fn notice(message: &str) {
    if json() {
        tracing::info!(target: "wasmhook::notice", "{message}");
    } else {
        eprintln!("{message}");
    }
}

/// Like [`notice`], for a failure (`ERROR` in JSON).
pub fn failure(message: &str) {
    if json() {
        tracing::error!(target: "wasmhook::notice", "{message}");
    } else {
        eprintln!("{message}");
    }
}

//! `[breakers]`: the tuning of the two circuit breakers, for every plugin.
//!
//! - `[breakers.destinations]`: unhealthy-host detection for deliveries
//!   (per plugin, keyed by destination): retryable failures in a row pause
//!   sends to that destination.
//! - `[breakers.plugins]`: runs the sandbox had to stop (timeout, trap,
//!   memory, fuel, invalid output) in a row pause the plugin; its events
//!   are parked meanwhile.
//!
//! Each table takes `failure_threshold`, `window_s` (the failures must
//! fall within it), `pause_s` (first pause; doubles on every failed probe)
//! and `max_pause_s`. Keys left out keep their defaults, which differ per
//! table. Plain data and its checks.

use std::time::Duration;

use serde::Deserialize;

use super::error::{Issue, KeyPath};

/// `[breakers]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakersConfig {
    /// `[breakers.destinations]`.
    pub destinations: BreakerTable,
    /// `[breakers.plugins]`.
    pub plugins: BreakerTable,
}

/// One breaker table as written; unset keys take the defaults of the
/// breaker it tunes ([`BreakersConfig::destinations`],
/// [`BreakersConfig::plugins`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerTable {
    /// Failures in a row that open the breaker.
    pub failure_threshold: Option<u32>,
    /// Seconds within which those failures must fall.
    pub window_s: Option<u64>,
    /// Seconds of the first pause.
    pub pause_s: Option<u64>,
    /// Seconds of the longest pause.
    pub max_pause_s: Option<u64>,
}

/// A breaker's tuning with the defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerTuning {
    /// Failures in a row that open the breaker.
    pub failure_threshold: u32,
    /// The failures must fall within this window.
    pub window: Duration,
    /// First pause; doubles on every failed probe.
    pub pause: Duration,
    /// Longest pause.
    pub max_pause: Duration,
}

/// Defaults of `[breakers.destinations]`: 5 failures within 30 s pause a
/// destination for 30 s, doubling up to 5 min.
pub const DESTINATION_DEFAULTS: BreakerTuning = BreakerTuning {
    failure_threshold: 5,
    window: Duration::from_secs(30),
    pause: Duration::from_secs(30),
    max_pause: Duration::from_secs(300),
};

/// Defaults of `[breakers.plugins]`: 10 stopped runs within 60 s pause a
/// plugin for 5 s, doubling up to 5 min.
pub const PLUGIN_DEFAULTS: BreakerTuning = BreakerTuning {
    failure_threshold: 10,
    window: Duration::from_secs(60),
    pause: Duration::from_secs(5),
    max_pause: Duration::from_secs(300),
};

impl BreakersConfig {
    /// The destination breaker's tuning.
    pub fn destinations(&self) -> BreakerTuning {
        self.destinations.resolve(DESTINATION_DEFAULTS)
    }

    /// The plugin breaker's tuning.
    pub fn plugins(&self) -> BreakerTuning {
        self.plugins.resolve(PLUGIN_DEFAULTS)
    }
}

impl BreakerTable {
    fn resolve(&self, defaults: BreakerTuning) -> BreakerTuning {
        let secs = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_secs);
        BreakerTuning {
            failure_threshold: self.failure_threshold.unwrap_or(defaults.failure_threshold),
            window: secs(self.window_s, defaults.window),
            pause: secs(self.pause_s, defaults.pause),
            max_pause: secs(self.max_pause_s, defaults.max_pause),
        }
    }
}

/// Check both tables: every value at least 1, and `max_pause_s` not below
/// the (resolved) `pause_s`.
pub(super) fn check(config: &BreakersConfig, path: &KeyPath) -> Result<(), Issue> {
    for (name, table, tuning) in [
        ("destinations", &config.destinations, config.destinations()),
        ("plugins", &config.plugins, config.plugins()),
    ] {
        let path = path.key(name);
        let values = [
            ("failure_threshold", table.failure_threshold.map(u64::from)),
            ("window_s", table.window_s),
            ("pause_s", table.pause_s),
            ("max_pause_s", table.max_pause_s),
        ];
        for (key, value) in values {
            if value == Some(0) {
                return Err(Issue::at(
                    path.key(key),
                    "0 is too small; expected at least 1",
                ));
            }
        }
        if tuning.max_pause < tuning.pause {
            return Err(Issue::at(
                path.key(if table.max_pause_s.is_some() {
                    "max_pause_s"
                } else {
                    "pause_s"
                }),
                format!(
                    "max_pause_s ({} s) is below pause_s ({} s)",
                    tuning.max_pause.as_secs(),
                    tuning.pause.as_secs()
                ),
            ));
        }
    }
    Ok(())
}

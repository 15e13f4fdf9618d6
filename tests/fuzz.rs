//! Property and fuzz tests over the public library API: ingest parsing
//! (native and CloudEvents), egress URL and allowlist matching, IP
//! classification against an independent RFC oracle, and config parsing.
//!
//! Bounded for CI: each property runs [`DEFAULT_CASES`] cases unless
//! `PROPTEST_CASES` says otherwise (`scripts/fuzz.sh` runs them for a set
//! time). Every property prints `fuzz-stat <target> <cases>` so the script
//! can count executions. Inputs a property once failed on are kept as
//! named regular tests in the target's module.

#[path = "fuzz/config.rs"]
mod config;
#[path = "fuzz/egress.rs"]
mod egress;
#[path = "fuzz/ingest.rs"]
mod ingest;
#[path = "fuzz/ip.rs"]
mod ip;

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 256;

/// The runner settings: cases from `PROPTEST_CASES` (or the default), no
/// regression files (failures become named tests instead).
fn settings() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Run `property` over `strategy`; report the cases run, panic with the
/// minimal failing input on failure.
fn check<S: Strategy>(
    target: &str,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let ran = AtomicU64::new(0);
    let mut runner = TestRunner::new(settings());
    let result = runner.run(&strategy, |value| {
        ran.fetch_add(1, Ordering::Relaxed);
        property(value)
    });
    eprintln!("fuzz-stat {target} {}", ran.load(Ordering::Relaxed));
    if let Err(e) = result {
        panic!("{target}: {e}");
    }
}

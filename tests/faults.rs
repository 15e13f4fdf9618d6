//! Fault recovery, end to end: the real `wasmhook serve` against receivers
//! that misbehave (slow, resetting, failing, hanging, answering huge
//! bodies) and against storage that cannot be written (a file-size limit
//! standing in for a full disk, a read-only database file). Deliveries
//! retry per the plugin's schedule, a bad destination holds up no other,
//! ingest answers 503 with the reason while storage is unavailable, and
//! nothing accepted is lost.

#[path = "support/mod.rs"]
mod support;

#[path = "faults/receivers.rs"]
mod receivers;
#[path = "faults/storage.rs"]
mod storage;

use serde_json::Value;
use support::host::{Host, component, config_head};

/// A `[[plugins]]` block: the hostile fixture in `ok` mode, named `name`,
/// echoing every event to `{url}/hook`.
fn plugin(name: &str, url: &str, timeout_s: u64, schedule: &str) -> String {
    format!(
        r#"
[[plugins]]
name = "{name}"
component = "{c}"
events = ["*"]
allowed_hosts = ["{url}"]
allow_private_networks = ["127.0.0.1/32"]
[plugins.config]
mode = "ok"
url = "{url}/hook"
[plugins.delivery]
timeout_s = {timeout_s}
retry_schedule_s = {schedule}
"#,
        c = component("hostile"),
    )
}

/// A whole config: the common head, then these plugin blocks.
fn config(plugins: &[String]) -> String {
    format!("{}{}", config_head(), plugins.concat())
}

/// Ingest one event with this id; the status and answer.
async fn ingest(host: &Host, id: &str) -> (u16, Value) {
    host.ingest(&format!(r#"{{"id":"{id}","name":"fault.test"}}"#))
        .await
}

/// The one delivery of a settled single-plugin event.
fn only_delivery(v: &Value) -> &Value {
    let deliveries = v["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 1, "{v}");
    &deliveries[0]
}

/// The outcome kinds of a delivery's attempts, in order.
fn outcomes(delivery: &Value) -> Vec<String> {
    delivery["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["outcome"].as_str().unwrap_or("?").to_owned())
        .collect()
}

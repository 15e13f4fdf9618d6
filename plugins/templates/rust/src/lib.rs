//! {{name}}: a wasmhook plugin.
//!
//! It forwards events as JSON: for every event (or only the one named by
//! config `event`) it asks the host to POST the event to config `url`.
//! Change [`MyPlugin::transform`] to build the request your destination
//! expects; `cargo test` runs the tests below natively, with config, kv and
//! logs from the SDK's test double (`wasmhook_plugin::testing`).
//!
//! The plugin never sends anything itself: it returns a `Decision`, and the
//! host checks each request against the plugin's egress policy, fills in
//! `{{secret:NAME}}` placeholders (see `wasmhook_plugin::secret` and
//! `Request::bearer_secret`), sends and retries it.

use serde_json::json;
use wasmhook_plugin::{Decision, Event, Plugin, Request, config, log};

/// The plugin; see the crate docs.
pub struct MyPlugin;

impl Plugin for MyPlugin {
    fn transform(event: Event) -> Result<Decision, String> {
        // Skip events this plugin is not about, with a reason for the log.
        if let Some(wanted) = setting("event")
            && wanted != event.name
        {
            return Ok(Decision::skip(format!(
                "event {} is not {wanted}",
                event.name
            )));
        }
        // A missing setting is an error: recorded, nothing is sent.
        let url = setting("url").ok_or("config `url` is not set")?;

        let body = json!({
            "id": event.id,
            "name": event.name,
            "user_id": event.user_id,
            "timestamp_ms": event.timestamp_ms,
            "properties": event.props_json(),
        });
        log::debug(format!("forwarding {} to {url}", event.name));
        Ok(Decision::fire_one(Request::post(url).json(&body)))
    }
}

/// Config `key`, trimmed; `None` when unset or blank.
fn setting(key: &str) -> Option<String> {
    config::get(key)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

wasmhook_plugin::export_plugin!(MyPlugin);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wasmhook_plugin::{Event, Method, Plugin, testing};

    use super::MyPlugin;

    #[test]
    fn posts_the_event_as_json_to_the_configured_url() {
        testing::clear();
        testing::set_config("url", "https://hooks.example.com/in");
        let event = Event::new("order.paid")
            .with_id("evt-1")
            .with_user("u-42")
            .with_timestamp_ms(1_700_000_000_000)
            .with_props(json!({"total": "12.00"}));

        let decision = MyPlugin::transform(event).unwrap();

        let [request] = decision.requests() else {
            panic!("expected one request, got {decision:?}");
        };
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.url, "https://hooks.example.com/in");
        assert_eq!(
            request.header_value("content-type"),
            Some("application/json")
        );
        assert_eq!(
            request.body_json(),
            Ok(json!({
                "id": "evt-1",
                "name": "order.paid",
                "user_id": "u-42",
                "timestamp_ms": 1_700_000_000_000u64,
                "properties": {"total": "12.00"},
            }))
        );
    }

    #[test]
    fn skips_events_other_than_the_configured_one() {
        testing::clear();
        testing::set_config("url", "https://hooks.example.com/in");
        testing::set_config("event", "order.paid");
        let decision = MyPlugin::transform(Event::new("user.login")).unwrap();
        assert_eq!(
            decision.skip_reason(),
            Some("event user.login is not order.paid")
        );
        let decision = MyPlugin::transform(Event::new("order.paid")).unwrap();
        assert_eq!(decision.requests().len(), 1);
    }

    #[test]
    fn a_missing_url_is_an_error() {
        testing::clear();
        assert_eq!(
            MyPlugin::transform(Event::new("order.paid")),
            Err("config `url` is not set".to_owned())
        );
    }
}

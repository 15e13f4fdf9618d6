//! Example wasmhook plugin: posts a message to a Slack incoming webhook for
//! every event whose name starts with one of the configured prefixes.
//!
//! Config: `events` (comma-separated name prefixes; unset means every
//! event), `channel` (optional channel override) and `webhook_url`
//! (optional; where to POST instead of Slack, e.g. a local `wasmhook sink`
//! for demos and tests). By default the webhook path is the secret
//! `SLACK_WEBHOOK_PATH`, filled in by the host.

use serde_json::json;
use wasmhook_plugin::{Decision, Event, Plugin, Request, config, secret};

/// The plugin; see the crate docs.
pub struct SlackNotify;

impl Plugin for SlackNotify {
    fn transform(event: Event) -> Result<Decision, String> {
        let prefixes = config::list("events");
        if !prefixes.is_empty() && !prefixes.iter().any(|p| event.name.starts_with(p.as_str())) {
            return Ok(Decision::skip(format!(
                "event {} matches none of the configured events",
                event.name
            )));
        }
        let user = event.user_id.as_deref().unwrap_or("an anonymous user");
        let mut text = format!("*{}* from {user}", event.name);
        if let Some(message) = event.prop_str("message") {
            text.push_str(&format!(": {message}"));
        }
        let mut body = json!({ "text": text });
        if let Some(channel) = config::get("channel") {
            body["channel"] = json!(channel);
        }
        Ok(Decision::fire_one(Request::post(webhook_url()).json(&body)))
    }
}

/// Config `webhook_url` (surrounding whitespace ignored, blank meaning
/// unset), passed through as is: `{{secret:...}}` placeholders in it are
/// left for the host to fill. Otherwise the Slack incoming webhook whose
/// path is the secret `SLACK_WEBHOOK_PATH`.
fn webhook_url() -> String {
    match config::get("webhook_url") {
        Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => format!(
            "https://hooks.slack.com/services/{}",
            secret("SLACK_WEBHOOK_PATH")
        ),
    }
}

wasmhook_plugin::export_plugin!(SlackNotify);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wasmhook_plugin::{Decision, Event, Method, Plugin, testing};

    use super::SlackNotify;

    fn run(event: Event) -> Decision {
        SlackNotify::transform(event).expect("slack-notify never errors")
    }

    #[test]
    fn fires_one_slack_post_for_every_event_by_default() {
        testing::clear();
        let event = Event::new("order.paid")
            .with_user("u42")
            .with_props(json!({"message": "order #7, $12"}));
        let decision = run(event);
        let [request] = decision.requests() else {
            panic!("expected one request, got {decision:?}");
        };
        assert_eq!(request.method, Method::Post);
        assert_eq!(
            request.url,
            "https://hooks.slack.com/services/{{secret:SLACK_WEBHOOK_PATH}}"
        );
        assert_eq!(
            request.header_value("content-type"),
            Some("application/json")
        );
        assert_eq!(
            request.body_json(),
            Ok(json!({"text": "*order.paid* from u42: order #7, $12"}))
        );
    }

    #[test]
    fn channel_config_and_anonymous_events() {
        testing::clear();
        testing::set_config("channel", "#ops");
        let decision = run(Event::new("deploy.done"));
        assert_eq!(
            decision.requests()[0].body_json(),
            Ok(json!({"text": "*deploy.done* from an anonymous user", "channel": "#ops"}))
        );
    }

    #[test]
    fn webhook_url_config_redirects_the_post_unchanged() {
        testing::clear();
        testing::set_config("webhook_url", "http://127.0.0.1:9000/slack");
        testing::set_config("channel", "#ops");
        let decision = run(Event::new("order.paid").with_user("u42"));
        let [request] = decision.requests() else {
            panic!("expected one request, got {decision:?}");
        };
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.url, "http://127.0.0.1:9000/slack");
        assert_eq!(
            request.body_json(),
            Ok(json!({"text": "*order.paid* from u42", "channel": "#ops"}))
        );

        // Placeholders are the host's business: passed through as written.
        testing::set_config(
            "webhook_url",
            " https://relay.test/{{secret:RELAY_PATH}}?x=1 ",
        );
        assert_eq!(
            run(Event::new("order.paid")).requests()[0].url,
            "https://relay.test/{{secret:RELAY_PATH}}?x=1"
        );
    }

    #[test]
    fn blank_webhook_url_means_slack() {
        testing::clear();
        testing::set_config("webhook_url", "  ");
        assert_eq!(
            run(Event::new("order.paid")).requests()[0].url,
            "https://hooks.slack.com/services/{{secret:SLACK_WEBHOOK_PATH}}"
        );
    }

    #[test]
    fn fires_for_events_matching_a_configured_prefix() {
        testing::clear();
        testing::set_config("events", "user.signed_up, order.");
        assert_eq!(run(Event::new("order.refunded")).requests().len(), 1);
        assert_eq!(run(Event::new("user.signed_up")).requests().len(), 1);
    }

    #[test]
    fn skips_events_matching_no_prefix_with_a_reason() {
        testing::clear();
        testing::set_config("events", "user.signed_up, order.");
        let decision = run(Event::new("level.reached"));
        assert_eq!(
            decision.skip_reason(),
            Some("event level.reached matches none of the configured events")
        );
    }
}

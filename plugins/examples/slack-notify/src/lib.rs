//! Example wasmhook plugin: posts a message to a Slack incoming webhook for
//! every event whose name starts with one of the configured prefixes.
//!
//! Config: `events` (comma-separated name prefixes; unset means every
//! event), `channel` (optional channel override, honoured only by legacy
//! incoming webhooks: app webhooks always post to the channel chosen when
//! the app was installed) and `webhook_url` (optional; where to POST instead
//! of Slack, e.g. a local `wasmhook sink` for demos and tests). By default
//! the webhook path is the secret `SLACK_WEBHOOK_PATH`, filled in by the
//! host.
//!
//! Everything taken from the event (name, user id, `message`) is escaped for
//! Slack's mrkdwn (`&`, `<`, `>` as `&amp;`, `&lt;`, `&gt;`), so an event
//! cannot ping `<!channel>` or post a disguised `<url|link>`, and capped in
//! length.

use serde_json::json;
use wasmhook_plugin::{Decision, Event, Plugin, Request, config, secret};

/// Longest user id shown, in characters after escaping.
pub const MAX_USER_CHARS: usize = 100;

/// Longest `message` shown, in characters after escaping. With the name and
/// user id the text stays under the 4,000 characters Slack recommends for
/// a message's `text`.
pub const MAX_MESSAGE_CHARS: usize = 3000;

/// Longest event name shown, in characters after escaping.
pub const MAX_NAME_CHARS: usize = 200;

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
        let name = escape_capped(&event.name, MAX_NAME_CHARS);
        let user = match event.user_id.as_deref() {
            Some(user) => escape_capped(user, MAX_USER_CHARS),
            None => "an anonymous user".to_owned(),
        };
        let mut text = format!("*{name}* from {user}");
        if let Some(message) = event.prop_str("message") {
            text.push_str(": ");
            text.push_str(&escape_capped(&message, MAX_MESSAGE_CHARS));
        }
        let mut body = json!({ "text": text });
        if let Some(channel) = config::get("channel") {
            body["channel"] = json!(channel);
        }
        Ok(Decision::fire_one(Request::post(webhook_url()).json(&body)))
    }
}

/// `text` escaped for Slack mrkdwn (`&` → `&amp;`, `<` → `&lt;`, `>` →
/// `&gt;`, as Slack's formatting reference asks for text that is not meant
/// as markup), at most `max` characters long (`max` ≥ 1). A longer result
/// is cut before an escape sequence, never inside one, and ends with `…`.
pub fn escape_capped(text: &str, max: usize) -> String {
    let escaped = |c: char| match c {
        '&' => "&amp;".to_owned(),
        '<' => "&lt;".to_owned(),
        '>' => "&gt;".to_owned(),
        other => other.to_string(),
    };
    let total: usize = text.chars().map(|c| escaped(c).chars().count()).sum();
    if total <= max {
        return text.chars().map(escaped).collect();
    }
    let budget = max.saturating_sub(1); // room for the ellipsis
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let piece = escaped(c);
        let n = piece.chars().count();
        if used + n > budget {
            break;
        }
        out.push_str(&piece);
        used += n;
    }
    out.push('…');
    out
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

    use super::{MAX_MESSAGE_CHARS, MAX_USER_CHARS, SlackNotify, escape_capped};

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
    fn user_id_and_message_cannot_inject_mentions_or_links() {
        testing::clear();
        let event = Event::new("order.paid").with_user("<!channel>").with_props(
            json!({"message": "see <https://evil.example|your invoice> & pay <@U123>"}),
        );
        let body = run(event).requests()[0].body_json().unwrap();
        assert_eq!(
            body["text"],
            "*order.paid* from &lt;!channel&gt;: see &lt;https://evil.example|your invoice&gt; \
             &amp; pay &lt;@U123&gt;"
        );
        let text = body["text"].as_str().unwrap();
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
    }

    #[test]
    fn event_names_are_escaped_too() {
        testing::clear();
        let body = run(Event::new("order.<!here>")).requests()[0]
            .body_json()
            .unwrap();
        assert_eq!(body["text"], "*order.&lt;!here&gt;* from an anonymous user");
    }

    #[test]
    fn long_user_ids_and_messages_are_capped() {
        testing::clear();
        let event = Event::new("order.paid")
            .with_user("u".repeat(500))
            .with_props(json!({"message": "m".repeat(10_000)}));
        let body = run(event).requests()[0].body_json().unwrap();
        let text = body["text"].as_str().unwrap();
        let user = format!("{}…", "u".repeat(MAX_USER_CHARS - 1));
        let message = format!("{}…", "m".repeat(MAX_MESSAGE_CHARS - 1));
        assert_eq!(text, format!("*order.paid* from {user}: {message}"));
        assert!(text.chars().count() < 4000, "{}", text.chars().count());
    }

    #[test]
    fn escaping_counts_toward_the_cap_and_never_splits_an_entity() {
        assert_eq!(escape_capped("a&b", 10), "a&amp;b");
        assert_eq!(escape_capped("", 3), "");
        assert_eq!(escape_capped("héllo", 5), "héllo");
        assert_eq!(escape_capped("héllo!", 5), "héll…");
        // "&amp;" would not fit after "a": cut before it.
        assert_eq!(escape_capped("a&&&", 6), "a…");
        assert_eq!(escape_capped("a&&&", 7), "a&amp;…");
        assert_eq!(escape_capped("<<<<", 1), "…");
        assert_eq!(escape_capped(&"<".repeat(750), 3000), "&lt;".repeat(750));
        let capped = escape_capped(&"<".repeat(1000), 100);
        assert_eq!(capped, format!("{}…", "&lt;".repeat(24)));
        assert!(capped.chars().count() <= 100);
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

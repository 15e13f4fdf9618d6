//! Unit tests of the plugin through `Plugin::transform`, with config and
//! logs from the SDK's test double.

use serde_json::{Value, json};
use wasmhook_plugin::log::Level;
use wasmhook_plugin::{Decision, Event, Method, Plugin, Request, testing};

use super::LobDirectMail;

/// The config every firing test starts from.
fn configure() {
    testing::clear();
    testing::set_config("from_address_id", "adr_210a8d4b0b76d77b");
    testing::set_config("front_template_id", "tmpl_front_a1b2");
    testing::set_config("back_template_id", "tmpl_back_c3d4");
}

fn run(event: Event) -> Decision {
    LobDirectMail::transform(event).expect("the test config is complete")
}

fn the_request(decision: &Decision) -> &Request {
    match decision.requests() {
        [request] => request,
        _ => panic!("expected one request, got {decision:?}"),
    }
}

fn cart_props() -> Value {
    json!({
        "name": "Ada Lovelace",
        "address_line1": "185 Berry St",
        "address_line2": "Suite 6100",
        "address_city": "San Francisco",
        "address_state": "CA",
        "address_zip": "94107",
        "cart_items": [{"sku": "MUG-01", "title": "Enamel mug", "quantity": 2}],
        "cart_total": "24.00",
        "coupon_code": "COMEBACK10",
    })
}

fn cart_event() -> Event {
    Event::new("cart.abandoned")
        .with_id("evt-cart-1")
        .with_user("u-42")
        .with_props(cart_props())
}

#[test]
fn an_abandoned_cart_with_an_address_mails_one_postcard() {
    configure();
    let decision = run(cart_event());
    let request = the_request(&decision);
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.url, "https://api.lob.com/v1/postcards");
    assert_eq!(
        request.headers,
        vec![
            (
                "authorization".to_owned(),
                "Basic {{secret:LOB_API_KEY_BASIC}}".to_owned()
            ),
            (
                "idempotency-key".to_owned(),
                "wasmhook-evt-cart-1".to_owned()
            ),
            ("content-type".to_owned(), "application/json".to_owned()),
        ]
    );
    assert_eq!(
        request.body_json(),
        Ok(json!({
            "description": "wasmhook cart.abandoned evt-cart-1",
            "to": {
                "name": "Ada Lovelace",
                "address_line1": "185 Berry St",
                "address_line2": "Suite 6100",
                "address_city": "San Francisco",
                "address_state": "CA",
                "address_zip": "94107",
                "address_country": "US",
            },
            "from": "adr_210a8d4b0b76d77b",
            "front": "tmpl_front_a1b2",
            "back": "tmpl_back_c3d4",
            "use_type": "marketing",
            "merge_variables": {
                "name": "Ada Lovelace",
                "cart_items": [{"sku": "MUG-01", "title": "Enamel mug", "quantity": 2}],
                "cart_total": "24.00",
                "coupon_code": "COMEBACK10",
            },
            "metadata": {"event_id": "evt-cart-1", "event_name": "cart.abandoned", "user_id": "u-42"},
        }))
    );
    assert_eq!(
        testing::logs(),
        vec![(
            Level::Info,
            "cart.abandoned: mailing a postcard to San Francisco, US".to_owned()
        )]
    );
}

#[test]
fn an_inactive_customer_is_mailed_too_without_a_user_id() {
    configure();
    let event = Event::new("customer.inactive").with_props(json!({
        "name": "Grace Hopper", "address_line1": "1 Navy Way",
        "address_city": "Arlington", "address_state": "VA", "address_zip": "22202",
        "address_country": "USA", "days_inactive": 90,
    }));
    let body = the_request(&run(event)).body_json().unwrap();
    assert_eq!(body["to"]["address_country"], "US");
    assert_eq!(body["to"].get("address_line2"), None);
    assert_eq!(
        body["merge_variables"],
        json!({"name": "Grace Hopper", "days_inactive": 90})
    );
    assert_eq!(
        body["metadata"],
        json!({"event_id": "test-event", "event_name": "customer.inactive"})
    );
}

#[test]
fn other_events_are_skipped_and_config_events_replaces_the_defaults() {
    configure();
    assert_eq!(
        run(Event::new("order.paid")).skip_reason(),
        Some("event order.paid is not handled (only cart.abandoned, customer.inactive)")
    );
    testing::set_config("events", "checkout.abandoned");
    assert_eq!(
        run(cart_event()).skip_reason(),
        Some("event cart.abandoned is not handled (only checkout.abandoned)")
    );
    let mut event = cart_event();
    event.name = "checkout.abandoned".to_owned();
    assert_eq!(run(event).requests().len(), 1);
}

#[test]
fn an_incomplete_address_is_skipped_naming_the_missing_fields() {
    configure();
    let event = Event::new("cart.abandoned")
        .with_props(json!({"name": "Ada Lovelace", "address_line1": "185 Berry St"}));
    assert_eq!(
        run(event).skip_reason(),
        Some("address incomplete: missing address_city, address_state, address_zip")
    );
    assert!(testing::logs().is_empty());
}

#[test]
fn fields_longer_than_lob_accepts_are_skipped_with_the_reason() {
    configure();
    let mut props = cart_props();
    props["name"] = json!("Augusta Ada King, Countess of Lovelace, née Byron");
    let event = Event::new("cart.abandoned").with_props(props);
    assert_eq!(
        run(event).skip_reason(),
        Some("address invalid: name is 49 characters long; Lob accepts at most 40")
    );
    let mut props = cart_props();
    props["address_line2"] = json!("x".repeat(65));
    assert_eq!(
        run(Event::new("cart.abandoned").with_props(props)).skip_reason(),
        Some("address invalid: address_line2 is 65 characters long; Lob accepts at most 64")
    );
    assert!(testing::logs().is_empty());
}

#[test]
fn countries_outside_the_configured_list_are_skipped() {
    configure();
    let mut props = cart_props();
    props["address_country"] = json!("CA");
    props["address_state"] = json!("ON");
    props["address_zip"] = json!("M5V 2T6");
    let event = Event::new("cart.abandoned").with_props(props);
    assert_eq!(
        run(event.clone()).skip_reason(),
        Some("country CA is not supported (postcards go to US only; see config `countries`)")
    );

    testing::set_config("countries", "us, ca");
    let body = the_request(&run(event)).body_json().unwrap();
    assert_eq!(body["to"]["address_country"], "CA");
    assert_eq!(body["to"]["address_zip"], "M5V 2T6");
}

#[test]
fn missing_required_config_is_a_plugin_error_naming_every_key() {
    testing::clear();
    testing::set_config("front_template_id", "tmpl_front");
    testing::set_config("back_template_id", "  ");
    assert_eq!(
        LobDirectMail::transform(cart_event()),
        Err(
            "config not set: from_address_id, back_template_id (see the plugin's README)"
                .to_owned()
        )
    );
    // Unhandled events are skipped before the config is looked at.
    assert_eq!(
        LobDirectMail::transform(Event::new("order.paid"))
            .unwrap()
            .skip_reason()
            .map(|r| r.starts_with("event order.paid is not handled")),
        Some(true)
    );
}

#[test]
fn api_base_points_the_request_at_another_receiver() {
    configure();
    testing::set_config("api_base", " http://127.0.0.1:9000/lob/ ");
    let decision = run(cart_event());
    let request = the_request(&decision);
    assert_eq!(request.url, "http://127.0.0.1:9000/lob/postcards");
    assert_eq!(
        request.header_value("authorization"),
        Some("Basic {{secret:LOB_API_KEY_BASIC}}")
    );
}

#[test]
fn merge_properties_limits_what_reaches_lob() {
    configure();
    testing::set_config("merge_properties", "coupon_code, name, not_in_event");
    let body = the_request(&run(cart_event())).body_json().unwrap();
    assert_eq!(
        body["merge_variables"],
        json!({"name": "Ada Lovelace", "coupon_code": "COMEBACK10"})
    );
}

#[test]
fn size_and_use_type_come_from_config() {
    configure();
    testing::set_config("size", "6x9");
    testing::set_config("use_type", "operational");
    let body = the_request(&run(cart_event())).body_json().unwrap();
    assert_eq!(body["size"], "6x9");
    assert_eq!(body["use_type"], "operational");
}

#[test]
fn an_event_id_too_long_for_an_idempotency_key_is_sent_without_one() {
    configure();
    let decision = run(cart_event().with_id("x".repeat(300)));
    let request = the_request(&decision);
    assert_eq!(request.header_value("idempotency-key"), None);
    let description = request.body_json().unwrap()["description"]
        .as_str()
        .unwrap()
        .chars()
        .count();
    assert_eq!(description, 255);
    assert!(
        testing::logs()
            .iter()
            .any(|(level, message)| *level == Level::Warn && message.contains("Idempotency-Key"))
    );
}

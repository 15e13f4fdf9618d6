//! Unit tests of the plugin through `Plugin::transform`, with config, kv
//! and logs from the SDK's test double.

use serde_json::json;
use wasmhook_plugin::{Decision, Event, Method, Plugin, Request, testing};

use super::*;

fn configure() {
    testing::clear();
    testing::set_config("instance", "acme");
}

fn run(event: Event) -> Decision {
    LoginToSalesforce::transform(event).expect("the test config is complete")
}

fn the_request(decision: &Decision) -> &Request {
    match decision.requests() {
        [request] => request,
        _ => panic!("expected one request, got {decision:?}"),
    }
}

fn login(id: &str, props: serde_json::Value) -> Event {
    Event::new("user.login").with_id(id).with_props(props)
}

const ALREADY_SEEN: &str = "already seen: a Lead was created at this email's first login";

#[test]
fn the_first_login_of_an_email_creates_a_lead() {
    configure();
    let decision = run(login(
        "evt-1",
        json!({"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", "company": "Analytical Engines"}),
    ));
    let request = the_request(&decision);
    assert_eq!(request.method, Method::Post);
    assert_eq!(
        request.url,
        "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead"
    );
    assert_eq!(
        request.headers,
        vec![
            (
                "authorization".to_owned(),
                "Bearer {{secret:SALESFORCE_TOKEN}}".to_owned()
            ),
            ("content-type".to_owned(), "application/json".to_owned()),
        ]
    );
    assert_eq!(
        request.body_json(),
        Ok(json!({
            "FirstName": "Ada",
            "LastName": "Lovelace",
            "Email": "ada@example.com",
            "Company": "Analytical Engines",
            "LeadSource": "Web login",
        }))
    );
    // A counter, stored as the host stores it: 8 little-endian bytes.
    assert_eq!(
        testing::kv_get("seen:ada@example.com"),
        Some(1i64.to_le_bytes().to_vec())
    );
    assert_eq!(kv::get_counter("seen:ada@example.com"), 1);
    assert_eq!(
        testing::kv_get("first-event:ada@example.com"),
        Some(b"evt-1".to_vec())
    );
    assert_eq!(testing::logs().len(), 1);
}

#[test]
fn later_logins_of_the_same_email_are_skipped_whatever_its_case() {
    configure();
    assert_eq!(
        run(login("evt-1", json!({"email": "Ada@Example.com"})))
            .requests()
            .len(),
        1
    );
    for (id, email) in [("evt-2", "ada@example.com"), ("evt-3", " ADA@EXAMPLE.COM ")] {
        assert_eq!(
            run(login(id, json!({"email": email}))).skip_reason(),
            Some(ALREADY_SEEN),
            "{email}"
        );
    }
    // Another email is new.
    assert_eq!(
        run(login("evt-4", json!({"email": "grace@example.com"})))
            .requests()
            .len(),
        1
    );
}

#[test]
fn a_rerun_of_the_first_invocation_fires_again() {
    // The host reruns an invocation whose lease it lost; its kv writes are
    // already there, but its Lead was never sent.
    configure();
    let event = login("evt-1", json!({"email": "ada@example.com"}));
    let first = run(event.clone());
    assert_eq!(run(event).requests(), first.requests());
    assert_eq!(
        run(login("evt-2", json!({"email": "ada@example.com"}))).skip_reason(),
        Some(ALREADY_SEEN)
    );
}

#[test]
fn defaults_come_from_the_email_when_the_properties_have_no_names() {
    configure();
    let decision = run(login(
        "evt-1",
        json!({"email": " Grace.Hopper@navy.example ", "company": " "}),
    ));
    assert_eq!(
        the_request(&decision).body_json(),
        Ok(json!({
            "LastName": "Grace.Hopper",
            "Email": "Grace.Hopper@navy.example",
            "Company": "[not provided]",
            "LeadSource": "Web login",
        }))
    );
    assert!(testing::kv_get("seen:grace.hopper@navy.example").is_some());
}

#[test]
fn long_names_are_cut_to_the_lead_field_lengths() {
    configure();
    let decision = run(login(
        "evt-1",
        json!({"email": "a@b.example", "first_name": "é".repeat(50), "last_name": "L".repeat(100), "company": "C".repeat(300)}),
    ));
    let lead = the_request(&decision).body_json().unwrap();
    let chars = |key: &str| lead[key].as_str().unwrap().chars().count();
    assert_eq!(
        (chars("FirstName"), chars("LastName"), chars("Company")),
        (40, 80, 255)
    );
}

#[test]
fn other_events_and_logins_without_a_valid_email_are_skipped() {
    configure();
    assert_eq!(
        run(Event::new("user.signed_up")).skip_reason(),
        Some("event user.signed_up is not handled (only user.login)")
    );
    let bad = [
        json!({}),
        json!({"email": 42}),
        json!({"email": ""}),
        json!({"email": "ada"}),
        json!({"email": "@example.com"}),
        json!({"email": "ada@localhost"}),
        json!({"email": "ada@example."}),
        json!({"email": "ada@ex@ample.com"}),
    ];
    for props in bad {
        assert_eq!(
            run(login("e", props.clone())).skip_reason(),
            Some("no valid email property"),
            "{props}"
        );
    }
    assert!(testing::logs().is_empty());
}

#[test]
fn emails_longer_than_80_characters_are_skipped_and_not_remembered() {
    configure();
    // 81 characters: 69 + "@example.com".
    let long = format!("{}@example.com", "a".repeat(69));
    assert_eq!(long.chars().count(), 81);
    assert_eq!(
        run(login("evt-1", json!({ "email": long }))).skip_reason(),
        Some("email is 81 characters long; Salesforce's Email field holds at most 80")
    );
    assert_eq!(testing::kv_get(&format!("seen:{long}")), None);
    assert!(testing::logs().is_empty());
    // Exactly 80 fits, counted in characters, not bytes, after trimming.
    let fits = format!(" {}@example.com ", "é".repeat(68));
    let decision = run(login("evt-2", json!({ "email": fits })));
    assert_eq!(
        the_request(&decision).body_json().unwrap()["Email"],
        fits.trim()
    );
}

#[test]
fn characters_no_email_can_hold_are_skipped_and_not_remembered() {
    configure();
    let cases = [
        ("a da@example.com", "' '"),
        ("ada@exa\tmple.com", "'\\t'"),
        ("ada\u{7}@example.com", "'\\u{7}'"),
        ("\"ada\"@example.com", "'\"'"),
        ("ada<script>@example.com", "'<'"),
        ("ada@[127.0.0.1]", "'['"),
        ("a,da@example.com", "','"),
        ("ada;x@example.com", "';'"),
        ("ada\\x@example.com", "'\\\\'"),
        ("ada:x@example.com", "':'"),
        ("(c)ada@example.com", "'('"),
    ];
    for (email, shown) in cases {
        assert_eq!(
            run(login("evt-1", json!({ "email": email }))).skip_reason(),
            Some(format!("email holds a character an email address cannot hold: {shown}").as_str()),
            "{email:?}"
        );
        assert_eq!(
            testing::kv_get(&format!("seen:{}", email.to_lowercase())),
            None
        );
    }
    // What an unquoted address may hold passes.
    for email in [
        "o'brien+tag@example.ie",
        "a.b-c_d!#$%&*/=?^`{|}~@example.com",
        "jürgen@bücher.example",
    ] {
        assert_eq!(
            run(login(email, json!({ "email": email })))
                .requests()
                .len(),
            1,
            "{email}"
        );
    }
}

#[test]
fn check_email_gives_the_reason() {
    assert_eq!(
        check_email(" ada@example.com "),
        Ok("ada@example.com".to_owned())
    );
    assert_eq!(
        check_email("ada"),
        Err("no valid email property".to_owned())
    );
    assert_eq!(valid_email("a b@example.com"), None);
    assert_eq!(
        valid_email("ada@example.com").as_deref(),
        Some("ada@example.com")
    );
}

#[test]
fn base_url_replaces_the_instance_url() {
    configure();
    testing::set_config("base_url", " http://127.0.0.1:9000/salesforce/ ");
    let decision = run(login("evt-1", json!({"email": "ada@example.com"})));
    assert_eq!(
        the_request(&decision).url,
        "http://127.0.0.1:9000/salesforce/services/data/v60.0/sobjects/Lead"
    );
}

#[test]
fn instance_names() {
    let cases = [
        ("acme", Ok("https://acme.my.salesforce.com")),
        (
            " acme--dev.sandbox ",
            Ok("https://acme--dev.sandbox.my.salesforce.com"),
        ),
        (
            "acme.my.salesforce.com",
            Ok("https://acme.my.salesforce.com"),
        ),
        (
            "evil.test/x?",
            Err("config `instance` is not a My Domain name: \"evil.test/x?\""),
        ),
        (
            "acme..x",
            Err("config `instance` is not a My Domain name: \"acme..x\""),
        ),
        (
            "-acme",
            Err("config `instance` is not a My Domain name: \"-acme\""),
        ),
    ];
    for (instance, expected) in cases {
        testing::clear();
        testing::set_config("instance", instance);
        assert_eq!(
            base_url(),
            expected.map(str::to_owned).map_err(str::to_owned),
            "{instance:?}"
        );
    }
}

#[test]
fn a_missing_instance_is_a_plugin_error_and_marks_nothing_seen() {
    testing::clear();
    let err = LoginToSalesforce::transform(login("evt-1", json!({"email": "ada@example.com"})))
        .unwrap_err();
    assert!(err.starts_with("config `instance` is not set"), "{err}");
    assert_eq!(testing::kv_get("seen:ada@example.com"), None);
}

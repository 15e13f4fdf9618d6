//! Every example plugin, as shipped: `wasmhook check` accepts it and
//! `wasmhook run` on each of its sample events (examples/events/) gives the
//! expected decision, method, URL, headers and body, with secrets still in
//! placeholder form. (Through `serve`, with the secrets filled in, see
//! `serve.rs`: the_local_example_config_delivers_every_sample_event.)

#[path = "support/mod.rs"]
mod support;

use std::process::Command;

use serde_json::Value;
use support::{cache_dir, plugin_path, repo_root};

fn wasmhook(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wasmhook"))
        .arg("--cache-dir")
        .arg(cache_dir())
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run wasmhook")
}

/// What one sample event must produce.
struct Case {
    plugin: &'static str,
    event: &'static str,
    config: &'static [&'static str],
    /// `None`: skip; `Some((method, url, header, header value, body needle))`
    fire: Option<(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    )>,
}

const CASES: &[Case] = &[
    Case {
        plugin: "slack-notify",
        event: "slack-notify.json",
        config: &[],
        fire: Some((
            "POST",
            "https://hooks.slack.com/services/{{secret:SLACK_WEBHOOK_PATH}}",
            "content-type",
            "application/json",
            "order #1042",
        )),
    },
    // With config `events`, slack-notify skips what matches none of the prefixes.
    Case {
        plugin: "slack-notify",
        event: "slack-notify-skip.json",
        config: &["events=order.,billing."],
        fire: None,
    },
    Case {
        plugin: "messenger-transactional",
        event: "messenger-transactional-skip.json",
        config: &[],
        fire: None,
    },
    Case {
        plugin: "messenger-transactional",
        event: "messenger-transactional.json",
        config: &[],
        fire: Some((
            "POST",
            "https://api.line.me/v2/bot/message/push",
            "authorization",
            "Bearer {{secret:LINE_CHANNEL_TOKEN}}",
            "Your order A-1042 has shipped",
        )),
    },
    // The same push carries the retry key derived from the event id
    // (evt-ship-0001), so LINE delivers it once however often it is sent.
    Case {
        plugin: "messenger-transactional",
        event: "messenger-transactional.json",
        config: &[],
        fire: Some((
            "POST",
            "https://api.line.me/v2/bot/message/push",
            "x-line-retry-key",
            "95260e6d-b8d0-5634-8721-69776256d53d",
            "\"to\":\"U4af4980629a3c1d2e5f60718293a4b5c\"",
        )),
    },
    Case {
        plugin: "game-reward",
        event: "game-reward.json",
        config: &[
            "backend_url=https://game.example.com/api",
            "firebase_project=demo",
        ],
        fire: Some((
            "POST",
            "https://game.example.com/api/players/p-42/coins",
            "authorization",
            "Bearer {{secret:GAME_API_KEY}}",
            "\"amount\":100",
        )),
    },
    Case {
        plugin: "game-reward",
        event: "game-reward-skip.json",
        config: &["backend_url=https://game.example.com/api"],
        fire: None,
    },
    Case {
        plugin: "lob-direct-mail",
        event: "lob-direct-mail.json",
        config: &[
            "from_address_id=adr_1",
            "front_template_id=tmpl_f",
            "back_template_id=tmpl_b",
        ],
        fire: Some((
            "POST",
            "https://api.lob.com/v1/postcards",
            "authorization",
            "Basic {{secret:LOB_API_KEY_BASIC}}",
            "94107",
        )),
    },
    Case {
        plugin: "lob-direct-mail",
        event: "lob-direct-mail-skip.json",
        config: &[
            "from_address_id=adr_1",
            "front_template_id=tmpl_f",
            "back_template_id=tmpl_b",
        ],
        fire: None,
    },
    Case {
        plugin: "login-to-salesforce",
        event: "login-to-salesforce.json",
        config: &["instance=acme"],
        fire: Some((
            "POST",
            "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead",
            "authorization",
            "Bearer {{secret:SALESFORCE_TOKEN}}",
            "ada@analytical-engines.example",
        )),
    },
    Case {
        plugin: "login-to-salesforce",
        event: "login-to-salesforce-skip.json",
        config: &["instance=acme"],
        fire: None,
    },
    Case {
        plugin: "crm-unsubscribe",
        event: "crm-unsubscribe.json",
        config: &[],
        // Unsubscribe from all email (Communication Preferences API v4): no body.
        fire: Some((
            "POST",
            "https://api.hubapi.com/communication-preferences/v4/statuses/jane.doe%2Bnews%40example.com/unsubscribe-all?channel=EMAIL",
            "authorization",
            "Bearer {{secret:HUBSPOT_TOKEN}}",
            "",
        )),
    },
    Case {
        plugin: "crm-unsubscribe",
        event: "crm-unsubscribe-skip.json",
        config: &[],
        fire: None,
    },
    Case {
        plugin: "airline-loyalty",
        event: "airline-loyalty.json",
        config: &["every=1"],
        fire: Some((
            "PUT",
            "https://api.airline.example.com/v1/customers/cust-1042/discounts",
            "authorization",
            "Bearer {{secret:LOYALTY_API_KEY}}",
            "\"percent\":10",
        )),
    },
    Case {
        plugin: "airline-loyalty",
        event: "airline-loyalty.json",
        config: &[],
        fire: None,
    },
    Case {
        plugin: "airline-loyalty",
        event: "airline-loyalty-skip.json",
        config: &[],
        fire: None,
    },
    Case {
        plugin: "airline-loyalty",
        event: "airline-loyalty-no-user.json",
        config: &[],
        fire: None,
    },
];

#[test]
fn every_example_plugin_passes_check() {
    let mut plugins: Vec<&str> = CASES.iter().map(|c| c.plugin).collect();
    plugins.dedup();
    for plugin in plugins {
        let out = wasmhook(&["check", &plugin_path(plugin).display().to_string()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{plugin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_sample_event_gives_the_expected_decision() {
    for case in CASES {
        let event = format!("examples/events/{}", case.event);
        let component = plugin_path(case.plugin).display().to_string();
        let mut args = vec![
            "run",
            component.as_str(),
            "--event",
            event.as_str(),
            "--timeout-ms",
            "2000",
        ];
        for c in case.config {
            args.extend(["--config", c]);
        }
        let out = wasmhook(&args);
        let what = format!("{} on {}", case.plugin, case.event);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        match case.fire {
            None => {
                assert_eq!(v["decision"], "skip", "{what}: {v}");
                assert!(
                    !v["reason"].as_str().unwrap().is_empty(),
                    "{what}: a skip needs a reason"
                );
            }
            Some((method, url, header, value, needle)) => {
                assert_eq!(v["decision"], "fire", "{what}: {v}");
                let req = &v["requests"][0];
                assert_eq!(req["method"], method, "{what}");
                assert_eq!(req["url"], url, "{what}");
                let headers = req["headers"].as_array().unwrap();
                assert!(
                    headers
                        .iter()
                        .any(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(header)
                            && h[1] == value),
                    "{what}: no {header}: {value} in {headers:?}"
                );
                assert!(
                    req["body"].as_str().unwrap().contains(needle),
                    "{what}: {}",
                    req["body"]
                );
            }
        }
    }
}

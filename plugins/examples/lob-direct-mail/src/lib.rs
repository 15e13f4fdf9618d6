//! Example wasmhook plugin: mails a postcard through Lob's Print & Mail API
//! when a shopper abandons a cart or a customer goes quiet.
//!
//! For a handled event (`cart.abandoned` and `customer.inactive` unless
//! config `events` says otherwise) whose properties hold a complete postal
//! address in a supported country, it fires one
//! `POST https://api.lob.com/v1/postcards` authenticated with HTTP basic auth
//! from the secret `LOB_API_KEY_BASIC`. Everything else is skipped with a
//! reason naming what is missing. Missing required config (the return
//! address and the two templates) is a plugin error: no event can be mailed
//! until the operator fixes it.
//!
//! Layout: this file holds the plugin and the request it builds;
//! `address.rs` reads and checks the recipient's address.

mod address;

use serde_json::{Map, Value, json};
use wasmhook_plugin::{Decision, Event, Plugin, Request, config, log};

pub use address::{ADDRESS_PROPERTIES, Address, AddressProblem};

/// Events handled when config `events` is not set.
pub const DEFAULT_EVENTS: [&str; 2] = ["cart.abandoned", "customer.inactive"];

/// Lob's API base; config `api_base` replaces it (e.g. a local sink).
pub const DEFAULT_API_BASE: &str = "https://api.lob.com/v1";

/// The secret holding base64(`<api key>:`), the credentials of HTTP basic
/// auth with the API key as user name and an empty password. The plugin
/// cannot encode a value it never sees, so the operator stores it encoded.
pub const API_KEY_SECRET: &str = "LOB_API_KEY_BASIC";

/// Countries mailed to when config `countries` is not set: Lob prints and
/// mails postcards to US addresses.
pub const DEFAULT_COUNTRIES: [&str; 1] = ["US"];

/// Lob's default use type for this plugin's mail (abandoned carts and
/// win-back cards are marketing); config `use_type` replaces it.
pub const DEFAULT_USE_TYPE: &str = "marketing";

/// Lob's limits on `description` and on the `Idempotency-Key` header.
const MAX_DESCRIPTION_CHARS: usize = 255;
const MAX_IDEMPOTENCY_KEY_BYTES: usize = 256;

/// The plugin; see the crate docs.
pub struct LobDirectMail;

impl Plugin for LobDirectMail {
    fn transform(event: Event) -> Result<Decision, String> {
        let events = handled_events();
        if !events.contains(&event.name) {
            return Ok(Decision::skip(format!(
                "event {} is not handled (only {})",
                event.name,
                events.join(", ")
            )));
        }
        let settings = Settings::from_config()?;
        let props = event.props_map();
        let address = match Address::from_props(&props, &settings.countries) {
            Ok(address) => address,
            Err(problem) => return Ok(Decision::skip(problem.to_string())),
        };
        log::info(format!(
            "{}: mailing a postcard to {}, {}",
            event.name, address.city, address.country
        ));
        Ok(Decision::fire_one(postcard_request(
            &event, &props, &address, &settings,
        )))
    }
}

/// Config `events` (comma-separated exact names), or [`DEFAULT_EVENTS`].
fn handled_events() -> Vec<String> {
    let configured = config::list("events");
    if configured.is_empty() {
        DEFAULT_EVENTS.iter().map(|e| (*e).to_owned()).collect()
    } else {
        configured
    }
}

/// The plugin's configuration, read once per event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the postcard is POSTed: `{api_base}/postcards`.
    pub url: String,
    /// Lob address id (`adr_...`) of the return address: `from`.
    pub from_address_id: String,
    /// Lob template id (`tmpl_...`, or anything Lob accepts) for `front`.
    pub front_template_id: String,
    /// Lob template id for `back`.
    pub back_template_id: String,
    /// Upper-case ISO codes of the countries mailed to.
    pub countries: Vec<String>,
    /// Lob's `use_type`: `marketing` or `operational`.
    pub use_type: String,
    /// Lob's `size` (`4x6`, `6x9`, `6x11`); Lob's default when `None`.
    pub size: Option<String>,
    /// The properties passed as merge variables; every non-address
    /// property when empty.
    pub merge_properties: Vec<String>,
}

impl Settings {
    /// The settings from config, or an error naming every required key
    /// that is not set.
    pub fn from_config() -> Result<Self, String> {
        let required = |key: &'static str| non_blank(key).ok_or(key);
        let from = required("from_address_id");
        let front = required("front_template_id");
        let back = required("back_template_id");
        let missing: Vec<&str> = [&from, &front, &back]
            .into_iter()
            .filter_map(|value| value.as_ref().err().copied())
            .collect();
        let (Ok(from), Ok(front), Ok(back)) = (from, front, back) else {
            return Err(format!(
                "config not set: {} (see the plugin's README)",
                missing.join(", ")
            ));
        };

        let mut countries: Vec<String> = config::list("countries")
            .iter()
            .map(|c| address::normalize_country(c).unwrap_or_else(|| c.to_ascii_uppercase()))
            .collect();
        if countries.is_empty() {
            countries = DEFAULT_COUNTRIES.iter().map(|c| (*c).to_owned()).collect();
        }
        let api_base = non_blank("api_base").unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        Ok(Settings {
            url: format!("{}/postcards", api_base.trim_end_matches('/')),
            from_address_id: from,
            front_template_id: front,
            back_template_id: back,
            countries,
            use_type: non_blank("use_type").unwrap_or_else(|| DEFAULT_USE_TYPE.to_owned()),
            size: non_blank("size"),
            merge_properties: config::list("merge_properties"),
        })
    }
}

/// Config `key` trimmed, `None` when unset or blank.
fn non_blank(key: &str) -> Option<String> {
    config::get(key)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The `POST /v1/postcards` request for `address`.
///
/// Headers: basic auth from [`API_KEY_SECRET`], and `Idempotency-Key`
/// derived from the event id, stable across the host's retries, so Lob
/// creates (and bills) one postcard per event even when a response is lost
/// and the request is sent again (Lob keeps keys for 24 hours).
pub fn postcard_request(
    event: &Event,
    props: &Map<String, Value>,
    address: &Address,
    settings: &Settings,
) -> Request {
    let mut metadata = json!({ "event_id": event.id, "event_name": event.name });
    if let Some(user) = &event.user_id {
        metadata["user_id"] = json!(user);
    }
    let mut body = json!({
        "description": truncate_chars(
            &format!("wasmhook {} {}", event.name, event.id),
            MAX_DESCRIPTION_CHARS,
        ),
        "to": address.to_lob(),
        "from": settings.from_address_id,
        "front": settings.front_template_id,
        "back": settings.back_template_id,
        "use_type": settings.use_type,
        "merge_variables": merge_variables(props, address, &settings.merge_properties),
        "metadata": metadata,
    });
    if let Some(size) = &settings.size {
        body["size"] = json!(size);
    }

    let mut request = Request::post(&settings.url).basic_auth_secret(API_KEY_SECRET);
    let key = format!("wasmhook-{}", event.id);
    if key.len() <= MAX_IDEMPOTENCY_KEY_BYTES {
        request = request.header("idempotency-key", key);
    } else {
        log::warn("event id too long for Lob's Idempotency-Key; sending without one");
    }
    request.json(&body)
}

/// The template's merge variables: the recipient's `name`, plus either the
/// properties listed in `only` (those present) or, when `only` is empty,
/// every property that is not part of the address.
pub fn merge_variables(props: &Map<String, Value>, address: &Address, only: &[String]) -> Value {
    let mut vars = Map::new();
    vars.insert("name".to_owned(), json!(address.name));
    for (key, value) in props {
        let wanted = if only.is_empty() {
            !ADDRESS_PROPERTIES.contains(&key.as_str())
        } else {
            only.iter().any(|k| k == key) && key != "name"
        };
        if wanted {
            vars.insert(key.clone(), value.clone());
        }
    }
    Value::Object(vars)
}

/// The first `max` characters of `s`.
fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

wasmhook_plugin::export_plugin!(LobDirectMail);

#[cfg(test)]
mod tests;

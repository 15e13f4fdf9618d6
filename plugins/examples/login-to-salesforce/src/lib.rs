//! Example wasmhook plugin, an IFTTT-style recipe: *if* a user logs in with
//! an email never seen before, *then* create a Salesforce Lead.
//!
//! For `user.login` with a valid `email` property it fires one
//! `POST https://{instance}.my.salesforce.com/services/data/v60.0/sobjects/Lead`
//! with the bearer token from the secret `SALESFORCE_TOKEN`, the first time
//! that email (case-insensitively) is seen; later logins are skipped with
//! "already seen". The plugin's `kv` store remembers the emails.
//!
//! # Remembering emails
//! `seen:{lowercased email}` is a counter bumped with the atomic
//! `kv.increment`, so of two first logins processed at the same time only
//! one gets 1 and creates the Lead. The event that got 1 also stores its id
//! under `first-event:{lowercased email}`: the host runs an invocation again
//! when it lost its lease (at-least-once), and that rerun, seeing its own
//! event id there, fires again instead of skipping a Lead that was never
//! sent.

use serde_json::json;
use wasmhook_plugin::{Decision, Event, Plugin, Request, config, kv, log};

/// The only event handled.
pub const EVENT_NAME: &str = "user.login";

/// The secret holding the OAuth access token, sent as a bearer token.
pub const TOKEN_SECRET: &str = "SALESFORCE_TOKEN";

/// The REST API path that creates a Lead.
pub const LEAD_PATH: &str = "/services/data/v60.0/sobjects/Lead";

/// `LeadSource` of every Lead created.
pub const LEAD_SOURCE: &str = "Web login";

/// `Company` when the event has none (the field is required on a Lead).
pub const NO_COMPANY: &str = "[not provided]";

/// Longest email Salesforce stores: its Email fields hold 80 characters.
/// A longer address is skipped (cutting it would make another address).
pub const MAX_EMAIL_CHARS: usize = 80;

/// Lead field lengths in Salesforce; longer values are cut, not refused.
const MAX_FIRST_NAME: usize = 40;
const MAX_LAST_NAME: usize = 80;
const MAX_COMPANY: usize = 255;

/// The plugin; see the crate docs.
pub struct LoginToSalesforce;

impl Plugin for LoginToSalesforce {
    fn transform(event: Event) -> Result<Decision, String> {
        if event.name != EVENT_NAME {
            return Ok(Decision::skip(format!(
                "event {} is not handled (only {EVENT_NAME})",
                event.name
            )));
        }
        let Some(raw) = event.prop_str("email") else {
            return Ok(Decision::skip("no valid email property"));
        };
        // Checked before anything is remembered: an email Salesforce would
        // refuse must not be marked as seen in kv.
        let email = match check_email(&raw) {
            Ok(email) => email,
            Err(reason) => return Ok(Decision::skip(reason)),
        };
        // Config first: a misconfigured plugin must not mark emails as seen.
        let url = format!("{}{LEAD_PATH}", base_url()?);
        if !first_login(&email, &event.id) {
            return Ok(Decision::skip(
                "already seen: a Lead was created at this email's first login",
            ));
        }
        log::info("first login of this email: creating a Salesforce Lead");
        Ok(Decision::fire_one(
            Request::post(url)
                .bearer_secret(TOKEN_SECRET)
                .json(&lead(&event, &email)),
        ))
    }
}

/// `email` trimmed, when it looks like an address: one `@` with something
/// on both sides, a dot in the domain and no whitespace. Salesforce does
/// the real validation; this only keeps junk out of the `kv` store. See
/// [`check_email`] for the full check with reasons.
pub fn valid_email(email: &str) -> Option<String> {
    check_email(email).ok()
}

/// `email` trimmed, or the skip reason: not shaped like an address (one
/// `@` with something on both sides, a dot in the domain), longer than
/// Salesforce's Email field ([`MAX_EMAIL_CHARS`] characters), or holding a
/// character no unquoted address can hold (whitespace, control characters,
/// `"(),:;<>[\]`). Non-ASCII letters are allowed: Salesforce stores them
/// when the org has Email Address Internationalization turned on.
pub fn check_email(email: &str) -> Result<String, String> {
    const INVALID: &str = "no valid email property";
    let email = email.trim();
    if let Some(c) = email
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "\"(),:;<>[\\]".contains(*c))
    {
        return Err(format!(
            "email holds a character an email address cannot hold: {c:?}"
        ));
    }
    let chars = email.chars().count();
    if chars > MAX_EMAIL_CHARS {
        return Err(format!(
            "email is {chars} characters long; Salesforce's Email field holds at most {MAX_EMAIL_CHARS}"
        ));
    }
    let (local, domain) = email.split_once('@').ok_or(INVALID)?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@');
    if ok {
        Ok(email.to_owned())
    } else {
        Err(INVALID.to_owned())
    }
}

/// Whether this event is the first login of `email`, recording it if so
/// (see the crate docs for the keys).
pub fn first_login(email: &str, event_id: &str) -> bool {
    let email = email.to_lowercase();
    let owner_key = format!("first-event:{email}");
    if kv::increment(&format!("seen:{email}"), 1) == 1 {
        kv::set(&owner_key, event_id);
        return true;
    }
    // A rerun of the invocation that claimed the email fires again.
    kv::get(&owner_key).as_deref() == Some(event_id.as_bytes())
}

/// Config `base_url` (for a local sink or a proxy), else
/// `https://{instance}.my.salesforce.com` from config `instance`.
pub fn base_url() -> Result<String, String> {
    if let Some(base) = config::get("base_url").filter(|b| !b.trim().is_empty()) {
        return Ok(base.trim().trim_end_matches('/').to_owned());
    }
    let Some(raw) = config::get("instance").filter(|i| !i.trim().is_empty()) else {
        return Err(
            "config `instance` is not set: your My Domain name, e.g. `acme` for \
             https://acme.my.salesforce.com (or set `base_url`)"
                .to_owned(),
        );
    };
    let instance = raw.trim();
    let instance = instance
        .strip_suffix(".my.salesforce.com")
        .unwrap_or(instance);
    let valid = !instance.is_empty()
        && instance
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !instance.starts_with(['.', '-'])
        && !instance.ends_with(['.', '-'])
        && !instance.contains("..");
    if !valid {
        return Err(format!(
            "config `instance` is not a My Domain name: {raw:?}"
        ));
    }
    Ok(format!("https://{instance}.my.salesforce.com"))
}

/// The Lead's fields: names and company from the properties when given,
/// otherwise the email's local part as `LastName` and [`NO_COMPANY`].
pub fn lead(event: &Event, email: &str) -> serde_json::Value {
    let prop = |key: &str| {
        event
            .prop_str(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let local_part = email.split('@').next().unwrap_or(email);
    let last_name = prop("last_name").unwrap_or_else(|| local_part.to_owned());
    let company = prop("company").unwrap_or_else(|| NO_COMPANY.to_owned());
    let mut lead = json!({
        "LastName": truncate_chars(&last_name, MAX_LAST_NAME),
        "Email": email,
        "Company": truncate_chars(&company, MAX_COMPANY),
        "LeadSource": LEAD_SOURCE,
    });
    if let Some(first_name) = prop("first_name") {
        lead["FirstName"] = json!(truncate_chars(&first_name, MAX_FIRST_NAME));
    }
    lead
}

/// The first `max` characters of `s`.
fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

wasmhook_plugin::export_plugin!(LoginToSalesforce);

#[cfg(test)]
mod tests;

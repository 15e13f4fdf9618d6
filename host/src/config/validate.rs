//! Resolution and semantic checks run after deserialisation: relative paths
//! against the config file's directory, secret values from the environment,
//! then every rule a type cannot express (ranges, names, files that must
//! exist, egress patterns). Each failure is an [`Issue`] naming the key.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::path::Path;

use super::destinations::check_rate;
use super::env::EnvLookup;
use super::error::{Issue, KeyPath};
use super::plugin::{DeliveryConfig, PluginConfig};
use super::types::{AuthConfig, Config};
use crate::model::Secret;

/// Largest `runtime.cache_max_mb`: 1 TiB.
const MAX_CACHE_MB: u64 = 1 << 20;

/// Largest `plugins[].max_event_age_s`: a year.
const MAX_EVENT_AGE_S: u64 = 365 * 24 * 3600;

/// Resolve and check `config` in place; the first problem found wins.
pub(crate) fn finish(
    config: &mut Config,
    base_dir: &Path,
    env: EnvLookup<'_>,
) -> Result<(), Issue> {
    let root = KeyPath::root();
    if config.store.path.as_os_str().is_empty() {
        return Err(Issue::at(
            root.key("store").key("path"),
            "must not be empty",
        ));
    }
    resolve_paths(config, base_dir);
    check_server(config, &root.key("server"))?;
    check_auth(&mut config.auth, &root.key("auth"))?;
    if let Some(mb) = config.runtime.cache_max_mb {
        in_range(
            mb,
            1..=MAX_CACHE_MB,
            &root.key("runtime").key("cache_max_mb"),
        )?;
    }
    super::dns::check(&mut config.dns, &root.key("dns"))?;
    super::proxy::check(&mut config.egress, &root.key("egress"))?;
    super::breakers::check(&config.breakers, &root.key("breakers"))?;
    super::destinations::check(&config.destinations, &root.key("destinations"))?;
    let plugins = root.key("plugins");
    let mut names = BTreeSet::new();
    for (i, plugin) in config.plugins.iter_mut().enumerate() {
        let path = plugins.index(i);
        if !names.insert(plugin.name.clone()) {
            return Err(Issue::at(
                path.key("name"),
                format!(
                    "duplicate plugin name {:?}; names must be unique",
                    plugin.name
                ),
            ));
        }
        check_plugin(plugin, config.runtime.fuel, &path)?;
        super::secrets::resolve(plugin, &path, env)?;
        super::egress::check(plugin, &path)?;
    }
    Ok(())
}

fn resolve_paths(config: &mut Config, base: &Path) {
    config.store.path = base.join(&config.store.path);
    for file in [
        &mut config.server.tls_cert_file,
        &mut config.server.tls_key_file,
        &mut config.server.tls_client_ca_file,
    ]
    .into_iter()
    .flatten()
    {
        *file = base.join(&*file);
    }
    if let Some(dir) = &mut config.runtime.cache_dir {
        *dir = base.join(&*dir);
    }
    for plugin in &mut config.plugins {
        plugin.component = base.join(&plugin.component);
        if let Some(dir) = &mut plugin.assets {
            *dir = base.join(&*dir);
        }
        for file in plugin.secrets.values_mut().filter_map(|s| s.file.as_mut()) {
            *file = base.join(&*file);
        }
        for oauth in plugin
            .secrets
            .values_mut()
            .filter_map(|s| s.oauth2.as_mut())
        {
            for file in [
                &mut oauth.service_account_file,
                &mut oauth.private_key_file,
                &mut oauth.certificate_file,
            ]
            .into_iter()
            .flatten()
            {
                *file = base.join(&*file);
            }
        }
        let delivery = &mut plugin.delivery;
        for file in [
            &mut delivery.ca_file,
            &mut delivery.client_cert_file,
            &mut delivery.client_key_file,
        ]
        .into_iter()
        .flatten()
        {
            *file = base.join(&*file);
        }
    }
}

fn check_server(config: &Config, path: &KeyPath) -> Result<(), Issue> {
    let server = &config.server;
    at_least(server.max_body_bytes as u64, 1, &path.key("max_body_bytes"))?;
    at_least(
        server.max_batch_events as u64,
        1,
        &path.key("max_batch_events"),
    )?;
    at_least(
        server.max_connections as u64,
        1,
        &path.key("max_connections"),
    )?;
    if let Some(rate) = server.ingest_events_per_second
        && !(rate.is_finite() && (0.01..=1e7).contains(&rate))
    {
        return Err(Issue::at(
            path.key("ingest_events_per_second"),
            format!("must be a number of events from 0.01 to 10000000, got {rate}"),
        ));
    }
    super::tls_files::check_server(server, path)
}

/// The tokens of a list, one per line of each entry (a token file may hold
/// several, so a rotation can add the new token before the old one goes),
/// each with the index of the entry it came from. Blank lines are skipped.
fn token_lines(tokens: &[Secret]) -> Vec<(usize, Secret)> {
    tokens
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            // Trimmed: a client cannot present a token's surrounding
            // spaces (HTTP trims header values), so a line kept with them
            // could never match.
            t.expose()
                .split('\n')
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(move |line| (i, Secret::new(line)))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn check_auth(auth: &mut AuthConfig, path: &KeyPath) -> Result<(), Issue> {
    let (ingest, admin) = (&auth.ingest_tokens, &auth.admin_tokens);
    if auth.insecure_no_auth {
        if !ingest.is_empty() || !admin.is_empty() || !auth.read_tokens.is_empty() {
            return Err(Issue::at(
                path.key("insecure_no_auth"),
                "is set but tokens are configured too; remove the tokens or insecure_no_auth",
            ));
        }
        return Ok(());
    }
    if ingest.is_empty() && admin.is_empty() {
        return Err(Issue::at(
            path.clone(),
            "no tokens configured; set auth.ingest_tokens and auth.admin_tokens, \
             or insecure_no_auth = true for local testing",
        ));
    }
    for (key, tokens, what) in [
        ("ingest_tokens", ingest, "POST /v1/events"),
        ("admin_tokens", admin, "the management API"),
    ] {
        if tokens.is_empty() {
            return Err(Issue::at(
                path.key(key),
                format!("is empty, so nobody could call {what}; add a token"),
            ));
        }
    }
    for (key, tokens) in [
        ("ingest_tokens", ingest),
        ("admin_tokens", admin),
        ("read_tokens", &auth.read_tokens),
    ] {
        let lines = token_lines(tokens);
        if let Some(i) = (0..tokens.len()).find(|i| !lines.iter().any(|(j, _)| j == i)) {
            return Err(Issue::at(path.key(key).index(i), "token is empty"));
        }
    }
    let read = token_lines(&auth.read_tokens);
    let (ingest, admin) = (token_lines(ingest), token_lines(admin));
    for (i, token) in &read {
        let clash = if ingest.iter().any(|(_, u)| u == token) {
            Some(
                "an ingest token; use distinct tokens so ingest clients cannot read the delivery log",
            )
        } else if admin.iter().any(|(_, u)| u == token) {
            Some("an admin token; an admin token reads already, so list it once")
        } else {
            None
        };
        if let Some(what) = clash {
            return Err(Issue::at(
                path.key("read_tokens").index(*i),
                format!("this token is also {what}"),
            ));
        }
    }
    if let Some((i, _)) = admin
        .iter()
        .find(|(_, t)| ingest.iter().any(|(_, u)| u == t))
    {
        return Err(Issue::at(
            path.key("admin_tokens").index(*i),
            "this token is also an ingest token; use distinct tokens so ingest clients \
             cannot call the management API",
        ));
    }
    auth.ingest_tokens = ingest.into_iter().map(|(_, t)| t).collect();
    auth.admin_tokens = admin.into_iter().map(|(_, t)| t).collect();
    auth.read_tokens = read.into_iter().map(|(_, t)| t).collect();
    Ok(())
}

fn check_plugin(plugin: &PluginConfig, engine_fuel: bool, path: &KeyPath) -> Result<(), Issue> {
    if !is_plugin_name(&plugin.name) {
        return Err(Issue::at(
            path.key("name"),
            format!(
                "{:?} is not a valid plugin name; use 1 to 64 of a-z, 0-9, _ and -, \
                 starting with a letter or digit",
                plugin.name
            ),
        ));
    }
    if !plugin.component.is_file() {
        return Err(Issue::at(
            path.key("component"),
            format!("component file {} not found", plugin.component.display()),
        ));
    }
    if let Some(dir) = plugin.assets.as_ref().filter(|d| !d.is_dir()) {
        return Err(Issue::at(
            path.key("assets"),
            format!("assets directory {} not found", dir.display()),
        ));
    }
    if plugin.events.is_empty() {
        return Err(Issue::at(
            path.key("events"),
            "is empty; list the event names (or patterns; \"*\" = all) to subscribe to",
        ));
    }
    if let Some(i) = plugin.events.iter().position(String::is_empty) {
        return Err(Issue::at(
            path.key("events").index(i),
            "empty event pattern",
        ));
    }
    in_range(plugin.timeout_ms, 1..=60_000, &path.key("timeout_ms"))?;
    in_range(plugin.memory_mb, 1..=4096, &path.key("memory_mb"))?;
    in_range(plugin.kv_max_mb, 1..=1 << 20, &path.key("kv_max_mb"))?;
    if let Some(fuel) = plugin.fuel {
        at_least(fuel, 1, &path.key("fuel"))?;
        if !engine_fuel {
            return Err(Issue::at(
                path.key("fuel"),
                "fuel metering is off; set fuel = true in [runtime] to use fuel limits",
            ));
        }
    }
    at_least(plugin.max_requests as u64, 1, &path.key("max_requests"))?;
    in_range(
        u64::from(plugin.follow_redirects),
        0..=20,
        &path.key("follow_redirects"),
    )?;
    if let Some(age) = plugin.max_event_age_s {
        in_range(age, 1..=MAX_EVENT_AGE_S, &path.key("max_event_age_s"))?;
    }
    check_delivery(&plugin.delivery, &path.key("delivery"))?;
    super::tls_files::check_delivery(&plugin.delivery, &path.key("delivery"))
}

/// The longest retry delay: 30 days, past any `retention_s` worth having
/// (a delivery waiting longer keeps its event from being pruned).
const MAX_RETRY_DELAY_S: u64 = 30 * 24 * 3600;

fn check_delivery(delivery: &DeliveryConfig, path: &KeyPath) -> Result<(), Issue> {
    in_range(delivery.timeout_s, 1..=3600, &path.key("timeout_s"))?;
    in_range(
        delivery.response_body_limit_bytes as u64,
        0..=16 << 20,
        &path.key("response_body_limit_bytes"),
    )?;
    let schedule = path.key("retry_schedule_s");
    if delivery.retry_schedule_s.is_empty() {
        return Err(Issue::at(schedule, "must list at least one retry delay"));
    }
    if let Some(i) = delivery.retry_schedule_s.iter().position(|&s| s == 0) {
        return Err(Issue::at(
            schedule.index(i),
            "retry delays must be at least 1 second",
        ));
    }
    for (i, &delay) in delivery.retry_schedule_s.iter().enumerate() {
        in_range(delay, 1..=MAX_RETRY_DELAY_S, &schedule.index(i))?;
    }
    if let Some(secret) = &delivery.signing_secret {
        check_signing_secret(secret).map_err(|m| Issue::at(path.key("signing_secret"), m))?;
    }
    let previous = path.key("previous_signing_secrets");
    if !delivery.previous_signing_secrets.is_empty() && delivery.signing_secret.is_none() {
        return Err(Issue::at(
            previous,
            "needs signing_secret: the previous secrets sign next to the current one",
        ));
    }
    for (i, secret) in delivery.previous_signing_secrets.iter().enumerate() {
        check_signing_secret(secret).map_err(|m| Issue::at(previous.index(i), m))?;
    }
    at_least(
        delivery.max_in_flight_per_host as u64,
        1,
        &path.key("max_in_flight_per_host"),
    )?;
    match delivery.max_per_second_per_host {
        Some(rate) => check_rate(rate, &path.key("max_per_second_per_host")),
        None => Ok(()),
    }
}

/// Standard Webhooks secrets are `whsec_` followed by 24 to 64 base64
/// key bytes: checked here by the rule the signer applies, so that a bad
/// one is named with its file, line and key.
fn check_signing_secret(secret: &Secret) -> Result<(), String> {
    if !secret.expose().starts_with("whsec_") {
        return Err("must start with \"whsec_\" followed by the base64-encoded key".into());
    }
    crate::delivery::SigningKey::from_whsec(secret.expose())
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `[a-z0-9][a-z0-9_-]*`, at most 64 characters.
/// Whether `name` may name a plugin (and so a `kv` namespace).
pub fn is_plugin_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn in_range(value: u64, range: RangeInclusive<u64>, path: &KeyPath) -> Result<(), Issue> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(Issue::at(
        path.clone(),
        format!(
            "{value} is out of range; expected {} to {}",
            range.start(),
            range.end()
        ),
    ))
}

fn at_least(value: u64, min: u64, path: &KeyPath) -> Result<(), Issue> {
    in_range(value, min..=u64::MAX, path).map_err(|_| {
        Issue::at(
            path.clone(),
            format!("{value} is too small; expected at least {min}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_are_lowercase_slugs() {
        let long = "a".repeat(65);
        let cases = [
            ("crm-unsubscribe", true),
            ("a", true),
            ("0day_2", true),
            ("", false),
            ("-a", false),
            ("_a", false),
            ("Crm", false),
            ("a.b", false),
            ("a b", false),
            (&long[..64], true),
            (&long[..], false),
        ];
        for (name, want) in cases {
            assert_eq!(is_plugin_name(name), want, "{name:?}");
        }
    }

    #[test]
    fn signing_secrets_are_whsec_and_base64() {
        let cases = [
            ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", true),
            // 6 bytes: too short for the signer.
            ("whsec_c2VjcmV0", false),
            ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", false),
            ("whsec_", false),
            ("whsec_not base64!", false),
        ];
        for (secret, ok) in cases {
            assert_eq!(
                check_signing_secret(&Secret::new(secret)).is_ok(),
                ok,
                "{secret}"
            );
        }
    }
}

//! Configuration: the `wasmhook.toml` format (issue 3's contract), loaded
//! into plain structs with defaults.
//!
//! Loading is a pipeline: parse the TOML into a spanned tree, expand
//! `${VAR}` and `${file:PATH}` in string values, deserialise
//! (`deny_unknown_fields` everywhere), resolve relative paths against the
//! file's directory, read secrets from the environment or files, then
//! validate. Every failure is one
//! [`ConfigError`] naming the file, line, column and key, and never showing
//! a secret value.
//!
//! This module must not know runtime, policy or delivery internals: it
//! produces plain data (and only borrows `policy`'s parsers to check
//! egress entries early); the wiring code turns it into engine settings.
//!
//! # Layout
//! - `types.rs`: [`Config`] and the `[server]`, `[auth]`, `[store]`,
//!   `[runtime]` sections; `plugin.rs`: [`PluginConfig`] and its
//!   `[plugins.secrets]` and `[plugins.delivery]` tables; `dns.rs`:
//!   [`DnsConfig`] (`[dns] static` name pinning) and its checks;
//!   `breakers.rs`: [`BreakersConfig`] (`[breakers]` tuning) and its checks;
//!   `destinations.rs`: [`DestinationConfig`] (`[[destinations]]`, limits
//!   shared by all plugins) and its checks.
//! - `env.rs`: `${VAR}` and `${file:PATH}` expansion; `de.rs`: serde
//!   helpers.
//! - `validate.rs`, `egress.rs`: checks after deserialisation;
//!   `secrets.rs`: secret values read from the environment or files;
//!   `tls_files.rs`: the certificate and key files of the listener and of
//!   deliveries.
//! - `locate.rs`: spans ↔ line:column ↔ key paths; `error.rs`: the error.
//! - `glob.rs`: event-name patterns.

mod breakers;
mod de;
mod destinations;
mod dns;
mod egress;
mod env;
mod error;
mod glob;
mod locate;
mod oauth2;
mod plugin;
mod proxy;
mod secrets;
mod tls_files;
mod types;
mod validate;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::DeTable;

pub use breakers::{
    BreakerTable, BreakerTuning, BreakersConfig, DESTINATION_DEFAULTS, PLUGIN_DEFAULTS,
};
pub use destinations::DestinationConfig;
pub use dns::{ConfigIp, DnsConfig};
pub use env::EnvLookup;
pub use error::ConfigError;
pub use glob::matches as event_pattern_matches;
pub use plugin::{
    AssertionKey, ClientAuth, DeliveryConfig, OAuth2Config, OAuth2Grant, PluginConfig,
    SecretConfig, SigningAlg,
};
pub use proxy::{Bypass, EgressConfig, ProxyConfig};
pub use types::{AuthConfig, Config, RuntimeSection, ServerConfig, StoreBackend, StoreConfig};
pub use validate::is_plugin_name;

use error::Issue;

impl Config {
    /// Load and validate the config file at `path`, reading `${VAR}`s and
    /// secrets from the process environment. Relative paths in the file are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_owned(),
            cause,
        })?;
        let base_dir = path.parent().unwrap_or(Path::new(""));
        Config::parse(&text, path, base_dir, &|name| std::env::var(name).ok())
    }

    /// Parse and validate config `text`. `path_for_messages` is the file
    /// name errors show; relative paths are resolved against `base_dir`
    /// (which is also where component files are checked to exist); `env`
    /// looks up environment variables (injectable for tests).
    pub fn parse(
        text: &str,
        path_for_messages: &Path,
        base_dir: &Path,
        env: EnvLookup<'_>,
    ) -> Result<Config, ConfigError> {
        // Values read from the environment may be tokens or secrets, and a
        // message about a value they were written into would quote them:
        // messages show such text as the `${NAME}` it came from.
        let read: RefCell<Vec<(String, String)>> = RefCell::default();
        let recording = |name: &str| {
            let value = env(name);
            if let Some(v) = &value {
                read.borrow_mut().push((name.to_owned(), v.clone()));
            }
            value
        };
        let env: EnvLookup<'_> = &recording;
        // `${file:PATH}`: read relative to the config's directory, shown in
        // messages as the `${file:PATH}` it came from, and watched.
        let watched: RefCell<Vec<PathBuf>> = RefCell::default();
        let reading = |file: &str| {
            let path = base_dir.join(file);
            watched.borrow_mut().push(path.clone());
            let value = secrets::read_file(&path)?;
            read.borrow_mut()
                .push((format!("file:{file}"), value.clone()));
            Ok(value)
        };
        let sources = env::Sources {
            env,
            files: &reading,
        };
        let located = |issue: Issue, root: &DeTable<'_>| {
            let span = issue.span.or_else(|| locate::span_of(root, &issue.path));
            let (line, column) = span.map_or((1, 1), |s| locate::line_col(text, s.start));
            ConfigError::Invalid {
                file: path_for_messages.to_owned(),
                line,
                column,
                key: issue.path.to_string(),
                message: env::redact(&issue.message, &read.borrow()),
            }
        };

        let mut root = DeTable::parse(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| locate::line_col(text, s.start));
            ConfigError::Invalid {
                file: path_for_messages.to_owned(),
                line,
                column,
                key: String::new(),
                message: e.message().trim_end().to_owned(),
            }
        })?;
        env::expand_table(root.get_mut(), sources)
            .map_err(|issue| located(issue, root.get_ref()))?;

        let tree = root.get_ref().clone();
        let mut config = Config::deserialize(toml::de::Deserializer::from(root)).map_err(|e| {
            let issue = Issue {
                path: e
                    .span()
                    .map(|s| locate::path_at(&tree, &s))
                    .unwrap_or_default(),
                span: e.span(),
                message: e.message().trim_end().to_owned(),
            };
            located(issue, &tree)
        })?;
        validate::finish(&mut config, base_dir, env).map_err(|issue| located(issue, &tree))?;
        config.watched_files = watched.into_inner();
        Ok(config)
    }
}

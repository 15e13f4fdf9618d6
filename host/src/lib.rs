//! wasmhook: an event-driven webhook host whose plugins are WebAssembly
//! components.
//!
//! Data flows one way: `ingest → store → worker (runtime → policy →
//! delivery) → store`.
//!
//! # Layout
//! - [`model`]: domain types (`Event`, `OutboundRequest`, `Decision`, `Secret`).
//! - [`config`]: the TOML configuration, with errors naming file, line and key.
//! - [`ingest`]: wire formats (native JSON, CloudEvents) into events.
//! - [`server`]: the HTTP edge: routes, auth, body limits, status codes.
//! - [`api`]: management endpoints as functions over [`app::App`].
//! - [`store`]: the durable queues, delivery log and kv (SQLite).
//! - [`worker`]: the invocation and delivery loops.
//! - [`retention`]: deletes finished events past `[store] retention_s`.
//! - [`runtime`]: wasmtime, the plugin sandbox, and output validation.
//! - [`policy`]: the egress policy (allowlist, private networks, secrets).
//! - [`delivery`]: the outbound HTTP client, signing, retries, limits.
//! - [`breaker`]: the keyed circuit breaker (unhealthy hosts, failing
//!   plugins); [`plugin_health`]: a plugin's run history for scheduling;
//!   [`plugin_hold`]: an operator's pause of a plugin.
//! - [`registry`]: the loaded plugin set, rebuilt on reload;
//!   [`shared_limits`]: limits shared by all plugins per destination.
//! - [`metrics`]: Prometheus counters; [`logging`]: text or JSON log lines;
//!   [`pem`]: certificate and key files.
//! - [`authoring`]: `wasmhook new` and `wasmhook build`.
//! - [`serve`], [`sink`], [`backup`], [`cli`]: the `wasmhook` commands;
//!   [`kv_file`]: the kv store `wasmhook run --kv` keeps in a file.

pub mod api;
pub mod app;
pub mod authoring;
pub mod backup;
pub mod breaker;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod ingest;
pub mod kv_file;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod pem;
pub mod plugin_health;
pub mod plugin_hold;
pub mod policy;
pub mod registry;
pub mod retention;
pub mod runtime;
pub mod serve;
pub mod server;
pub mod shared_limits;
pub mod sink;
pub mod store;
pub mod tokens;
pub mod worker;

//! Write wasmhook plugins in Rust.
//!
//! A plugin implements [`Plugin`] and exports itself with
//! [`export_plugin!`]; built for `wasm32-wasip2` as a `cdylib`, it is a
//! component of the `wasmhook:plugin/transformer` world. The plugin never
//! sends anything itself: it returns a [`Decision`], either a skip with a
//! reason or a list of [`Request`]s that the host checks, fills secrets
//! into, sends and retries.
//!
//! ```
//! use wasmhook_plugin::{config, Decision, Event, Plugin, Request};
//!
//! struct Welcome;
//!
//! impl Plugin for Welcome {
//!     fn transform(event: Event) -> Result<Decision, String> {
//!         if event.name != "user.signed_up" {
//!             return Ok(Decision::skip("not a signup"));
//!         }
//!         let Some(email) = event.prop_str("email") else {
//!             return Ok(Decision::skip("no email"));
//!         };
//!         let list = config::get_or("list", "default");
//!         Ok(Decision::fire_one(
//!             Request::post(format!("https://api.example.com/lists/{list}/members"))
//!                 .bearer_secret("API_TOKEN")
//!                 .json(&serde_json::json!({ "email": email })),
//!         ))
//!     }
//! }
//!
//! wasmhook_plugin::export_plugin!(Welcome);
//! # fn main() {}
//! ```
//!
//! # Layout
//! - `bindings`: the generated code (hidden from the docs).
//! - [`Event`] helpers (`event`), the [`Request`] builder (`request`) and
//!   [`Decision`] constructors (`decision`) as inherent methods on the
//!   generated types.
//! - [`validate`], [`validate_decision`]: the host's checks on what a
//!   plugin returns (`check`), so that a unit test fails where the host
//!   would refuse; [`testing::run`] applies them to a plugin's result.
//! - [`log`], [`config`], [`kv`]: the host's imports. On `wasm32` they call
//!   the host; on every other target they use the thread-local double in
//!   [`testing`], so plugin logic is unit-tested with plain `cargo test`.

#[doc(hidden)]
pub mod bindings;
mod check;
pub mod config;
mod decision;
mod event;
pub mod kv;
pub mod log;
mod request;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use bindings::wasmhook::plugin::types::{Decision, Event, Method, Request};
pub use check::{
    FORBIDDEN_HEADERS, MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_HEADERS, MAX_REASON_BYTES,
    MAX_REQUESTS, MAX_URL_BYTES, Rejection, check_placeholders, event_holds_placeholder,
    is_secret_name, request_holds_placeholder, validate, validate_decision, validate_url,
};
pub use request::secret;

/// The one thing a plugin implements: what to do with an event.
///
/// The host calls [`Plugin::transform`] once per event the plugin is
/// subscribed to. Return `Ok(Decision::skip(..))` to do nothing,
/// `Ok(Decision::fire(..))` to have requests sent, or `Err(message)` when
/// the plugin cannot handle the event (recorded as a plugin error).
pub trait Plugin {
    /// Decide what to do with one event.
    fn transform(event: Event) -> Result<Decision, String>;
}

/// Export a [`Plugin`] implementation as the component's `transform`.
///
/// Invoke it once, at the top level of the plugin crate, with the type that
/// implements [`Plugin`] (a plain type name in scope, not a path):
/// `wasmhook_plugin::export_plugin!(MyPlugin);`.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ident) => {
        const _: () = {
            impl $crate::bindings::Guest for $ty {
                fn transform(
                    event: $crate::Event,
                ) -> ::core::result::Result<$crate::Decision, ::std::string::String> {
                    <$ty as $crate::Plugin>::transform(event)
                }
            }
        };
        $crate::bindings::export!($ty with_types_in $crate::bindings);
    };
}

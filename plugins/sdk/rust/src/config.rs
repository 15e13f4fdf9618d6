//! The plugin's own settings from the operator's configuration
//! (`[plugins.config]`). Secrets are never readable here: use
//! [`crate::secret`] placeholders in requests instead.
//!
//! On native targets values come from the [`crate::testing`] double.

use std::str::FromStr;

/// The value of setting `key`, or `None` when it is not set.
pub fn get(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::wasmhook::plugin::config::get(key);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::config_value(key);
}

/// The value of setting `key`, or `default` when it is not set.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_owned())
}

/// Setting `key` parsed as `T` (surrounding whitespace ignored), `default`
/// when it is not set, or an error naming the key when it does not parse.
pub fn parse_or<T: FromStr>(key: &str, default: T) -> Result<T, String> {
    match get(key) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| format!("config `{key}` has an invalid value: {raw:?}")),
    }
}

/// Setting `key` split on commas, each item trimmed, empty items dropped;
/// empty when the setting is not set.
pub fn list(key: &str) -> Vec<String> {
    get(key)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn get_reads_the_double_and_defaults() {
        testing::clear();
        testing::set_config("url", "https://x.test/");
        assert_eq!(get("url").as_deref(), Some("https://x.test/"));
        assert_eq!(get("missing"), None);
        assert_eq!(get_or("missing", "d"), "d");
        assert_eq!(get_or("url", "d"), "https://x.test/");
    }

    #[test]
    fn parse_or_parses_defaults_and_explains() {
        testing::clear();
        testing::set_config("count", " 12 ");
        testing::set_config("bad", "twelve");
        assert_eq!(parse_or("count", 1u64), Ok(12));
        assert_eq!(parse_or("missing", 1u64), Ok(1));
        let err = parse_or("bad", 1u64).unwrap_err();
        assert!(err.contains("`bad`") && err.contains("twelve"), "{err}");
    }

    #[test]
    fn list_splits_on_commas() {
        testing::clear();
        testing::set_config("events", " user., ,order.paid ,");
        assert_eq!(list("events"), ["user.", "order.paid"]);
        assert!(list("missing").is_empty());
    }
}

//! `DELETE /v1/plugins/{name}/kv[?prefix=…]`: an operator clears a
//! plugin's `kv` entries, all of them or those whose key starts with
//! `prefix`: to free a namespace that reached its quota (`kv_max_mb`), or
//! to forget what a plugin remembered ("seen before" flags) after its
//! logic changed. The plugin keeps running; the entries go in batches, so
//! the store's writer is never held long.

use serde_json::{Value, json};

use super::ApiError;
use crate::app::App;

/// Entries deleted per write.
const BATCH: usize = 1000;

/// Longest `prefix` (the longest key a plugin can write).
const MAX_PREFIX_BYTES: usize = 1024;

/// Clear `name`'s entries; answers how many were deleted. A plugin no
/// longer configured may still be cleared (its entries stay until then).
pub async fn clear_kv(app: &App, name: &str, query: Option<&str>) -> Result<Value, ApiError> {
    if !crate::config::is_plugin_name(name) {
        return Err(ApiError::NotFound(format!("no plugin named {name:?}")));
    }
    let prefix = parse_prefix(query)?;
    let mut deleted = 0;
    loop {
        let n = app.store.clear_kv(name, &prefix, BATCH).await?;
        deleted += n;
        if n < BATCH as u64 {
            break;
        }
    }
    tracing::info!(plugin = %name, %prefix, deleted, "kv entries cleared by an operator");
    Ok(json!({"plugin": name, "prefix": prefix, "deleted": deleted}))
}

fn parse_prefix(query: Option<&str>) -> Result<String, ApiError> {
    let mut prefix = String::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "prefix" if v.len() <= MAX_PREFIX_BYTES => prefix = v.into_owned(),
            "prefix" => {
                return Err(ApiError::BadRequest(format!(
                    "prefix must be at most {MAX_PREFIX_BYTES} bytes"
                )));
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?} (expected prefix)"
                )));
            }
        }
    }
    Ok(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_optional_and_checked() {
        assert_eq!(parse_prefix(None).unwrap(), "");
        assert_eq!(parse_prefix(Some("prefix=seen%3A")).unwrap(), "seen:");
        assert!(
            parse_prefix(Some("key=a"))
                .unwrap_err()
                .to_string()
                .contains("unknown query parameter \"key\"")
        );
        let long = format!("prefix={}", "a".repeat(1025));
        assert!(parse_prefix(Some(&long)).is_err());
    }
}

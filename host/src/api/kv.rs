//! A plugin's `kv` store for its operator.
//!
//! - `GET /v1/plugins/{name}/kv[?prefix=&limit=&cursor=]` lists entries in
//!   key order: what a plugin remembered ("seen:ada@example.com"), to see
//!   why it skipped an event. Each shows its size and the start of its
//!   value (text, or base64), and the counter an 8-byte value holds.
//! - `DELETE /v1/plugins/{name}/kv[?prefix=]` clears all of them or those
//!   whose key starts with `prefix`: to free a namespace that reached its
//!   quota (`kv_max_mb`), or to forget what a plugin remembered after its
//!   logic changed. The plugin keeps running; the entries go in batches,
//!   so the store's writer is never held long.

use base64::Engine as _;
use serde_json::{Value, json};

use super::ApiError;
use crate::app::App;

/// Entries listed per page unless `limit` says otherwise, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Most of a value a listing shows.
const VALUE_HEAD_BYTES: usize = 1024;

/// List `name`'s entries, a page at a time.
pub async fn list_kv(app: &App, name: &str, query: Option<&str>) -> Result<Value, ApiError> {
    if !crate::config::is_plugin_name(name) {
        return Err(ApiError::NotFound(format!("no plugin named {name:?}")));
    }
    let params = ListParams::parse(query)?;
    let page = app
        .store
        .list_kv(
            name,
            &params.prefix,
            params.after.as_deref(),
            params.limit,
            VALUE_HEAD_BYTES,
        )
        .await?;
    let next_cursor = (page.len() == params.limit)
        .then(|| page.last().map(|e| cursor_of(&e.key)))
        .flatten();
    let entries: Vec<Value> = page.iter().map(entry_view).collect();
    Ok(json!({
        "plugin": name,
        "prefix": params.prefix,
        "entries": entries,
        "next_cursor": next_cursor,
    }))
}

fn entry_view(e: &crate::store::KvEntry) -> Value {
    let mut v = json!({"key": e.key, "bytes": e.value_bytes});
    let cut = (e.head.len() as u64) < e.value_bytes;
    match as_text(&e.head, cut) {
        Some(text) => v["value"] = json!(text),
        None => {
            v["value_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&e.head));
        }
    }
    if (e.head.len() as u64) < e.value_bytes {
        v["truncated"] = json!(true);
    }
    if let Ok(counter) = <[u8; 8]>::try_from(e.head.as_slice()) {
        // What `kv.increment` stores: an 8-byte little-endian counter.
        v["counter"] = json!(i64::from_le_bytes(counter));
    }
    v
}

/// `head` as text: UTF-8 without control characters other than tabs
/// and line breaks; a head `cut` from a longer value may end inside a
/// character.
fn as_text(head: &[u8], cut: bool) -> Option<&str> {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) if cut && e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    let printable = text
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'));
    printable.then_some(text)
}

fn cursor_of(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

struct ListParams {
    prefix: String,
    after: Option<String>,
    limit: usize,
}

impl ListParams {
    fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut params = ListParams {
            prefix: String::new(),
            after: None,
            limit: DEFAULT_LIMIT,
        };
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "prefix" => params.prefix = prefix(&v)?,
                "limit" => {
                    params.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            ApiError::BadRequest(format!(
                                "limit must be a whole number from 1 to {MAX_LIMIT}, got {v:?}"
                            ))
                        })?;
                }
                "cursor" => {
                    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(v.as_bytes())
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok())
                        .ok_or_else(|| ApiError::BadRequest("invalid cursor".into()))?;
                    params.after = Some(key);
                }
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "unknown query parameter {other:?} (expected prefix, limit, cursor)"
                    )));
                }
            }
        }
        Ok(params)
    }
}

/// A `prefix` parameter, checked.
fn prefix(v: &str) -> Result<String, ApiError> {
    if v.len() > MAX_PREFIX_BYTES {
        return Err(ApiError::BadRequest(format!(
            "prefix must be at most {MAX_PREFIX_BYTES} bytes"
        )));
    }
    Ok(v.to_owned())
}

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
    let mut found = String::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "prefix" => found = prefix(&v)?,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?} (expected prefix)"
                )));
            }
        }
    }
    Ok(found)
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

    #[test]
    fn listing_parameters_are_checked_and_cursors_round_trip() {
        let p = ListParams::parse(None).unwrap();
        assert_eq!((p.prefix.as_str(), p.after, p.limit), ("", None, 100));
        let cursor = cursor_of("seen:é");
        let p = ListParams::parse(Some(&format!("prefix=seen&limit=5&cursor={cursor}"))).unwrap();
        assert_eq!(
            (p.prefix.as_str(), p.after.as_deref(), p.limit),
            ("seen", Some("seen:é"), 5)
        );
        for bad in ["limit=0", "limit=1001", "limit=x", "cursor=%%%", "sort=key"] {
            assert!(ListParams::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn entries_show_text_base64_and_counters() {
        let entry = |head: &[u8], bytes: u64| {
            entry_view(&crate::store::KvEntry {
                key: "k".into(),
                value_bytes: bytes,
                head: head.to_vec(),
            })
        };
        assert_eq!(
            entry(b"yes", 3),
            json!({"key": "k", "bytes": 3, "value": "yes"})
        );
        assert_eq!(
            entry(&[0xff, 0], 2),
            json!({"key": "k", "bytes": 2, "value_base64": "/wA="})
        );
        assert_eq!(
            entry(&7i64.to_le_bytes(), 8),
            json!({"key": "k", "bytes": 8, "value_base64": "BwAAAAAAAAA=", "counter": 7})
        );
        // A head cut inside a character.
        assert_eq!(
            entry(&"aé".as_bytes()[..2], 3),
            json!({"key": "k", "bytes": 3, "value": "a", "truncated": true})
        );
    }
}

//! `wasmhook run --kv FILE`: a plugin's `kv` store kept in a JSON file
//! between runs, so a plugin that remembers ("first login of an email",
//! "every 3rd booking") can be tried event by event without the server.
//!
//! The file is one JSON object, key → value: a string for text, `{"counter":
//! n}` for what `kv.increment` stores (an 8-byte little-endian counter),
//! `{"base64": "…"}` for other bytes. A missing file is an empty store;
//! the file is rewritten (aside, then renamed) after each run, so it can
//! be read and edited by hand.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// Entries as stored: key → bytes.
pub type Entries = BTreeMap<String, Vec<u8>>;

/// Read `path`; a missing file is empty. Errors name the file and key.
pub fn read(path: &Path) -> Result<Entries, String> {
    let shown = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entries::new()),
        Err(e) => return Err(format!("cannot read kv file {shown}: {e}")),
    };
    let json: Value =
        serde_json::from_str(&text).map_err(|e| format!("kv file {shown}: not JSON: {e}"))?;
    let Value::Object(map) = json else {
        return Err(format!(
            "kv file {shown}: must be a JSON object of key → value"
        ));
    };
    map.into_iter()
        .map(|(key, value)| {
            let bytes =
                decode(&value).map_err(|why| format!("kv file {shown}: key {key:?}: {why}"))?;
            Ok((key, bytes))
        })
        .collect()
}

fn decode(value: &Value) -> Result<Vec<u8>, &'static str> {
    const EXPECTED: &str = "expected a string, {\"counter\": <integer>} or {\"base64\": \"…\"}";
    match value {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Object(o) if o.len() == 1 => match o.iter().next() {
            Some((k, Value::Number(n))) if k == "counter" => n
                .as_i64()
                .map(|n| n.to_le_bytes().to_vec())
                .ok_or("the counter must be a 64-bit integer"),
            Some((k, Value::String(b))) if k == "base64" => {
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|_| "the base64 value does not decode")
            }
            _ => Err(EXPECTED),
        },
        _ => Err(EXPECTED),
    }
}

/// The JSON for `entries`, as [`read`] takes it.
pub fn to_json(entries: &Entries) -> Value {
    let mut map = Map::new();
    for (key, bytes) in entries {
        let text = std::str::from_utf8(bytes).ok().filter(|t| {
            t.chars()
                .all(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        });
        let value = match (text, <[u8; 8]>::try_from(bytes.as_slice())) {
            (Some(t), _) => json!(t),
            (None, Ok(counter)) => json!({"counter": i64::from_le_bytes(counter)}),
            (None, Err(_)) => {
                json!({"base64": base64::engine::general_purpose::STANDARD.encode(bytes)})
            }
        };
        map.insert(key.clone(), value);
    }
    Value::Object(map)
}

/// Write `entries` to `path`: aside, then renamed over it.
pub fn write(path: &Path, entries: &Entries) -> Result<(), String> {
    let shown = path.display();
    let text = serde_json::to_string_pretty(&to_json(entries)).unwrap_or_default() + "\n";
    let mut aside = path.as_os_str().to_owned();
    aside.push(".tmp");
    let aside = std::path::PathBuf::from(aside);
    std::fs::write(&aside, text)
        .and_then(|()| std::fs::rename(&aside, path))
        .map_err(|e| format!("cannot write kv file {shown}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_as_text_counters_and_base64() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.json");
        assert_eq!(read(&path).unwrap(), Entries::new(), "missing = empty");
        let entries = Entries::from([
            ("seen:ada".to_owned(), b"1".to_vec()),
            ("bookings".to_owned(), 3i64.to_le_bytes().to_vec()),
            ("blob".to_owned(), vec![0xff, 0x00, 0x10]),
        ]);
        write(&path, &entries).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            json,
            json!({"blob": {"base64": "/wAQ"}, "bookings": {"counter": 3}, "seen:ada": "1"})
        );
        assert_eq!(read(&path).unwrap(), entries);
    }

    #[test]
    fn bad_files_are_named_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.json");
        for (text, want) in [
            ("[1]", "must be a JSON object"),
            ("{", "not JSON"),
            (r#"{"n": 5}"#, "key \"n\": expected a string"),
            (
                r#"{"n": {"counter": 1.5}}"#,
                "key \"n\": the counter must be a 64-bit integer",
            ),
            (
                r#"{"b": {"base64": "!!"}}"#,
                "key \"b\": the base64 value does not decode",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = read(&path).unwrap_err();
            assert!(
                err.contains(want) && err.contains("kv.json"),
                "{text}: {err}"
            );
        }
    }
}

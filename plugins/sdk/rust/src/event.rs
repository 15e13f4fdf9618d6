//! Helpers on [`Event`]: reading its JSON properties, and building events
//! for unit tests.
//!
//! The host guarantees `properties` is a valid JSON object, so the readers
//! treat anything else as an empty object rather than failing.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Event;

impl Event {
    /// An event named `name` with id `"test-event"`, no user, timestamp 0
    /// and no properties; meant for unit tests, refine it with the `with_*`
    /// methods.
    pub fn new(name: impl Into<String>) -> Self {
        Event {
            id: "test-event".to_owned(),
            name: name.into(),
            user_id: None,
            timestamp_ms: 0,
            properties: "{}".to_owned(),
        }
    }

    /// This event with id `id`.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// This event about user `user_id`.
    pub fn with_user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// This event with timestamp `timestamp_ms` (ms since the Unix epoch).
    pub fn with_timestamp_ms(mut self, timestamp_ms: u64) -> Self {
        self.timestamp_ms = timestamp_ms;
        self
    }

    /// This event with `properties` (normally a JSON object) as properties.
    pub fn with_props(mut self, properties: Value) -> Self {
        self.properties = properties.to_string();
        self
    }

    /// The properties as a JSON object (empty if they do not parse as one).
    pub fn props_map(&self) -> Map<String, Value> {
        match serde_json::from_str(&self.properties) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    /// The properties as a JSON value (always an object).
    pub fn props_json(&self) -> Value {
        Value::Object(self.props_map())
    }

    /// The property `key`, whatever its JSON type.
    pub fn prop(&self, key: &str) -> Option<Value> {
        self.props_map().remove(key)
    }

    /// The property `key` when it is a JSON string.
    pub fn prop_str(&self, key: &str) -> Option<String> {
        match self.prop(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The properties deserialized into `T`; the error names what is wrong.
    pub fn props<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(&self.properties)
            .map_err(|e| format!("event properties do not match the expected shape: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[test]
    fn builders_set_every_field() {
        let event = Event::new("a.b")
            .with_id("id1")
            .with_user("u1")
            .with_timestamp_ms(42)
            .with_props(json!({"k": 1}));
        assert_eq!(event.id, "id1");
        assert_eq!(event.name, "a.b");
        assert_eq!(event.user_id.as_deref(), Some("u1"));
        assert_eq!(event.timestamp_ms, 42);
        assert_eq!(event.properties, r#"{"k":1}"#);
    }

    #[test]
    fn prop_str_reads_only_strings() {
        let event = Event::new("e").with_props(json!({"email": "a@b.c", "n": 3}));
        assert_eq!(event.prop_str("email").as_deref(), Some("a@b.c"));
        assert_eq!(event.prop_str("n"), None);
        assert_eq!(event.prop_str("missing"), None);
        assert_eq!(event.prop("n"), Some(json!(3)));
    }

    #[test]
    fn props_json_is_an_empty_object_when_properties_are_not_one() {
        let mut event = Event::new("e");
        event.properties = "[1,2]".to_owned();
        assert_eq!(event.props_json(), json!({}));
        event.properties = "not json".to_owned();
        assert_eq!(event.props_json(), json!({}));
    }

    #[test]
    fn typed_props_deserialize_or_explain() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Level {
            level: u32,
        }
        let ok = Event::new("e").with_props(json!({"level": 7, "extra": true}));
        assert_eq!(ok.props::<Level>(), Ok(Level { level: 7 }));
        let bad = Event::new("e").with_props(json!({"level": "seven"}));
        let err = bad.props::<Level>().unwrap_err();
        assert!(err.contains("expected shape"), "{err}");
    }
}

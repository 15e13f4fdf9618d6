//! serde helpers for config values a derive cannot express: secrets (never
//! echoed in error messages), HTTP methods (case-insensitive) and plugin
//! settings (strings, numbers or booleans, all handed to plugins as text).
//!
//! Used through `#[serde(deserialize_with = ...)]` so that `model` types
//! stay free of serde.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

use crate::model::{Method, Secret};

/// A secret string. Errors never show the value.
struct SecretValue(Secret);

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SecretValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretValue, E> {
                Ok(SecretValue(Secret::new(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// `["${TOKEN_A}", "${TOKEN_B}"]` as secrets. A lone string is refused
/// without repeating it (it is likely a token).
pub(crate) fn secret_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Secret>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<Secret>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of strings")
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(E::custom(
                "invalid type: string, expected an array of strings (write [\"...\"])",
            ))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(SecretValue(s)) = seq.next_element()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V)
}

/// An optional secret string.
pub(crate) fn opt_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<SecretValue>::deserialize(d)?.map(|s| s.0))
}

/// A list of secret strings.
pub(crate) fn secrets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Secret>, D::Error> {
    Ok(Vec::<SecretValue>::deserialize(d)?
        .into_iter()
        .map(|s| s.0)
        .collect())
}

/// `server.listen`: an IP address and port (host names are not resolved,
/// so what is bound is exactly what is written).
pub(crate) fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        de::Error::custom(format!(
            "{text:?} is not an IP address and port, e.g. \"127.0.0.1:8080\" or \"[::]:8080\""
        ))
    })
}

/// A method name, `GET` to `DELETE`, in any case.
struct MethodName(Method);

impl<'de> Deserialize<'de> for MethodName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MethodName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an HTTP method name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MethodName, E> {
                parse_method(v).map(MethodName).ok_or_else(|| {
                    E::custom(format!(
                        "unknown method {v:?}, expected one of GET, POST, PUT, PATCH, DELETE"
                    ))
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// Parse a method name case-insensitively.
pub(crate) fn parse_method(name: &str) -> Option<Method> {
    [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
    ]
    .into_iter()
    .find(|m| m.as_str().eq_ignore_ascii_case(name))
}

/// An optional list of methods.
pub(crate) fn opt_methods<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Method>>, D::Error> {
    Ok(Option::<Vec<MethodName>>::deserialize(d)?.map(|v| v.into_iter().map(|m| m.0).collect()))
}

/// A plugin setting: strings as they are, numbers and booleans as text.
struct Setting(String);

impl<'de> Deserialize<'de> for Setting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Setting;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Setting, E> {
                Ok(Setting(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Setting, E> {
                Ok(Setting(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Setting, E> {
                Ok(Setting(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Setting, E> {
                Ok(Setting(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Setting, E> {
                Ok(Setting(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The `[plugins.config]` table.
pub(crate) fn settings<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(BTreeMap::<String, Setting>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_in_any_case() {
        let cases = [
            ("GET", Some(Method::Get)),
            ("post", Some(Method::Post)),
            ("Put", Some(Method::Put)),
            ("pAtCh", Some(Method::Patch)),
            ("delete", Some(Method::Delete)),
            ("HEAD", None),
            ("", None),
            ("GET ", None),
        ];
        for (name, want) in cases {
            assert_eq!(parse_method(name), want, "{name:?}");
        }
    }
}

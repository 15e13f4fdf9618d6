//! The recipient's postal address, read from the event's properties and
//! checked before anything is sent.
//!
//! Lob would refuse an incomplete or malformed address with a 422, which
//! ends as a failed delivery; a skip naming the missing fields is clearer in
//! the delivery log and costs no API call. The checks are the ones Lob
//! documents for postcards: a name, a street line and a city everywhere,
//! plus a two-letter state and a ZIP code in the US. Anything finer (does
//! the street exist?) is Lob's address verification, not this plugin's.
//!
//! Field lengths are Lob's too (its OpenAPI spec): `name` at most 40
//! characters; in the US `address_line1`/`address_line2` at most 64 and
//! `address_city` 200; elsewhere lines, city and state at most 200 and the
//! postal code 40. Longer values are skipped, not cut: a cut address line
//! would mail the card to the wrong place.

use std::fmt;

use serde_json::{Map, Value, json};

/// The address properties, named as Lob names the fields of `to`. They are
/// left out of the postcard's merge variables (except `name`).
pub const ADDRESS_PROPERTIES: [&str; 7] = [
    "name",
    "address_line1",
    "address_line2",
    "address_city",
    "address_state",
    "address_zip",
    "address_country",
];

/// The country assumed when the event has no `address_country`.
pub const DEFAULT_COUNTRY: &str = "US";

/// Lob's longest `name` (and `company`), in characters.
pub const MAX_NAME_CHARS: usize = 40;
/// Lob's longest `address_line1`/`address_line2` of a US address.
pub const MAX_US_LINE_CHARS: usize = 64;
/// Lob's longest address line, city or state outside the US, and city in the US.
pub const MAX_FIELD_CHARS: usize = 200;
/// Lob's longest postal code outside the US.
pub const MAX_INTL_ZIP_CHARS: usize = 40;

/// A complete address, ready to be Lob's `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The recipient's name (Lob needs a name or a company; this plugin
    /// asks for the name).
    pub name: String,
    /// Street and number.
    pub line1: String,
    /// Apartment, suite, floor; optional everywhere.
    pub line2: Option<String>,
    /// City.
    pub city: String,
    /// Two-letter state code; required in the US only.
    pub state: Option<String>,
    /// ZIP or postal code; required in the US only (some countries have none).
    pub zip: Option<String>,
    /// ISO 3166-1 alpha-2 code, upper case.
    pub country: String,
}

/// Why an address cannot be mailed to. `Display` is the skip reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressProblem {
    /// Required properties that are absent, `null` or blank, in the order
    /// of [`ADDRESS_PROPERTIES`].
    Incomplete(Vec<&'static str>),
    /// A property that is present but unusable.
    Invalid {
        /// The property name.
        field: &'static str,
        /// The value as the event gave it (JSON).
        value: String,
        /// What was expected instead.
        expected: &'static str,
    },
    /// A property longer than Lob accepts for that field.
    TooLong {
        /// The property name.
        field: &'static str,
        /// Its length in characters.
        chars: usize,
        /// Lob's limit for it, in characters.
        max: usize,
    },
    /// The destination country is not one the plugin may mail to.
    UnsupportedCountry {
        /// The normalized country code.
        country: String,
        /// The countries allowed by config `countries`.
        allowed: Vec<String>,
    },
}

impl fmt::Display for AddressProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressProblem::Incomplete(missing) => {
                write!(f, "address incomplete: missing {}", missing.join(", "))
            }
            AddressProblem::Invalid {
                field,
                value,
                expected,
            } => write!(f, "address invalid: {field} {value} is not {expected}"),
            AddressProblem::TooLong { field, chars, max } => write!(
                f,
                "address invalid: {field} is {chars} characters long; Lob accepts at most {max}"
            ),
            AddressProblem::UnsupportedCountry { country, allowed } => write!(
                f,
                "country {country} is not supported (postcards go to {} only; see config `countries`)",
                allowed.join(", ")
            ),
        }
    }
}

impl Address {
    /// The address in `props`, when it is complete and its country is one
    /// of `allowed` (upper-case ISO codes).
    ///
    /// Checked in this order, so the reason is the most useful one: the
    /// country (a missing state does not matter for a country that is not
    /// served), then the missing fields, all named at once, then formats.
    pub fn from_props(
        props: &Map<String, Value>,
        allowed: &[String],
    ) -> Result<Self, AddressProblem> {
        let country = match text(props, "address_country")? {
            None => DEFAULT_COUNTRY.to_owned(),
            Some(raw) => normalize_country(&raw).ok_or_else(|| AddressProblem::Invalid {
                field: "address_country",
                value: Value::String(raw).to_string(),
                expected: "a two-letter ISO 3166 country code",
            })?,
        };
        if !allowed.contains(&country) {
            return Err(AddressProblem::UnsupportedCountry {
                country,
                allowed: allowed.to_vec(),
            });
        }
        let us = country == "US";

        let name = text(props, "name")?;
        let line1 = text(props, "address_line1")?;
        let line2 = text(props, "address_line2")?;
        let city = text(props, "address_city")?;
        let state = text(props, "address_state")?;
        let zip = text(props, "address_zip")?;

        let required = [
            ("name", name.is_some()),
            ("address_line1", line1.is_some()),
            ("address_city", city.is_some()),
            ("address_state", state.is_some() || !us),
            ("address_zip", zip.is_some() || !us),
        ];
        let missing: Vec<_> = required
            .iter()
            .filter(|(_, present)| !present)
            .map(|(field, _)| *field)
            .collect();
        let (Some(name), Some(line1), Some(city), true) = (name, line1, city, missing.is_empty())
        else {
            return Err(AddressProblem::Incomplete(missing));
        };

        check_lengths(
            us,
            [
                ("name", Some(&name)),
                ("address_line1", Some(&line1)),
                ("address_line2", line2.as_ref()),
                ("address_city", Some(&city)),
                ("address_state", state.as_ref()),
                ("address_zip", zip.as_ref()),
            ],
        )?;
        if us {
            check_us_formats(state.as_deref(), zip.as_deref())?;
        }
        Ok(Address {
            name,
            line1,
            line2,
            city,
            state: state.map(|s| if us { s.to_ascii_uppercase() } else { s }),
            zip,
            country,
        })
    }

    /// The address as Lob's `to` object (optional fields only when given).
    pub fn to_lob(&self) -> Value {
        let mut to = json!({
            "name": self.name,
            "address_line1": self.line1,
            "address_city": self.city,
            "address_country": self.country,
        });
        let optional = [
            ("address_line2", &self.line2),
            ("address_state", &self.state),
            ("address_zip", &self.zip),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                to[key] = json!(value);
            }
        }
        to
    }
}

/// Property `key` as trimmed text: `None` when absent, `null` or blank; an
/// error when it is not a string (a ZIP code sent as a JSON number has
/// already lost its leading zeros, so numbers are not guessed at).
fn text(props: &Map<String, Value>, key: &'static str) -> Result<Option<String>, AddressProblem> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            Ok((!s.is_empty()).then(|| s.to_owned()))
        }
        Some(other) => Err(AddressProblem::Invalid {
            field: key,
            value: other.to_string(),
            expected: "a string",
        }),
    }
}

/// An upper-case ISO 3166-1 alpha-2 code, accepting the common spellings of
/// the United States; `None` when `raw` is not a two-letter code.
pub fn normalize_country(raw: &str) -> Option<String> {
    let upper = raw.trim().to_ascii_uppercase();
    match upper.as_str() {
        "USA" | "U.S." | "U.S.A." | "UNITED STATES" | "UNITED STATES OF AMERICA" => {
            Some("US".to_owned())
        }
        code if code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()) => Some(upper),
        _ => None,
    }
}

/// Lob's length limit of `field` (characters), for a US address or not;
/// `None` when the field has no limit of its own (the US state and ZIP have
/// exact formats instead, see [`check_us_formats`]).
pub fn max_chars(field: &str, us: bool) -> Option<usize> {
    match (field, us) {
        ("name", _) => Some(MAX_NAME_CHARS),
        ("address_line1" | "address_line2", true) => Some(MAX_US_LINE_CHARS),
        ("address_line1" | "address_line2" | "address_city" | "address_state", false) => {
            Some(MAX_FIELD_CHARS)
        }
        ("address_city", true) => Some(MAX_FIELD_CHARS),
        ("address_zip", false) => Some(MAX_INTL_ZIP_CHARS),
        _ => None,
    }
}

/// The first field (in the given order) longer than Lob accepts.
fn check_lengths<const N: usize>(
    us: bool,
    fields: [(&'static str, Option<&String>); N],
) -> Result<(), AddressProblem> {
    for (field, value) in fields {
        let (Some(value), Some(max)) = (value, max_chars(field, us)) else {
            continue;
        };
        let chars = value.chars().count();
        if chars > max {
            return Err(AddressProblem::TooLong { field, chars, max });
        }
    }
    Ok(())
}

/// Lob's US formats: a two-letter state and a `12345` or `12345-6789` ZIP.
fn check_us_formats(state: Option<&str>, zip: Option<&str>) -> Result<(), AddressProblem> {
    if let Some(state) = state
        && (state.len() != 2 || !state.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return Err(AddressProblem::Invalid {
            field: "address_state",
            value: Value::from(state).to_string(),
            expected: "a two-letter US state code",
        });
    }
    if let Some(zip) = zip {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let valid = match zip.split_once('-') {
            None => digits(zip, 5),
            Some((five, four)) => digits(five, 5) && digits(four, 4),
        };
        if !valid {
            return Err(AddressProblem::Invalid {
                field: "address_zip",
                value: Value::from(zip).to_string(),
                expected: "a US ZIP code (12345 or 12345-6789)",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn us() -> Vec<String> {
        vec!["US".to_owned()]
    }

    fn props(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn complete() -> Value {
        json!({
            "name": "Ada Lovelace",
            "address_line1": "185 Berry St",
            "address_line2": "Suite 6100",
            "address_city": "San Francisco",
            "address_state": "ca",
            "address_zip": "94107",
        })
    }

    fn with(mut base: Value, key: &str, value: Value) -> Map<String, Value> {
        base[key] = value;
        props(base)
    }

    #[test]
    fn a_complete_us_address_defaults_the_country_and_upper_cases_the_state() {
        let address = Address::from_props(&props(complete()), &us()).unwrap();
        assert_eq!(
            address.to_lob(),
            json!({
                "name": "Ada Lovelace",
                "address_line1": "185 Berry St",
                "address_line2": "Suite 6100",
                "address_city": "San Francisco",
                "address_state": "CA",
                "address_zip": "94107",
                "address_country": "US",
            })
        );
    }

    #[test]
    fn optional_line2_is_left_out_and_values_are_trimmed() {
        let mut p = complete();
        p.as_object_mut().unwrap().remove("address_line2");
        p["address_city"] = json!("  San Francisco ");
        p["address_zip"] = json!("94107-1741");
        let to = Address::from_props(&props(p), &us()).unwrap().to_lob();
        assert_eq!(to.get("address_line2"), None);
        assert_eq!(to["address_city"], "San Francisco");
        assert_eq!(to["address_zip"], "94107-1741");
    }

    #[test]
    fn every_missing_field_is_named_at_once() {
        let p = props(json!({"name": "Ada", "address_line1": " ", "address_state": null}));
        let problem = Address::from_props(&p, &us()).unwrap_err();
        assert_eq!(
            problem,
            AddressProblem::Incomplete(vec![
                "address_line1",
                "address_city",
                "address_state",
                "address_zip"
            ])
        );
        assert_eq!(
            problem.to_string(),
            "address incomplete: missing address_line1, address_city, address_state, address_zip"
        );
    }

    #[test]
    fn state_and_zip_are_optional_outside_the_us() {
        let allowed = vec!["US".to_owned(), "GB".to_owned()];
        let p = props(json!({
            "name": "Ada", "address_line1": "12 St James's Square",
            "address_city": "London", "address_country": "gb",
        }));
        let to = Address::from_props(&p, &allowed).unwrap().to_lob();
        assert_eq!(
            to,
            json!({"name": "Ada", "address_line1": "12 St James's Square",
                   "address_city": "London", "address_country": "GB"})
        );
        let p = props(json!({"address_country": "GB", "address_line1": "x"}));
        assert_eq!(
            Address::from_props(&p, &allowed).unwrap_err(),
            AddressProblem::Incomplete(vec!["name", "address_city"])
        );
    }

    #[test]
    fn unsupported_countries_are_refused_before_fields_are_checked() {
        let p = props(json!({"address_country": "DE"}));
        let problem = Address::from_props(&p, &us()).unwrap_err();
        assert_eq!(
            problem.to_string(),
            "country DE is not supported (postcards go to US only; see config `countries`)"
        );
    }

    #[test]
    fn fields_longer_than_lob_accepts_are_refused_naming_field_and_limit() {
        let cases = [
            ("name", "n".repeat(41), 41, 40),
            ("address_line1", "1".repeat(65), 65, 64),
            ("address_line2", "2".repeat(65), 65, 64),
            ("address_city", "c".repeat(201), 201, 200),
        ];
        for (field, value, chars, max) in cases {
            let problem =
                Address::from_props(&with(complete(), field, json!(value)), &us()).unwrap_err();
            assert_eq!(problem, AddressProblem::TooLong { field, chars, max });
            assert_eq!(
                problem.to_string(),
                format!(
                    "address invalid: {field} is {chars} characters long; Lob accepts at most {max}"
                )
            );
        }
        // At the limit is fine; characters are counted, not bytes.
        let p = with(
            with(complete(), "name", json!("é".repeat(40))).into(),
            "address_line1",
            json!("ü".repeat(64)),
        );
        assert!(Address::from_props(&p, &us()).is_ok());
        // Surrounding whitespace does not count.
        let p = with(complete(), "name", json!(format!("  {}  ", "n".repeat(40))));
        assert!(Address::from_props(&p, &us()).is_ok());
    }

    #[test]
    fn outside_the_us_lines_may_be_longer_and_the_postal_code_is_capped() {
        let allowed = vec!["GB".to_owned()];
        let base = json!({"name": "Ada", "address_line1": "l".repeat(200),
                          "address_city": "London", "address_country": "GB"});
        assert!(Address::from_props(&props(base.clone()), &allowed).is_ok());
        assert_eq!(
            Address::from_props(
                &with(base.clone(), "address_line1", json!("l".repeat(201))),
                &allowed
            )
            .unwrap_err(),
            AddressProblem::TooLong {
                field: "address_line1",
                chars: 201,
                max: 200
            }
        );
        assert_eq!(
            Address::from_props(
                &with(base.clone(), "address_zip", json!("9".repeat(41))),
                &allowed
            )
            .unwrap_err(),
            AddressProblem::TooLong {
                field: "address_zip",
                chars: 41,
                max: 40
            }
        );
        assert_eq!(
            Address::from_props(&with(base, "name", json!("n".repeat(41))), &allowed).unwrap_err(),
            AddressProblem::TooLong {
                field: "name",
                chars: 41,
                max: 40
            }
        );
    }

    #[test]
    fn country_spellings() {
        let cases = [
            ("us", Some("US")),
            (" USA ", Some("US")),
            ("United States", Some("US")),
            ("united states of america", Some("US")),
            ("ca", Some("CA")),
            ("Canada", None),
            ("U5", None),
            ("", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalize_country(raw).as_deref(), expected, "{raw:?}");
        }
    }

    #[test]
    fn malformed_values_are_named_with_what_was_expected() {
        let cases = [
            (
                with(complete(), "address_zip", json!(2139)),
                "address invalid: address_zip 2139 is not a string",
            ),
            (
                with(complete(), "address_zip", json!("9410")),
                "address invalid: address_zip \"9410\" is not a US ZIP code (12345 or 12345-6789)",
            ),
            (
                with(complete(), "address_zip", json!("94107-12")),
                "address invalid: address_zip \"94107-12\" is not a US ZIP code (12345 or 12345-6789)",
            ),
            (
                with(complete(), "address_state", json!("California")),
                "address invalid: address_state \"California\" is not a two-letter US state code",
            ),
            (
                with(complete(), "address_country", json!("Neverland")),
                "address invalid: address_country \"Neverland\" is not a two-letter ISO 3166 country code",
            ),
            (
                with(complete(), "name", json!(["Ada"])),
                "address invalid: name [\"Ada\"] is not a string",
            ),
        ];
        for (p, reason) in cases {
            assert_eq!(
                Address::from_props(&p, &us()).unwrap_err().to_string(),
                reason
            );
        }
    }
}

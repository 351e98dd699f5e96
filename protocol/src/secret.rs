//! `Secret`: a string that must never reach a log line (a token, a password, a database URL
//! with its password). `Debug` and `Display` print a placeholder, so a secret inside a struct
//! that is logged with `{:?}` stays hidden; only [`Secret::expose`] gives the value, so every
//! place that reads it is easy to find.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A string that formats as `Secret(***)`. It serializes as the plain string: it is meant to
/// travel (in a `Hello` frame, over an encrypted connection) and to be hashed, only not to be
/// printed.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(#[serde(deserialize_with = "crate::frame::string")] String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call it only where the value is needed (hashing, comparing, dialing).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Lets command-line and environment parsers (clap) build a `Secret` directly.
impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_its_value() {
        let s = Secret::new("ek_live_very_secret");
        assert_eq!(
            format!("{s:?} {s} {s:>20} {s:#?}"),
            "Secret(***) Secret(***) Secret(***) Secret(***)"
        );
        assert_eq!(s.expose(), "ek_live_very_secret");
        assert!(!s.is_empty());
    }

    #[test]
    fn hidden_inside_a_derived_debug() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Config {
            url: Option<Secret>,
        }
        let c = Config {
            url: Some(Secret::from("postgres://u:hunter2@db/x".to_owned())),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn serializes_as_the_plain_string() {
        let s = Secret::from("tok");
        assert_eq!(serde_json::to_string(&s).unwrap(), r#""tok""#);
        let back: Secret = serde_json::from_str(r#""tok""#).unwrap();
        assert_eq!(back, s);
    }
}

//! An environment's serving settings: what the control plane stores in the environment's
//! `settings` column and the feed carries as JSON text (`Snapshot::settings_json`,
//! `Item::SettingsUpdate`), typed once here for both ends.
//!
//! The JSON is the contract, not this struct: a field this version does not know is kept as it
//! came (and written back with the rest), and a field that is missing takes its default, so a
//! newer control plane and an older edge (or the reverse) read each other's settings, and
//! writing the settings back never drops what a newer peer set.

use serde::{Deserialize, Serialize};

/// An environment's serving settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentSettings {
    /// Whether client (browser) keys may read flag rules (Checkgate's browser SDK needs them);
    /// off unless an admin turns it on.
    #[serde(default)]
    pub client_keys_read_rules: bool,
    /// What is kept of the impressions SDKs report; Checkgate's behaviour (everything) unless
    /// an admin narrows it. Written only when it differs from the default.
    #[serde(default, skip_serializing_if = "ImpressionSettings::is_default")]
    pub impressions: ImpressionSettings,
    /// Fields this version does not know, kept as they came.
    #[serde(flatten)]
    unknown: serde_json::Map<String, serde_json::Value>,
}

/// What of an impression's context is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ContextMode {
    /// The whole context (Checkgate's behaviour).
    #[default]
    All,
    /// Only the attributes named in `context_attributes`.
    Listed,
    /// No context at all.
    None,
}

/// An environment's privacy settings for impressions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImpressionSettings {
    /// What of the context is stored.
    #[serde(default)]
    pub context: ContextMode,
    /// The attributes kept when `context` is `listed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context_attributes: Vec<String>,
    /// Store a keyed hash of `user_id` instead of the id itself.
    #[serde(default)]
    pub hash_user_id: bool,
}

impl ImpressionSettings {
    /// Whether these are the defaults (whole context, plain user ids).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The context to store for `context` (a JSON object's text), or `None` to store none.
    /// Text that is not an object is dropped rather than stored unfiltered.
    pub fn filter_context(&self, context: Option<&str>) -> Option<String> {
        let context = context?;
        match self.context {
            ContextMode::All => Some(context.to_owned()),
            ContextMode::None => None,
            ContextMode::Listed => {
                let serde_json::Value::Object(mut map) = serde_json::from_str(context).ok()? else {
                    return None;
                };
                map.retain(|k, _| self.context_attributes.iter().any(|a| a == k));
                serde_json::to_string(&map).ok()
            }
        }
    }
}

impl EnvironmentSettings {
    /// Reads settings from their JSON text; the error says what is wrong with it.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Reads settings from their JSON text; anything unreadable counts as the defaults
    /// (everything off), as every reader of the settings has always treated it.
    pub fn parse(text: &str) -> Self {
        Self::from_json(text).unwrap_or_default()
    }

    /// The JSON text, as stored and carried: the known fields, then the unknown ones.
    pub fn to_json(&self) -> String {
        // A map with string keys and JSON values always serializes; the fallback is never used.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// The fields this version does not know, by name.
    pub fn unknown(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.unknown
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::EnvironmentSettings;

    #[test]
    fn the_defaults_are_everything_off_and_read_from_an_empty_object() {
        let settings = EnvironmentSettings::parse("{}");
        assert_eq!(settings, EnvironmentSettings::default());
        assert!(!settings.client_keys_read_rules);
        assert!(settings.unknown().is_empty());
    }

    #[test]
    fn the_stored_text_is_unchanged() {
        // What the control plane has always written, byte for byte.
        for (allow, text) in [
            (false, r#"{"client_keys_read_rules":false}"#),
            (true, r#"{"client_keys_read_rules":true}"#),
        ] {
            let settings = EnvironmentSettings {
                client_keys_read_rules: allow,
                ..EnvironmentSettings::default()
            };
            assert_eq!(settings.to_json(), text);
            assert_eq!(EnvironmentSettings::from_json(text).unwrap(), settings);
        }
    }

    #[test]
    fn unknown_fields_are_kept_and_written_back() {
        let text = r#"{"stream_heartbeat_seconds":15,"client_keys_read_rules":true,"evaluation_reasons":{"on":[1,2]}}"#;
        let settings = EnvironmentSettings::from_json(text).unwrap();
        assert!(settings.client_keys_read_rules);
        assert_eq!(settings.unknown().len(), 2);
        assert_eq!(settings.unknown()["stream_heartbeat_seconds"], 15);
        let again = EnvironmentSettings::from_json(&settings.to_json()).unwrap();
        assert_eq!(again, settings);
        let mut changed = settings.clone();
        changed.client_keys_read_rules = false;
        let written: serde_json::Value = serde_json::from_str(&changed.to_json()).unwrap();
        assert_eq!(
            written,
            serde_json::json!({
                "client_keys_read_rules": false,
                "stream_heartbeat_seconds": 15,
                "evaluation_reasons": {"on": [1, 2]},
            })
        );
    }

    #[test]
    fn impression_settings_round_trip_and_filter() {
        use super::{ContextMode, ImpressionSettings};
        let text = r#"{"client_keys_read_rules":false,"impressions":{"context":"listed","context_attributes":["plan"],"hash_user_id":true}}"#;
        let settings = EnvironmentSettings::from_json(text).unwrap();
        assert_eq!(settings.impressions.context, ContextMode::Listed);
        assert!(settings.impressions.hash_user_id);
        assert_eq!(settings.to_json(), text);
        assert_eq!(
            settings
                .impressions
                .filter_context(Some(r#"{"plan":"pro","email":"a@b.c"}"#))
                .as_deref(),
            Some(r#"{"plan":"pro"}"#)
        );
        let none = ImpressionSettings {
            context: ContextMode::None,
            ..ImpressionSettings::default()
        };
        assert_eq!(none.filter_context(Some("{}")), None);
        let all = ImpressionSettings::default();
        assert_eq!(
            all.filter_context(Some(r#"{"a":1}"#)).as_deref(),
            Some(r#"{"a":1}"#)
        );
    }

    #[test]
    fn a_missing_field_takes_its_default() {
        let settings = EnvironmentSettings::from_json(r#"{"evaluation_reasons":true}"#).unwrap();
        assert!(!settings.client_keys_read_rules);
        assert_eq!(settings.unknown().len(), 1);
    }

    #[test]
    fn unreadable_text_is_an_error_or_the_defaults() {
        for text in [
            "",
            "null",
            "[]",
            "7",
            "{",
            r#"{"client_keys_read_rules":"yes"}"#,
            r#"{"client_keys_read_rules":1}"#,
        ] {
            assert!(EnvironmentSettings::from_json(text).is_err(), "{text}");
            assert_eq!(
                EnvironmentSettings::parse(text),
                EnvironmentSettings::default()
            );
        }
    }
}

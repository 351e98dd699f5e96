//! Impressions and evaluation counts: what an SDK reports it evaluated, and what an edge counted
//! of its own evaluations, on their way to the control plane's insights store.
//!
//! These types are bincode-ready like the feed frames (every `String` is read through
//! [`crate::frame`]'s bounded reader, so a lying length allocates nothing); an edge sends them
//! upstream as `Frame::Impressions` and `Frame::EvaluationCounts`, answered by
//! `Frame::InsightsAck`. A batch carries a 16-byte id chosen by its sender, so a batch sent
//! twice (a retry after a lost answer) is stored once.
//!
//! [`Impression::check`] is the one validation both ends apply: an edge can refuse a bad item
//! before it queues it, and the control plane refuses it again before it stores it.

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

/// Most items in one [`ImpressionBatch`] (Checkgate's limit on its ingest route).
pub const MAX_BATCH_ITEMS: usize = 500;
/// Most counters in one [`EvaluationCounts`].
pub const MAX_COUNTS: usize = 10_000;
/// Longest flag key, in bytes (the flag model's own limit).
pub const MAX_FLAG_KEY: usize = 100;
/// Longest `user_id`, in bytes.
pub const MAX_USER_ID: usize = 256;
/// Longest served value, in bytes (values are reported as text).
pub const MAX_VALUE: usize = 1024;
/// Largest context, in bytes of JSON text.
pub const MAX_CONTEXT: usize = 4096;
/// How far ahead of the receiver's clock `evaluated_at` may be (clock skew).
pub const MAX_FUTURE_MS: i64 = 3_600_000;

/// One evaluation an SDK reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impression {
    #[serde(deserialize_with = "crate::frame::string")]
    pub flag_key: String,
    /// Who was evaluated; `None` for anonymous evaluations.
    #[serde(deserialize_with = "optional_string")]
    pub user_id: Option<String>,
    /// The value served, as text (`"true"`, `"blue"`, `"42"`, a JSON document's text).
    #[serde(deserialize_with = "crate::frame::string")]
    pub value: String,
    /// The evaluation context as JSON text (an object), at most [`MAX_CONTEXT`] bytes.
    #[serde(deserialize_with = "optional_string")]
    pub context: Option<String>,
    /// When it was evaluated, Unix milliseconds.
    pub evaluated_at: i64,
}

/// Why an impression is refused: a sentence naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidImpression(pub String);

impl Impression {
    /// Checks one item: a flag key of the flag model's characters, bounded strings, a context
    /// that is a JSON object of at most [`MAX_CONTEXT`] bytes, and `evaluated_at` no earlier
    /// than `oldest_ms` and at most [`MAX_FUTURE_MS`] after `now_ms`.
    pub fn check(&self, now_ms: i64, oldest_ms: i64) -> Result<(), InvalidImpression> {
        let refuse = |m: String| Err(InvalidImpression(m));
        check_flag_key(&self.flag_key).map_err(InvalidImpression)?;
        if let Some(user) = &self.user_id
            && (user.is_empty() || user.len() > MAX_USER_ID)
        {
            return refuse(format!("user_id must be 1 to {MAX_USER_ID} bytes"));
        }
        if self.value.len() > MAX_VALUE {
            return refuse(format!("value must be at most {MAX_VALUE} bytes"));
        }
        // Databases store text without NUL characters (PostgreSQL refuses them).
        if self.value.contains('\0') {
            return refuse("value must not contain NUL characters".into());
        }
        if self.user_id.as_deref().is_some_and(|u| u.contains('\0')) {
            return refuse("user_id must not contain NUL characters".into());
        }
        if let Some(context) = &self.context {
            if context.len() > MAX_CONTEXT {
                return refuse(format!(
                    "context must be at most {MAX_CONTEXT} bytes of JSON, got {}",
                    context.len()
                ));
            }
            match serde_json::from_str::<serde_json::Value>(context) {
                Ok(object @ serde_json::Value::Object(_)) if has_nul(&object) => {
                    return refuse("context must not contain NUL characters".into());
                }
                Ok(serde_json::Value::Object(_)) => {}
                Ok(_) => return refuse("context must be a JSON object".into()),
                Err(e) => return refuse(format!("context is not JSON: {e}")),
            }
        }
        if self.evaluated_at > now_ms.saturating_add(MAX_FUTURE_MS) {
            return refuse("evaluated_at is more than an hour in the future".into());
        }
        if self.evaluated_at < oldest_ms {
            return refuse("evaluated_at is older than impressions are kept".into());
        }
        Ok(())
    }
}

/// Whether any string or key in `value` holds a NUL character.
fn has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(has_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Checks a flag key as the flag model does: 1–100 of letters, digits, `-`, `_` and `.`.
pub fn check_flag_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_FLAG_KEY {
        return Err(format!("flag_key must be 1 to {MAX_FLAG_KEY} characters"));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "flag_key: {c:?} is not allowed (use letters, digits, '-', '_' and '.')"
        ));
    }
    Ok(())
}

/// Impressions of one environment, sent together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpressionBatch {
    /// Chosen by the sender (random); the same id sent again is stored once.
    pub id: [u8; 16],
    /// The environment's id.
    #[serde(deserialize_with = "crate::frame::string")]
    pub environment: String,
    /// At most [`MAX_BATCH_ITEMS`].
    pub items: Vec<Impression>,
}

/// One counter: how many times an edge evaluated a flag to a variant in one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationCount {
    /// The environment's id.
    #[serde(deserialize_with = "crate::frame::string")]
    pub environment: String,
    #[serde(deserialize_with = "crate::frame::string")]
    pub flag_key: String,
    /// The value served, as text (as in [`Impression::value`]).
    #[serde(deserialize_with = "crate::frame::string")]
    pub variant: String,
    /// The minute, as whole minutes since the Unix epoch.
    pub minute: i64,
    pub count: u64,
}

/// Counters an edge sends upstream (every 10 s), with an id so a retry is counted once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationCounts {
    pub id: [u8; 16],
    /// At most [`MAX_COUNTS`].
    pub counts: Vec<EvaluationCount>,
}

/// Like [`crate::frame::string`], for an optional string.
fn optional_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Bounded(#[serde(deserialize_with = "crate::frame::string")] String);
    Ok(Option::<Bounded>::deserialize(deserializer)?.map(|b| b.0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn item() -> Impression {
        Impression {
            flag_key: "checkout".into(),
            user_id: Some("u1".into()),
            value: "true".into(),
            context: Some(r#"{"plan":"pro"}"#.into()),
            evaluated_at: NOW,
        }
    }

    #[test]
    fn a_batch_round_trips_through_bincode() {
        let batch = ImpressionBatch {
            id: [7; 16],
            environment: "env".into(),
            items: vec![
                item(),
                Impression {
                    user_id: None,
                    context: None,
                    ..item()
                },
            ],
        };
        let config = bincode::config::standard().with_limit::<{ 1 << 20 }>();
        let bytes = bincode::serde::encode_to_vec(&batch, config).unwrap();
        let (back, _): (ImpressionBatch, _) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back, batch);
        let counts = EvaluationCounts {
            id: [1; 16],
            counts: vec![EvaluationCount {
                environment: "env".into(),
                flag_key: "f".into(),
                variant: "on".into(),
                minute: 29_000_000,
                count: 12,
            }],
        };
        let bytes = bincode::serde::encode_to_vec(&counts, config).unwrap();
        let (back, _): (EvaluationCounts, _) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back, counts);
    }

    #[test]
    fn a_lying_optional_string_fails_without_allocating_it() {
        // user_id: Some, then a length of 2^32 that never comes.
        let mut bytes = vec![1, b'f', 1, 0xfc, 0, 0, 0, 1];
        bytes.extend(b"short");
        let config = bincode::config::standard().with_limit::<{ 1 << 20 }>();
        let decoded: Result<(Impression, usize), _> =
            bincode::serde::decode_from_slice(&bytes, config);
        assert!(decoded.is_err());
    }

    #[test]
    fn checks_name_what_is_wrong() {
        assert!(item().check(NOW, 0).is_ok());
        let cases = [
            (
                Impression {
                    flag_key: String::new(),
                    ..item()
                },
                "flag_key",
            ),
            (
                Impression {
                    flag_key: "a b".into(),
                    ..item()
                },
                "flag_key",
            ),
            (
                Impression {
                    user_id: Some(String::new()),
                    ..item()
                },
                "user_id",
            ),
            (
                Impression {
                    value: "v".repeat(MAX_VALUE + 1),
                    ..item()
                },
                "value",
            ),
            (
                Impression {
                    context: Some("[1]".into()),
                    ..item()
                },
                "context",
            ),
            (
                Impression {
                    context: Some(format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_CONTEXT))),
                    ..item()
                },
                "context",
            ),
            (
                Impression {
                    context: Some(r#"{"a":["\u0000"]}"#.into()),
                    ..item()
                },
                "context",
            ),
            (
                Impression {
                    value: "a\0b".into(),
                    ..item()
                },
                "value",
            ),
            (
                Impression {
                    evaluated_at: NOW + MAX_FUTURE_MS + 1,
                    ..item()
                },
                "evaluated_at",
            ),
            (
                Impression {
                    evaluated_at: 5,
                    ..item()
                },
                "evaluated_at",
            ),
        ];
        for (bad, field) in cases {
            let err = bad.check(NOW, NOW - 1000).unwrap_err();
            assert!(err.0.contains(field), "{err} should name {field}");
        }
    }
}

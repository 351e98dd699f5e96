//! JSON bodies shared by both binaries: the API error body, Checkgate's SSE `update` payloads
//! and our evaluation API.

use checkgate_core::FlagDoc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body of every API error: `{"error":{"code":"…","message":"…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable, machine-readable code from a closed set (`not_found`, `invalid_body`, …).
    pub code: String,
    /// A sentence for people. Never internal details.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

/// Writes `value` as compact JSON with every object's keys in byte order, whatever map type
/// `serde_json` was built with. Checkgate's SSE payloads have sorted keys (it serializes through
/// `serde_json::Value` with its default sorted map), and its SDKs' users may compare them.
pub fn to_sorted_json(value: &Value) -> String {
    let mut out = String::new();
    write_sorted(value, &mut out);
    out
}

fn write_sorted(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_sorted(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The `data` of Checkgate's `update` event for a created or changed flag:
/// `{"env_id":"…","flag":{…},"type":"UPSERT"}`.
pub fn sse_upsert(env_id: &str, flag: &FlagDoc) -> Result<String, serde_json::Error> {
    let mut event = Map::new();
    event.insert("env_id".into(), Value::String(env_id.into()));
    event.insert("flag".into(), serde_json::to_value(flag)?);
    event.insert("type".into(), Value::String("UPSERT".into()));
    Ok(to_sorted_json(&Value::Object(event)))
}

/// The `data` of Checkgate's `update` event for a deleted flag:
/// `{"env_id":"…","key":"…","type":"DELETE"}`.
pub fn sse_delete(env_id: &str, key: &str) -> String {
    let mut event = Map::new();
    event.insert("env_id".into(), Value::String(env_id.into()));
    event.insert("key".into(), Value::String(key.into()));
    event.insert("type".into(), Value::String("DELETE".into()));
    to_sorted_json(&Value::Object(event))
}

/// Our evaluation API's request: a context and, optionally, which flags to evaluate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    /// The OpenFeature context shape: `targetingKey` plus attributes.
    #[serde(default)]
    pub context: Map<String, Value>,
    /// Evaluate only these flags; all flags of the environment when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
}

/// One flag's result in our evaluation API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagEvaluation {
    pub key: String,
    pub value: Value,
    pub variant: String,
    pub reason: String,
    #[serde(default, rename = "errorCode", skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Checkgate's on/off answer for the flag.
    pub enabled: bool,
}

/// Our evaluation API's answer for several flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateResponse {
    pub flags: Vec<FlagEvaluation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes observed on Checkgate's stream (research: checkgate.md §4).
    #[test]
    fn upsert_payload_is_byte_identical_to_checkgate() {
        let doc: FlagDoc = serde_json::from_str(
            r#"{"key":"checkout","is_enabled":true,"rollout_percentage":50,"description":"dev",
            "rules":[{"attribute":"plan","operator":"equals","values":["pro"],"variant":"v3"}],
            "flag_type":"string","default_value":"v2","disabled_value":"v1"}"#,
        )
        .unwrap();
        assert_eq!(
            sse_upsert("6c1f0b7e-2d9a-4a57-9a43-1d5b0c1e2f3a", &doc).unwrap(),
            r#"{"env_id":"6c1f0b7e-2d9a-4a57-9a43-1d5b0c1e2f3a","flag":{"default_value":"v2","description":"dev","disabled_value":"v1","flag_type":"string","is_enabled":true,"key":"checkout","rollout_percentage":50,"rules":[{"attribute":"plan","operator":"equals","values":["pro"],"variant":"v3"}]},"type":"UPSERT"}"#
        );
    }

    #[test]
    fn nulls_are_explicit_and_absent_variants_absent() {
        let doc: FlagDoc = serde_json::from_str(
            r#"{"key":"k","is_enabled":false,"rollout_percentage":null,"description":null,
            "rules":[{"attribute":"a","operator":"not_equals","values":["x"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            sse_upsert("e", &doc).unwrap(),
            r#"{"env_id":"e","flag":{"description":null,"flag_type":"boolean","is_enabled":false,"key":"k","rollout_percentage":null,"rules":[{"attribute":"a","operator":"not_equals","values":["x"]}]},"type":"UPSERT"}"#
        );
    }

    #[test]
    fn delete_payload() {
        assert_eq!(
            sse_delete("e1", "my-flag"),
            r#"{"env_id":"e1","key":"my-flag","type":"DELETE"}"#
        );
    }

    #[test]
    fn sorted_json_escapes_keys_and_nests() {
        let v: Value = serde_json::json!({"b": [{"z": 1, "a": "\"q\""}], "a\n": null});
        assert_eq!(
            to_sorted_json(&v),
            r#"{"a\n":null,"b":[{"a":"\"q\"","z":1}]}"#
        );
    }

    #[test]
    fn error_body_shape() {
        let body = serde_json::to_string(&ErrorBody::new("not_found", "no flag \"x\"")).unwrap();
        assert_eq!(
            body,
            r#"{"error":{"code":"not_found","message":"no flag \"x\""}}"#
        );
    }

    #[test]
    fn evaluate_request_refuses_unknown_fields() {
        assert!(serde_json::from_str::<EvaluateRequest>(r#"{"context":{},"flag":"x"}"#).is_err());
        let r: EvaluateRequest = serde_json::from_str(r#"{"flags":["a"]}"#).unwrap();
        assert_eq!(r.flags.as_deref(), Some(&["a".to_owned()][..]));
    }
}

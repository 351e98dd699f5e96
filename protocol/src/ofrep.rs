//! The OpenFeature Remote Evaluation Protocol's bodies (OFREP 0.3), shaped for what the real
//! providers require: a `variant` and a standard reason on every success, `key` and
//! `errorCode` on single-flag errors, `errorDetails` on every error.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The request of both evaluation endpoints. Providers send `{}` when there is no context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OfrepRequest {
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
}

/// A successful evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfrepSuccess {
    pub key: String,
    pub value: Value,
    /// One of OpenFeature's reasons: STATIC, TARGETING_MATCH, SPLIT, DISABLED, DEFAULT, …
    pub reason: String,
    pub variant: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

/// OFREP's error codes. `TYPE_MISMATCH` is the provider's to compute, never the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OfrepErrorCode {
    ParseError,
    TargetingKeyMissing,
    InvalidContext,
    General,
    FlagNotFound,
}

/// A failed evaluation (400 / 404 on the single endpoint, an item of a bulk answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfrepFailure {
    pub key: String,
    pub error_code: OfrepErrorCode,
    pub error_details: String,
}

/// One flag in a bulk answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OfrepResult {
    Success(OfrepSuccess),
    Failure(OfrepFailure),
}

/// Where a client can hear that its bulk evaluation is out of date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventStream {
    /// Always `"sse"` from this server.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EventStreamEndpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactivity_delay_sec: Option<u32>,
}

/// An event stream given relative to the server the client already talks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventStreamEndpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    pub request_uri: String,
}

/// The bulk endpoint's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfrepBulkResponse {
    pub flags: Vec<OfrepResult>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_streams: Vec<EventStream>,
}

/// The bulk endpoint's failure (400): no key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfrepBulkFailure {
    pub error_code: OfrepErrorCode,
    pub error_details: String,
}

/// The `data` of the `message` SSE event that tells bulk clients to re-fetch (ADR-0008).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefetchEvaluation {
    /// Always `"refetchEvaluation"`.
    #[serde(rename = "type")]
    pub kind: String,
    pub etag: String,
    /// Unix seconds.
    pub last_modified: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_accepts_missing_context() {
        assert_eq!(
            serde_json::from_str::<OfrepRequest>("{}").unwrap().context,
            None
        );
        let r: OfrepRequest = serde_json::from_str(r#"{"context":{"targetingKey":"u"}}"#).unwrap();
        assert_eq!(r.context.unwrap()["targetingKey"], "u");
    }

    #[test]
    fn shapes_match_the_protocol() {
        let ok = OfrepResult::Success(OfrepSuccess {
            key: "f".into(),
            value: Value::Bool(true),
            reason: "STATIC".into(),
            variant: "true".into(),
            metadata: Map::new(),
        });
        let bad = OfrepResult::Failure(OfrepFailure {
            key: "g".into(),
            error_code: OfrepErrorCode::FlagNotFound,
            error_details: "no flag \"g\"".into(),
        });
        let bulk = OfrepBulkResponse {
            flags: vec![ok, bad],
            metadata: Map::new(),
            event_streams: vec![EventStream {
                kind: "sse".into(),
                url: None,
                endpoint: Some(EventStreamEndpoint {
                    origin: None,
                    request_uri: "/ofrep/v1/events".into(),
                }),
                inactivity_delay_sec: Some(120),
            }],
        };
        let json = serde_json::to_string(&bulk).unwrap();
        assert_eq!(
            json,
            r#"{"flags":[{"key":"f","value":true,"reason":"STATIC","variant":"true"},{"key":"g","errorCode":"FLAG_NOT_FOUND","errorDetails":"no flag \"g\""}],"eventStreams":[{"type":"sse","endpoint":{"requestUri":"/ofrep/v1/events"},"inactivityDelaySec":120}]}"#
        );
        let back: OfrepBulkResponse = serde_json::from_str(&json).unwrap();
        assert_eq!(back, bulk);
    }

    #[test]
    fn refetch_event_data() {
        let e = RefetchEvaluation {
            kind: "refetchEvaluation".into(),
            etag: "\"v7\"".into(),
            last_modified: 1_771_622_898,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"refetchEvaluation","etag":"\"v7\"","lastModified":1771622898}"#
        );
    }
}

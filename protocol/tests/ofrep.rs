//! OFREP bodies against the protocol's examples and what the real providers require: exact
//! text, camelCase names, the request forms providers send, and round trips.

// Helpers outside `#[test]` functions unwrap too: a failure there is the assertion.
#![allow(clippy::unwrap_used)]

use checkgate_core::{ErrorCode as CoreCode, Evaluation, Reason as CoreReason};
use checkgate_protocol::ofrep::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// Serializes to exactly `text`, and `text` parses back to `value`.
fn exact<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T, text: &str) {
    assert_eq!(serde_json::to_string(value).unwrap(), text);
    assert_eq!(&serde_json::from_str::<T>(text).unwrap(), value);
}

fn map(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn requests_with_and_without_context() {
    // Python omits `context`; the JS core sends `{}` too; the Python SDK may send an empty one.
    for empty in ["{}", r#"{"context":null}"#] {
        assert_eq!(
            serde_json::from_str::<OfrepRequest>(empty).unwrap().context,
            None
        );
    }
    let r: OfrepRequest = serde_json::from_str(r#"{"context":{}}"#).unwrap();
    assert_eq!(r.context, Some(Map::new()));
    exact(
        &OfrepRequest {
            context: Some(map(json!({"targetingKey": "user-123", "plan": "pro"}))),
        },
        r#"{"context":{"plan":"pro","targetingKey":"user-123"}}"#,
    );
    exact(&OfrepRequest::default(), "{}");
}

#[test]
fn single_success() {
    exact(
        &OfrepResult::Success(OfrepSuccess {
            key: "discount-banner".into(),
            value: json!(true),
            reason: Reason::TargetingMatch,
            variant: "enabled".into(),
            metadata: map(json!({"team": "ecommerce"})),
        }),
        r#"{"key":"discount-banner","value":true,"reason":"TARGETING_MATCH","variant":"enabled","metadata":{"team":"ecommerce"}}"#,
    );
}

#[test]
fn single_failures_and_their_statuses() {
    let failure = OfrepFailure::new("missing", OfrepErrorCode::FlagNotFound);
    assert_eq!(failure.error_code.status(), 404);
    exact(
        &OfrepResult::Failure(failure),
        r#"{"key":"missing","errorCode":"FLAG_NOT_FOUND","errorDetails":"no flag \"missing\" in this environment"}"#,
    );
    let codes = [
        (OfrepErrorCode::ParseError, "PARSE_ERROR"),
        (OfrepErrorCode::TargetingKeyMissing, "TARGETING_KEY_MISSING"),
        (OfrepErrorCode::InvalidContext, "INVALID_CONTEXT"),
        (OfrepErrorCode::General, "GENERAL"),
    ];
    for (code, name) in codes {
        assert_eq!(code.status(), 400);
        let f = OfrepFailure::new("k", code);
        assert!(!f.error_details.is_empty());
        let text = serde_json::to_string(&f).unwrap();
        assert!(text.contains(&format!(r#""errorCode":"{name}""#)), "{text}");
    }
    assert!(serde_json::from_str::<OfrepErrorCode>(r#""TYPE_MISMATCH""#).is_err());
}

#[test]
fn results_from_the_evaluator() {
    let off = json!(false);
    let disabled = Evaluation {
        value: &off,
        value_json: "false",
        variant: "off",
        reason: CoreReason::Disabled,
        error: None,
        enabled: false,
    };
    // A disabled flag keeps its value and variant: both providers need them.
    exact(
        &OfrepResult::new("beta", &disabled),
        r#"{"key":"beta","value":false,"reason":"DISABLED","variant":"off"}"#,
    );
    let missing = OfrepResult::new("gone", &Evaluation::error(CoreCode::FlagNotFound));
    assert!(matches!(
        missing,
        OfrepResult::Failure(OfrepFailure {
            error_code: OfrepErrorCode::FlagNotFound,
            ..
        })
    ));
    assert_eq!(
        OfrepErrorCode::from(CoreCode::TypeMismatch),
        OfrepErrorCode::General
    );
    assert_eq!(
        OfrepErrorCode::from(CoreCode::ParseError),
        OfrepErrorCode::ParseError
    );
}

#[test]
fn bulk_answer_with_mixed_items_and_event_streams() {
    let bulk = OfrepBulkResponse {
        flags: vec![
            OfrepResult::Success(OfrepSuccess {
                key: "f".into(),
                value: json!({"a": 1}),
                reason: Reason::Static,
                variant: "only".into(),
                metadata: Map::new(),
            }),
            OfrepResult::Failure(OfrepFailure {
                key: "x".into(),
                error_code: OfrepErrorCode::ParseError,
                error_details: "bad".into(),
            }),
        ],
        metadata: map(json!({"version": "v12"})),
        event_streams: vec![
            EventStream {
                kind: "sse".into(),
                location: EventStreamLocation::Url("https://edge/s?channels=env_abc".into()),
                inactivity_delay_sec: Some(120),
            },
            EventStream {
                kind: "sse".into(),
                location: EventStreamLocation::Endpoint(EventStreamEndpoint {
                    origin: None,
                    request_uri: "/ofrep/v1/events".into(),
                }),
                inactivity_delay_sec: None,
            },
        ],
    };
    exact(
        &bulk,
        r#"{"flags":[{"key":"f","value":{"a":1},"reason":"STATIC","variant":"only"},{"key":"x","errorCode":"PARSE_ERROR","errorDetails":"bad"}],"metadata":{"version":"v12"},"eventStreams":[{"type":"sse","url":"https://edge/s?channels=env_abc","inactivityDelaySec":120},{"type":"sse","endpoint":{"requestUri":"/ofrep/v1/events"}}]}"#,
    );
    exact(&OfrepBulkResponse::default(), r#"{"flags":[]}"#);
}

#[test]
fn bulk_and_general_failures() {
    exact(
        &OfrepBulkFailure {
            error_code: OfrepErrorCode::InvalidContext,
            error_details: "context must be an object".into(),
        },
        r#"{"errorCode":"INVALID_CONTEXT","errorDetails":"context must be an object"}"#,
    );
    exact(
        &OfrepGeneralError {
            error_details: "internal error".into(),
        },
        r#"{"errorDetails":"internal error"}"#,
    );
}

#[test]
fn refetch_event_data() {
    exact(
        &RefetchEvaluation {
            etag: "\"v7\"".into(),
            last_modified: 1_771_622_898,
        },
        r#"{"type":"refetchEvaluation","etag":"\"v7\"","lastModified":1771622898}"#,
    );
}

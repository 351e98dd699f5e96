//! Our evaluation API's JSON shapes, each checked against its exact text and round-tripped.

// Helpers outside `#[test]` functions unwrap too: a failure there is the assertion.
#![allow(clippy::unwrap_used)]

use checkgate_core::{ErrorCode as CoreCode, Evaluation, Reason as CoreReason};
use checkgate_protocol::json::{
    ErrorCode, EvaluateRequest, EvaluateResponse, FlagEvaluation, Reason,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// Serializes to exactly `text`, and `text` parses back to `value`.
fn exact<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T, text: &str) {
    assert_eq!(serde_json::to_string(value).unwrap(), text);
    assert_eq!(&serde_json::from_str::<T>(text).unwrap(), value);
}

#[test]
fn evaluate_request_shapes() {
    exact(
        &EvaluateRequest {
            context: json!({"targetingKey": "u1", "plan": "pro"})
                .as_object()
                .unwrap()
                .clone(),
            flags: Some(vec!["k1".into(), "k2".into()]),
        },
        r#"{"context":{"plan":"pro","targetingKey":"u1"},"flags":["k1","k2"]}"#,
    );
    exact(&EvaluateRequest::default(), r#"{"context":{}}"#);
    for empty in ["{}", r#"{"context":null}"#, r#"{"context":{}}"#] {
        assert_eq!(
            serde_json::from_str::<EvaluateRequest>(empty).unwrap(),
            EvaluateRequest::default()
        );
    }
}

#[test]
fn evaluate_request_refuses_unknown_fields_and_bad_types() {
    for bad in [
        r#"{"context":{},"flag":"x"}"#,
        r#"{"context":[]}"#,
        r#"{"flags":"k1"}"#,
    ] {
        assert!(
            serde_json::from_str::<EvaluateRequest>(bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn flag_evaluation_shapes() {
    let value = json!("v3");
    let hit = Evaluation {
        value: &value,
        value_json: r#""v3""#,
        variant: "v3",
        reason: CoreReason::TargetingMatch,
        error: None,
        enabled: true,
    };
    let miss = Evaluation::error(CoreCode::FlagNotFound);
    let response = EvaluateResponse {
        flags: vec![
            FlagEvaluation::new("checkout", &hit),
            FlagEvaluation::new("nope", &miss),
        ],
    };
    exact(
        &response,
        r#"{"flags":[{"key":"checkout","value":"v3","variant":"v3","reason":"TARGETING_MATCH","enabled":true},{"key":"nope","value":null,"variant":"","reason":"ERROR","errorCode":"FLAG_NOT_FOUND","enabled":false}]}"#,
    );
}

#[test]
fn reasons_and_codes_are_openfeature_names() {
    let reasons = [
        (CoreReason::Static, "STATIC"),
        (CoreReason::TargetingMatch, "TARGETING_MATCH"),
        (CoreReason::Split, "SPLIT"),
        (CoreReason::Disabled, "DISABLED"),
        (CoreReason::Default, "DEFAULT"),
        (CoreReason::Error, "ERROR"),
    ];
    for (core, name) in reasons {
        assert_eq!(core.as_str(), name);
        exact(&Reason::from(core), &format!("\"{name}\""));
    }
    let codes = [
        CoreCode::FlagNotFound,
        CoreCode::ParseError,
        CoreCode::TypeMismatch,
        CoreCode::TargetingKeyMissing,
        CoreCode::InvalidContext,
        CoreCode::General,
    ];
    for core in codes {
        exact(&ErrorCode::from(core), &format!("\"{}\"", core.as_str()));
    }
    assert!(serde_json::from_str::<Reason>(r#""MADE_UP""#).is_err());
}

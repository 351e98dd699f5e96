//! JSON bodies shared by both binaries: the API error body here, Checkgate's SSE `update`
//! payloads in [`sse`], our evaluation API in [`eval`]. (The OpenFeature Remote Evaluation
//! Protocol has its own module, [`crate::ofrep`].)

pub mod eval;
pub mod sse;

use serde::{Deserialize, Serialize};

pub use eval::{ErrorCode, EvaluateRequest, EvaluateResponse, FlagEvaluation, Reason};
pub use sse::{sse_delete, sse_upsert, to_sorted_json};

/// The body of every API error: `{"error":{"code":"…","message":"…"}}`. One shape for every
/// route of both binaries, so a client needs one error parser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Error))]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub error: ErrorDetail,
}

/// What went wrong, for programs (`code`) and for people (`message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// A stable, machine-readable code from a closed set (`bad_request`, `not_found`, …).
    pub code: String,
    /// A sentence for people. Never internal details.
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_shape() {
        let body = ErrorBody::new("not_found", "no flag \"x\"");
        let text = r#"{"error":{"code":"not_found","message":"no flag \"x\""}}"#;
        assert_eq!(serde_json::to_string(&body).unwrap(), text);
        assert_eq!(serde_json::from_str::<ErrorBody>(text).unwrap(), body);
    }
}

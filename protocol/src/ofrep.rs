//! The OpenFeature Remote Evaluation Protocol's bodies (OFREP 0.3), shaped for what the real
//! providers require beyond the schema: every success carries `value`, `variant` and a
//! standard reason (disabled flags included); a single-flag error carries `key` and
//! `errorCode`; every error carries `errorDetails`; a request may omit `context`.
//!
//! There is no configuration body: `GET /ofrep/v1/configuration` was removed from the
//! protocol. What a server offers is told in the bulk answer (`eventStreams`).

use checkgate_core::Evaluation;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::json::Reason;

/// The request of both evaluation endpoints. Providers send `{}` when there is no context,
/// and some `{"context":{}}`; both mean an empty context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OfrepRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
}

/// A successful evaluation (200 on the single endpoint, an item of a bulk answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfrepSuccess {
    pub key: String,
    /// Always present: a provider that finds none reports a general error.
    pub value: Value,
    pub reason: Reason,
    /// Always present: the Python provider fails without it.
    pub variant: String,
    /// A flat map of booleans, strings and numbers. Keep it stable between versions: web
    /// providers diff it, and a changing value makes every flag look changed.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

/// OFREP's error codes. `TYPE_MISMATCH` is the provider's to compute, never the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OfrepErrorCode {
    ParseError,
    TargetingKeyMissing,
    InvalidContext,
    General,
    FlagNotFound,
}

impl OfrepErrorCode {
    /// The single-flag endpoint's status for this error: 404 for a missing flag, 400 otherwise
    /// (the statuses the providers read an OFREP error body from).
    pub fn status(self) -> u16 {
        match self {
            Self::FlagNotFound => 404,
            _ => 400,
        }
    }
}

/// The evaluator's codes, as OFREP has them. A type mismatch on the server means the stored
/// flag contradicts its own type: a general error for the client.
impl From<checkgate_core::ErrorCode> for OfrepErrorCode {
    fn from(code: checkgate_core::ErrorCode) -> Self {
        use checkgate_core::ErrorCode as Core;
        match code {
            Core::FlagNotFound => Self::FlagNotFound,
            Core::ParseError => Self::ParseError,
            Core::TargetingKeyMissing => Self::TargetingKeyMissing,
            Core::InvalidContext => Self::InvalidContext,
            Core::TypeMismatch | Core::General => Self::General,
        }
    }
}

/// A failed evaluation (400 / 404 on the single endpoint, an item of a bulk answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfrepFailure {
    pub key: String,
    pub error_code: OfrepErrorCode,
    pub error_details: String,
}

impl OfrepFailure {
    /// A failure with a sentence that says what went wrong with `key`.
    pub fn new(key: impl Into<String>, error_code: OfrepErrorCode) -> Self {
        let key = key.into();
        let error_details = match error_code {
            OfrepErrorCode::FlagNotFound => format!("no flag \"{key}\" in this environment"),
            OfrepErrorCode::ParseError => {
                format!("flag \"{key}\" is stored but could not be loaded")
            }
            OfrepErrorCode::TargetingKeyMissing => {
                format!("flag \"{key}\" needs a targetingKey in the context")
            }
            OfrepErrorCode::InvalidContext => "the evaluation context is not valid".to_owned(),
            OfrepErrorCode::General => format!("flag \"{key}\" could not be evaluated"),
        };
        Self {
            key,
            error_code,
            error_details,
        }
    }
}

/// One flag in a bulk answer, or the body of a single-flag answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OfrepResult {
    Success(OfrepSuccess),
    Failure(OfrepFailure),
}

impl OfrepResult {
    /// The answer for `key` from the evaluator's result: a failure when it carries an error
    /// code, a success (with value and variant, even for a disabled flag) otherwise.
    pub fn new(key: impl Into<String>, evaluation: &Evaluation<'_>) -> Self {
        match evaluation.error {
            Some(code) => Self::Failure(OfrepFailure::new(key, code.into())),
            None => Self::Success(OfrepSuccess {
                key: key.into(),
                value: evaluation.value.clone(),
                reason: evaluation.reason.into(),
                variant: evaluation.variant.to_owned(),
                metadata: Map::new(),
            }),
        }
    }
}

/// The bulk endpoint's answer (200, with an `ETag` header).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfrepBulkResponse {
    pub flags: Vec<OfrepResult>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// Where the client hears that this answer is out of date; web providers switch from
    /// polling to it when present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_streams: Vec<EventStream>,
}

/// The bulk endpoint's failure (400): like a single failure, without a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfrepBulkFailure {
    pub error_code: OfrepErrorCode,
    pub error_details: String,
}

/// The body of a 500 on either endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfrepGeneralError {
    pub error_details: String,
}

/// An event stream a bulk client may listen to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventStream {
    /// `"sse"`; clients ignore types they do not know.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it is: exactly one of `url` or `endpoint`.
    #[serde(flatten)]
    pub location: EventStreamLocation,
    /// How long a hidden page may stay disconnected before the provider stops listening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactivity_delay_sec: Option<u32>,
}

/// Where an event stream is. The URL may hold a token: clients must not log it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventStreamLocation {
    /// An absolute URL.
    Url(String),
    /// Relative to the server the client already talks to.
    Endpoint(EventStreamEndpoint),
}

/// An event stream given as a path, on the client's own base origin unless `origin` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventStreamEndpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    pub request_uri: String,
}

/// The `data` of the SSE `message` event that tells bulk clients to fetch again:
/// `{"type":"refetchEvaluation","etag":"…","lastModified":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "refetchEvaluation", rename_all = "camelCase")]
pub struct RefetchEvaluation {
    /// The bulk answer's current `ETag`, sent back as `flagConfigEtag`.
    pub etag: String,
    /// Unix seconds, sent back as `flagConfigLastModified`.
    pub last_modified: u64,
}

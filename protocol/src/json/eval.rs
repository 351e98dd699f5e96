//! Our own server-side evaluation API: the request (`{"context":{…},"flags":["k1","k2"]}`),
//! one flag's answer (`{"key","value","variant","reason","errorCode"?,"enabled"}`), and the
//! reason and error codes it shares with OFREP.

use checkgate_core::Evaluation;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Why a value was served: OpenFeature's standard reasons, the only ones its providers accept
/// (the Python OFREP provider raises on anything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The flag serves the same value to every context.
    Static,
    /// A targeting rule matched.
    TargetingMatch,
    /// A percentage rollout or weighted split decided.
    Split,
    /// The flag is off, or a prerequisite does not hold.
    Disabled,
    /// No rule matched; the flag's default was served.
    Default,
    /// Evaluation failed; the error code says why.
    Error,
    /// Served from a cache.
    Cached,
    /// Served from data known to be out of date.
    Stale,
    Unknown,
}

impl From<checkgate_core::Reason> for Reason {
    fn from(reason: checkgate_core::Reason) -> Self {
        use checkgate_core::Reason as Core;
        match reason {
            Core::Static => Self::Static,
            Core::TargetingMatch => Self::TargetingMatch,
            Core::Split => Self::Split,
            Core::Disabled => Self::Disabled,
            Core::Default => Self::Default,
            Core::Error => Self::Error,
        }
    }
}

/// Why an evaluation failed: OpenFeature's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    FlagNotFound,
    /// The flag is stored but could not be compiled here.
    ParseError,
    TypeMismatch,
    /// Bucketing needed a targeting key that the context lacks.
    TargetingKeyMissing,
    InvalidContext,
    General,
}

impl From<checkgate_core::ErrorCode> for ErrorCode {
    fn from(code: checkgate_core::ErrorCode) -> Self {
        use checkgate_core::ErrorCode as Core;
        match code {
            Core::FlagNotFound => Self::FlagNotFound,
            Core::ParseError => Self::ParseError,
            Core::TypeMismatch => Self::TypeMismatch,
            Core::TargetingKeyMissing => Self::TargetingKeyMissing,
            Core::InvalidContext => Self::InvalidContext,
            Core::General => Self::General,
        }
    }
}

/// Our evaluation API's request: a context and, optionally, which flags to evaluate. Unknown
/// fields are refused, so a misspelt `flags` is an error rather than "evaluate everything".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    /// The OpenFeature context shape: `targetingKey` plus attributes. Absent or `null` means
    /// an empty context.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub context: Map<String, Value>,
    /// Evaluate only these flags; all flags of the environment when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(de: D) -> Result<Map<String, Value>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(de)?.unwrap_or_default())
}

/// One flag's result in our evaluation API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagEvaluation {
    pub key: String,
    /// The value served; `null` on error, so the caller falls back to its own default.
    pub value: Value,
    /// The name of the value served (`""` on error).
    pub variant: String,
    pub reason: Reason,
    #[serde(default, rename = "errorCode", skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// Checkgate's on/off answer, so a Checkgate client moving to server-side evaluation keeps
    /// its `is_enabled(key)` meaning: false when the flag is off, outside its rollout, blocked
    /// by a prerequisite, or in error.
    #[serde(default)]
    pub enabled: bool,
}

impl FlagEvaluation {
    /// The answer for `key` from the evaluator's result.
    pub fn new(key: impl Into<String>, evaluation: &Evaluation<'_>) -> Self {
        Self {
            key: key.into(),
            value: evaluation.value.clone(),
            variant: evaluation.variant.to_owned(),
            reason: evaluation.reason.into(),
            error_code: evaluation.error.map(ErrorCode::from),
            enabled: evaluation.enabled,
        }
    }
}

/// Our evaluation API's answer for several flags, in key order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvaluateResponse {
    pub flags: Vec<FlagEvaluation>,
}

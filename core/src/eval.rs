//! The evaluator: a pure function of a compiled flag, a context and the flag's environment
//! (for prerequisites and segments). It allocates nothing — results borrow from the compiled
//! flag, and the bucketing hash is streamed — and reads no clock and no randomness.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::compile::{CompiledFlag, CompiledSegment, Fallthrough, Outcome, Rule, Serve, Split};
use crate::context::{Attr, Context};
use crate::hash::{percent_bucket, split_bucket};

/// How deep prerequisite chains may go. Cycles are refused when flags are written; this bound
/// turns one that slipped through into an error instead of a stack overflow.
pub const MAX_PREREQUISITE_DEPTH: usize = 16;

/// Why a value was served (OpenFeature's reason codes).
// Serialized as `as_str` names it (a test checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// No rule matched and the flag's default was served.
    Default,
    /// Evaluation failed; see the error code.
    Error,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "STATIC",
            Self::TargetingMatch => "TARGETING_MATCH",
            Self::Split => "SPLIT",
            Self::Disabled => "DISABLED",
            Self::Default => "DEFAULT",
            Self::Error => "ERROR",
        }
    }
}

/// Why evaluation failed (OpenFeature's error codes).
// Serialized as `as_str` names it (a test checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    FlagNotFound,
    /// The flag is stored but did not compile here.
    ParseError,
    TypeMismatch,
    /// Bucketing needed a targeting key (or the `bucket_by` attribute) that the context lacks.
    TargetingKeyMissing,
    InvalidContext,
    General,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FlagNotFound => "FLAG_NOT_FOUND",
            Self::ParseError => "PARSE_ERROR",
            Self::TypeMismatch => "TYPE_MISMATCH",
            Self::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            Self::InvalidContext => "INVALID_CONTEXT",
            Self::General => "GENERAL",
        }
    }
}

/// The result of evaluating a flag. Borrows from the compiled flag.
#[derive(Debug, Clone, Copy)]
pub struct Evaluation<'f> {
    pub value: &'f Value,
    /// `value` serialized, ready to be written into a response.
    pub value_json: &'f str,
    pub variant: &'f str,
    pub reason: Reason,
    pub error: Option<ErrorCode>,
    /// Checkgate's `enabled`: false when the flag is off, outside its rollout, blocked by a
    /// prerequisite, or in error.
    pub enabled: bool,
}

static NULL: Value = Value::Null;

impl Evaluation<'static> {
    /// The result for a flag that does not exist (or did not compile).
    pub fn error(code: ErrorCode) -> Self {
        Self {
            value: &NULL,
            value_json: "null",
            variant: "",
            reason: Reason::Error,
            error: Some(code),
            enabled: false,
        }
    }
}

/// Where the evaluator finds the other flags and the segments of the environment.
pub trait Lookup {
    /// The flag to evaluate under `key`, or why there is none: `FlagNotFound`, or
    /// `ParseError` for a flag stored but not compiled here.
    fn flag(&self, key: &str) -> Result<Arc<CompiledFlag>, ErrorCode>;
    fn segment(&self, key: &str) -> Option<Arc<CompiledSegment>>;
}

/// An environment with nothing in it, for evaluating a lone flag.
#[derive(Debug, Clone, Copy, Default)]
pub struct Standalone;

impl Lookup for Standalone {
    fn flag(&self, _: &str) -> Result<Arc<CompiledFlag>, ErrorCode> {
        Err(ErrorCode::FlagNotFound)
    }

    fn segment(&self, _: &str) -> Option<Arc<CompiledSegment>> {
        None
    }
}

fn serve<'f>(o: &'f Outcome, reason: Reason, enabled: bool) -> Evaluation<'f> {
    Evaluation {
        value: &o.value,
        value_json: &o.json,
        variant: &o.variant,
        reason,
        error: None,
        enabled,
    }
}

fn fail(flag: &CompiledFlag, code: ErrorCode) -> Evaluation<'_> {
    Evaluation {
        error: Some(code),
        ..serve(&flag.off, Reason::Error, false)
    }
}

/// A fixed buffer for writing a number attribute as bucketing text without allocating. Rust
/// writes `f64` in plain decimal, shortest round-trip form; the longest (the smallest
/// subnormal) takes about 330 bytes.
struct StackText {
    buf: [u8; 400],
    len: usize,
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Hashes the context's bucketing value for this flag, `None` when it has none.
#[inline]
fn bucket_of(flag: &CompiledFlag, ctx: &Context<'_>) -> Option<u32> {
    let Some(attribute) = flag.bucket_by.as_deref() else {
        return ctx.targeting_key().map(|k| flag.salt.hash(k));
    };
    match ctx.get(attribute)? {
        Attr::Str(s) => Some(flag.salt.hash(s)),
        Attr::Bool(b) => Some(flag.salt.hash(if b { "true" } else { "false" })),
        Attr::Number(n) => {
            let mut text = StackText {
                buf: [0; 400],
                len: 0,
            };
            write!(text, "{n}").ok()?;
            std::str::from_utf8(&text.buf[..text.len])
                .ok()
                .map(|s| flag.salt.hash(s))
        }
        Attr::List(_) => None,
    }
}

fn serve_split<'f>(flag: &'f CompiledFlag, split: &Split, ctx: &Context<'_>) -> Evaluation<'f> {
    let Some(h) = bucket_of(flag, ctx) else {
        return fail(flag, ErrorCode::TargetingKeyMissing);
    };
    match flag.variants.get(split.pick(split_bucket(h))) {
        Some(variant) => serve(variant, Reason::Split, true),
        // Unreachable for a compiled split (its indices are checked); never a panic.
        None => fail(flag, ErrorCode::General),
    }
}

fn in_segment<L: Lookup + ?Sized>(env: &L, key: &str, ctx: &Context<'_>) -> bool {
    let Some(segment) = env.segment(key) else {
        // Like Checkgate, a rule on an unknown segment never matches; the control plane
        // refuses to write one.
        return false;
    };
    if let Some(k) = ctx.targeting_key() {
        let has = |list: &[Box<str>]| list.binary_search_by(|v| v.as_ref().cmp(k)).is_ok();
        if has(&segment.excluded) {
            return false;
        }
        if has(&segment.included) {
            return true;
        }
    }
    // Segment rules cannot hold `in_segment` conditions (compilation refuses them).
    segment
        .rules
        .iter()
        .any(|rule| rule.iter().all(|c| c.matches(ctx)))
}

fn rule_matches<L: Lookup + ?Sized>(rule: &Rule, ctx: &Context<'_>, env: &L) -> bool {
    if let Some(seg) = rule.segment.as_deref()
        && !in_segment(env, seg, ctx)
    {
        return false;
    }
    rule.conditions.iter().all(|c| match c.segment_keys() {
        [] => c.matches(ctx),
        keys => keys.iter().any(|k| in_segment(env, k, ctx)),
    })
}

/// Evaluates `flag` for `ctx`. `env` supplies prerequisite flags and segments.
pub fn evaluate<'f, L: Lookup + ?Sized>(
    flag: &'f CompiledFlag,
    ctx: &Context<'_>,
    env: &L,
) -> Evaluation<'f> {
    evaluate_at(flag, ctx, env, 0)
}

fn evaluate_at<'f, L: Lookup + ?Sized>(
    flag: &'f CompiledFlag,
    ctx: &Context<'_>,
    env: &L,
    depth: usize,
) -> Evaluation<'f> {
    if !flag.enabled {
        return serve(&flag.off, Reason::Disabled, false);
    }
    if flag.is_static {
        return serve(&flag.on, Reason::Static, true);
    }
    for pre in flag.prerequisites.iter() {
        if depth >= MAX_PREREQUISITE_DEPTH {
            return fail(flag, ErrorCode::General);
        }
        let required = match env.flag(&pre.key) {
            Ok(required) => required,
            Err(ErrorCode::FlagNotFound) => return serve(&flag.off, Reason::Disabled, false),
            Err(code) => return fail(flag, code),
        };
        let got = evaluate_at(&required, ctx, env, depth + 1);
        if let Some(code) = got.error {
            return fail(flag, code);
        }
        let variant_ok =
            pre.variants.is_empty() || pre.variants.iter().any(|v| v.as_ref() == got.variant);
        if !(got.enabled && variant_ok) {
            return serve(&flag.off, Reason::Disabled, false);
        }
    }
    for rule in flag.rules.iter() {
        if rule_matches(rule, ctx, env) {
            return match &rule.serve {
                Serve::Outcome(o) => serve(o, Reason::TargetingMatch, true),
                Serve::On => serve(&flag.on, Reason::TargetingMatch, true),
                Serve::Split(split) => serve_split(flag, split, ctx),
            };
        }
    }
    match &flag.fallthrough {
        Fallthrough::On => serve(&flag.on, Reason::Default, true),
        Fallthrough::Off => serve(&flag.off, Reason::Split, false),
        Fallthrough::Rollout(pct) => match bucket_of(flag, ctx) {
            Some(h) if percent_bucket(h) < *pct => serve(&flag.on, Reason::Split, true),
            Some(_) => serve(&flag.off, Reason::Split, false),
            None => fail(flag, ErrorCode::TargetingKeyMissing),
        },
        Fallthrough::Split(split) => serve_split(flag, split, ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::{ErrorCode, Reason};

    #[test]
    fn reasons_and_error_codes_serialize_as_their_names() {
        for reason in [
            Reason::Static,
            Reason::TargetingMatch,
            Reason::Split,
            Reason::Disabled,
            Reason::Default,
            Reason::Error,
        ] {
            assert_eq!(
                serde_json::to_value(reason).ok(),
                Some(reason.as_str().into())
            );
        }
        for code in [
            ErrorCode::FlagNotFound,
            ErrorCode::ParseError,
            ErrorCode::TypeMismatch,
            ErrorCode::TargetingKeyMissing,
            ErrorCode::InvalidContext,
            ErrorCode::General,
        ] {
            assert_eq!(serde_json::to_value(code).ok(), Some(code.as_str().into()));
        }
    }
}

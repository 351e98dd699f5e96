//! Writing evaluation answers straight into the response body: the value comes pre-serialized
//! from the compiled flag (`Evaluation::value_json`), so an answer for every flag of an
//! environment is one buffer with no per-flag value clone. The shapes are those of
//! `checkgate_protocol::json::FlagEvaluation` and `checkgate_protocol::ofrep::OfrepResult`
//! (the tests parse these bytes back into those types).

use std::sync::Arc;

use checkgate_core::{CompiledFlag, Environment, ErrorCode, Evaluation, Reason};
use checkgate_protocol::ofrep::{OfrepErrorCode, OfrepFailure};
use dashmap::DashMap;

fn string(out: &mut Vec<u8>, s: &str) {
    // Writing a `&str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn reason(r: Reason) -> &'static str {
    match r {
        Reason::Static => "STATIC",
        Reason::TargetingMatch => "TARGETING_MATCH",
        Reason::Split => "SPLIT",
        Reason::Disabled => "DISABLED",
        Reason::Default => "DEFAULT",
        Reason::Error => "ERROR",
    }
}

fn error_code(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
        ErrorCode::ParseError => "PARSE_ERROR",
        ErrorCode::TypeMismatch => "TYPE_MISMATCH",
        ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
        ErrorCode::InvalidContext => "INVALID_CONTEXT",
        ErrorCode::General => "GENERAL",
    }
}

/// One flag in our evaluation API's shape.
pub fn ours(out: &mut Vec<u8>, key: &str, e: &Evaluation<'_>) {
    out.extend_from_slice(b"{\"key\":");
    string(out, key);
    out.extend_from_slice(b",\"value\":");
    if e.error.is_some() {
        out.extend_from_slice(b"null");
    } else {
        out.extend_from_slice(e.value_json.as_bytes());
    }
    out.extend_from_slice(b",\"variant\":");
    string(out, if e.error.is_some() { "" } else { e.variant });
    out.extend_from_slice(b",\"reason\":\"");
    out.extend_from_slice(reason(e.reason).as_bytes());
    out.push(b'"');
    if let Some(code) = e.error {
        out.extend_from_slice(b",\"errorCode\":\"");
        out.extend_from_slice(error_code(code).as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"enabled\":");
    out.extend_from_slice(if e.enabled { b"true" } else { b"false" });
    out.push(b'}');
}

/// One flag in OFREP's shape: a success with value, variant and reason, or a failure.
pub fn ofrep(out: &mut Vec<u8>, key: &str, e: &Evaluation<'_>) {
    if let Some(code) = e.error {
        let failure = OfrepFailure::new(key, OfrepErrorCode::from(code));
        let _ = serde_json::to_writer(&mut *out, &failure);
        return;
    }
    out.extend_from_slice(b"{\"key\":");
    string(out, key);
    out.extend_from_slice(b",\"value\":");
    out.extend_from_slice(e.value_json.as_bytes());
    out.extend_from_slice(b",\"reason\":\"");
    out.extend_from_slice(reason(e.reason).as_bytes());
    out.extend_from_slice(b"\",\"variant\":");
    string(out, e.variant);
    out.push(b'}');
}

/// The live flags of each environment, sorted by key, built once per version: evaluating every
/// flag then costs no collecting and sorting per request.
#[derive(Debug, Default)]
pub struct FlagLists {
    lists: DashMap<String, ((u64, u64), FlagList)>,
}

/// An environment's live flags, sorted by key.
pub type FlagList = Arc<[Arc<CompiledFlag>]>;

impl FlagLists {
    /// The sorted live flags of `env_id` at `position` (its epoch and version).
    pub fn get(
        &self,
        env_id: &str,
        position: (u64, u64),
        env: &Environment,
    ) -> Arc<[Arc<CompiledFlag>]> {
        if let Some(cached) = self.lists.get(env_id)
            && cached.0 == position
        {
            return Arc::clone(&cached.1);
        }
        let list: FlagList = env.live_flags().into();
        self.lists
            .insert(env_id.to_owned(), (position, Arc::clone(&list)));
        list
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use checkgate_core::{Context, Standalone, compile_flag_json, evaluate};
    use checkgate_protocol::json::FlagEvaluation;
    use checkgate_protocol::ofrep::OfrepResult;
    use serde_json::{Value, json};

    use super::*;

    /// The hand-written answers equal what the protocol types serialize, for every kind of
    /// outcome: values of each type, reasons, a disabled flag, and an evaluation error.
    #[test]
    fn written_answers_equal_the_protocol_types() {
        let flags = [
            json!({"key": "s", "is_enabled": true, "flag_type": "string", "default_value": "a \"quoted\" é",
                   "rules": [{"attribute": "plan", "operator": "equals", "values": ["pro"], "variant": "b"}]}),
            json!({"key": "b", "is_enabled": true, "rollout_percentage": 50}),
            json!({"key": "j", "is_enabled": true, "flag_type": "json", "default_value": {"x": [1, 2.5, null]}}),
            json!({"key": "i", "is_enabled": false, "flag_type": "integer", "default_value": 3, "disabled_value": -1}),
        ];
        let contexts = [
            json!({"targetingKey": "u1", "plan": "pro"}),
            json!({"targetingKey": "u2"}),
            json!({"plan": "free"}),
        ];
        for flag in &flags {
            let compiled = compile_flag_json(&flag.to_string()).unwrap();
            for ctx in &contexts {
                let map = ctx.as_object().unwrap();
                let ctx = Context::from_json_map(map).unwrap();
                let e = evaluate(&compiled, &ctx, &Standalone);
                let mut ours_bytes = Vec::new();
                ours(&mut ours_bytes, compiled.key(), &e);
                let written: Value = serde_json::from_slice(&ours_bytes).unwrap();
                let mut want =
                    serde_json::to_value(FlagEvaluation::new(compiled.key(), &e)).unwrap();
                if e.error.is_some() {
                    // On error the value is null and the variant empty, whatever the flag holds.
                    want["value"] = Value::Null;
                    want["variant"] = Value::from("");
                }
                assert_eq!(written, want, "{flag} / {ctx:?}");
                let mut ofrep_bytes = Vec::new();
                ofrep(&mut ofrep_bytes, compiled.key(), &e);
                let written: Value = serde_json::from_slice(&ofrep_bytes).unwrap();
                let want = serde_json::to_value(OfrepResult::new(compiled.key(), &e)).unwrap();
                assert_eq!(written, want, "{flag} / {ctx:?}");
            }
        }
    }
}

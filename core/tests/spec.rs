//! Runs the language-neutral evaluation spec (`tests/spec/*.json`, described in
//! `docs/evaluation.md`) against the core: every case's value, variant, reason, error code and
//! `enabled`, and every compile-error case's path and message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use checkgate_core::{Context, compile_flag_json, compile_segment_json};

#[test]
fn evaluation_spec() {
    let mut failures = Vec::new();
    let mut total = 0;
    for (file, spec) in common::load_all() {
        let env = common::environment(&spec);
        for case in &spec.cases {
            total += 1;
            let ctx = match Context::from_json_map(&case.context) {
                Ok(ctx) => ctx,
                Err(e) => {
                    failures.push(format!("{file} / {}: bad context: {e}", case.name));
                    continue;
                }
            };
            let mut holder = None;
            let got = common::eval_key(&env, &mut holder, &case.flag, &ctx);
            let want = &case.expected;
            let mut diffs = Vec::new();
            if *got.value != want.value {
                diffs.push(format!("value {} != {}", got.value, want.value));
            }
            if got.variant != want.variant {
                diffs.push(format!("variant {:?} != {:?}", got.variant, want.variant));
            }
            if got.reason.as_str() != want.reason {
                diffs.push(format!("reason {} != {}", got.reason.as_str(), want.reason));
            }
            let code = got.error.map(|c| c.as_str());
            if code != want.error_code.as_deref() {
                diffs.push(format!("errorCode {code:?} != {:?}", want.error_code));
            }
            if let Some(enabled) = want.enabled
                && got.enabled != enabled
            {
                diffs.push(format!("enabled {} != {enabled}", got.enabled));
            }
            if serde_json::from_str::<serde_json::Value>(got.value_json)
                .ok()
                .as_ref()
                != Some(got.value)
            {
                diffs.push(format!("value_json {} is not the value", got.value_json));
            }
            if !diffs.is_empty() {
                failures.push(format!("{file} / {}: {}", case.name, diffs.join("; ")));
            }
        }
        for case in &spec.compile_errors {
            total += 1;
            let json = case.document.to_string();
            let result = match case.kind.as_deref() {
                Some("segment") => compile_segment_json(&json).map(|_| ()),
                _ => compile_flag_json(&json).map(|_| ()),
            };
            match result {
                Ok(()) => failures.push(format!(
                    "{file} / {}: compiled, expected {:?}",
                    case.name, case.error
                )),
                Err(e) if e.to_string().starts_with(&case.error) => {}
                Err(e) => failures.push(format!(
                    "{file} / {}: error {:?}, expected {:?}",
                    case.name,
                    e.to_string(),
                    case.error
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} spec cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        total >= 150,
        "the spec must hold at least 150 cases, found {total}"
    );
}

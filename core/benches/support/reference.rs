//! The reference workload of the evaluation benchmarks: a flag with three rules that do not
//! match, then a 50 % rollout (the work Checkgate's core was measured on), and contexts whose
//! targeting keys differ, so bucketing cannot be cached.

use checkgate_core::{AttrValue, CompiledFlag, Context, compile_flag_json};

pub(crate) const FLAG: &str = r#"{
  "key": "new-checkout", "is_enabled": true, "rollout_percentage": 50, "description": null,
  "flag_type": "boolean",
  "rules": [
    {"attribute": "plan", "operator": "equals", "values": ["enterprise"]},
    {"attribute": "email", "operator": "ends_with", "values": ["@internal.example"]},
    {"attribute": "country", "operator": "equals", "values": ["NO", "SE"]}
  ]
}"#;

pub(crate) fn flag() -> CompiledFlag {
    compile_flag_json(FLAG).expect("the reference flag compiles")
}

pub(crate) fn contexts(n: usize) -> Vec<Context<'static>> {
    (0..n)
        .map(|i| {
            Context::with_key(format!("user-{i}"))
                .attr(
                    "plan",
                    AttrValue::String(["free", "pro", "team"][i % 3].into()),
                )
                .attr(
                    "email",
                    AttrValue::String(format!("u{i}@example.com").into()),
                )
                .attr(
                    "country",
                    AttrValue::String(["DE", "US", "GB", "FR"][i % 4].into()),
                )
        })
        .collect()
}

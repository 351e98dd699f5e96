//! Evaluates the benchmark's reference flag in a plain loop, for profilers that count
//! instructions (`valgrind --tool=callgrind`), where criterion's harness would get in the way.

use std::hint::black_box;

use checkgate_core::{AttrValue, Context, Standalone, compile_flag_json, evaluate};

fn main() {
    let flag = compile_flag_json(
        r#"{"key":"new-checkout","is_enabled":true,"rollout_percentage":50,"rules":[
        {"attribute":"plan","operator":"equals","values":["enterprise"]},
        {"attribute":"email","operator":"ends_with","values":["@internal.example"]},
        {"attribute":"country","operator":"equals","values":["NO","SE"]}]}"#,
    )
    .expect("reference flag compiles");
    let contexts: Vec<_> = (0..1024)
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
        .collect();
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut on = 0usize;
    for i in 0..iterations {
        on += usize::from(
            evaluate(
                black_box(&flag),
                black_box(&contexts[i & 1023]),
                &Standalone,
            )
            .enabled,
        );
    }
    black_box(on);
}

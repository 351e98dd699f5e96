//! `evaluate` on the reference workload (`support/reference.rs`): three rules that do not
//! match, then a 50 % rollout. Checkgate's own core takes 154–165 ns on this work on our 2-core
//! machines.

#[path = "support/reference.rs"]
mod reference;

use std::hint::black_box;

use checkgate_core::{Standalone, compile_flag_json, evaluate};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let flag = reference::flag();
    // 64 contexts stay in the L1 cache, as a context does that a server has just parsed; 1,024
    // (Checkgate's own benchmark) spill to L2, so that figure includes fetching the context.
    for n in [64usize, 1024] {
        let contexts = reference::contexts(n);
        let mut i = 0usize;
        c.bench_function(
            &format!("evaluate/3-rules-miss+50%-rollout/{n}-contexts"),
            |b| {
                b.iter(|| {
                    i = (i + 1) & (n - 1);
                    black_box(
                        evaluate(black_box(&flag), black_box(&contexts[i]), &Standalone).enabled,
                    )
                })
            },
        );
    }
    let contexts = reference::contexts(1);
    let static_flag = compile_flag_json(r#"{"key":"on","is_enabled":true}"#).expect("compiles");
    c.bench_function("evaluate/static", |b| {
        b.iter(|| {
            black_box(
                evaluate(
                    black_box(&static_flag),
                    black_box(&contexts[0]),
                    &Standalone,
                )
                .enabled,
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Promise 5: evaluation allocates nothing. A counting global allocator watches this thread
//! while every case of the evaluation spec is looked up and evaluated; the count must be zero.
//! The count is deterministic (it does not depend on timing), so the test cannot flake.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use checkgate_core::Context;
use counting_alloc::{CountingAlloc, count};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn evaluating_the_whole_spec_allocates_nothing() {
    let specs = common::load_all();
    // Everything that may allocate happens first: parsing, compiling, building contexts.
    let prepared: Vec<_> = specs
        .iter()
        .map(|(file, spec)| {
            let env = common::environment(spec);
            let cases: Vec<_> = spec
                .cases
                .iter()
                .filter_map(|c| {
                    let ctx = Context::from_json_map(&c.context).ok()?;
                    Some((format!("{file} / {}", c.name), c.flag.as_str(), ctx))
                })
                .collect();
            (env, cases)
        })
        .collect();
    let cases: usize = prepared.iter().map(|(_, c)| c.len()).sum();
    assert!(cases >= 100, "expected the spec's cases, found {cases}");

    let mut holder = None;
    let mut evaluated = 0usize;
    let mut allocating = Vec::new();
    for (env, cases) in &prepared {
        for (name, key, ctx) in cases {
            let ((), allocations) = count(|| {
                let result = common::eval_key(env, &mut holder, key, ctx);
                std::hint::black_box(&result);
            });
            evaluated += 1;
            if allocations != 0 {
                allocating.push(format!("{name}: {allocations}"));
            }
        }
    }
    assert_eq!(evaluated, cases);
    assert!(
        allocating.is_empty(),
        "of {evaluated} spec cases, these allocated:\n{}",
        allocating.join("\n")
    );
    // The counter itself works: a deliberate allocation is seen.
    let (_, seen) = count(|| std::hint::black_box(vec![1u8; 16]));
    assert_eq!(seen, 1);
}

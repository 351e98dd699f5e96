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
        .map(|(_, spec)| {
            let env = common::environment(spec);
            let cases: Vec<_> = spec
                .cases
                .iter()
                .filter_map(|c| {
                    Context::from_json_map(&c.context)
                        .ok()
                        .map(|ctx| (c.flag.as_str(), ctx))
                })
                .collect();
            (env, cases)
        })
        .collect();
    let cases: usize = prepared.iter().map(|(_, c)| c.len()).sum();
    assert!(cases >= 100, "expected the spec's cases, found {cases}");

    let mut holder = None;
    let (evaluated, allocations) = count(|| {
        let mut evaluated = 0usize;
        for (env, cases) in &prepared {
            for (key, ctx) in cases {
                let result = common::eval_key(env, &mut holder, key, ctx);
                std::hint::black_box(&result);
                evaluated += 1;
            }
        }
        evaluated
    });
    assert_eq!(evaluated, cases);
    assert_eq!(
        allocations, 0,
        "evaluating {evaluated} spec cases allocated {allocations} times"
    );
    // The counter itself works: a deliberate allocation is seen.
    let (_, seen) = count(|| std::hint::black_box(vec![1u8; 16]));
    assert_eq!(seen, 1);
}

//! Evaluates the benchmarks' reference workload in a plain loop, for profilers that count
//! instructions (`valgrind --tool=callgrind`), where criterion's harness would get in the way.
//! The first argument is the number of evaluations (default 1,000,000).

#[path = "../benches/support/reference.rs"]
mod reference;

use std::hint::black_box;

use checkgate_core::{Standalone, evaluate};

fn main() {
    let flag = reference::flag();
    let contexts = reference::contexts(1024);
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

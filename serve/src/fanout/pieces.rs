//! Visiting a large group in pieces, on several cores at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Runs `visit` over all of `items` in pieces of `piece`, on up to `threads` threads (this one
/// and scoped others). Each thread takes the next piece until none is left, rather than a
/// share fixed in advance: the cores are shared, and a thread given less time then simply
/// takes fewer pieces. Each thread has its own `S`.
pub(super) fn in_pieces<T: Send, S: Default>(
    items: &mut [T],
    piece: usize,
    threads: usize,
    visit: impl Fn(&mut S, &mut [T]) + Sync,
) {
    let pieces: Vec<Mutex<&mut [T]>> = items.chunks_mut(piece.max(1)).map(Mutex::new).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        let mut state = S::default();
        while let Some(piece) = pieces.get(next.fetch_add(1, Ordering::Relaxed)) {
            visit(
                &mut state,
                &mut piece.lock().unwrap_or_else(PoisonError::into_inner),
            );
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads.min(pieces.len()) {
            let spawned = std::thread::Builder::new()
                .name("checkgate-fanout".into())
                .spawn_scoped(scope, work);
            if let Err(e) = spawned {
                // The system refused a thread: the others take its pieces.
                tracing::warn!(cause = %e, "no thread for a fan-out part");
            }
        }
        work();
    });
}

/// The cores a sweep may use.
pub(super) fn parallelism() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

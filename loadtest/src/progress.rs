//! A progress line on standard error while a scenario runs — only on a terminal, so logs and
//! CI stay clean.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A shared counter and the task that shows it.
#[derive(Clone)]
pub(crate) struct Progress {
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Progress {
    /// Starts showing progress of `scenario`, expected to last `duration`.
    pub(crate) fn start(scenario: &'static str, duration: Duration) -> Self {
        let progress = Self {
            done: Arc::default(),
            stop: Arc::default(),
        };
        if std::io::stderr().is_terminal() {
            let (done, stop) = (progress.done.clone(), progress.stop.clone());
            let started = Instant::now();
            // Ends at `finish`, or at most a little after the scenario's duration.
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                while !stop.load(Ordering::Relaxed) && started.elapsed() < duration * 2 {
                    tick.tick().await;
                    let elapsed = started.elapsed().as_secs_f64();
                    let share = (elapsed / duration.as_secs_f64().max(0.001)).min(1.0);
                    let bar: String = (0..30)
                        .map(|i| {
                            if f64::from(i) / 30.0 < share {
                                '#'
                            } else {
                                '.'
                            }
                        })
                        .collect();
                    let _ = write!(
                        std::io::stderr(),
                        "\r{scenario:>16} [{bar}] {elapsed:5.1}s {:>9} done",
                        done.load(Ordering::Relaxed)
                    );
                }
            });
        }
        progress
    }

    pub(crate) fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn finish(&self) {
        if !self.stop.swap(true, Ordering::Relaxed) && std::io::stderr().is_terminal() {
            let _ = writeln!(std::io::stderr());
        }
    }
}

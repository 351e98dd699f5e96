//! A scenario's result: counts, throughput, the latency distribution and the generator's own
//! CPU time (to tell when the generator, not the server, was the limit), as JSON.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles in microseconds.
#[derive(Debug, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50_us: u64,
    pub(crate) p90_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) p999_us: u64,
    pub(crate) max_us: u64,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        Self {
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) scenario: &'static str,
    pub(crate) connections: usize,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) bytes: u64,
    pub(crate) seconds: f64,
    pub(crate) requests_per_second: f64,
    pub(crate) latency: Latency,
    /// CPU time this process used (server and generator, when the server runs in-process).
    pub(crate) cpu_seconds: f64,
    /// The measured server, when it runs as a process of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) server: Option<ServerUsage>,
}

/// What the server process used during the measurement.
#[derive(Debug, Serialize)]
pub(crate) struct ServerUsage {
    /// Resident memory at the end of the run.
    pub(crate) rss_kib: u64,
    /// CPU time it spent during the run.
    pub(crate) cpu_seconds: f64,
}

impl Report {
    pub(crate) fn new(
        scenario: &'static str,
        connections: usize,
        (requests, errors, bytes): (u64, u64, u64),
        elapsed: Duration,
        latencies: &Histogram<u64>,
        cpu: Duration,
    ) -> Self {
        let seconds = elapsed.as_secs_f64();
        Self {
            scenario,
            connections,
            requests,
            errors,
            bytes,
            seconds,
            requests_per_second: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            latency: Latency::of(latencies),
            cpu_seconds: cpu.as_secs_f64(),
            server: None,
        }
    }
}

/// User plus system CPU time of this process so far, from `/proc/self/stat` (Linux); zero
/// where that is not available.
pub(crate) fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // The kernel reports in clock ticks; 100 per second on every Linux we ship for.
    Duration::from_millis(ticks * 10)
}

//! A scenario's result: counts, throughput, the latency distribution, failures by kind, and the
//! CPU time of the generator and the server (to tell which was the limit), as JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::driver::Tally;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
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

/// What the measured server process used during the run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServerUsage {
    /// Resident memory at the end of the run.
    pub(crate) rss_kib: u64,
    /// CPU time it spent during the run.
    pub(crate) cpu_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) scenario: &'static str,
    pub(crate) connections: usize,
    /// Set for open-loop runs: the constant rate requests were sent at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rate_per_second: Option<u32>,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) errors_by_kind: BTreeMap<String, u64>,
    pub(crate) statuses: BTreeMap<u16, u64>,
    pub(crate) bytes: u64,
    pub(crate) seconds: f64,
    pub(crate) requests_per_second: f64,
    pub(crate) latency: Latency,
    /// CPU time this process used (server and generator, when the server runs in-process).
    pub(crate) cpu_seconds: f64,
    /// The measured server, when it runs as a process of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) server: Option<ServerUsage>,
    /// This figure as a share of the machine's ceiling measured in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) share_of_ceiling: Option<f64>,
    /// The full latency distribution, for plots; not serialized.
    #[serde(skip)]
    pub(crate) histogram: Option<Histogram<u64>>,
}

impl Report {
    pub(crate) fn new(
        scenario: &'static str,
        connections: usize,
        tally: &Tally,
        elapsed: Duration,
        cpu: Duration,
    ) -> Self {
        let seconds = elapsed.as_secs_f64();
        Self {
            scenario,
            connections,
            rate_per_second: None,
            requests: tally.requests,
            errors: tally.error_count(),
            errors_by_kind: tally.errors.clone(),
            statuses: tally.statuses.clone(),
            bytes: tally.bytes,
            seconds,
            requests_per_second: if seconds > 0.0 {
                tally.requests as f64 / seconds
            } else {
                0.0
            },
            latency: Latency::of(&tally.latencies),
            cpu_seconds: cpu.as_secs_f64(),
            server: None,
            share_of_ceiling: None,
            histogram: Some(tally.latencies.clone()),
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

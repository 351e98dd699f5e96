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
    /// With the ceiling: the share in each round (the runs alternate with the ceiling's, so a
    /// change in what the shared machine gives us hits both alike); `share_of_ceiling` is
    /// their median.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) share_of_ceiling_by_round: Vec<f64>,
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
            share_of_ceiling_by_round: Vec::new(),
            histogram: Some(tally.latencies.clone()),
        }
    }
}

impl Report {
    /// Adds the counts of a later run of the same scenario to this one, as one report over
    /// both (the server's memory is the later figure).
    pub(crate) fn absorb(&mut self, later: Report) {
        self.requests += later.requests;
        self.errors += later.errors;
        for (kind, n) in later.errors_by_kind {
            *self.errors_by_kind.entry(kind).or_default() += n;
        }
        for (status, n) in later.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.bytes += later.bytes;
        self.seconds += later.seconds;
        self.requests_per_second = if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        };
        self.cpu_seconds += later.cpu_seconds;
        self.server = match (self.server.take(), later.server) {
            (Some(a), Some(b)) => Some(ServerUsage {
                rss_kib: b.rss_kib,
                cpu_seconds: a.cpu_seconds + b.cpu_seconds,
            }),
            (a, b) => b.or(a),
        };
        match (&mut self.histogram, later.histogram) {
            (Some(h), Some(more)) => {
                // Both come from the same bounds, so adding cannot fail; if it did, the
                // percentiles would describe the first part only.
                let _ = h.add(&more);
            }
            (h @ None, more) => *h = more,
            (Some(_), None) => {}
        }
        if let Some(h) = &self.histogram {
            self.latency = Latency::of(h);
        }
    }
}

/// The median of some figures (the mean of the middle two for an even count); 0 for none.
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(vec![0.3, 0.1, 0.2]), 0.2);
        assert_eq!(median(vec![0.4, 0.1, 0.2, 0.3]), 0.25);
        assert_eq!(median(Vec::new()), 0.0);
    }
}

//! `feed-fanout`: N edges following one environment, all in this process (each its own feed
//! client, connection and replica), and one control plane (a child process). For each of a
//! bounded number of changes, written one after another through the REST API: the time from
//! the write's answer until the first and until the last of the N edges has applied it, and
//! the control plane's CPU time per change (from `/proc/<pid>/stat`, its idle rate over an
//! equal quiet window subtracted, since edges that report on a timer cost it CPU with or
//! without changes).
//!
//! The edges run without the change journal: N journals in one process would put N syncs of
//! one disk on every change, which measures the disk, not the feed (`feed-apply` measures one
//! edge with it). Their snapshot files are written to one temporary directory, removed at the
//! end.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use checkgate_serve::replica::Replica;
use checkgate_testkit::http_request;
use serde::Serialize;

use crate::control::{Backing, usage};
use crate::feed::{FeedEdge, FeedStack, Transport, applied, histogram, micros};
use crate::report::Latency;

/// Flags in the environment: few, so the N replicas' memory is the feed's, not the flags'.
const FLAGS: usize = 10;
/// How long all N edges may take to connect and hold the environment.
const CONNECT_LIMIT: Duration = Duration::from_secs(120);
/// How long one change may take to reach every edge before the run gives up on it.
const CHANGE_LIMIT: Duration = Duration::from_secs(30);
/// Quiet time after the edges connected, before the idle window: their hellos, first reports
/// and snapshot files settle.
const SETTLE: Duration = Duration::from_secs(2);

/// What one fleet size measured.
#[derive(Debug, Serialize)]
pub(crate) struct Round {
    edges: usize,
    changes: usize,
    /// Changes that did not reach every edge within the limit (not in the latencies).
    incomplete: usize,
    /// Seconds from starting the N edges until all held the environment.
    connect_seconds: f64,
    /// The write's answer → the first edge applied it.
    first_applied: Latency,
    /// The write's answer → the last of the N edges applied it.
    all_applied: Latency,
    /// The write's answer → each edge applied it (every edge's figure of every change).
    each_applied: Latency,
    /// Intended send → the write's answer.
    write_latency: Latency,
    /// Seconds the changes took, pauses included (the idle window is as long).
    changes_seconds: f64,
    /// The control plane's CPU over the changes, divided by the changes.
    control_cpu_ms_per_change: f64,
    /// The same with the control plane's idle rate (measured over a quiet window as long as
    /// the changes took) taken off: what the changes themselves cost it.
    control_cpu_ms_per_change_net: f64,
    /// The control plane's CPU a second with the N edges connected and nothing changing
    /// (their reports, heartbeats, lease renewals).
    control_idle_cpu_ms_per_second: f64,
    /// The nats-server's CPU per change, idle rate taken off (NATS, on a server of the run's
    /// own).
    #[serde(skip_serializing_if = "Option::is_none")]
    nats_cpu_ms_per_change_net: Option<f64>,
    /// This process's resident memory with the N edges connected.
    loadtest_rss_kib: u64,
    /// Its open file descriptors then.
    loadtest_open_fds: usize,
    /// Control plane's resident memory at the end of the round.
    control_rss_kib: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct FanoutReport {
    scenario: &'static str,
    transport: Transport,
    /// Changes of every round that did not reach every edge in time.
    errors: usize,
    flags: usize,
    /// Pause between the last edge applying a change and the next write.
    interval_ms: u64,
    rounds: Vec<Round>,
}

/// CPU time over a window, less what the process spends idle over the same length of time:
/// milliseconds per change. Negative differences (a busier idle window) are kept, so the
/// noise of a measurement is visible.
pub(crate) fn net_ms_per_change(
    used_seconds: f64,
    window: Duration,
    idle_seconds: f64,
    idle_window: Duration,
    changes: usize,
) -> f64 {
    if changes == 0 {
        return 0.0;
    }
    let idle_rate = if idle_window.is_zero() {
        0.0
    } else {
        idle_seconds / idle_window.as_secs_f64()
    };
    (used_seconds - idle_rate * window.as_secs_f64()) * 1000.0 / changes as f64
}

/// CPU seconds of `pid` so far (0 when it cannot be read).
fn cpu(pid: Option<u32>) -> f64 {
    pid.and_then(usage).map_or(0.0, |(_, cpu)| cpu)
}

/// `feed-fanout` for each fleet size in `sizes`, `changes` changes each.
pub(crate) async fn run(
    bin: &std::path::Path,
    transport: Transport,
    nats_url: Option<&str>,
    sizes: &[usize],
    changes: usize,
    interval: Duration,
) -> anyhow::Result<FanoutReport> {
    // Heartbeats as an edge process gets them by default, not the load test's 1 s: N QUIC
    // edges' idle traffic is then what a deployment's would be.
    let stack = FeedStack::start(
        bin,
        Backing::Sqlite,
        transport,
        nats_url,
        &[("FEED_HEARTBEAT_MS", "5000")],
    )
    .await?;
    let control = &stack.control;
    control.seed_flags(FLAGS)?;
    let recipe = stack.recipe()?;
    let env = control.environment.clone();
    let control_pid = control.pid();
    let nats_pid = stack.nats.as_ref().and_then(crate::nats::Nats::pid);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("cg-load-fanout-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let mut head = FLAGS as u64;
    let mut rounds = Vec::new();
    let mut outcome = Ok(());
    for (r, &n) in sizes.iter().enumerate() {
        let started = Instant::now();
        let mut fleet = Vec::with_capacity(n);
        let mut started_all = Ok(());
        for i in 0..n {
            match FeedEdge::start(
                &recipe,
                &format!("loadtest-{r}-{i}"),
                dir.join(format!("edge-{r}-{i}.snapshot")),
                None,
                Replica::new(),
            ) {
                Ok(edge) => fleet.push(edge),
                Err(e) => {
                    started_all = Err(e);
                    break;
                }
            }
        }
        let measured = match started_all {
            Ok(()) => {
                measure(
                    &fleet,
                    control,
                    &env,
                    &mut head,
                    changes,
                    interval,
                    started,
                    (control_pid, nats_pid),
                )
                .await
            }
            Err(e) => Err(e),
        };
        for edge in &fleet {
            edge.begin_stop();
        }
        for edge in fleet {
            edge.stopped().await;
        }
        match measured {
            Ok(round) => rounds.push(round),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    stack.stop().await?;
    outcome?;
    Ok(FanoutReport {
        scenario: "feed-fanout",
        transport,
        errors: rounds.iter().map(|r| r.incomplete).sum(),
        flags: FLAGS,
        interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        rounds,
    })
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// Waits until every edge of `fleet` holds `env` at `version`; whether they all did in time.
async fn all_at(
    fleet: &[FeedEdge],
    env: &str,
    version: u64,
    limit: Duration,
) -> Vec<Option<Instant>> {
    let mut waits = tokio::task::JoinSet::new();
    for (i, edge) in fleet.iter().enumerate() {
        let (replica, env) = (edge.replica.clone(), env.to_owned());
        waits.spawn(async move { (i, applied(&replica, &env, version, limit).await) });
    }
    let mut seen = vec![None; fleet.len()];
    while let Some(done) = waits.join_next().await {
        if let Ok((i, at)) = done {
            seen[i] = at;
        }
    }
    seen
}

/// One fleet size: connect, a quiet window, then the changes.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site, each argument named there"
)]
async fn measure(
    fleet: &[FeedEdge],
    control: &crate::control::Control,
    env: &str,
    head: &mut u64,
    changes: usize,
    interval: Duration,
    started: Instant,
    (control_pid, nats_pid): (Option<u32>, Option<u32>),
) -> anyhow::Result<Round> {
    let ready = all_at(fleet, env, *head, CONNECT_LIMIT).await;
    let missing = ready.iter().filter(|r| r.is_none()).count();
    anyhow::ensure!(
        missing == 0,
        "{missing} of {} edges did not hold the environment within {CONNECT_LIMIT:?}",
        fleet.len()
    );
    let connect_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let loadtest_rss_kib = usage(std::process::id()).map_or(0, |(rss, _)| rss);
    let loadtest_open_fds = open_fds();

    // The changes, one after another.
    let (mut first_h, mut all_h, mut each_h, mut write_h) =
        (histogram()?, histogram()?, histogram()?, histogram()?);
    let mut incomplete = 0;
    let auth = format!("Bearer {}", control.token);
    let (control_before, nats_before) = (cpu(control_pid), cpu(nats_pid));
    let window_started = Instant::now();
    for c in 0..changes {
        let sent = Instant::now();
        let (addr, auth, path, body) = (
            control.addr,
            auth.clone(),
            format!("/api/environments/{env}/flags/load-{}", c % FLAGS),
            format!(r#"{{"rollout_percentage":{}}}"#, c % 101),
        );
        let (status, _, answer) = tokio::task::spawn_blocking(move || {
            http_request(
                addr,
                "PATCH",
                &path,
                &[("Authorization", &auth)],
                Some(&body),
            )
        })
        .await??;
        let written = Instant::now();
        anyhow::ensure!(status == 200, "a write answered {status}: {answer}");
        let version = serde_json::from_str::<serde_json::Value>(&answer)?["version"]
            .as_u64()
            .context("a write answered no version")?;
        *head = version;
        write_h.saturating_record(micros(written - sent));
        let seen = all_at(fleet, env, version, CHANGE_LIMIT).await;
        if seen.iter().any(Option::is_none) {
            incomplete += 1;
        } else {
            let at: Vec<Instant> = seen.into_iter().flatten().collect();
            for &t in &at {
                each_h.saturating_record(micros(t.saturating_duration_since(written)));
            }
            if let (Some(first), Some(last)) = (at.iter().min(), at.iter().max()) {
                first_h.saturating_record(micros(first.saturating_duration_since(written)));
                all_h.saturating_record(micros(last.saturating_duration_since(written)));
            }
        }
        tokio::time::sleep(interval).await;
    }
    let window = window_started.elapsed();
    let (control_used, nats_used) = (
        cpu(control_pid) - control_before,
        cpu(nats_pid) - nats_before,
    );

    // The quiet window after the changes, as long as they took: what the N edges cost the
    // control plane with nothing changing.
    let (control_idle_before, nats_idle_before) = (cpu(control_pid), cpu(nats_pid));
    let idle_started = Instant::now();
    tokio::time::sleep(window).await;
    let idle_window = idle_started.elapsed();
    let (control_idle, nats_idle) = (
        cpu(control_pid) - control_idle_before,
        cpu(nats_pid) - nats_idle_before,
    );

    Ok(Round {
        edges: fleet.len(),
        changes,
        incomplete,
        connect_seconds,
        first_applied: Latency::of(&first_h),
        all_applied: Latency::of(&all_h),
        each_applied: Latency::of(&each_h),
        write_latency: Latency::of(&write_h),
        changes_seconds: window.as_secs_f64(),
        control_cpu_ms_per_change: control_used * 1000.0 / changes.max(1) as f64,
        control_cpu_ms_per_change_net: net_ms_per_change(
            control_used,
            window,
            control_idle,
            idle_window,
            changes,
        ),
        control_idle_cpu_ms_per_second: control_idle * 1000.0 / idle_window.as_secs_f64().max(1e-9),
        nats_cpu_ms_per_change_net: nats_pid
            .map(|_| net_ms_per_change(nats_used, window, nats_idle, idle_window, changes)),
        loadtest_rss_kib,
        loadtest_open_fds,
        control_rss_kib: control_pid.and_then(usage).map_or(0, |(rss, _)| rss),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_rate_is_taken_off_per_change() {
        // 1.5 s used over 10 s with 10 changes, idle at 0.1 s a second: 0.5 s for the
        // changes, 50 ms each.
        let net = net_ms_per_change(
            1.5,
            Duration::from_secs(10),
            0.5,
            Duration::from_secs(5),
            10,
        );
        assert!((net - 50.0).abs() < 1e-9, "{net}");
        // No idle window: nothing taken off.
        let raw = net_ms_per_change(1.0, Duration::from_secs(1), 9.0, Duration::ZERO, 4);
        assert!((raw - 250.0).abs() < 1e-9, "{raw}");
        // A busier idle window than the changes' shows as a negative figure, not as zero.
        assert!(
            net_ms_per_change(0.1, Duration::from_secs(1), 1.0, Duration::from_secs(1), 1) < 0.0
        );
        assert_eq!(
            net_ms_per_change(1.0, Duration::from_secs(1), 0.0, Duration::from_secs(1), 0),
            0.0
        );
    }
}

//! The change feed under load, against the real control plane (a child process) and the edge's
//! own feed client and replica, run in this process so the moment a change is applied can be
//! seen exactly:
//!
//! - `feed-apply`: flag writes at a constant rate through the REST API; for each, the time
//!   from its *intended* send time (so a stall counts against every write it delays) until
//!   the edge has applied its version;
//! - `feed-snapshot`: an environment of N flags — how long an empty edge takes to be ready,
//!   how big its snapshot file is, and how long loading that file takes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use checkgate_edge::feed::client::{self, ClientSettings, FeedState, Via};
use checkgate_feed::quic::{Trust, parse_fingerprint};
use checkgate_serve::replica::Replica;
use checkgate_testkit::http_request;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::control::{Backing, Control};
use crate::report::Latency;

/// Starts the edge's feed client in this process against `control`; returns its replica and
/// the handle that stops it.
async fn edge(
    control: &Control,
    data: &std::path::Path,
) -> anyhow::Result<(
    Arc<Replica>,
    checkgate_ops::Stopper,
    tokio::task::JoinHandle<()>,
)> {
    start_edge(control, data, Replica::new()).await
}

/// [`edge`], holding what a snapshot file held (as a restarted edge does).
async fn edge_from(
    control: &Control,
    data: &std::path::Path,
    persisted: &checkgate_edge::snapshot_file::Persisted,
) -> anyhow::Result<(
    Arc<Replica>,
    checkgate_ops::Stopper,
    tokio::task::JoinHandle<()>,
)> {
    let replica = Replica::new();
    replica.load(persisted);
    start_edge(control, data, replica).await
}

async fn start_edge(
    control: &Control,
    data: &std::path::Path,
    replica: Arc<Replica>,
) -> anyhow::Result<(
    Arc<Replica>,
    checkgate_ops::Stopper,
    tokio::task::JoinHandle<()>,
)> {
    let (addr, fingerprint) = control.feed()?;
    let settings = ClientSettings {
        addrs: vec![addr.to_string()],
        via: Via::Quic {
            server_name: "localhost".into(),
            trust: Trust::Fingerprint(
                parse_fingerprint(&fingerprint).map_err(|e| anyhow::anyhow!(e))?,
            ),
        },
        token: control.edge_token()?.into(),
        name: "loadtest".into(),
        region: String::new(),
        anti_entropy: Duration::from_secs(3600),
        snapshot_path: data.join(checkgate_edge::SNAPSHOT_FILE),
    };
    // As an edge runs: every change journaled and synced before it is applied.
    let (journal, _) =
        checkgate_edge::journal::Journal::open(&data.join(checkgate_edge::JOURNAL_FILE))?;
    let (stop, stopping) = checkgate_ops::Stopping::pair();
    let task = tokio::spawn(client::run(
        settings,
        replica.clone(),
        Arc::new(FeedState::default()),
        Some(journal),
        stopping,
    ));
    Ok((replica, stop, task))
}

/// Waits until the replica holds `env` at `version` or later; the instant it saw it.
async fn applied(replica: &Replica, env: &str, version: u64, limit: Duration) -> Option<Instant> {
    let mut changes = replica.subscribe();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if replica.version(env).is_some_and(|(_, v)| v >= version) {
            return Some(Instant::now());
        }
        tokio::time::timeout_at(deadline, changes.changed())
            .await
            .ok()?
            .ok()?;
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct ApplyReport {
    scenario: &'static str,
    backend: &'static str,
    rate_per_second: u32,
    writes: u64,
    errors: u64,
    seconds: f64,
    /// Intended send time → response of the write (the control plane committed it).
    write_latency: Latency,
    /// Intended send time → the edge applied its version.
    apply_latency: Latency,
    /// The write's response → the edge applied it: an upper bound of commit-to-apply (the
    /// commit happened before the response).
    commit_to_apply: Latency,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `feed-apply`: `rate` writes a second for `duration` (at most `max_writes`).
pub(crate) async fn apply(
    bin: &std::path::Path,
    postgres: Option<String>,
    rate: u32,
    duration: Duration,
    max_writes: u64,
) -> anyhow::Result<ApplyReport> {
    let backend = if postgres.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let backing = postgres.map_or(Backing::Sqlite, Backing::Postgres);
    let control = Control::start(bin, backing).await?;
    const FLAGS: usize = 100;
    control.seed_flags(FLAGS)?;
    let data = std::env::temp_dir().join(format!("cg-load-edge-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data)?;
    let (replica, stop, task) = edge(&control, &data).await?;
    let env = control.environment.clone();
    applied(&replica, &env, FLAGS as u64, Duration::from_secs(30))
        .await
        .ok_or_else(|| anyhow::anyhow!("the edge did not catch up with the seeded flags"))?;

    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let started = Instant::now();
    let mut writes = tokio::task::JoinSet::new();
    let mut n: u64 = 0;
    while started.elapsed() < duration && n < max_writes {
        let intended = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(intended.into()).await;
        let (addr, auth, env, replica) = (
            control.addr,
            format!("Bearer {}", control.token),
            env.clone(),
            replica.clone(),
        );
        let key = format!("load-{}", n as usize % FLAGS);
        let body = format!(r#"{{"rollout_percentage":{}}}"#, n % 101);
        writes.spawn(async move {
            let path = format!("/api/environments/{env}/flags/{key}");
            let answer = tokio::task::spawn_blocking(move || {
                http_request(
                    addr,
                    "PATCH",
                    &path,
                    &[("Authorization", &auth)],
                    Some(&body),
                )
            })
            .await;
            let written = Instant::now();
            let version = match answer {
                Ok(Ok((200, _, body))) => serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["version"].as_u64()),
                _ => None,
            };
            let version = version?;
            let seen = applied(&replica, &env, version, Duration::from_secs(30)).await?;
            Some((
                written - intended,
                seen.saturating_duration_since(intended),
                seen.saturating_duration_since(written),
            ))
        });
        n += 1;
    }
    let (mut write_h, mut apply_h, mut commit_h) = (histogram()?, histogram()?, histogram()?);
    let mut errors = 0;
    while let Some(done) = writes.join_next().await {
        match done.ok().flatten() {
            Some((write, apply, commit)) => {
                write_h.saturating_record(micros(write));
                apply_h.saturating_record(micros(apply));
                commit_h.saturating_record(micros(commit));
            }
            None => errors += 1,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.begin(tokio::time::Instant::now() + Duration::from_secs(5));
    let _ = task.await;
    control.stop().await?;
    let _ = std::fs::remove_dir_all(&data);
    Ok(ApplyReport {
        scenario: "feed-apply",
        backend,
        rate_per_second: rate,
        writes: n,
        errors,
        seconds,
        write_latency: Latency::of(&write_h),
        apply_latency: Latency::of(&apply_h),
        commit_to_apply: Latency::of(&commit_h),
    })
}

#[derive(Debug, Serialize)]
pub(crate) struct SnapshotReport {
    scenario: &'static str,
    backend: &'static str,
    flags: usize,
    /// Seconds for an empty edge to hold every environment (connect, snapshot, compile).
    seconds_to_ready: f64,
    snapshot_file_bytes: u64,
    /// Seconds to read, verify and decode the snapshot file.
    file_load_seconds: f64,
    /// Seconds to compile and install what the file held.
    file_install_seconds: f64,
}

/// `feed-snapshot`: an environment of `flags` flags.
pub(crate) async fn snapshot(
    bin: &std::path::Path,
    postgres: Option<String>,
    flags: usize,
) -> anyhow::Result<SnapshotReport> {
    let backend = if postgres.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let backing = postgres.map_or(Backing::Sqlite, Backing::Postgres);
    let control = Control::start(bin, backing).await?;
    control.seed_flags(flags)?;
    let data: PathBuf =
        std::env::temp_dir().join(format!("cg-load-edge-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data)?;

    let started = Instant::now();
    let (replica, stop, task) = edge(&control, &data).await?;
    let env = control.environment.clone();
    let ready = applied(&replica, &env, flags as u64, Duration::from_secs(120))
        .await
        .ok_or_else(|| anyhow::anyhow!("the edge did not receive the environment"))?;
    let seconds_to_ready = ready.duration_since(started).as_secs_f64();
    stop.begin(tokio::time::Instant::now() + Duration::from_secs(5));
    let _ = task.await;

    let path = data.join(checkgate_edge::SNAPSHOT_FILE);
    let snapshot_file_bytes = std::fs::metadata(&path)?.len();
    let loading = Instant::now();
    let persisted = checkgate_edge::snapshot_file::load(&path)?
        .ok_or_else(|| anyhow::anyhow!("no snapshot file was written"))?;
    let file_load_seconds = loading.elapsed().as_secs_f64();
    let installing = Instant::now();
    Replica::new().load(&persisted);
    let file_install_seconds = installing.elapsed().as_secs_f64();

    control.stop().await?;
    let _ = std::fs::remove_dir_all(&data);
    Ok(SnapshotReport {
        scenario: "feed-snapshot",
        backend,
        flags,
        seconds_to_ready,
        snapshot_file_bytes,
        file_load_seconds,
        file_install_seconds,
    })
}

#[derive(Debug, Serialize)]
pub(crate) struct CatchupReport {
    scenario: &'static str,
    flags: usize,
    changes: usize,
    /// An empty edge: connect, take the snapshot, compile, ready.
    cold_seconds_to_ready: f64,
    /// An edge restarted from its snapshot file, `changes` behind: until it is at the head.
    catchup_seconds: f64,
    catchup_changes_per_second: f64,
}

/// `feed-catchup`: an environment of `flags` flags; an edge takes its snapshot, stops, and
/// comes back after `changes` more changes — how fast does it catch up through them?
pub(crate) async fn catchup(
    bin: &std::path::Path,
    flags: usize,
    changes: usize,
) -> anyhow::Result<CatchupReport> {
    use checkgate_control::store::{Actor, Store};
    // Keep every change: the edge must catch up through them, not take a snapshot.
    let control =
        Control::start_with(bin, Backing::Sqlite, &[("FEED_RETAIN_CHANGES", "10000000")]).await?;
    let env = control.environment.clone();
    let store = Store::open(&control.embedded_url(), 2, Duration::from_secs(30)).await?;
    let actor = Actor::system();
    let doc = |i: usize, rollout: usize| -> anyhow::Result<checkgate_core::FlagDoc> {
        Ok(serde_json::from_value(serde_json::json!({
            "key": format!("load-{i}"), "is_enabled": true, "rollout_percentage": rollout % 101,
            "description": "a flag of the load test",
            "rules": [
                {"attribute": "email", "operator": "ends_with", "values": ["@example.com"]},
                {"attribute": "plan", "operator": "equals", "values": ["enterprise", "pro"]},
                {"attribute": "country", "operator": "equals", "values": ["NZ"]}
            ]
        }))?)
    };
    const BATCH: usize = 5_000;
    let mut head = 0;
    for start in (0..flags).step_by(BATCH) {
        let docs = (start..(start + BATCH).min(flags))
            .map(|i| doc(i, 50))
            .collect::<anyhow::Result<Vec<_>>>()?;
        head = store.put_flags(&actor, &env, &docs).await?;
    }
    let data = std::env::temp_dir().join(format!("cg-load-edge-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data)?;

    let started = Instant::now();
    let (replica, stop, task) = edge(&control, &data).await?;
    applied(&replica, &env, head, Duration::from_secs(300))
        .await
        .ok_or_else(|| anyhow::anyhow!("the edge did not take the snapshot"))?;
    let cold_seconds_to_ready = started.elapsed().as_secs_f64();
    stop.begin(tokio::time::Instant::now() + Duration::from_secs(5));
    let _ = task.await;

    for start in (0..changes).step_by(BATCH) {
        let docs = (start..(start + BATCH).min(changes))
            .map(|n| doc(n % flags.max(1), n))
            .collect::<anyhow::Result<Vec<_>>>()?;
        head = store.put_flags(&actor, &env, &docs).await?;
    }
    store.close().await;

    let persisted = checkgate_edge::snapshot_file::load(&data.join(checkgate_edge::SNAPSHOT_FILE))?
        .ok_or_else(|| anyhow::anyhow!("the edge wrote no snapshot file"))?;
    let started = Instant::now();
    let (replica, stop, task) = edge_from(&control, &data, &persisted).await?;
    applied(&replica, &env, head, Duration::from_secs(300))
        .await
        .ok_or_else(|| anyhow::anyhow!("the edge did not catch up"))?;
    let catchup_seconds = started.elapsed().as_secs_f64();
    stop.begin(tokio::time::Instant::now() + Duration::from_secs(5));
    let _ = task.await;
    control.stop().await?;
    let _ = std::fs::remove_dir_all(&data);
    Ok(CatchupReport {
        scenario: "feed-catchup",
        flags,
        changes,
        cold_seconds_to_ready,
        catchup_seconds,
        catchup_changes_per_second: changes as f64 / catchup_seconds.max(1e-9),
    })
}

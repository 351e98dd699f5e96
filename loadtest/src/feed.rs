//! The change feed under load, against the real control plane (a child process) and the edge's
//! own feed client and replica, run in this process so the moment a change is applied can be
//! seen exactly:
//!
//! - `feed-apply`: flag writes at a constant rate through the REST API; for each, the time
//!   from its *intended* send time (so a stall counts against every write it delays) until
//!   the edge has applied its version, over QUIC or NATS JetStream;
//! - `feed-snapshot`: an environment of N flags — how long an empty edge takes to be ready,
//!   how big its snapshot file is, and how long loading that file takes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use checkgate_edge::feed::client::{self, ClientSettings, FeedState, Via};
use checkgate_feed::nats::NatsSettings;
use checkgate_feed::quic::{Trust, parse_fingerprint};
use checkgate_protocol::Secret;
use checkgate_serve::replica::Replica;
use checkgate_testkit::http_request;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::control::{Backing, Control};
use crate::nats::Nats;
use crate::report::Latency;

/// How the run's edges follow the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Transport {
    /// Straight from the control plane, over QUIC.
    Quic,
    /// Changes over NATS JetStream (a nats-server on loopback), the rest over the control
    /// plane's HTTP feed route.
    Nats,
}

/// A control plane and, for the NATS transport, the server its feed is relayed through.
pub(crate) struct FeedStack {
    pub(crate) control: Control,
    pub(crate) nats: Option<Nats>,
}

impl FeedStack {
    /// Starts the control plane (and, for NATS, a nats-server of the run's own unless
    /// `nats_url` names one) with `extra` settings.
    pub(crate) async fn start(
        bin: &Path,
        backing: Backing,
        transport: Transport,
        nats_url: Option<&str>,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let nats = match (transport, nats_url) {
            (Transport::Quic, Some(_)) => {
                anyhow::bail!("--nats-url is for --transport nats")
            }
            (Transport::Quic, None) => None,
            (Transport::Nats, given) => Some(Nats::start(given).await?),
        };
        let mut env = extra.to_vec();
        if let Some(nats) = &nats {
            env.extend(nats.control_env());
        }
        let control = Control::start_with(bin, backing, &env).await?;
        Ok(Self { control, nats })
    }

    /// How an edge of this run follows the feed, with a new edge token.
    pub(crate) fn recipe(&self) -> anyhow::Result<EdgeRecipe> {
        let Some(nats) = &self.nats else {
            return EdgeRecipe::quic(&self.control);
        };
        let servers = checkgate_feed::nats::parse_servers("FEED_ADDR", &nats.url)
            .map_err(|r| anyhow::anyhow!("{}: {}", r.variable, r.problem))?;
        let bases =
            checkgate_feed::nats::control::parse_bases(&format!("http://{}", self.control.addr))
                .map_err(|e| anyhow::anyhow!(e))?;
        let control = checkgate_feed::nats::control::Upstream::new(bases, None)
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(EdgeRecipe {
            addrs: vec![nats.url.clone()],
            via: Via::Nats {
                nats: Box::new(NatsSettings {
                    servers,
                    creds: None,
                    user: None,
                    ca: None,
                    client_cert: None,
                    stream: nats.stream.clone(),
                    domain: None,
                    inbox_prefix: None,
                }),
                control,
            },
            token: Secret::new(self.control.edge_token()?),
        })
    }

    /// Stops the control plane, then the NATS server (so the relay does not see it vanish).
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.control.stop().await?;
        if let Some(nats) = self.nats {
            nats.stop().await?;
        }
        Ok(())
    }
}

/// How an in-process edge reaches the feed: the part of its settings every edge of a run
/// shares.
pub(crate) struct EdgeRecipe {
    addrs: Vec<String>,
    via: Via,
    token: Secret,
}

impl EdgeRecipe {
    /// A QUIC edge of `control`'s feed (for the scenarios that measure the feed itself).
    fn quic(control: &Control) -> anyhow::Result<Self> {
        let (addr, fingerprint) = control.feed()?;
        Ok(Self {
            addrs: vec![addr.to_string()],
            via: Via::Quic {
                server_name: "localhost".into(),
                trust: Trust::Fingerprint(
                    parse_fingerprint(&fingerprint).map_err(|e| anyhow::anyhow!(e))?,
                ),
            },
            token: Secret::new(control.edge_token()?),
        })
    }
}

/// The edge's feed client and replica, running in this process.
pub(crate) struct FeedEdge {
    pub(crate) replica: Arc<Replica>,
    stop: checkgate_ops::Stopper,
    task: tokio::task::JoinHandle<()>,
}

impl FeedEdge {
    /// Starts an edge called `name` holding what `replica` holds, its snapshot file at
    /// `snapshot`. With a `journal` file, it journals every change and syncs it before applying
    /// it, as an edge process does; without, it applies at once.
    pub(crate) fn start(
        recipe: &EdgeRecipe,
        name: &str,
        snapshot: PathBuf,
        journal: Option<&Path>,
        replica: Arc<Replica>,
    ) -> anyhow::Result<Self> {
        let settings = ClientSettings {
            addrs: recipe.addrs.clone(),
            via: recipe.via.clone(),
            token: recipe.token.clone(),
            name: name.into(),
            region: String::new(),
            anti_entropy: Duration::from_secs(3600),
            snapshot_path: snapshot,
        };
        let journal = journal
            .map(|path| checkgate_edge::journal::Journal::open(path).map(|(journal, _)| journal))
            .transpose()?;
        let (stop, stopping) = checkgate_ops::Stopping::pair();
        let task = tokio::spawn(client::run(
            settings,
            replica.clone(),
            Arc::new(FeedState::default()),
            journal,
            checkgate_edge::feed::upstream::Outbox::closed(),
            stopping,
        ));
        Ok(Self {
            replica,
            stop,
            task,
        })
    }

    /// Asks the edge to stop (it saves its snapshot file), without waiting.
    pub(crate) fn begin_stop(&self) {
        self.stop
            .begin(tokio::time::Instant::now() + Duration::from_secs(5));
    }

    /// Stops the edge and waits until it has.
    pub(crate) async fn stop(self) {
        self.begin_stop();
        let _ = self.task.await;
    }

    /// Waits until a stop begun with [`Self::begin_stop`] has ended.
    pub(crate) async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// Starts the edge's feed client in this process against `control` over QUIC, journaling as
/// an edge process does, its files in `data`.
fn edge(control: &Control, data: &Path) -> anyhow::Result<FeedEdge> {
    edge_holding(control, data, Replica::new())
}

/// [`edge`], holding what a snapshot file held (as a restarted edge does).
fn edge_from(
    control: &Control,
    data: &Path,
    persisted: &checkgate_edge::snapshot_file::Persisted,
) -> anyhow::Result<FeedEdge> {
    let replica = Replica::new();
    replica.load(persisted);
    edge_holding(control, data, replica)
}

fn edge_holding(control: &Control, data: &Path, replica: Arc<Replica>) -> anyhow::Result<FeedEdge> {
    let recipe = EdgeRecipe::quic(control)?;
    start_in(&recipe, data, replica)
}

/// An edge as an edge process runs: its snapshot file and journal in `data`, under their
/// usual names, every change journaled and synced before it is applied.
fn start_in(recipe: &EdgeRecipe, data: &Path, replica: Arc<Replica>) -> anyhow::Result<FeedEdge> {
    FeedEdge::start(
        recipe,
        "loadtest",
        data.join(checkgate_edge::SNAPSHOT_FILE),
        Some(&data.join(checkgate_edge::JOURNAL_FILE)),
        replica,
    )
}

/// Waits until the replica holds `env` at `version` or later; the instant it saw it.
pub(crate) async fn applied(
    replica: &Replica,
    env: &str,
    version: u64,
    limit: Duration,
) -> Option<Instant> {
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
    transport: Transport,
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

pub(crate) fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `feed-apply`: `rate` writes a second for `duration` (at most `max_writes`), the edge
/// following over `transport` (for NATS, through `nats_url` or a nats-server of the run's
/// own).
pub(crate) async fn apply(
    bin: &std::path::Path,
    postgres: Option<String>,
    transport: Transport,
    nats_url: Option<&str>,
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
    let stack = FeedStack::start(bin, backing, transport, nats_url, &[]).await?;
    let control = &stack.control;
    const FLAGS: usize = 100;
    control.seed_flags(FLAGS)?;
    let data = std::env::temp_dir().join(format!("cg-load-edge-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data)?;
    let edge = start_in(&stack.recipe()?, &data, Replica::new())?;
    let replica = edge.replica.clone();
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
    edge.stop().await;
    stack.stop().await?;
    let _ = std::fs::remove_dir_all(&data);
    Ok(ApplyReport {
        scenario: "feed-apply",
        transport,
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
    let edge = edge(&control, &data)?;
    let env = control.environment.clone();
    let ready = applied(&edge.replica, &env, flags as u64, Duration::from_secs(120))
        .await
        .ok_or_else(|| anyhow::anyhow!("the edge did not receive the environment"))?;
    let seconds_to_ready = ready.duration_since(started).as_secs_f64();
    edge.stop().await;

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
    let edge = edge(&control, &data)?;
    applied(&edge.replica, &env, head, Duration::from_secs(300))
        .await
        .ok_or_else(|| anyhow::anyhow!("the edge did not take the snapshot"))?;
    let cold_seconds_to_ready = started.elapsed().as_secs_f64();
    edge.stop().await;

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
    let edge = edge_from(&control, &data, &persisted)?;
    applied(&edge.replica, &env, head, Duration::from_secs(300))
        .await
        .ok_or_else(|| anyhow::anyhow!("the edge did not catch up"))?;
    let catchup_seconds = started.elapsed().as_secs_f64();
    edge.stop().await;
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

//! Scenarios of the feed's system tests: a cluster of control planes on one PostgreSQL
//! database (each test its own) sharing a Redis of the test's own, and optionally relaying to
//! a nats-server of the test's own; writers through the REST API; and the checks every
//! scenario ends with — each edge's store equal to PostgreSQL, every acknowledged write kept.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::cluster::{
    Control, ControlOptions, Edge, Nats, Redis, TempDir, Workspace, call, eventually, pause,
};
use super::pg::Database;
use serde_json::json;

/// One scenario at a time: each runs several processes on two cores.
pub static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long convergence may take before a test fails (generous: debug builds, shared cores).
pub const CONVERGE: Duration = Duration::from_secs(60);

pub struct Cluster {
    pub db: Database,
    pub redis: Redis,
    /// The NATS server the control planes relay to, when they do.
    pub nats: Option<Nats>,
    pub controls: Vec<Control>,
    pub ws: Workspace,
    pub dirs: Vec<TempDir>,
}

impl Cluster {
    /// `n` control planes on one database and one Redis; the first generates the feed
    /// certificate, the others present it too.
    pub fn start(n: usize) -> Self {
        Self::start_with(n, None, &[])
    }

    /// `n` control planes with further settings, as environment variables.
    pub fn start_env(n: usize, more: &[(&str, &str)]) -> Self {
        Self::start_with(n, None, more)
    }

    /// `n` control planes relaying the feed to a nats-server of their own, with further
    /// settings.
    pub fn start_nats_env(n: usize, more: &[(&str, &str)]) -> Self {
        Self::start_with(n, Some(Nats::start()), more)
    }

    /// `n` control planes relaying the feed to a nats-server of their own.
    pub fn start_nats(n: usize) -> Self {
        Self::start_with(n, Some(Nats::start()), &[])
    }

    /// `n` control planes relaying the feed to `nats`, with further settings (its
    /// credentials), as environment variables.
    pub fn start_relaying(n: usize, nats: Nats, more: &[(&str, &str)]) -> Self {
        Self::start_with(n, Some(nats), more)
    }

    fn start_with(n: usize, nats: Option<Nats>, more: &[(&str, &str)]) -> Self {
        let db = Database::new();
        let redis = Redis::start();
        let mut dirs = Vec::new();
        let mut controls: Vec<Control> = Vec::new();
        let mut nats_env: Vec<(&str, String)> =
            nats.iter().map(|n| ("NATS_URL", n.url())).collect();
        nats_env.extend(more.iter().map(|(k, v)| (*k, (*v).to_owned())));
        for _ in 0..n {
            let dir = TempDir::new("control");
            let cert = controls.first().map(|c| (c.cert.clone(), c.key.clone()));
            let control = Control::start(&ControlOptions {
                database_url: &db.url(),
                redis_url: Some(&redis.url()),
                data_dir: dir.path(),
                feed_port: 0,
                cert: cert.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
                env: &nats_env
                    .iter()
                    .map(|(k, v)| (*k, v.as_str()))
                    .collect::<Vec<_>>(),
            });
            controls.push(control);
            dirs.push(dir);
        }
        let ws = Workspace::set_up(controls[0].http());
        Self {
            db,
            redis,
            nats,
            controls,
            ws,
            dirs,
        }
    }

    pub fn edge(&self, feeds: &[usize]) -> Edge {
        let addrs: Vec<String> = feeds
            .iter()
            .map(|i| self.controls[*i].feed.to_string())
            .collect();
        Edge::start(
            &addrs.join(","),
            &self.controls[0].fingerprint,
            &self.ws.edge_token,
            TempDir::new("edge"),
        )
    }

    /// An edge following the feed over NATS, with the control planes `controls` for its
    /// handshake and snapshots.
    pub fn nats_edge(&self, controls: &[usize]) -> Edge {
        self.nats_edge_via(
            &self.nats.as_ref().expect("a cluster with NATS").url(),
            controls,
        )
    }

    /// An edge following the feed over the NATS servers at `nats_url` (a proxy, say).
    pub fn nats_edge_via(&self, nats_url: &str, controls: &[usize]) -> Edge {
        Edge::start_nats(
            nats_url,
            &self.control_urls(controls),
            &self.ws.edge_token,
            TempDir::new("edge"),
        )
    }

    /// `CONTROL_PLANE_URL` for the control planes `controls`.
    pub fn control_urls(&self, controls: &[usize]) -> String {
        let urls: Vec<String> = controls
            .iter()
            .map(|i| format!("http://{}", self.controls[*i].http()))
            .collect();
        urls.join(",")
    }

    /// Creates `per_env` flags in every environment, through the first instance.
    pub fn seed(&self, per_env: usize) {
        for env in &self.ws.envs {
            for i in 0..per_env {
                let (status, body) = call(
                    self.controls[0].http(),
                    "POST",
                    &format!("/api/environments/{env}/flags"),
                    Some(&self.ws.api_token),
                    Some(
                        &json!({"key": format!("flag-{i}"), "is_enabled": true, "rollout_percentage": 0}),
                    ),
                );
                assert_eq!(status, 201, "{body}");
            }
        }
    }
}

/// A write the control plane acknowledged: environment, flag and the version it took.
pub type Ack = (String, String, u64);

/// Runs `writers` threads of `each` updates, spreading them over the environments and the
/// instances at `targets` (a write to an instance that died fails and is not acknowledged, as
/// a client's would). `between(i)` runs before the first writer's `i`th write. Returns every
/// acknowledged write.
pub fn write(
    targets: &[std::net::SocketAddr],
    ws: &Workspace,
    writers: usize,
    each: usize,
    flags_per_env: usize,
    between: impl Fn(usize) + Send + Sync,
) -> Vec<Ack> {
    let acks = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for w in 0..writers {
            let (acks, between) = (&acks, &between);
            scope.spawn(move || {
                for i in 0..each {
                    if w == 0 {
                        between(i);
                    }
                    let env = &ws.envs[(w + i) % ws.envs.len()];
                    let key = format!("flag-{}", (w * 7 + i) % flags_per_env);
                    let target = targets[(w + i) % targets.len()];
                    let (status, body) = call(
                        target,
                        "PATCH",
                        &format!("/api/environments/{env}/flags/{key}"),
                        Some(&ws.api_token),
                        Some(&json!({"rollout_percentage": (i * 13 + w) % 101})),
                    );
                    if status == 200 {
                        let version = body["version"].as_u64().unwrap();
                        acks.lock().unwrap().push((env.clone(), key, version));
                    }
                }
            });
        }
    });
    acks.into_inner().unwrap()
}

impl Cluster {
    pub fn targets(&self) -> Vec<std::net::SocketAddr> {
        self.controls.iter().map(Control::http).collect()
    }
}

/// Waits until every edge holds every environment at PostgreSQL's head, then compares each
/// edge's saved store with PostgreSQL flag by flag.
pub fn assert_converged(cluster: &Cluster, edges: &[&Edge]) -> Duration {
    assert_converged_on(cluster, edges, &cluster.ws.envs)
}

/// [`assert_converged`] for the environments `envs` only (those the edges were granted).
pub fn assert_converged_on(cluster: &Cluster, edges: &[&Edge], envs: &[String]) -> Duration {
    let started = Instant::now();
    let mut heads = cluster.db.heads();
    heads.retain(|env, _| envs.contains(env));
    for (n, edge) in edges.iter().enumerate() {
        let reached = || {
            let held = edge.versions();
            heads.iter().all(|(env, v)| held.get(env) == Some(v))
        };
        let deadline = Instant::now() + CONVERGE;
        while !reached() {
            assert!(
                Instant::now() < deadline,
                "edge {n} did not reach the heads {heads:?} within {CONVERGE:?}; its status: {}",
                edge.status()
            );
            pause(Duration::from_millis(100));
        }
    }
    let elapsed = started.elapsed();
    for (n, edge) in edges.iter().enumerate() {
        for env in envs {
            let truth = cluster.db.flags(env);
            let head = heads[env];
            let (_, saved) = eventually(
                &format!("edge {n} to save {env} at {head}"),
                CONVERGE,
                || edge.saved_flags(env).filter(|(v, _)| *v == head),
            );
            let versions = |m: &BTreeMap<String, (u64, serde_json::Value)>| {
                m.iter()
                    .map(|(k, (v, _))| (k.clone(), *v))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                versions(&saved),
                versions(&truth),
                "edge {n}, environment {env}"
            );
            for (key, (_, doc)) in &truth {
                assert_eq!(&saved[key].1, doc, "edge {n}, {env}/{key}");
            }
        }
    }
    elapsed
}

/// Every acknowledged write is in PostgreSQL's history, with its key.
pub fn assert_acknowledged_writes_kept(cluster: &Cluster, acks: &[Ack]) {
    for (env, key, version) in acks {
        assert_eq!(
            cluster.db.change(env, *version),
            Some(("flag_upsert".to_owned(), key.clone())),
            "acknowledged write {env}/{key}@{version}"
        );
    }
}

/// `GET /api/edges` on a control plane, as its admin.
pub fn fleet(cluster: &Cluster) -> serde_json::Value {
    let (status, _, body) = checkgate_testkit::http_request(
        cluster.controls[0].http(),
        "GET",
        "/api/edges",
        &[("Cookie", &cluster.ws.admin_cookie)],
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// A server SDK key of the workspace's first environment, created by its admin.
pub fn server_key(cluster: &Cluster) -> String {
    let (status, _, body) = checkgate_testkit::http_request(
        cluster.controls[0].http(),
        "POST",
        &format!("/api/projects/{}/keys", cluster.ws.project),
        &[
            ("Cookie", &cluster.ws.admin_cookie),
            ("X-Checkgate-Request", "1"),
        ],
        Some(&json!({"name": "watch", "environment_id": cluster.ws.envs[0]}).to_string()),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// What [`Watch`] saw.
#[derive(Debug, Default)]
pub struct Watched {
    /// Evaluations answered 200, and answered otherwise (or not at all).
    pub answered: u64,
    pub failed: Vec<String>,
    /// Times an environment's version at the edge went down.
    pub regressions: Vec<String>,
}

/// Watches an edge while a fault lasts: evaluates `flag` with `sdk_key` and reads the
/// versions it holds every 50 ms, noting any answer other than 200 and any version that
/// goes backwards.
pub struct Watch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<Watched>>,
}

impl Watch {
    pub fn start(edge: &Edge, sdk_key: &str, flag: &str) -> Self {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let addr = edge.service.addr;
        let path = format!("/api/v1/evaluate/{flag}");
        let (flag_stop, key) = (stop.clone(), format!("Bearer {sdk_key}"));
        let thread = std::thread::spawn(move || {
            let mut seen = Watched::default();
            let mut held: BTreeMap<String, u64> = BTreeMap::new();
            while !flag_stop.load(Ordering::Relaxed) {
                let answer = checkgate_testkit::http_request(
                    addr,
                    "POST",
                    &path,
                    &[("Authorization", &key)],
                    Some(r#"{"context":{"targetingKey":"u-1"}}"#),
                );
                match answer {
                    Ok((200, _, _)) => seen.answered += 1,
                    Ok((status, _, body)) => seen.failed.push(format!("{status} {body}")),
                    Err(e) => seen.failed.push(e.to_string()),
                }
                let now = Edge::versions_at(addr);
                for (env, version) in now {
                    if let Some(before) = held.insert(env.clone(), version)
                        && version < before
                    {
                        seen.regressions
                            .push(format!("{env}: {before} → {version}"));
                    }
                }
                pause(Duration::from_millis(50));
            }
            seen
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> Watched {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Changes a flag in the database with no change row — no frame or message will ever carry
/// it, so only the digest comparison (every 2 s in these tests) can notice — and waits until
/// `edge` holds it, then checks the edge logged the mismatch.
pub fn assert_anti_entropy_repairs(cluster: &Cluster, edge: Edge) {
    let env = &cluster.ws.envs[0];
    cluster.db.admin_sql_in_db(&format!(
        "UPDATE flags SET version = version + 1000 WHERE environment_id = '{env}' AND key = 'flag-1'"
    ));
    let want = cluster.db.flags(env)["flag-1"].0;
    eventually(
        "the digest mismatch to resync the environment",
        CONVERGE,
        || {
            edge.saved_flags(env)
                .and_then(|(_, flags)| flags.get("flag-1").map(|(v, _)| *v))
                .filter(|v| *v == want)
        },
    );
    let (_, log) = edge.service.terminate().unwrap();
    assert!(log.iter().any(|l| l.contains("digest mismatch")), "{log:?}");
}

/// The control plane that holds the NATS relay lease (it logs so when it takes it).
pub fn relay_holder(cluster: &mut Cluster) -> usize {
    eventually(
        "one control plane to hold the relay lease",
        CONVERGE,
        || {
            cluster.controls.iter_mut().position(|c| {
                c.service
                    .wait_for_log("holding the NATS relay lease", Duration::from_millis(10))
                    .is_ok()
            })
        },
    )
}

/// The sum of a metric's series in a Prometheus text page (0 when absent).
pub fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once("} ")?.1,
                None => rest.strip_prefix(' ')?,
            };
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

/// How long each fault of the NATS scenarios lasts.
pub const FAULT: Duration = Duration::from_secs(20);

/// What a scenario saw while its fault lasted.
pub struct Faulted {
    pub acks: Vec<Ack>,
    pub watched: Watched,
    /// When the fault ended.
    pub ended: Instant,
    /// The edge's NATS messages so far when the fault ended.
    pub messages: f64,
}

/// The NATS messages so far of the edge at `addr`.
pub fn nats_messages(addr: std::net::SocketAddr) -> f64 {
    let (_, page) = checkgate_testkit::http_get(addr, "/metrics").unwrap_or_default();
    metric(&page, "checkgate_feed_nats_messages_total")
}

/// Checks what every fault scenario ends with: nothing lost, no version going backwards, the
/// edge answering throughout, changes arriving over NATS again (not only by catching up from
/// the control plane), and the edge equal to the database after the fault ended (how long
/// that took is printed for the figures; the limit asserted is [`CONVERGE`], as timed
/// assertions flake on shared machines).
pub fn after_fault(cluster: &Cluster, edge: &Edge, faulted: &Faulted) {
    after_fault_on(cluster, edge, faulted, &cluster.ws.envs);
}

/// [`after_fault`] for an edge granted `envs` only (the first among them).
#[allow(
    clippy::print_stderr,
    reason = "the recovery times it prints are figures for BENCHMARKS.md"
)]
pub fn after_fault_on(cluster: &Cluster, edge: &Edge, faulted: &Faulted, envs: &[String]) {
    let Faulted {
        acks,
        watched,
        ended,
        messages,
    } = faulted;
    assert_acknowledged_writes_kept(cluster, acks);
    assert_converged_on(cluster, &[edge], envs);
    eprintln!(
        "converged {:?} after the fault ended ({} evaluations answered meanwhile)",
        ended.elapsed(),
        watched.answered
    );
    assert!(
        watched.regressions.is_empty(),
        "versions went backwards: {:?}",
        watched.regressions
    );
    assert!(
        watched.failed.is_empty(),
        "the edge stopped answering: {:?}",
        watched.failed
    );
    assert!(watched.answered > 0);
    // Changes travel over NATS again (not only by catching up from the control plane): one
    // more write arrives as a message.
    write(&cluster.targets(), &cluster.ws, 1, 1, 3, |_| {});
    eventually(
        "a change to arrive over NATS after the fault",
        CONVERGE,
        || (nats_messages(edge.service.addr) > *messages).then_some(()),
    );
    assert_converged_on(cluster, &[edge], envs);
}

/// Runs `fault` (which starts it and returns once it ended) after the tenth of 60 writes by
/// each of two writers, with one NATS-fed edge watched throughout.
pub fn under_fault(cluster: &Cluster, edge: &Edge, fault: impl Fn() + Send + Sync) -> Faulted {
    under_fault_on(cluster, edge, &cluster.ws.envs, fault)
}

/// [`under_fault`] for an edge granted `envs` only (the first among them).
pub fn under_fault_on(
    cluster: &Cluster,
    edge: &Edge,
    envs: &[String],
    fault: impl Fn() + Send + Sync,
) -> Faulted {
    let key = server_key(cluster);
    assert_converged_on(cluster, &[edge], envs);
    let watch = Watch::start(edge, &key, "flag-0");
    let ended = std::sync::Mutex::new(None);
    let addr = edge.service.addr;
    let acks = write(&cluster.targets(), &cluster.ws, 2, 60, 3, |i| {
        if i == 10 {
            fault();
            *ended.lock().unwrap() = Some((Instant::now(), nats_messages(addr)));
        }
        pause(Duration::from_millis(20));
    });
    let watched = watch.finish();
    let (ended, messages) = ended.into_inner().unwrap().unwrap();
    Faulted {
        acks,
        watched,
        ended,
        messages,
    }
}

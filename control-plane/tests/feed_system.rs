//! The change feed end to end, with real processes on loopback: control planes on one
//! PostgreSQL database (each test its own) sharing a Redis of the test's own, edges dialing
//! them over QUIC, writers through the REST API. After every scenario each edge's store must
//! equal PostgreSQL, flag by flag and version by version.
//!
//! The scenarios run one at a time (they start several processes each).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use checkgate_testkit::udp_proxy::{Faults, UdpProxy};
use common::cluster::{
    Control, ControlOptions, Edge, Redis, TempDir, Workspace, call, eventually, pause,
};
use common::pg::Database;
use serde_json::json;

/// One scenario at a time: each runs several processes on two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long convergence may take before a test fails (generous: debug builds, shared cores).
const CONVERGE: Duration = Duration::from_secs(60);

struct Cluster {
    db: Database,
    redis: Redis,
    controls: Vec<Control>,
    ws: Workspace,
    _dirs: Vec<TempDir>,
}

impl Cluster {
    /// `n` control planes on one database and one Redis; the first generates the feed
    /// certificate, the others present it too.
    fn start(n: usize) -> Self {
        let db = Database::new();
        let redis = Redis::start();
        let mut dirs = Vec::new();
        let mut controls: Vec<Control> = Vec::new();
        for _ in 0..n {
            let dir = TempDir::new("control");
            let cert = controls.first().map(|c| (c.cert.clone(), c.key.clone()));
            let control = Control::start(&ControlOptions {
                database_url: &db.url(),
                redis_url: Some(&redis.url()),
                data_dir: dir.path(),
                feed_port: 0,
                cert: cert.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
                env: &[],
            });
            controls.push(control);
            dirs.push(dir);
        }
        let ws = Workspace::set_up(controls[0].http());
        Self {
            db,
            redis,
            controls,
            ws,
            _dirs: dirs,
        }
    }

    fn edge(&self, feeds: &[usize]) -> Edge {
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

    /// Creates `per_env` flags in every environment, through the first instance.
    fn seed(&self, per_env: usize) {
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
type Ack = (String, String, u64);

/// Runs `writers` threads of `each` updates, spreading them over the environments and the
/// instances at `targets` (a write to an instance that died fails and is not acknowledged, as
/// a client's would). `between(i)` runs before the first writer's `i`th write. Returns every
/// acknowledged write.
fn write(
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
    fn targets(&self) -> Vec<std::net::SocketAddr> {
        self.controls.iter().map(Control::http).collect()
    }
}

/// Waits until every edge holds every environment at PostgreSQL's head, then compares each
/// edge's saved store with PostgreSQL flag by flag.
fn assert_converged(cluster: &Cluster, edges: &[&Edge]) -> Duration {
    let started = Instant::now();
    let heads = cluster.db.heads();
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
        for env in &cluster.ws.envs {
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
fn assert_acknowledged_writes_kept(cluster: &Cluster, acks: &[Ack]) {
    for (env, key, version) in acks {
        assert_eq!(
            cluster.db.change(env, *version),
            Some(("flag_upsert".to_owned(), key.clone())),
            "acknowledged write {env}/{key}@{version}"
        );
    }
}

#[test]
fn two_control_planes_two_edges_and_four_writers_converge_to_postgres() {
    let _one = serial();
    let cluster = Cluster::start(2);
    cluster.seed(10);
    let a = cluster.edge(&[0]);
    let b = cluster.edge(&[1]);
    let acks = write(&cluster.targets(), &cluster.ws, 4, 500, 10, |_| {});
    assert_eq!(
        acks.len(),
        2000,
        "every write through a live instance is acknowledged"
    );
    assert_acknowledged_writes_kept(&cluster, &acks);
    let took = assert_converged(&cluster, &[&a, &b]);
    eprintln!("edges converged {took:?} after the last write");
    // Their digests (compared every 2 s) agreed with the control planes' all along.
    for edge in [a, b] {
        let (_, log) = edge.service.terminate().unwrap();
        assert!(
            !log.iter().any(|l| l.contains("digest mismatch")),
            "{log:?}"
        );
    }
}

#[test]
fn a_control_plane_killed_during_writes_loses_no_acknowledged_write() {
    let _one = serial();
    let mut cluster = Cluster::start(2);
    cluster.seed(10);
    // Each edge knows both instances, so the edge of the killed one fails over.
    let a = cluster.edge(&[0, 1]);
    let b = cluster.edge(&[1, 0]);
    let targets = cluster.targets();
    let victim = Mutex::new(Some(cluster.controls.remove(0)));
    let acks = write(&targets, &cluster.ws, 2, 300, 10, |i| {
        if i == 100 {
            // kill -9: no goodbye, no drain (dropping a running `Service` sends SIGKILL).
            drop(victim.lock().unwrap().take());
        }
    });
    assert!(victim.lock().unwrap().is_none());
    assert!(
        (300..600).contains(&acks.len()),
        "writes through the dead instance fail, the others succeed: {}",
        acks.len()
    );
    assert_acknowledged_writes_kept(&cluster, &acks);
    assert_converged(&cluster, &[&a, &b]);
}

#[test]
fn redis_stopped_for_ten_seconds_during_writes_loses_nothing() {
    let _one = serial();
    let mut cluster = Cluster::start(2);
    cluster.seed(5);
    let a = cluster.edge(&[0]);
    let b = cluster.edge(&[1]);
    let targets = cluster.targets();
    let mut acks = write(&targets, &cluster.ws, 2, 50, 5, |_| {});
    cluster.redis.stop();
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(10) {
        acks.extend(write(&targets, &cluster.ws, 2, 10, 5, |_| {
            pause(Duration::from_millis(50))
        }));
    }
    cluster.redis.restart();
    acks.extend(write(&targets, &cluster.ws, 2, 50, 5, |_| {}));
    assert_acknowledged_writes_kept(&cluster, &acks);
    let took = assert_converged(&cluster, &[&a, &b]);
    eprintln!(
        "edges converged {took:?} after the last write ({} writes)",
        acks.len()
    );
    // Both instances noticed the outage and, once Redis was back (their resubscription backs
    // off up to 5 s), followed each other through it again.
    for control in &mut cluster.controls {
        let service = &mut control.service;
        service
            .wait_for_log("lost redis", Duration::from_secs(5))
            .unwrap();
        service
            .wait_for_log("redis is back", Duration::from_secs(30))
            .unwrap();
    }
}

#[test]
fn an_edge_restarted_while_every_control_plane_is_down_serves_what_it_held() {
    let _one = serial();
    let cluster = Cluster::start(1);
    cluster.seed(5);
    let edge = cluster.edge(&[0]);
    write(&cluster.targets(), &cluster.ws, 1, 30, 5, |_| {});
    assert_converged(&cluster, &[&edge]);
    let versions = edge.versions();

    let Cluster {
        controls,
        db: _db,
        redis: _redis,
        ws,
        _dirs,
    } = cluster;
    drop(controls);
    let (exit, _) = edge.service.terminate().unwrap();
    assert!(exit.success());
    let envs = |state: checkgate_edge::snapshot_file::Persisted| state.environments;
    let before = envs(common::cluster::restored(&edge.data.0).unwrap());
    let restarted = Edge::start(
        "127.0.0.1:9",
        "00".repeat(32).as_str(),
        &ws.edge_token,
        edge.data,
    );
    let (status, body) = restarted.service.get("/ready").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("snapshot file"), "{body}");
    assert_eq!(restarted.versions(), versions);
    let status = restarted.status();
    for env in status["environments"].as_array().unwrap() {
        assert_eq!(env["source"], "snapshot_file");
        assert_eq!(env["stale"], true);
    }
    assert_eq!(envs(restarted.restored().unwrap()), before);
}

#[test]
fn frames_lost_duplicated_and_reordered_on_the_wire_still_converge() {
    let _one = serial();
    let cluster = Cluster::start(1);
    cluster.seed(5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let proxy = runtime
        .block_on(UdpProxy::start(
            cluster.controls[0].feed,
            Faults {
                drop: 0.05,
                duplicate: 0.05,
                reorder: 0.1,
                seed: 7,
            },
        ))
        .unwrap();
    let edge = Edge::start(
        &proxy.addr().to_string(),
        &cluster.controls[0].fingerprint,
        &cluster.ws.edge_token,
        TempDir::new("edge"),
    );
    write(&cluster.targets(), &cluster.ws, 2, 100, 5, |i| {
        if i == 30 {
            // Longer than the edge waits in silence (10 s): the connection dies, attempts fail
            // while the partition lasts, and one succeeds after it.
            proxy.partition(true);
            pause(Duration::from_secs(11));
            proxy.partition(false);
        }
    });
    assert_converged(&cluster, &[&edge]);
    let stats = proxy.stats();
    assert!(stats.dropped > 0 && stats.duplicated > 0, "{stats:?}");
}

#[test]
fn a_truncated_or_bit_flipped_snapshot_file_is_refused_and_said_so() {
    let _one = serial();
    let cluster = Cluster::start(1);
    cluster.seed(3);
    let edge = cluster.edge(&[0]);
    assert_converged(&cluster, &[&edge]);
    let (exit, _) = edge.service.terminate().unwrap();
    assert!(exit.success());
    let good = std::fs::read(edge.data.0.join(checkgate_edge::SNAPSHOT_FILE)).unwrap();
    let data = edge.data;
    let path = data.0.join(checkgate_edge::SNAPSHOT_FILE);
    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x10;
    for (what, bytes) in [
        ("truncated", good[..good.len() - 7].to_vec()),
        ("bit-flipped", flipped),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        // No control plane to fall back on: only the file could make it ready.
        let edge = Edge::start(
            "127.0.0.1:9",
            &"00".repeat(32),
            "cge_none",
            TempDir(data.0.clone()),
        );
        let (status, body) = edge.service.get("/ready").unwrap();
        assert_eq!(status, 503, "{what}: {body}");
        assert!(body.contains("snapshot file refused"), "{what}: {body}");
        let status = edge.status();
        assert!(
            status["snapshot_file"]["refused"].is_string(),
            "{what}: {status}"
        );
        let (_, log) = edge.service.terminate().unwrap();
        assert!(
            log.iter().any(|l| l.contains("refusing the snapshot file")),
            "{what}: {log:?}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{what}: the file is left for inspection"
        );
        std::mem::forget(edge.data);
    }
}

#[test]
fn anti_entropy_repairs_an_edge_that_missed_a_change_without_a_trace() {
    let _one = serial();
    let cluster = Cluster::start(1);
    cluster.seed(3);
    let edge = cluster.edge(&[0]);
    assert_converged(&cluster, &[&edge]);
    // A flag changed in the database with no change row: no frame will ever carry it, so only
    // the digest comparison (every 2 s in these tests) can notice.
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

/// `GET /api/edges` on a control plane, as its admin.
fn fleet(cluster: &Cluster) -> serde_json::Value {
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

#[test]
fn revoking_the_edge_token_stops_the_edge() {
    let _one = serial();
    let cluster = Cluster::start(1);
    cluster.seed(2);
    let edge = cluster.edge(&[0]);
    assert_converged(&cluster, &[&edge]);

    // The fleet shows the edge connected, at the head of what it serves (its row is written
    // within seconds of a position moving).
    let served = edge.versions();
    let listed = eventually("the fleet to show the edge at every head", CONVERGE, || {
        let listed = fleet(&cluster);
        let envs = listed["edges"][0]["environments"].as_array()?;
        (envs.len() == served.len() && envs.iter().all(|e| e["lag"] == 0)).then_some(listed)
    });
    let edges = listed["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{listed}");
    assert_eq!(edges[0]["name"], "test-edge");
    assert_eq!(edges[0]["state"], "connected", "{listed}");
    let envs = edges[0]["environments"].as_array().unwrap();
    assert_eq!(envs.len(), served.len(), "{listed}");
    for env in envs {
        let id = env["environment_id"].as_str().unwrap();
        assert_eq!(
            env["position"].as_u64(),
            served.get(id).copied(),
            "{listed}"
        );
        assert_eq!(env["lag"], 0, "{listed}");
    }
    assert_eq!(edges[0]["data_age_ms"], 0, "{listed}");
    let tokens = checkgate_testkit::http_request(
        cluster.controls[0].http(),
        "GET",
        "/api/edge-tokens",
        &[("Cookie", &cluster.ws.admin_cookie)],
        None,
    )
    .unwrap();
    let tokens: serde_json::Value = serde_json::from_str(&tokens.2).unwrap();
    let id = tokens[0]["id"].as_str().unwrap();
    let (status, _, _) = checkgate_testkit::http_request(
        cluster.controls[0].http(),
        "DELETE",
        &format!("/api/edge-tokens/{id}"),
        &[
            ("Cookie", &cluster.ws.admin_cookie),
            ("X-Checkgate-Request", "1"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(status, 204);
    eventually("the revoked edge to stop serving", CONVERGE, || {
        let status = edge.status();
        (status["feed"]["revoked"] == true && status["environments"].as_array()?.is_empty())
            .then_some(())
    });
    eventually("/ready to refuse", CONVERGE, || {
        let (status, body) = edge.service.get("/ready").ok()?;
        (status == 503 && body.contains("revoked")).then_some(())
    });
    assert!(
        !edge.snapshot_path().exists(),
        "the revoked grants do not survive a restart"
    );
    // Its session is over: the fleet says so, still listing it (for a day).
    eventually("the fleet to show the edge disconnected", CONVERGE, || {
        let listed = fleet(&cluster);
        let edge = &listed["edges"][0];
        (edge["state"] == "disconnected" && edge["disconnected_at"].is_string()).then_some(())
    });
}

//! The change feed end to end, with real processes on loopback: control planes on one
//! PostgreSQL database (each test its own) sharing a Redis of the test's own, edges dialing
//! them over QUIC, writers through the REST API. After every scenario each edge's store must
//! equal PostgreSQL, flag by flag and version by version.
//!
//! The scenarios run one at a time (they start several processes each).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use checkgate_testkit::udp_proxy::{Faults, UdpProxy};
use common::cluster::{Edge, TempDir, eventually, pause};
use common::scenario::{
    CONVERGE, Cluster, assert_acknowledged_writes_kept, assert_anti_entropy_repairs,
    assert_converged, fleet, serial, write,
};

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
        nats: _,
        dirs: _dirs,
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
    assert_anti_entropy_repairs(&cluster, edge);
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

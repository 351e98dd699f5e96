//! An edge's recovery, with real processes on loopback: it notices a control plane that was
//! killed and restarted at once (the old connection is silent, not closed) and follows the new
//! one; and after its own crash it never serves a version older than one it had served.
//!
//! The scenarios run one at a time (they start several processes each).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::cluster::{Control, ControlOptions, Edge, TempDir, Workspace, call, eventually};
use common::pg::Database;
use serde_json::json;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long setting up may take (debug builds, shared cores).
const SETTLE: Duration = Duration::from_secs(60);

fn control(db: &Database, dir: &TempDir, feed_port: u16, cert: Option<(&Path, &Path)>) -> Control {
    Control::start(&ControlOptions {
        database_url: &db.url(),
        redis_url: None,
        data_dir: dir.path(),
        feed_port,
        cert,
        env: &[],
    })
}

fn create_flag(control: &Control, ws: &Workspace, env: &str, key: &str) {
    let (status, body) = call(
        control.http(),
        "POST",
        &format!("/api/environments/{env}/flags"),
        Some(&ws.api_token),
        Some(&json!({"key": key, "is_enabled": true, "rollout_percentage": 0})),
    );
    assert_eq!(status, 201, "{body}");
}

#[test]
fn a_control_plane_killed_and_restarted_is_noticed_and_followed_within_20_s() {
    let _one = serial();
    let db = Database::new();
    let dir = TempDir::new("control");
    let first = control(&db, &dir, 0, None);
    let ws = Workspace::set_up(first.http());
    let env = ws.envs[0].clone();
    let edge = Edge::start(
        &first.feed.to_string(),
        &first.fingerprint,
        &ws.edge_token,
        TempDir::new("edge"),
    );
    eventually("the edge to connect and catch up", SETTLE, || {
        let status = edge.status();
        (status["feed"]["connected"] == true && status["ready"] == true).then_some(())
    });
    let reconnects = edge.status()["feed"]["reconnects"].as_u64().unwrap();

    // kill -9 and start again at once, on the same feed port with the same certificate: the
    // edge's connection is not closed, it just stops hearing anything.
    let (feed, cert, key) = (first.feed, first.cert.clone(), first.key.clone());
    drop(first);
    let second = control(&db, &dir, feed.port(), Some((&cert, &key)));
    create_flag(&second, &ws, &env, "written-after-the-restart");
    let head = db.heads()[&env];

    // Three missed heartbeats (at least 10 s) end the dead connection, well before QUIC's 30 s
    // idle timeout would; the edge reconnects and receives the flag.
    eventually(
        "the flag written after the restart to reach the edge",
        Duration::from_secs(20),
        || (edge.versions().get(&env) == Some(&head)).then_some(()),
    );
    let status = edge.status();
    assert!(
        status["feed"]["reconnects"].as_u64().unwrap() > reconnects,
        "{status}"
    );
    assert!(
        status["feed"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("the feed is dead")),
        "the edge says why it left the old connection: {status}"
    );
    assert_eq!(status["feed"]["connected"], true, "{status}");
}

#[test]
fn an_edge_killed_during_writes_never_serves_an_older_version_after_restart() {
    let _one = serial();
    let db = Database::new();
    let dir = TempDir::new("control");
    let control = control(&db, &dir, 0, None);
    let ws = Workspace::set_up(control.http());
    let env = ws.envs[0].clone();
    for i in 0..5 {
        create_flag(&control, &ws, &env, &format!("flag-{i}"));
    }
    let edge = Edge::start(
        &control.feed.to_string(),
        &control.fingerprint,
        &ws.edge_token,
        TempDir::new("edge"),
    );
    let start = db.heads()[&env];
    eventually("the edge to catch up", SETTLE, || {
        (edge.versions().get(&env) == Some(&start)).then_some(())
    });

    let Edge { service, data } = edge;
    let stop = AtomicBool::new(false);
    let target = control.http();
    let seen = std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..3_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                call(
                    target,
                    "PATCH",
                    &format!("/api/environments/{env}/flags/flag-{}", i % 5),
                    Some(&ws.api_token),
                    Some(&json!({"rollout_percentage": i % 101})),
                );
            }
        });
        // Watch what the edge serves while the writes flow; once it has served 40 of them,
        // kill it -9 right after a look (every version up to `seen` was served to a client).
        let seen = eventually("the edge to serve 40 writes", SETTLE, || {
            let served = service.addr;
            let (_, body) = checkgate_testkit::http_get(served, "/status").ok()?;
            let status: serde_json::Value = serde_json::from_str(&body).ok()?;
            let version = status["environments"]
                .as_array()?
                .iter()
                .find(|e| e["env_id"] == env.as_str())?["version"]
                .as_u64()?;
            (version >= start + 40).then_some(version)
        });
        drop(service);
        stop.store(true, Ordering::Relaxed);
        seen
    });
    drop(control);

    // Restarted with the control plane gone: it serves from its files alone.
    let restarted = Edge::start("127.0.0.1:9", &"00".repeat(32), &ws.edge_token, data);
    let served = restarted.versions()[&env];
    assert!(
        served >= seen,
        "the edge served version {seen} before the crash and {served} after it"
    );
    let status = restarted.status();
    let environment = status["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["env_id"] == env.as_str())
        .unwrap()
        .clone();
    assert_eq!(environment["source"], "snapshot_file", "{status}");
    assert_eq!(environment["stale"], true, "{status}");
    let (ready, body) = restarted.service.get("/ready").unwrap();
    assert_eq!(ready, 200, "{body}");
}

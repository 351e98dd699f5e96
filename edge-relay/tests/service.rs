//! The edge as a service: its routes answered in-process (`oneshot`), and the real binary on a
//! loopback port — configuration refused before binding, health, readiness, graceful stop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use checkgate_edge::relay::Relay;
use checkgate_edge::{DATA_CHECK, app};
use checkgate_ops::{Health, metrics};
use checkgate_serve::replica::Replica;
use checkgate_serve::{SdkState, ServeArgs};
use checkgate_testkit::{self as testkit, Service};
use http_body_util::BodyExt;
use tower::ServiceExt;

const BIN: &str = env!("CARGO_BIN_EXE_checkgate-edge");

/// A relay holding nothing, not connected to any feed.
fn relay() -> Arc<Relay> {
    Arc::new(Relay {
        replica: Replica::new(),
        feed: Arc::default(),
        feed_addr: None,
        snapshot_path: std::env::temp_dir().join("no-snapshot.bin"),
        snapshot_refused: None,
        insights: Arc::new(checkgate_serve::insights::Insights::new(100, true)),
    })
}

fn sdk(relay: &Relay) -> SdkState {
    SdkState::new(relay.served(), &ServeArgs::default()).0
}

async fn call(router: axum::Router, path: &str) -> (StatusCode, String) {
    let response = router
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn health_is_ok_and_ready_waits_for_data() {
    let health = Health::new();
    health.set(DATA_CHECK, false, "no flag data loaded yet");
    let relay = relay();
    let router = app(health.clone(), Some(metrics::handle()), sdk(&relay), relay);

    let (status, body) = call(router.clone(), "/health").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"status":"ok"}"#)
    );

    let (status, body) = call(router.clone(), "/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "not_ready");
    assert_eq!(
        json["checks"][DATA_CHECK]["detail"],
        "no flag data loaded yet"
    );

    health.set(DATA_CHECK, true, "3 environments loaded");
    let (status, _) = call(router, "/ready").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_get_a_json_404_and_metrics_count_requests() {
    metrics::describe_process("checkgate-edge");
    let relay = relay();
    let router = app(Health::new(), Some(metrics::handle()), sdk(&relay), relay);
    let (status, body) = call(router.clone(), "/no/such/thing?sdk_key=secret").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        r#"{"error":{"code":"not_found","message":"no such route"}}"#
    );

    call(router.clone(), "/health").await;
    let (status, text) = call(router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(r#"http_requests_total{route="/health",status="2xx"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{route="unmatched",status="4xx"}"#),
        "{text}"
    );
    assert!(text.contains("checkgate_build_info"), "{text}");
    // Labels come from route templates only: a raw path (and its query) never becomes a label.
    assert!(
        !text.contains("no/such/thing") && !text.contains("secret"),
        "{text}"
    );
}

#[test]
fn bad_configuration_exits_2_with_one_line_naming_the_variable() {
    for (var, value) in [
        ("PORT", "70000"),
        ("HOST", "nowhere"),
        ("LOG_FORMAT", "xml"),
        ("SHUTDOWN_GRACE_SECONDS", "-1"),
        ("METRICS_ADDR", "localhost"),
    ] {
        let out = testkit::run(BIN, &[], &[(var, value)]).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{var}={value}: {stderr}");
        assert!(
            stderr.starts_with(&format!("checkgate-edge: invalid configuration: {var} (--")),
            "{stderr}"
        );
    }
}

#[test]
fn a_nats_feed_needs_its_control_plane_and_coherent_settings() {
    let token = ("EDGE_TOKEN", "cge_token");
    let nats = ("FEED_ADDR", "nats://127.0.0.1:4222");
    let control = ("CONTROL_PLANE_URL", "http://127.0.0.1:3000");
    for (envs, var) in [
        (vec![nats, token], "CONTROL_PLANE_URL"),
        (
            vec![nats, token, ("CONTROL_PLANE_URL", "https://cp/api")],
            "CONTROL_PLANE_URL",
        ),
        (
            vec![nats, token, ("CONTROL_PLANE_URL", "https://edge:pw@cp")],
            "CONTROL_PLANE_URL",
        ),
        // A CA file for plain http, or one that is missing.
        (
            vec![nats, token, control, ("CONTROL_PLANE_CA", "/etc/hostname")],
            "CONTROL_PLANE_CA",
        ),
        (
            vec![
                nats,
                token,
                ("CONTROL_PLANE_URL", "https://cp"),
                ("CONTROL_PLANE_CA", "/nonexistent/ca.pem"),
            ],
            "CONTROL_PLANE_CA",
        ),
        (
            vec![nats, token, ("CONTROL_PLANE_URL", "cp:3000")],
            "CONTROL_PLANE_URL",
        ),
        (
            vec![("FEED_ADDR", "nats://a:4222,b:3443"), token, control],
            "FEED_ADDR",
        ),
        (vec![nats, control], "EDGE_TOKEN"),
        (
            vec![nats, token, control, ("NATS_PASSWORD", "p")],
            "NATS_USER",
        ),
        (
            vec![nats, token, control, ("NATS_DOMAIN", "a b")],
            "NATS_DOMAIN",
        ),
    ] {
        let out = testkit::run(BIN, &[], &envs).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{envs:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{envs:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("checkgate-edge: invalid configuration: {var} (--")),
            "{envs:?}: {stderr}"
        );
    }
}

#[test]
fn help_documents_every_variable() {
    let out = testkit::run(BIN, &["--help"], &[]).unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for var in [
        "PORT",
        "HOST",
        "CHECKGATE_DATA_DIR",
        "RUST_LOG",
        "LOG_FORMAT",
        "METRICS_ADDR",
        "SHUTDOWN_GRACE_SECONDS",
        "FEED_ADDR",
        "CONTROL_PLANE_URL",
        "CONTROL_PLANE_CA",
        "NATS_CREDS",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_STREAM",
        "NATS_DOMAIN",
    ] {
        assert!(
            help.contains(&format!("[env: {var}")),
            "--help does not mention {var}"
        );
    }
}

/// A data directory of the test's own (the binary's default is relative to the working
/// directory, which would put files in the source tree).
struct DataDir(std::path::PathBuf);

impl DataDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("cg-edge-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_binary_serves_and_stops_cleanly_on_sigterm() {
    let data = DataDir::new();
    let service = Service::start(BIN, &[("CHECKGATE_DATA_DIR", data.path())]).unwrap();
    assert_eq!(service.get("/health").unwrap().0, 200);
    let (status, body) = service.get("/ready").unwrap();
    assert_eq!(status, 503, "no data yet: {body}");
    assert_eq!(service.get("/metrics").unwrap().0, 200);
    let (exit, log) = service.terminate().unwrap();
    assert!(exit.success(), "exit {exit:?}\n{}", log.join("\n"));
    assert!(
        log.iter().any(|l| l.contains("stopped")),
        "{}",
        log.join("\n")
    );
}

#[test]
fn metrics_can_move_to_their_own_listener() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics_addr = probe.local_addr().unwrap();
    drop(probe);
    let data = DataDir::new();
    let service = Service::start(
        BIN,
        &[
            ("METRICS_ADDR", &metrics_addr.to_string()),
            ("CHECKGATE_DATA_DIR", data.path()),
        ],
    )
    .unwrap();
    assert_eq!(
        service.get("/metrics").unwrap().0,
        404,
        "not on the public port"
    );
    let (status, text) = testkit::http_get(metrics_addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(text.contains("checkgate_build_info"));
    // `/status` names the environments and the feed address: operators only.
    assert_eq!(
        service.get("/status").unwrap().0,
        404,
        "not on the public port once an operations listener exists"
    );
    let (status, body) = testkit::http_get(metrics_addr, "/status").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"feed\""), "{body}");
    service.terminate().unwrap();
}

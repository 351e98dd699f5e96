//! The control plane's operational routes answered in-process (`oneshot`): liveness,
//! readiness that waits for the store, Prometheus metrics and the JSON 404 on the real router.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use checkgate_control::api::AppState;
use checkgate_control::store::{self, Store};
use checkgate_control::{STORE_CHECK, app};
use checkgate_ops::{Health, metrics};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The router over a fresh embedded store in a directory removed on drop.
struct Fixture {
    /// The router as `main` builds it, with /metrics on the public port.
    router: Router,
    /// The readiness checks behind the router, which a test flips.
    health: Health,
    /// Kept so the pool closes before the directory goes.
    store: Store,
    /// The store's directory.
    dir: std::path::PathBuf,
}

impl Fixture {
    async fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("cg-control-ops-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&store::embedded_url(&dir), 2, Duration::from_secs(10))
            .await
            .unwrap();
        metrics::describe_process("checkgate-control");
        let health = Health::new();
        let router = app(
            AppState::new(
                store.clone(),
                checkgate_control::api::SessionKey::new("test-session-secret-of-32-characters"),
                true,
            ),
            health.clone(),
            Some(metrics::handle()),
            None,
        );
        Self {
            router,
            health,
            store,
            dir,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn close(self) {
        self.store.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn health_answers_and_ready_waits_for_the_store() {
    let fx = Fixture::new().await;
    assert_eq!(
        fx.get("/health").await,
        (StatusCode::OK, r#"{"status":"ok"}"#.to_owned())
    );

    // Nothing registered yet: never ready by default.
    let (status, body) = fx.get("/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    fx.health.set(STORE_CHECK, false, "migrating");
    let (status, body) = fx.get("/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "not_ready");
    assert_eq!(json["checks"][STORE_CHECK]["detail"], "migrating");

    fx.health.set(STORE_CHECK, true, "migrated and answering");
    let (status, body) = fx.get("/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#""status":"ready""#), "{body}");
    fx.close().await;
}

#[tokio::test]
async fn unknown_routes_get_a_json_404_and_metrics_use_route_templates() {
    let fx = Fixture::new().await;
    let (status, body) = fx.get("/no/such/page?token=hunter2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"]["code"], "not_found", "{body}");
    assert!(json["error"]["message"].is_string(), "{body}");

    fx.get("/health").await;
    let (status, text) = fx.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        r#"http_requests_total{route="/health",status="2xx"}"#,
        r#"http_requests_total{route="unmatched",status="4xx"}"#,
        "http_request_duration_seconds_bucket",
        r#"checkgate_build_info{binary="checkgate-control""#,
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
    assert!(
        !text.contains("no/such/page") && !text.contains("hunter2"),
        "{text}"
    );
    fx.close().await;
}

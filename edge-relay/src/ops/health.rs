//! Liveness and readiness. `/health` says the process runs; `/ready` says it can do its job:
//! every registered check passes, and at least one is registered, so a process that has not
//! loaded anything yet never claims to be ready.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router, middleware};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

use super::error::AppError;
use super::metrics;

/// The state of one readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckStatus {
    pub ok: bool,
    pub detail: String,
}

/// The readiness checks of a process, shared by whatever updates them.
#[derive(Debug, Clone, Default)]
pub struct Health {
    checks: Arc<Mutex<BTreeMap<&'static str, CheckStatus>>>,
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    checks: BTreeMap<&'static str, CheckStatus>,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or adds) a check.
    pub fn set(&self, name: &'static str, ok: bool, detail: impl Into<String>) {
        let status = CheckStatus {
            ok,
            detail: detail.into(),
        };
        self.checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, status);
    }

    /// Whether every check passes (and there is at least one), with their states.
    pub fn snapshot(&self) -> (bool, BTreeMap<&'static str, CheckStatus>) {
        let checks = self
            .checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        (!checks.is_empty() && checks.values().all(|c| c.ok), checks)
    }
}

async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn ready(State(health): State<Health>) -> impl IntoResponse {
    let (ok, checks) = health.snapshot();
    let (code, status) = if ok {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    };
    (code, Json(Readiness { status, checks }))
}

async fn not_found() -> AppError {
    AppError::NotFound("no such route".into())
}

/// `/health`, `/ready` and, when `metrics` is given, `/metrics`.
pub fn routes(health: Health, metrics: Option<PrometheusHandle>) -> Router {
    let router = Router::new()
        .route("/health", get(health_route))
        .route("/ready", get(ready))
        .with_state(health);
    match metrics {
        Some(handle) => router.merge(metrics_routes(handle)),
        None => router,
    }
}

async fn health_route() -> impl IntoResponse {
    health().await
}

/// `/metrics` alone, for a separate listener.
pub fn metrics_routes(handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .with_state(handle)
}

/// Adds what every public router needs: request metrics per route template and a JSON 404.
pub fn finish(router: Router) -> Router {
    router
        .route_layer(middleware::from_fn(metrics::track))
        .fallback(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_without_checks_or_with_a_failing_one() {
        let h = Health::new();
        assert!(!h.snapshot().0);
        h.set("data", true, "loaded");
        assert!(h.snapshot().0);
        h.set("feed", false, "never connected");
        assert!(!h.snapshot().0);
    }
}

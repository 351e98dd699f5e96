//! Liveness and readiness. `/health` says the process runs; `/ready` says it can do its job:
//! every registered check passes, and at least one is registered, so a process that has not
//! loaded anything yet never claims to be ready.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

use crate::error::AppError;
use crate::metrics;

/// The state of one readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckStatus {
    /// Whether this check lets the process take traffic.
    pub ok: bool,
    /// Why, in words an operator can act on ("no flag data loaded yet").
    pub detail: String,
}

/// The readiness checks of a process, shared by whatever updates them.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// Keyed by check name; a `BTreeMap` so `/ready` lists checks in a stable order. A std
    /// mutex: every critical section is a clone or an insert, never across an `.await`.
    checks: Arc<Mutex<BTreeMap<&'static str, CheckStatus>>>,
}

/// The body of `/health`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Health))]
#[serde(deny_unknown_fields)]
pub struct Liveness {
    #[cfg_attr(feature = "openapi", schema(inline))]
    status: Live,
}

/// What `/health` says: the process runs.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Live {
    Ok,
}

/// The body of `/ready`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    #[cfg_attr(feature = "openapi", schema(inline))]
    status: Ready,
    /// Every check by name, so a 503 says which one holds the process back.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, CheckStatus>))]
    checks: BTreeMap<&'static str, CheckStatus>,
}

/// Whether the process takes traffic (repeating the status code for people reading the JSON).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Ready {
    Ready,
    NotReady,
}

impl Health {
    /// No checks yet, so not ready until something registers one.
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

/// Liveness
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/health", operation_id = "health",
    tag = "operations", security(()),
    responses((status = 200, description = "The process runs.", body = Liveness))))]
pub async fn live() -> impl IntoResponse {
    Json(Liveness { status: Live::Ok })
}

/// Readiness
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/ready", operation_id = "ready",
    tag = "operations", security(()),
    responses(
        (status = 200, description = "Every check passes.", body = Readiness),
        (status = 503, description = "Not ready; the failing checks say why.", body = Readiness),
    )))]
pub async fn ready(State(health): State<Health>) -> impl IntoResponse {
    let (ok, checks) = health.snapshot();
    let (code, status) = if ok {
        (StatusCode::OK, Ready::Ready)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Ready::NotReady)
    };
    (code, Json(Readiness { status, checks }))
}

/// The JSON 404 of every public router.
pub async fn not_found() -> AppError {
    AppError::NotFound("no such route".into())
}

async fn method_not_allowed(method: axum::http::Method) -> AppError {
    AppError::MethodNotAllowed(format!("this route does not take {method}"))
}

/// Every `(method, path)` that [`routes`] serves with a metrics handle, the method in lower
/// case: the route table the control plane's API checks (OpenAPI, roles) read.
pub const ROUTES: &[(&str, &str)] = &[("get", "/health"), ("get", "/ready"), ("get", "/metrics")];

/// `/health`, `/ready` and, when `metrics` is given, `/metrics`.
pub fn routes(health: Health, metrics: Option<PrometheusHandle>) -> Router {
    let router = Router::new()
        .route("/health", get(live))
        .route("/ready", get(ready))
        .with_state(health);
    match metrics {
        Some(handle) => router.merge(metrics_routes(handle)),
        None => router,
    }
}

/// `/metrics` alone, for a separate listener.
pub fn metrics_routes(handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .with_state(handle)
}

/// Adds what every public router needs: a JSON 404, and request metrics per route template
/// (`unmatched` for the 404s, so scanners cannot create new series). Call it last: routes
/// added afterwards are not measured.
pub fn finish(router: Router) -> Router {
    finish_with(router, not_found)
}

/// [`finish`] with another answer than the JSON 404 for requests no route matches (the
/// control plane serves its dashboard there).
pub fn finish_with<H, T>(router: Router, fallback: H) -> Router
where
    H: axum::handler::Handler<T, ()>,
    T: 'static,
{
    router
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(metrics::Track)
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

    #[tokio::test]
    async fn the_route_table_is_what_the_router_serves() {
        use tower::ServiceExt as _;
        let health = Health::new();
        health.set("data", true, "loaded");
        let router = finish(routes(health, Some(crate::metrics::handle())));
        for (method, path) in ROUTES.iter().chain(&[("get", "/nowhere")]) {
            let request = axum::http::Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(*path)
                .body(axum::body::Body::empty())
                .unwrap();
            let status = router.clone().oneshot(request).await.unwrap().status();
            let listed = ROUTES.contains(&(*method, *path));
            assert_eq!(status == 200, listed, "{method} {path}: {status}");
        }
    }
}

//! The Checkgate control plane: the REST API and dashboard, the durable store and the change
//! feed. The binary in `main.rs` only parses configuration and wires these together.

pub mod api;
pub mod config;
pub mod dashboard;
pub mod feed;
pub mod fleet_alerts;
pub mod forwarded;
pub mod insights;
pub mod secrets;
pub mod store;
pub mod upkeep;
pub mod vault;
pub mod webhooks;

use axum::Router;
use checkgate_ops::{self as ops, Health};
use metrics_exporter_prometheus::PrometheusHandle;

/// The readiness check of the store: set once it is open and migrated.
pub const STORE_CHECK: &str = "store";

/// The control plane's public router. `metrics` is `Some` when /metrics is served on the main
/// port; `sdk`, when given, adds the routes SDKs call (`/stream`, evaluation, OFREP), served
/// from the in-process replica exactly as an edge serves them.
pub fn app(
    state: api::AppState,
    health: Health,
    metrics: Option<PrometheusHandle>,
    sdk: Option<checkgate_serve::SdkState>,
) -> Router {
    app_with_dashboard(state, health, metrics, sdk, dashboard::Assets::default())
}

/// [`app`], serving the dashboard's files at `/` (see [`dashboard`]).
pub fn app_with_dashboard(
    state: api::AppState,
    health: Health,
    metrics: Option<PrometheusHandle>,
    sdk: Option<checkgate_serve::SdkState>,
    assets: dashboard::Assets,
) -> Router {
    let mut router = ops::health::routes(health, metrics).merge(api::routes(state));
    if let Some(sdk) = sdk {
        router = router.merge(checkgate_serve::routes(sdk));
    }
    ops::health::finish_with(router, move |request: axum::extract::Request| async move {
        assets.serve(request).await
    })
}

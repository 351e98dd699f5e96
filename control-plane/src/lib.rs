//! The Checkgate control plane: the REST API and dashboard, the durable store and the change
//! feed. The binary in `main.rs` only parses configuration and wires these together.

pub mod api;
pub mod config;
pub mod feed;
pub mod secrets;
pub mod store;
pub mod upkeep;

use axum::Router;
use checkgate_edge::ops::{self, Health};
use metrics_exporter_prometheus::PrometheusHandle;

/// The readiness check of the store: set once it is open and migrated.
pub const STORE_CHECK: &str = "store";

/// The control plane's public router. `metrics` is `Some` when /metrics is served on the main
/// port.
pub fn app(state: api::AppState, health: Health, metrics: Option<PrometheusHandle>) -> Router {
    ops::health::finish(ops::health::routes(health, metrics).merge(api::routes(state)))
}

//! The Checkgate edge relay: it holds the compiled flags of the environments it serves and
//! answers SDKs near them. The library also carries [`ops`], the operational plumbing both
//! binaries share, the serving code the control plane runs in-process, and
//! [`snapshot_file`], which keeps an edge's flags across restarts.

pub mod config;
pub mod feed;
pub mod ops;
pub mod snapshot_file;
#[doc(hidden)]
pub mod testkit;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use ops::Health;

/// The readiness check an edge reports until it holds flag data.
pub const DATA_CHECK: &str = "flag_data";

/// The edge's public router. `metrics` is `Some` when /metrics is served on the main port.
pub fn app(health: Health, metrics: Option<PrometheusHandle>) -> Router {
    ops::health::finish(ops::health::routes(health, metrics))
}

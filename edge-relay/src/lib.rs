//! The Checkgate edge relay: it holds the compiled flags of the environments it serves and
//! answers SDKs near them. The library also carries [`ops`], the operational plumbing both
//! binaries share, the serving code the control plane runs in-process, and
//! [`snapshot_file`] and [`journal`], which keep an edge's flags across restarts and crashes.

pub mod config;
pub mod feed;
pub mod journal;
pub mod ops;
pub mod relay;
pub mod sdk;
pub mod snapshot_file;
#[doc(hidden)]
pub mod testkit;

use std::sync::Arc;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use ops::Health;

/// The readiness check an edge reports until it holds flag data.
pub const DATA_CHECK: &str = "flag_data";

/// The snapshot file's name inside the edge's data directory.
pub const SNAPSHOT_FILE: &str = "snapshot.bin";

/// The change journal's name inside the edge's data directory: what was applied since the
/// snapshot file was written.
pub const JOURNAL_FILE: &str = "journal.bin";

/// The edge's public router. `metrics` is `Some` when there is no operations listener
/// (`METRICS_ADDR`): `/metrics` and `/status` are then served on the main port too. With one,
/// they are served there only ([`operations`]).
pub fn app(health: Health, metrics: Option<PrometheusHandle>, sdk: sdk::SdkState) -> Router {
    let relay = Arc::clone(&sdk.relay);
    let operations_here = metrics.is_some();
    let router = ops::health::routes(health, metrics).merge(sdk::routes(sdk));
    ops::health::finish(if operations_here {
        router.merge(relay::routes(relay))
    } else {
        router
    })
}

/// What the operations listener serves beside `/metrics`: `/status`, which names the
/// environments, projects and feed address an edge serves.
pub fn operations(relay: Arc<relay::Relay>) -> Router {
    relay::routes(relay)
}

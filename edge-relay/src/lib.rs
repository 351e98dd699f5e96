//! The Checkgate edge relay: it follows the control plane's change feed, holds the compiled
//! flags of the environments it serves, and answers SDKs near them with `checkgate-serve`.
//! What is its own: its configuration, the feed client ([`feed`]), the snapshot file and the
//! change journal that keep its flags across restarts and crashes ([`snapshot_file`],
//! [`journal`]), and `/status` ([`relay`]). The binary is `main.rs`; this library is there so
//! its parts can be tested and driven by the load-test binary.

pub mod config;
pub mod feed;
pub mod journal;
pub mod relay;
pub mod snapshot_file;

use std::sync::Arc;

use axum::Router;
use checkgate_ops::Health;
use checkgate_serve::SdkState;
use metrics_exporter_prometheus::PrometheusHandle;

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
pub fn app(
    health: Health,
    metrics: Option<PrometheusHandle>,
    sdk: SdkState,
    relay: Arc<relay::Relay>,
) -> Router {
    let operations_here = metrics.is_some();
    let router = checkgate_ops::health::routes(health, metrics)
        .merge(checkgate_serve::edge_routes(sdk.clone()))
        .merge(checkgate_serve::routes(sdk));
    checkgate_ops::health::finish(if operations_here {
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

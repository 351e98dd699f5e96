//! `Relay`: what an edge holds and knows of its feed, shared by the feed client, readiness and
//! `/status`. Readiness means data for every environment the edge serves — from the control
//! plane, or from the snapshot file while the control plane is away — and never an empty set.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use checkgate_serve::replica::{EnvStatus, Replica, Source};
use checkgate_serve::served::Served;

use crate::feed::client::FeedState;

/// An environment counts as stale when its data is this much older than the feed's heartbeats
/// say it could be (the control plane is ahead, or unreachable).
const STALE_AFTER_MS: u64 = 10_000;

/// The edge's state.
#[derive(Debug)]
pub struct Relay {
    pub replica: Arc<Replica>,
    pub feed: Arc<FeedState>,
    /// The control plane's feed address, when one is configured.
    pub feed_addr: Option<String>,
    pub snapshot_path: PathBuf,
    /// Why the snapshot file was refused at boot, if it was.
    pub snapshot_refused: Option<String>,
    /// Impressions queued for the control plane, and the evaluation counters.
    pub insights: Arc<checkgate_serve::insights::Insights>,
}

#[derive(Debug, Serialize)]
struct FeedStatus {
    configured: bool,
    addr: Option<String>,
    connected: bool,
    revoked: bool,
    reconnects: u64,
    /// The feed protocol version the control plane last accepted (lower than the edge's own
    /// while it follows an older control plane); `None` before any session.
    protocol: Option<u16>,
    last_frame_age_seconds: Option<f64>,
    last_error: Option<String>,
    /// Set while changes are applied without being journaled first (or when the journal was
    /// refused at start): until it clears, a crash may bring back an older version than the
    /// one served.
    journal_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct EnvironmentStatus {
    #[serde(flatten)]
    held: EnvStatus,
    /// The control plane's head, from its last heartbeat.
    head: Option<u64>,
    /// Versions behind that head.
    lag: u64,
    data_age_seconds: f64,
    connected: bool,
    stale: bool,
}

#[derive(Debug, Serialize)]
struct SnapshotStatus {
    path: String,
    refused: Option<String>,
}

/// The body of `/status`.
#[derive(Debug, Serialize)]
struct Status {
    ready: bool,
    detail: String,
    feed: FeedStatus,
    environments: Vec<EnvironmentStatus>,
    snapshot_file: SnapshotStatus,
    /// Queued, capacity, accepted and dropped impressions; whether evaluations are counted.
    impressions: serde_json::Value,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Relay {
    /// What the SDK routes read: the replica, vouched for by the feed.
    pub fn served(&self) -> Arc<Served> {
        Served::new(Arc::clone(&self.replica), self.feed.clone())
    }

    /// Whether the edge can serve, and why (for `/ready`).
    pub fn readiness(&self) -> (bool, String) {
        if self.feed.revoked() {
            return (false, "this edge's token was revoked".into());
        }
        let held = self.replica.environment_ids();
        match self.feed.granted() {
            Some(granted) if granted.is_empty() => {
                (false, "the edge token grants no environment".into())
            }
            Some(granted) => {
                let missing = granted.iter().filter(|e| !held.contains(e)).count();
                if missing == 0 {
                    (true, format!("serving {} environments", granted.len()))
                } else {
                    (
                        false,
                        format!(
                            "waiting for the data of {missing} of {} environments",
                            granted.len()
                        ),
                    )
                }
            }
            None if !held.is_empty() => (
                true,
                format!(
                    "serving {} environments from the snapshot file until the control plane answers",
                    held.len()
                ),
            ),
            None => match &self.snapshot_refused {
                Some(why) => (
                    false,
                    format!("snapshot file refused ({why}); waiting for the control plane"),
                ),
                None => (false, "no flag data loaded yet".into()),
            },
        }
    }

    fn status(&self) -> Status {
        let (ready, detail) = self.readiness();
        let now = now_ms();
        let connected = self.feed.connected();
        let environments = self
            .replica
            .status()
            .into_iter()
            .map(|held| {
                let head = self.feed.head(&held.env_id);
                let lag = head.map_or(0, |h| h.saturating_sub(held.version));
                let age_ms = now.saturating_sub(held.updated_at_ms);
                let stale = !connected
                    || held.source == Source::SnapshotFile
                    || (lag > 0 && age_ms > STALE_AFTER_MS);
                EnvironmentStatus {
                    head,
                    lag,
                    data_age_seconds: age_ms as f64 / 1000.0,
                    connected,
                    stale,
                    held,
                }
            })
            .collect();
        let last = self.feed.last_frame_ms();
        Status {
            ready,
            detail,
            feed: FeedStatus {
                configured: self.feed_addr.is_some(),
                addr: self.feed_addr.clone(),
                connected,
                revoked: self.feed.revoked(),
                reconnects: self.feed.reconnects(),
                protocol: self.feed.protocol(),
                last_frame_age_seconds: (last > 0)
                    .then(|| now.saturating_sub(last) as f64 / 1000.0),
                last_error: self.feed.last_error(),
                journal_error: self.feed.journal_error(),
            },
            environments,
            snapshot_file: SnapshotStatus {
                path: self.snapshot_path.display().to_string(),
                refused: self.snapshot_refused.clone(),
            },
            impressions: self.insights.status(),
        }
    }
}

async fn status(State(relay): State<Arc<Relay>>) -> impl IntoResponse {
    Json(relay.status())
}

/// `GET /status`: per environment its position, data age, lag and staleness; the feed's state.
pub fn routes(relay: Arc<Relay>) -> Router {
    Router::new()
        .route("/status", get(status))
        .with_state(relay)
}

//! The change feed's server side: a QUIC endpoint on its own UDP port that edges dial, one
//! session per edge ([`session`]), and the tasks that keep [`Heads`] current — this process's
//! commits at once, a poll of the database every second, and (with `REDIS_URL`) the other
//! instances' commits through Redis ([`sync`]).

pub mod cert;
pub mod connections;
pub mod exchange;
pub mod frames;
pub mod heads;
pub mod insights;
pub mod local;
pub mod relay;
pub mod session;
pub mod sync;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

pub use heads::Heads;
pub use session::SessionSettings;

use crate::store::Store;

/// How often every head is read from the database, whatever else happens.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// The feed server's settings.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    pub addr: SocketAddr,
    /// Most edges connected at once; more are refused until one leaves.
    pub max_edges: usize,
    pub session: SessionSettings,
}

/// Resolves once `shutdown` is true (at once if it already is, or if its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Keeps `heads` current from this process's commits and a poll of the database, until
/// aborted. A poll that fails is logged and retried at the next tick.
pub async fn track_heads(store: Store, heads: Arc<Heads>) {
    let mut commits = store.subscribe_commits();
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            commit = commits.recv() => match commit {
                Ok(c) => {
                    heads.advance(&c.environment_id, c.version);
                }
                // Missed some: the next poll reads every head anyway; do it now.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => poll.reset_immediately(),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = poll.tick() => match store.feed_environments().await {
                Ok(envs) => {
                    if failing {
                        tracing::info!("feed poll works again");
                        failing = false;
                    }
                    heads.refresh(envs);
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(cause = %e, "feed poll failed; edges keep what they have");
                        failing = true;
                    }
                }
            },
        }
    }
}

/// Accepts edges on `endpoint` and runs a session for each, until the process stops; then
/// lets the sessions say goodbye and closes the endpoint, both by the process's one shutdown
/// deadline.
pub async fn serve(
    endpoint: quinn::Endpoint,
    store: Store,
    heads: Arc<Heads>,
    settings: FeedSettings,
    insights: crate::insights::Insights,
    mut stopping: checkgate_ops::Stopping,
) {
    let slots = Arc::new(Semaphore::new(settings.max_edges));
    let (stop_sessions, shutdown) = watch::channel(false);
    let mut sessions = JoinSet::new();
    let deadline = loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else {
                    break tokio::time::Instant::now();
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(max = settings.max_edges, "too many edges; refusing one");
                    incoming.refuse();
                    continue;
                };
                let (store, heads, stop) = (store.clone(), heads.clone(), shutdown.clone());
                let (session, insights) = (settings.session, insights.clone());
                sessions.spawn(async move {
                    let _slot = slot;
                    if let Err(e) = session::run(incoming, store, heads, session, insights, stop).await {
                        tracing::debug!(cause = %e, "feed session failed");
                    }
                });
            }
            Some(done) = sessions.join_next() => {
                if let Err(e) = done && e.is_panic() {
                    tracing::error!(cause = %e, "a feed session panicked");
                }
            }
            deadline = stopping.begun() => break deadline,
        }
    };
    // Each session sends `Close(Shutdown)` on this signal; they have until the deadline.
    stop_sessions.send_replace(true);
    let _ = tokio::time::timeout_at(deadline, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    sessions.abort_all();
    endpoint.close(0u32.into(), b"shutdown");
    let _ = tokio::time::timeout_at(deadline, endpoint.wait_idle()).await;
}

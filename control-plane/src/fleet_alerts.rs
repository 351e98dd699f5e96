//! The fleet alerts job: watches the fleet rows and opens or resolves alert episodes
//! ([`crate::store::fleet_alerts`]). An edge stale or disconnected longer than
//! `EDGE_STALE_ALERT_SECONDS` opens `edge.stale`, resolved (`edge.recovered`) once the edge is
//! connected again; a connected edge more than `EDGE_LAG_ALERT_VERSIONS` versions behind an
//! environment's head opens `edge.lagging`, resolved when it has caught up.
//!
//! Only one instance acts: the holder of the `fleet-alerts` lease ([`crate::store::Lease`]),
//! renewed at every check; the others only try to take it. A check reads the fleet rows and
//! the open episodes once (bounded: [`MAX_EDGES`] sessions) and writes only what changed, so a
//! condition that holds for hours is one row, not one per check — and the unique index over
//! open episodes keeps it so even if two instances briefly both believe they hold the lease.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde_json::json;

use crate::store::fleet_alerts::{AlertKind, Transition, edge_subject};
use crate::store::{FLEET_KEEP_MS, FLEET_REFRESH, Store, StoreError, now_ms};

/// What raises an alert.
#[derive(Debug, Clone, Copy)]
pub struct AlertSettings {
    /// `EDGE_STALE_ALERT_SECONDS`.
    pub stale_after: Duration,
    /// `EDGE_LAG_ALERT_VERSIONS`.
    pub lag_versions: u64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            stale_after: Duration::from_secs(60),
            lag_versions: 100,
        }
    }
}

/// How often the fleet is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The lease's name and how long it lasts unrenewed.
const LEASE: &str = "fleet-alerts";
const LEASE_TTL_MS: i64 = 10_000;
/// Most fleet rows one check reads.
pub const MAX_EDGES: u32 = 2_000;
/// Resolved episodes are kept this long.
pub const KEEP_RESOLVED_MS: i64 = 30 * 24 * 3600 * 1000;
/// An open session not refreshed for this long is stale (as the fleet view says).
const STALE_AFTER_MS: i64 = 3 * FLEET_REFRESH.as_millis() as i64;

/// Runs the job for as long as the process runs (a long-lived task never ends on its own).
pub async fn run(store: Store, settings: AlertSettings) {
    let holder = uuid::Uuid::new_v4().to_string();
    let mut lease = None;
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut purged_at = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        lease = match lease {
            Some(held) => match store.renew_lease(LEASE, &holder, held, LEASE_TTL_MS).await {
                Ok(true) => Some(held),
                Ok(false) => None,
                Err(e) => {
                    tracing::warn!(cause = %e, "renewing the fleet alerts lease failed");
                    None
                }
            },
            None => match store.acquire_lease(LEASE, &holder, LEASE_TTL_MS).await {
                Ok(taken) => taken,
                Err(e) => {
                    tracing::debug!(cause = %e, "taking the fleet alerts lease failed");
                    None
                }
            },
        };
        if lease.is_none() {
            continue;
        }
        if let Err(e) = check(&store, settings).await {
            tracing::warn!(cause = %e, "checking the fleet for alerts failed");
        }
        if purged_at.elapsed() >= Duration::from_secs(3600) {
            purged_at = tokio::time::Instant::now();
            if let Err(e) = store.purge_fleet_alerts(now_ms() - KEEP_RESOLVED_MS).await {
                tracing::warn!(cause = %e, "purging old fleet alerts failed");
            }
        }
    }
}

/// What one check found of one edge.
struct EdgeNow {
    name: String,
    session: String,
    /// The environments it serves: those it reported positions in, or, before it reported
    /// any, those its token grants. Its episodes are announced to their webhooks.
    environments: Vec<String>,
    /// Since when it is stale or disconnected; `None` while connected.
    down_since: Option<i64>,
    closed: bool,
    /// Environments more than the limit behind, with their lag.
    lagging: BTreeMap<String, u64>,
}

/// One check: opens and resolves what changed. Public for tests.
pub async fn check(store: &Store, settings: AlertSettings) -> Result<(), StoreError> {
    let now = now_ms();
    let sessions = store.edge_sessions(now - FLEET_KEEP_MS, MAX_EDGES).await?;
    let heads: HashMap<String, u64> = store
        .feed_environments()
        .await?
        .into_iter()
        .map(|e| (e.id, e.version))
        .collect();
    // What each token grants: the environments an edge that reported no positions serves.
    let granted: HashMap<String, Option<Vec<String>>> = store
        .edge_tokens()
        .await?
        .into_iter()
        .map(|t| (t.id, t.environments))
        .collect();
    // Newest session first: an edge is judged by its newest session, as the fleet view lists it.
    let mut edges: HashMap<String, EdgeNow> = HashMap::new();
    for s in &sessions {
        let subject = edge_subject(&s.token_id, &s.edge_name);
        if edges.contains_key(&subject) {
            continue;
        }
        let down_since = match s.closed_at {
            Some(closed) => Some(closed),
            None if now - s.last_seen_at > STALE_AFTER_MS => Some(s.last_seen_at),
            None => None,
        };
        let lagging = s
            .positions
            .iter()
            .filter_map(|(env, &position)| {
                let lag = heads.get(env)?.saturating_sub(position);
                (lag > settings.lag_versions).then(|| (env.clone(), lag))
            })
            .collect();
        edges.insert(
            subject,
            EdgeNow {
                name: s.edge_name.clone(),
                session: s.id.clone(),
                environments: if s.positions.is_empty() {
                    match granted.get(&s.token_id) {
                        Some(Some(envs)) => envs.clone(),
                        _ => {
                            let mut all: Vec<String> = heads.keys().cloned().collect();
                            all.sort();
                            all
                        }
                    }
                } else {
                    s.positions.keys().cloned().collect()
                },
                down_since,
                closed: s.closed_at.is_some(),
                lagging,
            },
        );
    }
    let open_stale: HashSet<String> = store
        .open_alerts(AlertKind::EdgeStale)
        .await?
        .into_iter()
        .map(|a| a.subject)
        .collect();
    let open_lagging: HashSet<String> = store
        .open_alerts(AlertKind::EdgeLagging)
        .await?
        .into_iter()
        .map(|a| a.subject)
        .collect();
    let stale_after = i64::try_from(settings.stale_after.as_millis()).unwrap_or(i64::MAX);
    for (subject, edge) in &edges {
        match edge.down_since {
            Some(since) if now - since >= stale_after && !open_stale.contains(subject) => {
                let opened = store
                    .alert_transition(&Transition::Raise {
                        kind: AlertKind::EdgeStale,
                        subject,
                        edge_name: Some(&edge.name),
                        environments: &edge.environments,
                        detail: json!({
                            "state": if edge.closed { "disconnected" } else { "stale" },
                            "since_ms": since,
                            "session": edge.session,
                        }),
                    })
                    .await?;
                if opened.is_some() {
                    tracing::warn!(edge = %edge.name, "edge stale or disconnected; alert opened");
                }
            }
            None if open_stale.contains(subject) => {
                store
                    .alert_transition(&Transition::Resolve {
                        kind: AlertKind::EdgeStale,
                        subject,
                        detail: json!({ "recovered_session": edge.session }),
                    })
                    .await?;
                tracing::info!(edge = %edge.name, "edge connected again; alert resolved");
            }
            _ => {}
        }
        // Lag is judged only while connected; a disconnected edge's lag is the stale alert's.
        if edge.down_since.is_some() {
            continue;
        }
        let lagging = !edge.lagging.is_empty();
        if lagging && !open_lagging.contains(subject) {
            let environments: Vec<String> = edge.lagging.keys().cloned().collect();
            store
                .alert_transition(&Transition::Raise {
                    kind: AlertKind::EdgeLagging,
                    subject,
                    edge_name: Some(&edge.name),
                    environments: &environments,
                    detail: json!({ "lag": edge.lagging, "limit": settings.lag_versions }),
                })
                .await?;
        } else if !lagging && open_lagging.contains(subject) {
            store
                .alert_transition(&Transition::Resolve {
                    kind: AlertKind::EdgeLagging,
                    subject,
                    detail: json!({}),
                })
                .await?;
        }
    }
    // Edges no longer listed (forgotten after a day): their episodes end, saying so. Only when
    // the whole fleet was read.
    if sessions.len() >= MAX_EDGES as usize {
        return Ok(());
    }
    for (kind, open) in [
        (AlertKind::EdgeStale, &open_stale),
        (AlertKind::EdgeLagging, &open_lagging),
    ] {
        for subject in open.iter().filter(|s| !edges.contains_key(*s)) {
            store
                .alert_transition(&Transition::Resolve {
                    kind,
                    subject,
                    detail: json!({ "forgotten": true }),
                })
                .await?;
        }
    }
    Ok(())
}

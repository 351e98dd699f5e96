//! Background upkeep of the control plane: readiness follows whether the store answers;
//! expired sessions, ended sign-in throttle windows, edge sessions gone for a day, and old
//! change rows are deleted. One task, owned by `main`,
//! stopped at shutdown. A second ([`insights`]) merges impression users into the sketches and
//! deletes impressions and insights past their retention, in batches.

use std::time::Duration;

use checkgate_ops::Health;

use crate::STORE_CHECK;
use crate::store::Store;

/// How often the store is pinged for readiness.
const PING_EVERY: Duration = Duration::from_secs(5);
/// How long a ping may take before the store counts as not answering.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// How often expired sessions and old change rows are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// How long the change rows of a deleted environment stay, for edges that were away.
const DELETED_ENVIRONMENT_CHANGES_MS: i64 = 7 * 24 * 3600 * 1000;

/// Runs until dropped (aborted): `/ready` turns 503 while the store does not answer and back to
/// 200 when it does, with one log line per change rather than one per ping.
pub async fn run(store: Store, health: Health, retain_changes: u64) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut purge = tokio::time::interval(PURGE_EVERY);
    purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut answering = true;
    loop {
        tokio::select! {
            _ = ping.tick() => {
                let ok = matches!(tokio::time::timeout(PING_TIMEOUT, store.ping()).await, Ok(Ok(())));
                if ok != answering {
                    if ok {
                        tracing::info!("store answers again");
                    } else {
                        tracing::warn!("store does not answer; not ready");
                    }
                    answering = ok;
                }
                let detail = if ok { "migrated and answering" } else { "the database does not answer" };
                health.set(STORE_CHECK, ok, detail);
            }
            _ = purge.tick() => {
                match store.purge_expired_sessions().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(sessions = n, "purged expired sessions"),
                    Err(e) => tracing::warn!(cause = %e, "purging expired sessions failed"),
                }
                match crate::api::LoginLimiter::purge(&store, crate::store::now_ms()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "purged ended sign-in throttle windows"),
                    Err(e) => tracing::warn!(cause = %e, "purging sign-in throttle windows failed"),
                }
                let forget = crate::store::now_ms() - crate::store::FLEET_KEEP_MS;
                match store.purge_edge_sessions(forget).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(sessions = n, "forgot old edge sessions"),
                    Err(e) => tracing::warn!(cause = %e, "forgetting old edge sessions failed"),
                }
                if let Err(e) = store.purge_connection_reports(forget).await {
                    tracing::warn!(cause = %e, "forgetting old connection reports failed");
                }
                match store.compact_changes(retain_changes, DELETED_ENVIRONMENT_CHANGES_MS).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "compacted the change feed"),
                    Err(e) => tracing::warn!(cause = %e, "compacting the change feed failed"),
                }
            }
        }
    }
}

/// How often impressions and insights past their retention are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(600);
/// Rows one delete statement removes at most: short transactions, never one giant DELETE.
pub const RETENTION_BATCH: i64 = 5_000;
/// Delete statements per table and pass; what is left waits for the next pass, so one pass is
/// bounded (at most 200 × 5,000 = 1 M raw rows per 10 minutes) and never holds the database.
const RETENTION_STATEMENTS: usize = 200;
/// How often batches' users are merged into the sketches.
const COMPACT_EVERY: Duration = Duration::from_secs(2);
/// Parts merged per transaction, and transactions per pass. Each transaction rewrites every
/// hour and day sketch its parts touch (13 KiB each when dense), so larger transactions rewrite
/// less per part; only the merge writes rollups, so a long one blocks no batch.
const COMPACT_BATCH: i64 = 20_000;
const COMPACT_TRANSACTIONS: usize = 10;

/// Runs until dropped (aborted): every 2 seconds merges the parts of stored batches into the
/// rollups (`COMPACT_BATCH` parts per transaction, bounded per pass); every 10
/// minutes (and once at start) deletes raw impressions older than `IMPRESSIONS_RETENTION_DAYS`
/// and rollups and counters older than `INSIGHTS_RETENTION_DAYS`, `RETENTION_BATCH` rows per
/// statement, pausing between statements so other writers get the database.
pub async fn insights(insights: crate::insights::Insights) {
    let mut retention = tokio::time::interval(RETENTION_EVERY);
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut compaction = tokio::time::interval(COMPACT_EVERY);
    compaction.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = compaction.tick() => {
                match insights.compact(COMPACT_BATCH, COMPACT_TRANSACTIONS).await {
                    Ok(merged) => {
                        // A pass that used its whole budget left parts for the next one.
                        let full = COMPACT_BATCH as usize * COMPACT_TRANSACTIONS;
                        metrics::gauge!("checkgate_impression_parts_behind")
                            .set(if merged >= full { 1.0 } else { 0.0 });
                    }
                    Err(e) => {
                        tracing::warn!(cause = %e, "merging impression parts into the rollups failed");
                    }
                }
            }
            _ = retention.tick() => {
                match insights
                    .purge(RETENTION_BATCH, RETENTION_STATEMENTS, Duration::from_millis(20))
                    .await
                {
                    Ok((0, 0)) => {}
                    Ok((raw, rollups)) => {
                        tracing::info!(impressions = raw, rollups, "deleted impressions and insights past their retention");
                    }
                    Err(e) => tracing::warn!(cause = %e, "deleting old impressions failed"),
                }
            }
        }
    }
}

//! The edge fleet as the control plane sees it: one row per feed session, opened when an edge
//! is let in, refreshed by the session every [`FLEET_REFRESH`], closed when it ends. Any
//! instance can list every instance's edges, and a session whose instance died shows as stale
//! rather than vanishing.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Store, StoreError, new_id, now_ms};

/// How often a session writes its row while it lasts.
pub const FLEET_REFRESH: Duration = Duration::from_secs(10);

/// How long closed (or abandoned) sessions stay listed.
pub const FLEET_KEEP_MS: i64 = 24 * 3600 * 1000;

/// One feed session of an edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSession {
    pub id: String,
    pub token_id: String,
    pub edge_name: String,
    pub region: String,
    /// The edge's address as the feed saw it (`ip:port`).
    pub address: String,
    pub connected_at: i64,
    pub last_seen_at: i64,
    pub closed_at: Option<i64>,
    /// The last version sent of each environment it serves.
    pub positions: BTreeMap<String, u64>,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    String,
);

impl Store {
    /// Records a session that just opened; returns its id.
    pub async fn open_edge_session(
        &self,
        token_id: &str,
        edge_name: &str,
        region: &str,
        address: &str,
    ) -> Result<String, StoreError> {
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO edge_sessions (id, token_id, edge_name, region, address, connected_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&id)
        .bind(token_id)
        .bind(edge_name)
        .bind(region)
        .bind(address)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Refreshes a live session of the token `token_id`: seen now, at these positions.
    pub async fn touch_edge_session(
        &self,
        id: &str,
        token_id: &str,
        positions: &BTreeMap<String, u64>,
    ) -> Result<(), StoreError> {
        let positions =
            serde_json::to_string(positions).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "UPDATE edge_sessions SET last_seen_at = $3, positions = $4 \
             WHERE id = $1 AND token_id = $2 AND closed_at IS NULL AND last_seen_at <= $3",
        )
        .bind(id)
        .bind(token_id)
        .bind(now_ms())
        .bind(positions)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a session of the token `token_id` ended, with its last positions (`None`: as last
    /// recorded); a session of another token, or one already ended, is left alone.
    pub async fn close_edge_session(
        &self,
        id: &str,
        token_id: &str,
        positions: Option<&BTreeMap<String, u64>>,
    ) -> Result<(), StoreError> {
        let positions = positions
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "UPDATE edge_sessions SET last_seen_at = $3, closed_at = $3, positions = COALESCE($4, positions) \
             WHERE id = $1 AND token_id = $2 AND closed_at IS NULL",
        )
        .bind(id)
        .bind(token_id)
        .bind(now_ms())
        .bind(positions)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The sessions seen since `since` (ms since the epoch), newest first, at most `limit`.
    pub async fn edge_sessions(
        &self,
        since: i64,
        limit: u32,
    ) -> Result<Vec<EdgeSession>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, token_id, edge_name, region, address, connected_at, last_seen_at, closed_at, positions \
             FROM edge_sessions WHERE last_seen_at >= $1 ORDER BY last_seen_at DESC, connected_at DESC, id LIMIT $2",
        )
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(
                |(
                    id,
                    token_id,
                    edge_name,
                    region,
                    address,
                    connected_at,
                    last_seen_at,
                    closed_at,
                    positions,
                )| {
                    let positions = serde_json::from_str(&positions).map_err(|e| {
                        StoreError::Corrupt(format!("edge session {id:?}: positions: {e}"))
                    })?;
                    Ok(EdgeSession {
                        id,
                        token_id,
                        edge_name,
                        region,
                        address,
                        connected_at,
                        last_seen_at,
                        closed_at,
                        positions,
                    })
                },
            )
            .collect()
    }

    /// Deletes sessions last seen before `before`; returns how many.
    pub async fn purge_edge_sessions(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM edge_sessions WHERE last_seen_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

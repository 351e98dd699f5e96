//! Connected SDKs across the fleet: the latest report of each server's open SDK streams, one
//! row per reporter — an edge's feed session (its fleet row) or a control-plane instance's
//! in-process serving — replaced by its next report. Any instance reads every report, so any
//! instance answers for the whole fleet.
//!
//! An edge's report is stored only on an open fleet row of the token that sent it, so an edge
//! cannot write another token's row. Reports are read only while their reporter is current (an
//! edge's session open and refreshed, an instance's report recent); old rows are purged with
//! the fleet's.

use checkgate_protocol::connections::ConnectionCount;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, now_ms};

/// The prefix of an in-process reporter's id.
pub const INSTANCE_REPORTER: &str = "control-plane:";

/// One stored entry: open streams of one key in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCount {
    pub env_id: String,
    pub key_id: String,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<StoredClient>,
}

/// A connected client's address, when its server reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredClient {
    pub address: String,
    pub connected_at: i64,
}

impl From<&ConnectionCount> for StoredCount {
    fn from(c: &ConnectionCount) -> Self {
        Self {
            env_id: c.env_id.clone(),
            key_id: c.key_id.clone(),
            count: c.count,
            clients: c
                .clients
                .iter()
                .map(|c| StoredClient {
                    address: c.address.clone(),
                    connected_at: c.connected_at,
                })
                .collect(),
        }
    }
}

/// A server's latest report, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionReportRow {
    /// The edge's fleet row, or `control-plane:<instance>`.
    pub reporter: String,
    /// The edge's fleet row; `None` for in-process serving.
    pub edge_session: Option<String>,
    /// The edge's name, or the instance's.
    pub name: String,
    /// The edge's region (empty when it set none, and for in-process serving).
    pub region: String,
    pub reported_at: i64,
    pub entries: Vec<StoredCount>,
}

/// Names the connection views show: environments (with their project) and SDK keys.
#[derive(Debug, Clone, Default)]
pub struct ConnectionLabels {
    /// Environment id → (project id, environment name).
    pub environments: std::collections::HashMap<String, (String, String)>,
    /// SDK key id → key name.
    pub keys: std::collections::HashMap<String, String>,
}

fn encode(entries: &[StoredCount]) -> Result<String, StoreError> {
    serde_json::to_string(entries).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Replaces the report of the edge whose open fleet row `session` belongs to `token_id`;
    /// `false` when there is no such row (closed, or another token's).
    pub async fn put_edge_connections(
        &self,
        session: &str,
        token_id: &str,
        entries: &[StoredCount],
    ) -> Result<bool, StoreError> {
        let entries = encode(entries)?;
        let done = sqlx::query(
            "INSERT INTO sdk_connection_reports (reporter, edge_session, name, reported_at, entries) \
             SELECT id, id, edge_name, $3, $4 FROM edge_sessions \
             WHERE id = $1 AND token_id = $2 AND closed_at IS NULL \
             ON CONFLICT (reporter) DO UPDATE SET reported_at = excluded.reported_at, \
             entries = excluded.entries",
        )
        .bind(session)
        .bind(token_id)
        .bind(now_ms())
        .bind(entries)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces the report of this control-plane instance's in-process serving.
    pub async fn put_instance_connections(
        &self,
        instance: &str,
        name: &str,
        entries: &[StoredCount],
    ) -> Result<(), StoreError> {
        let entries = encode(entries)?;
        sqlx::query(
            "INSERT INTO sdk_connection_reports (reporter, edge_session, name, reported_at, entries) \
             VALUES ($1, NULL, $2, $3, $4) \
             ON CONFLICT (reporter) DO UPDATE SET reported_at = excluded.reported_at, \
             entries = excluded.entries, name = excluded.name",
        )
        .bind(format!("{INSTANCE_REPORTER}{instance}"))
        .bind(name)
        .bind(now_ms())
        .bind(entries)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The current reports: of edges whose session is open and was refreshed since `since`,
    /// and of instances that reported since `since`; at most `limit`, newest first.
    pub async fn connection_reports(
        &self,
        since: i64,
        limit: u32,
    ) -> Result<Vec<ConnectionReportRow>, StoreError> {
        type Row = (String, Option<String>, String, Option<String>, i64, String);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT r.reporter, r.edge_session, r.name, s.region, r.reported_at, r.entries \
             FROM sdk_connection_reports r LEFT JOIN edge_sessions s ON s.id = r.edge_session \
             WHERE (r.edge_session IS NULL AND r.reported_at >= $1) \
                OR (s.id IS NOT NULL AND s.closed_at IS NULL AND s.last_seen_at >= $1) \
             ORDER BY r.reported_at DESC, r.reporter LIMIT $2",
        )
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(
                |(reporter, edge_session, name, region, reported_at, entries)| {
                    let entries = serde_json::from_str(&entries).map_err(|e| {
                        StoreError::Corrupt(format!("connection report {reporter:?}: {e}"))
                    })?;
                    Ok(ConnectionReportRow {
                        reporter,
                        edge_session,
                        name,
                        region: region.unwrap_or_default(),
                        reported_at,
                        entries,
                    })
                },
            )
            .collect()
    }

    /// Every environment's project and name, and every SDK key's name.
    pub async fn connection_labels(&self) -> Result<ConnectionLabels, StoreError> {
        let environments: Vec<(String, String, String)> =
            sqlx::query_as("SELECT id, project_id, name FROM environments")
                .fetch_all(&self.pool)
                .await?;
        let keys: Vec<(String, String)> = sqlx::query_as("SELECT id, name FROM sdk_keys")
            .fetch_all(&self.pool)
            .await?;
        Ok(ConnectionLabels {
            environments: environments
                .into_iter()
                .map(|(id, project, name)| (id, (project, name)))
                .collect(),
            keys: keys.into_iter().collect(),
        })
    }

    /// Deletes reports last written before `before`; returns how many.
    pub async fn purge_connection_reports(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sdk_connection_reports WHERE reported_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

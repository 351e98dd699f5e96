//! Fleet alerts: conditions of the fleet worth an operator's attention, kept as a history of
//! episodes. An episode is one row: opened when its condition starts, resolved when it ends.
//! Kinds: `edge.stale` (an edge stale or disconnected too long; its resolution is the edge's
//! recovery, `edge.recovered`), `edge.lagging` (an edge too many versions behind an
//! environment's head) and `webhook.failing` (a webhook's deliveries failing).
//!
//! Invariant: **at most one open episode per kind and subject** — a unique index over open
//! rows holds it, so a condition seen on every tick (or by two instances at once) raises one
//! alert, not one per tick. [`transition`] is the one function that opens or resolves an
//! episode, inside the caller's transaction, and an edge's episode is announced to the webhooks
//! of the environments it serves in that same transaction (`edge.stale`, `edge.lagging`, and
//! `edge.recovered` when one ends), so an alert and its events are written together or not at
//! all.

use serde_json::Value;

use super::webhook_outbox::enqueue_event;
use super::{Store, StoreError, new_id, now_ms};

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// An edge stale or disconnected longer than `EDGE_STALE_ALERT_SECONDS`.
    EdgeStale,
    /// An edge more than `EDGE_LAG_ALERT_VERSIONS` versions behind an environment's head.
    EdgeLagging,
    /// A webhook whose deliveries keep failing.
    WebhookFailing,
}

impl AlertKind {
    /// The `kind` column's text (and the event's name when it opens). Never changes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdgeStale => "edge.stale",
            Self::EdgeLagging => "edge.lagging",
            Self::WebhookFailing => "webhook.failing",
        }
    }

    /// The event an episode's end is: `edge.recovered` for the edge kinds.
    pub fn resolved_event(self) -> &'static str {
        match self {
            Self::EdgeStale | Self::EdgeLagging => "edge.recovered",
            Self::WebhookFailing => "webhook.recovered",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "edge.stale" => Some(Self::EdgeStale),
            "edge.lagging" => Some(Self::EdgeLagging),
            "webhook.failing" => Some(Self::WebhookFailing),
            _ => None,
        }
    }
}

/// An alert episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: String,
    pub kind: String,
    /// What it is about: an edge as `<token id>/<edge name>`, a webhook by its id.
    pub subject: String,
    pub edge_name: Option<String>,
    /// The environments concerned (an edge's, or the webhook's).
    pub environments: Vec<String>,
    pub opened_at: i64,
    pub resolved_at: Option<i64>,
    pub detail: Value,
}

/// A change to an episode.
#[derive(Debug, Clone)]
pub enum Transition<'a> {
    /// The condition holds: open an episode unless one is open.
    Raise {
        kind: AlertKind,
        subject: &'a str,
        edge_name: Option<&'a str>,
        environments: &'a [String],
        detail: Value,
    },
    /// The condition ended: resolve the open episode, if any, adding `detail`'s fields.
    Resolve {
        kind: AlertKind,
        subject: &'a str,
        detail: Value,
    },
}

/// Which alerts a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Open,
    Resolved,
    All,
}

/// The subject of an edge's alerts: its token and its name, as the fleet view tells edges
/// apart.
pub fn edge_subject(token_id: &str, edge_name: &str) -> String {
    format!("{token_id}/{edge_name}")
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    Option<i64>,
    String,
);

const COLUMNS: &str = "id, kind, subject, edge_name, environments, opened_at, resolved_at, detail";

fn alert(row: Row) -> Result<Alert, StoreError> {
    let (id, kind, subject, edge_name, environments, opened_at, resolved_at, detail) = row;
    let environments = serde_json::from_str(&environments)
        .map_err(|e| StoreError::Corrupt(format!("alert {id:?}: environments: {e}")))?;
    let detail = serde_json::from_str(&detail)
        .map_err(|e| StoreError::Corrupt(format!("alert {id:?}: detail: {e}")))?;
    Ok(Alert {
        id,
        kind,
        subject,
        edge_name,
        environments,
        opened_at,
        resolved_at,
        detail,
    })
}

/// Opens or resolves an episode inside `tx`; returns the episode when something changed (a new
/// episode opened, an open one resolved), `None` when it was already so.
pub async fn transition(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    change: &Transition<'_>,
) -> Result<Option<Alert>, StoreError> {
    let now = now_ms();
    let changed: Option<Row> = match change {
        Transition::Raise {
            kind,
            subject,
            edge_name,
            environments,
            detail,
        } => {
            let environments = serde_json::to_string(environments)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query_as(&format!(
                "INSERT INTO fleet_alerts (id, kind, subject, edge_name, environments, opened_at, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
            ))
            .bind(new_id())
            .bind(kind.as_str())
            .bind(*subject)
            .bind(*edge_name)
            .bind(environments)
            .bind(now)
            .bind(detail.to_string())
            .fetch_optional(&mut **tx)
            .await?
        }
        Transition::Resolve {
            kind,
            subject,
            detail,
        } => {
            let open: Option<Row> = sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM fleet_alerts WHERE kind = $1 AND subject = $2 AND resolved_at IS NULL"
            ))
            .bind(kind.as_str())
            .bind(*subject)
            .fetch_optional(&mut **tx)
            .await?;
            match open {
                None => None,
                Some(row) => {
                    let mut merged: Value = serde_json::from_str(&row.7)
                        .unwrap_or_else(|_| Value::Object(Default::default()));
                    if let (Value::Object(into), Value::Object(from)) = (&mut merged, detail) {
                        for (k, v) in from {
                            into.insert(k.clone(), v.clone());
                        }
                    }
                    sqlx::query_as(&format!(
                        "UPDATE fleet_alerts SET resolved_at = $2, detail = $3 \
                         WHERE id = $1 AND resolved_at IS NULL RETURNING {COLUMNS}"
                    ))
                    .bind(&row.0)
                    .bind(now)
                    .bind(merged.to_string())
                    .fetch_optional(&mut **tx)
                    .await?
                }
            }
        }
    };
    let Some(row) = changed else {
        return Ok(None);
    };
    let episode = alert(row)?;
    // An edge's episode is announced, in this transaction, to the webhooks of each environment
    // it serves: its kind when it opens, `edge.recovered` when it ends. A webhook's own episode
    // is announced by the delivery side, which leaves the failing webhook out.
    let kind = match change {
        Transition::Raise { kind, .. } | Transition::Resolve { kind, .. } => *kind,
    };
    if kind != AlertKind::WebhookFailing {
        let event = if episode.resolved_at.is_none() {
            kind.as_str()
        } else {
            kind.resolved_event()
        };
        let data = serde_json::json!({
            "alert_id": episode.id,
            "kind": episode.kind,
            "subject": episode.subject,
            "edge_name": episode.edge_name,
            "environments": episode.environments,
            "opened_at_ms": episode.opened_at,
            "resolved_at_ms": episode.resolved_at,
            "detail": episode.detail,
        });
        for environment in &episode.environments {
            enqueue_event(tx, environment, event, data.clone()).await?;
        }
    }
    Ok(Some(episode))
}

impl Store {
    /// Applies `change` in a transaction of its own; see [`transition`].
    pub async fn alert_transition(
        &self,
        change: &Transition<'_>,
    ) -> Result<Option<Alert>, StoreError> {
        let mut tx = self.write().await?;
        let changed = transition(&mut tx, change).await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// Records that the webhook `webhook_id` (of the environment `environment_id`) is failing:
    /// opens a `webhook.failing` episode unless one is open. `detail` is a JSON object (the
    /// attempts, the last status); no secret or response body belongs in it.
    pub async fn record_webhook_failing(
        &self,
        webhook_id: &str,
        environment_id: &str,
        detail: Value,
    ) -> Result<Option<Alert>, StoreError> {
        let environments = [environment_id.to_owned()];
        self.alert_transition(&Transition::Raise {
            kind: AlertKind::WebhookFailing,
            subject: webhook_id,
            edge_name: None,
            environments: &environments,
            detail,
        })
        .await
    }

    /// Ends the webhook's `webhook.failing` episode, if one is open (a delivery succeeded).
    pub async fn resolve_webhook_failing(
        &self,
        webhook_id: &str,
    ) -> Result<Option<Alert>, StoreError> {
        self.alert_transition(&Transition::Resolve {
            kind: AlertKind::WebhookFailing,
            subject: webhook_id,
            detail: Value::Object(Default::default()),
        })
        .await
    }

    /// The open episodes of `kind`.
    pub async fn open_alerts(&self, kind: AlertKind) -> Result<Vec<Alert>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM fleet_alerts WHERE kind = $1 AND resolved_at IS NULL \
             ORDER BY opened_at, id LIMIT 10000"
        ))
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(alert).collect()
    }

    /// Alerts in `state`, newest first: `limit` of them after skipping `offset`, and whether
    /// more follow.
    pub async fn fleet_alerts(
        &self,
        state: AlertState,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<Alert>, bool), StoreError> {
        let filter = match state {
            AlertState::Open => "WHERE resolved_at IS NULL",
            AlertState::Resolved => "WHERE resolved_at IS NOT NULL",
            AlertState::All => "",
        };
        let mut rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM fleet_alerts {filter} \
             ORDER BY opened_at DESC, id DESC LIMIT $1 OFFSET $2"
        ))
        .bind(i64::from(limit) + 1)
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Ok((rows.into_iter().map(alert).collect::<Result<_, _>>()?, more))
    }

    /// Deletes resolved episodes resolved before `before`; returns how many.
    pub async fn purge_fleet_alerts(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM fleet_alerts WHERE resolved_at IS NOT NULL AND resolved_at < $1",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

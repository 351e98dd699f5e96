//! The webhook outbox's delivery side: the due deliveries the worker sends, their claims, each
//! attempt's outcome and the webhook's run of failures (`webhook.failing` raised once per run
//! and resolved when a delivery succeeds, in the attempt's transaction), and the purge of
//! finished deliveries. What is queued, and for which webhooks, is `webhooks.rs`'s.

use serde_json::json;

use super::fleet_alerts::{self, AlertKind, Transition};
use super::webhook_outbox::enqueue_system_event;
use super::webhooks::{DELIVERED, FAILED, PENDING, StoredUrl};
use super::{Store, StoreError, now_ms};
use crate::webhooks::event;

/// A due delivery, with what sending it needs.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: String,
    pub webhook_id: String,
    pub event: String,
    pub event_id: String,
    pub body: String,
    pub attempts: u64,
    pub created_at: i64,
    pub url: StoredUrl,
    pub secret: Option<String>,
}

/// What an attempt ended as.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// At most 1 KiB of the remote body.
    pub response_body: Option<String>,
    pub verdict: Verdict,
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Tried again at this time (ms since the epoch).
    RetryAt(i64),
    Failed,
}

impl Store {
    /// Pending deliveries due at `now` that nobody holds a claim on, of enabled webhooks,
    /// oldest due first.
    pub async fn due_deliveries(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            i64,
            i64,
            String,
            String,
            String,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT d.id, d.webhook_id, d.event, d.event_id, d.body, d.attempts, d.created_at, \
             w.url, w.url_shown, w.url_digest, w.secret \
             FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.state = $1 AND d.next_attempt_at <= $2 AND d.claimed_until < $2 \
             AND w.enabled = 1 ORDER BY d.next_attempt_at, d.id LIMIT $3",
        )
        .bind(PENDING)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    webhook_id,
                    event,
                    event_id,
                    body,
                    attempts,
                    created_at,
                    url,
                    shown,
                    digest,
                    secret,
                )| {
                    DueDelivery {
                        id,
                        webhook_id,
                        event,
                        event_id,
                        body,
                        attempts: attempts.max(0) as u64,
                        created_at,
                        url: StoredUrl::from_columns(url, shown, digest),
                        secret,
                    }
                },
            )
            .collect())
    }

    /// Claims a pending delivery until `until` (a visibility timeout: an instance that dies
    /// holding it lets it go then); `false` when another claim holds it or it is done.
    pub async fn claim_delivery(&self, id: &str, now: i64, until: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET claimed_until = $3 \
             WHERE id = $1 AND state = $4 AND claimed_until < $2",
        )
        .bind(id)
        .bind(now)
        .bind(until)
        .bind(PENDING)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records an attempt's outcome and the webhook's run of failures. When a failure makes
    /// the run longer than `failing_after` attempts, and `webhook.failing` was not raised for
    /// this run yet, it is raised (to the environment's other webhooks, and in the alert
    /// history) in the same transaction. Returns whether it was raised.
    pub async fn finish_attempt(
        &self,
        delivery: &DueDelivery,
        outcome: &AttemptOutcome,
        failing_after: u64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let now = now_ms();
        let (state, next, finished) = match outcome.verdict {
            Verdict::Delivered => (DELIVERED, now, Some(now)),
            Verdict::RetryAt(at) => (PENDING, at, None),
            Verdict::Failed => (FAILED, now, Some(now)),
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, \
             next_attempt_at = $3, claimed_until = 0, finished_at = $4, status_code = $5, \
             latency_ms = $6, error = $7, response_body = $8 WHERE id = $1",
        )
        .bind(&delivery.id)
        .bind(state)
        .bind(next)
        .bind(finished)
        .bind(outcome.status_code.map(i64::from))
        .bind(i64::try_from(outcome.latency_ms).unwrap_or(i64::MAX))
        .bind(outcome.error.as_deref())
        .bind(outcome.response_body.as_deref())
        .execute(&mut *tx)
        .await?;
        let mut raised = false;
        if outcome.verdict == Verdict::Delivered {
            let was: Option<(i64, String)> =
                sqlx::query_as("SELECT failing, environment_id FROM webhooks WHERE id = $1")
                    .bind(&delivery.webhook_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            sqlx::query("UPDATE webhooks SET consecutive_failures = 0, failing = 0 WHERE id = $1")
                .bind(&delivery.webhook_id)
                .execute(&mut *tx)
                .await?;
            if let Some((1, env)) = was {
                resolve_failing(&mut tx, &delivery.webhook_id, &env).await?;
            }
        } else {
            let row: Option<(i64, i64, String, String)> = sqlx::query_as(
                "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1 \
                 WHERE id = $1 RETURNING consecutive_failures, failing, environment_id, name",
            )
            .bind(&delivery.webhook_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((failures, failing, env, name)) = row
                && failures.max(0) as u64 > failing_after
                && failing == 0
            {
                raise_failing(
                    &mut tx,
                    &delivery.webhook_id,
                    &env,
                    &name,
                    failures,
                    outcome,
                )
                .await?;
                raised = true;
            }
        }
        tx.commit().await?;
        Ok(raised)
    }

    /// Deletes finished deliveries created before `before_ms`, and marks failed the pending
    /// ones created before `expire_before_ms` (a disabled webhook's, which nobody sends), at
    /// most `batch` rows per statement and `statements` statements: a bounded pass.
    pub async fn purge_deliveries(
        &self,
        before_ms: i64,
        expire_before_ms: i64,
        batch: i64,
        statements: usize,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        for _ in 0..statements {
            let done = sqlx::query(
                "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries \
                 WHERE state <> $1 AND created_at < $2 LIMIT $3)",
            )
            .bind(PENDING)
            .bind(before_ms)
            .bind(batch)
            .execute(&self.pool)
            .await?;
            total += done.rows_affected();
            if done.rows_affected() < batch.max(0) as u64 {
                break;
            }
        }
        for _ in 0..statements {
            let done = sqlx::query(
                "UPDATE webhook_deliveries SET state = $1, finished_at = $2, \
                 error = 'gave up: not delivered within 24 hours' WHERE id IN \
                 (SELECT id FROM webhook_deliveries WHERE state = $3 AND created_at < $4 \
                 AND claimed_until < $2 LIMIT $5)",
            )
            .bind(FAILED)
            .bind(now_ms())
            .bind(PENDING)
            .bind(expire_before_ms)
            .bind(batch)
            .execute(&self.pool)
            .await?;
            total += done.rows_affected();
            if done.rows_affected() < batch.max(0) as u64 {
                break;
            }
        }
        Ok(total)
    }
}

/// Raises `webhook.failing` for one webhook: enqueued to the environment's other webhooks and
/// opened as an episode of the fleet's alert history (`fleet_alerts`).
async fn raise_failing(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    webhook_id: &str,
    environment_id: &str,
    name: &str,
    failures: i64,
    outcome: &AttemptOutcome,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE webhooks SET failing = 1 WHERE id = $1")
        .bind(webhook_id)
        .execute(&mut **tx)
        .await?;
    let data = json!({
        "webhook_id": webhook_id,
        "webhook_name": name,
        "consecutive_failures": failures,
        "last_status": outcome.status_code,
        "last_error": outcome.error,
    });
    let environments = [environment_id.to_owned()];
    fleet_alerts::transition(
        tx,
        &Transition::Raise {
            kind: AlertKind::WebhookFailing,
            subject: webhook_id,
            edge_name: None,
            environments: &environments,
            detail: data.clone(),
        },
    )
    .await?;
    enqueue_system_event(
        tx,
        environment_id,
        event::FAILING_EVENT,
        data,
        None,
        Some(webhook_id),
    )
    .await?;
    Ok(())
}

/// Ends a failing webhook's episode (a delivery succeeded): resolved in the alert history, and
/// `webhook.recovered` enqueued to the environment's other webhooks.
async fn resolve_failing(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    webhook_id: &str,
    environment_id: &str,
) -> Result<(), StoreError> {
    let resolved = fleet_alerts::transition(
        tx,
        &Transition::Resolve {
            kind: AlertKind::WebhookFailing,
            subject: webhook_id,
            detail: json!({}),
        },
    )
    .await?;
    if resolved.is_some() {
        enqueue_system_event(
            tx,
            environment_id,
            AlertKind::WebhookFailing.resolved_event(),
            json!({ "webhook_id": webhook_id }),
            None,
            Some(webhook_id),
        )
        .await?;
    }
    Ok(())
}

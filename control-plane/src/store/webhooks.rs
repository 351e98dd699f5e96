//! Webhooks and their outbox. The invariant: an event's delivery rows are written in the
//! transaction of what it announces — a versioned change writes one row per enabled webhook of
//! its environment from [`super::changes::NextVersion::record`] — so a change that commits is
//! announced (eventually) and one that rolls back never is. The delivery worker
//! (`crate::webhooks::delivery`) claims due rows and writes each attempt's outcome here.
//!
//! Secrets reach this module already sealed (`crate::vault`); it stores and returns the
//! sealed text and never sees a plain secret.

use serde_json::{Value, json};

use super::changes::{Audited, NextVersion};
use super::fleet_alerts::{self, AlertKind, Transition};
use super::{Actor, Store, StoreError, audit, new_id, now_ms};
use crate::webhooks::event::{self, Event, EventActor};

/// Delivery states, as stored.
pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// A webhook as stored. `secret` is the sealed text (never plain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub environment_id: String,
    pub name: String,
    pub url: String,
    pub format: String,
    pub enabled: bool,
    pub secret: Option<String>,
    pub consecutive_failures: u64,
    pub failing: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Webhook {
    /// What the audit log keeps of a webhook: never its secret, only whether it has one.
    fn audited(&self) -> String {
        json!({
            "name": self.name,
            "url": self.url,
            "format": self.format,
            "enabled": self.enabled,
            "has_secret": self.secret.is_some(),
        })
        .to_string()
    }
}

/// A change to a webhook: each `Some` replaces the field; `secret: Some(None)` removes it.
#[derive(Debug, Clone, Default)]
pub struct WebhookChanges {
    pub name: Option<String>,
    pub url: Option<String>,
    pub format: Option<String>,
    pub enabled: Option<bool>,
    pub secret: Option<Option<String>>,
}

/// One delivery (outbox row), as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub webhook_id: String,
    pub event: String,
    pub event_id: String,
    pub state: String,
    pub attempts: u64,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub status_code: Option<u16>,
    pub latency_ms: Option<u64>,
    pub error: Option<String>,
    pub response_body: Option<String>,
}

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
    pub url: String,
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

type WebhookRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
);

const WEBHOOK_COLUMNS: &str = "id, environment_id, name, url, format, enabled, secret, \
    consecutive_failures, failing, created_at, updated_at";

fn webhook(row: WebhookRow) -> Webhook {
    let (id, environment_id, name, url, format, enabled, secret, failures, failing, c, u) = row;
    Webhook {
        id,
        environment_id,
        name,
        url,
        format,
        enabled: enabled != 0,
        secret,
        consecutive_failures: failures.max(0) as u64,
        failing: failing != 0,
        created_at: c,
        updated_at: u,
    }
}

type DeliveryRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn delivery(row: DeliveryRow) -> Delivery {
    let (
        id,
        webhook_id,
        event,
        event_id,
        state,
        attempts,
        next,
        created,
        finished,
        status,
        latency,
        error,
        body,
    ) = row;
    Delivery {
        id,
        webhook_id,
        event,
        event_id,
        state,
        attempts: attempts.max(0) as u64,
        next_attempt_at: next,
        created_at: created,
        finished_at: finished,
        status_code: status.and_then(|s| u16::try_from(s).ok()),
        latency_ms: latency.map(|l| l.max(0) as u64),
        error,
        response_body: body,
    }
}

/// The environment's key, name and project, for event bodies.
async fn environment_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    environment_id: &str,
) -> Result<Option<(String, String, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT slug, name, project_id FROM environments WHERE id = $1")
            .bind(environment_id)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// Inserts one pending delivery row.
async fn insert_delivery(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    webhook_id: &str,
    event: &str,
    event_id: &str,
    body: &str,
    now: i64,
) -> Result<String, StoreError> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, webhook_id, event, event_id, body, state, attempts, \
         next_attempt_at, claimed_until, created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, 0, $7)",
    )
    .bind(&id)
    .bind(webhook_id)
    .bind(event)
    .bind(event_id)
    .bind(body)
    .bind(PENDING)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// What to enqueue for an event: the event and who to send it to (`only`: one webhook;
/// `except`: all enabled ones but this one).
struct Enqueue<'a> {
    environment_id: &'a str,
    only: Option<&'a str>,
    except: Option<&'a str>,
}

/// Writes one delivery row per addressed enabled webhook of the environment, each with the
/// body in its format. Returns the rows written. Nothing (one indexed read) when the
/// environment has no webhook.
async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    to: Enqueue<'_>,
    make: impl Fn(&str, &str, &str, &str, &str) -> (String, String),
) -> Result<Vec<String>, StoreError> {
    let hooks: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, format FROM webhooks WHERE environment_id = $1 AND enabled = 1 ORDER BY id",
    )
    .bind(to.environment_id)
    .fetch_all(&mut **tx)
    .await?;
    let hooks: Vec<_> = hooks
        .into_iter()
        .filter(|(id, _)| to.only.is_none_or(|only| only == id))
        .filter(|(id, _)| to.except != Some(id.as_str()))
        .collect();
    if hooks.is_empty() {
        return Ok(Vec::new());
    }
    let Some((key, name, project)) = environment_of(tx, to.environment_id).await? else {
        return Ok(Vec::new());
    };
    let event_id = new_id();
    let now = now_ms();
    let mut ids = Vec::with_capacity(hooks.len());
    for (hook, format) in hooks {
        let (event, body) = make(&format, &event_id, &key, &name, &project);
        ids.push(insert_delivery(tx, &hook, &event, &event_id, &body, now).await?);
    }
    Ok(ids)
}

/// Enqueues an event that is not a change (`edge.stale`, `webhook.failing`, …) for every
/// enabled webhook of the environment, inside the caller's transaction: it is delivered only
/// if that transaction commits. `data` is the body's `data` field.
pub async fn enqueue_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    environment_id: &str,
    event_name: &str,
    data: Value,
) -> Result<Vec<String>, StoreError> {
    enqueue_system_event(tx, environment_id, event_name, data, None, None).await
}

async fn enqueue_system_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    environment_id: &str,
    event_name: &str,
    data: Value,
    only: Option<&str>,
    except: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    let at_ms = now_ms();
    let to = Enqueue {
        environment_id,
        only,
        except,
    };
    enqueue(tx, to, |format, event_id, key, name, project| {
        let body = event::body(
            format,
            &Event {
                event: event_name,
                event_id,
                environment_id,
                environment_key: key,
                environment_name: name,
                project_id: project,
                actor: EventActor {
                    kind: "system",
                    id: None,
                    name: "system",
                },
                target: None,
                before: None,
                after: None,
                version: None,
                data: Some(data.clone()),
                at_ms,
            },
        );
        (event_name.to_owned(), body)
    })
    .await
}

/// Enqueues the event of a versioned change (called by `NextVersion::record`, in the change's
/// transaction).
pub(super) async fn enqueue_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    next: &NextVersion,
    actor: &Actor,
    audited: &Audited<'_>,
) -> Result<(), StoreError> {
    let name = event::event_name(audited.action);
    let at_ms = now_ms();
    let to = Enqueue {
        environment_id: &next.environment_id,
        only: None,
        except: None,
    };
    enqueue(tx, to, |format, event_id, key, env_name, _| {
        let body = event::body(
            format,
            &Event {
                event: &name,
                event_id,
                environment_id: &next.environment_id,
                environment_key: key,
                environment_name: env_name,
                project_id: &next.project_id,
                actor: EventActor {
                    kind: actor.kind,
                    id: actor.id.as_deref(),
                    name: &actor.name,
                },
                target: Some(audited.target),
                before: audited.before,
                after: audited.after,
                version: Some(next.version),
                data: None,
                at_ms,
            },
        );
        (name.clone(), body)
    })
    .await?;
    Ok(())
}

impl Store {
    /// The environment's webhooks, oldest first.
    pub async fn webhooks(&self, env: &str) -> Result<Vec<Webhook>, StoreError> {
        let rows: Vec<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE environment_id = $1 ORDER BY created_at, id"
        ))
        .bind(env)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(webhook).collect())
    }

    /// One webhook of the environment.
    pub async fn webhook(&self, env: &str, id: &str) -> Result<Webhook, StoreError> {
        let row: Option<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE environment_id = $1 AND id = $2"
        ))
        .bind(env)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(webhook)
            .ok_or_else(|| StoreError::NotFound(format!("webhook {id:?}")))
    }

    /// Creates a webhook (its id chosen by the caller, who sealed its secret for that id),
    /// audited as `webhook.create`.
    pub async fn create_webhook(
        &self,
        actor: &Actor,
        project_id: &str,
        hook: &Webhook,
    ) -> Result<Webhook, StoreError> {
        let mut tx = self.write().await?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO webhooks (id, environment_id, name, url, format, enabled, secret, \
             consecutive_failures, failing, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8, $8)",
        )
        .bind(&hook.id)
        .bind(&hook.environment_id)
        .bind(&hook.name)
        .bind(&hook.url)
        .bind(&hook.format)
        .bind(i64::from(hook.enabled))
        .bind(hook.secret.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let created = Webhook {
            created_at: now,
            updated_at: now,
            consecutive_failures: 0,
            failing: false,
            ..hook.clone()
        };
        audit(
            &mut tx,
            actor,
            Some(project_id),
            Some(&hook.environment_id),
            "webhook.create",
            ("webhook", &hook.id),
            None,
            Some(&created.audited()),
        )
        .await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Changes a webhook, audited as `webhook.update`.
    pub async fn update_webhook(
        &self,
        actor: &Actor,
        project_id: &str,
        env: &str,
        id: &str,
        changes: WebhookChanges,
    ) -> Result<Webhook, StoreError> {
        let mut tx = self.write().await?;
        let row: Option<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE environment_id = $1 AND id = $2"
        ))
        .bind(env)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let before = row
            .map(webhook)
            .ok_or_else(|| StoreError::NotFound(format!("webhook {id:?}")))?;
        let mut after = before.clone();
        if let Some(name) = changes.name {
            after.name = name;
        }
        if let Some(url) = changes.url {
            after.url = url;
        }
        if let Some(format) = changes.format {
            after.format = format;
        }
        if let Some(enabled) = changes.enabled {
            after.enabled = enabled;
        }
        if let Some(secret) = changes.secret {
            after.secret = secret;
        }
        after.updated_at = now_ms();
        sqlx::query(
            "UPDATE webhooks SET name = $3, url = $4, format = $5, enabled = $6, secret = $7, \
             updated_at = $8 WHERE environment_id = $1 AND id = $2",
        )
        .bind(env)
        .bind(id)
        .bind(&after.name)
        .bind(&after.url)
        .bind(&after.format)
        .bind(i64::from(after.enabled))
        .bind(after.secret.as_deref())
        .bind(after.updated_at)
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            actor,
            Some(project_id),
            Some(env),
            "webhook.update",
            ("webhook", id),
            Some(&before.audited()),
            Some(&after.audited()),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Deletes a webhook and its deliveries, audited as `webhook.delete`.
    pub async fn delete_webhook(
        &self,
        actor: &Actor,
        project_id: &str,
        env: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let hook = {
            let row: Option<WebhookRow> = sqlx::query_as(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE environment_id = $1 AND id = $2"
            ))
            .bind(env)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            row.map(webhook)
                .ok_or_else(|| StoreError::NotFound(format!("webhook {id:?}")))?
        };
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            actor,
            Some(project_id),
            Some(env),
            "webhook.delete",
            ("webhook", id),
            Some(&hook.audited()),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Enqueues a test event for one webhook (enabled or not: the caller asked for it),
    /// audited as `webhook.test`; returns the delivery's id.
    pub async fn enqueue_webhook_test(
        &self,
        actor: &Actor,
        project_id: &str,
        env: &str,
        id: &str,
    ) -> Result<String, StoreError> {
        let mut tx = self.write().await?;
        let format: Option<String> =
            sqlx::query_scalar("SELECT format FROM webhooks WHERE environment_id = $1 AND id = $2")
                .bind(env)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let format = format.ok_or_else(|| StoreError::NotFound(format!("webhook {id:?}")))?;
        let (key, name, project) = environment_of(&mut tx, env)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("environment {env:?}")))?;
        let event_id = new_id();
        let at_ms = now_ms();
        let body = event::body(
            &format,
            &Event {
                event: event::TEST_EVENT,
                event_id: &event_id,
                environment_id: env,
                environment_key: &key,
                environment_name: &name,
                project_id: &project,
                actor: EventActor {
                    kind: actor.kind,
                    id: actor.id.as_deref(),
                    name: &actor.name,
                },
                target: Some(("webhook", id)),
                before: None,
                after: None,
                version: None,
                data: Some(json!({"message": "a test event from Checkgate"})),
                at_ms,
            },
        );
        let delivery =
            insert_delivery(&mut tx, id, event::TEST_EVENT, &event_id, &body, at_ms).await?;
        audit(
            &mut tx,
            actor,
            Some(project_id),
            Some(env),
            "webhook.test",
            ("webhook", id),
            None,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(delivery)
    }

    /// A webhook's deliveries, newest first, at most `limit`.
    pub async fn webhook_deliveries(
        &self,
        webhook_id: &str,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT id, webhook_id, event, event_id, state, attempts, next_attempt_at, created_at, \
             finished_at, status_code, latency_ms, error, response_body FROM webhook_deliveries \
             WHERE webhook_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(webhook_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(delivery).collect())
    }

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
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT d.id, d.webhook_id, d.event, d.event_id, d.body, d.attempts, d.created_at, \
             w.url, w.secret FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
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
                |(id, webhook_id, event, event_id, body, attempts, created_at, url, secret)| {
                    DueDelivery {
                        id,
                        webhook_id,
                        event,
                        event_id,
                        body,
                        attempts: attempts.max(0) as u64,
                        created_at,
                        url,
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

    /// Every sealed secret: `(webhook id, sealed text)`, for the start-up key check and
    /// rotation.
    pub async fn sealed_secrets(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, secret FROM webhooks WHERE secret IS NOT NULL ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Replaces one sealed secret if it is still `old` (so a rotation run twice, or beside a
    /// change, never overwrites a newer value); whether it was replaced. A replacement is
    /// audited (`webhook.secret_reseal`, by the system) with the ids of the keys, never a
    /// secret: `keys` is (the old key's id, the new key's id).
    pub async fn reseal_secret(
        &self,
        id: &str,
        old: &str,
        new: &str,
        keys: (&str, &str),
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let resealed: Option<(String, String)> = sqlx::query_as(
            "UPDATE webhooks SET secret = $3 WHERE id = $1 AND secret = $2 \
             RETURNING environment_id, name",
        )
        .bind(id)
        .bind(old)
        .bind(new)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((env, name)) = resealed else {
            return Ok(false);
        };
        let project: Option<String> =
            sqlx::query_scalar("SELECT project_id FROM environments WHERE id = $1")
                .bind(&env)
                .fetch_optional(&mut *tx)
                .await?;
        let before = json!({ "name": name, "key_id": keys.0 }).to_string();
        let after = json!({ "name": name, "key_id": keys.1 }).to_string();
        audit(
            &mut tx,
            &Actor::system(),
            project.as_deref(),
            Some(&env),
            "webhook.secret_reseal",
            ("webhook", id),
            Some(&before),
            Some(&after),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
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

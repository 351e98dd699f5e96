//! Webhooks and their outbox. The invariant: an event's delivery rows are written in the
//! transaction of what it announces — a versioned change writes one row per enabled webhook of
//! its environment from [`super::changes::NextVersion::record`] — so a change that commits is
//! announced (eventually) and one that rolls back never is. Queuing is `webhook_outbox.rs`'s,
//! sending (claims, attempts, the run of failures) `webhook_delivery.rs`'s; this module holds
//! the webhooks themselves and their deliveries log.
//!
//! Secrets and URLs reach this module already sealed (`crate::vault`); it stores and returns
//! the sealed text and never sees a plain secret. How a URL is stored, and the sealed values
//! themselves (read for the start-up check, rotated, sealed from plain), are
//! `webhook_sealed.rs`'s.

use serde_json::json;

use super::webhook_outbox::{environment_of, insert_delivery};
pub use super::webhook_sealed::{SealedField, SealedValue, StoredUrl};
use super::{Actor, Backend, Store, StoreError, audit, new_id, now_ms};
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
    pub url: StoredUrl,
    pub format: String,
    pub enabled: bool,
    pub secret: Option<String>,
    pub consecutive_failures: u64,
    pub failing: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Webhook {
    /// What the audit log keeps of a webhook: never its secret, only whether it has one, and
    /// its URL masked (the audit log is readable by project viewers) with a digest of the whole
    /// URL, so a changed URL shows as changed.
    fn audited(&self) -> String {
        json!({
            "name": self.name,
            "url": self.url.shown(),
            "url_sha256": self.url.digest(),
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
    pub url: Option<StoredUrl>,
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

type WebhookRow = (
    String,
    String,
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

const WEBHOOK_COLUMNS: &str = "id, environment_id, name, url, url_shown, url_digest, format, \
    enabled, secret, consecutive_failures, failing, created_at, updated_at";

fn webhook(row: WebhookRow) -> Webhook {
    let (
        id,
        environment_id,
        name,
        url,
        shown,
        digest,
        format,
        enabled,
        secret,
        failures,
        failing,
        c,
        u,
    ) = row;
    Webhook {
        id,
        environment_id,
        name,
        url: StoredUrl::from_columns(url, shown, digest),
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
        let (url, shown, digest) = hook.url.columns();
        sqlx::query(
            "INSERT INTO webhooks (id, environment_id, name, url, url_shown, url_digest, format, \
             enabled, secret, consecutive_failures, failing, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0, $10, $10)",
        )
        .bind(&hook.id)
        .bind(&hook.environment_id)
        .bind(&hook.name)
        .bind(url)
        .bind(shown)
        .bind(digest)
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
        // Locked on PostgreSQL (SQLite's write transaction is exclusive already): every column
        // is written back, so a sealing or rotation committed meanwhile must not be undone.
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let row: Option<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE environment_id = $1 AND id = $2{lock}"
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
        let (url, shown, digest) = after.url.columns();
        sqlx::query(
            "UPDATE webhooks SET name = $3, url = $4, url_shown = $5, url_digest = $6, \
             format = $7, enabled = $8, secret = $9, updated_at = $10 \
             WHERE environment_id = $1 AND id = $2",
        )
        .bind(env)
        .bind(id)
        .bind(&after.name)
        .bind(url)
        .bind(shown)
        .bind(digest)
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
}

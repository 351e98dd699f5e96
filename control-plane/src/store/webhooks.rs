//! Webhooks and their outbox. The invariant: an event's delivery rows are written in the
//! transaction of what it announces — a versioned change writes one row per enabled webhook of
//! its environment from [`super::changes::NextVersion::record`] — so a change that commits is
//! announced (eventually) and one that rolls back never is. Queuing is `webhook_outbox.rs`'s,
//! sending (claims, attempts, the run of failures) `webhook_delivery.rs`'s; this module holds
//! the webhooks themselves and their deliveries log.
//!
//! Secrets reach this module already sealed (`crate::vault`); it stores and returns the
//! sealed text and never sees a plain secret.

use serde_json::json;

use super::webhook_outbox::{environment_of, insert_delivery};
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

/// What may be shown of a webhook's URL to those who may not see it whole: its scheme and host,
/// the rest replaced by `…`. A chat service's incoming-webhook URL carries its token in the
/// path, so the path, the query and any user information count as secret.
pub fn masked_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "…".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}/…")
}

impl Webhook {
    /// What the audit log keeps of a webhook: never its secret, only whether it has one, and
    /// its URL masked (the audit log is readable by project viewers) with a digest of the whole
    /// URL, so a changed URL shows as changed.
    fn audited(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.url.as_bytes());
        let digest: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        json!({
            "name": self.name,
            "url": masked_url(&self.url),
            "url_sha256": digest,
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

#[cfg(test)]
mod masking {
    use super::masked_url;

    #[test]
    fn only_the_scheme_and_host_are_shown() {
        for (url, shown) in [
            (
                "https://hooks.example.com/services/T0/B0/token",
                "https://hooks.example.com/…",
            ),
            (
                "http://example.com:8080?token=1",
                "http://example.com:8080/…",
            ),
            ("https://example.com#frag", "https://example.com/…"),
            ("https://user:pass@example.com/x", "https://example.com/…"),
            ("https://example.com", "https://example.com/…"),
            ("not a url", "…"),
        ] {
            assert_eq!(masked_url(url), shown, "{url}");
        }
    }
}

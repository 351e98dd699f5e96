//! Webhooks and their outbox. The invariant: an event's delivery rows are written in the
//! transaction of what it announces — a versioned change writes one row per enabled webhook of
//! its environment from [`super::changes::NextVersion::record`] — so a change that commits is
//! announced (eventually) and one that rolls back never is. Queuing is `webhook_outbox.rs`'s,
//! sending (claims, attempts, the run of failures) `webhook_delivery.rs`'s; this module holds
//! the webhooks themselves and their deliveries log.
//!
//! Secrets and URLs reach this module already sealed (`crate::vault`); it stores and returns
//! the sealed text and never sees a plain secret. The one plain URL it handles is a row's
//! written before URLs were sealed, which it hands back as [`StoredUrl::Plain`] to be sealed.

use serde_json::json;

use super::webhook_outbox::{environment_of, insert_delivery};
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

/// A webhook's URL as stored. The path of a chat service's incoming-webhook URL is its token, so
/// the URL is sealed under the master key like a signing secret; beside it are kept what anyone
/// who may read the webhook may see of it and a digest of the whole, so neither a listing nor
/// the audit log needs the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredUrl {
    Sealed {
        /// `cg1.…`, for the context of `SealedField::Url`.
        sealed: String,
        /// [`masked_url`] of the URL.
        shown: String,
        /// [`url_digest`] of the URL.
        digest: String,
    },
    /// A row written before URLs were sealed, by control planes without a master key since.
    Plain(String),
}

impl StoredUrl {
    /// What is stored of `url`, sealed as `sealed`.
    pub fn sealed(url: &str, sealed: String) -> Self {
        Self::Sealed {
            sealed,
            shown: masked_url(url),
            digest: url_digest(url),
        }
    }

    /// From the row's `url`, `url_shown` and `url_digest`. A URL is sealed when it is in the
    /// sealed format (a plain one starts with `http`): a control plane of an earlier build
    /// that writes a plain URL leaves `url_shown` as it was.
    pub(super) fn from_columns(url: String, shown: String, digest: String) -> Self {
        if url.starts_with(SEALED_URL_PREFIX) {
            Self::Sealed {
                sealed: url,
                shown,
                digest,
            }
        } else {
            Self::Plain(url)
        }
    }

    /// The row's `(url, url_shown, url_digest)`.
    fn columns(&self) -> (&str, &str, &str) {
        match self {
            Self::Sealed {
                sealed,
                shown,
                digest,
            } => (sealed, shown, digest),
            Self::Plain(url) => (url, "", ""),
        }
    }

    /// What may be shown to anyone who may read the webhook: its scheme and host.
    pub fn shown(&self) -> String {
        match self {
            Self::Sealed { shown, .. } => shown.clone(),
            Self::Plain(url) => masked_url(url),
        }
    }

    fn digest(&self) -> String {
        match self {
            Self::Sealed { digest, .. } => digest.clone(),
            Self::Plain(url) => url_digest(url),
        }
    }
}

/// How every sealed value begins (see `crate::vault`); a webhook URL in plain text cannot.
const SEALED_URL_PREFIX: &str = "cg1.";
/// The same, as a `LIKE` pattern.
const SEALED_LIKE: &str = "'cg1.%'";

/// The first 8 bytes of SHA-256 of `url`, in hex: enough to tell two URLs apart in the audit
/// log, nothing to recover a token from.
pub fn url_digest(url: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(url.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
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

    /// Every sealed value (secrets and URLs), for the start-up key check and rotation.
    pub async fn sealed_values(&self) -> Result<Vec<SealedValue>, StoreError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(&format!(
            "SELECT id, 'secret', secret FROM webhooks WHERE secret IS NOT NULL \
             UNION ALL SELECT id, 'url', url FROM webhooks WHERE url LIKE {SEALED_LIKE} \
             ORDER BY 1, 2"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(webhook_id, field, sealed)| {
                let field = SealedField::from_column(&field)
                    .ok_or_else(|| StoreError::Corrupt(format!("sealed field {field:?}")))?;
                Ok(SealedValue {
                    webhook_id,
                    field,
                    sealed,
                })
            })
            .collect()
    }

    /// Replaces one sealed value if it is still `old` (so a rotation run twice, or beside a
    /// change, never overwrites a newer value); whether it was replaced. A replacement is
    /// audited (`webhook.secret_reseal`, by the system) with the field and the ids of the keys,
    /// never a secret: `keys` is (the old key's id, the new key's id).
    pub async fn reseal(
        &self,
        value: &SealedValue,
        new: &str,
        keys: (&str, &str),
    ) -> Result<bool, StoreError> {
        let column = value.field.column();
        let mut tx = self.write().await?;
        let resealed: Option<(String, String)> = sqlx::query_as(&format!(
            "UPDATE webhooks SET {column} = $3 WHERE id = $1 AND {column} = $2 \
             RETURNING environment_id, name"
        ))
        .bind(&value.webhook_id)
        .bind(&value.sealed)
        .bind(new)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((env, name)) = resealed else {
            return Ok(false);
        };
        let audited = |key_id: &str| json!({ "name": name, "field": column, "key_id": key_id });
        system_audit(
            &mut tx,
            &env,
            "webhook.secret_reseal",
            &value.webhook_id,
            Some(&audited(keys.0).to_string()),
            &audited(keys.1).to_string(),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The URLs stored before URLs were sealed and not sealed since: `(webhook id, URL)`.
    pub async fn plain_urls(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, url FROM webhooks WHERE url_shown = '' ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Replaces a plain URL by its sealed form if the row still holds `plain`; whether it did.
    /// Audited (`webhook.url_seal`, by the system) with the key's id and what may be shown of
    /// the URL, never the URL.
    pub async fn seal_plain_url(
        &self,
        id: &str,
        plain: &str,
        sealed: &StoredUrl,
        key_id: &str,
    ) -> Result<bool, StoreError> {
        let StoredUrl::Sealed {
            sealed: url,
            shown,
            digest,
        } = sealed
        else {
            return Err(StoreError::Refused(
                "a plain URL is replaced by a sealed one only".into(),
            ));
        };
        let mut tx = self.write().await?;
        let done: Option<(String, String)> = sqlx::query_as(
            "UPDATE webhooks SET url = $3, url_shown = $4, url_digest = $5 \
             WHERE id = $1 AND url = $2 RETURNING environment_id, name",
        )
        .bind(id)
        .bind(plain)
        .bind(url)
        .bind(shown)
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((env, name)) = done else {
            return Ok(false);
        };
        let after = json!({ "name": name, "url": shown, "url_sha256": digest, "key_id": key_id });
        system_audit(
            &mut tx,
            &env,
            "webhook.url_seal",
            id,
            None,
            &after.to_string(),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// Audits `action` on webhook `id` of environment `env`, by the system.
async fn system_audit(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    env: &str,
    action: &str,
    id: &str,
    before: Option<&str>,
    after: &str,
) -> Result<(), StoreError> {
    let project: Option<String> =
        sqlx::query_scalar("SELECT project_id FROM environments WHERE id = $1")
            .bind(env)
            .fetch_optional(&mut **tx)
            .await?;
    audit(
        tx,
        &Actor::system(),
        project.as_deref(),
        Some(env),
        action,
        ("webhook", id),
        before,
        Some(after),
    )
    .await
}

/// Which of a webhook's columns a sealed value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedField {
    Secret,
    Url,
}

impl SealedField {
    fn column(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Url => "url",
        }
    }

    fn from_column(column: &str) -> Option<Self> {
        match column {
            "secret" => Some(Self::Secret),
            "url" => Some(Self::Url),
            _ => None,
        }
    }
}

/// One sealed value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub webhook_id: String,
    pub field: SealedField,
    pub sealed: String,
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

//! How a webhook's URL is stored, and every sealed value of the webhooks (signing secrets and
//! URLs) as the vault reads and rewrites them: for the start-up key check, for rotation, and to
//! seal URLs stored in plain text by earlier builds. Only sealed text passes through here,
//! except such a plain URL, handed back as [`StoredUrl::Plain`] to be sealed.

use serde_json::json;

use super::webhook_outbox::environment_of;
use super::{Actor, Store, StoreError, audit};

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
    pub(super) fn columns(&self) -> (&str, &str, &str) {
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

    pub(super) fn digest(&self) -> String {
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
fn url_digest(url: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(url.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// What may be shown of a webhook's URL to those who may not see it whole: its scheme and host,
/// the rest replaced by `…`. A chat service's incoming-webhook URL carries its token in the
/// path, so the path, the query and any user information count as secret.
fn masked_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "…".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}/…")
}

impl Store {
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
    let project = environment_of(tx, env)
        .await?
        .map(|(_, _, project)| project);
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

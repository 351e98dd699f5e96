//! SDK keys: bound to one environment, of kind `server` (may read rules) or `client` (values
//! only). Only the SHA-256 of a key is stored; the key itself is returned once, at creation.
//! Creating and revoking a key are changes edges must see, so each takes the environment's next
//! version with its change row, like a flag write.

use serde_json::json;

use super::changes::{Audited, Change, ChangeKind, NextVersion};
use super::credentials::{self, Credentials, Minted};
use super::{Actor, Store, StoreError, new_id, now_ms};

/// Which clients a key is for: `server` (may read rules) or `client` (values only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Server,
    Client,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "server" => Some(Self::Server),
            "client" => Some(Self::Client),
            _ => None,
        }
    }

    /// The key's visible prefix, so a leaked key's kind is obvious.
    fn tag(self) -> &'static str {
        match self {
            Self::Server => "cg_srv_",
            Self::Client => "cg_cli_",
        }
    }
}

/// An SDK key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkKey {
    pub id: String,
    pub environment_id: String,
    pub environment_name: String,
    pub name: String,
    pub kind: KeyKind,
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A key just created: the key itself, shown this once, and the environment version its
/// creation committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSdkKey {
    pub key: SdkKey,
    /// The full key; only its hash is kept.
    pub secret: String,
    /// The environment's version that carries the key to edges.
    pub version: u64,
}

/// The SDK keys' table. Edges authenticate SDK keys by hash, from the feed; the store only
/// mints and revokes them.
const SDK_KEYS: Credentials = Credentials {
    table: "sdk_keys",
    hash_column: "key_hash",
    used_column: None,
    kind: "sdk_key",
    what: "SDK key",
};

type KeyRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
);

fn sdk_key(
    (id, environment_id, environment_name, name, kind, prefix, created_at, revoked_at): KeyRow,
) -> SdkKey {
    SdkKey {
        id,
        environment_id,
        environment_name,
        name,
        kind: KeyKind::parse(&kind).unwrap_or(KeyKind::Server),
        prefix,
        created_at,
        revoked_at,
    }
}

impl Store {
    /// Creates a key for an environment; returns it with the full key, which is not kept, and
    /// the version committed.
    pub async fn create_sdk_key(
        &self,
        actor: &Actor,
        env: &str,
        name: &str,
        kind: KeyKind,
    ) -> Result<CreatedSdkKey, StoreError> {
        let Minted {
            secret,
            prefix,
            hash,
        } = credentials::mint(kind.tag());
        let id = new_id();
        let now = now_ms();
        let mut tx = self.write().await?;
        let next = NextVersion::take(&mut tx, env).await?;
        let env_name: String = sqlx::query_scalar("SELECT name FROM environments WHERE id = $1")
            .bind(env)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO sdk_keys (id, environment_id, name, kind, key_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&id)
            .bind(env)
            .bind(name)
            .bind(kind.as_str())
            .bind(&hash)
            .bind(&prefix)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let record =
            json!({ "id": id, "kind": kind.as_str(), "hash": hash, "prefix": prefix }).to_string();
        let listed = json!({ "name": name, "kind": kind.as_str(), "prefix": prefix }).to_string();
        let change = Change {
            kind: ChangeKind::SdkKeyUpsert,
            key: &id,
            doc: Some(&record),
        };
        let audited = Audited {
            action: "sdk_key.create",
            target: (SDK_KEYS.kind, &id),
            before: None,
            after: Some(&listed),
        };
        next.record(&mut tx, actor, change, audited).await?;
        let version = next.version;
        self.commit_changes(tx, &[next]).await?;
        let key = SdkKey {
            id,
            environment_id: env.to_owned(),
            environment_name: env_name,
            name: name.to_owned(),
            kind,
            prefix,
            created_at: now,
            revoked_at: None,
        };
        Ok(CreatedSdkKey {
            key,
            secret,
            version,
        })
    }

    /// The keys of a project's environments, newest first.
    pub async fn sdk_keys(&self, project_id: &str) -> Result<Vec<SdkKey>, StoreError> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT k.id, k.environment_id, e.name, k.name, k.kind, k.prefix, k.created_at, k.revoked_at \
             FROM sdk_keys k JOIN environments e ON e.id = k.environment_id WHERE e.project_id = $1 ORDER BY k.created_at DESC, k.id",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(sdk_key).collect())
    }

    /// Revokes a key of the project; edges refuse it once the change reaches them. Returns the
    /// version committed.
    pub async fn revoke_sdk_key(
        &self,
        actor: &Actor,
        project_id: &str,
        id: &str,
    ) -> Result<u64, StoreError> {
        let env: Option<String> = sqlx::query_scalar(
            "SELECT k.environment_id FROM sdk_keys k JOIN environments e ON e.id = k.environment_id \
             WHERE k.id = $1 AND e.project_id = $2 AND k.revoked_at IS NULL",
        )
        .bind(id)
        .bind(project_id)
        .fetch_optional(&self.pool)
        .await?;
        let env = env.ok_or_else(|| StoreError::NotFound(format!("SDK key {id:?}")))?;
        let mut tx = self.write().await?;
        let next = NextVersion::take(&mut tx, &env).await?;
        // Revoked meanwhile by someone else: not found, and dropping `tx` returns the version.
        SDK_KEYS.revoke_row(&mut tx, id, None).await?;
        let change = Change {
            kind: ChangeKind::SdkKeyRevoke,
            key: id,
            doc: None,
        };
        let audited = Audited {
            action: "sdk_key.revoke",
            target: (SDK_KEYS.kind, id),
            before: None,
            after: None,
        };
        next.record(&mut tx, actor, change, audited).await?;
        let version = next.version;
        self.commit_changes(tx, &[next]).await?;
        Ok(version)
    }
}

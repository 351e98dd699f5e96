//! Edge tokens: the credential an edge relay presents when it dials the change feed. A token
//! grants every environment or a listed few; only its SHA-256 is stored, and the token itself
//! is returned once, at creation. Revoking one ends the feeds that use it.

use super::credentials::{self, Credential, Credentials};
use super::{Actor, Store, StoreError, new_id, now_ms};

/// Every edge token starts with this, so a leaked one is recognisable.
pub const EDGE_TOKEN_TAG: &str = "cge_";

/// An edge token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeToken {
    pub id: String,
    pub name: String,
    pub prefix: String,
    /// The environments it grants; `None` grants every environment, present and future.
    pub environments: Option<Vec<String>>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_seen_at: Option<i64>,
}

impl EdgeToken {
    /// Whether the token grants `env`.
    pub fn grants(&self, env: &str) -> bool {
        self.environments
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| e == env))
    }
}

type TokenRow = (
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);

const EDGE_TOKEN_COLUMNS: &str =
    "id, name, prefix, environments, created_at, revoked_at, last_seen_at";

fn token(
    (id, name, prefix, environments, created_at, revoked_at, last_seen_at): TokenRow,
) -> Result<EdgeToken, StoreError> {
    let environments = environments
        .map(|text| serde_json::from_str::<Vec<String>>(&text))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("edge token {id:?}: environments: {e}")))?;
    Ok(EdgeToken {
        id,
        name,
        prefix,
        environments,
        created_at,
        revoked_at,
        last_seen_at,
    })
}

impl Credential for EdgeToken {
    const STORE: Credentials = Credentials {
        table: "edge_tokens",
        hash_column: "token_hash",
        used_column: Some("last_seen_at"),
        kind: "edge_token",
        what: "edge token",
    };
    const COLUMNS: &'static str = EDGE_TOKEN_COLUMNS;
    type Row = TokenRow;

    fn read(row: TokenRow) -> Result<Self, StoreError> {
        token(row)
    }

    fn used(&self) -> (&str, Option<i64>) {
        (&self.id, self.last_seen_at)
    }
}

impl Store {
    /// Creates an edge token; returns it with the full token, which is not kept. Every listed
    /// environment must exist.
    pub async fn create_edge_token(
        &self,
        actor: &Actor,
        name: &str,
        environments: Option<&[String]>,
    ) -> Result<(EdgeToken, String), StoreError> {
        let minted = credentials::mint(EDGE_TOKEN_TAG);
        let record = EdgeToken {
            id: new_id(),
            name: name.to_owned(),
            prefix: minted.prefix,
            environments: environments.map(<[String]>::to_vec),
            created_at: now_ms(),
            revoked_at: None,
            last_seen_at: None,
        };
        let listed = serde_json::json!({ "name": name, "environments": environments }).to_string();
        let mut tx = self.write().await?;
        for env in environments.unwrap_or_default() {
            let found: Option<String> =
                sqlx::query_scalar("SELECT id FROM environments WHERE id = $1")
                    .bind(env)
                    .fetch_optional(&mut *tx)
                    .await?;
            if found.is_none() {
                return Err(StoreError::NotFound(format!("environment {env:?}")));
            }
        }
        sqlx::query(
            "INSERT INTO edge_tokens (id, name, token_hash, prefix, environments, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&record.id)
        .bind(name)
        .bind(&minted.hash)
        .bind(&record.prefix)
        .bind(environments.map(|e| serde_json::to_string(e).unwrap_or_else(|_| "[]".into())))
        .bind(record.created_at)
        .execute(&mut *tx)
        .await?;
        EdgeToken::STORE
            .audit(&mut tx, actor, None, &record.id, Some(&listed))
            .await?;
        tx.commit().await?;
        Ok((record, minted.secret))
    }

    /// Every edge token, revoked ones included, newest first.
    pub async fn edge_tokens(&self) -> Result<Vec<EdgeToken>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "SELECT {EDGE_TOKEN_COLUMNS} FROM edge_tokens ORDER BY created_at DESC, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(token).collect()
    }

    /// The live token with this hash, noting that it was seen.
    pub async fn authenticate_edge_token(
        &self,
        hash: &str,
    ) -> Result<Option<EdgeToken>, StoreError> {
        self.authenticate(hash).await
    }

    /// Whether the token is still live (not revoked, not deleted).
    pub async fn edge_token_live(&self, id: &str) -> Result<bool, StoreError> {
        let row: Option<String> =
            sqlx::query_scalar("SELECT id FROM edge_tokens WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// Revokes a token; the feeds that use it are closed when their next check finds it.
    pub async fn revoke_edge_token(&self, actor: &Actor, id: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        EdgeToken::STORE.revoke(&mut tx, actor, id, None).await?;
        tx.commit().await?;
        Ok(())
    }
}

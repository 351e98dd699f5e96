//! API tokens: credentials for automation (CI jobs, scripts, Terraform), each bound to one
//! project with one role there. Only the SHA-256 of a token is stored; the token itself is
//! returned once, at creation. A token is never an SDK key, and an SDK key is never a token:
//! they have different prefixes and live in different tables.

use serde_json::json;

use super::credentials::{self, Credential, Credentials};
use super::members::Role;
use super::{Actor, Store, StoreError, new_id, now_ms};

/// Every API token starts with this, so a leaked one is recognisable (and scanners can match it).
pub const TOKEN_TAG: &str = "cgt_";

/// An API token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub role: Role,
    /// The first characters of the token, to recognise it in a list.
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

type TokenRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

const TOKEN_COLUMNS: &str =
    "id, project_id, name, role, prefix, created_at, last_used_at, revoked_at";

fn token(
    (id, project_id, name, role, prefix, created_at, last_used_at, revoked_at): TokenRow,
) -> Result<ApiToken, StoreError> {
    let role = Role::parse(&role)
        .ok_or_else(|| StoreError::Corrupt(format!("API token {id:?} has role {role:?}")))?;
    Ok(ApiToken {
        id,
        project_id,
        name,
        role,
        prefix,
        created_at,
        last_used_at,
        revoked_at,
    })
}

impl Credential for ApiToken {
    const STORE: Credentials = Credentials {
        table: "api_tokens",
        hash_column: "token_hash",
        used_column: Some("last_used_at"),
        kind: "api_token",
        what: "API token",
    };
    const COLUMNS: &'static str = TOKEN_COLUMNS;
    type Row = TokenRow;

    fn read(row: TokenRow) -> Result<Self, StoreError> {
        token(row)
    }

    fn used(&self) -> (&str, Option<i64>) {
        (&self.id, self.last_used_at)
    }
}

impl Store {
    /// Creates a token for a project; returns it with the full token, which is not kept.
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        project_id: &str,
        name: &str,
        role: Role,
    ) -> Result<(ApiToken, String), StoreError> {
        let minted = credentials::mint(TOKEN_TAG);
        let record = ApiToken {
            id: new_id(),
            project_id: project_id.to_owned(),
            name: name.to_owned(),
            role,
            prefix: minted.prefix,
            created_at: now_ms(),
            last_used_at: None,
            revoked_at: None,
        };
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, project_id, name, role, token_hash, prefix, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&record.id)
        .bind(project_id)
        .bind(name)
        .bind(role.as_str())
        .bind(&minted.hash)
        .bind(&record.prefix)
        .bind(record.created_at)
        .execute(&mut *tx)
        .await?;
        let listed =
            json!({ "name": name, "role": role.as_str(), "prefix": record.prefix }).to_string();
        ApiToken::STORE
            .audit(&mut tx, actor, Some(project_id), &record.id, Some(&listed))
            .await?;
        tx.commit().await?;
        Ok((record, minted.secret))
    }

    /// The project's tokens, revoked ones included, newest first.
    pub async fn api_tokens(&self, project_id: &str) -> Result<Vec<ApiToken>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE project_id = $1 ORDER BY created_at DESC, id"
        ))
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(token).collect()
    }

    /// The live (unrevoked) token whose hash is `hash`, noting that it was used.
    pub async fn authenticate_api_token(&self, hash: &str) -> Result<Option<ApiToken>, StoreError> {
        self.authenticate(hash).await
    }

    /// Revokes a token of the project: it stops working at once, on every instance (each
    /// request reads the store).
    pub async fn revoke_api_token(
        &self,
        actor: &Actor,
        project_id: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        ApiToken::STORE
            .revoke(&mut tx, actor, id, Some(project_id))
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

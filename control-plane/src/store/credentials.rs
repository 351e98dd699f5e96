//! What the three credential stores share — SDK keys (`keys.rs`), API tokens (`tokens.rs`) and
//! edge tokens (`edge_tokens.rs`): a secret minted behind its kind's visible tag, of which only
//! the SHA-256 is kept; authentication by that hash, noting when a credential was last used
//! (at most once a minute, so reads do not become writes); revocation, audited. Each store
//! keeps its own table, tag, columns and rules; [`Credentials`] names them.

use sqlx::any::AnyRow;

use super::{Actor, Store, StoreError, audit, now_ms};

/// How often, at most, a credential's last-used time is written.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// SHA-256 of a key, hex: what the store and the edges keep.
pub fn key_hash(key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new secret: shown once, at creation, and never kept — nor printed: its `Debug` shows
/// the prefix only.
pub(super) struct Minted {
    pub(super) secret: String,
    /// The tag and the first characters after it, to recognise the credential in a list.
    pub(super) prefix: String,
    /// What is stored instead of the secret.
    pub(super) hash: String,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Mints a secret that starts with `tag`, so a leaked one is recognisable (and scanners can
/// match it): two random (v4) UUIDs after it, 244 random bits.
pub(super) fn mint(tag: &str) -> Minted {
    let secret = format!(
        "{tag}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let prefix = secret.chars().take(tag.len() + 6).collect();
    let hash = key_hash(&secret);
    Minted {
        secret,
        prefix,
        hash,
    }
}

/// One credential table and its names.
#[derive(Debug)]
pub(super) struct Credentials {
    pub(super) table: &'static str,
    /// The column that holds the hash.
    pub(super) hash_column: &'static str,
    /// The column that notes when it was last used, for those that note it.
    pub(super) used_column: Option<&'static str>,
    /// The audit rows' target kind (`api_token`, …); its actions are `<kind>.create` and
    /// `<kind>.revoke`.
    pub(super) kind: &'static str,
    /// What one is called in messages.
    pub(super) what: &'static str,
}

/// A credential as its store lists it, read from its table's row.
pub(super) trait Credential: Sized {
    const STORE: Credentials;
    /// The columns a row is read with.
    const COLUMNS: &'static str;
    type Row: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin;

    fn read(row: Self::Row) -> Result<Self, StoreError>;
    /// Its id, and when it was last used.
    fn used(&self) -> (&str, Option<i64>);
}

impl Credentials {
    /// Appends the audit row of creating (`after`: what the list shows) or revoking one.
    pub(super) async fn audit(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        actor: &Actor,
        project: Option<&str>,
        id: &str,
        after: Option<&str>,
    ) -> Result<(), StoreError> {
        let verb = if after.is_some() { "create" } else { "revoke" };
        let action = format!("{}.{verb}", self.kind);
        audit(
            tx,
            actor,
            project,
            None,
            &action,
            (self.kind, id),
            None,
            after,
        )
        .await
    }

    /// Marks a live credential revoked, inside the caller's transaction; with `scope`
    /// (`(column, value)`), only one whose column holds the value. Not found when there is no
    /// such live credential (it may have been revoked meanwhile).
    pub(super) async fn revoke_row(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: &str,
        scope: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        let scoped = scope.map_or(String::new(), |(column, _)| format!(" AND {column} = $3"));
        let sql = format!(
            "UPDATE {} SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL{scoped}",
            self.table
        );
        let mut query = sqlx::query(&sql).bind(id).bind(now_ms());
        if let Some((_, value)) = scope {
            query = query.bind(value);
        }
        let done = query.execute(&mut **tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("{} {id:?}", self.what)));
        }
        Ok(())
    }

    /// [`Self::revoke_row`] and its audit row.
    pub(super) async fn revoke(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        actor: &Actor,
        id: &str,
        project: Option<&str>,
    ) -> Result<(), StoreError> {
        self.revoke_row(tx, id, project.map(|p| ("project_id", p)))
            .await?;
        self.audit(tx, actor, project, id, None).await
    }
}

impl Store {
    /// The live (unrevoked) credential whose hash is `hash`, noting that it was used.
    pub(super) async fn authenticate<C: Credential>(
        &self,
        hash: &str,
    ) -> Result<Option<C>, StoreError> {
        let store = &C::STORE;
        let row: Option<C::Row> = sqlx::query_as(&format!(
            "SELECT {} FROM {} WHERE {} = $1 AND revoked_at IS NULL",
            C::COLUMNS,
            store.table,
            store.hash_column
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(found) = row.map(C::read).transpose()? else {
            return Ok(None);
        };
        let now = now_ms();
        let (id, last_used) = found.used();
        if let Some(column) = store.used_column
            && last_used.is_none_or(|at| now - at >= LAST_USED_RESOLUTION_MS)
        {
            let sql = format!("UPDATE {} SET {column} = $2 WHERE id = $1", store.table);
            sqlx::query(&sql)
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_secret_is_tagged_hashed_and_never_printed() {
        let minted = mint("cgt_");
        assert!(minted.secret.starts_with("cgt_"));
        assert_eq!(minted.secret.len(), 4 + 64);
        assert!(minted.secret.starts_with(&minted.prefix));
        assert_eq!(minted.hash, key_hash(&minted.secret));
        let printed = format!("{minted:?}");
        assert!(
            !printed.contains(&minted.secret[minted.prefix.len()..]),
            "{printed}"
        );
        assert!(!printed.contains(&minted.hash), "{printed}");
    }
}

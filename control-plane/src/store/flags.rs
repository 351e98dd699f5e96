//! Flags: every write takes the environment's next version, and writes the flag, its change row
//! and its audit row in the same transaction. Conditional writes (`expected` version) that lose
//! a race change nothing.

use checkgate_core::{CompiledFlag, FlagDoc};

use super::automata::{Automaton, Table};
use super::{Actor, Store, StoreError, audit, now_ms};

/// A flag as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFlag {
    pub environment_id: String,
    pub key: String,
    /// The environment version at which this flag last changed.
    pub version: u64,
    pub doc: FlagDoc,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One row of the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    pub environment_id: String,
    pub version: u64,
    /// `flag_upsert`, `flag_delete`, …
    pub kind: String,
    pub key: String,
    pub doc: Option<String>,
    pub at: i64,
}

type FlagRow = (String, String, i64, String, i64, i64);

fn stored(
    (environment_id, key, version, doc, created_at, updated_at): FlagRow,
) -> Result<StoredFlag, StoreError> {
    let doc = serde_json::from_str(&doc)
        .map_err(|e| StoreError::Corrupt(format!("flag {key:?}: {e}")))?;
    Ok(StoredFlag {
        environment_id,
        key,
        version: version.max(0) as u64,
        doc,
        created_at,
        updated_at,
    })
}

/// Takes the environment's next version. Must be the transaction's first write: on PostgreSQL
/// it locks the environment's row until commit, on SQLite it takes the write lock.
pub(super) async fn next_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    env: &str,
) -> Result<(u64, String), StoreError> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "UPDATE environments SET version = version + 1 WHERE id = $1 RETURNING version, project_id",
    )
    .bind(env)
    .fetch_optional(&mut **tx)
    .await?;
    let (version, project) =
        row.ok_or_else(|| StoreError::NotFound(format!("environment {env:?}")))?;
    Ok((version.max(0) as u64, project))
}

pub(super) async fn append_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    env: &str,
    version: u64,
    kind: &str,
    key: &str,
    doc: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO changes (environment_id, version, kind, key, doc, at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(env)
        .bind(version as i64)
        .bind(kind)
        .bind(key)
        .bind(doc)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const FLAG_COLUMNS: &str = "environment_id, key, version, doc, created_at, updated_at";

impl Store {
    /// Creates or replaces a flag. With `expected`, the write happens only if the flag exists
    /// at that version (`If-Match`). Returns the stored flag and whether it was created. The
    /// environment's automaton cap is not checked: the API writes with
    /// [`Store::put_flag_within`].
    pub async fn put_flag(
        &self,
        actor: &Actor,
        env: &str,
        doc: &FlagDoc,
        expected: Option<u64>,
    ) -> Result<(StoredFlag, bool), StoreError> {
        let json = serde_json::to_string(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let automaton = Automaton {
            bytes: Table::Flags.measure(&json),
            cap: None,
        };
        self.put_flag_json(actor, env, doc, &json, expected, automaton)
            .await
    }

    /// [`Store::put_flag`] for a compiled flag, refused with [`StoreError::AutomatonCap`] when
    /// its regexes would take the environment's automata (all its flags and segments) past
    /// `cap` bytes.
    pub async fn put_flag_within(
        &self,
        actor: &Actor,
        env: &str,
        flag: &CompiledFlag,
        expected: Option<u64>,
        cap: u64,
    ) -> Result<(StoredFlag, bool), StoreError> {
        let doc = flag.doc();
        let json = serde_json::to_string(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let automaton = Automaton {
            bytes: flag.automaton_bytes() as u64,
            cap: Some(cap),
        };
        self.put_flag_json(actor, env, doc, &json, expected, automaton)
            .await
    }

    async fn put_flag_json(
        &self,
        actor: &Actor,
        env: &str,
        doc: &FlagDoc,
        json: &str,
        expected: Option<u64>,
        automaton: Automaton,
    ) -> Result<(StoredFlag, bool), StoreError> {
        let mut tx = self.write().await?;
        let (flag, created) =
            write_flag(&mut tx, actor, env, doc, json, expected, automaton).await?;
        tx.commit().await?;
        self.committed(env, flag.version);
        Ok((flag, created))
    }

    /// Writes many flags in one transaction, each with its own version, change row and audit
    /// row, as if written one after another — an import, at the cost of one commit. Either
    /// every flag is written or none. Returns the last version.
    pub async fn put_flags(
        &self,
        actor: &Actor,
        env: &str,
        docs: &[FlagDoc],
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let mut last = 0;
        for doc in docs {
            let json =
                serde_json::to_string(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let automaton = Automaton {
                bytes: Table::Flags.measure(&json),
                cap: None,
            };
            last = write_flag(&mut tx, actor, env, doc, &json, None, automaton)
                .await?
                .0
                .version;
        }
        tx.commit().await?;
        if last > 0 {
            self.committed(env, last);
        }
        Ok(last)
    }

    /// Deletes a flag; with `expected`, only if it is at that version.
    pub async fn delete_flag(
        &self,
        actor: &Actor,
        env: &str,
        key: &str,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let (version, project) = next_version(&mut tx, env).await?;
        let before: Option<(i64, String)> =
            sqlx::query_as("SELECT version, doc FROM flags WHERE environment_id = $1 AND key = $2")
                .bind(env)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((current, before_doc)) = before else {
            return Err(StoreError::NotFound(format!("flag {key:?}")));
        };
        if let Some(expected) = expected
            && current.max(0) as u64 != expected
        {
            return Err(StoreError::VersionMismatch {
                what: format!("flag {key:?}"),
                expected,
                current: current.max(0) as u64,
            });
        }
        sqlx::query("DELETE FROM flags WHERE environment_id = $1 AND key = $2")
            .bind(env)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        append_change(&mut tx, env, version, "flag_delete", key, None).await?;
        audit(
            &mut tx,
            actor,
            Some(&project),
            Some(env),
            "flag.delete",
            ("flag", key),
            Some(&before_doc),
            None,
        )
        .await?;
        tx.commit().await?;
        self.committed(env, version);
        Ok(version)
    }

    pub async fn flag(&self, env: &str, key: &str) -> Result<StoredFlag, StoreError> {
        let row: Option<FlagRow> = sqlx::query_as(&format!(
            "SELECT {FLAG_COLUMNS} FROM flags WHERE environment_id = $1 AND key = $2"
        ))
        .bind(env)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        stored(row.ok_or_else(|| StoreError::NotFound(format!("flag {key:?}")))?)
    }

    /// The environment's flags by key, paginated.
    pub async fn flags(
        &self,
        env: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<StoredFlag>, StoreError> {
        let rows: Vec<FlagRow> =
            sqlx::query_as(&format!("SELECT {FLAG_COLUMNS} FROM flags WHERE environment_id = $1 ORDER BY key LIMIT $2 OFFSET $3"))
                .bind(env)
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(stored).collect()
    }

    /// The environment's flags by key as stored: `(version, updated_at in ms, canonical JSON)`, paginated. For
    /// answers that pass documents through unchanged, without parsing them.
    pub async fn flags_raw(
        &self,
        env: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<(u64, i64, String)>, StoreError> {
        let rows: Vec<(i64, i64, String)> =
            sqlx::query_as("SELECT version, updated_at, doc FROM flags WHERE environment_id = $1 ORDER BY key LIMIT $2 OFFSET $3")
                .bind(env)
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(v, at, doc)| (v.max(0) as u64, at, doc))
            .collect())
    }

    /// The feed of an environment after `after`, in version order, at most `limit` rows.
    pub async fn changes_since(
        &self,
        env: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        let rows: Vec<(String, i64, String, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT environment_id, version, kind, key, doc, at FROM changes \
             WHERE environment_id = $1 AND version > $2 ORDER BY version LIMIT $3",
        )
        .bind(env)
        .bind(after as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(environment_id, version, kind, key, doc, at)| ChangeRow {
                environment_id,
                version: version.max(0) as u64,
                kind,
                key,
                doc,
                at,
            })
            .collect())
    }

    /// Audit rows of an environment, newest first: `(action, target key, before, after)`.
    pub async fn audit_for_environment(
        &self,
        env: &str,
        limit: u32,
    ) -> Result<Vec<(String, String, Option<String>, Option<String>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT action, target_key, before_doc, after_doc FROM audit_log WHERE environment_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(env)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}

/// One flag write inside the caller's transaction: the environment's next version, the flag,
/// its change row and its audit row. With `expected`, only if the flag is at that version;
/// with a cap, only if the environment's automata stay under it.
async fn write_flag(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    actor: &Actor,
    env: &str,
    doc: &FlagDoc,
    json: &str,
    expected: Option<u64>,
    automaton: Automaton,
) -> Result<(StoredFlag, bool), StoreError> {
    let (version, project) = next_version(tx, env).await?;
    let before: Option<(i64, String, i64)> = sqlx::query_as(
        "SELECT version, doc, created_at FROM flags WHERE environment_id = $1 AND key = $2",
    )
    .bind(env)
    .bind(&doc.key)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(expected) = expected {
        let current = before
            .as_ref()
            .map_or(0, |(v, _, _)| v.max(&0).unsigned_abs());
        if before.is_none() || current != expected {
            // Dropping `tx` rolls back, the version bump included: no gap.
            return Err(StoreError::VersionMismatch {
                what: format!("flag {:?}", doc.key),
                expected,
                current,
            });
        }
    }
    automaton.check(tx, env, Table::Flags, &doc.key).await?;
    let now = now_ms();
    let created_at = before.as_ref().map_or(now, |(_, _, c)| *c);
    sqlx::query(
        "INSERT INTO flags (environment_id, key, version, doc, created_at, updated_at, automaton_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (environment_id, key) DO UPDATE SET version = $3, doc = $4, updated_at = $6, automaton_bytes = $7",
    )
    .bind(env)
    .bind(&doc.key)
    .bind(version as i64)
    .bind(json)
    .bind(created_at)
    .bind(now)
    .bind(automaton.bytes as i64)
    .execute(&mut **tx)
    .await?;
    append_change(tx, env, version, "flag_upsert", &doc.key, Some(json)).await?;
    let (action, before_doc) = match &before {
        Some((_, d, _)) => ("flag.update", Some(d.as_str())),
        None => ("flag.create", None),
    };
    audit(
        tx,
        actor,
        Some(&project),
        Some(env),
        action,
        ("flag", &doc.key),
        before_doc,
        Some(json),
    )
    .await?;
    let flag = StoredFlag {
        environment_id: env.to_owned(),
        key: doc.key.clone(),
        version,
        doc: doc.clone(),
        created_at,
        updated_at: now,
    };
    Ok((flag, before.is_none()))
}

//! Segments of an environment. Like flags, every write takes the environment's next version and
//! writes the segment, its change row and its audit row in one transaction.

use checkgate_core::{CompiledSegment, SegmentDoc};

use super::automata::{Automaton, Table};
use super::flags::{append_change, next_version};
use super::{ABSENT, Actor, Store, StoreError, audit, now_ms};

/// A segment as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSegment {
    pub key: String,
    pub version: u64,
    pub doc: SegmentDoc,
}

fn stored(key: String, version: i64, doc: &str) -> Result<StoredSegment, StoreError> {
    let doc = serde_json::from_str(doc)
        .map_err(|e| StoreError::Corrupt(format!("segment {key:?}: {e}")))?;
    Ok(StoredSegment {
        key,
        version: version.max(0) as u64,
        doc,
    })
}

impl Store {
    /// Creates or replaces a segment; with `expected`, only if it exists at that version (or,
    /// with [`ABSENT`], only if it does not exist yet: [`StoreError::Conflict`] otherwise). The
    /// environment's automaton cap is not checked: the API writes with
    /// [`Store::put_segment_within`].
    pub async fn put_segment(
        &self,
        actor: &Actor,
        env: &str,
        doc: &SegmentDoc,
        expected: Option<u64>,
    ) -> Result<(StoredSegment, bool), StoreError> {
        let json = serde_json::to_string(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let automaton = Automaton {
            bytes: Table::Segments.measure(&json),
            cap: None,
        };
        self.write_segment(actor, env, doc, &json, expected, automaton)
            .await
    }

    /// [`Store::put_segment`] for a compiled segment, refused with
    /// [`StoreError::AutomatonCap`] when its regexes would take the environment's automata
    /// (all its flags and segments) past `cap` bytes.
    pub async fn put_segment_within(
        &self,
        actor: &Actor,
        env: &str,
        segment: &CompiledSegment,
        expected: Option<u64>,
        cap: u64,
    ) -> Result<(StoredSegment, bool), StoreError> {
        let doc = segment.doc();
        let json = serde_json::to_string(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let automaton = Automaton {
            bytes: segment.automaton_bytes() as u64,
            cap: Some(cap),
        };
        self.write_segment(actor, env, doc, &json, expected, automaton)
            .await
    }

    async fn write_segment(
        &self,
        actor: &Actor,
        env: &str,
        doc: &SegmentDoc,
        json: &str,
        expected: Option<u64>,
        automaton: Automaton,
    ) -> Result<(StoredSegment, bool), StoreError> {
        let mut tx = self.write().await?;
        let (version, project) = next_version(&mut tx, env).await?;
        let before: Option<(i64, String)> = sqlx::query_as(
            "SELECT version, doc FROM segments WHERE environment_id = $1 AND key = $2",
        )
        .bind(env)
        .bind(&doc.key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(expected) = expected {
            let current = before.as_ref().map_or(0, |(v, _)| v.max(&0).unsigned_abs());
            if expected == ABSENT && before.is_some() {
                return Err(StoreError::Conflict(format!("segment {:?}", doc.key)));
            }
            if (before.is_none() && expected != ABSENT) || current != expected {
                return Err(StoreError::VersionMismatch {
                    what: format!("segment {:?}", doc.key),
                    expected,
                    current,
                });
            }
        }
        automaton
            .check(&mut tx, env, Table::Segments, &doc.key)
            .await?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO segments (environment_id, key, version, doc, created_at, updated_at, automaton_bytes) VALUES ($1, $2, $3, $4, $5, $5, $6) \
             ON CONFLICT (environment_id, key) DO UPDATE SET version = $3, doc = $4, updated_at = $5, automaton_bytes = $6",
        )
        .bind(env)
        .bind(&doc.key)
        .bind(version as i64)
        .bind(json)
        .bind(now)
        .bind(automaton.bytes as i64)
        .execute(&mut *tx)
        .await?;
        append_change(
            &mut tx,
            env,
            version,
            "segment_upsert",
            &doc.key,
            Some(json),
        )
        .await?;
        let action = if before.is_some() {
            "segment.update"
        } else {
            "segment.create"
        };
        audit(
            &mut tx,
            actor,
            Some(&project),
            Some(env),
            action,
            ("segment", &doc.key),
            before.as_ref().map(|(_, d)| d.as_str()),
            Some(json),
        )
        .await?;
        tx.commit().await?;
        self.committed(env, version);
        Ok((
            StoredSegment {
                key: doc.key.clone(),
                version,
                doc: doc.clone(),
            },
            before.is_none(),
        ))
    }

    /// Deletes a segment that no flag of the environment refers to.
    pub async fn delete_segment(
        &self,
        actor: &Actor,
        env: &str,
        key: &str,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let (version, project) = next_version(&mut tx, env).await?;
        let before: Option<(i64, String)> = sqlx::query_as(
            "SELECT version, doc FROM segments WHERE environment_id = $1 AND key = $2",
        )
        .bind(env)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((current, before)) = before else {
            return Err(StoreError::NotFound(format!("segment {key:?}")));
        };
        if let Some(expected) = expected
            && current.max(0) as u64 != expected
        {
            return Err(StoreError::VersionMismatch {
                what: format!("segment {key:?}"),
                expected,
                current: current.max(0) as u64,
            });
        }
        // Under the environment's lock, so no flag can start using it meanwhile.
        let docs: Vec<(String, String)> =
            sqlx::query_as("SELECT key, doc FROM flags WHERE environment_id = $1")
                .bind(env)
                .fetch_all(&mut *tx)
                .await?;
        let users: Vec<String> = docs
            .into_iter()
            .filter(|(_, doc)| {
                serde_json::from_str::<checkgate_core::FlagDoc>(doc)
                    .ok()
                    .and_then(|d| checkgate_core::compile_flag(d).ok())
                    .is_some_and(|f| f.segment_keys().any(|s| s == key))
            })
            .map(|(k, _)| k)
            .collect();
        if !users.is_empty() {
            return Err(StoreError::Refused(format!(
                "segment {key:?} is used by flags {users:?}; change them first"
            )));
        }
        sqlx::query("DELETE FROM segments WHERE environment_id = $1 AND key = $2")
            .bind(env)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        append_change(&mut tx, env, version, "segment_delete", key, None).await?;
        audit(
            &mut tx,
            actor,
            Some(&project),
            Some(env),
            "segment.delete",
            ("segment", key),
            Some(&before),
            None,
        )
        .await?;
        tx.commit().await?;
        self.committed(env, version);
        Ok(version)
    }

    pub async fn segment(&self, env: &str, key: &str) -> Result<StoredSegment, StoreError> {
        let row: Option<(String, i64, String)> = sqlx::query_as(
            "SELECT key, version, doc FROM segments WHERE environment_id = $1 AND key = $2",
        )
        .bind(env)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let (key, version, doc) =
            row.ok_or_else(|| StoreError::NotFound(format!("segment {key:?}")))?;
        stored(key, version, &doc)
    }

    /// The environment's segments by key.
    pub async fn segments(&self, env: &str) -> Result<Vec<StoredSegment>, StoreError> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT key, version, doc FROM segments WHERE environment_id = $1 ORDER BY key",
        )
        .bind(env)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|(k, v, d)| stored(k, v, &d)).collect()
    }
}

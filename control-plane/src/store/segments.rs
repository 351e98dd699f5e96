//! Segments of an environment. Like flags, every write takes the environment's next version and
//! writes the segment, its change row and its audit row in one transaction (the path they
//! share: `items.rs`).

use checkgate_core::{CompiledSegment, SegmentDoc};

use super::items::{Expected, Payload, Table, Written};
use super::{ABSENT, Actor, Store, StoreError};

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

/// A segment write's expectation: [`ABSENT`] means "create only".
fn expected(version: Option<u64>) -> Expected {
    match version {
        Some(ABSENT) => Expected::Absent,
        other => Expected::at(other),
    }
}

fn written(doc: &SegmentDoc, written: Written) -> (StoredSegment, bool) {
    let segment = StoredSegment {
        key: doc.key.clone(),
        version: written.next.version,
        doc: doc.clone(),
    };
    (segment, written.created)
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
        expected_version: Option<u64>,
    ) -> Result<(StoredSegment, bool), StoreError> {
        let payload = Payload::unchecked(Table::Segments, doc)?;
        let expected = expected(expected_version);
        let done = self
            .put_item(Table::Segments, actor, env, &doc.key, &payload, expected)
            .await?;
        Ok(written(doc, done))
    }

    /// [`Store::put_segment`] for a compiled segment, refused with
    /// [`StoreError::AutomatonCap`] when its regexes would take the environment's automata
    /// (all its flags and segments) past `cap` bytes.
    pub async fn put_segment_within(
        &self,
        actor: &Actor,
        env: &str,
        segment: &CompiledSegment,
        expected_version: Option<u64>,
        cap: u64,
    ) -> Result<(StoredSegment, bool), StoreError> {
        let doc = segment.doc();
        let payload = Payload::within(doc, segment.automaton_bytes(), cap)?;
        let expected = expected(expected_version);
        let done = self
            .put_item(Table::Segments, actor, env, &doc.key, &payload, expected)
            .await?;
        Ok(written(doc, done))
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
        let deletion = Table::Segments
            .begin_delete(&mut tx, env, key, Expected::at(expected))
            .await?;
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
        let next = deletion.finish(&mut tx, actor).await?;
        self.commit_changes(tx, std::slice::from_ref(&next)).await?;
        Ok(next.version)
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

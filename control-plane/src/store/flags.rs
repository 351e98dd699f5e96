//! Flags: every write takes the environment's next version, and writes the flag, its change row
//! and its audit row in the same transaction (the path it shares with segments: `items.rs`).
//! Conditional writes (`expected` version) that lose a race change nothing.

use checkgate_core::{CompiledFlag, FlagDoc};

use super::items::{Expected, Payload, Table, Written};
use super::{Actor, Store, StoreError};

/// The audit action of a flag copied from another environment of its project.
pub(super) const PROMOTE: &str = "flag.promote";

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

fn written(doc: &FlagDoc, written: Written) -> (StoredFlag, bool) {
    let flag = StoredFlag {
        environment_id: written.next.environment_id,
        key: doc.key.clone(),
        version: written.next.version,
        doc: doc.clone(),
        created_at: written.created_at,
        updated_at: written.updated_at,
    };
    (flag, written.created)
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
        let payload = Payload::unchecked(Table::Flags, doc)?;
        self.put_flag_payload(actor, env, doc, &payload, expected)
            .await
    }

    /// [`Store::put_flag`] for a compiled flag, refused with [`StoreError::AutomatonCap`] when
    /// its regexes would take the environment's automata (all its flags and segments) past
    /// `cap` bytes, and with [`StoreError::MissingSegment`] when a segment it refers to does not exist.
    pub async fn put_flag_within(
        &self,
        actor: &Actor,
        env: &str,
        flag: &CompiledFlag,
        expected: Option<u64>,
        cap: u64,
    ) -> Result<(StoredFlag, bool), StoreError> {
        let doc = flag.doc();
        let payload =
            Payload::within(doc, flag.automaton_bytes(), cap)?.referring_to(flag.segment_keys());
        self.put_flag_payload(actor, env, doc, &payload, expected)
            .await
    }

    /// Writes `flag`, copied from another environment, into `env`: an ordinary versioned
    /// write whose audit row (and so its webhook event, `flag.promoted`) says `flag.promote`.
    pub async fn promote_flag(
        &self,
        actor: &Actor,
        env: &str,
        flag: &CompiledFlag,
        cap: u64,
    ) -> Result<(StoredFlag, bool), StoreError> {
        let doc = flag.doc();
        let payload =
            Payload::within(doc, flag.automaton_bytes(), cap)?.referring_to(flag.segment_keys());
        let mut tx = self.write().await?;
        let done = Table::Flags
            .put_audited_as(
                &mut tx,
                actor,
                env,
                &doc.key,
                &payload,
                Expected::Any,
                Some(PROMOTE),
            )
            .await?;
        self.commit_changes(tx, std::slice::from_ref(&done.next))
            .await?;
        Ok(written(doc, done))
    }

    async fn put_flag_payload(
        &self,
        actor: &Actor,
        env: &str,
        doc: &FlagDoc,
        payload: &Payload,
        expected: Option<u64>,
    ) -> Result<(StoredFlag, bool), StoreError> {
        let expected = Expected::at(expected);
        let done = self
            .put_item(Table::Flags, actor, env, &doc.key, payload, expected)
            .await?;
        Ok(written(doc, done))
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
        let mut last = None;
        for doc in docs {
            let payload = Payload::unchecked(Table::Flags, doc)?;
            let done = Table::Flags
                .put(&mut tx, actor, env, &doc.key, &payload, Expected::Any)
                .await?;
            last = Some(done.next);
        }
        self.commit_changes(tx, last.as_slice()).await?;
        Ok(last.map_or(0, |next| next.version))
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
        let deletion = Table::Flags
            .begin_delete(&mut tx, env, key, Expected::at(expected))
            .await?;
        let next = deletion.finish(&mut tx, actor).await?;
        self.commit_changes(tx, std::slice::from_ref(&next)).await?;
        Ok(next.version)
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
}

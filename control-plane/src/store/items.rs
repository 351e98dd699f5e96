//! Flags and segments: the two kinds of versioned document an environment holds. Their tables
//! have the same columns (`environment_id, key, version, doc, created_at, updated_at,
//! automaton_bytes`) and their writes the same steps, so one path writes both: the
//! environment's next version, the conditional check against the item's current version, the
//! automaton cap, the row, then its change row and audit row (`changes.rs`). What differs — the
//! names, the change kinds, a segment's refusal while flags use it — is the caller's.

use serde::Serialize;

use super::automata::Automaton;
use super::changes::{Audited, Change, ChangeKind, NextVersion};
use super::{Actor, Store, StoreError, now_ms};

/// The two tables of versioned documents (whose rows also hold automata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Table {
    Flags,
    Segments,
}

impl Table {
    /// The table's name in SQL.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Flags => "flags",
            Self::Segments => "segments",
        }
    }

    /// What one row is: in messages and as the audit row's target kind.
    fn noun(self) -> &'static str {
        match self {
            Self::Flags => "flag",
            Self::Segments => "segment",
        }
    }

    fn upserted(self) -> ChangeKind {
        match self {
            Self::Flags => ChangeKind::FlagUpsert,
            Self::Segments => ChangeKind::SegmentUpsert,
        }
    }

    fn deleted(self) -> ChangeKind {
        match self {
            Self::Flags => ChangeKind::FlagDelete,
            Self::Segments => ChangeKind::SegmentDelete,
        }
    }

    /// The audit actions: (create, update, delete).
    fn actions(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Flags => ("flag.create", "flag.update", "flag.delete"),
            Self::Segments => ("segment.create", "segment.update", "segment.delete"),
        }
    }

    fn what(self, key: &str) -> String {
        format!("{} {key:?}", self.noun())
    }
}

/// What a conditional write expects of the item it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expected {
    /// Nothing: write whatever is there.
    Any,
    /// That there is no such item yet ([`StoreError::Conflict`] otherwise).
    Absent,
    /// That the item exists at this version ([`StoreError::VersionMismatch`] otherwise).
    At(u64),
}

impl Expected {
    /// `If-Match`: a version, or nothing.
    pub(super) fn at(version: Option<u64>) -> Self {
        version.map_or(Self::Any, Self::At)
    }

    fn check(self, table: Table, key: &str, current: Option<u64>) -> Result<(), StoreError> {
        match (self, current) {
            (Self::Any, _) | (Self::Absent, None) => Ok(()),
            (Self::Absent, Some(_)) => Err(StoreError::Conflict(table.what(key))),
            (Self::At(expected), current) if current != Some(expected) => {
                Err(StoreError::VersionMismatch {
                    what: table.what(key),
                    expected,
                    current: current.unwrap_or(0),
                })
            }
            (Self::At(_), _) => Ok(()),
        }
    }
}

/// A document to write: its JSON, the automaton it brings, and the segments it refers to.
#[derive(Debug, Clone)]
pub(super) struct Payload {
    json: String,
    automaton: Automaton,
    /// Checked to exist under the environment's lock, so a segment deleted after the caller
    /// looked cannot leave a rule naming nothing.
    segments: Vec<String>,
}

fn to_json(doc: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(doc).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Payload {
    /// A document written without the environment's cap (imports, tests): its automaton is
    /// measured from its JSON.
    pub(super) fn unchecked(table: Table, doc: &impl Serialize) -> Result<Self, StoreError> {
        let json = to_json(doc)?;
        let bytes = table.measure(&json);
        Ok(Self {
            json,
            automaton: Automaton { bytes, cap: None },
            segments: Vec::new(),
        })
    }

    /// A compiled document, refused when its `bytes` of automaton would take the
    /// environment's total past `cap`.
    pub(super) fn within(doc: &impl Serialize, bytes: usize, cap: u64) -> Result<Self, StoreError> {
        Ok(Self {
            json: to_json(doc)?,
            automaton: Automaton {
                bytes: bytes as u64,
                cap: Some(cap),
            },
            segments: Vec::new(),
        })
    }

    /// The same, refused unless each of `segments` exists when it is written.
    pub(super) fn referring_to<'a>(mut self, segments: impl Iterator<Item = &'a str>) -> Self {
        self.segments = segments.map(str::to_owned).collect();
        self.segments.sort_unstable();
        self.segments.dedup();
        self
    }

    /// Refuses the write when a segment it refers to is gone (inside the write transaction).
    async fn check_segments(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        env: &str,
    ) -> Result<(), StoreError> {
        for segment in &self.segments {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM segments WHERE environment_id = $1 AND key = $2",
            )
            .bind(env)
            .bind(segment)
            .fetch_optional(&mut **tx)
            .await?;
            if found.is_none() {
                return Err(StoreError::MissingSegment(segment.clone()));
            }
        }
        Ok(())
    }
}

/// What a put wrote.
#[derive(Debug, Clone)]
pub(super) struct Written {
    pub(super) next: NextVersion,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
    /// Whether there was no such item before.
    pub(super) created: bool,
}

/// An item about to be deleted: its environment's version taken, its row read and checked.
#[derive(Debug)]
pub(super) struct Deletion {
    table: Table,
    next: NextVersion,
    key: String,
    before: String,
}

impl Table {
    /// The item's row as it is: `(version, doc, created_at)`.
    async fn current(
        self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        env: &str,
        key: &str,
    ) -> Result<Option<(u64, String, i64)>, StoreError> {
        let row: Option<(i64, String, i64)> = sqlx::query_as(&format!(
            "SELECT version, doc, created_at FROM {} WHERE environment_id = $1 AND key = $2",
            self.name()
        ))
        .bind(env)
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(row.map(|(version, doc, created_at)| (version.max(0) as u64, doc, created_at)))
    }

    /// Writes one item inside the caller's transaction: the environment's next version, the
    /// row (if it is as `expected`, and its automaton fits the cap), its change row and its
    /// audit row.
    pub(super) async fn put(
        self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        actor: &Actor,
        env: &str,
        key: &str,
        payload: &Payload,
        expected: Expected,
    ) -> Result<Written, StoreError> {
        self.put_audited_as(tx, actor, env, key, payload, expected, None)
            .await
    }

    /// [`Table::put`], audited as `action` instead of the table's create or update (a
    /// scheduled change applied: `flag.schedule_apply`).
    #[allow(
        clippy::too_many_arguments,
        reason = "put's arguments and the audited action"
    )]
    pub(super) async fn put_audited_as(
        self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        actor: &Actor,
        env: &str,
        key: &str,
        payload: &Payload,
        expected: Expected,
        action: Option<&str>,
    ) -> Result<Written, StoreError> {
        let next = NextVersion::take(tx, env).await?;
        let before = self.current(tx, env, key).await?;
        // A refusal drops `tx`, which rolls back the version with everything else: no gap.
        expected.check(self, key, before.as_ref().map(|(v, _, _)| *v))?;
        payload.automaton.check(tx, env, self, key).await?;
        payload.check_segments(tx, env).await?;
        let now = now_ms();
        let created_at = before.as_ref().map_or(now, |(_, _, at)| *at);
        sqlx::query(&format!(
            "INSERT INTO {} (environment_id, key, version, doc, created_at, updated_at, automaton_bytes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (environment_id, key) \
             DO UPDATE SET version = $3, doc = $4, updated_at = $6, automaton_bytes = $7",
            self.name()
        ))
        .bind(env)
        .bind(key)
        .bind(next.version as i64)
        .bind(&payload.json)
        .bind(created_at)
        .bind(now)
        .bind(payload.automaton.bytes as i64)
        .execute(&mut **tx)
        .await?;
        let (create, update, _) = self.actions();
        let change = Change {
            kind: self.upserted(),
            key,
            doc: Some(&payload.json),
        };
        let audited = Audited {
            action: action.unwrap_or(if before.is_some() { update } else { create }),
            target: (self.noun(), key),
            before: before.as_ref().map(|(_, doc, _)| doc.as_str()),
            after: Some(&payload.json),
        };
        next.record(tx, actor, change, audited).await?;
        Ok(Written {
            next,
            created_at,
            updated_at: now,
            created: before.is_none(),
        })
    }

    /// The first half of a delete: takes the environment's next version and reads the item,
    /// which must exist (at `expected`, if given). The caller may refuse the delete before
    /// [`Deletion::finish`], still under the environment's lock.
    pub(super) async fn begin_delete(
        self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        env: &str,
        key: &str,
        expected: Expected,
    ) -> Result<Deletion, StoreError> {
        let next = NextVersion::take(tx, env).await?;
        let Some((current, before, _)) = self.current(tx, env, key).await? else {
            return Err(StoreError::NotFound(self.what(key)));
        };
        expected.check(self, key, Some(current))?;
        Ok(Deletion {
            table: self,
            next,
            key: key.to_owned(),
            before,
        })
    }
}

impl Deletion {
    /// Deletes the row and appends its change row and audit row.
    pub(super) async fn finish(
        self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        actor: &Actor,
    ) -> Result<NextVersion, StoreError> {
        let Self {
            table,
            next,
            key,
            before,
        } = self;
        sqlx::query(&format!(
            "DELETE FROM {} WHERE environment_id = $1 AND key = $2",
            table.name()
        ))
        .bind(&next.environment_id)
        .bind(&key)
        .execute(&mut **tx)
        .await?;
        let change = Change {
            kind: table.deleted(),
            key: &key,
            doc: None,
        };
        let audited = Audited {
            action: table.actions().2,
            target: (table.noun(), &key),
            before: Some(&before),
            after: None,
        };
        next.record(tx, actor, change, audited).await?;
        Ok(next)
    }
}

impl Store {
    /// Writes one item in a transaction of its own.
    pub(super) async fn put_item(
        &self,
        table: Table,
        actor: &Actor,
        env: &str,
        key: &str,
        payload: &Payload,
        expected: Expected,
    ) -> Result<Written, StoreError> {
        let mut tx = self.write().await?;
        let written = table
            .put(&mut tx, actor, env, key, payload, expected)
            .await?;
        self.commit_changes(tx, std::slice::from_ref(&written.next))
            .await?;
        Ok(written)
    }
}

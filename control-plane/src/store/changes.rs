//! The change feed's write side, and the one place that keeps its invariant: a write that
//! changes what an edge serves takes its environment's next version ([`NextVersion::take`], the
//! transaction's first write: it locks the environment until commit), writes its item, then
//! appends the change row, the audit row and the webhooks' outbox rows (`webhooks.rs`)
//! ([`NextVersion::record`]), all in the caller's transaction; [`Store::commit_changes`]
//! commits and announces the versions taken. A refused write drops the transaction, and the
//! version goes back with everything else: no gap.
//!
//! [`ChangeKind`] is what a change row says happened; its text in the `kind` column is mapped
//! in [`ChangeKind::as_str`] and nowhere else.

use std::fmt;
use std::str::FromStr;

use super::{Actor, Store, StoreError, audit, now_ms};

/// What a change row says happened to its environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    FlagUpsert,
    FlagDelete,
    SegmentUpsert,
    SegmentDelete,
    SdkKeyUpsert,
    SdkKeyRevoke,
    SettingsUpdate,
    EnvironmentDeleted,
}

impl ChangeKind {
    /// Every kind, in the order of the enum.
    pub const ALL: [Self; 8] = [
        Self::FlagUpsert,
        Self::FlagDelete,
        Self::SegmentUpsert,
        Self::SegmentDelete,
        Self::SdkKeyUpsert,
        Self::SdkKeyRevoke,
        Self::SettingsUpdate,
        Self::EnvironmentDeleted,
    ];

    /// The `kind` column's text. Stored rows and the migrations' data keep these strings, so
    /// they never change; a new kind adds a new string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FlagUpsert => "flag_upsert",
            Self::FlagDelete => "flag_delete",
            Self::SegmentUpsert => "segment_upsert",
            Self::SegmentDelete => "segment_delete",
            Self::SdkKeyUpsert => "sdk_key_upsert",
            Self::SdkKeyRevoke => "sdk_key_revoke",
            Self::SettingsUpdate => "settings_update",
            Self::EnvironmentDeleted => "environment_deleted",
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `kind` column's text that names no [`ChangeKind`]: a row written by a newer version, or a
/// damaged one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown change kind {0:?}")]
pub struct UnknownChangeKind(pub String);

impl FromStr for ChangeKind {
    type Err = UnknownChangeKind;

    /// The inverse of [`ChangeKind::as_str`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownChangeKind(text.to_owned()))
    }
}

/// One row of the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    pub environment_id: String,
    pub version: u64,
    /// What happened; a kind this version does not know is left to the reader to refuse, so
    /// one such row does not hide the rows around it.
    pub kind: Result<ChangeKind, UnknownChangeKind>,
    pub key: String,
    pub doc: Option<String>,
    pub at: i64,
}

/// What a change row records: its kind, the key it is about and the document it carries.
#[derive(Debug, Clone, Copy)]
pub(super) struct Change<'a> {
    pub(super) kind: ChangeKind,
    pub(super) key: &'a str,
    pub(super) doc: Option<&'a str>,
}

/// What an audit row records beside its actor, project and environment.
#[derive(Debug, Clone, Copy)]
pub(super) struct Audited<'a> {
    /// `flag.update`, `sdk_key.revoke`, …
    pub(super) action: &'a str,
    /// `(kind, key)` of what was changed.
    pub(super) target: (&'a str, &'a str),
    pub(super) before: Option<&'a str>,
    pub(super) after: Option<&'a str>,
}

/// An environment's next version, taken inside a write transaction, which holds the
/// environment's lock from then until it ends: a row lock on PostgreSQL, the database write
/// lock on SQLite. So versions are gapless and become visible in commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NextVersion {
    pub(super) environment_id: String,
    pub(super) project_id: String,
    pub(super) version: u64,
}

type Bumped = (String, String, i64);

fn bumped((environment_id, project_id, version): Bumped) -> NextVersion {
    NextVersion {
        environment_id,
        project_id,
        version: version.max(0) as u64,
    }
}

impl NextVersion {
    /// Takes the next version of the environments whose `column` is `value`, by id.
    async fn bump(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        column: &str,
        value: &str,
    ) -> Result<Vec<Self>, StoreError> {
        let rows: Vec<Bumped> = sqlx::query_as(&format!(
            "UPDATE environments SET version = version + 1 WHERE {column} = $1 \
             RETURNING id, project_id, version"
        ))
        .bind(value)
        .fetch_all(&mut **tx)
        .await?;
        let mut taken: Vec<Self> = rows.into_iter().map(bumped).collect();
        taken.sort_by(|a, b| a.environment_id.cmp(&b.environment_id));
        Ok(taken)
    }

    /// Takes `env`'s next version. Must be the transaction's first write.
    pub(super) async fn take(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        env: &str,
    ) -> Result<Self, StoreError> {
        Self::bump(tx, "id", env)
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("environment {env:?}")))
    }

    /// Takes the next version of `env`, which must belong to `project` (otherwise it is not
    /// found, and dropping the transaction returns the version).
    pub(super) async fn take_in(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        project: &str,
        env: &str,
    ) -> Result<Self, StoreError> {
        let next = Self::take(tx, env).await?;
        if next.project_id != project {
            return Err(StoreError::NotFound(format!("environment {env:?}")));
        }
        Ok(next)
    }

    /// Takes the next version of every environment of `project`, by id.
    pub(super) async fn take_all(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        project: &str,
    ) -> Result<Vec<Self>, StoreError> {
        Self::bump(tx, "project_id", project).await
    }

    /// Appends the change row at this version, its audit row in the environment, and one
    /// webhook delivery row per enabled webhook of the environment (the webhooks' outbox).
    pub(super) async fn record(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        actor: &Actor,
        change: Change<'_>,
        audited: Audited<'_>,
    ) -> Result<(), StoreError> {
        self.append(tx, change).await?;
        audit(
            tx,
            actor,
            Some(&self.project_id),
            Some(&self.environment_id),
            audited.action,
            audited.target,
            audited.before,
            audited.after,
        )
        .await?;
        super::webhook_outbox::enqueue_change(tx, self, actor, &audited).await
    }

    /// Appends the change row alone: for a write audited once for many environments (deleting
    /// a project), whose caller appends that one audit row itself.
    pub(super) async fn append(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        change: Change<'_>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO changes (environment_id, version, kind, key, doc, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&self.environment_id)
        .bind(self.version as i64)
        .bind(change.kind.as_str())
        .bind(change.key)
        .bind(change.doc)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

type Row = (String, i64, String, String, Option<String>, i64);

impl Store {
    /// Commits a write and announces the versions it took, so the feed sends them at once.
    pub(super) async fn commit_changes(
        &self,
        tx: sqlx::Transaction<'_, sqlx::Any>,
        taken: &[NextVersion],
    ) -> Result<(), StoreError> {
        tx.commit().await?;
        for next in taken {
            self.committed(&next.environment_id, next.version);
        }
        Ok(())
    }

    /// The feed of an environment after `after`, in version order, at most `limit` rows.
    pub async fn changes_since(
        &self,
        env: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
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
                kind: kind.parse(),
                key,
                doc,
                at,
            })
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::{ChangeKind, UnknownChangeKind};

    #[test]
    fn every_kind_round_trips_through_its_column_text() {
        let texts = [
            "flag_upsert",
            "flag_delete",
            "segment_upsert",
            "segment_delete",
            "sdk_key_upsert",
            "sdk_key_revoke",
            "settings_update",
            "environment_deleted",
        ];
        // The strings existing databases and journals hold, one per kind, in order.
        assert_eq!(ChangeKind::ALL.map(ChangeKind::as_str), texts);
        for kind in ChangeKind::ALL {
            assert_eq!(kind.as_str().parse::<ChangeKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }

    #[test]
    fn unknown_text_is_a_typed_error() {
        for text in [
            "",
            "teleport",
            "FLAG_UPSERT",
            "flag_upsert ",
            "flag",
            "\u{0}",
        ] {
            assert_eq!(
                text.parse::<ChangeKind>(),
                Err(UnknownChangeKind(text.to_owned()))
            );
        }
        let err = "teleport".parse::<ChangeKind>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown change kind "teleport""#);
    }
}

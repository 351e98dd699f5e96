//! Scheduled changes: a flag PATCH stored with the time to apply it. A schedule is `pending`
//! until it leaves that state exactly once — applied, failed or cancelled — and the row is
//! claimed in the very transaction that does so:
//!
//! - applied ([`Store::apply_schedule`]): the claim (`FOR UPDATE SKIP LOCKED` on PostgreSQL;
//!   SQLite's write transaction is already exclusive), the flag's write through the ordinary
//!   versioned path (`items.rs`: next version, row, change row, audit row `flag.schedule_apply`)
//!   and the mark `applied` commit together, or not at all;
//! - failed ([`Store::fail_schedule`]) and cancelled ([`Store::cancel_schedule`]): one
//!   `UPDATE … WHERE status = 'pending'`, which only one caller can win.
//!
//! Due is reckoned on the database's clock (`Store::clock_ms`), which every instance shares. A
//! schedule is not claimed while an earlier pending one of the same flag exists, so the
//! changes of one flag apply in due order, also when several instances catch up together.

use std::fmt;
use std::str::FromStr;

use checkgate_core::CompiledFlag;

use super::items::{Expected, Payload, Table};
use super::{Actor, Backend, Store, StoreError, StoredFlag, audit, new_id, now_ms};

/// The audit action of a scheduled change applied (webhooks name it
/// `flag.scheduled_change_applied`).
pub const SCHEDULE_APPLY: &str = "flag.schedule_apply";
/// The audit action of a change scheduled.
pub const SCHEDULE_CREATE: &str = "flag.schedule_create";
/// The audit action of a scheduled change cancelled.
pub const SCHEDULE_CANCEL: &str = "flag.schedule_cancel";

/// Longest failure reason kept, in bytes (cut at a character boundary).
const REASON_BYTES: usize = 1000;

/// Where a scheduled change is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScheduleStatus {
    Pending,
    Applied,
    Failed,
    Cancelled,
}

impl ScheduleStatus {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Applied, Self::Failed, Self::Cancelled];

    /// The `status` column's text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Applied => "applied",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ScheduleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScheduleStatus {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt(format!("schedule status {text:?}")))
    }
}

/// A scheduled change as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledChange {
    pub id: String,
    pub environment_id: String,
    pub flag_key: String,
    /// When it is due, in Unix milliseconds.
    pub scheduled_at: i64,
    /// The PATCH body, as JSON text.
    pub patch: String,
    /// The flag version the change expects when it applies, if any.
    pub if_version: Option<u64>,
    pub status: ScheduleStatus,
    pub created_at: i64,
    /// Who scheduled it; the scheduler applies it in their name.
    pub created_by: Actor,
    /// When it was applied or failed, by the database's clock.
    pub executed_at: Option<i64>,
    /// The environment version the applied change took.
    pub applied_version: Option<u64>,
    pub failure_reason: Option<String>,
    pub cancelled_at: Option<i64>,
}

/// A change to schedule.
#[derive(Debug, Clone, Copy)]
pub struct NewSchedule<'a> {
    pub environment_id: &'a str,
    pub flag_key: &'a str,
    pub scheduled_at: i64,
    pub patch: &'a str,
    pub if_version: Option<u64>,
}

type Row = (
    String,
    String,
    String,
    i64,
    String,
    Option<i64>,
    String,
    i64,
    String,
    Option<String>,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

const COLUMNS: &str = "id, environment_id, flag_key, scheduled_at, patch, if_version, status, \
    created_at, created_by_kind, created_by_id, created_by_name, executed_at, applied_version, \
    failure_reason, cancelled_at";

/// An actor kind as stored, back to the closed set [`Actor::kind`] takes.
fn actor_kind(kind: &str) -> &'static str {
    match kind {
        "user" => "user",
        "api_token" => "api_token",
        _ => "system",
    }
}

fn scheduled(row: Row) -> Result<ScheduledChange, StoreError> {
    let (
        id,
        environment_id,
        flag_key,
        scheduled_at,
        patch,
        if_version,
        status,
        created_at,
        kind,
        actor_id,
        actor_name,
        executed_at,
        applied_version,
        failure_reason,
        cancelled_at,
    ) = row;
    Ok(ScheduledChange {
        id,
        environment_id,
        flag_key,
        scheduled_at,
        patch,
        if_version: if_version.map(|v| v.max(0) as u64),
        status: status.parse()?,
        created_at,
        created_by: Actor {
            kind: actor_kind(&kind),
            id: actor_id,
            name: actor_name,
        },
        executed_at,
        applied_version: applied_version.map(|v| v.max(0) as u64),
        failure_reason,
        cancelled_at,
    })
}

/// What the audit log keeps of a schedule: its key facts as JSON.
fn audited(s: &ScheduledChange) -> String {
    serde_json::json!({
        "id": s.id,
        "scheduled_at": s.scheduled_at,
        "patch": serde_json::from_str::<serde_json::Value>(&s.patch).unwrap_or_default(),
        "if_version": s.if_version,
        "status": s.status.as_str(),
    })
    .to_string()
}

fn truncated(reason: &str) -> &str {
    if reason.len() <= REASON_BYTES {
        return reason;
    }
    let mut end = REASON_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Which schedules a list shows.
#[derive(Debug, Clone, Default)]
pub struct ScheduleFilter<'a> {
    pub flag_key: Option<&'a str>,
    pub status: Option<ScheduleStatus>,
    pub limit: u32,
    pub offset: u32,
}

impl Store {
    /// The database's time now, in Unix milliseconds (the application's clock on SQLite, which
    /// is the same machine).
    pub async fn db_now_ms(&self) -> Result<i64, StoreError> {
        match self.backend() {
            Backend::Sqlite => Ok(now_ms()),
            Backend::Postgres => Ok(sqlx::query_scalar(&format!("SELECT {}", self.clock_ms()))
                .fetch_one(&self.pool)
                .await?),
        }
    }

    /// Stores a pending change, refused ([`StoreError::Refused`]) when its flag already has
    /// `max_pending` pending changes in the environment, and audits it.
    pub async fn create_schedule(
        &self,
        actor: &Actor,
        new: NewSchedule<'_>,
        max_pending: u32,
    ) -> Result<ScheduledChange, StoreError> {
        let mut tx = self.write().await?;
        // The environment's row, locked on PostgreSQL so two requests cannot both pass the
        // cap (SQLite's write transaction is exclusive already).
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let project: Option<String> = sqlx::query_scalar(&format!(
            "SELECT project_id FROM environments WHERE id = $1{lock}"
        ))
        .bind(new.environment_id)
        .fetch_optional(&mut *tx)
        .await?;
        let project = project
            .ok_or_else(|| StoreError::NotFound(format!("environment {:?}", new.environment_id)))?;
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM scheduled_changes \
             WHERE environment_id = $1 AND flag_key = $2 AND status = 'pending'",
        )
        .bind(new.environment_id)
        .bind(new.flag_key)
        .fetch_one(&mut *tx)
        .await?;
        if pending >= i64::from(max_pending) {
            return Err(StoreError::Refused(format!(
                "flag {:?} already has {pending} pending scheduled changes, the most allowed; \
                 cancel some first",
                new.flag_key
            )));
        }
        let schedule = ScheduledChange {
            id: new_id(),
            environment_id: new.environment_id.to_owned(),
            flag_key: new.flag_key.to_owned(),
            scheduled_at: new.scheduled_at,
            patch: new.patch.to_owned(),
            if_version: new.if_version,
            status: ScheduleStatus::Pending,
            created_at: now_ms(),
            created_by: actor.clone(),
            executed_at: None,
            applied_version: None,
            failure_reason: None,
            cancelled_at: None,
        };
        sqlx::query(
            "INSERT INTO scheduled_changes (id, environment_id, flag_key, scheduled_at, patch, \
             if_version, status, created_at, created_by_kind, created_by_id, created_by_name) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10)",
        )
        .bind(&schedule.id)
        .bind(&schedule.environment_id)
        .bind(&schedule.flag_key)
        .bind(schedule.scheduled_at)
        .bind(&schedule.patch)
        .bind(schedule.if_version.map(|v| v.min(i64::MAX as u64) as i64))
        .bind(schedule.created_at)
        .bind(actor.kind)
        .bind(actor.id.as_deref())
        .bind(&actor.name)
        .execute(&mut *tx)
        .await?;
        let after = audited(&schedule);
        audit(
            &mut tx,
            actor,
            Some(&project),
            Some(new.environment_id),
            SCHEDULE_CREATE,
            ("flag", new.flag_key),
            None,
            Some(&after),
        )
        .await?;
        tx.commit().await?;
        Ok(schedule)
    }

    /// One schedule of the environment.
    pub async fn schedule(&self, env: &str, id: &str) -> Result<ScheduledChange, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM scheduled_changes WHERE environment_id = $1 AND id = $2"
        ))
        .bind(env)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        scheduled(row.ok_or_else(|| StoreError::NotFound(format!("scheduled change {id:?}")))?)
    }

    /// The environment's schedules: pending ones first, soonest due first, then the others,
    /// latest due first.
    pub async fn schedules(
        &self,
        env: &str,
        filter: &ScheduleFilter<'_>,
    ) -> Result<Vec<ScheduledChange>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM scheduled_changes WHERE environment_id = $1 \
             AND (CAST($2 AS TEXT) IS NULL OR flag_key = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR status = $3) \
             ORDER BY CASE WHEN status = 'pending' THEN 0 ELSE 1 END, \
             CASE WHEN status = 'pending' THEN scheduled_at ELSE -scheduled_at END, id \
             LIMIT $4 OFFSET $5"
        ))
        .bind(env)
        .bind(filter.flag_key)
        .bind(filter.status.map(ScheduleStatus::as_str))
        .bind(i64::from(filter.limit))
        .bind(i64::from(filter.offset))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(scheduled).collect()
    }

    /// Cancels a pending schedule and audits it. A schedule that is no longer pending is
    /// [`StoreError::Refused`]; one the environment does not hold, not found.
    pub async fn cancel_schedule(
        &self,
        actor: &Actor,
        env: &str,
        id: &str,
    ) -> Result<ScheduledChange, StoreError> {
        let mut tx = self.write().await?;
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE scheduled_changes SET status = 'cancelled', cancelled_at = $3 \
             WHERE environment_id = $1 AND id = $2 AND status = 'pending' RETURNING {COLUMNS}"
        ))
        .bind(env)
        .bind(id)
        .bind(now_ms())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            drop(tx);
            let current = self.schedule(env, id).await?;
            return Err(StoreError::Refused(format!(
                "scheduled change {id:?} is {}; only a pending one can be cancelled",
                current.status
            )));
        };
        let schedule = scheduled(row)?;
        let project: String =
            sqlx::query_scalar("SELECT project_id FROM environments WHERE id = $1")
                .bind(env)
                .fetch_one(&mut *tx)
                .await?;
        let before = audited(&schedule);
        audit(
            &mut tx,
            actor,
            Some(&project),
            Some(env),
            SCHEDULE_CANCEL,
            ("flag", &schedule.flag_key),
            Some(&before),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(schedule)
    }

    /// Pending schedules due now by the database's clock, soonest first, at most `limit`.
    pub async fn due_schedules(&self, limit: u32) -> Result<Vec<ScheduledChange>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM scheduled_changes \
             WHERE status = 'pending' AND scheduled_at <= {} \
             ORDER BY scheduled_at, id LIMIT $1",
            self.clock_ms()
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(scheduled).collect()
    }

    /// Milliseconds from now (the database's clock) until the next pending schedule is due:
    /// zero or less when one is due already, `None` when none is pending.
    pub async fn next_schedule_in_ms(&self) -> Result<Option<i64>, StoreError> {
        let next: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT MIN(scheduled_at) - {} FROM scheduled_changes WHERE status = 'pending'",
            self.clock_ms()
        ))
        .fetch_one(&self.pool)
        .await?;
        Ok(next)
    }

    /// Applies a due schedule: `flag` is its patch merged onto the flag at version `expected`
    /// and compiled. In one transaction: claims the schedule (still pending, not being applied
    /// elsewhere, no earlier pending change of the same flag), writes the flag conditional on
    /// `expected` with its change row and its audit row (`flag.schedule_apply`, in the name of
    /// whoever scheduled it, as `created_by`), marks the schedule applied, commits and
    /// announces the version. `Ok(None)` when the schedule could not be claimed (done,
    /// cancelled, being applied by another instance, or waiting for an earlier one); a stale
    /// `expected` is [`StoreError::VersionMismatch`] and changes nothing.
    pub async fn apply_schedule(
        &self,
        schedule: &ScheduledChange,
        flag: &CompiledFlag,
        expected: u64,
        cap: u64,
    ) -> Result<Option<StoredFlag>, StoreError> {
        let mut tx = self.write().await?;
        let skip_locked = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let claimed: Option<String> = sqlx::query_scalar(&format!(
            "SELECT s.id FROM scheduled_changes s WHERE s.id = $1 AND s.status = 'pending' \
             AND NOT EXISTS (SELECT 1 FROM scheduled_changes p \
                 WHERE p.environment_id = s.environment_id AND p.flag_key = s.flag_key \
                 AND p.status = 'pending' AND (p.scheduled_at < s.scheduled_at \
                 OR (p.scheduled_at = s.scheduled_at AND p.id < s.id))){skip_locked}"
        ))
        .bind(&schedule.id)
        .fetch_optional(&mut *tx)
        .await?;
        if claimed.is_none() {
            return Ok(None);
        }
        let doc = flag.doc();
        let payload =
            Payload::within(doc, flag.automaton_bytes(), cap)?.referring_to(flag.segment_keys());
        let written = Table::Flags
            .put_audited_as(
                &mut tx,
                &schedule.created_by,
                &schedule.environment_id,
                &doc.key,
                &payload,
                Expected::At(expected),
                Some(SCHEDULE_APPLY),
            )
            .await?;
        sqlx::query(&format!(
            "UPDATE scheduled_changes SET status = 'applied', executed_at = {}, \
             applied_version = $2 WHERE id = $1",
            self.clock_ms()
        ))
        .bind(&schedule.id)
        .bind(written.next.version as i64)
        .execute(&mut *tx)
        .await?;
        self.commit_changes(tx, std::slice::from_ref(&written.next))
            .await?;
        Ok(Some(StoredFlag {
            environment_id: written.next.environment_id,
            key: doc.key.clone(),
            version: written.next.version,
            doc: doc.clone(),
            created_at: written.created_at,
            updated_at: written.updated_at,
        }))
    }

    /// Marks a pending schedule failed with `reason`, in a statement of its own; nothing else
    /// changes. False when it was no longer pending (another instance got to it first).
    pub async fn fail_schedule(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "UPDATE scheduled_changes SET status = 'failed', failure_reason = $2, \
             executed_at = {} WHERE id = $1 AND status = 'pending'",
            self.clock_ms()
        ))
        .bind(id)
        .bind(truncated(reason))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::{ScheduleStatus, truncated};

    #[test]
    fn statuses_round_trip_through_their_column_text() {
        for status in ScheduleStatus::ALL {
            assert_eq!(status.as_str().parse::<ScheduleStatus>().ok(), Some(status));
        }
        assert!("done".parse::<ScheduleStatus>().is_err());
    }

    #[test]
    fn long_reasons_are_cut_at_a_character_boundary() {
        let long = "é".repeat(700);
        let cut = truncated(&long);
        assert!(cut.len() <= super::REASON_BYTES);
        assert!(long.starts_with(cut));
    }
}

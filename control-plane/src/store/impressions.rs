//! Impressions and evaluation insights: raw impressions, their rollups and the evaluation
//! counters edges send, in the tables of migration 0010.
//!
//! A batch is stored in one transaction: its id in `insight_batches` (a duplicate stops there
//! and changes nothing), the raw rows in one statement — the batch as one JSON parameter,
//! expanded by the database (`json_to_recordset` on PostgreSQL, `json_each` on SQLite: one
//! prepared statement for every batch size; sqlx's `Any` driver binds no arrays, so `UNNEST`
//! is not open to it) — then its *parts*, appended to `impression_user_parts`: per flag, value
//! and minute, how many impressions, when the first and last were evaluated, and the distinct
//! user hashes. A batch writes no row another batch writes, so one environment's batches run
//! side by side. Rollups would be shared rows (every batch of a minute adds to the same ones),
//! and an hour or day rollup holds a users sketch that must be merged, not added — 13 KiB when
//! dense. So [`Store::compact_user_parts`] (`impression_merge.rs`: a background task, one
//! instance at a time) folds the parts into the minute, hour and day rollups and into flags'
//! activity, and deletes them; readers add the parts not merged yet (see
//! [`Store::pending_parts`]).
//!
//! Ids are announced before they are drawn ([`Store::impression_tail_mark`]), so the live tail
//! and the merge only ever pass ids no open transaction can still add below.
//!
//! Readers never scan raw rows for aggregates: stats and insights read the rollups, and the
//! list's `total` is a bounded count (see [`Store::impressions`]).

use std::collections::{BTreeMap, BTreeSet};

use super::{Backend, Store, StoreError};
use crate::insights::sketch::user_hash;

/// The spans rollups are kept at, in minutes.
pub const MINUTE: i64 = 1;
pub const HOUR: i64 = 60;
pub const DAY: i64 = 1440;

/// Most rows of one multi-row statement (each row binds at most 9 parameters).
pub(super) const ROWS_PER_STATEMENT: usize = 1000;

/// An impression ready to store: checked, and with the environment's privacy settings applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewImpression {
    #[serde(rename = "f")]
    pub flag_key: String,
    #[serde(rename = "u")]
    pub user_id: Option<String>,
    #[serde(rename = "v")]
    pub value: String,
    /// JSON text of an object.
    #[serde(rename = "c")]
    pub context: Option<String>,
    /// Unix milliseconds.
    #[serde(rename = "t")]
    pub evaluated_at: i64,
}

/// A stored impression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImpression {
    pub id: i64,
    pub flag_key: String,
    pub user_id: Option<String>,
    pub value: String,
    pub context: Option<String>,
    pub evaluated_at: i64,
}

/// Which impressions to list.
#[derive(Debug, Clone, Default)]
pub struct ImpressionFilter {
    pub flag_key: Option<String>,
    pub user_id: Option<String>,
    pub value: Option<String>,
    /// Only impressions with a greater id (the live tail's poll).
    pub since_id: Option<i64>,
    pub limit: u32,
    pub offset: u32,
}

/// The top 16 bits of the advisory-lock keys that announce a batch's ids (the low 48 carry the
/// id): they keep these keys apart from any other advisory lock. 2^48 ids last 89 years at
/// 100,000 impressions a second.
pub(super) const ID_LOCK_TAG: i64 = 0x4887 << 48;

/// The same for the ids of parts.
pub(super) const PART_LOCK_TAG: i64 = 0x4888 << 48;

/// PostgreSQL: the newest impression id drawn (committed or not), 0 before the first.
pub(super) const NEWEST_IMPRESSION_ID: &str = "SELECT COALESCE(pg_sequence_last_value(\
     pg_get_serial_sequence('impressions', 'id')::regclass), 0)";
/// PostgreSQL: the newest part id drawn.
pub(super) const NEWEST_PART_ID: &str = "SELECT COALESCE(pg_sequence_last_value(\
     pg_get_serial_sequence('impression_user_parts', 'id')::regclass), 0)";

/// The most rows the list's `total` counts.
pub const TOTAL_CAP: i64 = 10_000;

/// One counter to add: `count` evaluations of a flag to a variant in one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCount {
    pub environment_id: String,
    pub flag_key: String,
    pub variant: String,
    /// Whole minutes since the Unix epoch.
    pub minute: i64,
    pub count: i64,
}

/// A rollup row as read.
#[derive(Debug, Clone)]
pub struct RollupRow {
    pub flag_key: String,
    pub value: String,
    pub start: i64,
    pub count: i64,
    pub last_seen: i64,
    /// The revision of the row's users sketch: 0 while it has none (minutes never have one),
    /// raised by one each time the sketch is rewritten.
    pub users_rev: i64,
}

/// A rollup's users sketch as read.
#[derive(Debug, Clone)]
pub struct SketchRow {
    pub flag_key: String,
    pub value: String,
    pub start: i64,
    pub users_rev: i64,
    pub users: Vec<u8>,
}

/// A part not merged into the rollups yet, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPart {
    pub flag_key: String,
    pub value: String,
    /// The hour its users were seen in (minutes since the epoch).
    pub hour: i64,
    /// `None` for parts appended before migration 0015, whose counts are in the rollups.
    pub counts: Option<PartCounts>,
    /// Hashes of its distinct users.
    pub users: Vec<u64>,
}

/// The columns of `impression_user_parts` that [`PartRow`] reads, in its order.
pub(super) const PART_COLUMNS: &str =
    "flag_key, value, hour, minute, count, first_seen, last_seen, users";

/// A part as stored: the columns [`PART_COLUMNS`] names.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct PartRow {
    pub flag_key: String,
    pub value: String,
    pub hour: i64,
    pub minute: Option<i64>,
    pub count: i64,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    /// The distinct users' hashes, eight little-endian bytes each.
    pub users: Vec<u8>,
}

impl PartRow {
    /// What it counts; `None` for parts appended before migration 0015, which hold users only
    /// (their counts are in the rollups).
    pub(super) fn counts(&self) -> Option<PartCounts> {
        let (minute, first_seen, last_seen) = (self.minute?, self.first_seen?, self.last_seen?);
        Some(PartCounts {
            minute,
            count: self.count,
            first_seen,
            last_seen,
        })
    }

    /// Its distinct users' hashes.
    pub(super) fn user_hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.users
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
    }
}

impl From<PartRow> for PendingPart {
    fn from(row: PartRow) -> Self {
        Self {
            counts: row.counts(),
            users: row.user_hashes().collect(),
            hour: row.hour,
            flag_key: row.flag_key,
            value: row.value,
        }
    }
}

/// What a part counts: impressions of one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartCounts {
    /// Minutes since the epoch.
    pub minute: i64,
    pub count: i64,
    /// Unix milliseconds.
    pub first_seen: i64,
    pub last_seen: i64,
}

/// A counter row as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRow {
    pub flag_key: String,
    pub variant: String,
    pub start: i64,
    pub count: i64,
}

/// A flag's first and last evaluation seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagActivity {
    pub flag_key: String,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// What a batch holds of one flag and value in one minute.
#[derive(Debug)]
struct Part {
    count: i64,
    first_seen: i64,
    last_seen: i64,
    users: BTreeSet<u64>,
}

pub(super) fn placeholders(rows: usize, per_row: usize, first: usize) -> String {
    let mut out = String::with_capacity(rows * per_row * 5);
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for c in 0..per_row {
            if c > 0 {
                out.push(',');
            }
            out.push('$');
            out.push_str(&(first + r * per_row + c).to_string());
        }
        out.push(')');
    }
    out
}

impl Store {
    pub(super) fn greatest(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "GREATEST",
            Backend::Sqlite => "max",
        }
    }

    pub(super) fn least(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "LEAST",
            Backend::Sqlite => "min",
        }
    }

    /// Lets an insights transaction commit without waiting for its WAL flush (PostgreSQL's
    /// `synchronous_commit = off`, for this transaction only). When batches updated shared
    /// rollup rows, each waited for the one before it to commit, and waiting for every flush in
    /// turn bounded ingest to one batch per flush (3,641 against 6,089 impressions/s); the
    /// evaluation counters still update shared rows. The cost: a PostgreSQL crash
    /// (not a control-plane crash) can lose the insights committed in its last moments
    /// (at most about three times `wal_writer_delay`, 600 ms by default) — never anything else,
    /// and never a half-stored batch. SQLite has one writer anyway.
    async fn telemetry_commit(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Announces, before the inserts draw the batch's ids, that this transaction may add ids
    /// above the newest drawn now, of impressions and of parts (PostgreSQL: for each, a *shared*
    /// transaction-scoped advisory lock whose key carries that id, seen by every session in
    /// `pg_locks` until the transaction ends).
    /// Batches never wait for one another here; the list reads only below
    /// [`Store::impression_tail_mark`], so a batch that drew lower ids than another but commits
    /// after it is never skipped by a `since_id` poll that saw the other. SQLite has one
    /// writer, so its ids always commit in order.
    async fn announce_ids(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query(&format!(
                "SELECT pg_advisory_xact_lock_shared($1 + ({NEWEST_IMPRESSION_ID})), \
                 pg_advisory_xact_lock_shared($2 + ({NEWEST_PART_ID}))"
            ))
            .bind(ID_LOCK_TAG)
            .bind(PART_LOCK_TAG)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Records a batch id inside `tx`; false when it was stored before.
    async fn first_time(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        batch: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO insight_batches (id, received_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(batch)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a batch of one environment's impressions with its rollups, in one transaction.
    /// With `batch`, a batch of that id stored before is not stored again: returns false.
    pub async fn store_impressions(
        &self,
        batch: Option<&str>,
        environment_id: &str,
        items: &[NewImpression],
        received_at: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        self.telemetry_commit(&mut tx).await?;
        if let Some(batch) = batch
            && !Self::first_time(&mut tx, batch, received_at).await?
        {
            return Ok(false);
        }
        if items.is_empty() {
            tx.commit().await?;
            return Ok(true);
        }
        self.announce_ids(&mut tx).await?;
        let json = serde_json::to_string(items)
            .map_err(|e| StoreError::Corrupt(format!("impression batch: {e}")))?;
        let insert = match self.backend {
            Backend::Postgres => {
                "INSERT INTO impressions (environment_id, flag_key, user_id, value, context, evaluated_at, received_at) \
                 SELECT $1, x.f, x.u, x.v, x.c::jsonb, x.t, $2 \
                 FROM json_to_recordset($3::json) AS x(f text, u text, v text, c text, t bigint)"
            }
            Backend::Sqlite => {
                "INSERT INTO impressions (environment_id, flag_key, user_id, value, context, evaluated_at, received_at) \
                 SELECT $1, json_extract(value, '$.f'), json_extract(value, '$.u'), json_extract(value, '$.v'), \
                 json_extract(value, '$.c'), json_extract(value, '$.t'), $2 FROM json_each($3)"
            }
        };
        sqlx::query(insert)
            .bind(environment_id)
            .bind(received_at)
            .bind(&json)
            .execute(&mut *tx)
            .await?;

        // What the batch adds, per flag, value and minute.
        let mut parts: BTreeMap<(&str, &str, i64), Part> = BTreeMap::new();
        for item in items {
            let minute = item.evaluated_at.div_euclid(60_000);
            let part = parts
                .entry((&item.flag_key, &item.value, minute))
                .or_insert_with(|| Part {
                    count: 0,
                    first_seen: item.evaluated_at,
                    last_seen: item.evaluated_at,
                    users: BTreeSet::new(),
                });
            part.count += 1;
            part.first_seen = part.first_seen.min(item.evaluated_at);
            part.last_seen = part.last_seen.max(item.evaluated_at);
            if let Some(user) = &item.user_id {
                part.users.insert(user_hash(user));
            }
        }
        self.insert_parts(&mut tx, environment_id, &parts).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Appends a batch's parts (its users as their hashes), for the merge to fold into the
    /// rollups.
    async fn insert_parts(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        env: &str,
        parts: &BTreeMap<(&str, &str, i64), Part>,
    ) -> Result<(), StoreError> {
        let rows: Vec<_> = parts.iter().collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO impression_user_parts \
                 (environment_id, flag_key, value, hour, minute, count, first_seen, last_seen, users) \
                 VALUES {}",
                placeholders(chunk.len(), 9, 1)
            );
            let mut query = sqlx::query(&sql);
            for ((flag, value, minute), part) in chunk {
                let users: Vec<u8> = part.users.iter().flat_map(|u| u.to_le_bytes()).collect();
                query = query
                    .bind(env)
                    .bind(*flag)
                    .bind(*value)
                    .bind(minute - minute.rem_euclid(HOUR))
                    .bind(*minute)
                    .bind(part.count)
                    .bind(part.first_seen)
                    .bind(part.last_seen)
                    .bind(users);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Adds evaluation counters (of any environments), at the three spans, in one transaction.
    /// With `batch`, counters of that id added before are not added again: returns false.
    pub async fn store_evaluation_counts(
        &self,
        batch: Option<&str>,
        counts: &[NewCount],
        received_at: i64,
    ) -> Result<bool, StoreError> {
        let mut sums: BTreeMap<(&str, &str, i64, i64, &str), i64> = BTreeMap::new();
        let mut activity: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
        for c in counts {
            for span in [MINUTE, HOUR, DAY] {
                let start = c.minute - c.minute.rem_euclid(span);
                *sums
                    .entry((&c.environment_id, &c.flag_key, span, start, &c.variant))
                    .or_default() += c.count;
            }
            let at = c.minute.saturating_mul(60_000);
            let seen = activity
                .entry((&c.environment_id, &c.flag_key))
                .or_insert((at, at));
            seen.0 = seen.0.min(at);
            seen.1 = seen.1.max(at);
        }
        let mut tx = self.write().await?;
        self.telemetry_commit(&mut tx).await?;
        if let Some(batch) = batch
            && !Self::first_time(&mut tx, batch, received_at).await?
        {
            return Ok(false);
        }
        let rows: Vec<_> = sums.into_iter().collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO evaluation_counts (environment_id, flag_key, span, start, variant, count) VALUES {} \
                 ON CONFLICT (environment_id, flag_key, span, start, variant) DO UPDATE SET \
                 count = evaluation_counts.count + excluded.count",
                placeholders(chunk.len(), 6, 1)
            );
            let mut query = sqlx::query(&sql);
            for ((env, flag, span, start, variant), count) in chunk {
                query = query
                    .bind(*env)
                    .bind(*flag)
                    .bind(*span)
                    .bind(*start)
                    .bind(*variant)
                    .bind(*count);
            }
            query.execute(&mut *tx).await?;
        }
        let mut by_env: BTreeMap<&str, BTreeMap<&str, (i64, i64)>> = BTreeMap::new();
        for ((env, flag), seen) in activity {
            by_env.entry(env).or_default().insert(flag, seen);
        }
        for (env, activity) in &by_env {
            self.upsert_activity(&mut tx, env, activity).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_number_rows_in_order() {
        assert_eq!(placeholders(2, 3, 2), "($2,$3,$4),($5,$6,$7)");
        assert_eq!(placeholders(1, 1, 1), "($1)");
    }
}

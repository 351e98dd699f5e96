//! The merge of parts: [`Store::compact_user_parts`] folds the parts batches appended (see
//! `impressions.rs`) into the minute, hour and day rollups — counts added, users merged into
//! the hour and day sketches — and into flags' activity, then deletes them. It runs in the
//! background, one instance at a time, and takes only parts at or below
//! [`Store::part_mark`], so every part at or below the newest it took is merged exactly once.

use std::collections::BTreeMap;

use sqlx::Row as _;

use super::impressions::{
    DAY, HOUR, MINUTE, PART_COLUMNS, PartRow, ROWS_PER_STATEMENT, placeholders,
};
use super::{Backend, Store, StoreError};
use crate::insights::sketch::Users;

/// The key (class, id) of the transaction-scoped advisory lock that lets one merge of parts
/// run at a time: merging a part's counts twice would count them twice.
const MERGE_LOCK: (i32, i32) = (4887, 1);

/// What a batch (or a compaction) adds to one rollup row.
#[derive(Debug, Default)]
struct Addition {
    count: i64,
    last_seen: i64,
    users: Option<Users>,
}

/// Rollup key: (flag, span, start, value), in the primary key's order.
type Key = (String, i64, i64, String);

/// A part the merge takes: its id and environment, and the columns readers see.
#[derive(sqlx::FromRow)]
struct TakenPart {
    id: i64,
    environment_id: String,
    #[sqlx(flatten)]
    part: PartRow,
}

impl Store {
    /// Merges into `additions` the users sketches already stored for their hour and day rows,
    /// having locked those rows (PostgreSQL; creating the missing ones first, so a concurrent
    /// compaction waits for this one instead of writing a sketch that misses it).
    async fn merge_stored_sketches(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        env: &str,
        additions: &mut BTreeMap<Key, Addition>,
    ) -> Result<(), StoreError> {
        let keys: Vec<&Key> = additions
            .iter()
            .filter(|(k, add)| k.1 != MINUTE && add.users.is_some())
            .map(|(k, _)| k)
            .collect();
        let mut stored: Vec<(Key, Vec<u8>)> = Vec::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            if self.backend == Backend::Postgres {
                let sql = format!(
                    "INSERT INTO impression_rollups (environment_id, flag_key, span, start, value, count, last_seen) \
                     VALUES {} ON CONFLICT (environment_id, flag_key, span, start, value) DO NOTHING",
                    placeholders(chunk.len(), 5, 1).replace(')', ", 0, 0)")
                );
                let mut query = sqlx::query(&sql);
                for (flag, span, start, value) in chunk {
                    query = query
                        .bind(env)
                        .bind(flag)
                        .bind(*span)
                        .bind(*start)
                        .bind(value);
                }
                query.execute(&mut **tx).await?;
            }
            let lock = if self.backend == Backend::Postgres {
                " FOR UPDATE"
            } else {
                ""
            };
            let sql = format!(
                "SELECT flag_key, span, start, value, users FROM impression_rollups \
                 WHERE environment_id = $1 AND (flag_key, span, start, value) IN (VALUES {}) \
                 ORDER BY flag_key, span, start, value{lock}",
                placeholders(chunk.len(), 4, 2)
            );
            let mut query = sqlx::query(&sql).bind(env);
            for (flag, span, start, value) in chunk {
                query = query.bind(flag).bind(*span).bind(*start).bind(value);
            }
            for row in query.fetch_all(&mut **tx).await? {
                let users: Option<Vec<u8>> = row.try_get(4)?;
                if let Some(users) = users {
                    let key = (
                        row.try_get(0)?,
                        row.try_get(1)?,
                        row.try_get(2)?,
                        row.try_get(3)?,
                    );
                    stored.push((key, users));
                }
            }
        }
        for (key, bytes) in stored {
            let old = Users::from_bytes(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if let Some(add) = additions.get_mut(&key) {
                add.users.get_or_insert_with(Users::new).merge(&old);
            }
        }
        Ok(())
    }

    /// Merges up to `limit` pending parts (oldest first, and only below [`Store::part_mark`])
    /// into the rollups — counts into the minute, hour and day rows, users into the hour and
    /// day sketches — and flags' activity, and deletes them, in one transaction; returns how
    /// many it merged. One merge runs at a time (PostgreSQL: an advisory lock; a merge that
    /// finds another running merges nothing this time), as a part merged twice would be counted
    /// twice.
    pub async fn compact_user_parts(&self, limit: i64) -> Result<usize, StoreError> {
        let mark = self.part_mark().await?.unwrap_or(i64::MAX);
        let mut tx = self.write().await?;
        if self.backend == Backend::Postgres {
            let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, $2)")
                .bind(MERGE_LOCK.0)
                .bind(MERGE_LOCK.1)
                .fetch_one(&mut *tx)
                .await?;
            if !ours {
                return Ok(0);
            }
        }
        let parts: Vec<TakenPart> = sqlx::query_as(&format!(
            "SELECT id, environment_id, {PART_COLUMNS} FROM impression_user_parts \
             WHERE id <= $1 ORDER BY id LIMIT $2"
        ))
        .bind(mark)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if parts.is_empty() {
            return Ok(0);
        }
        let mut by_env: BTreeMap<&str, BTreeMap<Key, Addition>> = BTreeMap::new();
        let mut activity: BTreeMap<&str, BTreeMap<&str, (i64, i64)>> = BTreeMap::new();
        for taken in &parts {
            let (env, part) = (taken.environment_id.as_str(), &taken.part);
            let (flag, value) = (&part.flag_key, &part.value);
            let additions = by_env.entry(env).or_default();
            if let Some(c) = part.counts() {
                for span in [MINUTE, HOUR, DAY] {
                    let start = c.minute - c.minute.rem_euclid(span);
                    let add = additions
                        .entry((flag.clone(), span, start, value.clone()))
                        .or_default();
                    add.count += c.count;
                    add.last_seen = add.last_seen.max(c.last_seen);
                }
                let seen = activity
                    .entry(env)
                    .or_default()
                    .entry(flag)
                    .or_insert((c.first_seen, c.last_seen));
                seen.0 = seen.0.min(c.first_seen);
                seen.1 = seen.1.max(c.last_seen);
            }
            if part.users.is_empty() {
                continue;
            }
            for span in [HOUR, DAY] {
                let start = part.hour - part.hour.rem_euclid(span);
                let add = additions
                    .entry((flag.clone(), span, start, value.clone()))
                    .or_default();
                let sketch = add.users.get_or_insert_with(Users::new);
                part.user_hashes().for_each(|hash| sketch.insert_hash(hash));
            }
        }
        for (env, additions) in &mut by_env {
            self.merge_stored_sketches(&mut tx, env, additions).await?;
            self.upsert_rollups(&mut tx, env, additions).await?;
        }
        for (env, activity) in &activity {
            self.upsert_activity(&mut tx, env, activity).await?;
        }
        // The parts taken are the oldest at or below the mark, and every id at or below the mark
        // has committed or never will: no part at or below the newest taken is left unmerged.
        let newest = parts.iter().map(|p| p.id).max().unwrap_or(0);
        sqlx::query("DELETE FROM impression_user_parts WHERE id <= $1")
            .bind(newest)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "UPDATE impression_parts_merged SET upto = {}(upto, $1) WHERE one = 1",
            self.greatest()
        ))
        .bind(newest)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(parts.len())
    }

    /// Adds `additions` to their rollup rows (creating them), in key order.
    async fn upsert_rollups(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        env: &str,
        additions: &BTreeMap<Key, Addition>,
    ) -> Result<(), StoreError> {
        let rows: Vec<_> = additions.iter().collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO impression_rollups (environment_id, flag_key, span, start, value, count, last_seen, users, users_rev) \
                 VALUES {} ON CONFLICT (environment_id, flag_key, span, start, value) DO UPDATE SET \
                 count = impression_rollups.count + excluded.count, \
                 last_seen = {}(impression_rollups.last_seen, excluded.last_seen), \
                 users = COALESCE(excluded.users, impression_rollups.users), \
                 users_rev = impression_rollups.users_rev + excluded.users_rev",
                placeholders(chunk.len(), 9, 1),
                self.greatest()
            );
            let mut query = sqlx::query(&sql);
            for ((flag, span, start, value), add) in chunk {
                query = query
                    .bind(env)
                    .bind(flag)
                    .bind(*span)
                    .bind(*start)
                    .bind(value)
                    .bind(add.count)
                    .bind(add.last_seen)
                    .bind(add.users.as_ref().map(Users::to_bytes))
                    .bind(i64::from(add.users.is_some()));
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Widens each flag's first and last evaluation seen.
    pub(super) async fn upsert_activity(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        env: &str,
        activity: &BTreeMap<&str, (i64, i64)>,
    ) -> Result<(), StoreError> {
        let rows: Vec<_> = activity.iter().collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO flag_activity (environment_id, flag_key, first_seen, last_seen) VALUES {} \
                 ON CONFLICT (environment_id, flag_key) DO UPDATE SET \
                 first_seen = {}(flag_activity.first_seen, excluded.first_seen), \
                 last_seen = {}(flag_activity.last_seen, excluded.last_seen)",
                placeholders(chunk.len(), 4, 1),
                self.least(),
                self.greatest()
            );
            let mut query = sqlx::query(&sql);
            for (flag, (first, last)) in chunk {
                query = query.bind(env).bind(**flag).bind(*first).bind(*last);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

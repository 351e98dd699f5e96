//! Reading what `impressions.rs` stores: a page of raw impressions (with a bounded `total`),
//! rollup and counter rows of one span and range, flags' activity, and the lookups the ingest
//! path makes (an environment's settings, an SDK key by hash).

use std::collections::BTreeMap;

use super::impressions::{
    CounterRow, FlagActivity, ID_LOCK_TAG, ImpressionFilter, MINUTE, NEWEST_IMPRESSION_ID,
    NEWEST_PART_ID, PART_COLUMNS, PART_LOCK_TAG, PartRow, PendingPart, RollupRow, SketchRow,
    StoredImpression, TOTAL_CAP,
};
use super::{Backend, Store, StoreError};

impl Store {
    /// The highest impression id below which every batch has committed or aborted: no
    /// transaction can still add an id at or below it. `None` on SQLite (one writer: ids commit
    /// in order).
    pub async fn impression_tail_mark(&self) -> Result<Option<i64>, StoreError> {
        self.mark(NEWEST_IMPRESSION_ID, ID_LOCK_TAG).await
    }

    /// The same for the ids of parts: the merge takes none above it, so every part at or below
    /// its mark of what it merged is merged.
    pub(super) async fn part_mark(&self) -> Result<Option<i64>, StoreError> {
        self.mark(NEWEST_PART_ID, PART_LOCK_TAG).await
    }

    /// Read in two steps, in this order: the newest id drawn (`newest`), then the smallest id
    /// announced (under `tag`) by a transaction still open — [`Store::store_impressions`]
    /// announces, before drawing, the newest id drawn then. A batch that drew before the first
    /// step is either still open in the second (and its ids lie above what it announced) or has
    /// ended; one that draws after the first step draws above it.
    async fn mark(&self, newest: &str, tag: i64) -> Result<Option<i64>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let newest: i64 = sqlx::query_scalar(newest).fetch_one(&self.pool).await?;
        let open: Option<i64> = sqlx::query_scalar(
            "SELECT min(((classid::bigint << 32) | objid::bigint) - $1) FROM pg_locks \
             WHERE locktype = 'advisory' AND objsubid = 1 \
             AND classid::bigint >= $2 AND classid::bigint < $3 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .bind(tag)
        .bind(tag >> 32)
        .bind((tag >> 32) + (1 << 16))
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(open.map_or(newest, |open| open.min(newest))))
    }

    /// A page of an environment's impressions, newest first, and `total`: how many match,
    /// counted up to [`TOTAL_CAP`] (with `since_id`, how many are newer than it) — a bounded
    /// count, never the whole table. Only ids at or below [`Store::impression_tail_mark`] are
    /// read, so the live tail, which polls with the newest id it has seen, never skips a batch
    /// that commits late.
    pub async fn impressions(
        &self,
        environment_id: &str,
        filter: &ImpressionFilter,
    ) -> Result<(Vec<StoredImpression>, i64), StoreError> {
        let mut conditions = String::from("environment_id = $1");
        let mut binds: Vec<&str> = Vec::new();
        for (column, value) in [
            ("flag_key", &filter.flag_key),
            ("user_id", &filter.user_id),
            ("value", &filter.value),
        ] {
            if let Some(v) = value {
                binds.push(v);
                conditions.push_str(&format!(" AND {column} = ${}", binds.len() + 1));
            }
        }
        let since = filter.since_id.unwrap_or(0);
        let mark = self.impression_tail_mark().await?.unwrap_or(i64::MAX);
        conditions.push_str(&format!(
            " AND id > ${} AND id <= ${}",
            binds.len() + 2,
            binds.len() + 3
        ));
        let context = match self.backend {
            Backend::Postgres => "context::text",
            Backend::Sqlite => "context",
        };
        let n = binds.len();
        let sql = format!(
            "SELECT id, flag_key, user_id, value, {context}, evaluated_at FROM impressions \
             WHERE {conditions} ORDER BY id DESC LIMIT ${} OFFSET ${}",
            n + 4,
            n + 5
        );
        let mut query =
            sqlx::query_as::<_, (i64, String, Option<String>, String, Option<String>, i64)>(&sql)
                .bind(environment_id);
        for b in &binds {
            query = query.bind(*b);
        }
        let rows = query
            .bind(since)
            .bind(mark)
            .bind(i64::from(filter.limit))
            .bind(i64::from(filter.offset))
            .fetch_all(&self.pool)
            .await?;
        let count_sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM impressions WHERE {conditions} LIMIT ${}) AS bounded",
            n + 4
        );
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql).bind(environment_id);
        for b in &binds {
            count = count.bind(*b);
        }
        let total = count
            .bind(since)
            .bind(mark)
            .bind(TOTAL_CAP)
            .fetch_one(&self.pool)
            .await?;
        let items = rows
            .into_iter()
            .map(
                |(id, flag_key, user_id, value, context, evaluated_at)| StoredImpression {
                    id,
                    flag_key,
                    user_id,
                    value,
                    context,
                    evaluated_at,
                },
            )
            .collect();
        Ok((items, total))
    }

    /// The minute rollups with `start` in `[from, to)` summed per flag and value: the count
    /// and the last evaluation, one row per pair (minutes carry no sketch, so nothing a
    /// reader needs is lost; a stats window's two ends hold up to 118 minutes per pair).
    pub async fn minute_sums(
        &self,
        environment_id: &str,
        (from, to): (i64, i64),
    ) -> Result<Vec<RollupRow>, StoreError> {
        // SUM of BIGINT is NUMERIC on PostgreSQL: cast back (a window's count fits).
        let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT flag_key, value, MIN(start), CAST(SUM(count) AS BIGINT), MAX(last_seen) \
             FROM impression_rollups \
             WHERE environment_id = $1 AND span = $2 AND start >= $3 AND start < $4 \
             GROUP BY flag_key, value",
        )
        .bind(environment_id)
        .bind(MINUTE)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(flag_key, value, start, count, last_seen)| RollupRow {
                flag_key,
                value,
                start,
                count,
                last_seen,
                users_rev: 0,
            })
            .collect())
    }

    /// Rollup rows of one span with `start` in `[from, to)`, of one flag or all, without their
    /// sketches (see [`Store::rollup_sketches`]).
    pub async fn impression_rollups(
        &self,
        environment_id: &str,
        span: i64,
        (from, to): (i64, i64),
        flag_key: Option<&str>,
    ) -> Result<Vec<RollupRow>, StoreError> {
        let sql = format!(
            "SELECT flag_key, value, start, count, last_seen, users_rev FROM impression_rollups \
             WHERE environment_id = $1 AND span = $2 AND start >= $3 AND start < $4{}",
            if flag_key.is_some() {
                " AND flag_key = $5"
            } else {
                ""
            }
        );
        let mut query = sqlx::query_as::<_, (String, String, i64, i64, i64, i64)>(&sql)
            .bind(environment_id)
            .bind(span)
            .bind(from)
            .bind(to);
        if let Some(flag) = flag_key {
            query = query.bind(flag);
        }
        Ok(query
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(
                |(flag_key, value, start, count, last_seen, users_rev)| RollupRow {
                    flag_key,
                    value,
                    start,
                    count,
                    last_seen,
                    users_rev,
                },
            )
            .collect())
    }

    /// The users sketches of one span with `start` in `[from, to)` of the given
    /// (flag, value) pairs, with their revisions.
    pub async fn rollup_sketches(
        &self,
        environment_id: &str,
        span: i64,
        (from, to): (i64, i64),
        pairs: &[(String, String)],
    ) -> Result<Vec<SketchRow>, StoreError> {
        let mut out = Vec::new();
        // Each pair binds two parameters; four more are fixed.
        for chunk in pairs.chunks(1000) {
            let list = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 5 + 2 * i, 6 + 2 * i))
                .collect::<Vec<_>>()
                .join(",");
            let sql = format!(
                "SELECT flag_key, value, start, users_rev, users FROM impression_rollups \
                 WHERE environment_id = $1 AND span = $2 AND start >= $3 AND start < $4 \
                 AND users IS NOT NULL AND (flag_key, value) IN (VALUES {list})"
            );
            let mut query = sqlx::query_as::<_, (String, String, i64, i64, Vec<u8>)>(&sql)
                .bind(environment_id)
                .bind(span)
                .bind(from)
                .bind(to);
            for (flag, value) in chunk {
                query = query.bind(flag).bind(value);
            }
            out.extend(query.fetch_all(&self.pool).await?.into_iter().map(
                |(flag_key, value, start, users_rev, users)| SketchRow {
                    flag_key,
                    value,
                    start,
                    users_rev,
                    users,
                },
            ));
        }
        Ok(out)
    }

    /// The ids of the parts not merged yet: `(merged, newest]`, or `None` when the merge has
    /// caught up.
    async fn pending_ids(&self) -> Result<Option<(i64, i64)>, StoreError> {
        let newest = match self.backend {
            Backend::Postgres => NEWEST_PART_ID,
            Backend::Sqlite => "SELECT COALESCE(max(id), 0) FROM impression_user_parts",
        };
        let (merged, newest): (i64, i64) = sqlx::query_as(&format!(
            "SELECT upto, ({newest}) FROM impression_parts_merged WHERE one = 1"
        ))
        .fetch_one(&self.pool)
        .await?;
        Ok((newest > merged).then_some((merged, newest)))
    }

    /// The parts not merged into the rollups yet with `hour` in `[from, to)` (minutes), of
    /// one flag or all.
    ///
    /// Only parts between the merge's mark and the newest id drawn are read, by the primary
    /// key, and none when that range is empty (the merge has caught up): the dead rows of
    /// parts merged and deleted since the last vacuum are never walked. The bounds are written
    /// into the statement (they are integers), so PostgreSQL plans for that narrow range, not
    /// a generic one.
    pub async fn pending_parts(
        &self,
        environment_id: &str,
        (from, to): (i64, i64),
        flag_key: Option<&str>,
    ) -> Result<Vec<PendingPart>, StoreError> {
        let Some((merged, newest)) = self.pending_ids().await? else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT {PART_COLUMNS} FROM impression_user_parts \
             WHERE id > {merged} AND id <= {newest} AND environment_id = $1 \
             AND hour >= $2 AND hour < $3{}",
            if flag_key.is_some() {
                " AND flag_key = $4"
            } else {
                ""
            }
        );
        // Not kept prepared: its text changes with the bounds.
        let mut query = sqlx::query_as::<_, PartRow>(&sql)
            .persistent(false)
            .bind(environment_id)
            .bind(from)
            .bind(to);
        if let Some(flag) = flag_key {
            query = query.bind(flag);
        }
        Ok(query
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(PendingPart::from)
            .collect())
    }

    /// Counter rows of one span with `start` in `[from, to)`, of one flag or all.
    pub async fn evaluation_counters(
        &self,
        environment_id: &str,
        span: i64,
        (from, to): (i64, i64),
        flag_key: Option<&str>,
    ) -> Result<Vec<CounterRow>, StoreError> {
        let sql = format!(
            "SELECT flag_key, variant, start, count FROM evaluation_counts \
             WHERE environment_id = $1 AND span = $2 AND start >= $3 AND start < $4{}",
            if flag_key.is_some() {
                " AND flag_key = $5"
            } else {
                ""
            }
        );
        let mut query = sqlx::query_as::<_, (String, String, i64, i64)>(&sql)
            .bind(environment_id)
            .bind(span)
            .bind(from)
            .bind(to);
        if let Some(flag) = flag_key {
            query = query.bind(flag);
        }
        Ok(query
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|(flag_key, variant, start, count)| CounterRow {
                flag_key,
                variant,
                start,
                count,
            })
            .collect())
    }

    /// Every flag's first and last evaluation seen in an environment, the parts not merged yet
    /// included.
    pub async fn flag_activity(
        &self,
        environment_id: &str,
    ) -> Result<Vec<FlagActivity>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT flag_key, first_seen, last_seen FROM flag_activity WHERE environment_id = $1",
        )
        .bind(environment_id)
        .fetch_all(&self.pool)
        .await?;
        let mut seen: BTreeMap<String, (i64, i64)> = rows
            .into_iter()
            .map(|(flag, first, last)| (flag, (first, last)))
            .collect();
        if let Some((merged, newest)) = self.pending_ids().await? {
            // Bounds written in, as in `pending_parts`.
            let pending: Vec<(String, i64, i64)> = sqlx::query_as(&format!(
                "SELECT flag_key, min(first_seen), max(last_seen) FROM impression_user_parts \
                 WHERE id > {merged} AND id <= {newest} AND environment_id = $1 \
                 AND minute IS NOT NULL GROUP BY flag_key"
            ))
            .persistent(false)
            .bind(environment_id)
            .fetch_all(&self.pool)
            .await?;
            for (flag, first, last) in pending {
                let entry = seen.entry(flag).or_insert((first, last));
                entry.0 = entry.0.min(first);
                entry.1 = entry.1.max(last);
            }
        }
        Ok(seen
            .into_iter()
            .map(|(flag_key, (first_seen, last_seen))| FlagActivity {
                flag_key,
                first_seen,
                last_seen,
            })
            .collect())
    }
}

impl Store {
    /// An environment's settings; not found when it does not exist.
    pub async fn environment_settings(
        &self,
        environment_id: &str,
    ) -> Result<checkgate_protocol::EnvironmentSettings, StoreError> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT settings FROM environments WHERE id = $1")
                .bind(environment_id)
                .fetch_optional(&self.pool)
                .await?;
        let text =
            text.ok_or_else(|| StoreError::NotFound(format!("environment {environment_id:?}")))?;
        Ok(checkgate_protocol::EnvironmentSettings::parse(&text))
    }

    /// Which of these environment ids exist.
    pub async fn existing_environments<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let wanted: std::collections::BTreeSet<&str> = ids.collect();
        let mut found = std::collections::BTreeSet::new();
        for id in wanted {
            let exists: Option<String> =
                sqlx::query_scalar("SELECT id FROM environments WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            found.extend(exists);
        }
        Ok(found)
    }

    /// The key of every SDK key that is live, by hash: its environment and kind.
    pub async fn sdk_key_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<(String, super::KeyKind)>, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT environment_id, kind FROM sdk_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(env, kind)| {
            (
                env,
                super::KeyKind::parse(&kind).unwrap_or(super::KeyKind::Server),
            )
        }))
    }
}

impl Store {
    /// Every flag of an environment by key, with when it was created.
    pub async fn flag_keys(&self, environment_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, created_at FROM flags WHERE environment_id = $1 ORDER BY key",
        )
        .bind(environment_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

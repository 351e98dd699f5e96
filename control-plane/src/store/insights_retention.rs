//! Retention of impressions and insights: bounded deletes (`upkeep::insights` calls them
//! until a call deletes less than its limit, so no statement deletes more than that).

use super::{Store, StoreError};

impl Store {
    /// Deletes up to `limit` raw impressions received before `before_ms`, and as many batch
    /// ids; returns how many impressions went. Called repeatedly until it returns less than
    /// `limit`, so no statement deletes more than `limit` rows.
    pub async fn purge_impressions(&self, before_ms: i64, limit: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM impressions WHERE id IN \
             (SELECT id FROM impressions WHERE received_at < $1 ORDER BY received_at LIMIT $2)",
        )
        .bind(before_ms)
        .bind(limit)
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "DELETE FROM insight_batches WHERE id IN \
             (SELECT id FROM insight_batches WHERE received_at < $1 ORDER BY received_at LIMIT $2)",
        )
        .bind(before_ms)
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes up to `limit` rollup rows and up to `limit` counter rows that start before
    /// `before_minute`, and flags' activity last seen before it; returns how many rows went.
    pub async fn purge_insights(&self, before_minute: i64, limit: i64) -> Result<u64, StoreError> {
        let mut gone = 0;
        for (table, last) in [
            ("impression_rollups", "value"),
            ("evaluation_counts", "variant"),
        ] {
            let sql = format!(
                "DELETE FROM {table} WHERE (environment_id, flag_key, span, start, {last}) IN \
                 (SELECT environment_id, flag_key, span, start, {last} FROM {table} \
                 WHERE start < $1 ORDER BY start LIMIT $2)"
            );
            gone += sqlx::query(&sql)
                .bind(before_minute)
                .bind(limit)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        gone += sqlx::query(
            "DELETE FROM impression_user_parts WHERE id IN \
             (SELECT id FROM impression_user_parts WHERE hour < $1 ORDER BY id LIMIT $2)",
        )
        .bind(before_minute)
        .bind(limit)
        .execute(&self.pool)
        .await?
        .rows_affected();
        gone += sqlx::query(
            "DELETE FROM flag_activity WHERE (environment_id, flag_key) IN \
             (SELECT environment_id, flag_key FROM flag_activity WHERE last_seen < $1 LIMIT $2)",
        )
        .bind(before_minute.saturating_mul(60_000))
        .bind(limit)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(gone)
    }
}

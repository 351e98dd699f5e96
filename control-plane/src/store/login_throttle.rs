//! The sign-in throttle's counts (`api::limiter` holds the policy): fixed windows of failures
//! per key, and the pairs that signed in before. In the store, so every control-plane instance
//! on one database counts the same failures, and a restart forgets none.
//!
//! An attempt is charged up front, in one transaction, and refused — nothing charged — when a
//! key it is checked against would go past its limit: on PostgreSQL the upsert locks each
//! key's row until the transaction ends, so parallel guesses are counted one after another
//! (SQLite's write transaction is exclusive already). Keys are taken in the order given, the
//! same order for every attempt, so two attempts cannot wait on each other.

use super::{Backend, Store, StoreError};

/// Rows one purge statement deletes at most, and statements one purge runs at most per table
/// (what is left waits for the next purge).
const PURGE_BATCH: u64 = 10_000;
const PURGE_STATEMENTS: usize = 100;

/// One key an attempt is charged to.
#[derive(Debug, Clone, Copy)]
pub struct Charge<'a> {
    /// `pair`, `address`, `account` or `device`.
    pub scope: &'static str,
    pub key: &'a str,
    /// The failures allowed in a window; `None`: charged, but not checked.
    pub limit: Option<u32>,
}

/// Seconds until a window that started at `started` ends, at least 1.
fn wait_seconds(started: i64, now: i64, window: i64) -> u64 {
    let left = (started + window - now).max(0);
    ((left + 999) / 1000).max(1) as u64
}

impl Store {
    /// Charges one failure to each of `charges` (a window older than `window` ms starts
    /// again), or, when one checked key is at its limit, charges nothing and says how many
    /// seconds to wait.
    pub async fn charge_login(
        &self,
        charges: &[Charge<'_>],
        now: i64,
        window: i64,
    ) -> Result<Result<(), u64>, StoreError> {
        // A look first, without writing: an attempt refused already costs one read per key.
        let mut wait = None;
        for charge in charges {
            let Some(limit) = charge.limit else { continue };
            let row: Option<(i64, i64)> = sqlx::query_as(
                "SELECT started, failures FROM login_windows WHERE scope = $1 AND key = $2",
            )
            .bind(charge.scope)
            .bind(charge.key)
            .fetch_optional(&self.pool)
            .await?;
            if let Some((started, failures)) = row
                && started > now - window
                && failures >= i64::from(limit)
            {
                wait = wait.max(Some(wait_seconds(started, now, window)));
            }
        }
        if let Some(wait) = wait {
            return Ok(Err(wait));
        }
        let mut tx = self.write().await?;
        for charge in charges {
            let (started, failures): (i64, i64) = sqlx::query_as(
                "INSERT INTO login_windows (scope, key, started, failures) VALUES ($1, $2, $3, 1) \
                 ON CONFLICT (scope, key) DO UPDATE SET \
                 started = CASE WHEN login_windows.started <= $4 THEN $3 ELSE login_windows.started END, \
                 failures = CASE WHEN login_windows.started <= $4 THEN 1 ELSE login_windows.failures + 1 END \
                 RETURNING started, failures",
            )
            .bind(charge.scope)
            .bind(charge.key)
            .bind(now)
            .bind(now - window)
            .fetch_one(&mut *tx)
            .await?;
            if let Some(limit) = charge.limit
                && failures > i64::from(limit)
            {
                wait = wait.max(Some(wait_seconds(started, now, window)));
            }
        }
        if let Some(wait) = wait {
            tx.rollback().await?;
            return Ok(Err(wait));
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Whether the pair `key` signed in before (and was not forgotten).
    pub async fn login_known(&self, key: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT at FROM login_known WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// A right attempt: each of `cleared` starts again, each of `refunded` gets back the
    /// failure it was charged, and the pair `known` (if any) is remembered as of `now`.
    pub async fn login_succeeded(
        &self,
        cleared: &[(&str, &str)],
        refunded: &[(&str, &str)],
        known: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        for (scope, key) in cleared {
            sqlx::query("DELETE FROM login_windows WHERE scope = $1 AND key = $2")
                .bind(*scope)
                .bind(*key)
                .execute(&mut *tx)
                .await?;
        }
        for (scope, key) in refunded {
            sqlx::query(
                "UPDATE login_windows SET failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END \
                 WHERE scope = $1 AND key = $2",
            )
            .bind(*scope)
            .bind(*key)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(key) = known {
            sqlx::query(
                "INSERT INTO login_known (key, at) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET at = $2",
            )
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes windows that started before `windows_before` and pairs last signed in before
    /// `known_before`, in batches, passing over rows an attempt holds (PostgreSQL); how many
    /// rows.
    pub async fn purge_login_throttle(
        &self,
        windows_before: i64,
        known_before: i64,
    ) -> Result<u64, StoreError> {
        let skip_locked = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let statements = [
            (
                format!(
                    "DELETE FROM login_windows WHERE (scope, key) IN (SELECT scope, key \
                     FROM login_windows WHERE started < $1 LIMIT {PURGE_BATCH}{skip_locked})"
                ),
                windows_before,
            ),
            (
                format!(
                    "DELETE FROM login_known WHERE key IN (SELECT key FROM login_known \
                     WHERE at < $1 LIMIT {PURGE_BATCH}{skip_locked})"
                ),
                known_before,
            ),
        ];
        let mut purged = 0;
        for (statement, before) in &statements {
            for _ in 0..PURGE_STATEMENTS {
                let done = sqlx::query(statement)
                    .bind(before)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                purged += done;
                if done < PURGE_BATCH {
                    break;
                }
            }
        }
        Ok(purged)
    }
}

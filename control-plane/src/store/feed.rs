//! What the change feed reads from the store: every environment's head, a consistent snapshot of
//! one environment, the oldest change still kept, and compaction of old change rows.

use super::{Backend, Store, StoreError, now_ms};

/// An environment as the feed describes it to edges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEnvironment {
    pub id: String,
    pub project_id: String,
    pub slug: String,
    pub name: String,
    /// The head: the version of its last change.
    pub version: u64,
}

/// An SDK key as the feed carries it: the hash, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSdkKey {
    pub id: String,
    /// `server` or `client`.
    pub kind: String,
    /// SHA-256 of the key, hex.
    pub hash: String,
    pub prefix: String,
}

/// Everything an environment holds, read in one consistent transaction: every item's version
/// is at most `version`, and every change up to `version` is reflected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotData {
    pub env: FeedEnvironment,
    /// `(key, version, canonical JSON)`, by key.
    pub flags: Vec<(String, u64, String)>,
    /// `(key, version, canonical JSON)`, by key.
    pub segments: Vec<(String, u64, String)>,
    /// The live (unrevoked) keys, by id.
    pub sdk_keys: Vec<FeedSdkKey>,
    /// The environment's serving settings, as JSON.
    pub settings: String,
}

type EnvRow = (String, String, String, String, i64);
type ItemRow = (String, i64, String);

fn feed_env((id, project_id, slug, name, version): EnvRow) -> FeedEnvironment {
    FeedEnvironment {
        id,
        project_id,
        slug,
        name,
        version: version.max(0) as u64,
    }
}

fn items(rows: Vec<ItemRow>) -> Vec<(String, u64, String)> {
    rows.into_iter()
        .map(|(key, version, doc)| (key, version.max(0) as u64, doc))
        .collect()
}

impl Store {
    /// Every environment with its head, for the feed's poller and for the environments an edge
    /// token grants.
    pub async fn feed_environments(&self) -> Result<Vec<FeedEnvironment>, StoreError> {
        let rows: Vec<EnvRow> = sqlx::query_as(
            "SELECT id, project_id, slug, name, version FROM environments ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(feed_env).collect())
    }

    /// A consistent snapshot of one environment; `None` when it does not exist (any more).
    pub async fn feed_snapshot(&self, env: &str) -> Result<Option<SnapshotData>, StoreError> {
        // One read snapshot for every statement below: REPEATABLE READ on PostgreSQL; on SQLite
        // (WAL) a read transaction sees the database as of its first read.
        let mut tx = match self.backend {
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
            Backend::Sqlite => self.pool.begin().await?,
        };
        let row: Option<(String, String, String, String, i64, String)> = sqlx::query_as(
            "SELECT id, project_id, slug, name, version, settings FROM environments WHERE id = $1",
        )
        .bind(env)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, project_id, slug, name, version, settings)) = row else {
            return Ok(None);
        };
        let row = (id, project_id, slug, name, version);
        let flags: Vec<ItemRow> = sqlx::query_as(
            "SELECT key, version, doc FROM flags WHERE environment_id = $1 ORDER BY key",
        )
        .bind(env)
        .fetch_all(&mut *tx)
        .await?;
        let segments: Vec<ItemRow> = sqlx::query_as(
            "SELECT key, version, doc FROM segments WHERE environment_id = $1 ORDER BY key",
        )
        .bind(env)
        .fetch_all(&mut *tx)
        .await?;
        let keys: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT id, kind, key_hash, prefix FROM sdk_keys \
             WHERE environment_id = $1 AND revoked_at IS NULL ORDER BY id",
        )
        .bind(env)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(SnapshotData {
            env: feed_env(row),
            flags: items(flags),
            segments: items(segments),
            sdk_keys: keys
                .into_iter()
                .map(|(id, kind, hash, prefix)| FeedSdkKey {
                    id,
                    kind,
                    hash,
                    prefix,
                })
                .collect(),
            settings,
        }))
    }

    /// The oldest change of `env` still kept, `None` when none is. An edge at position `p` can
    /// be sent changes when `p + 1` is at least this; otherwise it needs a snapshot.
    pub async fn oldest_change(&self, env: &str) -> Result<Option<u64>, StoreError> {
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT MIN(version) FROM changes WHERE environment_id = $1")
                .bind(env)
                .fetch_one(&self.pool)
                .await?;
        Ok(oldest.map(|v| v.max(0) as u64))
    }

    /// Deletes change rows that edges no longer need: all but the newest `keep` of each
    /// environment, and those of deleted environments older than `deleted_after_ms`. An edge
    /// further behind gets a snapshot instead. Returns how many rows went.
    pub async fn compact_changes(
        &self,
        keep: u64,
        deleted_after_ms: i64,
    ) -> Result<u64, StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let mut tx = self.write().await?;
        let old = sqlx::query(
            "DELETE FROM changes WHERE version <= \
             (SELECT e.version FROM environments e WHERE e.id = changes.environment_id) - $1",
        )
        .bind(keep)
        .execute(&mut *tx)
        .await?;
        let orphaned = sqlx::query(
            "DELETE FROM changes WHERE at < $1 AND NOT EXISTS \
             (SELECT 1 FROM environments e WHERE e.id = changes.environment_id)",
        )
        .bind(now_ms() - deleted_after_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(old.rows_affected() + orphaned.rows_affected())
    }
}

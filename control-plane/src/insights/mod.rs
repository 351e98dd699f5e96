//! Impressions and evaluation insights: the ingest service every way in calls — the public
//! `POST /api/environments/{env}/impressions`, and the edges' batches over the feed — and the
//! reads the dashboard's routes make of the rollups (`read.rs`).
//!
//! [`Insights::store_batch`] checks every item (one bad item refuses the batch, naming its
//! index; nothing is stored), applies the environment's privacy settings (what of the context
//! is kept; a keyed hash instead of the user id), and stores the batch with its rollups in one
//! transaction, once per batch id. [`Insights::store_counts`] adds an edge's evaluation
//! counters, once per id.
//!
//! The user-id hash is HMAC-SHA256 under a key derived from `SESSION_SECRET` for this purpose
//! alone (`SessionKey::derive`), over the environment id and the user id: nothing is stored
//! that a guess of a user id could be checked against without the secret, and the same user
//! hashes differently in two environments. Changing `SESSION_SECRET` changes the hashes, so
//! users hashed before and after count as different users.

pub mod read;
pub mod sketch;
mod sketch_cache;
mod unique;

use std::sync::Arc;

use checkgate_protocol::EnvironmentSettings;
use checkgate_protocol::impressions::{
    EvaluationCounts, Impression, ImpressionBatch, MAX_BATCH_ITEMS, MAX_COUNTS, MAX_VALUE,
    check_flag_key,
};

use crate::api::SessionKey;
use crate::store::impressions::{NewCount, NewImpression};
use crate::store::{Store, StoreError, now_ms};

/// A span and a range of rollup starts `[a, b)` at it, in minutes.
pub type Piece = (i64, i64, i64);

/// Days raw impressions are kept (`IMPRESSIONS_RETENTION_DAYS`).
pub const IMPRESSIONS_RETENTION_DAYS: u32 = 30;
/// Days rollups and counters are kept (`INSIGHTS_RETENTION_DAYS`).
pub const INSIGHTS_RETENTION_DAYS: u32 = 400;
/// Days without evaluations, or serving one value, after which a flag is stale
/// (`STALE_AFTER_DAYS`).
pub const STALE_AFTER_DAYS: u32 = 30;

const DAY_MS: i64 = 86_400_000;

/// How long insights are kept and when a flag counts as stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsightsSettings {
    pub impressions_retention_days: u32,
    pub insights_retention_days: u32,
    pub stale_after_days: u32,
}

impl Default for InsightsSettings {
    fn default() -> Self {
        Self {
            impressions_retention_days: IMPRESSIONS_RETENTION_DAYS,
            insights_retention_days: INSIGHTS_RETENTION_DAYS,
            stale_after_days: STALE_AFTER_DAYS,
        }
    }
}

/// Why a batch or counters were refused. Nothing of a refused batch is stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("a batch holds at most {max} items; this one has {got}")]
    TooLarge { got: usize, max: usize },
    #[error("item {index}: {reason}")]
    Invalid { index: usize, reason: String },
    #[error("environment {0:?} not found")]
    UnknownEnvironment(String),
    #[error("item {index}: environment {environment:?} is not this sender's")]
    NotAllowed { index: usize, environment: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored now: this many items (impressions, or counters).
    New(usize),
    /// A batch of this id was stored before; nothing changed.
    Duplicate,
}

/// The key user ids are hashed under.
#[derive(Clone)]
struct UserIdKey([u8; 32]);

impl std::fmt::Debug for UserIdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserIdKey(<redacted>)")
    }
}

/// The ingest service and the insights reads.
#[derive(Debug, Clone)]
pub struct Insights {
    store: Store,
    user_key: UserIdKey,
    settings: InsightsSettings,
    /// Merged users sketches of past ranges (`read.rs`).
    sketches: Arc<sketch_cache::SketchCache>,
}

fn batch_key(kind: &str, id: &[u8; 16]) -> String {
    let mut out = String::with_capacity(2 + 32);
    out.push_str(kind);
    for b in id {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

impl Insights {
    pub fn new(store: Store, session_key: &SessionKey, settings: InsightsSettings) -> Self {
        Self {
            store,
            user_key: UserIdKey(session_key.derive("checkgate impression user id v1")),
            settings,
            sketches: Arc::new(sketch_cache::SketchCache::new(sketch_cache::CAPACITY)),
        }
    }

    pub fn settings(&self) -> InsightsSettings {
        self.settings
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The earliest `evaluated_at` accepted now: older impressions would be deleted at once.
    fn oldest_accepted(&self, now: i64) -> i64 {
        now - i64::from(self.settings.impressions_retention_days) * DAY_MS
    }

    /// The stored form of a user id under the environment's settings.
    fn user_id(&self, settings: &EnvironmentSettings, env: &str, user: String) -> String {
        if !settings.impressions.hash_user_id {
            return user;
        }
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.user_key.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
        mac.update(env.as_bytes());
        mac.update(&[0]);
        mac.update(user.as_bytes());
        let digest = mac.finalize().into_bytes();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Stores a batch of one environment's impressions (an edge's), once per batch id.
    /// `may_write` says whether the sender may write the batch's environment (the edge's
    /// grant); when it may not, nothing is stored. The edge accepted these items already (and
    /// answered 204): one older than this control plane keeps raw impressions — a shorter
    /// `IMPRESSIONS_RETENTION_DAYS` than the edge's check, or a batch held long while the
    /// control plane was away — is left out and counted, not a reason to refuse the others.
    pub async fn store_batch(
        &self,
        batch: &ImpressionBatch,
        may_write: impl Fn(&str) -> bool,
    ) -> Result<Stored, IngestError> {
        if !may_write(&batch.environment) {
            return Err(IngestError::NotAllowed {
                index: 0,
                environment: batch.environment.clone(),
            });
        }
        let now = now_ms();
        let oldest = self.oldest_accepted(now);
        let expired = batch
            .items
            .iter()
            .filter(|i| i.evaluated_at < oldest)
            .count();
        let kept: Vec<Impression>;
        let items = if expired == 0 {
            &batch.items[..]
        } else {
            metrics::counter!("checkgate_impressions_expired_total").increment(expired as u64);
            kept = batch
                .items
                .iter()
                .filter(|i| i.evaluated_at >= oldest)
                .cloned()
                .collect();
            &kept[..]
        };
        self.ingest_at(
            now,
            Some(batch_key("i", &batch.id)),
            &batch.environment,
            items,
        )
        .await
    }

    /// Checks, filters and stores impressions of `environment`; with `batch`, once.
    pub(crate) async fn ingest(
        &self,
        batch: Option<String>,
        environment: &str,
        items: &[Impression],
    ) -> Result<Stored, IngestError> {
        self.ingest_at(now_ms(), batch, environment, items).await
    }

    /// [`Self::ingest`] as of `now` (Unix ms).
    async fn ingest_at(
        &self,
        now: i64,
        batch: Option<String>,
        environment: &str,
        items: &[Impression],
    ) -> Result<Stored, IngestError> {
        if items.len() > MAX_BATCH_ITEMS {
            return Err(IngestError::TooLarge {
                got: items.len(),
                max: MAX_BATCH_ITEMS,
            });
        }
        let oldest = self.oldest_accepted(now);
        for (index, item) in items.iter().enumerate() {
            item.check(now, oldest)
                .map_err(|e| IngestError::Invalid { index, reason: e.0 })?;
        }
        let settings = match self.store.environment_settings(environment).await {
            Ok(settings) => settings,
            Err(StoreError::NotFound(_)) => {
                return Err(IngestError::UnknownEnvironment(environment.to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        let rows: Vec<NewImpression> = items
            .iter()
            .map(|item| NewImpression {
                flag_key: item.flag_key.clone(),
                user_id: item
                    .user_id
                    .clone()
                    .map(|u| self.user_id(&settings, environment, u)),
                value: item.value.clone(),
                context: settings.impressions.filter_context(item.context.as_deref()),
                evaluated_at: item.evaluated_at,
            })
            .collect();
        let stored = self
            .store
            .store_impressions(batch.as_deref(), environment, &rows, now)
            .await
            .map_err(|e| match e {
                // The environment was deleted meanwhile (its foreign key).
                StoreError::NotFound(_) => IngestError::UnknownEnvironment(environment.to_owned()),
                other => IngestError::Store(other),
            })?;
        Ok(if stored {
            Stored::New(rows.len())
        } else {
            Stored::Duplicate
        })
    }

    /// Adds an edge's evaluation counters, once per id. `may_write` says whether the sender may
    /// write an environment (the edge's grant); a counter of another environment refuses the
    /// whole batch. Counters of environments deleted meanwhile are dropped.
    pub async fn store_counts(
        &self,
        counts: &EvaluationCounts,
        may_write: impl Fn(&str) -> bool,
    ) -> Result<Stored, IngestError> {
        if counts.counts.len() > MAX_COUNTS {
            return Err(IngestError::TooLarge {
                got: counts.counts.len(),
                max: MAX_COUNTS,
            });
        }
        let now = now_ms();
        let newest = now.div_euclid(60_000) + 60;
        let oldest =
            (now - i64::from(self.settings.insights_retention_days) * DAY_MS).div_euclid(60_000);
        let mut rows = Vec::with_capacity(counts.counts.len());
        for (index, c) in counts.counts.iter().enumerate() {
            let invalid = |reason: String| IngestError::Invalid { index, reason };
            if !may_write(&c.environment) {
                return Err(IngestError::NotAllowed {
                    index,
                    environment: c.environment.clone(),
                });
            }
            check_flag_key(&c.flag_key).map_err(invalid)?;
            if c.variant.len() > MAX_VALUE {
                return Err(invalid(format!(
                    "variant must be at most {MAX_VALUE} bytes"
                )));
            }
            if c.minute < oldest || c.minute > newest {
                return Err(invalid("minute is outside the kept range".into()));
            }
            let count = i64::try_from(c.count)
                .ok()
                .filter(|n| *n > 0 && *n < i64::MAX / 4)
                .ok_or_else(|| invalid("count must be positive".into()))?;
            rows.push(NewCount {
                environment_id: c.environment.clone(),
                flag_key: c.flag_key.clone(),
                variant: c.variant.clone(),
                minute: c.minute,
                count,
            });
        }
        let live = self
            .store
            .existing_environments(rows.iter().map(|r| r.environment_id.as_str()))
            .await?;
        rows.retain(|r| live.contains(&r.environment_id));
        let stored = self
            .store
            .store_evaluation_counts(Some(&batch_key("c", &counts.id)), &rows, now)
            .await?;
        Ok(if stored {
            Stored::New(rows.len())
        } else {
            Stored::Duplicate
        })
    }

    /// Merges pending parts (counts and users) into the rollups, `batch` parts per transaction,
    /// at most `budget` transactions; returns how many parts it merged. Counts what it merged
    /// (`checkgate_impression_parts_merged_total`) after each transaction, and shows one in
    /// flight (`checkgate_impression_parts_merging` 1): with a month of traffic one can take
    /// seconds.
    pub async fn compact(&self, batch: i64, budget: usize) -> Result<usize, StoreError> {
        let mut merged = 0;
        for _ in 0..budget {
            metrics::gauge!("checkgate_impression_parts_merging").set(1.0);
            let n = self.store.compact_user_parts(batch).await;
            metrics::gauge!("checkgate_impression_parts_merging").set(0.0);
            let n = n?;
            metrics::counter!("checkgate_impression_parts_merged_total").increment(n as u64);
            merged += n;
            if (n as i64) < batch {
                break;
            }
        }
        Ok(merged)
    }

    /// Deletes what is past its retention, in batches of `batch` rows, until nothing is left
    /// or `budget` statements per kind ran, pausing `pause` between statements; returns the
    /// rows deleted (raw, then rollups and counters).
    pub async fn purge(
        &self,
        batch: i64,
        budget: usize,
        pause: std::time::Duration,
    ) -> Result<(u64, u64), StoreError> {
        let now = now_ms();
        let raw_before = now - i64::from(self.settings.impressions_retention_days) * DAY_MS;
        let rollups_before =
            (now - i64::from(self.settings.insights_retention_days) * DAY_MS).div_euclid(60_000);
        let (mut raw, mut rollups) = (0, 0);
        for _ in 0..budget {
            let n = self.store.purge_impressions(raw_before, batch).await?;
            raw += n;
            if n < batch.max(0) as u64 {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        for _ in 0..budget {
            let n = self.store.purge_insights(rollups_before, batch).await?;
            rollups += n;
            if n == 0 {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        Ok((raw, rollups))
    }
}

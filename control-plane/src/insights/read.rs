//! Reading insights from the rollups only (never from raw impressions): stats per flag over a
//! window, one flag's evaluations over time, and each flag's last evaluation and stale signal.
//!
//! A window `[from, to)` is cut into whole days, whole hours and single minutes
//! ([`cover`]), each read from its span's rollups, so counts are exact to the minute and a
//! 30-day window reads about 30 + 46 + 118 rows per flag and value, whatever the traffic.
//! Unique users come from the hour and day sketches, so they are counted over the window
//! widened to whole hours at its ends.

use std::collections::{BTreeMap, BTreeSet};

use super::{DAY_MS, Insights, Piece};
use crate::store::StoreError;
use crate::store::impressions::{DAY, FlagActivity, HOUR, MINUTE, RollupRow};

fn floor_to(x: i64, span: i64) -> i64 {
    x - x.rem_euclid(span)
}

fn ceil_to(x: i64, span: i64) -> i64 {
    floor_to(x + span - 1, span)
}

/// Cuts the minutes `[lo, hi)` into whole days, then whole hours, then minutes: `(span, a, b)`
/// with starts in `[a, b)`.
pub fn cover(lo: i64, hi: i64) -> Vec<Piece> {
    fn cut(lo: i64, hi: i64, spans: &[i64], out: &mut Vec<Piece>) {
        if lo >= hi {
            return;
        }
        let Some((&span, rest)) = spans.split_first() else {
            return;
        };
        let (a, b) = (ceil_to(lo, span), floor_to(hi, span));
        if span == MINUTE || a < b {
            let (a, b) = if span == MINUTE { (lo, hi) } else { (a, b) };
            out.push((span, a, b));
            cut(lo, a, rest, out);
            cut(b, hi, rest, out);
        } else {
            cut(lo, hi, rest, out);
        }
    }
    let mut out = Vec::new();
    cut(lo, hi, &[DAY, HOUR, MINUTE], &mut out);
    out
}

/// One value's share of a flag's stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueStats {
    pub value: String,
    pub count: i64,
    pub unique_users: u64,
}

/// A flag's impressions over a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagStats {
    pub flag_key: String,
    pub total: i64,
    pub true_count: i64,
    pub false_count: i64,
    pub unique_users: u64,
    /// Unix milliseconds; `None` when nothing was seen in the window.
    pub last_seen: Option<i64>,
    /// By value, largest count first.
    pub values: Vec<ValueStats>,
}

/// Why a flag is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// Not evaluated for `STALE_AFTER_DAYS` (and older than that).
    NotEvaluated,
    /// Every evaluation for `STALE_AFTER_DAYS` served the same value.
    SingleValue,
}

impl Stale {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotEvaluated => "not_evaluated",
            Self::SingleValue => "single_value",
        }
    }
}

/// A flag on the flag list: when it was last evaluated, and whether it is stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagSummary {
    pub flag_key: String,
    pub last_evaluated: Option<i64>,
    pub stale: Option<Stale>,
}

/// One bucket of a flag's series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Unix milliseconds of the bucket's start.
    pub at: i64,
    pub evaluations: i64,
    pub impressions: i64,
}

/// One flag's evaluations over a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagInsights {
    pub from: i64,
    pub to: i64,
    pub bucket_minutes: i64,
    pub series: Vec<Bucket>,
    /// By value: (value, evaluations counted by edges, impressions reported).
    pub values: Vec<(String, i64, i64)>,
    pub evaluations: i64,
    pub impressions: i64,
    pub unique_users: u64,
    pub summary: FlagSummary,
}

fn stale(
    created_at: i64,
    activity: Option<&FlagActivity>,
    recent_values: usize,
    now: i64,
    after_ms: i64,
) -> Option<Stale> {
    let cutoff = now - after_ms;
    match activity {
        None if created_at <= cutoff => Some(Stale::NotEvaluated),
        Some(a) if a.last_seen < cutoff && created_at <= cutoff => Some(Stale::NotEvaluated),
        Some(a) if a.first_seen <= cutoff && recent_values == 1 => Some(Stale::SingleValue),
        _ => None,
    }
}

impl Insights {
    /// Stats per flag over `[from_ms, to_ms)`, from the rollups.
    pub async fn stats(
        &self,
        env: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<FlagStats>, StoreError> {
        let (lo, hi) = (from_ms.div_euclid(60_000), ceil_to(to_ms, 60_000) / 60_000);
        let store = self.store();
        let mut counts: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        // The sketch rows of each piece: a minute piece's users are in the hours that hold it.
        let mut pieces: Vec<(Piece, Vec<RollupRow>)> = Vec::new();
        for (span, a, b) in cover(lo, hi) {
            let rows = if span == MINUTE {
                store.minute_sums(env, (a, b)).await?
            } else {
                store.impression_rollups(env, span, (a, b), None).await?
            };
            for row in &rows {
                let entry = counts
                    .entry((row.flag_key.clone(), row.value.clone()))
                    .or_insert((0, 0));
                entry.0 += row.count;
                entry.1 = entry.1.max(row.last_seen);
            }
            if span == MINUTE {
                let hours = (floor_to(a, HOUR), ceil_to(b, HOUR));
                let rows = store.impression_rollups(env, HOUR, hours, None).await?;
                pieces.push(((HOUR, hours.0, hours.1), rows));
            } else {
                pieces.push(((span, a, b), rows));
            }
        }
        let sketches = self.window_sketches(env, &pieces).await?;
        // Batches whose parts are not merged into the rollups yet.
        let mut pending: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
        for part in store
            .pending_parts(env, (floor_to(lo, HOUR), ceil_to(hi, HOUR)), None)
            .await?
        {
            if let Some(c) = part.counts
                && (lo..hi).contains(&c.minute)
            {
                let entry = counts
                    .entry((part.flag_key.clone(), part.value.clone()))
                    .or_insert((0, 0));
                entry.0 += c.count;
                entry.1 = entry.1.max(c.last_seen);
            }
            pending
                .entry((part.flag_key, part.value))
                .or_default()
                .extend(part.users);
        }
        let window: Vec<Piece> = pieces.iter().map(|(p, _)| *p).collect();
        let uniques = self.unique_users(env, &window, &sketches, &pending);
        counts.retain(|_, (count, _)| *count > 0);
        let mut flags: BTreeMap<String, FlagStats> = BTreeMap::new();
        for ((flag, value), (count, last_seen)) in counts {
            let stats = flags.entry(flag.clone()).or_insert_with(|| FlagStats {
                unique_users: uniques.per_flag.get(&flag).copied().unwrap_or(0),
                flag_key: flag.clone(),
                total: 0,
                true_count: 0,
                false_count: 0,
                last_seen: None,
                values: Vec::new(),
            });
            stats.total += count;
            match value.as_str() {
                "true" => stats.true_count += count,
                "false" => stats.false_count += count,
                _ => {}
            }
            stats.last_seen = stats.last_seen.max(Some(last_seen));
            let unique = uniques
                .per_value
                .get(&(flag, value.clone()))
                .copied()
                .unwrap_or(0);
            stats.values.push(ValueStats {
                value,
                count,
                unique_users: unique,
            });
        }
        for stats in flags.values_mut() {
            stats
                .values
                .sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
        }
        Ok(flags.into_values().collect())
    }

    /// The values each flag served (impressions and edge counters) in the last
    /// `STALE_AFTER_DAYS`, counted by day.
    async fn recent_values(
        &self,
        env: &str,
        flag: Option<&str>,
        now: i64,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
        let day = now.div_euclid(60_000);
        let from = floor_to(day, DAY) - i64::from(self.settings.stale_after_days) * DAY;
        let range = (from, floor_to(day, DAY) + DAY);
        let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for row in self
            .store()
            .impression_rollups(env, DAY, range, flag)
            .await?
        {
            values.entry(row.flag_key).or_default().insert(row.value);
        }
        for row in self
            .store()
            .evaluation_counters(env, DAY, range, flag)
            .await?
        {
            values.entry(row.flag_key).or_default().insert(row.variant);
        }
        for part in self.store().pending_parts(env, range, flag).await? {
            values.entry(part.flag_key).or_default().insert(part.value);
        }
        Ok(values)
    }

    /// Every flag of the environment with its last evaluation and stale signal, by key.
    pub async fn flag_list(&self, env: &str) -> Result<Vec<FlagSummary>, StoreError> {
        let now = crate::store::now_ms();
        let flags = self.store().flag_keys(env).await?;
        let activity: BTreeMap<String, FlagActivity> = self
            .store()
            .flag_activity(env)
            .await?
            .into_iter()
            .map(|a| (a.flag_key.clone(), a))
            .collect();
        let recent = self.recent_values(env, None, now).await?;
        let after = i64::from(self.settings.stale_after_days) * DAY_MS;
        Ok(flags
            .into_iter()
            .map(|(key, created_at)| {
                let seen = activity.get(&key);
                let values = recent.get(&key).map_or(0, BTreeSet::len);
                FlagSummary {
                    last_evaluated: seen.map(|a| a.last_seen),
                    stale: stale(created_at, seen, values, now, after),
                    flag_key: key,
                }
            })
            .collect())
    }

    /// One flag over the last `range_minutes`, in buckets of `bucket` minutes (1, 60 or 1440).
    pub async fn flag_insights(
        &self,
        env: &str,
        flag: &str,
        created_at: i64,
        range_minutes: i64,
        bucket: i64,
    ) -> Result<FlagInsights, StoreError> {
        let now = crate::store::now_ms();
        let hi = ceil_to(now.div_euclid(60_000) + 1, bucket);
        let lo = hi - range_minutes;
        let store = self.store();
        let buckets = usize::try_from((hi - lo) / bucket).unwrap_or(0);
        let mut series: Vec<Bucket> = (0..buckets)
            .map(|i| Bucket {
                at: (lo + i as i64 * bucket) * 60_000,
                evaluations: 0,
                impressions: 0,
            })
            .collect();
        let slot = |start: i64| usize::try_from((start - lo) / bucket).ok();
        let mut values: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let sketch_span = if bucket == DAY { DAY } else { HOUR };
        for row in store
            .impression_rollups(env, bucket, (lo, hi), Some(flag))
            .await?
        {
            if let Some(b) = slot(row.start).and_then(|i| series.get_mut(i)) {
                b.impressions += row.count;
            }
            values.entry(row.value).or_default().1 += row.count;
        }
        let sketches = (floor_to(lo, sketch_span), ceil_to(hi, sketch_span));
        let rows = store
            .impression_rollups(env, sketch_span, sketches, Some(flag))
            .await?;
        let piece = (sketch_span, sketches.0, sketches.1);
        let stored = self.window_sketches(env, &[(piece, rows)]).await?;
        let mut pending: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
        for part in store.pending_parts(env, sketches, Some(flag)).await? {
            if let Some(c) = part.counts
                && (lo..hi).contains(&c.minute)
            {
                if let Some(b) = slot(c.minute).and_then(|i| series.get_mut(i)) {
                    b.impressions += c.count;
                }
                values.entry(part.value.clone()).or_default().1 += c.count;
            }
            pending
                .entry((part.flag_key, part.value))
                .or_default()
                .extend(part.users);
        }
        let unique_users = self
            .unique_users(env, &[piece], &stored, &pending)
            .per_flag
            .get(flag)
            .copied()
            .unwrap_or(0);
        for row in store
            .evaluation_counters(env, bucket, (lo, hi), Some(flag))
            .await?
        {
            if let Some(b) = slot(row.start).and_then(|i| series.get_mut(i)) {
                b.evaluations += row.count;
            }
            values.entry(row.variant).or_default().0 += row.count;
        }
        let activity = store
            .flag_activity(env)
            .await?
            .into_iter()
            .find(|a| a.flag_key == flag);
        let recent = self.recent_values(env, Some(flag), now).await?;
        let after = i64::from(self.settings.stale_after_days) * DAY_MS;
        let summary = FlagSummary {
            flag_key: flag.to_owned(),
            last_evaluated: activity.as_ref().map(|a| a.last_seen),
            stale: stale(
                created_at,
                activity.as_ref(),
                recent.get(flag).map_or(0, BTreeSet::len),
                now,
                after,
            ),
        };
        let mut values: Vec<(String, i64, i64)> =
            values.into_iter().map(|(v, (e, i))| (v, e, i)).collect();
        values.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then(a.0.cmp(&b.0)));
        Ok(FlagInsights {
            from: lo * 60_000,
            to: hi * 60_000,
            bucket_minutes: bucket,
            evaluations: series.iter().map(|b| b.evaluations).sum(),
            impressions: series.iter().map(|b| b.impressions).sum(),
            series,
            values,
            unique_users,
            summary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_cut_into_days_hours_and_minutes_that_tile_it() {
        for (lo, hi) in [
            (0, 1),
            (5, 7),
            (59, 61),
            (1439, 2881),
            (1_000_003, 1_050_017),
            (28_000_000, 28_000_000 + 30 * 1440),
            (100, 100),
        ] {
            let pieces = cover(lo, hi);
            let mut minutes = 0;
            for &(span, a, b) in &pieces {
                assert!(a % span == 0 && b % span == 0, "{span} {a} {b}");
                assert!(lo <= a && b <= hi && a < b);
                minutes += b - a;
            }
            assert_eq!(minutes, hi - lo, "{pieces:?}");
            // No overlap: sorted by start, each ends where the next begins or before.
            let mut sorted = pieces.clone();
            sorted.sort_by_key(|p| p.1);
            for w in sorted.windows(2) {
                assert!(w[0].2 <= w[1].1, "{pieces:?}");
            }
            assert!(pieces.len() <= 5, "{pieces:?}");
        }
    }

    #[test]
    fn stale_rules() {
        let now = 100 * DAY_MS;
        let after = 30 * DAY_MS;
        let old = now - 40 * DAY_MS;
        let new = now - DAY_MS;
        let seen = |first: i64, last: i64| FlagActivity {
            flag_key: "f".into(),
            first_seen: first,
            last_seen: last,
        };
        assert_eq!(stale(old, None, 0, now, after), Some(Stale::NotEvaluated));
        assert_eq!(stale(new, None, 0, now, after), None);
        assert_eq!(
            stale(old, Some(&seen(old, now - 31 * DAY_MS)), 0, now, after),
            Some(Stale::NotEvaluated)
        );
        assert_eq!(
            stale(old, Some(&seen(old, now)), 1, now, after),
            Some(Stale::SingleValue)
        );
        assert_eq!(stale(old, Some(&seen(old, now)), 2, now, after), None);
        assert_eq!(stale(old, Some(&seen(new, now)), 1, now, after), None);
    }
}

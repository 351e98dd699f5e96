//! Unique users over a window: the hour and day sketches of the window's pieces, merged per
//! flag and value and per flag, through the cache of merged sketches (`sketch_cache.rs`), plus
//! the users of parts not merged into the rollups yet.
//!
//! Merging sketches is what a stats call spends its time on, so each level is cached: one
//! value over one piece (what is read from the store), one value over the window, and a whole
//! flag over the window. While nothing in a window changes, a call merges nothing and counts
//! nothing; when one hour's sketch changes, only the values it belongs to are merged again,
//! from their other pieces' entries.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::sketch::Users;
use super::sketch_cache::{Fingerprint, Merged, Run};
use super::{Insights, Piece};
use crate::store::StoreError;
use crate::store::impressions::RollupRow;

/// A (flag, value).
type Pair = (String, String);

/// Per (flag, value) with users in the window: its merged sketch, and the fingerprint of the
/// rows it was merged from.
pub(super) type WindowSketches = BTreeMap<Pair, (Fingerprint, Arc<Merged>)>;

/// Unique users per (flag, value) and per flag.
#[derive(Debug, Default)]
pub(super) struct Uniques {
    pub per_value: BTreeMap<Pair, u64>,
    pub per_flag: BTreeMap<String, u64>,
}

/// `other` added to `slot`: a copy when the slot is empty, a merge otherwise.
fn add(slot: &mut Option<Users>, other: &Users) {
    match slot {
        Some(users) => users.merge(other),
        None => *slot = Some(other.clone()),
    }
}

fn decode(bytes: &[u8]) -> Result<Users, StoreError> {
    Users::from_bytes(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Insights {
    /// Merges, per (flag, value), the users sketches of the rows of `pieces` (the rollup rows of
    /// each piece, as read without their bytes).
    pub(super) async fn window_sketches(
        &self,
        env: &str,
        pieces: &[(Piece, Vec<RollupRow>)],
    ) -> Result<WindowSketches, StoreError> {
        let window: Vec<Piece> = pieces.iter().map(|(p, _)| *p).collect();
        let run = |flag: &str, value: &str, pieces: Vec<Piece>| Run {
            environment: env.to_owned(),
            flag_key: flag.to_owned(),
            value: Some(value.to_owned()),
            pieces,
        };
        // Each pair's fingerprint in each piece.
        let mut prints: BTreeMap<(&str, &str), Vec<Fingerprint>> = BTreeMap::new();
        for (i, ((span, _, _), rows)) in pieces.iter().enumerate() {
            for row in rows.iter().filter(|r| r.users_rev > 0) {
                prints
                    .entry((&row.flag_key, &row.value))
                    .or_insert_with(|| vec![Fingerprint::default(); pieces.len()])[i]
                    .add(*span, row.start, row.users_rev);
            }
        }
        let mut out = WindowSketches::new();
        let mut missing: BTreeSet<(&str, &str)> = BTreeSet::new();
        for (&(flag, value), per_piece) in &prints {
            let mut whole = Fingerprint::default();
            per_piece.iter().for_each(|f| whole.absorb(*f));
            match self.sketches.get(&run(flag, value, window.clone()), whole) {
                Some(hit) => {
                    out.insert((flag.to_owned(), value.to_owned()), (whole, hit));
                }
                None => {
                    missing.insert((flag, value));
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        // The pairs not cached over the window: their pieces' entries, cached or read.
        let mut built: BTreeMap<Pair, (Fingerprint, Vec<Arc<Merged>>)> = BTreeMap::new();
        for (i, &(piece, _)) in pieces.iter().enumerate() {
            let mut unread = Vec::new();
            for &pair in &missing {
                let fingerprint = prints[&pair][i];
                if fingerprint.rows() == 0 {
                    continue;
                }
                match self
                    .sketches
                    .get(&run(pair.0, pair.1, vec![piece]), fingerprint)
                {
                    Some(hit) => {
                        let (whole, entries) = built
                            .entry((pair.0.to_owned(), pair.1.to_owned()))
                            .or_default();
                        whole.absorb(fingerprint);
                        entries.push(hit);
                    }
                    None => unread.push((pair.0.to_owned(), pair.1.to_owned())),
                }
            }
            if unread.is_empty() {
                continue;
            }
            let (span, from, to) = piece;
            let mut read: BTreeMap<Pair, (Fingerprint, Option<Users>)> = BTreeMap::new();
            for row in self
                .store()
                .rollup_sketches(env, span, (from, to), &unread)
                .await?
            {
                let (fingerprint, merged) = read.entry((row.flag_key, row.value)).or_default();
                fingerprint.add(span, row.start, row.users_rev);
                add(merged, &decode(&row.users)?);
            }
            for ((flag, value), (fingerprint, users)) in read {
                let Some(users) = users else { continue };
                let entry = self
                    .sketches
                    .put(run(&flag, &value, vec![piece]), fingerprint, users);
                let (whole, entries) = built.entry((flag, value)).or_default();
                whole.absorb(fingerprint);
                entries.push(entry);
            }
        }
        for ((flag, value), (whole, entries)) in built {
            let merged = match entries.as_slice() {
                [] => continue,
                // Users in one piece only: that piece's entry is the window's (and, for a
                // window of one piece, under the same key), kept once.
                [only] => Arc::clone(only),
                several => {
                    let mut users = None;
                    for entry in several {
                        add(&mut users, &entry.users);
                    }
                    let users = users.unwrap_or_default();
                    self.sketches
                        .put(run(&flag, &value, window.clone()), whole, users)
                }
            };
            out.insert((flag, value), (whole, merged));
        }
        Ok(out)
    }

    /// Unique users per (flag, value) and per flag: the window's `sketches`, with the users of
    /// `pending` parts (hashes per (flag, value)) added.
    pub(super) fn unique_users(
        &self,
        env: &str,
        window: &[Piece],
        sketches: &WindowSketches,
        pending: &BTreeMap<Pair, Vec<u64>>,
    ) -> Uniques {
        let mut uniques = Uniques::default();
        // With pending users: the stored users copied, the pending added, then counted.
        let with_pending = |stored: Option<&Users>, hashes: &[u64]| {
            let mut users = stored.cloned().unwrap_or_default();
            hashes.iter().for_each(|&h| users.insert_hash(h));
            users.count()
        };
        // Per flag, per value: its window sketch and its pending users, either may be missing.
        type Sides<'a> = (Option<&'a (Fingerprint, Arc<Merged>)>, Option<&'a [u64]>);
        let mut flags: BTreeMap<&str, BTreeMap<&str, Sides<'_>>> = BTreeMap::new();
        for ((flag, value), stored) in sketches {
            flags.entry(flag).or_default().entry(value).or_default().0 = Some(stored);
        }
        for ((flag, value), hashes) in pending {
            flags.entry(flag).or_default().entry(value).or_default().1 = Some(hashes);
        }
        for (flag, values) in flags {
            for (&value, &(stored, hashes)) in &values {
                let merged = stored.map(|(_, m)| m);
                let count = match hashes {
                    Some(h) => with_pending(merged.map(|m| &m.users), h),
                    None => merged.map_or(0, |m| m.count),
                };
                uniques
                    .per_value
                    .insert((flag.to_owned(), value.to_owned()), count);
            }
            // The flag's stored users: one value's own entry, or the union of its values.
            let stored: Vec<(&str, &(Fingerprint, Arc<Merged>))> = values
                .iter()
                .filter_map(|(&value, &(stored, _))| stored.map(|s| (value, s)))
                .collect();
            let union: Option<Arc<Merged>> = match stored.as_slice() {
                [] => None,
                [(_, (_, only))] => Some(Arc::clone(only)),
                several => {
                    let mut whole = Fingerprint::default();
                    for (value, (fingerprint, _)) in several {
                        whole.absorb_value(value, *fingerprint);
                    }
                    let run = Run {
                        environment: env.to_owned(),
                        flag_key: flag.to_owned(),
                        value: None,
                        pieces: window.to_vec(),
                    };
                    Some(self.sketches.get(&run, whole).unwrap_or_else(|| {
                        let mut users = None;
                        for (_, (_, merged)) in several {
                            add(&mut users, &merged.users);
                        }
                        self.sketches.put(run, whole, users.unwrap_or_default())
                    }))
                }
            };
            let hashes: Vec<u64> = values
                .values()
                .filter_map(|(_, h)| *h)
                .flatten()
                .copied()
                .collect();
            let count = if hashes.is_empty() {
                union.map_or(0, |u| u.count)
            } else {
                with_pending(union.as_ref().map(|u| &u.users), &hashes)
            };
            uniques.per_flag.insert(flag.to_owned(), count);
        }
        uniques
    }
}

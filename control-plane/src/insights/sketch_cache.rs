//! Merged users sketches kept in memory, so a stats call does not read and merge the same
//! sketches of past days again.
//!
//! An entry is a run: one (environment, flag, value)'s sketches of one span over a range of starts,
//! merged, under a fingerprint of the rows it was merged from: their starts and their
//! `users_rev`, which the store raises each time it rewrites a sketch. A reader fingerprints
//! the rows it sees (without their bytes) and uses the entry only when the fingerprints match,
//! so a sketch rewritten since, a row added or a row deleted makes it read the bytes again.
//! Revisions only grow, so an entry whose fingerprint no longer matches is never used again;
//! it ages out. The cache holds at most [`CAPACITY`] entries (a dense sketch is about 13 KiB,
//! so at most about 27 MiB) and evicts the least recently used.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::sketch::Users;

/// The most merged sketches kept.
pub(crate) const CAPACITY: usize = 2048;

/// What an entry merges: an environment's sketches of one flag and value, of one span, with
/// starts in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Run {
    pub environment: String,
    pub flag_key: String,
    pub value: String,
    pub span: i64,
    pub from: i64,
    pub to: i64,
}

/// An order-independent fingerprint of the (start, revision) of the rows merged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    sum: u64,
    rows: u64,
}

/// SplitMix64's finaliser: spreads a row's (start, revision) over 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Fingerprint {
    pub(crate) fn add(&mut self, start: i64, revision: i64) {
        let row = mix(mix(start as u64) ^ (revision as u64).rotate_left(32));
        self.sum = self.sum.wrapping_add(row);
        self.rows += 1;
    }
}

#[derive(Debug)]
struct Entry {
    fingerprint: Fingerprint,
    users: Users,
    used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Run, Entry>,
    clock: u64,
}

/// The cache; shared by every clone of the insights service.
#[derive(Debug)]
pub(crate) struct SketchCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl SketchCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing here can be left half-changed by a panic: use the map as it is.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Merges the entry of `run` into `into` when its fingerprint is `fingerprint`; false
    /// (and `into` unchanged) otherwise.
    pub(crate) fn merge_into(&self, run: &Run, fingerprint: Fingerprint, into: &mut Users) -> bool {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        match inner.entries.get_mut(run) {
            Some(entry) if entry.fingerprint == fingerprint => {
                entry.used = now;
                into.merge(&entry.users);
                true
            }
            _ => false,
        }
    }

    /// Keeps `users` as the merge of `run`'s rows of `fingerprint`.
    pub(crate) fn put(&self, run: Run, fingerprint: Fingerprint, users: Users) {
        let mut inner = self.lock();
        inner.clock += 1;
        let used = inner.clock;
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&run) {
            let oldest = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                inner.entries.remove(&oldest);
            }
        }
        inner.entries.insert(
            run,
            Entry {
                fingerprint,
                users,
                used,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(flag: &str) -> Run {
        Run {
            environment: "e".into(),
            flag_key: flag.into(),
            value: "true".into(),
            span: 1440,
            from: 0,
            to: 1440 * 30,
        }
    }

    fn users(names: &[&str]) -> Users {
        let mut u = Users::new();
        for n in names {
            u.insert(n);
        }
        u
    }

    #[test]
    fn an_entry_is_used_only_under_its_fingerprint() {
        let cache = SketchCache::new(8);
        let mut fp = Fingerprint::default();
        fp.add(0, 1);
        fp.add(1440, 3);
        cache.put(run("a"), fp, users(&["x", "y"]));

        let mut into = users(&["z"]);
        assert!(cache.merge_into(&run("a"), fp, &mut into));
        assert_eq!(into.count(), 3);

        // The same rows in another order: the same fingerprint.
        let mut same = Fingerprint::default();
        same.add(1440, 3);
        same.add(0, 1);
        assert_eq!(same, fp);

        // A sketch rewritten since (its revision raised), a row more, a row less: not used.
        let mut rewritten = Fingerprint::default();
        rewritten.add(0, 2);
        rewritten.add(1440, 3);
        let mut more = fp;
        more.add(2880, 1);
        let mut less = Fingerprint::default();
        less.add(0, 1);
        for other in [rewritten, more, less] {
            let mut into = Users::new();
            assert!(!cache.merge_into(&run("a"), other, &mut into));
            assert_eq!(into.count(), 0);
        }
        // Another run: not used.
        assert!(!cache.merge_into(&run("b"), fp, &mut Users::new()));
    }

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let cache = SketchCache::new(2);
        let fp = Fingerprint::default();
        cache.put(run("a"), fp, users(&["1"]));
        cache.put(run("b"), fp, users(&["2"]));
        assert!(cache.merge_into(&run("a"), fp, &mut Users::new()));
        cache.put(run("c"), fp, users(&["3"]));
        assert_eq!(cache.len(), 2);
        assert!(cache.merge_into(&run("a"), fp, &mut Users::new()));
        assert!(!cache.merge_into(&run("b"), fp, &mut Users::new()));
        assert!(cache.merge_into(&run("c"), fp, &mut Users::new()));
    }
}

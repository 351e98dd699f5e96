//! Merged users sketches kept in memory, so a stats call does not read and merge the same
//! sketches again.
//!
//! An entry is a [`Run`]: the sketches of one environment's flag — of one value, or of all its
//! values — over some pieces (a span and a range of starts each), merged, under a fingerprint
//! of the rows it was merged from: their span, start and `users_rev`, which the store raises
//! each time it rewrites a sketch. A reader fingerprints the rows it sees (without their bytes)
//! and uses the entry only when the fingerprints match, so a sketch rewritten since, a row
//! added or a row deleted makes it merge again. Revisions only grow, so an entry whose
//! fingerprint no longer matches is never used again; it ages out.
//!
//! Readers keep three kinds of runs: one value over one piece (what a stats call reads from
//! the store), one value over a whole window's pieces, and all of a flag's values over a
//! window. A window's entries spare a stats call its merges while nothing in the window changed
//! (merging is where it spent its time), and each entry keeps its estimate, so such a call
//! counts nothing either. An entry is shared ([`Arc`]): a reader merges it outside the lock.
//!
//! The cache holds at most [`CAPACITY`] entries (a dense sketch is about 13 KiB, so at most
//! about 27 MiB) and evicts the least recently used.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use super::Piece;
use super::sketch::Users;

/// The most merged sketches kept.
pub(crate) const CAPACITY: usize = 2048;

/// What an entry merges: an environment's sketches of one flag — of `value`, or of all its
/// values when `None` — over `pieces`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Run {
    pub environment: String,
    pub flag_key: String,
    pub value: Option<String>,
    pub pieces: Vec<Piece>,
}

/// An order-independent fingerprint of the (span, start, revision) of the rows merged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    sum: u64,
    rows: u64,
}

/// SplitMix64's finaliser: spreads a row's (span, start, revision) over 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Fingerprint {
    pub(crate) fn add(&mut self, span: i64, start: i64, revision: i64) {
        let row = mix(mix(mix(span as u64) ^ start as u64) ^ (revision as u64).rotate_left(32));
        self.sum = self.sum.wrapping_add(row);
        self.rows += 1;
    }

    /// Adds the rows of `other` (rows of other pieces).
    pub(crate) fn absorb(&mut self, other: Self) {
        self.sum = self.sum.wrapping_add(other.sum);
        self.rows += other.rows;
    }

    /// Adds `other`, the fingerprint of one value's rows, tagged with that value so the rows of
    /// two values cannot stand in for each other.
    pub(crate) fn absorb_value(&mut self, value: &str, other: Self) {
        let mut hasher = DefaultHasher::new();
        value.hash(&mut hasher);
        self.sum = self.sum.wrapping_add(mix(other.sum ^ hasher.finish()));
        self.rows += other.rows;
    }

    /// How many rows it was made of.
    pub(crate) fn rows(self) -> u64 {
        self.rows
    }
}

/// A merged sketch and its estimate.
#[derive(Debug)]
pub(crate) struct Merged {
    pub users: Users,
    pub count: u64,
}

impl Merged {
    pub(crate) fn new(mut users: Users) -> Self {
        let count = users.count();
        Self { users, count }
    }
}

#[derive(Debug)]
struct Entry {
    fingerprint: Fingerprint,
    merged: Arc<Merged>,
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

    /// The entry of `run` when its fingerprint is `fingerprint`.
    pub(crate) fn get(&self, run: &Run, fingerprint: Fingerprint) -> Option<Arc<Merged>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        match inner.entries.get_mut(run) {
            Some(entry) if entry.fingerprint == fingerprint => {
                entry.used = now;
                Some(Arc::clone(&entry.merged))
            }
            _ => None,
        }
    }

    /// Keeps `users` as the merge of `run`'s rows of `fingerprint`; returns the entry.
    pub(crate) fn put(&self, run: Run, fingerprint: Fingerprint, users: Users) -> Arc<Merged> {
        // Estimated outside the lock.
        let merged = Arc::new(Merged::new(users));
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
                merged: Arc::clone(&merged),
                used,
            },
        );
        merged
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
            value: Some("true".into()),
            pieces: vec![(1440, 0, 1440 * 30)],
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
        fp.add(1440, 0, 1);
        fp.add(1440, 1440, 3);
        let put = cache.put(run("a"), fp, users(&["x", "y"]));
        assert_eq!(put.count, 2);

        let hit = cache.get(&run("a"), fp).expect("cached");
        assert_eq!(hit.count, 2);
        let mut into = users(&["z"]);
        into.merge(&hit.users);
        assert_eq!(into.count(), 3);

        // The same rows in another order: the same fingerprint.
        let mut same = Fingerprint::default();
        same.add(1440, 1440, 3);
        same.add(1440, 0, 1);
        assert_eq!(same, fp);

        // A sketch rewritten since (its revision raised), a row more, a row less, the same
        // starts and revisions at another span: not used.
        let mut rewritten = Fingerprint::default();
        rewritten.add(1440, 0, 2);
        rewritten.add(1440, 1440, 3);
        let mut more = fp;
        more.add(1440, 2880, 1);
        let mut less = Fingerprint::default();
        less.add(1440, 0, 1);
        let mut other_span = Fingerprint::default();
        other_span.add(60, 0, 1);
        other_span.add(60, 1440, 3);
        for other in [rewritten, more, less, other_span] {
            assert!(cache.get(&run("a"), other).is_none());
        }
        // Another run: not used.
        assert!(cache.get(&run("b"), fp).is_none());
    }

    #[test]
    fn values_tagged_into_a_flag_fingerprint_cannot_stand_in_for_each_other() {
        let (mut one, mut two) = (Fingerprint::default(), Fingerprint::default());
        one.add(60, 0, 1);
        two.add(60, 0, 2);
        let (mut a, mut b) = (Fingerprint::default(), Fingerprint::default());
        a.absorb_value("true", one);
        a.absorb_value("false", two);
        b.absorb_value("true", two);
        b.absorb_value("false", one);
        assert_ne!(a, b);
        assert_eq!(a.rows(), 2);
        // Untagged, the two would be one.
        let (mut c, mut d) = (one, two);
        c.absorb(two);
        d.absorb(one);
        assert_eq!(c, d);
    }

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let cache = SketchCache::new(2);
        let fp = Fingerprint::default();
        cache.put(run("a"), fp, users(&["1"]));
        cache.put(run("b"), fp, users(&["2"]));
        assert!(cache.get(&run("a"), fp).is_some());
        cache.put(run("c"), fp, users(&["3"]));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&run("a"), fp).is_some());
        assert!(cache.get(&run("b"), fp).is_none());
        assert!(cache.get(&run("c"), fp).is_some());
    }
}

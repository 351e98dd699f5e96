//! `FlagStore`: the compiled flags and segments of each environment, every entry versioned.
//!
//! Applying a change is idempotent and commutative per key: a change whose version is not newer
//! than the entry's is ignored, and deletes leave a versioned tombstone so that a late upsert
//! cannot bring a deleted flag back. Any duplication or reordering of a change sequence
//! therefore ends in the same store as applying it in order.
//!
//! The store does not reject a flag for referring to an unknown or cyclic prerequisite: whether
//! such a reference exists depends on the order changes arrive in, so rejecting would break
//! convergence. The control plane checks references when a flag is written (see
//! [`Environment::check_prerequisites`]); the evaluator bounds the depth.

use std::collections::HashSet;
use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;

use crate::compile::{CompiledFlag, CompiledSegment, compile_flag_json, compile_segment_json};
use crate::error::CompileError;
use crate::eval::{ErrorCode, Lookup, MAX_PREREQUISITE_DEPTH};

/// Which map a change goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKind {
    Flag,
    Segment,
}

/// One versioned change to an environment.
#[derive(Debug, Clone)]
pub enum Change {
    UpsertFlag {
        version: u64,
        flag: Arc<CompiledFlag>,
    },
    UpsertSegment {
        version: u64,
        segment: Arc<CompiledSegment>,
    },
    /// A document that did not compile here. It still takes its version, so the entry moves
    /// forward, and evaluating it reports `PARSE_ERROR`.
    Invalid {
        kind: ItemKind,
        key: Box<str>,
        version: u64,
        error: CompileError,
    },
    Delete {
        kind: ItemKind,
        key: Box<str>,
        version: u64,
    },
}

impl Change {
    /// Compiles a flag document received as JSON into a change.
    pub fn flag_json(key: &str, version: u64, json: &str) -> Self {
        match compile_flag_json(json) {
            Ok(flag) if flag.key() == key => Self::UpsertFlag {
                version,
                flag: Arc::new(flag),
            },
            Ok(flag) => Self::invalid(
                ItemKind::Flag,
                key,
                version,
                CompileError::new(
                    "key",
                    format!("{:?} does not match the entry key {key:?}", flag.key()),
                ),
            ),
            Err(error) => Self::invalid(ItemKind::Flag, key, version, error),
        }
    }

    /// Compiles a segment document received as JSON into a change.
    pub fn segment_json(key: &str, version: u64, json: &str) -> Self {
        match compile_segment_json(json) {
            Ok(segment) if segment.key() == key => Self::UpsertSegment {
                version,
                segment: Arc::new(segment),
            },
            Ok(segment) => Self::invalid(
                ItemKind::Segment,
                key,
                version,
                CompileError::new(
                    "key",
                    format!("{:?} does not match the entry key {key:?}", segment.key()),
                ),
            ),
            Err(error) => Self::invalid(ItemKind::Segment, key, version, error),
        }
    }

    fn invalid(kind: ItemKind, key: &str, version: u64, error: CompileError) -> Self {
        Self::Invalid {
            kind,
            key: key.into(),
            version,
            error,
        }
    }

    pub fn version(&self) -> u64 {
        match self {
            Self::UpsertFlag { version, .. }
            | Self::UpsertSegment { version, .. }
            | Self::Invalid { version, .. }
            | Self::Delete { version, .. } => *version,
        }
    }
}

/// What [`Environment::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The change was newer than the entry and replaced it.
    Changed,
    /// The entry already held this version or a newer one; nothing changed.
    Stale,
}

/// A stored entry.
#[derive(Debug, Clone)]
pub enum Entry<T> {
    Live {
        version: u64,
        item: Arc<T>,
    },
    Invalid {
        version: u64,
        error: Arc<CompileError>,
    },
    Deleted {
        version: u64,
    },
}

impl<T> Entry<T> {
    pub fn version(&self) -> u64 {
        match self {
            Self::Live { version, .. }
            | Self::Invalid { version, .. }
            | Self::Deleted { version } => *version,
        }
    }

    pub fn live(&self) -> Option<&Arc<T>> {
        match self {
            Self::Live { item, .. } => Some(item),
            _ => None,
        }
    }
}

/// The state of one entry, for comparing stores.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryState {
    /// Live, with the canonical JSON of its document.
    Live(String),
    Invalid(String),
    Deleted,
}

/// One environment's flags and segments.
#[derive(Debug, Default)]
pub struct Environment {
    flags: DashMap<Box<str>, Entry<CompiledFlag>>,
    segments: DashMap<Box<str>, Entry<CompiledSegment>>,
}

fn upsert<T>(map: &DashMap<Box<str>, Entry<T>>, key: Box<str>, entry: Entry<T>) -> Applied {
    match map.entry(key) {
        MapEntry::Occupied(mut held) => {
            if entry.version() > held.get().version() {
                held.insert(entry);
                Applied::Changed
            } else {
                Applied::Stale
            }
        }
        MapEntry::Vacant(slot) => {
            slot.insert(entry);
            Applied::Changed
        }
    }
}

impl Environment {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one change; see the module documentation for the ordering rules.
    pub fn apply(&self, change: Change) -> Applied {
        match change {
            Change::UpsertFlag { version, flag } => upsert(
                &self.flags,
                flag.key().into(),
                Entry::Live {
                    version,
                    item: flag,
                },
            ),
            Change::UpsertSegment { version, segment } => upsert(
                &self.segments,
                segment.key().into(),
                Entry::Live {
                    version,
                    item: segment,
                },
            ),
            Change::Invalid {
                kind,
                key,
                version,
                error,
            } => {
                let error = Arc::new(error);
                match kind {
                    ItemKind::Flag => upsert(&self.flags, key, Entry::Invalid { version, error }),
                    ItemKind::Segment => {
                        upsert(&self.segments, key, Entry::Invalid { version, error })
                    }
                }
            }
            Change::Delete { kind, key, version } => match kind {
                ItemKind::Flag => upsert(&self.flags, key, Entry::Deleted { version }),
                ItemKind::Segment => upsert(&self.segments, key, Entry::Deleted { version }),
            },
        }
    }

    /// The flag to evaluate under `key`, or the error code to report.
    pub fn flag_for_eval(&self, key: &str) -> Result<Arc<CompiledFlag>, ErrorCode> {
        match self.flags.get(key).as_deref() {
            Some(Entry::Live { item, .. }) => Ok(Arc::clone(item)),
            Some(Entry::Invalid { .. }) => Err(ErrorCode::ParseError),
            Some(Entry::Deleted { .. }) | None => Err(ErrorCode::FlagNotFound),
        }
    }

    /// The entry held for a flag key, tombstones included.
    pub fn flag_entry(&self, key: &str) -> Option<Entry<CompiledFlag>> {
        self.flags.get(key).map(|e| e.value().clone())
    }

    /// The entry held for a segment key, tombstones included.
    pub fn segment_entry(&self, key: &str) -> Option<Entry<CompiledSegment>> {
        self.segments.get(key).map(|e| e.value().clone())
    }

    /// The live flags, sorted by key.
    pub fn live_flags(&self) -> Vec<Arc<CompiledFlag>> {
        let mut flags: Vec<_> = self
            .flags
            .iter()
            .filter_map(|e| e.value().live().cloned())
            .collect();
        flags.sort_unstable_by(|a, b| a.key().cmp(b.key()));
        flags
    }

    /// The live segments, sorted by key.
    pub fn live_segments(&self) -> Vec<Arc<CompiledSegment>> {
        let mut segments: Vec<_> = self
            .segments
            .iter()
            .filter_map(|e| e.value().live().cloned())
            .collect();
        segments.sort_unstable_by(|a, b| a.key().cmp(b.key()));
        segments
    }

    /// Every entry with its version and state, sorted: two environments that hold the same
    /// data give equal dumps.
    pub fn dump(&self) -> Vec<(ItemKind, String, u64, EntryState)> {
        fn state<T>(entry: &Entry<T>, json: impl Fn(&T) -> String) -> EntryState {
            match entry {
                Entry::Live { item, .. } => EntryState::Live(json(item)),
                Entry::Invalid { error, .. } => EntryState::Invalid(error.to_string()),
                Entry::Deleted { .. } => EntryState::Deleted,
            }
        }
        let flag_json = |f: &CompiledFlag| serde_json::to_string(f.doc()).unwrap_or_default();
        let segment_json = |s: &CompiledSegment| serde_json::to_string(s.doc()).unwrap_or_default();
        let mut out: Vec<_> = self
            .flags
            .iter()
            .map(|e| {
                (
                    ItemKind::Flag,
                    e.key().to_string(),
                    e.version(),
                    state(e.value(), flag_json),
                )
            })
            .chain(self.segments.iter().map(|e| {
                (
                    ItemKind::Segment,
                    e.key().to_string(),
                    e.version(),
                    state(e.value(), segment_json),
                )
            }))
            .collect();
        out.sort();
        out
    }

    /// Drops tombstones older than `below`. Only safe once no change older than `below` can
    /// still arrive (the feed guarantees this past its applied position).
    pub fn purge_deleted(&self, below: u64) {
        self.flags
            .retain(|_, e| !matches!(e, Entry::Deleted { version } if *version < below));
        self.segments
            .retain(|_, e| !matches!(e, Entry::Deleted { version } if *version < below));
    }

    /// Checks that `flag`'s prerequisites exist and that adding it creates no cycle and no
    /// chain deeper than the evaluator follows. For the control plane, before it writes.
    pub fn check_prerequisites(&self, flag: &CompiledFlag) -> Result<(), CompileError> {
        for (i, key) in flag.prerequisite_keys().enumerate() {
            let path = format!("prerequisites[{i}].key");
            if self.flag_for_eval(key).is_err() {
                return Err(CompileError::new(
                    &path,
                    format!("no flag {key:?} in this environment"),
                ));
            }
            let mut chain = vec![flag.key().to_owned(), key.to_owned()];
            let mut done = HashSet::new();
            self.walk(flag.key(), key, &mut chain, &mut done)
                .map_err(|m| CompileError::new(&path, m))?;
        }
        Ok(())
    }

    /// Depth-first search from `key` for `origin`. `done` holds flags already explored
    /// completely, so shared sub-chains are walked once.
    fn walk(
        &self,
        origin: &str,
        key: &str,
        chain: &mut Vec<String>,
        done: &mut HashSet<String>,
    ) -> Result<(), String> {
        if chain.len() > MAX_PREREQUISITE_DEPTH {
            return Err(format!(
                "prerequisite chain deeper than {MAX_PREREQUISITE_DEPTH}: {}",
                chain.join(" → ")
            ));
        }
        if done.contains(key) {
            return Ok(());
        }
        if let Ok(next) = self.flag_for_eval(key) {
            for k in next.prerequisite_keys() {
                chain.push(k.to_owned());
                if k == origin {
                    return Err(format!("prerequisite cycle: {}", chain.join(" → ")));
                }
                self.walk(origin, k, chain, done)?;
                chain.pop();
            }
        }
        done.insert(key.to_owned());
        Ok(())
    }
}

impl Lookup for Environment {
    fn flag(&self, key: &str) -> Result<Arc<CompiledFlag>, ErrorCode> {
        // `flag_for_eval` clones the Arc and drops the map guard before evaluation goes on:
        // the evaluator may look up further flags, and nested guards on a sharded map can
        // deadlock with writers.
        self.flag_for_eval(key)
    }

    fn segment(&self, key: &str) -> Option<Arc<CompiledSegment>> {
        self.segments
            .get(key)
            .and_then(|e| e.value().live().cloned())
    }
}

/// Every environment's [`Environment`], by environment id.
#[derive(Debug, Default)]
pub struct FlagStore {
    environments: DashMap<Box<str>, Arc<Environment>>,
}

impl FlagStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The environment, if the store holds it.
    pub fn environment(&self, id: &str) -> Option<Arc<Environment>> {
        self.environments.get(id).map(|e| Arc::clone(e.value()))
    }

    /// The environment, created empty if the store does not hold it yet.
    pub fn environment_or_default(&self, id: &str) -> Arc<Environment> {
        Arc::clone(self.environments.entry(id.into()).or_default().value())
    }

    /// Applies a change to one environment.
    pub fn apply(&self, env: &str, change: Change) -> Applied {
        self.environment_or_default(env).apply(change)
    }

    /// Replaces an environment whole (a snapshot): readers see the old one or the new one,
    /// never a mix.
    pub fn replace(&self, id: &str, environment: Environment) {
        self.environments.insert(id.into(), Arc::new(environment));
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Environment>> {
        self.environments.remove(id).map(|(_, e)| e)
    }

    /// The ids of the environments held, sorted.
    pub fn environment_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .environments
            .iter()
            .map(|e| e.key().to_string())
            .collect();
        ids.sort_unstable();
        ids
    }
}

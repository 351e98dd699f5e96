//! The edge's replica: per environment, the compiled flags and segments (a
//! `checkgate_core::FlagStore`), the SDK keys by hash, the settings, and the feed position
//! `(epoch, version)` they reflect. No I/O: the feed client hands it frames, serving reads it;
//! the one thing it reads from outside is the wall clock, to stamp when data arrived.
//!
//! The apply rule, per environment: a change of version `v` is applied only when
//! `v == applied + 1`; `v <= applied` is a duplicate and changes nothing; a change further
//! ahead is held (bounded) until the gap fills, and the caller asks for a snapshot if it does
//! not fill soon. A snapshot replaces the environment whole. So duplicated, reordered and
//! dropped frames end in the control plane's state or in a resync — never in a regression.
//!
//! Compiling is kept apart from applying: [`Replica::prepare`] compiles a frame's flags and
//! segments without touching the replica (the feed client runs it on its apply thread), and
//! [`Replica::apply_prepared`] only swaps compiled entries in under the bookkeeping lock. So a
//! costly flag delays its own change, never `/status`, readiness or evaluation, and the
//! previous version is served until the new one is ready.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use checkgate_core::{Change, Environment, FlagStore, ItemKind};
use checkgate_protocol::EnvironmentSettings;
use checkgate_protocol::frame::{
    ChangeRecord, Changes, EnvPosition, EnvironmentInfo, Item, SdkKeyKind, SdkKeyRecord, Snapshot,
    Welcome,
};

mod persisted;
mod report;

pub use persisted::{Persisted, PersistedEnv};
pub use report::EnvStatus;

/// Most changes held for one environment while waiting for a gap to fill.
pub const MAX_PENDING: usize = 10_000;

/// Where an environment's data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Loaded from the snapshot file at boot; not yet confirmed by the control plane.
    SnapshotFile,
    /// Received from the control plane.
    Upstream,
}

/// An SDK key as an edge knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub env_id: String,
    pub id: String,
    pub kind: SdkKeyKind,
    pub prefix: String,
}

/// The bookkeeping of one environment.
#[derive(Debug, Clone)]
struct EnvMeta {
    info: EnvironmentInfo,
    epoch: u64,
    version: u64,
    /// Parsed once as it arrives (unreadable settings count as the defaults), so serving reads
    /// a field, not JSON.
    settings: EnvironmentSettings,
    source: Source,
    /// Milliseconds since the Unix epoch when data last arrived (or the file was saved).
    updated_at_ms: u64,
    /// Key id → hash, to revoke by id.
    keys: HashMap<String, [u8; 32]>,
    /// Changes ahead of `version + 1`, compiled, waiting for the gap to fill.
    pending: BTreeMap<u64, Prepared>,
}

/// One change with its flag or segment already compiled.
#[derive(Debug, Clone)]
struct Prepared {
    record: ChangeRecord,
    /// The compiled upsert; `None` for changes that carry no document.
    compiled: Option<Change>,
}

/// A `Changes` frame compiled by [`Replica::prepare`], ready for [`Replica::apply_prepared`].
#[derive(Debug, Clone)]
pub struct PreparedChanges {
    env_id: String,
    epoch: u64,
    changes: Vec<Prepared>,
}

impl PreparedChanges {
    /// The environment the frame is for.
    pub fn env_id(&self) -> &str {
        &self.env_id
    }
}

/// What applying a `Changes` frame did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Every change was applied or was a duplicate; `applied` counts the new ones.
    InOrder { applied: usize },
    /// Some changes wait for versions that have not arrived: `expected` is the next one.
    Gap { expected: u64, applied: usize },
    /// The frame is from another epoch (or the environment is not known): ask for a snapshot.
    NeedsSnapshot,
    /// The environment was deleted.
    Deleted,
}

/// What changed in the replica, in the order it happened, for those who serve it (SSE streams
/// build each event once from these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaEvent {
    /// The environment was replaced whole (a snapshot, or the snapshot file at boot).
    Replaced { env_id: String, version: u64 },
    /// A flag was created, changed or deleted at `version`.
    Flag {
        env_id: String,
        version: u64,
        key: String,
    },
    /// A segment changed: every flag that uses it may serve differently.
    Segment {
        env_id: String,
        version: u64,
        key: String,
    },
    /// A change nothing is served from (an SDK key, settings) moved the version.
    Other { env_id: String, version: u64 },
    /// The environment is gone (deleted, or no longer granted).
    Gone { env_id: String },
}

/// How many events a slow listener may fall behind before it is told it lagged.
const EVENTS_BACKLOG: usize = 4096;

/// The whole replica, shared by the feed client and the serving routes.
#[derive(Debug)]
pub struct Replica {
    flags: FlagStore,
    /// SHA-256 of an SDK key → the key. One map for every environment: a request is
    /// authenticated before its environment is known.
    keys: dashmap::DashMap<[u8; 32], Arc<KeyEntry>>,
    /// A `std` lock: held only for bookkeeping, never across an `.await` or an evaluation.
    meta: RwLock<HashMap<String, EnvMeta>>,
    /// Bumped after every change to what the replica holds, so streams and waiters wake.
    generation: tokio::sync::watch::Sender<u64>,
    /// Each change, for those who serve it.
    events: tokio::sync::broadcast::Sender<ReplicaEvent>,
}

impl Default for Replica {
    fn default() -> Self {
        Self {
            flags: FlagStore::default(),
            keys: dashmap::DashMap::default(),
            meta: RwLock::default(),
            generation: tokio::sync::watch::channel(0).0,
            events: tokio::sync::broadcast::channel(EVENTS_BACKLOG).0,
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn compile(kind: ItemKind, key: &str, version: u64, json: &str) -> Change {
    match kind {
        ItemKind::Flag => Change::flag_json(key, version, json),
        ItemKind::Segment => Change::segment_json(key, version, json),
    }
}

impl Replica {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn meta(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, EnvMeta>> {
        self.meta
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn meta_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, EnvMeta>> {
        self.meta
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A receiver that wakes after every change to what the replica holds.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Every change from now on; a receiver that lags is told so and must start over from
    /// the replica's current state.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<ReplicaEvent> {
        self.events.subscribe()
    }

    fn emit(&self, event: ReplicaEvent) {
        let _ = self.events.send(event);
    }

    fn changed(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// The compiled flags of an environment, for evaluation.
    pub fn environment(&self, env: &str) -> Option<Arc<Environment>> {
        self.flags.environment(env)
    }

    /// The SDK key with this hash, if any environment holds it (shared: a request checks a
    /// key without copying its strings).
    pub fn key(&self, hash: &[u8; 32]) -> Option<Arc<KeyEntry>> {
        self.keys.get(hash).map(|k| Arc::clone(k.value()))
    }

    /// Whether any environment holds the SDK key with this hash (a revoked key is gone).
    pub fn has_key(&self, hash: &[u8; 32]) -> bool {
        self.keys.contains_key(hash)
    }

    /// The settings of an environment.
    pub fn settings(&self, env: &str) -> Option<EnvironmentSettings> {
        self.meta().get(env).map(|m| m.settings.clone())
    }

    /// Whether `env` lets client (browser) keys read flag rules; `false` for an environment
    /// not held. Allocates nothing: it is read for every client key's stream.
    pub fn client_keys_read_rules(&self, env: &str) -> bool {
        self.meta()
            .get(env)
            .is_some_and(|m| m.settings.client_keys_read_rules)
    }

    /// The hash of the live SDK key `id` of `env`.
    pub fn key_hash(&self, env: &str, id: &str) -> Option<[u8; 32]> {
        self.meta().get(env)?.keys.get(id).copied()
    }

    /// The epoch of `env`.
    pub fn epoch(&self, env: &str) -> Option<u64> {
        self.meta().get(env).map(|m| m.epoch)
    }

    /// The positions to send in `Hello`.
    pub fn positions(&self) -> Vec<EnvPosition> {
        let mut out: Vec<EnvPosition> = self
            .meta()
            .iter()
            .map(|(id, m)| EnvPosition {
                env_id: id.clone(),
                epoch: m.epoch,
                version: m.version,
            })
            .collect();
        out.sort_by(|a, b| a.env_id.cmp(&b.env_id));
        out
    }

    /// The ids of the environments held.
    pub fn environment_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.meta().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The applied version of `env`.
    pub fn version(&self, env: &str) -> Option<(u64, u64)> {
        self.meta().get(env).map(|m| (m.epoch, m.version))
    }

    /// Forgets every environment `welcome` does not list (it is no longer this edge's to
    /// serve) and records the details of those it lists. Returns the ids dropped.
    pub fn welcome(&self, welcome: &Welcome) -> Vec<String> {
        let listed: HashMap<&str, &EnvironmentInfo> = welcome
            .environments
            .iter()
            .map(|e| (e.env_id.as_str(), e))
            .collect();
        let dropped: Vec<String> = {
            let mut meta = self.meta_mut();
            for (id, m) in meta.iter_mut() {
                if let Some(info) = listed.get(id.as_str()) {
                    m.info = (*info).clone();
                }
            }
            meta.keys()
                .filter(|id| !listed.contains_key(id.as_str()))
                .cloned()
                .collect()
        };
        for id in &dropped {
            self.forget(id);
        }
        dropped
    }

    /// Drops an environment and its keys.
    pub fn forget(&self, env: &str) {
        let gone = self.meta_mut().remove(env);
        if let Some(meta) = gone {
            for hash in meta.keys.values() {
                self.keys.remove(hash);
            }
        }
        self.flags.remove(env);
        self.emit(ReplicaEvent::Gone {
            env_id: env.to_owned(),
        });
        self.changed();
    }

    /// Drops everything (the edge's token was revoked).
    pub fn clear(&self) {
        for env in self.environment_ids() {
            self.forget(&env);
        }
    }

    /// Replaces an environment with a snapshot.
    pub fn install(&self, snapshot: &Snapshot, info: EnvironmentInfo, source: Source) {
        let environment = Environment::new();
        for (kind, records) in [
            (ItemKind::Flag, &snapshot.flags),
            (ItemKind::Segment, &snapshot.segments),
        ] {
            for record in records {
                environment.apply(compile(kind, &record.key, record.version, &record.json));
            }
        }
        let settings = EnvironmentSettings::parse(&snapshot.settings_json);
        let keys: HashMap<String, [u8; 32]> = snapshot
            .sdk_keys
            .iter()
            .map(|k| (k.id.clone(), k.hash))
            .collect();
        let previous = {
            let mut meta = self.meta_mut();
            let previous = meta.insert(
                snapshot.env_id.clone(),
                EnvMeta {
                    info,
                    epoch: snapshot.epoch,
                    version: snapshot.version,
                    settings,
                    source,
                    updated_at_ms: now_ms(),
                    keys,
                    pending: BTreeMap::new(),
                },
            );
            // Replace the flags while holding the bookkeeping lock, so a concurrent apply of
            // a change cannot land in the environment being replaced.
            self.flags.replace(&snapshot.env_id, environment);
            previous
        };
        if let Some(previous) = previous {
            for hash in previous.keys.values() {
                self.keys.remove(hash);
            }
        }
        for key in &snapshot.sdk_keys {
            self.keys.insert(key.hash, key_entry(&snapshot.env_id, key));
        }
        self.emit(ReplicaEvent::Replaced {
            env_id: snapshot.env_id.clone(),
            version: snapshot.version,
        });
        self.changed();
    }

    /// Applies a `Changes` frame (see the module documentation for the rule), compiling it on
    /// the caller's thread: [`Self::prepare`] then [`Self::apply_prepared`].
    pub fn apply(&self, frame: &Changes) -> Applied {
        self.apply_prepared(Self::prepare(frame.clone()))
    }

    /// Compiles the flags and segments a frame carries. Touches no replica, takes no lock: this
    /// is where the cost of a change is paid, off the serving path.
    pub fn prepare(frame: Changes) -> PreparedChanges {
        let changes = frame
            .changes
            .into_iter()
            .map(|record| {
                let compiled = match &record.item {
                    Item::FlagUpsert { key, json } => {
                        Some(compile(ItemKind::Flag, key, record.version, json))
                    }
                    Item::SegmentUpsert { key, json } => {
                        Some(compile(ItemKind::Segment, key, record.version, json))
                    }
                    _ => None,
                };
                Prepared { record, compiled }
            })
            .collect();
        PreparedChanges {
            env_id: frame.env_id,
            epoch: frame.epoch,
            changes,
        }
    }

    /// Applies a compiled frame (see the module documentation for the rule). Quick: nothing is
    /// compiled under the lock.
    pub fn apply_prepared(&self, frame: PreparedChanges) -> Applied {
        let mut meta = self.meta_mut();
        let Some(env) = meta.get_mut(&frame.env_id) else {
            return Applied::NeedsSnapshot;
        };
        if env.epoch != frame.epoch {
            return Applied::NeedsSnapshot;
        }
        for change in frame.changes {
            if change.record.version > env.version && env.pending.len() < MAX_PENDING {
                env.pending.entry(change.record.version).or_insert(change);
            }
        }
        let mut applied = 0;
        let mut deleted = false;
        while let Some(next) = env.pending.remove(&(env.version + 1)) {
            env.version = next.record.version;
            applied += 1;
            if self.apply_item(&frame.env_id, env, next) {
                deleted = true;
                break;
            }
        }
        // Anything at or below the applied version is now a duplicate.
        let version = env.version;
        env.pending.retain(|v, _| *v > version);
        if applied > 0 {
            env.source = Source::Upstream;
            env.updated_at_ms = now_ms();
        }
        if deleted {
            meta.remove(&frame.env_id);
            drop(meta);
            self.flags.remove(&frame.env_id);
            self.emit(ReplicaEvent::Gone {
                env_id: frame.env_id.clone(),
            });
            self.changed();
            return Applied::Deleted;
        }
        if applied > 0 {
            self.changed();
        }
        if env.pending.is_empty() {
            Applied::InOrder { applied }
        } else {
            Applied::Gap {
                expected: env.version + 1,
                applied,
            }
        }
    }

    /// Applies one item; `true` when it deleted the environment (keys already removed).
    fn apply_item(&self, env_id: &str, env: &mut EnvMeta, change: Prepared) -> bool {
        let version = change.record.version;
        let flags = || self.flags.environment_or_default(env_id);
        let event = match &change.record.item {
            Item::FlagUpsert { key, .. } | Item::FlagDelete { key } => ReplicaEvent::Flag {
                env_id: env_id.to_owned(),
                version,
                key: key.clone(),
            },
            Item::SegmentUpsert { key, .. } | Item::SegmentDelete { key } => {
                ReplicaEvent::Segment {
                    env_id: env_id.to_owned(),
                    version,
                    key: key.clone(),
                }
            }
            _ => ReplicaEvent::Other {
                env_id: env_id.to_owned(),
                version,
            },
        };
        let deleted = self.apply_one(env_id, env, change, flags);
        if !deleted {
            self.emit(event);
        }
        deleted
    }

    fn apply_one(
        &self,
        env_id: &str,
        env: &mut EnvMeta,
        change: Prepared,
        flags: impl Fn() -> Arc<Environment>,
    ) -> bool {
        let Prepared { record, compiled } = change;
        let version = record.version;
        match record.item {
            Item::FlagUpsert { key, json } => {
                flags().apply(
                    compiled.unwrap_or_else(|| compile(ItemKind::Flag, &key, version, &json)),
                );
            }
            Item::SegmentUpsert { key, json } => {
                flags().apply(
                    compiled.unwrap_or_else(|| compile(ItemKind::Segment, &key, version, &json)),
                );
            }
            Item::FlagDelete { key } => {
                flags().apply(Change::Delete {
                    kind: ItemKind::Flag,
                    key: key.into(),
                    version,
                });
            }
            Item::SegmentDelete { key } => {
                flags().apply(Change::Delete {
                    kind: ItemKind::Segment,
                    key: key.into(),
                    version,
                });
            }
            Item::SdkKeyUpsert(record) => {
                if let Some(old) = env.keys.insert(record.id.clone(), record.hash) {
                    self.keys.remove(&old);
                }
                self.keys.insert(record.hash, key_entry(env_id, &record));
            }
            Item::SdkKeyRevoke { id } => {
                if let Some(hash) = env.keys.remove(&id) {
                    self.keys.remove(&hash);
                }
            }
            Item::SettingsUpdate { json } => env.settings = EnvironmentSettings::parse(&json),
            Item::EnvironmentDeleted => {
                for hash in env.keys.values() {
                    self.keys.remove(hash);
                }
                env.keys.clear();
                return true;
            }
        }
        false
    }
}

fn key_entry(env_id: &str, key: &SdkKeyRecord) -> Arc<KeyEntry> {
    Arc::new(KeyEntry {
        env_id: env_id.to_owned(),
        id: key.id.clone(),
        kind: key.kind,
        prefix: key.prefix.clone(),
    })
}

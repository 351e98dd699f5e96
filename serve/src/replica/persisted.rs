//! The replica as persisted: what an edge writes to its snapshot file and reads back at boot.

use checkgate_core::{EntryState, ItemKind};
use checkgate_protocol::frame::{EnvironmentInfo, Record, SdkKeyRecord, Snapshot};
use serde::{Deserialize, Serialize};

use super::{Replica, Source, now_ms};

/// One environment as persisted: what the control plane said about it, and its content at one
/// version. Kept together so a restarted edge can serve the environment under its slug and
/// resume the feed from the snapshot's version without asking first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedEnv {
    /// The environment's identity as the last `Welcome` gave it.
    pub info: EnvironmentInfo,
    /// Everything it held, at the version the edge had applied.
    pub snapshot: Snapshot,
}

/// The whole file's content: everything an edge needs to serve again after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    /// The control plane's database epoch the versions below belong to; if the control plane
    /// reports another, the positions are void and the edge asks for snapshots.
    pub epoch: u64,
    /// When the edge wrote the file (Unix milliseconds), to tell how stale served data is.
    pub saved_at_ms: u64,
    /// Every environment the edge served when it saved.
    pub environments: Vec<PersistedEnv>,
}

impl Replica {
    /// Everything held, for the snapshot file. Entries that did not compile here are left
    /// out (the control plane's copy is the one that counts; a resync brings them back).
    pub fn persisted(&self) -> Persisted {
        let meta = self.meta().clone();
        let mut environments: Vec<PersistedEnv> = meta
            .into_iter()
            .map(|(id, m)| {
                let dump = self
                    .flags
                    .environment(&id)
                    .map(|e| e.dump())
                    .unwrap_or_default();
                let records = |kind: ItemKind| {
                    dump.iter()
                        .filter(|(k, _, _, _)| *k == kind)
                        .filter_map(|(_, key, version, state)| match state {
                            EntryState::Live(json) => Some(Record {
                                key: key.clone(),
                                version: *version,
                                json: json.clone(),
                            }),
                            _ => None,
                        })
                        .collect()
                };
                let sdk_keys = m
                    .keys
                    .iter()
                    .filter_map(|(id, hash)| {
                        let entry = self.keys.get(hash)?;
                        Some(SdkKeyRecord {
                            id: id.clone(),
                            version: m.version,
                            kind: entry.kind,
                            hash: *hash,
                            prefix: entry.prefix.clone(),
                        })
                    })
                    .collect();
                PersistedEnv {
                    info: m.info.clone(),
                    snapshot: Snapshot {
                        env_id: id,
                        epoch: m.epoch,
                        version: m.version,
                        flags: records(ItemKind::Flag),
                        segments: records(ItemKind::Segment),
                        sdk_keys,
                        settings_json: m.settings.to_json(),
                    },
                }
            })
            .collect();
        environments.sort_by(|a, b| a.info.env_id.cmp(&b.info.env_id));
        Persisted {
            epoch: environments.first().map_or(0, |e| e.snapshot.epoch),
            saved_at_ms: now_ms(),
            environments,
        }
    }

    /// Marks everything received from upstream as read from disk at `at_ms` instead: after
    /// the change journal was replayed over what [`Self::load`] brought back, it is not yet
    /// confirmed by the control plane.
    pub fn mark_read_from_disk(&self, at_ms: u64) {
        let mut meta = self.meta_mut();
        for m in meta.values_mut() {
            if m.source == Source::Upstream {
                m.source = Source::SnapshotFile;
                m.updated_at_ms = at_ms;
            }
        }
    }

    /// Loads what the snapshot file held, marking it as such.
    pub fn load(&self, persisted: &Persisted) {
        for env in &persisted.environments {
            self.install(&env.snapshot, env.info.clone(), Source::SnapshotFile);
        }
        let mut meta = self.meta_mut();
        for m in meta.values_mut() {
            m.updated_at_ms = persisted.saved_at_ms;
        }
    }
}

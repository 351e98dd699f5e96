//! What the replica tells about itself: each environment's digest (anti-entropy) and status.

use checkgate_core::{EntryState, ItemKind};
use checkgate_protocol::digest::{DigestItem, environment_digest};

use super::{Replica, Source};

/// The state of one environment, for `/status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnvStatus {
    pub env_id: String,
    pub project_id: String,
    pub slug: String,
    pub name: String,
    /// A string in JSON: epochs use all 64 bits, more than a JavaScript number holds.
    #[serde(serialize_with = "as_string")]
    pub epoch: u64,
    pub version: u64,
    pub source: Source,
    pub updated_at_ms: u64,
    pub flags: usize,
    /// Changes held back by a gap.
    pub pending: usize,
}

fn as_string<S: serde::Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

impl Replica {
    /// The anti-entropy digest of an environment at its applied version, or `None` when it is
    /// not held (or changes faster than it can be read, for three tries running).
    ///
    /// The items are read outside the bookkeeping lock, so that a large environment's dump
    /// never holds up changes; a change applies its version and its items under that lock, so
    /// when `(epoch, version)` is the same before and after the dump, the dump is of exactly
    /// that version. Otherwise a change landed in between, and the items could be a version
    /// ahead of the version they would be sent with: a false mismatch and a needless resync.
    pub fn digest(&self, env: &str) -> Option<(u64, u64, [u8; 32])> {
        for _ in 0..3 {
            let (epoch, version, keys) = {
                let meta = self.meta();
                let m = meta.get(env)?;
                (
                    m.epoch,
                    m.version,
                    m.keys.keys().cloned().collect::<Vec<_>>(),
                )
            };
            let dump = self
                .flags
                .environment(env)
                .map(|e| e.dump())
                .unwrap_or_default();
            let unchanged = self
                .meta()
                .get(env)
                .is_some_and(|m| (m.epoch, m.version) == (epoch, version));
            if !unchanged {
                continue;
            }
            let items = dump
                .iter()
                .filter(|(_, _, _, state)| !matches!(state, EntryState::Deleted))
                .map(|(kind, key, version, _)| {
                    let kind = match kind {
                        ItemKind::Flag => DigestItem::Flag,
                        ItemKind::Segment => DigestItem::Segment,
                    };
                    (kind, key.as_str(), *version)
                })
                .chain(keys.iter().map(|id| (DigestItem::SdkKey, id.as_str(), 0)));
            return Some((epoch, version, environment_digest(items)));
        }
        None
    }

    /// What `/status` shows of each environment.
    pub fn status(&self) -> Vec<EnvStatus> {
        let meta = self.meta();
        let mut out: Vec<EnvStatus> = meta
            .iter()
            .map(|(id, m)| EnvStatus {
                env_id: id.clone(),
                project_id: m.info.project_id.clone(),
                slug: m.info.slug.clone(),
                name: m.info.name.clone(),
                epoch: m.epoch,
                version: m.version,
                source: m.source,
                updated_at_ms: m.updated_at_ms,
                flags: self
                    .flags
                    .environment(id)
                    .map_or(0, |e| e.live_flags().len()),
                pending: m.pending.len(),
            })
            .collect();
        out.sort_by(|a, b| a.env_id.cmp(&b.env_id));
        out
    }
}

//! The SSE events of each environment, serialized once per change and shared by every stream
//! of that environment — never once per client.
//!
//! A task follows the replica's changes in order and, for each version, writes Checkgate's
//! `update` events for the flags it touched (a segment change touches every flag using it).
//! Each environment keeps the events of its recent versions (for `Last-Event-ID` resume and for
//! streams a little behind) and the bootstrap of its current version, built on first use.
//!
//! A stream remembers the environment's *generation*: a snapshot that replaces the environment,
//! or the follower falling behind the replica, starts a new one, and streams of an older
//! generation end so their clients reconnect and bootstrap again — never a silent gap.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use checkgate_core::{CompiledFlag, Environment, FlagDoc, Lookup as _};
use checkgate_protocol::json::{sse_delete, sse_upsert};
use dashmap::DashMap;
use tokio::sync::{broadcast, watch};

use crate::replica::{Replica, ReplicaEvent};

/// Versions kept per environment for streams that resume or lag.
pub const RECENT_VERSIONS: usize = 1024;
/// Bytes kept per environment for the same, whichever limit comes first.
pub const RECENT_BYTES: usize = 4 << 20;

/// One environment's events.
#[derive(Debug)]
pub struct EnvEvents {
    log: RwLock<Log>,
    /// The latest version with events, for streams to wait on.
    version: watch::Sender<(u64, u64)>,
}

#[derive(Debug, Default)]
struct Log {
    generation: u64,
    epoch: u64,
    version: u64,
    gone: bool,
    recent: VecDeque<(u64, Bytes)>,
    recent_bytes: usize,
    bootstrap: Option<(u64, Bytes)>,
}

/// What a stream that is at `(generation, version)` should send next.
#[derive(Debug)]
pub enum Since {
    /// The events of every version after it, up to `version`.
    Events { version: u64, events: Vec<Bytes> },
    /// Nothing new.
    Nothing,
    /// The stream must end: the environment was replaced or is gone, or the versions it needs
    /// are no longer kept.
    End,
}

/// A bootstrap: every flag's `update` event at one version.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub generation: u64,
    pub epoch: u64,
    pub version: u64,
    pub events: Bytes,
}

/// The `id:` of an event: `{epoch}.{version}`, so a client resuming against another edge (or
/// after the database was reset) is recognised.
pub fn event_id(epoch: u64, version: u64) -> String {
    format!("{epoch}.{version}")
}

/// Parses a `Last-Event-ID`.
pub fn parse_event_id(text: &str) -> Option<(u64, u64)> {
    let (epoch, version) = text.trim().split_once('.')?;
    Some((epoch.parse().ok()?, version.parse().ok()?))
}

/// A flag as Checkgate's SDKs evaluate it: each rule that points at a segment is replaced by
/// the segment's rules (which take the rule's value when they have none), as Checkgate's
/// server did; a rule whose segment is missing is dropped.
pub fn expanded(flag: &CompiledFlag, env: &Environment) -> FlagDoc {
    let doc = flag.doc();
    if doc.rules.iter().all(|r| r.segment_key.is_none()) {
        return doc.clone();
    }
    let mut out = doc.clone();
    out.rules = doc
        .rules
        .iter()
        .flat_map(|rule| match &rule.segment_key {
            None => vec![rule.clone()],
            Some(key) => env
                .segment(key)
                .map(|segment| {
                    segment
                        .doc()
                        .rules
                        .iter()
                        .map(|r| {
                            let mut r = r.clone();
                            if r.variant.is_none() {
                                r.variant.clone_from(&rule.variant);
                            }
                            r
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    out
}

fn update(env_id: &str, id: &str, data: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"\nevent: update\ndata: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
    let _ = env_id;
}

/// The `update` event of `key` as the replica holds it now: an upsert, or a delete.
fn flag_event(env_id: &str, env: Option<&Environment>, key: &str, id: &str, out: &mut Vec<u8>) {
    let live = env.and_then(|e| e.flag_for_eval(key).ok().map(|f| (f, e)));
    let data = match live {
        Some((flag, env)) => match sse_upsert(env_id, &expanded(&flag, env)) {
            Ok(data) => data,
            Err(e) => {
                tracing::error!(cause = %e, flag = key, "serializing an update event failed");
                return;
            }
        },
        None => sse_delete(env_id, key),
    };
    update(env_id, id, &data, out);
}

impl EnvEvents {
    fn new() -> Self {
        Self {
            log: RwLock::default(),
            version: watch::channel((0, 0)).0,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Log> {
        self.log
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Log> {
        self.log
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A receiver of `(generation, version)`, woken by every new version.
    pub fn subscribe(&self) -> watch::Receiver<(u64, u64)> {
        self.version.subscribe()
    }

    fn announce(&self, log: &Log) {
        self.version.send_replace((log.generation, log.version));
    }

    /// Starts a new generation at `version` (replaced, reset or gone).
    fn restart(&self, epoch: u64, version: u64, gone: bool) {
        let mut log = self.write();
        log.generation += 1;
        log.epoch = epoch;
        log.version = version;
        log.gone = gone;
        log.recent.clear();
        log.recent_bytes = 0;
        log.bootstrap = None;
        self.announce(&log);
    }

    fn push(&self, version: u64, events: Bytes) {
        let mut log = self.write();
        if version <= log.version {
            return;
        }
        log.version = version;
        log.recent_bytes += events.len();
        log.recent.push_back((version, events));
        while log.recent.len() > RECENT_VERSIONS || log.recent_bytes > RECENT_BYTES {
            if let Some((_, dropped)) = log.recent.pop_front() {
                log.recent_bytes -= dropped.len();
            }
        }
        log.bootstrap = None;
        self.announce(&log);
    }

    /// Whether the environment is gone (deleted, or no longer this edge's).
    pub fn gone(&self) -> bool {
        self.read().gone
    }

    /// The current generation, epoch and version.
    pub fn position(&self) -> (u64, u64, u64) {
        let log = self.read();
        (log.generation, log.epoch, log.version)
    }

    /// The bootstrap at the current version, built from the replica on first use and shared
    /// until the next change.
    pub fn bootstrap(&self, env_id: &str, replica: &Replica) -> Bootstrap {
        let (generation, epoch, version) = {
            let log = self.read();
            if let Some((v, events)) = &log.bootstrap
                && *v == log.version
            {
                return Bootstrap {
                    generation: log.generation,
                    epoch: log.epoch,
                    version: log.version,
                    events: events.clone(),
                };
            }
            (log.generation, log.epoch, log.version)
        };
        let id = event_id(epoch, version);
        let mut out = Vec::new();
        if let Some(env) = replica.environment(env_id) {
            for flag in env.live_flags() {
                flag_event(env_id, Some(&env), flag.key(), &id, &mut out);
            }
        }
        let events = Bytes::from(out);
        let mut log = self.write();
        if log.generation == generation && log.version == version {
            log.bootstrap = Some((version, events.clone()));
        }
        Bootstrap {
            generation,
            epoch,
            version,
            events,
        }
    }

    /// What a stream at `(generation, after)` should send next.
    pub fn since(&self, generation: u64, after: u64) -> Since {
        let log = self.read();
        if log.generation != generation || log.gone {
            return Since::End;
        }
        if log.version <= after {
            return Since::Nothing;
        }
        match log.recent.front() {
            Some((first, _)) if *first <= after + 1 => {}
            _ => return Since::End,
        }
        let events = log
            .recent
            .iter()
            .filter(|(v, e)| *v > after && !e.is_empty())
            .map(|(_, e)| e.clone())
            .collect();
        Since::Events {
            version: log.version,
            events,
        }
    }
}

/// Every environment's events, fed from the replica by [`EventHub::run`].
#[derive(Debug)]
pub struct EventHub {
    replica: Arc<Replica>,
    envs: DashMap<String, Arc<EnvEvents>>,
}

impl EventHub {
    pub fn new(replica: Arc<Replica>) -> Arc<Self> {
        Arc::new(Self {
            replica,
            envs: DashMap::new(),
        })
    }

    /// The events of `env_id`, started at the replica's current version if new.
    pub fn env(&self, env_id: &str) -> Arc<EnvEvents> {
        if let Some(events) = self.envs.get(env_id) {
            return Arc::clone(events.value());
        }
        self.envs
            .entry(env_id.to_owned())
            .or_insert_with(|| {
                let events = EnvEvents::new();
                let (epoch, version) = self.replica.version(env_id).unwrap_or((0, 0));
                events.restart(epoch, version, false);
                Arc::new(events)
            })
            .clone()
    }

    /// Follows the replica until it is dropped. Must be subscribed before the replica changes
    /// that streams are to see: subscribe with [`Self::subscribe`] first.
    pub fn subscribe(&self) -> broadcast::Receiver<ReplicaEvent> {
        self.replica.events()
    }

    pub async fn run(self: Arc<Self>, mut events: broadcast::Receiver<ReplicaEvent>) {
        loop {
            match events.recv().await {
                Ok(event) => self.apply(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "SSE events fell behind the replica; streams restart"
                    );
                    for env in self.envs.iter() {
                        let (epoch, version) = self.replica.version(env.key()).unwrap_or((0, 0));
                        env.value().restart(epoch, version, false);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn apply(&self, event: ReplicaEvent) {
        match event {
            ReplicaEvent::Replaced { env_id, version } => {
                if let Some(env) = self.envs.get(&env_id) {
                    let epoch = self.replica.epoch(&env_id).unwrap_or(0);
                    env.restart(epoch, version, false);
                }
            }
            ReplicaEvent::Gone { env_id } => {
                if let Some((_, env)) = self.envs.remove(&env_id) {
                    env.restart(0, 0, true);
                }
            }
            ReplicaEvent::Flag {
                env_id,
                version,
                key,
            } => self.changed(&env_id, version, |env, id, out| {
                flag_event(&env_id, env, &key, id, out);
            }),
            ReplicaEvent::Segment {
                env_id,
                version,
                key,
            } => self.changed(&env_id, version, |env, id, out| {
                if let Some(env) = env {
                    for flag in env.live_flags() {
                        if flag.segment_keys().any(|s| s == key) {
                            flag_event(&env_id, Some(env), flag.key(), id, out);
                        }
                    }
                }
            }),
            ReplicaEvent::Other { env_id, version } => {
                self.changed(&env_id, version, |_, _, _| {});
            }
        }
    }

    /// Records the events of `version` of `env_id`, written by `write` — only for
    /// environments someone streams.
    fn changed(
        &self,
        env_id: &str,
        version: u64,
        write: impl FnOnce(Option<&Environment>, &str, &mut Vec<u8>),
    ) {
        let Some(events) = self.envs.get(env_id).map(|e| Arc::clone(e.value())) else {
            return;
        };
        let epoch = self.replica.epoch(env_id).unwrap_or(0);
        let env = self.replica.environment(env_id);
        let mut out = Vec::new();
        write(env.as_deref(), &event_id(epoch, version), &mut out);
        events.push(version, Bytes::from(out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_round_trip() {
        assert_eq!(parse_event_id(&event_id(7, 42)), Some((7, 42)));
        for bad in ["", "7", "7.", ".4", "a.b", "7.4.2"] {
            assert_eq!(parse_event_id(bad), None, "{bad:?}");
        }
    }
}

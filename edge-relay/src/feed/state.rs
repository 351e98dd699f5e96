//! How the feed is doing, shared by the feed client (which writes it), readiness, `/status`
//! and metrics; and the edge's [`Authority`] over its replica.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};

use checkgate_protocol::frame::EnvironmentInfo;
use checkgate_serve::served::Authority;

/// How the feed is doing, for `/ready`, `/status` and metrics.
#[derive(Debug, Default)]
pub struct FeedState {
    pub(super) connected: AtomicBool,
    /// Caught up in this connection: the control plane sends its first heartbeat only after
    /// the snapshots and changes that bring the edge up to date.
    pub(super) synced: AtomicBool,
    /// The token was revoked: the edge serves nothing until it is given another.
    pub(super) revoked: AtomicBool,
    pub(super) reconnects: AtomicU64,
    /// The feed protocol version of the last hello the control plane accepted (0 before one).
    pub(super) protocol: AtomicU16,
    /// Milliseconds since the Unix epoch of the last frame received.
    pub(super) last_frame_ms: AtomicU64,
    /// The environments the last `Welcome` granted, with their details (`None` before any).
    pub(super) granted: Mutex<Option<HashMap<String, EnvironmentInfo>>>,
    /// The control plane's heads, from its heartbeats.
    pub(super) heads: Mutex<HashMap<String, u64>>,
    pub(super) last_error: Mutex<Option<String>>,
    /// Why the last journal append failed, while appends fail: changes applied meanwhile would
    /// not survive a crash.
    pub(super) journal_error: Mutex<Option<String>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl FeedState {
    /// The feed protocol version the control plane last accepted; `None` before any session.
    pub fn protocol(&self) -> Option<u16> {
        Some(self.protocol.load(Ordering::Relaxed)).filter(|v| *v > 0)
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Whether the edge is connected and caught up with the control plane.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    pub fn revoked(&self) -> bool {
        self.revoked.load(Ordering::Relaxed)
    }

    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    pub fn last_frame_ms(&self) -> u64 {
        self.last_frame_ms.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// The control plane's head of `env`, as its last heartbeat said.
    pub fn head(&self, env: &str) -> Option<u64> {
        lock(&self.heads).get(env).copied()
    }

    /// The environments granted by the last `Welcome`.
    pub fn granted(&self) -> Option<HashSet<String>> {
        lock(&self.granted)
            .as_ref()
            .map(|g| g.keys().cloned().collect())
    }

    pub(super) fn set_error(&self, error: impl Into<String>) {
        *lock(&self.last_error) = Some(error.into());
    }

    /// Why changes are currently applied without being journaled, if they are.
    pub fn journal_error(&self) -> Option<String> {
        lock(&self.journal_error).clone()
    }

    pub(crate) fn journal_ok(&self) {
        let mut error = lock(&self.journal_error);
        if error.is_some() {
            *error = None;
            metrics::gauge!("checkgate_journal_durable").set(1.0);
        }
    }

    /// Records that changes are not journaled (or were not), and why.
    pub fn journal_failed(&self, error: String) {
        *lock(&self.journal_error) = Some(error);
        metrics::gauge!("checkgate_journal_durable").set(0.0);
    }
}

/// An edge vouches for its replica through its feed: every key is known once the feed is
/// connected and caught up, and its token stands.
impl Authority for FeedState {
    fn knows_every_key(&self) -> bool {
        self.synced() && !self.revoked()
    }
}

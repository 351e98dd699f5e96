//! Open SDK streams per environment and SDK key, for the control plane's view of connected
//! SDKs. A stream is counted while its [`Tracked`] guard lives: opening and ending a stream
//! each touch one map entry (a `DashMap` shard lock for a few instructions), and evaluation
//! touches nothing here. [`Connections::report`] reads the counts into a bounded
//! [`ConnectionReport`], which the flusher sends upstream every [`REPORT_EVERY`] and soon
//! after a change.
//!
//! Client addresses are kept only when `REPORT_CLIENT_ADDRESSES` is on; otherwise no address
//! is held in memory at all.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use checkgate_protocol::connections::{
    ConnectedClient, ConnectionCount, ConnectionReport, MAX_CLIENTS, MAX_ENTRIES,
};
use dashmap::DashMap;

/// How often a server reports its streams when nothing changes.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);
/// How soon after a change a report follows (changes within it share one report).
pub const REPORT_SOON: Duration = Duration::from_secs(1);

/// (environment id, SDK key id), shared by the map and every stream of that key, so an idle
/// stream holds a pointer, not two strings.
type Key = Arc<(String, String)>;

/// The open streams of this server.
#[derive(Debug, Default)]
pub struct Connections {
    counts: DashMap<Key, u64>,
    /// Each open stream's client, by a number of its own; empty unless addresses are kept.
    clients: DashMap<u64, (Key, IpAddr, i64)>,
    next_client: AtomicU64,
    /// Moves at every open and end, so the flusher can tell that a report is due.
    changes: AtomicU64,
    /// Changes wake the flusher.
    changed: tokio::sync::Notify,
    addresses: bool,
}

impl Connections {
    /// `addresses`: whether client addresses are kept and reported.
    pub fn new(addresses: bool) -> Self {
        Self {
            addresses,
            ..Self::default()
        }
    }

    /// Whether client addresses are reported.
    pub fn reports_addresses(&self) -> bool {
        self.addresses
    }

    /// Counts a stream of `key_id` in `env_id` from `address` until the guard is dropped.
    pub fn open(self: &Arc<Self>, env_id: &str, key_id: &str, address: Option<IpAddr>) -> Tracked {
        let key = {
            let mut entry = self
                .counts
                .entry(Arc::new((env_id.to_owned(), key_id.to_owned())))
                .or_insert(0);
            *entry += 1;
            Arc::clone(entry.key())
        };
        let client = match address.filter(|_| self.addresses) {
            Some(ip) => {
                let id = self.next_client.fetch_add(1, Ordering::Relaxed);
                self.clients.insert(id, (Arc::clone(&key), ip, now_ms()));
                Some(id)
            }
            None => None,
        };
        self.touched();
        Tracked {
            registry: Arc::clone(self),
            key,
            client,
        }
    }

    fn close(&self, key: &Key, client: Option<u64>) {
        if let Some(id) = client {
            self.clients.remove(&id);
        }
        self.counts.remove_if_mut(key, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
        self.touched();
    }

    fn touched(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_one();
    }

    /// A number that moves whenever a stream opens or ends.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// Resolves at the next open or end (or at once if one happened since the last wait).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Open streams in all, for `/status`.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|e| *e.value()).sum()
    }

    /// The streams now, bounded: at most [`MAX_ENTRIES`] entries (the largest counts kept) and
    /// [`MAX_CLIENTS`] clients per entry (the longest connected).
    pub fn report(&self, id: [u8; 16]) -> ConnectionReport {
        let mut entries: Vec<ConnectionCount> = self
            .counts
            .iter()
            .filter(|e| *e.value() > 0)
            .map(|e| ConnectionCount {
                env_id: e.key().0.clone(),
                key_id: e.key().1.clone(),
                count: *e.value(),
                clients: Vec::new(),
            })
            .collect();
        entries.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| (&a.env_id, &a.key_id).cmp(&(&b.env_id, &b.key_id)))
        });
        entries.truncate(MAX_ENTRIES);
        if self.addresses && !self.clients.is_empty() {
            let mut clients: Vec<(Key, IpAddr, i64)> =
                self.clients.iter().map(|e| e.value().clone()).collect();
            clients.sort_by_key(|(_, _, at)| *at);
            let at: std::collections::HashMap<(&str, &str), usize> = entries
                .iter()
                .enumerate()
                .map(|(i, e)| ((e.env_id.as_str(), e.key_id.as_str()), i))
                .collect();
            let mut placed: Vec<Vec<ConnectedClient>> = vec![Vec::new(); entries.len()];
            for (key, ip, connected_at) in &clients {
                if let Some(&i) = at.get(&(key.0.as_str(), key.1.as_str()))
                    && placed[i].len() < MAX_CLIENTS
                {
                    placed[i].push(ConnectedClient {
                        address: ip.to_string(),
                        connected_at: *connected_at,
                    });
                }
            }
            for (entry, clients) in entries.iter_mut().zip(placed) {
                entry.clients = clients;
            }
        }
        ConnectionReport { id, entries }
    }
}

/// One open stream, counted until dropped.
#[derive(Debug)]
pub struct Tracked {
    registry: Arc<Connections>,
    key: Key,
    client: Option<u64>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.registry.close(&self.key, self.client);
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn streams_are_counted_while_open() {
        let c = Arc::new(Connections::new(false));
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let a = c.open("e1", "k1", Some(ip));
        let b = c.open("e1", "k1", Some(ip));
        let d = c.open("e2", "k2", None);
        let report = c.report([0; 16]);
        assert_eq!(report.entries.len(), 2);
        assert_eq!(report.entries[0].count, 2);
        assert!(report.entries.iter().all(|e| e.clients.is_empty()));
        drop((a, b));
        let report = c.report([0; 16]);
        assert_eq!(report.entries.len(), 1);
        assert_eq!(report.entries[0].env_id, "e2");
        drop(d);
        assert!(c.report([0; 16]).entries.is_empty());
        assert_eq!(c.total(), 0);
    }

    #[test]
    fn addresses_only_when_asked() {
        let c = Arc::new(Connections::new(true));
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let _a = c.open("e1", "k1", Some(ip));
        let report = c.report([0; 16]);
        assert_eq!(report.entries[0].clients[0].address, "10.1.2.3");
    }
}

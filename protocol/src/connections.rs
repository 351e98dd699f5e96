//! Connected SDKs: what a server (an edge, or the control plane's in-process serving) reports
//! of its open SDK streams, so the control plane can answer for the whole fleet.
//!
//! A report holds counts per environment and SDK key (by the key's id: a server knows keys by
//! hash and id, never by name, which the control plane looks up). Client addresses travel only
//! when the server was told to report them (`REPORT_CLIENT_ADDRESSES`), and then at most
//! [`MAX_CLIENTS`] per entry. A report replaces the sender's previous one; it carries an id so
//! that it travels the insights path (answered by an `InsightsAck` naming it), but storing it
//! twice changes nothing.
//!
//! Bincode-ready like the frames: every `String` is read through [`crate::frame`]'s bounded
//! reader.

use serde::{Deserialize, Serialize};

/// Most entries (environment × key) in one report; a server with more reports the largest.
pub const MAX_ENTRIES: usize = 2_000;
/// Most client addresses listed per entry (the count is always whole).
pub const MAX_CLIENTS: usize = 100;
/// Longest address text, in bytes (an IPv6 address is at most 45).
pub const MAX_ADDRESS: usize = 64;

/// A server's open SDK streams, now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionReport {
    /// Chosen by the sender; the control plane's `InsightsAck` names it.
    pub id: [u8; 16],
    /// At most [`MAX_ENTRIES`], each (environment, key) once.
    pub entries: Vec<ConnectionCount>,
}

/// Open streams of one SDK key in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionCount {
    #[serde(deserialize_with = "crate::frame::string")]
    pub env_id: String,
    /// The SDK key's id (as the feed's `SdkKeyRecord` carries it).
    #[serde(deserialize_with = "crate::frame::string")]
    pub key_id: String,
    pub count: u64,
    /// Empty unless the server reports client addresses; at most [`MAX_CLIENTS`].
    pub clients: Vec<ConnectedClient>,
}

/// One connected client, reported only with `REPORT_CLIENT_ADDRESSES=true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedClient {
    /// The client's IP address as the server saw it.
    #[serde(deserialize_with = "crate::frame::string")]
    pub address: String,
    /// When the stream opened, Unix milliseconds.
    pub connected_at: i64,
}

/// Why a report is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidReport(pub String);

impl ConnectionReport {
    /// Checks the bounds a sender keeps: entries, clients per entry, address length.
    pub fn check(&self) -> Result<(), InvalidReport> {
        if self.entries.len() > MAX_ENTRIES {
            return Err(InvalidReport(format!(
                "a report holds at most {MAX_ENTRIES} entries, got {}",
                self.entries.len()
            )));
        }
        for entry in &self.entries {
            if entry.env_id.is_empty() || entry.env_id.len() > 64 {
                return Err(InvalidReport("env_id must be 1 to 64 bytes".into()));
            }
            if entry.key_id.is_empty() || entry.key_id.len() > 64 {
                return Err(InvalidReport("key_id must be 1 to 64 bytes".into()));
            }
            if entry.clients.len() > MAX_CLIENTS {
                return Err(InvalidReport(format!(
                    "an entry lists at most {MAX_CLIENTS} clients"
                )));
            }
            if entry
                .clients
                .iter()
                .any(|c| c.address.is_empty() || c.address.len() > MAX_ADDRESS)
            {
                return Err(InvalidReport(format!(
                    "a client address must be 1 to {MAX_ADDRESS} bytes"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn entry(clients: usize) -> ConnectionCount {
        ConnectionCount {
            env_id: "env".into(),
            key_id: "key".into(),
            count: 3,
            clients: (0..clients)
                .map(|i| ConnectedClient {
                    address: format!("10.0.0.{i}"),
                    connected_at: 5,
                })
                .collect(),
        }
    }

    #[test]
    fn a_report_round_trips_through_bincode() {
        let report = ConnectionReport {
            id: [9; 16],
            entries: vec![entry(0), entry(2)],
        };
        let bytes = bincode::serde::encode_to_vec(&report, bincode::config::standard()).unwrap();
        let (back, _): (ConnectionReport, _) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn bounds_are_checked() {
        let ok = ConnectionReport {
            id: [0; 16],
            entries: vec![entry(MAX_CLIENTS)],
        };
        assert!(ok.check().is_ok());
        let too_many_clients = ConnectionReport {
            id: [0; 16],
            entries: vec![entry(MAX_CLIENTS + 1)],
        };
        assert!(too_many_clients.check().is_err());
        let too_many_entries = ConnectionReport {
            id: [0; 16],
            entries: vec![entry(0); MAX_ENTRIES + 1],
        };
        assert!(too_many_entries.check().is_err());
    }
}

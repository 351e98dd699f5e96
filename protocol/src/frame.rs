//! The change-feed frames. An edge dials the control plane and sends [`Hello`] with its
//! positions; the control plane answers [`Welcome`], then for each environment a [`Snapshot`]
//! or the [`Changes`] since the edge's position, then live [`Changes`] and [`Heartbeat`]s.
//!
//! A position is `(epoch, version)` per environment. The epoch identifies the database: when it
//! differs from the edge's, the edge's versions mean nothing and it gets a snapshot. Versions
//! are per environment, gapless and in commit order, so an edge applies version `v` only after
//! `v - 1`. Flag and segment documents travel as JSON text: the codec never needs to describe
//! them, and an edge can hand the text to SSE clients as it is.

use serde::{Deserialize, Serialize};

use crate::Secret;

/// Where an edge stands in one environment's feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvPosition {
    pub env_id: String,
    pub epoch: u64,
    pub version: u64,
}

/// First frame from the edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The envelope format the edge speaks, for a clear refusal when it is too old or new.
    pub protocol_version: u16,
    /// The edge token; checked against its hash, never logged.
    pub edge_token: Secret,
    /// For fleet status: which edge this is, and where.
    pub edge_name: String,
    pub region: String,
    /// What the edge already holds (from its snapshot file), so the control plane can send only
    /// the changes since.
    pub positions: Vec<EnvPosition>,
}

/// An environment the edge is allowed to serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentInfo {
    pub env_id: String,
    pub project_id: String,
    pub slug: String,
    pub name: String,
}

/// The control plane's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub epoch: u64,
    pub environments: Vec<EnvironmentInfo>,
    /// How often heartbeats come; the edge declares the connection dead after a few missed.
    pub heartbeat_interval_ms: u32,
}

/// A versioned document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub version: u64,
    pub json: String,
}

/// Which clients an SDK key is for: server keys may read rules, client keys only values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SdkKeyKind {
    Server,
    Client,
}

/// An SDK key as edges know it: its hash, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdkKeyRecord {
    pub id: String,
    pub version: u64,
    pub kind: SdkKeyKind,
    /// SHA-256 of the key.
    pub hash: [u8; 32],
    /// The first characters, for logs and status pages.
    pub prefix: String,
}

/// Everything an environment holds, at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub env_id: String,
    pub epoch: u64,
    pub version: u64,
    pub flags: Vec<Record>,
    pub segments: Vec<Record>,
    pub sdk_keys: Vec<SdkKeyRecord>,
    /// The environment's serving settings, as JSON.
    pub settings_json: String,
}

/// One change to an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Item {
    FlagUpsert {
        key: String,
        json: String,
    },
    FlagDelete {
        key: String,
    },
    SegmentUpsert {
        key: String,
        json: String,
    },
    SegmentDelete {
        key: String,
    },
    SdkKeyUpsert(SdkKeyRecord),
    SdkKeyRevoke {
        id: String,
    },
    SettingsUpdate {
        json: String,
    },
    /// The environment is gone: stop serving it.
    EnvironmentDeleted,
}

/// A change with the environment version it created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub version: u64,
    pub item: Item,
}

/// Consecutive changes of one environment, in version order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    pub env_id: String,
    pub epoch: u64,
    pub changes: Vec<ChangeRecord>,
}

/// Sent when the feed is idle, with the head of each environment, so an edge can tell a quiet
/// feed from a dead one and notice a change it missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub heads: Vec<EnvPosition>,
}

/// Anti-entropy: the edge asks for an environment's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRequest {
    pub env_id: String,
}

/// A digest of an environment at a version: a hash over its sorted `(kind, key, version)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub env_id: String,
    pub epoch: u64,
    pub version: u64,
    pub digest: [u8; 32],
}

/// Why a feed is being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseCode {
    /// The token is unknown.
    Unauthorized,
    /// The token was revoked: stop serving what it granted.
    Revoked,
    /// The peer speaks a format version this side does not.
    ProtocolVersion,
    /// The control plane is shutting down; reconnect elsewhere or later.
    Shutdown,
    /// The peer sent something it should not have.
    ProtocolViolation,
    Internal,
}

/// The last frame of a feed connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Close {
    pub code: CloseCode,
    pub message: String,
}

/// A feed frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    Hello(Hello),
    Welcome(Welcome),
    Snapshot(Snapshot),
    Changes(Changes),
    Heartbeat(Heartbeat),
    DigestRequest(DigestRequest),
    Digest(Digest),
    Close(Close),
}

impl Frame {
    /// The frame's name, for logs and metric labels (a closed set).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello(_) => "hello",
            Self::Welcome(_) => "welcome",
            Self::Snapshot(_) => "snapshot",
            Self::Changes(_) => "changes",
            Self::Heartbeat(_) => "heartbeat",
            Self::DigestRequest(_) => "digest_request",
            Self::Digest(_) => "digest",
            Self::Close(_) => "close",
        }
    }
}

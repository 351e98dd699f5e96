//! The change-feed frames. An edge dials the control plane and sends [`Hello`] with its
//! positions; the control plane answers [`Welcome`], then for each environment a [`Snapshot`]
//! or the [`Changes`] since the edge's position, then live [`Changes`] and [`Heartbeat`]s. The
//! edge may ask for a [`Digest`] (anti-entropy) or a fresh snapshot ([`Resync`]) at any time;
//! the control plane sends [`Welcome`] again when the set of environments it grants changes.
//!
//! A position is `(epoch, version)` per environment. The epoch identifies the database: when it
//! differs from the edge's, the edge's versions mean nothing and it gets a snapshot. Versions
//! are per environment, gapless and in commit order, so an edge applies version `v` only after
//! `v - 1`. Flag and segment documents travel as JSON text: the binary codec is not
//! self-describing and the documents hold free-form JSON values, and an edge can hand the text
//! to its SSE clients as it is.
//!
//! Wire compatibility: frames are encoded by field and variant *position*. Any change to these
//! types (a field added, removed or reordered, a variant inserted) needs a new
//! [`FORMAT_VERSION`](crate::FORMAT_VERSION).
//!
//! Every `String` field is read through `string` (at the end of this file), which checks that
//! a string's bytes have arrived before allocating for it. A new `String` field needs the same
//! attribute; the `allocation` test checks every string field of every frame.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::Secret;
use crate::connections::ConnectionReport;
use crate::impressions::{EvaluationCounts, ImpressionBatch};

/// What an edge understands of the conversation: which frames it may send and be sent, and how
/// it applies them. The byte layout is versioned separately by the envelope's
/// [`FORMAT_VERSION`](crate::FORMAT_VERSION); this number lets a control plane keep serving an
/// older edge of the same format, and a newer edge keep following an older control plane.
///
/// - 1: the feed — `Hello` to `Resync` — and, from the builds that added them, the edge's
///   insights (`Impressions`, `EvaluationCounts`, `Connections`, each answered by an
///   `InsightsAck`); a control plane older than those frames cannot read them.
/// - 2: the same conversation, from an edge that steps down: a control plane serves every
///   version from [`MIN_PROTOCOL_VERSION`] to its own and refuses others with
///   [`CloseCode::ProtocolVersion`] ([`Hello::refusal`]); an edge refused that way says hello
///   again one version lower, down to [`MIN_PROTOCOL_VERSION`]. The next change to the
///   conversation raises the version, and each side then keeps to what the other speaks.
pub const PROTOCOL_VERSION: u16 = 2;

/// The oldest protocol version a control plane serves and an edge falls back to.
pub const MIN_PROTOCOL_VERSION: u16 = 1;

/// Where an edge stands in one environment's feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvPosition {
    #[serde(deserialize_with = "string")]
    pub env_id: String,
    /// The database the versions below come from.
    pub epoch: u64,
    /// The last version applied; every version up to it has been applied.
    pub version: u64,
}

/// First frame from the edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The edge's [`PROTOCOL_VERSION`], for a clear refusal when it is too old or too new.
    pub protocol_version: u16,
    /// The edge's credential; checked against a stored hash, never logged.
    pub edge_token: Secret,
    /// For fleet status: which edge this is, and where it runs.
    #[serde(deserialize_with = "string")]
    pub edge_name: String,
    #[serde(deserialize_with = "string")]
    pub region: String,
    /// What the edge already holds (from its snapshot file), so the control plane can send only
    /// the changes since.
    pub positions: Vec<EnvPosition>,
}

impl Hello {
    /// The `Close` a control plane of [`PROTOCOL_VERSION`] answers this hello with when it does
    /// not serve the edge's version; `None` when it does.
    pub fn refusal(&self) -> Option<Close> {
        let served = MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION;
        (!served.contains(&self.protocol_version)).then(|| Close {
            code: CloseCode::ProtocolVersion,
            message: format!(
                "this control plane speaks feed protocol {MIN_PROTOCOL_VERSION} to \
                 {PROTOCOL_VERSION}, not {}",
                self.protocol_version
            ),
        })
    }
}

/// An environment the edge is allowed to serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentInfo {
    #[serde(deserialize_with = "string")]
    pub env_id: String,
    #[serde(deserialize_with = "string")]
    pub project_id: String,
    /// For URLs and logs (`production`).
    #[serde(deserialize_with = "string")]
    pub slug: String,
    /// For people (`Production`).
    #[serde(deserialize_with = "string")]
    pub name: String,
}

/// The control plane's answer to [`Hello`]: the edge is in, and this is what it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The database's epoch; positions of another epoch are void.
    pub epoch: u64,
    /// Every environment the edge's token grants. An environment missing here is no longer
    /// the edge's to serve.
    pub environments: Vec<EnvironmentInfo>,
    /// How often heartbeats come; the edge declares the connection dead after a few missed.
    pub heartbeat_interval_ms: u32,
}

/// A versioned flag or segment document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    #[serde(deserialize_with = "string")]
    pub key: String,
    /// The environment version that last wrote it, so a late frame cannot undo a newer write.
    pub version: u64,
    /// The document in Checkgate's JSON shape (`checkgate_core::FlagDoc` / `SegmentDoc`).
    #[serde(deserialize_with = "string")]
    pub json: String,
}

/// Which clients an SDK key is for: server keys may read rules, client keys only values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SdkKeyKind {
    Server,
    Client,
}

/// An SDK key as edges know it: its hash, never the key itself, so a leaked edge snapshot
/// leaks no credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdkKeyRecord {
    #[serde(deserialize_with = "string")]
    pub id: String,
    /// The environment version that last wrote it.
    pub version: u64,
    pub kind: SdkKeyKind,
    /// SHA-256 of the key.
    pub hash: [u8; 32],
    /// The key's first characters, for logs and status pages.
    #[serde(deserialize_with = "string")]
    pub prefix: String,
}

/// Everything an environment holds, at one version. Replaces whatever the edge held for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(deserialize_with = "string")]
    pub env_id: String,
    pub epoch: u64,
    /// The environment's version; live changes continue from `version + 1`.
    pub version: u64,
    pub flags: Vec<Record>,
    pub segments: Vec<Record>,
    pub sdk_keys: Vec<SdkKeyRecord>,
    /// The environment's serving settings: an [`crate::EnvironmentSettings`] as JSON text.
    #[serde(deserialize_with = "string")]
    pub settings_json: String,
}

/// One change to an environment. Deletes are explicit so that an edge can keep a tombstone:
/// without one, a late upsert would bring the item back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Item {
    FlagUpsert {
        #[serde(deserialize_with = "string")]
        key: String,
        #[serde(deserialize_with = "string")]
        json: String,
    },
    FlagDelete {
        #[serde(deserialize_with = "string")]
        key: String,
    },
    SegmentUpsert {
        #[serde(deserialize_with = "string")]
        key: String,
        #[serde(deserialize_with = "string")]
        json: String,
    },
    SegmentDelete {
        #[serde(deserialize_with = "string")]
        key: String,
    },
    SdkKeyUpsert(SdkKeyRecord),
    /// The key stops working at once, everywhere.
    SdkKeyRevoke {
        #[serde(deserialize_with = "string")]
        id: String,
    },
    /// The environment's new serving settings: an [`crate::EnvironmentSettings`] as JSON text.
    SettingsUpdate {
        #[serde(deserialize_with = "string")]
        json: String,
    },
    /// The environment is gone: stop serving it and forget what it held.
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
    #[serde(deserialize_with = "string")]
    pub env_id: String,
    /// The epoch the versions belong to; a mismatch means the edge must resync.
    pub epoch: u64,
    pub changes: Vec<ChangeRecord>,
}

/// Sent when the feed is idle, with the head of each environment, so an edge can tell a quiet
/// feed from a dead one and notice a change it missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub heads: Vec<EnvPosition>,
}

/// Anti-entropy: the edge asks for an environment's [`Digest`] to compare with its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRequest {
    #[serde(deserialize_with = "string")]
    pub env_id: String,
}

/// A digest of an environment at a version: a hash over its sorted `(kind, key, version)`.
/// An edge whose own digest at that version differs resyncs from a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    #[serde(deserialize_with = "string")]
    pub env_id: String,
    pub epoch: u64,
    pub version: u64,
    pub digest: [u8; 32],
}

/// The edge asks for a fresh [`Snapshot`] of one environment: it met a gap it could not fill,
/// or its [`Digest`] disagreed with the control plane's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resync {
    #[serde(deserialize_with = "string")]
    pub env_id: String,
}

/// Why a feed is being closed; tells the edge whether to retry, and whether to keep serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CloseCode {
    /// The token is unknown. The edge keeps serving what it has and retries later.
    Unauthorized,
    /// The token was revoked: stop serving what it granted.
    Revoked,
    /// The peer speaks a protocol or format version this side does not.
    ProtocolVersion,
    /// The control plane is shutting down; reconnect elsewhere or later.
    Shutdown,
    /// The peer sent something it should not have (a frame out of turn).
    ProtocolViolation,
    /// Something failed on the sender's side; retry later.
    Internal,
}

/// The last frame of a feed connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Close {
    pub code: CloseCode,
    /// A sentence for the peer's log. Never secrets or internal details.
    #[serde(deserialize_with = "string")]
    pub message: String,
}

/// What became of an edge's [`Frame::Impressions`] or [`Frame::EvaluationCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AckOutcome {
    /// Stored (now, or before under the same id): the edge forgets the batch.
    Stored,
    /// Never to be stored (an environment the edge's token does not grant, an item the control
    /// plane refuses): the edge drops the batch and counts it.
    Refused,
    /// Not stored this time (the database failed, the control plane is busy): the edge sends
    /// the same batch, with the same id, again later.
    Retry,
}

/// The control plane's answer to an edge's insights frame, naming the batch by its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsightsAck {
    pub id: [u8; 16],
    pub outcome: AckOutcome,
}

/// A feed frame: what the envelope carries. New variants go at the end: bincode encodes a
/// variant by its index.
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
    Resync(Resync),
    /// From an edge: impressions its SDKs reported, stored once per batch id.
    Impressions(ImpressionBatch),
    /// From an edge: its own evaluations counted per environment, flag, variant and minute.
    EvaluationCounts(EvaluationCounts),
    /// From the control plane: the answer to either of the two above, and to `Connections`.
    InsightsAck(InsightsAck),
    /// From an edge: its open SDK streams per environment and key, replacing its last report
    /// (every 10 s and on change); answered by an `InsightsAck`.
    Connections(ConnectionReport),
}

impl Frame {
    /// The id of an insights batch (`Impressions`, `EvaluationCounts`, `Connections`), which its
    /// `InsightsAck` names; `None` for any other frame.
    pub fn insights_id(&self) -> Option<[u8; 16]> {
        match self {
            Self::Impressions(batch) => Some(batch.id),
            Self::EvaluationCounts(counts) => Some(counts.id),
            Self::Connections(report) => Some(report.id),
            _ => None,
        }
    }

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
            Self::Resync(_) => "resync",
            Self::Impressions(_) => "impressions",
            Self::EvaluationCounts(_) => "evaluation_counts",
            Self::InsightsAck(_) => "insights_ack",
            Self::Connections(_) => "connections",
        }
    }
}

/// `Frame::from(hello)` and `hello.into()` at call sites.
macro_rules! into_frame {
    ($($variant:ident),+) => {
        $(impl From<$variant> for Frame {
            fn from(frame: $variant) -> Self {
                Self::$variant(frame)
            }
        })+
    };
}

into_frame!(
    Hello,
    Welcome,
    Snapshot,
    Changes,
    Heartbeat,
    DigestRequest,
    Digest,
    Close,
    Resync,
    InsightsAck
);

impl From<ImpressionBatch> for Frame {
    fn from(batch: ImpressionBatch) -> Self {
        Self::Impressions(batch)
    }
}

impl From<ConnectionReport> for Frame {
    fn from(report: ConnectionReport) -> Self {
        Self::Connections(report)
    }
}

impl From<EvaluationCounts> for Frame {
    fn from(counts: EvaluationCounts) -> Self {
        Self::EvaluationCounts(counts)
    }
}

/// Reads a `String` by borrowing it from the input first, then copying it. bincode's own
/// `String` decoding allocates the length it reads *before* checking that that many bytes
/// follow, so a frame claiming a gigabyte-long string would make it allocate a gigabyte;
/// borrowing checks first, so a lying length is refused having allocated nothing, and an
/// honest one allocates exactly the bytes received.
pub(crate) fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct Owned;

    impl de::Visitor<'_> for Owned {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
            Ok(s.to_owned())
        }

        fn visit_string<E: de::Error>(self, s: String) -> Result<String, E> {
            Ok(s)
        }
    }

    deserializer.deserialize_str(Owned)
}

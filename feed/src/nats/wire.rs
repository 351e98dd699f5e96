//! What travels on the feed's JetStream stream: one message per environment version, on the
//! subject `checkgate.feed.<environment id>`, holding an envelope-encoded `Changes` frame with
//! that one change. Headers: `Nats-Msg-Id` = `<epoch>.<environment>.<version>` (the server
//! drops a republish inside its duplicate window) and `Checkgate-Version`.
//!
//! A change too large for the servers' `max_payload` travels as a marker (`Checkgate-Too-Large`,
//! no payload) in its place, so the environment's versions stay gapless: an edge that meets
//! one fetches a snapshot instead.
//!
//! An edge reads every message through [`read`], which refuses (and never applies) anything
//! that is not exactly that shape.

use async_nats::HeaderMap;
use checkgate_protocol::frame::{ChangeRecord, Changes};
use checkgate_protocol::{DecodeError, EncodeError, Frame, decode, encode};

/// The subjects' common prefix.
pub const SUBJECT_PREFIX: &str = "checkgate.feed.";
/// Every feed subject, for the stream's configuration.
pub const SUBJECTS: &str = "checkgate.feed.*";
/// The version a message carries.
pub const VERSION_HEADER: &str = "Checkgate-Version";
/// Marks a change that did not fit in a message.
pub const TOO_LARGE_HEADER: &str = "Checkgate-Too-Large";
/// The fencing token of the relay that published a message (for operators reading the stream).
pub const RELAY_HEADER: &str = "Checkgate-Relay";
/// The largest message an edge reads; NATS servers refuse larger ones anyway (`max_payload`
/// is at most 64 MiB).
pub const MAX_MESSAGE: usize = 64 << 20;

/// The subject of an environment's changes.
pub fn subject(env_id: &str) -> String {
    format!("{SUBJECT_PREFIX}{env_id}")
}

/// The message id of a version, for the server's de-duplication.
pub fn message_id(epoch: u64, env_id: &str, version: u64) -> String {
    format!("{epoch}.{env_id}.{version}")
}

/// The version a relay message of `epoch` carries for `env_id`, read from its message id;
/// `None` for anything else (another database's message, or not a relay's).
pub fn relayed_version(message_id: &str, epoch: u64, env_id: &str) -> Option<u64> {
    let rest = message_id.strip_prefix(&format!("{epoch}."))?;
    let version = rest.strip_prefix(env_id)?.strip_prefix('.')?;
    version.parse().ok()
}

/// Whether an environment id can be a subject token (ids are UUIDs; this guards the rest).
pub fn subject_safe(env_id: &str) -> bool {
    !env_id.is_empty()
        && env_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The payload of one change of `env_id`.
pub fn payload(env_id: &str, epoch: u64, change: ChangeRecord) -> Result<Vec<u8>, EncodeError> {
    let frame = Frame::Changes(Changes {
        env_id: env_id.to_owned(),
        epoch,
        changes: vec![change],
    });
    encode(&frame, MAX_MESSAGE)
}

/// What a well-formed message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// One change, to apply through the replica.
    Changes(Changes),
    /// The change of `version` was too large to travel: fetch a snapshot of `env_id`.
    TooLarge { env_id: String, version: u64 },
}

/// Why a message was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("subject {0:?} is not a feed subject")]
    Subject(String),
    #[error("environment {0} is not granted to this edge")]
    NotGranted(String),
    #[error("no readable {VERSION_HEADER} header")]
    Version,
    #[error("{len} bytes is over the {MAX_MESSAGE}-byte cap")]
    Oversize { len: usize },
    #[error("undecodable envelope: {0}")]
    Envelope(#[from] DecodeError),
    #[error("the message ends inside its envelope")]
    Truncated,
    #[error("the message holds a {0} frame, not one change")]
    Shape(&'static str),
    #[error("the message's frame disagrees with its subject or version header")]
    Mismatch,
}

impl Refusal {
    /// A short label for the refusal counter.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Subject(_) => "subject",
            Self::NotGranted(_) => "not_granted",
            Self::Version => "version_header",
            Self::Oversize { .. } => "oversize",
            Self::Envelope(DecodeError::UnsupportedVersion { .. }) => "format_version",
            Self::Envelope(_) | Self::Truncated => "envelope",
            Self::Shape(_) => "shape",
            Self::Mismatch => "mismatch",
        }
    }
}

/// Reads one message of `subject`; `granted` says whether an environment is this edge's.
pub fn read(
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: &[u8],
    granted: impl Fn(&str) -> bool,
) -> Result<Incoming, Refusal> {
    let env_id = subject
        .strip_prefix(SUBJECT_PREFIX)
        .filter(|env| subject_safe(env))
        .ok_or_else(|| Refusal::Subject(subject.chars().take(200).collect()))?;
    if !granted(env_id) {
        return Err(Refusal::NotGranted(env_id.to_owned()));
    }
    let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
    let version: u64 = header(VERSION_HEADER)
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .ok_or(Refusal::Version)?;
    if header(TOO_LARGE_HEADER).is_some() {
        if !payload.is_empty() {
            return Err(Refusal::Shape("a too-large marker with a payload: not"));
        }
        return Ok(Incoming::TooLarge {
            env_id: env_id.to_owned(),
            version,
        });
    }
    if payload.len() > MAX_MESSAGE {
        return Err(Refusal::Oversize { len: payload.len() });
    }
    let (frame, used) = decode(payload, MAX_MESSAGE)?.ok_or(Refusal::Truncated)?;
    if used != payload.len() {
        return Err(Refusal::Shape("trailing bytes after a"));
    }
    let Frame::Changes(changes) = frame else {
        return Err(Refusal::Shape(frame.kind()));
    };
    let one = matches!(changes.changes.as_slice(), [c] if c.version == version);
    if changes.env_id != env_id || !one {
        return Err(Refusal::Mismatch);
    }
    Ok(Incoming::Changes(changes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use checkgate_protocol::frame::Item;

    fn change(version: u64) -> ChangeRecord {
        ChangeRecord {
            version,
            item: Item::FlagDelete { key: "f".into() },
        }
    }

    fn headers(version: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(VERSION_HEADER, version);
        h
    }

    #[test]
    fn a_published_change_reads_back_and_anything_else_is_refused() {
        let body = payload("env-1", 9, change(4)).unwrap();
        let all = |_: &str| true;
        let read_ok = read("checkgate.feed.env-1", Some(&headers("4")), &body, all).unwrap();
        let Incoming::Changes(changes) = read_ok else {
            panic!("not changes")
        };
        assert_eq!((changes.env_id.as_str(), changes.epoch), ("env-1", 9));

        let refusals: Vec<(Result<Incoming, Refusal>, &str)> = vec![
            (
                read("other.env-1", Some(&headers("4")), &body, all),
                "subject",
            ),
            (
                read("checkgate.feed.a.b", Some(&headers("4")), &body, all),
                "subject",
            ),
            (
                read("checkgate.feed.env-1", Some(&headers("4")), &body, |_| {
                    false
                }),
                "not_granted",
            ),
            (
                read("checkgate.feed.env-1", None, &body, all),
                "version_header",
            ),
            (
                read("checkgate.feed.env-1", Some(&headers("x")), &body, all),
                "version_header",
            ),
            (
                read("checkgate.feed.env-1", Some(&headers("5")), &body, all),
                "mismatch",
            ),
            (
                read("checkgate.feed.env-2", Some(&headers("4")), &body, all),
                "mismatch",
            ),
            (
                read(
                    "checkgate.feed.env-1",
                    Some(&headers("4")),
                    &body[..body.len() - 1],
                    all,
                ),
                "envelope",
            ),
            (
                read(
                    "checkgate.feed.env-1",
                    Some(&headers("4")),
                    b"garbage!!!!!",
                    all,
                ),
                "envelope",
            ),
        ];
        for (outcome, reason) in refusals {
            assert_eq!(outcome.unwrap_err().reason(), reason);
        }
        let mut newer = body.clone();
        newer[5] = 9; // the format version's low byte
        let err = read("checkgate.feed.env-1", Some(&headers("4")), &newer, all).unwrap_err();
        assert_eq!(err.reason(), "format_version");
        let mut trailing = body.clone();
        trailing.push(0);
        let err = read("checkgate.feed.env-1", Some(&headers("4")), &trailing, all).unwrap_err();
        assert_eq!(err.reason(), "shape");
    }

    #[test]
    fn a_message_id_names_the_version_it_relayed() {
        let id = message_id(7, "env-1", 42);
        assert_eq!(relayed_version(&id, 7, "env-1"), Some(42));
        assert_eq!(relayed_version(&id, 8, "env-1"), None, "another database");
        assert_eq!(relayed_version(&id, 7, "env-2"), None);
        assert_eq!(relayed_version(&id, 7, "env"), None);
        assert_eq!(relayed_version("garbage", 7, "env-1"), None);
    }

    #[test]
    fn a_too_large_marker_asks_for_a_snapshot() {
        let mut h = headers("7");
        h.insert(TOO_LARGE_HEADER, "1");
        assert_eq!(
            read("checkgate.feed.e", Some(&h), b"x", |_| true)
                .unwrap_err()
                .reason(),
            "shape"
        );
        let got = read("checkgate.feed.e", Some(&h), &[], |_| true).unwrap();
        assert_eq!(
            got,
            Incoming::TooLarge {
                env_id: "e".into(),
                version: 7
            }
        );
    }
}

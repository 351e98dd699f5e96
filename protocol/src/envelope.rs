//! The envelope around every feed frame: a 10-byte header — magic `CGFD`, the format version
//! (u16, big-endian) and the payload length (u32, big-endian) — then the bincode payload.
//!
//! Decoding is a function of a byte slice (no I/O, no clock), so it is deterministic and
//! fuzzable. Any input gives a frame, "incomplete", or a typed error; never a panic. No length
//! read from the input is allocated before it is checked against the bytes at hand:
//!
//! - the header's length is checked against the cap before anything is allocated or awaited;
//! - a string's length is checked against the bytes that follow it before it is copied
//!   ([`frame`](crate::frame) reads every string that way);
//! - a list reserves at most 1 MiB up front (serde's cautious size hint) and otherwise grows
//!   only with the items actually decoded;
//! - as a backstop, bincode's limit bounds the total it decodes. bincode counts each integer
//!   at its size in memory (a one-byte varint `u64` counts 8), so an honest payload counts up
//!   to 8 times its length, and the limit is 8 times the payload's size class.
//!
//! A decoded frame can still take more memory than its encoding (a list of 2-byte changes
//! becomes a list of ~100-byte structs), so a side reading from a peer that has not
//! authenticated yet should use the small [`HANDSHAKE_MAX_FRAME`] cap.

use bincode::config::{self, Configuration, LittleEndian, NoLimit, Varint};
use bincode::enc::write::Writer;

use crate::frame::Frame;

/// The first bytes of every frame: a peer speaking something else is refused at once.
pub const MAGIC: [u8; 4] = *b"CGFD";
/// The envelope and payload format this build speaks. Any change to a frame type bumps it.
pub const FORMAT_VERSION: u16 = 1;
/// Header size: magic, version, payload length.
pub const HEADER_LEN: usize = 10;
/// The default cap on a payload. A snapshot of 10,000 flags is about 6 MB of JSON.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;
/// The cap for frames from a peer that has not authenticated yet (a control plane reading an
/// edge's `Hello`): enough for thousands of positions, too little to hurt.
pub const HANDSHAKE_MAX_FRAME: usize = 1 << 20;
/// The largest cap honoured; larger caps are lowered to it. It keeps lengths far inside the
/// header's u32 and bounds the decoder's largest limit.
pub const MAX_FRAME_LIMIT: usize = 256 << 20;

/// Why a frame could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(
        "a {kind} frame would take {len} bytes, over the {max}-byte frame cap; \
         the peer would refuse it"
    )]
    TooLarge {
        kind: &'static str,
        len: usize,
        max: usize,
    },
    #[error("a {kind} frame could not be encoded")]
    Codec {
        kind: &'static str,
        #[source]
        source: bincode::error::EncodeError,
    },
}

/// Why bytes received are not a frame. Every variant means the connection's byte stream can no
/// longer be trusted: close it.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "the peer is not speaking the Checkgate feed protocol: its data starts with \"{}\" \
         where \"CGFD\" was expected",
        got[..(*seen).min(MAGIC.len())].escape_ascii()
    )]
    BadMagic {
        /// The first bytes received (only the first `seen` are meaningful).
        got: [u8; 4],
        seen: usize,
    },
    #[error(
        "the peer sends feed format version {got}, but this build reads only version \
         {supported}; upgrade the older of the two"
    )]
    UnsupportedVersion { got: u16, supported: u16 },
    #[error("a feed frame announces a {len}-byte payload, over the {max}-byte frame cap")]
    TooLarge { len: usize, max: usize },
    #[error(
        "a feed frame's payload is not a valid frame (corrupt data, or a peer built from \
         different frame definitions under the same format version)"
    )]
    Malformed(#[source] bincode::error::DecodeError),
    #[error(
        "a feed frame's payload is {len} bytes but the frame inside it ends after {used}; \
         the peer's encoder and ours disagree"
    )]
    TrailingBytes { len: usize, used: usize },
}

/// The payload encoding: bincode's standard configuration. Encoder and decoder must agree on
/// it; the decoder only adds a limit, which does not change the bytes.
fn wire() -> Configuration<LittleEndian, Varint, NoLimit> {
    config::standard()
}

/// Appends the payload to a buffer until it passes the cap, then only counts, so encoding an
/// oversized frame reports its size without allocating it.
struct CappedWriter<'a> {
    out: &'a mut Vec<u8>,
    written: usize,
    max: usize,
}

impl Writer for CappedWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.written = self.written.saturating_add(bytes.len());
        if self.written <= self.max {
            self.out.extend_from_slice(bytes);
        }
        Ok(())
    }
}

/// Encodes a frame with its header. Fails if the payload would be over `max` bytes (or over
/// [`MAX_FRAME_LIMIT`]), since the peer would refuse it.
pub fn encode(frame: &Frame, max: usize) -> Result<Vec<u8>, EncodeError> {
    let max = max.min(MAX_FRAME_LIMIT);
    let kind = frame.kind();
    let mut out = Vec::with_capacity(HEADER_LEN + 64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&[0; 4]); // the length, written below
    let mut writer = CappedWriter {
        out: &mut out,
        written: 0,
        max,
    };
    bincode::serde::encode_into_writer(frame, &mut writer, wire())
        .map_err(|source| EncodeError::Codec { kind, source })?;
    let len = writer.written;
    let too_large = EncodeError::TooLarge { kind, len, max };
    if len > max {
        return Err(too_large);
    }
    let len = u32::try_from(len).map_err(|_| too_large)?;
    out[6..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// Reads the header at the start of `buf` and returns the whole frame's length (header and
/// payload), or `None` if the header has not fully arrived. Errors are found as early as the
/// bytes allow: a wrong first byte is refused before the rest of the header arrives, and an
/// oversized length before any of the payload does.
pub fn peek_frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, DecodeError> {
    let max = max.min(MAX_FRAME_LIMIT);
    let seen = buf.len().min(MAGIC.len());
    if buf[..seen] != MAGIC[..seen] {
        let mut got = [0u8; 4];
        got[..seen].copy_from_slice(&buf[..seen]);
        return Err(DecodeError::BadMagic { got, seen });
    }
    let Some(&[_, _, _, _, v0, v1, l0, l1, l2, l3]) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let version = u16::from_be_bytes([v0, v1]);
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            got: version,
            supported: FORMAT_VERSION,
        });
    }
    let len = u32::from_be_bytes([l0, l1, l2, l3]);
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > max {
        return Err(DecodeError::TooLarge { len, max });
    }
    // `len <= MAX_FRAME_LIMIT`, so this cannot overflow.
    Ok(Some(HEADER_LEN + len))
}

/// Decodes the frame at the start of `buf`. `Ok(None)`: not all of it has arrived yet, read
/// more and call again. `Ok(Some((frame, n)))`: the frame, and the `n` bytes it took; the next
/// frame starts at `buf[n..]`.
pub fn decode(buf: &[u8], max: usize) -> Result<Option<(Frame, usize)>, DecodeError> {
    let Some(total) = peek_frame_len(buf, max)? else {
        return Ok(None);
    };
    let Some(payload) = buf.get(HEADER_LEN..total) else {
        return Ok(None);
    };
    let (frame, used) = decode_payload(payload).map_err(DecodeError::Malformed)?;
    if used != payload.len() {
        return Err(DecodeError::TrailingBytes {
            len: payload.len(),
            used,
        });
    }
    Ok(Some((frame, total)))
}

/// How many bytes bincode may count per payload byte: an integer's size in memory over its
/// shortest encoding (a `u64` in one byte).
const COUNTED_PER_BYTE: usize = 8;

/// Decodes a payload under a limit an honest payload of its size class cannot reach: small
/// payloads (the handshake, heartbeats, most changes) under a small one. bincode takes the
/// limit as a constant, hence one instance per class.
fn decode_payload(payload: &[u8]) -> Result<(Frame, usize), bincode::error::DecodeError> {
    if payload.len() <= HANDSHAKE_MAX_FRAME {
        decode_limited::<{ COUNTED_PER_BYTE * HANDSHAKE_MAX_FRAME }>(payload)
    } else {
        decode_limited::<{ COUNTED_PER_BYTE * MAX_FRAME_LIMIT }>(payload)
    }
}

fn decode_limited<const LIMIT: usize>(
    payload: &[u8],
) -> Result<(Frame, usize), bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(payload, wire().with_limit::<LIMIT>())
}

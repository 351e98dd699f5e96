//! The envelope around every feed frame: a 10-byte header — magic `CGFD`, the format version
//! (u16, big-endian) and the payload length (u32, big-endian) — then the bincode payload.
//!
//! Decoding is a function of a byte slice (no I/O), so it is deterministic and fuzzable. Any
//! input gives a frame, "incomplete", or a typed error; never a panic. The length is checked
//! against the cap before anything is allocated or awaited, and bincode's own limit bounds the
//! lengths claimed inside the payload, so no input makes the decoder allocate more than the cap.

use bincode::config::{self, Configuration, Limit, LittleEndian, Varint};

use crate::frame::Frame;

/// The first bytes of every frame.
pub const MAGIC: [u8; 4] = *b"CGFD";
/// The format this build speaks. A change to any frame type bumps it.
pub const FORMAT_VERSION: u16 = 1;
/// Header size: magic, version, length.
pub const HEADER_LEN: usize = 10;
/// The default cap on a payload. A snapshot of 10,000 flags is about 6 MB of JSON.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;
/// The largest cap a caller may choose: bincode's limit is a compile-time constant.
pub const MAX_FRAME_LIMIT: usize = 256 << 20;

type Codec = Configuration<LittleEndian, Varint, Limit<MAX_FRAME_LIMIT>>;

fn codec() -> Codec {
    config::standard().with_limit::<MAX_FRAME_LIMIT>()
}

/// Why a frame could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("a {kind} frame of {len} bytes is over the {max}-byte frame cap")]
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

/// Why bytes received are not a frame.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a Checkgate feed frame: the first bytes are {got:02x?}, expected \"CGFD\"")]
    BadMagic { got: [u8; 4] },
    #[error("feed format version {got} is not supported (this build speaks version {supported})")]
    UnsupportedVersion { got: u16, supported: u16 },
    #[error("a frame of {len} bytes is over the {max}-byte frame cap")]
    TooLarge { len: usize, max: usize },
    #[error("a frame's payload is malformed")]
    Malformed(#[source] bincode::error::DecodeError),
    #[error("a frame's payload has {extra} bytes after the frame ends")]
    TrailingBytes { extra: usize },
}

/// Encodes a frame with its header. Fails if the payload would be over `max` bytes.
pub fn encode(frame: &Frame, max: usize) -> Result<Vec<u8>, EncodeError> {
    let max = max.min(MAX_FRAME_LIMIT);
    let kind = frame.kind();
    let payload = bincode::serde::encode_to_vec(frame, codec())
        .map_err(|source| EncodeError::Codec { kind, source })?;
    if payload.len() > max {
        return Err(EncodeError::TooLarge {
            kind,
            len: payload.len(),
            max,
        });
    }
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    // `payload.len() <= MAX_FRAME_LIMIT < u32::MAX`, so the cast is exact.
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Reads the header at the start of `buf`: the payload length, `None` if the header is not
/// complete yet. Errors are found as early as the bytes allow.
pub fn peek_len(buf: &[u8], max: usize) -> Result<Option<usize>, DecodeError> {
    let max = max.min(MAX_FRAME_LIMIT);
    let magic_seen = buf.len().min(MAGIC.len());
    if buf[..magic_seen] != MAGIC[..magic_seen] {
        let mut got = [0u8; 4];
        got[..magic_seen].copy_from_slice(&buf[..magic_seen]);
        return Err(DecodeError::BadMagic { got });
    }
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let version = u16::from_be_bytes([header[4], header[5]]);
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            got: version,
            supported: FORMAT_VERSION,
        });
    }
    let len = u32::from_be_bytes([header[6], header[7], header[8], header[9]]) as usize;
    if len > max {
        return Err(DecodeError::TooLarge { len, max });
    }
    Ok(Some(len))
}

/// Decodes the frame at the start of `buf`. `Ok(None)`: not all of it has arrived yet, read
/// more. `Ok(Some((frame, n)))`: the frame, and the `n` bytes it took.
pub fn decode(buf: &[u8], max: usize) -> Result<Option<(Frame, usize)>, DecodeError> {
    let Some(len) = peek_len(buf, max)? else {
        return Ok(None);
    };
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    let (frame, used) = bincode::serde::decode_from_slice::<Frame, _>(payload, codec())
        .map_err(DecodeError::Malformed)?;
    if used != len {
        return Err(DecodeError::TrailingBytes { extra: len - used });
    }
    Ok(Some((frame, HEADER_LEN + len)))
}

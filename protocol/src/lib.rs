//! Everything that crosses a Checkgate process boundary, shared by the control plane and the
//! edge relay so both sides agree by construction:
//!
//! - [`frame`]: the change-feed frames, and [`envelope`]: their versioned, length-prefixed,
//!   size-capped binary envelope. Sans-IO: decoding is a function of a byte slice, so a
//!   transport (QUIC stream, NATS message) only moves bytes, and the decoder can be fuzzed;
//! - [`digest`]: the anti-entropy digest both sides compute;
//! - [`json`]: the API error body, Checkgate's SSE payloads and our evaluation API;
//! - [`impressions`]: impressions and evaluation counts on their way to the insights store;
//! - [`connections`]: a server's open SDK streams, reported to the control plane;
//! - [`ofrep`]: the OpenFeature Remote Evaluation Protocol's bodies;
//! - [`EnvironmentSettings`]: an environment's serving settings, carried as JSON text;
//! - [`Secret`]: a string that never shows in logs.
//!
//! Reading frames from a byte stream:
//!
//! ```
//! use checkgate_protocol::frame::{Close, CloseCode};
//! use checkgate_protocol::{DEFAULT_MAX_FRAME, Frame, decode, encode};
//!
//! let close = Frame::from(Close { code: CloseCode::Shutdown, message: "restarting".into() });
//! let mut received = encode(&close, DEFAULT_MAX_FRAME)?;
//! received.extend(encode(&close, DEFAULT_MAX_FRAME)?);
//!
//! let mut frames = Vec::new();
//! let mut at = 0;
//! // `None`: the next frame has not fully arrived; a transport would read more bytes here.
//! while let Some((frame, used)) = decode(&received[at..], DEFAULT_MAX_FRAME)? {
//!     frames.push(frame);
//!     at += used;
//! }
//! assert_eq!(frames, [close.clone(), close]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod connections;
pub mod digest;
pub mod envelope;
pub mod frame;
pub mod impressions;
pub mod json;
pub mod ofrep;
mod secret;
mod settings;

pub use envelope::{
    DEFAULT_MAX_FRAME, DecodeError, EncodeError, FORMAT_VERSION, HANDSHAKE_MAX_FRAME, HEADER_LEN,
    MAX_FRAME_LIMIT, decode, encode, peek_frame_len,
};
pub use frame::{Frame, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
pub use secret::Secret;
pub use settings::{ContextMode, EnvironmentSettings, ImpressionSettings};

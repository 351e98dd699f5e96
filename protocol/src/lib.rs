//! Everything that crosses a Checkgate process boundary, shared by the control plane and the
//! edge so both sides agree by construction:
//!
//! - [`frame`]: the change-feed frames, and [`envelope`]: their versioned, length-prefixed,
//!   size-capped binary envelope (sans-IO: decoding is a function of a byte slice);
//! - [`json`]: the API error body, Checkgate's SSE payloads and our evaluation API;
//! - [`ofrep`]: the OpenFeature Remote Evaluation Protocol's bodies.

pub mod envelope;
pub mod frame;
pub mod json;
pub mod ofrep;
mod secret;

pub use envelope::{
    DEFAULT_MAX_FRAME, DecodeError, EncodeError, FORMAT_VERSION, HEADER_LEN, decode, encode,
};
pub use frame::Frame;
pub use secret::Secret;

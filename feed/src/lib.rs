//! The change feed's transport seam. Both ends speak [`Frame`]s (`checkgate-protocol`); this
//! crate carries them. [`quic`] is the QUIC transport, both ends: TLS configurations, how an
//! edge trusts the control plane, framed streams, and the edge's [`Transport`] over them.
//!
//! An edge's feed client is written against [`Transport`] and [`Session`] only: it opens a
//! session, says `Hello`, then reads frames in order and sends its requests (digests, resyncs)
//! until the session ends. [`nats`] is the second transport: changes over NATS JetStream,
//! the rest over the control plane's HTTP feed route.

pub mod nats;
pub mod quic;

use std::future::Future;

use checkgate_protocol::Frame;
use checkgate_protocol::frame::Hello;

pub use quic::TransportError;

/// A way for an edge to reach the control plane's feed.
pub trait Transport: Send {
    /// One open session.
    type Session: Session;

    /// Opens a session with `target` (one of the configured addresses) and sends `hello` on
    /// it. The error says, for logs and `/status`, why no session could be opened.
    fn open(
        &mut self,
        target: &str,
        hello: Hello,
    ) -> impl Future<Output = Result<Self::Session, String>> + Send;

    /// Closes whatever the transport holds open, telling the other end it is going.
    fn close(&mut self);
}

/// A session with the control plane: frames in order, both ways.
pub trait Session: Send {
    /// The next frame from the control plane; `None` once it ended the session between
    /// frames. Cancel-safe: a frame half read when the future is dropped is kept for the
    /// next call.
    fn recv(&mut self) -> impl Future<Output = Result<Option<Frame>, TransportError>> + Send;

    /// Sends one frame to the control plane.
    fn send(&mut self, frame: &Frame) -> impl Future<Output = Result<(), TransportError>> + Send;
}

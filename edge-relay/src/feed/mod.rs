//! The change feed as both ends use it: the QUIC transport ([`transport`]) and, on the edge,
//! the replica it keeps in step with the control plane.

mod apply;
pub mod client;
pub mod replica;
pub mod transport;

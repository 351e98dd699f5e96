//! The edge's side of the change feed: the client that follows the control plane over a
//! transport ([`client`]) and the thread that journals and applies what it receives.

mod apply;
pub mod client;
mod state;

//! The edge's side of the change feed: the client that follows the control plane over a
//! transport ([`client`]), the thread that journals and applies what it receives, and the way
//! impressions and evaluation counts go upstream on the same session ([`upstream`]).

mod apply;
pub mod client;
mod state;
pub mod upstream;

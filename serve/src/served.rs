//! What serving reads: the replica in memory, and whoever vouches for how complete it is. An
//! edge vouches through its feed client (connected and caught up with the control plane); the
//! control plane through its database-fed replica (caught up with its own database).

use std::fmt::Debug;
use std::sync::Arc;

use crate::replica::Replica;

/// Who says whether the replica holds everything its source holds.
pub trait Authority: Send + Sync + Debug + 'static {
    /// Whether the replica surely holds every SDK key of its environments. Only then is an
    /// unknown key surely unknown (401); otherwise it may be newer than what is held (503).
    fn knows_every_key(&self) -> bool;
}

/// The replica and its authority: all the SDK routes read.
#[derive(Debug)]
pub struct Served {
    pub replica: Arc<Replica>,
    authority: Arc<dyn Authority>,
}

impl Served {
    pub fn new(replica: Arc<Replica>, authority: Arc<dyn Authority>) -> Arc<Self> {
        Arc::new(Self { replica, authority })
    }

    /// See [`Authority::knows_every_key`].
    pub fn knows_every_key(&self) -> bool {
        self.authority.knows_every_key()
    }
}

//! How the edge's impressions and evaluation counts reach the control plane: the flusher
//! (`checkgate_serve::insights::flush`) hands each batch to [`FeedUpstream`], which passes it
//! to the feed client through a small channel; the client sends it on its session (QUIC, or
//! the HTTP feed route beside NATS) and answers the flusher when the control plane's
//! `InsightsAck` naming the batch arrives. A session that ends answers nothing: the flusher
//! counts that as a failure and sends the same batch again, under the same id, later.
//!
//! The client takes from the channel only while connected and with few batches unanswered;
//! nothing on the serving path ever waits on it.

use std::future::Future;
use std::pin::Pin;

use checkgate_protocol::Frame;
use checkgate_protocol::frame::AckOutcome;
use checkgate_serve::insights::Upstream;
use tokio::sync::{mpsc, oneshot};

/// One batch on its way, and where its outcome goes.
#[derive(Debug)]
pub struct Outgoing {
    pub frame: Frame,
    pub ack: oneshot::Sender<AckOutcome>,
}

impl Outgoing {
    /// The batch's id.
    pub fn id(&self) -> Option<[u8; 16]> {
        self.frame.insights_id()
    }
}

/// The flusher's way upstream: the feed client's channel.
#[derive(Debug, Clone)]
pub struct FeedUpstream(mpsc::Sender<Outgoing>);

/// The feed client's end of the channel; closed once the flusher is done (after its final
/// flush), which is when a stopping client may leave.
#[derive(Debug)]
pub struct Outbox {
    rx: mpsc::Receiver<Outgoing>,
    open: bool,
}

impl Outbox {
    /// An outbox nothing will ever send to (an edge run without a flusher).
    pub fn closed() -> Self {
        let (_, rx) = mpsc::channel(1);
        Self { rx, open: false }
    }

    /// Whether the flusher may still send.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The next batch; `None` once, when the flusher is gone — after that it never resolves,
    /// so a `select!` on it stays quiet.
    pub async fn next(&mut self) -> Option<Outgoing> {
        if !self.open {
            return std::future::pending().await;
        }
        let next = self.rx.recv().await;
        self.open = next.is_some();
        next
    }
}

/// A flusher's upstream and the feed client's outbox, joined.
pub fn channel() -> (FeedUpstream, Outbox) {
    let (tx, rx) = mpsc::channel(4);
    (FeedUpstream(tx), Outbox { rx, open: true })
}

impl Upstream for FeedUpstream {
    fn deliver(&self, frame: Frame) -> Pin<Box<dyn Future<Output = AckOutcome> + Send + '_>> {
        Box::pin(async move {
            let (ack, outcome) = oneshot::channel();
            if self.0.send(Outgoing { frame, ack }).await.is_err() {
                return AckOutcome::Retry;
            }
            outcome.await.unwrap_or(AckOutcome::Retry)
        })
    }
}

//! Impressions and evaluation insights on the serving side: what SDKs report
//! ([`ingest`]: Checkgate's `POST /api/environments/{env}/impressions` and
//! `POST /api/v1/impressions`) waits in a bounded queue ([`queue`]); this server's own
//! evaluations are counted ([`counts`]); the flusher ([`flush`]) sends both upstream through
//! an [`Upstream`] — an edge's feed connection, or the control plane's own insights store.
//!
//! **Evaluation never waits on impressions**: the evaluation routes only bump a counter of
//! their thread's shard; the queue's lock is taken by the ingest routes and the flusher only,
//! and a full queue drops what does not fit (counted: `checkgate_impressions_dropped_total`).

pub mod connections;
pub mod counts;
pub mod flush;
pub mod ingest;
pub mod queue;

use std::future::Future;
use std::pin::Pin;

use checkgate_protocol::Frame;
use checkgate_protocol::frame::AckOutcome;

pub use connections::Connections;
pub use counts::Counter;
pub use queue::{DropReason, ImpressionQueue};

/// Where the flusher sends what it gathered.
pub trait Upstream: Send + Sync + 'static {
    /// Delivers one `Frame::Impressions` or `Frame::EvaluationCounts` and resolves with what
    /// became of it: `Retry` for any failure (it is sent again, with the same id). The flusher
    /// bounds the wait ([`flush::ACK_TIMEOUT`]).
    fn deliver(&self, frame: Frame) -> Pin<Box<dyn Future<Output = AckOutcome> + Send + '_>>;
}

/// The serving side's insights: the queue, the counters and the open SDK streams.
#[derive(Debug)]
pub struct Insights {
    pub queue: ImpressionQueue,
    pub counter: Counter,
    /// Open SDK streams per environment and key, reported upstream by the flusher.
    pub connections: std::sync::Arc<Connections>,
}

impl Insights {
    pub fn new(queue_capacity: usize, count_evaluations: bool) -> Self {
        describe_metrics();
        Self {
            queue: ImpressionQueue::new(queue_capacity),
            counter: Counter::new(count_evaluations),
            connections: std::sync::Arc::new(Connections::new(false)),
        }
    }

    /// As `IMPRESSIONS_QUEUE`, `COUNT_EVALUATIONS`
    /// and `REPORT_CLIENT_ADDRESSES` say.
    pub fn from_args(args: &crate::ServeArgs) -> Self {
        Self {
            connections: std::sync::Arc::new(Connections::new(args.report_client_addresses)),
            ..Self::new(
                usize::try_from(args.impressions_queue).unwrap_or(usize::MAX),
                args.count_evaluations,
            )
        }
    }

    /// For `/status`: the queue's state and what was dropped.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "queued": self.queue.len(),
            "capacity": self.queue.capacity(),
            "accepted_total": self.queue.queued(),
            "dropped_total": self.queue.dropped(),
            "counting_evaluations": self.counter.is_on(),
            "sdk_streams": self.connections.total(),
        })
    }
}

/// Describes the metrics recorded here, once per process.
fn describe_metrics() {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_counter!(
            "checkgate_impressions_dropped_total",
            "impressions dropped, by reason: queue_full (IMPRESSIONS_QUEUE), refused (by the \
             control plane), shutdown (not sent within the shutdown grace period)"
        );
        metrics::describe_counter!(
            "checkgate_impressions_sent_total",
            "impressions the control plane acknowledged"
        );
        metrics::describe_counter!(
            "checkgate_insights_retries_total",
            "impression and evaluation-count batches sent again after a failure, by kind"
        );
    });
}

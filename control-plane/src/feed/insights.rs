//! An edge's impressions and evaluation counts, arriving on its feed session (QUIC) or the
//! HTTP feed route: stored through [`Insights`] and answered with an `InsightsAck` naming the
//! batch. The edge token authorizes only the environments it grants: a batch for another is
//! refused (counted in `checkgate_insights_refused_total`), never stored. A batch id already
//! stored is acknowledged as stored, so an edge's retry stores nothing twice; a failure of
//! the store asks the edge to send the batch again.
//!
//! [`Direct`] is the same for the control plane's in-process serving: its flusher stores
//! straight through [`Insights`], with no feed in between.

use std::future::Future;
use std::pin::Pin;

use checkgate_protocol::Frame;
use checkgate_protocol::frame::{AckOutcome, InsightsAck};
use checkgate_serve::insights::Upstream;

use crate::insights::{IngestError, Insights, Stored};
use crate::store::EdgeToken;

/// Stores `frame` (an `Impressions` or `EvaluationCounts`) sent by the edge holding `token`;
/// `None` for any other frame.
pub(crate) async fn store(
    insights: &Insights,
    token: &EdgeToken,
    frame: &Frame,
) -> Option<InsightsAck> {
    let grants = |env: &str| token.grants(env);
    store_as(insights, &token.prefix, grants, frame).await
}

/// The in-process serving's upstream: the control plane's own insights store, and its
/// connection reports stored under this instance's id.
#[derive(Debug, Clone)]
pub struct Direct {
    pub insights: Insights,
    /// This instance, as its connection reports name it.
    pub instance: String,
}

impl Direct {
    /// For this process: a fresh instance id.
    pub fn new(insights: Insights) -> Self {
        Self {
            insights,
            instance: uuid::Uuid::new_v4().to_string(),
        }
    }
}

impl Upstream for Direct {
    fn deliver(&self, frame: Frame) -> Pin<Box<dyn Future<Output = AckOutcome> + Send + '_>> {
        Box::pin(async move {
            if let Frame::Connections(report) = &frame {
                return super::connections::store_instance(
                    self.insights.store(),
                    &self.instance,
                    report,
                )
                .await;
            }
            store_as(&self.insights, "in-process", |_| true, &frame)
                .await
                .map_or(AckOutcome::Refused, |ack| ack.outcome)
        })
    }
}

/// Stores `frame` for a sender (`who`, for logs) that may write the environments `grants`
/// accepts.
async fn store_as(
    insights: &Insights,
    who: &str,
    grants: impl Fn(&str) -> bool,
    frame: &Frame,
) -> Option<InsightsAck> {
    let (kind, id, stored) = match frame {
        Frame::Impressions(batch) => {
            let stored = insights.store_batch(batch, grants).await;
            ("impressions", batch.id, stored)
        }
        Frame::EvaluationCounts(counts) => {
            let stored = insights.store_counts(counts, grants).await;
            ("evaluation_counts", counts.id, stored)
        }
        _ => return None,
    };
    let outcome = match stored {
        Ok(Stored::New(_)) => AckOutcome::Stored,
        Ok(Stored::Duplicate) => {
            metrics::counter!("checkgate_insights_duplicates_total", "kind" => kind).increment(1);
            AckOutcome::Stored
        }
        Err(IngestError::Store(e)) => {
            tracing::warn!(cause = %e, kind, "storing an edge's insights failed; it will send them again");
            AckOutcome::Retry
        }
        Err(e) => {
            let reason = match &e {
                IngestError::NotAllowed { .. } => "not_granted",
                IngestError::UnknownEnvironment(_) => "unknown_environment",
                IngestError::TooLarge { .. } => "too_large",
                _ => "invalid",
            };
            metrics::counter!("checkgate_insights_refused_total", "kind" => kind, "reason" => reason)
                .increment(1);
            tracing::warn!(cause = %e, kind, sender = %who, "refused an edge's insights");
            AckOutcome::Refused
        }
    };
    Some(InsightsAck { id, outcome })
}

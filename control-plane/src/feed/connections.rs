//! Connection reports arriving from edges (on a QUIC session or the HTTP feed route) and from
//! this instance's in-process serving: checked, then stored as the reporter's latest report
//! ([`crate::store::connections`]), answered by an `InsightsAck` naming the report.
//!
//! The edge token authorizes only the environments it grants: a report naming another is
//! refused whole (counted in `checkgate_connection_reports_refused_total`), never stored, like
//! insights. A report is stored on the reporting session's fleet row only, so an edge never
//! writes another's.

use checkgate_protocol::connections::ConnectionReport;
use checkgate_protocol::frame::{AckOutcome, InsightsAck};

use crate::store::connections::StoredCount;
use crate::store::{EdgeToken, Store};

fn refused(reason: &'static str) -> AckOutcome {
    metrics::counter!("checkgate_connection_reports_refused_total", "reason" => reason)
        .increment(1);
    AckOutcome::Refused
}

/// Stores the report of the edge holding `token`, on its fleet row `fleet`.
pub(crate) async fn store_edge(
    store: &Store,
    token: &EdgeToken,
    fleet: Option<&str>,
    report: &ConnectionReport,
) -> InsightsAck {
    let outcome = async {
        if let Err(e) = report.check() {
            tracing::warn!(cause = %e, token = %token.prefix, "refused an edge's connection report");
            return refused("invalid");
        }
        if let Some(entry) = report.entries.iter().find(|e| !token.grants(&e.env_id)) {
            tracing::warn!(env = %entry.env_id, token = %token.prefix, "refused an edge's connection report naming an environment its token does not grant");
            return refused("not_granted");
        }
        let Some(fleet) = fleet else {
            // No fleet row to hold it (it could not be written, or the edge did not name it).
            return refused("no_fleet_row");
        };
        let entries: Vec<StoredCount> = report.entries.iter().map(StoredCount::from).collect();
        match store.put_edge_connections(fleet, &token.id, &entries).await {
            Ok(true) => AckOutcome::Stored,
            Ok(false) => refused("no_fleet_row"),
            Err(e) => {
                tracing::warn!(cause = %e, "storing an edge's connection report failed");
                AckOutcome::Retry
            }
        }
    }
    .await;
    InsightsAck {
        id: report.id,
        outcome,
    }
}

/// Stores the report of this instance's in-process serving.
pub(crate) async fn store_instance(
    store: &Store,
    instance: &str,
    report: &ConnectionReport,
) -> AckOutcome {
    if let Err(e) = report.check() {
        tracing::warn!(cause = %e, "refused the in-process connection report");
        return AckOutcome::Refused;
    }
    let entries: Vec<StoredCount> = report.entries.iter().map(StoredCount::from).collect();
    let name = format!("control plane {}", short(instance));
    match store
        .put_instance_connections(instance, &name, &entries)
        .await
    {
        Ok(()) => AckOutcome::Stored,
        Err(e) => {
            tracing::warn!(cause = %e, "storing the in-process connection report failed");
            AckOutcome::Retry
        }
    }
}

/// The first characters of an instance id, for people.
fn short(instance: &str) -> &str {
    instance.get(..8).unwrap_or(instance)
}

//! Fleet alerts: `GET /api/fleet/alerts`, the history of alert episodes (`edge.stale`,
//! `edge.lagging`, `webhook.failing`), newest first, open or resolved, a bounded page at a
//! time. Workspace admins only, like the fleet (`GET /api/edges`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::access::workspace_admin;
use super::caller::Caller;
use super::openapi::{BadRequest, Forbidden, Unauthorized};
use super::time::Timestamp;
use super::{ApiError, AppState};
use crate::store::fleet_alerts::{Alert, AlertState};

/// Most alerts per page.
const MAX_LIMIT: u32 = 200;
/// Furthest a page may start.
const MAX_OFFSET: u32 = 100_000;

/// Which alerts to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertQuery {
    /// `open`, `resolved` or `all` (the default).
    #[param(pattern = "^(open|resolved|all)$")]
    state: Option<String>,
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: u32,
    #[serde(default)]
    #[param(minimum = 0, maximum = 100_000, default = 0)]
    offset: u32,
}

fn default_limit() -> u32 {
    50
}

/// An alert episode.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FleetAlert)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertView {
    #[schema(format = "uuid")]
    id: String,
    /// `edge.stale` (an edge stale or disconnected longer than `EDGE_STALE_ALERT_SECONDS`;
    /// resolved when it recovers), `edge.lagging` or `webhook.failing`.
    kind: String,
    /// What it is about: an edge as `<edge token id>/<edge name>`, a webhook by its id.
    subject: String,
    /// The edge's name; null for a webhook's alert.
    #[schema(required = true)]
    edge_name: Option<String>,
    /// The environments concerned.
    environments: Vec<String>,
    opened_at: Timestamp,
    /// Null while open.
    #[schema(required = true)]
    resolved_at: Option<Timestamp>,
    /// What was seen (state, since when, lag per environment, …).
    #[schema(value_type = Object)]
    detail: Value,
}

impl From<Alert> for AlertView {
    fn from(a: Alert) -> Self {
        Self {
            id: a.id,
            kind: a.kind,
            subject: a.subject,
            edge_name: a.edge_name,
            environments: a.environments,
            opened_at: Timestamp::from_ms(a.opened_at),
            resolved_at: a.resolved_at.map(Timestamp::from_ms),
            detail: a.detail,
        }
    }
}

/// A page of alerts.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FleetAlertPage)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertPage {
    alerts: Vec<AlertView>,
    /// Whether more follow (ask again with `offset` + `limit`).
    more: bool,
}

/// Fleet alerts (workspace admins)
///
/// Alert episodes, newest first: each opened once when its condition starts and resolved when
/// it ends.
#[utoipa::path(get, path = "/api/fleet/alerts", operation_id = "listFleetAlerts", tag = "edges",
    params(AlertQuery),
    responses(
        (status = 200, body = AlertPage, description = "A page of alerts."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AlertQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    workspace_admin(&caller)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let filter = match q.state.as_deref() {
        None | Some("all") => AlertState::All,
        Some("open") => AlertState::Open,
        Some("resolved") => AlertState::Resolved,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "state must be open, resolved or all".into(),
            ));
        }
    };
    if !(1..=MAX_LIMIT).contains(&q.limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if q.offset > MAX_OFFSET {
        return Err(ApiError::BadRequest(format!(
            "offset must be at most {MAX_OFFSET}"
        )));
    }
    let (alerts, more) = state.store.fleet_alerts(filter, q.limit, q.offset).await?;
    Ok(axum::Json(AlertPage {
        alerts: alerts.into_iter().map(AlertView::from).collect(),
        more,
    }))
}

//! Edge tokens, the credentials edge relays present on the change feed:
//! `GET/POST /api/edge-tokens`, `DELETE /api/edge-tokens/{id}`; and the fleet of edges,
//! `GET /api/edges`. Workspace admins only, signed in as themselves. A token is shown once, in
//! the answer that creates it; revoking one closes the feeds that use it within seconds.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::check_id;
use super::openapi::{
    BadRequest, Forbidden, JsonBodyRefused, NotFound, Unauthorized, Unprocessable,
};
use super::params::EdgeTokenPath;
use super::session::CurrentUser;
use super::time::Timestamp;
use super::{ApiError, AppState, Json, Path};
use crate::store::EdgeToken;
use checkgate_protocol::Secret;

/// An edge token, as lists show it: by its prefix, never the token itself.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EdgeToken)]
#[serde(deny_unknown_fields)]
pub(super) struct EdgeTokenView {
    #[schema(format = "uuid")]
    id: String,
    name: String,
    /// The token's first characters and `…`, e.g. `cge_1a2b3c…`.
    prefix: String,
    /// The environments the token may serve; null for every environment, present and future.
    #[schema(format = "uuid", required = true)]
    environments: Option<Vec<String>>,
    /// When it was created.
    created_at: Timestamp,
    /// When an edge last presented it on the feed; null if never.
    #[schema(required = true)]
    last_seen_at: Option<Timestamp>,
    /// When it was revoked; null while it works.
    #[schema(required = true)]
    revoked_at: Option<Timestamp>,
}

impl From<&EdgeToken> for EdgeTokenView {
    fn from(t: &EdgeToken) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            prefix: format!("{}…", t.prefix),
            environments: t.environments.clone(),
            created_at: Timestamp::from_ms(t.created_at),
            last_seen_at: t.last_seen_at.map(Timestamp::from_ms),
            revoked_at: t.revoked_at.map(Timestamp::from_ms),
        }
    }
}

/// A new edge token, with the token itself: the only answer that ever shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EdgeTokenCreated {
    #[serde(flatten)]
    view: EdgeTokenView,
    /// The token itself: shown here, never again. Give it to the edge as EDGE_TOKEN.
    #[schema(value_type = String, pattern = "^cge_[0-9a-f]{64}$")]
    token: Secret,
}

fn admin(user: &crate::store::User) -> Result<(), ApiError> {
    if user.is_admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden("this needs a workspace admin".into()))
    }
}

/// List edge tokens (workspace admins)
#[utoipa::path(get, path = "/api/edge-tokens", operation_id = "listEdgeTokens", tag = "edges",
    responses(
        (status = 200, body = [EdgeTokenView],
            description = "Every edge token, newest first; never the token itself."),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<impl IntoResponse, ApiError> {
    admin(&user)?;
    let tokens = state.store.edge_tokens().await?;
    Ok(axum::Json(
        tokens.iter().map(EdgeTokenView::from).collect::<Vec<_>>(),
    ))
}

/// A new edge token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateEdgeToken {
    /// 1–100 characters once trimmed (e.g. the edge's region).
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Environment ids the token may serve; absent or null for all. Unknown ids are 422.
    #[serde(default)]
    #[schema(format = "uuid", min_items = 1, max_items = 1000)]
    environments: Option<Vec<String>>,
}

/// Create an edge token (workspace admins)
///
/// The credential an edge relay presents on the change feed (EDGE_TOKEN).
#[utoipa::path(post, path = "/api/edge-tokens", operation_id = "createEdgeToken", tag = "edges",
    request_body(content = CreateEdgeToken, example = json!({"name": "eu-west edge"})),
    responses(
        (status = 201, body = EdgeTokenCreated,
            description = "The token; `token` is shown here and never again."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        JsonBodyRefused,
        (status = 422, response = Unprocessable),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    body: Result<Json<CreateEdgeToken>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    admin(&user)?;
    let Json(body) = body?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "name must be 1 to 100 characters".into(),
        ));
    }
    if let Some(envs) = &body.environments {
        if envs.is_empty() || envs.len() > 1000 {
            return Err(ApiError::BadRequest(
                "environments must list 1 to 1000 ids, or be left out for all".into(),
            ));
        }
        for env in envs {
            check_id("environment", env)?;
        }
    }
    let mut envs = body.environments;
    if let Some(list) = envs.as_mut() {
        list.sort();
        list.dedup();
    }
    let actor = crate::store::Actor::user(&user.id, &user.email);
    let (token, secret) = state
        .store
        .create_edge_token(&actor, name, envs.as_deref())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound(what) => {
                ApiError::Unprocessable(format!("environments: {what} does not exist"))
            }
            other => other.into(),
        })?;
    let out = EdgeTokenCreated {
        view: EdgeTokenView::from(&token),
        token: Secret::new(secret),
    };
    Ok((StatusCode::CREATED, axum::Json(out)))
}

/// Revoke an edge token (workspace admins)
///
/// The edges that use it are disconnected within seconds and stop serving what it granted.
#[utoipa::path(delete, path = "/api/edge-tokens/{id}", operation_id = "revokeEdgeToken",
    tag = "edges", params(EdgeTokenPath),
    responses(
        (status = 204, description = "Done; no body."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn revoke(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(EdgeTokenPath { id }): Path<EdgeTokenPath>,
) -> Result<impl IntoResponse, ApiError> {
    admin(&user)?;
    check_id("edge token", &id)?;
    let actor = crate::store::Actor::user(&user.id, &user.email);
    state.store.revoke_edge_token(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A session not refreshed for this long (three refreshes missed) is stale: the instance that
/// held it stopped without closing it.
const STALE_AFTER_MS: i64 = 3 * crate::store::FLEET_REFRESH.as_millis() as i64;

/// Most sessions listed.
const FLEET_LIMIT: u32 = 2_000;

/// The edge fleet: every edge connected now or seen in the last day, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Fleet)]
#[serde(deny_unknown_fields)]
pub(super) struct FleetView {
    edges: Vec<FleetEdge>,
}

/// An edge, by its newest feed session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FleetEdge {
    /// The feed session.
    #[schema(format = "uuid")]
    id: String,
    /// The edge's `EDGE_NAME`.
    name: String,
    /// The edge's `EDGE_REGION`; null when it set none.
    #[schema(required = true)]
    region: Option<String>,
    /// The edge's address as the feed saw it.
    address: String,
    /// The edge token it presented.
    #[schema(format = "uuid")]
    token_id: String,
    #[schema(inline)]
    state: EdgeState,
    /// When the session opened.
    connected_at: Timestamp,
    /// When the session was last refreshed.
    last_seen: Timestamp,
    /// When the session closed; null while it is open.
    #[schema(required = true)]
    disconnected_at: Option<Timestamp>,
    /// How long ago the control plane last confirmed the edge's data current: 0 for a
    /// connected edge at every head, otherwise the time since it was last seen.
    #[schema(minimum = 0)]
    data_age_ms: i64,
    /// Each environment it serves.
    environments: Vec<FleetEnvironment>,
}

/// `connected` (its session is open and refreshed), `stale` (open, but not refreshed for 30 s:
/// the control-plane instance holding it stopped) or `disconnected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum EdgeState {
    Connected,
    Stale,
    Disconnected,
}

/// An edge's position in one environment it serves.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FleetEnvironment {
    #[schema(format = "uuid")]
    environment_id: String,
    /// The last version the feed sent this edge (edges apply in order).
    position: u64,
    /// The environment's current version.
    head: u64,
    /// `head - position`: changes the edge has not been sent.
    lag: u64,
}

/// The edge fleet (workspace admins)
///
/// Every edge connected now or seen in the last day, newest first, with its position and lag in each environment it serves. An edge that reconnected is listed once, by its newest session.
#[utoipa::path(get, path = "/api/edges", operation_id = "listEdges", tag = "edges",
    responses(
        (status = 200, body = FleetView, description = "The fleet."),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
pub(super) async fn fleet(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<impl IntoResponse, ApiError> {
    admin(&user)?;
    let now = crate::store::now_ms();
    let sessions = state
        .store
        .edge_sessions(now - crate::store::FLEET_KEEP_MS, FLEET_LIMIT)
        .await?;
    let heads: std::collections::HashMap<String, u64> = state
        .store
        .feed_environments()
        .await?
        .into_iter()
        .map(|e| (e.id, e.version))
        .collect();
    // Newest first: an edge (its token and its name) is listed by its newest session only, so
    // one that reconnected after its control-plane instance died shows once, connected.
    let mut seen = std::collections::HashSet::new();
    let mut edges = Vec::new();
    for s in &sessions {
        if !seen.insert((s.token_id.as_str(), s.edge_name.as_str())) {
            continue;
        }
        let edge_state = match s.closed_at {
            Some(_) => EdgeState::Disconnected,
            None if now - s.last_seen_at > STALE_AFTER_MS => EdgeState::Stale,
            None => EdgeState::Connected,
        };
        let environments: Vec<FleetEnvironment> = s
            .positions
            .iter()
            .map(|(env, &position)| {
                let head = heads.get(env).copied().unwrap_or(position);
                FleetEnvironment {
                    environment_id: env.clone(),
                    position,
                    head,
                    lag: head.saturating_sub(position),
                }
            })
            .collect();
        let current = environments.iter().all(|e| e.lag == 0);
        let data_age_ms = if edge_state == EdgeState::Connected && current {
            0
        } else {
            (now - s.last_seen_at).max(0)
        };
        edges.push(FleetEdge {
            id: s.id.clone(),
            name: s.edge_name.clone(),
            region: (!s.region.is_empty()).then(|| s.region.clone()),
            address: s.address.clone(),
            token_id: s.token_id.clone(),
            state: edge_state,
            connected_at: Timestamp::from_ms(s.connected_at),
            last_seen: Timestamp::from_ms(s.last_seen_at),
            disconnected_at: s.closed_at.map(Timestamp::from_ms),
            data_age_ms,
            environments,
        });
    }
    Ok(axum::Json(FleetView { edges }))
}

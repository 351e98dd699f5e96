//! Edge tokens, the credentials edge relays present on the change feed:
//! `GET/POST /api/edge-tokens`, `DELETE /api/edge-tokens/{id}`. Workspace admins only, signed
//! in as themselves. A token is shown once, in the answer that creates it; revoking one closes
//! the feeds that use it within seconds.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::check_id;
use super::session::CurrentUser;
use super::time::rfc3339;
use super::{ApiError, AppState, Json, Path};
use crate::store::EdgeToken;

fn token_json(t: &EdgeToken) -> Value {
    json!({
        "id": t.id, "name": t.name, "prefix": format!("{}…", t.prefix),
        "environments": t.environments, "created_at": rfc3339(t.created_at),
        "last_seen_at": t.last_seen_at.map(rfc3339), "revoked_at": t.revoked_at.map(rfc3339),
    })
}

fn admin(user: &crate::store::User) -> Result<(), ApiError> {
    if user.is_admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden("this needs a workspace admin".into()))
    }
}

/// `GET /api/edge-tokens`.
pub(super) async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<impl IntoResponse, ApiError> {
    admin(&user)?;
    let tokens = state.store.edge_tokens().await?;
    Ok(axum::Json(
        tokens.iter().map(token_json).collect::<Vec<_>>(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateEdgeToken {
    name: String,
    /// The environment ids it may serve; absent or null for every environment.
    #[serde(default)]
    environments: Option<Vec<String>>,
}

/// `POST /api/edge-tokens`.
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
    let mut out = token_json(&token);
    out["token"] = Value::from(secret);
    Ok((StatusCode::CREATED, axum::Json(out)))
}

/// `DELETE /api/edge-tokens/{id}`.
pub(super) async fn revoke(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
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

/// `GET /api/edges`: the edge fleet — every edge connected now, or seen in the last day, with
/// its position and lag in each environment it serves. Workspace admins only.
///
/// `state` is `connected` (its session is open and refreshed), `stale` (open, but not
/// refreshed: its control-plane instance is gone) or `disconnected`. An edge (its token and
/// `EDGE_NAME`) that reconnected is listed once, by its newest session. `data_age_ms` is how
/// long ago the control plane last confirmed the edge's data: zero for a connected edge at
/// every head, otherwise the time since it was last seen.
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
        let state_name = match s.closed_at {
            Some(_) => "disconnected",
            None if now - s.last_seen_at > STALE_AFTER_MS => "stale",
            None => "connected",
        };
        let environments: Vec<Value> = s
            .positions
            .iter()
            .map(|(env, &position)| {
                let head = heads.get(env).copied().unwrap_or(position);
                json!({
                    "environment_id": env, "position": position, "head": head,
                    "lag": head.saturating_sub(position),
                })
            })
            .collect();
        let current = environments.iter().all(|e| e["lag"] == 0);
        let data_age_ms = if state_name == "connected" && current {
            0
        } else {
            (now - s.last_seen_at).max(0)
        };
        edges.push(json!({
            "id": s.id, "name": s.edge_name,
            "region": (!s.region.is_empty()).then_some(&s.region),
            "address": s.address, "token_id": s.token_id, "state": state_name,
            "connected_at": rfc3339(s.connected_at), "last_seen": rfc3339(s.last_seen_at),
            "disconnected_at": s.closed_at.map(rfc3339), "data_age_ms": data_age_ms,
            "environments": environments,
        }));
    }
    Ok(axum::Json(json!({ "edges": edges })))
}

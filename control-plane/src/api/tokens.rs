//! API tokens for automation: `GET/POST /api/projects/{p}/tokens`,
//! `DELETE /api/projects/{p}/tokens/{id}`. Project admins manage them, signed in as themselves:
//! a token cannot mint or revoke tokens, so a leaked one cannot entrench itself. A token is
//! shown once, in the answer that creates it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{check_id, in_project};
use super::caller::Caller;
use super::session::CurrentUser;
use super::time::rfc3339;
use super::{ApiError, AppState, Json, Path};
use crate::store::{ApiToken, Role};

fn token_json(t: &ApiToken) -> Value {
    json!({
        "id": t.id, "name": t.name, "role": t.role.as_str(), "prefix": format!("{}…", t.prefix),
        "created_at": rfc3339(t.created_at), "last_used_at": t.last_used_at.map(rfc3339),
        "revoked_at": t.revoked_at.map(rfc3339),
    })
}

/// `GET /api/projects/{p}/tokens`: project admins.
pub(super) async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(project): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &Caller::User(user), &project, Role::Admin).await?;
    let tokens = state.store.api_tokens(&project).await?;
    Ok(axum::Json(
        tokens.iter().map(token_json).collect::<Vec<_>>(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateToken {
    name: String,
    /// `admin`, `editor` or `viewer`: what the token may do in the project.
    role: String,
}

/// `POST /api/projects/{p}/tokens`: project admins. The answer's `token` is the only time the
/// token is ever shown.
pub(super) async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(project): Path<String>,
    body: Result<Json<CreateToken>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = Caller::User(user);
    in_project(&state, &caller, &project, Role::Admin).await?;
    let Json(body) = body?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "name must be 1 to 100 characters".into(),
        ));
    }
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "role must be admin, editor or viewer, not {:?}",
            body.role
        ))
    })?;
    let (token, secret) = state
        .store
        .create_api_token(&caller.actor(), &project, name, role)
        .await?;
    let mut out = token_json(&token);
    out["token"] = Value::from(secret);
    Ok((StatusCode::CREATED, axum::Json(out)))
}

/// `DELETE /api/projects/{p}/tokens/{id}`: project admins; the token stops working at once.
pub(super) async fn revoke(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((project, id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = Caller::User(user);
    in_project(&state, &caller, &project, Role::Admin).await?;
    check_id("API token", &id)?;
    state
        .store
        .revoke_api_token(&caller.actor(), &project, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

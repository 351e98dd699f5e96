//! API tokens for automation: `GET/POST /api/projects/{id}/tokens`,
//! `DELETE /api/projects/{id}/tokens/{token}`. Project admins manage them, signed in as
//! themselves: a token cannot mint or revoke tokens, so a leaked one cannot entrench itself. A
//! token is shown once, in the answer that creates it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{check_id, in_project};
use super::caller::Caller;
use super::openapi::{BadRequest, Forbidden, JsonBodyRefused, NotFound, Unauthorized};
use super::params::{ApiTokenPath, ProjectPath};
use super::session::CurrentUser;
use super::time::Timestamp;
use super::{ApiError, AppState, Json, Path};
use crate::store::{ApiToken, Role};
use checkgate_protocol::Secret;

/// An API token, as lists show it: by its prefix, never the token itself.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiToken)]
#[serde(deny_unknown_fields)]
pub(super) struct ApiTokenView {
    #[schema(format = "uuid")]
    id: String,
    name: String,
    #[schema(inline)]
    role: Role,
    /// The token's first characters and `…`, e.g. `cgt_1a2b3c…`.
    prefix: String,
    /// When it was created.
    created_at: Timestamp,
    /// When it last authenticated a request (noted at most once a minute); null if never.
    #[schema(required = true)]
    last_used_at: Option<Timestamp>,
    /// When it was revoked; null while it works.
    #[schema(required = true)]
    revoked_at: Option<Timestamp>,
}

impl From<&ApiToken> for ApiTokenView {
    fn from(t: &ApiToken) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            role: t.role,
            prefix: format!("{}…", t.prefix),
            created_at: Timestamp::from_ms(t.created_at),
            last_used_at: t.last_used_at.map(Timestamp::from_ms),
            revoked_at: t.revoked_at.map(Timestamp::from_ms),
        }
    }
}

/// A new API token, with the token itself: the only answer that ever shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ApiTokenCreated {
    #[serde(flatten)]
    view: ApiTokenView,
    /// The token itself, shown only here.
    #[schema(value_type = String, pattern = "^cgt_[0-9a-f]{64}$")]
    token: Secret,
}

/// A project's API tokens (project admins)
#[utoipa::path(get, path = "/api/projects/{id}/tokens", operation_id = "listApiTokens",
    tag = "tokens", params(ProjectPath),
    responses(
        (status = 200, body = [ApiTokenView], description = "The tokens, by prefix only."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(ProjectPath { id }): Path<ProjectPath>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &Caller::User(user), &id, Role::Admin).await?;
    let tokens = state.store.api_tokens(&id).await?;
    Ok(axum::Json(
        tokens.iter().map(ApiTokenView::from).collect::<Vec<_>>(),
    ))
}

/// A new API token.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = CreateApiToken)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateToken {
    /// 1–100 characters once trimmed.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
    #[schema(value_type = Role, inline)]
    role: String,
}

/// Create an API token (project admins)
///
/// The token acts in this project with the given role: send it as `Authorization: Bearer cgt_…`.
#[utoipa::path(post, path = "/api/projects/{id}/tokens", operation_id = "createApiToken",
    tag = "tokens", params(ProjectPath),
    request_body(content = CreateToken,
        example = json!({"name": "deploy script", "role": "editor"})),
    responses(
        (status = 201, body = ApiTokenCreated,
            description = "The token; `token` is shown here and never again."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        JsonBodyRefused,
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(ProjectPath { id: project }): Path<ProjectPath>,
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
    let out = ApiTokenCreated {
        view: ApiTokenView::from(&token),
        token: Secret::new(secret),
    };
    Ok((StatusCode::CREATED, axum::Json(out)))
}

/// Revoke an API token (project admins)
#[utoipa::path(delete, path = "/api/projects/{id}/tokens/{token}", operation_id = "revokeApiToken",
    tag = "tokens", params(ApiTokenPath),
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
    Path(ApiTokenPath { id: project, token }): Path<ApiTokenPath>,
) -> Result<impl IntoResponse, ApiError> {
    // The token stops working at once.
    let caller = Caller::User(user);
    in_project(&state, &caller, &project, Role::Admin).await?;
    check_id("API token", &token)?;
    state
        .store
        .revoke_api_token(&caller.actor(), &project, &token)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Workspace users (`GET/POST /api/users`, `DELETE /api/users/{id}`, workspace admins only) and
//! project members (`GET/POST /api/projects/{p}/members`, `PATCH/DELETE …/members/{user}`,
//! project admins).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{check_id, in_project, workspace_admin};
use super::auth::{check_email, check_password, hash_password};
use super::projects::actor;
use super::session::CurrentUser;
use super::time::rfc3339;
use super::{ApiError, AppState, Json};
use crate::store::{Role, User};

fn user_json(u: &User) -> Value {
    json!({ "id": u.id, "email": u.email, "name": u.name, "role": if u.is_admin { "admin" } else { "member" }, "created_at": rfc3339(u.created_at) })
}

/// `GET /api/users`.
pub(super) async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<impl IntoResponse, ApiError> {
    workspace_admin(&user)?;
    Ok(axum::Json(
        state
            .store
            .users()
            .await?
            .iter()
            .map(user_json)
            .collect::<Vec<_>>(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateUser {
    name: String,
    email: String,
    password: String,
}

/// `POST /api/users`: a user who joins projects through membership.
pub(super) async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Json(body): Json<CreateUser>,
) -> Result<impl IntoResponse, ApiError> {
    workspace_admin(&user)?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "name must be 1 to 100 characters".into(),
        ));
    }
    check_email(body.email.trim())?;
    check_password(&body.password)?;
    let hash = hash_password(body.password).await?;
    let created = state
        .store
        .create_user(&actor(&user), body.email.trim(), name, &hash)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(user_json(&created))))
}

/// `DELETE /api/users/{id}`: not oneself, not the last workspace admin. Their sessions end.
pub(super) async fn delete(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    workspace_admin(&user)?;
    check_id("user", &id)?;
    if id == user.id {
        return Err(ApiError::Conflict("you cannot delete yourself".into()));
    }
    let target = state
        .store
        .users()
        .await?
        .into_iter()
        .find(|u| u.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("user {id:?} not found")))?;
    if target.is_admin && state.store.admin_count().await? <= 1 {
        return Err(ApiError::Conflict(
            "the last workspace admin cannot be deleted".into(),
        ));
    }
    state.store.delete_user(&actor(&user), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn parse_role(role: &str) -> Result<Role, ApiError> {
    Role::parse(role).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "role must be admin, editor or viewer, not {role:?}"
        ))
    })
}

/// `GET /api/projects/{p}/members`.
pub(super) async fn members(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(project): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &user, &project, Role::Viewer).await?;
    let members = state.store.members(&project).await?;
    let out: Vec<Value> = members
        .iter()
        .map(|(u, role)| json!({ "user_id": u.id, "email": u.email, "name": u.name, "role": role.as_str() }))
        .collect();
    Ok(axum::Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddMember {
    user_id: String,
    role: String,
}

/// `POST /api/projects/{p}/members`: 409 when already a member (change a role with PATCH).
pub(super) async fn add_member(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(project): Path<String>,
    Json(body): Json<AddMember>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &user, &project, Role::Admin).await?;
    check_id("user", &body.user_id)?;
    let role = parse_role(&body.role)?;
    if state
        .store
        .member_role(&project, &body.user_id)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(
            "that user is already a member; change their role with PATCH".into(),
        ));
    }
    state
        .store
        .set_member(&actor(&user), &project, &body.user_id, role)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "user_id": body.user_id, "role": role.as_str() })),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetRole {
    role: String,
}

/// `PATCH /api/projects/{p}/members/{user}`.
pub(super) async fn set_role(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((project, member)): Path<(String, String)>,
    Json(body): Json<SetRole>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &user, &project, Role::Admin).await?;
    check_id("user", &member)?;
    let role = parse_role(&body.role)?;
    if state.store.member_role(&project, &member).await?.is_none() {
        return Err(ApiError::NotFound(format!("member {member:?} not found")));
    }
    state
        .store
        .set_member(&actor(&user), &project, &member, role)
        .await?;
    Ok(axum::Json(
        json!({ "user_id": member, "role": role.as_str() }),
    ))
}

/// `DELETE /api/projects/{p}/members/{user}`.
pub(super) async fn remove_member(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((project, member)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &user, &project, Role::Admin).await?;
    check_id("user", &member)?;
    state
        .store
        .remove_member(&actor(&user), &project, &member)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

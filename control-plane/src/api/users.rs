//! Workspace users (`GET/POST /api/users`, `PATCH/DELETE /api/users/{id}`, workspace admins
//! only) and project members (`GET/POST /api/projects/{p}/members`, `PATCH/DELETE
//! …/members/{user}`, project admins).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{check_id, in_project, workspace_admin};
use super::auth::{check_email, check_password, hash_password};
use super::caller::Caller;
use super::time::rfc3339;
use super::{ApiError, AppState, Json, Path};
use crate::store::{Role, User};

fn user_json(u: &User) -> Value {
    json!({ "id": u.id, "email": u.email, "name": u.name, "role": if u.is_admin { "admin" } else { "member" }, "created_at": rfc3339(u.created_at) })
}

fn check_user_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "name must be 1 to 100 characters".into(),
        ));
    }
    Ok(name)
}

/// `GET /api/users`.
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    workspace_admin(&caller)?;
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
    /// `admin` (a workspace admin) or `member` (the default).
    #[serde(default)]
    role: Option<String>,
}

/// `POST /api/users`: a user who joins projects through membership, or (`role: admin`) a
/// workspace admin.
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<CreateUser>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    workspace_admin(&caller)?;
    let Json(body) = body?;
    let name = check_user_name(&body.name)?;
    check_email(body.email.trim())?;
    check_password(&body.password)?;
    let is_admin = match body.role.as_deref() {
        None | Some("member") => false,
        Some("admin") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "role must be admin or member, not {other:?}"
            )));
        }
    };
    let hash = hash_password(body.password).await?;
    let created = state
        .store
        .create_user(&caller.actor(), body.email.trim(), name, &hash, is_admin)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(user_json(&created))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateUser {
    #[serde(default)]
    name: Option<String>,
    /// `admin` (a workspace admin) or `member`.
    #[serde(default)]
    role: Option<String>,
}

/// `PATCH /api/users/{id}`: renames a user or makes them a workspace admin or not. The last
/// admin stays an admin (409). A role change applies to their next request.
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<UpdateUser>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    workspace_admin(&caller)?;
    let Json(body) = body?;
    check_id("user", &id)?;
    let name = body.name.as_deref().map(check_user_name).transpose()?;
    let is_admin = match body.role.as_deref() {
        None => None,
        Some("admin") => Some(true),
        Some("member") => Some(false),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "role must be admin or member, not {other:?}"
            )));
        }
    };
    let updated = state
        .store
        .update_user(&caller.actor(), &id, name, is_admin)
        .await?;
    Ok(axum::Json(user_json(&updated)))
}

/// `DELETE /api/users/{id}`: not oneself, not the last workspace admin. Their sessions end.
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    workspace_admin(&caller)?;
    check_id("user", &id)?;
    if matches!(&caller, Caller::User(me) if me.id == id) {
        return Err(ApiError::Conflict("you cannot delete yourself".into()));
    }
    state.store.delete_user(&caller.actor(), &id).await?;
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
    caller: Caller,
    Path(project): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &project, Role::Viewer).await?;
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
    caller: Caller,
    Path(project): Path<String>,
    body: Result<Json<AddMember>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &project, Role::Admin).await?;
    let Json(body) = body?;
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
        .set_member(&caller.actor(), &project, &body.user_id, role)
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
    caller: Caller,
    Path((project, member)): Path<(String, String)>,
    body: Result<Json<SetRole>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &project, Role::Admin).await?;
    let Json(body) = body?;
    check_id("user", &member)?;
    let role = parse_role(&body.role)?;
    if state.store.member_role(&project, &member).await?.is_none() {
        return Err(ApiError::NotFound(format!("member {member:?} not found")));
    }
    state
        .store
        .set_member(&caller.actor(), &project, &member, role)
        .await?;
    Ok(axum::Json(
        json!({ "user_id": member, "role": role.as_str() }),
    ))
}

/// `DELETE /api/projects/{p}/members/{user}`.
pub(super) async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, member)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &project, Role::Admin).await?;
    check_id("user", &member)?;
    state
        .store
        .remove_member(&caller.actor(), &project, &member)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Workspace users (`GET/POST /api/users`, `PATCH/DELETE /api/users/{id}`, workspace admins
//! only) and project members (`GET/POST /api/projects/{p}/members`, `PATCH/DELETE
//! …/members/{user}`, project admins).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::Object;

use super::access::{check_id, in_project, workspace_admin};
use super::auth::{check_email, check_password, hash_password};
use super::caller::Caller;
use super::openapi::{
    BadRequest, Conflict, Forbidden, JsonBodyRefused, NotFound, Unauthorized, nullable_string_enum,
};
use super::params::{MemberPath, ProjectPath, UserPath};
use super::time::Timestamp;
use super::{ApiError, AppState, Json, Path};
use crate::store::{Role, User, WorkspaceRole};

// Roles are read as strings, so that a bad one is answered with the handlers' own message.

/// A workspace user.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
#[serde(deny_unknown_fields)]
pub(super) struct UserView {
    #[schema(format = "uuid")]
    id: String,
    email: String,
    name: String,
    role: WorkspaceRole,
    /// When it was created.
    created_at: Timestamp,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.workspace_role(),
            created_at: Timestamp::from_ms(u.created_at),
        }
    }
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

/// Every user (workspace admins)
#[utoipa::path(get, path = "/api/users", operation_id = "listUsers", tag = "users",
    responses(
        (status = 200, body = [UserView], description = "The users."),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
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
            .map(UserView::from)
            .collect::<Vec<_>>(),
    ))
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateUser {
    /// 1–100 characters once trimmed.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    name: String,
    #[schema(format = "email", max_length = 254)]
    email: String,
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
    #[serde(default)]
    #[schema(schema_with = new_user_role)]
    role: Option<String>,
}

/// The schema of `CreateUser.role`.
fn new_user_role() -> Object {
    nullable_string_enum(&["admin", "member"])
        .description(Some("`admin` makes a workspace admin; default `member`."))
        .build()
}

/// Create a user (workspace admins)
///
/// 409 when a user has that email, whatever its letter case (`Admin@Example.com` is
/// `admin@example.com`).
#[utoipa::path(post, path = "/api/users", operation_id = "createUser", tag = "users",
    request_body(content = CreateUser),
    responses(
        (status = 201, body = UserView,
            description = "The user; they join projects through membership."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        JsonBodyRefused,
    ))]
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
    Ok((StatusCode::CREATED, axum::Json(UserView::from(&created))))
}

/// What to change; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateUser {
    /// 1–100 characters once trimmed.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    name: Option<String>,
    #[serde(default)]
    #[schema(schema_with = changed_workspace_role)]
    role: Option<String>,
}

/// The schema of `UpdateUser.role`: null is accepted, as absent.
fn changed_workspace_role() -> Object {
    nullable_string_enum(&["admin", "member"]).build()
}

/// Rename a user or change their workspace role (workspace admins)
///
/// The last workspace admin cannot be demoted (409).
#[utoipa::path(patch, path = "/api/users/{id}", operation_id = "updateUser", tag = "users",
    params(UserPath),
    request_body(content = UpdateUser, example = json!({"role": "admin"})),
    responses(
        (status = 200, body = UserView, description = "The user."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        JsonBodyRefused,
    ))]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(UserPath { id }): Path<UserPath>,
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
    // A role change applies to their next request (the caller's role is read on each).
    let updated = state
        .store
        .update_user(&caller.actor(), &id, name, is_admin)
        .await?;
    Ok(axum::Json(UserView::from(&updated)))
}

/// Delete a user (workspace admins)
///
/// Not oneself, not the last workspace admin (409). Their sessions end.
#[utoipa::path(delete, path = "/api/users/{id}", operation_id = "deleteUser", tag = "users",
    params(UserPath),
    responses(
        (status = 204, description = "Done; no body."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(UserPath { id }): Path<UserPath>,
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

/// A member of a project, with their role there.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Member)]
#[serde(deny_unknown_fields)]
pub(super) struct MemberView {
    #[schema(format = "uuid")]
    user_id: String,
    email: String,
    name: String,
    #[schema(inline)]
    role: Role,
}

/// A user's role in a project.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Membership)]
#[serde(deny_unknown_fields)]
pub(super) struct MembershipView {
    #[schema(format = "uuid")]
    user_id: String,
    #[schema(inline)]
    role: Role,
}

/// A project's members
#[utoipa::path(get, path = "/api/projects/{id}/members", operation_id = "listMembers",
    tag = "members", params(ProjectPath),
    responses(
        (status = 200, body = [MemberView], description = "The members, by email."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(ProjectPath { id: project }): Path<ProjectPath>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &project, Role::Viewer).await?;
    let members = state.store.members(&project).await?;
    let out: Vec<MemberView> = members
        .iter()
        .map(|(u, role)| MemberView {
            user_id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            role: *role,
        })
        .collect();
    Ok(axum::Json(out))
}

/// A user to add to the project, and their role there.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AddMember {
    #[schema(format = "uuid")]
    user_id: String,
    #[schema(value_type = Role, inline)]
    role: String,
}

/// Add a member (project admins)
///
/// 409 when the user is already a member (change a role with PATCH); 404 when there is no such
/// user.
#[utoipa::path(post, path = "/api/projects/{id}/members", operation_id = "addMember",
    tag = "members", params(ProjectPath),
    request_body(content = AddMember),
    responses(
        (status = 201, body = MembershipView, description = "The membership."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        JsonBodyRefused,
    ))]
pub(super) async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(ProjectPath { id: project }): Path<ProjectPath>,
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
        axum::Json(MembershipView {
            user_id: body.user_id,
            role,
        }),
    ))
}

/// A member's new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetRole {
    #[schema(value_type = Role, inline)]
    role: String,
}

/// Change a member's role (project admins)
#[utoipa::path(patch, path = "/api/projects/{id}/members/{user}", operation_id = "setMemberRole",
    tag = "members", params(MemberPath),
    request_body(content = SetRole, example = json!({"role": "viewer"})),
    responses(
        (status = 200, body = MembershipView, description = "The membership."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        JsonBodyRefused,
    ))]
pub(super) async fn set_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(MemberPath {
        id: project,
        user: member,
    }): Path<MemberPath>,
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
    Ok(axum::Json(MembershipView {
        user_id: member,
        role,
    }))
}

/// Remove a member (project admins)
#[utoipa::path(delete, path = "/api/projects/{id}/members/{user}", operation_id = "removeMember",
    tag = "members", params(MemberPath),
    responses(
        (status = 204, description = "Done; no body."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(MemberPath {
        id: project,
        user: member,
    }): Path<MemberPath>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &project, Role::Admin).await?;
    check_id("user", &member)?;
    state
        .store
        .remove_member(&caller.actor(), &project, &member)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Who may do what. Workspace admins may do everything. Others act in a project by their role
//! there (viewer reads; editor also writes flags and segments; admin also manages the project);
//! to a non-member, a project and its environments do not exist (404, revealing nothing).

use super::{ApiError, AppState};
use crate::store::{Environment, Project, Role, User};

/// Rejects ids that are not UUIDs before they reach the store (400, not 404 or 500).
pub(super) fn check_id(kind: &str, id: &str) -> Result<(), ApiError> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| ApiError::BadRequest(format!("{id:?} is not a valid {kind} id")))
}

/// The user's role in a project; 404 for a project that does not exist or that they are not in.
pub(super) async fn project_role(
    state: &AppState,
    user: &User,
    project_id: &str,
) -> Result<(Project, Role), ApiError> {
    check_id("project", project_id)?;
    let project = state.store.project(project_id).await?;
    if user.is_admin {
        return Ok((project, Role::Admin));
    }
    match state.store.member_role(project_id, &user.id).await? {
        Some(role) => Ok((project, role)),
        None => Err(ApiError::NotFound(format!(
            "project {project_id:?} not found"
        ))),
    }
}

/// Requires at least `need` in the project.
pub(super) async fn in_project(
    state: &AppState,
    user: &User,
    project_id: &str,
    need: Role,
) -> Result<Project, ApiError> {
    let (project, role) = project_role(state, user, project_id).await?;
    if role < need {
        return Err(ApiError::Forbidden(format!(
            "this needs the {} role in the project",
            need.as_str()
        )));
    }
    Ok(project)
}

/// Requires at least `need` in the environment's project.
pub(super) async fn in_environment(
    state: &AppState,
    user: &User,
    env_id: &str,
    need: Role,
) -> Result<Environment, ApiError> {
    check_id("environment", env_id)?;
    let env = state.store.environment(env_id).await?;
    in_project(state, user, &env.project_id, need)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => {
                ApiError::NotFound(format!("environment {env_id:?} not found"))
            }
            other => other,
        })?;
    Ok(env)
}

/// Requires a workspace admin.
pub(super) fn workspace_admin(user: &User) -> Result<(), ApiError> {
    if user.is_admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden("this needs a workspace admin".into()))
    }
}

//! Who may do what. Workspace admins may do everything. Others act in a project by their role
//! there (viewer reads; editor also writes flags and segments; admin also manages the project);
//! an API token acts in its one project with its one role. To a caller without a role in a
//! project, the project and its environments do not exist (404, revealing nothing).

use super::caller::Caller;
use super::{ApiError, AppState};
use crate::store::{Environment, Project, Role};

/// Rejects ids that are not UUIDs before they reach the store (400, not 404 or 500).
pub(super) fn check_id(kind: &str, id: &str) -> Result<(), ApiError> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| ApiError::BadRequest(format!("{id:?} is not a valid {kind} id")))
}

/// The caller's role in a project; 404 for a project that does not exist or that they have no
/// role in.
pub(super) async fn project_role(
    state: &AppState,
    caller: &Caller,
    project_id: &str,
) -> Result<(Project, Role), ApiError> {
    check_id("project", project_id)?;
    let not_found = || ApiError::NotFound(format!("project {project_id:?} not found"));
    let role = caller
        .role_in(state, project_id)
        .await?
        .ok_or_else(not_found)?;
    let project = state.store.project(project_id).await?;
    Ok((project, role))
}

/// Requires at least `need` in the project.
pub(super) async fn in_project(
    state: &AppState,
    caller: &Caller,
    project_id: &str,
    need: Role,
) -> Result<Project, ApiError> {
    let (project, role) = project_role(state, caller, project_id).await?;
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
    caller: &Caller,
    env_id: &str,
    need: Role,
) -> Result<Environment, ApiError> {
    check_id("environment", env_id)?;
    let env = state.store.environment(env_id).await?;
    in_project(state, caller, &env.project_id, need)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => {
                ApiError::NotFound(format!("environment {env_id:?} not found"))
            }
            other => other,
        })?;
    Ok(env)
}

/// Requires a workspace admin (a user; never an API token).
pub(super) fn workspace_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_workspace_admin() {
        Ok(())
    } else {
        Err(ApiError::Forbidden("this needs a workspace admin".into()))
    }
}

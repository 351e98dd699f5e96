//! Projects and their environments: `/api/projects[/{id}]`, `/api/projects/{id}/environments`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{in_project, workspace_admin};
use super::caller::Caller;
use super::committed::Committed;
use super::openapi::{BadRequest, Conflict, Forbidden, JsonBodyRefused, NotFound, Unauthorized};
use super::params::{ProjectEnvironmentPath, ProjectPath};
use super::time::Timestamp;
use super::{ApiError, AppState, Json, Path};
use crate::store::{Environment, Project, Role};
use checkgate_protocol::{ContextMode, ImpressionSettings};

/// A project.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Project)]
#[serde(deny_unknown_fields)]
pub(super) struct ProjectView {
    #[schema(format = "uuid")]
    id: String,
    name: String,
    slug: String,
    /// When it was created.
    created_at: Timestamp,
    environment_count: usize,
}

impl ProjectView {
    fn new(p: &Project, environment_count: usize) -> Self {
        Self {
            id: p.id.clone(),
            name: p.name.clone(),
            slug: p.slug.clone(),
            created_at: Timestamp::from_ms(p.created_at),
            environment_count,
        }
    }
}

/// A new project, with the environments it starts with.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ProjectCreated {
    #[serde(flatten)]
    project: ProjectView,
    environments: Vec<EnvironmentView>,
}

/// An environment of a project.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Environment)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvironmentView {
    #[schema(format = "uuid")]
    id: String,
    #[schema(format = "uuid")]
    project_id: String,
    name: String,
    slug: String,
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    color: String,
    is_default: bool,
    /// The environment's change counter, as edges see it.
    version: u64,
    /// When it was created.
    created_at: Timestamp,
    /// Whether client (browser) keys may read flag rules on /stream; off unless an admin turns
    /// it on.
    client_keys_read_rules: bool,
    /// Marked as production: the dashboard confirms every flag change here. New projects'
    /// `production` environment starts marked.
    is_production: bool,
    /// What is kept of the impressions SDKs report here.
    impressions: ImpressionSettings,
}

impl From<&Environment> for EnvironmentView {
    fn from(e: &Environment) -> Self {
        Self {
            id: e.id.clone(),
            project_id: e.project_id.clone(),
            name: e.name.clone(),
            slug: e.slug.clone(),
            color: e.color.clone(),
            is_default: e.is_default,
            version: e.version,
            created_at: Timestamp::from_ms(e.created_at),
            client_keys_read_rules: e.client_keys_read_rules,
            is_production: e.is_production,
            impressions: e.impressions.clone(),
        }
    }
}

/// A project's name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ProjectBody {
    /// 1–100 characters once trimmed, with at least one ASCII letter or digit (the slug is made
    /// from them).
    #[schema(min_length = 1, max_length = 100, pattern = "[A-Za-z0-9]")]
    name: String,
}

pub(super) fn check_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "name must be 1 to 100 characters".into(),
        ));
    }
    if crate::store::slugify(name).is_empty() {
        return Err(ApiError::BadRequest(
            "name needs at least one ASCII letter or digit".into(),
        ));
    }
    Ok(name)
}

/// The projects the caller can see
#[utoipa::path(get, path = "/api/projects", operation_id = "listProjects", tag = "projects",
    responses(
        (status = 200, body = [ProjectView],
            description = "Every project for workspace admins; their own for members."),
        (status = 401, response = Unauthorized),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let mut projects = state.store.list_projects().await?;
    if let Some(mine) = caller.visible_projects(&state).await? {
        projects.retain(|p| mine.contains(&p.id));
    }
    let mut out = Vec::with_capacity(projects.len());
    for p in &projects {
        out.push(ProjectView::new(
            p,
            state.store.environments(&p.id).await?.len(),
        ));
    }
    Ok(axum::Json(out))
}

/// Create a project (workspace admins)
///
/// 409 when another project has the same slug.
#[utoipa::path(post, path = "/api/projects", operation_id = "createProject", tag = "projects",
    request_body(content = ProjectBody, example = json!({"name": "Mobile"})),
    responses(
        (status = 201, body = ProjectCreated,
            description = "The project, with its development, staging and production environments."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        JsonBodyRefused,
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<ProjectBody>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    workspace_admin(&caller)?;
    let Json(body) = body?;
    let (project, envs) = state
        .store
        .create_project(&caller.actor(), check_name(&body.name)?)
        .await?;
    let out = ProjectCreated {
        project: ProjectView::new(&project, envs.len()),
        environments: envs.iter().map(EnvironmentView::from).collect(),
    };
    Ok((StatusCode::CREATED, axum::Json(out)))
}

/// A project
#[utoipa::path(get, path = "/api/projects/{id}", operation_id = "getProject", tag = "projects",
    params(ProjectPath),
    responses(
        (status = 200, body = ProjectView, description = "The project."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(ProjectPath { id }): Path<ProjectPath>,
) -> Result<impl IntoResponse, ApiError> {
    let project = in_project(&state, &caller, &id, Role::Viewer).await?;
    Ok(axum::Json(ProjectView::new(
        &project,
        state.store.environments(&id).await?.len(),
    )))
}

/// Rename a project (project admins)
#[utoipa::path(patch, path = "/api/projects/{id}", operation_id = "renameProject", tag = "projects",
    params(ProjectPath),
    request_body(content = ProjectBody, example = json!({"name": "Web app"})),
    responses(
        (status = 200, body = ProjectView, description = "The renamed project."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        JsonBodyRefused,
    ))]
pub(super) async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    Path(ProjectPath { id }): Path<ProjectPath>,
    body: Result<Json<ProjectBody>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &id, Role::Admin).await?;
    let Json(body) = body?;
    let project = state
        .store
        .rename_project(&caller.actor(), &id, check_name(&body.name)?)
        .await?;
    Ok(axum::Json(ProjectView::new(
        &project,
        state.store.environments(&id).await?.len(),
    )))
}

/// Delete a project and everything in it (workspace admins)
#[utoipa::path(delete, path = "/api/projects/{id}", operation_id = "deleteProject", tag = "projects",
    params(ProjectPath),
    responses(
        (status = 204, description = "Done; no body."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(ProjectPath { id }): Path<ProjectPath>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &id, Role::Viewer).await?;
    workspace_admin(&caller)?;
    state.store.delete_project(&caller.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A project's environments
#[utoipa::path(get, path = "/api/projects/{id}/environments", operation_id = "listEnvironments",
    tag = "projects", params(ProjectPath),
    responses(
        (status = 200, body = [EnvironmentView], description = "The environments."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn environments(
    State(state): State<AppState>,
    caller: Caller,
    Path(ProjectPath { id }): Path<ProjectPath>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &id, Role::Viewer).await?;
    let envs = state.store.environments(&id).await?;
    Ok(axum::Json(
        envs.iter().map(EnvironmentView::from).collect::<Vec<_>>(),
    ))
}

/// A new environment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvironmentBody {
    /// 1–100 characters once trimmed, with at least one ASCII letter or digit.
    #[schema(min_length = 1, max_length = 100, pattern = "[A-Za-z0-9]")]
    name: String,
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,49}$")]
    slug: String,
    /// Default `#6366f1`.
    #[serde(default)]
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    color: Option<String>,
    /// Mark the environment as production. Default: true for the slug `production`, else
    /// false.
    #[serde(default)]
    is_production: Option<bool>,
}

fn check_slug(slug: &str) -> Result<(), ApiError> {
    let ok = !slug.is_empty()
        && slug.len() <= 50
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "slug must be 1 to 50 of a-z, 0-9 and '-', not starting with '-'".into(),
        ))
    }
}

fn check_color(color: &str) -> Result<(), ApiError> {
    let ok = color.len() == 7
        && color.starts_with('#')
        && color[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest("color must be #rrggbb".into()))
    }
}

/// Create an environment (project admins)
///
/// Slugs are unique per project (409).
#[utoipa::path(post, path = "/api/projects/{id}/environments", operation_id = "createEnvironment",
    tag = "projects", params(ProjectPath),
    request_body(content = EnvironmentBody,
        example = json!({"name": "QA", "slug": "qa", "color": "#22c55e"})),
    responses(
        (status = 201, body = EnvironmentView, description = "The environment."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        JsonBodyRefused,
    ))]
pub(super) async fn create_environment(
    State(state): State<AppState>,
    caller: Caller,
    Path(ProjectPath { id }): Path<ProjectPath>,
    body: Result<Json<EnvironmentBody>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &id, Role::Admin).await?;
    let Json(body) = body?;
    let name = check_name(&body.name)?;
    check_slug(&body.slug)?;
    let color = body.color.unwrap_or_else(|| "#6366f1".into());
    check_color(&color)?;
    let env = state
        .store
        .create_environment(
            &caller.actor(),
            &id,
            name,
            &body.slug,
            &color,
            // As for a new project's environments: `production` is production unless told.
            body.is_production.unwrap_or(body.slug == "production"),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(EnvironmentView::from(&env))))
}

/// What to change; absent fields stay. The slug cannot change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvironmentPatch {
    /// 1–100 characters once trimmed, with at least one ASCII letter or digit.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100, pattern = "[A-Za-z0-9]")]
    name: Option<String>,
    #[serde(default)]
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    color: Option<String>,
    /// Let client (browser) keys read flag rules (Checkgate's browser SDK needs them), at the
    /// cost of showing targeting data to browsers. Audited; off by default.
    #[serde(default)]
    client_keys_read_rules: Option<bool>,
    /// Mark or unmark the environment as production (the dashboard confirms flag changes
    /// there).
    #[serde(default)]
    is_production: Option<bool>,
    /// What to keep of the impressions SDKs report: the whole context (`all`, the default),
    /// only `context_attributes` (`listed`) or none; `hash_user_id` stores a keyed hash of the
    /// user id instead of the id. Replaces the current settings whole. Audited.
    #[serde(default)]
    impressions: Option<ImpressionSettings>,
}

/// Most attributes an environment may keep of impression contexts.
const MAX_CONTEXT_ATTRIBUTES: usize = 100;

fn check_impression_settings(settings: &ImpressionSettings) -> Result<(), ApiError> {
    let attributes = &settings.context_attributes;
    if attributes.len() > MAX_CONTEXT_ATTRIBUTES
        || attributes.iter().any(|a| a.is_empty() || a.len() > 256)
    {
        return Err(ApiError::BadRequest(format!(
            "impressions.context_attributes takes at most {MAX_CONTEXT_ATTRIBUTES} names of 1 to 256 bytes"
        )));
    }
    if settings.context != ContextMode::Listed && !attributes.is_empty() {
        return Err(ApiError::BadRequest(
            "impressions.context_attributes is only for context \"listed\"".into(),
        ));
    }
    Ok(())
}

/// Rename an environment or change its colour (project admins)
///
/// Documented by Checkgate, never implemented there. The slug stays.
#[utoipa::path(patch, path = "/api/projects/{id}/environments/{env}",
    operation_id = "updateEnvironment", tag = "projects", params(ProjectEnvironmentPath),
    request_body(content = EnvironmentPatch,
        example = json!({"name": "Production EU", "color": "#ef4444"})),
    responses(
        (status = 200, body = EnvironmentView, description = "The environment as it is now.",
            headers(("X-Checkgate-Version" = inline(Committed),
                description = "The environment version this write committed, when it changed a \
                    serving setting (`client_keys_read_rules`, `impressions`); absent otherwise."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        JsonBodyRefused,
    ))]
pub(super) async fn update_environment(
    State(state): State<AppState>,
    caller: Caller,
    Path(ProjectEnvironmentPath { id, env }): Path<ProjectEnvironmentPath>,
    body: Result<Json<EnvironmentPatch>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &id, Role::Admin).await?;
    let Json(body) = body?;
    super::access::check_id("environment", &env)?;
    let name = body.name.as_deref().map(check_name).transpose()?;
    if let Some(color) = &body.color {
        check_color(color)?;
    }
    let mut updated = if name.is_none() && body.color.is_none() && body.is_production.is_none() {
        let found = state.store.environment(&env).await?;
        if found.project_id != id {
            return Err(ApiError::NotFound(format!("environment {env:?} not found")));
        }
        found
    } else {
        state
            .store
            .update_environment(
                &caller.actor(),
                &id,
                &env,
                name,
                body.color.as_deref(),
                body.is_production,
            )
            .await?
    };
    let mut committed = None;
    if let Some(privacy) = body.impressions
        && privacy != updated.impressions
    {
        check_impression_settings(&privacy)?;
        updated.version = state
            .store
            .edit_environment_settings(&caller.actor(), &id, &env, |settings| {
                settings.impressions = privacy.clone();
            })
            .await?;
        updated.impressions = privacy;
        committed = Some(Committed(updated.version));
    }
    if let Some(allow) = body.client_keys_read_rules
        && allow != updated.client_keys_read_rules
    {
        updated.version = state
            .store
            .edit_environment_settings(&caller.actor(), &id, &env, |settings| {
                settings.client_keys_read_rules = allow;
            })
            .await?;
        updated.client_keys_read_rules = allow;
        committed = Some(Committed(updated.version));
    }
    Ok((committed, axum::Json(EnvironmentView::from(&updated))))
}

/// Delete an environment (project admins)
///
/// Neither the default environment nor the last one (409).
#[utoipa::path(delete, path = "/api/projects/{id}/environments/{env}",
    operation_id = "deleteEnvironment", tag = "projects", params(ProjectEnvironmentPath),
    responses(
        (status = 204, description = "Done; no body.",
            headers(("X-Checkgate-Version" = inline(Committed),
                description = "The environment's last version: the change that tells edges it \
                    is gone."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
pub(super) async fn delete_environment(
    State(state): State<AppState>,
    caller: Caller,
    Path(ProjectEnvironmentPath { id, env }): Path<ProjectEnvironmentPath>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &id, Role::Admin).await?;
    super::access::check_id("environment", &env)?;
    let version = state
        .store
        .delete_environment(&caller.actor(), &id, &env)
        .await?;
    Ok((StatusCode::NO_CONTENT, Committed(version), ()))
}

/// Make an environment the project's default (project admins)
#[utoipa::path(post, path = "/api/projects/{id}/environments/{env}/default",
    operation_id = "setDefaultEnvironment", tag = "projects", params(ProjectEnvironmentPath),
    responses(
        (status = 200, body = EnvironmentView, description = "The environment, now the default."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn set_default(
    State(state): State<AppState>,
    caller: Caller,
    Path(ProjectEnvironmentPath { id, env }): Path<ProjectEnvironmentPath>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &id, Role::Admin).await?;
    super::access::check_id("environment", &env)?;
    Ok(axum::Json(EnvironmentView::from(
        &state
            .store
            .set_default_environment(&caller.actor(), &id, &env)
            .await?,
    )))
}

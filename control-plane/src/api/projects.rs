//! Projects and their environments: `/api/projects[/{id}]`, `/api/projects/{id}/environments`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{in_project, workspace_admin};
use super::caller::Caller;
use super::time::rfc3339;
use super::{ApiError, AppState, Json, Path};
use crate::store::{Environment, Project, Role};

fn project_json(p: &Project, environment_count: usize) -> Value {
    json!({ "id": p.id, "name": p.name, "slug": p.slug, "created_at": rfc3339(p.created_at), "environment_count": environment_count })
}

pub(super) fn environment_json(e: &Environment) -> Value {
    json!({
        "id": e.id, "project_id": e.project_id, "name": e.name, "slug": e.slug, "color": e.color,
        "is_default": e.is_default, "version": e.version, "created_at": rfc3339(e.created_at),
        "client_keys_read_rules": e.client_keys_read_rules, "is_production": e.is_production,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProjectBody {
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

/// `GET /api/projects`: the projects the user can see.
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
        out.push(project_json(
            p,
            state.store.environments(&p.id).await?.len(),
        ));
    }
    Ok(axum::Json(out))
}

/// `POST /api/projects`: workspace admins; the project starts with development, staging and
/// production.
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
    let mut out = project_json(&project, envs.len());
    out["environments"] = envs.iter().map(environment_json).collect();
    Ok((StatusCode::CREATED, axum::Json(out)))
}

/// `GET /api/projects/{id}`.
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let project = in_project(&state, &caller, &id, Role::Viewer).await?;
    Ok(axum::Json(project_json(
        &project,
        state.store.environments(&id).await?.len(),
    )))
}

/// `PATCH /api/projects/{id}`: project admins.
pub(super) async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<ProjectBody>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &id, Role::Admin).await?;
    let Json(body) = body?;
    let project = state
        .store
        .rename_project(&caller.actor(), &id, check_name(&body.name)?)
        .await?;
    Ok(axum::Json(project_json(
        &project,
        state.store.environments(&id).await?.len(),
    )))
}

/// `DELETE /api/projects/{id}`: workspace admins; everything in the project goes with it.
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &id, Role::Viewer).await?;
    workspace_admin(&caller)?;
    state.store.delete_project(&caller.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/projects/{id}/environments`.
pub(super) async fn environments(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &id, Role::Viewer).await?;
    let envs = state.store.environments(&id).await?;
    Ok(axum::Json(
        envs.iter().map(environment_json).collect::<Vec<_>>(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvironmentBody {
    name: String,
    slug: String,
    #[serde(default)]
    color: Option<String>,
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

/// `POST /api/projects/{id}/environments`: project admins; slugs are unique per project.
pub(super) async fn create_environment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
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
    Ok((StatusCode::CREATED, axum::Json(environment_json(&env))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvironmentPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    color: Option<String>,
    /// Let client (browser) keys read flag rules — Checkgate's browser SDK needs them, at the
    /// cost of showing targeting data to browsers. Audited; off by default.
    #[serde(default)]
    client_keys_read_rules: Option<bool>,
    /// Mark (or unmark) the environment as production: the dashboard confirms flag changes
    /// there.
    #[serde(default)]
    is_production: Option<bool>,
}

/// `PATCH /api/projects/{id}/environments/{env}`: project admins rename an environment or
/// change its colour (documented by Checkgate, never implemented there). The slug stays.
pub(super) async fn update_environment(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, env)): Path<(String, String)>,
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
    }
    Ok(axum::Json(environment_json(&updated)))
}

/// `DELETE /api/projects/{id}/environments/{env}`: project admins; not the default, not the last.
pub(super) async fn delete_environment(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, env)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &id, Role::Admin).await?;
    super::access::check_id("environment", &env)?;
    state
        .store
        .delete_environment(&caller.actor(), &id, &env)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/projects/{id}/environments/{env}/default`: project admins.
pub(super) async fn set_default(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, env)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &id, Role::Admin).await?;
    super::access::check_id("environment", &env)?;
    Ok(axum::Json(environment_json(
        &state
            .store
            .set_default_environment(&caller.actor(), &id, &env)
            .await?,
    )))
}

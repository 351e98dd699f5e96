//! The audit log: `GET /api/audit` (filter by project, environment, actor, target and time;
//! newest first; `next_cursor` for the next page) and Checkgate's
//! `GET /api/environments/{env}/audit?limit&offset&flag_key`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::Object;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::access::{check_id, in_environment, in_project};
use super::caller::Caller;
use super::openapi::{BadRequest, NotFound, Unauthorized};
use super::params::EnvironmentPath;
use super::time::Timestamp;
use super::{ApiError, AppState, Path};
use crate::store::{AuditEntry, AuditFilter, Role};

const MAX_LIMIT: u32 = 500;

fn doc(text: &Option<String>) -> Value {
    text.as_deref().map_or(Value::Null, |t| {
        serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_owned()))
    })
}

/// An entry of the audit log.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEntry)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditEntryView {
    id: i64,
    /// When it happened.
    at: Timestamp,
    #[schema(inline)]
    actor: AuditActor,
    #[schema(required = true)]
    project_id: Option<String>,
    #[schema(required = true)]
    environment_id: Option<String>,
    /// `flag.create`, `flag.update`, `segment.delete`, `project.rename`, …
    action: String,
    #[schema(inline)]
    target: AuditTarget,
    /// The state before, as JSON, or null.
    #[schema(value_type = Value)]
    before: Value,
    /// The state after, as JSON, or null.
    #[schema(value_type = Value)]
    after: Value,
}

/// Who made the change.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditActor {
    /// `user`, `api_token`, `system`, or `anonymous` (a refused sign-in).
    kind: String,
    #[schema(required = true)]
    id: Option<String>,
    name: String,
}

/// What changed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditTarget {
    kind: String,
    key: String,
}

impl From<&AuditEntry> for AuditEntryView {
    fn from(e: &AuditEntry) -> Self {
        Self {
            id: e.id,
            at: Timestamp::from_ms(e.at),
            actor: AuditActor {
                kind: e.actor_kind.clone(),
                id: e.actor_id.clone(),
                name: e.actor_name.clone(),
            },
            project_id: e.project_id.clone(),
            environment_id: e.environment_id.clone(),
            action: e.action.clone(),
            target: AuditTarget {
                kind: e.target_kind.clone(),
                key: e.target_key.clone(),
            },
            before: doc(&e.before),
            after: doc(&e.after),
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditPage)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditPage {
    entries: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next page; null on the last.
    #[schema(required = true)]
    next_cursor: Option<i64>,
}

fn check_limit(limit: u32) -> Result<u32, ApiError> {
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )))
    }
}

fn instant(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            checkgate_core::date::parse_instant(v).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{field} must be an RFC 3339 time or Unix milliseconds"
                ))
            })
        })
        .transpose()
}

/// Which entries to list; every parameter narrows.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    /// Only this project (404 if the caller cannot see it).
    #[param(format = "uuid")]
    project_id: Option<String>,
    /// Only this environment.
    #[param(format = "uuid")]
    environment_id: Option<String>,
    /// Only changes by this user.
    #[param(format = "uuid")]
    actor_id: Option<String>,
    /// `flag`, `segment`, `project`, `environment`, `sdk_key`, `member`, `user`, …
    target_kind: Option<String>,
    target_key: Option<String>,
    /// An RFC 3339 time or Unix milliseconds.
    since: Option<String>,
    /// An RFC 3339 time or Unix milliseconds.
    until: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<i64>,
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: u32,
}

fn default_limit() -> u32 {
    50
}

/// The audit log, newest first
///
/// What the caller's projects hold (everything for workspace admins). Unknown query parameters
/// are 400.
#[utoipa::path(get, path = "/api/audit", operation_id = "listAudit", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, body = AuditPage,
            description = "A page of entries; `next_cursor` fetches the next."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = check_limit(q.limit)?;
    if let Some(p) = &q.project_id {
        in_project(&state, &caller, p, Role::Viewer).await?;
    }
    if let Some(env) = &q.environment_id {
        in_environment(&state, &caller, env, Role::Viewer).await?;
    }
    if let Some(actor) = &q.actor_id {
        check_id("user", actor)?;
    }
    let visible_projects = caller.visible_projects(&state).await?;
    let filter = AuditFilter {
        project_id: q.project_id,
        visible_projects,
        environment_id: q.environment_id,
        actor_id: q.actor_id,
        target_kind: q.target_kind,
        target_key: q.target_key,
        since_ms: instant("since", q.since.as_deref())?,
        until_ms: instant("until", q.until.as_deref())?,
        before_id: q.cursor,
        limit,
    };
    let entries = state.store.audit(&filter).await?;
    let next_cursor = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(axum::Json(AuditPage {
        entries: entries.iter().map(AuditEntryView::from).collect(),
        next_cursor,
    }))
}

/// A page of an environment's flag changes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvAuditQuery {
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: u32,
    #[serde(default)]
    #[param(format = Int64, minimum = 0, maximum = 4_294_967_295_u32, default = 0)]
    offset: u32,
    /// Only this flag.
    flag_key: Option<String>,
}

/// A change to a flag, in Checkgate's `AuditEntry` shape.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FlagAuditEntry)]
#[serde(deny_unknown_fields)]
pub(super) struct FlagAuditEntry {
    id: i64,
    #[schema(required = true)]
    environment_id: Option<String>,
    flag_key: String,
    /// The user's email; null for changes by an API token or the system.
    #[schema(required = true)]
    actor_email: Option<String>,
    /// `CREATE`, `UPDATE` or `DELETE`.
    action: String,
    /// The flag before, or null.
    #[schema(value_type = Value)]
    before_data: Value,
    /// The flag after, or null.
    #[schema(value_type = Value)]
    after_data: Value,
    #[schema(schema_with = always_null)]
    metadata: (),
    /// When it happened.
    created_at: Timestamp,
}

/// The schema of `metadata`: `{"type": "null"}`.
fn always_null() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Null)
        .description(Some(
            "Always null: Checkgate's field, which nothing here sets.",
        ))
        .build()
}

/// An environment's flag changes, newest first
///
/// Unknown query parameters are 400.
#[utoipa::path(get, path = "/api/environments/{env}/audit", operation_id = "listEnvironmentAudit",
    tag = "audit", params(EnvironmentPath, EnvAuditQuery),
    responses(
        (status = 200, body = [FlagAuditEntry], description = "The entries."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn environment(
    State(state): State<AppState>,
    caller: Caller,
    Path(EnvironmentPath { env }): Path<EnvironmentPath>,
    query: Result<Query<EnvAuditQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = check_limit(q.limit)?;
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    let filter = AuditFilter {
        environment_id: Some(env.clone()),
        target_kind: Some("flag".into()),
        target_key: q.flag_key,
        limit: limit.saturating_add(q.offset).min(10_000),
        ..AuditFilter::default()
    };
    let entries = state.store.audit(&filter).await?;
    let out: Vec<FlagAuditEntry> = entries
        .iter()
        .skip(q.offset as usize)
        .take(limit as usize)
        .map(|e| FlagAuditEntry {
            id: e.id,
            environment_id: e.environment_id.clone(),
            flag_key: e.target_key.clone(),
            actor_email: (e.actor_kind == "user").then(|| e.actor_name.clone()),
            action: e
                .action
                .strip_prefix("flag.")
                .unwrap_or(&e.action)
                .to_ascii_uppercase(),
            before_data: doc(&e.before),
            after_data: doc(&e.after),
            metadata: (),
            created_at: Timestamp::from_ms(e.at),
        })
        .collect();
    Ok(axum::Json(out))
}

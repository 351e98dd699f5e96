//! The audit log: `GET /api/audit` (filter by project, environment, actor, target and time;
//! newest first; `next_cursor` for the next page) and Checkgate's
//! `GET /api/environments/{env}/audit?limit&offset&flag_key`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{check_id, in_environment, in_project};
use super::caller::Caller;
use super::time::rfc3339;
use super::{ApiError, AppState, Path};
use crate::store::{AuditEntry, AuditFilter, Role};

const MAX_LIMIT: u32 = 500;

fn doc(text: &Option<String>) -> Value {
    text.as_deref().map_or(Value::Null, |t| {
        serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_owned()))
    })
}

fn entry_json(e: &AuditEntry) -> Value {
    json!({
        "id": e.id, "at": rfc3339(e.at),
        "actor": { "kind": e.actor_kind, "id": e.actor_id, "name": e.actor_name },
        "project_id": e.project_id, "environment_id": e.environment_id, "action": e.action,
        "target": { "kind": e.target_kind, "key": e.target_key },
        "before": doc(&e.before), "after": doc(&e.after),
    })
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    project_id: Option<String>,
    environment_id: Option<String>,
    actor_id: Option<String>,
    target_kind: Option<String>,
    target_key: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<i64>,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    50
}

/// `GET /api/audit`.
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
    Ok(axum::Json(
        json!({ "entries": entries.iter().map(entry_json).collect::<Vec<_>>(), "next_cursor": next_cursor }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvAuditQuery {
    #[serde(default = "default_limit")]
    limit: u32,
    #[serde(default)]
    offset: u32,
    flag_key: Option<String>,
}

/// `GET /api/environments/{env}/audit`, in Checkgate's `AuditEntry` shape (flag changes).
pub(super) async fn environment(
    State(state): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
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
    let out: Vec<Value> = entries
        .iter()
        .skip(q.offset as usize)
        .take(limit as usize)
        .map(|e| {
            let action = e
                .action
                .strip_prefix("flag.")
                .unwrap_or(&e.action)
                .to_ascii_uppercase();
            json!({
                "id": e.id, "environment_id": e.environment_id, "flag_key": e.target_key,
                "actor_email": (e.actor_kind == "user").then_some(&e.actor_name), "action": action,
                "before_data": doc(&e.before), "after_data": doc(&e.after), "metadata": Value::Null,
                "created_at": rfc3339(e.at),
            })
        })
        .collect();
    Ok(axum::Json(out))
}

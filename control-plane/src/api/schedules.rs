//! Scheduled changes, with Checkgate's paths and shapes: `GET /api/environments/{env}/
//! scheduled-changes`, `GET/POST …/flags/{key}/scheduled-changes` `{scheduled_at, patch,
//! if_version?}` and `DELETE …/scheduled-changes/{id}`. Viewers read, editors write.
//!
//! A change is checked when it is scheduled, as the flag's PATCH would check it (the same
//! merge, [`merge_patch`], and the same validation, [`flags::validate`]), against the flag as it
//! is then: 422 with the path of the problem otherwise. A malformed `scheduled_at` is 400, and
//! so is one not after the database's clock. [`super::scheduler`] applies it when due.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use checkgate_core::FlagDoc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::access::{check_id, in_environment};
use super::caller::Caller;
use super::documents::{Patched, merge_patch};
use super::flags::{self, FlagPatch, READ_ONLY};
use super::openapi::{
    BadRequest, Conflict, Forbidden, JsonBodyRefused, NotFound, PreconditionFailed, Unauthorized,
    Unprocessable,
};
use super::params::{EnvironmentPath, FlagPath};
use super::time::Timestamp;
use super::{ApiError, AppState, Json, Path};
use crate::store::{
    NewSchedule, Role, ScheduleFilter, ScheduleStatus, ScheduledChange, StoreError,
};

/// Most pending scheduled changes one flag may have in one environment.
pub(super) const MAX_PENDING_PER_FLAG: u32 = 100;
/// Largest patch a scheduled change may carry, in bytes of JSON.
pub(super) const MAX_PATCH_BYTES: usize = 64 * 1024;
/// How far ahead a change may be scheduled: a hundred years, in milliseconds.
const MAX_AHEAD_MS: i64 = 100 * 366 * 24 * 3600 * 1000;

/// Who scheduled a change (the scheduler applies it in their name).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ScheduledBy {
    /// `user` or `api_token`.
    kind: &'static str,
    #[schema(required = true)]
    id: Option<String>,
    /// The user's email, or the token's name.
    name: String,
}

/// A scheduled change. Checkgate's fields (`id`, `environment_id`, `flag_key`, `scheduled_at`,
/// `patch`, `executed_at`, `created_at`), and ours beside them.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ScheduledChange)]
pub(super) struct ScheduleView {
    #[schema(format = "uuid")]
    id: String,
    #[schema(format = "uuid")]
    environment_id: String,
    flag_key: String,
    scheduled_at: Timestamp,
    /// The flag PATCH to apply.
    #[schema(value_type = Object)]
    patch: Value,
    /// When it was applied or failed (the database's clock); null while pending or cancelled.
    #[schema(required = true)]
    executed_at: Option<Timestamp>,
    created_at: Timestamp,
    #[schema(inline)]
    status: StatusView,
    /// When it was applied; null unless `status` is `applied`.
    #[schema(required = true)]
    applied_at: Option<Timestamp>,
    /// The environment version the applied change took.
    #[schema(required = true, minimum = 1)]
    applied_version: Option<u64>,
    /// Why it failed; null unless `status` is `failed`.
    #[schema(required = true)]
    failure_reason: Option<String>,
    /// When it was cancelled.
    #[schema(required = true)]
    cancelled_at: Option<Timestamp>,
    /// The flag version the change expects when due (it fails otherwise).
    #[schema(required = true, minimum = 1)]
    if_version: Option<u64>,
    created_by: ScheduledBy,
}

/// Where a scheduled change is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum StatusView {
    Pending,
    Applied,
    Failed,
    Cancelled,
}

impl From<ScheduleStatus> for StatusView {
    fn from(s: ScheduleStatus) -> Self {
        match s {
            ScheduleStatus::Pending => Self::Pending,
            ScheduleStatus::Applied => Self::Applied,
            ScheduleStatus::Failed => Self::Failed,
            ScheduleStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl From<StatusView> for ScheduleStatus {
    fn from(s: StatusView) -> Self {
        match s {
            StatusView::Pending => Self::Pending,
            StatusView::Applied => Self::Applied,
            StatusView::Failed => Self::Failed,
            StatusView::Cancelled => Self::Cancelled,
        }
    }
}

impl From<ScheduledChange> for ScheduleView {
    fn from(s: ScheduledChange) -> Self {
        let applied = s.status == ScheduleStatus::Applied;
        Self {
            patch: serde_json::from_str(&s.patch).unwrap_or_default(),
            executed_at: s.executed_at.map(Timestamp::from_ms),
            applied_at: s.executed_at.filter(|_| applied).map(Timestamp::from_ms),
            applied_version: s.applied_version,
            failure_reason: s.failure_reason,
            cancelled_at: s.cancelled_at.map(Timestamp::from_ms),
            created_at: Timestamp::from_ms(s.created_at),
            scheduled_at: Timestamp::from_ms(s.scheduled_at),
            status: s.status.into(),
            if_version: s.if_version,
            created_by: ScheduledBy {
                kind: s.created_by.kind,
                id: s.created_by.id,
                name: s.created_by.name,
            },
            id: s.id,
            environment_id: s.environment_id,
            flag_key: s.flag_key,
        }
    }
}

/// A change to schedule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ScheduleBody {
    /// When to apply it: RFC 3339 with a time and an offset, after now (by the database's
    /// clock) and at most a hundred years ahead.
    #[schema(format = DateTime, example = "2026-12-24T09:00:00Z")]
    scheduled_at: String,
    /// What the flag's PATCH would take; checked against the flag as it is now.
    #[schema(value_type = FlagPatch)]
    patch: serde_json::Map<String, Value>,
    /// Apply only if the flag is still at this version when due (it fails otherwise). Given a
    /// version the flag is not at now, 412.
    #[schema(minimum = 1)]
    #[serde(default)]
    if_version: Option<u64>,
}

/// `/api/environments/{env}/scheduled-changes/{id}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct SchedulePath {
    /// The environment's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    env: String,
    /// The scheduled change's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    /// Only schedules in this state.
    #[param(inline)]
    status: Option<StatusView>,
    /// 1–500.
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 500, default = 100)]
    limit: u32,
    #[serde(default)]
    #[param(format = Int64, minimum = 0, maximum = 4_294_967_295_u32, default = 0)]
    offset: u32,
}

fn default_limit() -> u32 {
    100
}

/// `scheduled_at` as Unix milliseconds: a full RFC 3339 timestamp (a date alone is not one).
fn parse_scheduled_at(text: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "scheduled_at {text:?} is not an RFC 3339 timestamp with a time and an offset, such \
             as \"2026-12-24T09:00:00Z\""
        ))
    };
    if text.trim().len() <= 10 {
        return Err(bad());
    }
    checkgate_core::date::parse_rfc3339(text).ok_or_else(bad)
}

async fn list_of(
    state: &AppState,
    env: &str,
    flag_key: Option<&str>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Vec<ScheduleView>>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if !(1..=500).contains(&params.limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 500".into(),
        ));
    }
    let filter = ScheduleFilter {
        flag_key,
        status: params.status.map(Into::into),
        limit: params.limit,
        offset: params.offset,
    };
    let schedules = state.store.schedules(env, &filter).await?;
    Ok(axum::Json(
        schedules.into_iter().map(ScheduleView::from).collect(),
    ))
}

/// An environment's scheduled changes
///
/// Pending ones first, soonest due first; then applied, failed and cancelled ones, latest due
/// first. Bounded by `limit` (at most 500).
#[utoipa::path(get, path = "/api/environments/{env}/scheduled-changes",
    operation_id = "listScheduledChanges", tag = "schedules", params(EnvironmentPath, ListParams),
    responses(
        (status = 200, body = [ScheduleView], description = "The scheduled changes."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(EnvironmentPath { env }): Path<EnvironmentPath>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    list_of(&state, &env, None, params).await
}

/// A flag's scheduled changes
///
/// In the order of the environment's list. A flag deleted since keeps its past schedules.
#[utoipa::path(get, path = "/api/environments/{env}/flags/{key}/scheduled-changes",
    operation_id = "listFlagScheduledChanges", tag = "schedules", params(FlagPath, ListParams),
    responses(
        (status = 200, body = [ScheduleView], description = "The flag's scheduled changes."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn list_flag(
    State(state): State<AppState>,
    caller: Caller,
    Path(FlagPath { env, key }): Path<FlagPath>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    list_of(&state, &env, Some(&key), params).await
}

/// Schedule a change of a flag (editors)
///
/// The patch is what `PATCH …/flags/{key}` takes, merged onto the flag as it is now and
/// compiled: one that would not compile is 422 with the path of the problem. It is applied
/// when due, by the database's clock, exactly once across instances, as an ordinary versioned
/// change audited as `flag.schedule_apply` in the name of the caller. If it no longer compiles
/// then, the flag is gone, or `if_version` no longer matches, it is marked failed with the
/// reason and nothing changes. At most 100 pending changes per flag (409 beyond), patches of at
/// most 64 KiB (413).
#[utoipa::path(post, path = "/api/environments/{env}/flags/{key}/scheduled-changes",
    operation_id = "scheduleFlagChange", tag = "schedules", params(FlagPath),
    request_body(content = ScheduleBody, example = json!({
        "scheduled_at": "2026-12-24T09:00:00Z",
        "patch": {"is_enabled": true, "rollout_percentage": 50}
    })),
    responses(
        (status = 201, body = ScheduleView, description = "Scheduled."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        JsonBodyRefused,
        (status = 422, response = Unprocessable),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(FlagPath { env, key }): Path<FlagPath>,
    body: Result<Json<ScheduleBody>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Editor).await?;
    let Json(body) = body?;
    let scheduled_at = parse_scheduled_at(&body.scheduled_at)?;
    let now = state.store.db_now_ms().await?;
    if scheduled_at <= now {
        return Err(ApiError::BadRequest(format!(
            "scheduled_at {:?} is not in the future",
            body.scheduled_at
        )));
    }
    if scheduled_at - now > MAX_AHEAD_MS {
        return Err(ApiError::BadRequest(
            "scheduled_at is more than a hundred years ahead".into(),
        ));
    }
    let patch = serde_json::to_string(&body.patch).map_err(|e| ApiError::Internal(e.into()))?;
    if patch.len() > MAX_PATCH_BYTES {
        return Err(ApiError::Rejected {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("patch is over {} KiB", MAX_PATCH_BYTES / 1024),
        });
    }
    if body.patch.keys().all(|k| READ_ONLY.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(
            "patch changes no field of the flag".into(),
        ));
    }
    check(&state, &env, &key, body.if_version, &body.patch).await?;
    let new = NewSchedule {
        environment_id: &env,
        flag_key: &key,
        scheduled_at,
        patch: &patch,
        if_version: body.if_version,
    };
    let schedule = state
        .store
        .create_schedule(&caller.actor(), new, MAX_PENDING_PER_FLAG)
        .await?;
    state.schedule_wake.notify_waiters();
    Ok((
        StatusCode::CREATED,
        axum::Json(ScheduleView::from(schedule)),
    ))
}

/// Checks `patch` as the flag's PATCH would, against the flag as it is now (at `if_version`,
/// when given), writing nothing.
async fn check(
    state: &AppState,
    env: &str,
    key: &str,
    if_version: Option<u64>,
    patch: &serde_json::Map<String, Value>,
) -> Result<(), ApiError> {
    let read = move || async move {
        let current = state.store.flag(env, key).await?;
        Ok((current.version, current.doc))
    };
    let write = move |doc: FlagDoc, _version: u64| async move {
        flags::validate(state, env, &doc).await?;
        Ok(Patched::Done(()))
    };
    merge_patch(
        &format!("flag {key:?}"),
        &READ_ONLY,
        if_version,
        patch,
        read,
        write,
    )
    .await
}

/// Cancel a pending scheduled change (editors)
///
/// Only while it is pending: once applied, failed or cancelled, 409.
#[utoipa::path(delete, path = "/api/environments/{env}/scheduled-changes/{id}",
    operation_id = "cancelScheduledChange", tag = "schedules", params(SchedulePath),
    responses(
        (status = 204, description = "Cancelled; no body."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(SchedulePath { env, id }): Path<SchedulePath>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Editor).await?;
    check_id("scheduled change", &id)?;
    match state
        .store
        .cancel_schedule(&caller.actor(), &env, &id)
        .await
    {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound(_)) => Err(ApiError::NotFound(format!(
            "scheduled change {id:?} not found"
        ))),
        Err(e) => Err(e.into()),
    }
}

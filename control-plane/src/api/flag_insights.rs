//! Evaluation insights, beyond Checkgate: `GET /api/environments/{env}/insights` (every flag's
//! last evaluation and stale signal, for the flag list) and
//! `GET /api/environments/{env}/flags/{key}/insights` (one flag over time). Viewers read; every
//! answer comes from rollups (`insights::read`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{check_id, in_environment};
use super::caller::Caller;
use super::openapi::{BadRequest, Forbidden, NotFound, Unauthorized};
use super::params::{EnvironmentPath, FlagPath};
use super::time::Timestamp;
use super::{ApiError, AppState, Path};
use crate::insights::read::{FlagSummary, Stale};
use crate::store::Role;

/// A flag's last evaluation and stale signal.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FlagActivity)]
#[serde(deny_unknown_fields)]
pub(super) struct SummaryView {
    flag_key: String,
    /// The last evaluation seen (an impression or an edge's count), or null.
    #[schema(required = true)]
    last_evaluated: Option<Timestamp>,
    /// Not evaluated for `STALE_AFTER_DAYS`, or serving one value to everyone that long.
    stale: bool,
    /// Why it is stale: `not_evaluated` or `single_value`; null when it is not.
    #[schema(required = true, schema_with = stale_reason)]
    stale_reason: Option<&'static str>,
}

fn stale_reason() -> utoipa::openapi::Object {
    super::openapi::nullable_string_enum(&["not_evaluated", "single_value"]).build()
}

impl From<FlagSummary> for SummaryView {
    fn from(s: FlagSummary) -> Self {
        Self {
            flag_key: s.flag_key,
            last_evaluated: s.last_evaluated.map(Timestamp::from_ms),
            stale: s.stale.is_some(),
            stale_reason: s.stale.map(Stale::as_str),
        }
    }
}

/// Every flag's last evaluation and stale signal
///
/// For the flag list: one entry per flag of the environment, by key.
#[utoipa::path(get, path = "/api/environments/{env}/insights", operation_id = "listFlagInsights",
    tag = "impressions", params(EnvironmentPath),
    responses(
        (status = 200, body = [SummaryView], description = "Every flag, by key."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn flag_list(
    State(state): State<AppState>,
    caller: Caller,
    Path(EnvironmentPath { env }): Path<EnvironmentPath>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    let list = state.insights.flag_list(&env).await?;
    Ok(axum::Json(
        list.into_iter().map(SummaryView::from).collect::<Vec<_>>(),
    ))
}

/// The range of a flag's insights.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RangeQuery {
    /// `1h` (by minute), `24h` (by hour, the default), `7d` (by hour) or `30d` (by day).
    #[param(pattern = "^(1h|24h|7d|30d)$")]
    range: Option<String>,
}

/// One bucket of the series.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BucketView {
    /// The bucket's start.
    at: Timestamp,
    /// Evaluations edges counted (server-side evaluation).
    evaluations: i64,
    /// Impressions SDKs reported.
    impressions: i64,
}

/// One value's share of the range.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ValueSplit {
    value: String,
    evaluations: i64,
    impressions: i64,
}

/// One flag over a range.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FlagInsights)]
#[serde(deny_unknown_fields)]
pub(super) struct InsightsView {
    flag_key: String,
    #[schema(pattern = "^(1h|24h|7d|30d)$")]
    range: String,
    from: Timestamp,
    to: Timestamp,
    /// 1, 60 or 1440.
    bucket_minutes: i64,
    /// Every bucket of the range, oldest first (zeros included).
    series: Vec<BucketView>,
    /// Every value served in the range, most served first.
    values: Vec<ValueSplit>,
    evaluations: i64,
    impressions: i64,
    /// Distinct users of the impressions (HyperLogLog++, within 2 %), over the range widened to
    /// whole hours (days for `30d`).
    unique_users: u64,
    #[schema(required = true)]
    last_evaluated: Option<Timestamp>,
    stale: bool,
    #[schema(required = true, schema_with = stale_reason)]
    stale_reason: Option<&'static str>,
}

/// One flag's evaluations over time
///
/// Evaluations edges counted and impressions SDKs reported, per bucket and per value, unique
/// users, the last evaluation and the stale signal. From rollups only.
#[utoipa::path(get, path = "/api/environments/{env}/flags/{key}/insights",
    operation_id = "getFlagInsights", tag = "impressions", params(FlagPath, RangeQuery),
    responses(
        (status = 200, body = InsightsView, description = "The flag over the range."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn flag(
    State(state): State<AppState>,
    caller: Caller,
    Path(FlagPath { env, key }): Path<FlagPath>,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    check_id("environment", &env)?;
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let range = q.range.unwrap_or_else(|| "24h".into());
    let (minutes, bucket) = match range.as_str() {
        "1h" => (60, 1),
        "24h" => (1440, 60),
        "7d" => (7 * 1440, 60),
        "30d" => (30 * 1440, 1440),
        _ => {
            return Err(ApiError::BadRequest(
                "range must be 1h, 24h, 7d or 30d".into(),
            ));
        }
    };
    if checkgate_protocol::impressions::check_flag_key(&key).is_err() {
        return Err(ApiError::NotFound(format!("flag {key:?} not found")));
    }
    let flag = state.store.flag(&env, &key).await?;
    let got = state
        .insights
        .flag_insights(&env, &key, flag.created_at, minutes, bucket)
        .await?;
    Ok(axum::Json(InsightsView {
        flag_key: key,
        range,
        from: Timestamp::from_ms(got.from),
        to: Timestamp::from_ms(got.to),
        bucket_minutes: got.bucket_minutes,
        series: got
            .series
            .into_iter()
            .map(|b| BucketView {
                at: Timestamp::from_ms(b.at),
                evaluations: b.evaluations,
                impressions: b.impressions,
            })
            .collect(),
        values: got
            .values
            .into_iter()
            .map(|(value, evaluations, impressions)| ValueSplit {
                value,
                evaluations,
                impressions,
            })
            .collect(),
        evaluations: got.evaluations,
        impressions: got.impressions,
        unique_users: got.unique_users,
        last_evaluated: got.summary.last_evaluated.map(Timestamp::from_ms),
        stale: got.summary.stale.is_some(),
        stale_reason: got.summary.stale.map(Stale::as_str),
    }))
}

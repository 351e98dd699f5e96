//! Impressions: Checkgate's `POST/GET /api/environments/{env}/impressions` and
//! `GET …/impressions/stats` (same paths and JSON). The insights routes beyond them are in
//! `flag_insights.rs`.
//!
//! Ingest takes an SDK key (server or client) of the path's environment only — Checkgate took
//! any credential for any environment. The reads take what every environment read takes (a
//! viewer's role). Everything is read from rollups or bounded queries (`insights::read`,
//! `store::impressions`).

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use checkgate_protocol::impressions::MAX_BATCH_ITEMS;
use checkgate_serve::insights::ingest::{BatchError, read_batch};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::access::in_environment;
use super::caller::Caller;
use super::openapi::{BadRequest, Forbidden, JsonBodyRefused, NotFound, Unauthorized};
use super::params::EnvironmentPath;
use super::time::Timestamp;
use super::{ApiError, AppState, Path};
use crate::insights::IngestError;
use crate::store::impressions::ImpressionFilter;
use crate::store::{Role, key_hash, now_ms};

/// Largest ingest body: Checkgate's 256 KiB. With contexts of up to 4 KiB, a batch of 500 items
/// of average context fits in it; a larger batch can be split by the sender.
pub const IMPRESSIONS_BODY_LIMIT: usize = 256 << 10;
/// Most rows a list's `offset` may skip.
const MAX_OFFSET: u32 = 10_000;

/// One impression as an SDK sends it (Checkgate's shape), for the OpenAPI document: bodies are
/// read by `checkgate_serve::insights::ingest::read_batch`, as the edges read them. Unknown
/// fields are ignored, as Checkgate did.
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "the request body's schema; read_batch reads the body"
)]
#[schema(as = NewImpression)]
pub(super) struct ImpressionBody {
    /// The flag's key.
    #[schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._-]+$")]
    flag_key: String,
    /// Who was evaluated (1–256 bytes); absent or null for anonymous evaluations.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    user_id: Option<String>,
    /// The value served, as text (`"true"`, `"blue"`); at most 1024 bytes.
    #[schema(max_length = 1024)]
    value: String,
    /// The evaluation context: a JSON object of at most 4 KiB, or null.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    context: Option<Value>,
    /// When it was evaluated: an RFC 3339 time or Unix milliseconds, no older than raw
    /// impressions are kept and at most an hour ahead. Absent: when it arrived.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    evaluated_at: Option<Value>,
}

/// The SDK key of the `Authorization` header.
fn sdk_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(key.trim())
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            e @ IngestError::TooLarge { .. } => Self::Rejected {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: e.to_string(),
            },
            e @ IngestError::Invalid { .. } => Self::BadRequest(e.to_string()),
            e @ IngestError::UnknownEnvironment(_) => Self::NotFound(e.to_string()),
            e @ IngestError::NotAllowed { .. } => Self::Forbidden(e.to_string()),
            IngestError::Store(e) => e.into(),
        }
    }
}

/// Report impressions (SDK keys)
///
/// Checkgate's ingest: up to 500 impressions, all stored or none. Authenticated by an SDK key
/// (server or client) of this environment: another environment's key is 403, anything else
/// 401. A batch over 500 items or 256 KiB is 413; an item that is not valid is 400 naming its
/// index, and nothing of the batch is stored. What is kept of each item follows the
/// environment's privacy settings (`impressions` on the environment).
#[utoipa::path(post, path = "/api/environments/{env}/impressions", operation_id = "reportImpressions",
    tag = "impressions", params(EnvironmentPath), security(("sdkKey" = [])),
    request_body(content = Vec<ImpressionBody>, example = json!([
        {"flag_key": "checkout", "user_id": "u-42", "value": "true",
         "context": {"plan": "pro"}, "evaluated_at": "2026-11-23T12:34:56.789Z"}])),
    responses(
        (status = 204, description = "Stored; no body."),
        (status = 400, response = BadRequest),
        (status = 401, description = "No SDK key, or one that is unknown or revoked.",
            body = checkgate_protocol::json::ErrorBody),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        JsonBodyRefused,
    ))]
pub(super) async fn report(
    State(state): State<AppState>,
    Path(EnvironmentPath { env }): Path<EnvironmentPath>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let Some(key) = sdk_key(&headers) else {
        return Err(ApiError::BadCredential(
            "impressions need an SDK key: Authorization: Bearer <SDK key>".into(),
        ));
    };
    let Some((key_env, _kind)) = state.store.sdk_key_by_hash(&key_hash(key)).await? else {
        return Err(ApiError::BadCredential("unknown or revoked SDK key".into()));
    };
    if key_env != env {
        return Err(ApiError::Forbidden(
            "this SDK key is for another environment".into(),
        ));
    }
    let declared = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json")
                || (v.starts_with("application/") && v.ends_with("+json"))
        });
    if !declared {
        return Err(ApiError::Rejected {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "the body must be application/json".into(),
        });
    }
    let bytes = axum::body::to_bytes(body, IMPRESSIONS_BODY_LIMIT)
        .await
        .map_err(|_| ApiError::Rejected {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "the body is larger than {} KiB",
                IMPRESSIONS_BODY_LIMIT >> 10
            ),
        })?;
    let items = read_batch(&bytes, now_ms()).map_err(|e| match e {
        BatchError::TooMany(got) => IngestError::TooLarge {
            got,
            max: MAX_BATCH_ITEMS,
        }
        .into(),
        e => ApiError::BadRequest(e.to_string()),
    })?;
    state.insights.ingest(None, &env, &items).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which impressions to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only this flag's.
    flag_key: Option<String>,
    /// Only this user's (the stored form: a hash when the environment hashes user ids).
    user_id: Option<String>,
    /// Only impressions that served this value.
    value: Option<String>,
    /// Only impressions newer than this id (the live tail's poll).
    since_id: Option<i64>,
    /// Page size, clamped to 1–200.
    #[serde(default = "default_limit")]
    #[param(default = 50, minimum = 0)]
    limit: u32,
    /// Rows to skip, at most 10,000.
    #[serde(default)]
    #[param(default = 0, minimum = 0, maximum = 10000)]
    offset: u32,
}

fn default_limit() -> u32 {
    50
}

/// A stored impression.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Impression)]
#[serde(deny_unknown_fields)]
pub(super) struct ImpressionView {
    id: i64,
    flag_key: String,
    #[schema(required = true)]
    user_id: Option<String>,
    value: String,
    /// The stored context (what the environment's privacy settings keep), or null.
    #[schema(value_type = Option<Object>, required = true)]
    context: Value,
    evaluated_at: Timestamp,
}

/// A page of impressions, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ImpressionPage)]
#[serde(deny_unknown_fields)]
pub(super) struct ImpressionPage {
    items: Vec<ImpressionView>,
    /// How many impressions match, counted up to 10,000 (a bounded count, never the whole
    /// table); with `since_id`, how many are newer than it.
    total: i64,
}

/// List impressions
///
/// Newest first. With `since_id` (the dashboard's live tail), only newer ones, and `total`
/// counts only those.
#[utoipa::path(get, path = "/api/environments/{env}/impressions", operation_id = "listImpressions",
    tag = "impressions", params(EnvironmentPath, ListQuery),
    responses(
        (status = 200, body = ImpressionPage, description = "A page of impressions."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(EnvironmentPath { env }): Path<EnvironmentPath>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    for (name, filter) in [
        ("flag_key", &q.flag_key),
        ("user_id", &q.user_id),
        ("value", &q.value),
    ] {
        if filter
            .as_deref()
            .is_some_and(|f| f.contains('\0') || f.len() > 1024)
        {
            return Err(ApiError::BadRequest(format!(
                "{name} must be at most 1024 bytes, without NUL characters"
            )));
        }
    }
    if q.offset > MAX_OFFSET {
        return Err(ApiError::BadRequest(format!(
            "offset must be at most {MAX_OFFSET}"
        )));
    }
    let filter = ImpressionFilter {
        flag_key: q.flag_key,
        user_id: q.user_id,
        value: q.value,
        since_id: q.since_id,
        limit: q.limit.clamp(1, 200),
        offset: q.offset,
    };
    let (rows, total) = state.store.impressions(&env, &filter).await?;
    let items = rows
        .into_iter()
        .map(|r| ImpressionView {
            id: r.id,
            flag_key: r.flag_key,
            user_id: r.user_id,
            value: r.value,
            context: r
                .context
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or(Value::Null),
            evaluated_at: Timestamp::from_ms(r.evaluated_at),
        })
        .collect();
    Ok(axum::Json(ImpressionPage { items, total }))
}

/// The window of the stats.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct StatsQuery {
    /// Start (RFC 3339 or Unix milliseconds). Default: `to` less the days raw impressions are
    /// kept (30).
    from: Option<String>,
    /// End, exclusive (RFC 3339 or Unix milliseconds). Default: now.
    to: Option<String>,
}

/// One value's share.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ValueCount {
    value: String,
    count: i64,
    unique_users: u64,
}

/// A flag's impressions over the window.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ImpressionStats)]
#[serde(deny_unknown_fields)]
pub(super) struct StatsView {
    flag_key: String,
    total: i64,
    /// Impressions that served `"true"`.
    true_count: i64,
    /// Impressions that served `"false"`.
    false_count: i64,
    /// Distinct users (a HyperLogLog++ estimate, within 2 %; exact for small counts), over the
    /// window widened to whole hours.
    unique_users: u64,
    #[schema(required = true)]
    last_seen: Option<Timestamp>,
    /// Every value served, largest count first.
    values: Vec<ValueCount>,
    /// The window: start.
    from: Timestamp,
    /// The window: end (exclusive).
    to: Timestamp,
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

/// Impression stats per flag
///
/// Checkgate's stats, from rollups (never a scan of raw impressions), plus the count of every
/// value and the window (`from`, `to`) in each entry.
#[utoipa::path(get, path = "/api/environments/{env}/impressions/stats",
    operation_id = "impressionStats", tag = "impressions", params(EnvironmentPath, StatsQuery),
    responses(
        (status = 200, body = [StatsView], description = "One entry per flag seen in the window."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(EnvironmentPath { env }): Path<EnvironmentPath>,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let settings = state.insights.settings();
    let day = 86_400_000i64;
    let now = now_ms();
    let longest = i64::from(settings.insights_retention_days) * day;
    let to = instant("to", q.to.as_deref())?.unwrap_or(now);
    if to <= 0 || to > now + longest {
        return Err(ApiError::BadRequest(
            "to must be after 1970 and not far in the future".into(),
        ));
    }
    let from = instant("from", q.from.as_deref())?
        .unwrap_or(to - i64::from(settings.impressions_retention_days) * day);
    if from >= to {
        return Err(ApiError::BadRequest("from must be before to".into()));
    }
    if from < 0 || to - from > longest {
        return Err(ApiError::BadRequest(format!(
            "the window must be within {} days",
            settings.insights_retention_days
        )));
    }
    let stats = state.insights.stats(&env, from, to).await?;
    let view: Vec<StatsView> = stats
        .into_iter()
        .map(|s| StatsView {
            flag_key: s.flag_key,
            total: s.total,
            true_count: s.true_count,
            false_count: s.false_count,
            unique_users: s.unique_users,
            last_seen: s.last_seen.map(Timestamp::from_ms),
            values: s
                .values
                .into_iter()
                .map(|v| ValueCount {
                    value: v.value,
                    count: v.count,
                    unique_users: v.unique_users,
                })
                .collect(),
            from: Timestamp::from_ms(from),
            to: Timestamp::from_ms(to),
        })
        .collect();
    Ok(axum::Json(view))
}

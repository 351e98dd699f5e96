//! Segments of an environment, with Checkgate's paths: `GET/POST
//! /api/environments/{env}/segments`, `GET/PATCH/DELETE …/segments/{key}`. Segments are compiled
//! by the evaluation core before they are stored (422 with the path of the problem). Like flags,
//! answers carry the segment's version as the `ETag`, and `If-Match` makes a PATCH or DELETE
//! conditional (412 when stale).

use axum::extract::State;
use axum::http::header::ETAG;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use checkgate_core::{CompiledSegment, SegmentDoc, compile_segment};
use serde_json::Value;

use super::access::in_environment;
use super::caller::Caller;
use super::flags::{etag, if_match, store_write};
use super::{ApiError, AppState, Json, Path};
use crate::store::{self, Role, StoreError, StoredSegment};

fn segment_json(s: &StoredSegment) -> Result<Value, ApiError> {
    let mut value = serde_json::to_value(&s.doc).map_err(|e| ApiError::Internal(e.into()))?;
    value["version"] = Value::from(s.version);
    Ok(value)
}

/// Refuses a segment that does not compile; returns it compiled. (Whether its regexes fit the
/// environment's automaton cap is checked as it is written.)
fn validate(doc: &SegmentDoc) -> Result<CompiledSegment, ApiError> {
    compile_segment(doc.clone()).map_err(|e| ApiError::Unprocessable(e.to_string()))
}

/// A refused write of `segment`. Over the environment's automaton cap, the message names the
/// regexes of the segment that hold the most.
fn write_error(e: StoreError, segment: &CompiledSegment) -> ApiError {
    match e {
        e @ StoreError::AutomatonCap { .. } => ApiError::Unprocessable(format!(
            "{}: {e}",
            segment.largest_automaton_path().unwrap_or("rules")
        )),
        other => store_write(other),
    }
}

/// `GET /api/environments/{env}/segments`.
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    let segments = state.store.segments(&env).await?;
    Ok(axum::Json(
        segments
            .iter()
            .map(segment_json)
            .collect::<Result<Vec<_>, _>>()?,
    ))
}

/// `GET /api/environments/{env}/segments/{key}`.
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((env, key)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    let segment = state.store.segment(&env, &key).await?;
    Ok((
        [(ETAG, etag(segment.version))],
        axum::Json(segment_json(&segment)?),
    ))
}

/// 412 unless `expected` (from `If-Match`) is absent or the stored version.
fn check_version(key: &str, current: u64, expected: Option<u64>) -> Result<(), ApiError> {
    match expected {
        Some(v) if v != current => Err(ApiError::PreconditionFailed(format!(
            "segment {key:?} is at version {current}, not {v}; reload it and try again"
        ))),
        _ => Ok(()),
    }
}

/// `POST /api/environments/{env}/segments`: creates; 409 if the key exists (Checkgate answered
/// 500).
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
    doc: Result<Json<SegmentDoc>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Editor).await?;
    let Json(doc) = doc?;
    let compiled = validate(&doc)?;
    // Whether the key is taken is decided inside the write's transaction, so two creates of
    // one key cannot both succeed.
    let (segment, _) = state
        .store
        .put_segment_within(
            &caller.actor(),
            &env,
            &compiled,
            Some(store::ABSENT),
            state.automaton_cap,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict(format!(
                "segment {:?} already exists; change it with PATCH",
                doc.key
            )),
            e => write_error(e, &compiled),
        })?;
    Ok((
        StatusCode::CREATED,
        [(ETAG, etag(segment.version))],
        axum::Json(segment_json(&segment)?),
    ))
}

/// How many times a PATCH without `If-Match` retries when another write lands between its read
/// and its write (as for flags).
const PATCH_ATTEMPTS: usize = 3;

/// `PATCH /api/environments/{env}/segments/{key}`: top-level merge, like flags.
pub(super) async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path((env, key)): Path<(String, String)>,
    headers: HeaderMap,
    patch: Result<Json<serde_json::Map<String, Value>>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Editor).await?;
    let Json(patch) = patch?;
    let expected = if_match(&headers)?;
    for attempt in 1..=PATCH_ATTEMPTS {
        let current = state.store.segment(&env, &key).await?;
        check_version(&key, current.version, expected)?;
        let mut merged =
            serde_json::to_value(&current.doc).map_err(|e| ApiError::Internal(e.into()))?;
        for (field, value) in &patch {
            if field != "key" && field != "version" {
                merged[field.as_str()] = value.clone();
            }
        }
        let doc: SegmentDoc =
            serde_json::from_value(merged).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        let compiled = validate(&doc)?;
        // Conditional on the version merged onto: a write in between is never lost.
        match state
            .store
            .put_segment_within(
                &caller.actor(),
                &env,
                &compiled,
                Some(current.version),
                state.automaton_cap,
            )
            .await
        {
            Ok((segment, _)) => {
                return Ok((
                    [(ETAG, etag(segment.version))],
                    axum::Json(segment_json(&segment)?),
                ));
            }
            // Someone wrote in between: merge again onto their version, unless the client
            // asked for a specific one.
            Err(StoreError::VersionMismatch { .. })
                if expected.is_none() && attempt < PATCH_ATTEMPTS => {}
            Err(e) => return Err(write_error(e, &compiled)),
        }
    }
    Err(ApiError::Conflict(format!(
        "segment {key:?} kept changing; try again"
    )))
}

/// `DELETE /api/environments/{env}/segments/{key}`: refused (409) while flags use it; with
/// `If-Match`, only the version named (checked in the deleting transaction).
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((env, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Editor).await?;
    let expected = if_match(&headers)?;
    state
        .store
        .delete_segment(&caller.actor(), &env, &key, expected)
        .await
        .map_err(store_write)?;
    Ok(StatusCode::NO_CONTENT)
}

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
use super::documents::{etag, if_match, merge_patch, patched, store_write, write_error};
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
            e => write_error(e, compiled.largest_automaton_path()),
        })?;
    Ok((
        StatusCode::CREATED,
        [(ETAG, etag(segment.version))],
        axum::Json(segment_json(&segment)?),
    ))
}

/// Fields of a segment answer that are not part of its document, ignored in a PATCH.
const READ_ONLY: [&str; 2] = ["key", "version"];

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
    let (state, env, key, actor) = (&state, env.as_str(), key.as_str(), &caller.actor());
    let read = move || async move {
        let current = state.store.segment(env, key).await?;
        Ok((current.version, current.doc))
    };
    let write = move |doc: SegmentDoc, version| async move {
        let compiled = validate(&doc)?;
        let written = state
            .store
            .put_segment_within(actor, env, &compiled, Some(version), state.automaton_cap)
            .await;
        patched(
            written.map(|(segment, _)| segment),
            compiled.largest_automaton_path(),
        )
    };
    let what = format!("segment {key:?}");
    let segment = merge_patch(&what, &READ_ONLY, if_match(&headers)?, &patch, read, write).await?;
    Ok((
        [(ETAG, etag(segment.version))],
        axum::Json(segment_json(&segment)?),
    ))
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

//! Segments of an environment, with Checkgate's paths: `GET/POST
//! /api/environments/{env}/segments`, `GET/PATCH/DELETE …/segments/{key}`. Segments are compiled
//! by the evaluation core before they are stored (422 with the path of the problem). Like flags,
//! answers carry the segment's version as the `ETag`, and `If-Match` makes a PATCH or DELETE
//! conditional (412 when stale). A PATCH without it merges again onto a newer version (409 if
//! it keeps losing).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use checkgate_core::model::RuleDoc;
use checkgate_core::{CompiledSegment, SegmentDoc, compile_segment};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::access::in_environment;
use super::caller::Caller;
use super::committed::Committed;
use super::documents::{Etag, IfMatch, merge_patch, patched, store_write, write_error};
use super::openapi::{
    BadRequest, Conflict, Forbidden, JsonBodyRefused, NotFound, PreconditionFailed, Unauthorized,
    Unprocessable,
};
use super::params::{EnvironmentPath, SegmentPath};
use super::{ApiError, AppState, Json, Path};
use crate::store::{self, Role, StoreError, StoredSegment};

/// A stored segment: its document, with optional fields absent when empty, and its version
/// (also the `ETag`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Segment)]
pub(super) struct SegmentView {
    /// The segment's version, also its `ETag`. Read-only: ignored when a PATCH sends it back.
    #[schema(minimum = 1)]
    version: u64,
    #[serde(flatten)]
    doc: SegmentDoc,
}

impl From<StoredSegment> for SegmentView {
    fn from(segment: StoredSegment) -> Self {
        Self {
            version: segment.version,
            doc: segment.doc,
        }
    }
}

/// A segment's answer: its version as the `ETag`, and the segment.
fn answer(segment: StoredSegment) -> (Etag, axum::Json<SegmentView>) {
    (
        Etag(segment.version),
        axum::Json(SegmentView::from(segment)),
    )
}

/// A written segment's answer: [`answer`], and the environment version the write committed —
/// the segment's version, which is the environment's at its write.
fn written(segment: StoredSegment) -> (Committed, Etag, axum::Json<SegmentView>) {
    (
        Committed(segment.version),
        Etag(segment.version),
        axum::Json(SegmentView::from(segment)),
    )
}

/// Refuses a segment that does not compile; returns it compiled. (Whether its regexes fit the
/// environment's automaton cap is checked as it is written.)
fn validate(doc: &SegmentDoc) -> Result<CompiledSegment, ApiError> {
    compile_segment(doc.clone()).map_err(|e| ApiError::Unprocessable(e.to_string()))
}

/// An environment's segments
#[utoipa::path(get, path = "/api/environments/{env}/segments", operation_id = "listSegments",
    tag = "segments", params(EnvironmentPath),
    responses(
        (status = 200, body = [SegmentView], description = "The segments."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(EnvironmentPath { env }): Path<EnvironmentPath>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    let segments = state.store.segments(&env).await?;
    Ok(axum::Json(
        segments
            .into_iter()
            .map(SegmentView::from)
            .collect::<Vec<_>>(),
    ))
}

/// A segment
#[utoipa::path(get, path = "/api/environments/{env}/segments/{key}", operation_id = "getSegment",
    tag = "segments", params(SegmentPath),
    responses(
        (status = 200, body = SegmentView, description = "The segment.",
            headers(("ETag" = inline(Etag), description = "The segment's version in quotes, \
                e.g. `\"3\"`; send it back in `If-Match`."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(SegmentPath { env, key }): Path<SegmentPath>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    let segment = state.store.segment(&env, &key).await?;
    Ok(answer(segment))
}

/// Create a segment (editors)
///
/// 409 when the key exists (change it with PATCH); 422 when it does not compile or its regexes
/// would take the environment's automata past their cap.
// Checkgate answered 500 for an existing key.
#[utoipa::path(post, path = "/api/environments/{env}/segments", operation_id = "createSegment",
    tag = "segments", params(EnvironmentPath),
    request_body(content = SegmentDoc, example = json!({
        "key": "beta-testers",
        "name": "Beta testers",
        "included": ["user-1"],
        "rules": [{"attribute": "email", "operator": "ends_with", "values": ["@example.com"]}]
    })),
    responses(
        (status = 201, body = SegmentView, description = "The segment.",
            headers(("ETag" = inline(Etag), description = "The segment's version in quotes, \
                e.g. `\"3\"`; send it back in `If-Match`."),
                ("X-Checkgate-Version" = inline(Committed),
                    description = "The environment version this write committed."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        JsonBodyRefused,
        (status = 422, response = Unprocessable),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(EnvironmentPath { env }): Path<EnvironmentPath>,
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
    Ok((StatusCode::CREATED, written(segment)))
}

/// Fields of a segment answer that are not part of its document, ignored in a PATCH.
const READ_ONLY: [&str; 2] = ["key", "version"];

/// Fields of a segment document; each replaces the stored one. `key` and `version` are ignored.
/// Unknown fields are ignored.
// Describes the body of `patch`, which merges the JSON object as sent (a field given is not a
// field left out), so it is never built. Each field has its type in `SegmentDoc`: `null` only
// where the document takes it.
#[derive(ToSchema)]
#[schema(as = SegmentPatch)]
#[expect(
    dead_code,
    reason = "describes the PATCH body, which is merged as raw JSON"
)]
pub(super) struct SegmentPatch {
    /// Ignored: the key and version cannot be changed.
    #[schema(value_type = Value, required = false)]
    key: Option<Value>,
    #[schema(required = false)]
    name: String,
    description: Option<String>,
    /// Targeting keys always in the segment.
    #[schema(required = false)]
    included: Vec<String>,
    /// Targeting keys never in it (wins over everything).
    #[schema(required = false)]
    excluded: Vec<String>,
    /// A context is in the segment when any rule matches; rules cannot refer to segments.
    #[schema(required = false)]
    rules: Vec<RuleDoc>,
    /// Ignored: the key and version cannot be changed.
    #[schema(value_type = Value, required = false)]
    version: Option<Value>,
}

/// Change some fields of a segment (editors)
///
/// A top-level merge, like flags. A field of the wrong type is 422. With `If-Match`, 412 when
/// another write landed in between; without it, the PATCH is merged again onto the newer
/// version (409 if it keeps losing).
#[utoipa::path(patch, path = "/api/environments/{env}/segments/{key}",
    operation_id = "patchSegment", tag = "segments", params(SegmentPath, IfMatch),
    request_body(content = SegmentPatch, example = json!({"included": ["user-1", "user-2"]})),
    responses(
        (status = 200, body = SegmentView, description = "The segment.",
            headers(("ETag" = inline(Etag), description = "The segment's version in quotes, \
                e.g. `\"3\"`; send it back in `If-Match`."),
                ("X-Checkgate-Version" = inline(Committed),
                    description = "The environment version this write committed."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        JsonBodyRefused,
        (status = 422, response = Unprocessable),
    ))]
pub(super) async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(SegmentPath { env, key }): Path<SegmentPath>,
    if_match: IfMatch,
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
    let segment = merge_patch(&what, &READ_ONLY, if_match.version()?, &patch, read, write).await?;
    Ok(written(segment))
}

/// Delete a segment (editors)
///
/// Refused (409) while flags use it.
// With `If-Match`, only the version named (checked in the deleting transaction).
#[utoipa::path(delete, path = "/api/environments/{env}/segments/{key}",
    operation_id = "deleteSegment", tag = "segments", params(SegmentPath, IfMatch),
    responses(
        (status = 204, description = "Done; no body.",
            headers(("X-Checkgate-Version" = inline(Committed),
                description = "The environment version this write committed."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(SegmentPath { env, key }): Path<SegmentPath>,
    if_match: IfMatch,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Editor).await?;
    let expected = if_match.version()?;
    let version = state
        .store
        .delete_segment(&caller.actor(), &env, &key, expected)
        .await
        .map_err(store_write)?;
    Ok((StatusCode::NO_CONTENT, Committed(version), ()))
}

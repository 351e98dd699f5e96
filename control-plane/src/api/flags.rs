//! Flags of an environment, with Checkgate's paths and shapes: `GET/POST
//! /api/environments/{env}/flags`, `GET/PATCH/DELETE …/flags/{key}`, `POST …/flags/{key}/promote`.
//!
//! Every write is compiled by the evaluation core first, so a flag that cannot be evaluated is
//! refused with 422 and the path of the problem. Responses carry the flag's version in the body
//! and as the `ETag`; `If-Match` with that version makes a write conditional (412 when stale).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use checkgate_core::model::{FlagType, PrerequisiteDoc, RuleDoc, SplitDoc, VariantDoc};
use checkgate_core::{
    Change, CompileError, CompiledFlag, Environment as CoreEnvironment, ErrorCode, FlagDoc, Reason,
    compile_flag,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::access::{check_id, in_environment};
use super::caller::Caller;
use super::committed::Committed;
use super::documents::{Etag, IfMatch, merge_patch, patched, store_write, write_error};
use super::openapi::{
    BadRequest, Conflict, Forbidden, JsonBodyRefused, NotFound, PreconditionFailed, Unauthorized,
    Unprocessable,
};
use super::params::{EnvironmentPath, FlagPath};
use super::time::{Timestamp, rfc3339};
use super::{ApiError, AppState, Json, Path};
use crate::store::{Role, StoreError, StoredFlag};

/// A stored flag: its document, with optional fields absent when empty, and its version (also
/// the `ETag`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Flag)]
pub(super) struct FlagView {
    /// The flag's version, also its `ETag`. Read-only: ignored when a PATCH sends it back.
    #[schema(minimum = 1)]
    version: u64,
    /// When the flag last changed. Read-only: ignored when a PATCH sends it back.
    updated_at: Timestamp,
    #[serde(flatten)]
    doc: FlagDoc,
}

impl From<StoredFlag> for FlagView {
    fn from(flag: StoredFlag) -> Self {
        Self {
            version: flag.version,
            updated_at: Timestamp::from_ms(flag.updated_at),
            doc: flag.doc,
        }
    }
}

/// A flag's answer: its version as the `ETag`, and the flag.
fn answer(flag: StoredFlag) -> (Etag, axum::Json<FlagView>) {
    (Etag(flag.version), axum::Json(FlagView::from(flag)))
}

/// A written flag's answer: [`answer`], and the environment version the write committed — the
/// flag's version, which is the environment's at its write.
fn written(flag: StoredFlag) -> (Committed, Etag, axum::Json<FlagView>) {
    (
        Committed(flag.version),
        Etag(flag.version),
        axum::Json(FlagView::from(flag)),
    )
}

/// Fields of a flag answer that are not part of its document: a PATCH that sends a flag back
/// as it was read may carry them, and they are ignored.
pub(super) const READ_ONLY: [&str; 3] = ["key", "version", "updated_at"];

fn invalid(e: &CompileError) -> ApiError {
    ApiError::Unprocessable(e.to_string())
}

/// Refuses a flag that does not compile, refers to a segment that does not exist, or whose
/// prerequisites are missing or cyclic; returns it compiled. (Whether its regexes fit the
/// environment's automaton cap is checked as it is written.)
pub(super) async fn validate(
    state: &AppState,
    env: &str,
    doc: &FlagDoc,
) -> Result<CompiledFlag, ApiError> {
    let compiled = compile_flag(doc.clone()).map_err(|e| invalid(&e))?;
    let segments: Vec<String> = compiled.segment_keys().map(str::to_owned).collect();
    for segment in segments {
        match state.store.segment(env, &segment).await {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => {
                return Err(ApiError::Unprocessable(format!(
                    "rules: segment {segment:?} does not exist in this environment"
                )));
            }
            // Not knowing is not "it does not exist": an outage stays an outage.
            Err(e) => return Err(e.into()),
        }
    }
    if compiled.prerequisite_keys().next().is_some() {
        let others = CoreEnvironment::new();
        for (i, stored) in state
            .store
            .flags(env, u32::MAX, 0)
            .await?
            .into_iter()
            .enumerate()
        {
            if stored.key != doc.key {
                let json =
                    serde_json::to_string(&stored.doc).map_err(|e| ApiError::Internal(e.into()))?;
                others.apply(Change::flag_json(&stored.key, i as u64 + 1, &json));
            }
        }
        others
            .check_prerequisites(&compiled)
            .map_err(|e| invalid(&e))?;
    }
    Ok(compiled)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    /// 1–1000.
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 1000, default = 200)]
    limit: u32,
    #[serde(default)]
    #[param(format = Int64, minimum = 0, maximum = 4_294_967_295_u32, default = 0)]
    offset: u32,
}

fn default_limit() -> u32 {
    200
}

/// An environment's flags, by key
///
/// Unknown query parameters are 400.
#[utoipa::path(get, path = "/api/environments/{env}/flags", operation_id = "listFlags",
    tag = "flags", params(EnvironmentPath, ListParams),
    responses(
        // Written by splicing the stored documents, but the same JSON as `[FlagView]`.
        (status = 200, body = [FlagView], description = "The flags."),
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
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if !(1..=1000).contains(&params.limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    let flags = state
        .store
        .flags_raw(&env, params.limit, params.offset)
        .await?;
    // The stored documents are canonical JSON objects: splice the version in instead of
    // parsing and re-serializing each one.
    let mut body =
        String::with_capacity(flags.iter().map(|(_, _, d)| d.len() + 64).sum::<usize>() + 2);
    body.push('[');
    for (i, (version, updated_at, doc)) in flags.iter().enumerate() {
        let Some(fields) = doc.strip_prefix('{') else {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "stored flag is not a JSON object"
            )));
        };
        if i > 0 {
            body.push(',');
        }
        body.push_str("{\"version\":");
        body.push_str(&version.to_string());
        body.push_str(",\"updated_at\":\"");
        body.push_str(&rfc3339(*updated_at));
        body.push_str("\",");
        body.push_str(fields);
    }
    body.push(']');
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    ))
}

/// A flag
#[utoipa::path(get, path = "/api/environments/{env}/flags/{key}", operation_id = "getFlag",
    tag = "flags", params(FlagPath),
    responses(
        (status = 200, body = FlagView, description = "The flag.",
            headers(("ETag" = inline(Etag), description = "The flag's version in quotes, e.g. \
                `\"3\"`; send it back in `If-Match`."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(FlagPath { env, key }): Path<FlagPath>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    let flag = state.store.flag(&env, &key).await?;
    Ok(answer(flag))
}

/// Create or replace a flag (editors)
///
/// The document is compiled first: one that cannot be evaluated is 422 with the path of the
/// problem, and so is one whose regexes would take the environment's automata (its flags' and
/// segments' together) past their cap (32 MiB by default).
#[utoipa::path(post, path = "/api/environments/{env}/flags", operation_id = "putFlag",
    tag = "flags", params(EnvironmentPath, IfMatch),
    request_body(content = FlagDoc, example = json!({
        "key": "checkout",
        "is_enabled": true,
        "rollout_percentage": 50,
        "description": null,
        "rules": [{"attribute": "plan", "operator": "equals", "values": ["pro"], "variant": "v3"}],
        "flag_type": "string",
        "default_value": "v2",
        "disabled_value": "v1"
    })),
    responses(
        (status = 200, body = FlagView, description = "Replaced.",
            headers(("ETag" = inline(Etag), description = "The flag's version in quotes, e.g. \
                `\"3\"`; send it back in `If-Match`."),
                ("X-Checkgate-Version" = inline(Committed),
                    description = "The environment version this write committed."))),
        (status = 201, body = FlagView, description = "Created.",
            headers(("ETag" = inline(Etag), description = "The flag's version in quotes, e.g. \
                `\"3\"`; send it back in `If-Match`."),
                ("X-Checkgate-Version" = inline(Committed),
                    description = "The environment version this write committed."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 412, response = PreconditionFailed),
        JsonBodyRefused,
        (status = 422, response = Unprocessable),
    ))]
pub(super) async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(EnvironmentPath { env }): Path<EnvironmentPath>,
    if_match: IfMatch,
    doc: Result<Json<FlagDoc>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Editor).await?;
    let Json(doc) = doc?;
    let compiled = validate(&state, &env, &doc).await?;
    let (flag, created) = state
        .store
        .put_flag_within(
            &caller.actor(),
            &env,
            &compiled,
            if_match.version()?,
            state.automaton_cap,
        )
        .await
        .map_err(|e| write_error(e, compiled.largest_automaton_path()))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, written(flag)))
}

/// Fields of a flag document; each replaces the stored one. `key`, `version` and `updated_at`
/// are ignored (a flag read from the API can be sent back as it is). Unknown fields are
/// ignored.
// Describes the body of `patch`, which merges the JSON object as sent (a field given is not a
// field left out), so it is never built. Each field has its type in `FlagDoc`: `null` only
// where the document takes it.
#[derive(ToSchema)]
#[schema(as = FlagPatch)]
#[expect(
    dead_code,
    reason = "describes the PATCH body, which is merged as raw JSON"
)]
pub(super) struct FlagPatch {
    /// Ignored: the key, version and update time cannot be changed.
    #[schema(value_type = Value, required = false)]
    key: Option<Value>,
    #[schema(required = false)]
    is_enabled: bool,
    /// 0–100; `null` means 100.
    #[schema(minimum = 0, maximum = 100)]
    rollout_percentage: Option<u32>,
    description: Option<String>,
    #[schema(required = false)]
    rules: Vec<RuleDoc>,
    #[schema(required = false)]
    flag_type: FlagType,
    /// Served when no rule matches; any JSON value of the flag's `flag_type`.
    default_value: Option<Value>,
    /// Served when the flag is off; any JSON value of the flag's `flag_type`.
    disabled_value: Option<Value>,
    #[schema(required = false)]
    variants: Vec<VariantDoc>,
    split: Option<SplitDoc>,
    bucket_by: Option<String>,
    salt: Option<String>,
    #[schema(required = false)]
    prerequisites: Vec<PrerequisiteDoc>,
    #[schema(required = false)]
    tags: Vec<String>,
    /// Ignored: the key, version and update time cannot be changed.
    #[schema(value_type = Value, required = false)]
    version: Option<Value>,
    /// Ignored: the key, version and update time cannot be changed.
    #[schema(value_type = Value, required = false)]
    updated_at: Option<Value>,
}

/// Change some fields of a flag (editors)
///
/// A top-level merge: each field given replaces the stored one (`key` and `version` are
/// ignored). A field of the wrong type is 422. Without `If-Match` a write that races another is
/// merged again (409 if it keeps losing).
#[utoipa::path(patch, path = "/api/environments/{env}/flags/{key}", operation_id = "patchFlag",
    tag = "flags", params(FlagPath, IfMatch),
    request_body(content = FlagPatch, example = json!({"is_enabled": false})),
    responses(
        (status = 200, body = FlagView, description = "The flag.",
            headers(("ETag" = inline(Etag), description = "The flag's version in quotes, e.g. \
                `\"3\"`; send it back in `If-Match`."),
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
    Path(FlagPath { env, key }): Path<FlagPath>,
    if_match: IfMatch,
    patch: Result<Json<serde_json::Map<String, Value>>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Editor).await?;
    let Json(patch) = patch?;
    let (state, env, key, actor) = (&state, env.as_str(), key.as_str(), &caller.actor());
    let read = move || async move {
        let current = state.store.flag(env, key).await?;
        Ok((current.version, current.doc))
    };
    let write = move |doc: FlagDoc, version| async move {
        let compiled = validate(state, env, &doc).await?;
        let written = state
            .store
            .put_flag_within(actor, env, &compiled, Some(version), state.automaton_cap)
            .await;
        patched(
            written.map(|(flag, _)| flag),
            compiled.largest_automaton_path(),
        )
    };
    let what = format!("flag {key:?}");
    let flag = merge_patch(&what, &READ_ONLY, if_match.version()?, &patch, read, write).await?;
    Ok(written(flag))
}

/// Delete a flag (editors)
#[utoipa::path(delete, path = "/api/environments/{env}/flags/{key}", operation_id = "deleteFlag",
    tag = "flags", params(FlagPath, IfMatch),
    responses(
        (status = 204, description = "Done; no body.",
            headers(("X-Checkgate-Version" = inline(Committed),
                description = "The environment version this write committed."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 412, response = PreconditionFailed),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(FlagPath { env, key }): Path<FlagPath>,
    if_match: IfMatch,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Editor).await?;
    let version = state
        .store
        .delete_flag(&caller.actor(), &env, &key, if_match.version()?)
        .await
        .map_err(store_write)?;
    Ok((StatusCode::NO_CONTENT, Committed(version), ()))
}

/// Where to copy a flag.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PromoteBody {
    /// The environment to copy the flag to, in the same project.
    #[schema(format = "uuid")]
    target_env_id: String,
}

/// Copy a flag to another environment of the same project
///
/// Editors of the project (roles are per project, and the target must be another environment
/// of the source's project: one in another project is 400). The role is checked before the body
/// is read.
#[utoipa::path(post, path = "/api/environments/{env}/flags/{key}/promote",
    operation_id = "promoteFlag", tag = "flags", params(FlagPath),
    request_body(content = PromoteBody),
    responses(
        (status = 200, body = FlagView, description = "The copy in the target environment.",
            headers(("ETag" = inline(Etag), description = "The flag's version in quotes, e.g. \
                `\"3\"`; send it back in `If-Match`."),
                ("X-Checkgate-Version" = inline(Committed),
                    description = "The environment version this write committed."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        JsonBodyRefused,
        (status = 422, response = Unprocessable),
    ))]
pub(super) async fn promote(
    State(state): State<AppState>,
    caller: Caller,
    Path(FlagPath { env, key }): Path<FlagPath>,
    body: Result<Json<PromoteBody>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    let source = in_environment(&state, &caller, &env, Role::Editor).await?;
    let Json(body) = body?;
    check_id("environment", &body.target_env_id)?;
    let target = in_environment(&state, &caller, &body.target_env_id, Role::Editor).await?;
    if target.project_id != source.project_id {
        return Err(ApiError::BadRequest(
            "a flag can be promoted only within its project".into(),
        ));
    }
    let flag = state.store.flag(&env, &key).await?;
    let compiled = validate(&state, &target.id, &flag.doc).await?;
    let (copy, _) = state
        .store
        .promote_flag(&caller.actor(), &target.id, &compiled, state.automaton_cap)
        .await
        .map_err(|e| write_error(e, compiled.largest_automaton_path()))?;
    Ok(written(copy))
}

/// The context to evaluate the stored flag for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EvaluateBody {
    /// The evaluation context, as SDKs send it: `targetingKey` and attributes (strings,
    /// numbers, booleans, arrays of strings).
    #[serde(default)]
    #[schema(value_type = Object)]
    context: serde_json::Map<String, Value>,
}

/// A stored flag's answer for a context.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Evaluation)]
#[serde(deny_unknown_fields)]
pub(super) struct EvaluationView {
    key: String,
    /// The value the flag serves this context (null on error).
    value: Value,
    #[schema(required = true)]
    variant: Option<String>,
    #[schema(inline)]
    reason: Reason,
    /// Checkgate's `enabled`: false when the flag is off, outside its rollout, blocked by a
    /// prerequisite, or in error.
    enabled: bool,
    /// The version of the flag evaluated.
    #[schema(minimum = 1)]
    version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(inline, nullable = false)]
    error_code: Option<ErrorCode>,
}

/// Evaluate the stored flag for a context
///
/// The answer an SDK would get for this context, from a consistent read of the environment's
/// flags and segments (prerequisites and segment conditions included). Viewers may use it; the
/// dashboard's "try a context". A context that is not valid is 422.
#[utoipa::path(post, path = "/api/environments/{env}/flags/{key}/evaluate",
    operation_id = "evaluateFlag", tag = "flags", params(FlagPath),
    request_body(content = EvaluateBody,
        example = json!({"context": {"targetingKey": "user-42", "country": "NL"}})),
    responses(
        (status = 200, body = EvaluationView, description = "The evaluation."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        JsonBodyRefused,
        (status = 422, response = Unprocessable),
    ))]
pub(super) async fn evaluate(
    State(state): State<AppState>,
    caller: Caller,
    Path(FlagPath { env, key }): Path<FlagPath>,
    body: Result<Json<EvaluateBody>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    let Json(body) = body?;
    let context = checkgate_core::Context::from_json_map(&body.context)
        .map_err(|e| ApiError::Unprocessable(format!("context: {e}")))?;
    let Some(data) = state.store.feed_snapshot(&env).await? else {
        return Err(ApiError::NotFound("environment not found".into()));
    };
    // Only what this flag can reach is compiled: the flag, its prerequisites (transitively)
    // and the segments they use — not the whole environment.
    let flags: std::collections::HashMap<&str, (u64, &str)> = data
        .flags
        .iter()
        .map(|(k, v, json)| (k.as_str(), (*v, json.as_str())))
        .collect();
    let segments: std::collections::HashMap<&str, (u64, &str)> = data
        .segments
        .iter()
        .map(|(k, v, json)| (k.as_str(), (*v, json.as_str())))
        .collect();
    let Some(&(version, _)) = flags.get(key.as_str()) else {
        return Err(ApiError::NotFound(format!("flag {key:?} not found")));
    };
    let environment = CoreEnvironment::new();
    let mut pending = vec![key.clone()];
    let mut seen = std::collections::HashSet::new();
    while let Some(next) = pending.pop() {
        if !seen.insert(next.clone()) {
            continue;
        }
        let Some(&(v, json)) = flags.get(next.as_str()) else {
            continue; // a missing prerequisite: the evaluator says what that means
        };
        environment.apply(Change::flag_json(&next, v, json));
        if let Ok(compiled) = environment.flag_for_eval(&next) {
            for segment in compiled.segment_keys() {
                if let Some(&(sv, sjson)) = segments.get(segment) {
                    environment.apply(Change::segment_json(segment, sv, sjson));
                }
            }
            pending.extend(compiled.prerequisite_keys().map(str::to_owned));
        }
    }
    let flag = environment.flag_for_eval(&key).map_err(|code| {
        ApiError::Internal(anyhow::anyhow!(
            "stored flag {key:?} does not evaluate: {}",
            code.as_str()
        ))
    })?;
    let result = checkgate_core::evaluate(&flag, &context, &environment);
    let answer = EvaluationView {
        value: result.value.clone(),
        variant: (!result.variant.is_empty()).then(|| result.variant.to_owned()),
        reason: result.reason,
        enabled: result.enabled,
        version,
        error_code: result.error,
        key,
    };
    Ok(axum::Json(answer))
}

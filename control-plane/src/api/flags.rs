//! Flags of an environment, with Checkgate's paths and shapes: `GET/POST
//! /api/environments/{env}/flags`, `GET/PATCH/DELETE …/flags/{key}`, `POST …/flags/{key}/promote`.
//!
//! Every write is compiled by the evaluation core first, so a flag that cannot be evaluated is
//! refused with 422 and the path of the problem. Responses carry the flag's version in the body
//! and as the `ETag`; `If-Match` with that version makes a write conditional (412 when stale).

use axum::extract::{Query, State};
use axum::http::header::ETAG;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use checkgate_core::{
    Change, CompileError, CompiledFlag, Environment as CoreEnvironment, FlagDoc, compile_flag,
};
use serde::Deserialize;
use serde_json::Value;

use super::access::{check_id, in_environment};
use super::caller::Caller;
use super::documents::{etag, if_match, merge_patch, patched, store_write, write_error};
use super::time::rfc3339;
use super::{ApiError, AppState, Json, Path};
use crate::store::{Role, StoreError, StoredFlag};

fn flag_json(flag: &StoredFlag) -> Result<Value, ApiError> {
    let mut value = serde_json::to_value(&flag.doc).map_err(|e| ApiError::Internal(e.into()))?;
    value["version"] = Value::from(flag.version);
    value["updated_at"] = Value::from(rfc3339(flag.updated_at));
    Ok(value)
}

/// Fields of a flag answer that are not part of its document: a PATCH that sends a flag back
/// as it was read may carry them, and they are ignored.
const READ_ONLY: [&str; 3] = ["key", "version", "updated_at"];

fn invalid(e: &CompileError) -> ApiError {
    ApiError::Unprocessable(e.to_string())
}

/// Refuses a flag that does not compile, refers to a segment that does not exist, or whose
/// prerequisites are missing or cyclic; returns it compiled. (Whether its regexes fit the
/// environment's automaton cap is checked as it is written.)
async fn validate(state: &AppState, env: &str, doc: &FlagDoc) -> Result<CompiledFlag, ApiError> {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    #[serde(default = "default_limit")]
    limit: u32,
    #[serde(default)]
    offset: u32,
}

fn default_limit() -> u32 {
    200
}

/// `GET /api/environments/{env}/flags?limit&offset` (limit 1–1000, default 200).
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
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

/// `GET /api/environments/{env}/flags/{key}`.
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((env, key)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    let flag = state.store.flag(&env, &key).await?;
    Ok(([(ETAG, etag(flag.version))], axum::Json(flag_json(&flag)?)))
}

/// `POST /api/environments/{env}/flags`: creates or replaces (Checkgate's semantics); 201 when
/// created, 200 when replaced.
pub(super) async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
    headers: HeaderMap,
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
            if_match(&headers)?,
            state.automaton_cap,
        )
        .await
        .map_err(|e| write_error(e, compiled.largest_automaton_path()))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        [(ETAG, etag(flag.version))],
        axum::Json(flag_json(&flag)?),
    ))
}

/// `PATCH /api/environments/{env}/flags/{key}`: Checkgate's top-level merge (each field given
/// replaces the stored one; `key` cannot change).
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
    let flag = merge_patch(&what, &READ_ONLY, if_match(&headers)?, &patch, read, write).await?;
    Ok(([(ETAG, etag(flag.version))], axum::Json(flag_json(&flag)?)))
}

/// `DELETE /api/environments/{env}/flags/{key}`.
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((env, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Editor).await?;
    state
        .store
        .delete_flag(&caller.actor(), &env, &key, if_match(&headers)?)
        .await
        .map_err(store_write)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PromoteBody {
    target_env_id: String,
}

/// `POST /api/environments/{env}/flags/{key}/promote`: copies the flag to another environment
/// of the same project. Roles are per project, so the editor role the target needs is checked
/// on the source's project first, before the body is read.
pub(super) async fn promote(
    State(state): State<AppState>,
    caller: Caller,
    Path((env, key)): Path<(String, String)>,
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
        .put_flag_within(
            &caller.actor(),
            &target.id,
            &compiled,
            None,
            state.automaton_cap,
        )
        .await
        .map_err(|e| write_error(e, compiled.largest_automaton_path()))?;
    Ok(([(ETAG, etag(copy.version))], axum::Json(flag_json(&copy)?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EvaluateBody {
    #[serde(default)]
    context: serde_json::Map<String, Value>,
}

/// `POST /api/environments/{env}/flags/{key}/evaluate`: the stored flag's answer for a
/// context, as an SDK would get it — evaluated against a consistent read of the
/// environment's flags and segments (for prerequisites and segment conditions). The
/// dashboard's "try a context"; viewers may use it.
pub(super) async fn evaluate(
    State(state): State<AppState>,
    caller: Caller,
    Path((env, key)): Path<(String, String)>,
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
    let mut answer = serde_json::json!({
        "key": key,
        "value": result.value,
        "variant": (!result.variant.is_empty()).then_some(result.variant),
        "reason": result.reason.as_str(),
        "enabled": result.enabled,
        "version": version,
    });
    if let Some(code) = result.error {
        answer["error_code"] = Value::from(code.as_str());
    }
    Ok(axum::Json(answer))
}

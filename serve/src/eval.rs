//! Our server-side evaluation API, for clients that do not evaluate locally:
//!
//! - `POST /api/v1/evaluate/{key}` `{"context":{…}}` → one flag's value, variant and reason;
//! - `POST /api/v1/evaluate` `{"context":{…}, "flags":[…]?}` → every flag (or those listed).
//!
//! Either kind of SDK key may call them: the answers hold values, never rules. A flag that does
//! not exist is 404 and a context the flag cannot be evaluated for (no targeting key where it
//! buckets, a malformed attribute) is 400; a flag stored but not loadable here answers 200 with
//! `errorCode`, so the caller falls back to its default. With `X-Checkgate-Min-Version` the
//! answer is of that version of the environment or a later one ([`crate::min_version`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use checkgate_core::{Environment, ErrorCode, evaluate};
use checkgate_protocol::json::FlagEvaluation;

use super::keys::{self, KeyError};
use super::{
    EvalBody, HeadersAndBody, SdkError, SdkState, answer, checked_body, min_version, parse_body,
};
use crate::replica::KeyEntry;
use crate::served::Served;

/// Most flags one request may name.
pub const MAX_FLAGS: usize = 1000;

/// The caller's environment, or 503 while it has no data.
pub(crate) fn environment(served: &Served, key: &KeyEntry) -> Result<Arc<Environment>, SdkError> {
    served
        .replica
        .environment(&key.env_id)
        .ok_or_else(|| KeyError::NotReady.into())
}

/// A path parameter, or 400 in our shape (a key that is not UTF-8).
pub(crate) fn path_key(path: Result<Path<String>, PathRejection>) -> Result<String, SdkError> {
    path.map(|Path(key)| key)
        .map_err(|e| SdkError::bad_request(e.body_text()))
}

/// `POST /api/v1/evaluate/{key}`.
pub async fn one(
    State(state): State<SdkState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    HeadersAndBody { headers, body }: HeadersAndBody,
) -> Result<Response, SdkError> {
    let served = &state.served;
    let caller = keys::authenticate(served, &headers, query.as_deref())?;
    let min = min_version::requested(&headers)?;
    let key = path_key(path)?;
    let body = checked_body(&headers, body)?;
    let request: EvalBody<'_> = parse_body(&body)?;
    let ctx = request.context.unwrap_or_default();
    min_version::replica_at(served, &caller.env_id, min, state.min_version_wait).await?;
    let env = environment(served, &caller)?;
    let flag = match env.flag_for_eval(&key) {
        Ok(flag) => flag,
        Err(ErrorCode::FlagNotFound) => {
            return Err(SdkError::new(
                StatusCode::NOT_FOUND,
                "flag_not_found",
                format!("no flag {key:?} in this environment"),
            ));
        }
        Err(code) => {
            let answer = FlagEvaluation {
                key,
                value: serde_json::Value::Null,
                variant: String::new(),
                reason: checkgate_protocol::json::Reason::Error,
                error_code: Some(code.into()),
                enabled: false,
            };
            return Ok(axum::Json(answer).into_response());
        }
    };
    let evaluation = evaluate(&flag, &ctx, env.as_ref());
    match evaluation.error {
        Some(ErrorCode::TargetingKeyMissing) => Err(SdkError::new(
            StatusCode::BAD_REQUEST,
            "targeting_key_missing",
            format!("flag {key:?} needs a targetingKey in the context"),
        )),
        Some(ErrorCode::InvalidContext) => Err(SdkError::new(
            StatusCode::BAD_REQUEST,
            "invalid_context",
            format!("the context cannot be used to evaluate flag {key:?}"),
        )),
        _ => {
            state.count(&caller.env_id, &key, &evaluation);
            let mut out = Vec::with_capacity(128 + key.len() + evaluation.value_json.len());
            answer::ours(&mut out, &key, &evaluation);
            Ok(json_response(out))
        }
    }
}

/// `POST /api/v1/evaluate`: every flag, or those listed, in key order. Errors are per flag.
pub async fn all(
    State(state): State<SdkState>,
    RawQuery(query): RawQuery,
    HeadersAndBody { headers, body }: HeadersAndBody,
) -> Result<Response, SdkError> {
    let served = &state.served;
    let caller = keys::authenticate(served, &headers, query.as_deref())?;
    let min = min_version::requested(&headers)?;
    let body = checked_body(&headers, body)?;
    let request: EvalBody<'_> = parse_body(&body)?;
    let ctx = request.context.unwrap_or_default();
    min_version::replica_at(served, &caller.env_id, min, state.min_version_wait).await?;
    let env = environment(served, &caller)?;
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(b"{\"flags\":[");
    match &request.flags {
        Some(keys) if keys.len() > MAX_FLAGS => {
            return Err(SdkError::bad_request(format!(
                "flags lists {} keys; at most {MAX_FLAGS}",
                keys.len()
            )));
        }
        Some(keys) => {
            let mut keys: Vec<&String> = keys.iter().collect();
            keys.sort_unstable();
            keys.dedup();
            state.insights.counter.tally(&caller.env_id, |tally| {
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    match env.flag_for_eval(key) {
                        Ok(flag) => {
                            let evaluation = evaluate(&flag, &ctx, env.as_ref());
                            tally.evaluated(key, &evaluation);
                            answer::ours(&mut out, key, &evaluation);
                        }
                        Err(code) => {
                            let failed = FlagEvaluation {
                                key: key.clone(),
                                value: serde_json::Value::Null,
                                variant: String::new(),
                                reason: checkgate_protocol::json::Reason::Error,
                                error_code: Some(code.into()),
                                enabled: false,
                            };
                            let _ = serde_json::to_writer(&mut out, &failed);
                        }
                    }
                }
            });
        }
        None => {
            let position = served.replica.version(&caller.env_id).unwrap_or_default();
            let flags = state.lists.get(&caller.env_id, position, &env);
            state.insights.counter.tally(&caller.env_id, |tally| {
                for (i, flag) in flags.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    let evaluation = evaluate(flag, &ctx, env.as_ref());
                    tally.evaluated(flag.key(), &evaluation);
                    answer::ours(&mut out, flag.key(), &evaluation);
                }
            });
        }
    }
    out.extend_from_slice(b"]}");
    Ok(json_response(out))
}

/// A 200 with a JSON body already written.
pub(crate) fn json_response(body: Vec<u8>) -> Response {
    let mut response = Bytes::from(body).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

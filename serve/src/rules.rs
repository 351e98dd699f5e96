//! `GET /api/v1/flags`: every flag and segment of the key's environment, for SDKs that evaluate
//! locally. Server keys only: rules hold targeting data (emails, plans) that must never reach a
//! browser. The payload is built once per environment version, kept with its gzip encoding,
//! and answered 304 for a matching `If-None-Match` — a poll that finds nothing new costs a hash
//! lookup.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::keys;
use super::{SdkError, SdkState};
use crate::served::Served;
use checkgate_ops::gzip::{accepts_gzip, gzip};

/// One environment's payload at one version.
#[derive(Debug)]
pub struct Payload {
    epoch: u64,
    version: u64,
    etag: HeaderValue,
    json: Bytes,
    gzip: Bytes,
}

#[derive(Serialize)]
struct Body<'a> {
    environment: &'a str,
    version: u64,
    flags: Vec<&'a checkgate_core::FlagDoc>,
    segments: Vec<&'a checkgate_core::SegmentDoc>,
}

fn build(served: &Served, env_id: &str) -> Option<Payload> {
    let (epoch, version) = served.replica.version(env_id)?;
    let env = served.replica.environment(env_id)?;
    let flags = env.live_flags();
    let segments = env.live_segments();
    let body = Body {
        environment: env_id,
        version,
        flags: flags.iter().map(|f| f.doc()).collect(),
        segments: segments.iter().map(|s| s.doc()).collect(),
    };
    let json = serde_json::to_vec(&body).ok()?;
    let gzip = gzip(&json, 6)?;
    let etag = HeaderValue::from_str(&format!("\"{epoch}.{version}\"")).ok()?;
    Some(Payload {
        epoch,
        version,
        etag,
        json: Bytes::from(json),
        gzip: Bytes::from(gzip),
    })
}

/// The payload of `env_id` at the replica's version, built when it is not cached yet.
fn payload(state: &SdkState, env_id: &str) -> Option<Arc<Payload>> {
    let current = state.served.replica.version(env_id)?;
    if let Some(cached) = state.rules.get(env_id)
        && (cached.epoch, cached.version) == current
    {
        return Some(Arc::clone(cached.value()));
    }
    let built = Arc::new(build(&state.served, env_id)?);
    state.rules.insert(env_id.to_owned(), Arc::clone(&built));
    Some(built)
}

/// `GET /api/v1/flags`.
pub async fn flags(
    State(state): State<SdkState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, SdkError> {
    let caller = keys::authenticate(&state.served, &headers, query.as_deref())?;
    if !keys::reads_rules(caller.kind) {
        return Err(SdkError::forbidden(
            "a client key cannot read flag rules; use a server key, or evaluate with \
             /ofrep/v1/evaluate/flags",
        ));
    }
    let payload =
        payload(&state, &caller.env_id).ok_or_else(|| SdkError::from(keys::KeyError::NotReady))?;
    let matches = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/").as_bytes() == payload.etag.as_bytes())
        });
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(&headers) {
        let mut r = payload.gzip.clone().into_response();
        r.headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        payload.json.clone().into_response()
    };
    let h = response.headers_mut();
    if !matches {
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    h.insert(ETAG, payload.etag.clone());
    h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

//! The OpenFeature Remote Evaluation Protocol (OFREP 0.3), as the real providers need it:
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}`: one flag for a context — 200 with `value`,
//!   `variant` and a standard reason, or 400/404 with `key`, `errorCode` and `errorDetails`;
//! - `POST /ofrep/v1/evaluate/flags`: every flag for a context, with an `ETag` computed from the
//!   *answer* (so a new context with the same targeting key is never a false 304) and 304 for
//!   a matching `If-None-Match`; it advertises the change notifications below in
//!   `eventStreams`;
//! - `GET /ofrep/v1/events?token=…`: SSE `refetchEvaluation` notifications — one at once (so a
//!   reconnecting provider re-fetches what it missed), then one per change of the environment;
//!   the stream follows every stream's rules ([`crate::cursor`]): keep-alives, its key checked
//!   at every change and tick, a maximum age, and an end at once when the server stops.
//!   Browsers' `EventSource` cannot send headers, so the URL carries a token: an HMAC, under
//!   the SDK key's hash, of the key's id and an expiry. Any edge can check it; it reveals
//!   nothing; it stops working when the key is revoked.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use checkgate_core::evaluate;
use checkgate_protocol::ofrep::{
    EventStream, EventStreamEndpoint, EventStreamLocation, OfrepFailure, RefetchEvaluation,
};
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};

use super::cursor::{Ahead, Cursor};
use super::eval::{environment, json_response, path_key};
use super::events::EnvEvents;
use super::keys;
use super::stream::{self, Feed, Follower, Start};
use super::{HeadersAndBody, OfrepBody, SdkError, SdkState, checked_body, min_version, parse_body};
use crate::served::Served;

/// How long an advertised event-stream URL works.
pub const EVENTS_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a hidden page may stay disconnected from the events (the providers' default).
const INACTIVITY_DELAY_SEC: u32 = 120;

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn ofrep(e: SdkError, key: Option<&str>) -> SdkError {
    e.ofrep(key)
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub async fn one(
    State(state): State<SdkState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    HeadersAndBody { headers, body }: HeadersAndBody,
) -> Result<Response, SdkError> {
    let served = &state.served;
    let caller = keys::authenticate(served, &headers, query.as_deref())
        .map_err(|e| ofrep(e.into(), None))?;
    let min = min_version::requested(&headers).map_err(|e| ofrep(e, None))?;
    let key = path_key(path).map_err(|e| ofrep(e, None))?;
    let body = checked_body(&headers, body).map_err(|e| ofrep(e, Some(&key)))?;
    let request: OfrepBody<'_> = parse_body(&body).map_err(|e| ofrep(e, Some(&key)))?;
    let ctx = request.context.unwrap_or_default();
    min_version::replica_at(served, &caller.env_id, min, state.min_version_wait)
        .await
        .map_err(|e| ofrep(e, Some(&key)))?;
    let env = environment(served, &caller).map_err(|e| ofrep(e, Some(&key)))?;
    let failure = |code: checkgate_core::ErrorCode| {
        let failure = OfrepFailure::new(key.as_str(), code.into());
        let status =
            StatusCode::from_u16(failure.error_code.status()).unwrap_or(StatusCode::BAD_REQUEST);
        (status, axum::Json(failure)).into_response()
    };
    let flag = match env.flag_for_eval(&key) {
        Ok(flag) => flag,
        Err(code) => return Ok(failure(code)),
    };
    let evaluation = evaluate(&flag, &ctx, env.as_ref());
    if let Some(code) = evaluation.error {
        return Ok(failure(code));
    }
    state.count(&caller.env_id, &key, &evaluation);
    let mut out = Vec::with_capacity(128 + key.len() + evaluation.value_json.len());
    super::answer::ofrep(&mut out, &key, &evaluation);
    Ok(json_response(out))
}

/// The query parameters a change-triggered bulk request carries; accepted, not needed.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkQuery {
    #[serde(default)]
    flag_config_etag: Option<String>,
    #[serde(default)]
    flag_config_last_modified: Option<String>,
}

/// `POST /ofrep/v1/evaluate/flags`.
pub async fn bulk(
    State(state): State<SdkState>,
    RawQuery(query): RawQuery,
    params: Result<Query<BulkQuery>, axum::extract::rejection::QueryRejection>,
    HeadersAndBody { headers, body }: HeadersAndBody,
) -> Result<Response, SdkError> {
    let served = &state.served;
    let caller = keys::authenticate(served, &headers, query.as_deref())
        .map_err(|e| ofrep(e.into(), None))?;
    let min = min_version::requested(&headers).map_err(|e| ofrep(e, None))?;
    let _ = params
        .map(|Query(q)| (q.flag_config_etag, q.flag_config_last_modified))
        .map_err(|e| ofrep(SdkError::bad_request(e.body_text()), None))?;
    let body = checked_body(&headers, body).map_err(|e| ofrep(e, None))?;
    let request: OfrepBody<'_> = parse_body(&body).map_err(|e| ofrep(e, None))?;
    let ctx = request.context.unwrap_or_default();
    min_version::replica_at(served, &caller.env_id, min, state.min_version_wait)
        .await
        .map_err(|e| ofrep(e, None))?;
    let env = environment(served, &caller).map_err(|e| ofrep(e, None))?;
    let position = served.replica.version(&caller.env_id).unwrap_or_default();
    let list = state.lists.get(&caller.env_id, position, &env);
    let mut flags_json = Vec::with_capacity(4096);
    flags_json.push(b'[');
    state.insights.counter.tally(&caller.env_id, |tally| {
        for (i, flag) in list.iter().enumerate() {
            if i > 0 {
                flags_json.push(b',');
            }
            let evaluation = evaluate(flag, &ctx, env.as_ref());
            tally.evaluated(flag.key(), &evaluation);
            super::answer::ofrep(&mut flags_json, flag.key(), &evaluation);
        }
    });
    flags_json.push(b']');
    // The ETag covers the evaluated answer, so it changes with the context as well as with
    // the flags.
    let etag = format!("\"{}\"", hex(&Sha256::digest(&flags_json)[..16]));
    let not_modified = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    let etag_value =
        HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    if not_modified {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(ETAG, etag_value);
        expose_etag(response.headers_mut());
        return Ok(response);
    }
    let token = events_token(served, &caller.env_id, &caller.id);
    let streams: Vec<EventStream> = token
        .map(|token| EventStream {
            kind: "sse".into(),
            location: EventStreamLocation::Endpoint(EventStreamEndpoint {
                origin: None,
                request_uri: format!("/ofrep/v1/events?token={token}"),
            }),
            inactivity_delay_sec: Some(INACTIVITY_DELAY_SEC),
        })
        .into_iter()
        .collect();
    let mut body = Vec::with_capacity(flags_json.len() + 256);
    body.extend_from_slice(b"{\"flags\":");
    body.extend_from_slice(&flags_json);
    if !streams.is_empty() {
        body.extend_from_slice(b",\"eventStreams\":");
        let _ = serde_json::to_writer(&mut body, &streams);
    }
    body.push(b'}');
    let mut response = super::eval::json_response(body);
    response.headers_mut().insert(ETAG, etag_value);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    expose_etag(response.headers_mut());
    Ok(response)
}

fn expose_etag(headers: &mut HeaderMap) {
    // The CORS layer sets it for every SDK route; here for callers of this module alone.
    headers.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("ETag, Retry-After"),
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(key_hash: &[u8; 32], env: &str, id: &str, expires: u64) -> String {
    // HMAC accepts keys of every length; `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key_hash)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(format!("ofrep-events\n{env}\n{id}\n{expires}").as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// A token for the events of `env` for the key `id`: `{env}.{id}.{expires}.{mac}`.
fn events_token(served: &Served, env: &str, id: &str) -> Option<String> {
    let key_hash = served.replica.key_hash(env, id)?;
    let expires = now_s() + EVENTS_TOKEN_TTL.as_secs();
    Some(format!(
        "{env}.{id}.{expires}.{}",
        mac(&key_hash, env, id, expires)
    ))
}

/// The environment and key of a valid, unexpired token whose key still stands.
fn check_token(served: &Served, token: &str) -> Option<(String, [u8; 32])> {
    let mut parts = token.split('.');
    let (env, id, expires, given) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let expires: u64 = expires.parse().ok()?;
    if expires < now_s() {
        return None;
    }
    let key_hash = served.replica.key_hash(env, id)?;
    let want = mac(&key_hash, env, id, expires);
    // Equal lengths (hex of SHA-256); compare without an early exit.
    let same = want.len() == given.len()
        && want
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    same.then(|| (env.to_owned(), key_hash))
}

#[derive(Debug, serde::Deserialize)]
pub struct EventsQuery {
    token: Option<String>,
}

/// `GET /ofrep/v1/events?token=…`.
pub async fn events(
    State(state): State<SdkState>,
    params: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, SdkError> {
    let token = params.ok().and_then(|Query(q)| q.token);
    let Some((env, key_hash)) = token.as_deref().and_then(|t| check_token(&state.served, t)) else {
        return Err(SdkError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the events token is missing, expired or revoked: fetch the bulk evaluation again",
        )
        .ofrep(None));
    };
    let events = state.hub.env(&env);
    let wake = events.subscribe();
    let (generation, epoch, version) = events.position();
    let mut first = b"retry: 2000\n\n".to_vec();
    first.extend_from_slice(&notice(epoch, version));
    // Notices carry no rules: a client key's stream goes on whatever the settings say.
    let cursor = Cursor::new(
        key_hash,
        false,
        (generation, version),
        stream::clock() + stream::max_age(),
    );
    let follower = Follower::new(
        &state,
        Notices,
        Start {
            env_id: env,
            events,
            wake,
            cursor,
            first: [Bytes::from(first)].into(),
        },
        None,
    );
    Ok(follower.into_response())
}

/// A `refetchEvaluation` notification for the environment at `version`.
fn notice(epoch: u64, version: u64) -> Vec<u8> {
    let data = serde_json::to_string(&RefetchEvaluation {
        etag: format!("\"{epoch}.{version}\""),
        last_modified: now_s(),
    })
    .unwrap_or_default();
    format!("id: {epoch}.{version}\nevent: message\ndata: {data}\n\n").into_bytes()
}

/// The feed of `/ofrep/v1/events`: a notice at once (sent first), then one per change of the
/// environment (changes arriving together coalesce into one); a new generation is a change
/// like any other, and the stream ends when the environment goes. Its other rules —
/// keep-alives, the key checked at every change and tick, the maximum age, the end on
/// shutdown — are every stream's ([`crate::cursor`]).
#[derive(Debug, Clone, Copy)]
struct Notices;

impl Feed for Notices {
    type Chunk = [Bytes; 1];
    const ROUTE: &'static str = "/ofrep/v1/events";

    fn ahead(&self, events: &EnvEvents, generation: u64, sent: u64) -> Ahead<[Bytes; 1]> {
        if events.gone() {
            return Ahead::Gone;
        }
        let (now_generation, epoch, version) = events.position();
        if (now_generation, version) == (generation, sent) {
            return Ahead::Nothing;
        }
        Ahead::Moved {
            generation: now_generation,
            version,
            chunk: Some([Bytes::from(notice(epoch, version))]),
        }
    }
}

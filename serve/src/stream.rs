//! `GET /stream`: Checkgate's SSE stream, byte-compatible with its SDKs — `connected`, one
//! `update` per flag (the bootstrap), then live `update`s, and a keep-alive comment every 15 s.
//!
//! Additions that Checkgate's SDKs ignore: every event carries `id: {epoch}.{version}`; a
//! `ready` event ends the bootstrap; `retry:` tells clients how long to wait before
//! reconnecting; `Last-Event-ID` resumes from the recent events without a new bootstrap (and
//! without `connected`, which would make the SDK wipe its store); a stream ends after a maximum
//! age with jitter, so clients spread over edges that started later.
//!
//! A stream subscribes to its environment's events before it takes the bootstrap, so no change
//! falls between the two. It holds no queue of its own: events are shared by every stream of
//! the environment, and a client that does not read falls behind them and is cut off (it will
//! reconnect and bootstrap again) instead of growing memory. A key revoked while its stream is
//! open ends the stream at once: a revocation moves the environment's version, and every
//! change is when keys are checked (with a backstop check every `KEY_CHECK`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::events::{EnvEvents, Since, parse_event_id};
use super::keys::{self, hash, key_from};
use super::{SdkError, SdkState};
use crate::served::Served;

/// A comment that keeps proxies and load balancers from closing an idle stream.
pub const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);
/// How long a stream lives at most, before jitter.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// How often an open stream checks that its key still stands, besides at every change of its
/// environment (which is how a revocation or a settings change arrives): a backstop, not the
/// way a revocation is noticed, so ten thousand streams do not wake every second for it.
const KEY_CHECK: Duration = Duration::from_secs(30);

const CONNECTED: &[u8] = b"retry: 2000\n\nevent: connected\ndata: true\n\n";
pub(super) const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// A stream's age limit: [`MAX_AGE`] minus up to a tenth, at random.
pub(super) fn max_age() -> Duration {
    let jitter =
        u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * (MAX_AGE.as_millis() as u64 / 10) / 255;
    MAX_AGE - Duration::from_millis(jitter)
}

/// Whether this environment lets client (browser) keys read flag rules — Checkgate's browser
/// SDK needs them; off unless the environment's settings say `client_keys_read_rules: true`.
pub fn client_keys_read_rules(served: &Served, env: &str) -> bool {
    served.replica.client_keys_read_rules(env)
}

/// A stream that was let in: who it is for and what it sends first.
pub struct Opened {
    pub env_id: String,
    /// A client key's stream, allowed only while its environment lets client keys read rules.
    pub client: bool,
    pub key_hash: [u8; 32],
    pub events: Arc<EnvEvents>,
    /// Woken by every new version of the environment; subscribed before the bootstrap was
    /// taken, so no change falls between the two.
    pub wake: tokio::sync::watch::Receiver<(u64, u64)>,
    /// The environment's generation and the version the first chunks bring the client to.
    pub generation: u64,
    pub sent: u64,
    /// What is sent first: the bootstrap (or what a resuming client missed). The bootstrap's
    /// events are the environment's shared bytes, never copied per stream (10,000 flags are
    /// megabytes).
    pub first: VecDeque<Bytes>,
}

/// Lets a stream in, or says why not: the key, its right to read rules, and where it starts
/// (`Last-Event-ID`). Shared by the router's handler and the HTTP/1 fast path
/// ([`super::fanout`]), so both refuse and bootstrap alike.
pub fn open(
    state: &SdkState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Opened, SdkError> {
    let served = &state.served;
    let caller = keys::authenticate(served, headers, query)?;
    if !keys::reads_rules(caller.kind) && !client_keys_read_rules(served, &caller.env_id) {
        return Err(SdkError::forbidden(
            "a client key cannot read flag rules: evaluate with /ofrep/v1/evaluate/flags or \
             /api/v1/evaluate, or allow rules for client keys in the environment's settings",
        ));
    }
    let key_hash = key_from(headers, query).map(hash).unwrap_or_default();
    let events = state.hub.env(&caller.env_id);
    let wake = events.subscribe();
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_event_id);
    let (generation, epoch, _) = events.position();
    let replay =
        resume
            .filter(|(e, _)| *e == epoch)
            .and_then(|(_, v)| match events.since(generation, v) {
                Since::Nothing => Some((None, v)),
                Since::Events { version, events } => {
                    Some((Some(Bytes::from(events.concat())), version))
                }
                Since::End => None,
            });
    let mut first = VecDeque::with_capacity(3);
    let (generation, sent) = match replay {
        // Resuming: what it missed, without `connected` (which makes SDKs wipe their store).
        Some((missed, version)) => {
            first.extend(missed.filter(|m| !m.is_empty()));
            (generation, version)
        }
        None => {
            let bootstrap = events.bootstrap(&caller.env_id, &served.replica);
            first.push_back(Bytes::from_static(CONNECTED));
            if !bootstrap.events.is_empty() {
                first.push_back(bootstrap.events);
            }
            first.push_back(Bytes::from(format!(
                "id: {}\nevent: ready\ndata: {{\"version\":{}}}\n\n",
                super::events::event_id(bootstrap.epoch, bootstrap.version),
                bootstrap.version
            )));
            (bootstrap.generation, bootstrap.version)
        }
    };
    Ok(Opened {
        env_id: caller.env_id.clone(),
        client: !keys::reads_rules(caller.kind),
        key_hash,
        events,
        wake,
        generation,
        sent,
        first,
    })
}

/// Why a stream ends when its environment was replaced, or it fell further behind than the
/// recent events reach: its client reconnects and bootstraps.
pub(super) const BEHIND: &str = "environment restarted or client too far behind";

/// Why a stream of this key may not go on, if it may not: its key was revoked, or its client
/// key may no longer read rules.
pub fn refused(
    served: &Served,
    env_id: &str,
    key_hash: &[u8; 32],
    client: bool,
) -> Option<&'static str> {
    refusal(
        served,
        key_hash,
        client && !client_keys_read_rules(served, env_id),
    )
}

/// [`refused`], with whether rules were withdrawn from this client key already known (a
/// fan-out reads the settings once for all its streams).
pub(super) fn refusal(
    served: &Served,
    key_hash: &[u8; 32],
    rules_withdrawn: bool,
) -> Option<&'static str> {
    if !served.replica.has_key(key_hash) {
        Some("key revoked")
    } else if rules_withdrawn {
        Some("rules no longer allowed for client keys")
    } else {
        None
    }
}

/// `GET /stream`, as the router serves it. A server started by [`checkgate_ops::serve`] takes
/// HTTP/1 streams off the router before they reach it ([`super::fanout`]); this serves the
/// rest, and every router embedded elsewhere.
pub async fn stream(
    State(state): State<SdkState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, SdkError> {
    let opened = open(&state, &headers, query.as_deref())?;
    let follower = Follower {
        served: Arc::clone(&state.served),
        env_id: opened.env_id,
        client: opened.client,
        events: opened.events,
        wake: opened.wake,
        generation: opened.generation,
        sent: opened.sent,
        key_hash: opened.key_hash,
        deadline: Box::pin(tokio::time::sleep(max_age())),
        keep_alive: tokio::time::interval_at(
            tokio::time::Instant::now() + KEEP_ALIVE_EVERY,
            KEEP_ALIVE_EVERY,
        ),
        key_check: tokio::time::interval(KEY_CHECK),
        stopping: state.fanout.stopping(),
        pending: opened.first,
        _open: Open::new(),
    };
    let body = Body::from_stream(futures_util::stream::unfold(follower, |mut f| async move {
        f.next()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), f))
    }));
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// Counts open streams for as long as it lives.
pub(super) struct Open;

impl Open {
    pub(super) fn new() -> Self {
        metrics::gauge!("checkgate_sse_streams").increment(1.0);
        Self
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!("checkgate_sse_streams").decrement(1.0);
    }
}

/// One stream's state. It is polled only when the connection can take the next chunk, so a
/// client that does not read holds no queue: it falls behind the shared recent events, and is
/// cut off when the versions it needs are no longer kept.
struct Follower {
    served: Arc<Served>,
    env_id: String,
    /// A client key's stream, allowed only while its environment lets client keys read rules.
    client: bool,
    events: Arc<EnvEvents>,
    wake: tokio::sync::watch::Receiver<(u64, u64)>,
    generation: u64,
    sent: u64,
    key_hash: [u8; 32],
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    keep_alive: tokio::time::Interval,
    key_check: tokio::time::Interval,
    /// Set when the server stops: the stream ends, so its client reconnects elsewhere.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// Chunks not yet sent: the bootstrap (or what a resuming client missed) first, then
    /// events read from the log.
    pending: VecDeque<Bytes>,
    _open: Open,
}

impl Follower {
    fn refused(&self) -> Option<&'static str> {
        refused(&self.served, &self.env_id, &self.key_hash, self.client)
    }

    /// The next chunk, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some(chunk);
            }
            // A stream opened after the server began to stop sees no change of this switch.
            if *self.stopping.borrow() {
                metrics::counter!("checkgate_sse_streams_ended_total", "reason" => "shutdown")
                    .increment(1);
                return None;
            }
            let reason = tokio::select! {
                changed = self.wake.changed() => {
                    if changed.is_err() {
                        "shutdown"
                    } else if let Some(refused) = self.refused() {
                        // A revoked key or a withdrawn setting moves the environment's version
                        // like any change, so it is seen here at once.
                        refused
                    } else {
                        match self.events.since(self.generation, self.sent) {
                            Since::Nothing => continue,
                            Since::End => BEHIND,
                            Since::Events { version, events } => {
                                self.sent = version;
                                self.pending.extend(events.into_iter().filter(|e| !e.is_empty()));
                                continue;
                            }
                        }
                    }
                }
                _ = self.keep_alive.tick() => return Some(Bytes::from_static(KEEP_ALIVE)),
                _ = self.key_check.tick() => match self.refused() {
                    Some(refused) => refused,
                    None => continue,
                },
                () = &mut self.deadline => "maximum age",
                _ = self.stopping.changed() => "shutdown",
            };
            metrics::counter!("checkgate_sse_streams_ended_total", "reason" => reason).increment(1);
            return None;
        }
    }
}

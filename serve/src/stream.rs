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
//! change is when keys are checked (with a backstop check at every keep-alive tick).
//!
//! Those rules are [`crate::cursor`]'s; this module is their router driver, a [`Follower`] per
//! stream, which serves `/stream` here and OFREP's change notifications ([`crate::ofrep`]) with
//! another [`Feed`].
//!
//! With `X-Checkgate-Min-Version` the first payload (the bootstrap, or what a resuming client
//! missed) brings the client to that version or a later one ([`crate::min_version`]): the
//! stream waits for the environment's events to reach it, or is refused with a 503. The
//! socket path ([`super::fanout`]) takes such a stream only when its version is already there
//! and leaves the rest to the router, which can wait.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::cursor::{Ahead, Cursor, EndReason, Env, Step};
use super::events::{EnvEvents, Since, parse_event_id};
use super::keys::{self, hash, key_from};
use super::{SdkError, SdkState, min_version};
use crate::replica::KeyEntry;
use crate::served::Served;

pub use super::cursor::{KEEP_ALIVE_EVERY, MAX_AGE};

const CONNECTED: &[u8] = b"retry: 2000\n\nevent: connected\ndata: true\n\n";
pub(super) const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// A stream's age limit: [`MAX_AGE`] minus up to a tenth, at random.
pub(super) fn max_age() -> std::time::Duration {
    super::cursor::max_age(uuid::Uuid::new_v4().as_bytes()[0])
}

/// Whether this environment lets client (browser) keys read flag rules — Checkgate's browser
/// SDK needs them; off unless the environment's settings say `client_keys_read_rules: true`.
pub fn client_keys_read_rules(served: &Served, env: &str) -> bool {
    served.replica.client_keys_read_rules(env)
}

/// A stream that was let in: who it is for and what it sends first.
pub struct Opened {
    pub env_id: String,
    /// The SDK key's id, for the connected-SDK counts.
    pub key_id: String,
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
    let caller = admit(state, headers, query)?;
    Ok(start(state, &caller, headers, query))
}

/// Who may open a stream: a key that stands and may read rules.
fn admit(
    state: &SdkState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Arc<KeyEntry>, SdkError> {
    let served = &state.served;
    let caller = keys::authenticate(served, headers, query)?;
    if !keys::reads_rules(caller.kind) && !client_keys_read_rules(served, &caller.env_id) {
        return Err(SdkError::forbidden(
            "a client key cannot read flag rules: evaluate with /ofrep/v1/evaluate/flags or \
             /api/v1/evaluate, or allow rules for client keys in the environment's settings",
        ));
    }
    Ok(caller)
}

/// Where an admitted stream starts and what it sends first.
fn start(state: &SdkState, caller: &KeyEntry, headers: &HeaderMap, query: Option<&str>) -> Opened {
    let served = &state.served;
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
    Opened {
        env_id: caller.env_id.clone(),
        key_id: caller.id.clone(),
        client: !keys::reads_rules(caller.kind),
        key_hash,
        events,
        wake,
        generation,
        sent,
        first,
    }
}

impl Opened {
    /// The stream's cursor, which ends at `deadline`.
    pub fn cursor(&self, deadline: Instant) -> Cursor {
        Cursor::new(
            self.key_hash,
            self.client,
            (self.generation, self.sent),
            deadline,
        )
    }
}

/// What a router stream carries.
pub(crate) trait Feed: Send + Sync + 'static {
    /// What one step sends.
    type Chunk: IntoIterator<Item = Bytes>;
    /// The route, for `checkgate_stream_ends_total`.
    const ROUTE: &'static str;
    /// What `events` holds after `(generation, sent)`, for this feed.
    fn ahead(&self, events: &EnvEvents, generation: u64, sent: u64) -> Ahead<Self::Chunk>;
}

/// `/stream`'s feed: the environment's shared events, as they are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Updates;

impl Feed for Updates {
    type Chunk = Vec<Bytes>;
    const ROUTE: &'static str = "/stream";

    fn ahead(&self, events: &EnvEvents, generation: u64, sent: u64) -> Ahead<Vec<Bytes>> {
        match events.since(generation, sent) {
            Since::Nothing => Ahead::Nothing,
            // Versions with nothing to send (another key, a setting) move the stream on
            // without a chunk: an empty HTTP/1 chunk would end the response.
            Since::Events { version, events } => Ahead::Moved {
                generation,
                version,
                chunk: (!events.is_empty()).then_some(events),
            },
            Since::End if events.gone() => Ahead::Gone,
            Since::End => Ahead::Lost,
        }
    }
}

/// What a stream of `env_id` asks about its environment, looked up when asked.
pub(crate) struct Looking<'a, F> {
    pub(crate) served: &'a Served,
    pub(crate) env_id: &'a str,
    pub(crate) events: &'a EnvEvents,
    pub(crate) feed: &'a F,
}

impl<F: Feed> Env for Looking<'_, F> {
    type Chunk = F::Chunk;

    fn key_stands(&mut self, key_hash: &[u8; 32]) -> bool {
        self.served.replica.has_key(key_hash)
    }

    fn client_keys_read_rules(&mut self) -> bool {
        client_keys_read_rules(self.served, self.env_id)
    }

    fn ahead(&mut self, generation: u64, sent: u64) -> Ahead<F::Chunk> {
        self.feed.ahead(self.events, generation, sent)
    }
}

/// Counts a stream's end in `checkgate_stream_ends_total`.
pub(crate) fn count_end(route: &'static str, reason: EndReason) {
    metrics::counter!(
        "checkgate_stream_ends_total",
        "route" => route,
        "reason" => reason.as_label()
    )
    .increment(1);
}

/// `GET /stream`, as the router serves it. A server started by [`checkgate_ops::serve`] takes
/// HTTP/1 streams off the router before they reach it ([`super::fanout`]); this serves the
/// rest, and every router embedded elsewhere.
pub async fn stream(
    State(state): State<SdkState>,
    RawQuery(query): RawQuery,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
) -> Result<Response, SdkError> {
    let caller = admit(&state, &headers, query.as_deref())?;
    let min = min_version::requested(&headers)?;
    if let Some(min) = min {
        let events = state.hub.env(&caller.env_id);
        min_version::events_at(&events, min, state.min_version_wait).await?;
    }
    let opened = start(&state, &caller, &headers, query.as_deref());
    // The environment replaced by an older snapshot meanwhile: not what was asked for.
    if let Some(min) = min.filter(|min| opened.sent < *min) {
        return Err(min_version::not_reached(min));
    }
    let cursor = opened.cursor(clock() + max_age());
    let peer = extensions
        .get::<axum::extract::ConnectInfo<checkgate_ops::Peer>>()
        .map(|info| info.0.0.ip());
    let open = Open::new(&state, &opened, peer);
    let follower = Follower::new(
        &state,
        Updates,
        Start {
            env_id: opened.env_id,
            events: opened.events,
            wake: opened.wake,
            cursor,
            first: opened.first,
        },
        Some(open),
    );
    Ok(follower.into_response())
}

/// The time as the runtime's timers see it (paused in tests that pause it).
pub(crate) fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Counts an open stream for as long as it lives: in the gauge, and by environment and key
/// for the connected-SDK reports (with the client's address when those are reported).
pub(super) struct Open(
    #[allow(dead_code, reason = "a guard")] crate::insights::connections::Tracked,
);

impl Open {
    pub(super) fn new(state: &SdkState, opened: &Opened, peer: Option<std::net::IpAddr>) -> Self {
        metrics::gauge!("checkgate_sse_streams").increment(1.0);
        Self(
            state
                .insights
                .connections
                .open(&opened.env_id, &opened.key_id, peer),
        )
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!("checkgate_sse_streams").decrement(1.0);
    }
}

/// Where a router stream starts.
pub(crate) struct Start {
    pub(crate) env_id: String,
    pub(crate) events: Arc<EnvEvents>,
    /// Woken by every new version of the environment; subscribed before `first` was taken.
    pub(crate) wake: tokio::sync::watch::Receiver<(u64, u64)>,
    pub(crate) cursor: Cursor,
    /// What is sent before anything else.
    pub(crate) first: VecDeque<Bytes>,
}

/// One router stream: drives its [`Cursor`] with its environment's changes, the keep-alive
/// tick, its deadline and the server's stop. It is polled only when the connection can take
/// the next chunk, so a client that does not read holds no queue: it falls behind the shared
/// recent events, and is cut off when the versions it needs are no longer kept.
pub(crate) struct Follower<F: Feed> {
    feed: F,
    served: Arc<Served>,
    env_id: String,
    events: Arc<EnvEvents>,
    wake: tokio::sync::watch::Receiver<(u64, u64)>,
    cursor: Cursor,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    keep_alive: tokio::time::Interval,
    /// Set when the server stops: the stream ends, so its client reconnects elsewhere.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// Chunks not yet sent: what is sent first, then what the cursor gave.
    pending: VecDeque<Bytes>,
    _open: Option<Open>,
}

impl<F: Feed> Follower<F> {
    pub(crate) fn new(state: &SdkState, feed: F, start: Start, open: Option<Open>) -> Self {
        let deadline = tokio::time::Instant::from_std(start.cursor.deadline());
        Self {
            feed,
            served: Arc::clone(&state.served),
            env_id: start.env_id,
            events: start.events,
            wake: start.wake,
            cursor: start.cursor,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            keep_alive: tokio::time::interval_at(
                tokio::time::Instant::now() + KEEP_ALIVE_EVERY,
                KEEP_ALIVE_EVERY,
            ),
            stopping: state.fanout.stopping(),
            pending: start.first,
            _open: open,
        }
    }

    /// The stream as an SSE response.
    pub(crate) fn into_response(self) -> Response {
        let body = Body::from_stream(futures_util::stream::unfold(self, |mut f| async move {
            f.next()
                .await
                .map(|chunk| (Ok::<_, std::io::Error>(chunk), f))
        }));
        let mut response = body.into_response();
        let h = response.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        response
    }

    /// The next chunk, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some(chunk);
            }
            if self.cursor.ended().is_some() {
                return None;
            }
            let mut env = Looking {
                served: &self.served,
                env_id: &self.env_id,
                events: &self.events,
                feed: &self.feed,
            };
            // A stream opened after the server began to stop sees no change of this switch.
            let step = if *self.stopping.borrow() {
                Step::End(self.cursor.on_stop())
            } else {
                tokio::select! {
                    changed = self.wake.changed() => match changed {
                        Ok(()) => self.cursor.on_change(&mut env),
                        // Never while the stream holds its events; counted as a stop.
                        Err(_) => Step::End(self.cursor.on_stop()),
                    },
                    _ = self.keep_alive.tick() => self.cursor.on_tick(clock(), &mut env),
                    () = &mut self.deadline => self.cursor.on_tick(clock(), &mut env),
                    _ = self.stopping.changed() => Step::End(self.cursor.on_stop()),
                }
            };
            match step {
                Step::Send(chunk) => self
                    .pending
                    .extend(chunk.into_iter().filter(|c| !c.is_empty())),
                Step::KeepAlive => return Some(Bytes::from_static(KEEP_ALIVE)),
                Step::Idle => {}
                Step::End(reason) => {
                    count_end(F::ROUTE, reason);
                    return None;
                }
            }
        }
    }
}

/// A stream dropped before it ended was left by its client.
impl<F: Feed> Drop for Follower<F> {
    fn drop(&mut self) {
        if self.cursor.ended().is_none() {
            count_end(F::ROUTE, self.cursor.end(EndReason::ClientGone));
        }
    }
}

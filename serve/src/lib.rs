//! SDK serving: the routes SDKs and thin clients call, answered from the replica in memory
//! ([`replica`]) — by every edge, and by the control plane in-process on a one-node install.
//! Both give it the same small interface ([`served`]): the replica, and who vouches for it.
//!
//! - `GET /stream`: Checkgate's SSE stream ([`stream`]; over HTTP/1, served off the router on
//!   its socket through the public listener's takeover: [`fanout`]), whose rules — and those
//!   of OFREP's notifications — are written once, without I/O, in [`cursor`];
//! - `POST /api/v1/evaluate`, `POST /api/v1/evaluate/{key}`: our evaluation API ([`eval`]);
//! - `POST /ofrep/v1/evaluate/flags[/{key}]`, `GET /ofrep/v1/events`: OFREP ([`ofrep`]);
//! - `GET /api/v1/flags`: the rule payload for local-evaluation SDKs, server keys only
//!   ([`rules`]);
//! - `POST /api/environments/{env}/impressions`, `POST /api/v1/impressions`: impressions,
//!   queued and sent upstream in batches ([`insights`]), which also counts this server's own
//!   evaluations.
//!
//! Evaluation (ours and OFREP's) and the stream's bootstrap read a client's own writes when
//! asked to: with `X-Checkgate-Min-Version` they wait for the replica to reach that version
//! ([`min_version`]).
//!
//! Every refusal has the shape its client expects: OFREP bodies on OFREP routes, ours
//! elsewhere; never a 5xx for what a client sent.

pub mod answer;
pub mod cursor;
pub mod eval;
pub mod events;
pub mod fanout;
pub mod insights;
pub mod keys;
pub mod min_version;
pub mod ofrep;
pub mod replica;
pub mod rules;
pub mod served;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use checkgate_ops::listener::{self, BoxFuture, Takeover};
use checkgate_protocol::json::ErrorBody;
use serde::de::DeserializeOwned;

use events::EventHub;
use keys::{KeyError, RETRY_AFTER_SECONDS};
use served::Served;

/// What the SDK routes share: one `Arc`, so the clone each request makes of the router's
/// state is one reference count, not one per part (on every core, for every request).
#[derive(Debug, Clone)]
pub struct SdkState(Arc<SdkShared>);

/// The parts of [`SdkState`].
#[derive(Debug)]
pub struct SdkShared {
    pub served: Arc<Served>,
    /// Each environment's SSE events, serialized once.
    pub hub: Arc<EventHub>,
    /// Each environment's rule payload at its current version.
    pub rules: Arc<dashmap::DashMap<String, Arc<rules::Payload>>>,
    /// Each environment's live flags, sorted, at its current version.
    pub lists: Arc<answer::FlagLists>,
    /// The streams served on their sockets ([`fanout`]).
    pub fanout: fanout::Fanout,
    /// How long an answer asked for a version this replica has not applied yet waits for it
    /// ([`min_version`]).
    pub min_version_wait: Duration,
    /// Impressions waiting to go upstream, and this server's evaluation counters
    /// ([`insights`]); the caller runs [`insights::flush::run`] with its upstream.
    pub insights: Arc<insights::Insights>,
}

/// The SDK routes' settings, shared by both binaries (each flattens them into its
/// configuration, so `--help` shows them and a bad value stops start-up).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Milliseconds an SDK request that sends `X-Checkgate-Min-Version` waits for this server
    /// to apply that version of its environment; past it, the answer is 503 with
    /// Retry-After: 1 (never older data).
    #[arg(long = "min-version-wait-ms", env = "MIN_VERSION_WAIT_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub min_version_wait_ms: u64,

    /// Most impressions held in memory on their way upstream; a report that finds the queue
    /// full has what does not fit dropped and counted (`checkgate_impressions_dropped_total`).
    #[arg(long = "impressions-queue", env = "IMPRESSIONS_QUEUE", default_value_t = DEFAULT_IMPRESSIONS_QUEUE,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub impressions_queue: u64,

    /// Count this server's own evaluations (our API and OFREP) per flag, variant and minute,
    /// and send the counts upstream every 10 s (the flags' evaluation insights).
    #[arg(long = "count-evaluations", env = "COUNT_EVALUATIONS", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub count_evaluations: bool,

    /// Report the IP address of each connected SDK stream to the control plane, beside the
    /// counts per environment and key (at most 100 per key). Off: only counts leave the server.
    #[arg(long = "report-client-addresses", env = "REPORT_CLIENT_ADDRESSES", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub report_client_addresses: bool,
}

/// `IMPRESSIONS_QUEUE`'s default: about 10 MiB of typical impressions.
pub const DEFAULT_IMPRESSIONS_QUEUE: u64 = 50_000;

impl Default for ServeArgs {
    fn default() -> Self {
        Self {
            min_version_wait_ms: min_version::DEFAULT_WAIT.as_millis() as u64,
            impressions_queue: DEFAULT_IMPRESSIONS_QUEUE,
            count_evaluations: true,
            report_client_addresses: false,
        }
    }
}

impl ServeArgs {
    /// `MIN_VERSION_WAIT_MS` as a duration.
    pub fn min_version_wait(&self) -> Duration {
        Duration::from_millis(self.min_version_wait_ms)
    }
}

impl SdkState {
    /// The state for `served` with `args`, and the task that keeps its events current (to be
    /// spawned and owned by the caller). Subscribes to the replica at once, so nothing applied
    /// after this call is missed.
    pub fn new(
        served: Arc<Served>,
        args: &ServeArgs,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        Self::with_insights(served, args, Arc::new(insights::Insights::from_args(args)))
    }

    /// [`SdkState::new`] with an [`insights::Insights`] made beforehand (an edge's `/status`
    /// reads it too).
    pub fn with_insights(
        served: Arc<Served>,
        args: &ServeArgs,
        insights: Arc<insights::Insights>,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        describe_metrics();
        let hub = EventHub::new(Arc::clone(&served.replica));
        let events = hub.subscribe();
        let run = Arc::clone(&hub).run(events);
        (
            Self(Arc::new(SdkShared {
                served,
                hub,
                rules: Arc::default(),
                lists: Arc::default(),
                fanout: fanout::Fanout::default(),
                min_version_wait: args.min_version_wait(),
                insights,
            })),
            run,
        )
    }
}

/// Describes the metrics recorded here, once per process.
fn describe_metrics() {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_counter!(
            "checkgate_stream_ends_total",
            "SSE streams ended (/stream and /ofrep/v1/events), by route and reason: revoked, \
             rules_withdrawn, max_age, behind, environment_gone, shutdown, client_gone"
        );
        metrics::describe_gauge!("checkgate_sse_streams", "open /stream streams");
    });
}

/// HTTP/1 `GET /stream` requests whose key stands are served on their sockets ([`fanout`]);
/// a refusal is left to the router, which answers it as everywhere, and so is a stream that
/// must wait for a minimum version ([`min_version`]).
impl Takeover for SdkState {
    fn path(&self) -> &'static str {
        "/stream"
    }

    fn take(&self, request: &listener::Request) -> Option<listener::Serve> {
        // A malformed minimum version, or one not reached yet, is the router's to answer: it
        // refuses the one and waits for the other.
        let min = min_version::requested(&request.headers).ok()?;
        let opened = stream::open(self, &request.headers, request.query.as_deref()).ok()?;
        if min.is_some_and(|min| opened.sent < min) {
            return None;
        }
        let state = self.clone();
        Some(Box::new(move |socket| {
            Box::pin(fanout::serve(state, socket, opened))
        }))
    }

    fn stop(&self) -> BoxFuture<'_> {
        Box::pin(self.fanout.stop())
    }
}

impl SdkShared {
    /// Counts an evaluation this server answered (not one in error) for the evaluation
    /// insights; allocation-free and uncontended ([`insights::counts`]). The bulk routes use
    /// [`insights::Counter::tally`], which finds the thread's counters once per request.
    #[inline]
    pub fn count(&self, env: &str, flag: &str, evaluation: &checkgate_core::Evaluation<'_>) {
        self.insights
            .counter
            .tally(env, |tally| tally.evaluated(flag, evaluation));
    }
}

impl std::ops::Deref for SdkState {
    type Target = SdkShared;

    fn deref(&self) -> &SdkShared {
        &self.0
    }
}

impl axum::extract::FromRef<SdkState> for Arc<Served> {
    fn from_ref(state: &SdkState) -> Self {
        Arc::clone(&state.served)
    }
}

/// Largest evaluation request body: the context and the list of flags.
pub const MAX_CONTEXT_BYTES: usize = 64 * 1024;

/// Which error shape a route's clients read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"error":{"code","message"}}`.
    Api,
    /// OFREP: `{"key"?, "errorCode"?, "errorDetails"}`.
    Ofrep,
}

/// A refused SDK request.
#[derive(Debug, Clone)]
pub struct SdkError {
    pub status: StatusCode,
    /// Our code (`unauthorized`, …); for OFREP the `errorCode`, when the status has one.
    pub code: &'static str,
    pub message: String,
    pub shape: Shape,
    /// The flag the OFREP single-flag answer is about.
    pub key: Option<String>,
    /// The seconds of `Retry-After` on a 503.
    pub retry_after: u64,
}

impl SdkError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            shape: Shape::Api,
            key: None,
            retry_after: RETRY_AFTER_SECONDS,
        }
    }

    /// The same error in OFREP's shape.
    pub fn ofrep(mut self, key: Option<&str>) -> Self {
        self.shape = Shape::Ofrep;
        self.key = key.map(str::to_owned);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl From<KeyError> for SdkError {
    fn from(e: KeyError) -> Self {
        let (status, code) = match e {
            KeyError::Missing | KeyError::Unknown => (StatusCode::UNAUTHORIZED, "unauthorized"),
            KeyError::NotReady => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        Self::new(status, code, e.message())
    }
}

/// OFREP's `errorCode` for a refusal of the whole request.
fn ofrep_code(code: &str) -> Option<&'static str> {
    match code {
        "invalid_context" | "bad_request" => Some("INVALID_CONTEXT"),
        "parse_error" => Some("PARSE_ERROR"),
        "targeting_key_missing" => Some("TARGETING_KEY_MISSING"),
        "flag_not_found" => Some("FLAG_NOT_FOUND"),
        "general" => Some("GENERAL"),
        _ => None,
    }
}

impl IntoResponse for SdkError {
    fn into_response(self) -> Response {
        let mut response = match self.shape {
            Shape::Api => (
                self.status,
                axum::Json(ErrorBody::new(self.code, self.message)),
            )
                .into_response(),
            Shape::Ofrep => {
                let mut body = serde_json::Map::new();
                if let Some(key) = self.key {
                    body.insert("key".into(), key.into());
                }
                // The providers read an OFREP error from 400 and 404; for 413 and 415 the
                // request itself is malformed, which OFREP calls a general error.
                let code = ofrep_code(self.code).or(match self.status.as_u16() {
                    400 | 404 | 413 | 415 => Some("GENERAL"),
                    _ => None,
                });
                if let Some(code) = code {
                    body.insert("errorCode".into(), code.into());
                }
                body.insert("errorDetails".into(), self.message.into());
                (self.status, axum::Json(serde_json::Value::Object(body))).into_response()
            }
        };
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(self.retry_after));
        }
        response
    }
}

/// The headers and body of an evaluation request, taken from it without copying the headers
/// (axum's `HeaderMap` extractor clones them). The body is read as the `Bytes` extractor reads
/// it, under the route's body limit; its rejection is kept for [`checked_body`] to answer.
pub struct HeadersAndBody {
    pub headers: HeaderMap,
    pub body: Result<Bytes, BytesRejection>,
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for HeadersAndBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let headers = std::mem::take(&mut parts.headers);
        let body =
            Bytes::from_request(axum::extract::Request::from_parts(parts, body), state).await;
        Ok(Self { headers, body })
    }
}

/// Parses a JSON request body: 415 unless it says `application/json`, 413 over
/// [`MAX_CONTEXT_BYTES`], 400 when it is not the expected JSON. An empty body counts as `{}`
/// (providers send none when there is no context).
pub fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, SdkError> {
    parse_body(&checked_body(headers, body)?)
}

/// A JSON request body, checked as [`json_body`] checks it, to be read by [`parse_body`]
/// (which may borrow from it).
pub fn checked_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, SdkError> {
    let body = body.map_err(|e| {
        let status = e.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "bad_request"
        };
        SdkError::new(status, code, e.body_text())
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::from_static(b"{}"));
    }
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json")
                || (v.starts_with("application/") && v.ends_with("+json"))
        });
    if !json {
        return Err(SdkError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ));
    }
    Ok(body)
}

/// Reads a checked body; 400 (`invalid_context`) when it is not the expected JSON, a context
/// of the wrong shape included.
pub fn parse_body<'b, T: serde::Deserialize<'b>>(body: &'b [u8]) -> Result<T, SdkError> {
    serde_json::from_slice(body).map_err(|e| {
        SdkError::new(
            StatusCode::BAD_REQUEST,
            "invalid_context",
            format!("the body is not valid: {e}"),
        )
    })
}

/// A request body of our evaluation routes: the context, read straight from the bytes (see
/// `Context`'s `Deserialize`), and for the bulk route an optional list of flags. A misspelt
/// field is refused rather than silently ignored.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalBody<'a> {
    /// Absent or `null`: an empty context.
    #[serde(borrow, default)]
    pub context: Option<checkgate_core::Context<'a>>,
    #[serde(default)]
    pub flags: Option<Vec<String>>,
}

/// A request body of the OFREP routes: the context only; other fields are ignored, as the
/// protocol lets clients send more.
#[derive(Debug, serde::Deserialize)]
pub struct OfrepBody<'a> {
    /// Absent or `null`: an empty context.
    #[serde(borrow, default)]
    pub context: Option<checkgate_core::Context<'a>>,
}

/// CORS for the SDK routes, which browsers call from other origins with client keys: any
/// origin may call them (the key is the credential; no cookie is read here), preflights are
/// answered, and `ETag` and `Retry-After` are readable. The management API has no CORS at all:
/// it stays same-origin. A service of its own, like [`checkgate_ops::metrics::Track`], so a
/// request pays no boxed future or service clone for it.
#[derive(Debug, Clone, Copy)]
struct Cors;

impl<S> tower::Layer<S> for Cors {
    type Service = CorsService<S>;

    fn layer(&self, inner: S) -> CorsService<S> {
        CorsService { inner }
    }
}

/// The service of [`Cors`].
#[derive(Debug, Clone)]
struct CorsService<S> {
    inner: S,
}

impl<S> tower::Service<axum::extract::Request> for CorsService<S>
where
    S: tower::Service<axum::extract::Request, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CorsFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        if request.method() == axum::http::Method::OPTIONS {
            CorsFuture::Preflight
        } else {
            CorsFuture::Answer(self.inner.call(request))
        }
    }
}

/// A preflight, answered at once, or the route's answer, to which the CORS headers are added.
enum CorsFuture<F> {
    Preflight,
    Answer(F),
}

impl<F, E> std::future::Future for CorsFuture<F>
where
    F: std::future::Future<Output = Result<Response, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        use axum::http::header::{
            ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
            ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
        };
        let answered = match &mut *self {
            Self::Preflight => {
                let mut r = StatusCode::NO_CONTENT.into_response();
                let h = r.headers_mut();
                h.insert(
                    ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, POST, OPTIONS"),
                );
                h.insert(
                    ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static(
                        "Authorization, Content-Type, X-API-Key, If-None-Match, Last-Event-ID, \
                         X-Checkgate-Min-Version",
                    ),
                );
                h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
                Ok(r)
            }
            Self::Answer(inner) => std::task::ready!(std::pin::Pin::new(inner).poll(cx)),
        };
        std::task::Poll::Ready(answered.map(|mut response| {
            let h = response.headers_mut();
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            h.insert(
                ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("ETag, Retry-After"),
            );
            response
        }))
    }
}

/// Answered by [`Cors`], which sees every OPTIONS request first; never reached.
async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// The SDK routes.
pub fn routes(state: SdkState) -> Router {
    let evaluation = Router::new()
        .route("/api/v1/evaluate", post(eval::all).options(preflight))
        .route("/api/v1/evaluate/{key}", post(eval::one).options(preflight))
        .route(
            "/ofrep/v1/evaluate/flags",
            post(ofrep::bulk).options(preflight),
        )
        .route(
            "/ofrep/v1/evaluate/flags/{key}",
            post(ofrep::one).options(preflight),
        )
        .layer(DefaultBodyLimit::max(MAX_CONTEXT_BYTES));
    // Each route names OPTIONS itself: a method-not-allowed fallback set on the whole router
    // later (the binaries set a JSON one) replaces the per-route fallback this layer wraps.
    let impressions = Router::new()
        .route(
            "/api/v1/impressions",
            post(insights::ingest::of_key).options(preflight),
        )
        .layer(DefaultBodyLimit::max(insights::ingest::BODY_LIMIT));
    Router::new()
        .merge(evaluation)
        .merge(impressions)
        .route("/stream", get(stream::stream).options(preflight))
        .route("/ofrep/v1/events", get(ofrep::events).options(preflight))
        .layer(Cors)
        .route("/api/v1/flags", get(rules::flags))
        .with_state(state)
}

/// Checkgate's `POST /api/environments/{env}/impressions`, for an edge: the control plane
/// serves that path itself, from its store.
pub fn edge_routes(state: SdkState) -> Router {
    Router::new()
        .route(
            "/api/environments/{env}/impressions",
            post(insights::ingest::environment).options(preflight),
        )
        .layer(DefaultBodyLimit::max(insights::ingest::BODY_LIMIT))
        .layer(Cors)
        .with_state(state)
}

//! Prometheus metrics: the process-wide recorder, a layer that counts requests by route
//! template and status class (closed label sets, never raw paths), and the /metrics route.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder's handle, installing the recorder on first use. Falls back to an
/// uninstalled recorder if another one is already global (only in tests that install their
/// own), so /metrics still answers.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was already installed; /metrics shows only its own registry"
                );
            }
            handle
        })
        .clone()
}

/// Records the build of this process, so dashboards can tell versions apart.
pub fn describe_process(binary: &'static str) {
    // Metrics recorded before the recorder is installed are lost: install it first.
    let _ = handle();
    metrics::describe_counter!(
        "http_requests_total",
        "HTTP requests served, by route template and status class"
    );
    metrics::describe_histogram!(
        "http_request_duration_seconds",
        "HTTP request latency until the response headers, by route template and status class"
    );
    metrics::gauge!("checkgate_build_info", "binary" => binary, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// Keeps histogram summaries bounded; run for the life of the process.
pub async fn upkeep(handle: PrometheusHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The index into [`CLASSES`] of a status.
fn status_class(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// A layer that counts each request and times it, labelled by the matched route template (or
/// `unmatched`) and the status class. Streams are timed to their first byte (the headers).
///
/// With `debug` logging on, it also logs each request: method, path and status — the path
/// only, never the query string, where SDK keys travel (`?sdk_key=`); never a header.
///
/// Written as a service of its own rather than with `axum::middleware::from_fn`, which clones
/// the inner service and boxes a future per request: on the evaluation routes that was about
/// a tenth of the edge's CPU per request (BENCHMARKS.md, "Evaluation").
#[derive(Debug, Clone, Copy, Default)]
pub struct Track;

impl<S> tower::Layer<S> for Track {
    type Service = Tracked<S>;

    fn layer(&self, inner: S) -> Tracked<S> {
        Tracked { inner }
    }
}

/// The service of [`Track`].
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
}

impl<S> tower::Service<Request> for Tracked<S>
where
    S: tower::Service<Request, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Timing<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request.extensions().get::<MatchedPath>().map_or_else(
            || RouteMetrics::of("unmatched"),
            |p| RouteMetrics::of(p.as_str()),
        );
        let access = tracing::enabled!(tracing::Level::DEBUG)
            .then(|| (request.method().clone(), request.uri().path().to_owned()));
        Timing {
            started: Instant::now(),
            inner: self.inner.call(request),
            route,
            access,
        }
    }
}

/// A request being answered, timed from when it reached [`Tracked`].
pub struct Timing<F> {
    inner: F,
    route: Arc<RouteMetrics>,
    access: Option<(Method, String)>,
    started: Instant,
}

impl<F, E> Future for Timing<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let answered = std::task::ready!(Pin::new(&mut self.inner).poll(cx));
        if let Ok(response) = &answered {
            let status = response.status().as_u16();
            let elapsed = self.started.elapsed();
            if let Some((method, path)) = self.access.take() {
                tracing::debug!(
                    %method,
                    path,
                    route = self.route.route.as_ref(),
                    status,
                    elapsed_us = elapsed.as_micros() as u64,
                    "request"
                );
            }
            self.route.record(status, elapsed);
        }
        Poll::Ready(answered)
    }
}

/// Counts and times a request served off the router (see [`crate::listener`]), as
/// [`track`] would have.
pub fn record(route: &str, status: u16, elapsed: Duration) {
    RouteMetrics::of(route).record(status, elapsed);
}

/// The two series of one route template, for each status class: resolved once per template
/// and kept, so a request neither builds label sets nor looks them up in the registry.
struct RouteMetrics {
    route: Box<str>,
    requests: [metrics::Counter; 5],
    duration: [metrics::Histogram; 5],
}

/// Route templates seen so far: a closed set (the router's templates and `unmatched`).
static ROUTES: std::sync::LazyLock<dashmap::DashMap<Box<str>, Arc<RouteMetrics>>> =
    std::sync::LazyLock::new(dashmap::DashMap::new);

impl RouteMetrics {
    fn record(&self, status: u16, elapsed: Duration) {
        let class = status_class(status);
        self.requests[class].increment(1);
        self.duration[class].record(elapsed.as_secs_f64());
    }

    fn of(route: &str) -> Arc<RouteMetrics> {
        if let Some(found) = ROUTES.get(route) {
            return Arc::clone(found.value());
        }
        let series = |i: usize| {
            let (route, status) = (route.to_owned(), CLASSES[i]);
            (
                metrics::counter!("http_requests_total", "route" => route.clone(), "status" => status),
                metrics::histogram!("http_request_duration_seconds", "route" => route, "status" => status),
            )
        };
        let [a, b, c, d, e] = std::array::from_fn(series);
        let made = Arc::new(RouteMetrics {
            route: route.into(),
            requests: [a.0, b.0, c.0, d.0, e.0],
            duration: [a.1, b.1, c.1, d.1, e.1],
        });
        Arc::clone(ROUTES.entry(route.into()).or_insert(made).value())
    }
}

/// Prometheus metrics
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/metrics", operation_id = "metrics",
    tag = "operations", security(()),
    responses((status = 200, content_type = "text/plain", body = String,
        description = "Prometheus text format: request counts and latencies per route template \
            and status class, and `checkgate_build_info`. Served here unless `METRICS_ADDR` \
            moves it to a listener of its own."))))]
pub async fn render(State(handle): State<PrometheusHandle>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
}

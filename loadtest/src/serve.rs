//! The edge's request/response hot paths under load: evaluation (`eval-one`, `eval-all`, on
//! our API and on OFREP, bulk with and without `If-None-Match`) and the rule payload
//! (`rules`: 200, gzip, 304), and impression ingest (`ingest-100`: batches of 100 on
//! `POST /api/v1/impressions`, which the edge queues and forwards to the control plane).
//! Contexts come from a seeded generator, so no answer can be cached by the server.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::ValueEnum;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue, IF_NONE_MATCH};
use hyper::{Method, Request, Uri};

use crate::driver::{MakeRequest, closed_loop, open_loop};
use crate::report::{Report, ServerUsage};
use crate::stack::{Stack, context};

/// Which evaluation to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Eval {
    /// `POST /api/v1/evaluate/{key}`.
    One,
    /// `POST /api/v1/evaluate` (every flag).
    All,
    /// `POST /ofrep/v1/evaluate/flags/{key}`.
    OfrepOne,
    /// `POST /ofrep/v1/evaluate/flags` (every flag).
    OfrepBulk,
    /// The same, for a fixed context, with the `ETag` of its last answer: 304s.
    OfrepBulkNotModified,
    /// `POST /api/v1/impressions`, 100 impressions a request (impressions/s = req/s × 100).
    Impressions,
}

impl Eval {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::One => "eval-one",
            Self::All => "eval-all",
            Self::OfrepOne => "ofrep-one",
            Self::OfrepBulk => "ofrep-bulk",
            Self::OfrepBulkNotModified => "ofrep-bulk-304",
            Self::Impressions => "ingest-100",
        }
    }
}

/// Which form of the rule payload to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Rules {
    /// The JSON.
    Plain,
    /// The precompressed gzip.
    Gzip,
    /// `If-None-Match` with the current `ETag`: 304s.
    NotModified,
}

/// How hard to push.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    pub(crate) connections: usize,
    pub(crate) duration: Duration,
    pub(crate) max_requests: u64,
    /// `Some`: open loop at this rate; `None`: closed loop, as fast as it answers.
    pub(crate) rate: Option<u32>,
}

async fn run(
    stack: &Stack,
    name: &'static str,
    load: Load,
    make: Arc<MakeRequest>,
) -> anyhow::Result<Report> {
    let before = stack.edge_usage();
    let mut report = match load.rate {
        Some(rate) => {
            open_loop(
                name,
                stack.addr,
                load.connections,
                rate,
                load.duration,
                make,
            )
            .await?
        }
        None => {
            closed_loop(
                name,
                stack.addr,
                load.connections,
                load.duration,
                load.max_requests,
                make,
            )
            .await?
        }
    };
    if let (Some((_, cpu_before)), Some((rss, cpu_after))) = (before, stack.edge_usage()) {
        report.server = Some(ServerUsage {
            rss_kib: rss,
            cpu_seconds: cpu_after - cpu_before,
        });
    }
    Ok(report)
}

fn post(uri: Uri, host: &HeaderValue, auth: &HeaderValue, body: Bytes) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(HOST, host.clone());
    headers.insert(AUTHORIZATION, auth.clone());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    request
}

/// Distinct contexts a run draws from, rendered before it starts so the generator, which
/// shares the cores with the server, spends them on requests rather than on JSON: 65,536
/// contexts of the seeded generator, against 100 flags, are more answers than a server could
/// usefully cache (and ours caches none).
const CONTEXTS: usize = 1 << 16;

/// The request bodies `{"context":{…}}` for [`CONTEXTS`] contexts.
fn bodies() -> anyhow::Result<Arc<[Bytes]>> {
    (0..CONTEXTS as u64)
        .map(|i| {
            Ok(Bytes::from(serde_json::to_vec(
                &serde_json::json!({"context": context(i)}),
            )?))
        })
        .collect()
}

/// Impressions in one ingest request.
pub(crate) const IMPRESSIONS_PER_REQUEST: usize = 100;

/// 256 request bodies of [`IMPRESSIONS_PER_REQUEST`] impressions each, as an SDK sends them
/// (a flag of the seeded ones, a user, a value, a small context), rendered before the run.
fn impression_batches(flags: usize) -> anyhow::Result<Arc<[Bytes]>> {
    (0..256u64)
        .map(|b| {
            let items: Vec<serde_json::Value> = (0..IMPRESSIONS_PER_REQUEST as u64)
                .map(|i| {
                    let n = b * IMPRESSIONS_PER_REQUEST as u64 + i;
                    serde_json::json!({
                        "flag_key": format!("load-{}", n as usize % flags),
                        "user_id": format!("user-{n}"),
                        "value": if n.is_multiple_of(3) { "true" } else { "false" },
                        "context": {"plan": if n.is_multiple_of(2) { "pro" } else { "free" }, "country": "SE"},
                    })
                })
                .collect();
            Ok(Bytes::from(serde_json::to_vec(&items)?))
        })
        .collect()
}

/// Fetches the `ETag` of the bulk answer for `ctx`.
async fn bulk_etag(stack: &Stack, ctx: &serde_json::Value) -> anyhow::Result<String> {
    let (addr, key, body) = (
        stack.addr,
        stack.client_key.clone(),
        serde_json::json!({"context": ctx}).to_string(),
    );
    let (status, head, _) = tokio::task::spawn_blocking(move || {
        checkgate_testkit::http_request(
            addr,
            "POST",
            "/ofrep/v1/evaluate/flags",
            &[("X-API-Key", &key)],
            Some(&body),
        )
    })
    .await??;
    anyhow::ensure!(status == 200, "the bulk evaluation answered {status}");
    head.iter()
        .find_map(|h| {
            let (name, value) = h.split_once(':')?;
            name.eq_ignore_ascii_case("etag")
                .then(|| value.trim().to_owned())
        })
        .ok_or_else(|| anyhow::anyhow!("the bulk evaluation sent no ETag"))
}

/// Loads one evaluation route.
pub(crate) async fn eval(stack: &Stack, which: Eval, load: Load) -> anyhow::Result<Report> {
    let host = HeaderValue::from_str(&stack.addr.to_string())?;
    let flags = stack.flags.max(1);
    // Each connection walks the contexts from its own starting point.
    let pick = |c: usize, n: u64| (c.wrapping_mul(7919) + n as usize) % CONTEXTS;
    let bearer = |key: &str| HeaderValue::from_str(&format!("Bearer {key}"));
    let make: Arc<MakeRequest> = match which {
        Eval::One | Eval::OfrepOne => {
            let (key, prefix) = if which == Eval::One {
                (&stack.server_key, "/api/v1/evaluate")
            } else {
                (&stack.client_key, "/ofrep/v1/evaluate/flags")
            };
            let auth = bearer(key)?;
            let uris: Vec<Uri> = (0..flags)
                .map(|f| format!("{prefix}/load-{f}").parse())
                .collect::<Result<_, _>>()?;
            let bodies = bodies()?;
            Arc::new(move |c, n| {
                let i = pick(c, n);
                let uri = uris[(c + n as usize) % uris.len()].clone();
                Ok(post(uri, &host, &auth, bodies[i].clone()))
            })
        }
        Eval::All | Eval::OfrepBulk => {
            let (key, path) = if which == Eval::All {
                (&stack.server_key, "/api/v1/evaluate")
            } else {
                (&stack.client_key, "/ofrep/v1/evaluate/flags")
            };
            let auth = bearer(key)?;
            let uri: Uri = path.parse()?;
            let bodies = bodies()?;
            Arc::new(move |c, n| Ok(post(uri.clone(), &host, &auth, bodies[pick(c, n)].clone())))
        }
        Eval::Impressions => {
            let auth = bearer(&stack.client_key)?;
            let uri: Uri = "/api/v1/impressions".parse()?;
            let batches = impression_batches(flags)?;
            Arc::new(move |c, n| {
                let body = batches[pick(c, n) % batches.len()].clone();
                Ok(post(uri.clone(), &host, &auth, body))
            })
        }
        Eval::OfrepBulkNotModified => {
            let ctx = context(7);
            let etag = HeaderValue::from_str(&bulk_etag(stack, &ctx).await?)?;
            let body = Bytes::from(serde_json::to_vec(&serde_json::json!({"context": ctx}))?);
            let auth = bearer(&stack.client_key)?;
            let uri: Uri = "/ofrep/v1/evaluate/flags".parse()?;
            Arc::new(move |_, _| {
                let mut request = post(uri.clone(), &host, &auth, body.clone());
                request.headers_mut().insert(IF_NONE_MATCH, etag.clone());
                Ok(request)
            })
        }
    };
    run(stack, which.name(), load, make).await
}

/// Loads the rule payload.
pub(crate) async fn rules(stack: &Stack, which: Rules, load: Load) -> anyhow::Result<Report> {
    let host = stack.addr.to_string();
    let key = stack.server_key.clone();
    let etag = {
        let (addr, auth) = (stack.addr, format!("Bearer {key}"));
        let (_, head, _) = tokio::task::spawn_blocking(move || {
            checkgate_testkit::http_request(
                addr,
                "GET",
                "/api/v1/flags",
                &[("Authorization", &auth)],
                None,
            )
        })
        .await??;
        head.iter()
            .find_map(|h| {
                let (name, value) = h.split_once(':')?;
                name.eq_ignore_ascii_case("etag")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let name = match which {
        Rules::Plain => "rules",
        Rules::Gzip => "rules-gzip",
        Rules::NotModified => "rules-304",
    };
    let make: Arc<MakeRequest> = Arc::new(move |_, _| {
        let mut request = Request::get("/api/v1/flags")
            .header("host", &host)
            .header("authorization", format!("Bearer {key}"));
        match which {
            Rules::Plain => {}
            Rules::Gzip => request = request.header("accept-encoding", "gzip"),
            Rules::NotModified => request = request.header("if-none-match", &etag),
        }
        Ok(request.body(Full::new(Bytes::new()))?)
    });
    run(stack, name, load, make).await
}

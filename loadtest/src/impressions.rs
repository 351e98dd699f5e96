//! `impressions`: impressions stored end to end — batches posted to the real control plane's
//! `POST /api/environments/{env}/impressions` (an SDK key), each answered 204 only once its
//! transaction committed — then a check that nothing was lost (the stats' totals against the
//! batches accepted), then the latency of the stats route (right after the ingest, and again
//! once the background merge of users into sketches has caught up) and of the live tail's
//! `since_id` poll over what was stored. SQLite or a fresh PostgreSQL database; loopback only; bounded in
//! requests and time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use checkgate_testkit::http_request;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};

use crate::api::loopback_postgres;
use crate::control::{Backing, Control, control_bin};
use crate::driver::{MakeRequest, closed_loop};
use crate::report::{Report, ServerUsage};

/// The scenario's settings.
pub(crate) struct Settings {
    /// Impressions per request (1–500).
    pub(crate) batch: usize,
    pub(crate) connections: usize,
    pub(crate) duration: Duration,
    pub(crate) max_requests: u64,
    /// How long each read route is measured.
    pub(crate) reads: Duration,
    /// Past days the impressions' times spread over (0: all now).
    pub(crate) spread_days: u32,
    pub(crate) postgres: Option<String>,
    pub(crate) control_bin: Option<PathBuf>,
}

/// Distinct batch bodies the load cycles through.
const BODIES: usize = 64;

fn bodies(batch: usize) -> Vec<Bytes> {
    (0..BODIES)
        .map(|b| {
            let items: Vec<Value> = (0..batch)
                .map(|i| {
                    let n = b * batch + i;
                    json!({
                        "flag_key": format!("load-{}", n % 20),
                        "user_id": format!("user-{}", n % 50_000),
                        "value": if n.is_multiple_of(3) { "false" } else { "true" },
                        "context": {"plan": "pro", "country": "NZ", "n": n},
                    })
                })
                .collect();
            Bytes::from(Value::Array(items).to_string())
        })
        .collect()
}

/// Batch `seed` of a spread load: every item its own (`n` = seed × batch + i), over the same
/// 20 flags, two values and 50,000 users as [`bodies`]. The batch was evaluated in one minute,
/// as an edge's batch is, a pseudo-random whole number of minutes (less than `minutes`) before
/// `now`.
fn spread_body(batch: usize, seed: u64, minutes: u64, now: i64) -> Bytes {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(batch * 140);
    out.push('[');
    let ago = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) % minutes;
    for i in 0..batch as u64 {
        let n = seed * batch as u64 + i;
        let user = (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 50_000;
        let value = if n.is_multiple_of(3) { "false" } else { "true" };
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"flag_key":"load-{}","user_id":"user-{user}","value":"{value}","context":{{"plan":"pro","country":"NZ","n":{n}}},"evaluated_at":{}}}"#,
            n % 20,
            now - ago as i64 * 60_000,
        );
    }
    out.push(']');
    Bytes::from(out)
}

fn with_server(mut report: Report, control: &Control, before: Option<(u64, f64)>) -> Report {
    if let (Some((_, cpu_before)), Some((rss, cpu_after))) = (before, control.usage()) {
        report.server = Some(ServerUsage {
            rss_kib: rss,
            cpu_seconds: cpu_after - cpu_before,
        });
    }
    report
}

fn get(control: &Control, path: &str) -> anyhow::Result<Value> {
    let auth = format!("Bearer {}", control.token);
    let (status, _, body) =
        http_request(control.addr, "GET", path, &[("Authorization", &auth)], None)
            .with_context(|| format!("GET {path}"))?;
    if status != 200 {
        bail!("GET {path}: {status} {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

/// The longest wait for the merge of parts into the rollups to catch up after the ingest.
const MERGE_WAIT: Duration = Duration::from_secs(600);

/// A metric's value in the control plane's `/metrics` text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Waits (at most `limit`) until the control plane's merge of impression parts into the
/// rollups has nothing left: a pass that did not use its whole budget, no merge transaction in
/// flight, and nothing merged between two reads of `/metrics` 2.5 s apart (a pass runs every
/// 2 s). False when `limit` passed first.
async fn merge_caught_up(control: &Control, limit: Duration) -> anyhow::Result<bool> {
    let start = Instant::now();
    let mut last: Option<f64> = None;
    while start.elapsed() < limit {
        let (status, _, body) =
            http_request(control.addr, "GET", "/metrics", &[], None).context("GET /metrics")?;
        if status != 200 {
            bail!("GET /metrics: {status}");
        }
        let merged = metric(&body, "checkgate_impression_parts_merged_total").unwrap_or(0.0);
        let behind = metric(&body, "checkgate_impression_parts_behind").unwrap_or(1.0);
        let merging = metric(&body, "checkgate_impression_parts_merging").unwrap_or(0.0);
        if behind == 0.0 && merging == 0.0 && last == Some(merged) {
            return Ok(true);
        }
        last = Some(merged);
        tokio::time::sleep(Duration::from_millis(2_500)).await;
    }
    Ok(false)
}

pub(crate) async fn run(settings: Settings) -> anyhow::Result<Value> {
    let bin = control_bin(settings.control_bin)?;
    let backing = match settings.postgres {
        Some(server) => Backing::Postgres(loopback_postgres(server)?),
        None => Backing::Sqlite,
    };
    let control = Control::start(&bin, backing).await?;
    let outcome = measure(
        &control,
        settings.batch.clamp(1, 500),
        settings.connections,
        settings.duration,
        settings.max_requests,
        settings.reads,
        settings.spread_days,
    )
    .await;
    control.stop().await?;
    outcome
}

async fn measure(
    control: &Control,
    batch: usize,
    connections: usize,
    duration: Duration,
    max_requests: u64,
    reads: Duration,
    spread_days: u32,
) -> anyhow::Result<Value> {
    let key = control.sdk_key("server")?;
    let env = control.environment.clone();
    let host = control.addr.to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let bodies = Arc::new(bodies(batch));
    let minutes = u64::from(spread_days) * 1440;
    let ingest: Arc<MakeRequest> = {
        let (host, path, auth) = (
            host.clone(),
            format!("/api/environments/{env}/impressions"),
            format!("Bearer {key}"),
        );
        Arc::new(move |connection, n| {
            let body = if minutes > 0 {
                spread_body(
                    batch,
                    n * connections as u64 + connection as u64,
                    minutes,
                    now,
                )
            } else {
                bodies[(connection * 7 + n as usize) % bodies.len()].clone()
            };
            Ok(Request::post(path.as_str())
                .header("host", &host)
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .body(Full::new(body))?)
        })
    };
    let before = control.usage();
    let ingested = closed_loop(
        "impressions-ingest",
        control.addr,
        connections,
        duration,
        max_requests,
        ingest,
    )
    .await?;
    let ingested = with_server(ingested, control, before);
    let accepted = ingested.statuses.get(&204).copied().unwrap_or(0);
    // The first stats call after the ingest reads every sketch (nothing merged is cached yet).
    let first_call = Instant::now();
    let stats = get(
        control,
        &format!("/api/environments/{env}/impressions/stats"),
    )?;
    let stored: i64 = stats
        .as_array()
        .context("stats is not an array")?
        .iter()
        .filter_map(|f| f["total"].as_i64())
        .sum();
    let stats_first_ms = first_call.elapsed().as_secs_f64() * 1000.0;
    let expected = accepted as i64 * batch as i64;
    let seconds = ingested.seconds.max(f64::EPSILON);

    // Reads over what is stored: the stats, and the live tail's poll for what came since a
    // recent id.
    let newest = get(
        control,
        &format!("/api/environments/{env}/impressions?limit=1"),
    )?;
    let newest = newest["items"][0]["id"].as_i64().unwrap_or(0);
    let auth = format!("Bearer {}", control.token);
    // One read route loaded for `reads` with 4 connections, with the server's usage.
    let load = |name: &'static str, path: String| {
        let (host, auth) = (host.clone(), auth.clone());
        let make: Arc<MakeRequest> = Arc::new(move |_, _| {
            Ok(Request::get(path.as_str())
                .header("host", &host)
                .header("authorization", &auth)
                .body(Full::new(Bytes::new()))?)
        });
        async move {
            let before = control.usage();
            let report = closed_loop(name, control.addr, 4, reads, 100_000, make).await?;
            anyhow::Ok(with_server(report, control, before))
        }
    };
    let stats_path = format!("/api/environments/{env}/impressions/stats");
    let stats_report = load("impressions-stats", stats_path.clone()).await?;
    // Again once the background merge of users into the sketches has caught up: right after
    // the ingest it is still rewriting sketches, so readers read them again and count the
    // parts not merged yet.
    let waited = Instant::now();
    let caught_up = merge_caught_up(control, MERGE_WAIT).await?;
    let merge_wait_s = waited.elapsed().as_secs_f64();
    let merged_report = load("impressions-stats-merged", stats_path).await?;
    let since = (newest - 50).max(0);
    let tail_report = load(
        "impressions-since-id",
        format!("/api/environments/{env}/impressions?since_id={since}&limit=50"),
    )
    .await?;
    Ok(json!({
        "scenario": "impressions",
        "batch": batch,
        "connections": connections,
        "spread_days": spread_days,
        "stored": stored,
        "accepted": expected,
        "lost": expected - stored,
        "impressions_per_second": stored as f64 / seconds,
        "ingest": ingested,
        "stats_first_call_ms": stats_first_ms,
        "stats": stats_report,
        "merge_caught_up": caught_up,
        "merge_wait_seconds": merge_wait_s,
        "stats_merged": merged_report,
        "since_id": tail_report,
    }))
}

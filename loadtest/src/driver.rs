//! The closed-loop driver every scenario shares: `connections` keep-alive HTTP/1.1
//! connections, each sending its next request as soon as the last one is answered, until a
//! deadline or a request budget; latencies go into one HdrHistogram.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::report::{Report, cpu_time};

/// Makes the `n`th request of connection `c`.
pub(crate) type MakeRequest =
    dyn Fn(usize, u64) -> anyhow::Result<Request<Full<Bytes>>> + Send + Sync;

/// What one connection did, merged into the report when it ends.
struct Tally {
    /// Requests answered with a 2xx and a complete body.
    requests: u64,
    /// Requests that failed or got another status; they end the connection's run.
    errors: u64,
    /// Body bytes received, to confirm the answers were complete.
    bytes: u64,
    /// Latency of each successful request, in microseconds.
    latencies: Histogram<u64>,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

/// Sends requests over one keep-alive connection until `deadline` or `budget` requests.
async fn drive(
    addr: SocketAddr,
    connection: usize,
    make: Arc<MakeRequest>,
    deadline: Instant,
    budget: u64,
) -> anyhow::Result<Tally> {
    let mut tally = Tally {
        requests: 0,
        errors: 0,
        bytes: 0,
        latencies: histogram()?,
    };
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    while tally.requests + tally.errors < budget && Instant::now() < deadline {
        let request = make(connection, tally.requests)?;
        let started = Instant::now();
        let answer = match sender.send_request(request).await {
            Ok(response) if response.status().is_success() => {
                response.into_body().collect().await.ok()
            }
            _ => None,
        };
        let Some(body) = answer else {
            // The connection is in an unknown state after a failure: stop using it.
            tally.errors += 1;
            break;
        };
        tally.bytes += body.to_bytes().len() as u64;
        tally.requests += 1;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        tally.latencies.saturating_record(micros);
    }
    conn.abort();
    Ok(tally)
}

/// Runs `connections` drivers against `addr` for at most `duration` and `max_requests`.
pub(crate) async fn closed_loop(
    scenario: &'static str,
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    max_requests: u64,
    make: Arc<MakeRequest>,
) -> anyhow::Result<Report> {
    let cpu_before = cpu_time();
    let started = Instant::now();
    let deadline = started + duration;
    let per_connection = max_requests.div_ceil(connections.max(1) as u64);
    let mut drivers = JoinSet::new();
    for c in 0..connections {
        drivers.spawn(drive(addr, c, make.clone(), deadline, per_connection));
    }
    let mut latencies = histogram()?;
    let (mut requests, mut errors, mut bytes) = (0, 0, 0);
    while let Some(done) = drivers.join_next().await {
        match done? {
            Ok(t) => {
                requests += t.requests;
                errors += t.errors;
                bytes += t.bytes;
                latencies.add(&t.latencies)?;
            }
            Err(_) => errors += 1,
        }
    }
    Ok(Report::new(
        scenario,
        connections,
        (requests, errors, bytes),
        started.elapsed(),
        &latencies,
        cpu_time().saturating_sub(cpu_before),
    ))
}

//! `ceiling`: the fastest this machine answers HTTP at all. A minimal hyper server of our own,
//! returning a fixed 200-byte body, driven the same way as every other scenario, so each of
//! their figures can also be read as a fraction of this one, measured in the same run.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::report::{Report, cpu_time};

/// The body every answer carries.
const BODY: &[u8; 200] = &[b'x'; 200];

/// Runs the built-in server on a loopback port until the returned handle is aborted.
async fn start_server() -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            connections.spawn(async move {
                let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, server))
}

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

/// Sends requests over one keep-alive connection until `deadline` or `budget` requests.
async fn drive(addr: SocketAddr, deadline: Instant, budget: u64) -> anyhow::Result<Tally> {
    let mut tally = Tally {
        requests: 0,
        errors: 0,
        bytes: 0,
        latencies: Histogram::new_with_bounds(1, 60_000_000, 3)?,
    };
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    while tally.requests + tally.errors < budget && Instant::now() < deadline {
        let request = Request::get("/")
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))?;
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

/// Runs the scenario: `connections` connections for at most `duration` and `max_requests`.
pub(crate) async fn run(
    connections: usize,
    duration: Duration,
    max_requests: u64,
) -> anyhow::Result<Report> {
    let (addr, server) = start_server().await?;
    let cpu_before = cpu_time();
    let started = Instant::now();
    let deadline = started + duration;
    let per_connection = max_requests.div_ceil(connections.max(1) as u64);
    let mut drivers = JoinSet::new();
    for _ in 0..connections {
        drivers.spawn(drive(addr, deadline, per_connection));
    }
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
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
    let elapsed = started.elapsed();
    server.abort();
    Ok(Report::new(
        "ceiling",
        connections,
        (requests, errors, bytes),
        elapsed,
        &latencies,
        cpu_time().saturating_sub(cpu_before),
    ))
}

//! The drivers every HTTP scenario shares, over keep-alive HTTP/1.1 connections:
//!
//! - **closed loop**: each connection sends its next request as soon as the last is answered,
//!   until a deadline or a request budget — the most the server does;
//! - **open loop**: requests at a constant rate, each timed from its *intended* send time, so a
//!   stall counts against every request it delays (no coordinated omission).
//!
//! A request succeeds with any status below 400 (a 304 is an answer); failures are counted by
//! kind (`status 503`, `connect`, `io`), and a failed connection is replaced.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::progress::Progress;
use crate::report::{Report, cpu_time};

/// Makes the `n`th request of connection `c`.
pub(crate) type MakeRequest =
    dyn Fn(usize, u64) -> anyhow::Result<Request<Full<Bytes>>> + Send + Sync;

/// What a set of requests did.
pub(crate) struct Tally {
    pub(crate) requests: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) bytes: u64,
    pub(crate) statuses: BTreeMap<u16, u64>,
    pub(crate) latencies: Histogram<u64>,
}

impl Tally {
    pub(crate) fn new() -> anyhow::Result<Self> {
        Ok(Self {
            requests: 0,
            errors: BTreeMap::new(),
            bytes: 0,
            statuses: BTreeMap::new(),
            latencies: histogram()?,
        })
    }

    fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }

    /// Counts one request's outcome; `false` when the connection cannot be used again.
    pub(crate) fn record(
        &mut self,
        outcome: Result<(u16, u64), String>,
        latency: Duration,
    ) -> bool {
        record(self, outcome, latency)
    }

    pub(crate) fn merge(&mut self, other: Tally) -> anyhow::Result<()> {
        self.requests += other.requests;
        self.bytes += other.bytes;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.latencies.add(&other.latencies)?;
        Ok(())
    }

    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

pub(crate) fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection task ends when the sender is dropped or the peer closes.
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends one request on `sender`; its status and body size, or the kind of failure.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(u16, u64), String> {
    let response = sender
        .send_request(request)
        .await
        .map_err(|_| "io".to_owned())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|_| "io".to_owned())?;
    Ok((status, body.to_bytes().len() as u64))
}

fn record(tally: &mut Tally, outcome: Result<(u16, u64), String>, latency: Duration) -> bool {
    match outcome {
        Ok((status, bytes)) => {
            *tally.statuses.entry(status).or_default() += 1;
            if status < 400 {
                tally.requests += 1;
                tally.bytes += bytes;
                tally.latencies.saturating_record(micros(latency));
                true
            } else {
                tally.error(format!("status {status}"));
                true
            }
        }
        Err(kind) => {
            tally.error(kind);
            false
        }
    }
}

/// Sends requests over one keep-alive connection until `deadline` or `budget` requests.
async fn drive(
    addr: SocketAddr,
    connection: usize,
    make: Arc<MakeRequest>,
    deadline: Instant,
    budget: u64,
    progress: Progress,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::new()?;
    let mut sender = None;
    let mut n = 0;
    while n < budget && Instant::now() < deadline {
        let s = match &mut sender {
            Some(s) => s,
            None => match connect(addr).await {
                Ok(s) => sender.insert(s),
                Err(_) => {
                    tally.error("connect");
                    n += 1;
                    continue;
                }
            },
        };
        let request = make(connection, n)?;
        let started = Instant::now();
        let outcome = exchange(s, request).await;
        if !record(&mut tally, outcome, started.elapsed()) {
            // The connection is in an unknown state after a failure: use a new one.
            sender = None;
        }
        progress.add(1);
        n += 1;
    }
    Ok(tally)
}

/// Runs `connections` closed-loop drivers against `addr` for at most `duration` and
/// `max_requests`.
pub(crate) async fn closed_loop(
    scenario: &'static str,
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    max_requests: u64,
    make: Arc<MakeRequest>,
) -> anyhow::Result<Report> {
    let progress = Progress::start(scenario, duration);
    let cpu_before = cpu_time();
    let started = Instant::now();
    let deadline = started + duration;
    let per_connection = max_requests.div_ceil(connections.max(1) as u64);
    let mut drivers = JoinSet::new();
    for c in 0..connections {
        drivers.spawn(drive(
            addr,
            c,
            make.clone(),
            deadline,
            per_connection,
            progress.clone(),
        ));
    }
    let mut tally = Tally::new()?;
    while let Some(done) = drivers.join_next().await {
        tally.merge(done??)?;
    }
    progress.finish();
    Ok(Report::new(
        scenario,
        connections,
        &tally,
        started.elapsed(),
        cpu_time().saturating_sub(cpu_before),
    ))
}

/// Sends `rate` requests a second for `duration` over `connections` connections, each timed
/// from when it was meant to be sent. A request waits for a free connection; that wait counts.
pub(crate) async fn open_loop(
    scenario: &'static str,
    addr: SocketAddr,
    connections: usize,
    rate: u32,
    duration: Duration,
    make: Arc<MakeRequest>,
) -> anyhow::Result<Report> {
    let progress = Progress::start(scenario, duration);
    let cpu_before = cpu_time();
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let total = (duration.as_secs_f64() * f64::from(rate)).ceil() as u64;
    // One queue of intended send times per connection, dealt round-robin.
    let mut queues = Vec::new();
    let mut workers = JoinSet::new();
    for c in 0..connections.max(1) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
        queues.push(tx);
        let (make, progress) = (make.clone(), progress.clone());
        workers.spawn(async move {
            let mut tally = Tally::new()?;
            let mut sender: Option<SendRequest<Full<Bytes>>> = None;
            while let Some((n, intended)) = rx.recv().await {
                tokio::time::sleep_until(intended.into()).await;
                let s = match &mut sender {
                    Some(s) => s,
                    None => match connect(addr).await {
                        Ok(s) => sender.insert(s),
                        Err(_) => {
                            tally.error("connect");
                            continue;
                        }
                    },
                };
                let outcome = exchange(s, make(c, n)?).await;
                if !record(&mut tally, outcome, intended.elapsed()) {
                    sender = None;
                }
                progress.add(1);
            }
            anyhow::Ok(tally)
        });
    }
    for n in 0..total {
        let intended = started + interval.mul_f64(n as f64);
        let _ = queues[n as usize % queues.len()].send((n, intended));
    }
    drop(queues);
    let mut tally = Tally::new()?;
    while let Some(done) = workers.join_next().await {
        tally.merge(done??)?;
    }
    progress.finish();
    let mut report = Report::new(
        scenario,
        connections,
        &tally,
        started.elapsed(),
        cpu_time().saturating_sub(cpu_before),
    );
    report.rate_per_second = Some(rate);
    Ok(report)
}

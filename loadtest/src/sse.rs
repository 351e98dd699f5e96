//! Checkgate's SSE stream under load, on an edge:
//!
//! - `bootstrap-sse`: connect, read the bootstrap to its `ready` event, close — over and over;
//! - `sse-fanout`: N streams open at once (default 10,000), then one flag write at the control
//!   plane: the time from the write to its receipt on each stream, and the edge's memory per
//!   idle stream;
//! - `reconnect-storm`: N streams dropped at the same instant and reconnecting at once: how
//!   long until each has its bootstrap again;
//! - `propagation`: writes at a constant rate through the API; each timed from its intended
//!   send until an open stream receives it.
//!
//! Streams are raw HTTP/1.1 on tokio sockets: a stream holds a socket and a small buffer, so
//! the generator can keep ten thousand of them. `sse-fanout` hands its open streams to
//! watcher threads (`watch.rs`) for the update itself, so the generator's reading takes as
//! little as it can from the cores the edge is writing on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::driver::{Tally, histogram, micros};
use crate::progress::Progress;
use crate::report::{Latency, Report, ServerUsage, cpu_time};
use crate::stack::Stack;
use crate::watch::Watch;

/// How long any single wait of these scenarios lasts at most.
const PATIENCE: Duration = Duration::from_secs(60);

/// An open stream: the socket and what arrived but was not yet looked at.
struct Stream {
    socket: TcpStream,
    buf: Vec<u8>,
}

impl Stream {
    /// Opens `/stream` with `key`; fails unless the answer is 200.
    async fn open(addr: SocketAddr, key: &str) -> Result<Self, String> {
        let mut socket = TcpStream::connect(addr)
            .await
            .map_err(|_| "connect".to_owned())?;
        let request =
            format!("GET /stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\r\n");
        socket
            .write_all(request.as_bytes())
            .await
            .map_err(|_| "io".to_owned())?;
        let mut stream = Self {
            socket,
            buf: Vec::with_capacity(1024),
        };
        let head_end = stream.until(0, b"\r\n\r\n").await?;
        let status = std::str::from_utf8(&stream.buf[..head_end])
            .ok()
            .and_then(|h| h.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        if status != 200 {
            return Err(format!("status {status}"));
        }
        stream.buf.drain(..head_end);
        Ok(stream)
    }

    /// Reads until `needle` has arrived at or after `from`; returns where it ends, in the
    /// buffer.
    async fn until(&mut self, from: usize, needle: &[u8]) -> Result<usize, String> {
        let mut searched = from.min(self.buf.len());
        loop {
            if let Some(at) = self.buf[searched..]
                .windows(needle.len())
                .position(|w| w == needle)
            {
                return Ok(searched + at + needle.len());
            }
            searched = self.buf.len().saturating_sub(needle.len()).max(searched);
            let mut chunk = [0u8; 8192];
            let n = self
                .socket
                .read(&mut chunk)
                .await
                .map_err(|_| "io".to_owned())?;
            if n == 0 {
                return Err("closed".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads the bootstrap up to its `ready` event, and forgets it.
    async fn bootstrap(&mut self) -> Result<(), String> {
        let end = self.until(0, b"event: ready\ndata: ").await?;
        let end = self.until(end, b"\n\n").await?;
        self.buf.drain(..end);
        self.buf.shrink_to(1024);
        Ok(())
    }
}

/// `bootstrap-sse`: bootstraps a second, each timed to its `ready` event.
pub(crate) async fn bootstrap(
    stack: &Stack,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Report> {
    let progress = Progress::start("bootstrap-sse", duration);
    let cpu_before = cpu_time();
    let before = stack.edge_usage();
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = JoinSet::new();
    for _ in 0..connections {
        let (addr, key, progress) = (stack.addr, stack.server_key.clone(), progress.clone());
        workers.spawn(async move {
            let mut tally = Tally::new()?;
            while Instant::now() < deadline {
                let t = Instant::now();
                let outcome = match tokio::time::timeout(PATIENCE, async {
                    let mut s = Stream::open(addr, &key).await?;
                    s.bootstrap().await?;
                    Ok::<_, String>(s.buf.len() as u64)
                })
                .await
                {
                    Ok(o) => o,
                    Err(_) => Err("timeout".into()),
                };
                tally.record(outcome.map(|bytes| (200, bytes)), t.elapsed());
                progress.add(1);
            }
            anyhow::Ok(tally)
        });
    }
    let mut tally = Tally::new()?;
    while let Some(done) = workers.join_next().await {
        tally.merge(done??)?;
    }
    progress.finish();
    let mut report = Report::new(
        "bootstrap-sse",
        connections,
        &tally,
        started.elapsed(),
        cpu_time().saturating_sub(cpu_before),
    );
    if let (Some((_, a)), Some((rss, b))) = (before, stack.edge_usage()) {
        report.server = Some(ServerUsage {
            rss_kib: rss,
            cpu_seconds: b - a,
        });
    }
    Ok(report)
}

/// What `sse-fanout` found.
#[derive(Debug, Serialize)]
pub(crate) struct FanoutReport {
    scenario: &'static str,
    streams: usize,
    /// Streams that opened and bootstrapped.
    opened: usize,
    /// Streams that received the write.
    received: usize,
    seconds_to_open_all: f64,
    /// The write sent → the first stream had it: the way through the control plane, the feed
    /// and the edge, before the fan-out.
    first_receipt_us: u64,
    /// The write sent → each stream received it.
    write_to_receipt: Latency,
    /// The edge's memory with no stream, and with every stream open and idle.
    edge_rss_kib_before: u64,
    edge_rss_kib_with_streams: u64,
    /// (with − before) / streams.
    edge_kib_per_idle_stream: f64,
    /// This process's resident memory with every stream open.
    generator_rss_kib: u64,
    /// CPU time from the write until every stream had it (clock ticks of 10 ms): the edge's
    /// (control plane and feed not included) and this process's.
    edge_cpu_seconds: f64,
    generator_cpu_seconds: f64,
}

fn own_rss_kib() -> u64 {
    crate::control::usage(std::process::id()).map_or(0, |(rss, _)| rss)
}

/// Opens `n` streams, a few hundred at a time; each waits for its bootstrap.
async fn open_many(addr: SocketAddr, key: &str, n: usize) -> (Vec<Stream>, usize) {
    let mut streams = Vec::with_capacity(n);
    let mut failed = 0;
    let batch = 256;
    let mut opened = 0;
    while opened < n {
        let mut set = JoinSet::new();
        for _ in opened..(opened + batch).min(n) {
            let key = key.to_owned();
            set.spawn(async move {
                tokio::time::timeout(PATIENCE, async {
                    let mut s = Stream::open(addr, &key).await?;
                    s.bootstrap().await?;
                    Ok::<_, String>(s)
                })
                .await
                .map_err(|_| "timeout".to_owned())
                .and_then(|r| r)
            });
        }
        opened = (opened + batch).min(n);
        while let Some(done) = set.join_next().await {
            match done {
                Ok(Ok(s)) => streams.push(s),
                _ => failed += 1,
            }
        }
    }
    (streams, failed)
}

/// `sse-fanout`.
pub(crate) async fn fanout(stack: &Stack, streams: usize) -> anyhow::Result<FanoutReport> {
    let control = stack.control().ok_or_else(|| {
        anyhow::anyhow!(
            "sse-fanout writes through the control plane this run starts; it cannot use --target"
        )
    })?;
    let rss_before = stack.edge_usage().map_or(0, |(rss, _)| rss);
    let opening = Instant::now();
    let (opened, _) = open_many(stack.addr, &stack.server_key, streams).await;
    let seconds_to_open_all = opening.elapsed().as_secs_f64();
    // Let the edge settle with every stream idle, then measure it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_with = stack.edge_usage().map_or(0, |(rss, _)| rss);
    let generator_rss_kib = own_rss_kib();
    let count = opened.len();

    let marker = 77;
    let needle = format!("\"rollout_percentage\":{marker}");
    let sockets: Vec<_> = opened
        .into_iter()
        .map(|s| s.socket.into_std().map(|socket| (socket, s.buf)))
        .collect::<Result<_, _>>()?;
    // At most half the cores read: the rest are the edge's.
    let watchers = std::thread::available_parallelism().map_or(1, |n| n.get() / 2);
    let watch = Watch::start(sockets, needle.as_bytes(), watchers, PATIENCE)?;
    let edge_cpu_before = stack.edge_usage().map_or(0.0, |(_, cpu)| cpu);
    let own_cpu_before = cpu_time();
    let sent = Instant::now();
    control.patch_flag("load-0", &serde_json::json!({"rollout_percentage": marker}))?;
    let watched = watch.collect().await;
    let edge_cpu_seconds = stack.edge_usage().map_or(0.0, |(_, cpu)| cpu) - edge_cpu_before;
    let generator_cpu_seconds = (cpu_time() - own_cpu_before).as_secs_f64();
    let mut latencies = histogram()?;
    for at in &watched.receipts {
        latencies.saturating_record(micros(at.saturating_duration_since(sent)));
    }
    Ok(FanoutReport {
        scenario: "sse-fanout",
        streams,
        opened: count,
        received: watched.receipts.len(),
        seconds_to_open_all,
        first_receipt_us: latencies.min(),
        write_to_receipt: Latency::of(&latencies),
        edge_rss_kib_before: rss_before,
        edge_rss_kib_with_streams: rss_with,
        edge_kib_per_idle_stream: if count > 0 {
            rss_with.saturating_sub(rss_before) as f64 / count as f64
        } else {
            0.0
        },
        generator_rss_kib,
        edge_cpu_seconds,
        generator_cpu_seconds,
    })
}

/// What `reconnect-storm` found.
#[derive(Debug, Serialize)]
pub(crate) struct StormReport {
    scenario: &'static str,
    streams: usize,
    reconnected: usize,
    failed: usize,
    /// Every stream dropped at once → this stream has its bootstrap again.
    time_to_bootstrap: Latency,
    /// Until the last one had it.
    seconds_until_all: f64,
    edge_cpu_seconds: f64,
}

/// `reconnect-storm`.
pub(crate) async fn storm(stack: &Stack, streams: usize) -> anyhow::Result<StormReport> {
    let (opened, _) = open_many(stack.addr, &stack.server_key, streams).await;
    let n = opened.len();
    let before = stack.edge_usage();
    let dropped = Instant::now();
    drop(opened);
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (addr, key) = (stack.addr, stack.server_key.clone());
        set.spawn(async move {
            tokio::time::timeout(PATIENCE, async {
                let mut s = Stream::open(addr, &key).await?;
                s.bootstrap().await?;
                Ok::<_, String>(Instant::now())
            })
            .await
            .map_err(|_| "timeout".to_owned())
            .and_then(|r| r)
        });
    }
    let mut latencies = histogram()?;
    let (mut reconnected, mut failed) = (0, 0);
    let mut last = dropped;
    while let Some(done) = set.join_next().await {
        match done {
            Ok(Ok(at)) => {
                reconnected += 1;
                last = last.max(at);
                latencies.saturating_record(micros(at - dropped));
            }
            _ => failed += 1,
        }
    }
    let cpu = match (before, stack.edge_usage()) {
        (Some((_, a)), Some((_, b))) => b - a,
        _ => 0.0,
    };
    Ok(StormReport {
        scenario: "reconnect-storm",
        streams,
        reconnected,
        failed,
        time_to_bootstrap: Latency::of(&latencies),
        seconds_until_all: (last - dropped).as_secs_f64(),
        edge_cpu_seconds: cpu,
    })
}

/// What `propagation` found.
#[derive(Debug, Serialize)]
pub(crate) struct PropagationReport {
    scenario: &'static str,
    rate_per_second: u32,
    writes: u64,
    received: u64,
    /// Intended send time of the write → its event arrived on the stream.
    write_to_receipt: Latency,
}

/// `propagation`: `rate` writes a second for `duration`, through the control plane, received
/// on one stream of the edge.
pub(crate) async fn propagation(
    stack: &Stack,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<PropagationReport> {
    let control = stack.control().ok_or_else(|| {
        anyhow::anyhow!(
            "propagation writes through the control plane this run starts; it cannot use --target"
        )
    })?;
    let mut stream = Stream::open(stack.addr, &stack.server_key)
        .await
        .map_err(|e| anyhow::anyhow!("opening the stream: {e}"))?;
    stream
        .bootstrap()
        .await
        .map_err(|e| anyhow::anyhow!("reading the bootstrap: {e}"))?;
    let total = (duration.as_secs_f64() * f64::from(rate)).ceil() as usize;
    let received: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let origin = Instant::now();
    // The reader: each write sets its flag's description to `w{n}`.
    let reader = {
        let received = received.clone();
        tokio::spawn(async move {
            let needle = b"\"description\":\"w";
            loop {
                let Ok(Ok(end)) = tokio::time::timeout(PATIENCE, stream.until(0, needle)).await
                else {
                    return;
                };
                let digits: Vec<u8> = stream.buf[end..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .copied()
                    .collect();
                if end + digits.len() >= stream.buf.len() {
                    // The number has not fully arrived; read on from the needle.
                    let mut chunk = [0u8; 4096];
                    if let Ok(n) = stream.socket.read(&mut chunk).await
                        && n > 0
                    {
                        stream.buf.extend_from_slice(&chunk[..n]);
                    }
                    continue;
                }
                if let Some(n) = std::str::from_utf8(&digits)
                    .ok()
                    .and_then(|d| d.parse::<usize>().ok())
                    && let Some(slot) = received.get(n)
                {
                    let _ = slot.compare_exchange(
                        0,
                        micros(origin.elapsed()).max(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                stream.buf.drain(..end);
            }
        })
    };
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let started = Instant::now();
    let mut writes = JoinSet::new();
    let flags = stack.flags.max(1);
    for n in 0..total {
        let intended = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(intended.into()).await;
        let (addr, cookie, env) = (
            control.addr,
            control.cookie.clone(),
            control.environment.clone(),
        );
        writes.spawn_blocking(move || {
            let body = serde_json::json!({"description": format!("w{n}")}).to_string();
            let _ = checkgate_testkit::http_request(
                addr,
                "PATCH",
                &format!("/api/environments/{env}/flags/load-{}", n % flags),
                &[("X-Checkgate-Request", "1"), ("Cookie", &cookie)],
                Some(&body),
            );
        });
    }
    while writes.join_next().await.is_some() {}
    // Give the last writes a moment to arrive, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.iter().any(|r| r.load(Ordering::Relaxed) == 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reader.abort();
    let mut latencies = histogram()?;
    let mut count = 0;
    for (n, slot) in received.iter().enumerate() {
        let at = slot.load(Ordering::Relaxed);
        if at > 0 {
            let intended = micros((started - origin) + interval.mul_f64(n as f64));
            latencies.saturating_record(at.saturating_sub(intended));
            count += 1;
        }
    }
    Ok(PropagationReport {
        scenario: "propagation",
        rate_per_second: rate,
        writes: total as u64,
        received: count,
        write_to_receipt: Latency::of(&latencies),
    })
}

//! `ceiling`: the fastest this machine answers HTTP at all. A minimal hyper server of our own,
//! returning a fixed 200-byte body, in a process of its own (this binary's `ceiling-server`),
//! driven the same way as every other scenario, so each of their figures can also be read as
//! a fraction of this one, measured in the same run.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::driver::{MakeRequest, closed_loop};
use crate::report::Report;

/// The body every answer carries.
const BODY: &[u8; 200] = &[b'x'; 200];

/// Serves the fixed answer on a loopback port, printing `listening on ADDR` first, until
/// standard input closes (the parent ended or dropped it). This is the `ceiling-server`
/// subcommand: the ceiling runs in a process of its own, as the servers it is compared with
/// do, so both pay the same cross-process scheduling on the shared cores.
pub(crate) async fn serve() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", listener.local_addr()?)?;
        out.flush()?;
    }
    let accept = async move {
        let mut connections = JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            connections.spawn(async move {
                let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    };
    let mut stdin = tokio::io::stdin();
    let mut sink = [0u8; 64];
    let parent_gone = async move { while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {} };
    tokio::select! {
        () = accept => {}
        () = parent_gone => {}
    }
    Ok(())
}

/// The ceiling server as a child process; killed when dropped.
struct Server {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl Server {
    async fn start() -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("ceiling-server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("the ceiling server has no stdout"))?;
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .map_err(|_| anyhow::anyhow!("the ceiling server did not start within 10 s"))??;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("the ceiling server said {line:?}"))?;
        Ok(Self { child, addr })
    }
}

/// Runs the scenario: `connections` connections for at most `duration` and `max_requests`.
pub(crate) async fn run(
    connections: usize,
    duration: Duration,
    max_requests: u64,
) -> anyhow::Result<Report> {
    let mut server = Server::start().await?;
    let host = server.addr.to_string();
    let make: Arc<MakeRequest> = Arc::new(move |_, _| {
        Ok(Request::get("/")
            .header("host", &host)
            .body(Full::new(Bytes::new()))?)
    });
    let before = server.child.id().and_then(crate::control::usage);
    let report = closed_loop(
        "ceiling",
        server.addr,
        connections,
        duration,
        max_requests,
        make,
    )
    .await;
    let after = server.child.id().and_then(crate::control::usage);
    let _ = server.child.kill().await;
    let mut report = report?;
    if let (Some((_, cpu_before)), Some((rss, cpu_after))) = (before, after) {
        report.server = Some(crate::report::ServerUsage {
            rss_kib: rss,
            cpu_seconds: cpu_after - cpu_before,
        });
    }
    Ok(report)
}

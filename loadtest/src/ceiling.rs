//! `ceiling`: the fastest this machine answers HTTP at all. A minimal hyper server of our own,
//! returning a fixed 200-byte body, driven the same way as every other scenario, so each of
//! their figures can also be read as a fraction of this one, measured in the same run.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::driver::{MakeRequest, closed_loop};
use crate::report::Report;

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

/// Runs the scenario: `connections` connections for at most `duration` and `max_requests`.
pub(crate) async fn run(
    connections: usize,
    duration: Duration,
    max_requests: u64,
) -> anyhow::Result<Report> {
    let (addr, server) = start_server().await?;
    let host = addr.to_string();
    let make: Arc<MakeRequest> = Arc::new(move |_, _| {
        Ok(Request::get("/")
            .header("host", &host)
            .body(Full::new(Bytes::new()))?)
    });
    let report = closed_loop("ceiling", addr, connections, duration, max_requests, make).await;
    server.abort();
    report
}

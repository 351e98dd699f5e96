//! `checkgate_http_connections_open` follows connections out as well as in: it is read off the
//! process's recorder while kept-alive connections open and close. A file of its own, so no
//! other test's connections share the process-wide gauge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use checkgate_ops::listener::{Limits, Listener};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use common::{PATIENCE, request};

/// The gauge's value in the recorder's text, if it has been set.
fn open_gauge() -> Option<f64> {
    checkgate_ops::metrics::handle()
        .render()
        .lines()
        .find_map(|line| line.strip_prefix("checkgate_http_connections_open "))
        .map(|value| value.trim().parse().unwrap())
}

/// Waits until the gauge reads `want`; fails the test if it does not within [`PATIENCE`].
async fn gauge_reaches(want: f64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while open_gauge() != Some(want) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gauge stayed at {:?}, expected {want}",
            open_gauge()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens a connection and has one request answered on it, keeping it alive.
async fn kept_alive(addr: std::net::SocketAddr) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    assert!(request(&mut socket).await.starts_with("HTTP/1.1 200 "));
    socket
}

#[tokio::test]
async fn the_open_connections_gauge_falls_when_connections_close() {
    let _ = checkgate_ops::metrics::handle();
    let tcp = checkgate_ops::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = tcp.local_addr().unwrap();
    let limits = Limits {
        header_timeout: Duration::from_secs(60),
        max_connections: 100,
    };
    let listener = Listener::new(tcp, None).with_limits(limits);
    let router = Router::new().route("/", get(|| async { "ok" }));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(checkgate_ops::serve(
        vec![("public", listener, router)],
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));

    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(kept_alive(addr).await);
    }
    gauge_reaches(3.0).await;
    held.truncate(1);
    gauge_reaches(1.0).await;
    drop(held);
    gauge_reaches(0.0).await;
    drop(stop);
}

//! The public listener against slow and greedy clients, over real loopback connections: a
//! connection that sends nothing or an incomplete head is closed after the header timeout, so
//! is a kept-alive connection left idle, and past the connection cap a new connection is
//! answered 503 with Retry-After instead of waiting.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use checkgate_ops::listener::{self, BoxFuture, Limits, Listener, Takeover};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use common::{PATIENCE, request};

/// Serves `GET /stream` on the socket: a fixed answer, then holds the connection open until
/// the client leaves.
#[derive(Debug)]
struct Streams;

impl Takeover for Streams {
    fn path(&self) -> &'static str {
        "/stream"
    }

    fn take(&self, _: &listener::Request) -> Option<listener::Serve> {
        Some(Box::new(|mut socket| {
            Box::pin(async move {
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await;
                let mut scratch = [0u8; 64];
                while matches!(socket.read(&mut scratch).await, Ok(n) if n > 0) {}
            })
        }))
    }

    fn stop(&self) -> BoxFuture<'_> {
        Box::pin(async {})
    }
}

struct Server {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn server(limits: Limits, takeover: bool) -> Server {
    let tcp = checkgate_ops::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = tcp.local_addr().unwrap();
    let takeover = takeover.then(|| Arc::new(Streams) as Arc<dyn Takeover>);
    let listener = Listener::new(tcp, takeover).with_limits(limits);
    let router = Router::new().route("/", get(|| async { "ok" }));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(checkgate_ops::serve(
        vec![("public", listener, router)],
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));
    Server { addr, _stop: stop }
}

fn limits(header_timeout: Duration, max_connections: usize) -> Limits {
    Limits {
        header_timeout,
        max_connections,
    }
}

/// Reads until the server closes the connection; what it sent. Fails the test if the server
/// keeps the connection past [`PATIENCE`].
async fn until_closed(socket: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 1024];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test]
async fn silent_and_slow_connections_are_closed_after_the_header_timeout() {
    for takeover in [false, true] {
        let server = server(limits(Duration::from_secs(1), 100), takeover).await;
        let sends: [&[u8]; 4] = [
            b"",
            b"GET / HTTP/1.1\r\nhost: x\r\n",
            b"GET /stream HTTP/1.1\r\n",
            b"GET /str",
        ];
        for sent in sends {
            let mut socket = TcpStream::connect(server.addr).await.unwrap();
            socket.write_all(sent).await.unwrap();
            let answer = until_closed(&mut socket).await;
            // Closed, perhaps with a 408 from hyper; never a 200.
            assert!(
                !answer.contains(" 200 "),
                "takeover {takeover}, sent {:?}: {answer}",
                String::from_utf8_lossy(sent)
            );
        }
        // A whole request is still answered, and the connection kept alive is closed once it
        // has been idle for the timeout.
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        assert!(request(&mut socket).await.starts_with("HTTP/1.1 200 "));
        assert!(request(&mut socket).await.starts_with("HTTP/1.1 200 "));
        until_closed(&mut socket).await;
    }
}

#[tokio::test]
async fn past_the_cap_a_connection_gets_503_until_one_closes() {
    let server = server(limits(Duration::from_secs(60), 2), true).await;
    // Two connections held open: one kept alive after a request, one taken over as a stream.
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    assert!(request(&mut kept).await.starts_with("HTTP/1.1 200 "));
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 15];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK");

    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let refused = until_closed(&mut third).await;
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
    assert!(refused.contains("retry-after: 1\r\n"), "{refused}");
    let body = refused.split("\r\n\r\n").nth(1).unwrap();
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["code"], "unavailable");

    // Once one closes, a new connection is served again.
    drop(stream);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut next = TcpStream::connect(server.addr).await.unwrap();
        next.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = until_closed(&mut next).await;
        if answer.starts_with("HTTP/1.1 200 ") {
            break;
        }
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "still refused after a connection closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(kept);
}

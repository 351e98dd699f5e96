//! `/stream` as a server started by `ops::serve` serves it: on the socket, off the router
//! (`checkgate_ops::listener`, `checkgate_serve::fanout`). Real loopback connections, read as HTTP/1 chunks: the same
//! bytes as the router's stream, every version once and in order while streams join and fall
//! behind, refusals answered by the router, and streams that end on revocation, on a client
//! that stops reading, on a client that leaves, and on shutdown — OFREP's event streams, which
//! the router serves, included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use checkgate_ops::{self as ops, listener::Listener};
use checkgate_protocol::frame::Item;
use checkgate_serve as sdk;
use common::*;
use http_body_util::BodyExt;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tower::ServiceExt;

const LIMIT: Duration = Duration::from_secs(10);

/// `w`'s routes served on a loopback port; stopping it returns what `serve` returned.
struct Served {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn serve(w: &World) -> Served {
    serve_on(w, ops::bind("127.0.0.1:0".parse().unwrap()).await.unwrap())
}

/// Served with a small kernel send buffer on every connection (accepted sockets take the
/// listener's): sockets fill after a few kilobytes, so the writer finds them full.
async fn serve_cramped(w: &World) -> Served {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(8 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    serve_on(w, socket.listen(1024).unwrap())
}

fn serve_on(w: &World, listener: tokio::net::TcpListener) -> Served {
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let public = Listener::new(listener, Some(Arc::new(w.state.clone())));
    let done = tokio::spawn(ops::serve(
        vec![("public", public, w.router.clone())],
        async move {
            let _ = stopped.await;
        },
        // Long: a test that waits for `done` sees the streams end on their own, not the
        // grace period run out.
        Duration::from_secs(60),
    ));
    Served { addr, stop, done }
}

impl Served {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(LIMIT, self.done)
            .await
            .expect("the server stops once its streams have ended")
            .unwrap()
            .unwrap();
    }
}

/// A client of one stream: the response head, then the body decoded from its chunks.
struct Client {
    socket: TcpStream,
    raw: Vec<u8>,
    head: String,
    body: Vec<u8>,
    /// The last chunk arrived.
    ended: bool,
    /// The connection closed.
    closed: bool,
}

impl Client {
    async fn open(addr: SocketAddr, head: &str) -> Self {
        Self::open_on(TcpStream::connect(addr).await.unwrap(), head).await
    }

    async fn open_on(mut socket: TcpStream, head: &str) -> Self {
        socket.write_all(head.as_bytes()).await.unwrap();
        let mut client = Self {
            socket,
            raw: Vec::new(),
            head: String::new(),
            body: Vec::new(),
            ended: false,
            closed: false,
        };
        while !client.raw.windows(4).any(|w| w == b"\r\n\r\n") {
            assert!(client.fill(LIMIT).await, "no response head");
        }
        let end = client
            .raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap()
            + 4;
        client.head = String::from_utf8(client.raw.drain(..end).collect()).unwrap();
        client
    }

    async fn stream(addr: SocketAddr, key: &str, extra: &str) -> Self {
        Self::open(
            addr,
            &format!(
                "GET /stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n{extra}\r\n"
            ),
        )
        .await
    }

    fn status(&self) -> u16 {
        self.head
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Reads once; false when nothing came within `limit` or the connection closed.
    async fn fill(&mut self, limit: Duration) -> bool {
        self.fill_up_to(16 * 1024, limit).await
    }

    async fn fill_up_to(&mut self, most: usize, limit: Duration) -> bool {
        let mut buf = vec![0u8; most];
        match tokio::time::timeout(limit, self.socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.closed = true;
                false
            }
            Ok(Ok(n)) => {
                self.raw.extend_from_slice(&buf[..n]);
                true
            }
            Err(_) => false,
        }
    }

    /// Moves whole chunks from `raw` to `body`; panics on a malformed chunk.
    fn decode(&mut self) {
        loop {
            let Some(line) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size = usize::from_str_radix(std::str::from_utf8(&self.raw[..line]).unwrap(), 16)
                .unwrap_or_else(|_| {
                    panic!(
                        "bad chunk size line: {:?}",
                        String::from_utf8_lossy(&self.raw[..line])
                    )
                });
            if self.raw.len() < line + 2 + size + 2 {
                return;
            }
            assert_eq!(
                &self.raw[line + 2 + size..line + 4 + size],
                b"\r\n",
                "chunk end"
            );
            self.body
                .extend_from_slice(&self.raw[line + 2..line + 2 + size]);
            self.raw.drain(..line + 4 + size);
            if size == 0 {
                self.ended = true;
                return;
            }
        }
    }

    /// Reads until the body holds `needle`; the body so far, or `None` at the end or after
    /// `limit`.
    async fn until(&mut self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        let mut searched = 0;
        loop {
            self.decode();
            if self.body[searched..]
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                return Some(String::from_utf8_lossy(&self.body).into_owned());
            }
            searched = self.body.len().saturating_sub(needle.len());
            let left = deadline.saturating_duration_since(Instant::now());
            if self.ended || left.is_zero() || !self.fill(left).await {
                return None;
            }
        }
    }

    /// Reads until the stream ends; whether it did within `limit`.
    async fn ends_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            self.decode();
            if self.ended || self.closed {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.fill(left).await;
        }
    }
}

/// The router's stream for the same request: its headers, and its body read to the `ready`
/// event.
async fn router_stream(w: &World) -> (axum::http::HeaderMap, String) {
    let response = w
        .router
        .clone()
        .oneshot(
            Request::get("/stream")
                .header(header::AUTHORIZATION, format!("Bearer {SERVER_KEY}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let headers = response.headers().clone();
    let mut body = response.into_body();
    let mut text = String::new();
    while !text.contains("event: ready\n") || !text.ends_with("\n\n") {
        let frame = tokio::time::timeout(LIMIT, body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&frame.into_data().unwrap()));
    }
    (headers, text)
}

fn upsert(v: u64) -> Item {
    Item::FlagUpsert {
        key: "dark".into(),
        json: json!({"key": "dark", "is_enabled": v.is_multiple_of(2),
                     "description": format!("v{v} {}", "x".repeat(1024))})
        .to_string(),
    }
}

/// The versions of the `id:` lines in `text`, in order.
fn versions(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(&format!("id: {EPOCH}.")))
        .map(|v| v.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn a_stream_on_its_socket_sends_the_routers_bytes_and_resumes() {
    let w = world();
    let served = serve(&w).await;
    let mut client = Client::stream(served.addr, SERVER_KEY, "").await;
    assert_eq!(client.status(), 200, "{}", client.head);
    let head = client.head.to_ascii_lowercase();
    for line in [
        "content-type: text/event-stream",
        "cache-control: no-cache",
        "transfer-encoding: chunked",
        "access-control-allow-origin: *",
    ] {
        assert!(head.contains(line), "{line} in {head}");
    }
    let bootstrap = client
        .until("event: ready\ndata: {\"version\":3}\n\n", LIMIT)
        .await
        .unwrap();
    let (router_headers, router_body) = router_stream(&w).await;
    assert_eq!(
        bootstrap, router_body,
        "the same bytes as the router's stream"
    );
    // Every header the router's stream has (its own and its CORS layer's), the socket's has.
    assert!(!router_headers.is_empty());
    for (name, value) in &router_headers {
        let line = format!("{name}: {}", value.to_str().unwrap()).to_ascii_lowercase();
        assert!(head.contains(&line), "{line} in {head}");
    }

    w.apply(4, Item::FlagDelete { key: "dark".into() });
    let live = client
        .until(&format!("id: {EPOCH}.4\n"), LIMIT)
        .await
        .unwrap();
    assert!(live.ends_with(&format!(
        "id: {EPOCH}.4\nevent: update\ndata: {{\"env_id\":\"{ENV}\",\"key\":\"dark\",\"type\":\"DELETE\"}}\n\n"
    )), "{live}");

    let mut resumed = Client::stream(
        served.addr,
        SERVER_KEY,
        &format!("Last-Event-ID: {EPOCH}.3\r\n"),
    )
    .await;
    let missed = resumed
        .until(&format!("id: {EPOCH}.4\n"), LIMIT)
        .await
        .unwrap();
    assert!(
        !missed.contains("connected"),
        "a resumed stream does not start over: {missed}"
    );
    assert_eq!(versions(&missed), [4]);
    assert_eq!(w.state.fanout.open_streams(), 2);

    // A version with nothing for the stream (a setting here; another key alike) sends
    // nothing — least of all an empty chunk, which would end the response — and the next
    // change arrives as usual.
    w.apply(5, Item::SettingsUpdate { json: "{}".into() });
    // Time for the writer to sweep version 5 on its own (were it swept with 6, the test
    // would prove nothing; it cannot fail because of the wait).
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.apply(6, Item::FlagDelete { key: "beta".into() });
    for c in [&mut client, &mut resumed] {
        let text = c.until(&format!("id: {EPOCH}.6\n"), LIMIT).await;
        assert!(!c.ended && !c.closed, "the stream goes on");
        let text = text.unwrap();
        let live = &text[text.find("event: ready").map_or(0, |at| at)..];
        assert_eq!(versions(live).last(), Some(&6));
        assert!(!versions(live).contains(&5), "{text}");
    }
    served.stop().await;
}

#[tokio::test]
async fn what_the_socket_path_does_not_take_the_router_answers() {
    let w = world();
    let served = serve(&w).await;
    let json_error = |client: &Client, status: u16| {
        assert_eq!(client.status(), status, "{}", client.head);
        assert!(
            client
                .head
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{}",
            client.head
        );
    };
    // Refusals, in the router's words.
    let mut missing = Client::open(served.addr, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n").await;
    json_error(&missing, 401);
    while !String::from_utf8_lossy(&missing.raw).contains("\"unauthorized\"") {
        assert!(missing.fill(LIMIT).await, "the router's JSON body");
    }
    let client = Client::stream(served.addr, CLIENT_KEY, "").await;
    json_error(&client, 403);
    let unknown = Client::stream(served.addr, "cg_srv_nobody", "").await;
    json_error(&unknown, 401);
    // Other paths and methods, and what this path does not parse, go to the router.
    let other = Client::open(served.addr, "GET /streams HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(other.status(), 404, "{}", other.head);
    let preflight = Client::open(
        served.addr,
        "OPTIONS /stream HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\n\r\n",
    )
    .await;
    assert_eq!(preflight.status(), 204, "{}", preflight.head);
    let old = Client::open(
        served.addr,
        &format!("GET /stream HTTP/1.0\r\nAuthorization: Bearer {SERVER_KEY}\r\n\r\n"),
    )
    .await;
    assert_eq!(
        old.status(),
        200,
        "HTTP/1.0 is served by the router: {}",
        old.head
    );
    let garbage = Client::open(served.addr, "GET /stream HTTP/1.1\r\nno colon here\r\n\r\n").await;
    assert_eq!(garbage.status(), 400, "{}", garbage.head);
    // Bare LF line ends, as hyper accepts them, are understood here too (without waiting for
    // a CRLF that never comes).
    let lf = Client::open(
        served.addr,
        &format!("GET /stream?sdk_key={SERVER_KEY} HTTP/1.1\nHost: x\n\n"),
    )
    .await;
    assert_eq!(lf.status(), 200, "{}", lf.head);
    assert_eq!(w.state.fanout.open_streams(), 1, "served on its socket");
    // A head split into small pieces is still understood.
    let mut socket = TcpStream::connect(served.addr).await.unwrap();
    let request = format!("GET /stream?sdk_key={SERVER_KEY} HTTP/1.1\r\nHost: x\r\n\r\n");
    for piece in request.as_bytes().chunks(5) {
        socket.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut reply = vec![0u8; 4096];
    let n = tokio::time::timeout(LIMIT, socket.read(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(
        reply[..n].starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&reply[..n])
    );
    // A keep-alive connection serves request after request.
    let mut socket = TcpStream::connect(served.addr).await.unwrap();
    for _ in 0..2 {
        socket
            .write_all(format!("GET /api/v1/flags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SERVER_KEY}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&reply).contains("\"checkout\"") {
            let n = tokio::time::timeout(LIMIT, socket.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed");
            reply.extend_from_slice(&buf[..n]);
        }
        assert!(reply.starts_with(b"HTTP/1.1 200 OK\r\n"));
    }
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_gets_every_version_once_in_order_while_joining_and_lagging() {
    let w = world();
    let served = serve_cramped(&w).await;
    let last = 300;
    let writer = {
        let served = w.served.clone();
        tokio::spawn(async move {
            for v in 4..=last {
                served.replica.apply(&checkgate_protocol::frame::Changes {
                    env_id: ENV.into(),
                    epoch: EPOCH,
                    changes: vec![checkgate_protocol::frame::ChangeRecord {
                        version: v,
                        item: upsert(v),
                    }],
                });
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut readers = tokio::task::JoinSet::new();
    for i in 0..40u64 {
        let addr = served.addr;
        readers.spawn(async move {
            // Streams open all along the writes; some read slowly, so the writer finds their
            // sockets full and hands them back to catch up.
            tokio::time::sleep(Duration::from_millis(i * 10)).await;
            let slow = i % 4 == 0;
            let mut client = if slow {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.set_recv_buffer_size(2048).unwrap();
                let socket = socket.connect(addr).await.unwrap();
                Client::open_on(
                    socket,
                    &format!("GET /stream HTTP/1.1\r\nAuthorization: Bearer {SERVER_KEY}\r\n\r\n"),
                )
                .await
            } else {
                Client::stream(addr, SERVER_KEY, "").await
            };
            let needle = format!("id: {EPOCH}.{last}\n");
            if slow {
                // Reading nothing for a while: the socket fills, and the writer hands the
                // stream back to catch up on its own.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let text = client.until(&needle, LIMIT).await;
            assert!(!client.ended && !client.closed, "stream {i} ended early");
            let text = text.unwrap_or_else(|| panic!("stream {i} did not get to {last}"));
            let ready = text.find("event: ready").unwrap();
            let start: u64 = text[ready..]
                .split("\"version\":")
                .nth(1)
                .unwrap()
                .split('}')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let live = versions(&text[ready..]);
            let want: Vec<u64> = (start + 1..=last).collect();
            assert_eq!(
                live, want,
                "stream {i}: after its bootstrap at {start}, every version once, in order"
            );
        });
    }
    while let Some(done) = tokio::time::timeout(Duration::from_secs(60), readers.join_next())
        .await
        .unwrap()
    {
        done.unwrap();
    }
    writer.await.unwrap();
    served.stop().await;
}

#[tokio::test]
async fn socket_streams_end_on_revocation_on_leaving_and_on_shutdown() {
    let w = world();
    let served = serve(&w).await;
    let mut revoked = Client::stream(served.addr, SERVER_KEY, "").await;
    revoked.until("event: ready", LIMIT).await.unwrap();
    let mut leaving = Vec::new();
    for _ in 0..3 {
        let mut c = Client::stream(served.addr, SERVER_KEY, "").await;
        c.until("event: ready", LIMIT).await.unwrap();
        leaving.push(c);
    }
    assert_eq!(w.state.fanout.open_streams(), 4);
    drop(leaving);
    let deadline = Instant::now() + LIMIT;
    while w.state.fanout.open_streams() != 1 {
        assert!(
            Instant::now() < deadline,
            "streams whose clients left are closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.apply(
        4,
        Item::SdkKeyRevoke {
            id: "k-server".into(),
        },
    );
    assert!(
        revoked.ends_within(LIMIT).await,
        "the stream of a revoked key ends"
    );
    assert!(revoked.ended, "with the last chunk");
    served.stop().await;

    let w = world();
    let served = serve(&w).await;
    let mut open = Client::stream(served.addr, SERVER_KEY, "").await;
    open.until("event: ready", LIMIT).await.unwrap();
    assert_eq!(
        w.state.fanout.writers_held(),
        1,
        "one writer per environment"
    );
    let stopping = tokio::spawn(served.stop());
    assert!(open.ends_within(LIMIT).await);
    assert!(
        open.ended,
        "a stopping server sends each stream its last chunk"
    );
    stopping.await.unwrap();
    assert_eq!(
        w.state.fanout.writers_held(),
        0,
        "the fan-out joined its writers before the server stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off_not_buffered() {
    let w = world();
    let served = serve(&w).await;
    // A small receive buffer; the bootstrap read, then nothing while far more than the recent
    // events pass.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let socket = socket.connect(served.addr).await.unwrap();
    let mut client = Client::open_on(
        socket,
        &format!("GET /stream HTTP/1.1\r\nAuthorization: Bearer {SERVER_KEY}\r\n\r\n"),
    )
    .await;
    client.until("event: ready", LIMIT).await.unwrap();
    let mut socket = client.socket;
    let padding = "x".repeat(8 * 1024);
    let last = 3 + sdk::events::RECENT_VERSIONS as u64 + 10;
    for v in 4..=last {
        w.apply(v, Item::FlagUpsert {
            key: "dark".into(),
            json: json!({"key": "dark", "is_enabled": false, "description": format!("{v}{padding}")}).to_string(),
        });
        if v.is_multiple_of(16) {
            // Let the writer run between changes, as it would.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut position = w.state.hub.env(ENV).subscribe();
    tokio::time::timeout(LIMIT, position.wait_for(|(_, v)| *v >= last))
        .await
        .unwrap()
        .unwrap();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(LIMIT, socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => panic!("a client that stopped reading is cut off; it was still open"),
        }
    }
    let text = String::from_utf8_lossy(&received);
    assert!(
        !text.contains(&format!("id: {EPOCH}.{last}\n")),
        "it was cut off, not sent everything"
    );
    assert!(
        received.len() < 12 << 20,
        "what it was sent is bounded by the kernel's buffers, not kept for it: {} bytes",
        received.len()
    );
    let deadline = Instant::now() + LIMIT;
    while w.state.fanout.open_streams() != 0 {
        assert!(Instant::now() < deadline, "its stream is closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    served.stop().await;
}

#[tokio::test]
async fn an_ofrep_event_stream_ends_at_once_when_the_service_stops() {
    let w = world();
    let served = serve(&w).await;
    let bulk = w
        .post("/ofrep/v1/evaluate/flags", SERVER_KEY, json!({}))
        .await;
    let uri = bulk.json()["eventStreams"][0]["endpoint"]["requestUri"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut notices = Client::open(
        served.addr,
        &format!("GET {uri} HTTP/1.1\r\nHost: x\r\n\r\n"),
    )
    .await;
    assert_eq!(notices.status(), 200, "{}", notices.head);
    notices.until("refetchEvaluation", LIMIT).await.unwrap();
    w.apply(4, Item::FlagDelete { key: "dark".into() });
    notices
        .until(&format!("id: {EPOCH}.4\n"), LIMIT)
        .await
        .unwrap();
    // The grace period is a minute; the stream must end, and the server stop, well before.
    let stopping = tokio::spawn(served.stop());
    assert!(
        notices.ends_within(LIMIT).await,
        "an OFREP event stream ends when the service stops"
    );
    assert!(notices.ended, "with the last chunk");
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_stream_asking_for_a_version_not_held_yet_is_left_to_the_router_which_waits() {
    let w = world_serving(
        "{}",
        &sdk::ServeArgs {
            min_version_wait_ms: 3_600_000,
            ..sdk::ServeArgs::default()
        },
    );
    let served = serve(&w).await;
    // Held already: served on its socket, as without the header.
    let mut held = Client::stream(served.addr, SERVER_KEY, "X-Checkgate-Min-Version: 3\r\n").await;
    assert_eq!(held.status(), 200, "{}", held.head);
    let bootstrap = held.until("data: {\"version\":3}", LIMIT).await.unwrap();
    assert!(bootstrap.contains("event: ready"), "{bootstrap}");
    assert_eq!(w.state.fanout.open_streams(), 1, "served on its socket");
    // Malformed: the router's 400.
    let bad = Client::stream(served.addr, SERVER_KEY, "X-Checkgate-Min-Version: x\r\n").await;
    assert_eq!(bad.status(), 400, "{}", bad.head);
    // To come: the router waits for it, and the bootstrap brings it. (The request is sent
    // before the version is applied; whether the server has read it by then, the answer must
    // reflect version 4.)
    let mut socket = TcpStream::connect(served.addr).await.unwrap();
    socket
        .write_all(
            format!(
                "GET /stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SERVER_KEY}\r\n\
                 X-Checkgate-Min-Version: 4\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let pending = tokio::spawn(async move {
        let mut client = Client::open_on(socket, "").await;
        let bootstrap = client.until("event: ready", Duration::from_secs(60)).await;
        (client.status(), bootstrap)
    });
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    w.apply(4, upsert(4));
    let (status, bootstrap) = tokio::time::timeout(Duration::from_secs(60), pending)
        .await
        .expect("answered once the version came")
        .unwrap();
    assert_eq!(status, 200);
    let bootstrap = bootstrap.unwrap();
    assert!(bootstrap.contains("\"description\":\"v4 "), "{bootstrap}");
    assert_eq!(versions(&bootstrap).last(), Some(&4), "{bootstrap}");
    served.stop().await;
}

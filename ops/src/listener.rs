//! The front door of a public listener: reads the start of each new connection and hands the
//! `GET` requests for one path that a [`Takeover`] serves on the socket itself (the SDK
//! stream, which holds a connection for hours and is cheaper without hyper's buffers); every
//! other connection goes to hyper and the router, with the bytes already read put back in
//! front.
//!
//! A request is taken only when its whole head is understood and the takeover lets it in:
//! HTTP/1.1, `GET`, the takeover's path, no body, no upgrade, nothing after the head. Anything
//! else — a refusal, a malformed or oversized head, HTTP/1.0, a pipelined request — is left to
//! the router, which answers it exactly as it answers it everywhere (JSON errors, CORS,
//! metrics). A connection that starts with another request and asks for the path later is
//! served by the router.
//!
//! The door also holds against slow and greedy clients ([`Limits`]): a connection whose head
//! does not arrive within the header timeout is closed (here while it is sorted, by hyper's
//! header-read timer after that, which also closes a keep-alive connection idle that long),
//! and past the cap on open connections a new one is answered 503 with `Retry-After` and
//! closed, rather than the listener ceasing to accept.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::{Buf as _, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A route served on the socket, off hyper and the router. Its requests reach it only when
/// whole and plain (see the module's documentation); what it declines goes to the router.
pub trait Takeover: Send + Sync + std::fmt::Debug + 'static {
    /// The path taken, such as `/stream`.
    fn path(&self) -> &'static str;

    /// Whether to serve this request here: the task that serves it on its socket, or `None`
    /// to leave it to the router (a refusal, answered there in the same words as everywhere).
    fn take(&self, request: &Request) -> Option<Serve>;

    /// Ends everything served here (at shutdown), resolving when it has ended.
    fn stop(&self) -> BoxFuture<'_>;
}

/// A boxed future of nothing.
pub type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The task that serves a taken request on its socket.
pub type Serve = Box<dyn FnOnce(TcpStream) -> BoxFuture<'static> + Send>;

/// The largest request head read here; a larger one is left to hyper (which refuses it).
const MAX_HEAD: usize = 16 * 1024;
/// Headers parsed at most.
const MAX_HEADERS: usize = 64;

/// What the front door holds a connection to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a connection gets to send a whole request head (and, kept alive, may sit idle
    /// between requests) before it is closed.
    pub header_timeout: Duration,
    /// Open connections at most; past it a new one is answered 503 and closed.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            max_connections: 10_000,
        }
    }
}

/// Connections refused with 503 at once at most; past it, a refused connection is closed
/// without an answer (a flood must not cost a task and a descriptor per connection).
const MAX_REFUSING: usize = 256;
/// How long a refused connection gets to take its 503.
const REFUSAL_WAIT: Duration = Duration::from_secs(2);

/// What a connection refused past [`Limits::max_connections`] is sent.
fn busy() -> &'static [u8] {
    static BUSY: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        let body = r#"{"error":{"code":"unavailable","message":"this server holds as many connections as it may; try again shortly"}}"#;
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    });
    &BUSY
}

/// Counts one open connection (or refusal) for as long as it lives, and keeps the count's
/// gauge, if it has one, true on the way in and on the way out.
#[derive(Debug)]
struct Open {
    count: Arc<AtomicUsize>,
    gauge: Option<&'static str>,
}

/// Connections open now, served or being sorted ([`Listener::open`]).
const OPEN_GAUGE: &str = "checkgate_http_connections_open";

impl Open {
    fn new(count: &Arc<AtomicUsize>, gauge: Option<&'static str>) -> Self {
        let now = count.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(name) = gauge {
            metrics::gauge!(name).set(now as f64);
        }
        Self {
            count: Arc::clone(count),
            gauge,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let now = self.count.fetch_sub(1, Ordering::Relaxed) - 1;
        if let Some(name) = self.gauge {
            metrics::gauge!(name).set(now as f64);
        }
    }
}

/// The public listener: accepts TCP connections up to its [`Limits`] and, with a
/// [`Takeover`], takes its requests off them before they reach hyper.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    takeover: Option<Arc<dyn Takeover>>,
    limits: Limits,
    /// Connections open now (served by hyper, being sorted, or taken over).
    open: Arc<AtomicUsize>,
    /// Refusals being written now.
    refusing: Arc<AtomicUsize>,
    /// Connections read past their start and found to be for hyper.
    routed: mpsc::Receiver<(Prefixed, SocketAddr)>,
    route: mpsc::Sender<(Prefixed, SocketAddr)>,
    /// No accepting before this, after an error that waiting may cure.
    paused_until: Option<tokio::time::Instant>,
}

impl Listener {
    /// `takeover`: what is served here off hyper; `None` leaves every connection to hyper
    /// untouched.
    pub fn new(listener: TcpListener, takeover: Option<Arc<dyn Takeover>>) -> Self {
        let (route, routed) = mpsc::channel(1024);
        Self {
            listener,
            takeover,
            limits: Limits::default(),
            open: Arc::default(),
            refusing: Arc::default(),
            routed,
            route,
            paused_until: None,
        }
    }

    /// The same listener holding connections to `limits`.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// What this listener holds connections to.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// What this listener serves off hyper, if anything.
    pub fn takeover(&self) -> Option<&Arc<dyn Takeover>> {
        self.takeover.as_ref()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection for hyper, with what was already read of it. Connections past the
    /// cap are answered 503 and closed here; stream requests are served here.
    pub async fn accept(&mut self) -> (Prefixed, SocketAddr) {
        loop {
            // Connections already read and found to be hyper's come first, also while
            // accepting is paused after an error.
            let (paused_until, listener) = (self.paused_until, &self.listener);
            let accept = async move {
                sleep_until(paused_until).await;
                listener.accept().await
            };
            let (socket, peer) = tokio::select! {
                biased;
                Some(routed) = self.routed.recv() => return routed,
                accepted = accept => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        self.paused_until =
                            accept_failed(&e).map(|pause| tokio::time::Instant::now() + pause);
                        continue;
                    }
                },
            };
            if self.open.load(Ordering::Relaxed) >= self.limits.max_connections {
                self.refuse(socket);
                continue;
            }
            let open = Open::new(&self.open, Some(OPEN_GAUGE));
            // Responses are written whole; never hold one back for Nagle.
            let _ = socket.set_nodelay(true);
            let Some(takeover) = self.takeover.clone() else {
                return (Prefixed::new(socket, Bytes::new(), open), peer);
            };
            let (route, wait) = (self.route.clone(), self.limits.header_timeout);
            tokio::spawn(async move {
                if let Some(rest) = sort(takeover, socket, open, wait).await {
                    let _ = route.send((rest, peer)).await;
                }
            });
        }
    }

    /// Answers a connection past the cap with 503 and Retry-After, and closes it; or, when
    /// too many refusals are under way, closes it at once.
    fn refuse(&self, socket: TcpStream) {
        metrics::counter!("checkgate_http_connections_refused_total").increment(1);
        if self.refusing.load(Ordering::Relaxed) >= MAX_REFUSING {
            return;
        }
        let refusing = Open::new(&self.refusing, None);
        tokio::spawn(async move {
            let _refusing = refusing;
            let mut socket = socket;
            let _ = tokio::time::timeout(REFUSAL_WAIT, async {
                socket.write_all(busy()).await?;
                socket.shutdown().await?;
                // Read what the client sent until it closes, so closing does not reset the
                // connection before it has read the answer.
                let mut scratch = [0u8; 1024];
                while socket.read(&mut scratch).await? > 0 {}
                Ok::<_, std::io::Error>(())
            })
            .await;
        });
    }
}

/// How long to stop accepting after `e`: a connection that failed before it was accepted is
/// nothing; running out of descriptors or memory is waited out, so the loop does not spin.
fn accept_failed(e: &std::io::Error) -> Option<Duration> {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return None;
    }
    tracing::error!(cause = %e, "accepting a connection failed");
    Some(Duration::from_secs(1))
}

/// Resolves at `until`, or at once without one.
async fn sleep_until(until: Option<tokio::time::Instant>) {
    if let Some(until) = until {
        tokio::time::sleep_until(until).await;
    }
}

/// What the start of a connection is.
#[derive(Debug, PartialEq, Eq)]
enum Start {
    /// Not a request for the path: hyper's.
    Other,
    /// Maybe one: read on.
    Unsure,
    /// A request line for the path.
    Taken,
}

/// Whether `read` starts a `GET` of `path` (with or without a query).
fn start(read: &[u8], path: &str) -> Start {
    const GET: &[u8] = b"GET ";
    let prefix = GET.iter().chain(path.as_bytes());
    let len = GET.len() + path.len();
    if read.iter().zip(prefix).any(|(a, b)| a != b) {
        return Start::Other;
    }
    match read.get(len) {
        None => Start::Unsure,
        Some(b' ' | b'?') => Start::Taken,
        Some(_) => Start::Other,
    }
}

/// Reads the start of a connection; serves it here if the takeover takes it, or returns it,
/// with what was read, for hyper. A connection whose head does not arrive within `wait` is
/// closed.
async fn sort(
    takeover: Arc<dyn Takeover>,
    socket: TcpStream,
    open: Open,
    wait: Duration,
) -> Option<Prefixed> {
    let path = takeover.path();
    let started = Instant::now();
    let mut read = BytesMut::with_capacity(1024);
    let head = tokio::time::timeout(wait, async {
        loop {
            socket.readable().await.ok()?;
            match socket.try_read_buf(&mut read) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return None,
            }
            match start(&read, path) {
                Start::Other => return Some(None),
                Start::Unsure => continue,
                Start::Taken => {}
            }
            match parse(&read, path) {
                Head::Partial => {}
                Head::Take(request) => return Some(Some(request)),
                Head::Leave => return Some(None),
            }
        }
    })
    .await;
    let request = match head {
        // Closed or failed before a request, or too slow to send one: nothing to serve.
        Ok(None) | Err(_) => return None,
        Ok(Some(request)) => request,
    };
    // A refusal is the router's to answer, in the same words as everywhere.
    let Some(serve) = request.and_then(|r| takeover.take(&r)) else {
        return Some(Prefixed::new(socket, read.freeze(), open));
    };
    crate::metrics::record(path, 200, started.elapsed());
    tracing::debug!(method = "GET", path, route = path, status = 200, "request");
    drop(read);
    serve(socket).await;
    drop(open);
    None
}

/// A whole, plain `GET` of a takeover's path.
#[derive(Debug)]
pub struct Request {
    pub headers: HeaderMap,
    pub query: Option<String>,
}

/// What the bytes read so far of a connection are to the front door ([`parse`]).
#[derive(Debug)]
pub enum Head {
    /// The start of a head: read on.
    Partial,
    /// A whole request for the path.
    Take(Request),
    /// Anything else — too long, too many headers, not HTTP, not a plain stream request, or
    /// followed by more bytes (a body, a pipelined request): the router's.
    Leave,
}

/// Parses what was read of a request for `path`: never panics, never reads past `read`, and
/// takes a head only when it is whole, plain and all that was read (the fuzz target
/// `ops/fuzz/fuzz_targets/stream_head.rs` holds it to that).
pub fn parse(read: &[u8], path: &str) -> Head {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    match request.parse(read) {
        Ok(httparse::Status::Complete(len)) if len == read.len() => {}
        Ok(httparse::Status::Partial) if read.len() <= MAX_HEAD => return Head::Partial,
        _ => return Head::Leave,
    }
    take(&request, path).map_or(Head::Leave, Head::Take)
}

/// The request for `path` in a whole head; `None` unless it is plain enough to take.
fn take(request: &httparse::Request<'_, '_>, wanted: &str) -> Option<Request> {
    if request.method != Some("GET") || request.version != Some(1) {
        return None;
    }
    let (path, query) = match request.path?.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (request.path?, None),
    };
    if path != wanted {
        return None;
    }
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for header in request.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let body = match name.as_str() {
            "content-length" => header.value != b"0",
            "transfer-encoding" | "upgrade" | "expect" => true,
            _ => false,
        };
        if body {
            return None;
        }
        headers.append(name, HeaderValue::from_bytes(header.value).ok()?);
    }
    Some(Request { headers, query })
}

/// A connection for hyper: the bytes already read from it, then the socket.
#[derive(Debug)]
pub struct Prefixed {
    read: Bytes,
    socket: TcpStream,
    /// Counts the connection as open while it lives.
    _open: Open,
}

impl Prefixed {
    fn new(socket: TcpStream, read: Bytes, open: Open) -> Self {
        Self {
            read,
            socket,
            _open: open,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.read.is_empty() {
            return Pin::new(&mut self.socket).poll_read(cx, buf);
        }
        let n = self.read.len().min(buf.remaining());
        buf.put_slice(&self.read[..n]);
        self.read.advance(n);
        if self.read.is_empty() {
            // Let go of the buffer it was read into.
            self.read = Bytes::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_request_line_for_the_path_is_kept_from_hyper() {
        let start = |read: &[u8]| start(read, "/stream");
        assert_eq!(start(b"GET /stream HTTP/1.1\r\n"), Start::Taken);
        assert_eq!(start(b"GET /stream?sdk_key=x HTTP/1.1"), Start::Taken);
        assert_eq!(start(b"GET /str"), Start::Unsure);
        assert_eq!(start(b""), Start::Unsure);
        assert_eq!(start(b"GET /streams HTTP/1.1"), Start::Other);
        assert_eq!(start(b"POST /stream HTTP/1.1"), Start::Other);
        assert_eq!(start(b"PRI * HTTP/2.0"), Start::Other);
    }

    fn parsed(head: &str) -> Option<Request> {
        match parse(head.as_bytes(), "/stream") {
            Head::Take(request) => Some(request),
            Head::Partial | Head::Leave => None,
        }
    }

    #[test]
    fn a_head_is_taken_only_when_every_part_of_it_is_understood() {
        let ok =
            parsed("GET /stream?sdk_key=k&x=1 HTTP/1.1\r\nHost: a\r\nLast-Event-ID: 1.2\r\n\r\n")
                .expect("a plain stream request");
        assert_eq!(ok.query.as_deref(), Some("sdk_key=k&x=1"));
        assert_eq!(ok.headers["last-event-id"], "1.2");
        assert!(parsed("GET /stream HTTP/1.1\r\nContent-Length: 0\r\n\r\n").is_some());
        for other in [
            "GET /stream HTTP/1.0\r\n\r\n",
            "GET /stream/x HTTP/1.1\r\n\r\n",
            "GET /stream HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
            "GET /stream HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /stream HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /stream HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET /stream HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "GET /stream HTTP/1.1\r\nX: \x01\r\n\r\n",
        ] {
            assert!(parsed(other).is_none(), "{other:?}");
        }
        let head = "GET /stream HTTP/1.1\r\n\r\n";
        assert!(
            parsed(&format!("{head}GET / HTTP/1.1\r\n\r\n")).is_none(),
            "pipelined"
        );
        assert!(matches!(
            parse(b"GET /stream HTTP/1.1\r\nHost", "/stream"),
            Head::Partial
        ));
        assert!(matches!(
            parse(&[b'x'; MAX_HEAD + 1], "/stream"),
            Head::Leave
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panic_and_take_only_whole_plain_heads(
            read in proptest::collection::vec(proptest::num::u8::ANY, 0..512)
        ) {
            if let Head::Take(request) = parse(&read, "/stream") {
                proptest::prop_assert!(read.starts_with(b"GET /stream"));
                proptest::prop_assert!(read.ends_with(b"\n\n") || read.ends_with(b"\r\n\r\n"));
                proptest::prop_assert!(!request.headers.contains_key("transfer-encoding"));
            }
        }

        #[test]
        fn every_proper_prefix_of_a_head_is_partial(
            query in "[a-z0-9=&_]{0,40}",
            headers in proptest::collection::vec(("[a-z][a-z-]{0,15}", "[ -~&&[^:]]{0,30}"), 0..8),
        ) {
            let mut head = format!("GET /stream?{query} HTTP/1.1\r\n");
            for (name, value) in &headers {
                if !matches!(name.as_str(), "content-length" | "transfer-encoding" | "upgrade" | "expect") {
                    head.push_str(&format!("{name}: {}\r\n", value.trim()));
                }
            }
            head.push_str("\r\n");
            let whole = head.as_bytes();
            proptest::prop_assert!(matches!(parse(whole, "/stream"), Head::Take(_)), "{head:?}");
            for end in 0..whole.len() {
                proptest::prop_assert!(
                    matches!(parse(&whole[..end], "/stream"), Head::Partial),
                    "{:?}", &head[..end]
                );
            }
        }
    }
}

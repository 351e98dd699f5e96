//! The front door of a public listener: reads the start of each new connection and takes the
//! `GET /stream` requests it can serve on the socket itself ([`super::fanout`]); every other
//! connection goes to hyper and the router, with the bytes already read put back in front.
//!
//! A stream is taken only when its whole request is understood and let in: HTTP/1.1, `GET`,
//! path `/stream`, no body, no upgrade, nothing after the head, a key that stands and may read
//! rules. Anything else — a refusal, a malformed or oversized head, HTTP/1.0, a pipelined
//! request, a head that does not arrive within [`HEAD_WAIT`] — is left to the router, which
//! answers it exactly as it answers it everywhere (JSON errors, CORS, metrics). A connection
//! that starts with another request and asks for `/stream` later is served by the router's
//! stream handler.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::{Buf as _, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::SdkState;

/// How long the start of a request may take to arrive before the connection is left to hyper.
pub const HEAD_WAIT: Duration = Duration::from_secs(10);
/// The largest request head read here; a larger one is left to hyper (which refuses it).
const MAX_HEAD: usize = 16 * 1024;
/// Headers parsed at most.
const MAX_HEADERS: usize = 64;

/// A listener for `axum::serve`: accepts TCP connections and, when it serves SDK routes, takes
/// stream requests off them before they reach hyper.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    streams: Option<SdkState>,
    /// Connections read past their start and found to be for hyper.
    routed: mpsc::Receiver<(Prefixed, SocketAddr)>,
    route: mpsc::Sender<(Prefixed, SocketAddr)>,
    /// No accepting before this, after an error that waiting may cure.
    paused_until: Option<tokio::time::Instant>,
}

impl Listener {
    /// `streams`: the SDK state whose `/stream` is served here; `None` leaves every connection
    /// to hyper untouched.
    pub fn new(listener: TcpListener, streams: Option<SdkState>) -> Self {
        let (route, routed) = mpsc::channel(1024);
        Self {
            listener,
            streams,
            routed,
            route,
            paused_until: None,
        }
    }

    /// The SDK state whose streams this listener serves, if any.
    pub fn streams(&self) -> Option<&SdkState> {
        self.streams.as_ref()
    }
}

impl axum::serve::Listener for Listener {
    type Io = Prefixed;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Prefixed, SocketAddr) {
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
            // Responses are written whole; never hold one back for Nagle.
            let _ = socket.set_nodelay(true);
            let Some(state) = self.streams.clone() else {
                return (Prefixed::new(socket, Bytes::new()), peer);
            };
            let route = self.route.clone();
            tokio::spawn(async move {
                if let Some(rest) = sort(state, socket).await {
                    let _ = route.send((rest, peer)).await;
                }
            });
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
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
    /// Not a stream request: hyper's.
    Other,
    /// Maybe a stream request: read on.
    Unsure,
    /// A stream request line.
    Stream,
}

fn start(read: &[u8]) -> Start {
    const PREFIX: &[u8] = b"GET /stream";
    let n = read.len().min(PREFIX.len());
    if read[..n] != PREFIX[..n] {
        return Start::Other;
    }
    match read.get(PREFIX.len()) {
        None => Start::Unsure,
        Some(b' ' | b'?') => Start::Stream,
        Some(_) => Start::Other,
    }
}

/// Reads the start of a connection; serves it here if it is a stream this path takes, or
/// returns it, with what was read, for hyper.
async fn sort(state: SdkState, socket: TcpStream) -> Option<Prefixed> {
    let started = Instant::now();
    let mut read = BytesMut::with_capacity(1024);
    let head = tokio::time::timeout(HEAD_WAIT, async {
        loop {
            socket.readable().await.ok()?;
            match socket.try_read_buf(&mut read) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return None,
            }
            match start(&read) {
                Start::Other => return Some(None),
                Start::Unsure => continue,
                Start::Stream => {}
            }
            match parse(&read) {
                Head::Partial => {}
                Head::Take(request) => return Some(Some(request)),
                Head::Leave => return Some(None),
            }
        }
    })
    .await;
    let request = match head {
        // Closed or failed before a request: nothing to serve.
        Ok(None) => return None,
        Ok(Some(request)) => request,
        Err(_) => None,
    };
    // A refusal is the router's to answer, in the same words as everywhere.
    let taken =
        request.and_then(|r| super::stream::open(&state, &r.headers, r.query.as_deref()).ok());
    let Some(opened) = taken else {
        return Some(Prefixed::new(socket, read.freeze()));
    };
    crate::ops::metrics::record("/stream", 200, started.elapsed());
    tracing::debug!(
        method = "GET",
        path = "/stream",
        route = "/stream",
        status = 200,
        "request"
    );
    drop(read);
    super::fanout::serve(state, socket, opened).await;
    None
}

/// A stream request this path serves.
struct StreamRequest {
    headers: HeaderMap,
    query: Option<String>,
}

/// What the bytes read so far are.
enum Head {
    /// The start of a head: read on.
    Partial,
    /// A whole stream request this path takes.
    Take(StreamRequest),
    /// Anything else — too long, too many headers, not HTTP, not a plain stream request, or
    /// followed by more bytes (a body, a pipelined request): the router's.
    Leave,
}

/// Parses what was read of a request.
fn parse(read: &[u8]) -> Head {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    match request.parse(read) {
        Ok(httparse::Status::Complete(len)) if len == read.len() => {}
        Ok(httparse::Status::Partial) if read.len() <= MAX_HEAD => return Head::Partial,
        _ => return Head::Leave,
    }
    take(&request).map_or(Head::Leave, Head::Take)
}

/// The stream request in a whole head; `None` unless this path takes it.
fn take(request: &httparse::Request<'_, '_>) -> Option<StreamRequest> {
    if request.method != Some("GET") || request.version != Some(1) {
        return None;
    }
    let (path, query) = match request.path?.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (request.path?, None),
    };
    if path != "/stream" {
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
    Some(StreamRequest { headers, query })
}

/// A connection for hyper: the bytes already read from it, then the socket.
#[derive(Debug)]
pub struct Prefixed {
    read: Bytes,
    socket: TcpStream,
}

impl Prefixed {
    fn new(socket: TcpStream, read: Bytes) -> Self {
        Self { read, socket }
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
    fn only_a_stream_request_line_is_kept_from_hyper() {
        assert_eq!(start(b"GET /stream HTTP/1.1\r\n"), Start::Stream);
        assert_eq!(start(b"GET /stream?sdk_key=x HTTP/1.1"), Start::Stream);
        assert_eq!(start(b"GET /str"), Start::Unsure);
        assert_eq!(start(b""), Start::Unsure);
        assert_eq!(start(b"GET /streams HTTP/1.1"), Start::Other);
        assert_eq!(start(b"POST /stream HTTP/1.1"), Start::Other);
        assert_eq!(start(b"PRI * HTTP/2.0"), Start::Other);
    }

    fn parsed(head: &str) -> Option<StreamRequest> {
        match parse(head.as_bytes()) {
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
            parse(b"GET /stream HTTP/1.1\r\nHost"),
            Head::Partial
        ));
        assert!(matches!(parse(&[b'x'; MAX_HEAD + 1]), Head::Leave));
    }
}

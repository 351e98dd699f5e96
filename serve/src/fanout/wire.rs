//! The bytes of a stream on its socket: the response head, HTTP/1 chunks, and writing and
//! reading without waiting.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf as _, Bytes};
use tokio::net::TcpStream;

/// The response head of every stream served here, after its `date`: what the router's
/// handler and its CORS layer would send, and `Connection: close`, as the connection ends with
/// its stream.
const HEAD: &str = "content-type: text/event-stream\r\n\
cache-control: no-cache\r\n\
x-accel-buffering: no\r\n\
access-control-allow-origin: *\r\n\
access-control-expose-headers: ETag, Retry-After\r\n\
transfer-encoding: chunked\r\n\
connection: close\r\n\
\r\n";

/// The response head, dated now.
pub(super) fn head() -> Bytes {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    Bytes::from(format!("HTTP/1.1 200 OK\r\ndate: {date}\r\n{HEAD}"))
}
/// The last chunk of a stream.
pub(super) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
const CRLF: &[u8] = b"\r\n";
/// [`KEEP_ALIVE`] as a chunk.
pub(super) const KEEP_ALIVE_CHUNK: &[u8] = b"e\r\n: keep-alive\n\n\r\n";

/// `data` as one HTTP/1 chunk.
pub(super) fn chunk(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 12);
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(CRLF);
    Bytes::from(out)
}

/// Queues `parts` as one chunk without copying them: size line, the shared bytes, CRLF.
/// Nothing for no bytes (an empty chunk would end the response).
pub(super) fn push_chunk(pending: &mut VecDeque<Bytes>, parts: impl IntoIterator<Item = Bytes>) {
    let at = pending.len();
    pending.push_back(Bytes::new());
    pending.extend(parts.into_iter().filter(|p| !p.is_empty()));
    let size: usize = pending.range(at + 1..).map(Bytes::len).sum();
    if size == 0 {
        pending.truncate(at);
        return;
    }
    pending[at] = Bytes::from(format!("{size:x}\r\n"));
    pending.push_back(Bytes::from_static(CRLF));
}

/// Writes what it can of `pending` without waiting; drops what was written.
pub(super) fn write_some(socket: &TcpStream, pending: &mut VecDeque<Bytes>) -> std::io::Result<()> {
    let mut slices = [IoSlice::new(&[]); 16];
    let count = pending.len().min(slices.len());
    for (slice, bytes) in slices.iter_mut().zip(pending.iter()) {
        *slice = IoSlice::new(bytes);
    }
    let mut written = match socket.try_write_vectored(&slices[..count]) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
        Err(e) => return Err(e),
    };
    while written > 0 {
        let Some(front) = pending.front_mut() else {
            break;
        };
        if front.len() <= written {
            written -= front.len();
            pending.pop_front();
        } else {
            front.advance(written);
            written = 0;
        }
    }
    Ok(())
}

/// What a stream's client did while the stream sat in its group.
pub(super) enum Heard {
    /// It closed the connection (or it failed).
    Gone,
    /// It sent bytes, which mean nothing on a stream and are dropped.
    Noise,
}

/// Reads and drops what a client sent after its request.
pub(super) fn drain(socket: &TcpStream) -> Heard {
    let mut scratch = [0u8; 256];
    loop {
        match socket.try_read(&mut scratch) {
            Ok(0) => return Heard::Gone,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Heard::Noise,
            Err(_) => return Heard::Gone,
        }
    }
}

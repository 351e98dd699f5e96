//! What the front door's tests share: a loopback client's patience and one request.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Longer than any timeout under test: a read that waits this long means the server kept a
/// connection it should have closed.
pub(crate) const PATIENCE: Duration = Duration::from_secs(15);

/// Sends one whole request and reads its whole answer (the body is "ok").
pub(crate) async fn request(socket: &mut TcpStream) -> String {
    socket
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    while !all.ends_with(b"ok") {
        let n = tokio::time::timeout(PATIENCE, socket.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(
            n > 0,
            "closed before answering: {}",
            String::from_utf8_lossy(&all)
        );
        all.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&all).into_owned()
}

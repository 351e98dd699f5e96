//! A TCP proxy on loopback for fault tests: it forwards connections to an upstream address
//! and can cut them off. While partitioned it behaves like a network that drops every packet:
//! nothing is forwarded either way, connections stay open with their bytes held (as TCP would
//! keep retransmitting), and new connections are accepted but not connected through. Healing
//! lets everything held flow again.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A running proxy; dropping it closes every connection.
pub struct TcpProxy {
    addr: SocketAddr,
    partitioned: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on 127.0.0.1:0 and forwards to `upstream` (loopback only). Must be called
    /// within a tokio runtime.
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        if !upstream.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the proxy only forwards to loopback, not {upstream}"),
            ));
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (partitioned, watching) = watch::channel(false);
        let task = tokio::spawn(accept(listener, upstream, watching));
        Ok(Self {
            addr,
            partitioned,
            task,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every connection off while `on`; `false` heals.
    pub fn partition(&self, on: bool) {
        self.partitioned.send_replace(on);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits while the partition lasts.
async fn healed(partitioned: &mut watch::Receiver<bool>) {
    let _ = partitioned.wait_for(|on| !*on).await;
}

async fn accept(listener: TcpListener, upstream: SocketAddr, partitioned: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let mut partitioned = partitioned.clone();
                connections.spawn(async move {
                    healed(&mut partitioned).await;
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pump(client_read, server_write, partitioned.clone()),
                        pump(server_read, client_write, partitioned),
                    );
                });
            }
            Some(_) = connections.join_next() => {}
        }
    }
}

/// Copies `from` to `to`, holding what it read while the partition lasts, until either side
/// closes.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut partitioned: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        healed(&mut partitioned).await;
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            // Cut off while waiting: stop reading, so the bytes stay in the kernel's buffers.
            _ = partitioned.wait_for(|on| *on) => continue,
        };
        healed(&mut partitioned).await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn bytes_flow_stop_while_partitioned_and_flow_again_after() {
        let upstream = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let upstream_addr = upstream.local_addr().unwrap();
        let echo = tokio::spawn(async move {
            let (mut s, _) = upstream.accept().await.unwrap();
            let mut buf = [0u8; 64];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).await.unwrap();
            }
        });
        let proxy = TcpProxy::start(upstream_addr).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut buf = [0u8; 5];
        client.write_all(b"hello").await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");

        proxy.partition(true);
        client.write_all(b"world").await.unwrap();
        let held =
            tokio::time::timeout(Duration::from_millis(300), client.read_exact(&mut buf)).await;
        assert!(held.is_err(), "nothing crosses a partition");

        proxy.partition(false);
        tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"world", "what was held arrives after healing");
        drop(client);
        tokio::time::timeout(Duration::from_secs(10), echo)
            .await
            .unwrap()
            .unwrap();
    }
}

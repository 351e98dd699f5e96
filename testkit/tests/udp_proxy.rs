//! The test kit's UDP fault proxy on loopback: clean forwarding, drops, partitions, duplicates,
//! seeded reordering, one mapping per client, loopback-only upstreams, and no task outliving it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use checkgate_testkit::udp_proxy::{Faults, ProxyStats, UdpProxy};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// How long something that must happen may take.
const WAIT: Duration = Duration::from_secs(10);
/// How long we listen for something that must not happen.
const QUIET: Duration = Duration::from_millis(200);

/// A UDP echo server on loopback, stopped when dropped.
struct Echo {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Echo {
    async fn start() -> Self {
        let socket = bind().await;
        let addr = socket.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buf = vec![0; 65_535];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                if socket.send_to(&buf[..len], from).await.is_err() {
                    break;
                }
            }
        });
        Self { addr, task }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn bind() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

/// A datagram tagged with its sender and numbered.
fn datagram(tag: u8, n: u32) -> Vec<u8> {
    let mut data = vec![tag];
    data.extend_from_slice(&n.to_be_bytes());
    data
}

fn parse(data: &[u8]) -> (u8, u32) {
    assert_eq!(data.len(), 5, "unexpected datagram {data:?}");
    (data[0], u32::from_be_bytes(data[1..].try_into().unwrap()))
}

/// Sends `0..n` tagged `tag` to `to` in one burst.
async fn send_burst(socket: &UdpSocket, to: SocketAddr, tag: u8, n: u32) {
    for i in 0..n {
        socket.send_to(&datagram(tag, i), to).await.unwrap();
    }
}

/// Receives `count` datagrams, failing after [`WAIT`]; returns them with their senders.
async fn recv(socket: &UdpSocket, count: usize) -> Vec<((u8, u32), SocketAddr)> {
    let mut buf = vec![0; 65_535];
    let mut got = Vec::with_capacity(count);
    timeout(WAIT, async {
        while got.len() < count {
            let (len, from) = socket.recv_from(&mut buf).await.unwrap();
            got.push((parse(&buf[..len]), from));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("received {} of {count} datagrams", got.len()));
    got
}

async fn recv_numbers(socket: &UdpSocket, count: usize) -> Vec<u32> {
    recv(socket, count)
        .await
        .into_iter()
        .map(|((_, n), _)| n)
        .collect()
}

/// True if nothing arrives for [`QUIET`].
async fn quiet(socket: &UdpSocket) -> bool {
    let mut buf = vec![0; 65_535];
    timeout(QUIET, socket.recv_from(&mut buf)).await.is_err()
}

/// Polls the proxy's counters until they match, failing after [`WAIT`].
async fn stats_become(proxy: &UdpProxy, expected: ProxyStats) {
    let reached = timeout(WAIT, async {
        while proxy.stats() != expected {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "stats {:?}, expected {expected:?}",
        proxy.stats()
    );
}

#[tokio::test]
async fn forwards_in_order_without_faults() {
    let echo = Echo::start().await;
    let proxy = UdpProxy::start(echo.addr, Faults::default()).await.unwrap();
    let client = bind().await;

    send_burst(&client, proxy.addr(), 1, 50).await;
    let got = recv(&client, 50).await;

    assert!(got.iter().all(|(_, from)| *from == proxy.addr()));
    let numbers: Vec<u32> = got.into_iter().map(|((_, n), _)| n).collect();
    assert_eq!(numbers, (0..50).collect::<Vec<_>>());
    let both_ways = ProxyStats {
        forwarded: 100,
        ..ProxyStats::default()
    };
    stats_become(&proxy, both_ways).await;
}

#[tokio::test]
async fn drops_everything_when_told_and_recovers_when_faults_change() {
    let server = bind().await;
    let all_lost = Faults {
        drop: 1.0,
        ..Faults::default()
    };
    let proxy = UdpProxy::start(server.local_addr().unwrap(), all_lost)
        .await
        .unwrap();
    let client = bind().await;

    send_burst(&client, proxy.addr(), 1, 20).await;
    assert!(quiet(&server).await, "a datagram got through drop: 1.0");
    let all_dropped = ProxyStats {
        dropped: 20,
        ..ProxyStats::default()
    };
    stats_become(&proxy, all_dropped).await;

    proxy.set_faults(Faults::default());
    send_burst(&client, proxy.addr(), 1, 1).await;
    assert_eq!(recv_numbers(&server, 1).await, [0]);
}

#[tokio::test]
async fn a_partition_cuts_both_ways_until_restored() {
    let server = bind().await;
    let proxy = UdpProxy::start(server.local_addr().unwrap(), Faults::default())
        .await
        .unwrap();
    let client = bind().await;
    send_burst(&client, proxy.addr(), 1, 1).await;
    let peer = recv(&server, 1).await[0].1;

    proxy.partition(true);
    client.send_to(&datagram(1, 1), proxy.addr()).await.unwrap();
    server.send_to(&datagram(2, 1), peer).await.unwrap();
    assert!(quiet(&server).await, "the client got through a partition");
    assert!(quiet(&client).await, "the server got through a partition");
    stats_become(
        &proxy,
        ProxyStats {
            forwarded: 1,
            dropped: 2,
            ..ProxyStats::default()
        },
    )
    .await;

    proxy.partition(false);
    client.send_to(&datagram(1, 2), proxy.addr()).await.unwrap();
    assert_eq!(recv(&server, 1).await[0], ((1, 2), peer));
    server.send_to(&datagram(2, 2), peer).await.unwrap();
    assert_eq!(recv(&client, 1).await[0], ((2, 2), proxy.addr()));
}

#[tokio::test]
async fn duplicates_every_datagram_both_ways() {
    let server = bind().await;
    let twice = Faults {
        duplicate: 1.0,
        ..Faults::default()
    };
    let proxy = UdpProxy::start(server.local_addr().unwrap(), twice)
        .await
        .unwrap();
    let client = bind().await;
    let each_twice: BTreeMap<u32, usize> = (0..10).map(|n| (n, 2)).collect();

    send_burst(&client, proxy.addr(), 1, 10).await;
    let got = recv(&server, 20).await;
    assert_eq!(tally(got.iter().map(|((_, n), _)| *n)), each_twice);
    assert!(quiet(&server).await, "more than two copies arrived");

    send_burst(&server, got[0].1, 2, 10).await;
    assert_eq!(tally(recv_numbers(&client, 20).await), each_twice);
    assert!(quiet(&client).await, "more than two copies arrived");
    stats_become(
        &proxy,
        ProxyStats {
            forwarded: 40,
            duplicated: 20,
            ..ProxyStats::default()
        },
    )
    .await;
}

fn tally(numbers: impl IntoIterator<Item = u32>) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    for n in numbers {
        *counts.entry(n).or_default() += 1;
    }
    counts
}

/// Sends `0..n` through a fresh proxy each way (client to server, then back) and returns the
/// order each side received them in, and the proxy's counters.
async fn reorder_run(seed: u64, n: u32) -> (Vec<u32>, Vec<u32>, ProxyStats) {
    let server = bind().await;
    let faults = Faults {
        reorder: 0.5,
        seed,
        ..Faults::default()
    };
    let proxy = UdpProxy::start(server.local_addr().unwrap(), faults)
        .await
        .unwrap();
    let client = bind().await;

    send_burst(&client, proxy.addr(), 1, n).await;
    let got = recv(&server, n as usize).await;
    let peer = got[0].1;
    let upstream_order: Vec<u32> = got.into_iter().map(|((_, i), _)| i).collect();

    send_burst(&server, peer, 2, n).await;
    let client_order = recv_numbers(&client, n as usize).await;

    let forwarded = ProxyStats {
        forwarded: 2 * u64::from(n),
        ..proxy.stats()
    };
    stats_become(&proxy, forwarded).await;
    (upstream_order, client_order, proxy.stats())
}

#[tokio::test]
async fn reorders_without_losing_anything_and_the_same_way_for_a_seed() {
    let all: Vec<u32> = (0..64).collect();
    let first = reorder_run(7, 64).await;
    for order in [&first.0, &first.1] {
        assert_ne!(*order, all, "nothing was reordered");
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, all, "a datagram was lost or duplicated");
    }
    assert!(first.2.reordered > 0);
    assert_eq!((first.2.dropped, first.2.duplicated), (0, 0));

    assert_eq!(
        reorder_run(7, 64).await,
        first,
        "the same seed reordered differently"
    );
    assert_ne!(
        reorder_run(8, 64).await.0,
        first.0,
        "the seed made no difference"
    );
}

#[tokio::test]
async fn each_client_gets_only_its_own_echoes() {
    let echo = Echo::start().await;
    let proxy = UdpProxy::start(echo.addr, Faults::default()).await.unwrap();
    let (a, b) = (bind().await, bind().await);

    for i in 0..20 {
        a.send_to(&datagram(b'a', i), proxy.addr()).await.unwrap();
        b.send_to(&datagram(b'b', i), proxy.addr()).await.unwrap();
    }
    for (socket, tag) in [(&a, b'a'), (&b, b'b')] {
        let got: Vec<(u8, u32)> = recv(socket, 20).await.into_iter().map(|(d, _)| d).collect();
        let own: Vec<(u8, u32)> = (0..20).map(|i| (tag, i)).collect();
        assert_eq!(got, own);
        assert!(
            quiet(socket).await,
            "an echo arrived twice or at the wrong client"
        );
    }
}

#[tokio::test]
async fn refuses_an_upstream_off_loopback() {
    for upstream in ["192.0.2.1:4433", "0.0.0.0:4433", "[2001:db8::1]:4433"] {
        let refused = UdpProxy::start(upstream.parse().unwrap(), Faults::default()).await;
        let err = refused.err().expect(upstream);
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}

#[tokio::test]
async fn dropping_the_proxy_stops_its_tasks_and_frees_its_port() {
    let echo = Echo::start().await;
    let proxy = UdpProxy::start(echo.addr, Faults::default()).await.unwrap();
    let addr = proxy.addr();
    let client = bind().await;
    send_burst(&client, addr, 1, 1).await;
    assert_eq!(recv_numbers(&client, 1).await, [0]);

    // The listening socket is shared with the client's task: the port is free only once every
    // task has ended.
    drop(proxy);
    let freed = timeout(WAIT, async {
        while UdpSocket::bind(addr).await.is_err() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(freed.is_ok(), "the proxy's port is still bound after drop");
}

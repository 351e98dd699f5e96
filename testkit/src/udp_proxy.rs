//! A UDP proxy for tests that puts a bad network between a client and a server on loopback:
//! lost, duplicated and reordered datagrams, and partitions. The feed's QUIC transport runs over
//! UDP, and Toxiproxy only speaks TCP, so tests run UDP traffic through this instead.
//!
//! Each client gets its own upstream socket, so the server sees one peer per client and its
//! answers go back to the right client. Fault decisions come from a seeded PRNG, one stream per
//! direction of each client, so a seed gives the same decisions for the same datagrams.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, error};

/// The largest UDP payload; every receive buffer has this size so nothing is truncated.
const MAX_DATAGRAM: usize = 65_535;

/// How many clients the proxy maps at once. Datagrams from further clients are dropped, so a
/// test that sends from many addresses cannot grow the table (and the sockets) without limit.
pub const MAX_CLIENTS: usize = 1024;

/// How many datagrams from one client may wait for its task; past that they are dropped, as a
/// full socket buffer would drop them.
const CLIENT_QUEUE: usize = 256;

/// How long a datagram held back for reordering waits for a later one before it goes alone.
pub const HOLD: Duration = Duration::from_millis(5);

/// The faults the proxy injects. Each datagram, in each direction, gets its own draws.
/// Probabilities are read as `0.0..=1.0`: below zero never happens, above one always does.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Probability that a datagram is dropped.
    pub drop: f64,
    /// Probability that a datagram is sent twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back and sent right after the next datagram of its
    /// flow (one client, one direction), or alone after [`HOLD`] if none comes.
    pub reorder: f64,
    /// Seeds the PRNG. Each flow draws from its own stream, derived from the seed, the order in
    /// which clients first appeared and the direction.
    pub seed: u64,
}

/// What the proxy did so far, counting both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyStats {
    /// Datagrams sent on, each copy of a duplicate counted.
    pub forwarded: u64,
    /// Datagrams not sent on: by the faults, a partition, or a full queue or client table.
    pub dropped: u64,
    /// Datagrams sent twice.
    pub duplicated: u64,
    /// Datagrams sent after a later datagram of their flow (not those the [`HOLD`] released).
    pub reordered: u64,
}

/// A running proxy; dropping it stops its tasks and closes its sockets.
pub struct UdpProxy {
    /// Where clients send: tests give this to the client instead of the server's address.
    addr: SocketAddr,
    /// Faults, the partition switch and the counters, shared with the tasks.
    shared: Arc<Shared>,
    /// The listener task. It owns the per-client tasks in a `JoinSet`, so aborting it ends them.
    task: JoinHandle<()>,
}

impl UdpProxy {
    /// Listens on 127.0.0.1:0 and forwards to `upstream` (a loopback address; anything else is
    /// refused with `InvalidInput`). Must be called within a tokio runtime.
    pub async fn start(upstream: SocketAddr, faults: Faults) -> io::Result<Self> {
        if !upstream.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the proxy only forwards to loopback, not {upstream}"),
            ));
        }
        let socket = Arc::new(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?);
        let addr = socket.local_addr()?;
        let shared = Arc::new(Shared {
            faults: Mutex::new(faults),
            partitioned: AtomicBool::new(false),
            forwarded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            duplicated: AtomicU64::new(0),
            reordered: AtomicU64::new(0),
        });
        let task = tokio::spawn(listen(socket, upstream, Arc::clone(&shared)));
        Ok(Self { addr, shared, task })
    }

    /// The address clients send to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the faults for the datagrams that follow. A new seed restarts every flow's
    /// draws from it.
    pub fn set_faults(&self, faults: Faults) {
        *self
            .shared
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = faults;
    }

    /// Drops everything in both directions while on (a partition); `false` restores.
    pub fn partition(&self, on: bool) {
        self.shared.partitioned.store(on, Ordering::Relaxed);
    }

    /// The counters so far (each read on its own, not as one snapshot).
    pub fn stats(&self) -> ProxyStats {
        let s = &self.shared;
        ProxyStats {
            forwarded: s.forwarded.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            duplicated: s.duplicated.load(Ordering::Relaxed),
            reordered: s.reordered.load(Ordering::Relaxed),
        }
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// State the handle and the tasks share.
struct Shared {
    /// Read for each datagram; the lock is held only to copy the value out.
    faults: Mutex<Faults>,
    /// On while the test partitions the network.
    partitioned: AtomicBool,
    forwarded: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
}

impl Shared {
    fn faults(&self) -> Faults {
        *self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Receives from all clients and hands each datagram to its client's task, creating the task
/// (and its upstream socket) for a new client.
async fn listen(socket: Arc<UdpSocket>, upstream: SocketAddr, shared: Arc<Shared>) {
    let mut clients: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut relays = JoinSet::new();
    let mut next_client = 0_u64;
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        tokio::select! {
            got = socket.recv_from(&mut buf) => {
                let (len, client) = match got {
                    Ok(got) => got,
                    Err(err) if transient(&err) => {
                        debug!(cause = %err, "udp proxy receive failed");
                        continue;
                    }
                    Err(err) => {
                        debug!(cause = %err, "udp proxy listener stopped");
                        return;
                    }
                };
                if clients.get(&client).is_none_or(mpsc::Sender::is_closed) {
                    clients.retain(|_, tx| !tx.is_closed());
                    if clients.len() >= MAX_CLIENTS {
                        debug!(%client, "udp proxy client table full; datagram dropped");
                        Shared::count(&shared.dropped);
                        continue;
                    }
                    let outbound = match connect(upstream).await {
                        Ok(outbound) => outbound,
                        Err(err) => {
                            debug!(%client, cause = %err, "udp proxy upstream socket failed");
                            Shared::count(&shared.dropped);
                            continue;
                        }
                    };
                    let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
                    let flows = Flows::new(next_client);
                    next_client += 1;
                    let back = Arc::clone(&socket);
                    relays.spawn(relay(client, back, outbound, rx, Arc::clone(&shared), flows));
                    clients.insert(client, tx);
                }
                let sent = clients.get(&client).map(|tx| tx.try_send(buf[..len].to_vec()));
                if !matches!(sent, Some(Ok(()))) {
                    Shared::count(&shared.dropped);
                }
            }
            Some(joined) = relays.join_next() => {
                if let Err(err) = joined
                    && err.is_panic()
                {
                    error!(cause = %err, "udp proxy client task panicked");
                }
            }
        }
    }
}

/// A socket of the upstream's family on loopback, connected to the upstream.
async fn connect(upstream: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = if upstream.is_ipv6() {
        (Ipv6Addr::LOCALHOST, 0).into()
    } else {
        (Ipv4Addr::LOCALHOST, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    Ok(socket)
}

/// Errors a UDP socket reports for an earlier datagram (an ICMP answer) and then goes on.
fn transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    )
}

/// Carries one client's traffic both ways until the proxy stops or its socket fails.
async fn relay(
    client: SocketAddr,
    listener: Arc<UdpSocket>,
    outbound: UdpSocket,
    mut from_client: mpsc::Receiver<Vec<u8>>,
    shared: Arc<Shared>,
    Flows { mut up, mut down }: Flows,
) {
    let to_upstream = Out::Upstream(&outbound);
    let to_client = Out::Client(&listener, client);
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        let now = Instant::now();
        let (up_at, down_at) = (up.deadline(), down.deadline());
        // Biased: a datagram that is already waiting goes before a hold that has expired, so
        // the order does not depend on how the tasks happen to be scheduled.
        tokio::select! {
            biased;
            data = from_client.recv() => match data {
                Some(data) => up.pass(&data, &to_upstream, &shared).await,
                None => return,
            },
            got = outbound.recv(&mut buf) => match got {
                Ok(len) => down.pass(&buf[..len], &to_client, &shared).await,
                Err(err) if transient(&err) => debug!(%client, cause = %err, "udp proxy upstream receive failed"),
                Err(err) => {
                    debug!(%client, cause = %err, "udp proxy upstream socket stopped");
                    return;
                }
            },
            () = sleep_until(up_at.unwrap_or(now)), if up_at.is_some() => {
                up.release(&to_upstream, &shared).await;
            }
            () = sleep_until(down_at.unwrap_or(now)), if down_at.is_some() => {
                down.release(&to_client, &shared).await;
            }
        }
    }
}

/// Where a flow's datagrams go.
enum Out<'a> {
    /// To the upstream, over the client's own connected socket.
    Upstream(&'a UdpSocket),
    /// Back to the client, from the listening socket it sent to.
    Client(&'a UdpSocket, SocketAddr),
}

impl Out<'_> {
    /// Sends `copies` copies unless the network is partitioned; failures are logged and skipped.
    async fn emit(&self, data: &[u8], copies: u8, shared: &Shared) {
        if shared.partitioned.load(Ordering::Relaxed) {
            Shared::count(&shared.dropped);
            return;
        }
        for _ in 0..copies {
            let sent = match self {
                Out::Upstream(socket) => socket.send(data).await,
                Out::Client(socket, to) => socket.send_to(data, *to).await,
            };
            match sent {
                Ok(_) => Shared::count(&shared.forwarded),
                Err(err) => debug!(cause = %err, "udp proxy send failed"),
            }
        }
    }
}

/// Both directions of one client.
struct Flows {
    /// Client to upstream.
    up: Flow,
    /// Upstream to client.
    down: Flow,
}

impl Flows {
    /// The flows of the `ordinal`-th client the proxy has seen.
    fn new(ordinal: u64) -> Self {
        Self {
            up: Flow::new(2 * ordinal),
            down: Flow::new(2 * ordinal + 1),
        }
    }
}

/// One direction of one client: its own draws and at most one datagram held back.
struct Flow {
    /// Which stream of the seed this flow draws from.
    stream: u64,
    /// The seed `rng` was derived from, to start over when a test sets a new one.
    seed: Option<u64>,
    rng: SplitMix64,
    held: Option<Held>,
}

/// A datagram held back to be sent after a later one.
struct Held {
    data: Vec<u8>,
    copies: u8,
    until: Instant,
}

impl Flow {
    fn new(stream: u64) -> Self {
        Self {
            stream,
            seed: None,
            rng: SplitMix64(0),
            held: None,
        }
    }

    /// When the held datagram must go alone, if one is held.
    fn deadline(&self) -> Option<Instant> {
        self.held.as_ref().map(|held| held.until)
    }

    /// Applies the faults to one datagram of this flow and sends what survives.
    async fn pass(&mut self, data: &[u8], out: &Out<'_>, shared: &Shared) {
        if shared.partitioned.load(Ordering::Relaxed) {
            Shared::count(&shared.dropped);
            return;
        }
        let faults = shared.faults();
        if self.seed != Some(faults.seed) {
            self.seed = Some(faults.seed);
            self.rng = SplitMix64::stream(faults.seed, self.stream);
        }
        // Always three draws, so one fault's setting does not shift the others' decisions.
        let drop = self.rng.chance(faults.drop);
        let duplicate = self.rng.chance(faults.duplicate);
        let hold = self.rng.chance(faults.reorder);
        if drop {
            Shared::count(&shared.dropped);
            return;
        }
        let copies = if duplicate {
            Shared::count(&shared.duplicated);
            2
        } else {
            1
        };
        match self.held.take() {
            Some(held) => {
                out.emit(data, copies, shared).await;
                Shared::count(&shared.reordered);
                out.emit(&held.data, held.copies, shared).await;
            }
            None if hold => {
                self.held = Some(Held {
                    data: data.to_vec(),
                    copies,
                    until: Instant::now() + HOLD,
                });
            }
            None => out.emit(data, copies, shared).await,
        }
    }

    /// Sends the held datagram alone: no later one came in time.
    async fn release(&mut self, out: &Out<'_>, shared: &Shared) {
        if let Some(held) = self.held.take() {
            out.emit(&held.data, held.copies, shared).await;
        }
    }
}

/// splitmix64: tiny, seedable and plenty for picking faults.
struct SplitMix64(u64);

impl SplitMix64 {
    /// The `stream`-th generator of `seed`, independent of the others in practice.
    fn stream(seed: u64, stream: u64) -> Self {
        let mut mix = Self(stream);
        Self(seed ^ mix.next_u64())
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        let unit = (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64;
        unit < p
    }
}

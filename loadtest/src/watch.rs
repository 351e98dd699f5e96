//! Watching many open streams for one change, off the async runtime.
//!
//! `sse-fanout` times one update's arrival on ten thousand streams while the generator shares
//! the cores with the edge, so whatever the generator spends per stream is taken from the
//! edge. A task per stream on the runtime costs a wake-up, a poll and a buffer copy per
//! arrival; here a thread owns an epoll set (through `mio`) and its sockets, reads whatever is
//! ready into one scratch buffer, looks for the change there (with what ended the previous
//! read, in case it was cut in two), and notes the time the moment the change is complete on a
//! socket: one `epoll_wait` per batch and a `recv` or two per arrival, as a lean SDK would
//! spend.

use std::io::{ErrorKind, Read as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use memchr::memmem::Finder;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// How long a watcher that found nothing ready sleeps before it looks again. It does not
/// sleep in `epoll_wait`: there, every arrival would wake it, and on loopback the edge's
/// `send` pays for that wake-up (a cross-CPU interrupt; about a sixth of the edge's CPU in the
/// fan-out, by `perf`). Polling every millisecond takes arrivals in batches, as a NIC
/// coalesces interrupts. A receipt is noted when the watcher reads it: up to about this much
/// after it arrived, later when thousands are ready at once. That counts against the edge.
const COALESCE: Duration = Duration::from_millis(1);

/// Streams being watched for one change; see [`Watch::start`].
pub(crate) struct Watch {
    threads: Vec<JoinHandle<Share>>,
    stop: Arc<AtomicBool>,
}

/// What the watchers found, with the sockets still open: dropping it hangs them up.
pub(crate) struct Watched {
    /// When each stream that received the change had it all, in no particular order.
    pub(crate) receipts: Vec<Instant>,
    /// Kept for the caller to drop once it has measured: closing an epoll set of thousands
    /// of sockets, and the sockets, is work of its own.
    _shares: Vec<(Poll, Vec<Watching>)>,
}

/// One watcher's streams, epoll set and receipts, once it is done.
struct Share {
    receipts: Vec<Instant>,
    poll: Poll,
    streams: Vec<Watching>,
}

/// One watched stream.
struct Watching {
    socket: TcpStream,
    /// The end of what was read last, shorter than the change's marker: the marker may
    /// straddle two reads.
    carry: Vec<u8>,
    done: bool,
}

/// What a read found.
enum Seen {
    Change,
    NotYet,
    Closed,
}

impl Watching {
    /// Reads all that is ready: has the change arrived?
    fn read(&mut self, scratch: &mut [u8], needle: &Finder<'_>) -> Seen {
        let keep = needle.needle().len().saturating_sub(1);
        loop {
            let n = match self.socket.read(scratch) {
                Ok(0) => return Seen::Closed,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Seen::NotYet,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Seen::Closed,
            };
            let got = &scratch[..n];
            // The seam first: the carry and as much of this read as could finish a marker.
            self.carry.extend_from_slice(&got[..got.len().min(keep)]);
            if needle.find(&self.carry).is_some() || needle.find(got).is_some() {
                return Seen::Change;
            }
            if got.len() >= keep {
                self.carry.clear();
                self.carry.extend_from_slice(&got[got.len() - keep..]);
            } else {
                // All of this read is in the carry already: keep its last `keep` bytes.
                self.carry.drain(..self.carry.len().saturating_sub(keep));
            }
        }
    }
}

impl Watch {
    /// Starts `watchers` threads, each watching its share of `streams` (sockets, with what was
    /// last read from them) until `needle` arrives on every one, or until `patience` runs out.
    pub(crate) fn start(
        streams: Vec<(std::net::TcpStream, Vec<u8>)>,
        needle: &[u8],
        watchers: usize,
        patience: Duration,
    ) -> anyhow::Result<Self> {
        let watchers = watchers.clamp(1, streams.len().max(1));
        let deadline = Instant::now() + patience;
        let keep = needle.len().saturating_sub(1);
        let needle = Arc::new(Finder::new(needle).into_owned());
        let stop = Arc::new(AtomicBool::new(false));
        let mut shares: Vec<Vec<Watching>> = (0..watchers).map(|_| Vec::new()).collect();
        for (i, (socket, read)) in streams.into_iter().enumerate() {
            socket.set_nonblocking(true)?;
            shares[i % watchers].push(Watching {
                socket: TcpStream::from_std(socket),
                carry: read[read.len().saturating_sub(keep)..].to_vec(),
                done: false,
            });
        }
        // Built first, so a failure part-way (no fd for an epoll set, no thread) stops the
        // watchers already started when it drops.
        let mut watch = Self {
            threads: Vec::with_capacity(watchers),
            stop,
        };
        for (n, mut streams) in shares.into_iter().enumerate() {
            // Registered here, before the change is sent: a socket that already holds data
            // is reported ready at once.
            let poll = Poll::new()?;
            for (i, s) in streams.iter_mut().enumerate() {
                poll.registry()
                    .register(&mut s.socket, Token(i), Interest::READABLE)?;
            }
            let (needle, stop) = (needle.clone(), watch.stop.clone());
            watch.threads.push(
                std::thread::Builder::new()
                    .name(format!("watch-{n}"))
                    .spawn(move || watch_share(poll, streams, &needle, &stop, deadline))?,
            );
        }
        Ok(watch)
    }

    /// Waits until every watcher is done.
    pub(crate) async fn collect(mut self) -> Watched {
        let threads = std::mem::take(&mut self.threads);
        let shares = tokio::task::spawn_blocking(move || {
            threads
                .into_iter()
                .filter_map(|t| t.join().ok())
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let mut watched = Watched {
            receipts: Vec::new(),
            _shares: Vec::with_capacity(shares.len()),
        };
        for share in shares {
            watched.receipts.extend(share.receipts);
            watched._shares.push((share.poll, share.streams));
        }
        watched
    }
}

impl Drop for Watch {
    /// A watch given up (the write failed) stops its threads within a tick.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One watcher: reads its sockets as they become ready until each has the change or closed,
/// or the deadline passed.
#[expect(
    clippy::disallowed_methods,
    reason = "a watcher is a thread of its own, not an async worker: it sleeps between polls"
)]
fn watch_share(
    mut poll: Poll,
    mut streams: Vec<Watching>,
    needle: &Finder<'_>,
    stop: &AtomicBool,
    deadline: Instant,
) -> Share {
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 16 * 1024];
    let mut receipts = Vec::with_capacity(streams.len());
    let mut waiting = streams.len();
    while waiting > 0 && !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match poll.poll(&mut events, Some(Duration::ZERO)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        if events.is_empty() {
            std::thread::sleep(COALESCE);
            continue;
        }
        for event in &events {
            let Some(s) = streams.get_mut(event.token().0) else {
                continue;
            };
            if s.done {
                continue;
            }
            match s.read(&mut scratch, needle) {
                Seen::Change => receipts.push(Instant::now()),
                Seen::Closed => {}
                Seen::NotYet => continue,
            }
            s.done = true;
            waiting -= 1;
        }
    }
    Share {
        receipts,
        poll,
        streams,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// A connected pair of loopback sockets: (ours, theirs).
    fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let ours = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("c");
        let (theirs, _) = listener.accept().expect("accept");
        (ours, theirs)
    }

    #[tokio::test]
    async fn a_marker_is_found_whole_split_over_reads_or_not_at_all() {
        let needle = b"\"rollout_percentage\":77";
        let mut writers = Vec::new();
        let mut streams = Vec::new();
        for _ in 0..4 {
            let (ours, theirs) = pair();
            writers.push(theirs);
            // What was read before the watch began ends with the marker's first half.
            streams.push((ours, b"bootstrap \"rollout_per".to_vec()));
        }
        let watch = Watch::start(streams, needle, 2, Duration::from_secs(5)).expect("start");
        // Whole; split in two writes; finishing the half read before the watch (which
        // counts: it was carried); never (the stream closes instead).
        writers[0]
            .write_all(b"data: {\"rollout_percentage\":77}\n\n")
            .expect("w");
        writers[1].write_all(b"data: {\"rollout_").expect("w");
        tokio::time::sleep(Duration::from_millis(50)).await;
        writers[1].write_all(b"percentage\":77}\n\n").expect("w");
        writers[2].write_all(b"centage\":77}").expect("w");
        writers[3]
            .write_all(b"data: {\"rollout_percentage\":7}\n\n")
            .expect("w");
        drop(writers.remove(3));
        let watched = watch.collect().await;
        assert_eq!(watched.receipts.len(), 3);
    }

    #[tokio::test]
    async fn a_watch_ends_at_its_deadline_when_nothing_comes() {
        let (ours, _theirs) = pair();
        let started = Instant::now();
        let watch = Watch::start(
            vec![(ours, Vec::new())],
            b"x",
            1,
            Duration::from_millis(200),
        )
        .expect("start");
        let watched = watch.collect().await;
        assert!(watched.receipts.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
}

//! SSE streams served straight on their sockets, off hyper: what lets one edge hold ten
//! thousand streams and reach them all at once.
//!
//! The public listener ([`checkgate_ops::listener`], through [`crate::SdkState`]'s takeover)
//! hands a stream here once its request is let in. The stream's task writes the response head
//! and the bootstrap (the environment's shared bytes, never copied), catches up with the
//! events that arrived meanwhile, and then *joins its environment's group*. From
//! then on the stream costs no task wake-up per change: the group's one writer serialises each
//! change once as an HTTP/1 chunk and writes that chunk to every member's socket in turn, and
//! the stream's task sleeps until its client closes the connection or the writer hands the
//! stream back. An idle stream holds its socket, a few words of position and a parked task —
//! no read or write buffer.
//!
//! The writer never waits on one client. A socket that does not take a whole chunk at once is
//! handed back to its task with the rest of that chunk; the task writes it as the client reads,
//! catches up from the shared recent events, and joins again. A client that stops reading
//! falls behind those events and is cut off (it reconnects and bootstraps), as on the router's
//! path ([`super::stream`]), so a slow client holds shared bytes only.
//!
//! Every change is also when keys are checked: a revoked key, or a client key whose
//! environment no longer lets it read rules, ends its stream at the next version. Keep-alive
//! comments, the maximum age and a backstop key check ride on one tick per environment.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use dashmap::DashMap;
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};

mod pieces;
mod wire;

use pieces::{in_pieces, parallelism};
use wire::{Heard, KEEP_ALIVE_CHUNK, LAST_CHUNK, chunk, drain, head, push_chunk, write_some};

use super::SdkState;
use super::events::{EnvEvents, Since};
use super::stream::{self, BEHIND, KEEP_ALIVE_EVERY, Open, Opened};
use crate::served::Served;

/// The streams of every environment, and the switch that ends them all.
#[derive(Debug)]
pub struct Fanout {
    groups: DashMap<String, Arc<Group>>,
    /// `true` once the server stops: every stream ends.
    stopping: watch::Sender<bool>,
    /// Streams open on this path, for a stopping server to wait on.
    open: watch::Sender<usize>,
}

impl Default for Fanout {
    fn default() -> Self {
        Self {
            groups: DashMap::new(),
            stopping: watch::channel(false).0,
            open: watch::channel(0).0,
        }
    }
}

impl Fanout {
    /// Resolves once the server stops: for streams served by the router, which end then too.
    pub(super) fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Streams open on this path.
    pub fn open_streams(&self) -> usize {
        *self.open.borrow()
    }

    /// Ends every stream (each gets its last chunk, so its client reconnects elsewhere) and
    /// lets no new one in; resolves once all are closed.
    pub async fn stop(&self) {
        self.stopping.send_replace(true);
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
    }

    /// The group of `env_id`, started on first use — and again when the environment's events
    /// were replaced (it was deleted and came back). A stream whose `events` are not the
    /// group's is of the environment's past, and ends.
    fn group(&self, served: &Arc<Served>, env_id: &str, events: &Arc<EnvEvents>) -> Arc<Group> {
        if let Some(group) = self.groups.get(env_id)
            && (Arc::ptr_eq(&group.events, events) || !group.events.gone())
        {
            return Arc::clone(group.value());
        }
        let mut entry = self
            .groups
            .entry(env_id.to_owned())
            .or_insert_with(|| Group::start(served, env_id, events, self.stopping.subscribe()));
        if !Arc::ptr_eq(&entry.events, events) && entry.events.gone() {
            *entry = Group::start(served, env_id, events, self.stopping.subscribe());
        }
        Arc::clone(entry.value())
    }
}

/// One environment's joined streams and its writer.
#[derive(Debug)]
struct Group {
    served: Arc<Served>,
    env_id: String,
    events: Arc<EnvEvents>,
    members: Mutex<Members>,
    /// Wakes the writer outside a change: a stream joined behind, or one left.
    kick: Notify,
}

#[derive(Debug, Default)]
struct Members {
    list: Vec<Member>,
    /// The writer has stopped: no stream may join any more.
    closed: bool,
}

/// A stream in its group.
#[derive(Debug)]
struct Member {
    socket: Arc<TcpStream>,
    signal: Arc<Signal>,
    key_hash: [u8; 32],
    client: bool,
    generation: u64,
    sent: u64,
    deadline: Instant,
    /// Set by each sweep: whether the member stays in the group.
    stays: bool,
}

/// What the writer tells a stream's task, and what the task tells the writer.
#[derive(Debug, Default)]
struct Signal {
    handoff: Mutex<Option<Handoff>>,
    notify: Notify,
    /// The client closed the connection; the writer drops the member.
    left: AtomicBool,
}

#[derive(Debug)]
enum Handoff {
    /// The socket took part of a chunk: the rest, and the version it brings the stream to.
    Behind { rest: Bytes, sent: u64 },
    /// The stream ends, for this reason.
    End(&'static str),
}

impl Signal {
    fn hand(&self, handoff: Handoff) {
        *self.handoff.lock().unwrap_or_else(PoisonError::into_inner) = Some(handoff);
        self.notify.notify_one();
    }

    fn take(&self) -> Option<Handoff> {
        self.handoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Group {
    fn start(
        served: &Arc<Served>,
        env_id: &str,
        events: &Arc<EnvEvents>,
        stopping: watch::Receiver<bool>,
    ) -> Arc<Self> {
        let group = Arc::new(Self {
            served: Arc::clone(served),
            env_id: env_id.to_owned(),
            events: Arc::clone(events),
            members: Mutex::default(),
            kick: Notify::new(),
        });
        tokio::spawn(Arc::clone(&group).write(events.subscribe(), stopping));
        group
    }

    fn members(&self) -> std::sync::MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The writer: one sweep over the members per change, per kick and per keep-alive tick,
    /// until the server stops or the environment is gone and its last stream ended.
    async fn write(
        self: Arc<Self>,
        mut wake: watch::Receiver<(u64, u64)>,
        mut stopping: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + KEEP_ALIVE_EVERY,
            KEEP_ALIVE_EVERY,
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // However the writer ends, no stream may wait on it afterwards.
        let _closing = Closing(&self);
        loop {
            let sweep = tokio::select! {
                changed = wake.changed() => if changed.is_ok() { Sweep::Change } else { Sweep::Stop },
                () = self.kick.notified() => Sweep::Kick,
                _ = tick.tick() => Sweep::Tick,
                _ = stopping.wait_for(|s| *s) => Sweep::Stop,
            };
            self.sweep(sweep);
            if sweep == Sweep::Stop || (self.events.gone() && self.members().list.is_empty()) {
                return;
            }
        }
    }

    /// Brings every member to the environment's latest version, one `write` per socket. A
    /// large group is split over the machine's cores: on loopback a `write` costs its sender
    /// the receiver's TCP work too (about 15 µs here), and ten thousand of them in a row are
    /// most of a fan-out.
    fn sweep(&self, why: Sweep) {
        let mut members = {
            let mut members = self.members();
            // Once stopping, streams may no longer join: each either is in this sweep or is
            // refused by `join`.
            members.closed |= why == Sweep::Stop;
            std::mem::take(&mut members.list)
        };
        if members.is_empty() {
            return;
        }
        let pass = Pass {
            why,
            generation: self.events.position().0,
            now: Instant::now(),
            // Read once per sweep, and only when needed: it parses the environment's settings.
            client_ok: !matches!(why, Sweep::Change | Sweep::Tick)
                || !members.iter().any(|m| m.client)
                || stream::client_keys_read_rules(&self.served, &self.env_id),
        };
        // A kick writes to a few streams at most (one that joined behind); the rest of its
        // pass only drops streams whose clients left, in well under a millisecond.
        if members.len() < BLOCKING || why == Sweep::Kick {
            self.visit(&mut members, &pass, &mut Vec::with_capacity(1));
        } else {
            let threads = (members.len() / PER_THREAD).clamp(1, parallelism());
            let mut write_all = || {
                in_pieces(&mut members, PIECE, threads, |chunks, piece| {
                    self.visit(piece, &pass, chunks);
                });
            };
            // A sweep this long must not hold up the other tasks of this worker thread.
            match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                    tokio::task::block_in_place(write_all);
                }
                _ => write_all(),
            }
        }
        members.retain(|m| m.stays);
        // Streams that joined while the lock was not held come after the survivors.
        let mut joined = self.members();
        members.append(&mut joined.list);
        joined.list = members;
    }

    /// Sweeps `part` of the members, marking those that leave the group. `chunks` holds what
    /// members at each version get, found so far in this sweep: all members but the few that
    /// just joined are at one version and share its chunk.
    fn visit(&self, part: &mut [Member], pass: &Pass, chunks: &mut Vec<Next>) {
        for m in part {
            m.stays = self.visit_one(m, pass, chunks);
        }
    }

    /// Whether `m` stays in the group after this sweep.
    fn visit_one(&self, m: &mut Member, pass: &Pass, chunks: &mut Vec<Next>) -> bool {
        if m.signal.left.load(Ordering::Acquire) {
            return false;
        }
        let end = |reason| {
            m.signal.hand(Handoff::End(reason));
            false
        };
        let why = pass.why;
        if why == Sweep::Stop {
            return end("shutdown");
        }
        if matches!(why, Sweep::Change | Sweep::Tick)
            && let Some(refused) =
                stream::refusal(&self.served, &m.key_hash, m.client && !pass.client_ok)
        {
            return end(refused);
        }
        if why == Sweep::Tick && pass.now >= m.deadline {
            return end("maximum age");
        }
        if m.generation != pass.generation {
            return end(BEHIND);
        }
        let next = match chunks.iter().find(|(at, _)| *at == m.sent) {
            Some((_, next)) => next.clone(),
            None => {
                let next = match self.events.since(pass.generation, m.sent) {
                    Since::Nothing => None,
                    Since::Events { version, events } => {
                        // Versions with nothing to send (another key, a setting) move the
                        // stream on without a chunk: an empty chunk would end the response.
                        let data = events.concat();
                        Some((version, (!data.is_empty()).then(|| chunk(&data))))
                    }
                    Since::End => {
                        return end(BEHIND);
                    }
                };
                chunks.push((m.sent, next.clone()));
                next
            }
        };
        let (version, bytes) = match next {
            Some((version, Some(bytes))) => (version, bytes),
            Some((version, None)) if why != Sweep::Tick => {
                m.sent = version;
                return true;
            }
            Some((version, None)) => (version, Bytes::from_static(KEEP_ALIVE_CHUNK)),
            None if why == Sweep::Tick => (m.sent, Bytes::from_static(KEEP_ALIVE_CHUNK)),
            None => return true,
        };
        match m.socket.try_write(&bytes) {
            Ok(n) if n == bytes.len() => {
                m.sent = version;
                true
            }
            Ok(n) => {
                m.signal.hand(Handoff::Behind {
                    rest: bytes.slice(n..),
                    sent: version,
                });
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                m.signal.hand(Handoff::Behind {
                    rest: bytes,
                    sent: version,
                });
                false
            }
            Err(_) => end("client gone"),
        }
    }

    /// Adds a caught-up stream, unless the writer has stopped; kicks the writer if the
    /// environment moved on meanwhile.
    fn join(&self, member: Member) -> bool {
        let (generation, sent) = (member.generation, member.sent);
        {
            let mut members = self.members();
            if members.closed {
                return false;
            }
            members.list.push(member);
        }
        // The environment moved on, or restarted, between the stream's last look and now.
        let (now_generation, _, version) = self.events.position();
        if version > sent || now_generation != generation {
            self.kick.notify_one();
        }
        true
    }
}

/// Closes its group when the writer ends, by returning or by panicking: streams may no longer
/// join, and those still in it end (their clients reconnect).
struct Closing<'a>(&'a Group);

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        let stranded = {
            let mut members = self.0.members();
            members.closed = true;
            std::mem::take(&mut members.list)
        };
        for m in stranded {
            m.signal.hand(Handoff::End("shutdown"));
        }
    }
}

/// Members one thread sweeps; a larger group is split over the cores.
const PER_THREAD: usize = 1024;
/// Members in one piece of a split sweep.
const PIECE: usize = 256;
/// Members from which a sweep leaves its worker thread to the runtime's other tasks
/// (`block_in_place`): at about 15 µs a `write`, a few milliseconds.
const BLOCKING: usize = 256;

/// What members at a version get in a sweep: that version; then, when there is anything new,
/// the version it brings them to and its chunk (none when those versions had nothing to send).
type Next = (u64, Option<(u64, Option<Bytes>)>);

/// What one sweep knows before it visits the members.
#[derive(Debug)]
struct Pass {
    why: Sweep,
    generation: u64,
    now: Instant,
    /// Whether client keys may still read rules (true when not checked in this sweep).
    client_ok: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sweep {
    Change,
    Kick,
    Tick,
    Stop,
}

/// Counts a stream on this path for as long as it lives, for [`Fanout::stop`].
struct Counted<'a>(&'a watch::Sender<usize>);

impl<'a> Counted<'a> {
    fn new(open: &'a watch::Sender<usize>) -> Self {
        open.send_modify(|n| *n += 1);
        Self(open)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// Serves one stream on `socket`, whose request was let in as `opened`, until it ends.
pub async fn serve(state: SdkState, socket: TcpStream, opened: Opened) {
    let _counted = Counted::new(&state.fanout.open);
    let _open = Open::new();
    let Opened {
        env_id,
        client,
        key_hash,
        events,
        mut wake,
        generation,
        mut sent,
        first,
    } = opened;
    let socket = Arc::new(socket);
    let signal = Arc::new(Signal::default());
    let deadline = Instant::now() + stream::max_age();
    let mut stopping = state.fanout.stopping.subscribe();
    let mut pending = VecDeque::with_capacity(1 + 3 * first.len());
    pending.push_back(head());
    for data in first {
        push_chunk(&mut pending, [data]);
    }
    let reason = 'stream: loop {
        // Catching up: what is pending, then whatever the environment has after `sent`.
        loop {
            while !pending.is_empty() {
                let reason = tokio::select! {
                    ready = socket.writable() => match ready.and_then(|()| write_some(&socket, &mut pending)) {
                        Ok(()) => continue,
                        Err(_) => "client gone",
                    },
                    changed = wake.changed() => {
                        let gone = changed.is_err() || matches!(events.since(generation, sent), Since::End);
                        match stream::refused(&state.served, &env_id, &key_hash, client) {
                            Some(refused) => refused,
                            None if gone => BEHIND,
                            None => continue,
                        }
                    }
                    () = tokio::time::sleep_until(deadline.into()) => "maximum age",
                    _ = stopping.wait_for(|s| *s) => "shutdown",
                };
                break 'stream reason;
            }
            match events.since(generation, sent) {
                Since::Nothing => break,
                Since::Events { version, events } => {
                    sent = version;
                    push_chunk(&mut pending, events);
                }
                Since::End => break 'stream BEHIND,
            }
        }
        if let Some(refused) = stream::refused(&state.served, &env_id, &key_hash, client) {
            break refused;
        }
        // Caught up: the group's writer takes it from here.
        pending.shrink_to_fit();
        let group = state.fanout.group(&state.served, &env_id, &events);
        if !Arc::ptr_eq(&group.events, &events) {
            // The environment was deleted and came back since this stream opened.
            break BEHIND;
        }
        let joined = group.join(Member {
            socket: Arc::clone(&socket),
            signal: Arc::clone(&signal),
            key_hash,
            client,
            generation,
            sent,
            deadline,
            stays: true,
        });
        if !joined {
            break if *stopping.borrow() {
                "shutdown"
            } else {
                BEHIND
            };
        }
        loop {
            tokio::select! {
                ready = socket.readable() => {
                    if ready.is_err() || matches!(drain(&socket), Heard::Gone) {
                        signal.left.store(true, Ordering::Release);
                        group.kick.notify_one();
                        return;
                    }
                }
                () = signal.notify.notified() => match signal.take() {
                    Some(Handoff::Behind { rest, sent: at }) => {
                        pending.push_back(rest);
                        sent = at;
                        continue 'stream;
                    }
                    Some(Handoff::End(reason)) => break 'stream reason,
                    None => {}
                },
            }
        }
    };
    if reason == "client gone" {
        return;
    }
    metrics::counter!("checkgate_sse_streams_ended_total", "reason" => reason).increment(1);
    // Best effort: the client learns that the stream ended on purpose, and reconnects — unless
    // part of a chunk is still unsent, where the last chunk would land inside it.
    if pending.is_empty() {
        let _ = socket.try_write(LAST_CHUNK);
    }
    // What the client sent and nobody read would turn the close into a reset, which may
    // discard the last chunk on its way.
    let _ = drain(&socket);
}

#[cfg(test)]
mod tests;

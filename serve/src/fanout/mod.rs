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
//! What each stream does at a change, a tick or a stop is its [`Cursor`]'s answer — the same
//! rules as the router's streams ([`crate::cursor`]): every change is when keys are checked (a
//! revoked key, or a client key whose environment no longer lets it read rules, ends its
//! stream at the next version), and keep-alive comments, the maximum age and a backstop key
//! check ride on one tick per environment. The cursors decide; the writer shares the bytes: it
//! builds the chunk of each position once per sweep and reads the settings at most once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use dashmap::DashMap;
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

mod pieces;
mod wire;

use pieces::{in_pieces, parallelism};
use wire::{Heard, KEEP_ALIVE_CHUNK, LAST_CHUNK, chunk, drain, head, push_chunk, write_some};

use super::SdkState;
use super::cursor::{Ahead, Cursor, EndReason, Env, Step};
use super::events::EnvEvents;
use super::stream::{self, Feed as _, KEEP_ALIVE_EVERY, Looking, Open, Opened, Updates, count_end};
use crate::served::Served;

/// The streams of every environment, and the switch that ends them all.
#[derive(Debug)]
pub struct Fanout {
    groups: DashMap<String, Arc<Group>>,
    /// `true` once the server stops: every stream ends.
    stopping: watch::Sender<bool>,
    /// Streams open on this path, for a stopping server to wait on.
    open: watch::Sender<usize>,
    /// Each group's writer task: owned here, and joined when the server stops.
    writers: Mutex<JoinSet<()>>,
}

impl Default for Fanout {
    fn default() -> Self {
        Self {
            groups: DashMap::new(),
            stopping: watch::channel(false).0,
            open: watch::channel(0).0,
            writers: Mutex::default(),
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
    /// lets no new one in; resolves once all are closed and every writer has returned.
    pub async fn stop(&self) {
        self.stopping.send_replace(true);
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
        let mut writers = std::mem::take(&mut *self.writers());
        while let Some(ended) = writers.join_next().await {
            if let Err(e) = ended
                && e.is_panic()
            {
                tracing::error!(cause = %e, "a stream writer panicked");
            }
        }
    }

    /// Writer tasks this fan-out holds (running, or returned and not yet reaped).
    pub fn writers_held(&self) -> usize {
        self.writers().len()
    }

    fn writers(&self) -> std::sync::MutexGuard<'_, JoinSet<()>> {
        self.writers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts `env_id`'s group and its writer, which this fan-out owns. Writers of
    /// environments that are gone have returned; they are reaped here.
    fn start(&self, served: &Arc<Served>, env_id: &str, events: &Arc<EnvEvents>) -> Arc<Group> {
        let group = Group::new(served, env_id, events);
        let mut writers = self.writers();
        while let Some(ended) = writers.try_join_next() {
            if let Err(e) = ended
                && e.is_panic()
            {
                tracing::error!(cause = %e, "a stream writer panicked");
            }
        }
        writers.spawn(Arc::clone(&group).write(events.subscribe(), self.stopping.subscribe()));
        group
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
            .or_insert_with(|| self.start(served, env_id, events));
        if !Arc::ptr_eq(&entry.events, events) && entry.events.gone() {
            *entry = self.start(served, env_id, events);
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
    /// Where the stream is, and its rules.
    cursor: Cursor,
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
    /// The socket took part of a chunk: the rest, and the cursor past that chunk (boxed: a
    /// hand-off is rare, and every stream holds a place for one).
    Behind { rest: Bytes, cursor: Box<Cursor> },
    /// The stream ends, for this reason.
    End(EndReason),
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
    fn new(served: &Arc<Served>, env_id: &str, events: &Arc<EnvEvents>) -> Arc<Self> {
        Arc::new(Self {
            served: Arc::clone(served),
            env_id: env_id.to_owned(),
            events: Arc::clone(events),
            members: Mutex::default(),
            kick: Notify::new(),
        })
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
            now: Instant::now(),
            client_ok: std::sync::OnceLock::new(),
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

    /// Sweeps `part` of the members, marking those that leave the group. `cache` holds what
    /// members at each position get, found so far in this sweep: all members but the few that
    /// just joined are at one position and share its chunk.
    fn visit(&self, part: &mut [Member], pass: &Pass, cache: &mut Vec<Cached>) {
        let mut env = Sweeping {
            group: self,
            pass,
            cache,
        };
        for m in part {
            m.stays = Self::visit_one(m, pass, &mut env);
        }
    }

    /// Whether `m` stays in the group after this sweep.
    fn visit_one(m: &mut Member, pass: &Pass, env: &mut Sweeping<'_>) -> bool {
        if m.signal.left.load(Ordering::Acquire) {
            return false;
        }
        let step = match pass.why {
            Sweep::Stop => Step::End(m.cursor.on_stop()),
            Sweep::Change => m.cursor.on_change(env),
            Sweep::Kick => m.cursor.catch_up(env),
            Sweep::Tick => m.cursor.on_tick(pass.now, env),
        };
        let bytes = match step {
            Step::Send(bytes) => bytes,
            Step::KeepAlive => Bytes::from_static(KEEP_ALIVE_CHUNK),
            Step::Idle => return true,
            Step::End(reason) => {
                m.signal.hand(Handoff::End(reason));
                return false;
            }
        };
        let rest = match m.socket.try_write(&bytes) {
            Ok(n) if n == bytes.len() => return true,
            Ok(n) => bytes.slice(n..),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => bytes,
            Err(_) => {
                let reason = m.cursor.end(EndReason::ClientGone);
                m.signal.hand(Handoff::End(reason));
                return false;
            }
        };
        m.signal.hand(Handoff::Behind {
            rest,
            cursor: Box::new(m.cursor.clone()),
        });
        false
    }

    /// Adds a caught-up stream, unless the writer has stopped; kicks the writer if the
    /// environment moved on meanwhile.
    fn join(&self, member: Member) -> bool {
        let (generation, sent) = member.cursor.position();
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
        for mut m in stranded {
            m.signal.hand(Handoff::End(m.cursor.on_stop()));
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

/// What members at a position (generation, version) get in a sweep: what the log holds past
/// it, with its chunk built once.
type Cached = ((u64, u64), Ahead<Bytes>);

/// What one sweep knows before it visits the members.
#[derive(Debug)]
struct Pass {
    why: Sweep,
    now: Instant,
    /// Whether client keys may read rules: read at most once per sweep (it parses the
    /// environment's settings), when a client key's stream first asks.
    client_ok: std::sync::OnceLock<bool>,
}

/// What the members' cursors ask in a sweep, answered for all of them: the key of each, the
/// settings once, and each position's chunk once.
struct Sweeping<'a> {
    group: &'a Group,
    pass: &'a Pass,
    cache: &'a mut Vec<Cached>,
}

impl Env for Sweeping<'_> {
    type Chunk = Bytes;

    fn key_stands(&mut self, key_hash: &[u8; 32]) -> bool {
        self.group.served.replica.has_key(key_hash)
    }

    fn client_keys_read_rules(&mut self) -> bool {
        let group = self.group;
        *self
            .pass
            .client_ok
            .get_or_init(|| stream::client_keys_read_rules(&group.served, &group.env_id))
    }

    fn ahead(&mut self, generation: u64, sent: u64) -> Ahead<Bytes> {
        if let Some((_, ahead)) = self.cache.iter().find(|(at, _)| *at == (generation, sent)) {
            return ahead.clone();
        }
        // The events of the versions a position missed become one chunk, shared by every
        // member at that position.
        let ahead = Updates
            .ahead(&self.group.events, generation, sent)
            .map(|events| chunk(&events.concat()));
        self.cache.push(((generation, sent), ahead.clone()));
        ahead
    }
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

/// What a stream's own task asks about its environment (built where asked: a closure holding
/// these references would live in every idle stream's task).
fn look<'a>(state: &'a SdkState, env_id: &'a str, events: &'a EnvEvents) -> Looking<'a, Updates> {
    Looking {
        served: &state.served,
        env_id,
        events,
        feed: &Updates,
    }
}

/// Serves one stream on `socket`, whose request was let in as `opened`, until it ends.
pub async fn serve(state: SdkState, socket: TcpStream, opened: Opened) {
    let _counted = Counted::new(&state.fanout.open);
    let peer = socket.peer_addr().ok().map(|a| a.ip());
    let _open = Open::new(&state, &opened, peer);
    let mut cursor = opened.cursor(Instant::now() + stream::max_age());
    let Opened {
        env_id,
        events,
        mut wake,
        first,
        ..
    } = opened;
    let socket = Arc::new(socket);
    let signal = Arc::new(Signal::default());
    let mut stopping = state.fanout.stopping.subscribe();
    let mut pending = VecDeque::with_capacity(1 + 3 * first.len());
    pending.push_back(head());
    for data in first {
        push_chunk(&mut pending, [data]);
    }
    let reason = 'stream: loop {
        // Catching up: what is pending, then whatever the environment has past the cursor.
        loop {
            while !pending.is_empty() {
                let deadline = tokio::time::Instant::from_std(cursor.deadline());
                let end = tokio::select! {
                    ready = socket.writable() => match ready.and_then(|()| write_some(&socket, &mut pending)) {
                        Ok(()) => continue,
                        Err(_) => Some(cursor.end(EndReason::ClientGone)),
                    },
                    // While it writes, the stream does not move on (it holds no queue); it is
                    // only checked.
                    changed = wake.changed() => match changed {
                        Ok(()) => cursor.check(Instant::now(), &mut look(&state, &env_id, &events)),
                        Err(_) => Some(cursor.end(EndReason::EnvironmentGone)),
                    },
                    () = tokio::time::sleep_until(deadline) => cursor.check(Instant::now(), &mut look(&state, &env_id, &events)),
                    _ = stopping.wait_for(|s| *s) => Some(cursor.on_stop()),
                };
                if let Some(reason) = end {
                    break 'stream reason;
                }
            }
            // A change also checks the key, so none is let into the group that its last
            // change should have ended.
            match cursor.on_change(&mut look(&state, &env_id, &events)) {
                Step::Send(events) => push_chunk(&mut pending, events),
                Step::Idle | Step::KeepAlive => break,
                Step::End(reason) => break 'stream reason,
            }
        }
        // Caught up: the group's writer takes it from here.
        pending.shrink_to_fit();
        let group = state.fanout.group(&state.served, &env_id, &events);
        if !Arc::ptr_eq(&group.events, &events) {
            // The environment was deleted and came back since this stream opened.
            break cursor.end(EndReason::EnvironmentGone);
        }
        let joined = group.join(Member {
            socket: Arc::clone(&socket),
            signal: Arc::clone(&signal),
            cursor: cursor.clone(),
            stays: true,
        });
        if !joined {
            break if *stopping.borrow() {
                cursor.on_stop()
            } else {
                cursor.end(EndReason::Behind)
            };
        }
        loop {
            tokio::select! {
                ready = socket.readable() => {
                    if ready.is_err() || matches!(drain(&socket), Heard::Gone) {
                        signal.left.store(true, Ordering::Release);
                        group.kick.notify_one();
                        break 'stream cursor.end(EndReason::ClientGone);
                    }
                }
                () = signal.notify.notified() => match signal.take() {
                    Some(Handoff::Behind { rest, cursor: past }) => {
                        pending.push_back(rest);
                        cursor = *past;
                        continue 'stream;
                    }
                    Some(Handoff::End(reason)) => break 'stream cursor.end(reason),
                    None => {}
                },
            }
        }
    };
    count_end(Updates::ROUTE, reason);
    if reason == EndReason::ClientGone {
        return;
    }
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

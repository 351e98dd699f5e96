//! The rules of an SSE stream, written once and without I/O: a [`Cursor`] holds a stream's
//! position and answers what happens to it — send, nothing, or end for a reason — when its
//! environment changes, when a tick comes, and when the server stops. It reads no clock (the
//! time is an argument), touches no socket and starts no task, so each rule is tested here
//! with plain values.
//!
//! Every SSE stream is driven by one: `/stream` and OFREP's `/ofrep/v1/events` through the
//! router's stream body ([`crate::stream`]), and `/stream` on its socket through the fan-out
//! ([`crate::fanout`]), whose writer asks the cursor of each member what to do and writes one
//! shared chunk to every member that is to get it. What a cursor needs to know of its
//! environment — whether a key still stands, whether client keys may read rules, what the
//! recent events hold past a position — it asks its driver through [`Env`], so the driver
//! decides how those facts are looked up and shared (the fan-out reads the settings once per
//! sweep and builds each chunk once per version).
//!
//! The rules:
//!
//! - every change checks the key first: a revoked key, or a client key whose environment no
//!   longer lets it read rules, ends the stream ([`EndReason::Revoked`],
//!   [`EndReason::RulesWithdrawn`]) before anything more is sent;
//! - then the stream moves on to what the log holds: the events of the versions it missed as
//!   one chunk, nothing for versions with nothing for it, or an end when the log no longer
//!   holds its position ([`EndReason::Behind`]: the environment was replaced, or the client fell
//!   further behind than the recent events reach) or its environment is gone
//!   ([`EndReason::EnvironmentGone`]);
//! - every tick ([`KEEP_ALIVE_EVERY`]) checks the key again (the backstop), ends a stream past
//!   its maximum age ([`max_age`]), and sends what the log holds or else a keep-alive comment;
//! - a driver still writing earlier chunks only [`Cursor::check`]s: the stream does not move
//!   on (it holds no queue of its own) until the driver can send;
//! - a stop ends every stream ([`EndReason::Shutdown`]), wherever it is; so does a client that
//!   leaves ([`EndReason::ClientGone`]);
//! - an ended cursor stays ended, with its first reason.

use std::time::{Duration, Instant};

/// How often a stream is ticked: a keep-alive comment, so proxies and load balancers do not
/// close an idle stream, and the backstop check of its key and age.
pub const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);
/// How long a stream lives at most, before jitter.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// A stream's age limit for a random byte: [`MAX_AGE`] minus up to a tenth, so the clients of
/// an edge that started together do not all reconnect together.
pub fn max_age(random: u8) -> Duration {
    let tenth = MAX_AGE.as_millis() as u64 / 10;
    MAX_AGE - Duration::from_millis(u64::from(random) * tenth / u64::from(u8::MAX))
}

/// Why a stream ended. A closed set: each is a label of `checkgate_stream_ends_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Its SDK key was revoked (or left this edge).
    Revoked,
    /// A client key's stream of rules, after its environment stopped letting client keys read
    /// rules.
    RulesWithdrawn,
    /// It reached its maximum age; its client reconnects, perhaps to another edge.
    MaxAge,
    /// The recent events no longer hold its position: the environment was replaced, or the
    /// client fell further behind than they reach. Its client reconnects and bootstraps.
    Behind,
    /// Its environment was deleted, or is no longer served here.
    EnvironmentGone,
    /// The server is stopping; its client reconnects elsewhere.
    Shutdown,
    /// The client closed the connection, or writing to it failed.
    ClientGone,
}

impl EndReason {
    /// Every reason, for tests and for dashboards that list them.
    pub const ALL: [Self; 7] = [
        Self::Revoked,
        Self::RulesWithdrawn,
        Self::MaxAge,
        Self::Behind,
        Self::EnvironmentGone,
        Self::Shutdown,
        Self::ClientGone,
    ];

    /// The reason's metric label.
    pub fn as_label(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::RulesWithdrawn => "rules_withdrawn",
            Self::MaxAge => "max_age",
            Self::Behind => "behind",
            Self::EnvironmentGone => "environment_gone",
            Self::Shutdown => "shutdown",
            Self::ClientGone => "client_gone",
        }
    }
}

/// What the log holds past a stream's position, as its driver reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ahead<C> {
    /// Nothing new.
    Nothing,
    /// The stream moves on to `(generation, version)`; `chunk` is what it sends for that — none
    /// when those versions have nothing for it (a key, a setting: an empty chunk would end an
    /// HTTP/1 response).
    Moved {
        generation: u64,
        version: u64,
        chunk: Option<C>,
    },
    /// The log no longer holds the stream's position.
    Lost,
    /// The environment is gone.
    Gone,
}

impl<C> Ahead<C> {
    /// The same, with its chunk made into another.
    pub fn map<D>(self, f: impl FnOnce(C) -> D) -> Ahead<D> {
        match self {
            Self::Nothing => Ahead::Nothing,
            Self::Moved {
                generation,
                version,
                chunk,
            } => Ahead::Moved {
                generation,
                version,
                chunk: chunk.map(f),
            },
            Self::Lost => Ahead::Lost,
            Self::Gone => Ahead::Gone,
        }
    }
}

/// What a cursor asks about its environment: facts its driver looks up in memory (the
/// replica, the recent events), and may share between the streams it drives.
pub trait Env {
    /// What is sent: shared bytes, built once for every stream at the same position.
    type Chunk;
    /// Whether the SDK key with this hash still stands.
    fn key_stands(&mut self, key_hash: &[u8; 32]) -> bool;
    /// Whether the environment lets client keys read rules (asked only for a client key's
    /// stream of rules).
    fn client_keys_read_rules(&mut self) -> bool;
    /// What the log holds after `(generation, sent)`.
    fn ahead(&mut self, generation: u64, sent: u64) -> Ahead<Self::Chunk>;
}

/// What a stream does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<C> {
    /// Send this.
    Send(C),
    /// Send a keep-alive comment.
    KeepAlive,
    /// Send nothing.
    Idle,
    /// End the stream, for this reason.
    End(EndReason),
}

/// One stream's position and rules.
#[derive(Debug, Clone)]
pub struct Cursor {
    /// The stream's SDK key, checked at every change and tick.
    key_hash: [u8; 32],
    /// A client key's stream of rules: it may go on only while its environment lets client
    /// keys read rules.
    needs_rules: bool,
    /// The environment's generation the stream is in, and the version its client has (or is
    /// being sent).
    generation: u64,
    sent: u64,
    /// When the stream reaches its maximum age.
    deadline: Instant,
    /// Why it ended, once it has.
    ended: Option<EndReason>,
}

impl Cursor {
    /// A stream of `key_hash` at `(generation, sent)`, which ends at `deadline`.
    /// `needs_rules`: a client key's stream of flag rules.
    pub fn new(
        key_hash: [u8; 32],
        needs_rules: bool,
        (generation, sent): (u64, u64),
        deadline: Instant,
    ) -> Self {
        Self {
            key_hash,
            needs_rules,
            generation,
            sent,
            deadline,
            ended: None,
        }
    }

    /// The generation and version the stream is at.
    pub fn position(&self) -> (u64, u64) {
        (self.generation, self.sent)
    }

    /// When the stream reaches its maximum age: a driver that sleeps until then ticks it.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Why the stream ended, if it has.
    pub fn ended(&self) -> Option<EndReason> {
        self.ended
    }

    /// The environment changed (a new version, a new generation, or gone): the key is checked,
    /// then the stream moves on to what the log holds.
    pub fn on_change<E: Env>(&mut self, env: &mut E) -> Step<E::Chunk> {
        if let Some(reason) = self.ended.or_else(|| self.refused(env)) {
            return Step::End(self.end(reason));
        }
        self.move_on(env, Step::Idle)
    }

    /// A tick: the key is checked again, a stream past its deadline ends, and the others get
    /// what the log holds, or a keep-alive comment.
    pub fn on_tick<E: Env>(&mut self, now: Instant, env: &mut E) -> Step<E::Chunk> {
        if let Some(reason) = self.ended.or_else(|| self.refused(env)) {
            return Step::End(self.end(reason));
        }
        if now >= self.deadline {
            return Step::End(self.end(EndReason::MaxAge));
        }
        self.move_on(env, Step::KeepAlive)
    }

    /// The rules without moving on, for a driver that cannot send now (it is still writing
    /// what it was given): the key, the age, and whether the log still holds the stream's
    /// position.
    pub fn check<E: Env>(&mut self, now: Instant, env: &mut E) -> Option<EndReason> {
        let reason = self.ended.or_else(|| self.refused(env)).or_else(|| {
            if now >= self.deadline {
                return Some(EndReason::MaxAge);
            }
            match env.ahead(self.generation, self.sent) {
                Ahead::Lost => Some(EndReason::Behind),
                Ahead::Gone => Some(EndReason::EnvironmentGone),
                Ahead::Nothing | Ahead::Moved { .. } => None,
            }
        })?;
        Some(self.end(reason))
    }

    /// Moves the stream on to what the log holds without the checks of a change, for a driver
    /// that visits it between changes (the fan-out's writer, when a stream joined its group
    /// behind): its key was checked when the change arrived.
    pub fn catch_up<E: Env>(&mut self, env: &mut E) -> Step<E::Chunk> {
        if let Some(reason) = self.ended {
            return Step::End(reason);
        }
        self.move_on(env, Step::Idle)
    }

    /// The server stops: the stream ends, wherever it is.
    pub fn on_stop(&mut self) -> EndReason {
        self.end(EndReason::Shutdown)
    }

    /// Ends the stream for a reason its driver saw (its client left). An ended stream keeps
    /// its first reason, which this returns.
    pub fn end(&mut self, reason: EndReason) -> EndReason {
        *self.ended.get_or_insert(reason)
    }

    /// Why the stream's key may not go on, if it may not.
    fn refused<E: Env>(&self, env: &mut E) -> Option<EndReason> {
        if !env.key_stands(&self.key_hash) {
            Some(EndReason::Revoked)
        } else if self.needs_rules && !env.client_keys_read_rules() {
            Some(EndReason::RulesWithdrawn)
        } else {
            None
        }
    }

    /// What the log holds next; `idle` when there is nothing to send.
    fn move_on<E: Env>(&mut self, env: &mut E, idle: Step<E::Chunk>) -> Step<E::Chunk> {
        match env.ahead(self.generation, self.sent) {
            Ahead::Nothing => idle,
            Ahead::Moved {
                generation,
                version,
                chunk,
            } => {
                self.generation = generation;
                self.sent = version;
                chunk.map_or(idle, Step::Send)
            }
            Ahead::Lost => Step::End(self.end(EndReason::Behind)),
            Ahead::Gone => Step::End(self.end(EndReason::EnvironmentGone)),
        }
    }
}

#[cfg(test)]
mod tests;

//! The relay: publishes every change row to NATS JetStream, in version order per environment,
//! for edges that follow the feed there (see `checkgate_feed::nats`).
//!
//! One instance relays at a time: the holder of the `nats-relay` lease ([`crate::store::Lease`]),
//! renewed every [`RENEW_EVERY`]; when it stops renewing, another instance takes over within
//! [`LEASE_TTL`] plus one attempt. A holder that cannot renew in time stops publishing before
//! its lease could have passed to another.
//!
//! Exactly-once onto the stream, without a table of its own: the stream is the relay's memory.
//! Taking over an environment, the relay reads the last message of its subject (its version
//! header says what was relayed) and resumes after it. Each publish names, in
//! `Nats-Expected-Last-Subject-Sequence`, the sequence it expects the subject to end at (`0`:
//! the subject is empty), so a paused holder that wakes up cannot publish over its successor
//! (the server refuses it), and carries `Nats-Msg-Id` = `<epoch>.<environment>.<version>`,
//! so a republish after a lost acknowledgement is dropped by the server. A row counts as
//! relayed only once its PubAck arrived. An environment whose subject is empty (a new stream, or one that lost its data)
//! starts at its current head: the edges catch up to that from the control plane, which stays
//! the truth.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use checkgate_feed::nats::{NatsSettings, wire};
use checkgate_ops::Stopping;
use tokio::sync::watch;
use tokio::time::Instant;

use super::frames;
use super::heads::Heads;
use crate::store::{Lease, Store};

/// The lease's name.
pub const LEASE: &str = "nats-relay";
/// How long a lease lasts unless renewed.
pub const LEASE_TTL: Duration = Duration::from_secs(3);
/// How often the holder renews it.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How long a holder that cannot reach NATS keeps the lease before it gives it up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(5);
/// How long an instance that gave the lease up waits before it asks for it again.
const STAND_ASIDE: Duration = Duration::from_secs(2);
/// Change rows read from the database at a time.
const BATCH: u32 = 200;

/// The stream's settings.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub nats: NatsSettings,
    pub replicas: usize,
    pub max_age: Duration,
}

impl RelaySettings {
    /// The stream's configuration: every feed subject, kept `max_age`, with a duplicate window
    /// of two minutes (or `max_age`, if shorter).
    pub fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.nats.stream.clone(),
            description: Some(
                "Checkgate's change feed (one message per environment version)".into(),
            ),
            subjects: vec![wire::SUBJECTS.into()],
            max_age: self.max_age,
            duplicate_window: Duration::from_secs(120).min(self.max_age),
            num_replicas: self.replicas,
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            allow_direct: true,
            ..stream::Config::default()
        }
    }
}

/// Relays the feed until the process stops: waits for the lease, relays while holding it,
/// gives it up at shutdown.
pub async fn run(store: Store, heads: Arc<Heads>, settings: RelaySettings, mut stopping: Stopping) {
    let holder = uuid::Uuid::new_v4().to_string();
    let mut attempts = 0u32;
    let client = loop {
        match settings.nats.connect("checkgate-control relay").await {
            Ok(client) => break client,
            Err(e) => {
                // One line, then quiet retries (every 2 s) until it connects.
                if attempts == 0 {
                    tracing::error!(cause = %e, "the NATS relay cannot connect; edges following NATS get no changes until it does (retrying every 2 s)");
                } else {
                    tracing::debug!(cause = %e, "the NATS relay still cannot connect");
                }
                attempts += 1;
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = stopping.begun() => return,
                }
            }
        }
    };
    if attempts > 0 {
        tracing::info!("the NATS relay connected");
    }
    let js = settings.nats.jetstream(client);
    let mut idle = tokio::time::interval(RENEW_EVERY);
    idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = idle.tick() => {}
            _ = stopping.begun() => return,
        }
        let asked = Instant::now();
        let lease = match store
            .acquire_lease(LEASE, &holder, LEASE_TTL.as_millis() as i64)
            .await
        {
            Ok(Some(lease)) => lease,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(cause = %e, "the NATS relay cannot read its lease");
                continue;
            }
        };
        tracing::info!(
            token = lease.token,
            "holding the NATS relay lease; relaying the feed"
        );
        metrics::gauge!("checkgate_relay_holder").set(1.0);
        let (renewed_tx, renewed) = watch::channel(Some(asked));
        let mut relay = Relay {
            store: store.clone(),
            heads: heads.clone(),
            js: js.clone(),
            settings: settings.clone(),
            lease,
            renewed,
            renewed_tx: Arc::new(renewed_tx),
            envs: HashMap::new(),
            stream_ready: false,
            passes: 0,
        };
        let stopped = relay.hold(&holder, &mut stopping).await;
        metrics::gauge!("checkgate_relay_holder").set(0.0);
        if let Err(e) = store.release_lease(LEASE, &holder, lease).await {
            tracing::warn!(cause = %e, "giving up the NATS relay lease failed; it expires");
        }
        if stopped {
            return;
        }
        // Lost or given up: another instance has the first chance to take it.
        tokio::select! {
            () = tokio::time::sleep(STAND_ASIDE) => {}
            _ = stopping.begun() => return,
        }
    }
}

/// Where the relay is in one environment.
#[derive(Debug, Clone, Copy)]
struct Position {
    /// The next version to publish.
    next: u64,
    /// The stream sequence the subject ends at (`None`: no message on it).
    last_sequence: Option<u64>,
}

struct Relay {
    store: Store,
    heads: Arc<Heads>,
    js: jetstream::Context,
    settings: RelaySettings,
    lease: Lease,
    /// When the lease was last renewed; `None` once it is lost.
    renewed: watch::Receiver<Option<Instant>>,
    renewed_tx: Arc<watch::Sender<Option<Instant>>>,
    envs: HashMap<String, Position>,
    stream_ready: bool,
    /// Passes over every environment so far.
    passes: u64,
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease every [`RENEW_EVERY`], in a task of its own so a slow publish never holds
/// it up, and says when it did — or that the lease is lost — through `renewed`.
async fn renew(
    store: Store,
    holder: String,
    lease: Lease,
    renewed: Arc<watch::Sender<Option<Instant>>>,
) {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let asked = Instant::now();
        match store
            .renew_lease(LEASE, &holder, lease, LEASE_TTL.as_millis() as i64)
            .await
        {
            // Counted from when it was asked: the database may have taken a while.
            Ok(true) => {
                renewed.send_replace(Some(asked));
            }
            Ok(false) => {
                renewed.send_replace(None);
                return;
            }
            Err(e) => tracing::warn!(cause = %e, "renewing the NATS relay lease failed"),
        }
    }
}

/// What the stream said to a publish.
struct Acked {
    sequence: u64,
    /// The server had the message already (same id, inside the duplicate window).
    duplicate: bool,
}

/// Why relaying an environment stopped for now.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("publishing: {0}")]
    Publish(#[from] PublishError),
    #[error("NATS: {0}")]
    Nats(String),
    #[error(transparent)]
    BadRow(#[from] super::frames::BadRow),
    #[error("the lease may have passed to another instance")]
    LeaseLost,
}

impl Relay {
    /// Relays while the lease holds; `true` when it stopped because the process is stopping.
    async fn hold(&mut self, holder: &str, stopping: &mut Stopping) -> bool {
        let mut generation = self.heads.subscribe();
        let mut renewed = self.renewed.clone();
        let renewer = AbortOnDrop(tokio::spawn(renew(
            self.store.clone(),
            holder.to_owned(),
            self.lease,
            self.renewed_tx.clone(),
        )));
        let mut retry = tokio::time::interval(Duration::from_secs(1));
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing_since: Option<Instant> = None;
        let held = loop {
            let outcome = tokio::select! {
                biased;
                _ = stopping.begun() => break true,
                changed = renewed.changed() => {
                    if changed.is_err() || renewed.borrow_and_update().is_none() {
                        tracing::warn!(token = self.lease.token, "lost the NATS relay lease; another instance relays");
                        break false;
                    }
                    continue;
                }
                changed = generation.changed() => {
                    if changed.is_err() {
                        break true;
                    }
                    self.relay().await
                }
                _ = retry.tick() => self.relay().await,
            };
            match outcome {
                Ok(()) => failing_since = None,
                // Not renewed in time (the database is slow or away): wait for the renewer's
                // verdict before publishing again.
                Err(RelayError::LeaseLost) => {}
                Err(e) => {
                    metrics::counter!("checkgate_relay_errors_total").increment(1);
                    tracing::warn!(cause = %e, "relaying to NATS failed; retrying");
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    // NATS unreachable from this instance only (another may reach it): let
                    // another instance take over.
                    let connected = self.js.client().connection_state()
                        == async_nats::connection::State::Connected;
                    if !connected && since.elapsed() >= GIVE_UP_AFTER {
                        tracing::warn!(
                            token = self.lease.token,
                            "NATS unreachable from here for {GIVE_UP_AFTER:?}; giving the relay lease up"
                        );
                        break false;
                    }
                }
            }
        };
        drop(renewer);
        held
    }

    /// Whether the lease certainly still runs: renewed less than its lifetime ago, with a
    /// margin, so publishing stops before a successor could hold it.
    fn lease_valid(&self) -> bool {
        self.renewed
            .borrow()
            .is_some_and(|at| at.elapsed() < LEASE_TTL - RENEW_EVERY / 2)
    }

    /// Publishes what every environment has past its position, while the lease holds.
    async fn relay(&mut self) -> Result<(), RelayError> {
        if !self.stream_ready {
            self.js
                .create_or_update_stream(self.settings.stream_config())
                .await
                .map_err(|e| {
                    RelayError::Nats(format!(
                        "creating stream {}: {e}",
                        self.settings.nats.stream
                    ))
                })?;
            self.stream_ready = true;
        }
        let environments = self.heads.environments();
        // An environment that left the list (deleted) still has its last rows to relay — its
        // deletion among them — before it is forgotten.
        let gone: Vec<String> = self
            .envs
            .keys()
            .filter(|id| !environments.iter().any(|e| &e.id == *id))
            .cloned()
            .collect();
        let mut work: Vec<(String, u64)> = environments
            .iter()
            .map(|e| (e.id.clone(), self.heads.head(&e.id).unwrap_or(e.version)))
            .collect();
        work.extend(
            gone.iter()
                .map(|id| (id.clone(), self.heads.head(id).unwrap_or(0))),
        );
        let (mut lag, mut failed) = (0, None);
        for (env, head) in &work {
            match self.relay_env(env, *head).await {
                Ok(()) => {}
                // No environment is held up by another's trouble: the next pass retries it.
                Err(RelayError::BadRow(e)) => {
                    metrics::counter!("checkgate_relay_errors_total").increment(1);
                    tracing::error!(cause = %e, "a change row the relay cannot publish; edges of its environment catch up from the control plane");
                }
                Err(e @ (RelayError::LeaseLost | RelayError::Publish(_) | RelayError::Nats(_))) => {
                    failed = Some(e);
                    break;
                }
                Err(e) => failed = Some(e),
            }
            let next = self.envs.get(env).map_or(0, |p| p.next);
            lag = lag.max(head.saturating_sub(next.saturating_sub(1)));
        }
        for env in &gone {
            if self
                .envs
                .get(env)
                .is_some_and(|p| p.next > self.heads.head(env).unwrap_or(0))
            {
                self.envs.remove(env);
            }
        }
        metrics::gauge!("checkgate_relay_lag_versions").set(lag as f64);
        // Only a whole pass counts: an environment a failed pass did not reach is not new.
        match failed {
            None => {
                self.passes += 1;
                Ok(())
            }
            Some(e) => Err(e),
        }
    }

    /// Where the stream says `env` stands: after the version of its subject's last message
    /// when that is a message of this relay's database. With no message on the subject, a new
    /// environment (one that appeared while this instance relays) starts from its first change;
    /// any other — a new stream, or one that lost its data — at `head`, as its edges catch up
    /// to that from the control plane.
    async fn position(&self, env: &str, head: u64) -> Result<Position, RelayError> {
        match self.last_message(env).await? {
            Some((sequence, Some(version))) if version <= head => Ok(Position {
                next: version + 1,
                last_sequence: Some(sequence),
            }),
            Some((sequence, _)) => Ok(Position {
                next: head + 1,
                last_sequence: Some(sequence),
            }),
            None => Ok(Position {
                next: if self.passes > 0 { 1 } else { head + 1 },
                last_sequence: None,
            }),
        }
    }

    /// The stream sequence of the last message on `env`'s subject, with the version it
    /// relayed when it is this database's relay message (its message id says so).
    async fn last_message(&self, env: &str) -> Result<Option<(u64, Option<u64>)>, RelayError> {
        let stream = self
            .js
            .get_stream_no_info(&self.settings.nats.stream)
            .await
            .map_err(|e| RelayError::Nats(e.to_string()))?;
        match stream
            .get_last_raw_message_by_subject(&wire::subject(env))
            .await
        {
            Ok(message) => {
                let version = message
                    .headers
                    .get(async_nats::header::NATS_MESSAGE_ID)
                    .and_then(|id| wire::relayed_version(id.as_str(), self.store.epoch(), env));
                Ok(Some((message.sequence, version)))
            }
            Err(e)
                if e.kind()
                    == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                Ok(None)
            }
            Err(e) => Err(RelayError::Nats(format!(
                "reading {}: {e}",
                wire::subject(env)
            ))),
        }
    }

    async fn relay_env(&mut self, env: &str, head: u64) -> Result<(), RelayError> {
        if !wire::subject_safe(env) {
            return Ok(());
        }
        let mut at = match self.envs.get(env) {
            Some(p) => *p,
            None => {
                let p = self.position(env, head).await?;
                self.envs.insert(env.to_owned(), p);
                p
            }
        };
        while at.next <= head {
            let rows = self.store.changes_since(env, at.next - 1, BATCH).await?;
            let Some(first) = rows.first() else { break };
            if first.version > at.next {
                // Compacted away before it was relayed: edges that need it resync.
                tracing::warn!(env = %env, from = at.next, to = first.version - 1, "changes compacted before they were relayed; edges resync");
                at.next = first.version;
            }
            for row in &rows {
                if !self.lease_valid() {
                    self.envs.insert(env.to_owned(), at);
                    return Err(RelayError::LeaseLost);
                }
                let change = frames::change(row)?;
                let epoch = self.store.epoch();
                match self
                    .publish(env, epoch, row.version, change, at.last_sequence)
                    .await
                {
                    Ok(Acked {
                        sequence,
                        duplicate,
                    }) => {
                        at = Position {
                            next: row.version + 1,
                            // A duplicate's sequence is the original message's, which need not
                            // be where the subject ends now: read that before the next publish.
                            last_sequence: if duplicate {
                                self.last_message(env).await?.map(|(s, _)| s)
                            } else {
                                Some(sequence)
                            },
                        };
                        metrics::counter!("checkgate_relay_published_total").increment(1);
                    }
                    Err(RelayError::Publish(e))
                        if e.kind() == PublishErrorKind::WrongLastSequence =>
                    {
                        // Someone else published on the subject: a previous holder waking up,
                        // the publish before this one landing without its acknowledgement, or
                        // a stranger. Go on after the last relay message if it is ahead of
                        // us; otherwise keep our place and take the subject's new end.
                        tracing::info!(env = %env, "the subject moved under the relay; reading where it stands");
                        if let Some((sequence, version)) = self.last_message(env).await? {
                            at.last_sequence = Some(sequence);
                            if let Some(version) = version.filter(|v| *v >= at.next) {
                                at.next = version + 1;
                            }
                        }
                        self.envs.insert(env.to_owned(), at);
                        return Ok(());
                    }
                    Err(e) => {
                        self.envs.insert(env.to_owned(), at);
                        if matches!(&e, RelayError::Publish(p) if p.kind() == PublishErrorKind::StreamNotFound)
                        {
                            // The stream is gone (NATS lost its data): it is made again, and
                            // every environment starts at its head — the edges catch up to
                            // that from the control plane — rather than republishing all the
                            // history the database keeps.
                            self.stream_ready = false;
                            self.envs.clear();
                            self.passes = 0;
                        }
                        return Err(e);
                    }
                }
            }
            self.envs.insert(env.to_owned(), at);
        }
        Ok(())
    }

    /// Publishes one change and waits for its acknowledgement.
    async fn publish(
        &self,
        env: &str,
        epoch: u64,
        version: u64,
        change: checkgate_protocol::frame::ChangeRecord,
        expect: Option<u64>,
    ) -> Result<Acked, RelayError> {
        let message = |payload: Vec<u8>| {
            let m = PublishMessage::build()
                .payload(payload.into())
                .message_id(wire::message_id(epoch, env, version))
                .header(wire::VERSION_HEADER, version.to_string().as_str())
                .header(wire::RELAY_HEADER, self.lease.token.to_string().as_str());
            // `0` when the subject holds nothing: the publish then fails if anything landed
            // on it meanwhile, as it does when the subject moved past a known sequence.
            m.expected_last_subject_sequence(expect.unwrap_or(0))
        };
        let payload = wire::payload(env, epoch, change)
            .map_err(|e| RelayError::Nats(format!("encoding version {version} of {env}: {e}")))?;
        let ack = match self
            .js
            .send_publish(wire::subject(env), message(payload))
            .await
        {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        let ack = match ack {
            Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                tracing::warn!(env = %env, version, "a change too large for NATS; edges fetch a snapshot instead");
                let marker = message(Vec::new()).header(wire::TOO_LARGE_HEADER, "1");
                self.js
                    .send_publish(wire::subject(env), marker)
                    .await?
                    .await?
            }
            other => other?,
        };
        Ok(Acked {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}

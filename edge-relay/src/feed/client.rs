//! The edge's side of the change feed: it opens a session with the control plane over a
//! [`Transport`] (QUIC today), says `Hello` with the positions it holds, hands what arrives to the apply thread (which journals it, then
//! applies it to the [`Replica`]), asks for digests (anti-entropy) and snapshots (after a gap
//! or a mismatch), and reconnects with jittered exponential backoff when the connection dies —
//! found by three missed heartbeats (a deadline only a received frame moves) or QUIC's idle
//! timeout. It also carries the edge's impressions and evaluation counts upstream
//! ([`super::upstream`]): batches taken from the flusher's channel while a session is up, each
//! answered when the control plane's acknowledgement naming it arrives. When the edge stops,
//! the session stays open until the flusher has sent what it held (or the deadline nears).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use checkgate_feed::nats::NatsSettings;
use checkgate_feed::nats::control::{Control, Upstream};
use checkgate_feed::nats::edge::NatsTransport;
use checkgate_feed::quic::{QuicTransport, Trust};
use checkgate_feed::{Session, Transport};
use checkgate_ops::Stopping;
use checkgate_protocol::frame::{
    AckOutcome, CloseCode, DigestRequest, EnvironmentInfo, Hello, Resync,
};
use checkgate_protocol::{Frame, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, Secret};
use checkgate_serve::replica::{Applied, Replica};

use super::apply::{Applier, Job, Outcome};
pub use super::state::FeedState;
use super::state::{lock, now_ms};
use super::upstream::Outbox;
use crate::journal::Journal;

const BACKOFF_START: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// A connection that lasted this long resets the backoff.
const HEALTHY_FOR: Duration = Duration::from_secs(60);
/// How long a gap may stay open before the edge asks for a snapshot.
const GAP_PATIENCE: Duration = Duration::from_secs(2);
/// The shortest silence after which a connection counts as dead.
const MIN_SILENCE: Duration = Duration::from_secs(10);
/// Heartbeats missed in a row before the connection counts as dead.
const MISSED_HEARTBEATS: u32 = 3;
/// How often the apply thread is asked whether the journal is due to be folded into the
/// snapshot file.
const TICK_APPLY_EVERY: Duration = Duration::from_secs(1);
/// Insights batches sent and not yet acknowledged, at most (the flusher sends one of each kind
/// at a time; this only bounds a misbehaving one).
const INSIGHTS_IN_FLIGHT: usize = 8;

/// Where and how to reach the control plane.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// `host:port` of each control-plane instance's feed (UDP). Each reconnection tries the
    /// next, so an edge fails over when an instance dies.
    pub addrs: Vec<String>,
    /// How the feed travels.
    pub via: Via,
    pub token: Secret,
    /// This edge, for the control plane's fleet view and logs.
    pub name: String,
    pub region: String,
    /// How often each environment's digest is compared with the control plane's.
    pub anti_entropy: Duration,
    /// The snapshot file.
    pub snapshot_path: PathBuf,
}

/// The feed's transport.
#[derive(Debug, Clone)]
pub enum Via {
    /// Straight from the control plane, over QUIC.
    Quic {
        /// The name its certificate must carry (with a CA; ignored with a pinned fingerprint).
        server_name: String,
        trust: Trust,
    },
    /// Changes over NATS JetStream, the rest over the control plane's HTTP feed route.
    Nats {
        nats: Box<NatsSettings>,
        control: Upstream,
    },
}

/// A random number in `0..n`, from the operating system's generator (jitter needs no more).
fn random_below(n: u64) -> u64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word) % n.max(1)
}

/// Full jitter: a wait drawn from `[backoff / 2, backoff]`.
fn jittered(backoff: Duration) -> Duration {
    let ms = backoff.as_millis().max(2) as u64;
    Duration::from_millis(ms / 2 + random_below(ms / 2 + 1))
}

/// Why a session ended.
enum Ended {
    /// The connection failed or died; try again after a pause.
    Retry(String),
    /// The connection opened and the hello went out, but the control plane ended it before a
    /// single frame came back: treated as [`Ended::Retry`], except that it may be a refusal of
    /// the hello's protocol version whose `Close` was lost (a control plane that drops the
    /// connection right after it), so the next hello may step down.
    Unheard(String),
    /// The control plane closed it deliberately with this code.
    Closed(CloseCode, String),
    /// The edge is shutting down.
    Shutdown,
}

/// Runs the feed until the process stops, then saves the snapshot file one last time. It is
/// owned by the process ([`checkgate_ops::Owned`]): returning early (the apply thread or the
/// QUIC endpoint cannot be set up) stops the edge rather than leave it serving a frozen
/// snapshot as ready.
/// `journal` is the open change journal (see [`crate::journal`]); without one, changes are
/// applied without crash safety and `/status` says so. `outbox` is where the insights flusher's
/// batches come from ([`super::upstream::channel`]).
pub async fn run(
    settings: ClientSettings,
    replica: Arc<Replica>,
    state: Arc<FeedState>,
    journal: Option<Journal>,
    mut outbox: Outbox,
    mut shutdown: Stopping,
) {
    if journal.is_none() {
        state.journal_failed("the change journal could not be opened".into());
    }
    let mut applier = match Applier::start(
        replica.clone(),
        state.clone(),
        journal,
        settings.snapshot_path.clone(),
    ) {
        Ok(applier) => applier,
        Err(e) => {
            tracing::error!(cause = %e, "cannot start the feed's apply thread; serving the snapshot only");
            return;
        }
    };
    follow(
        &settings,
        &replica,
        &state,
        &mut applier,
        &mut outbox,
        &mut shutdown,
    )
    .await;
    // Only what came from the control plane (or the files) is worth writing; the apply thread
    // checks that.
    applier.finish(!state.revoked()).await;
}

async fn follow(
    settings: &ClientSettings,
    replica: &Arc<Replica>,
    state: &FeedState,
    applier: &mut Applier,
    outbox: &mut Outbox,
    shutdown: &mut Stopping,
) {
    match &settings.via {
        Via::Quic { server_name, trust } => {
            let mut transport = match QuicTransport::new(trust, server_name.clone()) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(cause = %e, "cannot set up the feed's QUIC endpoint; serving the snapshot only");
                    return;
                }
            };
            let link = Link {
                settings,
                replica,
                state,
            };
            follow_over(&mut transport, &link, applier, outbox, shutdown).await;
            transport.close();
        }
        Via::Nats { nats, control } => {
            let held = replica.clone();
            let mut transport = NatsTransport::new(
                NatsSettings::clone(nats),
                Control::new(control.clone(), settings.token.clone()),
                settings.name.clone(),
                Arc::new(move || held.positions()),
            );
            let link = Link {
                settings,
                replica,
                state,
            };
            follow_over(&mut transport, &link, applier, outbox, shutdown).await;
            transport.farewell().await;
            transport.close();
        }
    }
}

/// What every session of the feed reads.
struct Link<'a> {
    settings: &'a ClientSettings,
    replica: &'a Replica,
    state: &'a FeedState,
}

/// Follows the feed over `transport` until `shutdown` turns true, reconnecting as needed.
async fn follow_over(
    transport: &mut impl Transport,
    link: &Link<'_>,
    applier: &mut Applier,
    outbox: &mut Outbox,
    shutdown: &mut Stopping,
) {
    let (settings, state) = (link.settings, link.state);
    if settings.addrs.is_empty() {
        tracing::error!("no feed address; serving the snapshot only");
        return;
    }
    let mut backoff = BACKOFF_START;
    let mut attempt = 0usize;
    // The protocol version to say hello in: the edge's own, one lower after each refusal of
    // it (down to the oldest a control plane serves), the edge's own again after any other end.
    let mut version = PROTOCOL_VERSION;
    // The last failure logged, and whether any session ever caught up.
    let mut last_failure: Option<String> = None;
    let mut connected_once = false;
    loop {
        let started = Instant::now();
        let target = &settings.addrs[attempt % settings.addrs.len().max(1)];
        attempt = attempt.wrapping_add(1);
        let ended = session(transport, link, target, applier, outbox, shutdown, version).await;
        // A connection that caught up worked: the next attempt starts from a short wait.
        if state.synced() {
            backoff = BACKOFF_START;
            connected_once = true;
            last_failure = None;
        }
        state.connected.store(false, Ordering::Relaxed);
        state.synced.store(false, Ordering::Relaxed);
        metrics::gauge!("checkgate_feed_connected").set(0.0);
        if shutdown.deadline().is_some() {
            break;
        }
        match step_down(version, &ended) {
            Some(older) => {
                // A refusal is worth a warning; a session that merely ended unanswered (a
                // control plane restarting, or one that lost its refusal) only a note.
                if let Ended::Closed(_, message) = &ended {
                    tracing::warn!(refused = version, trying = older, %message, "the control plane does not serve this edge's feed protocol; saying hello in an older one");
                } else {
                    tracing::info!(
                        tried = version,
                        trying = older,
                        "the feed session ended before the control plane answered; saying hello in an older protocol in case it does not serve this one"
                    );
                }
                version = older;
                // The same address again, at once.
                attempt = attempt.wrapping_sub(1);
                continue;
            }
            None => version = PROTOCOL_VERSION,
        }
        let pause = match ended {
            Ended::Shutdown => break,
            Ended::Retry(why) | Ended::Unheard(why) => {
                // One line per cause: the same failure again (an unreachable server, a
                // refused credential) is logged at debug until something else happens.
                if last_failure.as_deref() == Some(why.as_str()) {
                    tracing::debug!(cause = %why, "the feed is still unreachable");
                } else if connected_once {
                    tracing::warn!(cause = %why, "feed connection lost; serving what is held meanwhile");
                } else {
                    tracing::warn!(cause = %why, "cannot reach the feed; serving what is held meanwhile");
                }
                last_failure = Some(why.clone());
                state.set_error(why);
                BACKOFF_CAP.min(backoff)
            }
            Ended::Closed(CloseCode::Revoked, message) => {
                tracing::error!(%message, "the control plane revoked this edge's token; serving nothing");
                state.revoked.store(true, Ordering::Relaxed);
                state.set_error(message);
                // After what is queued: the replica is emptied and its files removed, so what
                // the token granted does not come back at the next boot.
                applier.send(Job::Revoke).await;
                BACKOFF_CAP
            }
            Ended::Closed(code, message) => {
                tracing::warn!(?code, %message, "the control plane closed the feed");
                state.set_error(message);
                if matches!(code, CloseCode::Unauthorized | CloseCode::ProtocolVersion) {
                    BACKOFF_CAP
                } else {
                    backoff
                }
            }
        };
        if started.elapsed() >= HEALTHY_FOR {
            backoff = BACKOFF_START;
        }
        let wait = jittered(pause);
        tracing::debug!(
            wait_ms = wait.as_millis() as u64,
            "reconnecting to the feed"
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.begun() => break,
        }
        backoff = (backoff * 2).min(BACKOFF_CAP);
        state.reconnects.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("checkgate_feed_reconnects_total").increment(1);
    }
}

/// How long the feed may stay silent before it counts as dead: several heartbeats, and never
/// less than the QUIC keep-alive allows for (a busy control plane is slow, not dead).
fn silence_limit(heartbeat: Duration) -> Duration {
    (heartbeat * MISSED_HEARTBEATS).max(MIN_SILENCE)
}

/// The time a stopping session stops waiting for the flusher at: a second before the
/// deadline (less when the grace period is short), leaving the rest to the final snapshot.
fn leave_at(deadline: tokio::time::Instant) -> tokio::time::Instant {
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    deadline - (left / 2).min(Duration::from_secs(1))
}

/// The version to say hello in after a session that ended as `ended` under `version`: one
/// lower when the control plane refused `version` (or ended the session without a word, which
/// is how a refusal whose `Close` was lost looks) and an older one is left; `None` otherwise.
/// Stepping down costs nothing but one immediate attempt: every version served carries the
/// same frames today, and the next session starts from the edge's own version again.
fn step_down(version: u16, ended: &Ended) -> Option<u16> {
    match ended {
        Ended::Closed(CloseCode::ProtocolVersion, _) | Ended::Unheard(_)
            if version > MIN_PROTOCOL_VERSION =>
        {
            Some(version - 1)
        }
        _ => None,
    }
}

async fn session(
    transport: &mut impl Transport,
    link: &Link<'_>,
    target: &str,
    applier: &mut Applier,
    outbox: &mut Outbox,
    shutdown: &mut Stopping,
    version: u16,
) -> Ended {
    let (settings, replica, state) = (link.settings, link.replica, link.state);
    let hello = Hello {
        protocol_version: version,
        edge_token: settings.token.clone(),
        edge_name: settings.name.clone(),
        region: settings.region.clone(),
        positions: replica.positions(),
    };
    let opened = tokio::select! {
        opened = transport.open(target, hello) => opened,
        _ = shutdown.begun() => return Ended::Shutdown,
    };
    let mut session = match opened {
        Ok(session) => session,
        Err(why) => return Ended::Retry(why),
    };
    state.connected.store(true, Ordering::Relaxed);
    metrics::gauge!("checkgate_feed_connected").set(1.0);

    let mut heartbeat = Duration::from_secs(5);
    let mut anti_entropy = tokio::time::interval(settings.anti_entropy);
    anti_entropy.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    anti_entropy.reset();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Environments with a gap, and since when.
    let mut gaps: HashMap<String, Instant> = HashMap::new();
    let mut ticked_apply = Instant::now();
    // The dead-feed deadline: moved only by a received frame, so timers and outcomes firing
    // in between cannot postpone it.
    let silence = tokio::time::sleep(silence_limit(heartbeat));
    tokio::pin!(silence);
    // Insights batches sent and not yet acknowledged: dropping one (the session ended) tells
    // the flusher to send it again.
    let mut unanswered: HashMap<[u8; 16], tokio::sync::oneshot::Sender<AckOutcome>> =
        HashMap::new();
    // Once stopping began: when to leave even if the flusher is not done.
    let mut leaving: Option<tokio::time::Instant> = None;
    // Whether any frame came back in this session.
    let mut heard = false;
    loop {
        if leaving.is_some() && !outbox.is_open() && unanswered.is_empty() {
            return Ended::Shutdown;
        }
        tokio::select! {
            // Outcomes first (they are bounded by the frames already read), then frames: one
            // that arrived together with the deadline still counts.
            biased;
            Some(outcome) = applier.outcomes.recv() => match outcome {
                Outcome::Welcomed { dropped } => {
                    for env in &dropped {
                        tracing::info!(env = %env, "no longer serving this environment");
                        gaps.remove(env);
                    }
                }
                Outcome::Installed { env_id, version, flags } => {
                    metrics::counter!("checkgate_feed_snapshots_total").increment(1);
                    tracing::debug!(env = %env_id, version, flags, "snapshot installed");
                }
                Outcome::Applied { env_id, applied } => match applied {
                    Applied::InOrder { .. } => {
                        gaps.remove(&env_id);
                    }
                    Applied::Gap { expected, .. } => {
                        tracing::debug!(env = %env_id, expected, "gap in the feed; waiting briefly");
                        gaps.entry(env_id).or_insert_with(Instant::now);
                    }
                    Applied::NeedsSnapshot => {
                        if let Err(e) = session.send(&Resync { env_id }.into()).await {
                            return Ended::Retry(e.to_string());
                        }
                    }
                    Applied::Deleted => {
                        tracing::info!(env = %env_id, "environment deleted");
                        gaps.remove(&env_id);
                    }
                },
            },
            frame = session.recv() => {
                let ended = |why: String| if heard { Ended::Retry(why) } else { Ended::Unheard(why) };
                let frame = match frame {
                    Err(e) => return ended(e.to_string()),
                    Ok(None) => return ended("the control plane ended the stream".into()),
                    Ok(Some(frame)) => frame,
                };
                heard = true;
                state.last_frame_ms.store(now_ms(), Ordering::Relaxed);
                match frame {
                    Frame::Welcome(welcome) => {
                        state.protocol.store(version, Ordering::Relaxed);
                        heartbeat = Duration::from_millis(u64::from(welcome.heartbeat_interval_ms.clamp(100, 60_000)));
                        *lock(&state.granted) = Some(welcome.environments.iter().map(|e| (e.env_id.clone(), e.clone())).collect());
                        state.revoked.store(false, Ordering::Relaxed);
                        if !applier.send(Job::Welcome(welcome)).await {
                            return Ended::Retry("the apply thread stopped".into());
                        }
                    }
                    Frame::Snapshot(snapshot) => {
                        let Some(info) = welcome_info(state, &snapshot.env_id) else { continue };
                        gaps.remove(&snapshot.env_id);
                        if !applier.send(Job::Snapshot { info, snapshot }).await {
                            return Ended::Retry("the apply thread stopped".into());
                        }
                    }
                    Frame::Changes(changes) => {
                        if !applier.send(Job::Changes(changes)).await {
                            return Ended::Retry("the apply thread stopped".into());
                        }
                    }
                    Frame::Heartbeat(beat) => {
                        state.synced.store(true, Ordering::Relaxed);
                        let mut lag = 0;
                        let mut heads = lock(&state.heads);
                        for head in beat.heads {
                            let held = replica.version(&head.env_id).map_or(0, |(_, v)| v);
                            lag = lag.max(head.version.saturating_sub(held));
                            heads.insert(head.env_id, head.version);
                        }
                        metrics::gauge!("checkgate_feed_lag_versions").set(lag as f64);
                    }
                    Frame::Digest(digest) => {
                        if let Some((epoch, version, ours)) = replica.digest(&digest.env_id)
                            && epoch == digest.epoch && version == digest.version && ours != digest.digest
                        {
                            tracing::warn!(env = %digest.env_id, version, "digest mismatch; resyncing the environment");
                            metrics::counter!("checkgate_feed_digest_mismatches_total").increment(1);
                            if let Err(e) = session.send(&Resync { env_id: digest.env_id }.into()).await {
                                return Ended::Retry(e.to_string());
                            }
                        }
                    }
                    Frame::InsightsAck(ack) => {
                        if let Some(waiting) = unanswered.remove(&ack.id) {
                            let _ = waiting.send(ack.outcome);
                        }
                    }
                    Frame::Close(close) => return Ended::Closed(close.code, close.message),
                    other => return Ended::Retry(format!("unexpected {} frame from the control plane", other.kind())),
                }
                silence.as_mut().reset(tokio::time::Instant::now() + silence_limit(heartbeat));
            }
            out = outbox.next(), if unanswered.len() < INSIGHTS_IN_FLIGHT => {
                let Some(out) = out else { continue };
                // A batch whose flusher stopped waiting (it sends it again) or that is not one.
                let Some(id) = out.id().filter(|_| !out.ack.is_closed()) else { continue };
                if let Err(e) = session.send(&out.frame).await {
                    return Ended::Retry(e.to_string());
                }
                unanswered.insert(id, out.ack);
            }
            deadline = shutdown.begun(), if leaving.is_none() => {
                leaving = Some(leave_at(deadline));
            }
            () = sleep_until_some(leaving) => return Ended::Shutdown,
            () = &mut silence => {
                let limit = silence_limit(heartbeat);
                return Ended::Retry(format!("no frame for {limit:?}: the feed is dead"));
            }
            _ = anti_entropy.tick() => {
                for env in replica.environment_ids() {
                    if let Err(e) = session.send(&DigestRequest { env_id: env }.into()).await {
                        return Ended::Retry(e.to_string());
                    }
                }
            }
            _ = tick.tick() => {
                let overdue: Vec<String> = gaps
                    .iter()
                    .filter(|(_, since)| since.elapsed() >= GAP_PATIENCE)
                    .map(|(env, _)| env.clone())
                    .collect();
                for env in overdue {
                    tracing::info!(env = %env, "gap did not fill; asking for a snapshot");
                    gaps.remove(&env);
                    if let Err(e) = session.send(&Resync { env_id: env }.into()).await {
                        return Ended::Retry(e.to_string());
                    }
                }
                if ticked_apply.elapsed() >= TICK_APPLY_EVERY {
                    applier.try_send(Job::Tick);
                    ticked_apply = Instant::now();
                }
            }
        }
    }
}

/// Sleeps until `at`; forever without one.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The details of `env` from the last `Welcome`; `None` when it did not grant `env`.
fn welcome_info(state: &FeedState, env: &str) -> Option<EnvironmentInfo> {
    lock(&state.granted).as_ref()?.get(env).cloned()
}

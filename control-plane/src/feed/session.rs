//! One edge's feed session: the handshake (`Hello` → token check → `Welcome`), catching the
//! edge up (the changes since its position, or a snapshot when those are gone or its epoch is
//! another), then live changes as heads move, heartbeats, digests and resyncs on request, and
//! a periodic check that its token still stands.
//!
//! The edge's impressions and evaluation counts arriving on the session are stored beside it
//! (at most [`STORING_AT_ONCE`] at a time, so a slow database delays the edge's next batch, not
//! the feed) and acknowledged (`InsightsAck`) when stored ([`super::insights`]); so are its
//! connection reports, written on this session's fleet row ([`super::connections`]).
//!
//! The session subscribes to head movements *before* it reads anything, so no change can fall
//! between what it read and what it is woken for. It sends an environment's versions in order
//! and without gaps: each batch starts at what it sent last, plus one.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use checkgate_feed::quic::{FrameReader, FrameWriter, TransportError};
use checkgate_protocol::frame::{Close, CloseCode, Hello};
use checkgate_protocol::{DEFAULT_MAX_FRAME, Frame, HANDSHAKE_MAX_FRAME};
use tokio::sync::{mpsc, watch};

mod sending;

use super::frames::BadRow;
use super::heads::Heads;
use crate::store::{EdgeToken, FeedEnvironment, Store, StoreError, key_hash};

/// Changes sent in one frame at most.
const BATCH: u32 = 500;
/// How long an edge has to open its stream and say `Hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Insights batches of one edge stored at once, at most; past it the session reads no more
/// of the edge's frames until one is done.
const STORING_AT_ONCE: usize = 4;

/// The timings of every session.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// How often an idle feed sends a heartbeat.
    pub heartbeat: Duration,
    /// How often the session checks that the edge's token was not revoked.
    pub token_check: Duration,
}

/// How often a session looks whether its fleet row needs writing: positions that moved are
/// written within this.
const FLEET_MOVED: Duration = Duration::from_secs(2);

/// Longest an edge's first fleet row may hold up its session.
const FLEET_OPEN_WAIT: Duration = Duration::from_secs(2);

/// Longest edge name or region kept in the fleet table (an edge's `Hello` may carry more).
const FLEET_TEXT_MAX: usize = 128;

/// `text` cut to [`FLEET_TEXT_MAX`] characters.
fn shorten(text: &str) -> String {
    text.chars().take(FLEET_TEXT_MAX).collect()
}

/// How long a closing session waits for the edge to acknowledge its `Close`.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Why a session ended other than by the edge leaving.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    BadRow(#[from] BadRow),
    #[error("no Hello within {0:?}")]
    HelloTimeout(Duration),
}

/// Where a session's frames go: the QUIC stream of a session, or the answer to one exchange
/// on the HTTP feed route (see [`super::exchange`]).
pub(crate) trait Sink: Send {
    fn put(&mut self, frame: &Frame) -> impl Future<Output = Result<(), TransportError>> + Send;
}

impl Sink for FrameWriter {
    async fn put(&mut self, frame: &Frame) -> Result<(), TransportError> {
        self.send(frame).await
    }
}

/// What the session knows of its edge.
pub(crate) struct Session<W> {
    pub(crate) store: Store,
    pub(crate) heads: Arc<Heads>,
    pub(crate) token: EdgeToken,
    pub(crate) epoch: u64,
    pub(crate) writer: W,
    /// The environments the edge serves, and the last version sent of each.
    pub(crate) sent: HashMap<String, u64>,
    /// The same environments in the order of the last `Welcome`, to notice a change of the set.
    pub(crate) granted: Vec<FeedEnvironment>,
    /// This session's row in the fleet table, when it could be written.
    pub(crate) fleet_id: Option<String>,
    /// What the row last said, and when it was written.
    pub(crate) fleet_written: Option<(BTreeMap<String, u64>, tokio::time::Instant)>,
    /// Whether a write of the row is under way: one at a time per session, so a slow database
    /// never gathers a queue of them.
    pub(crate) fleet_busy: Arc<std::sync::atomic::AtomicBool>,
}

/// Runs one session on an accepted connection until the edge leaves, the token is revoked,
/// or `shutdown` turns true.
pub async fn run(
    incoming: quinn::Incoming,
    store: Store,
    heads: Arc<Heads>,
    settings: SessionSettings,
    insights: crate::insights::Insights,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SessionError> {
    let connection = incoming.await?;
    let remote = connection.remote_address();
    let (send, recv) = tokio::time::timeout(HELLO_TIMEOUT, connection.accept_bi())
        .await
        .map_err(|_| SessionError::HelloTimeout(HELLO_TIMEOUT))??;
    let mut reader = FrameReader::new(recv, HANDSHAKE_MAX_FRAME);
    let mut writer = FrameWriter::new(send, DEFAULT_MAX_FRAME);
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, reader.next())
        .await
        .map_err(|_| SessionError::HelloTimeout(HELLO_TIMEOUT))??
    {
        Some(Frame::Hello(hello)) => hello,
        Some(other) => {
            return close(
                &mut writer,
                CloseCode::ProtocolViolation,
                format!("expected hello, got {}", other.kind()),
            )
            .await;
        }
        None => return Ok(()),
    };
    if let Some(refusal) = hello.refusal() {
        return close(&mut writer, refusal.code, refusal.message).await;
    }
    let Some(token) = store
        .authenticate_edge_token(&key_hash(hello.edge_token.expose()))
        .await?
    else {
        tracing::warn!(%remote, edge = %hello.edge_name, "edge refused: unknown or revoked token");
        return close(
            &mut writer,
            CloseCode::Unauthorized,
            "unknown or revoked edge token".into(),
        )
        .await;
    };
    tracing::info!(%remote, edge = %hello.edge_name, region = %hello.region, token = %token.prefix, "edge connected");
    metrics::gauge!("checkgate_feed_edges").increment(1.0);

    // The fleet table is for operators: failing to write it never refuses an edge.
    // Bounded: a busy database delays an edge's start by at most FLEET_OPEN_WAIT.
    let opened = tokio::time::timeout(
        FLEET_OPEN_WAIT,
        store.open_edge_session(
            &token.id,
            &shorten(&hello.edge_name),
            &shorten(&hello.region),
            &remote.to_string(),
        ),
    )
    .await;
    let fleet_id = match opened {
        Ok(Ok(id)) => Some(id),
        Ok(Err(e)) => {
            tracing::warn!(cause = %e, edge = %hello.edge_name, "recording the edge in the fleet table failed");
            None
        }
        Err(_) => {
            tracing::warn!(edge = %hello.edge_name, "recording the edge in the fleet table took too long; it is not listed");
            None
        }
    };

    // Subscribe before reading anything: a head that moves from here on wakes the loop.
    let mut generation = heads.subscribe();
    let mut session = Session {
        epoch: store.epoch(),
        store,
        heads,
        token,
        writer,
        sent: HashMap::new(),
        granted: Vec::new(),
        fleet_id,
        fleet_written: None,
        fleet_busy: Arc::default(),
    };
    let outcome = session
        .serve(
            hello,
            reader,
            settings,
            &insights,
            &mut generation,
            &mut shutdown,
        )
        .await;
    if let Some(id) = &session.fleet_id
        && let Err(e) = session
            .store
            .close_edge_session(id, &session.token.id, Some(&session.positions()))
            .await
    {
        tracing::warn!(cause = %e, "closing the edge's fleet record failed");
    }
    metrics::gauge!("checkgate_feed_edges").decrement(1.0);
    match &outcome {
        Ok(()) => tracing::info!(%remote, "edge disconnected"),
        Err(e) => tracing::info!(%remote, cause = %e, "edge session ended"),
    }
    outcome
}

async fn close(
    writer: &mut FrameWriter,
    code: CloseCode,
    message: String,
) -> Result<(), SessionError> {
    writer.send(&Close { code, message }.into()).await?;
    writer.finish()?;
    // The connection is dropped on return: give the `Close` its chance to arrive first.
    writer.delivered(CLOSE_LINGER).await;
    Ok(())
}

impl Session<FrameWriter> {
    async fn serve(
        &mut self,
        hello: Hello,
        mut reader: FrameReader,
        settings: SessionSettings,
        insights: &crate::insights::Insights,
        generation: &mut watch::Receiver<u64>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), SessionError> {
        self.greet(&hello).await?;

        // The edge's frames arrive through a task of their own, so a slow read never holds up
        // sending; the task ends with the stream.
        let (frames_tx, mut frames) = mpsc::channel::<Result<Frame, TransportError>>(16);
        let reading = tokio::spawn(async move {
            loop {
                let next = reader.next().await.transpose();
                let Some(next) = next else { break };
                let failed = next.is_err();
                if frames_tx.send(next).await.is_err() || failed {
                    break;
                }
            }
        });
        let mut heartbeat = tokio::time::interval(settings.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut fleet = tokio::time::interval(FLEET_MOVED);
        fleet.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut token_check = tokio::time::interval(settings.token_check);
        token_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The edge's insights being stored, each resolving with its acknowledgement.
        let mut storing: tokio::task::JoinSet<Option<checkgate_protocol::frame::InsightsAck>> =
            tokio::task::JoinSet::new();
        let outcome = loop {
            tokio::select! {
                changed = generation.changed() => {
                    if changed.is_err() { break Ok(()); }
                    if let Err(e) = self.sync().await { break Err(e); }
                }
                frame = frames.recv(), if storing.len() < STORING_AT_ONCE => match frame {
                    None => break Ok(()),
                    Some(Err(e)) => break Err(e.into()),
                    Some(Ok(frame @ (Frame::Impressions(_) | Frame::EvaluationCounts(_)))) => {
                        let (insights, token) = (insights.clone(), self.token.clone());
                        storing.spawn(async move {
                            super::insights::store(&insights, &token, &frame).await
                        });
                    }
                    Some(Ok(Frame::Connections(report))) => {
                        let (store, token, fleet) = (self.store.clone(), self.token.clone(), self.fleet_id.clone());
                        storing.spawn(async move {
                            Some(super::connections::store_edge(&store, &token, fleet.as_deref(), &report).await)
                        });
                    }
                    Some(Ok(frame)) => match self.answer(frame).await {
                        Ok(ControlFlow::Continue(())) => {}
                        Ok(ControlFlow::Break(())) => break Ok(()),
                        Err(e) => break Err(e),
                    },
                },
                Some(stored) = storing.join_next(), if !storing.is_empty() => {
                    if let Ok(Some(ack)) = stored
                        && let Err(e) = self.writer.put(&ack.into()).await
                    {
                        break Err(e.into());
                    }
                }
                _ = heartbeat.tick() => {
                    let beat = self.heartbeat();
                    if let Err(e) = self.writer.put(&beat.into()).await { break Err(e.into()); }
                }
                _ = fleet.tick() => self.touch_fleet(),
                _ = token_check.tick() => match self.store.edge_token_live(&self.token.id).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::info!(token = %self.token.prefix, "edge token revoked; closing its feed");
                        break close(&mut self.writer, CloseCode::Revoked, "this edge's token was revoked".into()).await;
                    }
                    // A database hiccup is not a revocation: check again next time.
                    Err(e) => tracing::warn!(cause = %e, "checking an edge token failed"),
                },
                () = super::stopped(shutdown) => {
                    break close(&mut self.writer, CloseCode::Shutdown, "the control plane is shutting down".into()).await;
                }
            }
        };
        reading.abort();
        outcome
    }

    /// Answers what the edge asks for; `Break` when the session is over (the edge sent what an
    /// edge never sends, and was told so).
    async fn answer(&mut self, frame: Frame) -> Result<ControlFlow<()>, SessionError> {
        match frame {
            Frame::DigestRequest(request) => self.digest(&request.env_id, true).await?,
            Frame::Resync(request) => self.resync(&request.env_id).await?,
            other => {
                let message = format!("an edge does not send {}", other.kind());
                tracing::warn!(token = %self.token.prefix, frame = other.kind(), "edge sent a frame edges never send; closing its feed");
                close(&mut self.writer, CloseCode::ProtocolViolation, message).await?;
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}

//! The edge's [`Transport`] over NATS JetStream.
//!
//! Opening a session: connect to NATS (once; the client reconnects by itself), read the
//! stream's last sequence, *then* say `Hello` to a control plane over HTTP. The control plane's
//! answer catches the edge up from the database (changes since its positions, or snapshots);
//! every change committed after that read was published after it too, so following each
//! granted environment's subject from the sequence read plus one leaves no gap. Duplicates
//! (a change both in the catch-up and on the stream) are ignored by the versioned replica.
//!
//! While the session lasts, a reporter task (`report.rs`) sends the edge's positions to the
//! control plane every half second (the fleet view, and the token check: a revoked token is
//! refused within one report) and turns the answer into `Heartbeat` frames, so the feed client
//! sees the control plane's heads as on QUIC. The session ends — and the next one catches up
//! from the database — when the stream was recreated or lost data (its creation time changed or
//! its sequence went backwards), when the control plane's set of granted environments changed,
//! or when an environment stayed behind its head for three seconds with nothing arriving (NATS
//! down, a relay gone, a message lost): the edge never waits on JetStream alone.
//!
//! Questions and reports the feed client sends (digest requests, resyncs, insights batches,
//! connection reports — the last naming the session's fleet row) are asked over HTTP beside the
//! session.
//!
//! Every message goes through [`wire::read`]: anything malformed, or for an environment the
//! edge was not granted, is refused and counted (`checkgate_feed_refused_total{reason}`),
//! never applied.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::push::OrderedConfig};
use checkgate_protocol::Frame;
use checkgate_protocol::frame::{
    AckOutcome, Close, CloseCode, EnvPosition, Hello, InsightsAck, Resync, Welcome,
};
use futures_util::StreamExt as _;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::NatsSettings;
use super::control::{Control, ControlError, Upstream};
use super::report::{Reporter, report};
use super::wire::{self, Incoming};
use crate::{Session, Transport, TransportError};

/// How long opening a session waits for NATS to be connected and the stream to exist.
const READY_WAIT: Duration = Duration::from_secs(30);
/// How often it looks meanwhile.
const READY_POLL: Duration = Duration::from_millis(200);
/// The longest a hello, a snapshot or a digest may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping edge waits to tell the control plane.
const FAREWELL_WAIT: Duration = Duration::from_secs(1);
/// How many questions (digests, snapshots) a session may have before the control plane at once.
const ASKS_AT_ONCE: usize = 2;

/// What the edge holds, for its reports.
pub type Positions = Arc<dyn Fn() -> Vec<EnvPosition> + Send + Sync>;

/// The NATS transport of an edge.
pub struct NatsTransport {
    settings: NatsSettings,
    control: Control,
    name: String,
    positions: Positions,
    client: Option<async_nats::Client>,
    /// The fleet row of the last session, which the next `Hello` replaces.
    fleet: Option<String>,
}

impl NatsTransport {
    pub fn new(
        settings: NatsSettings,
        control: Control,
        name: String,
        positions: Positions,
    ) -> Self {
        Self {
            settings,
            control,
            name,
            positions,
            client: None,
            fleet: None,
        }
    }

    async fn client(&mut self) -> Result<async_nats::Client, String> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let client = self
            .settings
            .connect(&format!("checkgate-edge {}", self.name))
            .await
            .map_err(|e| e.to_string())?;
        Ok(self.client.insert(client).clone())
    }

    /// Tells the control plane that the edge is stopping, so its fleet row ends now rather
    /// than going stale (over QUIC, closing the connection says it). Best effort, briefly.
    pub async fn farewell(&mut self) {
        let Some(fleet) = self.fleet.take() else {
            return;
        };
        let bye = Frame::Close(Close {
            code: CloseCode::Shutdown,
            message: "the edge is stopping".into(),
        });
        if let Err(e) = self
            .control
            .exchange(&bye, Some(&fleet), FAREWELL_WAIT)
            .await
        {
            tracing::debug!(cause = %e, "telling the control plane the edge stops failed");
        }
    }
}

/// One environment's messages, tagged with it.
type Messages = Pin<
    Box<
        dyn futures_util::Stream<
                Item = Result<jetstream::Message, jetstream::consumer::push::OrderedError>,
            > + Send,
    >,
>;

impl NatsTransport {
    /// The feed's stream, once NATS is connected and the stream exists — waiting up to
    /// [`READY_WAIT`] for both, so a NATS server coming back (or a relay recreating the
    /// stream) is followed within moments instead of after a grown backoff.
    async fn stream(
        &self,
        client: &async_nats::Client,
        js: &jetstream::Context,
    ) -> Result<jetstream::stream::Stream, String> {
        let deadline = tokio::time::Instant::now() + READY_WAIT;
        loop {
            let problem = if client.connection_state() == async_nats::connection::State::Connected {
                match js.get_stream(&self.settings.stream).await {
                    Ok(stream) => return Ok(stream),
                    Err(e) => format!(
                        "stream {} on NATS: {e} (does a control plane with NATS_URL run?)",
                        self.settings.stream
                    ),
                }
            } else {
                "NATS is not connected".to_owned()
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(problem);
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }
}

impl Transport for NatsTransport {
    type Session = NatsSession;

    async fn open(&mut self, _target: &str, hello: Hello) -> Result<NatsSession, String> {
        let client = self.client().await?;
        let js = self.settings.jetstream(client.clone());
        let mut stream = self.stream(&client, &js).await?;
        let info = stream
            .info()
            .await
            .map_err(|e| format!("reading stream {}: {e}", self.settings.stream))?;
        let (created, from) = (
            info.created.unix_timestamp_nanos(),
            info.state.last_sequence,
        );

        let exchanged = match self
            .control
            .exchange(
                &Frame::Hello(hello),
                self.fleet.as_deref(),
                EXCHANGE_TIMEOUT,
            )
            .await
        {
            Ok(exchanged) => exchanged,
            // Said as the control plane would on QUIC, so the client backs off the same way.
            Err(ControlError::Unauthorized(message)) => {
                return Ok(NatsSession::closed(CloseCode::Unauthorized, message));
            }
            Err(e) => return Err(e.to_string()),
        };
        // Remembered at once, so the next hello closes this row even if this session fails
        // to start.
        self.fleet.clone_from(&exchanged.fleet);
        let granted: Vec<String> = exchanged
            .frames
            .iter()
            .rev()
            .find_map(|f| match f {
                Frame::Welcome(Welcome { environments, .. }) => {
                    Some(environments.iter().map(|e| e.env_id.clone()).collect())
                }
                _ => None,
            })
            .unwrap_or_default();

        let mut consumers = Vec::with_capacity(granted.len());
        // Named consumers are created on `$JS.API.CONSUMER.CREATE.<stream>.<name>.<subject>`,
        // so NATS permissions can limit an edge's credentials to its environments' subjects.
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..12];
        for (n, env) in granted.iter().enumerate() {
            if !wire::subject_safe(env) {
                return Err(format!("environment id {env:?} cannot be a NATS subject"));
            }
            let config = OrderedConfig {
                name: Some(format!("edge-{tag}-{n}")),
                deliver_subject: client.new_inbox(),
                filter_subject: wire::subject(env),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from + 1,
                },
                ..OrderedConfig::default()
            };
            let consumer = stream
                .create_consumer(config)
                .await
                .map_err(|e| format!("following {} on NATS: {e}", wire::subject(env)))?;
            let messages = consumer
                .messages()
                .await
                .map_err(|e| format!("following {} on NATS: {e}", wire::subject(env)))?;
            consumers.push(Box::pin(messages) as Messages);
        }

        tracing::info!(stream = %self.settings.stream, from = from + 1, environments = granted.len(), "following the feed over NATS");
        let (events_tx, events) = mpsc::channel(16);
        let arrived = Arrived::default();
        let reporter = tokio::spawn(report(
            Reporter {
                control: self.control.clone(),
                fleet: exchanged.fleet.clone(),
                positions: self.positions.clone(),
                arrived: arrived.clone(),
                granted: granted.clone(),
            },
            stream,
            created,
            events_tx.clone(),
        ));
        Ok(NatsSession {
            pending: exchanged.frames.into(),
            messages: Some(futures_util::stream::select_all(consumers)),
            granted,
            control: self.control.clone(),
            events,
            reporter: Some(reporter),
            last_sequence: HashMap::new(),
            arrived,
            events_tx: Some(events_tx),
            asks: JoinSet::new(),
            fleet: exchanged.fleet,
            asks_at_once: Arc::new(Semaphore::new(ASKS_AT_ONCE)),
            ask_clients: Arc::default(),
        })
    }

    fn close(&mut self) {
        self.client = None;
    }
}

/// What the reporter tells the session.
pub(super) enum Event {
    Frame(Frame),
    /// The session must start over, for this reason.
    Over(String),
}

/// An open NATS session.
pub struct NatsSession {
    /// Frames to hand out before anything else (the control plane's answers).
    pending: VecDeque<Frame>,
    messages: Option<futures_util::stream::SelectAll<Messages>>,
    granted: Vec<String>,
    control: Control,
    events: mpsc::Receiver<Event>,
    reporter: Option<tokio::task::JoinHandle<()>>,
    /// The last stream sequence seen per subject, to notice the stream going backwards.
    last_sequence: HashMap<String, u64>,
    /// The last version handed out per environment, which the reporter counts as arrived even
    /// before the apply thread has applied it.
    arrived: Arrived,
    /// Where answers fetched beside the session go.
    events_tx: Option<mpsc::Sender<Event>>,
    /// Questions asked beside the session; dropped (aborted) with it.
    asks: JoinSet<()>,
    /// The session's fleet row, which connection reports name.
    fleet: Option<String>,
    asks_at_once: Arc<Semaphore>,
    /// The clients of answered questions, kept with their connections for the next ones (at
    /// most [`ASKS_AT_ONCE`]).
    ask_clients: Arc<std::sync::Mutex<Vec<Control>>>,
}

/// The last version handed out per environment.
pub(super) type Arrived = Arc<std::sync::Mutex<HashMap<String, u64>>>;

fn lock_clients(
    clients: &std::sync::Mutex<Vec<Control>>,
) -> std::sync::MutexGuard<'_, Vec<Control>> {
    clients
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) fn lock_arrived(arrived: &Arrived) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
    arrived
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for NatsSession {
    fn drop(&mut self) {
        if let Some(reporter) = self.reporter.take() {
            reporter.abort();
        }
    }
}

impl NatsSession {
    /// A session that only says `Close`.
    fn closed(code: CloseCode, message: String) -> Self {
        let (_, events) = mpsc::channel(1);
        Self {
            pending: VecDeque::from([Frame::Close(Close { code, message })]),
            messages: None,
            granted: Vec::new(),
            control: Control::new(Upstream::default(), checkgate_protocol::Secret::new("")),
            events,
            reporter: None,
            last_sequence: HashMap::new(),
            arrived: Arrived::default(),
            events_tx: None,
            asks: JoinSet::new(),
            fleet: None,
            asks_at_once: Arc::new(Semaphore::new(ASKS_AT_ONCE)),
            ask_clients: Arc::default(),
        }
    }

    /// Handles one message; `Some` frame to hand out.
    async fn message(
        &mut self,
        message: jetstream::Message,
    ) -> Result<Option<Frame>, TransportError> {
        let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
        let subject = message.subject.as_str().to_owned();
        if let Some(last) = self.last_sequence.get(&subject)
            && sequence != 0
            && sequence <= *last
        {
            tracing::warn!(subject = %subject, sequence, last, "the feed stream went backwards (recreated or restored); resyncing from the control plane");
            metrics::counter!("checkgate_feed_stream_resets_total").increment(1);
            return Err(TransportError::Broken(
                "the NATS stream went backwards".into(),
            ));
        }
        self.last_sequence.insert(subject.clone(), sequence);
        metrics::counter!("checkgate_feed_nats_messages_total").increment(1);
        let granted = &self.granted;
        match wire::read(
            &subject,
            message.headers.as_ref(),
            &message.payload,
            |env| granted.iter().any(|g| g == env),
        ) {
            Ok(Incoming::Changes(changes)) => {
                if let Some(last) = changes.changes.last() {
                    let mut arrived = lock_arrived(&self.arrived);
                    let at = arrived.entry(changes.env_id.clone()).or_insert(0);
                    *at = (*at).max(last.version);
                }
                Ok(Some(Frame::Changes(changes)))
            }
            Ok(Incoming::TooLarge { env_id, version }) => {
                tracing::info!(env = %env_id, version, "a change too large for NATS; fetching a snapshot");
                // Fetched beside `recv` (which must stay cancel-safe), its answer delivered
                // as an event.
                self.ask_aside(Frame::Resync(Resync { env_id }));
                Ok(None)
            }
            Err(refusal) => {
                metrics::counter!("checkgate_feed_refused_total", "reason" => refusal.reason())
                    .increment(1);
                tracing::warn!(subject = %subject, sequence, cause = %refusal, "refused a feed message");
                Ok(None)
            }
        }
    }

    /// Asks the control plane beside the session, its answer (or the reason to start over)
    /// delivered as events: `recv` and the apply loop never wait on an HTTP round-trip. At most
    /// [`ASKS_AT_ONCE`] run at a time; they end with the session.
    fn ask_aside(&mut self, frame: Frame) {
        let Some(events) = self.events_tx.clone() else {
            return;
        };
        // Forget the questions already answered.
        while self.asks.try_join_next().is_some() {}
        let fresh = self.control.clone();
        let (permits, idle) = (self.asks_at_once.clone(), self.ask_clients.clone());
        let fleet = matches!(frame, Frame::Connections(_))
            .then(|| self.fleet.clone())
            .flatten();
        self.asks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            // A client whose connection is already open, if one is idle: a batch a second
            // must not cost a new connection (and TLS handshake) each.
            let mut control = lock_clients(&idle).pop().unwrap_or(fresh);
            let exchanged = control
                .exchange(&frame, fleet.as_deref(), EXCHANGE_TIMEOUT)
                .await;
            lock_clients(&idle).push(control);
            let answer = match exchanged {
                Ok(exchanged) => exchanged.frames.into_iter().map(Event::Frame).collect(),
                // Handed out as a `Close`, as the control plane would on QUIC.
                Err(ControlError::Unauthorized(message)) => {
                    vec![Event::Frame(Frame::Close(Close {
                        code: CloseCode::Revoked,
                        message,
                    }))]
                }
                // An insights batch that did not get through is sent again later, with its
                // id: its failure ends nothing.
                Err(e) => match frame.insights_id() {
                    Some(id) => {
                        tracing::debug!(cause = %e, kind = frame.kind(), "sending insights failed; the batch will be sent again");
                        vec![Event::Frame(Frame::InsightsAck(InsightsAck {
                            id,
                            outcome: AckOutcome::Retry,
                        }))]
                    }
                    None => vec![Event::Over(format!("asking for {}: {e}", frame.kind()))],
                },
            };
            for event in answer {
                if events.send(event).await.is_err() {
                    break;
                }
            }
        });
    }
}

impl Session for NatsSession {
    async fn recv(&mut self) -> Result<Option<Frame>, TransportError> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Ok(Some(frame));
            }
            let Some(messages) = self.messages.as_mut() else {
                return Ok(None);
            };
            tokio::select! {
                biased;
                event = self.events.recv() => match event {
                    Some(Event::Frame(frame)) => return Ok(Some(frame)),
                    Some(Event::Over(why)) => return Err(TransportError::Broken(why)),
                    None => return Err(TransportError::Broken("the reporter stopped".into())),
                },
                message = messages.next(), if !messages.is_empty() => match message {
                    Some(Ok(message)) => {
                        if let Some(frame) = self.message(message).await? {
                            return Ok(Some(frame));
                        }
                    }
                    // The ordered consumer recreates itself after these; a lost stream is
                    // noticed by the reporter's check.
                    Some(Err(e)) => tracing::debug!(cause = %e, "NATS consumer hiccup"),
                    None => return Err(TransportError::Broken("the NATS consumers ended".into())),
                },
            }
        }
    }

    async fn send(&mut self, frame: &Frame) -> Result<(), TransportError> {
        match frame {
            // Impressions, evaluation counts and connection reports go through the same route,
            // answered by an `InsightsAck` (a report names the session's fleet row).
            Frame::DigestRequest(_)
            | Frame::Resync(_)
            | Frame::Impressions(_)
            | Frame::EvaluationCounts(_)
            | Frame::Connections(_) => {
                self.ask_aside(frame.clone());
                Ok(())
            }
            other => Err(TransportError::Broken(format!(
                "an edge does not send {} over NATS",
                other.kind()
            ))),
        }
    }
}

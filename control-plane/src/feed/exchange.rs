//! The HTTP feed route's side of a feed conversation, for edges whose changes come over NATS
//! (see `checkgate_feed::nats::control` for the edge's side): each request is one frame from
//! the edge, and the answer is what a QUIC session ([`super::session`]) would have sent for
//! it — the same code writes both, into a QUIC stream there and into the answer's body here.
//!
//! Nothing is kept between requests but the fleet row and when it was last written: `Hello`
//! opens the row (its id goes back in a header) and each report refreshes it when the
//! positions moved or [`FLEET_REFRESH`] passed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use checkgate_feed::TransportError;
use checkgate_protocol::frame::{EnvPosition, Heartbeat, Hello, Welcome};
use checkgate_protocol::{DEFAULT_MAX_FRAME, Frame, encode};

use super::frames;
use super::heads::Heads;
use super::session::{Session, SessionError, Sink};
use crate::store::{EdgeToken, FLEET_REFRESH, FeedEnvironment, Store};

/// Fleet rows this instance refreshed, and when; so reports every half second write the
/// database only when something moved, and then at most every [`FLEET_MOVED`].
#[derive(Debug, Default)]
pub struct FleetRows {
    written: Mutex<HashMap<String, Written>>,
}

/// The positions a fleet row was last written with, and when.
type Written = (BTreeMap<String, u64>, Instant);

/// How soon a row whose positions moved is written again.
const FLEET_MOVED: std::time::Duration = std::time::Duration::from_secs(2);

/// Most rows remembered at once.
const MAX_ROWS: usize = 10_000;

/// Rows not refreshed for this long are forgotten (their edge left or moved to another
/// instance).
const FORGET_AFTER: std::time::Duration = std::time::Duration::from_secs(120);

impl FleetRows {
    /// Whether `id` at `positions` is due to be written; notes it as written if so.
    fn due(&self, id: &str, positions: &BTreeMap<String, u64>) -> bool {
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if written.len() >= MAX_ROWS {
            written.retain(|_, (_, at)| now.duration_since(*at) < FORGET_AFTER);
            // Still full (ids that are not rows, say): forget them all; the cost is a write
            // each at their next report.
            if written.len() >= MAX_ROWS {
                written.clear();
            }
        }
        // Moved positions within FLEET_MOVED, as a QUIC session writes them; otherwise every
        // FLEET_REFRESH. Not at every report: a fleet of edges reporting twice a second while
        // changes flow would otherwise write the database hundreds of times a second.
        let due = written.get(id).is_none_or(|(before, at)| {
            let since = now.duration_since(*at);
            (before != positions && since >= FLEET_MOVED) || since >= FLEET_REFRESH
        });
        if due {
            written.insert(id.to_owned(), (positions.clone(), now));
        }
        due
    }

    /// Forgets `id` (its session ended).
    fn forget(&self, id: &str) {
        self.written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

/// The answer's body: the frames, each in its envelope, one after the other.
#[derive(Debug, Default)]
pub struct Answer(pub Vec<u8>);

impl Sink for Answer {
    async fn put(&mut self, frame: &Frame) -> Result<(), TransportError> {
        self.0.extend(encode(frame, DEFAULT_MAX_FRAME)?);
        Ok(())
    }
}

/// What the route answers.
#[derive(Debug)]
pub struct Exchanged {
    pub body: Vec<u8>,
    /// The fleet row opened for a `Hello`.
    pub fleet: Option<String>,
}

/// Why a request could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The edge sent something it never sends.
    #[error("{0}")]
    Refused(String),
    /// Too many whole-environment requests are being answered; try again shortly.
    #[error("the control plane is busy answering other edges; try again shortly")]
    Busy,
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// What the feed route needs from the process.
#[derive(Debug, Clone)]
pub struct FeedRoute {
    pub heads: Arc<Heads>,
    pub fleet: Arc<FleetRows>,
    /// Requests that read whole environments (hellos, resyncs, digests) at once, at most: a
    /// fleet starting over together queues here instead of filling memory with snapshots.
    pub heavy: Arc<tokio::sync::Semaphore>,
}

/// Answers an edge's impressions or evaluation counts: stored, then acknowledged
/// ([`super::insights`]).
pub async fn insights(
    insights: &crate::insights::Insights,
    token: &EdgeToken,
    frame: &Frame,
) -> Option<Exchanged> {
    let ack = super::insights::store(insights, token, frame).await?;
    let mut answer = Answer::default();
    answer.put(&ack.into()).await.ok()?;
    Some(Exchanged {
        body: answer.0,
        fleet: None,
    })
}

/// Most hellos, resyncs and digests answered at once by one instance.
pub const HEAVY_AT_ONCE: usize = 16;
/// How long such a request waits for its turn before it is refused (503; the edge retries).
const HEAVY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Default for FeedRoute {
    fn default() -> Self {
        Self {
            heads: Heads::new(),
            fleet: Arc::default(),
            heavy: Arc::new(tokio::sync::Semaphore::new(HEAVY_AT_ONCE)),
        }
    }
}

/// Answers one frame from the edge holding `token`, which came from `address`.
pub async fn exchange(
    store: &Store,
    route: &FeedRoute,
    token: EdgeToken,
    frame: Frame,
    fleet: Option<&str>,
    address: &str,
) -> Result<Exchanged, ExchangeError> {
    let _turn = if matches!(frame, Frame::Heartbeat(_) | Frame::Close(_)) {
        None
    } else {
        let turn = tokio::time::timeout(HEAVY_WAIT, route.heavy.clone().acquire_owned()).await;
        Some(
            turn.map_err(|_| ExchangeError::Busy)?
                .map_err(|_| ExchangeError::Busy)?,
        )
    };
    let mut everything = route.heads.environments();
    if everything.is_empty() {
        // Before the head tracker's first poll.
        everything = Arc::new(
            store
                .feed_environments()
                .await
                .map_err(SessionError::from)?,
        );
    }
    let granted: Vec<FeedEnvironment> = everything
        .iter()
        .filter(|e| token.grants(&e.id))
        .cloned()
        .collect();
    let mut session = Session {
        epoch: store.epoch(),
        store: store.clone(),
        heads: route.heads.clone(),
        token,
        writer: Answer::default(),
        sent: HashMap::new(),
        granted: Vec::new(),
        fleet_id: None,
        fleet_written: None,
        fleet_busy: Arc::default(),
    };
    let mut opened = None;
    match frame {
        Frame::Hello(hello) => {
            if let Some(close) = hello.refusal() {
                session
                    .writer
                    .put(&close.into())
                    .await
                    .map_err(SessionError::from)?;
                return Ok(Exchanged {
                    body: session.writer.0,
                    fleet: None,
                });
            }
            // The row of the edge's previous session (its id comes with the hello) ends here.
            if let Some(previous) = fleet {
                close_fleet_row(&session, previous, &hello).await;
            }
            opened = open_fleet_row(&session, &hello, address).await;
            session.greet(&hello).await?;
            tracing::info!(edge = %hello.edge_name, region = %hello.region, token = %session.token.prefix, "edge said hello over http");
        }
        Frame::DigestRequest(request) => {
            session.granted = granted;
            follow(&mut session, |_| 0);
            session.digest(&request.env_id, false).await?;
        }
        Frame::Resync(request) => {
            session.granted = granted;
            follow(&mut session, |_| 0);
            session.resync(&request.env_id).await?;
        }
        // A report: the edge's positions. Answered with the heads, and a `Welcome` when the
        // environments it holds are not the ones granted.
        Frame::Heartbeat(report) => {
            let positions = &report.heads;
            session.granted = granted;
            let epoch = session.epoch;
            follow(&mut session, |env| held(positions, env, epoch));
            let same = session.granted.len() == positions.len()
                && session
                    .granted
                    .iter()
                    .all(|e| positions.iter().any(|p| p.env_id == e.id));
            if !same {
                let welcome = Welcome {
                    epoch: session.epoch,
                    environments: session.granted.iter().map(frames::info).collect(),
                    heartbeat_interval_ms: 5_000,
                };
                session
                    .writer
                    .put(&welcome.into())
                    .await
                    .map_err(SessionError::from)?;
            }
            // The database's heads as this instance knows them — never raised to what the edge
            // says it holds, so an edge ahead of a restored database notices.
            let heads = session
                .granted
                .iter()
                .map(|e| EnvPosition {
                    env_id: e.id.clone(),
                    epoch: session.epoch,
                    version: route.heads.head(&e.id).unwrap_or(0).max(e.version),
                })
                .collect();
            session
                .writer
                .put(&Heartbeat { heads }.into())
                .await
                .map_err(SessionError::from)?;
            if let Some(id) = fleet {
                let positions: BTreeMap<String, u64> = positions
                    .iter()
                    .map(|p| (p.env_id.clone(), p.version))
                    .collect();
                if route.fleet.due(id, &positions)
                    && let Err(e) = store
                        .touch_edge_session(id, &session.token.id, &positions)
                        .await
                {
                    tracing::warn!(cause = %e, "refreshing an edge's fleet record failed");
                }
            }
        }
        // The edge is stopping: its fleet row ends at the positions last reported.
        Frame::Close(_) => {
            if let Some(id) = fleet {
                route.fleet.forget(id);
                if let Err(e) = store.close_edge_session(id, &session.token.id, None).await {
                    tracing::warn!(cause = %e, "closing an edge's fleet record failed");
                }
            }
        }
        other => {
            return Err(ExchangeError::Refused(format!(
                "an edge does not send {} frames",
                other.kind()
            )));
        }
    }
    Ok(Exchanged {
        body: session.writer.0,
        fleet: opened,
    })
}

/// The version the edge holds of `env` in this database's epoch.
fn held(positions: &[EnvPosition], env: &str, epoch: u64) -> u64 {
    positions
        .iter()
        .find(|p| p.env_id == env && p.epoch == epoch)
        .map_or(0, |p| p.version)
}

/// Marks every granted environment as followed, at `at(env)`.
fn follow(session: &mut Session<Answer>, at: impl Fn(&str) -> u64) {
    for env in &session.granted {
        session.sent.insert(env.id.clone(), at(&env.id));
    }
}

/// Closes the fleet row `id` of a previous session of the same token, at the positions the
/// hello brings.
async fn close_fleet_row(session: &Session<Answer>, id: &str, hello: &Hello) {
    let positions: BTreeMap<String, u64> = hello
        .positions
        .iter()
        .map(|p| (p.env_id.clone(), p.version))
        .collect();
    if let Err(e) = session
        .store
        .close_edge_session(id, &session.token.id, Some(&positions))
        .await
    {
        tracing::warn!(cause = %e, "closing an edge's previous fleet record failed");
    }
}

/// Opens the edge's fleet row; `None` when it could not be written (the fleet view is for
/// operators: it never refuses an edge).
async fn open_fleet_row(session: &Session<Answer>, hello: &Hello, address: &str) -> Option<String> {
    let short = |text: &str| text.chars().take(128).collect::<String>();
    match session
        .store
        .open_edge_session(
            &session.token.id,
            &short(&hello.edge_name),
            &short(&hello.region),
            address,
        )
        .await
    {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(cause = %e, edge = %hello.edge_name, "recording the edge in the fleet table failed");
            None
        }
    }
}

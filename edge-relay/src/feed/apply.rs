//! The edge's apply thread: everything that changes the replica passes through it, in the order
//! the feed delivered it. For each group of frames waiting, it appends them to the change
//! journal and syncs once (group commit), then compiles and applies them, and reports each
//! outcome to the feed session. It also writes the snapshot file and empties the journal from
//! time to time.
//!
//! Running on a thread of its own keeps compiling and syncing off the async workers: the feed
//! reader keeps reading heartbeats, and `/health`, evaluation and streams keep being served from
//! the previous version while a costly change compiles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use checkgate_protocol::frame::{Changes, EnvironmentInfo, Snapshot, Welcome};
use tokio::sync::{mpsc, oneshot};

use super::state::FeedState;
use crate::journal::{EntryRef, Journal};
use crate::snapshot_file::{self, SaveOutcome};
use checkgate_serve::replica::{Applied, Replica, Source};

/// Frames queued for the thread before the feed reader waits (it then stops reading, and QUIC's
/// flow control holds the control plane back).
const QUEUE: usize = 1024;
/// Most frames journaled with one sync.
const MAX_GROUP: usize = 256;
/// The journal is folded into the snapshot file once it is this large…
const COMPACT_BYTES: u64 = 8 << 20;
/// …or this long after the last time, whichever comes first.
const COMPACT_EVERY: Duration = Duration::from_secs(30);

/// What the thread is asked to do.
#[derive(Debug)]
pub(super) enum Job {
    Welcome(Welcome),
    Snapshot {
        info: EnvironmentInfo,
        snapshot: Snapshot,
    },
    Changes(Changes),
    /// The token was revoked: drop everything, and the files that held it.
    Revoke,
    /// Time passed: fold the journal into the snapshot file if that is due.
    Tick,
    /// Write the snapshot file now (shutting down), then answer.
    Save(oneshot::Sender<()>),
}

/// What a job did, for the feed session.
#[derive(Debug)]
pub(super) enum Outcome {
    Welcomed {
        dropped: Vec<String>,
    },
    Installed {
        env_id: String,
        version: u64,
        flags: usize,
    },
    Applied {
        env_id: String,
        applied: Applied,
    },
}

/// The handle of the apply thread.
#[derive(Debug)]
pub(super) struct Applier {
    jobs: Option<mpsc::Sender<Job>>,
    pub(super) outcomes: mpsc::UnboundedReceiver<Outcome>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The thread's state.
struct Worker {
    replica: Arc<Replica>,
    state: Arc<FeedState>,
    /// `None` when the journal could not be opened: changes are applied without it (and
    /// `/status` says they are not crash-safe).
    journal: Option<Journal>,
    snapshot_path: std::path::PathBuf,
    /// Something was applied since the snapshot file was last written.
    dirty: bool,
    saved_at: Instant,
}

impl Applier {
    /// Starts the thread. `journal` is the open change journal, if there is one.
    pub(super) fn start(
        replica: Arc<Replica>,
        state: Arc<FeedState>,
        journal: Option<Journal>,
        snapshot_path: std::path::PathBuf,
    ) -> std::io::Result<Self> {
        let (jobs, receiver) = mpsc::channel(QUEUE);
        let (report, outcomes) = mpsc::unbounded_channel();
        let dirty = journal.as_ref().is_some_and(|j| !j.is_empty());
        let worker = Worker {
            replica,
            state,
            journal,
            snapshot_path,
            dirty,
            saved_at: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("feed-apply".into())
            .spawn(move || worker.run(receiver, &report))?;
        Ok(Self {
            jobs: Some(jobs),
            outcomes,
            thread: Some(thread),
        })
    }

    /// Queues a job; waits while the queue is full. `false` when the thread is gone.
    pub(super) async fn send(&self, job: Job) -> bool {
        match &self.jobs {
            Some(jobs) => jobs.send(job).await.is_ok(),
            None => false,
        }
    }

    /// Queues a job unless the queue is full.
    pub(super) fn try_send(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.try_send(job);
        }
    }

    /// Writes the snapshot file with everything applied, then stops the thread.
    pub(super) async fn finish(mut self, save: bool) {
        if save {
            let (done, saved) = oneshot::channel();
            if self.send(Job::Save(done)).await {
                let _ = saved.await;
            }
        }
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("the feed's apply thread panicked");
            }
        }
    }
}

impl Worker {
    fn run(mut self, mut jobs: mpsc::Receiver<Job>, report: &mpsc::UnboundedSender<Outcome>) {
        let mut batch = Vec::with_capacity(MAX_GROUP);
        let mut group = Vec::with_capacity(MAX_GROUP);
        while let Some(job) = jobs.blocking_recv() {
            batch.push(job);
            while batch.len() < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            for job in batch.drain(..) {
                match job {
                    Job::Welcome(_) | Job::Snapshot { .. } | Job::Changes(_) => group.push(job),
                    other => {
                        self.commit(&mut group, report);
                        self.control(other);
                    }
                }
            }
            self.commit(&mut group, report);
            self.compact_if_due();
        }
    }

    /// Journals `group` with one sync, then applies it in order.
    fn commit(&mut self, group: &mut Vec<Job>, report: &mpsc::UnboundedSender<Outcome>) {
        if group.is_empty() {
            return;
        }
        if let Some(journal) = &mut self.journal {
            let entries: Vec<EntryRef<'_>> = group
                .iter()
                .filter_map(|job| match job {
                    Job::Welcome(w) => Some(EntryRef::Welcome(w)),
                    Job::Snapshot { info, snapshot } => Some(EntryRef::Snapshot { info, snapshot }),
                    Job::Changes(c) => Some(EntryRef::Changes(c)),
                    _ => None,
                })
                .collect();
            let started = Instant::now();
            match journal.append(&entries) {
                Ok(()) => {
                    metrics::histogram!("checkgate_journal_sync_seconds")
                        .record(started.elapsed().as_secs_f64());
                    self.state.journal_ok();
                }
                Err(e) => {
                    // Serving fresh data matters more than surviving a crash with it; the
                    // loss of that guarantee is reported, never hidden.
                    metrics::counter!("checkgate_journal_failures_total").increment(1);
                    tracing::error!(cause = %e, "journaling changes failed; applying them without crash safety");
                    self.state.journal_failed(e.to_string());
                }
            }
        }
        for job in group.drain(..) {
            let started = Instant::now();
            let outcome = match job {
                Job::Welcome(welcome) => Outcome::Welcomed {
                    dropped: self.replica.welcome(&welcome),
                },
                Job::Snapshot { info, snapshot } => {
                    self.replica.install(&snapshot, info, Source::Upstream);
                    Outcome::Installed {
                        env_id: snapshot.env_id,
                        version: snapshot.version,
                        flags: snapshot.flags.len(),
                    }
                }
                Job::Changes(changes) => {
                    let prepared = Replica::prepare(changes);
                    let env_id = prepared.env_id().to_owned();
                    let applied = self.replica.apply_prepared(prepared);
                    metrics::histogram!("checkgate_feed_apply_seconds")
                        .record(started.elapsed().as_secs_f64());
                    Outcome::Applied { env_id, applied }
                }
                _ => continue,
            };
            self.dirty = true;
            let _ = report.send(outcome);
        }
    }

    fn control(&mut self, job: Job) {
        match job {
            Job::Revoke => {
                // What the token granted must not come back from the files at the next boot.
                let path = &self.snapshot_path;
                match std::fs::remove_file(path) {
                    Ok(()) => tracing::info!(file = %path.display(), "removed the snapshot file"),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => tracing::error!(cause = %e, "removing the snapshot file failed"),
                }
                if let Some(journal) = &mut self.journal
                    && let Err(e) = journal.reset()
                {
                    tracing::error!(cause = %e, "emptying the change journal failed");
                }
                self.replica.clear();
                self.dirty = false;
            }
            Job::Tick => {}
            Job::Save(done) => {
                self.save();
                let _ = done.send(());
            }
            Job::Welcome(_) | Job::Snapshot { .. } | Job::Changes(_) => {}
        }
    }

    fn compact_if_due(&mut self) {
        let large = self
            .journal
            .as_ref()
            .is_some_and(|j| j.len() >= COMPACT_BYTES);
        if self.dirty && (large || self.saved_at.elapsed() >= COMPACT_EVERY) {
            self.save();
        }
    }

    /// Writes the snapshot file; once it holds everything, empties the journal. Only what came
    /// from the control plane (or the files) is worth writing: an edge that never heard from it
    /// leaves the file as it found it.
    fn save(&mut self) {
        self.saved_at = Instant::now();
        if self.state.revoked()
            || (self.state.granted().is_none() && self.replica.environment_ids().is_empty())
        {
            return;
        }
        let persisted = self.replica.persisted();
        match snapshot_file::save(&self.snapshot_path, &persisted) {
            Ok(outcome) => {
                if outcome == SaveOutcome::KeptNonEmpty {
                    tracing::warn!(
                        "kept the snapshot file: it holds flags and there is nothing to replace them with"
                    );
                }
                self.dirty = false;
                if let Some(journal) = &mut self.journal
                    && let Err(e) = journal.reset()
                {
                    tracing::error!(cause = %e, "emptying the change journal failed");
                }
            }
            Err(e) => tracing::error!(cause = %e, "saving the snapshot file failed"),
        }
    }
}

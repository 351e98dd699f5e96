//! The process's long-lived tasks, owned.
//!
//! Every task that runs for the life of a binary — the control plane's head tracker, Redis
//! sync and local replica feeder, the edge's event hub, feed client and readiness check — is
//! spawned into one [`Owned`] set under a name. None of them is meant to end before the
//! process is asked to stop, so one that does, by returning or by panicking, is a fault:
//! [`crate::run_service`] logs it by name and stops the process with an error (its supervisor
//! restarts it), rather than leaving that part silently frozen behind a green `/ready`.
//!
//! Stopping has one deadline: when it begins, every task that has something to finish (the
//! feed server's goodbyes, the feed client's last snapshot) is told the instant by which the
//! whole process must be done ([`Stopping`]), and what is still running then is aborted.

use std::collections::HashMap;
use std::future::Future;

use tokio::sync::watch;
use tokio::task::{AbortHandle, Id, JoinSet};
use tokio::time::Instant;

/// The long-lived tasks of a process, each under a name.
#[derive(Debug)]
pub struct Owned {
    set: JoinSet<()>,
    tasks: HashMap<Id, Task>,
    stop: Stopper,
}

#[derive(Debug)]
struct Task {
    name: &'static str,
    abort: AbortHandle,
    /// Winds down when told to stop, and is waited for until the deadline.
    winds_down: bool,
}

/// Begins stopping whatever watches its [`Stopping`]s.
#[derive(Debug)]
pub struct Stopper(watch::Sender<Option<Instant>>);

impl Stopper {
    /// Tells every [`Stopping`] that stopping has begun, to be done by `deadline`.
    pub fn begin(&self, deadline: Instant) {
        self.0.send_replace(Some(deadline));
    }
}

/// Told when the process begins to stop, and by when it must be done.
#[derive(Debug, Clone)]
pub struct Stopping(watch::Receiver<Option<Instant>>);

/// An owned task that ended before the process was asked to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub task: &'static str,
    /// Why: "returned", or the panic's message.
    pub cause: String,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} task ended on its own ({})",
            self.task, self.cause
        )
    }
}

impl Default for Owned {
    fn default() -> Self {
        Self {
            set: JoinSet::new(),
            tasks: HashMap::new(),
            stop: Stopper(watch::Sender::new(None)),
        }
    }
}

impl Owned {
    /// Spawns `task` under `name`: it runs until the process stops, and is aborted once
    /// serving has drained.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.insert(name, false, task);
    }

    /// Spawns the task `start` makes under `name`, for a task with something to finish when
    /// the process stops: it is told through the [`Stopping`] it is given, and waited for
    /// until the deadline.
    pub fn spawn_with_stop<F, T>(&mut self, name: &'static str, start: F)
    where
        F: FnOnce(Stopping) -> T,
        T: Future<Output = ()> + Send + 'static,
    {
        let task = start(Stopping(self.stop.0.subscribe()));
        self.insert(name, true, task);
    }

    fn insert<F>(&mut self, name: &'static str, winds_down: bool, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let abort = self.set.spawn(task);
        let task = Task {
            name,
            abort: abort.clone(),
            winds_down,
        };
        self.tasks.insert(abort.id(), task);
    }

    /// Resolves with the first task to end; never, while none does (or there are none).
    pub async fn fault(&mut self) -> Fault {
        let Some(ended) = self.set.join_next_with_id().await else {
            return std::future::pending().await;
        };
        let (id, cause) = match ended {
            Ok((id, ())) => (id, "returned".to_owned()),
            Err(e) => (e.id(), panic_message(e)),
        };
        let task = self.tasks.remove(&id).map_or("unnamed", |t| t.name);
        Fault { task, cause }
    }

    /// Tells the tasks that wind down that the process stops, and that they must be done by
    /// `deadline`.
    pub fn begin_stop(&self, deadline: Instant) {
        self.stop.begin(deadline);
    }

    /// Aborts the tasks that have nothing to finish, waits until the others have ended or
    /// `deadline` has passed, then aborts what is left. Returns the names of the tasks that
    /// were still running at the deadline.
    pub async fn finish(mut self, deadline: Instant) -> Vec<&'static str> {
        self.begin_stop(deadline);
        self.tasks.retain(|_, task| {
            if !task.winds_down {
                task.abort.abort();
            }
            task.winds_down
        });
        let _ = tokio::time::timeout_at(deadline, async {
            while let Some(ended) = self.set.join_next_with_id().await {
                let id = match ended {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                self.tasks.remove(&id);
            }
        })
        .await;
        self.set.shutdown().await;
        let mut left: Vec<_> = self.tasks.into_values().map(|t| t.name).collect();
        left.sort_unstable();
        left
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    if e.is_cancelled() {
        return "cancelled".to_owned();
    }
    let payload = e.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned());
    format!("panicked: {text}")
}

impl Stopping {
    /// A signal of its own, for a task run outside an [`Owned`] set (tools, tests), and what
    /// fires it.
    pub fn pair() -> (Stopper, Self) {
        let (stop, stopping) = watch::channel(None);
        (Stopper(stop), Self(stopping))
    }

    /// A signal that never fires, for a task run outside an [`Owned`] set (tools, tests).
    pub fn never() -> Self {
        let (stop, stopping) = watch::channel(None);
        // The receiver keeps the last value once the sender is gone: `None`, for good.
        drop(stop);
        Self(stopping)
    }

    /// Resolves once the process begins to stop, with the deadline to be done by.
    pub async fn begun(&mut self) -> Instant {
        let deadline = self.0.wait_for(Option::is_some).await.map(|d| *d);
        match deadline {
            Ok(deadline) => deadline.unwrap_or_else(Instant::now),
            // No set will ever say so.
            Err(_) => std::future::pending().await,
        }
    }

    /// The deadline, once stopping has begun.
    pub fn deadline(&self) -> Option<Instant> {
        *self.0.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_task_that_returns_or_panics_is_a_fault_named_by_its_task() {
        let mut owned = Owned::default();
        owned.spawn("idle", std::future::pending());
        owned.spawn("quits", async {});
        let fault = owned.fault().await;
        assert_eq!(fault.task, "quits");
        assert_eq!(fault.cause, "returned");

        owned.spawn("crashes", async { panic!("the store went away") });
        let fault = owned.fault().await;
        assert_eq!(fault.task, "crashes");
        assert_eq!(fault.cause, "panicked: the store went away");
        assert_eq!(
            fault.to_string(),
            "the crashes task ended on its own (panicked: the store went away)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_shares_one_deadline_and_aborts_what_outlives_it() {
        let mut owned = Owned::default();
        let (seen, saw) = tokio::sync::oneshot::channel();
        owned.spawn_with_stop("winds down", |mut stopping| async move {
            let deadline = stopping.begun().await;
            let _ = seen.send(deadline);
        });
        owned.spawn_with_stop("ignores it", |_| std::future::pending());
        owned.spawn("serves until aborted", std::future::pending());
        let deadline = Instant::now() + Duration::from_secs(5);
        let left = owned.finish(deadline).await;
        assert_eq!(saw.await.unwrap(), deadline);
        assert_eq!(left, vec!["ignores it"]);
        assert!(Instant::now() >= deadline);
    }

    #[tokio::test(start_paused = true)]
    async fn tasks_with_nothing_to_finish_do_not_hold_the_stop() {
        let mut owned = Owned::default();
        owned.spawn("serves until aborted", std::future::pending());
        owned.spawn_with_stop("winds down", |mut stopping| async move {
            stopping.begun().await;
        });
        let started = Instant::now();
        let left = owned.finish(started + Duration::from_secs(5)).await;
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(Instant::now(), started, "waited for nothing");
    }

    #[tokio::test]
    async fn with_no_tasks_there_is_no_fault() {
        let mut owned = Owned::default();
        let waited = tokio::time::timeout(Duration::from_millis(50), owned.fault()).await;
        assert!(waited.is_err());
        assert_eq!(Stopping::never().deadline(), None);
    }
}

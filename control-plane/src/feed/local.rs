//! The control plane's own replica, fed straight from its database, so that a one-node install
//! serves `/stream`, evaluation and OFREP in-process with exactly the code an edge runs. It
//! follows the same heads as the feed's sessions and applies the same frames: changes in
//! order, or a consistent snapshot when they are not kept. Compiling what arrives runs on a
//! blocking thread, as on an edge, so a costly flag never stalls the runtime's workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use checkgate_protocol::frame::Changes;
use checkgate_serve::replica::{Applied, Replica, Source};
use checkgate_serve::served::{Authority, Served};

use super::frames;
use super::heads::Heads;
use crate::store::{FeedEnvironment, Store, StoreError};

/// Changes read at a time.
const BATCH: u32 = 500;

/// The in-process replica and whether it has caught up with the database.
#[derive(Debug)]
pub struct Local {
    pub replica: Arc<Replica>,
    caught_up: AtomicBool,
}

impl Local {
    /// An empty replica, not yet caught up.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            replica: Replica::new(),
            caught_up: AtomicBool::new(false),
        })
    }

    /// What the SDK routes read: this replica, vouched for by the database it follows.
    pub fn served(self: &Arc<Self>) -> Arc<Served> {
        Served::new(Arc::clone(&self.replica), self.clone())
    }
}

/// Once the replica has caught up with the database, an SDK key it does not hold does not
/// exist (a newer one reaches it within the wake-up of the write that made it).
impl Authority for Local {
    fn knows_every_key(&self) -> bool {
        self.caught_up.load(Ordering::Relaxed)
    }
}

/// Keeps `local`'s replica equal to the database until aborted.
pub async fn run(store: Store, heads: Arc<Heads>, local: Arc<Local>) {
    let mut wake = heads.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        match sync(&store, &heads, &local).await {
            Ok(()) => local.caught_up.store(true, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(cause = %e, "updating the in-process replica failed; retrying");
            }
        }
        tokio::select! {
            changed = wake.changed() => if changed.is_err() { return; },
            _ = tick.tick() => {}
        }
    }
}

async fn sync(store: &Store, heads: &Heads, local: &Local) -> Result<(), StoreError> {
    let listed = heads.environments();
    let environments: Vec<FeedEnvironment> = if listed.is_empty() {
        store.feed_environments().await?
    } else {
        listed.to_vec()
    };
    let replica = &local.replica;
    for env in &environments {
        let head = heads.head(&env.id).unwrap_or(env.version).max(env.version);
        match replica.version(&env.id) {
            Some((epoch, version)) if epoch == store.epoch() && version >= head => {}
            Some((epoch, version)) if epoch == store.epoch() => {
                catch_up(store, local, env, version).await?;
            }
            _ => snapshot(store, local, env).await?,
        }
    }
    // What is no longer listed: deliver its last changes (its deletion), then forget it.
    for id in replica.environment_ids() {
        if !environments.iter().any(|e| e.id == id) {
            if let Some((_, version)) = replica.version(&id) {
                let rows = store.changes_since(&id, version, BATCH).await?;
                apply(store, local, &id, &rows).await;
            }
            replica.forget(&id);
        }
    }
    Ok(())
}

async fn apply(
    store: &Store,
    local: &Local,
    env: &str,
    rows: &[crate::store::ChangeRow],
) -> Applied {
    let changes = rows.iter().filter_map(|r| match frames::change(r) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(cause = %e, "an unreadable change row; the environment will resync");
            None
        }
    });
    let frame = Changes {
        env_id: env.to_owned(),
        epoch: store.epoch(),
        changes: changes.collect(),
    };
    let prepared = tokio::task::spawn_blocking(move || Replica::prepare(frame)).await;
    match prepared {
        Ok(prepared) => local.replica.apply_prepared(prepared),
        Err(e) => {
            tracing::error!(cause = %e, env, "compiling changes failed; the environment will resync");
            Applied::NeedsSnapshot
        }
    }
}

async fn catch_up(
    store: &Store,
    local: &Local,
    env: &FeedEnvironment,
    mut from: u64,
) -> Result<(), StoreError> {
    loop {
        let rows = store.changes_since(&env.id, from, BATCH).await?;
        match rows.first() {
            None => return Ok(()),
            Some(first) if first.version != from + 1 => return snapshot(store, local, env).await,
            Some(_) => {}
        }
        match apply(store, local, &env.id, &rows).await {
            Applied::InOrder { .. } | Applied::Deleted => {}
            Applied::Gap { .. } | Applied::NeedsSnapshot => {
                return snapshot(store, local, env).await;
            }
        }
        if rows.len() < BATCH as usize {
            return Ok(());
        }
        from = local.replica.version(&env.id).map_or(from, |(_, v)| v);
    }
}

async fn snapshot(store: &Store, local: &Local, env: &FeedEnvironment) -> Result<(), StoreError> {
    let Some(data) = store.feed_snapshot(&env.id).await? else {
        local.replica.forget(&env.id);
        return Ok(());
    };
    match frames::snapshot(&data, store.epoch()) {
        Ok(snapshot) => {
            let (replica, info) = (Arc::clone(&local.replica), frames::info(&data.env));
            let installed = tokio::task::spawn_blocking(move || {
                replica.install(&snapshot, info, Source::Upstream);
            })
            .await;
            if let Err(e) = installed {
                tracing::error!(cause = %e, env = %env.id, "installing a snapshot failed; retrying");
            }
        }
        Err(e) => tracing::error!(cause = %e, env = %env.id, "an unreadable snapshot; not served"),
    }
    Ok(())
}

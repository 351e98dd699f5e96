//! What a session sends an edge, on either carrier (a QUIC stream, or one exchange of the HTTP
//! feed route): the welcome, each environment caught up from the edge's position or from a
//! snapshot, live changes as heads move, heartbeats, digests and resyncs.

use std::collections::BTreeMap;
use std::sync::Arc;

use checkgate_protocol::frame::{Changes, Digest, EnvPosition, Heartbeat, Hello, Welcome};

use super::super::frames;
use super::{BATCH, Session, SessionError, Sink};
use crate::store::{FLEET_REFRESH, FeedEnvironment};

impl<W: Sink> Session<W> {
    /// Answers `Hello`: `Welcome`, then each granted environment caught up from the edge's
    /// position, or from a snapshot.
    pub(crate) async fn greet(&mut self, hello: &Hello) -> Result<(), SessionError> {
        let everything = self.store.feed_environments().await?;
        self.heads.refresh(everything.clone());
        let granted: Vec<FeedEnvironment> = everything
            .into_iter()
            .filter(|e| self.token.grants(&e.id))
            .collect();
        self.welcome(&granted).await?;
        for position in &hello.positions {
            if position.epoch == self.epoch && self.sent.contains_key(&position.env_id) {
                self.sent.insert(position.env_id.clone(), position.version);
            }
        }
        // Changes since its position when the edge's history is this database's: same epoch,
        // and not ahead of the head (a database restored from a backup keeps its epoch but
        // goes back in time). Anything else starts from a snapshot.
        let resumable = |env: &FeedEnvironment| {
            hello
                .positions
                .iter()
                .any(|p| p.env_id == env.id && p.epoch == self.epoch && p.version <= env.version)
        };
        let plan: Vec<(String, bool)> = granted
            .iter()
            .map(|e| (e.id.clone(), resumable(e)))
            .collect();
        for (env, resume) in plan {
            if resume {
                self.catch_up(&env).await?;
            } else {
                self.snapshot(&env).await?;
            }
        }
        Ok(())
    }

    /// The heads of the environments the edge serves (never behind what it was sent).
    pub(crate) fn heartbeat(&self) -> Heartbeat {
        let heads = self
            .granted
            .iter()
            .map(|e| EnvPosition {
                env_id: e.id.clone(),
                epoch: self.epoch,
                version: self
                    .heads
                    .head(&e.id)
                    .unwrap_or(0)
                    .max(self.sent.get(&e.id).copied().unwrap_or(0)),
            })
            .collect();
        Heartbeat { heads }
    }

    /// The last version sent of each environment, for the fleet table.
    pub(super) fn positions(&self) -> BTreeMap<String, u64> {
        self.sent.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Refreshes the fleet row when the positions moved (at most every [`FLEET_MOVED`]) or
    /// [`FLEET_REFRESH`] has passed, in a task of its own: a slow database never holds up the
    /// feed.
    pub(super) fn touch_fleet(&mut self) {
        let Some(id) = self.fleet_id.clone() else {
            return;
        };
        let positions = self.positions();
        let now = tokio::time::Instant::now();
        let due = self.fleet_written.as_ref().is_none_or(|(written, at)| {
            *written != positions || now.duration_since(*at) >= FLEET_REFRESH
        });
        use std::sync::atomic::Ordering;
        if !due || self.fleet_busy.swap(true, Ordering::AcqRel) {
            return;
        }
        self.fleet_written = Some((positions.clone(), now));
        let (store, busy) = (self.store.clone(), Arc::clone(&self.fleet_busy));
        let token = self.token.id.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_edge_session(&id, &token, &positions).await {
                tracing::warn!(cause = %e, "refreshing the edge's fleet record failed");
            }
            busy.store(false, Ordering::Release);
        });
    }

    /// Sends `Welcome` for `granted` and starts tracking any environment new to the session.
    async fn welcome(&mut self, granted: &[FeedEnvironment]) -> Result<(), SessionError> {
        let welcome = Welcome {
            epoch: self.epoch,
            environments: granted.iter().map(frames::info).collect(),
            heartbeat_interval_ms: 5_000,
        };
        self.writer.put(&welcome.into()).await?;
        self.sent
            .retain(|env, _| granted.iter().any(|e| &e.id == env));
        for env in granted {
            self.sent.entry(env.id.clone()).or_insert(0);
        }
        self.granted = granted.to_vec();
        Ok(())
    }

    /// After a wake-up: a changed set of environments gets a new `Welcome` (and snapshots for
    /// the new ones); every environment whose head is past what was sent gets its changes.
    pub(super) async fn sync(&mut self) -> Result<(), SessionError> {
        let now: Vec<FeedEnvironment> = self
            .heads
            .environments()
            .iter()
            .filter(|e| self.token.grants(&e.id))
            .cloned()
            .collect();
        let same = now.len() == self.granted.len()
            && now
                .iter()
                .zip(&self.granted)
                .all(|(a, b)| a.id == b.id && a.name == b.name);
        // An empty list before the first poll is no news.
        if !same && !self.heads.environments().is_empty() {
            // What left the set may have a final change (its deletion) to deliver first.
            let gone: Vec<String> = self
                .granted
                .iter()
                .filter(|e| !now.iter().any(|n| n.id == e.id))
                .map(|e| e.id.clone())
                .collect();
            for env in &gone {
                self.catch_up(env).await?;
            }
            let added: Vec<String> = now
                .iter()
                .filter(|n| !self.granted.iter().any(|e| e.id == n.id))
                .map(|n| n.id.clone())
                .collect();
            self.welcome(&now).await?;
            for env in &added {
                self.snapshot(env).await?;
            }
        }
        let behind: Vec<String> = self
            .granted
            .iter()
            .filter(|e| {
                self.heads.head(&e.id).unwrap_or(0) > self.sent.get(&e.id).copied().unwrap_or(0)
            })
            .map(|e| e.id.clone())
            .collect();
        for env in &behind {
            self.catch_up(env).await?;
        }
        Ok(())
    }

    /// Sends the changes of `env` after what was sent; a snapshot when they are no longer kept.
    async fn catch_up(&mut self, env: &str) -> Result<(), SessionError> {
        loop {
            let from = self.sent.get(env).copied().unwrap_or(0);
            let rows = self.store.changes_since(env, from, BATCH).await?;
            let Some(first) = rows.first() else {
                let head = self.heads.head(env).unwrap_or(0);
                if head > from
                    && self
                        .store
                        .oldest_change(env)
                        .await?
                        .is_none_or(|o| o > from + 1)
                {
                    // Compacted away: the edge needs the whole environment.
                    return self.snapshot(env).await;
                }
                return Ok(());
            };
            if first.version != from + 1 {
                return self.snapshot(env).await;
            }
            let changes = rows
                .iter()
                .map(frames::change)
                .collect::<Result<Vec<_>, _>>()?;
            let last = changes.last().map_or(from, |c| c.version);
            let full = rows.len() == BATCH as usize;
            self.writer
                .put(
                    &Changes {
                        env_id: env.to_owned(),
                        epoch: self.epoch,
                        changes,
                    }
                    .into(),
                )
                .await?;
            metrics::counter!("checkgate_feed_changes_sent_total").increment(rows.len() as u64);
            self.sent.insert(env.to_owned(), last);
            if !full {
                return Ok(());
            }
        }
    }

    /// Sends a consistent snapshot of `env`, or — when it no longer exists — drops it and says
    /// so with a new `Welcome`.
    async fn snapshot(&mut self, env: &str) -> Result<(), SessionError> {
        let Some(data) = self.store.feed_snapshot(env).await? else {
            let remaining: Vec<FeedEnvironment> = self
                .granted
                .iter()
                .filter(|e| e.id != env)
                .cloned()
                .collect();
            return self.welcome(&remaining).await;
        };
        let snapshot = frames::snapshot(&data, self.epoch)?;
        let version = snapshot.version;
        self.writer.put(&snapshot.into()).await?;
        metrics::counter!("checkgate_feed_snapshots_sent_total").increment(1);
        self.sent.insert(env.to_owned(), version);
        Ok(())
    }

    /// The digest of `env`; nothing about an environment the edge does not serve. With
    /// `catch_up`, anything newer than what was sent goes first, so the digest's version is one
    /// the edge holds or is about to (a session that tracks what it sent); without, the edge
    /// compares it only if it holds that very version.
    pub(crate) async fn digest(&mut self, env: &str, catch_up: bool) -> Result<(), SessionError> {
        if !self.sent.contains_key(env) {
            return Ok(());
        }
        let Some(data) = self.store.feed_snapshot(env).await? else {
            return Ok(());
        };
        if catch_up {
            self.catch_up(env).await?;
        }
        let digest = Digest {
            env_id: env.to_owned(),
            epoch: self.epoch,
            version: data.env.version,
            digest: frames::digest(&data),
        };
        self.writer.put(&digest.into()).await?;
        Ok(())
    }

    /// A fresh snapshot of `env`, when the edge serves it.
    pub(crate) async fn resync(&mut self, env: &str) -> Result<(), SessionError> {
        if !self.sent.contains_key(env) {
            return Ok(());
        }
        tracing::info!(env = %env, "edge asked for a snapshot");
        self.snapshot(env).await
    }
}

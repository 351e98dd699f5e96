//! `Heads`: what this control-plane instance knows of every environment's head (the version of
//! its last committed change), and a signal that wakes the feed sessions when any head moves
//! or the set of environments changes.
//!
//! Heads only ever move forward, and they are hints: a session that wakes reads the changes
//! themselves from the database, which stays the truth. They are fed by this process's own
//! commits (at once), by other instances through Redis (see [`super::sync`]), and by a poll of
//! the database every second, which alone would be enough — so a lost hint only delays.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::store::FeedEnvironment;

/// The heads, shared by the feed's tasks and sessions.
#[derive(Debug)]
pub struct Heads {
    /// Environment id → head. A `std` lock: held only to read or bump a number.
    versions: RwLock<HashMap<String, u64>>,
    /// Every environment, as of the last poll (for what edge tokens grant).
    environments: RwLock<Arc<Vec<FeedEnvironment>>>,
    /// Bumped whenever a head moves or the environments change; sessions wait on it.
    generation: watch::Sender<u64>,
}

impl Default for Heads {
    fn default() -> Self {
        Self {
            versions: RwLock::default(),
            environments: RwLock::default(),
            generation: watch::channel(0).0,
        }
    }
}

impl Heads {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn bump(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Records that `env` reached `version`; wakes the sessions when that is news.
    pub fn advance(&self, env: &str, version: u64) -> bool {
        let moved = {
            let mut versions = self
                .versions
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match versions.get_mut(env) {
                Some(head) if *head >= version => false,
                Some(head) => {
                    *head = version;
                    true
                }
                None => {
                    versions.insert(env.to_owned(), version);
                    true
                }
            }
        };
        if moved {
            self.bump();
        }
        moved
    }

    /// Replaces the list of environments from a poll, advancing every head it shows; wakes the
    /// sessions when anything changed.
    pub fn refresh(&self, environments: Vec<FeedEnvironment>) {
        let mut moved = false;
        for env in &environments {
            moved |= self.advance_quietly(&env.id, env.version);
        }
        let listed_changed = {
            let mut current = self
                .environments
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let same = current.len() == environments.len()
                && current
                    .iter()
                    .zip(&environments)
                    .all(|(a, b)| a.id == b.id && a.name == b.name && a.slug == b.slug);
            *current = Arc::new(environments);
            !same
        };
        if moved || listed_changed {
            self.bump();
        }
    }

    fn advance_quietly(&self, env: &str, version: u64) -> bool {
        let mut versions = self
            .versions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let head = versions.entry(env.to_owned()).or_insert(0);
        if version > *head {
            *head = version;
            true
        } else {
            false
        }
    }

    /// The head of `env`, if known.
    pub fn head(&self, env: &str) -> Option<u64> {
        self.versions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(env)
            .copied()
    }

    /// Every environment as of the last poll.
    pub fn environments(&self) -> Arc<Vec<FeedEnvironment>> {
        self.environments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A receiver that wakes on every bump.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(id: &str, version: u64) -> FeedEnvironment {
        FeedEnvironment {
            id: id.into(),
            project_id: "p".into(),
            slug: id.into(),
            name: id.into(),
            version,
        }
    }

    #[test]
    fn heads_only_move_forward_and_wake_only_on_news() {
        let heads = Heads::default();
        let mut rx = heads.subscribe();
        assert!(heads.advance("a", 3));
        assert!(rx.has_changed().unwrap_or(false));
        rx.mark_unchanged();
        assert!(!heads.advance("a", 2));
        assert!(!heads.advance("a", 3));
        assert!(!rx.has_changed().unwrap_or(true));
        assert_eq!(heads.head("a"), Some(3));

        heads.refresh(vec![env("a", 3)]);
        assert!(rx.has_changed().unwrap_or(false), "the list is news");
        rx.mark_unchanged();
        heads.refresh(vec![env("a", 3)]);
        assert!(!rx.has_changed().unwrap_or(true), "the same list is not");
        heads.refresh(vec![env("a", 5), env("b", 0)]);
        assert!(rx.has_changed().unwrap_or(false));
        assert_eq!(heads.head("a"), Some(5));
        assert_eq!(heads.environments().len(), 2);
    }
}

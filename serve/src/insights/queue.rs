//! The bounded queue impressions wait in between the ingest routes and the flusher: at most
//! `IMPRESSIONS_QUEUE` items in all, grouped per environment so a batch is one environment's.
//! A push that does not fit keeps what fits and drops the rest, counting it: an SDK's report
//! never waits for room, and nothing else (evaluation, streams) ever touches this queue.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use checkgate_protocol::impressions::{Impression, MAX_BATCH_ITEMS};
use tokio::sync::Notify;

/// Largest batch sent upstream, in bytes of its items' text (under the feed's 1 MiB frame cap
/// for what an edge sends, with room for the frame's own bytes).
pub const MAX_BATCH_BYTES: usize = 768 << 10;

/// What a batch item costs beyond its strings (lengths, options, the time).
const ITEM_OVERHEAD: usize = 24;

/// Why impressions were dropped (a metric label: a closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The queue was full.
    QueueFull,
    /// The control plane refused the batch they were in.
    Refused,
    /// They arrived after the final flush of a stopping edge.
    Shutdown,
}

impl DropReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::Refused => "refused",
            Self::Shutdown => "shutdown",
        }
    }
}

/// The queue. Its lock is taken by the ingest routes and the flusher only, each time for a
/// few moves of owned values.
#[derive(Debug)]
pub struct ImpressionQueue {
    inner: Mutex<Inner>,
    capacity: usize,
    dropped: AtomicU64,
    queued: AtomicU64,
    /// Rung when a whole batch is waiting, so the flusher sends it before its tick.
    full_batch: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    /// Each environment's impressions, oldest first.
    by_env: HashMap<String, VecDeque<Impression>>,
    /// Environments in the order they got impressions, for fairness between them.
    order: VecDeque<String>,
    len: usize,
    /// Set by the final flush: what arrives afterwards is dropped.
    closed: bool,
}

impl ImpressionQueue {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::default(),
            capacity,
            dropped: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            full_batch: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues what fits of `items` (in order) for `env`; returns how many were dropped.
    pub fn push(&self, env: &str, items: Vec<Impression>) -> usize {
        let total = items.len();
        let (taken, reason, whole_batch) = {
            let mut inner = self.lock();
            if inner.closed {
                (0, DropReason::Shutdown, false)
            } else {
                let room = self.capacity.saturating_sub(inner.len);
                let taken = room.min(total);
                if taken > 0 {
                    let queue = match inner.by_env.get_mut(env) {
                        Some(queue) => queue,
                        None => {
                            inner.order.push_back(env.to_owned());
                            inner.by_env.entry(env.to_owned()).or_default()
                        }
                    };
                    queue.extend(items.into_iter().take(taken));
                    let waiting = queue.len();
                    inner.len += taken;
                    (taken, DropReason::QueueFull, waiting >= MAX_BATCH_ITEMS)
                } else {
                    (0, DropReason::QueueFull, false)
                }
            }
        };
        self.queued.fetch_add(taken as u64, Ordering::Relaxed);
        let dropped = total - taken;
        if dropped > 0 {
            self.count_dropped(dropped, reason);
        }
        if whole_batch {
            self.full_batch.notify_one();
        }
        dropped
    }

    /// Counts `n` impressions dropped for `reason`.
    pub fn count_dropped(&self, n: usize, reason: DropReason) {
        self.dropped.fetch_add(n as u64, Ordering::Relaxed);
        metrics::counter!("checkgate_impressions_dropped_total", "reason" => reason.label())
            .increment(n as u64);
    }

    /// The next batch: the oldest impressions of the environment that waited longest, at most
    /// [`MAX_BATCH_ITEMS`] and about [`MAX_BATCH_BYTES`]; `None` when the queue is empty.
    pub fn take_batch(&self) -> Option<(String, Vec<Impression>)> {
        let mut inner = self.lock();
        let env = inner.order.pop_front()?;
        let queue = inner.by_env.get_mut(&env)?;
        let mut items = Vec::with_capacity(queue.len().min(MAX_BATCH_ITEMS));
        let mut bytes = 0;
        while items.len() < MAX_BATCH_ITEMS {
            let Some(next) = queue.front() else { break };
            let size = item_bytes(next);
            if !items.is_empty() && bytes + size > MAX_BATCH_BYTES {
                break;
            }
            bytes += size;
            items.extend(queue.pop_front());
        }
        let left = queue.len();
        if left == 0 {
            inner.by_env.remove(&env);
        } else {
            // The rest waits behind the other environments.
            inner.order.push_back(env.clone());
        }
        inner.len -= items.len();
        Some((env, items))
    }

    /// Impressions waiting.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a whole batch is waiting.
    pub fn has_full_batch(&self) -> bool {
        self.lock()
            .by_env
            .values()
            .any(|q| q.len() >= MAX_BATCH_ITEMS)
    }

    /// Resolves when a push made a whole batch of one environment.
    pub async fn full_batch(&self) {
        self.full_batch.notified().await;
    }

    /// Refuses whatever is pushed from now on (counted as dropped at shutdown).
    pub fn close(&self) {
        self.lock().closed = true;
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Impressions dropped since start, for every reason.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Impressions queued since start.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }
}

/// About what an item weighs in a batch.
fn item_bytes(item: &Impression) -> usize {
    ITEM_OVERHEAD
        + item.flag_key.len()
        + item.value.len()
        + item.user_id.as_ref().map_or(0, String::len)
        + item.context.as_ref().map_or(0, String::len)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn item(flag: &str) -> Impression {
        Impression {
            flag_key: flag.into(),
            user_id: None,
            value: "true".into(),
            context: None,
            evaluated_at: 1,
        }
    }

    #[test]
    fn a_full_queue_keeps_what_fits_and_counts_the_rest() {
        let queue = ImpressionQueue::new(3);
        assert_eq!(queue.push("a", vec![item("f"), item("g")]), 0);
        assert_eq!(queue.push("b", vec![item("h"), item("i")]), 1);
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.dropped(), 1);
        assert_eq!(queue.push("b", vec![item("j")]), 1);
        assert_eq!(queue.dropped(), 2);
        let (env, items) = queue.take_batch().unwrap();
        assert_eq!((env.as_str(), items.len()), ("a", 2));
        let (env, items) = queue.take_batch().unwrap();
        assert_eq!((env.as_str(), items.len()), ("b", 1));
        assert!(queue.take_batch().is_none());
        assert_eq!(queue.push("b", vec![item("k")]), 0);
    }

    #[test]
    fn batches_are_one_environments_and_bounded() {
        let queue = ImpressionQueue::new(10_000);
        queue.push("a", (0..1200).map(|_| item("f")).collect());
        queue.push("b", vec![item("g")]);
        assert!(queue.has_full_batch());
        let sizes: Vec<(String, usize)> = std::iter::from_fn(|| queue.take_batch())
            .map(|(env, items)| (env, items.len()))
            .collect();
        assert_eq!(
            sizes,
            [
                ("a".into(), 500),
                ("b".into(), 1),
                ("a".into(), 500),
                ("a".into(), 200)
            ]
        );
        let big = Impression {
            context: Some(format!(r#"{{"a":"{}"}}"#, "x".repeat(4000))),
            ..item("f")
        };
        queue.push("a", vec![big; 500]);
        let (_, items) = queue.take_batch().unwrap();
        assert!(items.len() < 500 && items.len() > 100, "{}", items.len());
    }

    #[test]
    fn a_closed_queue_drops_everything() {
        let queue = ImpressionQueue::new(10);
        queue.close();
        assert_eq!(queue.push("a", vec![item("f")]), 1);
        assert!(queue.is_empty());
    }
}

//! The flusher: sends queued impressions upstream in batches — as soon as one environment has
//! a whole batch (500), else every second — and the evaluation counters every 10 s, each with
//! a fresh random id. A batch is kept until it is acknowledged: after a failure (no answer, the
//! connection gone, the control plane busy) the *same* batch, with the same id, is sent again,
//! so the control plane stores it once however often it arrives. A batch the control plane
//! refuses for good is dropped and counted.
//!
//! When the process begins to stop, the queue is closed and everything it holds is sent —
//! retried until the shutdown deadline — and then the counters once more.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use checkgate_ops::Stopping;
use checkgate_protocol::Frame;
use checkgate_protocol::frame::AckOutcome;
use checkgate_protocol::impressions::{EvaluationCounts, ImpressionBatch, MAX_COUNTS};
use tokio::time::Instant;

use super::queue::DropReason;
use super::{Insights, Upstream};

/// How often queued impressions are sent when no environment has a whole batch.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often the evaluation counters are collected and sent (divides a minute).
pub const COUNT_EVERY: Duration = Duration::from_secs(10);
/// How long a delivery may wait for its acknowledgement before it counts as failed.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(10);
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_CAP: Duration = Duration::from_secs(5);
/// Counter batches kept while the control plane cannot be reached (about ten minutes' worth);
/// older ones are dropped first.
const MAX_PENDING_COUNTS: usize = 64;
/// When the final flush stops retrying: a second before the shutdown deadline (less when the
/// grace period is short), leaving time for what else must finish (an edge's last snapshot).
fn stop_at(deadline: Instant) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    deadline - (left / 2).min(Duration::from_secs(1))
}

/// A fresh random batch id.
pub fn batch_id() -> [u8; 16] {
    uuid::Uuid::new_v4().into_bytes()
}

/// Runs until the process stops, then flushes what it holds within the deadline.
pub async fn run(insights: Arc<Insights>, upstream: Arc<dyn Upstream>, stopping: Stopping) {
    tokio::join!(
        impressions(&insights, upstream.as_ref(), stopping.clone()),
        counts(&insights, upstream.as_ref(), stopping.clone()),
        connections(&insights, upstream.as_ref(), stopping),
    );
}

/// Reports the open SDK streams: [`REPORT_SOON`] after a stream opens or ends, and every
/// [`REPORT_EVERY`] while any is open. A report is sent once (each replaces the last, so a
/// failed one is not sent again: the next one is newer); nothing is sent before the first
/// stream opens.
async fn connections(insights: &Insights, upstream: &dyn Upstream, mut stopping: Stopping) {
    use super::connections::{REPORT_EVERY, REPORT_SOON};
    let registry = &insights.connections;
    let mut reported: Option<(u64, bool)> = None;
    let mut last = Instant::now();
    loop {
        let changes = registry.changes();
        let due = match reported {
            // Nothing ever opened: nothing to say.
            None => changes != 0,
            Some((at, any)) => at != changes || (any && last.elapsed() >= REPORT_EVERY),
        };
        if due {
            let report = registry.report(batch_id());
            let any = !report.entries.is_empty();
            let frame = Frame::Connections(report);
            let until = Instant::now() + ACK_TIMEOUT;
            let outcome = tokio::select! {
                _ = stopping.begun() => return,
                outcome = deliver(upstream, &frame, Some(until)) => outcome,
            };
            if outcome == AckOutcome::Refused {
                tracing::warn!("the control plane refused this server's connection report");
            }
            reported = Some((changes, any));
            last = Instant::now();
        }
        tokio::select! {
            _ = stopping.begun() => return,
            () = registry.changed() => {
                // Changes within REPORT_SOON share one report.
                tokio::select! {
                    _ = stopping.begun() => return,
                    () = tokio::time::sleep(REPORT_SOON) => {}
                }
            }
            () = tokio::time::sleep(REPORT_EVERY.saturating_sub(last.elapsed()).max(REPORT_SOON)) => {}
        }
    }
}

/// Delivers `frame`, retrying after failures until it is stored or refused, or `until`.
/// Returns the last outcome (`Retry` when time ran out).
async fn deliver(upstream: &dyn Upstream, frame: &Frame, until: Option<Instant>) -> AckOutcome {
    let mut wait = RETRY_FIRST;
    loop {
        let attempt = tokio::time::timeout(ACK_TIMEOUT, upstream.deliver(frame.clone()));
        let outcome = match until {
            Some(until) => match tokio::time::timeout_at(until, attempt).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => AckOutcome::Retry,
                Err(_) => return AckOutcome::Retry,
            },
            None => attempt.await.unwrap_or(AckOutcome::Retry),
        };
        if outcome != AckOutcome::Retry {
            return outcome;
        }
        metrics::counter!("checkgate_insights_retries_total", "kind" => frame.kind()).increment(1);
        if until.is_some_and(|u| Instant::now() + wait >= u) {
            return AckOutcome::Retry;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RETRY_CAP);
    }
}

async fn impressions(insights: &Insights, upstream: &dyn Upstream, mut stopping: Stopping) {
    let queue = &insights.queue;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Sending until the queue is empty; stopping interrupts only between batches (whatever is
    // held is sent again in the final flush, with its id).
    let mut held: Option<Frame> = None;
    let deadline = loop {
        tokio::select! {
            deadline = stopping.begun() => break deadline,
            () = send_all(queue, upstream, &mut held) => {
                // The queue is empty: wait for the next tick, or a whole batch.
                tokio::select! {
                    deadline = stopping.begun() => break deadline,
                    _ = tick.tick() => {}
                    () = queue.full_batch() => {}
                }
            }
        }
    };
    queue.close();
    let until = stop_at(deadline);
    let left = queue.len() + held.as_ref().map_or(0, frame_items);
    if left > 0 {
        tracing::info!(
            impressions = left,
            "sending the impressions held before stopping"
        );
    }
    loop {
        let frame = match held.take() {
            Some(frame) => frame,
            None => match queue.take_batch() {
                Some((environment, items)) => batch(environment, items),
                None => break,
            },
        };
        match deliver(upstream, &frame, Some(until)).await {
            AckOutcome::Stored => count_sent(&frame),
            AckOutcome::Refused => refused(queue, &frame),
            AckOutcome::Retry => {
                let lost = frame_items(&frame) + queue.len();
                tracing::warn!(
                    impressions = lost,
                    "the shutdown deadline came before every impression was sent"
                );
                queue.count_dropped(lost, DropReason::Shutdown);
                break;
            }
        }
    }
}

/// Sends batches until the queue is empty (a failed batch is retried, with its id, until it
/// is stored or refused).
async fn send_all(
    queue: &super::ImpressionQueue,
    upstream: &dyn Upstream,
    held: &mut Option<Frame>,
) {
    loop {
        if held.is_none() {
            *held = queue
                .take_batch()
                .map(|(environment, items)| batch(environment, items));
        }
        let Some(frame) = held.as_ref() else { return };
        // Without a deadline, `deliver` returns only once the batch is stored or refused.
        match deliver(upstream, frame, None).await {
            AckOutcome::Refused => refused(queue, frame),
            _ => count_sent(frame),
        }
        *held = None;
    }
}

fn batch(environment: String, items: Vec<checkgate_protocol::impressions::Impression>) -> Frame {
    Frame::Impressions(ImpressionBatch {
        id: batch_id(),
        environment,
        items,
    })
}

fn frame_items(frame: &Frame) -> usize {
    match frame {
        Frame::Impressions(b) => b.items.len(),
        Frame::EvaluationCounts(c) => c.counts.len(),
        _ => 0,
    }
}

fn count_sent(frame: &Frame) {
    if let Frame::Impressions(b) = frame {
        metrics::counter!("checkgate_impressions_sent_total").increment(b.items.len() as u64);
    }
}

fn refused(queue: &super::ImpressionQueue, frame: &Frame) {
    if let Frame::Impressions(b) = frame {
        tracing::warn!(env = %b.environment, impressions = b.items.len(), "the control plane refused a batch of impressions; dropped");
        queue.count_dropped(b.items.len(), DropReason::Refused);
    } else {
        tracing::warn!(
            kind = frame.kind(),
            "the control plane refused evaluation counts; dropped"
        );
    }
}

/// The minute that ends the period which ends now (collections happen at multiples of
/// [`COUNT_EVERY`], so a period lies within one minute).
fn minute_now() -> i64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    (ms - 1).div_euclid(60_000)
}

/// How long until the next wall-clock multiple of [`COUNT_EVERY`].
fn until_next_period() -> Duration {
    let every = COUNT_EVERY.as_millis() as u64;
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Duration::from_millis(every - ms % every)
}

/// Collects the counters into batches of at most [`MAX_COUNTS`], each with a fresh id.
fn collect(insights: &Insights) -> Vec<Frame> {
    let counts = insights.counter.collect(minute_now());
    counts
        .chunks(MAX_COUNTS)
        .map(|chunk| {
            Frame::EvaluationCounts(EvaluationCounts {
                id: batch_id(),
                counts: chunk.to_vec(),
            })
        })
        .collect()
}

async fn counts(insights: &Insights, upstream: &dyn Upstream, mut stopping: Stopping) {
    let mut pending: VecDeque<Frame> = VecDeque::new();
    let mut retry = RETRY_FIRST;
    let mut next_collect = Instant::now() + until_next_period();
    let deadline = loop {
        let wake = match pending.front() {
            Some(_) => next_collect.min(Instant::now() + retry),
            None => next_collect,
        };
        tokio::select! {
            deadline = stopping.begun() => break deadline,
            () = tokio::time::sleep_until(wake) => {}
        }
        if Instant::now() >= next_collect {
            pending.extend(collect(insights));
            next_collect = Instant::now() + until_next_period();
        }
        while pending.len() > MAX_PENDING_COUNTS {
            pending.pop_front();
            metrics::counter!("checkgate_evaluation_counts_dropped_total").increment(1);
        }
        let Some(front) = pending.front() else {
            continue;
        };
        let attempt = tokio::time::timeout(ACK_TIMEOUT, upstream.deliver(front.clone()));
        let outcome = tokio::select! {
            deadline = stopping.begun() => break deadline,
            outcome = attempt => outcome.unwrap_or(AckOutcome::Retry),
        };
        match outcome {
            AckOutcome::Stored => {
                pending.pop_front();
                retry = RETRY_FIRST;
            }
            AckOutcome::Refused => {
                refused(&insights.queue, front);
                pending.pop_front();
            }
            AckOutcome::Retry => retry = (retry * 2).min(RETRY_CAP),
        }
    };
    pending.extend(collect(insights));
    let until = stop_at(deadline);
    while let Some(frame) = pending.pop_front() {
        if deliver(upstream, &frame, Some(until)).await == AckOutcome::Retry {
            tracing::warn!("the shutdown deadline came before the evaluation counts were sent");
            break;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use checkgate_protocol::impressions::Impression;

    use super::*;

    /// Fails the first `fail` deliveries, then stores; remembers every delivery's id and size.
    #[derive(Default)]
    struct Fake {
        fail: AtomicUsize,
        seen: Mutex<Vec<([u8; 16], &'static str, usize)>>,
        refuse: bool,
    }

    impl Upstream for Fake {
        fn deliver(&self, frame: Frame) -> Pin<Box<dyn Future<Output = AckOutcome> + Send + '_>> {
            Box::pin(async move {
                let (id, n) = match &frame {
                    Frame::Impressions(b) => (b.id, b.items.len()),
                    Frame::EvaluationCounts(c) => (c.id, c.counts.len()),
                    Frame::Connections(r) => (r.id, r.entries.len()),
                    _ => unreachable!(),
                };
                self.seen.lock().unwrap().push((id, frame.kind(), n));
                if self
                    .fail
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    return AckOutcome::Retry;
                }
                if self.refuse {
                    AckOutcome::Refused
                } else {
                    AckOutcome::Stored
                }
            })
        }
    }

    use std::future::Future;
    use std::pin::Pin;

    fn items(n: usize) -> Vec<Impression> {
        (0..n)
            .map(|i| Impression {
                flag_key: "f".into(),
                user_id: Some(format!("u{i}")),
                value: "true".into(),
                context: None,
                evaluated_at: 1,
            })
            .collect()
    }

    fn impressions_seen(fake: &Fake) -> Vec<([u8; 16], usize)> {
        fake.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, kind, _)| *kind == "impressions")
            .map(|(id, _, n)| (*id, *n))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_batch_is_sent_again_with_its_id() {
        let insights = Arc::new(Insights::new(10_000, true));
        let fake = Arc::new(Fake {
            fail: AtomicUsize::new(2),
            ..Fake::default()
        });
        let (stop, stopping) = Stopping::pair();
        let task = tokio::spawn(run(insights.clone(), fake.clone(), stopping));
        insights.queue.push("e", items(3));
        tokio::time::sleep(Duration::from_secs(3)).await;
        let seen = impressions_seen(&fake);
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
        assert_eq!(seen[0].1, 3);
        stop.begin(Instant::now() + Duration::from_secs(5));
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_whole_batch_goes_before_the_tick_and_a_partial_one_on_it() {
        let insights = Arc::new(Insights::new(10_000, true));
        let fake = Arc::new(Fake::default());
        let (stop, stopping) = Stopping::pair();
        let task = tokio::spawn(run(insights.clone(), fake.clone(), stopping));
        // The first tick fires at once; after it, only a whole batch goes early.
        tokio::time::sleep(Duration::from_millis(10)).await;
        insights.queue.push("e", items(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(impressions_seen(&fake).is_empty());
        insights.queue.push("e", items(490));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            impressions_seen(&fake)
                .iter()
                .map(|s| s.1)
                .collect::<Vec<_>>(),
            [500]
        );
        insights.queue.push("e", items(5));
        tokio::time::sleep(FLUSH_EVERY).await;
        assert_eq!(
            impressions_seen(&fake)
                .iter()
                .map(|s| s.1)
                .collect::<Vec<_>>(),
            [500, 5]
        );
        stop.begin(Instant::now() + Duration::from_secs(5));
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn open_streams_are_reported_soon_after_a_change_and_while_any_is_open() {
        let insights = Arc::new(Insights::new(10_000, false));
        let fake = Arc::new(Fake::default());
        let (stop, stopping) = Stopping::pair();
        let task = tokio::spawn(run(insights.clone(), fake.clone(), stopping));
        let reports = |fake: &Fake| -> Vec<usize> {
            fake.seen
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.1 == "connections")
                .map(|s| s.2)
                .collect()
        };
        // Nothing open, ever: nothing reported.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(reports(&fake).is_empty());
        let stream = insights.connections.open("e", "k", None);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(reports(&fake), [1]);
        // Every 10 s while it is open.
        tokio::time::sleep(Duration::from_secs(21)).await;
        assert_eq!(reports(&fake), [1, 1, 1]);
        // Its end is reported, then nothing more while none is open.
        drop(stream);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(reports(&fake), [1, 1, 1, 0]);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(reports(&fake), [1, 1, 1, 0]);
        stop.begin(Instant::now() + Duration::from_secs(5));
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_flushes_what_is_held_and_the_counts() {
        let insights = Arc::new(Insights::new(10_000, true));
        let fake = Arc::new(Fake::default());
        let (stop, stopping) = Stopping::pair();
        let task = tokio::spawn(run(insights.clone(), fake.clone(), stopping));
        tokio::time::sleep(Duration::from_millis(10)).await;
        insights.queue.push("e", items(7));
        insights.counter.record("e", "f", "on");
        stop.begin(Instant::now() + Duration::from_secs(5));
        task.await.unwrap();
        assert_eq!(
            impressions_seen(&fake)
                .iter()
                .map(|s| s.1)
                .collect::<Vec<_>>(),
            [7]
        );
        let counts: Vec<_> = fake
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.1 == "evaluation_counts")
            .map(|s| s.2)
            .collect();
        assert_eq!(counts, [1]);
        // What arrives after the final flush is dropped and counted.
        assert_eq!(insights.queue.push("e", items(2)), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_batch_is_dropped_and_counted() {
        let insights = Arc::new(Insights::new(10_000, false));
        let fake = Arc::new(Fake {
            refuse: true,
            ..Fake::default()
        });
        let (stop, stopping) = Stopping::pair();
        let task = tokio::spawn(run(insights.clone(), fake.clone(), stopping));
        insights.queue.push("e", items(4));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(impressions_seen(&fake).len(), 1);
        assert_eq!(insights.queue.dropped(), 4);
        stop.begin(Instant::now() + Duration::from_secs(5));
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_upstream_loses_at_most_what_the_deadline_cuts() {
        let insights = Arc::new(Insights::new(10_000, false));
        let fake = Arc::new(Fake {
            fail: AtomicUsize::new(usize::MAX),
            ..Fake::default()
        });
        let (stop, stopping) = Stopping::pair();
        let task = tokio::spawn(run(insights.clone(), fake.clone(), stopping));
        insights.queue.push("e", items(4));
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.begin(Instant::now() + Duration::from_secs(2));
        task.await.unwrap();
        assert_eq!(insights.queue.dropped(), 4);
    }
}

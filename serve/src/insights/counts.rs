//! Counting this server's own evaluations (our evaluation API and OFREP) per environment ×
//! flag × variant, collected every few seconds into [`EvaluationCount`]s.
//!
//! The evaluation path must neither allocate nor wait on a lock another core holds, so the
//! counters are sharded by thread: each thread that evaluates has a shard of its own, a map
//! under a mutex that only that thread and the collector (every 10 s) ever take — uncontended
//! but for the collector's brief swap. A key met for the first time allocates its entry once;
//! the collector zeroes entries rather than removing them, and removes only those idle for a
//! whole period, so steady traffic allocates nothing. The minute is not read on the hot path:
//! collections happen at wall-clock multiples of the period (which divides a minute), so what
//! one collection gathers belongs to one minute.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use checkgate_protocol::impressions::EvaluationCount;

/// Counters of one environment: per flag key, per variant text.
type FlagCounts = HashMap<Box<str>, Vec<(Box<str>, u64)>, foldhash::fast::RandomState>;

/// One thread's counters, on cache lines of their own (two threads' shards allocated side by
/// side must not share a line their locks would bounce between cores).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    envs: Mutex<HashMap<Box<str>, FlagCounts, foldhash::fast::RandomState>>,
}

/// A process may hold more than one [`Counter`] (tests); each thread keeps its shard of each.
static NEXT_COUNTER: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shards, by counter id (one or two entries).
    static SHARDS: RefCell<Vec<(usize, Arc<Shard>)>> = const { RefCell::new(Vec::new()) };
}

/// Evaluation counters, off when `COUNT_EVALUATIONS=false`.
#[derive(Debug)]
pub struct Counter {
    id: usize,
    on: AtomicBool,
    /// Every thread's shard, for the collector; a shard outlives its thread until collected.
    shards: Mutex<Vec<Arc<Shard>>>,
}

impl Counter {
    pub fn new(on: bool) -> Self {
        Self {
            id: NEXT_COUNTER.fetch_add(1, Ordering::Relaxed),
            on: AtomicBool::new(on),
            shards: Mutex::default(),
        }
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Counts one evaluation of `flag` in `env` that served `variant` (the value as text, as
    /// impressions report it).
    #[inline]
    pub fn record(&self, env: &str, flag: &str, variant: &str) {
        self.tally(env, |tally| tally.record(flag, variant));
    }

    /// Runs `f` with this thread's counters of `env`, for a request that counts many
    /// evaluations of one environment (the bulk routes): the shard is found and locked, and
    /// the environment looked up, once.
    #[inline]
    pub fn tally<R>(&self, env: &str, f: impl FnOnce(&mut Tally<'_>) -> R) -> R {
        if !self.is_on() {
            return f(&mut Tally(None));
        }
        SHARDS.with(|shards| {
            let mut shards = shards.borrow_mut();
            let at = match shards.iter().position(|(id, _)| *id == self.id) {
                Some(at) => at,
                None => {
                    // This thread's first evaluation for this counter.
                    let shard = Arc::new(Shard::default());
                    lock(&self.shards).push(Arc::clone(&shard));
                    shards.push((self.id, shard));
                    shards.len() - 1
                }
            };
            let mut envs = lock(&shards[at].1.envs);
            let flags = match envs.get_mut(env) {
                Some(flags) => flags,
                None => envs.entry(env.into()).or_default(),
            };
            f(&mut Tally(Some(flags)))
        })
    }

    /// Everything counted since the last collection, as counters of `minute`; entries that
    /// counted nothing since the last collection are forgotten.
    pub fn collect(&self, minute: i64) -> Vec<EvaluationCount> {
        let shards: Vec<Arc<Shard>> = {
            let mut list = lock(&self.shards);
            // Shards whose thread ended (only this list holds them) and that hold nothing.
            list.retain(|shard| Arc::strong_count(shard) > 1 || !lock(&shard.envs).is_empty());
            list.clone()
        };
        let mut sums: HashMap<(String, String, String), u64> = HashMap::new();
        for shard in shards {
            let mut envs = lock(&shard.envs);
            for (env, flags) in envs.iter_mut() {
                for (flag, variants) in flags.iter_mut() {
                    for (variant, n) in variants.iter_mut() {
                        if *n > 0 {
                            *sums
                                .entry((env.to_string(), flag.to_string(), variant.to_string()))
                                .or_default() += std::mem::take(n);
                        } else {
                            // Idle for a whole period: marked for removal below.
                            *n = u64::MAX;
                        }
                    }
                    variants.retain(|(_, n)| *n != u64::MAX);
                }
                flags.retain(|_, variants| !variants.is_empty());
            }
            envs.retain(|_, flags| !flags.is_empty());
        }
        let mut counts: Vec<EvaluationCount> = sums
            .into_iter()
            .map(
                |((environment, flag_key, variant), count)| EvaluationCount {
                    environment,
                    flag_key,
                    variant,
                    minute,
                    count,
                },
            )
            .collect();
        counts.sort_by(|a, b| {
            (&a.environment, &a.flag_key, &a.variant).cmp(&(
                &b.environment,
                &b.flag_key,
                &b.variant,
            ))
        });
        counts
    }
}

/// One environment's counters of this thread, held for a moment; counts nothing when
/// counting is off.
pub struct Tally<'a>(Option<&'a mut FlagCounts>);

impl Tally<'_> {
    /// Counts one evaluation of `flag` that served `variant`.
    #[inline]
    pub fn record(&mut self, flag: &str, variant: &str) {
        let Some(flags) = self.0.as_deref_mut() else {
            return;
        };
        let variants = match flags.get_mut(flag) {
            Some(variants) => variants,
            None => flags.entry(flag.into()).or_default(),
        };
        match variants.iter_mut().find(|(v, _)| &**v == variant) {
            Some((_, n)) => *n += 1,
            None => variants.push((variant.into(), 1)),
        }
    }

    /// Counts an evaluation this server answered (not one in error).
    #[inline]
    pub fn evaluated(&mut self, flag: &str, evaluation: &checkgate_core::Evaluation<'_>) {
        if evaluation.error.is_none() {
            self.record(flag, variant_text(evaluation.value, evaluation.value_json));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The variant text of an evaluation: a string value's text, any other value's JSON.
pub fn variant_text<'e>(value: &'e serde_json::Value, value_json: &'e str) -> &'e str {
    match value {
        serde_json::Value::String(s) => s,
        _ => value_json,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn counts_per_thread_add_up_and_idle_entries_go() {
        let counter = Arc::new(Counter::new(true));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        counter.record("e", "f", if i % 4 == 0 { "on" } else { "off" });
                    }
                    counter.record("e2", "g", "1");
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let counts = counter.collect(7);
        let seen: Vec<(&str, &str, &str, u64)> = counts
            .iter()
            .map(|c| {
                assert_eq!(c.minute, 7);
                (&*c.environment, &*c.flag_key, &*c.variant, c.count)
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("e", "f", "off", 3000),
                ("e", "f", "on", 1000),
                ("e2", "g", "1", 4)
            ]
        );
        // Nothing new: nothing to send, and the idle entries are forgotten.
        assert!(counter.collect(8).is_empty());
        counter.record("e", "f", "on");
        assert_eq!(counter.collect(9).len(), 1);
    }

    #[test]
    fn off_counts_nothing() {
        let counter = Counter::new(false);
        counter.record("e", "f", "on");
        assert!(counter.collect(1).is_empty());
    }

    #[test]
    fn a_string_value_is_counted_by_its_text() {
        let v = serde_json::json!("blue");
        assert_eq!(variant_text(&v, "\"blue\""), "blue");
        assert_eq!(variant_text(&serde_json::json!(true), "true"), "true");
    }
}

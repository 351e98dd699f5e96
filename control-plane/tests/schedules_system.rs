//! Scheduled changes across instances, with real processes on loopback: two control planes on
//! one PostgreSQL database, 200 changes due over two minutes, and both instances killed
//! (SIGKILL) and restarted twice across due times. Every change is applied exactly once (one
//! `flag.schedule_apply` audit row and one change row each, distinct versions), within 2 s of
//! its due time while an instance was up and within 5 s of recovery when none was — measured on
//! the database's clock. The distribution is printed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use checkgate_core::date::format_rfc3339;
use common::cluster::{Control, ControlOptions, TempDir, Workspace, call, eventually, pause};
use common::pg::Database;
use serde_json::{Value, json};
use sqlx::Connection;

const SCHEDULES: usize = 200;
const FLAGS: usize = 20;
/// Time between two due times: 200 changes over two minutes.
const SPACING_MS: i64 = 600;
/// From the start of scheduling to the first due time (200 requests fit in it on a loaded machine).
const LEAD_MS: i64 = 20_000;
/// Bounds on lateness (database time): while an instance was up, and after recovery.
const UP_BOUND_MS: i64 = 2_000;
const RECOVERY_BOUND_MS: i64 = 5_000;

/// A schedule's row: id, status, scheduled_at, executed_at, applied_version.
type ScheduleRow = (String, String, i64, Option<i64>, Option<i64>);

/// Queries on the test's database, on a runtime of their own.
struct Sql {
    url: String,
    runtime: tokio::runtime::Runtime,
}

impl Sql {
    fn new(url: String) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self { url, runtime }
    }

    fn rows<T>(&self, sql: &str) -> Vec<T>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        self.runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        })
    }

    /// The database's clock, in Unix milliseconds.
    fn now_ms(&self) -> i64 {
        let rows: Vec<(i64,)> =
            self.rows("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT");
        rows[0].0
    }
}

fn start(db: &Database, dir: &TempDir) -> Control {
    let url = db.url();
    Control::start(&ControlOptions::alone(&url, dir.path(), &[]))
}

/// Percentiles of `values` (sorted here), for the log.
fn distribution(values: &mut [i64]) -> String {
    if values.is_empty() {
        return "none".into();
    }
    values.sort_unstable();
    let at = |p: usize| values[(values.len() - 1) * p / 100];
    format!(
        "n={} min={} p50={} p90={} p99={} max={} (ms)",
        values.len(),
        values[0],
        at(50),
        at(90),
        at(99),
        values[values.len() - 1]
    )
}

/// Waits until the database's clock passes `ms`.
fn until_db(sql: &Sql, ms: i64) {
    let wait = ms - sql.now_ms();
    if wait > 0 {
        pause(Duration::from_millis(wait as u64));
    }
}

#[test]
fn two_instances_killed_and_restarted_apply_every_change_exactly_once_and_on_time() {
    let started = Instant::now();
    let db = Database::new();
    let sql = Sql::new(db.url());
    let (dir_a, dir_b) = (TempDir::new("sched-a"), TempDir::new("sched-b"));
    let mut a = Some(start(&db, &dir_a));
    let mut b = Some(start(&db, &dir_b));
    let ws = Workspace::set_up(a.as_ref().unwrap().http());
    let env = ws.envs[0].clone();
    let token = ws.api_token.clone();

    for f in 0..FLAGS {
        let (status, body) = call(
            a.as_ref().unwrap().http(),
            "POST",
            &format!("/api/environments/{env}/flags"),
            Some(&token),
            Some(&json!({"key": format!("f{f}"), "is_enabled": false})),
        );
        assert_eq!(status, 201, "{body}");
    }

    // 200 changes, due every 600 ms from 20 s on, scheduled through both instances.
    let first_due = sql.now_ms() + LEAD_MS;
    let due_of = |i: usize| first_due + i as i64 * SPACING_MS;
    let mut ids = BTreeMap::new();
    for i in 0..SCHEDULES {
        let via = if i % 2 == 0 { &a } else { &b };
        let due = format_rfc3339(due_of(i));
        let (status, body) = call(
            via.as_ref().unwrap().http(),
            "POST",
            &format!(
                "/api/environments/{env}/flags/f{}/scheduled-changes",
                i % FLAGS
            ),
            Some(&token),
            Some(&json!({"scheduled_at": due, "patch": {"description": format!("s{i}")}})),
        );
        assert_eq!(status, 201, "{body}");
        ids.insert(body["id"].as_str().unwrap().to_owned(), i);
    }
    assert!(
        sql.now_ms() < first_due,
        "scheduling took longer than the lead"
    );

    // Two outages of both instances, each across several due times: (down, up) by the
    // database's clock.
    let mut outages = Vec::new();
    for (down_at, down_for) in [(30_000, 9_000), (80_000, 7_000)] {
        until_db(&sql, first_due + down_at);
        let killed = sql.now_ms();
        drop(a.take()); // SIGKILL, then reaped
        drop(b.take());
        pause(Duration::from_millis(down_for));
        a = Some(start(&db, &dir_a));
        b = Some(start(&db, &dir_b));
        // Up again: changes due until now were missed, and count from here.
        let recovered = sql.now_ms();
        eprintln!(
            "outage: killed at +{} ms, up again at +{} ms",
            killed - first_due,
            recovered - first_due
        );
        outages.push((killed, recovered));
    }

    // Every change leaves pending.
    let last_due = due_of(SCHEDULES - 1);
    until_db(&sql, last_due);
    eventually(
        "every scheduled change settled",
        Duration::from_secs(60),
        || {
            let pending: Vec<(i64,)> =
                sql.rows("SELECT COUNT(*) FROM scheduled_changes WHERE status = 'pending'");
            (pending[0].0 == 0).then_some(())
        },
    );

    let rows: Vec<ScheduleRow> = sql.rows(
        "SELECT id, status, scheduled_at, executed_at, applied_version FROM scheduled_changes",
    );
    assert_eq!(rows.len(), SCHEDULES);
    let mut late_up = Vec::new();
    let mut late_recovery = Vec::new();
    let mut failures = Vec::new();
    let mut versions = Vec::new();
    for (id, status, scheduled_at, executed_at, version) in &rows {
        if status != "applied" {
            failures.push(format!("{id}: {status}"));
            continue;
        }
        let executed = executed_at.unwrap();
        versions.push(version.unwrap());
        let late = executed - scheduled_at;
        // Due while both were down (or just before they were killed, or while they were
        // starting again): measured from recovery, and applied no earlier than the restart.
        let missed = outages
            .iter()
            .find(|(killed, recovered)| {
                *scheduled_at >= killed - UP_BOUND_MS && scheduled_at <= recovered
            })
            .filter(|(killed, _)| scheduled_at >= killed || late > UP_BOUND_MS);
        match missed {
            Some((_, recovered)) => {
                let after = (executed - recovered).max(0);
                late_recovery.push(after);
                if after > RECOVERY_BOUND_MS {
                    failures.push(format!("{id}: {after} ms after recovery"));
                }
            }
            None => {
                late_up.push(late);
                if !(0..=UP_BOUND_MS).contains(&late) {
                    failures.push(format!("{id}: {late} ms after its due time"));
                }
            }
        }
    }
    eprintln!("lateness while up: {}", distribution(&mut late_up));
    eprintln!("after recovery: {}", distribution(&mut late_recovery));

    // Exactly once: one audit row and one change row per change, and distinct versions.
    let audited: Vec<(Option<String>,)> =
        sql.rows("SELECT after_doc FROM audit_log WHERE action = 'flag.schedule_apply'");
    let changed: Vec<(Option<String>,)> =
        sql.rows("SELECT doc FROM changes WHERE kind = 'flag_upsert'");
    let per_change = |docs: &[(Option<String>,)]| {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (doc,) in docs {
            let doc: Value = serde_json::from_str(doc.as_deref().unwrap_or("{}")).unwrap();
            if let Some(d) = doc["description"].as_str() {
                *counts.entry(d.to_owned()).or_default() += 1;
            }
        }
        counts
    };
    let audit_counts = per_change(&audited);
    let change_counts = per_change(&changed);
    for i in 0..SCHEDULES {
        let tag = format!("s{i}");
        for (what, counts) in [("audit", &audit_counts), ("change", &change_counts)] {
            let n = counts.get(&tag).copied().unwrap_or(0);
            if n != 1 {
                failures.push(format!("change {i}: {n} {what} rows"));
            }
        }
    }
    assert_eq!(audited.len(), SCHEDULES, "one apply audit row per change");
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), SCHEDULES, "each change its own version");
    assert!(
        !late_recovery.is_empty(),
        "the outages missed no due time: the test proves nothing about recovery"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("took {:?}", started.elapsed());
}

//! The scheduler: applies scheduled changes when due. Every control-plane instance runs one
//! ([`run`]); they need no coordination, because a schedule is claimed inside the transaction
//! that applies it (`store/schedules.rs`), so only one instance can apply it and an instance
//! killed half-way applies nothing.
//!
//! A due change is applied exactly as `PATCH …/flags/{key}` would apply it: the same merge
//! ([`merge_patch`], conditional on the version merged onto, so a write in between is merged
//! again) and the same validation ([`flags::validate`]). A change that no longer compiles, whose
//! flag is gone or whose `if_version` no longer matches is marked failed with the reason, and
//! nothing else changes; an error that may pass (the database, a write that kept racing) leaves
//! it pending for the next pass.
//!
//! Timing: due is the database's clock. The task sleeps until the next due time, at most
//! [`MAX_SLEEP`], and wakes early when this instance stores a new schedule; so a change applies
//! within about a second of its time while any instance runs, and at once on start-up when
//! instances were down at its time (missed changes, in due order).

use std::time::Duration;

use checkgate_core::FlagDoc;

use super::documents::{merge_patch, patched};
use super::flags::{self, READ_ONLY};
use super::{ApiError, AppState};
use crate::store::{ScheduledChange, StoredFlag};

/// Longest sleep between passes: schedules stored by another instance are seen within it.
pub const MAX_SLEEP: Duration = Duration::from_secs(1);
/// Shortest sleep between passes, so due changes another instance holds (or that keep hitting
/// an error that may pass) are retried without spinning.
const MIN_SLEEP: Duration = Duration::from_millis(50);
/// Due changes read per pass.
const BATCH: u32 = 50;

/// How one due change ended on this instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied here, at this environment version.
    Applied(u64),
    /// Marked failed here, with this reason.
    Failed(String),
    /// Not claimed: applied, failed or cancelled elsewhere, being applied by another instance,
    /// or waiting for an earlier change of its flag.
    Skipped,
    /// An error that may pass; still pending.
    Retry(String),
}

/// Runs until dropped (aborted): applies due changes, then sleeps until the next is due (at
/// most [`MAX_SLEEP`]) or a new schedule is stored on this instance.
pub async fn run(state: AppState) {
    loop {
        let wake = state.schedule_wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        if let Err(e) = apply_due(&state).await {
            tracing::warn!(cause = %e, "applying scheduled changes failed");
        }
        let sleep = match state.store.next_schedule_in_ms().await {
            Ok(Some(ms)) => Duration::from_millis(ms.max(0) as u64),
            Ok(None) => MAX_SLEEP,
            Err(e) => {
                tracing::warn!(cause = %e, "reading the next scheduled change failed");
                MAX_SLEEP
            }
        };
        let sleep = sleep.clamp(MIN_SLEEP, MAX_SLEEP);
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = &mut wake => {}
        }
    }
}

/// One pass: every change due now (up to a batch), soonest first. Returns each one's outcome.
pub async fn apply_due(state: &AppState) -> Result<Vec<(String, Outcome)>, ApiError> {
    let due = state.store.due_schedules(BATCH).await?;
    let mut outcomes = Vec::with_capacity(due.len());
    for schedule in due {
        let outcome = apply_one(state, &schedule).await;
        match &outcome {
            Outcome::Applied(version) => {
                metrics::counter!("checkgate_scheduled_changes_total", "outcome" => "applied")
                    .increment(1);
                tracing::info!(id = %schedule.id, env = %schedule.environment_id,
                    flag = %schedule.flag_key, version, "applied a scheduled change");
            }
            Outcome::Failed(reason) => {
                metrics::counter!("checkgate_scheduled_changes_total", "outcome" => "failed")
                    .increment(1);
                tracing::warn!(id = %schedule.id, env = %schedule.environment_id,
                    flag = %schedule.flag_key, reason = %reason, "a scheduled change failed");
            }
            Outcome::Skipped => {}
            Outcome::Retry(cause) => {
                tracing::warn!(id = %schedule.id, cause = %cause,
                    "a scheduled change stays pending after an error");
            }
        }
        outcomes.push((schedule.id.clone(), outcome));
    }
    Ok(outcomes)
}

/// Applies one due change, or marks it failed.
async fn apply_one(state: &AppState, schedule: &ScheduledChange) -> Outcome {
    let patch =
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&schedule.patch) {
            Ok(patch) => patch,
            Err(e) => return fail(state, schedule, &format!("patch: {e}")).await,
        };
    let (env, key) = (schedule.environment_id.as_str(), schedule.flag_key.as_str());
    let read = move || async move {
        let current = state.store.flag(env, key).await?;
        Ok((current.version, current.doc))
    };
    let write = move |doc: FlagDoc, version: u64| async move {
        let compiled = flags::validate(state, env, &doc).await?;
        let written = state
            .store
            .apply_schedule(schedule, &compiled, version, state.automaton_cap)
            .await;
        patched(written, compiled.largest_automaton_path())
    };
    let what = format!("flag {key:?}");
    let applied: Result<Option<StoredFlag>, ApiError> =
        merge_patch(&what, &READ_ONLY, schedule.if_version, &patch, read, write).await;
    match applied {
        Ok(Some(flag)) => Outcome::Applied(flag.version),
        Ok(None) => Outcome::Skipped,
        Err(
            e @ (ApiError::NotFound(_)
            | ApiError::Unprocessable(_)
            | ApiError::PreconditionFailed(_)
            | ApiError::BadRequest(_)),
        ) => {
            let reason = e.to_string();
            let reason = reason.trim_end_matches("; reload it and try again");
            fail(state, schedule, reason).await
        }
        Err(ApiError::Internal(source)) => Outcome::Retry(format!("{source:#}")),
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

async fn fail(state: &AppState, schedule: &ScheduledChange, reason: &str) -> Outcome {
    match state.store.fail_schedule(&schedule.id, reason).await {
        Ok(true) => Outcome::Failed(reason.to_owned()),
        Ok(false) => Outcome::Skipped,
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

//! The webhook outbox's writing side: an event's delivery rows, one per enabled webhook of its
//! environment (or the one webhook a test event is for), written in the caller's transaction —
//! a change's from `NextVersion::record` ([`enqueue_change`]), any other event's from
//! [`enqueue_event`] — so what commits is announced and what rolls back never is.

use serde_json::Value;

use super::changes::{Audited, NextVersion};
use super::webhooks::PENDING;
use super::{Actor, StoreError, new_id, now_ms};
use crate::webhooks::event::{self, Event, EventActor};

/// The environment's key, name and project, for event bodies.
pub(super) async fn environment_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    environment_id: &str,
) -> Result<Option<(String, String, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT slug, name, project_id FROM environments WHERE id = $1")
            .bind(environment_id)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// Inserts one pending delivery row.
pub(super) async fn insert_delivery(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    webhook_id: &str,
    event: &str,
    event_id: &str,
    body: &str,
    now: i64,
) -> Result<String, StoreError> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, webhook_id, event, event_id, body, state, attempts, \
         next_attempt_at, claimed_until, created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, 0, $7)",
    )
    .bind(&id)
    .bind(webhook_id)
    .bind(event)
    .bind(event_id)
    .bind(body)
    .bind(PENDING)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// What to enqueue for an event: the event and who to send it to (`only`: one webhook;
/// `except`: all enabled ones but this one).
pub(super) struct Enqueue<'a> {
    environment_id: &'a str,
    only: Option<&'a str>,
    except: Option<&'a str>,
}

/// Writes one delivery row per addressed enabled webhook of the environment, each with the
/// body in its format. Returns the rows written. Nothing (one indexed read) when the
/// environment has no webhook.
pub(super) async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    to: Enqueue<'_>,
    make: impl Fn(&str, &str, &str, &str, &str) -> (String, String),
) -> Result<Vec<String>, StoreError> {
    let hooks: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, format FROM webhooks WHERE environment_id = $1 AND enabled = 1 ORDER BY id",
    )
    .bind(to.environment_id)
    .fetch_all(&mut **tx)
    .await?;
    let hooks: Vec<_> = hooks
        .into_iter()
        .filter(|(id, _)| to.only.is_none_or(|only| only == id))
        .filter(|(id, _)| to.except != Some(id.as_str()))
        .collect();
    if hooks.is_empty() {
        return Ok(Vec::new());
    }
    let Some((key, name, project)) = environment_of(tx, to.environment_id).await? else {
        return Ok(Vec::new());
    };
    let event_id = new_id();
    let now = now_ms();
    let mut ids = Vec::with_capacity(hooks.len());
    for (hook, format) in hooks {
        let (event, body) = make(&format, &event_id, &key, &name, &project);
        ids.push(insert_delivery(tx, &hook, &event, &event_id, &body, now).await?);
    }
    Ok(ids)
}

/// Enqueues an event that is not a change (`edge.stale`, `webhook.failing`, …) for every
/// enabled webhook of the environment, inside the caller's transaction: it is delivered only
/// if that transaction commits. `data` is the body's `data` field.
pub async fn enqueue_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    environment_id: &str,
    event_name: &str,
    data: Value,
) -> Result<Vec<String>, StoreError> {
    enqueue_system_event(tx, environment_id, event_name, data, None, None).await
}

pub(super) async fn enqueue_system_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    environment_id: &str,
    event_name: &str,
    data: Value,
    only: Option<&str>,
    except: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    let at_ms = now_ms();
    let to = Enqueue {
        environment_id,
        only,
        except,
    };
    enqueue(tx, to, |format, event_id, key, name, project| {
        let body = event::body(
            format,
            &Event {
                event: event_name,
                event_id,
                environment_id,
                environment_key: key,
                environment_name: name,
                project_id: project,
                actor: EventActor {
                    kind: "system",
                    id: None,
                    name: "system",
                },
                target: None,
                before: None,
                after: None,
                version: None,
                data: Some(data.clone()),
                at_ms,
            },
        );
        (event_name.to_owned(), body)
    })
    .await
}

/// Enqueues the event of a versioned change (called by `NextVersion::record`, in the change's
/// transaction).
pub(super) async fn enqueue_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    next: &NextVersion,
    actor: &Actor,
    audited: &Audited<'_>,
) -> Result<(), StoreError> {
    let name = event::event_name(audited.action);
    let at_ms = now_ms();
    let to = Enqueue {
        environment_id: &next.environment_id,
        only: None,
        except: None,
    };
    enqueue(tx, to, |format, event_id, key, env_name, _| {
        let body = event::body(
            format,
            &Event {
                event: &name,
                event_id,
                environment_id: &next.environment_id,
                environment_key: key,
                environment_name: env_name,
                project_id: &next.project_id,
                actor: EventActor {
                    kind: actor.kind,
                    id: actor.id.as_deref(),
                    name: &actor.name,
                },
                target: Some(audited.target),
                before: audited.before,
                after: audited.after,
                version: Some(next.version),
                data: None,
                at_ms,
            },
        );
        (name.clone(), body)
    })
    .await?;
    Ok(())
}

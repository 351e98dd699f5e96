//! Scheduled changes through the API, on both backends (the embedded SQLite file and a
//! PostgreSQL database of the test's own, `CHECKGATE_TEST_PG`), with the scheduler running as
//! it does in the binary: validation when scheduled, listing and cancelling, a change applied
//! when due as an ordinary versioned and audited change, and the failures when due (the patch
//! no longer compiles, the flag is gone, `if_version` no longer matches) that change nothing;
//! and two schedulers over one PostgreSQL database applying each change once, in due order
//! per flag.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use checkgate_control::api::AppState;
use checkgate_control::store::AuditFilter;
use checkgate_core::date::format_rfc3339;
use common::{Api, World, api_over, api_with, assert_error};
use serde_json::{Value, json};

/// Runs `test` against an API over SQLite, then over a fresh PostgreSQL database, each with
/// its scheduler running.
async fn on_both<F, Fut>(test: F)
where
    F: Fn(Api, &'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut scheduler = None;
    let spawn = |state: &mut AppState| {
        scheduler = Some(tokio::spawn(checkgate_control::api::scheduler::run(
            state.clone(),
        )));
    };
    test(api_with(spawn).await, "sqlite").await;
    scheduler.take().unwrap().abort();

    let name = format!("cg_sched_{}", uuid::Uuid::new_v4().simple());
    let url = common::pg::create_database(&name).await;
    let spawn = |state: &mut AppState| {
        scheduler = Some(tokio::spawn(checkgate_control::api::scheduler::run(
            state.clone(),
        )));
    };
    let api = api_over(&url, spawn).await;
    let store = api.store.clone();
    test(api, "postgres").await;
    scheduler.take().unwrap().abort();
    store.close().await;
    common::pg::drop_database(&name).await.unwrap();
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `ms` from now, as RFC 3339.
fn in_ms(ms: i64) -> String {
    format_rfc3339(now_ms() + ms)
}

async fn create_flag(api: &Api, world: &World, key: &str, doc: Value) -> Value {
    let mut doc = doc;
    doc["key"] = json!(key);
    let reply = api
        .call(
            "POST",
            &format!("/api/environments/{}/flags", world.envs[0]),
            Some(doc),
            Some(&world.admin),
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

async fn schedule(api: &Api, world: &World, key: &str, body: Value) -> common::Reply {
    api.call(
        "POST",
        &format!(
            "/api/environments/{}/flags/{key}/scheduled-changes",
            world.envs[0]
        ),
        Some(body),
        Some(&world.admin),
        &[],
    )
    .await
}

async fn list(api: &Api, world: &World, query: &str) -> Vec<Value> {
    let reply = api
        .get(
            &format!(
                "/api/environments/{}/scheduled-changes{query}",
                world.envs[0]
            ),
            Some(&world.admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body.as_array().unwrap().clone()
}

/// Polls the environment's list until schedule `id` has left `pending` (at most 20 s).
async fn settled(api: &Api, world: &World, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = list(api, world, "")
            .await
            .into_iter()
            .find(|s| s["id"] == id)
            .unwrap();
        if found["status"] != "pending" {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still pending: {found}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn flag(api: &Api, world: &World, key: &str) -> Value {
    let reply = api
        .get(
            &format!("/api/environments/{}/flags/{key}", world.envs[0]),
            Some(&world.admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn bad_schedules_are_refused_with_the_right_status_and_a_json_error() {
    on_both(|api, backend| async move {
        let world = api.world().await;
        create_flag(&api, &world, "checkout", json!({"is_enabled": false})).await;
        let later = in_ms(3_600_000);
        let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
            (
                "checkout",
                json!({"scheduled_at": "tomorrow", "patch": {"is_enabled": true}}),
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                "checkout",
                json!({"scheduled_at": "2030-01-01", "patch": {"is_enabled": true}}),
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                "checkout",
                json!({"scheduled_at": "2030-13-01T00:00:00Z", "patch": {"is_enabled": true}}),
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                "checkout",
                json!({"scheduled_at": 1_900_000_000_000_i64, "patch": {"is_enabled": true}}),
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                "checkout",
                json!({"scheduled_at": in_ms(-60_000), "patch": {"is_enabled": true}}),
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                "checkout",
                json!({"scheduled_at": "2999-01-01T00:00:00Z", "patch": {"is_enabled": true}}),
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                "checkout",
                json!({"scheduled_at": later, "patch": {"is_enabled": true}, "extra": 1}),
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                "checkout",
                json!({"scheduled_at": later, "patch": {}}),
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                "checkout",
                json!({"scheduled_at": later, "patch": []}),
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                "missing",
                json!({"scheduled_at": later, "patch": {"is_enabled": true}}),
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                "checkout",
                json!({"scheduled_at": later, "patch": {"rollout_percentage": 150}}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
            ),
            (
                "checkout",
                json!({"scheduled_at": later, "patch": {"is_enabled": "yes"}}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
            ),
            (
                "checkout",
                json!({"scheduled_at": later, "patch": {"is_enabled": true}, "if_version": 99}),
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
            ),
            (
                "checkout",
                json!({"scheduled_at": later, "patch": {"description": "x".repeat(70_000)}}),
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
            ),
        ];
        for (key, body, status, code) in cases {
            let reply = schedule(&api, &world, key, body.clone()).await;
            assert_eq!(reply.status, status, "{backend}: {body} → {}", reply.body);
            assert_error(&reply, status, code);
        }
        // The 422 names the path of the problem.
        let reply = schedule(
            &api,
            &world,
            "checkout",
            json!({"scheduled_at": later, "patch": {"rollout_percentage": 150}}),
        )
        .await;
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("rollout_percentage"), "{message}");
        assert!(list(&api, &world, "").await.is_empty(), "{backend}");
    })
    .await;
}

#[tokio::test]
async fn schedules_are_listed_cancelled_once_and_audited() {
    on_both(|api, backend| async move {
        let world = api.world().await;
        create_flag(&api, &world, "checkout", json!({"is_enabled": false})).await;
        create_flag(&api, &world, "search", json!({"is_enabled": false})).await;
        let first = schedule(
            &api,
            &world,
            "checkout",
            json!({"scheduled_at": "2099-01-01T10:00:00+02:00", "patch": {"is_enabled": true}}),
        )
        .await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        let body = &first.body;
        assert_eq!(body["flag_key"], "checkout");
        assert_eq!(body["environment_id"], world.envs[0].as_str());
        assert_eq!(body["scheduled_at"], "2099-01-01T08:00:00.000Z");
        assert_eq!(body["patch"], json!({"is_enabled": true}));
        assert_eq!(body["status"], "pending");
        assert_eq!(body["executed_at"], Value::Null);
        assert_eq!(body["applied_at"], Value::Null);
        assert_eq!(body["created_by"]["name"], "admin@example.com");
        let second = schedule(
            &api,
            &world,
            "search",
            json!({"scheduled_at": "2098-01-01T00:00:00Z", "patch": {"rollout_percentage": 10}}),
        )
        .await;
        assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);

        // Soonest due first; the flag's own list holds only its changes.
        let all = list(&api, &world, "").await;
        let keys: Vec<&str> = all
            .iter()
            .map(|s| s["flag_key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["search", "checkout"], "{backend}");
        let own = api
            .get(
                &format!(
                    "/api/environments/{}/flags/checkout/scheduled-changes",
                    world.envs[0]
                ),
                Some(&world.admin),
            )
            .await;
        assert_eq!(own.status, StatusCode::OK);
        assert_eq!(own.body.as_array().unwrap().len(), 1);
        assert_eq!(own.body[0]["id"], first.body["id"]);
        let bad = api
            .get(
                &format!(
                    "/api/environments/{}/scheduled-changes?limit=0",
                    world.envs[0]
                ),
                Some(&world.admin),
            )
            .await;
        assert_error(&bad, StatusCode::BAD_REQUEST, "bad_request");
        let bad = api
            .get(
                &format!(
                    "/api/environments/{}/scheduled-changes?status=done",
                    world.envs[0]
                ),
                Some(&world.admin),
            )
            .await;
        assert_error(&bad, StatusCode::BAD_REQUEST, "bad_request");

        // Cancelled once; then 409. Unknown ids are 404, malformed ones 400.
        let id = first.body["id"].as_str().unwrap();
        let path = format!("/api/environments/{}/scheduled-changes/{id}", world.envs[0]);
        let cancel = api
            .call("DELETE", &path, None, Some(&world.admin), &[])
            .await;
        assert_eq!(cancel.status, StatusCode::NO_CONTENT, "{}", cancel.body);
        let again = api
            .call("DELETE", &path, None, Some(&world.admin), &[])
            .await;
        assert_error(&again, StatusCode::CONFLICT, "conflict");
        let unknown = format!(
            "/api/environments/{}/scheduled-changes/{}",
            world.envs[0],
            uuid::Uuid::new_v4()
        );
        let reply = api
            .call("DELETE", &unknown, None, Some(&world.admin), &[])
            .await;
        assert_error(&reply, StatusCode::NOT_FOUND, "not_found");
        let elsewhere = format!("/api/environments/{}/scheduled-changes/{id}", world.envs[1]);
        let reply = api
            .call("DELETE", &elsewhere, None, Some(&world.admin), &[])
            .await;
        assert_error(&reply, StatusCode::NOT_FOUND, "not_found");
        let malformed = format!(
            "/api/environments/{}/scheduled-changes/not-an-id",
            world.envs[0]
        );
        let reply = api
            .call("DELETE", &malformed, None, Some(&world.admin), &[])
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "bad_request");

        let cancelled = list(&api, &world, "?status=cancelled").await;
        assert_eq!(cancelled.len(), 1);
        assert_eq!(cancelled[0]["id"], id);
        assert!(cancelled[0]["cancelled_at"].is_string());
        assert_eq!(list(&api, &world, "?status=pending").await.len(), 1);
        assert_eq!(list(&api, &world, "?limit=1").await.len(), 1);

        let entries = api
            .store
            .audit(&AuditFilter {
                environment_id: Some(world.envs[0].clone()),
                limit: 100,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions
                .iter()
                .filter(|a| **a == "flag.schedule_create")
                .count(),
            2,
            "{actions:?}"
        );
        assert_eq!(
            actions
                .iter()
                .filter(|a| **a == "flag.schedule_cancel")
                .count(),
            1,
            "{actions:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_due_change_applies_once_as_a_versioned_audited_change() {
    on_both(|api, backend| async move {
        let world = api.world().await;
        let created = create_flag(&api, &world, "checkout", json!({"is_enabled": false})).await;
        let before = created["version"].as_u64().unwrap();
        let due = now_ms() + 1_500;
        let reply = schedule(
            &api,
            &world,
            "checkout",
            json!({"scheduled_at": format_rfc3339(due), "patch": {"is_enabled": true, "description": "launch"},
                   "if_version": before}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let id = reply.body["id"].as_str().unwrap().to_owned();
        let done = settled(&api, &world, &id).await;
        assert_eq!(done["status"], "applied", "{backend}: {done}");
        assert!(done["applied_at"].is_string());
        assert_eq!(done["executed_at"], done["applied_at"]);
        assert_eq!(done["failure_reason"], Value::Null);

        let now = flag(&api, &world, "checkout").await;
        assert_eq!(now["is_enabled"], true);
        assert_eq!(now["description"], "launch");
        let version = now["version"].as_u64().unwrap();
        assert_eq!(done["applied_version"], version);
        assert_eq!(version, before + 1, "one change, one version");

        // The change feed and the audit log hold it once, in the scheduler's and the user's
        // name.
        let changes = api
            .store
            .changes_since(&world.envs[0], before, 100)
            .await
            .unwrap();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].version, version);
        let entries = api
            .store
            .audit(&AuditFilter {
                environment_id: Some(world.envs[0].clone()),
                limit: 100,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        let applied: Vec<_> = entries
            .iter()
            .filter(|e| e.action == "flag.schedule_apply")
            .collect();
        assert_eq!(applied.len(), 1, "{entries:?}");
        assert_eq!(applied[0].actor_kind, "user");
        assert_eq!(applied[0].actor_name, "admin@example.com");
        assert_eq!(applied[0].target_key, "checkout");
        assert!(applied[0].after.as_deref().unwrap().contains("launch"));

        // An applied change is no longer cancellable.
        let path = format!("/api/environments/{}/scheduled-changes/{id}", world.envs[0]);
        let reply = api
            .call("DELETE", &path, None, Some(&world.admin), &[])
            .await;
        assert_error(&reply, StatusCode::CONFLICT, "conflict");
    })
    .await;
}

#[tokio::test]
async fn a_change_that_cannot_apply_when_due_fails_with_its_reason_and_changes_nothing() {
    on_both(|api, backend| async move {
        let world = api.world().await;
        let env = world.envs[0].clone();
        create_flag(&api, &world, "guarded", json!({"is_enabled": false})).await;
        create_flag(&api, &world, "doomed", json!({"is_enabled": false})).await;
        create_flag(
            &api,
            &world,
            "typed",
            json!({"is_enabled": false, "flag_type": "string", "default_value": "a", "disabled_value": "b"}),
        )
        .await;
        let guarded_version = flag(&api, &world, "guarded").await["version"]
            .as_u64()
            .unwrap();
        let due = format_rfc3339(now_ms() + 2_000);
        let guarded = schedule(
            &api,
            &world,
            "guarded",
            json!({"scheduled_at": due, "patch": {"is_enabled": true}, "if_version": guarded_version}),
        )
        .await;
        assert_eq!(guarded.status, StatusCode::CREATED, "{}", guarded.body);
        let doomed = schedule(
            &api,
            &world,
            "doomed",
            json!({"scheduled_at": due, "patch": {"is_enabled": true}}),
        )
        .await;
        assert_eq!(doomed.status, StatusCode::CREATED, "{}", doomed.body);
        let typed = schedule(
            &api,
            &world,
            "typed",
            json!({"scheduled_at": due, "patch": {"default_value": "c"}}),
        )
        .await;
        assert_eq!(typed.status, StatusCode::CREATED, "{}", typed.body);

        // Before they are due: the guarded flag changes, the doomed one is deleted, and the
        // typed one becomes an integer flag its patch no longer fits.
        let reply = api
            .call(
                "PATCH",
                &format!("/api/environments/{env}/flags/guarded"),
                Some(json!({"description": "moved on"})),
                Some(&world.admin),
                &[],
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let reply = api
            .call(
                "DELETE",
                &format!("/api/environments/{env}/flags/doomed"),
                None,
                Some(&world.admin),
                &[],
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
        let reply = api
            .call(
                "PATCH",
                &format!("/api/environments/{env}/flags/typed"),
                Some(json!({"flag_type": "integer", "default_value": 1, "disabled_value": 0})),
                Some(&world.admin),
                &[],
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let head = api.store.environment(&env).await.unwrap().version;

        for (reply, needle) in [
            (&guarded, "version"),
            (&doomed, "not found"),
            (&typed, "default_value"),
        ] {
            let id = reply.body["id"].as_str().unwrap();
            let done = settled(&api, &world, id).await;
            assert_eq!(done["status"], "failed", "{backend}: {done}");
            let reason = done["failure_reason"].as_str().unwrap();
            assert!(reason.contains(needle), "{backend}: {reason}");
            assert!(done["executed_at"].is_string());
            assert_eq!(done["applied_at"], Value::Null);
        }
        // Nothing changed: no new version, the flags as they were.
        assert_eq!(api.store.environment(&env).await.unwrap().version, head);
        assert_eq!(flag(&api, &world, "guarded").await["is_enabled"], false);
        assert_eq!(flag(&api, &world, "typed").await["default_value"], 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_on_one_postgres_database_apply_each_change_once() {
    let name = format!("cg_sched_{}", uuid::Uuid::new_v4().simple());
    let url = common::pg::create_database(&name).await;
    // Two instances' worth of state over one database, each with its scheduler.
    let mut schedulers = Vec::new();
    let first = api_over(&url, |state| {
        schedulers.push(tokio::spawn(checkgate_control::api::scheduler::run(
            state.clone(),
        )));
    })
    .await;
    let second = api_over(&url, |state| {
        schedulers.push(tokio::spawn(checkgate_control::api::scheduler::run(
            state.clone(),
        )));
    })
    .await;
    let world = first.world().await;
    let env = world.envs[0].clone();
    for f in 0..4 {
        create_flag(
            &first,
            &world,
            &format!("f{f}"),
            json!({"is_enabled": false}),
        )
        .await;
    }
    // 40 changes due within a second of each other, scheduled through both.
    let due = now_ms() + 2_000;
    let mut ids = Vec::new();
    for i in 0..40 {
        let api = if i % 2 == 0 { &first } else { &second };
        let reply = schedule(
            api,
            &world,
            &format!("f{}", i % 4),
            json!({"scheduled_at": format_rfc3339(due + i * 25), "patch": {"description": format!("s{i}")}}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        ids.push(reply.body["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let done = settled(&first, &world, id).await;
        assert_eq!(done["status"], "applied", "{done}");
    }
    let entries = first
        .store
        .audit(&AuditFilter {
            environment_id: Some(env.clone()),
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let applied: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "flag.schedule_apply")
        .collect();
    assert_eq!(applied.len(), 40, "one audit row per change");
    for i in 0..40 {
        let tag = format!("\"s{i}\"");
        let n = applied
            .iter()
            .filter(|e| e.after.as_deref().unwrap_or_default().contains(&tag))
            .count();
        assert_eq!(n, 1, "change {i}");
    }
    // Each flag's changes applied in due order: its last change is its latest due.
    for f in 0..4 {
        let last = (0..40).filter(|i| i % 4 == f).max().unwrap();
        assert_eq!(
            flag(&first, &world, &format!("f{f}")).await["description"],
            format!("s{last}")
        );
    }
    for task in schedulers {
        task.abort();
    }
    first.store.close().await;
    second.store.close().await;
    common::pg::drop_database(&name).await.unwrap();
}

//! The audit log through the HTTP API: every mutation is there with its actor, before and
//! after; filters, cursor pagination, and visibility limited to the reader's projects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use checkgate_control::store::{Actor, Role};
use common::{World, api, assert_error};
use serde_json::json;

#[tokio::test]
async fn the_audit_log_filters_pages_and_shows_only_visible_projects() {
    let api = api().await;
    let World {
        admin,
        project,
        envs,
    } = api.world().await;
    let env = &envs[0];
    let flags = format!("/api/environments/{env}/flags");
    for rollout in [10, 20, 30] {
        api.call(
            "POST",
            &flags,
            Some(json!({"key": "f", "is_enabled": true, "rollout_percentage": rollout})),
            Some(&admin),
            &[],
        )
        .await;
    }
    let other_id = api.new_project(&admin, "Other").await.id;

    let all = api.get("/api/audit", Some(&admin)).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let actions: Vec<_> = all.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "project.create",
            "flag.update",
            "flag.update",
            "flag.create",
            "auth.login",
            "project.create",
            "setup.complete"
        ]
    );
    let last_update = &all.body["entries"][1];
    assert_eq!(last_update["actor"]["name"], "admin@example.com");
    assert_eq!(
        (
            last_update["before"]["rollout_percentage"].as_u64(),
            last_update["after"]["rollout_percentage"].as_u64()
        ),
        (Some(20), Some(30))
    );

    let by_env = api
        .get(
            &format!("/api/audit?environment_id={env}&limit=2"),
            Some(&admin),
        )
        .await;
    let page: Vec<_> = by_env.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(page.len(), 2);
    let cursor = by_env.body["next_cursor"].as_i64().unwrap();
    let next = api
        .get(
            &format!("/api/audit?environment_id={env}&limit=2&cursor={cursor}"),
            Some(&admin),
        )
        .await;
    assert_eq!(next.body["entries"].as_array().unwrap().len(), 1);
    assert!(next.body["next_cursor"].is_null());
    assert_eq!(
        api.get("/api/audit?since=2999-01-01T00:00:00Z", Some(&admin))
            .await
            .body["entries"],
        json!([])
    );
    assert_eq!(
        api.get(&format!("/api/audit?project_id={other_id}"), Some(&admin))
            .await
            .body["entries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    for bad in [
        "limit=0",
        "limit=9999",
        "since=yesterday",
        "cursor=abc",
        "actor_id=me",
        "colour=red",
    ] {
        assert_error(
            &api.get(&format!("/api/audit?{bad}"), Some(&admin)).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }

    // Checkgate's per-environment shape.
    let checkgate = api
        .get(
            &format!("/api/environments/{env}/audit?limit=10&flag_key=f"),
            Some(&admin),
        )
        .await;
    let rows = checkgate.body.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        (rows[0]["action"].as_str(), rows[2]["action"].as_str()),
        (Some("UPDATE"), Some("CREATE"))
    );
    assert_eq!(rows[0]["actor_email"], "admin@example.com");
    assert_eq!(rows[2]["before_data"], json!(null));

    // A member sees their project's rows only; an outsider none.
    let (viewer_id, viewer) = api.user_session("viewer@example.com").await;
    api.store
        .set_member(&Actor::system(), &project, &viewer_id, Role::Viewer)
        .await
        .unwrap();
    let seen = api.get("/api/audit", Some(&viewer)).await;
    assert!(
        seen.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["project_id"] == project.as_str()),
        "{}",
        seen.body
    );
    assert!(!seen.body["entries"].as_array().unwrap().is_empty());
    assert_error(
        &api.get(&format!("/api/audit?project_id={other_id}"), Some(&viewer))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (_, outsider) = api.user_session("outsider@example.com").await;
    assert_eq!(
        api.get("/api/audit", Some(&outsider)).await.body["entries"],
        json!([])
    );
}

//! Read your writes, the API's half: every write that commits a change to an environment
//! answers with the environment version it committed (`X-Checkgate-Version`), equal to the
//! body's version where the body carries one and to the environment's head just after; writes
//! that commit nothing (refused, or not served by edges) carry no such header.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{Api, Reply, World, api};
use serde_json::json;

/// The environment's version in the store.
async fn head(api: &Api, env: &str) -> u64 {
    api.store.environment(env).await.unwrap().version
}

/// Checks that `reply` is `status` and committed the next version of `env` after `before`,
/// which is now the environment's head; returns it.
async fn committed(api: &Api, reply: &Reply, status: StatusCode, env: &str, before: u64) -> u64 {
    assert_eq!(reply.status, status, "{}", reply.body);
    let version = reply
        .committed()
        .unwrap_or_else(|| panic!("no X-Checkgate-Version: {}", reply.body));
    assert_eq!(version, before + 1, "{}", reply.body);
    assert_eq!(version, head(api, env).await);
    version
}

#[tokio::test]
async fn every_write_that_changes_an_environment_answers_the_version_it_committed() {
    let api = api().await;
    let World {
        admin,
        project,
        envs,
    } = api.world().await;
    let env = envs[0].as_str();
    let write = |method: &'static str, path: String, body: Option<serde_json::Value>| {
        let admin = admin.clone();
        let api = &api;
        async move { api.call(method, &path, body, Some(&admin), &[]).await }
    };
    let flags = format!("/api/environments/{env}/flags");
    let segments = format!("/api/environments/{env}/segments");

    let v = head(&api, env).await;
    let created = write(
        "POST",
        flags.clone(),
        Some(json!({"key": "a", "is_enabled": true})),
    )
    .await;
    let v = committed(&api, &created, StatusCode::CREATED, env, v).await;
    assert_eq!(created.body["version"], v);

    let replaced = write(
        "POST",
        flags.clone(),
        Some(json!({"key": "a", "is_enabled": false})),
    )
    .await;
    let v = committed(&api, &replaced, StatusCode::OK, env, v).await;
    assert_eq!(replaced.body["version"], v);

    let patched = write(
        "PATCH",
        format!("{flags}/a"),
        Some(json!({"is_enabled": true})),
    )
    .await;
    let v = committed(&api, &patched, StatusCode::OK, env, v).await;
    assert_eq!(patched.body["version"], v);

    let target = envs[1].as_str();
    let before = head(&api, target).await;
    let promoted = write(
        "POST",
        format!("{flags}/a/promote"),
        Some(json!({"target_env_id": target})),
    )
    .await;
    let promoted_at = committed(&api, &promoted, StatusCode::OK, target, before).await;
    assert_eq!(promoted.body["version"], promoted_at);

    let segment = write(
        "POST",
        segments.clone(),
        Some(json!({"key": "s", "name": "S"})),
    )
    .await;
    let v = committed(&api, &segment, StatusCode::CREATED, env, v).await;
    assert_eq!(segment.body["version"], v);
    let segment = write("PATCH", format!("{segments}/s"), Some(json!({"name": "T"}))).await;
    let v = committed(&api, &segment, StatusCode::OK, env, v).await;
    assert_eq!(segment.body["version"], v);
    let gone = write("DELETE", format!("{segments}/s"), None).await;
    let v = committed(&api, &gone, StatusCode::NO_CONTENT, env, v).await;
    let gone = write("DELETE", format!("{flags}/a"), None).await;
    let v = committed(&api, &gone, StatusCode::NO_CONTENT, env, v).await;

    let keys = format!("/api/projects/{project}/keys");
    let key = write(
        "POST",
        keys.clone(),
        Some(json!({"name": "k", "environment_id": env})),
    )
    .await;
    let v = committed(&api, &key, StatusCode::CREATED, env, v).await;
    assert_eq!(key.body["environment_version"], v);
    let id = key.body["id"].as_str().unwrap();
    let revoked = write("DELETE", format!("{keys}/{id}"), None).await;
    let v = committed(&api, &revoked, StatusCode::NO_CONTENT, env, v).await;

    let environment = format!("/api/projects/{project}/environments/{env}");
    let allowed = write(
        "PATCH",
        environment.clone(),
        Some(json!({"client_keys_read_rules": true})),
    )
    .await;
    let v = committed(&api, &allowed, StatusCode::OK, env, v).await;
    assert_eq!(allowed.body["version"], v);

    let last = envs[2].as_str();
    let before = head(&api, last).await;
    let deleted = write(
        "DELETE",
        format!("/api/projects/{project}/environments/{last}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert_eq!(
        deleted.committed(),
        Some(before + 1),
        "the environment's last version"
    );
}

#[tokio::test]
async fn writes_that_commit_no_version_carry_none() {
    let api = api().await;
    let World {
        admin,
        project,
        envs,
    } = api.world().await;
    let env = envs[0].as_str();
    let flags = format!("/api/environments/{env}/flags");
    let call = |method: &'static str, path: String, body: Option<serde_json::Value>| {
        let admin = admin.clone();
        let api = &api;
        async move { api.call(method, &path, body, Some(&admin), &[]).await }
    };
    let made = call(
        "POST",
        flags.clone(),
        Some(json!({"key": "a", "is_enabled": true})),
    )
    .await;
    let v = made.committed().unwrap();
    let refused = [
        // Does not compile.
        call(
            "POST",
            flags.clone(),
            Some(json!({"key": "b", "rollout_percentage": 101})),
        )
        .await,
        // Stale.
        api.call(
            "PATCH",
            &format!("{flags}/a"),
            Some(json!({"is_enabled": false})),
            Some(&admin),
            &[("if-match", "\"99\"")],
        )
        .await,
        call("DELETE", format!("{flags}/missing"), None).await,
    ];
    for reply in &refused {
        assert!(reply.status.is_client_error(), "{}", reply.body);
        assert_eq!(reply.committed(), None, "{}", reply.body);
    }
    // A rename is not served by edges: no version is taken.
    let renamed = call(
        "PATCH",
        format!("/api/projects/{project}/environments/{env}"),
        Some(json!({"name": "Dev"})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.committed(), None);
    assert_eq!(head(&api, env).await, v, "nothing was committed");
}

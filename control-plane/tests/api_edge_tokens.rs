//! Edge tokens through the HTTP API: workspace admins create them (for every environment or a
//! listed few), see them only by prefix afterwards, and revoke them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use checkgate_control::store::key_hash;
use common::{World, api, assert_error};
use serde_json::json;

#[tokio::test]
async fn edge_tokens_are_shown_once_scoped_and_revocable() {
    let api = api().await;
    let World { admin, envs, .. } = api.world().await;
    let all = api
        .call(
            "POST",
            "/api/edge-tokens",
            Some(json!({"name": "eu-west"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(all.status, StatusCode::CREATED, "{}", all.body);
    let secret = all.body["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("cge_") && secret.len() == 68, "{secret}");
    assert!(all.body["environments"].is_null());

    let some = api
        .call(
            "POST",
            "/api/edge-tokens",
            Some(json!({"name": "prod only", "environments": [envs[2], envs[2]]})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(some.status, StatusCode::CREATED, "{}", some.body);
    assert_eq!(some.body["environments"], json!([envs[2]]), "deduplicated");

    let found = api
        .store
        .authenticate_edge_token(&key_hash(&secret))
        .await
        .unwrap()
        .expect("the store knows it by its hash");
    assert!(found.grants(&envs[0]) && found.grants("anything"));
    let scoped = api
        .store
        .authenticate_edge_token(&key_hash(some.body["token"].as_str().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert!(scoped.grants(&envs[2]) && !scoped.grants(&envs[0]));

    let listed = api.get("/api/edge-tokens", Some(&admin)).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);
    assert!(
        !listed.body.to_string().contains(&secret),
        "a list never shows a token"
    );

    for (body, status, code) in [
        (json!({"name": ""}), StatusCode::BAD_REQUEST, "bad_request"),
        (
            json!({"name": "x", "environments": []}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"name": "x", "environments": ["nope"]}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"name": "x", "environments": [uuid::Uuid::new_v4().to_string()]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"name": "x", "scope": "all"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ] {
        let reply = api
            .call(
                "POST",
                "/api/edge-tokens",
                Some(body.clone()),
                Some(&admin),
                &[],
            )
            .await;
        assert_error(&reply, status, code);
    }

    let id = all.body["id"].as_str().unwrap();
    let gone = api
        .call(
            "DELETE",
            &format!("/api/edge-tokens/{id}"),
            None,
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert!(
        api.store
            .authenticate_edge_token(&key_hash(&secret))
            .await
            .unwrap()
            .is_none()
    );
    assert!(!api.store.edge_token_live(id).await.unwrap());
    assert_error(
        &api.call(
            "DELETE",
            &format!("/api/edge-tokens/{id}"),
            None,
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let audit = api
        .get("/api/audit?target_kind=edge_token", Some(&admin))
        .await;
    let actions: Vec<&str> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "edge_token.revoke",
            "edge_token.create",
            "edge_token.create"
        ]
    );
}

#[tokio::test]
async fn the_fleet_lists_each_edge_once_by_its_newest_session_and_only_to_admins() {
    let api = api().await;
    let World { admin, envs, .. } = api.world().await;
    let token = api
        .call(
            "POST",
            "/api/edge-tokens",
            Some(json!({"name": "eu"})),
            Some(&admin),
            &[],
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // An edge whose control-plane instance died with its session open, then reconnected
    // elsewhere; and a second edge that left.
    let positions = std::collections::BTreeMap::from([(envs[0].clone(), 0u64)]);
    let ghost = api
        .store
        .open_edge_session(&token, "eu-1", "eu-west-1", "10.0.0.1:1")
        .await
        .unwrap();
    // Times are in milliseconds: let the reconnection be a later one.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let live = api
        .store
        .open_edge_session(&token, "eu-1", "eu-west-1", "10.0.0.1:2")
        .await
        .unwrap();
    api.store
        .touch_edge_session(&live, &token, &positions)
        .await
        .unwrap();
    let gone = api
        .store
        .open_edge_session(&token, "eu-2", "", "10.0.0.2:1")
        .await
        .unwrap();
    api.store
        .close_edge_session(&gone, &token, Some(&positions))
        .await
        .unwrap();

    let fleet = api.get("/api/edges", Some(&admin)).await;
    assert_eq!(fleet.status, StatusCode::OK, "{}", fleet.body);
    let edges = fleet.body["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2, "{}", fleet.body);
    let eu1 = edges.iter().find(|e| e["name"] == "eu-1").unwrap();
    assert_eq!(eu1["id"], live.as_str(), "the newest session, not {ghost}");
    assert_eq!(eu1["state"], "connected");
    assert_eq!(eu1["region"], "eu-west-1");
    assert_eq!(eu1["environments"][0]["lag"], 0);
    let eu2 = edges.iter().find(|e| e["name"] == "eu-2").unwrap();
    assert_eq!(
        (&eu2["state"], &eu2["region"]),
        (&json!("disconnected"), &json!(null))
    );

    // Another token's edge can neither move nor end a session that is not its own; closing
    // without positions keeps the last ones recorded.
    let moved = std::collections::BTreeMap::from([(envs[0].clone(), 7u64)]);
    api.store
        .touch_edge_session(&live, "another-token", &moved)
        .await
        .unwrap();
    api.store
        .close_edge_session(&live, "another-token", Some(&moved))
        .await
        .unwrap();
    let third = api
        .store
        .open_edge_session(&token, "eu-3", "", "10.0.0.3:1")
        .await
        .unwrap();
    api.store
        .touch_edge_session(&third, &token, &moved)
        .await
        .unwrap();
    api.store
        .close_edge_session(&third, &token, None)
        .await
        .unwrap();
    let fleet = api.get("/api/edges", Some(&admin)).await;
    let eu1 = fleet.body["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "eu-1")
        .unwrap()
        .clone();
    assert_eq!(eu1["id"], live.as_str(), "{}", fleet.body);
    assert_eq!(
        (&eu1["state"], &eu1["environments"][0]["position"]),
        (&json!("connected"), &json!(0)),
        "{}",
        fleet.body
    );
    let third = api
        .store
        .edge_sessions(0, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == third)
        .unwrap();
    assert!(third.closed_at.is_some());
    assert_eq!(
        third.positions, moved,
        "closing without positions keeps them"
    );

    // A member who is not a workspace admin sees nothing of it.
    let (_, member) = api.user_session("member@example.com").await;
    assert_error(
        &api.get("/api/edges", Some(&member)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &api.get("/api/edges", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

//! Workspace users and project members through the HTTP API: admins manage users, project admins
//! manage members, roles take effect at once, and the last admin cannot be removed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{api, assert_error, session_of};
use serde_json::json;

#[tokio::test]
async fn admins_manage_users_and_members_and_roles_apply_at_once() {
    let api = api().await;
    let admin = api.admin_session().await;
    let project = api.get("/api/projects", Some(&admin)).await.body[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let envs = api
        .get(
            &format!("/api/projects/{project}/environments"),
            Some(&admin),
        )
        .await;
    let flags = format!(
        "/api/environments/{}/flags",
        envs.body[0]["id"].as_str().unwrap()
    );

    let created = api
        .call(
            "POST",
            "/api/users",
            Some(json!({"name": "Dev", "email": "dev@example.com", "password": "password-123"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let dev_id = created.body["id"].as_str().unwrap().to_owned();
    assert!(
        !created.body.to_string().contains("password"),
        "no password or hash in the answer"
    );
    assert_error(
        &api.call(
            "POST",
            "/api/users",
            Some(json!({"name": "Dup", "email": "dev@example.com", "password": "password-123"})),
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_error(
        &api.call(
            "POST",
            "/api/users",
            Some(json!({"name": "Short", "email": "s@example.com", "password": "x"})),
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_eq!(
        api.get("/api/users", Some(&admin))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let dev = session_of(
        &api.post(
            "/api/auth/login",
            json!({"email": "dev@example.com", "password": "password-123"}),
            None,
        )
        .await,
    );
    assert_error(
        &api.get("/api/users", Some(&dev)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &api.get(&flags, Some(&dev)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let members = format!("/api/projects/{project}/members");
    let added = api
        .call(
            "POST",
            &members,
            Some(json!({"user_id": dev_id, "role": "viewer"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_error(
        &api.call(
            "POST",
            &members,
            Some(json!({"user_id": dev_id, "role": "editor"})),
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_error(
        &api.call(
            "POST",
            &members,
            Some(json!({"user_id": dev_id, "role": "owner"})),
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_eq!(api.get(&flags, Some(&dev)).await.status, StatusCode::OK);
    let flag = json!({"key": "f", "is_enabled": true});
    assert_error(
        &api.call("POST", &flags, Some(flag.clone()), Some(&dev), &[])
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &api.call(
            "POST",
            &members,
            Some(json!({"user_id": dev_id, "role": "admin"})),
            Some(&dev),
            &[],
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    let promoted = api
        .call(
            "PATCH",
            &format!("{members}/{dev_id}"),
            Some(json!({"role": "editor"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    assert_eq!(
        api.call("POST", &flags, Some(flag), Some(&dev), &[])
            .await
            .status,
        StatusCode::CREATED,
        "the new role applies at once"
    );
    let listed = api.get(&members, Some(&dev)).await;
    assert_eq!(
        listed.body,
        json!([{"user_id": dev_id, "email": "dev@example.com", "name": "Dev", "role": "editor"}])
    );

    assert_eq!(
        api.call(
            "DELETE",
            &format!("{members}/{dev_id}"),
            None,
            Some(&admin),
            &[]
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &api.get(&flags, Some(&dev)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let me = api.get("/api/auth/me", Some(&admin)).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_error(
        &api.call(
            "DELETE",
            &format!("/api/users/{me}"),
            None,
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/api/users/{dev_id}"),
            None,
            Some(&admin),
            &[]
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &api.get("/api/auth/me", Some(&dev)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &api.call(
            "DELETE",
            &format!("/api/users/{dev_id}"),
            None,
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

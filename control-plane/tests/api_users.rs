//! Workspace users and project members through the HTTP API: admins manage users, project admins
//! manage members, roles take effect at once, and the last admin cannot be removed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{World, api, assert_error, session_of};
use serde_json::json;

#[tokio::test]
async fn admins_manage_users_and_members_and_roles_apply_at_once() {
    let api = api().await;
    let World {
        admin,
        project,
        envs,
    } = api.world().await;
    let flags = format!("/api/environments/{}/flags", envs[0]);

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

#[tokio::test]
async fn a_user_can_be_created_as_a_workspace_admin_in_one_call() {
    let api = api().await;
    let admin = api.admin_session().await;
    let body = |email: &str, role: serde_json::Value| json!({"name": "Ada", "email": email, "password": "password-123", "role": role});
    let made = api
        .call(
            "POST",
            "/api/users",
            Some(body("ada@example.com", json!("admin"))),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(made.body["role"], "admin");
    let member = api
        .call(
            "POST",
            "/api/users",
            Some(body("bo@example.com", json!(null))),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(member.body["role"], "member", "{}", member.body);
    assert_error(
        &api.call(
            "POST",
            "/api/users",
            Some(body("cy@example.com", json!("owner"))),
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    let listed = api.get("/api/users", Some(&admin)).await;
    let roles: Vec<_> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["email"].clone(), u["role"].clone()))
        .collect();
    assert!(
        roles.contains(&(json!("ada@example.com"), json!("admin"))),
        "{roles:?}"
    );
    assert!(
        !roles.iter().any(|(e, _)| e == "cy@example.com"),
        "a refused user was not created"
    );
}

#[tokio::test]
async fn emails_that_differ_only_in_case_are_one_email() {
    let api = api().await;
    let admin = api.admin_session().await;
    for email in [
        "Admin@Example.com",
        "ADMIN@EXAMPLE.COM",
        " admin@example.COM ",
    ] {
        let reply = api
            .call(
                "POST",
                "/api/users",
                Some(json!({"name": "Twin", "email": email, "password": "password-123"})),
                Some(&admin),
                &[],
            )
            .await;
        assert_error(&reply, StatusCode::CONFLICT, "conflict");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("already exists"),
            "{}",
            reply.body
        );
    }
    let created = api
        .call(
            "POST",
            "/api/users",
            Some(json!({"name": "Dev", "email": "Dev@Example.com", "password": "password-123"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_error(
        &api.call(
            "POST",
            "/api/users",
            Some(json!({"name": "Dev", "email": "dev@example.com", "password": "password-123"})),
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    // The one account signs in whatever the case typed.
    let login = api
        .post(
            "/api/auth/login",
            json!({"email": "DEV@example.com", "password": "password-123"}),
            None,
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["id"], created.body["id"]);
    assert_eq!(
        api.get("/api/users", Some(&admin))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

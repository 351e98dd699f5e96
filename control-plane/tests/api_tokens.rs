//! API tokens, password changes and workspace-user updates through the HTTP API: a token acts
//! in its one project with its one role, is shown once, stops at once when revoked, and can
//! neither mint tokens nor act as a person; a password change ends every other session.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{World, api, assert_error};
use serde_json::{Value, json};

#[tokio::test]
async fn a_token_is_shown_once_and_acts_with_its_role_in_its_project_only() {
    let api = api().await;
    let World {
        admin,
        project,
        envs,
    } = api.world().await;
    let flags = format!("/api/environments/{}/flags", envs[0]);
    let (viewer, body) = api.api_token(&admin, &project, "viewer").await;
    assert!(viewer.starts_with("cgt_") && viewer.len() == 68, "{viewer}");
    assert_eq!(body["role"], "viewer");
    assert_eq!(body["last_used_at"], Value::Null);

    let listed = api
        .get(&format!("/api/projects/{project}/tokens"), Some(&admin))
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(
        !listed.body.to_string().contains(&viewer),
        "a list never shows a token"
    );
    assert!(listed.body[0].get("token").is_none());

    // A viewer token reads, without a CSRF header, and cannot write.
    assert_eq!(
        api.bearer("GET", &flags, None, &viewer).await.status,
        StatusCode::OK
    );
    let flag = json!({"key": "checkout", "is_enabled": true});
    assert_error(
        &api.bearer("POST", &flags, Some(flag.clone()), &viewer)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    // An editor token writes, and the audit log names the token.
    let (editor, _) = api.api_token(&admin, &project, "editor").await;
    let written = api.bearer("POST", &flags, Some(flag), &editor).await;
    assert_eq!(written.status, StatusCode::CREATED, "{}", written.body);
    let audit = api
        .get(
            &format!("/api/audit?project_id={project}&target_kind=flag"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        audit.body["entries"][0]["actor"]["kind"], "api_token",
        "{}",
        audit.body
    );
    assert_eq!(audit.body["entries"][0]["actor"]["name"], "ci-editor");

    // Another project does not exist for it; nor do workspace routes or person routes.
    let other = api.new_project(&admin, "Other").await;
    let (other_id, other_env) = (&other.id, &other.envs[0]);
    assert_error(
        &api.bearer("GET", &format!("/api/projects/{other_id}"), None, &editor)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.bearer(
            "GET",
            &format!("/api/environments/{other_env}/flags"),
            None,
            &editor,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let projects = api.bearer("GET", "/api/projects", None, &editor).await;
    assert_eq!(projects.body.as_array().unwrap().len(), 1);
    assert_eq!(projects.body[0]["id"], project.as_str());
    for (method, path) in [
        ("GET", "/api/users".to_owned()),
        ("GET", "/api/auth/me".to_owned()),
        ("GET", format!("/api/projects/{project}/tokens")),
    ] {
        assert_error(
            &api.bearer(method, &path, None, &editor).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    // Even an admin token cannot mint a token or create a project.
    let (admin_token, _) = api.api_token(&admin, &project, "admin").await;
    assert_error(
        &api.bearer(
            "POST",
            &format!("/api/projects/{project}/tokens"),
            Some(json!({"name": "more", "role": "admin"})),
            &admin_token,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &api.bearer(
            "POST",
            "/api/projects",
            Some(json!({"name": "X"})),
            &admin_token,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    // …but it administers its project.
    let renamed = api
        .bearer(
            "PATCH",
            &format!("/api/projects/{project}"),
            Some(json!({"name": "Web 2"})),
            &admin_token,
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);

    let listed = api
        .get(&format!("/api/projects/{project}/tokens"), Some(&admin))
        .await;
    let used = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci-editor")
        .unwrap();
    assert!(used["last_used_at"].is_string(), "{used}");
}

#[tokio::test]
async fn a_revoked_token_stops_at_once_and_bad_bearers_get_401() {
    let api = api().await;
    let World {
        admin,
        project,
        envs,
    } = api.world().await;
    let flags = format!("/api/environments/{}/flags", envs[0]);
    let (secret, body) = api.api_token(&admin, &project, "editor").await;
    assert_eq!(
        api.bearer("GET", &flags, None, &secret).await.status,
        StatusCode::OK
    );
    let id = body["id"].as_str().unwrap();
    let revoked = api
        .call(
            "DELETE",
            &format!("/api/projects/{project}/tokens/{id}"),
            None,
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    assert_error(
        &api.bearer("GET", &flags, None, &secret).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &api.call(
            "DELETE",
            &format!("/api/projects/{project}/tokens/{id}"),
            None,
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.call(
            "DELETE",
            &format!("/api/projects/{project}/tokens/nope"),
            None,
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    for junk in ["cgt_0000", "cg_srv_abc", "anything", ""] {
        let reply = api.bearer("GET", &flags, None, junk).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // Bad bodies.
    for body in [
        json!({"name": "", "role": "viewer"}),
        json!({"name": "x", "role": "owner"}),
    ] {
        assert_error(
            &api.call(
                "POST",
                &format!("/api/projects/{project}/tokens"),
                Some(body),
                Some(&admin),
                &[],
            )
            .await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }
    // A project editor (a person) cannot manage tokens.
    let (user_id, editor) = api.user_session("ed@example.com").await;
    api.call(
        "POST",
        &format!("/api/projects/{project}/members"),
        Some(json!({"user_id": user_id, "role": "editor"})),
        Some(&admin),
        &[],
    )
    .await;
    assert_error(
        &api.get(&format!("/api/projects/{project}/tokens"), Some(&editor))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
}

#[tokio::test]
async fn changing_a_password_ends_every_other_session_and_rotates_its_own() {
    let api = api().await;
    let (_, here) = api.user_session("me@example.com").await;
    let (_, elsewhere) = {
        let login = api
            .post(
                "/api/auth/login",
                json!({"email": "me@example.com", "password": "password-123"}),
                None,
            )
            .await;
        ((), common::session_of(&login))
    };
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    assert_error(
        &api.post(
            "/api/auth/password",
            change("wrong-password", "new-password-1"),
            Some(&here),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    assert_error(
        &api.post(
            "/api/auth/password",
            change("password-123", "short"),
            Some(&here),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_eq!(
        api.get("/api/auth/me", Some(&elsewhere)).await.status,
        StatusCode::OK,
        "refused changes end nothing"
    );
    let done = api
        .post(
            "/api/auth/password",
            change("password-123", "new-password-1"),
            Some(&here),
        )
        .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    // The session that asked goes on under a new token; every other one has ended.
    let rotated = common::session_of(&done);
    assert_eq!(
        api.get("/api/auth/me", Some(&rotated)).await.status,
        StatusCode::OK
    );
    for old in [&here, &elsewhere] {
        assert_error(
            &api.get("/api/auth/me", Some(old)).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    let login = |password: &str| json!({"email": "me@example.com", "password": password});
    assert_eq!(
        api.post("/api/auth/login", login("password-123"), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.post("/api/auth/login", login("new-password-1"), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_error(
        &api.post("/api/auth/password", change("x", "new-password-2"), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn admins_rename_promote_and_demote_users_but_keep_one_admin() {
    let api = api().await;
    let admin = api.admin_session().await;
    let (id, member) = api.user_session("bob@example.com").await;
    let user = format!("/api/users/{id}");
    assert_error(
        &api.call(
            "PATCH",
            &user,
            Some(json!({"name": "Robert"})),
            Some(&member),
            &[],
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let renamed = api
        .call(
            "PATCH",
            &user,
            Some(json!({"name": "Robert", "role": "admin"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(
        (renamed.body["name"].as_str(), renamed.body["role"].as_str()),
        (Some("Robert"), Some("admin"))
    );
    // The promotion applies to the user's next request, on the session they already have.
    assert_eq!(
        api.get("/api/users", Some(&member)).await.status,
        StatusCode::OK
    );

    let me = api.get("/api/auth/me", Some(&admin)).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let demoted = api
        .call(
            "PATCH",
            &format!("/api/users/{me}"),
            Some(json!({"role": "member"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.body);
    assert_error(
        &api.get("/api/users", Some(&admin)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    // Robert is now the only admin and cannot be demoted.
    assert_error(
        &api.call(
            "PATCH",
            &user,
            Some(json!({"role": "member"})),
            Some(&member),
            &[],
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    for body in [
        json!({"role": "owner"}),
        json!({"name": ""}),
        json!({"nickname": "x"}),
    ] {
        let reply = api
            .call("PATCH", &user, Some(body.clone()), Some(&member), &[])
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.body
        );
    }
    assert_error(
        &api.call(
            "PATCH",
            &format!("/api/users/{}", uuid::Uuid::new_v4()),
            Some(json!({"name": "x"})),
            Some(&member),
            &[],
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

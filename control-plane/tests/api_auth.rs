//! First-run setup, login, logout and sessions through the HTTP API (in-process, over a fresh
//! embedded store): Checkgate's routes and shapes, server-side sessions, the CSRF defence, and
//! a JSON 4xx for every malformed request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use checkgate_control::store::Actor;
use common::{api, assert_error, session_of, setup_body};
use serde_json::json;
use tower::ServiceExt;

#[tokio::test]
async fn setup_signs_in_the_admin_once_and_creates_the_first_project() {
    let api = api().await;
    assert_eq!(
        api.get("/api/auth/workspace", None).await.body["is_setup_complete"],
        false
    );

    let done = api.post("/api/setup/complete", setup_body(), None).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["role"], "admin");
    assert_eq!(done.body["workspace_name"], "Acme");
    let cookie = done.cookie.clone().unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let again = api.post("/api/setup/complete", setup_body(), None).await;
    assert_error(&again, StatusCode::NOT_FOUND, "not_found");

    let projects = api.store.list_projects().await.unwrap();
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0].name, "Web");
    assert_eq!(
        api.store.environments(&projects[0].id).await.unwrap().len(),
        3
    );

    let me = api.get("/api/auth/me", Some(&session_of(&done))).await;
    assert_eq!(
        (me.status, me.body["email"].as_str()),
        (StatusCode::OK, Some("admin@example.com"))
    );
}

#[tokio::test]
async fn two_concurrent_setups_make_one_admin() {
    let api = api().await;
    let (a, b) = tokio::join!(
        api.post("/api/setup/complete", setup_body(), None),
        api.post("/api/setup/complete", setup_body(), None)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::NOT_FOUND]);
    assert_eq!(api.store.list_projects().await.unwrap().len(), 1);
}

#[tokio::test]
async fn writes_without_the_csrf_header_or_from_another_origin_are_refused() {
    let api = api().await;
    let bare = Request::post("/api/setup/complete")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(setup_body().to_string()))
        .unwrap();
    assert_error(&api.send(bare).await, StatusCode::FORBIDDEN, "forbidden");
    let cross = Request::post("/api/setup/complete")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-checkgate-request", "1")
        .header(header::HOST, "flags.example.com")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from(setup_body().to_string()))
        .unwrap();
    assert_error(&api.send(cross).await, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        !api.store.setup_complete().await.unwrap(),
        "a refused write changed nothing"
    );
}

#[tokio::test]
async fn malformed_requests_get_the_right_4xx_as_json() {
    let api = api().await;
    let raw = |body: &'static str, content_type: &'static str| {
        Request::post("/api/setup/complete")
            .header(header::CONTENT_TYPE, content_type)
            .header("x-checkgate-request", "1")
            .body(Body::from(body))
            .unwrap()
    };
    assert_error(
        &api.send(raw("{not json", "application/json")).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &api.send(raw(r#"{"email": 5}"#, "application/json")).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &api.send(raw("{}", "text/plain")).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let huge = Request::post("/api/setup/complete")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-checkgate-request", "1")
        .body(Body::from(format!(
            r#"{{"workspace_name":"{}"}}"#,
            "x".repeat(2 << 20)
        )))
        .unwrap();
    assert_error(
        &api.send(huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    for (field, value) in [
        ("password", json!("short")),
        ("email", json!("not-an-email")),
        ("name", json!("  ")),
        ("workspace_name", json!("x".repeat(101))),
        ("project_name", json!("日本")),
    ] {
        let mut body = setup_body();
        body[field] = value;
        assert_error(
            &api.post("/api/setup/complete", body, None).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }
    let mut extra = setup_body();
    extra["role"] = json!("admin");
    assert_error(
        &api.post("/api/setup/complete", extra, None).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert!(!api.store.setup_complete().await.unwrap());
    assert_error(
        &api.get("/api/nothing", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let wrong_method = api.call("PUT", "/api/projects", None, None, &[]).await;
    assert_error(
        &wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );

    // Path segments that are not UTF-8 are refused as JSON, before any lookup.
    let admin = session_of(&api.post("/api/setup/complete", setup_body(), None).await);
    for path in [
        "/api/projects/%FF",
        "/api/environments/%FF%FE/flags",
        "/api/environments/x/flags/%C3%28",
    ] {
        assert_error(
            &api.get(path, Some(&admin)).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }
}

#[tokio::test]
async fn login_logout_and_deletion_end_sessions_server_side() {
    let api = api().await;
    let setup = api.post("/api/setup/complete", setup_body(), None).await;
    let first = session_of(&setup);

    let wrong = api
        .post(
            "/api/auth/login",
            json!({"email": "admin@example.com", "password": "wrong-password"}),
            None,
        )
        .await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let unknown = api
        .post(
            "/api/auth/login",
            json!({"email": "nobody@example.com", "password": "supersecret1"}),
            None,
        )
        .await;
    assert_error(&unknown, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(
        wrong.body, unknown.body,
        "the answer does not reveal which emails exist"
    );

    let login = api
        .post(
            "/api/auth/login",
            json!({"email": "ADMIN@example.com", "password": "supersecret1"}),
            None,
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let second = session_of(&login);
    assert_ne!(first, second);

    let out = api.post("/api/auth/logout", json!({}), Some(&second)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.cookie.unwrap().contains("Max-Age=0"));
    assert_error(
        &api.get("/api/auth/me", Some(&second)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(
        api.get("/api/auth/me", Some(&first)).await.status,
        StatusCode::OK,
        "other sessions live on"
    );

    let id = api.get("/api/auth/me", Some(&first)).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The last workspace admin cannot be deleted: make another one first.
    let other = api
        .store
        .create_user(&Actor::system(), "second@example.com", "Second", "x", false)
        .await
        .unwrap();
    api.store
        .update_user(&Actor::system(), &other.id, None, Some(true))
        .await
        .unwrap();
    api.store.delete_user(&Actor::system(), &id).await.unwrap();
    assert_error(
        &api.get("/api/auth/me", Some(&first)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &api.get("/api/auth/me", Some("cg_session=forged")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &api.get("/api/auth/me", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn a_junk_bearer_header_does_not_let_a_write_ride_on_the_session_cookie() {
    let api = api().await;
    let admin = session_of(&api.post("/api/setup/complete", setup_body(), None).await);
    // No CSRF header, but a bearer string: the CSRF check lets it through, so the cookie must
    // not authenticate it.
    let forged = Request::post("/api/projects")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Bearer anything")
        .header(header::COOKIE, &admin)
        .body(Body::from(json!({"name": "Forged"}).to_string()))
        .unwrap();
    assert_error(
        &api.send(forged).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(api.store.list_projects().await.unwrap().len(), 1);
}

fn login_from(addr: &str, password: &str) -> Request<Body> {
    let mut req = Request::post("/api/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-checkgate-request", "1")
        .header("x-forwarded-for", "192.0.2.200")
        .body(Body::from(
            json!({"email": "admin@example.com", "password": password}).to_string(),
        ))
        .unwrap();
    let peer: std::net::SocketAddr = addr.parse().unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(checkgate_edge::ops::Peer(peer)));
    req
}

#[tokio::test]
async fn guessing_is_throttled_without_locking_the_real_user_out() {
    let api = api().await;
    api.post("/api/setup/complete", setup_body(), None).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            api.send(login_from("203.0.113.9:40000", "wrong-password"))
                .await
                .status,
        );
    }
    assert_eq!(statuses[..5], [StatusCode::UNAUTHORIZED; 5]);
    let throttled = api
        .router
        .clone()
        .oneshot(login_from("203.0.113.9:40001", "supersecret1"))
        .await
        .unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = throttled.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    // Changing X-Forwarded-For does not help (it is not trusted); another address is fine.
    assert_eq!(
        api.send(login_from("203.0.113.9:40002", "supersecret1"))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let owner = api
        .send(login_from("198.51.100.20:50000", "supersecret1"))
        .await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.body);
    assert_error(
        &api.send(login_from("203.0.113.9:40003", "x")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
    );
}

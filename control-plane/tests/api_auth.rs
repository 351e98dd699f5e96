//! First-run setup, login, logout and sessions through the HTTP API (in-process, over a fresh
//! embedded store): Checkgate's routes and shapes, server-side sessions, the CSRF defence, and
//! a JSON 4xx for every malformed request. Sign-in throttling by client address and device
//! cookie is tested against the real binary over loopback sockets, speaking from several
//! 127.0.0.0/8 addresses.

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

    // Sign-ins, a refused one on the account and sign-outs are audited, workspace-wide, with
    // the client's address; never a password, nor an email that names no account.
    let audit = api.get("/api/audit?limit=50", Some(&first)).await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    let entries = audit.body["entries"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("auth."))
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"]["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("auth.logout", "user"),
            ("auth.login", "user"),
            ("auth.login_failed", "anonymous"),
            ("auth.login_failed", "anonymous"),
            ("auth.login", "user"),
        ],
        "newest first: {}",
        audit.body
    );
    // The refused sign-in to the account names it; the one to no account names none.
    let failed: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["action"] == "auth.login_failed")
        .collect();
    let admin_id = api.get("/api/auth/me", Some(&first)).await.body["id"].clone();
    assert_eq!(failed[1]["target"]["key"], admin_id);
    assert_eq!(failed[0]["target"]["key"], "");
    for f in &failed {
        assert_eq!(f["target"]["kind"], "user");
        assert!(f["after"]["address"].is_string(), "{f}");
    }
    let text = audit.body.to_string();
    for never in ["wrong-password", "supersecret1", "nobody@example.com"] {
        assert!(!text.contains(never), "{never} in {text}");
    }

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
async fn changing_the_password_replaces_the_session_and_ends_the_others() {
    let api = api().await;
    let first = session_of(&api.post("/api/setup/complete", setup_body(), None).await);
    let login = api
        .post(
            "/api/auth/login",
            json!({"email": "admin@example.com", "password": "supersecret1"}),
            None,
        )
        .await;
    let other = session_of(&login);

    let wrong = api
        .post(
            "/api/auth/password",
            json!({"current_password": "not-it-at-all", "new_password": "brand-new-secret"}),
            Some(&first),
        )
        .await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(wrong.cookie, None, "a refused change starts no session");
    assert_eq!(
        api.get("/api/auth/me", Some(&first)).await.status,
        StatusCode::OK
    );

    let changed = api
        .post(
            "/api/auth/password",
            json!({"current_password": "supersecret1", "new_password": "brand-new-secret"}),
            Some(&first),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
    let cookie = changed
        .cookie
        .clone()
        .expect("the answer sets a new session cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Path=/",
        "Max-Age=604800",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let rotated = session_of(&changed);
    assert_ne!(rotated, first);
    // The session that asked and every other one are over; the new one works.
    for old in [&first, &other] {
        assert_error(
            &api.get("/api/auth/me", Some(old)).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    let me = api.get("/api/auth/me", Some(&rotated)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["email"], "admin@example.com");
    // The new password signs in; the old one does not.
    for (password, status) in [
        ("supersecret1", StatusCode::UNAUTHORIZED),
        ("brand-new-secret", StatusCode::OK),
    ] {
        let reply = api
            .post(
                "/api/auth/login",
                json!({"email": "admin@example.com", "password": password}),
                None,
            )
            .await;
        assert_eq!(reply.status, status, "{}", reply.body);
    }
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
        .insert(axum::extract::ConnectInfo(checkgate_ops::Peer(peer)));
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

#[tokio::test]
async fn guesses_spread_over_instances_and_sent_in_parallel_are_counted_together() {
    let name = format!("cg_throttle_{}", uuid::Uuid::new_v4().simple());
    let url = common::pg::create_database(&name).await;
    // Two control-plane instances on one PostgreSQL database (one SESSION_SECRET, as a
    // deployment shares it).
    let (a, b) = (
        common::api_over(&url, |_| {}).await,
        common::api_over(&url, |_| {}).await,
    );
    a.post("/api/setup/complete", setup_body(), None).await;
    // Sequential: three wrong guesses at one instance, two at the other, then both refuse.
    for (api, port) in [(&a, 1), (&b, 2), (&a, 3), (&b, 4), (&a, 5)] {
        let from = format!("203.0.113.9:{port}");
        let wrong = api.send(login_from(&from, "wrong-password")).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    }
    for api in [&a, &b] {
        let refused = api.send(login_from("203.0.113.9:6", "supersecret1")).await;
        assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    }
    // Parallel: twenty guesses at once from another address, over both instances; five are
    // checked against the password, the others refused before it.
    let guesses = (0..20).map(|i| {
        let api = if i % 2 == 0 { &a } else { &b };
        api.send(login_from(&format!("198.51.100.30:{i}"), "wrong-password"))
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(guesses)
        .await
        .into_iter()
        .map(|reply| reply.status)
        .collect();
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(checked, 5, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(s)),
        "{statuses:?}"
    );
    // The owner, from an address of their own, still signs in at either.
    let owner = b.send(login_from("192.0.2.77:1", "supersecret1")).await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.body);
    a.store.close().await;
    b.store.close().await;
    common::pg::drop_database(&name).await.unwrap();
}

const BIN: &str = env!("CARGO_BIN_EXE_checkgate-control");

/// The control plane as a process on the embedded store, with `env` added.
fn server(data: &common::cluster::TempDir, env: &[(&str, &str)]) -> checkgate_testkit::Service {
    let mut all = vec![
        ("SESSION_SECRET", "a-session-secret-for-the-throttle-tests"),
        ("COOKIE_SECURE", "false"),
        ("CHECKGATE_DATA_DIR", data.path()),
        ("FEED_ENABLED", "false"),
    ];
    all.extend_from_slice(env);
    checkgate_testkit::Service::start(BIN, &all).unwrap()
}

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

/// `POST /api/auth/login` from `from` with extra headers.
async fn login_as(
    addr: std::net::SocketAddr,
    from: &str,
    email: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> common::Wire {
    common::http_from(
        ip(from),
        addr,
        "POST",
        "/api/auth/login",
        headers,
        Some(&json!({"email": email, "password": password})),
    )
    .await
}

#[tokio::test]
async fn failures_from_a_shared_address_do_not_lock_out_a_browser_with_a_device_cookie() {
    let data = common::cluster::TempDir::new("device-cookie");
    let service = server(&data, &[]);
    let addr = service.addr;
    // Everyone shares the office's address; 127.0.0.3 is somewhere else.
    let (office, home) = ("127.0.0.1", "127.0.0.3");

    let setup = common::http_from(
        ip(home),
        addr,
        "POST",
        "/api/setup/complete",
        &[],
        Some(&setup_body()),
    )
    .await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    let from_setup = setup
        .cookie("cg_device")
        .expect("setup sets a device cookie");
    let line = setup
        .headers
        .iter()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie: cg_device="))
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/api/auth", "Max-Age="] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains("Secure"), "COOKIE_SECURE=false: {line}");
    let admin_session = setup.cookie("cg_session").unwrap();
    let bob = json!({"name": "Bob", "email": "bob@example.com", "password": "bob-password-1"});
    let created = common::http_from(
        ip(home),
        addr,
        "POST",
        "/api/users",
        &[("Cookie", &admin_session)],
        Some(&bob),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let bob_id = created.body["id"].as_str().unwrap().to_owned();

    // Both sign in once from the office: the admin keeps the device cookie.
    let signed = login_as(addr, office, "admin@example.com", "supersecret1", &[]).await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    let admin_device = signed
        .cookie("cg_device")
        .expect("sign-in sets a device cookie");
    assert_ne!(
        admin_device, from_setup,
        "every sign-in gets a cookie of its own"
    );
    let bob_signed = login_as(addr, office, "bob@example.com", "bob-password-1", &[]).await;
    assert_eq!(bob_signed.status, 200, "{}", bob_signed.body);
    let bob_device = bob_signed.cookie("cg_device").unwrap();

    // Someone in the office guesses at made-up accounts until the address is blocked.
    let mut statuses = Vec::new();
    for i in 0..31 {
        statuses.push(
            login_as(
                addr,
                office,
                &format!("nobody{i}@example.com"),
                "guess-123",
                &[],
            )
            .await
            .status,
        );
    }
    assert_eq!(statuses[..30], [401; 30]);
    assert_eq!(
        statuses[30], 429,
        "the address is blocked after 30 failures"
    );

    // The admin's browser still signs in from the office; Bob without his cookie does not.
    let with_cookie = login_as(
        addr,
        office,
        "admin@example.com",
        "supersecret1",
        &[("Cookie", &admin_device)],
    )
    .await;
    assert_eq!(with_cookie.status, 200, "{}", with_cookie.body);
    let without = login_as(addr, office, "bob@example.com", "bob-password-1", &[]).await;
    assert_eq!(without.status, 429, "{}", without.body);
    assert_eq!(without.body["error"]["code"], "too_many_requests");
    assert!(
        without
            .headers
            .iter()
            .any(|l| l.to_ascii_lowercase().starts_with("retry-after:"))
    );

    // Another account's cookie, a forged one and a tampered one count for nothing.
    let (_, admin_value) = admin_device.split_once('=').unwrap();
    let (admin_id, rest) = admin_value.split_once('.').unwrap();
    assert_ne!(admin_id, bob_id);
    let forged = format!("cg_device={bob_id}.{rest}");
    let (_, bob_value) = bob_device.split_once('=').unwrap();
    let mut parts: Vec<String> = bob_value.split('.').map(str::to_owned).collect();
    parts[1] = (parts[1].parse::<i64>().unwrap() + 1).to_string();
    let tampered = format!("cg_device={}", parts.join("."));
    for cookie in [admin_device.as_str(), &forged, &tampered, "cg_device=junk"] {
        let reply = login_as(
            addr,
            office,
            "bob@example.com",
            "bob-password-1",
            &[("Cookie", cookie)],
        )
        .await;
        assert_eq!(reply.status, 429, "{cookie}: {}", reply.body);
    }
    // His own cookie lets Bob in.
    let bob_in = login_as(
        addr,
        office,
        "bob@example.com",
        "bob-password-1",
        &[("Cookie", &bob_device)],
    )
    .await;
    assert_eq!(bob_in.status, 200, "{}", bob_in.body);

    // A device cookie's own failures are capped: a stolen cookie cannot guess without limit,
    // and it blocks only itself.
    let stolen = with_cookie.cookie("cg_device").unwrap();
    for _ in 0..10 {
        let reply = login_as(
            addr,
            office,
            "admin@example.com",
            "wrong-guess",
            &[("Cookie", &stolen)],
        )
        .await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    let blocked = login_as(
        addr,
        office,
        "admin@example.com",
        "supersecret1",
        &[("Cookie", &stolen)],
    )
    .await;
    assert_eq!(blocked.status, 429, "{}", blocked.body);
    let other = login_as(
        addr,
        office,
        "admin@example.com",
        "supersecret1",
        &[("Cookie", &admin_device)],
    )
    .await;
    assert_eq!(other.status, 200, "{}", other.body);
    // The failures with a device cookie were not charged to the address of anyone else.
    let elsewhere = login_as(addr, home, "bob@example.com", "bob-password-1", &[]).await;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.body);
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let data = common::cluster::TempDir::new("trusted-proxies");
    // 127.0.0.2 is the reverse proxy; 127.0.0.1 connects directly.
    let service = server(&data, &[("TRUSTED_PROXIES", "127.0.0.2/32, fd00::/8")]);
    let addr = service.addr;
    let (direct, proxy) = ("127.0.0.1", "127.0.0.2");
    let setup = common::http_from(
        ip(direct),
        addr,
        "POST",
        "/api/setup/complete",
        &[],
        Some(&setup_body()),
    )
    .await;
    assert_eq!(setup.status, 200, "{}", setup.body);

    // From an untrusted peer the header is ignored: five failures "from" five addresses are
    // five from the peer, and its (account, address) pair is blocked.
    for i in 1..=5 {
        let xff = format!("198.51.100.{i}");
        let reply = login_as(
            addr,
            direct,
            "admin@example.com",
            "wrong-guess",
            &[("X-Forwarded-For", &xff)],
        )
        .await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    let ignored = login_as(
        addr,
        direct,
        "admin@example.com",
        "supersecret1",
        &[("X-Forwarded-For", "198.51.100.77")],
    )
    .await;
    assert_eq!(ignored.status, 429, "{}", ignored.body);

    // Behind the trusted proxy the header names the client: one client is blocked...
    for _ in 0..5 {
        let reply = login_as(
            addr,
            proxy,
            "admin@example.com",
            "wrong-guess",
            &[("X-Forwarded-For", "203.0.113.7")],
        )
        .await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    let blocked = login_as(
        addr,
        proxy,
        "admin@example.com",
        "supersecret1",
        &[("X-Forwarded-For", "203.0.113.7")],
    )
    .await;
    assert_eq!(blocked.status, 429, "{}", blocked.body);
    // ...and a client that forges a left-most entry is still that client, through one proxy
    // or two (the inner proxy is skipped)...
    for chain in [
        "192.0.2.66, 203.0.113.7",
        "192.0.2.66, 203.0.113.7, 127.0.0.2",
        "192.0.2.66,203.0.113.7, fd00::9",
    ] {
        let reply = login_as(
            addr,
            proxy,
            "admin@example.com",
            "supersecret1",
            &[("X-Forwarded-For", chain)],
        )
        .await;
        assert_eq!(reply.status, 429, "{chain}: {}", reply.body);
    }
    // ...while another client behind the same proxy signs in.
    let other = login_as(
        addr,
        proxy,
        "admin@example.com",
        "supersecret1",
        &[("X-Forwarded-For", "203.0.113.8")],
    )
    .await;
    assert_eq!(other.status, 200, "{}", other.body);

    // A malformed header counts as the proxy itself, as does a missing one.
    for _ in 0..5 {
        let reply = login_as(
            addr,
            proxy,
            "admin@example.com",
            "wrong-guess",
            &[("X-Forwarded-For", "not-an-address")],
        )
        .await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    let bare = login_as(addr, proxy, "admin@example.com", "supersecret1", &[]).await;
    assert_eq!(bare.status, 429, "{}", bare.body);

    // The log names the client address the throttle used.
    let (_, log) = service.terminate().unwrap();
    let refused = |addr: &str| {
        log.iter()
            .filter(|l| l.contains("sign-in refused") && l.contains(&format!("addr={addr} ")))
            .count()
    };
    assert_eq!(refused("127.0.0.1"), 5, "{log:#?}");
    assert_eq!(refused("203.0.113.7"), 5, "{log:#?}");
    assert_eq!(refused("127.0.0.2"), 5, "{log:#?}");
    assert!(
        !log.iter()
            .any(|l| l.contains("198.51.100.") || l.contains("192.0.2.66")),
        "a spoofed address reached the log: {log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("signed in") && l.contains("addr=203.0.113.8 ")),
        "{log:#?}"
    );
}

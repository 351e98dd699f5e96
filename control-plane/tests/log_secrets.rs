//! No secret ever reaches a log line. The control plane runs as a real process on PostgreSQL
//! (with a password in `DATABASE_URL`) at the most verbose log level, goes through a full
//! session — setup, sign-in, users, a password change, SDK keys of both kinds, an API token,
//! SDK keys offered to the management API in headers and query strings — and then its whole
//! captured log is searched for every secret it saw.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use checkgate_testkit::{Service, http_request};
use common::pg::Database;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_checkgate-control");

struct Client<'a> {
    service: &'a Service,
    cookie: Option<String>,
}

impl Client<'_> {
    /// Sends a request the way the dashboard does; returns the status and JSON body, and keeps
    /// a session cookie that the response sets.
    fn send(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let cookie = self.cookie.clone();
        let mut headers = vec![("X-Checkgate-Request", "1")];
        if let Some(c) = &cookie {
            headers.push(("Cookie", c));
        }
        let text = body.map(|b| b.to_string());
        let (status, head, body) =
            http_request(self.service.addr, method, path, &headers, text.as_deref()).unwrap();
        if let Some(set) = head
            .iter()
            .find(|h| h.to_ascii_lowercase().starts_with("set-cookie:"))
        {
            let pair = set.split_once(':').unwrap().1.trim();
            self.cookie = Some(pair.split(';').next().unwrap().to_owned());
        }
        let json = serde_json::from_str(&body).unwrap_or(Value::Null);
        (status, json)
    }

    fn bearer(&self, method: &str, path: &str, token: &str) -> u16 {
        let auth = format!("Bearer {token}");
        http_request(
            self.service.addr,
            method,
            path,
            &[("Authorization", &auth)],
            None,
        )
        .unwrap()
        .0
    }
}

/// The status of a GET, reading nothing more (a stream's body does not end).
fn status_line(addr: std::net::SocketAddr, path: &str) -> u16 {
    use std::io::{BufRead as _, Write as _};
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(socket)
        .read_line(&mut line)
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_full_session_logs_no_secret_at_any_level() {
    let db = Database::new();
    let db_password = "pg-pa55word-e2f4b7";
    let session_secret = "session-secret-that-must-never-be-logged-91c3";
    let master_key = "7e3c9a1f5b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";
    let data = std::env::temp_dir().join(format!("cg-logs-{}", uuid::Uuid::new_v4().simple()));
    let url = db.url_with_password(db_password);
    let service = Service::start(
        BIN,
        &[
            ("DATABASE_URL", &url),
            ("SESSION_SECRET", session_secret),
            ("CHECKGATE_MASTER_KEY", master_key),
            ("COOKIE_SECURE", "false"),
            ("CHECKGATE_DATA_DIR", data.to_str().unwrap()),
            ("RUST_LOG", "trace"),
        ],
    )
    .unwrap();
    let mut secrets: Vec<String> = vec![
        db_password.into(),
        session_secret.into(),
        master_key.into(),
        "admin-pa55word-1".into(),
        "member-pa55word-2".into(),
        "member-pa55word-3".into(),
    ];

    let mut admin = Client {
        service: &service,
        cookie: None,
    };
    let (status, _) = admin.send(
        "POST",
        "/api/setup/complete",
        Some(json!({"workspace_name": "Acme", "name": "Admin", "email": "admin@example.com", "password": "admin-pa55word-1"})),
    );
    assert_eq!(status, 200);
    secrets.push(
        admin
            .cookie
            .clone()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned(),
    );
    let (_, projects) = admin.send("GET", "/api/projects", None);
    let project = projects[0]["id"].as_str().unwrap().to_owned();
    let (_, envs) = admin.send(
        "GET",
        &format!("/api/projects/{project}/environments"),
        None,
    );
    let env = envs[0]["id"].as_str().unwrap().to_owned();

    let (status, _) = admin.send(
        "POST",
        "/api/users",
        Some(json!({"name": "Member", "email": "member@example.com", "password": "member-pa55word-2"})),
    );
    assert_eq!(status, 201);
    let mut member = Client {
        service: &service,
        cookie: None,
    };
    // A wrong password first, then the right one.
    let (status, _) = member.send(
        "POST",
        "/api/auth/login",
        Some(json!({"email": "member@example.com", "password": "wrong-pa55word-4"})),
    );
    assert_eq!(status, 401);
    secrets.push("wrong-pa55word-4".into());
    let (status, _) = member.send(
        "POST",
        "/api/auth/login",
        Some(json!({"email": "member@example.com", "password": "member-pa55word-2"})),
    );
    assert_eq!(status, 200);
    secrets.push(
        member
            .cookie
            .clone()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned(),
    );
    let (status, _) = member.send(
        "POST",
        "/api/auth/password",
        Some(json!({"current_password": "member-pa55word-2", "new_password": "member-pa55word-3"})),
    );
    assert_eq!(status, 204);

    for kind in ["server", "client"] {
        let (status, key) = admin.send(
            "POST",
            &format!("/api/projects/{project}/keys"),
            Some(json!({"name": kind, "environment_id": env, "kind": kind})),
        );
        assert_eq!(status, 201);
        secrets.push(key["key"].as_str().unwrap().to_owned());
    }
    let (status, token) = admin.send(
        "POST",
        &format!("/api/projects/{project}/tokens"),
        Some(json!({"name": "ci", "role": "editor"})),
    );
    assert_eq!(status, 201);
    let token = token["token"].as_str().unwrap().to_owned();
    secrets.push(token.clone());

    let (status, edge) = admin.send("POST", "/api/edge-tokens", Some(json!({"name": "edge"})));
    assert_eq!(status, 201);
    secrets.push(edge["token"].as_str().unwrap().to_owned());

    // Use every credential, rightly and wrongly, in headers and in query strings.
    let flags = format!("/api/environments/{env}/flags");
    assert_eq!(admin.bearer("GET", &flags, &token), 200);
    for key in &secrets[secrets.len() - 4..secrets.len() - 2] {
        assert_eq!(admin.bearer("GET", &flags, key), 401);
        let (status, _, _) = http_request(
            service.addr,
            "GET",
            &format!("{flags}?sdk_key={key}"),
            &[],
            None,
        )
        .unwrap();
        assert_eq!(status, 401);
        // The SDK routes take keys in query strings too: a stream (served, or refused to a
        // client key) and an evaluation.
        let status = status_line(service.addr, &format!("/stream?sdk_key={key}"));
        assert!(status == 200 || status == 403, "{status}");
        let (status, _, _) = http_request(
            service.addr,
            "POST",
            &format!("/api/v1/evaluate?sdk_key={key}"),
            &[],
            Some("{}"),
        )
        .unwrap();
        assert_eq!(status, 200);
    }
    // A webhook with a secret, the secret changed, a test event sent (refused: loopback).
    let hooks = format!("/api/environments/{env}/webhooks");
    let (status, hook) = admin.send(
        "POST",
        &hooks,
        Some(json!({"name": "h", "url": "http://127.0.0.1:9/h", "secret": "webhook-secret-never-logged-5d1"})),
    );
    assert_eq!(status, 201, "{hook}");
    secrets.push("webhook-secret-never-logged-5d1".into());
    let one = format!("{hooks}/{}", hook["id"].as_str().unwrap());
    let (status, _) = admin.send(
        "PATCH",
        &one,
        Some(json!({"secret": "webhook-secret-never-logged-6e2"})),
    );
    assert_eq!(status, 200);
    secrets.push("webhook-secret-never-logged-6e2".into());
    let (status, _) = admin.send("POST", &format!("{one}/test"), None);
    assert_eq!(status, 202);

    let (status, _) = admin.send("POST", "/api/auth/logout", Some(json!({})));
    assert_eq!(status, 204);

    let (exit, log) = service.terminate().unwrap();
    let _ = std::fs::remove_dir_all(&data);
    assert!(exit.success(), "{exit:?}");
    // The log is not trivially empty: it records the requests (paths only) and the database.
    assert!(log.len() > 50, "only {} log lines", log.len());
    assert!(
        log.iter()
            .any(|l| l.contains("request") && l.contains("/api/auth/login")),
        "requests are logged at debug"
    );
    let leaks: Vec<(&String, &String)> = secrets
        .iter()
        .flat_map(|s| {
            log.iter()
                .filter(move |l| l.contains(s.as_str()))
                .map(move |l| (s, l))
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "{} log lines hold a secret, e.g. {:?}",
        leaks.len(),
        leaks.first()
    );
}

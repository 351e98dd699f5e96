//! The in-process API harness shared by the API tests: a router over a fresh embedded store,
//! and helpers that send requests the way the dashboard does (JSON, CSRF header, cookie).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod pg;
pub mod receiver;
pub mod scenario;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use checkgate_control::api::AppState;
use checkgate_control::store::{self, Store};
use checkgate_control::vault::MasterKey;
use checkgate_ops::Health;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub struct Api {
    pub router: axum::Router,
    pub store: Store,
    dir: std::path::PathBuf,
    /// The database's URL when it is not the embedded file in `dir` ([`api_over`]).
    url: Option<String>,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn api() -> Api {
    api_with(|_| {}).await
}

/// [`api`], with its state changed by `configure` first. Like the embedded default, it has a
/// master key of its own (`configure` may replace or remove it).
pub async fn api_with(configure: impl FnOnce(&mut AppState)) -> Api {
    let dir = std::env::temp_dir().join(format!("cg-api-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&store::embedded_url(&dir), 4, Duration::from_secs(10))
        .await
        .unwrap();
    let mut state = AppState::new(
        store.clone(),
        checkgate_control::api::SessionKey::new("test-session-secret-of-32-characters"),
        true,
    )
    .with_master_key(Some(MasterKey::generate()));
    configure(&mut state);
    Api {
        router: checkgate_control::app(state, Health::new(), None, None),
        store,
        dir,
        url: None,
    }
}

/// Runs `test` against an API over SQLite, then over a fresh PostgreSQL database of its own
/// (named `cg_<prefix>_…`, dropped afterwards); the second argument names the backend.
pub async fn on_both<F, Fut>(prefix: &str, test: F)
where
    F: Fn(Api, &'static str) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    test(api().await, "sqlite").await;
    let name = format!("cg_{prefix}_{}", uuid::Uuid::new_v4().simple());
    let url = pg::create_database(&name).await;
    let api = api_over(&url, |_| {}).await;
    let store = api.store.clone();
    test(api, "postgres").await;
    store.close().await;
    pg::drop_database(&name).await.unwrap();
}

/// [`api_with`] over the database at `url` (a PostgreSQL database of the test's own, say)
/// instead of a fresh embedded file.
pub async fn api_over(url: &str, configure: impl FnOnce(&mut AppState)) -> Api {
    let dir = std::env::temp_dir().join(format!("cg-api-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(url, 4, Duration::from_secs(10)).await.unwrap();
    let mut state = AppState::new(
        store.clone(),
        checkgate_control::api::SessionKey::new("test-session-secret-of-32-characters"),
        true,
    )
    .with_master_key(Some(MasterKey::generate()));
    configure(&mut state);
    Api {
        router: checkgate_control::app(state, Health::new(), None, None),
        store,
        dir,
        url: Some(url.to_owned()),
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub cookie: Option<String>,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The environment version a write committed, from `X-Checkgate-Version`.
    pub fn committed(&self) -> Option<u64> {
        let value = self.headers.get("x-checkgate-version")?;
        Some(value.to_str().unwrap().parse().unwrap())
    }
}

impl Api {
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned());
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {bytes:?}"))
        };
        Reply {
            status,
            cookie,
            headers,
            body,
        }
    }

    pub async fn post(&self, path: &str, body: Value, cookie: Option<&str>) -> Reply {
        let mut req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-checkgate-request", "1");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        self.send(req.body(Body::from(body.to_string())).unwrap())
            .await
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut req = Request::get(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }
}

/// A workspace after first-run setup, where most API tests start.
pub struct World {
    /// The admin's session cookie (`cg_session=…`).
    pub admin: String,
    /// The first project's id.
    pub project: String,
    /// Its environments' ids: development, staging, production.
    pub envs: Vec<String>,
}

/// A project made by [`Api::new_project`].
pub struct Project {
    pub id: String,
    /// Its environments' ids: development, staging, production.
    pub envs: Vec<String>,
}

/// The `id` of a JSON object, as a string.
fn id_of(object: &Value) -> String {
    object["id"].as_str().unwrap().to_owned()
}

pub fn setup_body() -> Value {
    json!({"workspace_name": "Acme", "project_name": "Web", "name": "Admin", "email": "admin@example.com", "password": "supersecret1"})
}

/// The `name=value` part of a Set-Cookie header.
pub fn session_of(reply: &Reply) -> String {
    reply
        .cookie
        .as_deref()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

pub fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], code, "{}", reply.body);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        reply.body
    );
}

impl Api {
    /// Any request, with optional JSON body, cookie and extra headers.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("x-checkgate-request", "1");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.send(with_json(req, body)).await
    }

    /// Completes setup and returns the admin's session cookie.
    pub async fn admin_session(&self) -> String {
        let reply = self.post("/api/setup/complete", setup_body(), None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        session_of(&reply)
    }

    /// Creates a user with `password` and signs them in; returns (user id, session cookie).
    pub async fn user_session(&self, email: &str) -> (String, String) {
        use argon2::PasswordHasher as _;
        let salt = argon2::password_hash::SaltString::generate(
            &mut argon2::password_hash::rand_core::OsRng,
        );
        let hash = argon2::Argon2::default()
            .hash_password(b"password-123", &salt)
            .unwrap()
            .to_string();
        let user = self
            .store
            .create_user(
                &checkgate_control::store::Actor::system(),
                email,
                email,
                &hash,
                false,
            )
            .await
            .unwrap();
        let reply = self
            .post(
                "/api/auth/login",
                json!({"email": email, "password": "password-123"}),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        (user.id, session_of(&reply))
    }
}

impl Api {
    /// The address of this API's own database (an embedded file), for tests that reach past
    /// the API.
    pub fn database_url(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| store::embedded_url(&self.dir))
    }

    /// Completes setup: the admin's session and the first project with its environments.
    pub async fn world(&self) -> World {
        let admin = self.admin_session().await;
        let projects = self.get("/api/projects", Some(&admin)).await;
        assert_eq!(projects.status, StatusCode::OK, "{}", projects.body);
        let project = id_of(&projects.body[0]);
        let envs = self
            .get(
                &format!("/api/projects/{project}/environments"),
                Some(&admin),
            )
            .await;
        assert_eq!(envs.status, StatusCode::OK, "{}", envs.body);
        let envs = envs.body.as_array().unwrap().iter().map(id_of).collect();
        World {
            admin,
            project,
            envs,
        }
    }

    /// Creates another project as `admin` (who must be allowed to); its id and environments.
    pub async fn new_project(&self, admin: &str, name: &str) -> Project {
        let reply = self
            .call(
                "POST",
                "/api/projects",
                Some(json!({ "name": name })),
                Some(admin),
                &[],
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        Project {
            id: id_of(&reply.body),
            envs: reply.body["environments"]
                .as_array()
                .unwrap()
                .iter()
                .map(id_of)
                .collect(),
        }
    }

    /// Creates an SDK key of `kind` (`server` or `client`, also its name) for `env`; returns
    /// the secret, which the answer shows this once.
    pub async fn sdk_key(&self, admin: &str, project: &str, env: &str, kind: &str) -> String {
        let reply = self
            .call(
                "POST",
                &format!("/api/projects/{project}/keys"),
                Some(json!({"name": kind, "environment_id": env, "kind": kind})),
                Some(admin),
                &[],
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["key"].as_str().unwrap().to_owned()
    }

    /// Creates an API token named `ci-{role}` with `role` in `project`; returns its secret and
    /// the whole answer.
    pub async fn api_token(&self, admin: &str, project: &str, role: &str) -> (String, Value) {
        let reply = self
            .call(
                "POST",
                &format!("/api/projects/{project}/tokens"),
                Some(json!({"name": format!("ci-{role}"), "role": role})),
                Some(admin),
                &[],
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let secret = reply.body["token"].as_str().unwrap().to_owned();
        (secret, reply.body)
    }

    /// Any request authenticated by `Authorization: Bearer {token}`, without the CSRF header
    /// (as automation sends it).
    pub async fn bearer(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: &str,
    ) -> Reply {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        self.send(with_json(req, body)).await
    }
}

/// The request with `body` as JSON, or with an empty body.
fn with_json(req: axum::http::request::Builder, body: Option<Value>) -> Request<Body> {
    match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap()
}

/// An answer read off a real socket: status, header lines and JSON body (`Null` when empty).
pub struct Wire {
    pub status: u16,
    pub headers: Vec<String>,
    pub body: Value,
}

impl Wire {
    /// The `name=value` part of the `Set-Cookie` line for cookie `name`, if one was sent.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers.iter().find_map(|line| {
            let (header, value) = line.split_once(':')?;
            let pair = value.trim().split(';').next()?;
            (header.eq_ignore_ascii_case("set-cookie") && pair.starts_with(&format!("{name}=")))
                .then(|| pair.to_owned())
        })
    }
}

/// One HTTP/1.1 request to `server` over a fresh connection whose local end is bound to
/// `from` (any 127.0.0.0/8 address works on Linux loopback), so a test can speak as several
/// clients. JSON body, CSRF header, `Connection: close`; every wait is bounded.
pub async fn http_from(
    from: std::net::IpAddr,
    server: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Wire {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let exchange = async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::new(from, 0)).unwrap();
        let mut stream = socket.connect(server).await.unwrap();
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\
             X-Checkgate-Request: 1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8(response).unwrap()
    };
    let response = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("an answer within 30 s");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Wire {
        status,
        headers: lines.map(str::to_owned).collect(),
        body: if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"))
        },
    }
}

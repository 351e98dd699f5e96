//! Every route of the REST API against every kind of caller: nobody, a workspace admin, a
//! project admin, editor and viewer, a user outside the project, API tokens of each role, and
//! SDK keys of both kinds. Each pair must get exactly the answer the role model gives — a 2xx
//! when allowed, otherwise 401, 403 or 404 (a project the caller has no role in does not
//! exist for them). The table is checked against the router's own route table
//! (`api::ROUTES`), so a new route cannot be added without deciding who may call it. Every
//! refusal must also come before the body is read: a refused caller with a malformed body gets
//! the same answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use checkgate_control::store::{Actor, Role};
use common::{Api, Reply, api};
use serde_json::{Value, json};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Anyone, signed in or not.
    Public,
    /// Only before first-run setup: afterwards 404 for everyone.
    BeforeSetup,
    /// Any authenticated caller, person or API token.
    Caller,
    /// A signed-in person (not an API token).
    Person,
    /// At least this role in the route's project (tokens: in their own project).
    Project(Role),
    /// A project admin who is a person (managing API tokens).
    ProjectAdminPerson,
    /// A workspace admin.
    WorkspaceAdmin,
    /// A workspace admin, on a route about one project: callers with no role in that project
    /// get 404 before the admin check.
    WorkspaceAdminInProject,
    /// An edge token (the feed route): every caller of the matrix is refused.
    EdgeToken,
    /// An SDK key of the route's environment (impression ingest): every other caller is 401.
    SdkKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cred {
    Anonymous,
    WorkspaceAdmin,
    ProjectAdmin,
    Editor,
    Viewer,
    Outsider,
    TokenAdmin,
    TokenEditor,
    TokenViewer,
    SdkServer,
    SdkClient,
}

const CREDS: [Cred; 11] = [
    Cred::Anonymous,
    Cred::WorkspaceAdmin,
    Cred::ProjectAdmin,
    Cred::Editor,
    Cred::Viewer,
    Cred::Outsider,
    Cred::TokenAdmin,
    Cred::TokenEditor,
    Cred::TokenViewer,
    Cred::SdkServer,
    Cred::SdkClient,
];

impl Cred {
    /// The caller's role in the main project, if any.
    fn role(self) -> Option<Role> {
        match self {
            Self::WorkspaceAdmin | Self::ProjectAdmin | Self::TokenAdmin => Some(Role::Admin),
            Self::Editor | Self::TokenEditor => Some(Role::Editor),
            Self::Viewer | Self::TokenViewer => Some(Role::Viewer),
            _ => None,
        }
    }

    fn is_token(self) -> bool {
        matches!(
            self,
            Self::TokenAdmin | Self::TokenEditor | Self::TokenViewer
        )
    }
}

/// The status a caller must get: `None` means allowed (any 2xx).
fn expected(need: Need, cred: Cred) -> Option<u16> {
    use Cred::*;
    if need == Need::BeforeSetup {
        return Some(404);
    }
    if need == Need::Public {
        return None;
    }
    if need == Need::EdgeToken {
        return Some(401);
    }
    if need == Need::SdkKey {
        return (!matches!(cred, SdkServer | SdkClient)).then_some(401);
    }
    match cred {
        Anonymous | SdkServer | SdkClient => return Some(401),
        WorkspaceAdmin => return None,
        _ => {}
    }
    let role = cred.role();
    match need {
        Need::Public | Need::BeforeSetup | Need::EdgeToken | Need::SdkKey => unreachable!(),
        Need::Caller => None,
        Need::Person => cred.is_token().then_some(403),
        Need::WorkspaceAdmin => Some(403),
        // The project of such a route is one the tokens are not bound to.
        Need::WorkspaceAdminInProject if cred.is_token() || cred == Outsider => Some(404),
        Need::WorkspaceAdminInProject => Some(403),
        Need::ProjectAdminPerson if cred.is_token() => Some(403),
        Need::ProjectAdminPerson => match role {
            None => Some(404),
            Some(Role::Admin) => None,
            Some(_) => Some(403),
        },
        Need::Project(need) => match role {
            None => Some(404),
            Some(r) if r >= need => None,
            Some(_) => Some(403),
        },
    }
}

/// One request of the matrix: its route template (as in the router), method and need.
struct Route {
    method: &'static str,
    template: &'static str,
    need: Need,
}

const fn route(method: &'static str, template: &'static str, need: Need) -> Route {
    Route {
        method,
        template,
        need,
    }
}

const VIEWER: Need = Need::Project(Role::Viewer);
const EDITOR: Need = Need::Project(Role::Editor);
const ADMIN: Need = Need::Project(Role::Admin);

/// Every route. `POST /api/auth/logout` comes last: it ends the caller's session.
const ROUTES: &[Route] = &[
    route("POST", "/api/setup/complete", Need::BeforeSetup),
    route("POST", "/api/auth/login", Need::Public),
    route("GET", "/api/auth/me", Need::Person),
    route("POST", "/api/auth/password", Need::Person),
    route("GET", "/api/auth/workspace", Need::Public),
    route("GET", "/api/openapi.json", Need::Public),
    route("GET", "/api/projects", Need::Caller),
    route("POST", "/api/projects", Need::WorkspaceAdmin),
    route("GET", "/api/projects/{id}", VIEWER),
    route("PATCH", "/api/projects/{id}", ADMIN),
    route(
        "DELETE",
        "/api/projects/{id}",
        Need::WorkspaceAdminInProject,
    ),
    route("GET", "/api/projects/{id}/environments", VIEWER),
    route("POST", "/api/projects/{id}/environments", ADMIN),
    route("PATCH", "/api/projects/{id}/environments/{env}", ADMIN),
    route("DELETE", "/api/projects/{id}/environments/{env}", ADMIN),
    route(
        "POST",
        "/api/projects/{id}/environments/{env}/default",
        ADMIN,
    ),
    route("GET", "/api/projects/{id}/keys", VIEWER),
    route("POST", "/api/projects/{id}/keys", ADMIN),
    route("DELETE", "/api/projects/{id}/keys/{key}", ADMIN),
    route("GET", "/api/projects/{id}/tokens", Need::ProjectAdminPerson),
    route(
        "POST",
        "/api/projects/{id}/tokens",
        Need::ProjectAdminPerson,
    ),
    route(
        "DELETE",
        "/api/projects/{id}/tokens/{token}",
        Need::ProjectAdminPerson,
    ),
    route("GET", "/api/projects/{id}/members", VIEWER),
    route("POST", "/api/projects/{id}/members", ADMIN),
    route("PATCH", "/api/projects/{id}/members/{user}", ADMIN),
    route("DELETE", "/api/projects/{id}/members/{user}", ADMIN),
    route("GET", "/api/environments/{env}/segments", VIEWER),
    route("POST", "/api/environments/{env}/segments", EDITOR),
    route("GET", "/api/environments/{env}/segments/{key}", VIEWER),
    route("PATCH", "/api/environments/{env}/segments/{key}", EDITOR),
    route("DELETE", "/api/environments/{env}/segments/{key}", EDITOR),
    route("GET", "/api/environments/{env}/flags", VIEWER),
    route("POST", "/api/environments/{env}/flags", EDITOR),
    route("GET", "/api/environments/{env}/flags/{key}", VIEWER),
    route("PATCH", "/api/environments/{env}/flags/{key}", EDITOR),
    route("DELETE", "/api/environments/{env}/flags/{key}", EDITOR),
    route(
        "POST",
        "/api/environments/{env}/flags/{key}/promote",
        EDITOR,
    ),
    route(
        "POST",
        "/api/environments/{env}/flags/{key}/evaluate",
        VIEWER,
    ),
    route(
        "GET",
        "/api/environments/{env}/flags/{key}/insights",
        VIEWER,
    ),
    route("GET", "/api/environments/{env}/impressions", VIEWER),
    route("POST", "/api/environments/{env}/impressions", Need::SdkKey),
    route("GET", "/api/environments/{env}/impressions/stats", VIEWER),
    route("GET", "/api/environments/{env}/insights", VIEWER),
    route("GET", "/api/environments/{env}/scheduled-changes", VIEWER),
    route(
        "DELETE",
        "/api/environments/{env}/scheduled-changes/{id}",
        EDITOR,
    ),
    route(
        "GET",
        "/api/environments/{env}/flags/{key}/scheduled-changes",
        VIEWER,
    ),
    route(
        "POST",
        "/api/environments/{env}/flags/{key}/scheduled-changes",
        EDITOR,
    ),
    route("GET", "/api/environments/{env}/webhooks", VIEWER),
    route("POST", "/api/environments/{env}/webhooks", ADMIN),
    route("PATCH", "/api/environments/{env}/webhooks/{id}", ADMIN),
    route("DELETE", "/api/environments/{env}/webhooks/{id}", ADMIN),
    route(
        "GET",
        "/api/environments/{env}/webhooks/{id}/deliveries",
        VIEWER,
    ),
    route("POST", "/api/environments/{env}/webhooks/{id}/test", ADMIN),
    route("GET", "/api/edges", Need::WorkspaceAdmin),
    route("GET", "/api/fleet/alerts", Need::WorkspaceAdmin),
    route("GET", "/api/health/connections", Need::Caller),
    route("GET", "/api/environments/{env}/connections", VIEWER),
    route("POST", "/api/feed", Need::EdgeToken),
    route("GET", "/api/edge-tokens", Need::WorkspaceAdmin),
    route("POST", "/api/edge-tokens", Need::WorkspaceAdmin),
    route("DELETE", "/api/edge-tokens/{id}", Need::WorkspaceAdmin),
    route("GET", "/api/audit", Need::Caller),
    route("GET", "/api/environments/{env}/audit", VIEWER),
    route("GET", "/api/users", Need::WorkspaceAdmin),
    route("POST", "/api/users", Need::WorkspaceAdmin),
    route("PATCH", "/api/users/{id}", Need::WorkspaceAdmin),
    route("DELETE", "/api/users/{id}", Need::WorkspaceAdmin),
    route("POST", "/api/auth/logout", Need::Public),
];

/// What the matrix runs against: one workspace, its first project with members of each role,
/// tokens of each role and SDK keys of each kind.
struct World {
    api: Api,
    admin: String,
    project: String,
    envs: Vec<String>,
    sessions: Vec<(Cred, String)>,
    secrets: Vec<(Cred, String)>,
    member_ids: Vec<(Cred, String)>,
}

impl World {
    async fn new() -> Self {
        let api = api().await;
        let common::World {
            admin,
            project,
            envs,
        } = api.world().await;
        let mut sessions = vec![(Cred::WorkspaceAdmin, admin.clone())];
        let mut member_ids = Vec::new();
        for (cred, role) in [
            (Cred::ProjectAdmin, Some(Role::Admin)),
            (Cred::Editor, Some(Role::Editor)),
            (Cred::Viewer, Some(Role::Viewer)),
            (Cred::Outsider, None),
        ] {
            let (id, cookie) = api.user_session(&format!("{cred:?}@example.com")).await;
            if let Some(role) = role {
                api.store
                    .set_member(&Actor::system(), &project, &id, role)
                    .await
                    .unwrap();
                member_ids.push((cred, id));
            }
            sessions.push((cred, cookie));
        }
        let mut secrets = Vec::new();
        for (cred, role) in [
            (Cred::TokenAdmin, "admin"),
            (Cred::TokenEditor, "editor"),
            (Cred::TokenViewer, "viewer"),
        ] {
            let (token, _) = api.api_token(&admin, &project, role).await;
            secrets.push((cred, token));
        }
        for (cred, kind) in [(Cred::SdkServer, "server"), (Cred::SdkClient, "client")] {
            secrets.push((cred, api.sdk_key(&admin, &project, &envs[0], kind).await));
        }
        // A user that the login route signs in as.
        api.user_session("login@example.com").await;
        Self {
            api,
            admin,
            project,
            envs,
            sessions,
            secrets,
            member_ids,
        }
    }

    async fn admin(&self, method: &str, path: &str, body: Value) -> Reply {
        let reply = self
            .api
            .call(method, path, Some(body), Some(&self.admin), &[])
            .await;
        assert!(reply.status.is_success(), "{method} {path}: {}", reply.body);
        reply
    }

    /// A fresh flag (and segment) in the development environment, for routes that change or
    /// delete one.
    async fn fresh_flag(&self) -> String {
        let key = format!("f-{}", uuid::Uuid::new_v4().simple());
        self.admin(
            "POST",
            &format!("/api/environments/{}/flags", self.envs[0]),
            json!({"key": key, "is_enabled": true}),
        )
        .await;
        key
    }

    async fn fresh_segment(&self) -> String {
        let key = format!("s-{}", uuid::Uuid::new_v4().simple());
        self.admin(
            "POST",
            &format!("/api/environments/{}/segments", self.envs[0]),
            json!({"key": key, "name": "S", "included": ["u1"]}),
        )
        .await;
        key
    }

    async fn fresh_user(&self) -> String {
        let email = format!("u-{}@example.com", uuid::Uuid::new_v4().simple());
        let reply = self
            .admin(
                "POST",
                "/api/users",
                json!({"name": "U", "email": email, "password": "password-123"}),
            )
            .await;
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// The concrete path and body of `route` for `cred`, creating whatever it acts on.
    async fn prepare(&self, route: &Route, cred: Cred) -> (String, Option<Value>) {
        let p = &self.project;
        let env = &self.envs[0];
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let slug = format!("e{}", &unique[..12]);
        match (route.method, route.template) {
            ("POST", "/api/setup/complete") => (
                route.template.into(),
                Some(
                    json!({"workspace_name": "X", "name": "X", "email": "x@example.com", "password": "password-123"}),
                ),
            ),
            ("POST", "/api/auth/login") => (
                route.template.into(),
                Some(json!({"email": "login@example.com", "password": "password-123"})),
            ),
            ("POST", "/api/auth/password") => {
                let current = if cred == Cred::WorkspaceAdmin {
                    "supersecret1"
                } else {
                    "password-123"
                };
                (
                    route.template.into(),
                    Some(json!({"current_password": current, "new_password": "password-456"})),
                )
            }
            ("POST", "/api/auth/logout") => (route.template.into(), Some(json!({}))),
            ("POST", "/api/projects") => (route.template.into(), Some(json!({"name": unique}))),
            ("PATCH", "/api/projects/{id}") => {
                (format!("/api/projects/{p}"), Some(json!({"name": "Web"})))
            }
            ("DELETE", "/api/projects/{id}") => {
                // A project of its own, with the matrix's people in their roles.
                let created = self
                    .admin("POST", "/api/projects", json!({"name": unique}))
                    .await;
                let id = created.body["id"].as_str().unwrap().to_owned();
                for (cred, user) in &self.member_ids {
                    let role = cred.role().unwrap();
                    self.api
                        .store
                        .set_member(&Actor::system(), &id, user, role)
                        .await
                        .unwrap();
                }
                (format!("/api/projects/{id}"), None)
            }
            ("POST", "/api/projects/{id}/environments") => (
                format!("/api/projects/{p}/environments"),
                Some(json!({"name": slug, "slug": slug})),
            ),
            ("DELETE", "/api/projects/{id}/environments/{env}") => {
                let created = self
                    .admin(
                        "POST",
                        &format!("/api/projects/{p}/environments"),
                        json!({"name": slug, "slug": slug}),
                    )
                    .await;
                let id = created.body["id"].as_str().unwrap();
                (format!("/api/projects/{p}/environments/{id}"), None)
            }
            ("PATCH", "/api/projects/{id}/environments/{env}") => (
                format!("/api/projects/{p}/environments/{env}"),
                Some(json!({"name": "Development", "color": "#22aa44"})),
            ),
            ("POST", "/api/projects/{id}/environments/{env}/default") => (
                format!("/api/projects/{p}/environments/{env}/default"),
                None,
            ),
            ("POST", "/api/projects/{id}/keys") => (
                format!("/api/projects/{p}/keys"),
                Some(json!({"name": "k", "environment_id": env})),
            ),
            ("DELETE", "/api/projects/{id}/keys/{key}") => {
                let created = self
                    .admin(
                        "POST",
                        &format!("/api/projects/{p}/keys"),
                        json!({"name": "k", "environment_id": env}),
                    )
                    .await;
                let id = created.body["id"].as_str().unwrap();
                (format!("/api/projects/{p}/keys/{id}"), None)
            }
            ("POST", "/api/projects/{id}/tokens") => (
                format!("/api/projects/{p}/tokens"),
                Some(json!({"name": "t", "role": "viewer"})),
            ),
            ("DELETE", "/api/projects/{id}/tokens/{token}") => {
                let created = self
                    .admin(
                        "POST",
                        &format!("/api/projects/{p}/tokens"),
                        json!({"name": "t", "role": "viewer"}),
                    )
                    .await;
                let id = created.body["id"].as_str().unwrap();
                (format!("/api/projects/{p}/tokens/{id}"), None)
            }
            ("POST", "/api/projects/{id}/members") => {
                let user = self.fresh_user().await;
                (
                    format!("/api/projects/{p}/members"),
                    Some(json!({"user_id": user, "role": "viewer"})),
                )
            }
            ("PATCH" | "DELETE", "/api/projects/{id}/members/{user}") => {
                let user = self.fresh_user().await;
                self.admin(
                    "POST",
                    &format!("/api/projects/{p}/members"),
                    json!({"user_id": user, "role": "viewer"}),
                )
                .await;
                let body = (route.method == "PATCH").then(|| json!({"role": "editor"}));
                (format!("/api/projects/{p}/members/{user}"), body)
            }
            ("POST", "/api/environments/{env}/segments") => (
                format!("/api/environments/{env}/segments"),
                Some(json!({"key": format!("s-{unique}"), "name": "S"})),
            ),
            (_, "/api/environments/{env}/segments/{key}") => {
                let key = self.fresh_segment().await;
                let body = (route.method == "PATCH").then(|| json!({"name": "Renamed"}));
                (format!("/api/environments/{env}/segments/{key}"), body)
            }
            ("POST", "/api/environments/{env}/flags") => (
                format!("/api/environments/{env}/flags"),
                Some(json!({"key": format!("f-{unique}"), "is_enabled": false})),
            ),
            (_, "/api/environments/{env}/flags/{key}") => {
                let key = self.fresh_flag().await;
                let body = (route.method == "PATCH").then(|| json!({"is_enabled": false}));
                (format!("/api/environments/{env}/flags/{key}"), body)
            }
            ("POST", "/api/environments/{env}/flags/{key}/promote") => {
                let key = self.fresh_flag().await;
                (
                    format!("/api/environments/{env}/flags/{key}/promote"),
                    Some(json!({"target_env_id": self.envs[1]})),
                )
            }
            ("GET", "/api/environments/{env}/flags/{key}/insights") => {
                let key = self.fresh_flag().await;
                (
                    format!("/api/environments/{env}/flags/{key}/insights"),
                    None,
                )
            }
            (_, "/api/environments/{env}/flags/{key}/scheduled-changes") => {
                let key = self.fresh_flag().await;
                let body = (route.method == "POST").then(|| {
                    json!({"scheduled_at": "2099-01-01T00:00:00Z", "patch": {"is_enabled": false}})
                });
                (
                    format!("/api/environments/{env}/flags/{key}/scheduled-changes"),
                    body,
                )
            }
            ("DELETE", "/api/environments/{env}/scheduled-changes/{id}") => {
                let key = self.fresh_flag().await;
                let created = self
                    .admin(
                        "POST",
                        &format!("/api/environments/{env}/flags/{key}/scheduled-changes"),
                        json!({"scheduled_at": "2099-01-01T00:00:00Z", "patch": {"is_enabled": false}}),
                    )
                    .await;
                let id = created.body["id"].as_str().unwrap();
                (
                    format!("/api/environments/{env}/scheduled-changes/{id}"),
                    None,
                )
            }
            ("POST", "/api/environments/{env}/impressions") => (
                format!("/api/environments/{env}/impressions"),
                Some(json!([{"flag_key": "checkout", "value": "true", "user_id": "u1"}])),
            ),
            ("POST", "/api/environments/{env}/flags/{key}/evaluate") => {
                let key = self.fresh_flag().await;
                (
                    format!("/api/environments/{env}/flags/{key}/evaluate"),
                    Some(json!({"context": {"targetingKey": "u1"}})),
                )
            }
            ("POST", "/api/environments/{env}/webhooks") => (
                format!("/api/environments/{env}/webhooks"),
                Some(json!({"name": "h", "url": "https://hooks.example.com/h"})),
            ),
            (_, template) if template.starts_with("/api/environments/{env}/webhooks/{id}") => {
                let created = self
                    .admin(
                        "POST",
                        &format!("/api/environments/{env}/webhooks"),
                        json!({"name": "h", "url": "https://hooks.example.com/h"}),
                    )
                    .await;
                let id = created.body["id"].as_str().unwrap();
                let body = (route.method == "PATCH").then(|| json!({"enabled": false}));
                (template.replace("{env}", env).replace("{id}", id), body)
            }
            ("POST", "/api/edge-tokens") => (
                route.template.into(),
                Some(json!({"name": "edge", "environments": [env]})),
            ),
            ("DELETE", "/api/edge-tokens/{id}") => {
                let created = self
                    .admin("POST", "/api/edge-tokens", json!({"name": "edge"}))
                    .await;
                let id = created.body["id"].as_str().unwrap();
                (format!("/api/edge-tokens/{id}"), None)
            }
            ("POST", "/api/users") => (
                route.template.into(),
                Some(
                    json!({"name": "N", "email": format!("n-{unique}@example.com"), "password": "password-123"}),
                ),
            ),
            ("PATCH" | "DELETE", "/api/users/{id}") => {
                let user = self.fresh_user().await;
                let body = (route.method == "PATCH").then(|| json!({"name": "Renamed"}));
                (format!("/api/users/{user}"), body)
            }
            (_, template) => {
                let path = template.replace("{id}", p).replace("{env}", env).to_owned();
                (path, None)
            }
        }
    }

    /// `body` sent as it is, as a JSON request, by `cred`.
    async fn send_raw(&self, cred: Cred, method: &str, path: &str, body: &'static str) -> Reply {
        use axum::http::{Request, header};
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some((_, cookie)) = self.sessions.iter().find(|(c, _)| *c == cred) {
            req = req
                .header(header::COOKIE, cookie)
                .header("x-checkgate-request", "1");
        } else if let Some((_, secret)) = self.secrets.iter().find(|(c, _)| *c == cred) {
            req = req.header(header::AUTHORIZATION, format!("Bearer {secret}"));
        } else {
            req = req.header("x-checkgate-request", "1");
        }
        self.api
            .send(req.body(axum::body::Body::from(body)).unwrap())
            .await
    }

    async fn send(&self, cred: Cred, method: &str, path: &str, body: Option<Value>) -> Reply {
        if let Some((_, cookie)) = self.sessions.iter().find(|(c, _)| *c == cred) {
            return self.api.call(method, path, body, Some(cookie), &[]).await;
        }
        if let Some((_, secret)) = self.secrets.iter().find(|(c, _)| *c == cred) {
            return self.api.bearer(method, path, body, secret).await;
        }
        self.api.call(method, path, body, None, &[]).await
    }
}

#[tokio::test]
async fn every_route_answers_every_caller_as_the_role_model_says() {
    let mut world = World::new().await;
    let mut failures = Vec::new();
    for route in ROUTES {
        for cred in CREDS {
            let (path, body) = world.prepare(route, cred).await;
            let reply = world.send(cred, route.method, &path, body).await;
            let status = reply.status.as_u16();
            // A password change replaces the session: go on with the new one.
            if route.template == "/api/auth/password" && reply.status.is_success() {
                let rotated = common::session_of(&reply);
                for (c, cookie) in &mut world.sessions {
                    if *c == cred {
                        cookie.clone_from(&rotated);
                    }
                }
                if cred == Cred::WorkspaceAdmin {
                    world.admin = rotated;
                }
            }
            let ok = match expected(route.need, cred) {
                None => reply.status.is_success(),
                Some(want) => status == want,
            };
            if !ok {
                failures.push(format!(
                    "{} {} as {cred:?}: got {status}, want {} ({})",
                    route.method,
                    route.template,
                    expected(route.need, cred).map_or("2xx".into(), |s| s.to_string()),
                    reply.body
                ));
            }
            if !reply.status.is_success() && status != 404 {
                // Every refusal is a JSON error body.
                assert!(
                    reply.body["error"]["code"].is_string(),
                    "{} {path} as {cred:?}: {}",
                    route.method,
                    reply.body
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} pairs answered wrongly:\n{}",
        failures.len(),
        ROUTES.len() * CREDS.len(),
        failures.join("\n")
    );
    assert_eq!(
        world
            .api
            .get("/api/auth/me", Some(&world.admin))
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "the matrix ended with logout"
    );
}

/// Bodies no route accepts: not JSON, JSON of the wrong shape, and a field no body has.
const MALFORMED: [&str; 3] = ["{\"name\": ", "[1, 2, 3]", "{\"no_such_field\": true}"];

/// Authorization comes before the body is read: a caller the role model refuses gets the same
/// 401, 403 or 404 whatever it sends, never a 400 that tells it about the body (or that the
/// route would otherwise have let it in).
#[tokio::test]
async fn callers_without_the_role_are_refused_before_the_body_is_read() {
    let world = World::new().await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for route in ROUTES {
        if route.method == "GET" || route.template == "/api/auth/logout" {
            continue;
        }
        for cred in CREDS {
            let Some(want) = expected(route.need, cred) else {
                continue;
            };
            let (path, _) = world.prepare(route, cred).await;
            for body in MALFORMED {
                let reply = world.send_raw(cred, route.method, &path, body).await;
                checked += 1;
                if reply.status.as_u16() != want {
                    failures.push(format!(
                        "{} {} as {cred:?} with {body:?}: got {}, want {want} ({})",
                        route.method,
                        route.template,
                        reply.status.as_u16(),
                        reply.body
                    ));
                }
            }
        }
    }
    assert!(checked > 300, "only {checked} requests");
    assert!(
        failures.is_empty(),
        "{} of {checked} requests answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The `(METHOD, path)` pairs the API's router is built from (its route table).
fn routed() -> BTreeSet<(String, String)> {
    checkgate_control::api::ROUTES
        .iter()
        .map(|(method, path)| (method.to_uppercase(), (*path).to_owned()))
        .collect()
}

#[test]
fn the_matrix_covers_every_route_of_the_router() {
    let routed = routed();
    assert!(routed.len() > 30, "parsed too few routes: {routed:?}");
    let covered: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.template.to_owned()))
        .collect();
    let missing: Vec<_> = routed.difference(&covered).collect();
    let extra: Vec<_> = covered.difference(&routed).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the matrix: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "rows for routes that do not exist: {extra:?}"
    );
}

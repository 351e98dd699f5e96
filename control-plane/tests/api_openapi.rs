//! The OpenAPI document served at `/api/openapi.json` is kept true here: it is OpenAPI 3.1 with
//! every `$ref` resolved; the router's route table (`api::ROUTES`, and the health routes) and
//! the operations of the document are the same set, both ways; and real responses validate
//! against the schemas the document gives for their status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use checkgate_control::api::AppState;
use checkgate_ops::{Health, metrics};
use common::{Api, Reply, api, setup_body};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The document as the server serves it.
async fn served(api: &Api) -> Value {
    let response = api
        .router
        .clone()
        .oneshot(
            Request::get("/api/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/json",
        "content type of /api/openapi.json"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).expect("the document is JSON")
}

/// Every `$ref` in `value`, with where it was found.
fn refs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push((at.to_owned(), v.as_str().unwrap_or_default().to_owned()));
                } else {
                    refs(v, &format!("{at}/{}", escape(k)), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A JSON-pointer token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Follows a local `$ref` if `value` is one.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.strip_prefix('#').unwrap())
            .unwrap_or_else(|| panic!("unresolved {r}")),
        None => value,
    }
}

/// (METHOD, path template) of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if METHODS.contains(&method.as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// (METHOD, path) of every route the control plane's router is built from: the API's route
/// table and the health and metrics routes.
fn routed() -> BTreeSet<(String, String)> {
    checkgate_control::api::ROUTES
        .iter()
        .chain(checkgate_ops::health::ROUTES)
        .map(|(method, path)| (method.to_uppercase(), (*path).to_owned()))
        .collect()
}

/// Each non-empty set under its heading, one operation a line.
fn report(sets: &[(&BTreeSet<(String, String)>, &str)]) -> String {
    let mut out = String::new();
    for (items, heading) in sets {
        if !items.is_empty() {
            out.push_str(&format!("\n{heading}:"));
            for (method, path) in *items {
                out.push_str(&format!("\n  {method} {path}"));
            }
        }
    }
    out
}

/// The document's rules that hold across operations: an operation takes a body exactly when it
/// documents what the body extractor refuses (413, 415); every write documents the CSRF header
/// `csrf::guard` demands of it, and no read does; and operation ids are unique.
#[tokio::test]
async fn every_operation_documents_what_the_layers_before_its_handler_answer() {
    let api = api().await;
    let doc = served(&api).await;
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        if !ids.insert(id.clone()) {
            problems.push(format!(
                "\n  {method} {path}: operationId {id:?} is not unique"
            ));
        }
        let has_body = op.get("requestBody").is_some();
        let refused = ["413", "415"].map(|s| op["responses"].get(s).is_some());
        if refused != [has_body; 2] {
            problems.push(format!(
                "\n  {method} {path}: request body {has_body}, but 413/415 documented {refused:?}"
            ));
        }
        let csrf = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["in"] == "header" && p["name"] == "X-Checkgate-Request");
        let write = !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
        if csrf != write {
            problems.push(format!(
                "\n  {method} {path}: a write is {write}, the CSRF header documented {csrf}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.concat());
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_every_ref_resolves() {
    let api = api().await;
    let doc = served(&api).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let mut found = Vec::new();
    refs(&doc, "#", &mut found);
    assert!(found.len() > 100, "only {} $refs", found.len());
    let broken: Vec<String> = found
        .iter()
        .filter(|(_, r)| {
            !r.starts_with("#/")
                || doc
                    .pointer(r.strip_prefix('#').unwrap_or_default())
                    .is_none()
        })
        .map(|(at, r)| format!("\n  {r} (at {at})"))
        .collect();
    assert!(broken.is_empty(), "unresolved $refs:{}", broken.concat());

    // Every schema is a valid JSON Schema (2020-12, OpenAPI 3.1's dialect).
    for (name, _) in doc["components"]["schemas"].as_object().unwrap() {
        validator(&doc, &format!("/components/schemas/{name}"));
    }

    // Every `{name}` of a path has its path parameter, and every path parameter its `{name}`.
    let mut mismatched = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let placeholders: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let params = item["parameters"]
                .as_array()
                .into_iter()
                .chain(op["parameters"].as_array())
                .flatten()
                .map(|p| resolve(&doc, p))
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect::<BTreeSet<_>>();
            if params != placeholders {
                mismatched.push(format!("\n  {method} {path}: {params:?}"));
            }
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} has no responses"
            );
        }
    }
    assert!(
        mismatched.is_empty(),
        "path parameters that differ from their path's placeholders:{}",
        mismatched.concat()
    );
}

#[tokio::test]
async fn the_routes_written_in_the_router_and_the_documented_operations_are_the_same() {
    let api = api().await;
    let doc = served(&api).await;
    let documented = documented(&doc);
    let routed = routed();

    let undocumented: BTreeSet<_> = routed.difference(&documented).cloned().collect();
    let unrouted: BTreeSet<_> = documented.difference(&routed).cloned().collect();
    let problems = report(&[
        (
            &undocumented,
            "routed handlers missing from the document (a handler without #[utoipa::path]?)",
        ),
        (
            &unrouted,
            "documented operations with no route in src/api/mod.rs",
        ),
    ]);
    assert!(problems.is_empty(), "{problems}");
}

/// Whether the router sent `response` to a handler, rather than answering 405 or the
/// router-wide JSON 404 (`no such route`) that no handler returns.
fn reached_a_handler(reply: &Reply) -> bool {
    reply.status != StatusCode::METHOD_NOT_ALLOWED
        && !(reply.status == StatusCode::NOT_FOUND
            && reply.body["error"]["message"] == "no such route")
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let mut api = api().await;
    // As `main` builds it: /metrics on the public port.
    api.router = checkgate_control::app(
        AppState::new(
            api.store.clone(),
            checkgate_control::api::SessionKey::new("test-session-secret-of-32-characters"),
            true,
        ),
        Health::new(),
        Some(metrics::handle()),
        None,
    );
    let doc = served(&api).await;

    let unknown = api.call("GET", "/api/no-such-thing", None, None, &[]).await;
    assert!(!reached_a_handler(&unknown), "{}", unknown.body);
    let wrong_method = api.call("PUT", "/api/projects", None, None, &[]).await;
    assert!(!reached_a_handler(&wrong_method), "{}", wrong_method.status);

    let mut unrouted = BTreeSet::new();
    for (method, template) in documented(&doc) {
        // Placeholders become well-formed ids; no cookie, so nothing changes.
        let uri: String = template
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    s.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let reply = if template == "/metrics" {
            // Prometheus text, not JSON.
            let response = api
                .router
                .clone()
                .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            Reply {
                status: response.status(),
                cookie: None,
                headers: response.headers().clone(),
                body: Value::Null,
            }
        } else {
            api.call(&method, &uri, None, None, &[]).await
        };
        if !reached_a_handler(&reply) {
            unrouted.insert((method, template));
        }
    }
    let problems = report(&[(
        &unrouted,
        "documented operations that reach no handler (404 `no such route` or 405)",
    )]);
    assert!(problems.is_empty(), "{problems}");
}

/// A validator for the schema at `pointer` in the document, with its `$ref`s resolved
/// against the document and formats (`date-time`, `uuid`) asserted.
fn validator(doc: &Value, pointer: &str) -> jsonschema::Validator {
    let mut root = doc.clone();
    // A URI fragment: the braces of path templates are percent-encoded.
    let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
    root["$ref"] = Value::String(format!("#{fragment}"));
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("the schema at {pointer} does not compile: {e}"))
}

/// Checks `reply` against what the document says `method template` answers: its status is
/// documented, and its body validates against that status's schema (or is empty when the
/// status has no content).
fn conforms(doc: &Value, method: &str, template: &str, reply: &Reply) {
    let op = &doc["paths"][template][method.to_lowercase()];
    assert!(op.is_object(), "{method} {template} is not documented");
    let status = reply.status.as_str();
    let Some(response) = op["responses"].get(status) else {
        panic!(
            "{method} {template} answered {status}, which is not documented: {}",
            reply.body
        );
    };
    let pointer = match response.get("$ref").and_then(Value::as_str) {
        Some(r) => r.strip_prefix('#').unwrap().to_owned(),
        None => format!(
            "/paths/{}/{}/responses/{status}",
            escape(template),
            method.to_lowercase()
        ),
    };
    let response = doc.pointer(&pointer).unwrap();
    committed_version_documented(doc, method, template, &pointer, reply);
    if response.get("content").is_none() {
        assert!(
            reply.body.is_null(),
            "{method} {template} {status} has a body, but none is documented: {}",
            reply.body
        );
        return;
    }
    let schema = format!("{pointer}/content/application~1json/schema");
    let validator = validator(doc, &schema);
    let errors: Vec<String> = validator
        .iter_errors(&reply.body)
        .map(|e| format!("\n  {e} (at {})", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {template} {status} does not match its schema:{}\nbody: {}",
        errors.concat(),
        reply.body
    );
}

/// A write's `X-Checkgate-Version` is documented on the answer that carries it, its value
/// matches the header's schema, and it is the version of the body (flags, segments and
/// environments carry `version`, a created SDK key `environment_version`).
fn committed_version_documented(
    doc: &Value,
    method: &str,
    template: &str,
    pointer: &str,
    reply: &Reply,
) {
    let Some(value) = reply.headers.get("x-checkgate-version") else {
        return;
    };
    let status = reply.status.as_str();
    let header = format!("{pointer}/headers/X-Checkgate-Version");
    assert!(
        doc.pointer(&header).is_some(),
        "{method} {template} {status} answers X-Checkgate-Version, which is not documented"
    );
    let text = Value::String(value.to_str().unwrap().to_owned());
    assert!(
        validator(doc, &format!("{header}/schema")).is_valid(&text),
        "{method} {template} {status}: X-Checkgate-Version {text} does not match its schema"
    );
    let version: u64 = value.to_str().unwrap().parse().unwrap();
    for field in ["version", "environment_version"] {
        if let Some(body) = reply.body.get(field) {
            assert_eq!(
                body.as_u64(),
                Some(version),
                "{method} {template} {status}: the body's {field} is the header's"
            );
        }
    }
}

/// Sends a request and checks its answer against the document.
#[allow(clippy::too_many_arguments)]
async fn checked(
    api: &Api,
    doc: &Value,
    method: &str,
    template: &str,
    uri: &str,
    body: Option<Value>,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let reply = api.call(method, uri, body, cookie, headers).await;
    conforms(doc, method, template, &reply);
    reply
}

#[tokio::test]
async fn real_responses_match_their_documented_schemas() {
    let api = api().await;
    let doc = served(&api).await;
    let c = |method, template, reply: &Reply| conforms(&doc, method, template, reply);

    let workspace = api.get("/api/auth/workspace", None).await;
    c("GET", "/api/auth/workspace", &workspace);
    assert_eq!(workspace.body["is_setup_complete"], false);

    let setup = api.post("/api/setup/complete", setup_body(), None).await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.body);
    c("POST", "/api/setup/complete", &setup);
    let again = api.post("/api/setup/complete", setup_body(), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    c("POST", "/api/setup/complete", &again);

    let login = api
        .post(
            "/api/auth/login",
            json!({"email": "admin@example.com", "password": "supersecret1"}),
            None,
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    c("POST", "/api/auth/login", &login);
    let admin = common::session_of(&login);
    let wrong = api
        .post(
            "/api/auth/login",
            json!({"email": "admin@example.com", "password": "not the password"}),
            None,
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    c("POST", "/api/auth/login", &wrong);

    let me = checked(
        &api,
        &doc,
        "GET",
        "/api/auth/me",
        "/api/auth/me",
        None,
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(me.body["role"], "admin");
    let anonymous = checked(
        &api,
        &doc,
        "GET",
        "/api/auth/me",
        "/api/auth/me",
        None,
        None,
        &[],
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // Projects and environments.
    let projects = checked(
        &api,
        &doc,
        "GET",
        "/api/projects",
        "/api/projects",
        None,
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(projects.status, StatusCode::OK);
    let project = projects.body[0]["id"].as_str().unwrap().to_owned();
    let created = checked(
        &api,
        &doc,
        "POST",
        "/api/projects",
        "/api/projects",
        Some(json!({"name": "Mobile"})),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let duplicate = checked(
        &api,
        &doc,
        "POST",
        "/api/projects",
        "/api/projects",
        Some(json!({"name": "mobile"})),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    let p = format!("/api/projects/{project}");
    checked(
        &api,
        &doc,
        "GET",
        "/api/projects/{id}",
        &p,
        None,
        Some(&admin),
        &[],
    )
    .await;
    let bad_id = checked(
        &api,
        &doc,
        "GET",
        "/api/projects/{id}",
        "/api/projects/not-a-uuid",
        None,
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
    let envs = checked(
        &api,
        &doc,
        "GET",
        "/api/projects/{id}/environments",
        &format!("{p}/environments"),
        None,
        Some(&admin),
        &[],
    )
    .await;
    let env = envs.body[0]["id"].as_str().unwrap().to_owned();
    let qa = checked(
        &api,
        &doc,
        "POST",
        "/api/projects/{id}/environments",
        &format!("{p}/environments"),
        Some(json!({"name": "QA", "slug": "qa"})),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(qa.status, StatusCode::CREATED);

    // SDK keys.
    let key = checked(
        &api,
        &doc,
        "POST",
        "/api/projects/{id}/keys",
        &format!("{p}/keys"),
        Some(json!({"name": "web", "environment_id": env, "kind": "client"})),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(key.status, StatusCode::CREATED);
    let key_id = key.body["id"].as_str().unwrap().to_owned();
    let revoked = checked(
        &api,
        &doc,
        "DELETE",
        "/api/projects/{id}/keys/{key}",
        &format!("{p}/keys/{key_id}"),
        None,
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let keys = checked(
        &api,
        &doc,
        "GET",
        "/api/projects/{id}/keys",
        &format!("{p}/keys"),
        None,
        Some(&admin),
        &[],
    )
    .await;
    assert!(keys.body[0]["revoked_at"].is_string());

    // Segments and flags, with every extension of the flag document.
    let segments = format!("/api/environments/{env}/segments");
    let segment = checked(
        &api,
        &doc,
        "POST",
        "/api/environments/{env}/segments",
        &segments,
        Some(json!({"key": "beta", "name": "Beta", "included": ["u1"],
                    "rules": [{"attribute": "email", "operator": "ends_with", "values": ["@example.com"]}]})),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(segment.status, StatusCode::CREATED, "{}", segment.body);
    checked(
        &api,
        &doc,
        "GET",
        "/api/environments/{env}/segments",
        &segments,
        None,
        Some(&admin),
        &[],
    )
    .await;
    let flags = format!("/api/environments/{env}/flags");
    let flag = checked(
        &api,
        &doc,
        "POST",
        "/api/environments/{env}/flags",
        &flags,
        Some(json!({
            "key": "checkout", "is_enabled": true, "flag_type": "string", "description": "new flow",
            "default_value": "v2", "disabled_value": "v1",
            "variants": [{"key": "blue", "value": "b"}, {"key": "green", "value": "g", "description": "new"}],
            "split": {"weights": [{"variant": "blue", "weight": 50000}, {"variant": "green", "weight": 50000}]},
            "rules": [
                {"attribute": "plan", "operator": "equals", "values": ["pro"], "variant": "v3"},
                {"segment_key": "beta", "conditions": [{"attribute": "age", "operator": "gte", "values": ["18"]}],
                 "split": {"weights": [{"variant": "blue", "weight": 100000}]}, "description": "beta"}
            ],
            "bucket_by": "account", "salt": "s1", "tags": ["web"]
        })),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(flag.status, StatusCode::CREATED, "{}", flag.body);
    let plain = checked(
        &api,
        &doc,
        "POST",
        "/api/environments/{env}/flags",
        &flags,
        Some(json!({"key": "plain", "is_enabled": false, "prerequisites": [{"key": "checkout", "variants": ["blue"]}]})),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.body);
    let listed = checked(
        &api,
        &doc,
        "GET",
        "/api/environments/{env}/flags",
        &flags,
        None,
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);
    let one = format!("{flags}/checkout");
    checked(
        &api,
        &doc,
        "GET",
        "/api/environments/{env}/flags/{key}",
        &one,
        None,
        Some(&admin),
        &[],
    )
    .await;
    let patched = checked(
        &api,
        &doc,
        "PATCH",
        "/api/environments/{env}/flags/{key}",
        &one,
        Some(json!({"is_enabled": false})),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let stale = checked(
        &api,
        &doc,
        "PATCH",
        "/api/environments/{env}/flags/{key}",
        &one,
        Some(json!({"is_enabled": true})),
        Some(&admin),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let invalid = checked(
        &api,
        &doc,
        "POST",
        "/api/environments/{env}/flags",
        &flags,
        Some(json!({"key": "bad", "is_enabled": true, "rollout_percentage": 150})),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = checked(
        &api,
        &doc,
        "GET",
        "/api/environments/{env}/flags/{key}",
        &format!("{flags}/nope"),
        None,
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let in_use = checked(
        &api,
        &doc,
        "DELETE",
        "/api/environments/{env}/segments/{key}",
        &format!("{segments}/beta"),
        None,
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(in_use.status, StatusCode::CONFLICT);

    // Users and members.
    let user = checked(
        &api,
        &doc,
        "POST",
        "/api/users",
        "/api/users",
        Some(json!({"name": "Dev", "email": "dev@example.com", "password": "password-123"})),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(user.status, StatusCode::CREATED);
    let user_id = user.body["id"].as_str().unwrap().to_owned();
    checked(
        &api,
        &doc,
        "GET",
        "/api/users",
        "/api/users",
        None,
        Some(&admin),
        &[],
    )
    .await;
    let member = checked(
        &api,
        &doc,
        "POST",
        "/api/projects/{id}/members",
        &format!("{p}/members"),
        Some(json!({"user_id": user_id, "role": "editor"})),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(member.status, StatusCode::CREATED);
    checked(
        &api,
        &doc,
        "GET",
        "/api/projects/{id}/members",
        &format!("{p}/members"),
        None,
        Some(&admin),
        &[],
    )
    .await;

    // The audit log, in both shapes.
    let audit = checked(
        &api,
        &doc,
        "GET",
        "/api/audit",
        "/api/audit?limit=5",
        None,
        Some(&admin),
        &[],
    )
    .await;
    assert!(audit.body["next_cursor"].is_i64());
    let rest = checked(
        &api,
        &doc,
        "GET",
        "/api/audit",
        "/api/audit?limit=500",
        None,
        Some(&admin),
        &[],
    )
    .await;
    assert!(rest.body["next_cursor"].is_null());
    checked(
        &api,
        &doc,
        "GET",
        "/api/environments/{env}/audit",
        &format!("/api/environments/{env}/audit"),
        None,
        Some(&admin),
        &[],
    )
    .await;

    // Errors of the transport: no CSRF header, no JSON content type, too large.
    let forbidden = api
        .send(
            Request::post("/api/projects")
                .header(header::COOKIE, &admin)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"name":"x"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    c("POST", "/api/projects", &forbidden);
    let unsupported = api
        .send(
            Request::post("/api/projects")
                .header(header::COOKIE, &admin)
                .header("x-checkgate-request", "1")
                .body(Body::from(r#"{"name":"x"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(unsupported.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    c("POST", "/api/projects", &unsupported);
    let large = checked(
        &api,
        &doc,
        "POST",
        "/api/projects",
        "/api/projects",
        Some(json!({"name": "x".repeat(checkgate_control::api::BODY_LIMIT)})),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(large.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Impressions and insights.
    let sdk = api.sdk_key(&admin, &project, &env, "server").await;
    let bearer = format!("Bearer {sdk}");
    let ingest = format!("/api/environments/{env}/impressions");
    for (body, status) in [
        (
            json!([{"flag_key": "checkout", "value": "true", "user_id": "u1",
                    "context": {"plan": "pro"}, "evaluated_at": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 - 60_000}]),
            StatusCode::NO_CONTENT,
        ),
        (
            json!([{"flag_key": "bad key", "value": "true"}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            serde_json::Value::Array(vec![json!({"flag_key": "f", "value": "v"}); 501]),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let reply = checked(
            &api,
            &doc,
            "POST",
            "/api/environments/{env}/impressions",
            &ingest,
            Some(body),
            None,
            &[("authorization", &bearer)],
        )
        .await;
        assert_eq!(reply.status, status, "{}", reply.body);
    }
    let refused = checked(
        &api,
        &doc,
        "POST",
        "/api/environments/{env}/impressions",
        &ingest,
        Some(json!([])),
        None,
        &[],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    for (template, uri) in [
        (
            "/api/environments/{env}/impressions",
            format!("{ingest}?since_id=0&limit=500"),
        ),
        (
            "/api/environments/{env}/impressions/stats",
            format!("{ingest}/stats"),
        ),
        (
            "/api/environments/{env}/insights",
            format!("/api/environments/{env}/insights"),
        ),
        (
            "/api/environments/{env}/flags/{key}/insights",
            format!("/api/environments/{env}/flags/checkout/insights?range=1h"),
        ),
    ] {
        let reply = checked(&api, &doc, "GET", template, &uri, None, Some(&admin), &[]).await;
        assert!(
            reply.status.is_success() || reply.status == StatusCode::NOT_FOUND,
            "{uri}: {}",
            reply.body
        );
    }

    // Scheduled changes: scheduled, listed, cancelled once, refused.
    let flag_schedules = "/api/environments/{env}/flags/{key}/scheduled-changes";
    let schedules_uri = format!("/api/environments/{env}/flags/checkout/scheduled-changes");
    let scheduled = checked(
        &api,
        &doc,
        "POST",
        flag_schedules,
        &schedules_uri,
        Some(json!({"scheduled_at": "2099-01-01T00:00:00Z", "patch": {"is_enabled": false}})),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(scheduled.status, StatusCode::CREATED, "{}", scheduled.body);
    for (body, status) in [
        (
            json!({"scheduled_at": "soon", "patch": {"is_enabled": false}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"scheduled_at": "2099-01-01T00:00:00Z", "patch": {"rollout_percentage": 101}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let reply = checked(
            &api,
            &doc,
            "POST",
            flag_schedules,
            &schedules_uri,
            Some(body),
            Some(&admin),
            &[],
        )
        .await;
        assert_eq!(reply.status, status, "{}", reply.body);
    }
    for (template, uri) in [
        (flag_schedules, schedules_uri.clone()),
        (
            "/api/environments/{env}/scheduled-changes",
            format!("/api/environments/{env}/scheduled-changes?status=pending&limit=10"),
        ),
    ] {
        let reply = checked(&api, &doc, "GET", template, &uri, None, Some(&admin), &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let id = scheduled.body["id"].as_str().unwrap();
    let cancel_uri = format!("/api/environments/{env}/scheduled-changes/{id}");
    for status in [StatusCode::NO_CONTENT, StatusCode::CONFLICT] {
        let reply = checked(
            &api,
            &doc,
            "DELETE",
            "/api/environments/{env}/scheduled-changes/{id}",
            &cancel_uri,
            None,
            Some(&admin),
            &[],
        )
        .await;
        assert_eq!(reply.status, status, "{}", reply.body);
    }

    // Operations: the harness's process has no readiness check, so it is not ready.
    // Webhooks: created, listed, changed, tested, its deliveries, a URL that is not http(s) and
    // an empty secret, deleted.
    let hooks = format!("/api/environments/{env}/webhooks");
    let hooks_t = "/api/environments/{env}/webhooks";
    let hook = checked(
        &api,
        &doc,
        "POST",
        hooks_t,
        &hooks,
        Some(json!({"name": "h", "url": "https://hooks.example.com/h"})),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.body);
    let hook_id = hook.body["id"].as_str().unwrap().to_owned();
    for (body, status) in [
        (
            json!({"name": "h", "url": "ftp://example.com/"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "h", "url": "https://example.com/", "secret": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let refused = checked(
            &api,
            &doc,
            "POST",
            hooks_t,
            &hooks,
            Some(body),
            Some(&admin),
            &[],
        )
        .await;
        assert_eq!(refused.status, status, "{}", refused.body);
    }
    checked(&api, &doc, "GET", hooks_t, &hooks, None, Some(&admin), &[]).await;
    let one_t = "/api/environments/{env}/webhooks/{id}";
    let one = format!("{hooks}/{hook_id}");
    let patched = checked(
        &api,
        &doc,
        "PATCH",
        one_t,
        &one,
        Some(json!({"enabled": false})),
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let tested = checked(
        &api,
        &doc,
        "POST",
        "/api/environments/{env}/webhooks/{id}/test",
        &format!("{one}/test"),
        None,
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(tested.status, StatusCode::ACCEPTED, "{}", tested.body);
    let log = checked(
        &api,
        &doc,
        "GET",
        "/api/environments/{env}/webhooks/{id}/deliveries",
        &format!("{one}/deliveries"),
        None,
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(log.body.as_array().unwrap().len(), 1);
    let gone = checked(&api, &doc, "DELETE", one_t, &one, None, Some(&admin), &[]).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);

    checked(&api, &doc, "GET", "/health", "/health", None, None, &[]).await;
    let ready = checked(&api, &doc, "GET", "/ready", "/ready", None, None, &[]).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);

    let logout = checked(
        &api,
        &doc,
        "POST",
        "/api/auth/logout",
        "/api/auth/logout",
        None,
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert!(logout.cookie.unwrap().starts_with("cg_session=;"));
}

#[tokio::test]
async fn the_schema_check_rejects_what_the_document_does_not_allow() {
    let api = api().await;
    let doc = served(&api).await;
    let project = validator(&doc, "/components/schemas/Project");
    let good = json!({"id": uuid::Uuid::new_v4().to_string(), "name": "Web", "slug": "web",
                      "created_at": "2026-11-23T12:34:56.789Z", "environment_count": 3});
    assert!(project.is_valid(&good));
    for (field, value) in [
        ("created_at", json!("yesterday")),
        ("id", json!("not-a-uuid")),
        ("environment_count", json!(null)),
        ("extra", json!(1)),
    ] {
        let mut bad = good.clone();
        bad[field] = value;
        assert!(!project.is_valid(&bad), "{bad}");
    }
    let error = validator(
        &doc,
        "/components/responses/NotFound/content/application~1json/schema",
    );
    assert!(error.is_valid(&json!({"error": {"code": "not_found", "message": "no such route"}})));
    assert!(!error.is_valid(&json!({"error": {"code": "conflict", "message": "taken"}})));
}

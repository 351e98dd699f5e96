//! Read your writes at the SDK routes: with `X-Checkgate-Min-Version`, evaluation (ours and
//! OFREP's, single and bulk) and the stream's bootstrap answer from that version of the
//! environment or a later one — at once when the replica holds it, after waiting while it is
//! on its way (changes applied by another task while the request waits), with a 503 when it
//! does not come in time — and a malformed header is a 400 in the route's shape, after the key
//! is checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use checkgate_protocol::frame::Item;
use checkgate_serve::ServeArgs;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

mod common;

use common::*;

/// An upper bound for what must happen at once or after a change: generous, so a loaded
/// machine cannot fail it; reaching it means the answer hung.
const HUNG: Duration = Duration::from_secs(60);

/// Waits long enough never to run out in a test.
fn patient() -> ServeArgs {
    ServeArgs {
        min_version_wait_ms: 3_600_000,
        ..ServeArgs::default()
    }
}

/// The evaluation routes, and whether each answers in OFREP's shape.
const ROUTES: [(&str, bool); 4] = [
    ("/api/v1/evaluate/checkout", false),
    ("/api/v1/evaluate", false),
    ("/ofrep/v1/evaluate/flags/checkout", true),
    ("/ofrep/v1/evaluate/flags", true),
];

fn evaluate(path: &str, key: &str, min: Option<&str>) -> Request<Body> {
    let mut request = Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(min) = min {
        request = request.header("x-checkgate-min-version", min);
    }
    request
        .body(Body::from(
            json!({"context": {"targetingKey": "u1"}}).to_string(),
        ))
        .unwrap()
}

fn stream(key: &str, min: &str) -> Request<Body> {
    Request::get("/stream")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header("x-checkgate-min-version", min)
        .body(Body::empty())
        .unwrap()
}

/// `checkout` rewritten so that everyone gets `value`.
fn checkout(value: &str) -> Item {
    Item::FlagUpsert {
        key: "checkout".into(),
        json: json!({"key": "checkout", "is_enabled": true, "flag_type": "string",
                     "default_value": value, "disabled_value": "off"})
        .to_string(),
    }
}

/// The value `checkout` has in an evaluation answer of any of [`ROUTES`].
fn checkout_value(answer: &Value) -> Value {
    match answer.get("flags").and_then(Value::as_array) {
        Some(flags) => flags
            .iter()
            .find(|f| f["key"] == "checkout")
            .map(|f| f["value"].clone())
            .unwrap_or_default(),
        None => answer["value"].clone(),
    }
}

async fn json_of(response: axum::response::Response) -> (StatusCode, axum::http::HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    (status, headers, body)
}

async fn call(w: &World, request: Request<Body>) -> axum::response::Response {
    tokio::time::timeout(HUNG, w.router.clone().oneshot(request))
        .await
        .expect("answered")
        .unwrap()
}

/// Lets every other task run until it waits (a single-threaded test runtime).
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_version_the_replica_holds_is_answered_at_once() {
    let w = world_serving("{}", &patient());
    for (path, _) in ROUTES {
        for min in ["0", "1", "3"] {
            let (status, _, body) =
                json_of(call(&w, evaluate(path, SERVER_KEY, Some(min))).await).await;
            assert_eq!(status, StatusCode::OK, "{path} at {min}: {body}");
            assert_eq!(checkout_value(&body), "v2", "{path} at {min}: {body}");
        }
    }
    let response = call(&w, stream(SERVER_KEY, "3")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let bootstrap = bootstrap_of(&mut response.into_body(), HUNG).await.unwrap();
    assert!(
        bootstrap.ends_with("data: {\"version\":3}\n\n"),
        "{bootstrap}"
    );
}

#[tokio::test]
async fn an_evaluation_waits_for_its_version_and_answers_from_it() {
    let w = world_serving("{}", &patient());
    let mut version = 3;
    for (path, _) in ROUTES {
        // Two changes to come: one short of the version asked for, then that version.
        let wanted = version + 2;
        let pending = tokio::spawn(w.router.clone().oneshot(evaluate(
            path,
            SERVER_KEY,
            Some(&wanted.to_string()),
        )));
        settle().await;
        assert!(!pending.is_finished(), "{path} waits for version {wanted}");
        w.apply(version + 1, Item::SettingsUpdate { json: "{}".into() });
        settle().await;
        assert!(
            !pending.is_finished(),
            "{path} still waits for version {wanted}"
        );
        let value = format!("v{wanted}");
        w.apply(wanted, checkout(&value));
        let response = tokio::time::timeout(HUNG, pending)
            .await
            .expect("answered once the version came")
            .unwrap()
            .unwrap();
        let (status, _, body) = json_of(response).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(checkout_value(&body), value.as_str(), "{path}: {body}");
        version = wanted;
    }
}

#[tokio::test]
async fn a_streams_bootstrap_waits_for_its_version() {
    let w = world_serving("{}", &patient());
    let pending = tokio::spawn(w.router.clone().oneshot(stream(SERVER_KEY, "5")));
    settle().await;
    assert!(!pending.is_finished(), "the stream waits for version 5");
    w.apply(4, Item::SettingsUpdate { json: "{}".into() });
    w.apply(5, checkout("v5"));
    let response = tokio::time::timeout(HUNG, pending)
        .await
        .expect("answered once the version came")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bootstrap = bootstrap_of(&mut response.into_body(), HUNG).await.unwrap();
    assert!(
        bootstrap.contains("\"default_value\":\"v5\""),
        "{bootstrap}"
    );
    assert!(
        bootstrap.ends_with("data: {\"version\":5}\n\n"),
        "{bootstrap}"
    );
}

#[tokio::test]
async fn a_version_that_does_not_come_in_time_is_a_503_to_retry_in_a_second() {
    let w = world_serving(
        "{}",
        &ServeArgs {
            min_version_wait_ms: 20,
            ..ServeArgs::default()
        },
    );
    for (path, ofrep) in ROUTES {
        let (status, headers, body) =
            json_of(call(&w, evaluate(path, SERVER_KEY, Some("1000"))).await).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(headers[header::RETRY_AFTER], "1", "{path}");
        if ofrep {
            assert!(
                body["errorDetails"].as_str().unwrap().contains("1000"),
                "{path}: {body}"
            );
        } else {
            assert_eq!(
                body["error"]["code"], "version_not_reached",
                "{path}: {body}"
            );
        }
    }
    let (status, headers, body) = json_of(call(&w, stream(SERVER_KEY, "1000")).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert_eq!(body["error"]["code"], "version_not_reached", "{body}");
    // An answer that is not asked for a version is served as ever.
    let (status, _, _) = json_of(call(&w, evaluate(ROUTES[0].0, SERVER_KEY, None)).await).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_malformed_version_is_a_400_and_a_bad_key_a_401_at_once() {
    let w = world_serving("{}", &patient());
    for (path, ofrep) in ROUTES {
        for bad in ["abc", "-1", "1.0", "99999999999999999999"] {
            let (status, _, body) =
                json_of(call(&w, evaluate(path, SERVER_KEY, Some(bad))).await).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {bad:?}: {body}");
            if ofrep {
                assert_eq!(body["errorCode"], "GENERAL", "{path}: {body}");
                assert!(body["errorDetails"].is_string(), "{path}: {body}");
            } else {
                assert_eq!(body["error"]["code"], "bad_header", "{path}: {body}");
            }
        }
        // The key first: no wait and no word about the header for a caller who has none.
        for min in ["1000", "abc"] {
            let (status, _, body) =
                json_of(call(&w, evaluate(path, "cg_srv_nobody", Some(min))).await).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {min}: {body}");
        }
    }
    let (status, _, body) = json_of(call(&w, stream(SERVER_KEY, "v3")).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "bad_header", "{body}");
    let (status, _, _) = json_of(call(&w, stream("cg_srv_nobody", "1000")).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = json_of(call(&w, stream(CLIENT_KEY, "1000")).await).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a client key may not read rules"
    );
}

#[tokio::test]
async fn browsers_may_send_the_header() {
    let w = world();
    let response = call(
        &w,
        Request::options("/api/v1/evaluate")
            .header(header::ORIGIN, "https://app.example")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let allowed = response.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("x-checkgate-min-version"), "{allowed}");
}

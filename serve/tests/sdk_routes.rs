//! The routes SDKs call, answered in-process from a replica built here: our evaluation API,
//! OFREP (single, bulk with ETag and 304, change notifications), the rule payload, and
//! Checkgate's SSE stream (bootstrap, live updates, resume, revocation, slow clients) — and
//! every malformed request getting its right 4xx in the shape its client reads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use checkgate_protocol::frame::Item;
use checkgate_serve::{self as sdk, SdkState, ServeArgs};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

mod common;

use common::*;

#[tokio::test]
async fn our_evaluation_api_answers_values_and_refuses_bad_requests_in_its_shape() {
    let w = world();
    let pro = json!({"context": {"targetingKey": "u1", "plan": "pro"}});
    let one = w
        .post("/api/v1/evaluate/checkout", CLIENT_KEY, pro.clone())
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(
        one.json(),
        json!({"key": "checkout", "value": "v3", "variant": "v3", "reason": "TARGETING_MATCH", "enabled": true})
    );
    let all = w.post("/api/v1/evaluate", SERVER_KEY, pro).await;
    let keys: Vec<String> = all.json()["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["beta", "checkout", "dark"]);
    let some = w
        .post(
            "/api/v1/evaluate",
            SERVER_KEY,
            json!({"context": {"targetingKey": "u1"}, "flags": ["dark", "ghost"]}),
        )
        .await;
    assert_eq!(some.json()["flags"][0]["reason"], "DISABLED");
    assert_eq!(some.json()["flags"][1]["errorCode"], "FLAG_NOT_FOUND");

    let error = |reply: &Reply, status: StatusCode, code: &str| {
        assert_eq!(
            reply.status,
            status,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.json()["error"]["code"], code);
        assert!(
            reply.json()["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    };
    error(
        &w.post("/api/v1/evaluate/ghost", SERVER_KEY, json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "flag_not_found",
    );
    error(
        &w.post(
            "/api/v1/evaluate/checkout",
            SERVER_KEY,
            json!({"context": {"plan": "free"}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "targeting_key_missing",
    );
    error(
        &w.post(
            "/api/v1/evaluate/checkout",
            SERVER_KEY,
            json!({"context": {"targetingKey": 5}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_context",
    );
    error(
        &w.post(
            "/api/v1/evaluate",
            SERVER_KEY,
            json!({"context": {}, "flag": ["x"]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_context",
    );
    let raw = |body: &'static str, content_type: &'static str| {
        Request::post("/api/v1/evaluate")
            .header("x-api-key", SERVER_KEY)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    error(
        &w.send(raw("{not json", "application/json")).await,
        StatusCode::BAD_REQUEST,
        "invalid_context",
    );
    error(
        &w.send(raw("{}", "text/plain")).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let huge = json!({"context": {"targetingKey": "u", "blob": "x".repeat(70 * 1024)}});
    error(
        &w.post("/api/v1/evaluate", SERVER_KEY, huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // An empty body is an empty context.
    let empty = w
        .send(
            Request::post("/api/v1/evaluate")
                .header("x-api-key", SERVER_KEY)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(empty.status, StatusCode::OK);

    error(
        &w.post("/api/v1/evaluate", "cg_srv_nope", json!({})).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let anonymous = w
        .send(
            Request::post("/api/v1/evaluate")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    error(&anonymous, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn an_edge_that_is_not_caught_up_answers_503_never_401() {
    let (state, _events) = SdkState::new(common::served(false), &ServeArgs::default());
    let router = sdk::routes(state);
    let response = router
        .oneshot(
            Request::post("/ofrep/v1/evaluate/flags")
                .header("x-api-key", SERVER_KEY)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "5");
}

#[tokio::test]
async fn ofrep_answers_as_the_real_providers_require() {
    let w = world();
    let single = w
        .post(
            "/ofrep/v1/evaluate/flags/checkout",
            CLIENT_KEY,
            json!({"context": {"targetingKey": "u1", "plan": "pro"}}),
        )
        .await;
    assert_eq!(single.status, StatusCode::OK);
    assert_eq!(single.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(
        single.json(),
        json!({"key": "checkout", "value": "v3", "variant": "v3", "reason": "TARGETING_MATCH"})
    );
    // A disabled flag carries value and variant (the providers need both).
    let dark = w
        .post("/ofrep/v1/evaluate/flags/dark", CLIENT_KEY, json!({}))
        .await;
    assert_eq!(dark.json()["reason"], "DISABLED");
    assert!(dark.json().get("value").is_some() && dark.json().get("variant").is_some());
    let missing = w
        .post("/ofrep/v1/evaluate/flags/ghost", CLIENT_KEY, json!({}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["key"], "ghost");
    assert_eq!(missing.json()["errorCode"], "FLAG_NOT_FOUND");
    assert!(missing.json()["errorDetails"].is_string());
    let keyless = w
        .post(
            "/ofrep/v1/evaluate/flags/checkout",
            CLIENT_KEY,
            json!({"context": {}}),
        )
        .await;
    assert_eq!(keyless.status, StatusCode::BAD_REQUEST);
    assert_eq!(keyless.json()["errorCode"], "TARGETING_KEY_MISSING");
    let bad = w
        .send(
            Request::post("/ofrep/v1/evaluate/flags/checkout")
                .header("x-api-key", CLIENT_KEY)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("[1,2"))
                .unwrap(),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["key"], "checkout");
    assert_eq!(bad.json()["errorCode"], "INVALID_CONTEXT");
    let unknown = w
        .post(
            "/ofrep/v1/evaluate/flags/checkout",
            "cg_cli_nope",
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.json()["errorDetails"].is_string());

    // Bulk: an ETag from the answer, 304 when it matches, another for another context.
    let ctx = json!({"context": {"targetingKey": "u1", "plan": "pro"}});
    let bulk = w
        .post(
            "/ofrep/v1/evaluate/flags?flagConfigEtag=x&flagConfigLastModified=1",
            CLIENT_KEY,
            ctx.clone(),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::OK);
    let etag = bulk.headers[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(
        bulk.headers["access-control-expose-headers"],
        "ETag, Retry-After"
    );
    assert_eq!(bulk.headers["access-control-allow-origin"], "*");
    assert_eq!(bulk.json()["flags"].as_array().unwrap().len(), 3);
    let stream = &bulk.json()["eventStreams"][0];
    assert_eq!(stream["type"], "sse");
    assert!(
        stream["endpoint"]["requestUri"]
            .as_str()
            .unwrap()
            .starts_with("/ofrep/v1/events?token=")
    );
    let again = w
        .send(
            Request::post("/ofrep/v1/evaluate/flags")
                .header("x-api-key", CLIENT_KEY)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::from(ctx.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    let other = w
        .send(
            Request::post("/ofrep/v1/evaluate/flags")
                .header("x-api-key", CLIENT_KEY)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::from(
                    json!({"context": {"targetingKey": "u1", "plan": "free"}}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(
        other.status,
        StatusCode::OK,
        "same targeting key, other context: not a 304"
    );
    assert_ne!(other.headers[header::ETAG], etag.as_str());
}

/// Reads the next chunk of a streaming body, within `limit`.
#[tokio::test]
async fn ofrep_change_notifications_arrive_by_token_and_stop_on_revocation() {
    let w = world();
    let bulk = w
        .post("/ofrep/v1/evaluate/flags", CLIENT_KEY, json!({}))
        .await;
    let uri = bulk.json()["eventStreams"][0]["endpoint"]["requestUri"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = w
        .router
        .clone()
        .oneshot(Request::get(uri.as_str()).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    let first = next_chunk(&mut body, Duration::from_secs(5)).await.unwrap();
    assert!(
        first.contains("event: message") && first.contains("refetchEvaluation"),
        "{first}"
    );
    w.apply(4, Item::FlagDelete { key: "dark".into() });
    let change = next_chunk(&mut body, Duration::from_secs(5)).await.unwrap();
    assert!(change.contains(&format!("id: {EPOCH}.4")), "{change}");
    w.apply(
        5,
        Item::SdkKeyRevoke {
            id: "k-client".into(),
        },
    );
    let mut ended = false;
    for _ in 0..5 {
        if next_chunk(&mut body, Duration::from_secs(3))
            .await
            .is_none()
        {
            ended = true;
            break;
        }
    }
    assert!(ended, "a revoked key's notifications end");
    let refused = w
        .send(Request::get(uri.as_str()).body(Body::empty()).unwrap())
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let forged = w
        .send(
            Request::get(format!("/ofrep/v1/events?token={ENV}.k-server.99999999999.00").as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
}

/// Opens the OFREP event stream advertised to `key`, and reads its first notice.
async fn ofrep_events(w: &World, key: &str) -> Body {
    let bulk = w.post("/ofrep/v1/evaluate/flags", key, json!({})).await;
    let uri = bulk.json()["eventStreams"][0]["endpoint"]["requestUri"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = w
        .router
        .clone()
        .oneshot(Request::get(uri.as_str()).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = next_chunk(&mut body, Duration::from_secs(5)).await.unwrap();
    assert!(first.contains("refetchEvaluation"), "{first}");
    body
}

#[tokio::test]
async fn a_revoked_key_ends_its_ofrep_stream_at_the_next_change_and_withdrawn_rules_do_not() {
    let w = world_with(r#"{"client_keys_read_rules":true}"#);
    let mut notices = ofrep_events(&w, CLIENT_KEY).await;
    let (status, mut rules) = open_stream(&w, CLIENT_KEY, None).await;
    assert_eq!(status, StatusCode::OK);
    bootstrap_of(&mut rules, Duration::from_secs(5))
        .await
        .unwrap();

    // Rules withdrawn from client keys: the client key's stream of rules ends; its stream of
    // evaluation notices, which carries no rule, goes on.
    w.apply(4, Item::SettingsUpdate { json: "{}".into() });
    assert_eq!(
        next_chunk(&mut rules, Duration::from_secs(5)).await,
        None,
        "a stream of rules ends when client keys may no longer read them"
    );
    let change = next_chunk(&mut notices, Duration::from_secs(5))
        .await
        .expect("the notices go on");
    assert!(change.contains(&format!("id: {EPOCH}.4\n")), "{change}");

    // The revocation's own change ends the notices: no notice for it, no wait for a check.
    w.apply(
        5,
        Item::SdkKeyRevoke {
            id: "k-client".into(),
        },
    );
    assert_eq!(
        next_chunk(&mut notices, Duration::from_secs(5)).await,
        None,
        "the next change after a revocation ends the stream"
    );
}

#[tokio::test]
async fn the_rule_payload_is_for_server_keys_with_etag_and_gzip() {
    let w = world();
    let get = |key: &'static str| {
        Request::get("/api/v1/flags").header(header::AUTHORIZATION, format!("Bearer {key}"))
    };
    let plain = w.send(get(SERVER_KEY).body(Body::empty()).unwrap()).await;
    assert_eq!(plain.status, StatusCode::OK);
    let json = plain.json();
    assert_eq!(json["version"], 3);
    assert_eq!(json["flags"].as_array().unwrap().len(), 3);
    assert_eq!(json["segments"][0]["key"], "testers");
    let etag = plain.headers[header::ETAG].to_str().unwrap().to_owned();
    let zipped = w
        .send(
            get(SERVER_KEY)
                .header(header::ACCEPT_ENCODING, "gzip")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(zipped.headers[header::CONTENT_ENCODING], "gzip");
    let mut decoded = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&zipped.body[..]),
        &mut decoded,
    )
    .unwrap();
    assert_eq!(decoded, plain.body);
    let unchanged = w
        .send(
            get(SERVER_KEY)
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    w.apply(4, Item::FlagDelete { key: "dark".into() });
    let changed = w
        .send(
            get(SERVER_KEY)
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(changed.json()["flags"].as_array().unwrap().len(), 2);
    let client = w.send(get(CLIENT_KEY).body(Body::empty()).unwrap()).await;
    assert_eq!(client.status, StatusCode::FORBIDDEN);
    assert!(
        !String::from_utf8_lossy(&client.body).contains("example.com"),
        "no targeting data"
    );
}

async fn open_stream(w: &World, key: &str, last_event_id: Option<&str>) -> (StatusCode, Body) {
    let mut request =
        Request::get("/stream").header(header::AUTHORIZATION, format!("Bearer {key}"));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = w
        .router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    (response.status(), response.into_body())
}

#[tokio::test]
async fn the_stream_speaks_checkgates_wire_format_and_resumes() {
    let w = world();
    let (status, mut body) = open_stream(&w, SERVER_KEY, None).await;
    assert_eq!(status, StatusCode::OK);
    let bootstrap = bootstrap_of(&mut body, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        bootstrap.starts_with("retry: 2000\n\nevent: connected\ndata: true\n\n"),
        "{bootstrap}"
    );
    let updates: Vec<&str> = bootstrap
        .split("\n\n")
        .filter(|e| e.contains("event: update"))
        .collect();
    assert_eq!(updates.len(), 3, "one update per flag: {bootstrap}");
    // Byte for byte what Checkgate sends for a flag, keys sorted at every level.
    assert!(bootstrap.contains(&format!(
        "data: {{\"env_id\":\"{ENV}\",\"flag\":{{\"default_value\":\"v2\",\"description\":null,\"disabled_value\":\"v1\",\"flag_type\":\"string\",\"is_enabled\":true,\"key\":\"checkout\",\"rollout_percentage\":50,\"rules\":[{{\"attribute\":\"plan\",\"operator\":\"equals\",\"values\":[\"pro\"],\"variant\":\"v3\"}}]}},\"type\":\"UPSERT\"}}"
    )), "{bootstrap}");
    // A segment rule is expanded into the segment's rules, taking the rule's value.
    assert!(bootstrap.contains("\"attribute\":\"email\",\"operator\":\"ends_with\",\"values\":[\"@example.com\"],\"variant\":true"), "{bootstrap}");
    assert!(bootstrap.ends_with(&format!(
        "id: {EPOCH}.3\nevent: ready\ndata: {{\"version\":3}}\n\n"
    )));

    w.apply(4, Item::FlagDelete { key: "dark".into() });
    let live = next_chunk(&mut body, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        live,
        format!(
            "id: {EPOCH}.4\nevent: update\ndata: {{\"env_id\":\"{ENV}\",\"key\":\"dark\",\"type\":\"DELETE\"}}\n\n"
        )
    );
    w.apply(5, Item::SegmentUpsert {
        key: "testers".into(),
        json: json!({"key": "testers", "name": "T", "rules": [{"attribute": "email", "operator": "ends_with", "values": ["@corp.example"]}]}).to_string(),
    });
    let segment = next_chunk(&mut body, Duration::from_secs(5)).await.unwrap();
    assert!(
        segment.contains("\"key\":\"beta\"") && segment.contains("@corp.example"),
        "a segment change re-sends its flags: {segment}"
    );

    // Resuming from version 3 replays 4 and 5 — without `connected`.
    let (_, mut resumed) = open_stream(&w, SERVER_KEY, Some(&format!("{EPOCH}.3"))).await;
    let missed = next_chunk(&mut resumed, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(!missed.contains("connected"), "{missed}");
    assert!(
        missed.contains(&format!("id: {EPOCH}.4")) && missed.contains(&format!("id: {EPOCH}.5")),
        "{missed}"
    );
    // Another epoch's id gets a fresh bootstrap.
    let (_, mut fresh) = open_stream(&w, SERVER_KEY, Some("1.3")).await;
    assert!(
        next_chunk(&mut fresh, Duration::from_secs(5))
            .await
            .unwrap()
            .contains("event: connected")
    );
}

#[tokio::test]
async fn client_keys_get_no_rules_unless_the_environment_allows_it() {
    let w = world();
    let (status, body) = open_stream(&w, CLIENT_KEY, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body = body.collect().await.unwrap().to_bytes();
    assert!(!String::from_utf8_lossy(&body).contains("example.com"));
    let allowed = world_with(r#"{"client_keys_read_rules":true}"#);
    let (status, _) = open_stream(&allowed, CLIENT_KEY, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_revoked_key_ends_its_stream_and_a_slow_client_is_cut_off() {
    let w = world();
    let (_, mut revoked) = open_stream(&w, SERVER_KEY, None).await;
    bootstrap_of(&mut revoked, Duration::from_secs(5))
        .await
        .unwrap();
    w.apply(
        4,
        Item::SdkKeyRevoke {
            id: "k-server".into(),
        },
    );
    let mut ended = false;
    for _ in 0..5 {
        if next_chunk(&mut revoked, Duration::from_secs(3))
            .await
            .is_none()
        {
            ended = true;
            break;
        }
    }
    assert!(ended, "the stream of a revoked key ends");

    // A client that reads nothing while more versions pass than are kept is cut off.
    let w = world();
    let (_, mut slow) = open_stream(&w, SERVER_KEY, None).await;
    bootstrap_of(&mut slow, Duration::from_secs(5))
        .await
        .unwrap();
    for v in 4..(4 + sdk::events::RECENT_VERSIONS as u64 + 10) {
        w.apply(
            v,
            Item::FlagUpsert {
                key: "dark".into(),
                json: json!({"key": "dark", "is_enabled": v % 2 == 0}).to_string(),
            },
        );
    }
    // Wait until the events have caught up with the replica.
    let last = 4 + sdk::events::RECENT_VERSIONS as u64 + 9;
    let mut position = w.state.hub.env(ENV).subscribe();
    tokio::time::timeout(
        Duration::from_secs(10),
        position.wait_for(|(_, v)| *v >= last),
    )
    .await
    .unwrap()
    .unwrap();
    let mut chunks = 0;
    while next_chunk(&mut slow, Duration::from_secs(3))
        .await
        .is_some()
    {
        chunks += 1;
        assert!(
            chunks < 5,
            "a client too far behind is cut off, not replayed"
        );
    }
}

#[tokio::test]
async fn browsers_may_call_the_client_routes_from_any_origin_but_not_read_rules() {
    let w = world();
    for path in [
        "/ofrep/v1/evaluate/flags",
        "/ofrep/v1/evaluate/flags/checkout",
        "/api/v1/evaluate",
        "/stream",
        "/ofrep/v1/events",
    ] {
        let preflight = w
            .send(
                Request::options(path)
                    .header("origin", "http://127.0.0.1:8080")
                    .header("access-control-request-method", "POST")
                    .header("access-control-request-headers", "content-type,x-api-key")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(preflight.status, StatusCode::NO_CONTENT, "{path}");
        assert_eq!(
            preflight.headers["access-control-allow-origin"], "*",
            "{path}"
        );
        let allowed = preflight.headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            allowed.contains("x-api-key") && allowed.contains("content-type"),
            "{path}: {allowed}"
        );
    }
    // Refusals carry it too, so a browser can read them.
    let refused = w
        .post("/ofrep/v1/evaluate/flags", "cg_cli_nope", json!({}))
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers["access-control-allow-origin"], "*");
    // The rule payload is for servers: no CORS, so no page elsewhere can read it.
    let rules = w
        .send(
            Request::get("/api/v1/flags")
                .header(header::AUTHORIZATION, format!("Bearer {SERVER_KEY}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(rules.headers.get("access-control-allow-origin").is_none());
}

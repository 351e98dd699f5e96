//! `POST /api/feed`, the feed route of NATS-fed edges, refuses what it cannot use with the
//! right 4xx and a JSON body — no credential, a credential that is not a live edge token, a
//! body not declared as a feed frame, bytes that are not one frame, a frame an edge never
//! sends — and answers a well-formed `Hello` with `Welcome`. The system tests
//! (`feed_nats.rs`) drive it with a real edge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use checkgate_protocol::frame::{Hello, Resync, Welcome};
use checkgate_protocol::{Frame, HANDSHAKE_MAX_FRAME, PROTOCOL_VERSION, Secret, decode, encode};
use common::{Api, World, api, assert_error};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

const FEED_TYPE: &str = "application/vnd.checkgate.feed";

/// A request (credential, content type, body) and the status and error code it must get.
type Case<'a> = (Option<&'a str>, &'a str, Vec<u8>, StatusCode, &'a str);

/// Sends `body` as `content_type` with `token`; the status and the raw answer.
async fn feed(
    api: &Api,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let mut request = Request::post("/api/feed").header(header::CONTENT_TYPE, content_type);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = api
        .router
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

fn hello(token: &str) -> Vec<u8> {
    let frame = Frame::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        edge_token: Secret::new(token),
        edge_name: "test".into(),
        region: String::new(),
        positions: Vec::new(),
    });
    encode(&frame, HANDSHAKE_MAX_FRAME).unwrap()
}

/// The error code of a JSON error answer.
fn code(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(body)));
    value["error"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_feed_route_refuses_bad_requests_and_welcomes_an_edge() {
    let api = api().await;
    let World { admin, envs, .. } = api.world().await;
    let created = api
        .call(
            "POST",
            "/api/edge-tokens",
            Some(json!({"name": "edge"})),
            Some(&admin),
            &[],
        )
        .await;
    let token = created.body["token"].as_str().unwrap().to_owned();
    // The dashboard's session is not an edge token.
    let reply = api
        .call("POST", "/api/feed", Some(json!({})), Some(&admin), &[])
        .await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");

    let cases: Vec<Case<'_>> = vec![
        // Without a bearer credential it is a write a browser could forge: refused before
        // the route, as every such write is.
        (
            None,
            FEED_TYPE,
            hello(&token),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            Some("cge_0000"),
            FEED_TYPE,
            hello(&token),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            Some(&token),
            "application/json",
            hello(&token),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Some(&token),
            FEED_TYPE,
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Some(&token),
            FEED_TYPE,
            b"garbage!!!!!".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Some(&token),
            FEED_TYPE,
            hello(&token)[..20].to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Some(&token),
            FEED_TYPE,
            [hello(&token), hello(&token)].concat(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Some(&token),
            FEED_TYPE,
            encode(
                &Frame::Welcome(Welcome {
                    epoch: 1,
                    environments: Vec::new(),
                    heartbeat_interval_ms: 1,
                }),
                HANDSHAKE_MAX_FRAME,
            )
            .unwrap(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (n, (token, content_type, body, status, want)) in cases.into_iter().enumerate() {
        let (got, answer) = feed(&api, token, content_type, body).await;
        assert_eq!(
            got,
            status,
            "case {n}: {}",
            String::from_utf8_lossy(&answer)
        );
        assert_eq!(code(&answer), want, "case {n}");
    }

    // A hello is answered with Welcome (every environment) and a snapshot of each.
    let (status, answer) = feed(&api, Some(&token), FEED_TYPE, hello(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let mut frames = Vec::new();
    let mut rest = &answer[..];
    while let Some((frame, used)) = decode(rest, 64 << 20).unwrap() {
        frames.push(frame);
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    let Frame::Welcome(welcome) = &frames[0] else {
        panic!("first {}", frames[0].kind())
    };
    assert_eq!(welcome.environments.len(), envs.len());
    let snapshots = frames
        .iter()
        .filter(|f| matches!(f, Frame::Snapshot(_)))
        .count();
    assert_eq!(snapshots, envs.len());

    // A resync of an environment gets its snapshot; of one it was not granted, nothing.
    let resync = |env: &str| {
        encode(
            &Frame::Resync(Resync { env_id: env.into() }),
            HANDSHAKE_MAX_FRAME,
        )
        .unwrap()
    };
    let (status, answer) = feed(&api, Some(&token), FEED_TYPE, resync(&envs[0])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(matches!(
        decode(&answer, 64 << 20).unwrap(),
        Some((Frame::Snapshot(_), _))
    ));
    let (status, answer) = feed(&api, Some(&token), FEED_TYPE, resync("not-an-environment")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(answer.is_empty());
}

/// The one frame of an answer.
fn only_frame(answer: &[u8]) -> Frame {
    let (frame, used) = decode(answer, 64 << 20).unwrap().unwrap();
    assert_eq!(used, answer.len());
    frame
}

#[tokio::test]
async fn an_edges_impressions_are_stored_once_per_batch_and_only_where_its_token_grants() {
    use checkgate_protocol::frame::{AckOutcome, InsightsAck};
    use checkgate_protocol::impressions::{
        EvaluationCount, EvaluationCounts, Impression, ImpressionBatch,
    };
    let api = api().await;
    let World { admin, envs, .. } = api.world().await;
    // A token for the first environment only.
    let created = api
        .call(
            "POST",
            "/api/edge-tokens",
            Some(json!({"name": "edge", "environments": [envs[0]]})),
            Some(&admin),
            &[],
        )
        .await;
    let token = created.body["token"].as_str().unwrap().to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let batch = |env: &str, id: u8| {
        let items = (0..3)
            .map(|i| Impression {
                flag_key: "checkout".into(),
                user_id: Some(format!("u{i}")),
                value: "true".into(),
                context: None,
                evaluated_at: now,
            })
            .collect();
        encode(
            &Frame::Impressions(ImpressionBatch {
                id: [id; 16],
                environment: env.into(),
                items,
            }),
            HANDSHAKE_MAX_FRAME,
        )
        .unwrap()
    };
    let ack = |id: u8, outcome| {
        Frame::InsightsAck(InsightsAck {
            id: [id; 16],
            outcome,
        })
    };

    // The same batch twice (a retry): acknowledged both times, stored once.
    for _ in 0..2 {
        let (status, answer) = feed(&api, Some(&token), FEED_TYPE, batch(&envs[0], 1)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(only_frame(&answer), ack(1, AckOutcome::Stored));
    }
    // Another environment than the token grants: refused, nothing stored.
    let (status, answer) = feed(&api, Some(&token), FEED_TYPE, batch(&envs[1], 2)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(only_frame(&answer), ack(2, AckOutcome::Refused));
    let listed = |env: String| {
        let (api, admin) = (&api, &admin);
        async move {
            api.call(
                "GET",
                &format!("/api/environments/{env}/impressions"),
                None,
                Some(admin),
                &[],
            )
            .await
        }
    };
    let reply = listed(envs[0].clone()).await;
    assert_eq!(reply.body["total"], 3, "{}", reply.body);
    let reply = listed(envs[1].clone()).await;
    assert_eq!(reply.body["total"], 0, "{}", reply.body);

    // Evaluation counts: once per id, and only of granted environments.
    let counts = |env: &str, id: u8| {
        encode(
            &Frame::EvaluationCounts(EvaluationCounts {
                id: [id; 16],
                counts: vec![EvaluationCount {
                    environment: env.into(),
                    flag_key: "checkout".into(),
                    variant: "true".into(),
                    minute: now / 60_000,
                    count: 5,
                }],
            }),
            HANDSHAKE_MAX_FRAME,
        )
        .unwrap()
    };
    for _ in 0..2 {
        let (_, answer) = feed(&api, Some(&token), FEED_TYPE, counts(&envs[0], 3)).await;
        assert_eq!(only_frame(&answer), ack(3, AckOutcome::Stored));
    }
    let (_, answer) = feed(&api, Some(&token), FEED_TYPE, counts(&envs[1], 4)).await;
    assert_eq!(only_frame(&answer), ack(4, AckOutcome::Refused));
    let created = api
        .call(
            "POST",
            &format!("/api/environments/{}/flags", envs[0]),
            Some(json!({"key": "checkout", "is_enabled": true})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let insights = api
        .call(
            "GET",
            &format!(
                "/api/environments/{}/flags/checkout/insights?range=1h",
                envs[0]
            ),
            None,
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(insights.status, StatusCode::OK, "{}", insights.body);
    assert_eq!(insights.body["evaluations"], 5, "{}", insights.body);
    assert_eq!(insights.body["impressions"], 3, "{}", insights.body);
}

#[tokio::test]
async fn an_edges_connection_report_is_stored_on_its_fleet_row_and_only_where_its_token_grants() {
    use checkgate_feed::nats::control::FLEET_HEADER;
    use checkgate_protocol::connections::{ConnectionCount, ConnectionReport};
    use checkgate_protocol::frame::{AckOutcome, InsightsAck};
    let api = api().await;
    let World {
        admin,
        envs,
        project,
    } = api.world().await;
    api.sdk_key(&admin, &project, &envs[0], "server").await;
    let keys = api
        .get(&format!("/api/projects/{project}/keys"), Some(&admin))
        .await;
    let key_id = keys.body[0]["id"].as_str().unwrap().to_owned();
    let created = api
        .call(
            "POST",
            "/api/edge-tokens",
            Some(json!({"name": "edge", "environments": [envs[0]]})),
            Some(&admin),
            &[],
        )
        .await;
    let token = created.body["token"].as_str().unwrap().to_owned();
    // Hello: the answer names the fleet row.
    let request = Request::post("/api/feed")
        .header(header::CONTENT_TYPE, FEED_TYPE)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(hello(&token)))
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let fleet = response.headers()[FLEET_HEADER]
        .to_str()
        .unwrap()
        .to_owned();

    let report = |env: &str, id: u8| {
        encode(
            &Frame::Connections(ConnectionReport {
                id: [id; 16],
                entries: vec![ConnectionCount {
                    env_id: env.into(),
                    key_id: key_id.clone(),
                    count: 4,
                    clients: Vec::new(),
                }],
            }),
            HANDSHAKE_MAX_FRAME,
        )
        .unwrap()
    };
    let send = |body: Vec<u8>, fleet: Option<String>| {
        let (api, token) = (&api, &token);
        async move {
            let mut request = Request::post("/api/feed")
                .header(header::CONTENT_TYPE, FEED_TYPE)
                .header(header::AUTHORIZATION, format!("Bearer {token}"));
            if let Some(fleet) = fleet {
                request = request.header(FLEET_HEADER, fleet);
            }
            let response = api
                .router
                .clone()
                .oneshot(request.body(Body::from(body)).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            only_frame(&response.into_body().collect().await.unwrap().to_bytes())
        }
    };
    let ack = |id: u8, outcome| {
        Frame::InsightsAck(InsightsAck {
            id: [id; 16],
            outcome,
        })
    };
    // Another environment than the token grants: refused, nothing stored.
    assert_eq!(
        send(report(&envs[1], 1), Some(fleet.clone())).await,
        ack(1, AckOutcome::Refused)
    );
    // No fleet row named: refused.
    assert_eq!(
        send(report(&envs[0], 2), None).await,
        ack(2, AckOutcome::Refused)
    );
    let listed = api.get("/api/health/connections", Some(&admin)).await;
    assert_eq!(listed.body["total"], 0, "{}", listed.body);
    // Its own environment, on its row: stored and listed.
    assert_eq!(
        send(report(&envs[0], 3), Some(fleet.clone())).await,
        ack(3, AckOutcome::Stored)
    );
    let listed = api.get("/api/health/connections", Some(&admin)).await;
    assert_eq!(listed.body["total"], 4, "{}", listed.body);
    assert_eq!(listed.body["connections"][0]["server"]["name"], "test");
    assert_eq!(listed.body["connections"][0]["key_name"], "server");
}

//! Connected SDKs and fleet alerts with real processes, both transports: SDK streams held
//! open at an edge (keys of two environments) and at the control plane itself show in
//! `GET /api/health/connections` by key name and server, with no client address unless the
//! edge reports them; another project's member sees none of it. An edge killed opens one
//! `edge.stale` alert after `EDGE_STALE_ALERT_SECONDS`, and its return resolves it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::cluster::{Edge, TempDir, call, eventually};
use common::scenario::{CONVERGE, Cluster, assert_converged, serial};
use serde_json::{Value, json};

/// Opens `/stream` at `addr` with `key` and waits for its head; the socket keeps it open.
/// Asks again (bounded) while the server does not know the key yet.
fn open_stream(addr: SocketAddr, key: &str) -> TcpStream {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let (head, socket) = try_stream(addr, key);
        if head.starts_with("HTTP/1.1 200") {
            return socket;
        }
        assert!(Instant::now() < deadline, "no stream: {head}");
        common::cluster::pause(Duration::from_millis(200));
    }
}

/// One attempt: the response head and the socket.
fn try_stream(addr: SocketAddr, key: &str) -> (String, TcpStream) {
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        socket,
        "GET /stream?sdk_key={key} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16_384 {
        match socket.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    (String::from_utf8_lossy(&head).into_owned(), socket)
}

/// A server SDK key named `name` of `env`, made by the admin.
fn key(cluster: &Cluster, env: &str, name: &str) -> String {
    let (status, body) = call_admin(
        cluster,
        "POST",
        &format!("/api/projects/{}/keys", cluster.ws.project),
        Some(json!({"name": name, "environment_id": env})),
    );
    assert_eq!(status, 201, "{body}");
    body["key"].as_str().unwrap().to_owned()
}

/// A request as the workspace admin (session cookie, CSRF header).
fn call_admin(cluster: &Cluster, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let (status, _, answer) = checkgate_testkit::http_request(
        cluster.controls[0].http(),
        method,
        path,
        &[
            ("Cookie", &cluster.ws.admin_cookie),
            ("X-Checkgate-Request", "1"),
        ],
        text.as_deref(),
    )
    .unwrap();
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

/// `GET /api/health/connections` as the workspace's API token (its project's environments).
fn connections(cluster: &Cluster) -> Value {
    let (status, body) = call(
        cluster.controls[0].http(),
        "GET",
        "/api/health/connections",
        Some(&cluster.ws.api_token),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body
}

/// The count listed for `key_name` at the server named `server`.
fn listed(body: &Value, key_name: &str, server: &str) -> u64 {
    body["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["key_name"] == key_name && c["server"]["name"] == server)
        .map(|c| c["count"].as_u64().unwrap())
        .sum()
}

/// Streams of two environments' keys at `edge` (named `name`) show by key name; addresses
/// only when `addresses`. Returns the streams.
fn streams_show(cluster: &Cluster, edge: &Edge, name: &str, addresses: bool) -> Vec<TcpStream> {
    let (mobile, web) = (
        key(cluster, &cluster.ws.envs[0], &format!("mobile-{name}")),
        key(cluster, &cluster.ws.envs[1], &format!("web-{name}")),
    );
    assert_converged(cluster, &[edge]);
    let at = edge.service.addr;
    let streams = vec![
        open_stream(at, &mobile),
        open_stream(at, &mobile),
        open_stream(at, &web),
    ];
    let body = eventually("the edge's streams to be reported", CONVERGE, || {
        let body = connections(cluster);
        (listed(&body, &format!("mobile-{name}"), name) == 2
            && listed(&body, &format!("web-{name}"), name) == 1)
            .then_some(body)
    });
    for entry in body["connections"].as_array().unwrap() {
        if entry["server"]["name"] != name {
            continue;
        }
        assert_eq!(entry["server"]["kind"], "edge", "{body}");
        let clients = entry["clients"].as_array().unwrap();
        if addresses {
            assert_eq!(
                clients.len() as u64,
                entry["count"].as_u64().unwrap(),
                "{body}"
            );
            assert!(clients.iter().all(|c| c["ip"] == "127.0.0.1"), "{body}");
        } else {
            assert!(clients.is_empty(), "no address unless enabled: {body}");
        }
    }
    streams
}

/// Nothing of the cluster's project is listed to a token of another project.
fn another_project_sees_nothing(cluster: &Cluster) {
    let (status, project) = call_admin(
        cluster,
        "POST",
        "/api/projects",
        Some(json!({"name": "Other"})),
    );
    assert_eq!(status, 201, "{project}");
    let (status, token) = call_admin(
        cluster,
        "POST",
        &format!("/api/projects/{}/tokens", project["id"].as_str().unwrap()),
        Some(json!({"name": "other", "role": "admin"})),
    );
    assert_eq!(status, 201, "{token}");
    let (status, body) = call(
        cluster.controls[0].http(),
        "GET",
        "/api/health/connections",
        token["token"].as_str(),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 0, "{body}");
    assert_eq!(body["connections"], json!([]), "{body}");
    let (status, _) = call(
        cluster.controls[0].http(),
        "GET",
        &format!("/api/environments/{}/connections", cluster.ws.envs[0]),
        token["token"].as_str(),
        None,
    );
    assert_eq!(status, 404);
}

/// The `edge.stale` alerts of the edge named `name`.
fn stale_alerts(cluster: &Cluster, name: &str) -> Vec<Value> {
    let (status, body) = call_admin(
        cluster,
        "GET",
        "/api/fleet/alerts?state=all&limit=200",
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "edge.stale" && a["edge_name"] == name)
        .cloned()
        .collect()
}

#[test]
fn sdks_connected_to_a_quic_edge_and_the_control_plane_show_and_a_killed_edge_raises_an_alert() {
    let _one = serial();
    let cluster = Cluster::start_env(1, &[("EDGE_STALE_ALERT_SECONDS", "2")]);
    cluster.seed(1);
    let control = &cluster.controls[0];
    let edge = Edge::start_with(
        &control.feed.to_string(),
        &control.fingerprint,
        &cluster.ws.edge_token,
        TempDir::new("edge"),
        &[("EDGE_NAME", "quic-edge")],
    );
    let streams = streams_show(&cluster, &edge, "quic-edge", false);
    another_project_sees_nothing(&cluster);

    // The control plane's own serving is listed too, as the control plane.
    let own = key(&cluster, &cluster.ws.envs[0], "in-process");
    let _own_stream = open_stream(control.http(), &own);
    let body = eventually("the in-process stream to be reported", CONVERGE, || {
        let body = connections(&cluster);
        body["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["key_name"] == "in-process" && c["server"]["kind"] == "control_plane")
            .then_some(body)
    });
    assert!(body["total"].as_u64().unwrap() >= 4, "{body}");
    // One environment's view: by server and key.
    let (status, env) = call(
        control.http(),
        "GET",
        &format!("/api/environments/{}/connections", cluster.ws.envs[0]),
        Some(&cluster.ws.api_token),
        None,
    );
    assert_eq!(status, 200, "{env}");
    assert_eq!(env["total"], 3, "{env}");

    // Streams that end are reported gone.
    drop(streams);
    eventually("the ended streams to be reported", CONVERGE, || {
        (listed(&connections(&cluster), "mobile-quic-edge", "quic-edge") == 0).then_some(())
    });

    // Killed: one stale alert, after the threshold, however long it stays away.
    assert!(stale_alerts(&cluster, "quic-edge").is_empty());
    drop(edge);
    // The control plane notices a killed edge when its QUIC connection times out (30 s idle).
    let alert = eventually("the edge.stale alert", CONVERGE * 2, || {
        stale_alerts(&cluster, "quic-edge").into_iter().next()
    });
    assert!(alert["resolved_at"].is_null(), "{alert}");
    assert_eq!(
        alert["subject"].as_str().unwrap().split('/').nth(1),
        Some("quic-edge")
    );
    common::cluster::pause(Duration::from_secs(4));
    assert_eq!(
        stale_alerts(&cluster, "quic-edge").len(),
        1,
        "raised once per episode"
    );

    // Back: the episode resolves (edge.recovered), still one row.
    let edge = Edge::start_with(
        &control.feed.to_string(),
        &control.fingerprint,
        &cluster.ws.edge_token,
        TempDir::new("edge"),
        &[("EDGE_NAME", "quic-edge")],
    );
    assert_converged(&cluster, &[&edge]);
    let alerts = eventually("the alert to resolve", CONVERGE, || {
        let alerts = stale_alerts(&cluster, "quic-edge");
        alerts
            .iter()
            .all(|a| a["resolved_at"].is_string())
            .then_some(alerts)
    });
    assert_eq!(alerts.len(), 1, "{alerts:?}");
}

#[test]
fn sdks_connected_to_a_nats_edge_show_with_addresses_when_it_reports_them() {
    let _one = serial();
    let cluster = Cluster::start_nats(1);
    cluster.seed(1);
    let edge = Edge::start_nats_with(
        &cluster.nats.as_ref().unwrap().url(),
        &cluster.control_urls(&[0]),
        &cluster.ws.edge_token,
        TempDir::new("edge"),
        &[
            ("EDGE_NAME", "nats-edge"),
            ("REPORT_CLIENT_ADDRESSES", "true"),
        ],
    );
    let _streams = streams_show(&cluster, &edge, "nats-edge", true);
    another_project_sees_nothing(&cluster);
}

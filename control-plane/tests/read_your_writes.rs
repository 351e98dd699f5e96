//! Read your writes end to end, with real processes on loopback: a write through the control
//! plane's API answers the version it committed (`X-Checkgate-Version`), and an SDK that sends
//! it as `X-Checkgate-Min-Version` to an edge — or to the control plane's own SDK routes — is
//! answered from that write or a later one: at once when the version is there, once the feed
//! brings it when it is not (here held back by a partition of the feed's UDP path), and with a
//! 503 and `Retry-After: 1` when it does not come in time. A malformed header is a 400 and a
//! bad key a 401, as ever.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use checkgate_testkit::http_request;
use checkgate_testkit::udp_proxy::{Faults, UdpProxy};
use common::cluster::{Control, ControlOptions, Edge, TempDir, Workspace, eventually, pause};
use serde_json::{Value, json};

/// Generous: debug builds on shared cores.
const CONVERGE: Duration = Duration::from_secs(60);

/// An answer: status, the value of `X-Checkgate-Version` if any, and the JSON body.
struct Answer {
    status: u16,
    version: Option<u64>,
    retry_after: Option<String>,
    body: Value,
}

fn header(head: &[String], name: &str) -> Option<String> {
    head.iter().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Answer {
    let text = body.map(|b| b.to_string());
    let (status, head, body) = http_request(addr, method, path, headers, text.as_deref()).unwrap();
    Answer {
        status,
        version: header(&head, "x-checkgate-version").map(|v| v.parse().unwrap()),
        retry_after: header(&head, "retry-after"),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    }
}

/// `POST /api/v1/evaluate/{flag}` with an SDK key and, if given, a minimum version.
fn evaluate(addr: SocketAddr, key: &str, flag: &str, min: Option<&str>) -> Answer {
    let auth = format!("Bearer {key}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(min) = min {
        headers.push(("X-Checkgate-Min-Version", min));
    }
    send(
        addr,
        "POST",
        &format!("/api/v1/evaluate/{flag}"),
        &headers,
        Some(json!({"context": {"targetingKey": "u1"}})),
    )
}

#[test]
fn an_sdk_reads_its_writes_from_an_edge_and_from_the_control_plane() {
    let dir = TempDir::new("ryw-control");
    let url = checkgate_control::store::embedded_url(&dir.0);
    let control = Control::start(&ControlOptions::alone(
        &url,
        dir.path(),
        &[("MIN_VERSION_WAIT_MS", "100")],
    ));
    let ws = Workspace::set_up(control.http());
    let env = ws.envs[0].clone();
    let cookie = ws.admin_cookie.clone();
    let as_admin = [("X-Checkgate-Request", "1"), ("Cookie", cookie.as_str())];

    let key = send(
        control.http(),
        "POST",
        &format!("/api/projects/{}/keys", ws.project),
        &as_admin,
        Some(json!({"name": "sdk", "environment_id": env})),
    );
    assert_eq!(key.status, 201, "{}", key.body);
    let key_version = key.version.expect("the key's version");
    assert_eq!(key.body["environment_version"], key_version);
    let sdk = key.body["key"].as_str().unwrap().to_owned();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let proxy = runtime
        .block_on(UdpProxy::start(control.feed, Faults::default()))
        .unwrap();
    let edge = Edge::start_with(
        &proxy.addr().to_string(),
        &control.fingerprint,
        &ws.edge_token,
        TempDir::new("ryw-edge"),
        // Longer than the partition below; shorter than the test client's read timeout.
        &[("MIN_VERSION_WAIT_MS", "25000")],
    );
    let edge_addr = edge.service.addr;
    eventually("the edge holds the key", CONVERGE, || {
        (edge.versions().get(&env).copied().unwrap_or(0) >= key_version).then_some(())
    });

    // A version the edge holds: answered at once (the flag does not exist yet: 404).
    let held = evaluate(edge_addr, &sdk, "fresh", Some(&key_version.to_string()));
    assert_eq!(held.status, 404, "{}", held.body);

    // Committed by the control plane while the feed's path is cut: the edge waits for it.
    proxy.partition(true);
    let auth = format!("Bearer {}", ws.api_token);
    let written = send(
        control.http(),
        "POST",
        &format!("/api/environments/{env}/flags"),
        &[("Authorization", auth.as_str())],
        Some(
            json!({"key": "fresh", "is_enabled": true, "flag_type": "string",
                    "default_value": "written", "disabled_value": "off"}),
        ),
    );
    assert_eq!(written.status, 201, "{}", written.body);
    let version = written.version.expect("the write's version");
    assert_eq!(written.body["version"], version);
    let min = version.to_string();
    let waiting = {
        let (sdk, min) = (sdk.clone(), min.clone());
        std::thread::spawn(move || evaluate(edge_addr, &sdk, "fresh", Some(&min)))
    };
    // Held for a moment: an answer now could only be older data.
    pause(Duration::from_secs(1));
    assert!(
        !waiting.is_finished(),
        "the edge waits for version {version}"
    );
    proxy.partition(false);
    let answer = waiting.join().unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["value"], "written", "{}", answer.body);

    // Refusals at the edge: a malformed version, and a bad key before anything else.
    let malformed = evaluate(edge_addr, &sdk, "fresh", Some("soon"));
    assert_eq!(malformed.status, 400, "{}", malformed.body);
    assert_eq!(malformed.body["error"]["code"], "bad_header");
    let stranger = evaluate(edge_addr, "cg_srv_nobody", "fresh", Some("999999"));
    assert_eq!(stranger.status, 401, "{}", stranger.body);

    // The control plane's own SDK routes: the same, with its short wait.
    eventually("the control plane serves the write", CONVERGE, || {
        let answer = evaluate(control.http(), &sdk, "fresh", None);
        (answer.body["value"] == "written").then_some(())
    });
    let at_once = evaluate(control.http(), &sdk, "fresh", Some(&min));
    assert_eq!(at_once.status, 200, "{}", at_once.body);
    assert_eq!(at_once.body["value"], "written");
    let never = (version + 1000).to_string();
    let late = evaluate(control.http(), &sdk, "fresh", Some(&never));
    assert_eq!(late.status, 503, "{}", late.body);
    assert_eq!(late.retry_after.as_deref(), Some("1"));
    assert_eq!(
        late.body["error"]["code"], "version_not_reached",
        "{}",
        late.body
    );
    drop(proxy);
}

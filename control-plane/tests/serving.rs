//! A one-node install serves SDKs itself: the control plane on its embedded default answers
//! `/stream`, evaluation and OFREP from its in-process replica, with no edge — a write reaches
//! an open stream, a revoked key is refused at once, and letting client keys read rules is an
//! audited setting of the environment, off by default.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use checkgate_testkit::{Service, http_request};
use common::cluster::{CONTROL_BIN, SESSION_SECRET, TempDir, Workspace, call, eventually};
use serde_json::{Value, json};

/// An SSE stream read line by line on a thread of its own.
struct Stream {
    lines: mpsc::Receiver<String>,
    _socket: TcpStream,
}

impl Stream {
    fn open(addr: SocketAddr, path: &str) -> (u16, Self) {
        let socket = TcpStream::connect(addr).unwrap();
        let mut writer = socket.try_clone().unwrap();
        write!(
            writer,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(socket.try_clone().unwrap());
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        let status = status.split_whitespace().nth(1).unwrap().parse().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (
            status,
            Self {
                lines,
                _socket: socket,
            },
        )
    }

    /// Waits for a line containing `needle`; the lines before it.
    fn until(&self, needle: &str, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!("no line with {needle:?} within {limit:?}; saw {seen:?}"),
            }
        }
    }

    /// Whether the stream ends (the server closes it) within `limit`.
    fn ends_within(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return true,
                Err(mpsc::RecvTimeoutError::Timeout) => return false,
            }
        }
    }
}

fn admin(addr: SocketAddr, ws: &Workspace, method: &str, path: &str, body: Value) -> Value {
    let text = body.to_string();
    let (status, _, body) = http_request(
        addr,
        method,
        path,
        &[("X-Checkgate-Request", "1"), ("Cookie", &ws.admin_cookie)],
        Some(&text),
    )
    .unwrap();
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {body}"
    );
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

#[test]
fn a_one_node_install_serves_sdks_in_process() {
    let data = TempDir::new("one-node");
    let service = Service::start(
        CONTROL_BIN,
        &[
            ("CHECKGATE_DATA_DIR", data.path()),
            ("SESSION_SECRET", SESSION_SECRET),
            ("COOKIE_SECURE", "false"),
        ],
    )
    .unwrap();
    let addr = service.addr;
    let ws = Workspace::set_up(addr);
    let env = ws.envs[0].clone();
    let keys = format!("/api/projects/{}/keys", ws.project);
    let server = admin(
        addr,
        &ws,
        "POST",
        &keys,
        json!({"name": "api", "environment_id": env}),
    )["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let client_key = admin(
        addr,
        &ws,
        "POST",
        &keys,
        json!({"name": "web", "environment_id": env, "kind": "client"}),
    );
    let client = client_key["key"].as_str().unwrap().to_owned();
    admin(
        addr,
        &ws,
        "POST",
        &format!("/api/environments/{env}/flags"),
        json!({"key": "checkout", "is_enabled": true, "flag_type": "string", "default_value": "new", "disabled_value": "old"}),
    );

    // Evaluation and OFREP, from the in-process replica, as soon as it has caught up.
    let answer = eventually("the flag to be served", Duration::from_secs(10), || {
        let (status, body) = call(
            addr,
            "POST",
            "/api/v1/evaluate/checkout",
            Some(&client),
            Some(&json!({"context": {"targetingKey": "u1"}})),
        );
        (status == 200).then_some(body)
    });
    assert_eq!(answer["value"], "new");
    let (status, body) = call(
        addr,
        "POST",
        "/ofrep/v1/evaluate/flags/checkout",
        Some(&client),
        Some(&json!({})),
    );
    assert_eq!((status, body["value"].clone()), (200, json!("new")));
    // A browser on another origin may ask first (the binary's JSON 405 fallback must not
    // swallow the preflight).
    let (status, headers, _) = http_request(
        addr,
        "OPTIONS",
        "/ofrep/v1/evaluate/flags",
        &[
            ("Origin", "http://127.0.0.1:9"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type,x-api-key"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(status, 204, "{headers:?}");
    assert!(
        headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("access-control-allow-origin: *")),
        "{headers:?}"
    );

    // A write reaches an open stream.
    let (status, stream) = Stream::open(addr, &format!("/stream?sdk_key={server}"));
    assert_eq!(status, 200);
    stream.until("event: ready", Duration::from_secs(10));
    admin(
        addr,
        &ws,
        "PATCH",
        &format!("/api/environments/{env}/flags/checkout"),
        json!({"is_enabled": false}),
    );
    let update = stream.until("\"is_enabled\":false", Duration::from_secs(10));
    assert!(
        update.last().unwrap().starts_with("data: {\"env_id\""),
        "{update:?}"
    );

    // Client keys read no rules until the environment allows it — audited — and their streams
    // end when it no longer does.
    let (status, _) = Stream::open(addr, &format!("/stream?sdk_key={client}"));
    assert_eq!(status, 403);
    let settings = format!("/api/projects/{}/environments/{env}", ws.project);
    let patched = admin(
        addr,
        &ws,
        "PATCH",
        &settings,
        json!({"client_keys_read_rules": true}),
    );
    assert_eq!(patched["client_keys_read_rules"], true);
    let client_stream = eventually("client keys to read rules", Duration::from_secs(10), || {
        let (status, stream) = Stream::open(addr, &format!("/stream?sdk_key={client}"));
        (status == 200).then_some(stream)
    });
    client_stream.until("event: ready", Duration::from_secs(10));
    admin(
        addr,
        &ws,
        "PATCH",
        &settings,
        json!({"client_keys_read_rules": false}),
    );
    assert!(
        client_stream.ends_within(Duration::from_secs(10)),
        "the client key's stream ends"
    );
    let audit = admin(
        addr,
        &ws,
        "GET",
        &format!("/api/audit?environment_id={env}"),
        Value::Null,
    );
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .filter(|a| a.starts_with("environment."))
        .collect();
    assert_eq!(actions, ["environment.settings", "environment.settings"]);

    // A revoked key is refused on its next request, and its stream ends.
    let key_id = admin(addr, &ws, "GET", &keys, Value::Null)
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "api")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin(
        addr,
        &ws,
        "DELETE",
        &format!("{keys}/{key_id}"),
        Value::Null,
    );
    eventually(
        "the revoked key to be refused",
        Duration::from_secs(5),
        || {
            let (status, _) = call(
                addr,
                "POST",
                "/api/v1/evaluate",
                Some(&server),
                Some(&json!({})),
            );
            (status == 401).then_some(())
        },
    );
    assert!(
        stream.ends_within(Duration::from_secs(5)),
        "the revoked key's stream ends"
    );
    let (exit, _) = service.terminate().unwrap();
    assert!(exit.success());
}

#[test]
fn a_one_node_install_takes_impressions_and_counts_its_own_evaluations() {
    let data = TempDir::new("one-node-insights");
    let service = Service::start(
        CONTROL_BIN,
        &[
            ("CHECKGATE_DATA_DIR", data.path()),
            ("SESSION_SECRET", SESSION_SECRET),
            ("COOKIE_SECURE", "false"),
        ],
    )
    .unwrap();
    let addr = service.addr;
    let ws = Workspace::set_up(addr);
    let env = ws.envs[0].clone();
    let client = admin(
        addr,
        &ws,
        "POST",
        &format!("/api/projects/{}/keys", ws.project),
        json!({"name": "web", "environment_id": env, "kind": "client"}),
    )["key"]
        .as_str()
        .unwrap()
        .to_owned();
    admin(
        addr,
        &ws,
        "POST",
        &format!("/api/environments/{env}/flags"),
        json!({"key": "checkout", "is_enabled": true}),
    );
    eventually("the flag to be served", Duration::from_secs(10), || {
        let (status, _) = call(
            addr,
            "POST",
            "/api/v1/evaluate/checkout",
            Some(&client),
            Some(&json!({"context": {"targetingKey": "u1"}})),
        );
        (status == 200).then_some(())
    });
    // Ours, with the environment taken from the key: queued, then stored in-process.
    let items = json!([{"flag_key": "checkout", "user_id": "u1", "value": "true"},
                       {"flag_key": "checkout", "user_id": "u2", "value": "true"}]);
    let (status, body) = call(
        addr,
        "POST",
        "/api/v1/impressions",
        Some(&client),
        Some(&items),
    );
    assert_eq!(status, 204, "{body}");
    let read = |path: &str| {
        let (status, body) = call(addr, "GET", path, Some(&ws.api_token), None);
        assert_eq!(status, 200, "{body}");
        body
    };
    eventually(
        "the impressions to be stored",
        Duration::from_secs(20),
        || (read(&format!("/api/environments/{env}/impressions"))["total"] == 2).then_some(()),
    );
    // The evaluation above (and those of the wait) are counted and stored within 10 s.
    eventually(
        "the evaluations to be counted",
        Duration::from_secs(30),
        || {
            let insights = read(&format!(
                "/api/environments/{env}/flags/checkout/insights?range=1h"
            ));
            (insights["evaluations"].as_i64() >= Some(1)).then_some(())
        },
    );
}

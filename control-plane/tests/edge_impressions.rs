//! Impressions and evaluation counts through real edges, both transports: what SDKs report to
//! an edge (Checkgate's route and ours, server and client keys) and what the edge evaluates
//! reach the control plane's impression list, stats and flag insights; refusals at the edge
//! (wrong key, wrong environment, bad items, too many) are the right 4xx; a full queue drops
//! and counts; a batch held while the control plane is away is sent again and stored once;
//! SIGTERM flushes what the edge holds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::cluster::{Control, ControlOptions, Edge, TempDir, eventually};
use common::scenario::{CONVERGE, Cluster, assert_converged, metric, serial, server_key};
use serde_json::{Value, json};

/// A JSON `POST` to `addr` with an SDK key; the status and body.
fn post(addr: SocketAddr, path: &str, key: Option<&str>, body: &str) -> (u16, Value) {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let (status, _, body) =
        checkgate_testkit::http_request(addr, "POST", path, &headers, Some(body)).unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// `n` impressions of `flag-0` as an SDK sends them.
fn impressions(n: usize, tag: &str) -> String {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({"flag_key": "flag-0", "user_id": format!("{tag}-{i}"), "value": "false",
                        "context": {"plan": "pro"}})
        })
        .collect();
    Value::Array(items).to_string()
}

/// A client SDK key of the first environment.
fn client_key(cluster: &Cluster) -> String {
    let (status, _, body) = checkgate_testkit::http_request(
        cluster.controls[0].http(),
        "POST",
        &format!("/api/projects/{}/keys", cluster.ws.project),
        &[
            ("Cookie", &cluster.ws.admin_cookie),
            ("X-Checkgate-Request", "1"),
        ],
        Some(
            &json!({"name": "browser", "environment_id": cluster.ws.envs[0], "kind": "client"})
                .to_string(),
        ),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A control-plane read with the workspace's API token.
fn read(cluster: &Cluster, path: &str) -> Value {
    let (status, body) = common::cluster::call(
        cluster.controls[0].http(),
        "GET",
        path,
        Some(&cluster.ws.api_token),
        None,
    );
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Impressions stored of the first environment.
fn stored(cluster: &Cluster) -> u64 {
    read(
        cluster,
        &format!("/api/environments/{}/impressions", cluster.ws.envs[0]),
    )["total"]
        .as_u64()
        .unwrap()
}

/// Evaluations of `flag-0` in the first environment the control plane counted.
fn evaluations(cluster: &Cluster) -> i64 {
    read(
        cluster,
        &format!(
            "/api/environments/{}/flags/flag-0/insights?range=1h",
            cluster.ws.envs[0]
        ),
    )["evaluations"]
        .as_i64()
        .unwrap()
}

/// Evaluates `flag-0` at the edge `n` times by our API and `n` times by OFREP.
fn evaluate(edge: SocketAddr, key: &str, n: usize) {
    let body = json!({"context": {"targetingKey": "u1"}}).to_string();
    for _ in 0..n {
        let (status, answer) = post(edge, "/api/v1/evaluate/flag-0", Some(key), &body);
        assert_eq!(status, 200, "{answer}");
        let (status, answer) = post(edge, "/ofrep/v1/evaluate/flags/flag-0", Some(key), &body);
        assert_eq!(status, 200, "{answer}");
    }
}

fn edge_metric(edge: &Edge, name: &str) -> f64 {
    let (_, page) = edge.service.get("/metrics").unwrap();
    metric(&page, name)
}

#[test]
fn impressions_and_evaluations_reach_the_control_plane_through_a_quic_edge() {
    let _one = serial();
    let mut cluster = Cluster::start(1);
    cluster.seed(1);
    let (server, client) = (server_key(&cluster), client_key(&cluster));
    let edge = cluster.edge(&[0]);
    assert_converged(&cluster, &[&edge]);
    let at = edge.service.addr;
    let env0 = cluster.ws.envs[0].clone();
    let path = format!("/api/environments/{env0}/impressions");

    // Refused at the edge, with the right status and a JSON body.
    let other = format!("/api/environments/{}/impressions", cluster.ws.envs[1]);
    let bad_item = r#"[{"flag_key":"flag-0","value":"true"},{"flag_key":"a b","value":"x"}]"#;
    let cases: [(&str, Option<&str>, String, u16, &str); 5] = [
        (&path, None, impressions(1, "x"), 401, "unauthorized"),
        (
            &path,
            Some("cg_srv_unknown"),
            impressions(1, "x"),
            401,
            "unauthorized",
        ),
        (&other, Some(&server), impressions(1, "x"), 403, "forbidden"),
        (&path, Some(&server), bad_item.into(), 400, "bad_request"),
        (
            &path,
            Some(&server),
            impressions(501, "x"),
            413,
            "payload_too_large",
        ),
    ];
    for (n, (route, key, body, status, code)) in cases.iter().enumerate() {
        let (got, answer) = post(at, route, *key, body);
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (*status, Some(*code)),
            "case {n}: {answer}"
        );
    }
    let (_, answer) = post(at, &path, Some(&server), bad_item);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("item 1"),
        "{answer}"
    );

    // Accepted: Checkgate's route with a server key, ours with a client key (a browser's).
    assert_eq!(post(at, &path, Some(&server), &impressions(3, "a")).0, 204);
    assert_eq!(
        post(
            at,
            "/api/v1/impressions",
            Some(&client),
            &impressions(2, "b")
        )
        .0,
        204
    );
    evaluate(at, &server, 4);
    eventually("the impressions to be stored", CONVERGE, || {
        (stored(&cluster) == 5).then_some(())
    });
    let stats = read(&cluster, &format!("{path}/stats"));
    let flag = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["flag_key"] == "flag-0")
        .unwrap();
    assert_eq!(flag["total"], 5, "{stats}");
    assert_eq!(flag["false_count"], 5, "{stats}");
    assert_eq!(flag["unique_users"], 5, "{stats}");
    // Our API and OFREP, counted by the edge and sent within its 10 s period.
    eventually("the edge's evaluation counts to arrive", CONVERGE, || {
        (evaluations(&cluster) == 8).then_some(())
    });
    let status = edge.status();
    assert_eq!(status["impressions"]["accepted_total"], 5, "{status}");
    assert_eq!(status["impressions"]["dropped_total"], 0, "{status}");
    drop(edge);

    // A small queue: what does not fit is dropped and counted, the rest stored.
    let small = Edge::start_with(
        &cluster.controls[0].feed.to_string(),
        &cluster.controls[0].fingerprint,
        &cluster.ws.edge_token,
        TempDir::new("edge"),
        &[("IMPRESSIONS_QUEUE", "3")],
    );
    assert_converged(&cluster, &[&small]);
    let at = small.service.addr;
    assert_eq!(post(at, &path, Some(&server), &impressions(10, "c")).0, 204);
    let status = small.status();
    assert_eq!(status["impressions"]["dropped_total"], 7, "{status}");
    assert_eq!(
        edge_metric(&small, "checkgate_impressions_dropped_total"),
        7.0
    );
    eventually("what fitted to be stored", CONVERGE, || {
        (stored(&cluster) == 8).then_some(())
    });

    // The control plane away: the edge holds its batch and sends it again, under the same
    // id, once the control plane is back; it is stored once.
    let old = cluster.controls.remove(0);
    let (feed_port, cert, key) = (old.feed.port(), old.cert.clone(), old.key.clone());
    drop(old);
    assert_eq!(post(at, &path, Some(&server), &impressions(2, "d")).0, 204);
    eventually("the edge to retry its batch", CONVERGE, || {
        (edge_metric(&small, "checkgate_insights_retries_total") >= 1.0).then_some(())
    });
    let dir = TempDir::new("control");
    let control = Control::start(&ControlOptions {
        database_url: &cluster.db.url(),
        redis_url: Some(&cluster.redis.url()),
        data_dir: dir.path(),
        feed_port,
        cert: Some((&cert, &key)),
        env: &[],
    });
    cluster.controls.insert(0, control);
    cluster.dirs.push(dir);
    eventually("the held batch to be stored", CONVERGE, || {
        (stored(&cluster) == 10).then_some(())
    });

    // SIGTERM: what the edge holds is sent before it exits, evaluation counts included.
    assert_converged(&cluster, &[&small]);
    let counted = evaluations(&cluster);
    evaluate(at, &server, 3);
    assert_eq!(post(at, &path, Some(&server), &impressions(2, "e")).0, 204);
    let (exit, log) = small.service.terminate().unwrap();
    assert!(exit.success(), "{exit:?}\n{}", log.join("\n"));
    assert_eq!(stored(&cluster), 12, "{}", log.join("\n"));
    assert_eq!(evaluations(&cluster), counted + 6, "{}", log.join("\n"));
}

#[test]
fn a_nats_fed_edge_carries_impressions_and_counts_and_flushes_them_when_stopped() {
    let _one = serial();
    let cluster = Cluster::start_nats(1);
    cluster.seed(1);
    let server = server_key(&cluster);
    let edge = cluster.nats_edge(&[0]);
    assert_converged(&cluster, &[&edge]);
    let at = edge.service.addr;
    let path = format!("/api/environments/{}/impressions", cluster.ws.envs[0]);
    assert_eq!(post(at, &path, Some(&server), &impressions(4, "a")).0, 204);
    assert_eq!(
        post(at, &path, Some("cg_srv_unknown"), &impressions(1, "x")).0,
        401
    );
    eventually("the impressions to be stored", CONVERGE, || {
        (stored(&cluster) == 4).then_some(())
    });
    evaluate(at, &server, 3);
    assert_eq!(
        post(
            at,
            "/api/v1/impressions",
            Some(&server),
            &impressions(2, "b")
        )
        .0,
        204
    );
    let (exit, log) = edge.service.terminate().unwrap();
    assert!(exit.success(), "{exit:?}\n{}", log.join("\n"));
    assert_eq!(stored(&cluster), 6, "{}", log.join("\n"));
    assert_eq!(evaluations(&cluster), 6, "{}", log.join("\n"));
}

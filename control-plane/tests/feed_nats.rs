//! The change feed over NATS JetStream end to end, against real nats-server processes (each
//! test its own, on its own port and store directory): control planes relay to it, edges
//! follow it and talk to a control plane over HTTP for the rest. Every scenario ends with each
//! edge equal to PostgreSQL and every acknowledged write kept; edges that held data keep
//! answering through every fault.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::cluster::eventually;
use common::scenario::{
    CONVERGE, Cluster, assert_acknowledged_writes_kept, assert_converged, fleet, serial, write,
};

/// The value of an unlabelled metric in a Prometheus text page (0 when absent).
fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn changes_reach_an_edge_over_nats_and_revoking_its_token_stops_it() {
    let _one = serial();
    let cluster = Cluster::start_nats(1);
    cluster.seed(3);
    let edge = cluster.nats_edge(&[0]);
    assert_converged(&cluster, &[&edge]);
    let acks = write(&cluster.targets(), &cluster.ws, 2, 20, 3, |_| {});
    assert_converged(&cluster, &[&edge]);
    assert_acknowledged_writes_kept(&cluster, &acks);
    let status = edge.status();
    assert_eq!(status["feed"]["connected"], true, "{status}");
    // Over the stream, in one session: no start-over (which would catch up over HTTP).
    assert_eq!(status["feed"]["reconnects"], 0, "{status}");
    let (_, metrics) = edge.service.get("/metrics").unwrap();
    let received = metric(&metrics, "checkgate_feed_nats_messages_total");
    assert!(
        received >= acks.len() as f64,
        "{received} messages for {} writes",
        acks.len()
    );

    // The fleet lists it from its reports, at every head.
    let served = edge.versions();
    let listed = eventually(
        "the fleet to show the NATS edge at every head",
        CONVERGE,
        || {
            let listed = fleet(&cluster);
            let envs = listed["edges"][0]["environments"].as_array()?;
            (envs.len() == served.len() && envs.iter().all(|e| e["lag"] == 0)).then_some(listed)
        },
    );
    assert_eq!(listed["edges"][0]["name"], "nats-edge", "{listed}");
    assert_eq!(listed["edges"][0]["state"], "connected", "{listed}");

    // Revoked: the edge stops serving within its next report.
    let tokens = checkgate_testkit::http_request(
        cluster.controls[0].http(),
        "GET",
        "/api/edge-tokens",
        &[("Cookie", &cluster.ws.admin_cookie)],
        None,
    )
    .unwrap();
    let tokens: serde_json::Value = serde_json::from_str(&tokens.2).unwrap();
    let id = tokens[0]["id"].as_str().unwrap();
    let revoked_at = Instant::now();
    let (status, _, _) = checkgate_testkit::http_request(
        cluster.controls[0].http(),
        "DELETE",
        &format!("/api/edge-tokens/{id}"),
        &[
            ("Cookie", &cluster.ws.admin_cookie),
            ("X-Checkgate-Request", "1"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(status, 204);
    eventually("the edge to notice its revocation", CONVERGE, || {
        (edge.status()["feed"]["revoked"] == true).then_some(())
    });
    eprintln!("revocation noticed after {:?}", revoked_at.elapsed());
    eventually("the edge to serve nothing", CONVERGE, || {
        edge.versions().is_empty().then_some(())
    });
}

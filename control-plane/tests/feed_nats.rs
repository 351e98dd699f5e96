//! The change feed over NATS JetStream end to end, against real nats-server processes (each
//! test its own, on its own port and store directory): control planes relay to it, edges
//! follow it and talk to a control plane over HTTP for the rest. Every scenario ends with each
//! edge equal to PostgreSQL and every acknowledged write kept; edges that held data keep
//! answering through every fault.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    reason = "tests; the recovery times they print are figures for BENCHMARKS.md"
)]

mod common;

use std::time::{Duration, Instant};

use common::cluster::{eventually, pause};
use common::scenario::{
    CONVERGE, Cluster, Watch, Watched, assert_acknowledged_writes_kept,
    assert_anti_entropy_repairs, assert_converged, fleet, metric, relay_holder, serial, server_key,
    write,
};

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
    // Over the stream (a start-over would have caught up over HTTP instead).
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

/// How long each fault lasts.
const FAULT: Duration = Duration::from_secs(20);

/// What a scenario saw while its fault lasted.
struct Faulted {
    acks: Vec<common::scenario::Ack>,
    watched: Watched,
    /// When the fault ended.
    ended: Instant,
    /// The edge's NATS messages so far when the fault ended.
    messages: f64,
}

/// The NATS messages so far of the edge at `addr`.
fn nats_messages(addr: std::net::SocketAddr) -> f64 {
    let (_, page) = checkgate_testkit::http_get(addr, "/metrics").unwrap_or_default();
    metric(&page, "checkgate_feed_nats_messages_total")
}

/// Checks what every fault scenario ends with: nothing lost, no version going backwards, the
/// edge answering throughout, changes arriving over NATS again (not only by catching up from
/// the control plane), and the edge equal to the database after the fault ended (how long
/// that took is printed for the figures; the limit asserted is [`CONVERGE`], as timed
/// assertions flake on shared machines).
fn after_fault(cluster: &Cluster, edge: &common::cluster::Edge, faulted: &Faulted) {
    let Faulted {
        acks,
        watched,
        ended,
        messages,
    } = faulted;
    assert_acknowledged_writes_kept(cluster, acks);
    assert_converged(cluster, &[edge]);
    eprintln!(
        "converged {:?} after the fault ended ({} evaluations answered meanwhile)",
        ended.elapsed(),
        watched.answered
    );
    assert!(
        watched.regressions.is_empty(),
        "versions went backwards: {:?}",
        watched.regressions
    );
    assert!(
        watched.failed.is_empty(),
        "the edge stopped answering: {:?}",
        watched.failed
    );
    assert!(watched.answered > 0);
    // Changes travel over NATS again (not only by catching up from the control plane): one
    // more write arrives as a message.
    write(&cluster.targets(), &cluster.ws, 1, 1, 3, |_| {});
    eventually(
        "a change to arrive over NATS after the fault",
        CONVERGE,
        || (nats_messages(edge.service.addr) > *messages).then_some(()),
    );
    assert_converged(cluster, &[edge]);
}

/// Runs `fault` (which starts it and returns once it ended) after the tenth of 60 writes by
/// each of two writers, with one NATS-fed edge watched throughout.
fn under_fault(
    cluster: &Cluster,
    edge: &common::cluster::Edge,
    fault: impl Fn() + Send + Sync,
) -> Faulted {
    let key = server_key(cluster);
    assert_converged(cluster, &[edge]);
    let watch = Watch::start(edge, &key, "flag-0");
    let ended = std::sync::Mutex::new(None);
    let addr = edge.service.addr;
    let acks = write(&cluster.targets(), &cluster.ws, 2, 60, 3, |i| {
        if i == 10 {
            fault();
            *ended.lock().unwrap() = Some((Instant::now(), nats_messages(addr)));
        }
        pause(Duration::from_millis(20));
    });
    let watched = watch.finish();
    let (ended, messages) = ended.into_inner().unwrap().unwrap();
    Faulted {
        acks,
        watched,
        ended,
        messages,
    }
}

#[test]
fn nats_stopped_for_twenty_seconds_during_writes_loses_nothing() {
    let _one = serial();
    let mut cluster = Cluster::start_nats(1);
    cluster.seed(3);
    let edge = cluster.nats_edge(&[0]);
    let nats = std::sync::Mutex::new(cluster.nats.take().unwrap());
    let faulted = under_fault(&cluster, &edge, || {
        nats.lock().unwrap().stop();
        pause(FAULT);
        nats.lock().unwrap().restart();
    });
    cluster.nats = Some(nats.into_inner().unwrap());
    after_fault(&cluster, &edge, &faulted);
}

#[test]
fn nats_restarted_with_its_store_wiped_is_noticed_and_edges_resync() {
    let _one = serial();
    let mut cluster = Cluster::start_nats(1);
    cluster.seed(3);
    let mut edge = cluster.nats_edge(&[0]);
    let nats = std::sync::Mutex::new(cluster.nats.take().unwrap());
    let faulted = under_fault(&cluster, &edge, || {
        let mut nats = nats.lock().unwrap();
        nats.wipe();
        nats.restart();
    });
    cluster.nats = Some(nats.into_inner().unwrap());
    after_fault(&cluster, &edge, &faulted);
    edge.service
        .wait_for_log("resyncing from the control plane", CONVERGE)
        .unwrap();
    // The session that started over replaced its fleet row: one edge, connected.
    let listed = fleet(&cluster);
    let connected: Vec<_> = listed["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["state"] == "connected")
        .collect();
    assert_eq!(connected.len(), 1, "{listed}");
}

#[test]
fn nats_hung_for_twenty_seconds_loses_nothing() {
    let _one = serial();
    let mut cluster = Cluster::start_nats(1);
    cluster.seed(3);
    let edge = cluster.nats_edge(&[0]);
    let nats = cluster.nats.take().unwrap();
    let faulted = under_fault(&cluster, &edge, || {
        nats.signal("STOP");
        pause(FAULT);
        nats.signal("CONT");
    });
    cluster.nats = Some(nats);
    after_fault(&cluster, &edge, &faulted);
}

#[test]
fn the_relay_lease_holder_killed_is_replaced_and_nothing_is_lost() {
    let _one = serial();
    let mut cluster = Cluster::start_nats(2);
    cluster.seed(3);
    let edge = cluster.nats_edge(&[0, 1]);
    let holder = relay_holder(&mut cluster);
    let (token, running) = cluster.db.lease("nats-relay").unwrap();
    assert!(running);
    let victim = std::sync::Mutex::new(Some(cluster.controls.remove(holder)));
    let takeover = std::sync::Mutex::new(None);
    let faulted = under_fault(&cluster, &edge, || {
        // kill -9 in the middle of the writes: no goodbye, the lease runs out.
        drop(victim.lock().unwrap().take());
        let killed = Instant::now();
        eventually(
            "another control plane to take the relay lease",
            CONVERGE,
            || {
                cluster
                    .db
                    .lease("nats-relay")
                    .filter(|(t, running)| *t > token && *running)
            },
        );
        *takeover.lock().unwrap() = Some(killed.elapsed());
    });
    let took = takeover.into_inner().unwrap().unwrap();
    eprintln!("the relay lease was taken over {took:?} after its holder was killed");
    assert!(took < CONVERGE);
    after_fault(&cluster, &edge, &faulted);
}

#[test]
fn the_relay_killed_between_publish_and_acknowledgement_loses_nothing() {
    let _one = serial();
    let mut cluster = Cluster::start_nats(2);
    cluster.seed(3);
    let edge = cluster.nats_edge(&[0, 1]);
    let holder = relay_holder(&mut cluster);
    let nats = cluster.nats.take().unwrap();
    let victim = std::sync::Mutex::new(Some(cluster.controls.remove(holder)));
    let faulted = under_fault(&cluster, &edge, || {
        // NATS hangs: the holder's publishes go out and wait for their acknowledgements;
        // writes meanwhile commit through the other instance. The holder dies while it waits,
        // then NATS wakes up with whatever of those publishes it had read.
        nats.signal("STOP");
        pause(Duration::from_secs(2));
        drop(victim.lock().unwrap().take());
        nats.signal("CONT");
    });
    cluster.nats = Some(nats);
    after_fault(&cluster, &edge, &faulted);
}

#[test]
fn an_edge_cut_off_from_nats_for_twenty_seconds_catches_up() {
    let _one = serial();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cluster = Cluster::start_nats(1);
    cluster.seed(3);
    let nats_port = cluster.nats.as_ref().unwrap().port;
    let proxy = runtime
        .block_on(checkgate_testkit::tcp_proxy::TcpProxy::start(
            ([127, 0, 0, 1], nats_port).into(),
        ))
        .unwrap();
    let edge = cluster.nats_edge_via(&format!("nats://{}", proxy.addr()), &[0]);
    let faulted = under_fault(&cluster, &edge, || {
        proxy.partition(true);
        pause(FAULT);
        proxy.partition(false);
    });
    after_fault(&cluster, &edge, &faulted);
}

#[test]
fn an_edge_restarted_while_nats_and_every_control_plane_are_down_serves_its_snapshot() {
    let _one = serial();
    let mut cluster = Cluster::start_nats(1);
    cluster.seed(3);
    let edge = cluster.nats_edge(&[0]);
    write(&cluster.targets(), &cluster.ws, 1, 20, 3, |_| {});
    let (nats_url, control_urls, token) = (
        cluster.nats.as_ref().unwrap().url(),
        cluster.control_urls(&[0]),
        cluster.ws.edge_token.clone(),
    );
    let key = server_key(&cluster);
    eventually("the edge to hold the new key", CONVERGE, || {
        let (status, _, _) = checkgate_testkit::http_request(
            edge.service.addr,
            "POST",
            "/api/v1/evaluate/flag-0",
            &[("Authorization", &format!("Bearer {key}"))],
            Some(r#"{"context":{"targetingKey":"u-1"}}"#),
        )
        .ok()?;
        (status == 200).then_some(())
    });
    assert_converged(&cluster, &[&edge]);
    let versions = edge.versions();
    cluster.controls.clear();
    cluster.nats.as_mut().unwrap().stop();
    let (exit, _) = edge.service.terminate().unwrap();
    assert!(exit.success());

    let mut restarted =
        common::cluster::Edge::start_nats(&nats_url, &control_urls, &token, edge.data);
    let (status, body) = restarted.service.get("/ready").unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(restarted.versions(), versions);
    let (status, _, body) = checkgate_testkit::http_request(
        restarted.service.addr,
        "POST",
        "/api/v1/evaluate/flag-0",
        &[("Authorization", &format!("Bearer {key}"))],
        Some(r#"{"context":{"targetingKey":"u-1"}}"#),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    // One clear line says why it cannot follow the feed.
    restarted
        .service
        .wait_for_log("connecting to NATS", CONVERGE)
        .unwrap();
}

#[test]
fn malformed_messages_on_a_feed_subject_are_refused_and_counted_never_applied() {
    let _one = serial();
    let cluster = Cluster::start_nats(1);
    cluster.seed(3);
    let edge = cluster.nats_edge(&[0]);
    assert_converged(&cluster, &[&edge]);
    let subject = format!("checkgate.feed.{}", cluster.ws.envs[0]);
    let url = cluster.nats.as_ref().unwrap().url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let version = |v: &str| {
            let mut h = async_nats::HeaderMap::new();
            h.insert("Checkgate-Version", v);
            h
        };
        let cases: [(async_nats::HeaderMap, Vec<u8>); 3] = [
            // Not an envelope.
            (version("999999"), b"garbage".to_vec()),
            // No version header.
            (async_nats::HeaderMap::new(), b"CGFD".to_vec()),
            // An envelope of a format this build does not read, oversized by its header.
            (version("999999"), b"CGFD\x00\x09\xff\xff\xff\xff".to_vec()),
        ];
        for (headers, payload) in cases {
            client
                .publish_with_headers(subject.clone(), headers, payload.into())
                .await
                .unwrap();
        }
        client.flush().await.unwrap();
    });
    let refused = eventually("the edge to refuse three messages", CONVERGE, || {
        let (_, page) = edge.service.get("/metrics").ok()?;
        let refused = metric(&page, "checkgate_feed_refused_total");
        (refused >= 3.0).then_some(refused)
    });
    assert_eq!(refused, 3.0);
    // Nothing of them was applied, and the feed goes on.
    let acks = write(&cluster.targets(), &cluster.ws, 1, 20, 3, |_| {});
    assert_converged(&cluster, &[&edge]);
    assert_acknowledged_writes_kept(&cluster, &acks);
}

#[test]
fn anti_entropy_repairs_a_nats_fed_edge_that_missed_a_change_without_a_trace() {
    let _one = serial();
    let cluster = Cluster::start_nats(1);
    cluster.seed(3);
    let edge = cluster.nats_edge(&[0]);
    assert_converged(&cluster, &[&edge]);
    assert_anti_entropy_repairs(&cluster, edge);
}

#[test]
fn a_write_is_read_back_at_a_nats_fed_edge_with_min_version() {
    let _one = serial();
    let cluster = Cluster::start_nats(1);
    cluster.seed(1);
    let edge = cluster.nats_edge(&[0]);
    let key = server_key(&cluster);
    assert_converged(&cluster, &[&edge]);
    let env = &cluster.ws.envs[0];
    for rollout in [100, 0, 100] {
        let (status, head, body) = checkgate_testkit::http_request(
            cluster.controls[0].http(),
            "PATCH",
            &format!("/api/environments/{env}/flags/flag-0"),
            &[
                ("Authorization", &format!("Bearer {}", cluster.ws.api_token)),
                ("Content-Type", "application/json"),
            ],
            Some(&format!(r#"{{"rollout_percentage":{rollout}}}"#)),
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let version = head
            .iter()
            .find_map(|h| {
                let (name, value) = h.split_once(':')?;
                name.eq_ignore_ascii_case("x-checkgate-version")
                    .then(|| value.trim().to_owned())
            })
            .expect("the write names its version");
        // At once, without waiting for the edge: the header makes it wait for the write.
        let (status, _, body) = checkgate_testkit::http_request(
            edge.service.addr,
            "POST",
            "/api/v1/evaluate/flag-0",
            &[
                ("Authorization", &format!("Bearer {key}")),
                ("X-Checkgate-Min-Version", &version),
            ],
            Some(r#"{"context":{"targetingKey":"u-1"}}"#),
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["value"], rollout == 100, "{answer}");
    }

    // An edge stopping tells the control plane: the fleet shows it gone at once, not stale.
    eventually("the fleet to list the edge", CONVERGE, || {
        (fleet(&cluster)["edges"][0]["state"] == "connected").then_some(())
    });
    let common::cluster::Edge { service, data } = edge;
    let (exit, _) = service.terminate().unwrap();
    assert!(exit.success(), "{exit:?}");
    drop(data);
    let listed = fleet(&cluster);
    assert_eq!(listed["edges"][0]["state"], "disconnected", "{listed}");
}

/// A TLS-terminating front for a control plane (as a load balancer would be): accepts TLS on
/// loopback with a certificate for `localhost` issued by a CA of its own, and forwards the
/// bytes to `upstream`. Returns its address and the CA's PEM.
fn tls_front(
    runtime: &tokio::runtime::Runtime,
    upstream: std::net::SocketAddr,
) -> (std::net::SocketAddr, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut client) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (addr, ca_cert.pem())
}

#[test]
fn an_edge_reaches_the_control_plane_over_https_and_refuses_a_certificate_it_cannot_check() {
    let _one = serial();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cluster = Cluster::start_nats(1);
    cluster.seed(2);
    let (front, ca) = tls_front(&runtime, cluster.controls[0].http());
    let dir = common::cluster::TempDir::new("https-ca");
    let ca_file = std::path::Path::new(dir.path()).join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let nats_url = cluster.nats.as_ref().unwrap().url();
    let https = format!("https://localhost:{}", front.port());

    // Checked against the CA: the edge follows the feed and the fleet lists it.
    let edge = common::cluster::Edge::start_nats_with(
        &nats_url,
        &https,
        &cluster.ws.edge_token,
        common::cluster::TempDir::new("edge"),
        &[("CONTROL_PLANE_CA", ca_file.to_str().unwrap())],
    );
    assert_converged(&cluster, &[&edge]);
    let acks = write(&cluster.targets(), &cluster.ws, 1, 10, 2, |_| {});
    assert_converged(&cluster, &[&edge]);
    assert_acknowledged_writes_kept(&cluster, &acks);
    eventually("the fleet to list the edge", CONVERGE, || {
        (fleet(&cluster)["edges"][0]["state"] == "connected").then_some(())
    });

    // Checked against the system's CA certificates, which did not issue it: refused, the
    // edge says why and holds nothing.
    let stranger = common::cluster::Edge::start_nats(
        &nats_url,
        &https,
        &cluster.ws.edge_token,
        common::cluster::TempDir::new("edge"),
    );
    let error = eventually("the edge to report the certificate", CONVERGE, || {
        let status = stranger.status();
        let error = status["feed"]["last_error"].as_str()?.to_owned();
        error
            .to_ascii_lowercase()
            .contains("certificate")
            .then_some(error)
    });
    assert_eq!(stranger.status()["feed"]["connected"], false, "{error}");
    assert!(stranger.versions().is_empty());
}

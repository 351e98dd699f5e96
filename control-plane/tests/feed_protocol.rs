//! The feed's protocol versions at a real control plane, over QUIC on loopback: a hello of
//! every version it serves is welcomed, and its insights frames answered (edges of protocol 1
//! built since those frames send them too); any other version is refused with
//! `Close(ProtocolVersion)`, and the `Close` arrives before the connection ends. A frame an edge
//! never sends is answered with `Close(ProtocolViolation)`, and the session ends there (not at
//! its next heartbeat).
//! The edge's side — saying hello again one version lower — is `edge-relay`'s
//! `older_control_plane` test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use checkgate_feed::quic::{QuicTransport, Trust, parse_fingerprint};
use checkgate_feed::{Session as _, Transport as _};
use checkgate_protocol::frame::{CloseCode, Hello};
use checkgate_protocol::impressions::{Impression, ImpressionBatch};
use checkgate_protocol::{Frame, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, Secret};
use common::cluster::{Control, ControlOptions, TempDir, Workspace, eventually};
use common::pg::Database;

const LIMIT: Duration = Duration::from_secs(30);

fn hello(version: u16, token: &str) -> Hello {
    Hello {
        protocol_version: version,
        edge_token: Secret::new(token),
        edge_name: "protocol-test".into(),
        region: String::new(),
        positions: Vec::new(),
    }
}

/// The first frame that is not a snapshot, change or heartbeat.
async fn next_answer(session: &mut impl checkgate_feed::Session) -> Frame {
    loop {
        let frame = tokio::time::timeout(LIMIT, session.recv())
            .await
            .expect("an answer in time")
            .unwrap()
            .expect("the stream stayed open");
        if !matches!(
            frame,
            Frame::Snapshot(_) | Frame::Changes(_) | Frame::Heartbeat(_)
        ) {
            return frame;
        }
    }
}

/// A control plane on a database of its own, with `env`, and a workspace set up on it; in
/// the order they are bound, so the control plane is dropped before its database.
fn started(env: &[(&str, &str)]) -> (Database, TempDir, Control, Workspace) {
    let db = Database::new();
    let dir = TempDir::new("feed-protocol");
    let control = Control::start(&ControlOptions::alone(&db.url(), dir.path(), env));
    let ws = Workspace::set_up(control.http());
    (db, dir, control, ws)
}

/// A QUIC transport trusting `control`'s feed certificate.
fn transport_to(control: &Control) -> QuicTransport {
    let trust = Trust::Fingerprint(parse_fingerprint(&control.fingerprint).unwrap());
    QuicTransport::new(&trust, "localhost".into()).unwrap()
}

#[test]
fn served_versions_are_welcomed_and_answered_and_others_refused() {
    let (_db, _dir, control, ws) = started(&[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut transport = transport_to(&control);
        let batch = Frame::Impressions(ImpressionBatch {
            id: [3; 16],
            environment: "not-granted".into(),
            items: vec![Impression {
                flag_key: "f".into(),
                user_id: None,
                value: "true".into(),
                context: None,
                evaluated_at: 1,
            }],
        });
        let versions = [
            MIN_PROTOCOL_VERSION - 1,
            MIN_PROTOCOL_VERSION,
            PROTOCOL_VERSION,
            PROTOCOL_VERSION + 1,
        ];
        for version in versions {
            let served = (MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version);
            let mut session = transport
                .open(&control.feed.to_string(), hello(version, &ws.edge_token))
                .await
                .unwrap();
            match next_answer(&mut session).await {
                Frame::Welcome(_) => assert!(served, "protocol {version} welcomed"),
                Frame::Close(close) => {
                    assert!(!served, "protocol {version} refused: {}", close.message);
                    assert_eq!(close.code, CloseCode::ProtocolVersion);
                    assert!(close.message.contains(&version.to_string()));
                    continue;
                }
                other => panic!("protocol {version}: {}", other.kind()),
            }
            session.send(&batch).await.unwrap();
            // Edges of protocol 1 built since the insights frames send them too: every version
            // served gets its batch answered.
            match next_answer(&mut session).await {
                Frame::InsightsAck(ack) => assert_eq!(ack.id, [3; 16], "protocol {version}"),
                other => panic!(
                    "protocol {version}: an insights frame answered {}",
                    other.kind()
                ),
            }
        }
        transport.close();
    });
}

#[test]
fn a_frame_an_edge_never_sends_ends_the_session_at_once() {
    // A heartbeat far longer than the wait below: a session left running until its next
    // write fails would still show as connected.
    let (_db, _dir, control, ws) = started(&[("FEED_HEARTBEAT_MS", "60000")]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut transport = transport_to(&control);
        let mut session = transport
            .open(
                &control.feed.to_string(),
                hello(PROTOCOL_VERSION, &ws.edge_token),
            )
            .await
            .unwrap();
        let Frame::Welcome(welcome) = next_answer(&mut session).await else {
            panic!("not welcomed");
        };
        // The session's first heartbeat goes at once; the next is a minute away.
        loop {
            let frame = tokio::time::timeout(LIMIT, session.recv()).await;
            if let Frame::Heartbeat(_) = frame.expect("a heartbeat in time").unwrap().unwrap() {
                break;
            }
        }
        // A control plane's frame, sent back by the edge.
        session.send(&Frame::Welcome(welcome)).await.unwrap();
        match next_answer(&mut session).await {
            Frame::Close(close) => {
                assert_eq!(
                    close.code,
                    CloseCode::ProtocolViolation,
                    "{}",
                    close.message
                );
                assert!(close.message.contains("welcome"), "{}", close.message);
            }
            other => panic!("answered {}", other.kind()),
        }
        // Kept open on the edge's side: only the control plane can end the session.
        eventually(
            "the fleet to list the edge as disconnected",
            Duration::from_secs(20),
            || {
                let (status, _, body) = checkgate_testkit::http_request(
                    control.http(),
                    "GET",
                    "/api/edges",
                    &[("Cookie", &ws.admin_cookie)],
                    None,
                )
                .ok()?;
                assert_eq!(status, 200, "{body}");
                let fleet: serde_json::Value = serde_json::from_str(&body).ok()?;
                (fleet["edges"][0]["state"] == "disconnected").then_some(())
            },
        );
        drop(session);
        transport.close();
    });
}

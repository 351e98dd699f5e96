//! An edge following a control plane of an older feed protocol: the control plane here is a
//! QUIC peer on loopback that speaks protocol 1 as its builds did — it refuses a hello of
//! protocol 2 with `Close(ProtocolVersion)` and drops the connection at once (so the `Close`
//! may or may not arrive), welcomes a hello of protocol 1, and answers insights frames. The
//! edge's real feed client must say hello again in protocol 1 at once, follow the feed, say
//! so on `/status` (through `FeedState`), and keep sending its insights; after that session,
//! say hello in its own version again, and step down on a `Close` that does arrive.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use checkgate_edge::feed::client::{self, ClientSettings, FeedState, Via};
use checkgate_edge::feed::upstream;
use checkgate_feed::quic::{FrameReader, FrameWriter, Trust, server_config};
use checkgate_ops::Stopping;
use checkgate_protocol::frame::{AckOutcome, Close, CloseCode, Heartbeat, InsightsAck, Welcome};
use checkgate_protocol::impressions::{Impression, ImpressionBatch};
use checkgate_protocol::{Frame, HANDSHAKE_MAX_FRAME, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use checkgate_serve::insights::Upstream as _;
use checkgate_serve::replica::Replica;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const LIMIT: Duration = Duration::from_secs(20);

/// A QUIC server on loopback with a fresh self-signed certificate; its address and how to trust it.
fn endpoint() -> (quinn::Endpoint, SocketAddr, Trust) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = CertificateDer::from(made.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
    let pin =
        checkgate_feed::quic::parse_fingerprint(&checkgate_feed::quic::fingerprint(&cert)).unwrap();
    let config = server_config(vec![cert], key).unwrap();
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    (endpoint, addr, Trust::Fingerprint(pin))
}

/// The next connection (kept open while held), its stream, and the protocol version of its
/// hello.
async fn accept_hello(
    endpoint: &quinn::Endpoint,
) -> (quinn::Connection, FrameReader, FrameWriter, u16) {
    let incoming = tokio::time::timeout(LIMIT, endpoint.accept())
        .await
        .expect("the edge dialled")
        .unwrap();
    let connection = incoming.await.unwrap();
    let (send, recv) = connection.accept_bi().await.unwrap();
    let mut reader = FrameReader::new(recv, HANDSHAKE_MAX_FRAME);
    let writer = FrameWriter::new(send, 1 << 20);
    let Some(Frame::Hello(hello)) = reader.next().await.unwrap() else {
        panic!("the first frame is not a hello");
    };
    (connection, reader, writer, hello.protocol_version)
}

/// Refuses a hello of protocol 2 as a control plane of protocol 1 does, and finishes the stream.
async fn refuse(writer: &mut FrameWriter) {
    writer
        .send(&Frame::Close(Close {
            code: CloseCode::ProtocolVersion,
            message: "this control plane speaks feed protocol 1, not 2".into(),
        }))
        .await
        .unwrap();
    writer.finish().unwrap();
}

#[tokio::test]
async fn an_edge_refused_for_its_protocol_steps_down_and_keeps_sending_its_insights() {
    let (endpoint, addr, trust) = endpoint();
    let data = std::env::temp_dir().join(format!("cg-older-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data).unwrap();
    let settings = ClientSettings {
        addrs: vec![addr.to_string()],
        via: Via::Quic {
            server_name: "localhost".into(),
            trust,
        },
        token: checkgate_protocol::Secret::new("cge_test"),
        name: "edge".into(),
        region: "test".into(),
        anti_entropy: Duration::from_secs(3600),
        snapshot_path: data.join("snapshot.bin"),
    };
    let state = Arc::new(FeedState::default());
    let (feed_upstream, outbox) = upstream::channel();
    let feed = tokio::spawn(client::run(
        settings,
        Replica::new(),
        state.clone(),
        None,
        outbox,
        Stopping::never(),
    ));

    // The edge's own version first: refused as a control plane of protocol 1 refuses it, the
    // connection dropped straight after.
    let (refused, _, mut writer, version) = accept_hello(&endpoint).await;
    assert_eq!(version, PROTOCOL_VERSION);
    refuse(&mut writer).await;
    drop((writer, refused));

    // At once (well within the back-off after a refusal), the hello of protocol 1.
    let (_connection, mut reader, mut writer, version) =
        tokio::time::timeout(Duration::from_secs(5), accept_hello(&endpoint))
            .await
            .expect("the edge said hello again without backing off");
    assert_eq!(version, MIN_PROTOCOL_VERSION);
    writer
        .send(&Frame::Welcome(Welcome {
            epoch: 1,
            environments: Vec::new(),
            heartbeat_interval_ms: 500,
        }))
        .await
        .unwrap();
    writer
        .send(&Frame::Heartbeat(Heartbeat { heads: Vec::new() }))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while state.protocol() != Some(MIN_PROTOCOL_VERSION) || !state.synced() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the edge never followed the feed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The flusher's batch goes out on this feed and is stored once acknowledged.
    let batch = ImpressionBatch {
        id: [7; 16],
        environment: "env".into(),
        items: vec![Impression {
            flag_key: "f".into(),
            user_id: None,
            value: "true".into(),
            context: None,
            evaluated_at: 1,
        }],
    };
    let delivered = tokio::spawn(async move {
        feed_upstream
            .deliver(Frame::Impressions(batch.clone()))
            .await
    });
    let sent = loop {
        let frame = tokio::time::timeout(LIMIT, reader.next())
            .await
            .expect("the batch was sent")
            .unwrap()
            .expect("the stream stayed open");
        if let Frame::Impressions(sent) = frame {
            break sent;
        }
    };
    assert_eq!(sent.id, [7; 16]);
    writer
        .send(&Frame::InsightsAck(InsightsAck {
            id: sent.id,
            outcome: AckOutcome::Stored,
        }))
        .await
        .unwrap();
    let outcome = tokio::time::timeout(LIMIT, delivered)
        .await
        .expect("the edge answered its flusher")
        .unwrap();
    assert_eq!(outcome, AckOutcome::Stored);

    // The session ends (the control plane restarts): the next hello is in the edge's own
    // version again. Refused this time by a control plane that lets its `Close` arrive, the
    // edge steps down on the `Close` itself.
    drop((reader, writer, _connection));
    let (refused, _, mut writer, version) = accept_hello(&endpoint).await;
    assert_eq!(version, PROTOCOL_VERSION);
    refuse(&mut writer).await;
    writer.delivered(LIMIT).await;
    let (_again, _, _, version) =
        tokio::time::timeout(Duration::from_secs(5), accept_hello(&endpoint))
            .await
            .expect("the edge said hello again without backing off");
    assert_eq!(version, MIN_PROTOCOL_VERSION);
    drop(refused);

    feed.abort();
    let _ = std::fs::remove_dir_all(&data);
}

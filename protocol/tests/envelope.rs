//! The feed envelope on hand-made cases: every frame kind round-trips, and every way bytes can
//! be wrong gives "incomplete" or the typed error that names it, with a readable message.

// Helpers outside `#[test]` functions unwrap too: a failure there is the assertion.
#![allow(clippy::unwrap_used)]

use std::error::Error as _;

use bincode::error::DecodeError as Bincode;
use checkgate_protocol::envelope::MAGIC;
use checkgate_protocol::frame::*;
use checkgate_protocol::impressions::*;
use checkgate_protocol::{
    DecodeError, EncodeError, FORMAT_VERSION, Frame, HEADER_LEN, MAX_FRAME_LIMIT, PROTOCOL_VERSION,
    Secret, decode, encode, peek_frame_len,
};

const MAX: usize = 1 << 20;

fn key_record() -> SdkKeyRecord {
    SdkKeyRecord {
        id: "k1".into(),
        version: 3,
        kind: SdkKeyKind::Client,
        hash: [7; 32],
        prefix: "cg_c_ab".into(),
    }
}

fn position(version: u64) -> EnvPosition {
    EnvPosition {
        env_id: "e".into(),
        epoch: 9,
        version,
    }
}

/// One frame of every kind, with every kind of change.
fn sample_frames() -> Vec<Frame> {
    let changes = [
        Item::FlagUpsert {
            key: "f".into(),
            json: r#"{"key":"f","is_enabled":true}"#.into(),
        },
        Item::FlagDelete { key: "f".into() },
        Item::SegmentUpsert {
            key: "beta".into(),
            json: r#"{"key":"beta","rules":[]}"#.into(),
        },
        Item::SegmentDelete { key: "beta".into() },
        Item::SdkKeyUpsert(key_record()),
        Item::SdkKeyRevoke { id: "k1".into() },
        Item::SettingsUpdate { json: "{}".into() },
        Item::EnvironmentDeleted,
    ];
    vec![
        Hello {
            protocol_version: PROTOCOL_VERSION,
            edge_token: Secret::new("et_secret"),
            edge_name: "edge-1".into(),
            region: "eu-north".into(),
            positions: vec![position(41)],
        }
        .into(),
        Welcome {
            epoch: 9,
            environments: vec![EnvironmentInfo {
                env_id: "e".into(),
                project_id: "p".into(),
                slug: "production".into(),
                name: "Production".into(),
            }],
            heartbeat_interval_ms: 5000,
        }
        .into(),
        Snapshot {
            env_id: "e".into(),
            epoch: 9,
            version: 41,
            flags: vec![Record {
                key: "f".into(),
                version: 40,
                json: r#"{"key":"f","is_enabled":true}"#.into(),
            }],
            segments: vec![],
            sdk_keys: vec![key_record()],
            settings_json: "{}".into(),
        }
        .into(),
        Changes {
            env_id: "e".into(),
            epoch: 9,
            changes: (42..)
                .zip(changes)
                .map(|(version, item)| ChangeRecord { version, item })
                .collect(),
        }
        .into(),
        Heartbeat {
            heads: vec![position(49)],
        }
        .into(),
        DigestRequest { env_id: "e".into() }.into(),
        Resync { env_id: "e".into() }.into(),
        Digest {
            env_id: "e".into(),
            epoch: 9,
            version: 49,
            digest: [1; 32],
        }
        .into(),
        Close {
            code: CloseCode::Revoked,
            message: "edge token revoked".into(),
        }
        .into(),
        ImpressionBatch {
            id: [3; 16],
            environment: "e".into(),
            items: vec![Impression {
                flag_key: "f".into(),
                user_id: Some("u".into()),
                value: "true".into(),
                context: Some("{}".into()),
                evaluated_at: 1_800_000_000_000,
            }],
        }
        .into(),
        EvaluationCounts {
            id: [4; 16],
            counts: vec![EvaluationCount {
                environment: "e".into(),
                flag_key: "f".into(),
                variant: "on".into(),
                minute: 30_000_000,
                count: 7,
            }],
        }
        .into(),
        InsightsAck {
            id: [3; 16],
            outcome: AckOutcome::Retry,
        }
        .into(),
    ]
}

/// A frame with this payload, under a correct header.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::from(MAGIC);
    bytes.extend(FORMAT_VERSION.to_be_bytes());
    bytes.extend(u32::try_from(payload.len()).unwrap().to_be_bytes());
    bytes.extend(payload);
    bytes
}

#[test]
fn every_frame_kind_round_trips() {
    let frames = sample_frames();
    let kinds: Vec<&str> = frames.iter().map(Frame::kind).collect();
    assert_eq!(
        kinds,
        [
            "hello",
            "welcome",
            "snapshot",
            "changes",
            "heartbeat",
            "digest_request",
            "resync",
            "digest",
            "close",
            "impressions",
            "evaluation_counts",
            "insights_ack"
        ]
    );
    for frame in frames {
        let bytes = encode(&frame, MAX).unwrap();
        assert_eq!(&bytes[..4], b"CGFD");
        assert_eq!(&bytes[4..6], &FORMAT_VERSION.to_be_bytes());
        let len = u32::from_be_bytes(bytes[6..10].try_into().unwrap());
        assert_eq!(len as usize, bytes.len() - HEADER_LEN);
        let (back, used) = decode(&bytes, MAX).unwrap().unwrap();
        assert_eq!(back, frame);
        assert_eq!(used, bytes.len());
    }
}

#[test]
fn frames_back_to_back_decode_one_at_a_time() {
    let frames = sample_frames();
    let stream: Vec<u8> = frames
        .iter()
        .flat_map(|f| encode(f, MAX).unwrap())
        .collect();
    let mut at = 0;
    for f in &frames {
        let (got, used) = decode(&stream[at..], MAX).unwrap().unwrap();
        assert_eq!(&got, f);
        at += used;
    }
    assert_eq!(at, stream.len());
    assert!(decode(&stream[at..], MAX).unwrap().is_none());
}

#[test]
fn every_truncation_is_incomplete() {
    for frame in sample_frames() {
        let bytes = encode(&frame, MAX).unwrap();
        for n in 0..bytes.len() {
            assert!(
                matches!(decode(&bytes[..n], MAX), Ok(None)),
                "{} cut at {n}",
                frame.kind()
            );
        }
        assert_eq!(
            peek_frame_len(&bytes[..HEADER_LEN], MAX).unwrap(),
            Some(bytes.len())
        );
    }
}

#[test]
fn bad_magic_is_refused_from_the_first_byte() {
    assert!(matches!(
        decode(b"G", MAX),
        Err(DecodeError::BadMagic { seen: 1, .. })
    ));
    assert!(
        matches!(decode(b"CG", MAX), Ok(None)),
        "a correct start waits for more"
    );
    let err = decode(b"CGFX", MAX).unwrap_err();
    assert!(matches!(err, DecodeError::BadMagic { got, seen: 4 } if &got == b"CGFX"));
    let err = decode(b"GET / HTTP/1.1\r\n", MAX).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the peer is not speaking the Checkgate feed protocol: its data starts with \"GET \" \
         where \"CGFD\" was expected"
    );
    let err = decode(&[0x16, 0x03, 0x01], MAX).unwrap_err();
    assert!(
        err.to_string().contains(r#"starts with "\x16\x03\x01""#),
        "{err}"
    );
}

#[test]
fn unknown_version_names_both_versions() {
    for version in [0, FORMAT_VERSION + 1, u16::MAX] {
        let mut bytes = encode(&sample_frames()[4], MAX).unwrap();
        bytes[4..6].copy_from_slice(&version.to_be_bytes());
        // Refused from the header alone, before the payload arrives.
        let err = decode(&bytes[..HEADER_LEN], MAX).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::UnsupportedVersion { got, supported: FORMAT_VERSION } if got == version
        ));
        assert_eq!(
            err.to_string(),
            format!(
                "the peer sends feed format version {version}, but this build reads only \
                 version {FORMAT_VERSION}; upgrade the older of the two"
            )
        );
    }
}

#[test]
fn an_oversized_length_is_refused_from_the_header_alone() {
    let header = |len: u32| {
        let mut h = Vec::from(MAGIC);
        h.extend(FORMAT_VERSION.to_be_bytes());
        h.extend(len.to_be_bytes());
        h
    };
    // Only the header has arrived: the decoder must not wait for 4 GiB.
    let err = decode(&header(u32::MAX), MAX).unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { len, max: MAX } if len == u32::MAX as usize));
    assert_eq!(
        err.to_string(),
        format!("a feed frame announces a 4294967295-byte payload, over the {MAX}-byte frame cap")
    );
    let over = u32::try_from(MAX + 1).unwrap();
    assert!(matches!(
        decode(&header(over), MAX),
        Err(DecodeError::TooLarge { .. })
    ));
    // Exactly the cap is allowed: the decoder waits for the payload.
    let at_cap = u32::try_from(MAX).unwrap();
    assert!(matches!(decode(&header(at_cap), MAX), Ok(None)));
    // A cap above the hard limit is lowered to it.
    assert!(matches!(
        peek_frame_len(&header(u32::MAX), usize::MAX),
        Err(DecodeError::TooLarge {
            max: MAX_FRAME_LIMIT,
            ..
        })
    ));
}

#[test]
fn encoding_over_the_cap_fails_with_the_real_size() {
    let big: Frame = Close {
        code: CloseCode::Internal,
        message: "x".repeat(2000),
    }
    .into();
    let full = encode(&big, MAX).unwrap().len() - HEADER_LEN;
    let err = encode(&big, 1000).unwrap_err();
    assert!(
        matches!(err, EncodeError::TooLarge { kind: "close", len, max: 1000 } if len == full),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "a close frame would take {full} bytes, over the 1000-byte frame cap; the peer \
             would refuse it"
        )
    );
    // Exactly at the cap encodes, and decodes under the same cap.
    let bytes = encode(&big, full).unwrap();
    assert_eq!(decode(&bytes, full).unwrap().unwrap().0, big);
    assert!(matches!(
        decode(&bytes, full - 1),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn trailing_bytes_are_refused() {
    let bytes = encode(&sample_frames()[5], MAX).unwrap();
    let mut payload = bytes[HEADER_LEN..].to_vec();
    let used = payload.len();
    payload.extend([0, 0, 0]);
    let err = decode(&framed(&payload), MAX).unwrap_err();
    assert!(
        matches!(err, DecodeError::TrailingBytes { len, used: u } if len == used + 3 && u == used)
    );
    assert!(
        err.to_string().contains("the frame inside it ends after"),
        "{err}"
    );
}

#[test]
fn garbage_payloads_are_malformed() {
    let cases: [&[u8]; 5] = [
        &[],                       // nothing at all
        &[0xff, 0xff, 0xff, 0xff], // not a varint
        &[8],                      // a frame kind that does not exist
        &[7, 9, 0],                // a close code that does not exist
        &[7, 0, 2, 0xc3, 0x28],    // a message that is not UTF-8
    ];
    for payload in cases {
        let err = decode(&framed(payload), MAX).unwrap_err();
        assert!(
            matches!(err, DecodeError::Malformed(_)),
            "{payload:?}: {err:?}"
        );
        assert!(
            err.source().is_some(),
            "the codec's error is kept as the source"
        );
        assert!(
            err.to_string()
                .starts_with("a feed frame's payload is not a valid frame")
        );
    }
}

/// The payload of a `Close` frame whose message claims `len` bytes, followed by `body`.
fn lying_close(len: u64, body: &[u8]) -> Vec<u8> {
    let mut payload = vec![7u8, 0]; // Frame::Close, CloseCode::Unauthorized
    payload.push(0xfd); // varint marker: a u64 follows
    payload.extend(len.to_le_bytes());
    payload.extend(body);
    payload
}

#[test]
fn a_lying_inner_length_is_malformed() {
    // Past bincode's limit: refused on sight. Within it: refused because the bytes are not
    // there (the `allocation` tests show that nothing was allocated for it either way).
    for claim in [1 << 60, 200 << 20, 100 << 10, 6] {
        let err = decode(&framed(&lying_close(claim, b"short")), MAX).unwrap_err();
        let expected = if claim > 8 << 20 {
            matches!(err, DecodeError::Malformed(Bincode::LimitExceeded))
        } else {
            matches!(err, DecodeError::Malformed(Bincode::UnexpectedEnd { .. }))
        };
        assert!(expected, "claim {claim}: {err:?}");
    }
}

#[test]
fn a_hello_never_shows_its_token() {
    let hello = &sample_frames()[0];
    let shown = format!("{hello:?}");
    assert!(!shown.contains("et_secret"), "{shown}");
    assert!(shown.contains("Secret(***)"));
}

//! The feed envelope: every frame round-trips, every malformed input gives a typed error or
//! "incomplete", and no input panics — checked on hand-made cases and by proptest over random
//! and mutated frames.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use checkgate_protocol::envelope::{MAGIC, MAX_FRAME_LIMIT, peek_len};
use checkgate_protocol::frame::*;
use checkgate_protocol::{
    DecodeError, EncodeError, FORMAT_VERSION, Frame, HEADER_LEN, Secret, decode, encode,
};
use proptest::prelude::*;

const MAX: usize = 1 << 20;

fn sample_frames() -> Vec<Frame> {
    let key = SdkKeyRecord {
        id: "k1".into(),
        version: 3,
        kind: SdkKeyKind::Client,
        hash: [7; 32],
        prefix: "cg_c_ab".into(),
    };
    vec![
        Frame::Hello(Hello {
            protocol_version: FORMAT_VERSION,
            edge_token: Secret::new("et_secret"),
            edge_name: "edge-1".into(),
            region: "eu-north".into(),
            positions: vec![EnvPosition {
                env_id: "e".into(),
                epoch: 9,
                version: 41,
            }],
        }),
        Frame::Welcome(Welcome {
            epoch: 9,
            environments: vec![EnvironmentInfo {
                env_id: "e".into(),
                project_id: "p".into(),
                slug: "production".into(),
                name: "Production".into(),
            }],
            heartbeat_interval_ms: 5000,
        }),
        Frame::Snapshot(Snapshot {
            env_id: "e".into(),
            epoch: 9,
            version: 41,
            flags: vec![Record {
                key: "f".into(),
                version: 40,
                json: r#"{"key":"f","is_enabled":true}"#.into(),
            }],
            segments: vec![],
            sdk_keys: vec![key.clone()],
            settings_json: "{}".into(),
        }),
        Frame::Changes(Changes {
            env_id: "e".into(),
            epoch: 9,
            changes: vec![
                ChangeRecord {
                    version: 42,
                    item: Item::FlagUpsert {
                        key: "f".into(),
                        json: "{}".into(),
                    },
                },
                ChangeRecord {
                    version: 43,
                    item: Item::FlagDelete { key: "f".into() },
                },
                ChangeRecord {
                    version: 44,
                    item: Item::SdkKeyUpsert(key),
                },
                ChangeRecord {
                    version: 45,
                    item: Item::SdkKeyRevoke { id: "k1".into() },
                },
                ChangeRecord {
                    version: 46,
                    item: Item::EnvironmentDeleted,
                },
            ],
        }),
        Frame::Heartbeat(Heartbeat {
            heads: vec![EnvPosition {
                env_id: "e".into(),
                epoch: 9,
                version: 46,
            }],
        }),
        Frame::DigestRequest(DigestRequest { env_id: "e".into() }),
        Frame::Digest(Digest {
            env_id: "e".into(),
            epoch: 9,
            version: 46,
            digest: [1; 32],
        }),
        Frame::Close(Close {
            code: CloseCode::Revoked,
            message: "edge token revoked".into(),
        }),
    ]
}

#[test]
fn every_frame_round_trips() {
    for frame in sample_frames() {
        let bytes = encode(&frame, MAX).unwrap();
        assert_eq!(&bytes[..4], &MAGIC);
        let (back, used) = decode(&bytes, MAX).unwrap().unwrap();
        assert_eq!(back, frame);
        assert_eq!(used, bytes.len());
    }
}

#[test]
fn frames_back_to_back_decode_one_at_a_time() {
    let frames = sample_frames();
    let mut stream = Vec::new();
    for f in &frames {
        stream.extend(encode(f, MAX).unwrap());
    }
    let mut at = 0;
    for f in &frames {
        let (got, used) = decode(&stream[at..], MAX).unwrap().unwrap();
        assert_eq!(&got, f);
        at += used;
    }
    assert_eq!(at, stream.len());
}

#[test]
fn every_prefix_is_incomplete() {
    let bytes = encode(&sample_frames()[2], MAX).unwrap();
    for n in 0..bytes.len() {
        assert!(
            matches!(decode(&bytes[..n], MAX), Ok(None)),
            "prefix of {n} bytes"
        );
    }
}

#[test]
fn bad_magic_is_refused_from_the_first_byte() {
    assert!(matches!(
        decode(b"G", MAX),
        Err(DecodeError::BadMagic { .. })
    ));
    let err = decode(b"GET / HTTP/1.1\r\n", MAX).unwrap_err();
    assert!(
        err.to_string().starts_with("not a Checkgate feed frame"),
        "{err}"
    );
}

#[test]
fn unknown_version_names_both_versions() {
    let mut bytes = encode(&sample_frames()[4], MAX).unwrap();
    bytes[4..6].copy_from_slice(&7u16.to_be_bytes());
    let err = decode(&bytes, MAX).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::UnsupportedVersion {
            got: 7,
            supported: FORMAT_VERSION
        }
    ));
    assert_eq!(
        err.to_string(),
        format!(
            "feed format version 7 is not supported (this build speaks version {FORMAT_VERSION})"
        )
    );
}

#[test]
fn an_oversized_length_is_refused_from_the_header_alone() {
    let mut header = Vec::from(MAGIC);
    header.extend(FORMAT_VERSION.to_be_bytes());
    header.extend(u32::MAX.to_be_bytes());
    // Only the header has arrived: the decoder must not wait for 4 GiB.
    assert!(
        matches!(decode(&header, MAX), Err(DecodeError::TooLarge { len, max: MAX }) if len == u32::MAX as usize)
    );
    assert!(matches!(
        peek_len(&header, usize::MAX),
        Err(DecodeError::TooLarge {
            max: MAX_FRAME_LIMIT,
            ..
        })
    ));
}

#[test]
fn encoding_over_the_cap_fails() {
    let big = Frame::Close(Close {
        code: CloseCode::Internal,
        message: "x".repeat(2000),
    });
    assert!(matches!(
        encode(&big, 1000),
        Err(EncodeError::TooLarge { kind: "close", .. })
    ));
}

#[test]
fn trailing_and_garbage_payloads_are_typed_errors() {
    let mut bytes = encode(&sample_frames()[5], MAX).unwrap();
    let len = u32::from_be_bytes(bytes[6..10].try_into().unwrap()) + 3;
    bytes[6..10].copy_from_slice(&len.to_be_bytes());
    bytes.extend([0, 0, 0]);
    assert!(matches!(
        decode(&bytes, MAX),
        Err(DecodeError::TrailingBytes { extra: 3 })
    ));

    let mut garbage = Vec::from(MAGIC);
    garbage.extend(FORMAT_VERSION.to_be_bytes());
    garbage.extend(4u32.to_be_bytes());
    garbage.extend([0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        decode(&garbage, MAX),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn a_lying_inner_length_does_not_allocate_past_the_cap() {
    // A Close frame whose message claims 2^60 bytes.
    let mut payload = vec![7u8, 0]; // variant index of Close (varint), CloseCode::Unauthorized
    payload.push(0xfd); // varint marker for a u64
    payload.extend((1u64 << 60).to_le_bytes());
    let mut bytes = Vec::from(MAGIC);
    bytes.extend(FORMAT_VERSION.to_be_bytes());
    bytes.extend((payload.len() as u32).to_be_bytes());
    bytes.extend(payload);
    assert!(matches!(
        decode(&bytes, MAX),
        Err(DecodeError::Malformed(_))
    ));
}

fn text() -> impl Strategy<Value = String> {
    "[a-z0-9{}\":é-]{0,12}"
}

fn position() -> impl Strategy<Value = EnvPosition> {
    (text(), any::<u64>(), any::<u64>()).prop_map(|(env_id, epoch, version)| EnvPosition {
        env_id,
        epoch,
        version,
    })
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        (text(), text()).prop_map(|(key, json)| Item::FlagUpsert { key, json }),
        text().prop_map(|key| Item::FlagDelete { key }),
        (text(), text()).prop_map(|(key, json)| Item::SegmentUpsert { key, json }),
        text().prop_map(|key| Item::SegmentDelete { key }),
        (text(), any::<u64>(), any::<[u8; 32]>(), any::<bool>()).prop_map(
            |(id, version, hash, server)| {
                Item::SdkKeyUpsert(SdkKeyRecord {
                    id,
                    version,
                    kind: if server {
                        SdkKeyKind::Server
                    } else {
                        SdkKeyKind::Client
                    },
                    hash,
                    prefix: "cg_".into(),
                })
            }
        ),
        text().prop_map(|id| Item::SdkKeyRevoke { id }),
        Just(Item::EnvironmentDeleted),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (text(), text(), proptest::collection::vec(position(), 0..4)).prop_map(
            |(name, token, positions)| {
                Frame::Hello(Hello {
                    protocol_version: FORMAT_VERSION,
                    edge_token: Secret::new(token),
                    edge_name: name,
                    region: "r".into(),
                    positions,
                })
            }
        ),
        (
            text(),
            any::<u64>(),
            proptest::collection::vec((any::<u64>(), item()), 0..6)
        )
            .prop_map(|(env_id, epoch, changes)| {
                Frame::Changes(Changes {
                    env_id,
                    epoch,
                    changes: changes
                        .into_iter()
                        .map(|(version, item)| ChangeRecord { version, item })
                        .collect(),
                })
            }),
        proptest::collection::vec(position(), 0..4)
            .prop_map(|heads| Frame::Heartbeat(Heartbeat { heads })),
        (text(), any::<u64>(), any::<u64>(), any::<[u8; 32]>()).prop_map(
            |(env_id, epoch, version, digest)| Frame::Digest(Digest {
                env_id,
                epoch,
                version,
                digest
            })
        ),
        text().prop_map(|message| Frame::Close(Close {
            code: CloseCode::Shutdown,
            message
        })),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_frames_round_trip(f in frame()) {
        let bytes = encode(&f, MAX).unwrap();
        let (back, used) = decode(&bytes, MAX).unwrap().unwrap();
        prop_assert_eq!(back, f);
        prop_assert_eq!(used, bytes.len());
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), with_header in any::<bool>()) {
        let mut input = Vec::new();
        if with_header {
            input.extend(MAGIC);
            input.extend(FORMAT_VERSION.to_be_bytes());
            input.extend((bytes.len() as u32).to_be_bytes());
        }
        input.extend(&bytes);
        let _ = decode(&input, MAX);
    }

    #[test]
    fn mutated_frames_decode_or_fail_cleanly(f in frame(), mutations in proptest::collection::vec(mutation(), 1..4)) {
        let mut bytes = encode(&f, MAX).unwrap();
        for m in mutations {
            let n = bytes.len().max(1);
            match m {
                Mutation::Flip(i, b) => { if let Some(x) = bytes.get_mut(i % n) { *x ^= b; } }
                Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
                Mutation::Delete(i) => { if !bytes.is_empty() { bytes.remove(i % n); } }
                Mutation::Truncate(i) => bytes.truncate(i % n),
            }
        }
        match decode(&bytes, MAX) {
            Ok(Some((_, used))) => prop_assert!(used <= bytes.len() && used >= HEADER_LEN),
            Ok(None) => prop_assert!(bytes.len() < HEADER_LEN || peek_len(&bytes, MAX).unwrap().unwrap() + HEADER_LEN > bytes.len()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

//! Memory bounds of the decoder: a length read from a frame is never allocated before the
//! bytes it announces have arrived (checked with an allocator that counts, on every string
//! field of every frame kind), and bincode's limit never refuses an honest frame.

// Helpers outside `#[test]` functions unwrap too: a failure there is the assertion.
#![allow(clippy::unwrap_used)]

use checkgate_protocol::connections::*;
use checkgate_protocol::envelope::MAGIC;
use checkgate_protocol::frame::*;
use checkgate_protocol::impressions::*;
use checkgate_protocol::{FORMAT_VERSION, Frame, HEADER_LEN, Secret, decode, encode};
use counting_alloc::{CountingAlloc, count};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const MAX: usize = 1 << 20;

/// Hands out distinct 4-byte strings, so each string field can be found in the encoding.
struct Markers(u32);

impl Markers {
    fn next(&mut self) -> String {
        self.0 += 1;
        format!("<{:02}>", self.0)
    }
}

/// One frame of every kind, with every kind of change, each string field a distinct marker.
fn marked_frames() -> (Vec<Frame>, u32) {
    let mut m = Markers(0);
    let position = |m: &mut Markers| EnvPosition {
        env_id: m.next(),
        epoch: 1,
        version: 2,
    };
    let record = |m: &mut Markers| Record {
        key: m.next(),
        version: 3,
        json: m.next(),
    };
    let sdk_key = |m: &mut Markers| SdkKeyRecord {
        id: m.next(),
        version: 4,
        kind: SdkKeyKind::Server,
        hash: [0; 32],
        prefix: m.next(),
    };
    let hello = Hello {
        protocol_version: 1,
        edge_token: Secret::new(m.next()),
        edge_name: m.next(),
        region: m.next(),
        positions: vec![position(&mut m)],
    };
    let welcome = Welcome {
        epoch: 1,
        environments: vec![EnvironmentInfo {
            env_id: m.next(),
            project_id: m.next(),
            slug: m.next(),
            name: m.next(),
        }],
        heartbeat_interval_ms: 5,
    };
    let snapshot = Snapshot {
        env_id: m.next(),
        epoch: 1,
        version: 2,
        flags: vec![record(&mut m)],
        segments: vec![record(&mut m)],
        sdk_keys: vec![sdk_key(&mut m)],
        settings_json: m.next(),
    };
    let items = vec![
        Item::FlagUpsert {
            key: m.next(),
            json: m.next(),
        },
        Item::FlagDelete { key: m.next() },
        Item::SegmentUpsert {
            key: m.next(),
            json: m.next(),
        },
        Item::SegmentDelete { key: m.next() },
        Item::SdkKeyUpsert(sdk_key(&mut m)),
        Item::SdkKeyRevoke { id: m.next() },
        Item::SettingsUpdate { json: m.next() },
    ];
    let changes = Changes {
        env_id: m.next(),
        epoch: 1,
        changes: items
            .into_iter()
            .map(|item| ChangeRecord { version: 5, item })
            .collect(),
    };
    let frames = vec![
        hello.into(),
        welcome.into(),
        snapshot.into(),
        changes.into(),
        Heartbeat {
            heads: vec![position(&mut m)],
        }
        .into(),
        DigestRequest { env_id: m.next() }.into(),
        Resync { env_id: m.next() }.into(),
        Digest {
            env_id: m.next(),
            epoch: 1,
            version: 2,
            digest: [0; 32],
        }
        .into(),
        Close {
            code: CloseCode::Shutdown,
            message: m.next(),
        }
        .into(),
        ImpressionBatch {
            id: [0; 16],
            environment: m.next(),
            items: vec![Impression {
                flag_key: m.next(),
                user_id: Some(m.next()),
                value: m.next(),
                context: Some(m.next()),
                evaluated_at: 5,
            }],
        }
        .into(),
        EvaluationCounts {
            id: [0; 16],
            counts: vec![EvaluationCount {
                environment: m.next(),
                flag_key: m.next(),
                variant: m.next(),
                minute: 5,
                count: 6,
            }],
        }
        .into(),
        ConnectionReport {
            id: [0; 16],
            entries: vec![ConnectionCount {
                env_id: m.next(),
                key_id: m.next(),
                count: 7,
                clients: vec![ConnectedClient {
                    address: m.next(),
                    connected_at: 8,
                }],
            }],
        }
        .into(),
    ];
    (frames, m.0)
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::from(MAGIC);
    bytes.extend(FORMAT_VERSION.to_be_bytes());
    bytes.extend(u32::try_from(payload.len()).unwrap().to_be_bytes());
    bytes.extend(payload);
    bytes
}

/// Allocations made while decoding `bytes`, which must fail.
fn allocations_of_failed_decode(bytes: &[u8]) -> u64 {
    let (result, n) = count(|| decode(bytes, MAX).map(|frame| frame.is_some()));
    assert!(result.is_err(), "{result:?}");
    n
}

#[test]
fn a_lying_string_length_allocates_nothing() {
    // For each string field: the payload cut just before the string's length, and the same
    // payload followed by a length of 65,535 bytes that never come. The decoder must fail on
    // both having made the same allocations: none for the lie.
    let (frames, markers) = marked_frames();
    let mut found = 0;
    for frame in frames {
        let bytes = encode(&frame, MAX).unwrap();
        let payload = &bytes[HEADER_LEN..];
        for at in 1..payload.len() {
            let is_marker = payload[at] == b'<' && payload.get(at + 3) == Some(&b'>');
            if !is_marker {
                continue;
            }
            assert_eq!(payload[at - 1], 4, "a marker's length prefix");
            found += 1;
            let before = &payload[..at - 1];
            let mut lying = before.to_vec();
            lying.extend([0xfb, 0xff, 0xff]); // varint: a u16 follows, 65,535
            let honest = allocations_of_failed_decode(&framed(before));
            let lied = allocations_of_failed_decode(&framed(&lying));
            assert_eq!(lied, honest, "{} frame, string at byte {at}", frame.kind());
        }
    }
    assert_eq!(
        found, markers,
        "every string field was found in the encodings"
    );
}

#[test]
fn a_lying_message_length_allocates_nothing_at_all() {
    for claim in [6u64, 4097, 100 << 10, 200 << 20, 1 << 60] {
        let mut payload = vec![7u8, 0, 0xfd]; // Close, Unauthorized, then a u64 length
        payload.extend(claim.to_le_bytes());
        payload.extend(b"short");
        assert_eq!(
            allocations_of_failed_decode(&framed(&payload)),
            0,
            "claim {claim}"
        );
    }
}

#[test]
fn header_errors_allocate_nothing() {
    let mut too_large = Vec::from(MAGIC);
    too_large.extend(FORMAT_VERSION.to_be_bytes());
    too_large.extend(u32::MAX.to_be_bytes());
    for bytes in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"CGFD\x00\x09\x00\x00\x00\x00",
        &too_large,
    ] {
        assert_eq!(allocations_of_failed_decode(bytes), 0, "{bytes:?}");
    }
}

#[test]
fn strings_up_to_the_payload_size_decode() {
    // bincode's limit never refuses an honest frame, at any size.
    for len in [0, 1, 4096, 70_000, 300_000, (1 << 20) - 5, 1 << 20] {
        let frame: Frame = Close {
            code: CloseCode::Shutdown,
            message: "m".repeat(len),
        }
        .into();
        let bytes = encode(&frame, 2 * MAX).unwrap();
        assert_eq!(
            decode(&bytes, 2 * MAX).unwrap().unwrap().0,
            frame,
            "message of {len} bytes"
        );
    }
}

#[test]
fn integer_heavy_frames_decode_on_both_sides_of_the_small_class() {
    // bincode counts a one-byte varint u64 as 8 bytes: a heartbeat of empty positions counts
    // 8 times its size, the worst an honest frame can do. It must still decode.
    for n in [349_000, 349_600] {
        let frame: Frame = Heartbeat {
            heads: vec![
                EnvPosition {
                    env_id: String::new(),
                    epoch: 0,
                    version: 0,
                };
                n
            ],
        }
        .into();
        let bytes = encode(&frame, 2 * MAX).unwrap();
        let (back, _) = decode(&bytes, 2 * MAX).unwrap().unwrap();
        assert_eq!(back, frame, "{n} positions, {} bytes", bytes.len());
    }
}

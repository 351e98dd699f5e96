//! Properties of the feed envelope over generated input: any frame round-trips, and no byte
//! string — random, or a valid frame with bytes flipped, inserted, deleted or cut — makes the
//! decoder panic or answer anything but a frame, "incomplete" or a typed error.

// Helpers outside `#[test]` functions unwrap too: a failure there is the assertion.
#![allow(clippy::unwrap_used)]

use checkgate_protocol::envelope::MAGIC;
use checkgate_protocol::frame::*;
use checkgate_protocol::impressions::*;
use checkgate_protocol::{
    DecodeError, EncodeError, FORMAT_VERSION, Frame, HEADER_LEN, Secret, decode, encode,
    peek_frame_len,
};
use proptest::collection::vec;
use proptest::prelude::*;

const MAX: usize = 1 << 20;

/// Short strings with JSON punctuation, multi-byte characters and escapes.
fn text() -> impl Strategy<Value = String> {
    "[a-z0-9{}\":é\\\\\n-]{0,12}"
}

fn position() -> impl Strategy<Value = EnvPosition> {
    (text(), any::<u64>(), any::<u64>()).prop_map(|(env_id, epoch, version)| EnvPosition {
        env_id,
        epoch,
        version,
    })
}

fn record() -> impl Strategy<Value = Record> {
    (text(), any::<u64>(), text()).prop_map(|(key, version, json)| Record { key, version, json })
}

fn sdk_key() -> impl Strategy<Value = SdkKeyRecord> {
    let kind = prop_oneof![Just(SdkKeyKind::Server), Just(SdkKeyKind::Client)];
    (text(), any::<u64>(), kind, any::<[u8; 32]>(), text()).prop_map(
        |(id, version, kind, hash, prefix)| SdkKeyRecord {
            id,
            version,
            kind,
            hash,
            prefix,
        },
    )
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        (text(), text()).prop_map(|(key, json)| Item::FlagUpsert { key, json }),
        text().prop_map(|key| Item::FlagDelete { key }),
        (text(), text()).prop_map(|(key, json)| Item::SegmentUpsert { key, json }),
        text().prop_map(|key| Item::SegmentDelete { key }),
        sdk_key().prop_map(Item::SdkKeyUpsert),
        text().prop_map(|id| Item::SdkKeyRevoke { id }),
        text().prop_map(|json| Item::SettingsUpdate { json }),
        Just(Item::EnvironmentDeleted),
    ]
}

fn close_code() -> impl Strategy<Value = CloseCode> {
    prop_oneof![
        Just(CloseCode::Unauthorized),
        Just(CloseCode::Revoked),
        Just(CloseCode::ProtocolVersion),
        Just(CloseCode::Shutdown),
        Just(CloseCode::ProtocolViolation),
        Just(CloseCode::Internal),
    ]
}

/// Any frame, of every kind.
fn frame() -> impl Strategy<Value = Frame> {
    let hello = (any::<u16>(), text(), text(), text(), vec(position(), 0..4)).prop_map(
        |(protocol_version, token, edge_name, region, positions)| Hello {
            protocol_version,
            edge_token: Secret::new(token),
            edge_name,
            region,
            positions,
        },
    );
    let environment =
        (text(), text(), text(), text()).prop_map(|(env_id, project_id, slug, name)| {
            EnvironmentInfo {
                env_id,
                project_id,
                slug,
                name,
            }
        });
    let welcome = (any::<u64>(), vec(environment, 0..4), any::<u32>()).prop_map(
        |(epoch, environments, heartbeat_interval_ms)| Welcome {
            epoch,
            environments,
            heartbeat_interval_ms,
        },
    );
    let snapshot = (
        (text(), any::<u64>(), any::<u64>()),
        vec(record(), 0..4),
        vec(record(), 0..3),
        vec(sdk_key(), 0..3),
        text(),
    )
        .prop_map(
            |((env_id, epoch, version), flags, segments, sdk_keys, settings_json)| Snapshot {
                env_id,
                epoch,
                version,
                flags,
                segments,
                sdk_keys,
                settings_json,
            },
        );
    let change = (any::<u64>(), item()).prop_map(|(version, item)| ChangeRecord { version, item });
    let changes =
        (text(), any::<u64>(), vec(change, 0..6)).prop_map(|(env_id, epoch, changes)| Changes {
            env_id,
            epoch,
            changes,
        });
    let digest = (text(), any::<u64>(), any::<u64>(), any::<[u8; 32]>()).prop_map(
        |(env_id, epoch, version, digest)| Digest {
            env_id,
            epoch,
            version,
            digest,
        },
    );
    prop_oneof![
        hello.prop_map(Frame::from),
        welcome.prop_map(Frame::from),
        snapshot.prop_map(Frame::from),
        changes.prop_map(Frame::from),
        vec(position(), 0..4).prop_map(|heads| Heartbeat { heads }.into()),
        text().prop_map(|env_id| DigestRequest { env_id }.into()),
        text().prop_map(|env_id| Resync { env_id }.into()),
        digest.prop_map(Frame::from),
        (close_code(), text()).prop_map(|(code, message)| Close { code, message }.into()),
        (any::<[u8; 16]>(), text(), vec(impression(), 0..3)).prop_map(
            |(id, environment, items)| {
                ImpressionBatch {
                    id,
                    environment,
                    items,
                }
                .into()
            }
        ),
        (any::<[u8; 16]>(), vec(count(), 0..3)).prop_map(|(id, counts)| EvaluationCounts {
            id,
            counts
        }
        .into()),
        (
            any::<[u8; 16]>(),
            prop_oneof![
                Just(AckOutcome::Stored),
                Just(AckOutcome::Refused),
                Just(AckOutcome::Retry)
            ]
        )
            .prop_map(|(id, outcome)| InsightsAck { id, outcome }.into()),
    ]
}

fn impression() -> impl Strategy<Value = Impression> {
    (
        text(),
        proptest::option::of(text()),
        text(),
        proptest::option::of(text()),
        any::<i64>(),
    )
        .prop_map(
            |(flag_key, user_id, value, context, evaluated_at)| Impression {
                flag_key,
                user_id,
                value,
                context,
                evaluated_at,
            },
        )
}

fn count() -> impl Strategy<Value = EvaluationCount> {
    (text(), text(), text(), any::<i64>(), any::<u64>()).prop_map(
        |(environment, flag_key, variant, minute, count)| EvaluationCount {
            environment,
            flag_key,
            variant,
            minute,
            count,
        },
    )
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

fn apply(bytes: &mut Vec<u8>, m: Mutation) {
    let n = bytes.len().max(1);
    match m {
        Mutation::Flip(i, b) => {
            if let Some(x) = bytes.get_mut(i % n) {
                *x ^= b;
            }
        }
        Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
        Mutation::Delete(i) => {
            if !bytes.is_empty() {
                bytes.remove(i % n);
            }
        }
        Mutation::Truncate(i) => bytes.truncate(i % n),
    }
}

/// What any input must give: a frame that took at most the bytes given (and exactly what the
/// header announced), "incomplete" only while the announced frame has not fully arrived, or an
/// error with a message.
fn check_outcome(bytes: &[u8]) -> Result<(), TestCaseError> {
    match decode(bytes, MAX) {
        Ok(Some((frame, used))) => {
            prop_assert!(used <= bytes.len());
            prop_assert_eq!(peek_frame_len(bytes, MAX).unwrap(), Some(used));
            // A decoded frame re-encodes to a frame that decodes the same.
            let again = encode(&frame, MAX).unwrap();
            prop_assert_eq!(decode(&again, MAX).unwrap().map(|(f, _)| f), Some(frame));
        }
        Ok(None) => match peek_frame_len(bytes, MAX) {
            Ok(None) => prop_assert!(bytes.len() < HEADER_LEN),
            Ok(Some(total)) => prop_assert!(bytes.len() < total),
            Err(e) => prop_assert!(false, "decode said incomplete, the header said {e}"),
        },
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    Ok(())
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
    fn a_frame_is_read_exactly_whatever_follows(f in frame(), tail in vec(any::<u8>(), 0..64)) {
        let mut bytes = encode(&f, MAX).unwrap();
        let len = bytes.len();
        bytes.extend(tail);
        prop_assert_eq!(decode(&bytes, MAX).unwrap(), Some((f, len)));
    }

    #[test]
    fn encode_honours_any_cap(f in frame(), max in 0..600usize) {
        let payload = encode(&f, MAX).unwrap().len() - HEADER_LEN;
        match encode(&f, max) {
            Ok(bytes) => {
                prop_assert!(payload <= max);
                prop_assert_eq!(bytes.len(), payload + HEADER_LEN);
            }
            Err(EncodeError::TooLarge { len, max: m, .. }) => {
                prop_assert!(payload > max);
                prop_assert_eq!((len, m), (payload, max));
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        check_outcome(&bytes)?;
    }

    #[test]
    fn random_payloads_never_panic(payload in vec(any::<u8>(), 0..256)) {
        let mut bytes = Vec::from(MAGIC);
        bytes.extend(FORMAT_VERSION.to_be_bytes());
        bytes.extend(u32::try_from(payload.len()).unwrap().to_be_bytes());
        bytes.extend(&payload);
        check_outcome(&bytes)?;
        let incomplete = matches!(decode(&bytes, MAX), Ok(None));
        prop_assert!(!incomplete, "a complete frame is never incomplete");
    }

    #[test]
    fn mutated_frames_decode_or_fail_cleanly(f in frame(), mutations in vec(mutation(), 1..4)) {
        let mut bytes = encode(&f, MAX).unwrap();
        for m in mutations {
            apply(&mut bytes, m);
        }
        check_outcome(&bytes)?;
    }

    #[test]
    fn payload_mutations_are_never_header_errors(f in frame(), mutations in vec(mutation(), 1..4)) {
        // Mutating only the payload (and fixing the length) must give a frame or a payload
        // error: the header's checks never misfire on a good header.
        let bytes = encode(&f, MAX).unwrap();
        let mut payload = bytes[HEADER_LEN..].to_vec();
        for m in mutations {
            apply(&mut payload, m);
        }
        let mut framed = bytes[..6].to_vec();
        framed.extend(u32::try_from(payload.len()).unwrap().to_be_bytes());
        framed.extend(&payload);
        match decode(&framed, MAX) {
            Ok(Some(_)) | Err(DecodeError::Malformed(_) | DecodeError::TrailingBytes { .. }) => {}
            other => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}

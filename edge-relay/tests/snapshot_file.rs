//! The snapshot file on a real file system: a state survives a round trip, every damaged file
//! (cut short, a bit flipped, another magic or version, bytes appended, any byte string) is
//! refused with the right error instead of a panic, an empty state never replaces a non-empty
//! file, and a temporary file left by a crash changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use checkgate_edge::snapshot_file::{
    FORMAT_VERSION, HEADER_LEN, MAGIC, Persisted, PersistedEnv, SaveOutcome, SnapshotFileError,
    load, save,
};
use checkgate_protocol::frame::{EnvironmentInfo, Record, SdkKeyKind, SdkKeyRecord, Snapshot};
use proptest::prelude::*;
use sha2::{Digest as _, Sha256};

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "checkgate-snapshot-file-{}-{name}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("snapshot.bin")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn record(key: &str, version: u64, json: &str) -> Record {
    Record {
        key: key.into(),
        version,
        json: json.into(),
    }
}

fn environment(env_id: &str, slug: &str, name: &str, version: u64) -> PersistedEnv {
    PersistedEnv {
        info: EnvironmentInfo {
            env_id: env_id.into(),
            project_id: "proj_01".into(),
            slug: slug.into(),
            name: name.into(),
        },
        snapshot: Snapshot {
            env_id: env_id.into(),
            epoch: 42,
            version,
            flags: vec![
                record(
                    "new-checkout",
                    version - 2,
                    r#"{"key":"new-checkout","flag_type":"boolean","enabled":true,"rules":[{"conditions":[{"attribute":"country","operator":"in","values":["FR","DE"]}],"serve":true}],"rollout":25}"#,
                ),
                record(
                    "banner-text",
                    version - 1,
                    r#"{"key":"banner-text","flag_type":"string","enabled":true,"default":"Bienvenue — été 2026 ☀"}"#,
                ),
                record(
                    "max-items",
                    version,
                    r#"{"key":"max-items","flag_type":"number","enabled":false,"default":12.5}"#,
                ),
            ],
            segments: vec![record(
                "beta-testers",
                3,
                r#"{"key":"beta-testers","included":["user-1","user-2"],"rules":[]}"#,
            )],
            sdk_keys: vec![
                SdkKeyRecord {
                    id: "key_server".into(),
                    version: 1,
                    kind: SdkKeyKind::Server,
                    hash: Sha256::digest(format!("cg_server_{env_id}")).into(),
                    prefix: "cg_serv".into(),
                },
                SdkKeyRecord {
                    id: "key_client".into(),
                    version: 2,
                    kind: SdkKeyKind::Client,
                    hash: Sha256::digest(format!("cg_client_{env_id}")).into(),
                    prefix: "cg_clie".into(),
                },
            ],
            settings_json: r#"{"stream_heartbeat_seconds":15,"evaluation_reasons":true}"#.into(),
        },
    }
}

fn realistic_state() -> Persisted {
    Persisted {
        epoch: 42,
        saved_at_ms: 1_795_000_000_123,
        environments: vec![
            environment("env_prod", "production", "Production", 1_207),
            environment("env_stg", "staging", "Staging", 88),
        ],
    }
}

fn empty_state() -> Persisted {
    Persisted {
        epoch: 42,
        saved_at_ms: 1_795_000_000_999,
        environments: Vec::new(),
    }
}

/// A file around `payload`, with a header that is right about it.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::from(MAGIC);
    bytes.extend(FORMAT_VERSION.to_be_bytes());
    bytes.extend((payload.len() as u64).to_be_bytes());
    bytes.extend(Sha256::digest(payload));
    bytes.extend(payload);
    bytes
}

/// The bytes `save` writes for `state`.
fn saved_bytes(state: &Persisted) -> Vec<u8> {
    let dir = TempDir::new("bytes");
    save(&dir.file(), state).unwrap();
    fs::read(dir.file()).unwrap()
}

/// Writes `bytes` as the file and loads it, which must fail.
fn refused(path: &Path, bytes: &[u8]) -> SnapshotFileError {
    fs::write(path, bytes).unwrap();
    match load(path) {
        Ok(state) => panic!("{} bytes loaded as {state:?}", bytes.len()),
        Err(err) => err,
    }
}

#[test]
fn a_realistic_state_round_trips() {
    let dir = TempDir::new("round-trip");
    let state = realistic_state();
    let outcome = save(&dir.file(), &state).unwrap();
    let len = fs::metadata(dir.file()).unwrap().len();
    assert_eq!(outcome, SaveOutcome::Written { bytes: len });
    assert_eq!(load(&dir.file()).unwrap(), Some(state.clone()));

    // A second save replaces the first.
    let mut next = state;
    next.environments.pop();
    next.saved_at_ms += 1;
    save(&dir.file(), &next).unwrap();
    assert_eq!(load(&dir.file()).unwrap(), Some(next));
}

#[test]
fn no_file_loads_as_none() {
    let dir = TempDir::new("none");
    assert_eq!(load(&dir.file()).unwrap(), None);
}

#[test]
fn the_layout_is_pinned() {
    // The payload is encoded by position: a change to `Persisted` or to the protocol types in
    // it changes these bytes, and needs a new FORMAT_VERSION along with a new pin here.
    let state = Persisted {
        epoch: 7,
        saved_at_ms: 300,
        environments: vec![PersistedEnv {
            info: EnvironmentInfo {
                env_id: "e".into(),
                project_id: "p".into(),
                slug: "s".into(),
                name: "N".into(),
            },
            snapshot: Snapshot {
                env_id: "e".into(),
                epoch: 7,
                version: 2,
                flags: vec![record("f", 1, "{}")],
                segments: Vec::new(),
                sdk_keys: vec![SdkKeyRecord {
                    id: "k".into(),
                    version: 2,
                    kind: SdkKeyKind::Client,
                    hash: [0xab; 32],
                    prefix: "x".into(),
                }],
                settings_json: "{}".into(),
            },
        }],
    };
    let bytes = saved_bytes(&state);
    let (header, payload) = bytes.split_at(HEADER_LEN);
    assert_eq!(&header[..6], b"CGSN\x00\x01");
    assert_eq!(header[6..14], (payload.len() as u64).to_be_bytes());
    assert_eq!(header[14..], Sha256::digest(payload)[..]);
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        concat!(
            "07",     // epoch 7
            "fb2c01", // saved_at_ms 300 (varint: u16 follows)
            "01",     // 1 environment
            "0165",   // info: env_id "e"
            "0170",   //   project_id "p"
            "0173",   //   slug "s"
            "014e",   //   name "N"
            "0165",   // snapshot: env_id "e"
            "07",     //   epoch 7
            "02",     //   version 2
            "01",     //   1 flag
            "0166",   //     key "f"
            "01",     //     version 1
            "027b7d", //     json "{}"
            "00",     //   no segments
            "01",     //   1 SDK key
            "016b",   //     id "k"
            "02",     //     version 2
            "01",     //     kind Client
            "abababababababababababababababababababababababababababababababab",
            "0178",   //     prefix "x"
            "027b7d", //   settings_json "{}"
        )
    );
}

#[test]
fn a_file_cut_short_at_any_length_is_refused() {
    let dir = TempDir::new("truncated");
    let path = dir.file();
    let bytes = saved_bytes(&realistic_state());
    let declared = (bytes.len() - HEADER_LEN) as u64;
    for len in 0..bytes.len() {
        let err = refused(&path, &bytes[..len]);
        let expected = if len < HEADER_LEN {
            matches!(err, SnapshotFileError::ShortHeader { len: l, .. } if l == len as u64)
        } else {
            matches!(
                err,
                SnapshotFileError::Truncated { declared: d, present, .. }
                    if d == declared && present == (len - HEADER_LEN) as u64
            )
        };
        assert!(expected, "cut at {len}: {err:?}");
    }
    let err = refused(&path, b"");
    assert_eq!(
        err.to_string(),
        format!(
            "snapshot file {} is corrupt: it is 0 bytes long, shorter than its 46-byte header",
            path.display()
        )
    );
    let err = refused(&path, &bytes[..bytes.len() - 1]);
    assert_eq!(
        err.to_string(),
        format!(
            "snapshot file {} is corrupt: truncated, its header announces a {declared}-byte \
             payload but {} bytes follow",
            path.display(),
            declared - 1
        )
    );
}

#[test]
fn any_flipped_bit_is_refused() {
    let dir = TempDir::new("bit-flip");
    let path = dir.file();
    let bytes = saved_bytes(&realistic_state());
    // Every bit of the header, and one bit of every payload byte (a different one each time).
    for at in 0..bytes.len() {
        let bits = if at < HEADER_LEN {
            0..8
        } else {
            at % 8..at % 8 + 1
        };
        for bit in bits {
            let mut damaged = bytes.clone();
            damaged[at] ^= 1 << bit;
            let err = refused(&path, &damaged);
            let expected = match at {
                0..4 => matches!(err, SnapshotFileError::NotASnapshot { .. }),
                4..6 => matches!(err, SnapshotFileError::UnsupportedVersion { .. }),
                6..14 => matches!(
                    err,
                    SnapshotFileError::Truncated { .. } | SnapshotFileError::TrailingBytes { .. }
                ),
                _ => matches!(err, SnapshotFileError::ChecksumMismatch { .. }),
            };
            assert!(expected, "bit {bit} of byte {at}: {err:?}");
        }
    }
}

#[test]
fn wrong_magic_unknown_version_and_trailing_bytes_each_say_so() {
    let dir = TempDir::new("kinds");
    let path = dir.file();
    let shown = path.display();
    let bytes = saved_bytes(&realistic_state());

    let mut other = bytes.clone();
    other[..4].copy_from_slice(b"PK\x03\x04");
    let err = refused(&path, &other);
    assert!(
        matches!(&err, SnapshotFileError::NotASnapshot { got, .. } if got == b"PK\x03\x04"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{shown} is not a snapshot file: it starts with \"PK\\x03\\x04\" where \"CGSN\" was \
             expected"
        )
    );
    // Another kind of file is named as such even when it is shorter than a header.
    assert!(matches!(
        refused(&path, b"{}"),
        SnapshotFileError::NotASnapshot { .. }
    ));

    let mut newer = bytes.clone();
    newer[4..6].copy_from_slice(&7u16.to_be_bytes());
    let err = refused(&path, &newer);
    assert!(
        matches!(
            err,
            SnapshotFileError::UnsupportedVersion {
                found: 7,
                supported: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("snapshot file {shown} has format version 7, but this build reads only version 1")
    );

    let mut longer = bytes.clone();
    longer.extend(b"\n");
    let declared = (bytes.len() - HEADER_LEN) as u64;
    let err = refused(&path, &longer);
    assert!(
        matches!(
            err,
            SnapshotFileError::TrailingBytes { declared: d, present, .. }
                if d == declared && present == declared + 1
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("trailing bytes"), "{err}");

    let mut damaged = bytes;
    let last = damaged.len() - 1;
    damaged[last] ^= 0x20;
    let err = refused(&path, &damaged);
    assert_eq!(
        err.to_string(),
        format!("snapshot file {shown} is corrupt: checksum mismatch")
    );
}

#[test]
fn a_payload_with_a_valid_checksum_must_still_decode_exactly() {
    let dir = TempDir::new("payload");
    let path = dir.file();

    // Epoch and time, then a list claiming 2^60 environments that are not there.
    let mut lying = vec![1, 2, 0xfd];
    lying.extend((1u64 << 60).to_le_bytes());
    let err = refused(&path, &framed(&lying));
    assert!(
        matches!(err, SnapshotFileError::Undecodable { .. }),
        "{err:?}"
    );
    assert!(std::error::Error::source(&err).is_some());
    assert!(
        err.to_string()
            .ends_with("is corrupt: its payload does not decode")
    );

    let bytes = saved_bytes(&realistic_state());
    let mut payload = bytes[HEADER_LEN..].to_vec();
    payload.push(0);
    let err = refused(&path, &framed(&payload));
    assert!(
        matches!(err, SnapshotFileError::PayloadTrailing { len, used, .. }
            if len == payload.len() && used == len - 1),
        "{err:?}"
    );
}

#[test]
fn an_honest_payload_is_never_refused_by_the_decode_limit() {
    // Empty records are the densest encoding (three bytes each, counted as 24 by bincode), here
    // just under the small size class.
    let dir = TempDir::new("dense");
    let mut state = realistic_state();
    state.environments.truncate(1);
    state.environments[0].snapshot.flags = vec![record("", 0, ""); 349_000];
    let outcome = save(&dir.file(), &state).unwrap();
    assert!(
        matches!(outcome, SaveOutcome::Written { bytes } if bytes < (1 << 20) + HEADER_LEN as u64),
        "{outcome:?}"
    );
    assert_eq!(load(&dir.file()).unwrap(), Some(state.clone()));

    // And one large string, in the next size class.
    state.environments[0].snapshot.flags = vec![record("big", 1, &"x".repeat(3 << 20))];
    save(&dir.file(), &state).unwrap();
    assert_eq!(load(&dir.file()).unwrap(), Some(state));
}

#[test]
fn an_empty_state_never_replaces_a_non_empty_file() {
    let dir = TempDir::new("empty-over-full");
    save(&dir.file(), &realistic_state()).unwrap();
    let before = fs::read(dir.file()).unwrap();
    assert_eq!(
        save(&dir.file(), &empty_state()).unwrap(),
        SaveOutcome::KeptNonEmpty
    );
    assert_eq!(fs::read(dir.file()).unwrap(), before);
    assert_eq!(load(&dir.file()).unwrap(), Some(realistic_state()));
}

#[test]
fn an_empty_state_replaces_a_corrupt_file_an_empty_one_or_none() {
    let dir = TempDir::new("empty-over-corrupt");
    let mut corrupt = saved_bytes(&realistic_state());
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    fs::write(dir.file(), &corrupt).unwrap();
    assert!(matches!(
        save(&dir.file(), &empty_state()).unwrap(),
        SaveOutcome::Written { .. }
    ));
    assert_eq!(load(&dir.file()).unwrap(), Some(empty_state()));

    // Empty over empty: written (the time moves on).
    let mut later = empty_state();
    later.saved_at_ms += 1_000;
    assert!(matches!(
        save(&dir.file(), &later).unwrap(),
        SaveOutcome::Written { .. }
    ));
    assert_eq!(load(&dir.file()).unwrap(), Some(later));

    let fresh = TempDir::new("empty-fresh");
    assert!(matches!(
        save(&fresh.file(), &empty_state()).unwrap(),
        SaveOutcome::Written { .. }
    ));
    assert_eq!(load(&fresh.file()).unwrap(), Some(empty_state()));
}

#[test]
fn a_stale_temporary_file_changes_nothing() {
    let dir = TempDir::new("stale-tmp");
    let tmp = dir.0.join("snapshot.bin.tmp");
    save(&dir.file(), &realistic_state()).unwrap();
    fs::write(&tmp, b"half a snapshot from before the crash").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
    }
    assert_eq!(load(&dir.file()).unwrap(), Some(realistic_state()));

    let mut next = realistic_state();
    next.saved_at_ms += 1;
    save(&dir.file(), &next).unwrap();
    assert_eq!(load(&dir.file()).unwrap(), Some(next));
    assert!(!tmp.exists(), "the temporary file was renamed into place");
    #[cfg(unix)]
    assert_eq!(
        mode(&dir.file()),
        0o600,
        "the stale file's mode was not kept"
    );
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn only_the_owner_can_read_the_file() {
    let dir = TempDir::new("mode");
    save(&dir.file(), &realistic_state()).unwrap();
    assert_eq!(mode(&dir.file()), 0o600);
}

#[test]
fn io_errors_name_the_path_and_keep_their_source() {
    let dir = TempDir::new("io");
    // A directory where the file should be.
    let err = load(&dir.0).unwrap_err();
    assert!(matches!(err, SnapshotFileError::Io { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("could not read snapshot file {}", dir.0.display())
    );
    assert!(std::error::Error::source(&err).is_some());

    let missing = dir.0.join("no-such-dir").join("snapshot.bin");
    let err = save(&missing, &realistic_state()).unwrap_err();
    assert!(
        matches!(&err, SnapshotFileError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("could not create temporary file ")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_byte_string_loads_or_is_refused(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let dir = TempDir::new("any-bytes");
        fs::write(dir.file(), &bytes).unwrap();
        let _ = load(&dir.file());
    }

    #[test]
    fn any_payload_under_a_valid_header_loads_or_is_refused(
        payload in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        // Past the checksum, so the decoder itself is exercised.
        let dir = TempDir::new("any-payload");
        fs::write(dir.file(), framed(&payload)).unwrap();
        match load(&dir.file()) {
            Ok(state) => prop_assert!(state.is_some()),
            Err(err) => prop_assert!(
                matches!(
                    err,
                    SnapshotFileError::Undecodable { .. } | SnapshotFileError::PayloadTrailing { .. }
                ),
                "{:?}", err
            ),
        }
    }

    #[test]
    fn a_damaged_payload_under_a_recomputed_header_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = saved_bytes(&realistic_state());
        let mut payload = bytes[HEADER_LEN..].to_vec();
        for (at, byte) in edits {
            let at = at.index(payload.len());
            payload[at] = byte;
        }
        payload.truncate(cut.index(payload.len() + 1).max(payload.len() / 2));
        let dir = TempDir::new("damaged");
        fs::write(dir.file(), framed(&payload)).unwrap();
        let _ = load(&dir.file());
    }
}

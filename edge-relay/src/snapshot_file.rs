//! The edge's snapshot file: every environment it serves, at one version each, so that after a
//! restart it can serve its last known flags while the control plane is unreachable.
//!
//! # Layout
//!
//! | offset | size | field                                                   |
//! |-------:|-----:|---------------------------------------------------------|
//! |      0 |    4 | magic `CGSN`                                            |
//! |      4 |    2 | format version, u16 big-endian ([`FORMAT_VERSION`])     |
//! |      6 |    8 | payload length in bytes, u64 big-endian                 |
//! |     14 |   32 | SHA-256 of the payload                                  |
//! |     46 |    … | payload: [`Persisted`] in bincode's standard config     |
//!
//! The file ends exactly where the payload does. The payload is encoded by field and variant
//! *position*, like the feed frames it is made of: any change to [`Persisted`],
//! [`PersistedEnv`] or the protocol types inside them needs a new [`FORMAT_VERSION`] (a test
//! pins the bytes of a small state to catch it).
//!
//! # Invariants
//!
//! - **Atomic replace.** [`save`] writes `<name>.tmp` beside the file (mode 0600 on unix),
//!   syncs it, renames it over the file and syncs the directory. After a crash the path holds
//!   the old file or the new one, never a mix; a leftover `.tmp` is ignored by [`load`] and
//!   replaced by the next [`save`]. One process saves a given path at a time.
//! - **Never empty over non-empty.** An empty state does not replace a file that loads with at
//!   least one environment: an edge that lost its grants by mistake (or started empty and
//!   cannot reach the control plane) must not erase what a later restart could serve.
//! - **Load accepts exactly a valid file.** Anything else is a typed error naming the path:
//!   the header is read first, the declared length is compared with the bytes actually present
//!   before the payload is allocated, and the checksum is verified before anything is decoded.
//!   A lying length allocates nothing; strings are bounded by the bytes present (the protocol
//!   types borrow before copying); a list reserves at most serde's cautious 1 MiB before its
//!   items arrive; bincode's limit backstops the total. No input panics.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use bincode::config::{self, Configuration, LittleEndian, NoLimit, Varint};
pub use checkgate_serve::replica::{Persisted, PersistedEnv};
use sha2::{Digest as _, Sha256};

/// The first bytes of every snapshot file, so another file at the path is refused at once.
pub const MAGIC: [u8; 4] = *b"CGSN";
/// The layout and payload format this build writes and reads. A change to any persisted type
/// bumps it, so an older build refuses a newer file instead of misreading it.
pub const FORMAT_VERSION: u16 = 1;
/// Header size: magic, format version, payload length, payload checksum.
pub const HEADER_LEN: usize = 4 + 2 + 8 + 32;

/// What [`save`] did, so the caller can log or count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The file now holds the state; `bytes` is its size, header included.
    Written { bytes: u64 },
    /// The state had no environment and the existing file had some: it was left as it was.
    KeptNonEmpty,
}

/// Why the snapshot file could not be written or used. Every variant names the path; apart from
/// `Io` and `Encode`, each says how the file differs from a valid one.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    /// The file system refused an operation (`action` says which).
    #[error("could not {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The state could not be encoded (not expected of these types; kept typed all the same).
    #[error("could not encode the snapshot for {path}")]
    Encode {
        path: PathBuf,
        #[source]
        source: bincode::error::EncodeError,
    },
    /// The file starts with something else than the magic: another file is at the path.
    #[error(
        "{path} is not a snapshot file: it starts with \"{}\" where \"CGSN\" was expected",
        .got.escape_ascii()
    )]
    NotASnapshot {
        path: PathBuf,
        /// The first bytes of the file (up to 4).
        got: Vec<u8>,
    },
    /// The file ends inside the header.
    #[error(
        "snapshot file {path} is corrupt: it is {len} bytes long, shorter than its \
         {HEADER_LEN}-byte header"
    )]
    ShortHeader { path: PathBuf, len: u64 },
    /// Written by a build with another format (usually newer).
    #[error(
        "snapshot file {path} has format version {found}, but this build reads only version \
         {supported}"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u16,
        supported: u16,
    },
    /// Fewer payload bytes than the header announces.
    #[error(
        "snapshot file {path} is corrupt: truncated, its header announces a {declared}-byte \
         payload but {present} bytes follow"
    )]
    Truncated {
        path: PathBuf,
        declared: u64,
        present: u64,
    },
    /// More bytes than the header announces.
    #[error(
        "snapshot file {path} is corrupt: trailing bytes, its header announces a \
         {declared}-byte payload but {present} bytes follow"
    )]
    TrailingBytes {
        path: PathBuf,
        declared: u64,
        present: u64,
    },
    /// The payload is not what was written.
    #[error("snapshot file {path} is corrupt: checksum mismatch")]
    ChecksumMismatch { path: PathBuf },
    /// The checksum holds but the payload is not a [`Persisted`]: a bug, or a writer built from
    /// other type definitions under the same format version.
    #[error("snapshot file {path} is corrupt: its payload does not decode")]
    Undecodable {
        path: PathBuf,
        #[source]
        source: bincode::error::DecodeError,
    },
    /// The checksum holds but the state ends before the payload does (same causes as
    /// `Undecodable`).
    #[error(
        "snapshot file {path} is corrupt: its payload is {len} bytes but the state inside ends \
         after {used}"
    )]
    PayloadTrailing {
        path: PathBuf,
        len: usize,
        used: usize,
    },
}

impl SnapshotFileError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

/// The payload encoding. Writer and reader must agree; the reader only adds a limit.
fn codec() -> Configuration<LittleEndian, Varint, NoLimit> {
    config::standard()
}

/// Writes `state` to `path`, atomically: readers and a crash see the old file or the new one.
/// An empty state never replaces a file that loads with at least one environment
/// ([`SaveOutcome::KeptNonEmpty`]); a file that does not load (corrupt, another format) may be
/// replaced. An I/O error while reading the existing file is returned rather than risking the
/// loss of a snapshot that could not be read this once.
pub fn save(path: &Path, state: &Persisted) -> Result<SaveOutcome, SnapshotFileError> {
    if state.environments.is_empty() {
        match load(path) {
            Ok(Some(existing)) if !existing.environments.is_empty() => {
                return Ok(SaveOutcome::KeptNonEmpty);
            }
            Ok(_) => {}
            Err(err @ SnapshotFileError::Io { .. }) => return Err(err),
            Err(_) => {} // does not load: replace it
        }
    }

    let payload = bincode::serde::encode_to_vec(state, codec()).map_err(|source| {
        SnapshotFileError::Encode {
            path: path.to_owned(),
            source,
        }
    })?;
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    header.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    header.extend_from_slice(&Sha256::digest(&payload));

    let tmp = temporary_path(path)?;
    let written = write_new(&tmp, &[&header, &payload]).and_then(|()| {
        fs::rename(&tmp, path).map_err(SnapshotFileError::io(
            "rename the temporary file over",
            path,
        ))
    });
    if let Err(err) = written {
        // Best effort: the next save replaces it anyway, and load never reads it.
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    sync_directory(path)?;
    Ok(SaveOutcome::Written {
        bytes: (header.len() + payload.len()) as u64,
    })
}

/// `<name>.tmp` in the same directory, so the rename stays within one file system.
fn temporary_path(path: &Path) -> Result<PathBuf, SnapshotFileError> {
    let Some(name) = path.file_name() else {
        return Err(SnapshotFileError::Io {
            action: "write snapshot file",
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
        });
    };
    let mut tmp = OsString::from(name);
    tmp.push(".tmp");
    Ok(path.with_file_name(tmp))
}

/// Creates `tmp` afresh (a stale one from a crash is removed first, so its mode or a link
/// planted there is not inherited), writes `parts` and syncs them to disk.
fn write_new(tmp: &Path, parts: &[&[u8]]) -> Result<(), SnapshotFileError> {
    match fs::remove_file(tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(SnapshotFileError::io(
                "remove the stale temporary file",
                tmp,
            )(e));
        }
        _ => {}
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(tmp)
        .map_err(SnapshotFileError::io("create temporary file", tmp))?;
    for part in parts {
        file.write_all(part)
            .map_err(SnapshotFileError::io("write temporary file", tmp))?;
    }
    file.sync_all()
        .map_err(SnapshotFileError::io("sync temporary file", tmp))
}

/// Makes the rename durable: until the directory is synced, a crash can bring back the old
/// entry. Only unix can open a directory for syncing.
fn sync_directory(path: &Path) -> Result<(), SnapshotFileError> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(SnapshotFileError::io("sync directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reads the state saved at `path`. `Ok(None)`: there is no file (a first start). Any file that
/// is not exactly a valid snapshot is an error saying what is wrong; the caller should start
/// empty and resync rather than serve it.
pub fn load(path: &Path) -> Result<Option<Persisted>, SnapshotFileError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SnapshotFileError::io("open snapshot file", path)(e)),
    };
    let read = SnapshotFileError::io("read snapshot file", path);
    let file_len = match file.metadata() {
        Ok(meta) => meta.len(),
        Err(e) => return Err(read(e)),
    };
    let mut header = Vec::with_capacity(HEADER_LEN);
    if let Err(e) = (&mut file).take(HEADER_LEN as u64).read_to_end(&mut header) {
        return Err(read(e));
    }
    let (declared, checksum) = check_header(path, &header, file_len)?;

    // `declared` equals the bytes present, so this allocates the file's size and no more.
    let mut payload = Vec::new();
    let reserved = usize::try_from(declared)
        .ok()
        .filter(|&len| payload.try_reserve_exact(len).is_ok());
    let Some(len) = reserved else {
        return Err(read(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("no memory for a {declared}-byte payload"),
        )));
    };
    if let Err(e) = file.take(declared).read_to_end(&mut payload) {
        return Err(read(e));
    }
    if payload.len() != len {
        // The file shrank since its size was read; it is being replaced by something else.
        return Err(SnapshotFileError::Truncated {
            path: path.to_owned(),
            declared,
            present: payload.len() as u64,
        });
    }
    if Sha256::digest(&payload)[..] != checksum {
        return Err(SnapshotFileError::ChecksumMismatch {
            path: path.to_owned(),
        });
    }
    let (state, used) =
        decode_payload(&payload).map_err(|source| SnapshotFileError::Undecodable {
            path: path.to_owned(),
            source,
        })?;
    if used != payload.len() {
        return Err(SnapshotFileError::PayloadTrailing {
            path: path.to_owned(),
            len: payload.len(),
            used,
        });
    }
    Ok(Some(state))
}

/// Checks the header (`header` holds the file's first bytes, up to [`HEADER_LEN`]) against the
/// file's size and returns the payload's length and checksum. The magic is checked first, so
/// another kind of file is named as such even when it is shorter than a header.
fn check_header(
    path: &Path,
    header: &[u8],
    file_len: u64,
) -> Result<(u64, [u8; 32]), SnapshotFileError> {
    let seen = header.len().min(MAGIC.len());
    if header[..seen] != MAGIC[..seen] {
        return Err(SnapshotFileError::NotASnapshot {
            path: path.to_owned(),
            got: header[..seen].to_vec(),
        });
    }
    let Some(&[_, _, _, _, v0, v1, ref rest @ ..]) = header.first_chunk::<HEADER_LEN>() else {
        return Err(SnapshotFileError::ShortHeader {
            path: path.to_owned(),
            len: file_len,
        });
    };
    let found = u16::from_be_bytes([v0, v1]);
    if found != FORMAT_VERSION {
        return Err(SnapshotFileError::UnsupportedVersion {
            path: path.to_owned(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    let (len, checksum) = rest.split_at(8);
    let mut declared = [0; 8];
    declared.copy_from_slice(len);
    let declared = u64::from_be_bytes(declared);
    let mut sum = [0; 32];
    sum.copy_from_slice(checksum);
    let present = file_len.saturating_sub(HEADER_LEN as u64);
    let path = path.to_owned();
    if declared > present {
        return Err(SnapshotFileError::Truncated {
            path,
            declared,
            present,
        });
    }
    if declared < present {
        return Err(SnapshotFileError::TrailingBytes {
            path,
            declared,
            present,
        });
    }
    Ok((declared, sum))
}

/// How many bytes bincode may count per payload byte: it counts an integer at its size in
/// memory, and a `u64` can take one byte on disk.
const COUNTED_PER_BYTE: usize = 8;
/// Payload size classes for bincode's limit, which is a constant: an honest payload counts at
/// most `COUNTED_PER_BYTE` times its length, so its class's limit never refuses it.
const SMALL_PAYLOAD: usize = 1 << 20;
const LARGE_PAYLOAD: usize = 256 << 20;

/// Decodes a payload whose checksum holds, under the limit of its size class (above
/// `LARGE_PAYLOAD`, without a counting limit: the other bounds still hold).
fn decode_payload(payload: &[u8]) -> Result<(Persisted, usize), bincode::error::DecodeError> {
    if payload.len() <= SMALL_PAYLOAD {
        decode_limited::<{ COUNTED_PER_BYTE * SMALL_PAYLOAD }>(payload)
    } else if payload.len() <= LARGE_PAYLOAD {
        decode_limited::<{ COUNTED_PER_BYTE * LARGE_PAYLOAD }>(payload)
    } else {
        bincode::serde::decode_from_slice(payload, codec())
    }
}

fn decode_limited<const LIMIT: usize>(
    payload: &[u8],
) -> Result<(Persisted, usize), bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(payload, codec().with_limit::<LIMIT>())
}

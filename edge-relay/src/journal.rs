//! The edge's change journal: every frame that changes what the edge serves is appended here
//! and synced to disk *before* it is applied, so an edge restarted after a crash serves at least
//! every version it had served before — never an older one as current. The snapshot file holds
//! the state up to some point; the journal holds what came after it. From time to time the
//! whole state is written to the snapshot file and the journal starts empty again.
//!
//! # Layout
//!
//! A 6-byte header — magic `CGJL`, format version (u16 big-endian, [`FORMAT_VERSION`]) — then
//! records, each:
//!
//! | size | field                                                     |
//! |-----:|-----------------------------------------------------------|
//! |    4 | payload length in bytes, u32 big-endian                   |
//! |    4 | CRC-32 (IEEE) of the payload, u32 big-endian              |
//! |    … | payload: an [`Entry`] in bincode's standard configuration |
//!
//! # Invariants
//!
//! - **Synced before applied.** [`Journal::append`] writes a group of entries and syncs once
//!   (group commit); the caller applies them only after it returns.
//! - **A torn tail is cut, never half-read.** A crash may leave a record partly written. On
//!   open, records are read until the first that is short, over the size cap, fails its
//!   checksum or does not decode; the file is truncated there. Such a record was never synced,
//!   so never applied, so nothing served is lost.
//! - **Replay is idempotent.** Entries are frames, applied by the replica's versioned rule, so
//!   replaying entries the snapshot file already reflects changes nothing in the end.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use bincode::config::{self, Configuration, LittleEndian, NoLimit, Varint};
use checkgate_protocol::frame::{Changes, EnvironmentInfo, Snapshot, Welcome};
use checkgate_serve::replica::{Replica, Source};
use serde::{Deserialize, Serialize};

/// The first bytes of every journal, so another file at the path is refused.
pub const MAGIC: [u8; 4] = *b"CGJL";
/// The record format this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
const HEADER_LEN: u64 = 6;
const RECORD_HEADER_LEN: usize = 8;
/// Largest record accepted: a snapshot frame may be large, but a length past this is damage.
pub const MAX_RECORD: usize = 256 << 20;

/// One journaled frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    Welcome(Welcome),
    Snapshot {
        info: EnvironmentInfo,
        snapshot: Snapshot,
    },
    Changes(Changes),
}

/// [`Entry`] by reference, encoded identically (serde encodes `&T` as `T`), so a frame is
/// journaled without being copied.
#[derive(Debug, Serialize)]
pub enum EntryRef<'a> {
    Welcome(&'a Welcome),
    Snapshot {
        info: &'a EnvironmentInfo,
        snapshot: &'a Snapshot,
    },
    Changes(&'a Changes),
}

/// Why the journal could not be used. Every variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("could not {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("could not encode a journal entry for {path}")]
    Encode {
        path: PathBuf,
        #[source]
        source: bincode::error::EncodeError,
    },
    #[error("{path} is not a change journal (it starts with \"{}\")", .got.escape_ascii())]
    NotAJournal { path: PathBuf, got: Vec<u8> },
    #[error(
        "change journal {path} has format version {found}, but this build reads only {FORMAT_VERSION}"
    )]
    UnsupportedVersion { path: PathBuf, found: u16 },
}

fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn codec() -> Configuration<LittleEndian, Varint, NoLimit> {
    config::standard()
}

/// What [`Journal::open`] found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The entries, in the order they were appended.
    pub entries: Vec<Entry>,
    /// Bytes cut from the end: a record a crash left unfinished (or damage).
    pub discarded_bytes: u64,
}

/// An open journal, appended to by one thread.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Bytes in the file, header included.
    len: u64,
    /// Reused encoding buffer.
    buffer: Vec<u8>,
}

impl Journal {
    /// Opens (or creates, mode 0600) the journal at `path` and reads what it holds, cutting a
    /// torn tail. A file that is not a journal of this format is an error: the caller decides
    /// what to do with it (it is left as it is).
    pub fn open(path: &Path) -> Result<(Self, Recovered), JournalError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .map_err(io_error("open change journal", path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(io_error("read change journal", path))?;
        let mut recovered = Recovered::default();
        let len = if bytes.is_empty() {
            write_header(&mut file, path)?;
            HEADER_LEN
        } else {
            if bytes.len() < HEADER_LEN as usize {
                // A crash while the header itself was written: nothing was ever appended.
                recovered.discarded_bytes = bytes.len() as u64;
                file.set_len(0)
                    .map_err(io_error("truncate change journal", path))?;
                write_header(&mut file, path)?;
                HEADER_LEN
            } else {
                check_header(&bytes, path)?;
                let (entries, end) = read_records(&bytes[HEADER_LEN as usize..]);
                recovered.entries = entries;
                let end = HEADER_LEN + end as u64;
                recovered.discarded_bytes = bytes.len() as u64 - end;
                if recovered.discarded_bytes > 0 {
                    file.set_len(end)
                        .map_err(io_error("truncate change journal", path))?;
                    file.sync_all()
                        .map_err(io_error("sync change journal", path))?;
                }
                end
            }
        };
        file.seek(SeekFrom::Start(len))
            .map_err(io_error("seek change journal", path))?;
        Ok((
            Self {
                path: path.to_owned(),
                file,
                len,
                buffer: Vec::new(),
            },
            recovered,
        ))
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the file, header included.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the journal holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len <= HEADER_LEN
    }

    /// Appends `entries` and syncs them to disk with one `fdatasync`. When it fails, the file is
    /// cut back to where it was, so a later append does not follow a half-written record.
    pub fn append(&mut self, entries: &[EntryRef<'_>]) -> Result<(), JournalError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.buffer.clear();
        for entry in entries {
            let start = self.buffer.len();
            self.buffer.extend_from_slice(&[0; RECORD_HEADER_LEN]);
            bincode::serde::encode_into_std_write(entry, &mut self.buffer, codec()).map_err(
                |source| JournalError::Encode {
                    path: self.path.clone(),
                    source,
                },
            )?;
            let payload = &self.buffer[start + RECORD_HEADER_LEN..];
            let length = u32::try_from(payload.len())
                .ok()
                .filter(|l| (*l as usize) <= MAX_RECORD)
                .ok_or_else(|| JournalError::Io {
                    action: "append to change journal",
                    path: self.path.clone(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("an entry of {} bytes is over the cap", payload.len()),
                    ),
                })?;
            let crc = crc32fast::hash(payload);
            self.buffer[start..start + 4].copy_from_slice(&length.to_be_bytes());
            self.buffer[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
        }
        let written = self
            .file
            .write_all(&self.buffer)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(JournalError::Io {
                action: "append to change journal",
                path: self.path.clone(),
                source,
            });
        }
        self.len += self.buffer.len() as u64;
        if self.buffer.capacity() > 4 << 20 {
            self.buffer = Vec::new();
        }
        Ok(())
    }

    /// Empties the journal: the snapshot file now holds everything it held.
    pub fn reset(&mut self) -> Result<(), JournalError> {
        self.file
            .set_len(HEADER_LEN)
            .and_then(|()| self.file.seek(SeekFrom::Start(HEADER_LEN)).map(drop))
            .and_then(|()| self.file.sync_all())
            .map_err(io_error("truncate change journal", &self.path))?;
        self.len = HEADER_LEN;
        Ok(())
    }
}

fn write_header(file: &mut File, path: &Path) -> Result<(), JournalError> {
    let mut header = [0u8; HEADER_LEN as usize];
    header[..4].copy_from_slice(&MAGIC);
    header[4..].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&header))
        .and_then(|()| file.sync_all())
        .map_err(io_error("write change journal header", path))?;
    // The file may be new: make its directory entry durable too.
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error("sync directory", dir))?;
    }
    Ok(())
}

fn check_header(bytes: &[u8], path: &Path) -> Result<(), JournalError> {
    if bytes[..4] != MAGIC {
        return Err(JournalError::NotAJournal {
            path: path.to_owned(),
            got: bytes[..4].to_vec(),
        });
    }
    let found = u16::from_be_bytes([bytes[4], bytes[5]]);
    if found != FORMAT_VERSION {
        return Err(JournalError::UnsupportedVersion {
            path: path.to_owned(),
            found,
        });
    }
    Ok(())
}

/// Decodes records from the start of `bytes` until the first bad one; returns them and the
/// number of bytes they take.
fn read_records(bytes: &[u8]) -> (Vec<Entry>, usize) {
    let mut entries = Vec::new();
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + RECORD_HEADER_LEN) {
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if length > MAX_RECORD {
            break;
        }
        let start = at + RECORD_HEADER_LEN;
        let Some(payload) = bytes.get(start..start + length) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let decoded = bincode::serde::decode_from_slice::<Entry, _>(
            payload,
            codec().with_limit::<MAX_RECORD>(),
        );
        match decoded {
            Ok((entry, used)) if used == length => entries.push(entry),
            _ => break,
        }
        at = start + length;
    }
    (entries, at)
}

/// Reads the journal at `path` without changing it (a torn tail is left out, not cut), for
/// tools and tests that look at a running edge's files. No file: no entry.
pub fn read(path: &Path) -> Result<Recovered, JournalError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Recovered::default()),
        Err(e) => return Err(io_error("read change journal", path)(e)),
    };
    if bytes.len() < HEADER_LEN as usize {
        return Ok(Recovered {
            entries: Vec::new(),
            discarded_bytes: bytes.len() as u64,
        });
    }
    check_header(&bytes, path)?;
    let (entries, end) = read_records(&bytes[HEADER_LEN as usize..]);
    Ok(Recovered {
        entries,
        discarded_bytes: (bytes.len() - HEADER_LEN as usize - end) as u64,
    })
}

/// Replays `entries` (read back from the journal) over what the snapshot file brought back
/// into `replica`, and marks what they touched as read from disk at `at_ms` (not yet confirmed
/// by the control plane).
pub fn replay(replica: &Replica, entries: Vec<Entry>, at_ms: u64) {
    for entry in entries {
        match entry {
            Entry::Welcome(welcome) => {
                replica.welcome(&welcome);
            }
            Entry::Snapshot { info, snapshot } => {
                replica.install(&snapshot, info, Source::SnapshotFile);
            }
            Entry::Changes(changes) => {
                replica.apply(&changes);
            }
        }
    }
    replica.mark_read_from_disk(at_ms);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use checkgate_protocol::frame::{ChangeRecord, Item};

    fn changes(version: u64) -> Changes {
        Changes {
            env_id: "env".into(),
            epoch: 7,
            changes: vec![ChangeRecord {
                version,
                item: Item::FlagUpsert {
                    key: "f".into(),
                    json: format!(r#"{{"key":"f","is_enabled":true,"v":{version}}}"#),
                },
            }],
        }
    }

    fn temp() -> PathBuf {
        std::env::temp_dir().join(format!("cg-journal-{}", uuid::Uuid::new_v4().simple()))
    }

    #[test]
    fn appended_entries_come_back_in_order_and_reset_empties() {
        let path = temp();
        let (mut journal, recovered) = Journal::open(&path).unwrap();
        assert!(recovered.entries.is_empty());
        let (a, b, c) = (changes(1), changes(2), changes(3));
        journal
            .append(&[EntryRef::Changes(&a), EntryRef::Changes(&b)])
            .unwrap();
        journal.append(&[EntryRef::Changes(&c)]).unwrap();
        drop(journal);
        let (mut journal, recovered) = Journal::open(&path).unwrap();
        assert_eq!(
            recovered.entries,
            vec![Entry::Changes(a), Entry::Changes(b), Entry::Changes(c)]
        );
        assert_eq!(recovered.discarded_bytes, 0);
        journal.reset().unwrap();
        assert!(journal.is_empty());
        drop(journal);
        let (_, recovered) = Journal::open(&path).unwrap();
        assert!(recovered.entries.is_empty());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_torn_or_damaged_tail_is_cut_and_what_precedes_it_kept() {
        let path = temp();
        let (mut journal, _) = Journal::open(&path).unwrap();
        let (a, b) = (changes(1), changes(2));
        journal.append(&[EntryRef::Changes(&a)]).unwrap();
        let whole = journal.len();
        journal.append(&[EntryRef::Changes(&b)]).unwrap();
        let full = journal.len();
        drop(journal);
        let bytes = std::fs::read(&path).unwrap();
        // Every cut inside the second record, and a flipped bit in it, keep exactly the first.
        for cut in (whole as usize + 1)..(full as usize) {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let (journal, recovered) = Journal::open(&path).unwrap();
            assert_eq!(
                recovered.entries,
                vec![Entry::Changes(a.clone())],
                "cut at {cut}"
            );
            assert_eq!(recovered.discarded_bytes, cut as u64 - whole);
            assert_eq!(journal.len(), whole);
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x10;
        std::fs::write(&path, &flipped).unwrap();
        let (mut journal, recovered) = Journal::open(&path).unwrap();
        assert_eq!(recovered.entries, vec![Entry::Changes(a.clone())]);
        // Appending after a cut tail leaves a readable journal.
        journal.append(&[EntryRef::Changes(&b)]).unwrap();
        drop(journal);
        let (_, recovered) = Journal::open(&path).unwrap();
        assert_eq!(
            recovered.entries,
            vec![Entry::Changes(a), Entry::Changes(b)]
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn another_file_is_refused_and_left_alone() {
        let path = temp();
        std::fs::write(&path, b"CGSN\x00\x01something else").unwrap();
        assert!(matches!(
            Journal::open(&path),
            Err(JournalError::NotAJournal { .. })
        ));
        std::fs::write(&path, b"CGJL\x00\x09").unwrap();
        assert!(matches!(
            Journal::open(&path),
            Err(JournalError::UnsupportedVersion { found: 9, .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"CGJL\x00\x09");
        let _ = std::fs::remove_file(&path);
    }

    #[cfg(unix)]
    #[test]
    fn the_journal_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let path = temp();
        let _ = Journal::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_file(&path);
    }
}

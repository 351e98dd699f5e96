//! Secrets at rest: every credential the store keeps in a form it must give back (webhook
//! signing secrets, and webhook URLs, whose path may be a token) is sealed with
//! XChaCha20-Poly1305 under `CHECKGATE_MASTER_KEY`.
//!
//! A sealed value is text: `cg1.<key id>.<hex of nonce ‖ ciphertext ‖ tag>`. The key id (the
//! first 8 hex digits of SHA-256 of the key) says which master key sealed it, so a start-up
//! with another key, and a half-finished rotation, are seen before anything is opened. The
//! associated data names the row and the column the value belongs to (`webhook:<id>` for a
//! secret, `webhook-url:<id>` for a URL): a sealed value copied to another row, or from one
//! column to the other, does not open.
//!
//! The master key is 32 bytes, given as 64 hex digits or as base64 (standard alphabet, 44
//! characters with padding). On the embedded default (no `DATABASE_URL`) without a configured
//! key, one is generated into the data directory (`master_key`, mode 0600), like the session
//! secret; instances sharing a database must all be given the same key.

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use checkgate_protocol::Secret;
use sha2::{Digest, Sha256};

use crate::store::webhooks::{SealedField, StoredUrl};

/// The file, inside the data directory, that holds a generated master key.
pub const MASTER_KEY_FILE: &str = "master_key";

/// The prefix of every sealed value (the format's version).
const SEALED_PREFIX: &str = "cg1";
/// XChaCha20's nonce: 24 random bytes per sealed value.
const NONCE_LEN: usize = 24;

/// A 32-byte master key. Its `Debug` shows only its id.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; 32],
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// Why a master key, or a sealed value, cannot be used. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("{variable} must be 32 bytes as 64 hex digits or base64 ({problem})")]
    BadKey {
        variable: &'static str,
        problem: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("a stored secret is not in the sealed format")]
    Malformed,
    #[error("a stored secret was sealed under master key {found}, not {expected}")]
    OtherKey { found: String, expected: String },
    #[error("a stored secret does not open under master key {0} (wrong key, or damaged)")]
    DoesNotOpen(String),
    #[error("a stored secret is sealed and this server has no master key")]
    NoKey,
    #[error(
        "{count} stored secret(s) are encrypted and CHECKGATE_MASTER_KEY is not set; set it to the key they were sealed with (key id {key_id})"
    )]
    Missing { count: usize, key_id: String },
    #[error(
        "stored secrets were sealed under master key {found} but CHECKGATE_MASTER_KEY is key {configured}; set the right key, or finish `checkgate-control rotate-master-key`"
    )]
    WrongKey { found: String, configured: String },
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

impl MasterKey {
    fn from_bytes(key: [u8; 32]) -> Self {
        let id = hex(&Sha256::digest(key)[..4]);
        Self { key, id }
    }

    /// Parses 64 hex digits or base64 of 32 bytes; `variable` names the setting in the error.
    pub fn parse(variable: &'static str, text: &str) -> Result<Self, VaultError> {
        use base64::Engine as _;
        let text = text.trim();
        let bad = |problem: &str| VaultError::BadKey {
            variable,
            problem: problem.to_owned(),
        };
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            unhex(text).ok_or_else(|| bad("not hex"))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| bad("neither 64 hex digits nor base64"))?
        };
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| bad(&format!("{} bytes", b.len())))?;
        Ok(Self::from_bytes(key))
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&key);
        Self::from_bytes(bytes)
    }

    /// The first 8 hex digits of SHA-256 of the key: stored with each sealed value.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as 64 hex digits, for the generated key file.
    fn to_hex(&self) -> String {
        hex(&self.key)
    }

    /// Seals `plaintext` for the row named by `context` (e.g. `webhook:<id>`).
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let cipher = XChaCha20Poly1305::new((&self.key).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: context.as_bytes(),
        };
        // Encryption into a Vec fails only past the cipher's length limit (256 GiB).
        let sealed = cipher.encrypt(&nonce, payload).unwrap_or_default();
        let mut all = nonce.to_vec();
        all.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}.{}.{}", self.id, hex(&all))
    }

    /// Opens a value sealed by [`MasterKey::seal`] for the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Secret, VaultError> {
        let (key_id, data) = split_sealed(sealed)?;
        if key_id != self.id {
            return Err(VaultError::OtherKey {
                found: key_id.to_owned(),
                expected: self.id.clone(),
            });
        }
        let data = unhex(data).ok_or(VaultError::Malformed)?;
        if data.len() < NONCE_LEN + 16 {
            return Err(VaultError::Malformed);
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new((&self.key).into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| VaultError::DoesNotOpen(self.id.clone()))?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| VaultError::Malformed)
    }
}

/// `(key id, hex data)` of a sealed value.
fn split_sealed(sealed: &str) -> Result<(&str, &str), VaultError> {
    let mut parts = sealed.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(SEALED_PREFIX), Some(id), Some(data)) if !id.is_empty() => Ok((id, data)),
        _ => Err(VaultError::Malformed),
    }
}

/// The id of the key that sealed `sealed`.
pub fn sealed_key_id(sealed: &str) -> Result<&str, VaultError> {
    split_sealed(sealed).map(|(id, _)| id)
}

/// The associated data of a webhook's sealed value: its row and column, so the value opens only
/// there.
pub fn context(field: SealedField, webhook_id: &str) -> String {
    match field {
        SealedField::Secret => format!("webhook:{webhook_id}"),
        SealedField::Url => format!("webhook-url:{webhook_id}"),
    }
}

/// What is stored of webhook `webhook_id`'s `url`: sealed under `key`, with what may be shown.
pub fn seal_url(key: &MasterKey, webhook_id: &str, url: &str) -> StoredUrl {
    StoredUrl::sealed(url, key.seal(&context(SealedField::Url, webhook_id), url))
}

/// Webhook `webhook_id`'s whole URL: opened under `key`, or a row's plain URL from before URLs
/// were sealed.
pub fn open_url(
    key: Option<&MasterKey>,
    webhook_id: &str,
    url: &StoredUrl,
) -> Result<Secret, VaultError> {
    match url {
        StoredUrl::Plain(url) => Ok(Secret::new(url.clone())),
        StoredUrl::Sealed { sealed, .. } => key
            .ok_or(VaultError::NoKey)?
            .open(&context(SealedField::Url, webhook_id), sealed),
    }
}

/// Seals every URL stored before URLs were sealed, one row per transaction and only if it is
/// unchanged; how many it sealed.
pub async fn seal_plain_urls(
    store: &crate::store::Store,
    key: &MasterKey,
) -> Result<usize, crate::store::StoreError> {
    let mut sealed = 0;
    for (id, plain) in store.plain_urls().await? {
        let url = seal_url(key, &id, &plain);
        if store.seal_plain_url(&id, &plain, &url, key.id()).await? {
            sealed += 1;
        }
    }
    Ok(sealed)
}

/// What a rotation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotated {
    /// Re-encrypted under the new key now.
    pub resealed: usize,
    /// Already under the new key (an earlier, interrupted run).
    pub already: usize,
}

/// Why a rotation stopped.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the new key is the old key")]
    SameKey,
}

/// Re-encrypts every stored secret and URL from `old` to `new`, one row per transaction, each only if
/// it still holds the value read (compare-and-set): run again after an interruption, it
/// finishes the rows left. A row under a third key stops it (nothing is guessed).
pub async fn rotate(
    store: &crate::store::Store,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<Rotated, RotateError> {
    if old.id() == new.id() {
        return Err(RotateError::SameKey);
    }
    let mut done = Rotated::default();
    for value in store.sealed_values().await? {
        let found = sealed_key_id(&value.sealed)?;
        if found == new.id() {
            done.already += 1;
            continue;
        }
        let context = context(value.field, &value.webhook_id);
        let plain = old.open(&context, &value.sealed)?;
        let resealed = new.seal(&context, plain.expose());
        if store
            .reseal(&value, &resealed, (old.id(), new.id()))
            .await?
        {
            done.resealed += 1;
        }
    }
    Ok(done)
}

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `CHECKGATE_MASTER_KEY`.
    Configured,
    /// Generated into this file just now.
    Generated(PathBuf),
    /// Read from this file, generated by an earlier start.
    Loaded(PathBuf),
    /// None configured, and none generated (a shared database): secrets cannot be stored.
    Absent,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VaultError + '_ {
    move |source| VaultError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads the key file generated by an earlier start, if there is one (refused when others
/// can read it).
pub fn load_file(path: &Path) -> Result<Option<MasterKey>, VaultError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    if let Some(mode) = crate::secrets::exposed_mode(path).map_err(io(path))? {
        return Err(VaultError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    MasterKey::parse("CHECKGATE_MASTER_KEY", &text).map(Some)
}

/// Writes `key` to `path`, which must not exist yet, readable by its owner only.
fn create_file(path: &Path, key: &MasterKey) -> Result<(), VaultError> {
    crate::secrets::write_private(path, &key.to_hex()).map_err(io(path))
}

/// Replaces the key file's content with `key` (after a rotation), atomically, mode 0600.
pub fn replace_file(path: &Path, key: &MasterKey) -> Result<(), VaultError> {
    let tmp = path.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    create_file(&tmp, key)?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// The master key to run with, checked against the ids of the secrets already sealed
/// (`sealed`: one stored value per row). `embedded`: the store is the data directory's own
/// file, so a missing key may be generated there (never when sealed secrets exist: a new key
/// could not open them).
pub fn prepare(
    configured: Option<&Secret>,
    data_dir: &Path,
    embedded: bool,
    sealed: &[String],
) -> Result<(Option<MasterKey>, Origin), VaultError> {
    let path = data_dir.join(MASTER_KEY_FILE);
    let (key, origin) = match configured {
        Some(text) => (
            Some(MasterKey::parse("CHECKGATE_MASTER_KEY", text.expose())?),
            Origin::Configured,
        ),
        None if embedded => match load_file(&path)? {
            Some(key) => (Some(key), Origin::Loaded(path)),
            None if sealed.is_empty() => {
                let key = MasterKey::generate();
                create_file(&path, &key)?;
                (Some(key), Origin::Generated(path))
            }
            None => (None, Origin::Absent),
        },
        None => (None, Origin::Absent),
    };
    check(key.as_ref(), sealed)?;
    Ok((key, origin))
}

/// Refuses a key that cannot open every sealed value: missing, or another key's.
pub fn check(key: Option<&MasterKey>, sealed: &[String]) -> Result<(), VaultError> {
    let Some(first) = sealed.first() else {
        return Ok(());
    };
    let Some(key) = key else {
        return Err(VaultError::Missing {
            count: sealed.len(),
            key_id: sealed_key_id(first).unwrap_or("?").to_owned(),
        });
    };
    for value in sealed {
        let found = sealed_key_id(value)?;
        if found != key.id() {
            return Err(VaultError::WrongKey {
                found: found.to_owned(),
                configured: key.id().to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cg-vault-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn sealed_values_open_only_for_their_row_and_key() {
        let key = MasterKey::generate();
        let sealed = key.seal("webhook:a", "s3cret");
        assert!(sealed.starts_with(&format!("cg1.{}.", key.id())));
        assert!(!sealed.contains("s3cret"));
        assert_eq!(key.open("webhook:a", &sealed).unwrap().expose(), "s3cret");
        // Copied to another row: refused.
        assert!(matches!(
            key.open("webhook:b", &sealed),
            Err(VaultError::DoesNotOpen(_))
        ));
        // Another key: refused by its id, before any decryption.
        let other = MasterKey::generate();
        assert!(matches!(
            other.open("webhook:a", &sealed),
            Err(VaultError::OtherKey { .. })
        ));
        // Two seals of one secret differ (fresh nonce).
        assert_ne!(sealed, key.seal("webhook:a", "s3cret"));
        // Damaged: refused.
        let mut damaged = sealed.clone();
        let last = damaged.pop().unwrap();
        damaged.push(if last == '0' { '1' } else { '0' });
        assert!(key.open("webhook:a", &damaged).is_err());
        assert!(matches!(
            key.open("webhook:a", "plain"),
            Err(VaultError::Malformed)
        ));
    }

    #[test]
    fn keys_parse_from_hex_or_base64_and_nothing_else() {
        let hex_key = "00".repeat(32);
        let a = MasterKey::parse("K", &hex_key).unwrap();
        let b = MasterKey::parse("K", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), 8);
        for bad in ["", "short", &"00".repeat(31), "not base64 at all!!"] {
            let err = MasterKey::parse("K", bad).unwrap_err();
            assert!(err.to_string().starts_with("K must be 32 bytes"), "{err}");
        }
        assert!(!format!("{a:?}").contains(&hex_key));
    }

    #[test]
    fn embedded_key_is_generated_once_and_checked_against_stored_secrets() {
        let dir = temp_dir();
        let (key, origin) = prepare(None, &dir, true, &[]).unwrap();
        let key = key.unwrap();
        assert_eq!(origin, Origin::Generated(dir.join(MASTER_KEY_FILE)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(MASTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sealed = vec![key.seal("webhook:x", "s")];
        let (again, origin) = prepare(None, &dir, true, &sealed).unwrap();
        assert_eq!(origin, Origin::Loaded(dir.join(MASTER_KEY_FILE)));
        assert_eq!(again.unwrap().id(), key.id());

        // Another configured key: refused, naming both ids and no key material.
        let other = Secret::new("11".repeat(32));
        let err = prepare(Some(&other), &dir, true, &sealed).unwrap_err();
        assert!(matches!(err, VaultError::WrongKey { .. }), "{err}");
        assert!(err.to_string().contains(key.id()), "{err}");
        assert!(!err.to_string().contains(&"11".repeat(32)));

        // The file gone while secrets exist: refused, never a new key.
        std::fs::remove_file(dir.join(MASTER_KEY_FILE)).unwrap();
        let err = prepare(None, &dir, true, &sealed).unwrap_err();
        assert!(matches!(err, VaultError::Missing { count: 1, .. }), "{err}");
        assert!(!dir.join(MASTER_KEY_FILE).exists());
        // A shared database without a key: nothing generated.
        let (none, origin) = prepare(None, &dir, false, &[]).unwrap();
        assert!(none.is_none());
        assert_eq!(origin, Origin::Absent);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

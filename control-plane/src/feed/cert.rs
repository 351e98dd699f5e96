//! The feed server's certificate: the one configured (`FEED_CERT` and `FEED_KEY`, PEM files),
//! or — on the embedded default — a self-signed one generated into the data directory on first
//! start and reused afterwards. Edges pin its SHA-256 fingerprint, which is printed at start-up.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The generated certificate and key, inside the data directory.
pub const GENERATED_CERT: &str = "feed_cert.pem";
pub const GENERATED_KEY: &str = "feed_key.pem";

/// A certificate chain, its key, and where they came from.
#[derive(Debug)]
pub struct FeedIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// `true` when generated into the data directory just now.
    pub generated: bool,
    pub cert_path: PathBuf,
}

impl FeedIdentity {
    /// The SHA-256 of the end-entity certificate, as edges configure it.
    pub fn fingerprint(&self) -> String {
        self.chain
            .first()
            .map(checkgate_feed::quic::fingerprint)
            .unwrap_or_default()
    }
}

fn load(
    cert: &Path,
    key: &Path,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{} is not a PEM private key", key.display()))?;
    Ok((chain, key))
}

/// Writes `text` to a new file only its owner can read.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// The configured identity, or the generated one in `data_dir` (created on first use).
pub fn identity(
    configured: Option<(&Path, &Path)>,
    data_dir: &Path,
) -> anyhow::Result<FeedIdentity> {
    if let Some((cert, key)) = configured {
        let (chain, key) = load(cert, key)?;
        return Ok(FeedIdentity {
            chain,
            key,
            generated: false,
            cert_path: cert.to_owned(),
        });
    }
    let cert = data_dir.join(GENERATED_CERT);
    let key = data_dir.join(GENERATED_KEY);
    if cert.exists() || key.exists() {
        let (chain, key) = load(&cert, &key)?;
        return Ok(FeedIdentity {
            chain,
            key,
            generated: false,
            cert_path: cert,
        });
    }
    // Whichever runs first creates the data directory: private, as everywhere else.
    crate::secrets::create_private_dir(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let names = vec!["localhost".to_owned(), "checkgate-control".to_owned()];
    let made = rcgen::generate_simple_self_signed(names).context("generating a certificate")?;
    // The key first: a certificate without its key would make the next start fail.
    write_private(&key, &made.key_pair.serialize_pem())?;
    write_private(&cert, &made.cert.pem())?;
    let (chain, key) = load(&cert, &key)?;
    Ok(FeedIdentity {
        chain,
        key,
        generated: true,
        cert_path: cert,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_with_the_same_fingerprint() {
        let dir = std::env::temp_dir().join(format!("cg-cert-{}", uuid::Uuid::new_v4().simple()));
        let first = identity(None, &dir).unwrap();
        assert!(first.generated);
        assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
        let again = identity(None, &dir).unwrap();
        assert!(!again.generated);
        assert_eq!(again.fingerprint(), first.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(GENERATED_KEY))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.join(GENERATED_CERT), "not a certificate").unwrap();
        let err = identity(None, &dir).unwrap_err();
        assert!(format!("{err:#}").contains(GENERATED_CERT), "{err:#}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

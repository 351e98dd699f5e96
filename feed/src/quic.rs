//! The feed's QUIC transport, shared by both ends: TLS 1.3 configurations (rustls with ring),
//! how an edge trusts the control plane (a pinned certificate fingerprint or a CA), and reading
//! and writing envelope-framed [`Frame`]s on a QUIC stream.
//!
//! One feed connection carries one bidirectional stream: the edge opens it and sends `Hello`.
//! Frames are concatenated envelopes (`checkgate_protocol::envelope`), so a reader decodes
//! as bytes arrive and refuses a frame over its cap from the header alone.
//!
//! [`QuicTransport`] is the edge's [`crate::Transport`] over all this.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use checkgate_protocol::frame::Hello;
use checkgate_protocol::{
    DEFAULT_MAX_FRAME, DecodeError, EncodeError, Frame, HANDSHAKE_MAX_FRAME, decode, encode,
};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest as _, Sha256};

/// The ALPN protocol name of the feed; a peer that speaks anything else is refused by TLS.
pub const ALPN: &[u8] = b"checkgate-feed/1";

/// A connection with no packet for this long is dead (heartbeats come far more often).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// QUIC keep-alives, so NAT mappings and the idle timer stay fresh on a quiet feed.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// What went wrong on a feed stream.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("feed stream read failed: {0}")]
    Read(#[from] quinn::ReadError),
    #[error("feed stream write failed: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("feed stream closed: {0}")]
    Closed(#[from] quinn::ClosedStream),
    #[error("undecodable feed frame: {0}")]
    Decode(#[from] DecodeError),
    #[error("unencodable feed frame: {0}")]
    Encode(#[from] EncodeError),
    #[error("feed stream ended inside a frame")]
    Truncated,
    /// The session cannot go on, for a reason another transport gives.
    #[error("{0}")]
    Broken(String),
}

/// The crypto both ends use: ring, explicitly, so no process-wide default has to be installed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn transport() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    // 30 s fits in a QUIC varint; the conversion cannot fail.
    t.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok());
    t.keep_alive_interval(Some(KEEP_ALIVE));
    // One stream per connection, opened by the edge; nothing else is accepted, which bounds
    // what a peer can make us buffer to one stream's receive window.
    t.max_concurrent_uni_streams(0u8.into());
    t.max_concurrent_bidi_streams(1u8.into());
    t
}

/// The control plane's QUIC server configuration for a certificate chain and its key.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<quinn::ServerConfig> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // 0-RTT data could be replayed; the feed has no use for it.
    tls.max_early_data_size = 0;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
    config.transport_config(Arc::new(transport()));
    Ok(config)
}

/// How an edge decides that it is talking to its control plane.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The SHA-256 of the control plane's certificate (DER), as it prints it at start-up.
    Fingerprint([u8; 32]),
    /// Certificates of the CA(s) that issued the control plane's certificate; the server name
    /// must match it.
    Roots(Vec<CertificateDer<'static>>),
}

/// The SHA-256 of a certificate, as `ab:cd:…` (how it is printed and configured).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses a fingerprint written as 64 hex digits, with or without `:` between the bytes.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("must be a SHA-256: 64 hex digits, optionally with ':' between bytes".into());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| "must be hex digits".to_owned())?;
    }
    Ok(out)
}

/// Accepts exactly the certificate whose SHA-256 is pinned, whatever its name or issuer (the
/// embedded default's certificate is self-signed). Handshake signatures are still verified, so
/// the peer must hold the certificate's key.
#[derive(Debug)]
struct Pinned {
    fingerprint: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if seen == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The configuration allows TLS 1.3 only.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The edge's QUIC client configuration.
pub fn client_config(trust: &Trust) -> anyhow::Result<quinn::ClientConfig> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let mut tls = match trust {
        Trust::Fingerprint(fingerprint) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                fingerprint: *fingerprint,
                provider,
            }))
            .with_no_client_auth(),
        Trust::Roots(certs) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs {
                roots.add(cert.clone())?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
    config.transport_config(Arc::new(transport()));
    Ok(config)
}

/// Reads frames from a feed stream as they arrive.
#[derive(Debug)]
pub struct FrameReader {
    recv: quinn::RecvStream,
    buf: Vec<u8>,
    /// The largest frame accepted from this peer right now (small until the handshake is done).
    max: usize,
}

impl FrameReader {
    pub fn new(recv: quinn::RecvStream, max: usize) -> Self {
        Self {
            recv,
            buf: Vec::new(),
            max,
        }
    }

    /// Changes the largest frame accepted from now on.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// The next frame; `None` when the peer finished the stream between frames.
    pub async fn next(&mut self) -> Result<Option<Frame>, TransportError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some((frame, used)) = decode(&self.buf, self.max)? {
                self.buf.drain(..used);
                return Ok(Some(frame));
            }
            match self.recv.read(&mut chunk).await? {
                Some(n) => self.buf.extend_from_slice(&chunk[..n]),
                None if self.buf.is_empty() => return Ok(None),
                None => return Err(TransportError::Truncated),
            }
        }
    }
}

/// Writes frames to a feed stream.
#[derive(Debug)]
pub struct FrameWriter {
    send: quinn::SendStream,
    max: usize,
}

impl FrameWriter {
    pub fn new(send: quinn::SendStream, max: usize) -> Self {
        Self { send, max }
    }

    /// Encodes and sends one frame.
    pub async fn send(&mut self, frame: &Frame) -> Result<(), TransportError> {
        let bytes = encode(frame, self.max)?;
        self.send.write_all(&bytes).await?;
        Ok(())
    }

    /// Finishes the stream (the peer reads `None` after the last frame).
    pub fn finish(&mut self) -> Result<(), TransportError> {
        self.send.finish()?;
        Ok(())
    }

    /// Waits, at most `limit`, until the peer has acknowledged everything sent on the finished
    /// stream, or stopped reading it, or the connection is gone. Dropping the connection closes
    /// it at once, and data still in flight — a last `Close` — may then never be read.
    pub async fn delivered(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.send.stopped()).await;
    }
}

/// How long a QUIC handshake may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An edge's way to the control plane's feed over QUIC: one client endpoint, one connection
/// per session, one bidirectional stream per connection.
#[derive(Debug)]
pub struct QuicTransport {
    endpoint: quinn::Endpoint,
    /// The name the control plane's certificate must carry (with a CA).
    server_name: String,
}

impl QuicTransport {
    /// A client endpoint on an ephemeral UDP port that trusts the control plane as `trust`
    /// says.
    pub fn new(trust: &Trust, server_name: String) -> anyhow::Result<Self> {
        let config = client_config(trust)?;
        let mut endpoint = quinn::Endpoint::client(SocketAddr::from(([0, 0, 0, 0], 0)))?;
        endpoint.set_default_client_config(config);
        Ok(Self {
            endpoint,
            server_name,
        })
    }
}

impl crate::Transport for QuicTransport {
    type Session = QuicSession;

    async fn open(&mut self, target: &str, hello: Hello) -> Result<QuicSession, String> {
        let addr = match tokio::net::lookup_host(target).await.map(|mut a| a.next()) {
            Ok(Some(addr)) => addr,
            Ok(None) => return Err(format!("{target} resolves to no address")),
            Err(e) => return Err(format!("resolving {target}: {e}")),
        };
        let connecting = self
            .endpoint
            .connect(addr, &self.server_name)
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let connection = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(format!("connecting to {addr}: {e}")),
            Err(_) => return Err(format!("no answer from {addr} within {CONNECT_TIMEOUT:?}")),
        };
        let (send, recv) = connection
            .open_bi()
            .await
            .map_err(|e| format!("opening the feed stream: {e}"))?;
        let mut session = QuicSession {
            writer: FrameWriter::new(send, HANDSHAKE_MAX_FRAME),
            reader: FrameReader::new(recv, DEFAULT_MAX_FRAME),
            _connection: connection,
        };
        session
            .writer
            .send(&hello.into())
            .await
            .map_err(|e| format!("sending hello: {e}"))?;
        tracing::info!(%addr, "feed connected");
        Ok(session)
    }

    fn close(&mut self) {
        self.endpoint.close(0u32.into(), b"edge shutting down");
    }
}

/// A session over one QUIC connection.
#[derive(Debug)]
pub struct QuicSession {
    reader: FrameReader,
    writer: FrameWriter,
    /// Held so the connection lives as long as the session.
    _connection: quinn::Connection,
}

impl crate::Session for QuicSession {
    async fn recv(&mut self) -> Result<Option<Frame>, TransportError> {
        self.reader.next().await
    }

    async fn send(&mut self, frame: &Frame) -> Result<(), TransportError> {
        self.writer.send(frame).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let hex = "00".repeat(31) + "ff";
        let mut want = [0u8; 32];
        want[31] = 0xff;
        assert_eq!(parse_fingerprint(&hex), Ok(want));
        let colons = (0..32)
            .map(|i| {
                if i == 31 {
                    "FF".into()
                } else {
                    "00".to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(parse_fingerprint(&colons), Ok(want));
        for bad in ["", "zz", &"0".repeat(63), &"g".repeat(64)] {
            assert!(parse_fingerprint(bad).is_err(), "{bad:?}");
        }
        let cert = CertificateDer::from(vec![1u8, 2, 3]);
        assert_eq!(
            parse_fingerprint(&fingerprint(&cert)),
            Ok(Sha256::digest([1u8, 2, 3]).into())
        );
    }
}

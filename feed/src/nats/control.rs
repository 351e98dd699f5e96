//! The edge's HTTP channel to the control plane when its changes come over NATS: one route,
//! `POST /api/feed`, authenticated by the edge token (`Authorization: Bearer cge_…`). The body
//! is one envelope-encoded frame from the edge — `Hello`, `DigestRequest`, `Resync`, a
//! `Heartbeat` carrying the edge's positions (its report), or `Close` when it stops — and the
//! answer is the frames the control plane sends back, concatenated: what a QUIC session would
//! have sent for it.
//!
//! A 401 answers an unknown or revoked token. Each base URL of `CONTROL_PLANE_URL` is tried
//! in turn when one fails. `https://` URLs are checked against `CONTROL_PLANE_CA`, or the
//! system's CA certificates without it; the token then never crosses the network in clear.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use checkgate_protocol::{DEFAULT_MAX_FRAME, Frame, HANDSHAKE_MAX_FRAME, Secret, decode, encode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::http::{Request, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

/// The feed route's path.
pub const PATH: &str = "/api/feed";
/// The media type of both bodies.
pub const CONTENT_TYPE: &str = "application/vnd.checkgate.feed";
/// The fleet row an edge's reports refresh: returned by `Hello`, sent with each report.
pub const FLEET_HEADER: &str = "x-checkgate-fleet-session";
/// The most an answer may hold (several environments' snapshots).
pub const MAX_ANSWER: usize = 1 << 30;
/// How long connecting to a control plane may take (TLS handshake included).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A control plane's address: `http://host:port` or `https://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    host: String,
    port: u16,
    tls: bool,
}

impl Base {
    /// `host:port`, with an IPv6 host in brackets.
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether the control plane is reached over TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }
}

impl std::fmt::Display for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.authority())
    }
}

/// Parses `CONTROL_PLANE_URL`: comma-separated `http(s)://host[:port]` base URLs.
pub fn parse_bases(list: &str) -> Result<Vec<Base>, String> {
    let bases = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|text| {
            // Before anything echoes the URL: a password in it must not reach the log.
            if text.contains('@') {
                return Err(
                    "a URL carries credentials (user:password@); the edge authenticates \
                     with EDGE_TOKEN, and the URL is not repeated here"
                        .to_owned(),
                );
            }
            let uri: Uri = text
                .parse()
                .map_err(|e| format!("{text:?} is not a URL: {e}"))?;
            let (tls, default_port) = match uri.scheme_str() {
                Some("http") => (false, 80),
                Some("https") => (true, 443),
                _ => return Err(format!("{text:?} must start with http:// or https://")),
            };
            if uri.path() != "/" && !uri.path().is_empty() {
                return Err(format!("{text:?} must be a base URL, without a path"));
            }
            let host = uri
                .host()
                .ok_or_else(|| format!("{text:?} names no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            Ok(Base {
                host,
                port: uri.port_u16().unwrap_or(default_port),
                tls,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if bases.is_empty() {
        return Err("names no control plane".into());
    }
    Ok(bases)
}

/// The control planes an edge talks to, and how it checks their certificates.
#[derive(Debug, Clone, Default)]
pub struct Upstream {
    bases: Vec<Base>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Upstream {
    /// `bases`, with `https://` ones checked against the CA certificates in the PEM file `ca`
    /// or, without it, the system's. The error says what is wrong with `ca` (or the system's
    /// certificates).
    pub fn new(bases: Vec<Base>, ca: Option<&Path>) -> Result<Self, String> {
        if !bases.iter().any(Base::tls) {
            if ca.is_some() {
                return Err("applies to https:// control-plane URLs, and none is given".into());
            }
            return Ok(Self { bases, tls: None });
        }
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(ca) => {
                let certs = CertificateDer::pem_file_iter(ca)
                    .map_err(|e| format!("cannot read {}: {e}", ca.display()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("{} is not PEM certificates: {e}", ca.display()))?;
                if certs.is_empty() {
                    return Err(format!("{} holds no certificate", ca.display()));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", ca.display()))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(
                        "no CA certificate found on this system for https:// control-plane \
                         URLs; name one in CONTROL_PLANE_CA"
                            .into(),
                    );
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            bases,
            tls: Some(Arc::new(config)),
        })
    }

    /// The base URLs, in the order they are tried.
    pub fn bases(&self) -> &[Base] {
        &self.bases
    }
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The token is unknown or revoked.
    #[error("the control plane refused the edge token: {0}")]
    Unauthorized(String),
    #[error("{base}: {problem}")]
    Failed { base: String, problem: String },
}

/// What one exchange brought back.
#[derive(Debug)]
pub struct Exchanged {
    pub frames: Vec<Frame>,
    /// The fleet row the control plane opened (answers to `Hello`).
    pub fleet: Option<String>,
}

/// The edge's client of the feed route. Cloning gives a client of its own connection.
pub struct Control {
    upstream: Upstream,
    token: Secret,
    /// The base in use, and its open connection.
    at: usize,
    connection: Option<SendRequest<Full<Bytes>>>,
}

impl Clone for Control {
    fn clone(&self) -> Self {
        Self {
            upstream: self.upstream.clone(),
            token: self.token.clone(),
            at: self.at,
            connection: None,
        }
    }
}

impl Control {
    pub fn new(upstream: Upstream, token: Secret) -> Self {
        Self {
            upstream,
            token,
            at: 0,
            connection: None,
        }
    }

    fn base(&self) -> Option<&Base> {
        let bases = &self.upstream.bases;
        bases.get(self.at % bases.len().max(1))
    }

    /// Sends `frame` and reads the answer, within `timeout`. On a failure the next exchange
    /// goes to the next base URL.
    pub async fn exchange(
        &mut self,
        frame: &Frame,
        fleet: Option<&str>,
        timeout: Duration,
    ) -> Result<Exchanged, ControlError> {
        let Some(base) = self.base() else {
            return Err(ControlError::Failed {
                base: String::new(),
                problem: "no control plane is configured".into(),
            });
        };
        let base = base.to_string();
        let outcome = tokio::time::timeout(timeout, self.try_exchange(frame, fleet)).await;
        let problem = match outcome {
            Ok(Ok(exchanged)) => return Ok(exchanged),
            Ok(Err(Attempt::Unauthorized(message))) => {
                return Err(ControlError::Unauthorized(message));
            }
            Ok(Err(Attempt::Failed(problem))) => problem,
            Err(_) => format!("no answer within {timeout:?}"),
        };
        self.connection = None;
        self.at = self.at.wrapping_add(1);
        Err(ControlError::Failed { base, problem })
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if let Some(sender) = &self.connection
            && !sender.is_closed()
            && sender.is_ready()
        {
            return self.connection.as_mut().ok_or_else(String::new);
        }
        let base = self
            .base()
            .cloned()
            .ok_or("no control plane is configured")?;
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((base.host.as_str(), base.port)),
        )
        .await
        .map_err(|_| format!("no connection within {CONNECT_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let sender = match (&self.upstream.tls, base.tls) {
            (Some(config), true) => {
                let name = ServerName::try_from(base.host.clone()).map_err(|e| {
                    format!(
                        "{:?} cannot be checked against a certificate: {e}",
                        base.host
                    )
                })?;
                let stream = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    tokio_rustls::TlsConnector::from(config.clone()).connect(name, stream),
                )
                .await
                .map_err(|_| format!("no TLS handshake within {CONNECT_TIMEOUT:?}"))?
                .map_err(|e| format!("TLS: {e}"))?;
                handshake(stream).await?
            }
            (None, true) => return Err("https is not set up".into()),
            (_, false) => handshake(stream).await?,
        };
        Ok(self.connection.insert(sender))
    }

    async fn try_exchange(
        &mut self,
        frame: &Frame,
        fleet: Option<&str>,
    ) -> Result<Exchanged, Attempt> {
        let body = encode(frame, HANDSHAKE_MAX_FRAME)
            .map_err(|e| Attempt::Failed(format!("encoding the request: {e}")))?;
        let base = self
            .base()
            .cloned()
            .ok_or_else(|| Attempt::Failed("no control plane is configured".into()))?;
        let mut request = Request::post(PATH)
            .header(header::HOST, base.authority())
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.token.expose()),
            );
        if let Some(fleet) = fleet {
            request = request.header(FLEET_HEADER, fleet);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Attempt::Failed(format!("building the request: {e}")))?;
        let sender = self.connect().await.map_err(Attempt::Failed)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Attempt::Failed(format!("request failed: {e}")))?;
        let status = response.status();
        let fleet = response
            .headers()
            .get(FLEET_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| Attempt::Failed(format!("reading the answer: {e}")))?
            .to_bytes();
        if status == StatusCode::UNAUTHORIZED {
            return Err(Attempt::Unauthorized(message(&body)));
        }
        if status != StatusCode::OK {
            return Err(Attempt::Failed(format!(
                "answered {status}: {}",
                message(&body)
            )));
        }
        let mut frames = Vec::new();
        let mut rest = &body[..];
        while !rest.is_empty() {
            match decode(rest, DEFAULT_MAX_FRAME) {
                Ok(Some((frame, used))) => {
                    frames.push(frame);
                    rest = &rest[used..];
                }
                Ok(None) => return Err(Attempt::Failed("the answer ends inside a frame".into())),
                Err(e) => return Err(Attempt::Failed(format!("undecodable answer: {e}"))),
            }
        }
        Ok(Exchanged { frames, fleet })
    }
}

/// Starts HTTP/1.1 over `io`, its connection driven by a task of its own.
async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

enum Attempt {
    Unauthorized(String),
    Failed(String),
}

/// The `message` of a JSON error body, or the start of the body as text.
fn message(body: &[u8]) -> String {
    serde_json::from_slice::<checkgate_protocol::json::ErrorBody>(body)
        .map(|e| e.error.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_http_or_https_without_a_path_or_credentials() {
        let bases = parse_bases("http://cp-1:3000, http://[::1], https://cp.example").unwrap();
        assert_eq!(bases[0].to_string(), "http://cp-1:3000");
        assert_eq!(bases[1].to_string(), "http://[::1]:80");
        assert_eq!(bases[2].to_string(), "https://cp.example:443");
        assert!(bases[2].tls() && !bases[0].tls());
        for bad in [
            "",
            "cp:3000",
            "http://cp/api",
            "ftp://cp",
            "https://edge:secret@cp",
        ] {
            assert!(parse_bases(bad).is_err(), "{bad:?}");
        }
        // Refused without repeating the password, whatever else is wrong with the URL.
        for leaky in ["https://edge:secret@cp/api", "ftp://edge:secret@cp"] {
            let problem = parse_bases(leaky).unwrap_err();
            assert!(!problem.contains("secret"), "{problem}");
        }
    }

    #[test]
    fn a_ca_file_applies_to_https_only_and_must_hold_certificates() {
        let plain = parse_bases("http://cp:3000").unwrap();
        assert!(Upstream::new(plain.clone(), None).is_ok());
        let dir = std::env::temp_dir().join(format!("cg-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let problem = Upstream::new(plain, Some(&empty)).unwrap_err();
        assert!(problem.contains("https://"), "{problem}");
        let secure = parse_bases("https://cp:3000").unwrap();
        let problem = Upstream::new(secure.clone(), Some(&empty)).unwrap_err();
        assert!(problem.contains("no certificate"), "{problem}");
        let problem = Upstream::new(secure, Some(&dir.join("missing.pem"))).unwrap_err();
        assert!(problem.contains("cannot read"), "{problem}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

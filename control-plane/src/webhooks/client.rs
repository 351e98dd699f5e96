//! One webhook request: a POST over a fresh connection to the address the SSRF check
//! approved (never a second resolution), with the `Host` header set from the URL, over TLS
//! for `https` (certificates checked against the system's roots, for the URL's host name).
//! Redirects are not followed. At most [`MAX_KEPT_BODY`] bytes of the answer are read; the
//! rest is never read (the connection is dropped).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, Request, header};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;

use super::ssrf::Target;

/// Most bytes of a remote answer read and kept in the delivery log.
pub const MAX_KEPT_BODY: usize = 1024;

/// The TLS client settings for `https` webhooks: the system's root certificates.
pub fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err("no CA certificate found on this system for https webhooks".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An answer: its status and at most [`MAX_KEPT_BODY`] bytes of its body (lossy UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Sends `body` to `target` at `addr` with `headers`; a transport failure is the error's
/// text. The caller bounds the time.
pub async fn post(
    target: &Target,
    addr: SocketAddr,
    headers: &[(HeaderName, String)],
    body: Bytes,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Answer, String> {
    let mut request = Request::post(target.path.as_str())
        .header(header::HOST, target.authority.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "Checkgate-Webhooks")
        .header(header::CONNECTION, "close");
    for (name, value) in headers {
        let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
        request = request.header(name, value);
    }
    let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    if target.https {
        let tls = tls.ok_or("https is not available: no CA certificates on this system")?;
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| format!("{}: {e}", target.host))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {}: {e}", target.host))?;
        exchange(TokioIo::new(stream), request).await
    } else {
        exchange(TokioIo::new(tcp), request).await
    }
}

async fn exchange<I>(io: I, request: Request<Full<Bytes>>) -> Result<Answer, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    let talk = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut kept = Vec::with_capacity(MAX_KEPT_BODY);
        while kept.len() < MAX_KEPT_BODY {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = MAX_KEPT_BODY - kept.len();
                        kept.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                // The status is what counts; a body cut short is kept as far as it came.
                Some(Err(_)) | None => break,
            }
        }
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&kept).into_owned(),
        })
    };
    let mut talk = std::pin::pin!(talk);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        answer = &mut talk => answer,
        closed = &mut conn => match closed {
            Err(e) => Err(e.to_string()),
            // The connection ended after the answer was handed over: finish reading it.
            Ok(()) => talk.await,
        },
    }
}

//! CSRF defence for cookie-authenticated writes: a state-changing request must carry the
//! `X-Checkgate-Request` header (Checkgate's dashboard already sends it; a cross-site form or
//! simple request cannot, and CORS never allows another origin to add it), and, when it names
//! an `Origin`, that origin must be this server. Requests authenticated by an `Authorization:
//! Bearer` token carry no ambient credential and are exempt.

use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// The header a same-origin client adds to every write.
pub(super) const HEADER: &str = "x-checkgate-request";

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn bearer(headers: &HeaderMap) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "))
}

/// Whether the `Origin` (if any) is this server, as named by `Host`.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), headers.get(HOST).map(|h| h.to_str()))
    else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

pub(super) async fn guard(request: Request, next: Next) -> Response {
    let headers = request.headers();
    if is_write(request.method()) && !bearer(headers) {
        let marked = headers.get(HEADER).is_some_and(|v| !v.is_empty());
        if !marked {
            return ApiError::Forbidden("a write needs the X-Checkgate-Request header".into())
                .into_response();
        }
        if !same_origin(headers) {
            return ApiError::Forbidden("cross-origin writes are refused".into()).into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h));
        h.insert(HOST, HeaderValue::from_static("flags.example.com"));
        h.insert(
            ORIGIN,
            HeaderValue::from_static("https://flags.example.com"),
        );
        assert!(same_origin(&h));
        h.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&h));
        h.insert(ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }
}

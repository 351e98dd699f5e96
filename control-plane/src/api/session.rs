//! Sessions: a random token in an HttpOnly cookie, stored server-side only as its SHA-256, and
//! the `CurrentUser` extractor that turns a request's cookie into a user.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use crate::store::User;

/// The session cookie's name.
pub(super) const COOKIE_NAME: &str = "cg_session";
/// How long a session lasts.
pub(super) const SESSION_TTL_SECONDS: i64 = 7 * 24 * 3600;

/// A new session token: 244 random bits from the OS's generator, hex-encoded.
pub(super) fn new_token() -> String {
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    format!("{}{}", a.simple(), b.simple())
}

/// What the store keeps instead of the token.
pub(super) fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `Set-Cookie` value that starts a session (`max_age` > 0) or ends it (0).
pub(super) fn cookie(token: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value =
        format!("{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    // The token is hex, so the value is always a valid header value.
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("cg_session=; Max-Age=0"))
}

/// Adds a `Set-Cookie` header.
pub(super) fn set_cookie(headers: &mut HeaderMap, value: HeaderValue) {
    headers.append(SET_COOKIE, value);
}

/// The session token from the request's cookies, if any.
pub(super) fn token_from(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// The signed-in user; rejects with 401 when there is no live session.
pub(super) struct CurrentUser(pub User);

impl<S> FromRequestParts<S> for CurrentUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        // A request that presents an `Authorization` credential is exempt from the CSRF check,
        // so its cookie must not count: otherwise any junk bearer string would let a forged
        // cross-site write ride on the victim's session.
        if parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            return Err(ApiError::Unauthorized);
        }
        let token = token_from(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let user = state.store.session_user(&token_hash(token)).await?;
        user.map(CurrentUser).ok_or(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("theme=dark; cg_session=abc123; x=y"),
        );
        assert_eq!(token_from(&h), Some("abc123"));
        let mut empty = HeaderMap::new();
        empty.append(COOKIE, HeaderValue::from_static("cg_session="));
        assert_eq!(token_from(&empty), None);
    }

    #[test]
    fn cookie_attributes() {
        let c = cookie("t", 60, true);
        assert_eq!(
            c.to_str().unwrap(),
            "cg_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        assert!(!cookie("t", 0, false).to_str().unwrap().contains("Secure"));
    }
}

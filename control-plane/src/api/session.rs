//! Sessions: a random token in an HttpOnly cookie, stored server-side only as its HMAC under
//! the session key (derived from `SESSION_SECRET`), and the `CurrentUser` extractor for the
//! routes that need a person rather than any caller.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::caller::Caller;
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

/// The key that turns session tokens into what the store keeps. Keyed, so that rows read out
/// of a database backup cannot be matched against guessed tokens without the secret as well;
/// changing `SESSION_SECRET` ends every session.
#[derive(Clone)]
pub struct SessionKey(Arc<[u8]>);

impl SessionKey {
    /// A key from `SESSION_SECRET` (or the generated secret file).
    pub fn new(secret: &str) -> Self {
        Self(Arc::from(secret.as_bytes()))
    }

    /// What the store keeps instead of the token: HMAC-SHA256(key, token), hex.
    pub(super) fn token_hash(&self, token: &str) -> String {
        hex(&hmac(&self.0, token.as_bytes()))
    }

    /// A key of its own for another use of the secret (`purpose` names it), so that nothing
    /// computed for one use can be passed off as the other: HMAC-SHA256(secret, purpose).
    pub(crate) fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac(&self.0, purpose.as_bytes())
    }
}

/// HMAC-SHA256 of `message` under `key`.
pub(super) fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Lower-case hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
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

/// Every non-empty value of the cookie `name` in the request, in order.
pub(super) fn cookies<'h>(headers: &'h HeaderMap, name: &str) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(n, value)| *n == name && !value.is_empty())
        .map(|(_, value)| value)
}

/// The session token from the request's cookies, if any.
pub(super) fn token_from(headers: &HeaderMap) -> Option<&str> {
    cookies(headers, COOKIE_NAME).next()
}

/// The signed-in user, for routes that need a person (their account, workspace users, API
/// tokens): 401 without a session, 403 for an API token.
pub(super) struct CurrentUser(pub User);

impl<S> FromRequestParts<S> for CurrentUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::User(user) => Ok(Self(user)),
            Caller::Token(_) => Err(ApiError::Forbidden(
                "this needs a signed-in user; API tokens cannot use it".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed_under_the_key() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        // RFC 4231, test case 2.
        let key = SessionKey::new("Jefe");
        assert_eq!(
            key.token_hash("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(
            SessionKey::new("another secret").token_hash("what do ya want for nothing?"),
            key.token_hash("what do ya want for nothing?")
        );
        assert_eq!(format!("{key:?}"), "SessionKey(<redacted>)");
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

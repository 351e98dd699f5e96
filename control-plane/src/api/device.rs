//! Device cookies (OWASP's "slow down online guessing attacks with device cookies"): a browser
//! that signed into an account gets a cookie naming that account, signed by the server, and
//! its later sign-in attempts to that account are throttled per cookie instead of per client
//! address. So failures from an address that many people share (an office, a reverse proxy)
//! cannot lock out a user who signed in from that browser before.
//!
//! The value is `{user id}.{expires, Unix seconds}.{random id}.{HMAC-SHA256, hex}`, the MAC
//! taken over everything before it under a key derived from `SESSION_SECRET` for this purpose
//! alone. Nothing is stored server-side: a cookie is good for its one account until it
//! expires, and changing `SESSION_SECRET` voids them all.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::session::{self, SessionKey};

/// The device cookie's name.
pub(super) const COOKIE_NAME: &str = "cg_device";
/// How long a device cookie is good for after the sign-in that set it.
pub(super) const DEVICE_TTL_SECONDS: i64 = 90 * 24 * 3600;
/// Only the routes that throttle by it receive it.
const COOKIE_PATH: &str = "/api/auth";

/// The key device cookies are signed with.
#[derive(Clone)]
pub(super) struct DeviceKey([u8; 32]);

impl DeviceKey {
    pub(super) fn new(session_key: &SessionKey) -> Self {
        Self(session_key.derive("checkgate device cookie v1"))
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"))
    }

    /// A new device cookie value for `user_id`, good until `now + DEVICE_TTL_SECONDS`.
    pub(super) fn issue(&self, user_id: &str, now: i64) -> String {
        let unsigned = format!(
            "{user_id}.{}.{}",
            now + DEVICE_TTL_SECONDS,
            uuid::Uuid::new_v4().simple()
        );
        let mut mac = self.mac();
        mac.update(unsigned.as_bytes());
        format!("{unsigned}.{}", session::hex(&mac.finalize().into_bytes()))
    }

    /// The device a cookie value proves, if its signature is ours and it has not expired.
    pub(super) fn verify(&self, value: &str, now: i64) -> Option<Device> {
        let (unsigned, signature) = value.rsplit_once('.')?;
        let mut parts = unsigned.split('.');
        let (user_id, expires, id) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || signature.len() != 64 {
            return None;
        }
        let signature = unhex(signature)?;
        let mut mac = self.mac();
        mac.update(unsigned.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&signature).ok()?;
        let expires: i64 = expires.parse().ok()?;
        (now < expires).then(|| Device {
            user_id: user_id.to_owned(),
            id: id.to_owned(),
        })
    }

    /// The device cookie in the request that is good for `user_id`, if there is one.
    pub(super) fn device_for(&self, headers: &HeaderMap, user_id: &str) -> Option<Device> {
        let now = unix_now();
        session::cookies(headers, COOKIE_NAME)
            .filter_map(|value| self.verify(value, now))
            .find(|device| device.user_id == user_id)
    }
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(<redacted>)")
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A browser that signed into an account before, as its device cookie proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Device {
    /// The account it signed into.
    pub(super) user_id: String,
    /// The cookie's random id: failed attempts are counted against it.
    pub(super) id: String,
}

/// Seconds since the Unix epoch.
pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The `Set-Cookie` value that hands a browser its device cookie.
pub(super) fn cookie(value: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let header = format!(
        "{COOKIE_NAME}={value}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict; \
         Max-Age={DEVICE_TTL_SECONDS}{secure}"
    );
    // The value is a UUID, digits and hex, so the header is always valid.
    HeaderValue::from_str(&header).unwrap_or_else(|_| HeaderValue::from_static("cg_device="))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use axum::http::header::COOKIE;

    use super::*;

    const USER: &str = "7d3c1f0e-5a4b-4c2d-9e8f-0a1b2c3d4e5f";

    fn key(secret: &str) -> DeviceKey {
        DeviceKey::new(&SessionKey::new(secret))
    }

    #[test]
    fn a_cookie_proves_its_account_until_it_expires() {
        let k = key("a-session-secret-of-32-characters!");
        let now = 1_800_000_000;
        let value = k.issue(USER, now);
        let device = k.verify(&value, now + 10).unwrap();
        assert_eq!(device.user_id, USER);
        assert_eq!(device.id.len(), 32);
        assert_ne!(
            k.issue(USER, now),
            value,
            "each sign-in gets a cookie of its own"
        );
        assert_eq!(k.verify(&value, now + DEVICE_TTL_SECONDS), None, "expired");
    }

    #[test]
    fn forged_or_foreign_cookies_prove_nothing() {
        let k = key("a-session-secret-of-32-characters!");
        let now = 1_800_000_000;
        let value = k.issue(USER, now);
        let (user, rest) = value.split_once('.').unwrap();
        // Another account's id, a later expiry, a flipped signature bit.
        let other = format!("{}.{rest}", user.replace('7', "8"));
        assert_eq!(k.verify(&other, now), None);
        let mut parts: Vec<&str> = value.split('.').collect();
        let later = (now + 10 * DEVICE_TTL_SECONDS).to_string();
        parts[1] = &later;
        assert_eq!(k.verify(&parts.join("."), now), None);
        let mut flipped = value.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(k.verify(&String::from_utf8(flipped).unwrap(), now), None);
        // Signed under another secret.
        assert_eq!(
            key("another-secret-of-at-least-32-chars").verify(&value, now),
            None
        );
        // Not the shape of a device cookie at all.
        for junk in [
            "",
            ".",
            "a.b.c.d",
            "a.1.c.zz",
            &format!("{USER}.x.y.{}", "0".repeat(64)),
        ] {
            assert_eq!(k.verify(junk, now), None, "{junk:?}");
        }
    }

    #[test]
    fn finds_the_cookie_for_the_account_among_several() {
        let k = key("a-session-secret-of-32-characters!");
        let now = unix_now();
        let mine = k.issue(USER, now);
        let theirs = k.issue("00000000-0000-4000-8000-000000000000", now);
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_str(&format!(
                "cg_device={theirs}; cg_session=s; cg_device={mine}"
            ))
            .unwrap(),
        );
        assert_eq!(k.device_for(&h, USER).unwrap().user_id, USER);
        assert_eq!(k.device_for(&h, "someone-else"), None);
        assert_eq!(format!("{k:?}"), "DeviceKey(<redacted>)");
    }

    #[test]
    fn cookie_attributes() {
        let c = cookie("v", true);
        assert_eq!(
            c.to_str().unwrap(),
            "cg_device=v; Path=/api/auth; HttpOnly; SameSite=Strict; Max-Age=7776000; Secure"
        );
        assert!(!cookie("v", false).to_str().unwrap().contains("Secure"));
    }
}

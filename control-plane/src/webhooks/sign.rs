//! Webhook signatures, both sent when the webhook has a secret:
//!
//! - `X-Checkgate-Signature: sha256=<hex HMAC-SHA256(secret, body)>` — Checkgate's, kept for
//!   existing receivers. It does not cover time, so a captured request can be replayed.
//! - `X-Checkgate-Timestamp: <unix seconds>` and
//!   `X-Checkgate-Signature-256: v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>` — a
//!   receiver recomputes it over the raw body, compares in constant time, and refuses a
//!   timestamp more than a few minutes from its clock (and, to refuse replays within that
//!   window, an `X-Checkgate-Delivery` id it has already seen).

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE: &str = "x-checkgate-signature";
pub const SIGNATURE_256: &str = "x-checkgate-signature-256";
pub const TIMESTAMP: &str = "x-checkgate-timestamp";

fn hmac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    use std::fmt::Write as _;
    // HMAC accepts keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Checkgate's `X-Checkgate-Signature` value: `sha256=<hex>` over the body.
pub fn legacy(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret.as_bytes(), &[body]))
}

/// The `X-Checkgate-Signature-256` value: `v1=<hex>` over `"{timestamp}.{body}"`.
pub fn timestamped(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    format!(
        "v1={}",
        hmac_hex(secret.as_bytes(), &[ts.as_bytes(), b".", body])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_hmac_sha256_test_vectors() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            legacy("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The timestamped one is the same HMAC over "{ts}.{body}".
        assert_eq!(
            timestamped("Jefe", 1, b"x"),
            format!("v1={}", &legacy("Jefe", b"1.x")[7..])
        );
        assert_ne!(timestamped("Jefe", 1, b"x"), timestamped("Jefe", 2, b"x"));
    }
}

//! Who is calling the SDK routes: an SDK key, found by its SHA-256 among the replicated key
//! hashes in memory — no database on the hot path. The key travels as `Authorization: Bearer`
//! (Checkgate's SDKs), `X-API-Key` (OFREP providers) or `?sdk_key=` (browsers' `EventSource`,
//! which cannot send headers); the access log never records a query string.
//!
//! An unknown key is 401 only when the edge knows it holds every key: it is connected and
//! welcomed by the control plane. Before that — no data yet, or serving a snapshot file while
//! the control plane is away, when the key may simply be newer than the file — the answer is
//! 503 with `Retry-After`: SDKs give up for good on 401, and wipe their cache on an empty set.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use checkgate_protocol::frame::SdkKeyKind;
use sha2::{Digest as _, Sha256};

use crate::replica::KeyEntry;
use crate::served::Served;

/// Seconds a client is told to wait when the edge cannot answer yet.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// No key in the request.
    Missing,
    /// A key this edge knows not to exist (or to be revoked).
    Unknown,
    /// The edge cannot tell yet: it has no data, or may be behind.
    NotReady,
}

impl KeyError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => {
                "send an SDK key: Authorization: Bearer <key>, X-API-Key: <key> or ?sdk_key=<key>"
            }
            Self::Unknown => "unknown or revoked SDK key",
            Self::NotReady => "this edge has no flag data for that key yet; retry shortly",
        }
    }
}

/// The SDK key of a request, from its headers or its query string.
pub fn key_from<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map_or(v, |(_, key)| key)
                .trim()
        });
    let api_key = || {
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let in_query = || {
        query?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| *name == "sdk_key")
            .map(|(_, key)| key)
    };
    bearer
        .or_else(api_key)
        .or_else(in_query)
        .filter(|k| !k.is_empty())
}

/// SHA-256 of a key, as the feed carries it.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Authenticates a request's SDK key.
pub fn authenticate(
    served: &Served,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<std::sync::Arc<KeyEntry>, KeyError> {
    let key = key_from(headers, query).ok_or(KeyError::Missing)?;
    match served.replica.key(&hash(key)) {
        Some(entry) => Ok(entry),
        None if served.knows_every_key() => Err(KeyError::Unknown),
        None => Err(KeyError::NotReady),
    }
}

/// Whether a key of this kind may read flag rules.
pub fn reads_rules(kind: SdkKeyKind) -> bool {
    kind == SdkKeyKind::Server
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn the_key_comes_from_a_header_or_the_query_string() {
        let mut h = HeaderMap::new();
        assert_eq!(key_from(&h, Some("a=1&sdk_key=cg_cli_x")), Some("cg_cli_x"));
        assert_eq!(key_from(&h, Some("a=1")), None);
        h.insert("x-api-key", HeaderValue::from_static("cg_srv_y"));
        assert_eq!(key_from(&h, Some("sdk_key=cg_cli_x")), Some("cg_srv_y"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer cg_srv_z"));
        assert_eq!(key_from(&h, None), Some("cg_srv_z"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("cg_srv_raw"));
        assert_eq!(key_from(&h, None), Some("cg_srv_raw"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(key_from(&h, None), None);
    }
}

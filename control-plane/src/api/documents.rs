//! What the versioned documents of the API (flags and segments) share: the version as `ETag`
//! and `If-Match`, how a refused write is answered, and Checkgate's PATCH as a merge written
//! conditional on the version merged onto.

use std::future::Future;

use axum::http::header::IF_MATCH;
use axum::http::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ApiError;
use crate::store::StoreError;

/// How many times a PATCH without `If-Match` merges again when another write lands between
/// its read and its write.
const PATCH_ATTEMPTS: usize = 3;

pub(super) fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// The version named by `If-Match`, if any: `"3"`, `W/"3"` or `3`.
pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse().map(Some).map_err(|_| {
        ApiError::BadRequest("If-Match must be a version, as given in the ETag".into())
    })
}

/// A refused write. Over the environment's automaton cap, the message names the regexes of
/// the document that hold the most (`largest`: their path, from the compiled document).
pub(super) fn write_error(e: StoreError, largest: Option<&str>) -> ApiError {
    match e {
        e @ StoreError::AutomatonCap { .. } => {
            ApiError::Unprocessable(format!("{}: {e}", largest.unwrap_or("rules")))
        }
        other => store_write(other),
    }
}

/// A PATCH's conditional write as [`merge_patch`] takes it: a stale version may merge again.
pub(super) fn patched<T>(
    written: Result<T, StoreError>,
    largest: Option<&str>,
) -> Result<Patched<T>, ApiError> {
    match written {
        Ok(done) => Ok(Patched::Done(done)),
        Err(e @ StoreError::VersionMismatch { .. }) => Ok(Patched::Stale(write_error(e, largest))),
        Err(e) => Err(write_error(e, largest)),
    }
}

pub(super) fn store_write(e: StoreError) -> ApiError {
    match e {
        e @ StoreError::VersionMismatch { .. } => {
            ApiError::PreconditionFailed(format!("{e}; reload it and try again"))
        }
        other => other.into(),
    }
}

/// How a PATCH's conditional write ended.
pub(super) enum Patched<T> {
    Done(T),
    /// Another write landed after the read: the error to answer with if the PATCH does not
    /// merge again.
    Stale(ApiError),
}

/// A PATCH of a stored document (flags and segments): Checkgate's top-level merge — each field
/// given replaces the stored one, `read_only` fields are ignored — written conditional on the
/// version merged onto, so a write in between is never lost. With `If-Match` (`expected`), a
/// document at another version is 412; without it, a write that lands in between makes the
/// PATCH merge again onto the newer version, up to [`PATCH_ATTEMPTS`] times, then 409.
/// `what` names the document in messages; `read` gives its version and document; `write`
/// validates and writes the merged document conditional on the version read.
pub(super) async fn merge_patch<D, T, R, W>(
    what: &str,
    read_only: &[&str],
    expected: Option<u64>,
    patch: &serde_json::Map<String, Value>,
    read: impl Fn() -> R,
    write: impl Fn(D, u64) -> W,
) -> Result<T, ApiError>
where
    D: Serialize + DeserializeOwned,
    R: Future<Output = Result<(u64, D), ApiError>>,
    W: Future<Output = Result<Patched<T>, ApiError>>,
{
    for attempt in 1..=PATCH_ATTEMPTS {
        let (version, current) = read().await?;
        if let Some(expected) = expected
            && expected != version
        {
            return Err(ApiError::PreconditionFailed(format!(
                "{what} is at version {version}, not {expected}; reload it and try again"
            )));
        }
        let mut merged =
            serde_json::to_value(&current).map_err(|e| ApiError::Internal(e.into()))?;
        for (field, value) in patch {
            if !read_only.contains(&field.as_str()) {
                merged[field.as_str()] = value.clone();
            }
        }
        let doc: D =
            serde_json::from_value(merged).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        match write(doc, version).await? {
            Patched::Done(done) => return Ok(done),
            Patched::Stale(_) if expected.is_none() && attempt < PATCH_ATTEMPTS => {}
            Patched::Stale(e) => return Err(e),
        }
    }
    Err(ApiError::Conflict(format!(
        "{what} kept changing; try again"
    )))
}

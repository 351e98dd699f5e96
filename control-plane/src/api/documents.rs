//! What the versioned documents of the API (flags and segments) share: the version as `ETag`
//! and `If-Match`, how a refused write is answered, and Checkgate's PATCH as a merge written
//! conditional on the version merged onto.

use std::convert::Infallible;
use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::header::{ETAG, IF_MATCH};
use axum::http::request::Parts;
use axum::response::{IntoResponseParts, ResponseParts};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use super::ApiError;
use crate::store::StoreError;

/// How many writes a PATCH without `If-Match` tries, merging again onto the newer version each
/// time another write landed between its read and its write (then 409).
const PATCH_ATTEMPTS: usize = 3;

/// A document's version as its `ETag` response header: the version in quotes, `"3"`. In the
/// OpenAPI document, `headers(("ETag" = inline(Etag), description = …))`.
pub(super) struct Etag(pub(super) u64);

impl IntoResponseParts for Etag {
    type Error = Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Infallible> {
        let value = HeaderValue::from_str(&format!("\"{}\"", self.0))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        res.headers_mut().insert(ETAG, value);
        Ok(res)
    }
}

impl utoipa::PartialSchema for Etag {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r#"^"[0-9]+"$"#))
            .into()
    }
}

impl utoipa::ToSchema for Etag {}

/// The `If-Match` request header of a write, as sent; [`IfMatch::version`] reads it, where the
/// handler decides (so a bad one is 400 only after the checks before it).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub(super) struct IfMatch {
    /// The version the write expects, as given in the flag's or segment's `ETag` (`"3"`,
    /// `W/"3"` or `3`); a stale one is 412 and changes nothing, one that is not a version 400.
    #[param(rename = "If-Match", value_type = Option<String>, nullable = false,
        pattern = r#"^(W/)?"?[0-9]{1,19}"?$"#)]
    header: Option<HeaderValue>,
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self {
            header: parts.headers.get(IF_MATCH).cloned(),
        })
    }
}

impl IfMatch {
    /// The version named, if any: `"3"`, `W/"3"` or `3`.
    pub(super) fn version(&self) -> Result<Option<u64>, ApiError> {
        let Some(value) = &self.header else {
            return Ok(None);
        };
        let text = value.to_str().unwrap_or_default().trim();
        let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        text.parse().map(Some).map_err(|_| {
            ApiError::BadRequest("If-Match must be a version, as given in the ETag".into())
        })
    }
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
    for _ in 0..PATCH_ATTEMPTS {
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
            // With `If-Match` the caller asked for that version: 412.
            Patched::Stale(e) if expected.is_some() => return Err(e),
            // Without, merge again onto the newer version; 409 once it keeps losing.
            Patched::Stale(_) => {}
        }
    }
    Err(ApiError::Conflict(format!(
        "{what} kept changing; try again"
    )))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A PATCH whose every write loses its race: `writes` counts the attempts.
    async fn always_stale(expected: Option<u64>, writes: &AtomicUsize) -> ApiError {
        let patch = serde_json::Map::from_iter([("a".to_owned(), Value::from(2))]);
        let read = || async { Ok::<_, ApiError>((7, serde_json::json!({ "a": 1 }))) };
        let write = |_doc: Value, version: u64| {
            writes.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok::<Patched<()>, ApiError>(Patched::Stale(ApiError::PreconditionFailed(format!(
                    "not at {version}"
                ))))
            }
        };
        merge_patch("thing", &[], expected, &patch, read, write)
            .await
            .expect_err("every write was stale")
    }

    #[tokio::test]
    async fn a_patch_without_if_match_merges_again_and_is_409_once_it_keeps_losing() {
        let writes = AtomicUsize::new(0);
        let error = always_stale(None, &writes).await;
        assert!(matches!(error, ApiError::Conflict(_)), "{error:?}");
        assert_eq!(writes.load(Ordering::SeqCst), PATCH_ATTEMPTS);
    }

    #[tokio::test]
    async fn a_patch_with_if_match_that_loses_its_race_is_412_at_once() {
        let writes = AtomicUsize::new(0);
        let error = always_stale(Some(7), &writes).await;
        assert!(
            matches!(error, ApiError::PreconditionFailed(_)),
            "{error:?}"
        );
        assert_eq!(writes.load(Ordering::SeqCst), 1);
    }
}

//! Read your writes, the control plane's half: every write that commits a change to an
//! environment — a flag, a segment, an SDK key, its serving settings, or the environment's
//! deletion — answers with the environment version it committed, in the
//! `X-Checkgate-Version` header (and in the body's `version` where the body is the thing
//! written). A client that sends that number to an edge as `X-Checkgate-Min-Version` is
//! answered from that version or a later one, never from older data
//! (`checkgate_serve::min_version`).

use std::convert::Infallible;

use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponseParts, ResponseParts};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// The response header that carries the version a write committed.
pub(super) const VERSION_HEADER: HeaderName = HeaderName::from_static("x-checkgate-version");

/// The environment version a write committed, as its [`VERSION_HEADER`]. In the OpenAPI
/// document, `headers(("X-Checkgate-Version" = inline(Committed), description = …))`.
pub(super) struct Committed(pub(super) u64);

impl IntoResponseParts for Committed {
    type Error = Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Infallible> {
        res.headers_mut()
            .insert(VERSION_HEADER, HeaderValue::from(self.0));
        Ok(res)
    }
}

impl utoipa::PartialSchema for Committed {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[1-9][0-9]*$"))
            .description(Some(
                "The environment version this write committed. Send it to an edge (or to this \
                 control plane's SDK routes) as `X-Checkgate-Min-Version` to be answered from \
                 this write or a later one.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Committed {}

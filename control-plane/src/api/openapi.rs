//! `GET /api/openapi.json`: the OpenAPI 3.1 document of this API, served as written in
//! `openapi.json`. `tests/api_openapi.rs` keeps it true: every route of the router is in it
//! and everything in it is routed, and real responses validate against its schemas;
//! `scripts/schemathesis.sh` fuzzes a running server against it.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

/// The document.
pub(super) const DOCUMENT: &str = include_str!("openapi.json");

/// Serves the document; public, like the login page.
pub(super) async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT)
}

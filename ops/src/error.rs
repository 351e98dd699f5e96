//! `AppError`: every error an HTTP handler returns, as `{"error":{"code","message"}}` with the
//! right status. Internal errors are logged here and shown to clients only as "internal error".

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use checkgate_protocol::json::ErrorBody;

/// An HTTP handler's failure. The message of the first three is written for the client; the
/// source of `Internal` is logged and never shown.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 404: no such route or resource.
    #[error("{0}")]
    NotFound(String),
    /// 400: the request itself is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 405: the route exists, but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 503: the process cannot answer yet (no data) or for now.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an outage behind us; the client sees only "internal error".
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        if let Self::Internal(source) = &self {
            tracing::error!(cause = %format!("{source:#}"), "request failed");
        }
        (status, Json(ErrorBody::new(code, self.to_string()))).into_response()
    }
}

//! `AppError`: what the operations routes and the shared fallbacks (unknown route, wrong
//! method) answer, as `{"error":{"code","message"}}` with the right status. Each HTTP surface
//! has one error type: this one for these routes, `checkgate_serve::SdkError` for the SDK
//! routes, and the control plane's `ApiError` for its REST API.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use checkgate_protocol::json::ErrorBody;

/// A refusal of the shared routes; its message is written for the client.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 404: no such route.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
}

impl AppError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        (status, Json(ErrorBody::new(code, self.to_string()))).into_response()
    }
}

//! `POST /api/feed`: the change feed's conversation over HTTP, for edges whose changes come
//! over NATS JetStream. Authenticated by the edge token (`Authorization: Bearer cge_…`); the
//! body is one frame of the feed protocol, and the answer the frames a QUIC session would have
//! sent for it (see `crate::feed::exchange`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{Extensions, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use checkgate_feed::nats::control::{CONTENT_TYPE as FEED_TYPE, FLEET_HEADER};
use checkgate_protocol::{HANDSHAKE_MAX_FRAME, decode};

use super::openapi::{BadRequest, Forbidden, UnsupportedFeedBody};
use super::{ApiError, AppState};
use crate::feed::exchange::{self, ExchangeError};
use crate::feed::session::SessionError;
use crate::store::key_hash;

/// The edge token of the `Authorization` header.
fn edge_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Talk to the change feed (edge relays)
///
/// For edges following the feed over NATS JetStream: the body is one frame of the feed
/// protocol (`Hello`, `DigestRequest`, `Resync`, a `Heartbeat` carrying the edge's positions,
/// `Impressions`, `EvaluationCounts` or `Connections` (with the fleet record) — answered with an
/// `InsightsAck` —, or `Close` when the
/// edge stops), and the answer the frames the control plane sends back, each in the protocol's
/// envelope.
/// An answer to `Hello` carries the edge's fleet record in `X-Checkgate-Fleet-Session`; the
/// edge's reports send it back.
#[utoipa::path(post, path = "/api/feed", operation_id = "feedExchange", tag = "edges",
    security(("edgeToken" = [])),
    params(("X-Checkgate-Fleet-Session" = Option<String>, Header,
        description = "The fleet record an answer to `Hello` named (with reports).")),
    request_body(content = Vec<u8>, content_type = "application/vnd.checkgate.feed",
        description = "One frame of the feed protocol, in its envelope."),
    responses(
        (status = 200, content_type = "application/vnd.checkgate.feed", body = Vec<u8>,
            description = "The control plane's frames, each in its envelope.",
            headers(("X-Checkgate-Fleet-Session" = String,
                description = "The edge's fleet record (answers to `Hello`)."))),
        (status = 400, response = BadRequest),
        (status = 401, description = "No edge token, or one that is unknown or revoked.",
            body = checkgate_protocol::json::ErrorBody),
        (status = 403, response = Forbidden),
        (status = 503, description = "Too many edges are fetching whole environments from this \
            instance at once; try again shortly.", body = checkgate_protocol::json::ErrorBody),
        UnsupportedFeedBody,
    ))]
pub(super) async fn exchange(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(token) = edge_token(&headers) else {
        return Err(ApiError::BadCredential(
            "the feed needs an edge token: Authorization: Bearer cge_…".into(),
        ));
    };
    let Some(token) = state
        .store
        .authenticate_edge_token(&key_hash(token))
        .await?
    else {
        return Err(ApiError::BadCredential(
            "unknown or revoked edge token".into(),
        ));
    };
    let declared = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(FEED_TYPE));
    if !declared {
        return Err(ApiError::Rejected {
            status: axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!("the body must be {FEED_TYPE}"),
        });
    }
    let frame = match decode(&body, HANDSHAKE_MAX_FRAME) {
        Ok(Some((frame, used))) if used == body.len() => frame,
        Ok(Some(_)) => {
            return Err(ApiError::BadRequest(
                "the body holds more than one frame".into(),
            ));
        }
        Ok(None) => {
            return Err(ApiError::BadRequest(
                "the body ends inside its frame".into(),
            ));
        }
        Err(e) => return Err(ApiError::BadRequest(e.to_string())),
    };
    let fleet = headers
        .get(FLEET_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| id.len() <= 64);
    // A connection report: stored on the edge's fleet row, answered with its acknowledgement.
    if let checkgate_protocol::Frame::Connections(report) = &frame {
        let ack = crate::feed::connections::store_edge(&state.store, &token, fleet, report).await;
        let body = checkgate_protocol::encode(&ack.into(), checkgate_protocol::DEFAULT_MAX_FRAME)
            .map_err(|e| ApiError::Internal(e.into()))?;
        return Ok(([(CONTENT_TYPE, FEED_TYPE)], body).into_response());
    }
    // Impressions and evaluation counts: stored, answered with their acknowledgement.
    if let Some(exchanged) = exchange::insights(&state.insights, &token, &frame).await {
        return Ok(([(CONTENT_TYPE, FEED_TYPE)], exchanged.body).into_response());
    }
    let address = super::auth::client_address(&state, &extensions, &headers).to_string();
    let exchanged = exchange::exchange(&state.store, &state.feed, token, frame, fleet, &address)
        .await
        .map_err(|e| match e {
            ExchangeError::Refused(why) => ApiError::BadRequest(why),
            e @ ExchangeError::Busy => ApiError::Rejected {
                status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
                message: e.to_string(),
            },
            ExchangeError::Session(SessionError::Store(e)) => e.into(),
            ExchangeError::Session(other) => ApiError::Internal(other.into()),
        })?;
    let mut response = ([(CONTENT_TYPE, FEED_TYPE)], exchanged.body).into_response();
    if let Some(id) = exchanged.fleet
        && let Ok(value) = HeaderValue::from_str(&id)
    {
        response.headers_mut().insert(FLEET_HEADER, value);
    }
    Ok(response)
}

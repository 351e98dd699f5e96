//! The impression routes SDKs call: Checkgate's `POST /api/environments/{env}/impressions`
//! (an SDK key of that environment, server or client) and `POST /api/v1/impressions` (the
//! environment is the key's). The body is Checkgate's: a JSON array of at most 500
//! `{flag_key, user_id?, value, context?, evaluated_at?}`, at most 256 KiB. Every item is
//! checked as the control plane checks it ([`Impression::check`]); one bad item refuses the
//! request (400 naming its index) and nothing of it is queued. Answers 204, also when the
//! queue is full and some were dropped (counted), as an SDK's report must never wait.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use checkgate_protocol::impressions::{Impression, MAX_BATCH_ITEMS};
use serde::Deserialize;
use serde_json::Value;

use crate::keys;
use crate::{HeadersAndBody, SdkError, SdkState, checked_body};

/// Largest body: Checkgate's 256 KiB.
pub const BODY_LIMIT: usize = 256 << 10;

/// How old an impression may be: the control plane's default retention of raw impressions
/// (`IMPRESSIONS_RETENTION_DAYS`); older ones it would refuse.
pub const MAX_AGE_DAYS: i64 = 30;

/// One impression as an SDK sends it. Unknown fields are ignored, as Checkgate did.
#[derive(Debug, Deserialize)]
struct ImpressionBody {
    flag_key: String,
    #[serde(default)]
    user_id: Option<String>,
    value: String,
    #[serde(default)]
    context: Option<Value>,
    #[serde(default)]
    evaluated_at: Option<Value>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Reads one item as an SDK sends it (`evaluated_at` as RFC 3339 or Unix milliseconds,
/// absent: `now`), without checking it; the error names the field. Shared with the control
/// plane's own ingest route.
pub fn read_item(value: Value, now: i64) -> Result<Impression, String> {
    let body: ImpressionBody = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })?;
    let context = match body.context {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => {
            Some(serde_json::to_string(&map).map_err(|e| format!("context: {e}"))?)
        }
        Some(_) => return Err("context must be a JSON object".into()),
    };
    let evaluated_at = match body.evaluated_at {
        None | Some(Value::Null) => now,
        Some(Value::String(text)) => checkgate_core::date::parse_instant(&text)
            .ok_or("evaluated_at must be an RFC 3339 time")?,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or("evaluated_at must be whole Unix milliseconds")?,
        Some(_) => return Err("evaluated_at must be an RFC 3339 time or Unix milliseconds".into()),
    };
    Ok(Impression {
        flag_key: body.flag_key,
        user_id: body.user_id,
        value: body.value,
        context,
        evaluated_at,
    })
}

/// One item, read and checked; the message names its index.
fn item(index: usize, value: Value, now: i64) -> Result<Impression, SdkError> {
    let bad = |message: String| SdkError::bad_request(format!("item {index}: {message}"));
    let item = read_item(value, now).map_err(bad)?;
    item.check(now, now - MAX_AGE_DAYS * 86_400_000)
        .map_err(|e| bad(e.0))?;
    Ok(item)
}

/// Reads a request body into checked impressions.
pub fn parse(body: &[u8], now: i64) -> Result<Vec<Impression>, SdkError> {
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|e| SdkError::bad_request(format!("the body is not JSON: {e}")))?;
    let Value::Array(values) = parsed else {
        return Err(SdkError::bad_request(
            "the body must be a JSON array of impressions",
        ));
    };
    if values.len() > MAX_BATCH_ITEMS {
        return Err(SdkError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "a batch holds at most {MAX_BATCH_ITEMS} items; this one has {}",
                values.len()
            ),
        ));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| item(i, v, now))
        .collect()
}

/// Authenticates, reads and queues; `env` is the path's environment, if any.
fn report(
    state: &SdkState,
    env: Option<&str>,
    query: Option<&str>,
    HeadersAndBody { headers, body }: HeadersAndBody,
) -> Result<StatusCode, SdkError> {
    let caller = keys::authenticate(&state.served, &headers, query)?;
    if env.is_some_and(|env| env != caller.env_id) {
        return Err(SdkError::forbidden(
            "this SDK key is for another environment",
        ));
    }
    let body = checked_body(&headers, body)?;
    let items = parse(&body, now_ms())?;
    if !items.is_empty() {
        state.insights.queue.push(&caller.env_id, items);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/environments/{env}/impressions`.
pub async fn environment(
    State(state): State<SdkState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    request: HeadersAndBody,
) -> Result<StatusCode, SdkError> {
    let env = crate::eval::path_key(path)?;
    report(&state, Some(&env), query.as_deref(), request)
}

/// `POST /api/v1/impressions`.
pub async fn of_key(
    State(state): State<SdkState>,
    RawQuery(query): RawQuery,
    request: HeadersAndBody,
) -> Result<StatusCode, SdkError> {
    report(&state, None, query.as_deref(), request)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn items_are_read_as_checkgate_sends_them() {
        let items = parse(
            br#"[{"flag_key":"f","value":"true","context":{"plan":"pro"},
                  "evaluated_at":"2027-01-15T08:00:00Z","extra":1},
                 {"flag_key":"g","user_id":"u","value":"blue","evaluated_at":1800000000000}]"#,
            NOW,
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].context.as_deref(), Some(r#"{"plan":"pro"}"#));
        assert_eq!(items[1].evaluated_at, NOW);
        assert_eq!(parse(b"[]", NOW).unwrap().len(), 0);
    }

    #[test]
    fn refusals_name_the_item() {
        let e = parse(
            br#"[{"flag_key":"f","value":"1"},{"flag_key":"a b","value":"1"}]"#,
            NOW,
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.starts_with("item 1: flag_key"), "{}", e.message);
        let e = parse(br#"[{"value":"1"}]"#, NOW).unwrap_err();
        assert!(e.message.starts_with("item 0"), "{}", e.message);
        let e = parse(br#"{"flag_key":"f"}"#, NOW).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let many = format!(
            "[{}]",
            vec![r#"{"flag_key":"f","value":"1"}"#; 501].join(",")
        );
        assert_eq!(
            parse(many.as_bytes(), NOW).unwrap_err().status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}

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
use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::keys;
use crate::{HeadersAndBody, SdkError, SdkState, checked_body};

/// Largest body: Checkgate's 256 KiB.
pub const BODY_LIMIT: usize = 256 << 10;

/// How old an impression may be: the control plane's default retention of raw impressions
/// (`IMPRESSIONS_RETENTION_DAYS`); older ones it would refuse.
pub const MAX_AGE_DAYS: i64 = 30;

/// One impression as an SDK sends it. Unknown fields are ignored, as Checkgate did. The context
/// and the time are taken as the body's own text, so no map is built for a context: it is kept
/// as sent.
#[derive(Debug, Deserialize)]
struct ItemBody<'a> {
    flag_key: String,
    #[serde(default)]
    user_id: Option<String>,
    value: String,
    #[serde(default, borrow)]
    context: Option<&'a RawValue>,
    #[serde(default, borrow)]
    evaluated_at: Option<&'a RawValue>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Why a body is not a batch of impressions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body must be a JSON array of impressions")]
    NotArray,
    #[error("a batch holds at most {MAX_BATCH_ITEMS} items; this one has {0}")]
    TooMany(usize),
    #[error("item {index}: {message}")]
    Item { index: usize, message: String },
}

/// `evaluated_at` as sent: an RFC 3339 time or whole Unix milliseconds; null or absent: `now`.
fn evaluated_at(raw: Option<&RawValue>, now: i64) -> Result<i64, String> {
    let Some(raw) = raw else { return Ok(now) };
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => {
            let text: Cow<'_, str> =
                serde_json::from_str(text).map_err(|e| format!("evaluated_at: {e}"))?;
            checkgate_core::date::parse_instant(&text)
                .ok_or_else(|| "evaluated_at must be an RFC 3339 time".into())
        }
        Some(b'-' | b'0'..=b'9') => serde_json::from_str::<i64>(text)
            .map_err(|_| "evaluated_at must be whole Unix milliseconds".into()),
        _ => Err("evaluated_at must be an RFC 3339 time or Unix milliseconds".into()),
    }
}

/// Reads one item's text as an SDK sends it, without checking it; the error names the field.
fn read_item(text: &str, now: i64) -> Result<Impression, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let body: ItemBody<'_> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })?;
    let context = match body.context.map(RawValue::get) {
        None => None,
        Some(text) if text.starts_with('{') => Some(text.to_owned()),
        Some(_) => return Err("context must be a JSON object".into()),
    };
    Ok(Impression {
        flag_key: body.flag_key,
        user_id: body.user_id,
        value: body.value,
        context,
        evaluated_at: evaluated_at(body.evaluated_at, now)?,
    })
}

/// Reads a request body as Checkgate's batch (`evaluated_at` as RFC 3339 or Unix milliseconds,
/// absent: `now`), without checking the items: the edges and the control plane read bodies
/// this one way, and each checks the items against its own limits.
pub fn read_batch(body: &[u8], now: i64) -> Result<Vec<Impression>, BatchError> {
    let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => BatchError::NotArray,
        _ => BatchError::NotJson(e.to_string()),
    })?;
    if items.len() > MAX_BATCH_ITEMS {
        return Err(BatchError::TooMany(items.len()));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            read_item(raw.get(), now).map_err(|message| BatchError::Item { index, message })
        })
        .collect()
}

/// Reads a request body into checked impressions.
pub fn parse(body: &[u8], now: i64) -> Result<Vec<Impression>, SdkError> {
    let items = read_batch(body, now).map_err(|e| match e {
        BatchError::TooMany(_) => SdkError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            e.to_string(),
        ),
        e => SdkError::bad_request(e.to_string()),
    })?;
    for (index, item) in items.iter().enumerate() {
        item.check(now, now - MAX_AGE_DAYS * 86_400_000)
            .map_err(|e| SdkError::bad_request(format!("item {index}: {}", e.0)))?;
    }
    Ok(items)
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
    fn contexts_are_kept_as_sent_and_times_read_either_way() {
        let items = parse(
            br#"[{"flag_key":"f","value":"1","context":{ "b": [1, {"c": "\u00e9"}], "a": null }},
                 {"flag_key":"f","value":"1","context":null,"user_id":null,"evaluated_at":null},
                 {"flag_key":"f","value":"1","evaluated_at":"2027-01-15T08:00:00.5+01:00"}]"#,
            NOW,
        )
        .unwrap();
        assert_eq!(
            items[0].context.as_deref(),
            Some(r#"{ "b": [1, {"c": "\u00e9"}], "a": null }"#)
        );
        assert_eq!(items[1].context, None);
        assert_eq!(items[1].user_id, None);
        assert_eq!(items[1].evaluated_at, NOW);
        // An hour ahead of UTC: NOW (08:00 UTC) less an hour, plus half a second.
        assert_eq!(items[2].evaluated_at, NOW - 3_600_000 + 500);
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
        assert_eq!(e.message, "the body must be a JSON array of impressions");
        let e = parse(br#"[{"flag_key":"f","value":"1"},"#, NOW).unwrap_err();
        assert!(
            e.message.starts_with("the body is not JSON"),
            "{}",
            e.message
        );
        for (item, message) in [
            (r#""context":[1]"#, "item 0: context must be a JSON object"),
            (r#""context":"x""#, "item 0: context must be a JSON object"),
            (
                r#""evaluated_at":1.5"#,
                "item 0: evaluated_at must be whole Unix milliseconds",
            ),
            (
                r#""evaluated_at":true"#,
                "item 0: evaluated_at must be an RFC 3339 time or Unix milliseconds",
            ),
            (
                r#""evaluated_at":"yesterday""#,
                "item 0: evaluated_at must be an RFC 3339 time",
            ),
        ] {
            let body = format!(r#"[{{"flag_key":"f","value":"1",{item}}}]"#);
            let e = parse(body.as_bytes(), NOW).unwrap_err();
            assert_eq!(
                (e.status, e.message.as_str()),
                (StatusCode::BAD_REQUEST, message)
            );
        }
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

//! What a webhook is sent: the event name of an audited change (Checkgate's names for flags,
//! the same pattern for the rest) and the JSON body, in Checkgate's shape or as a
//! Slack-compatible message. Pure: no I/O, no clock (the caller passes the time).

use serde_json::{Value, json};

/// Checkgate's body, with the change's before and after documents.
pub const FORMAT_CHECKGATE: &str = "checkgate";
/// `{"text": "…"}`, which Slack (and Mattermost, Discord's Slack endpoint…) accept.
pub const FORMAT_SLACK: &str = "slack";
/// Every body format a webhook may ask for.
pub const FORMATS: [&str; 2] = [FORMAT_CHECKGATE, FORMAT_SLACK];

/// The test event sent by `POST …/webhooks/{id}/test`.
pub const TEST_EVENT: &str = "webhook.test";
/// Raised to an environment's other webhooks when one keeps failing.
pub const FAILING_EVENT: &str = "webhook.failing";

/// The event a webhook receives for an audited action, e.g. `flag.update` → `flag.updated`.
/// A scheduled change is applied with the action `flag.schedule_apply`, which is Checkgate's
/// `flag.scheduled_change_applied`.
pub fn event_name(action: &str) -> String {
    let known = match action {
        "flag.schedule_apply" => Some("flag.scheduled_change_applied"),
        "flag.promote" => Some("flag.promoted"),
        "sdk_key.revoke" => Some("sdk_key.revoked"),
        "environment.settings" => Some("environment.settings_updated"),
        _ => None,
    };
    if let Some(name) = known {
        return name.to_owned();
    }
    match action.rsplit_once('.') {
        Some((noun, verb)) if verb.ends_with('e') => format!("{noun}.{verb}d"),
        Some((noun, verb)) => format!("{noun}.{verb}ed"),
        None => action.to_owned(),
    }
}

/// Who caused an event.
#[derive(Debug, Clone)]
pub struct EventActor<'a> {
    pub kind: &'a str,
    pub id: Option<&'a str>,
    pub name: &'a str,
}

/// Everything a body is made of.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub event: &'a str,
    pub event_id: &'a str,
    pub environment_id: &'a str,
    pub environment_key: &'a str,
    pub environment_name: &'a str,
    pub project_id: &'a str,
    pub actor: EventActor<'a>,
    /// `(kind, key)` of what changed, for a change.
    pub target: Option<(&'a str, &'a str)>,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
    /// The environment version the change committed, for a change.
    pub version: Option<u64>,
    /// Further data, for an event that is not a change.
    pub data: Option<Value>,
    /// When it happened, in ms since the Unix epoch.
    pub at_ms: i64,
}

fn parsed(doc: Option<&str>) -> Value {
    doc.and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null)
}

/// The body for `format` (an unknown format gets Checkgate's).
pub fn body(format: &str, event: &Event<'_>) -> String {
    if format == FORMAT_SLACK {
        return slack(event).to_string();
    }
    let before = parsed(event.before);
    let after = parsed(event.after);
    let is_flag = event.target.is_some_and(|(kind, _)| kind == "flag");
    let flag_key = event.target.filter(|_| is_flag).map(|(_, key)| key);
    json!({
        "event": event.event,
        "id": event.event_id,
        "environment_id": event.environment_id,
        "environment": {
            "id": event.environment_id,
            "key": event.environment_key,
            "name": event.environment_name,
        },
        "project": { "id": event.project_id },
        "flag_key": flag_key,
        "flag": if is_flag { if after.is_null() { before.clone() } else { after.clone() } } else { Value::Null },
        "target": event.target.map(|(kind, key)| json!({"kind": kind, "key": key})),
        "actor": {"kind": event.actor.kind, "id": event.actor.id, "name": event.actor.name},
        "actor_email": (event.actor.kind == "user").then_some(event.actor.name),
        "before": before,
        "after": after,
        "version": event.version,
        "data": event.data.clone().unwrap_or(Value::Null),
        "metadata": {},
        // Checkgate sent unix seconds as a string; kept, with the milliseconds beside it.
        "timestamp": (event.at_ms / 1000).to_string(),
        "occurred_at_ms": event.at_ms,
    })
    .to_string()
}

fn slack(event: &Event<'_>) -> Value {
    let what = event
        .target
        .map(|(kind, key)| format!(" {kind} `{key}`"))
        .unwrap_or_default();
    let version = event
        .version
        .map(|v| format!(" (version {v})"))
        .unwrap_or_default();
    json!({
        "text": format!(
            "[{}] {}{} by {}{}",
            event.environment_key, event.event, what, event.actor.name, version
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn actions_map_to_checkgate_event_names() {
        for (action, event) in [
            ("flag.create", "flag.created"),
            ("flag.update", "flag.updated"),
            ("flag.delete", "flag.deleted"),
            ("flag.promote", "flag.promoted"),
            ("flag.schedule_apply", "flag.scheduled_change_applied"),
            ("segment.create", "segment.created"),
            ("segment.update", "segment.updated"),
            ("segment.delete", "segment.deleted"),
            ("sdk_key.create", "sdk_key.created"),
            ("sdk_key.revoke", "sdk_key.revoked"),
            ("environment.settings", "environment.settings_updated"),
            ("environment.delete", "environment.deleted"),
        ] {
            assert_eq!(event_name(action), event, "{action}");
        }
    }

    fn sample<'a>() -> Event<'a> {
        Event {
            event: "flag.updated",
            event_id: "e1",
            environment_id: "env-1",
            environment_key: "production",
            environment_name: "Production",
            project_id: "p1",
            actor: EventActor {
                kind: "user",
                id: Some("u1"),
                name: "ada@example.com",
            },
            target: Some(("flag", "new-ui")),
            before: Some(r#"{"key":"new-ui","is_enabled":false}"#),
            after: Some(r#"{"key":"new-ui","is_enabled":true}"#),
            version: Some(7),
            data: None,
            at_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn checkgate_body_keeps_its_fields_and_adds_before_after_and_version() {
        let body: Value = serde_json::from_str(&body(FORMAT_CHECKGATE, &sample())).unwrap();
        assert_eq!(body["event"], "flag.updated");
        assert_eq!(body["environment_id"], "env-1");
        assert_eq!(body["flag_key"], "new-ui");
        assert_eq!(body["flag"]["is_enabled"], true);
        assert_eq!(body["actor_email"], "ada@example.com");
        assert_eq!(body["timestamp"], "1700000000");
        assert_eq!(body["before"]["is_enabled"], false);
        assert_eq!(body["version"], 7);
        assert_eq!(body["environment"]["key"], "production");
    }

    #[test]
    fn slack_body_is_one_line_of_text() {
        let body: Value = serde_json::from_str(&body(FORMAT_SLACK, &sample())).unwrap();
        assert_eq!(
            body,
            json!({"text": "[production] flag.updated flag `new-ui` by ada@example.com (version 7)"})
        );
    }
}

//! Webhooks of an environment, with Checkgate's paths and shapes: `GET/POST
//! /api/environments/{env}/webhooks` `{name, url, secret?, enabled?}`, `PATCH/DELETE
//! …/webhooks/{id}`, `GET …/webhooks/{id}/deliveries`, and `POST …/webhooks/{id}/test`.
//! Viewers of the project read; its admins write. A secret is sealed under the master key
//! before it is stored and never shown again: answers say only `has_secret`. The URL is sealed
//! too (a chat service's incoming-webhook URL carries its token in its path): project admins
//! see it whole, opened for the answer, everyone else its scheme and host. So a server without
//! a master key stores no webhook (409). The URL must be `http(s)` (422 otherwise); where it
//! may lead is decided at each delivery (see `crate::webhooks::ssrf`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{check_id, in_environment, project_role};
use super::caller::Caller;
use super::openapi::{
    BadRequest, Conflict, Forbidden, JsonBodyRefused, NotFound, Unauthorized, Unprocessable,
};
use super::params::EnvironmentPath;
use super::time::Timestamp;
use super::{ApiError, AppState, Json, Path};
use crate::store::webhooks::{Delivery, SealedField, StoredUrl};
use crate::store::{Role, Webhook, WebhookChanges};
use crate::vault::MasterKey;
use crate::webhooks::{event, ssrf};

/// Longest webhook name, and longest secret.
const MAX_NAME: usize = 200;
const MAX_SECRET: usize = 512;
/// Deliveries listed, newest first.
const DELIVERIES_LISTED: u32 = 100;

/// `/api/environments/{env}/webhooks/{id}…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct WebhookPath {
    /// The environment's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub env: String,
    /// The webhook's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub id: String,
}

/// The body a webhook is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum WebhookFormat {
    /// Checkgate's JSON event.
    Checkgate,
    /// `{"text": "…"}`, for Slack-compatible incoming webhooks.
    Slack,
}

impl WebhookFormat {
    fn as_str(self) -> &'static str {
        match self {
            Self::Checkgate => event::FORMAT_CHECKGATE,
            Self::Slack => event::FORMAT_SLACK,
        }
    }
}

/// A webhook: never its secret, only whether it has one.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Webhook)]
#[serde(deny_unknown_fields)]
pub(super) struct WebhookView {
    #[schema(format = "uuid")]
    id: String,
    #[schema(format = "uuid")]
    environment_id: String,
    name: String,
    /// Whole for project admins; for other callers only the scheme and host, the rest (which
    /// may carry a token) replaced by `…`.
    url: String,
    /// `checkgate` or `slack`.
    format: String,
    enabled: bool,
    /// Whether requests are signed; the secret itself is never shown.
    has_secret: bool,
    /// Failed attempts since the last delivered one.
    consecutive_failures: u64,
    /// Whether `webhook.failing` was raised for the current run of failures.
    failing: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl WebhookView {
    /// `hook` as a caller sees it: its URL whole for a project admin (`whole`), opened under
    /// `key`, else only its scheme and host. A URL that does not open (a damaged row) is shown
    /// as to anyone else, and logged.
    fn of(hook: &Webhook, whole: bool, key: Option<&MasterKey>) -> Self {
        let url = match whole.then(|| crate::vault::open_url(key, &hook.id, &hook.url)) {
            Some(Ok(url)) => url.expose().to_owned(),
            Some(Err(e)) => {
                tracing::error!(webhook = %hook.id, cause = %e, "a webhook's URL does not open");
                hook.url.shown()
            }
            None => hook.url.shown(),
        };
        Self {
            id: hook.id.clone(),
            environment_id: hook.environment_id.clone(),
            name: hook.name.clone(),
            url,
            format: hook.format.clone(),
            enabled: hook.enabled,
            has_secret: hook.secret.is_some(),
            consecutive_failures: hook.consecutive_failures,
            failing: hook.failing,
            created_at: Timestamp::from_ms(hook.created_at),
            updated_at: Timestamp::from_ms(hook.updated_at),
        }
    }
}

/// A new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewWebhook {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// `http://` or `https://`; stored encrypted.
    #[schema(min_length = 1, max_length = 2048)]
    url: String,
    /// Signs each request (see the README); stored encrypted, never shown again.
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 512)]
    secret: Option<String>,
    /// Default true.
    #[serde(default)]
    enabled: Option<bool>,
    /// Default `checkgate`.
    #[serde(default)]
    format: Option<WebhookFormat>,
}

/// Changes to a webhook; each field given replaces the stored one. `secret: null` removes the
/// secret.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WebhookPatch {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2048)]
    url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 512)]
    secret: Option<Option<String>>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    format: Option<WebhookFormat>,
}

/// A field that is present: `Some(value)`, where the value may be `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// One delivery and its last attempt.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
#[serde(deny_unknown_fields)]
pub(super) struct DeliveryView {
    #[schema(format = "uuid")]
    id: String,
    #[schema(format = "uuid")]
    webhook_id: String,
    /// `flag.updated`, `webhook.test`, …
    event: String,
    #[schema(format = "uuid")]
    event_id: String,
    /// `pending` (waiting for its next attempt), `delivered` or `failed`.
    state: String,
    /// Attempts made so far.
    attempts: u64,
    /// The last answer's status; null when none came.
    #[schema(required = true)]
    status_code: Option<u16>,
    #[schema(required = true)]
    latency_ms: Option<u64>,
    /// Why the last attempt failed.
    #[schema(required = true)]
    error: Option<String>,
    /// At most 1 KiB of the last answer's body.
    #[schema(required = true)]
    response_body: Option<String>,
    created_at: Timestamp,
    /// When the next attempt is due, while pending.
    #[schema(required = true)]
    next_attempt_at: Option<Timestamp>,
    #[schema(required = true)]
    finished_at: Option<Timestamp>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        let pending = d.state == crate::store::webhooks::PENDING;
        Self {
            id: d.id,
            webhook_id: d.webhook_id,
            event: d.event,
            event_id: d.event_id,
            state: d.state,
            attempts: d.attempts,
            status_code: d.status_code,
            latency_ms: d.latency_ms,
            error: d.error,
            response_body: d.response_body,
            created_at: Timestamp::from_ms(d.created_at),
            next_attempt_at: pending.then(|| Timestamp::from_ms(d.next_attempt_at)),
            finished_at: d.finished_at.map(Timestamp::from_ms),
        }
    }
}

/// The test event's delivery.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TestQueued {
    /// The delivery to look for in `…/deliveries`.
    #[schema(format = "uuid")]
    delivery_id: String,
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::Unprocessable(format!(
            "name: must be 1 to {MAX_NAME} characters"
        )));
    }
    Ok(name.to_owned())
}

/// The master key, or 409: without one nothing of a webhook can be stored sealed.
fn master_key(state: &AppState) -> Result<&MasterKey, ApiError> {
    state.master_key.as_deref().ok_or_else(|| {
        ApiError::Conflict(
            "this server has no CHECKGATE_MASTER_KEY, so it cannot store webhooks (their URLs \
             and secrets are stored encrypted)"
                .into(),
        )
    })
}

/// Checks a URL for webhook `id` and seals it: 422 when it is not `http(s)`, 409 without a
/// master key.
fn seal_url(state: &AppState, id: &str, url: &str) -> Result<StoredUrl, ApiError> {
    let url = url.trim();
    ssrf::parse(url).map_err(|e| ApiError::Unprocessable(format!("url: {e}")))?;
    Ok(crate::vault::seal_url(master_key(state)?, id, url))
}

/// Seals a new secret for webhook `id`: 422 when empty or too long, 409 when this server has
/// no master key to seal it with.
fn seal_secret(state: &AppState, id: &str, secret: &str) -> Result<String, ApiError> {
    if secret.is_empty() || secret.chars().count() > MAX_SECRET {
        return Err(ApiError::Unprocessable(format!(
            "secret: must be 1 to {MAX_SECRET} characters"
        )));
    }
    let context = crate::vault::context(SealedField::Secret, id);
    Ok(master_key(state)?.seal(&context, secret))
}

/// An environment's webhooks
#[utoipa::path(get, path = "/api/environments/{env}/webhooks", operation_id = "listWebhooks",
    tag = "webhooks", params(EnvironmentPath),
    responses(
        (status = 200, body = [WebhookView], description = "The webhooks, oldest first."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(EnvironmentPath { env }): Path<EnvironmentPath>,
) -> Result<impl IntoResponse, ApiError> {
    let environment = in_environment(&state, &caller, &env, Role::Viewer).await?;
    let (_, role) = project_role(&state, &caller, &environment.project_id).await?;
    let hooks = state.store.webhooks(&env).await?;
    let key = state.master_key.as_deref();
    let views: Vec<WebhookView> = hooks
        .iter()
        .map(|hook| WebhookView::of(hook, role >= Role::Admin, key))
        .collect();
    Ok(axum::Json(views))
}

/// Create a webhook (project admins)
///
/// 422 when the URL is not `http(s)` or a field is out of bounds; 409 when this server has no
/// master key (the URL and the secret are stored encrypted).
#[utoipa::path(post, path = "/api/environments/{env}/webhooks", operation_id = "createWebhook",
    tag = "webhooks", params(EnvironmentPath),
    request_body(content = NewWebhook, example = json!({
        "name": "Deploy bot", "url": "https://hooks.example.com/checkgate", "secret": "a-long-random-secret"
    })),
    responses(
        (status = 201, body = WebhookView, description = "The webhook."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        JsonBodyRefused,
        (status = 422, response = Unprocessable),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(EnvironmentPath { env }): Path<EnvironmentPath>,
    body: Result<Json<NewWebhook>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    let environment = in_environment(&state, &caller, &env, Role::Admin).await?;
    let Json(body) = body?;
    let id = uuid::Uuid::new_v4().to_string();
    let hook = Webhook {
        name: check_name(&body.name)?,
        url: seal_url(&state, &id, &body.url)?,
        secret: body
            .secret
            .as_deref()
            .map(|s| seal_secret(&state, &id, s))
            .transpose()?,
        id,
        environment_id: env,
        format: body
            .format
            .unwrap_or(WebhookFormat::Checkgate)
            .as_str()
            .to_owned(),
        enabled: body.enabled.unwrap_or(true),
        consecutive_failures: 0,
        failing: false,
        created_at: 0,
        updated_at: 0,
    };
    let created = state
        .store
        .create_webhook(&caller.actor(), &environment.project_id, &hook)
        .await?;
    let view = WebhookView::of(&created, true, state.master_key.as_deref());
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// Change a webhook (project admins)
///
/// 422 when a new URL is not `http(s)` or a field is out of bounds; 409 when a new URL or
/// secret is given and this server has no master key.
#[utoipa::path(patch, path = "/api/environments/{env}/webhooks/{id}",
    operation_id = "updateWebhook", tag = "webhooks", params(WebhookPath),
    request_body(content = WebhookPatch, example = json!({"enabled": false})),
    responses(
        (status = 200, body = WebhookView, description = "The webhook."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        JsonBodyRefused,
        (status = 422, response = Unprocessable),
    ))]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(WebhookPath { env, id }): Path<WebhookPath>,
    body: Result<Json<WebhookPatch>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    let environment = in_environment(&state, &caller, &env, Role::Admin).await?;
    check_id("webhook", &id)?;
    let Json(body) = body?;
    let changes = WebhookChanges {
        name: body.name.as_deref().map(check_name).transpose()?,
        url: body
            .url
            .as_deref()
            .map(|url| seal_url(&state, &id, url))
            .transpose()?,
        format: body.format.map(|f| f.as_str().to_owned()),
        enabled: body.enabled,
        secret: match body.secret {
            None => None,
            Some(None) => Some(None),
            Some(Some(secret)) => Some(Some(seal_secret(&state, &id, &secret)?)),
        },
    };
    let updated = state
        .store
        .update_webhook(&caller.actor(), &environment.project_id, &env, &id, changes)
        .await?;
    Ok(axum::Json(WebhookView::of(
        &updated,
        true,
        state.master_key.as_deref(),
    )))
}

/// Delete a webhook and its delivery log (project admins)
#[utoipa::path(delete, path = "/api/environments/{env}/webhooks/{id}",
    operation_id = "deleteWebhook", tag = "webhooks", params(WebhookPath),
    responses(
        (status = 204, description = "Done; no body."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(WebhookPath { env, id }): Path<WebhookPath>,
) -> Result<impl IntoResponse, ApiError> {
    let environment = in_environment(&state, &caller, &env, Role::Admin).await?;
    check_id("webhook", &id)?;
    state
        .store
        .delete_webhook(&caller.actor(), &environment.project_id, &env, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's deliveries
///
/// The last 100, newest first, each with its last attempt's outcome.
#[utoipa::path(get, path = "/api/environments/{env}/webhooks/{id}/deliveries",
    operation_id = "listWebhookDeliveries", tag = "webhooks", params(WebhookPath),
    responses(
        (status = 200, body = [DeliveryView], description = "The deliveries."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(WebhookPath { env, id }): Path<WebhookPath>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    check_id("webhook", &id)?;
    state.store.webhook(&env, &id).await?;
    let deliveries = state
        .store
        .webhook_deliveries(&id, DELIVERIES_LISTED)
        .await?;
    Ok(axum::Json(
        deliveries
            .into_iter()
            .map(DeliveryView::from)
            .collect::<Vec<_>>(),
    ))
}

/// Send a test event (project admins)
///
/// Queues a `webhook.test` event for this webhook (even a disabled one is sent it once it is
/// enabled); its outcome shows in the deliveries.
#[utoipa::path(post, path = "/api/environments/{env}/webhooks/{id}/test",
    operation_id = "testWebhook", tag = "webhooks", params(WebhookPath),
    responses(
        (status = 202, body = TestQueued, description = "Queued."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(WebhookPath { env, id }): Path<WebhookPath>,
) -> Result<impl IntoResponse, ApiError> {
    let environment = in_environment(&state, &caller, &env, Role::Admin).await?;
    check_id("webhook", &id)?;
    let delivery_id = state
        .store
        .enqueue_webhook_test(&caller.actor(), &environment.project_id, &env, &id)
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(TestQueued { delivery_id })))
}

//! SDK keys: `GET/POST /api/projects/{id}/keys`, `DELETE /api/projects/{id}/keys/{key}`. A key
//! is shown once, in the answer that creates it; lists show only its prefix.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{check_id, in_environment, in_project};
use super::caller::Caller;
use super::committed::Committed;
use super::openapi::{BadRequest, Forbidden, JsonBodyRefused, NotFound, Unauthorized};
use super::params::{ProjectPath, SdkKeyPath};
use super::time::Timestamp;
use super::{ApiError, AppState, Json, Path};
use crate::store::{KeyKind, Role, SdkKey};
use checkgate_protocol::Secret;

/// An SDK key, as lists show it: by its prefix, never the key itself.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SdkKey)]
#[serde(deny_unknown_fields)]
pub(super) struct SdkKeyView {
    #[schema(format = "uuid")]
    id: String,
    name: String,
    #[schema(inline)]
    kind: KeyKind,
    /// The key's first characters and `…`, e.g. `cg_srv_1a2b3c…`.
    prefix: String,
    #[schema(format = "uuid")]
    environment_id: String,
    environment_name: String,
    /// When it was created.
    created_at: Timestamp,
    /// When it was revoked; null while it works.
    #[schema(required = true)]
    revoked_at: Option<Timestamp>,
}

impl From<&SdkKey> for SdkKeyView {
    fn from(k: &SdkKey) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            kind: k.kind,
            prefix: format!("{}…", k.prefix),
            environment_id: k.environment_id.clone(),
            environment_name: k.environment_name.clone(),
            created_at: Timestamp::from_ms(k.created_at),
            revoked_at: k.revoked_at.map(Timestamp::from_ms),
        }
    }
}

/// A new SDK key, with the key itself: the only answer that ever shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SdkKeyCreated {
    #[serde(flatten)]
    view: SdkKeyView,
    /// The key itself, shown only here.
    #[schema(value_type = String, pattern = "^cg_(srv|cli)_[0-9a-f]{64}$")]
    key: Secret,
    /// The environment version that carries the key to edges (also `X-Checkgate-Version`):
    /// an edge asked with `X-Checkgate-Min-Version` at least this accepts the key.
    #[schema(minimum = 1)]
    environment_version: u64,
}

/// A project's SDK keys
#[utoipa::path(get, path = "/api/projects/{id}/keys", operation_id = "listSdkKeys", tag = "keys",
    params(ProjectPath),
    responses(
        (status = 200, body = [SdkKeyView], description = "The keys, by prefix only."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(ProjectPath { id }): Path<ProjectPath>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &id, Role::Viewer).await?;
    Ok(axum::Json(
        state
            .store
            .sdk_keys(&id)
            .await?
            .iter()
            .map(SdkKeyView::from)
            .collect::<Vec<_>>(),
    ))
}

/// A new SDK key.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = CreateSdkKey)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    /// 1–100 characters once trimmed.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
    #[schema(format = "uuid")]
    environment_id: String,
    /// `server` (default: may read rules) or `client` (values only).
    #[serde(default)]
    #[schema(schema_with = create_key_kind)]
    kind: Option<String>,
}

/// `CreateKey::kind`'s schema: the handler reads a string (to word its own 400), the document
/// names the values it accepts.
fn create_key_kind() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([Some("server"), Some("client"), None]))
        .description(Some(
            "`server` (default: may read rules) or `client` (values only).",
        ))
        .build()
}

/// Create an SDK key (project admins)
#[utoipa::path(post, path = "/api/projects/{id}/keys", operation_id = "createSdkKey", tag = "keys",
    params(ProjectPath),
    request_body = CreateKey,
    responses(
        (status = 201, body = SdkKeyCreated,
            description = "The key; `key` is shown here and never again.",
            headers(("X-Checkgate-Version" = inline(Committed),
                description = "The environment version this write committed."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        JsonBodyRefused,
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(ProjectPath { id: project }): Path<ProjectPath>,
    body: Result<Json<CreateKey>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &project, Role::Admin).await?;
    let Json(body) = body?;
    check_id("environment", &body.environment_id)?;
    let env = in_environment(&state, &caller, &body.environment_id, Role::Admin).await?;
    if env.project_id != project {
        return Err(ApiError::BadRequest(
            "the environment belongs to another project".into(),
        ));
    }
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "name must be 1 to 100 characters".into(),
        ));
    }
    let kind = match body.kind.as_deref() {
        None => KeyKind::Server,
        Some(k) => KeyKind::parse(k).ok_or_else(|| {
            ApiError::BadRequest(format!("kind must be \"server\" or \"client\", not {k:?}"))
        })?,
    };
    let created = state
        .store
        .create_sdk_key(&caller.actor(), &env.id, name, kind)
        .await?;
    let out = SdkKeyCreated {
        view: SdkKeyView::from(&created.key),
        key: Secret::new(created.secret),
        environment_version: created.version,
    };
    Ok((
        StatusCode::CREATED,
        Committed(created.version),
        axum::Json(out),
    ))
}

/// Revoke an SDK key (project admins)
#[utoipa::path(delete, path = "/api/projects/{id}/keys/{key}", operation_id = "revokeSdkKey",
    tag = "keys", params(SdkKeyPath),
    responses(
        (status = 204, description = "Done; no body.",
            headers(("X-Checkgate-Version" = inline(Committed),
                description = "The environment version this write committed."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(SdkKeyPath { id: project, key }): Path<SdkKeyPath>,
) -> Result<impl IntoResponse, ApiError> {
    // Checkgate answered 500 here, every time.
    in_project(&state, &caller, &project, Role::Admin).await?;
    check_id("key", &key)?;
    let version = state
        .store
        .revoke_sdk_key(&caller.actor(), &project, &key)
        .await?;
    Ok((StatusCode::NO_CONTENT, Committed(version), ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_serializes_its_secret_but_never_debugs_it() {
        let key = SdkKey {
            id: "0b7c2a3e-7d1f-4c55-9a53-2d8e1f0a6b4c".into(),
            environment_id: "5f1d8c2b-3a4e-4b6f-8c7d-9e0f1a2b3c4d".into(),
            environment_name: "Production".into(),
            name: "web".into(),
            kind: KeyKind::Client,
            prefix: "cg_cli_1a2b3c".into(),
            created_at: 0,
            revoked_at: None,
        };
        let secret = format!("cg_cli_{}", "ab".repeat(32));
        let created = SdkKeyCreated {
            view: SdkKeyView::from(&key),
            key: Secret::new(secret.clone()),
            environment_version: 4,
        };
        assert!(!format!("{created:?}").contains(&secret));
        let json = serde_json::to_value(&created).unwrap();
        assert_eq!(json["key"], secret.as_str());
        assert_eq!(json["kind"], "client");
        assert_eq!(json["prefix"], "cg_cli_1a2b3c…");
        assert_eq!(json["revoked_at"], serde_json::Value::Null);
        assert_eq!(json["created_at"], "1970-01-01T00:00:00.000Z");
        assert_eq!(json["environment_version"], 4);
    }
}

//! SDK keys: `GET/POST /api/projects/{p}/keys`, `DELETE /api/projects/{p}/keys/{id}`. A key is
//! shown once, in the answer that creates it; lists show only its prefix.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{check_id, in_environment, in_project};
use super::caller::Caller;
use super::time::rfc3339;
use super::{ApiError, AppState, Json, Path};
use crate::store::{KeyKind, Role, SdkKey};

fn key_json(k: &SdkKey) -> Value {
    json!({
        "id": k.id, "name": k.name, "kind": k.kind.as_str(), "prefix": format!("{}…", k.prefix),
        "environment_id": k.environment_id, "environment_name": k.environment_name,
        "created_at": rfc3339(k.created_at), "revoked_at": k.revoked_at.map(rfc3339),
    })
}

/// `GET /api/projects/{p}/keys`.
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &project, Role::Viewer).await?;
    Ok(axum::Json(
        state
            .store
            .sdk_keys(&project)
            .await?
            .iter()
            .map(key_json)
            .collect::<Vec<_>>(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    name: String,
    environment_id: String,
    /// `server` (the default, as in Checkgate) or `client`.
    #[serde(default)]
    kind: Option<String>,
}

/// `POST /api/projects/{p}/keys`: project admins. The answer's `key` is the only time the key
/// is ever shown.
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
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
    let (key, secret) = state
        .store
        .create_sdk_key(&caller.actor(), &env.id, name, kind)
        .await?;
    let mut out = key_json(&key);
    out["key"] = Value::String(secret);
    Ok((StatusCode::CREATED, axum::Json(out)))
}

/// `DELETE /api/projects/{p}/keys/{id}`: revokes (Checkgate answered 500 here, every time).
pub(super) async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    in_project(&state, &caller, &project, Role::Admin).await?;
    check_id("key", &id)?;
    state
        .store
        .revoke_sdk_key(&caller.actor(), &project, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

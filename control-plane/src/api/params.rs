//! The path parameters of the API's routes, as the handlers extract them (by name, with
//! [`Path`](super::Path)) and as the OpenAPI document describes them (`IntoParams`). Ids are
//! checked to be UUIDs by the handlers (400 otherwise); the document says so.

use serde::Deserialize;
use utoipa::IntoParams;

/// `/api/projects/{id}…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct ProjectPath {
    /// The project's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub id: String,
}

/// `/api/projects/{id}/environments/{env}…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct ProjectEnvironmentPath {
    /// The project's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub id: String,
    /// The environment's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub env: String,
}

/// `/api/environments/{env}…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct EnvironmentPath {
    /// The environment's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub env: String,
}

/// `/api/projects/{id}/keys/{key}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct SdkKeyPath {
    /// The project's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub id: String,
    /// The SDK key's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub key: String,
}

/// `/api/projects/{id}/tokens/{token}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct ApiTokenPath {
    /// The project's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub id: String,
    /// The API token's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub token: String,
}

/// `/api/projects/{id}/members/{user}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct MemberPath {
    /// The project's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub id: String,
    /// The user's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub user: String,
}

/// `/api/users/{id}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct UserPath {
    /// The user's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub id: String,
}

/// `/api/edge-tokens/{id}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct EdgeTokenPath {
    /// The edge token's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub id: String,
}

/// `/api/environments/{env}/flags/{key}…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct FlagPath {
    /// The environment's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub env: String,
    /// The flag's key.
    #[param(example = "checkout")]
    pub key: String,
}

/// `/api/environments/{env}/segments/{key}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct SegmentPath {
    /// The environment's id (a UUID; anything else is 400).
    #[param(format = "uuid")]
    pub env: String,
    /// The segment's key.
    #[param(example = "beta-testers")]
    pub key: String,
}

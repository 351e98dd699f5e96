//! Who is calling the management API: a signed-in user (session cookie) or an API token
//! (`Authorization: Bearer cgt_…`). Nothing else authenticates here — in particular no SDK key,
//! of either kind: an SDK key reads flags from the serving routes and can change nothing.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::session::token_from;
use super::{ApiError, AppState};
use crate::store::{Actor, ApiToken, Role, TOKEN_TAG, User, key_hash};

/// The authenticated principal of a request.
#[derive(Debug, Clone)]
pub(super) enum Caller {
    /// A person, by session cookie; their role is read from the store on every request, so a
    /// role change applies at once.
    User(User),
    /// An API token, which acts in its one project with its one role and is never a workspace
    /// admin.
    Token(ApiToken),
}

impl Caller {
    /// Whether the caller is a workspace admin (only users can be).
    pub(super) fn is_workspace_admin(&self) -> bool {
        matches!(self, Self::User(u) if u.is_admin)
    }

    /// Who the audit log names for the caller's changes.
    pub(super) fn actor(&self) -> Actor {
        match self {
            Self::User(u) => Actor::user(&u.id, &u.email),
            Self::Token(t) => Actor::api_token(&t.id, &t.name),
        }
    }

    /// The caller's role in a project, `None` when it has none there. For a user this reads the
    /// store (membership); a token has its role in its own project only.
    pub(super) async fn role_in(
        &self,
        state: &AppState,
        project_id: &str,
    ) -> Result<Option<Role>, ApiError> {
        match self {
            Self::User(u) if u.is_admin => Ok(Some(Role::Admin)),
            Self::User(u) => Ok(state.store.member_role(project_id, &u.id).await?),
            Self::Token(t) => Ok((t.project_id == project_id).then_some(t.role)),
        }
    }

    /// The projects the caller may see; `None` means all of them.
    pub(super) async fn visible_projects(
        &self,
        state: &AppState,
    ) -> Result<Option<Vec<String>>, ApiError> {
        match self {
            Self::User(u) if u.is_admin => Ok(None),
            Self::User(u) => Ok(Some(state.store.member_projects(&u.id).await?)),
            Self::Token(t) => Ok(Some(vec![t.project_id.clone()])),
        }
    }
}

/// Why a bearer credential was refused. Says what the API accepts without saying whether a
/// given string is some other kind of valid credential.
const BEARER_HELP: &str = "the management API takes a session or an API token (Bearer cgt_…); \
                           SDK keys grant no access to it";

impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        // A request that presents an `Authorization` credential is exempt from the CSRF check,
        // so its cookie must never count: otherwise any junk bearer string would let a forged
        // cross-site write ride on the victim's session.
        if let Some(value) = parts.headers.get(AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim())
                .filter(|token| token.starts_with(TOKEN_TAG))
                .ok_or_else(|| ApiError::BadCredential(BEARER_HELP.into()))?;
            let found = state.store.authenticate_api_token(&key_hash(token)).await?;
            return found
                .map(Self::Token)
                .ok_or_else(|| ApiError::BadCredential("unknown or revoked API token".into()));
        }
        let token = token_from(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let user = state
            .store
            .session_user(&state.session_key.token_hash(token))
            .await?;
        user.map(Self::User).ok_or(ApiError::Unauthorized)
    }
}

//! First-run setup and the session routes: `POST /api/setup/complete`, `POST /api/auth/login`,
//! `POST /api/auth/logout`, `GET /api/auth/me`, `GET /api/auth/workspace` — Checkgate's paths
//! and shapes — and `POST /api/auth/password`. Passwords are argon2id, hashed and verified on a
//! blocking thread.

use std::net::IpAddr;
use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{ConnectInfo, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::device;
use super::openapi::{
    BadRequest, Forbidden, JsonBodyRefused, NotFound, TooManyRequests, Unauthorized,
};
use super::session::{self, CurrentUser};
use super::{ApiError, AppState, Json};
use crate::store::{Setup, User, WorkspaceRole};

const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 1024;

/// Checkgate's `UserInfo`: the signed-in user.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserInfo {
    #[schema(format = "uuid")]
    pub(super) id: String,
    pub(super) email: String,
    pub(super) name: String,
    pub(super) role: WorkspaceRole,
    pub(super) workspace_name: String,
    pub(super) is_setup_complete: bool,
}

// The `Set-Cookie` headers, as the document describes them: never built, only their schemas
// are used. No doc comments: they would become descriptions of the headers' schemas.

#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^cg_session=")]
#[expect(dead_code, reason = "only its schema is used")]
pub(super) struct SessionCookie(String);

#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^cg_session=;")]
#[expect(dead_code, reason = "only its schema is used")]
pub(super) struct ClearedSessionCookie(String);

async fn info(state: &AppState, user: &User) -> Result<UserInfo, ApiError> {
    Ok(UserInfo {
        id: user.id.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
        role: user.workspace_role(),
        workspace_name: state.store.workspace_name().await?,
        is_setup_complete: true,
    })
}

/// At most this many password hashes run at once, one per core: each takes ~19 MiB and tens
/// of milliseconds of a core, so a burst of sign-ins queues instead of exhausting memory or
/// starving the other requests.
static HASHING: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from))
});

/// Runs a password-hashing job on a blocking thread, within the [`HASHING`] budget.
async fn hashing<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| ApiError::Internal(e.into()))
}

pub(super) async fn hash_password(password: String) -> Result<String, ApiError> {
    hashing(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await?
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing a password: {e}")))
}

/// A hash to verify against when the email is unknown, so that answer takes as long as a
/// wrong password and does not reveal which emails exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(b"not a real password", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
});

async fn verify_password(password: String, hash: Option<String>) -> Result<bool, ApiError> {
    hashing(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
        let ok = PasswordHash::new(&hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        ok && known
    })
    .await
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::BadRequest(format!("{field} must not be empty")));
    }
    if value.chars().count() > max {
        return Err(ApiError::BadRequest(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(())
}

pub(super) fn check_email(email: &str) -> Result<(), ApiError> {
    check_len("email", email, 254)?;
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !email.contains(char::is_whitespace)
    });
    if valid {
        Ok(())
    } else {
        Err(ApiError::BadRequest("email is not an email address".into()))
    }
}

pub(super) fn check_password(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(ApiError::BadRequest(format!(
            "password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    Ok(())
}

/// Starts a session for `user` (audited as `auth.login` with `details`) and answers with its
/// `UserInfo`, its session cookie and a new device cookie (the browser has just proved the
/// password).
async fn signed_in(
    state: &AppState,
    user: &User,
    status: StatusCode,
    details: serde_json::Value,
) -> Result<impl IntoResponse + use<>, ApiError> {
    let token = session::new_token();
    state
        .store
        .create_session(
            user,
            &state.session_key.token_hash(&token),
            session::SESSION_TTL_SECONDS * 1000,
            &details.to_string(),
        )
        .await?;
    let mut headers = HeaderMap::new();
    session::set_cookie(
        &mut headers,
        session::cookie(&token, session::SESSION_TTL_SECONDS, state.cookie_secure),
    );
    let device = state.device_key.issue(&user.id, device::unix_now());
    session::set_cookie(&mut headers, device::cookie(&device, state.cookie_secure));
    Ok((status, headers, axum::Json(info(state, user).await?)))
}

/// First-run setup: the workspace, its admin and the first project.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetupRequest {
    /// 1–100 characters once trimmed.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    workspace_name: String,
    /// `Default Project` when absent, null or blank.
    #[serde(default)]
    #[schema(max_length = 100)]
    project_name: Option<String>,
    /// 1–100 characters once trimmed.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    name: String,
    #[schema(format = "email", max_length = 254)]
    email: String,
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
}

/// Complete first-run setup
///
/// Creates the workspace, its admin and the first project (`Default Project` when `project_name`
/// is absent or blank), and signs the admin in. Only until setup is complete; afterwards 404.
#[utoipa::path(post, path = "/api/setup/complete", operation_id = "completeSetup", tag = "auth",
    security(()),
    request_body(content = SetupRequest, example = json!({
        "workspace_name": "Acme",
        "project_name": "Web",
        "name": "Admin",
        "email": "admin@example.com",
        "password": "correct horse battery",
    })),
    responses(
        (status = 200, body = UserInfo, description = "The workspace admin, signed in.",
            headers(("Set-Cookie" = inline(SessionCookie), description = "`cg_session=…; Path=/; HttpOnly; SameSite=Lax; Max-Age=604800` (plus `; Secure` unless `COOKIE_SECURE=false`), then the device cookie `cg_device=…; Path=/api/auth; HttpOnly; SameSite=Strict; Max-Age=7776000` (Secure likewise), which exempts this browser's later sign-ins to this account from the per-address limits."))),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        JsonBodyRefused,
    ))]
pub(super) async fn complete_setup(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    req: Result<Json<SetupRequest>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    // Afterwards 404, as in Checkgate.
    if state.store.setup_complete().await? {
        return Err(ApiError::NotFound("setup is already complete".into()));
    }
    let Json(req) = req?;
    check_len("workspace_name", &req.workspace_name, 100)?;
    check_len("name", &req.name, 100)?;
    check_email(&req.email)?;
    check_password(&req.password)?;
    let project_name = req
        .project_name
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "Default Project".into());
    // The same rule as for every other project name (it needs a slug).
    super::projects::check_name(&project_name).map_err(|e| match e {
        ApiError::BadRequest(m) => ApiError::BadRequest(format!("project_{m}")),
        other => other,
    })?;
    let setup = Setup {
        workspace_name: req.workspace_name.trim().to_owned(),
        project_name: project_name.trim().to_owned(),
        name: req.name.trim().to_owned(),
        email: req.email.trim().to_owned(),
        password_hash: hash_password(req.password).await?,
    };
    let admin = state
        .store
        .complete_setup(&setup)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                ApiError::NotFound("setup is already complete".into())
            }
            other => other.into(),
        })?;
    tracing::info!(user_id = %admin.id, "setup completed");
    let addr = client_address(&state, &extensions, &headers);
    let details = serde_json::json!({"address": addr.to_string(), "setup": true});
    signed_in(&state, &admin, StatusCode::OK, details).await
}

/// An email and a password.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct LoginRequest {
    email: String,
    password: String,
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the client it
/// names in `X-Forwarded-For` (see `crate::forwarded`). Unspecified when the router runs
/// without a socket (in-process tests).
pub(super) fn client_address(
    state: &AppState,
    extensions: &Extensions,
    headers: &HeaderMap,
) -> IpAddr {
    extensions
        .get::<ConnectInfo<checkgate_ops::Peer>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| {
            state.trusted_proxies.client_address(c.0.0.ip(), headers)
        })
}

/// How an attempt on an account is throttled (see `limiter`).
enum Throttle {
    /// The browser holds a good device cookie for the account: counted against that cookie.
    Device(device::Device),
    /// Counted against the account and the client address.
    Address(IpAddr),
}

impl Throttle {
    /// By device when the request carries a good device cookie for `user_id` (a cookie for
    /// another account, forged or expired counts for nothing), else by address.
    fn choose(state: &AppState, headers: &HeaderMap, user_id: Option<&str>, addr: IpAddr) -> Self {
        user_id
            .and_then(|id| state.device_key.device_for(headers, id))
            .map_or(Self::Address(addr), Self::Device)
    }

    /// Admits the attempt (charging it as a failure until it succeeds) or answers 429.
    async fn admit(&self, state: &AppState, email: &str, now: i64) -> Result<(), ApiError> {
        let (limiter, store) = (&state.login_limiter, &state.store);
        match self {
            Self::Device(device) => limiter.attempt_device(store, &device.id, now).await?,
            Self::Address(addr) => limiter.attempt(store, email, *addr, now).await?,
        }
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })
    }

    async fn succeeded(&self, state: &AppState, email: &str, now: i64) -> Result<(), ApiError> {
        let (limiter, store) = (&state.login_limiter, &state.store);
        match self {
            Self::Device(device) => limiter.device_succeeded(store, &device.id).await?,
            Self::Address(addr) => limiter.succeeded(store, email, *addr, now).await?,
        }
        Ok(())
    }

    fn by_device(&self) -> bool {
        matches!(self, Self::Device(_))
    }
}

/// Sign in
///
/// Throttled per account and client address (5 failures in 15 minutes for one address and
/// account, 30 for one address), unless the request carries a device cookie (`cg_device`) that an
/// earlier sign-in to the same account set in this browser: then only that cookie's own failures
/// count, 10 in 15 minutes. 429 comes with `Retry-After`. The client address is the connection's
/// peer, or, behind a proxy listed in `TRUSTED_PROXIES`, the right-most `X-Forwarded-For` entry
/// that is not such a proxy. Wrong credentials are 401 `invalid_credentials`, whether or not the
/// email exists.
#[utoipa::path(post, path = "/api/auth/login", operation_id = "login", tag = "auth",
    security(()),
    request_body(content = LoginRequest,
        example = json!({"email": "admin@example.com", "password": "correct horse battery"})),
    responses(
        (status = 200, body = UserInfo, description = "Signed in.",
            headers(("Set-Cookie" = inline(SessionCookie), description = "`cg_session=…; Path=/; HttpOnly; SameSite=Lax; Max-Age=604800` (plus `; Secure` unless `COOKIE_SECURE=false`), then the device cookie `cg_device=…; Path=/api/auth; HttpOnly; SameSite=Strict; Max-Age=7776000` (Secure likewise), which exempts this browser's later sign-ins to this account from the per-address limits."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        JsonBodyRefused,
        (status = 429, response = TooManyRequests),
    ))]
pub(super) async fn login(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    if req.password.chars().count() > MAX_PASSWORD || req.email.len() > 254 {
        return Err(ApiError::InvalidCredentials);
    }
    let addr = client_address(&state, &extensions, &headers);
    let now = crate::store::now_ms();
    let found = state.store.user_for_login(req.email.trim()).await?;
    // Per device cookie, or per account and address (see `limiter`).
    let throttle = Throttle::choose(
        &state,
        &headers,
        found.as_ref().map(|(user, _)| user.id.as_str()),
        addr,
    );
    throttle.admit(&state, &req.email, now).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, None),
    };
    let ok = verify_password(req.password, hash).await?;
    // The client's address, and whether a device cookie vouched for it: never a credential.
    let details = serde_json::json!({"address": addr.to_string(), "device": throttle.by_device()});
    match user {
        Some(user) if ok => {
            throttle.succeeded(&state, &req.email, now).await?;
            tracing::info!(user_id = %user.id, %addr, device = throttle.by_device(), "signed in");
            signed_in(&state, &user, StatusCode::OK, details).await
        }
        // Neither the email (it may be a password typed into the wrong field) nor the password.
        user => {
            tracing::info!(%addr, device = throttle.by_device(), "sign-in refused");
            state
                .store
                .audit_failed_login(user.as_ref(), &details.to_string())
                .await?;
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// Sign out
#[utoipa::path(post, path = "/api/auth/logout", operation_id = "logout", tag = "auth",
    security(()),
    responses(
        (status = 204,
            description = "The session (if any) is ended server-side and the cookie cleared.",
            headers(("Set-Cookie" = inline(ClearedSessionCookie), description = "Clears the session cookie: `cg_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`."))),
        (status = 403, response = Forbidden),
    ))]
pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(token) = session::token_from(&headers) {
        state
            .store
            .delete_session(&state.session_key.token_hash(token))
            .await?;
    }
    let mut out = HeaderMap::new();
    session::set_cookie(&mut out, session::cookie("", 0, state.cookie_secure));
    Ok((StatusCode::NO_CONTENT, out))
}

/// The signed-in user
#[utoipa::path(get, path = "/api/auth/me", operation_id = "getMe", tag = "auth",
    responses(
        (status = 200, body = UserInfo, description = "The user, read from the store."),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
pub(super) async fn me(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(info(&state, &user).await?))
}

/// The workspace, as the login page needs it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Workspace)]
#[serde(deny_unknown_fields)]
pub(super) struct WorkspaceView {
    /// Empty before setup.
    workspace_name: String,
    is_setup_complete: bool,
}

/// The workspace's name and whether setup is complete
#[utoipa::path(get, path = "/api/auth/workspace", operation_id = "getWorkspace", tag = "auth",
    security(()),
    responses((status = 200, body = WorkspaceView, description = "For the login page.")))]
pub(super) async fn workspace(
    State(state): State<AppState>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(WorkspaceView {
        workspace_name: state.store.workspace_name().await?,
        is_setup_complete: state.store.setup_complete().await?,
    }))
}

/// The current password, to prove it, and the new one.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ChangePassword)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordChange {
    current_password: String,
    #[schema(min_length = 8, max_length = 1024)]
    new_password: String,
}

/// Change the signed-in user's password
///
/// Ends every session of the user, the one that asked included, and answers with the cookie of a
/// new session that replaces it. A wrong `current_password` is 401.
#[utoipa::path(post, path = "/api/auth/password", operation_id = "changePassword", tag = "auth",
    request_body(content = PasswordChange),
    responses(
        (status = 204, description = "Done; no body. The old session token no longer works.",
            headers(("Set-Cookie" = inline(SessionCookie), description = "The new session: `cg_session=…; Path=/; HttpOnly; SameSite=Lax; Max-Age=604800` (plus `; Secure` unless `COOKIE_SECURE=false`)."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        JsonBodyRefused,
        (status = 429, response = TooManyRequests),
    ))]
pub(super) async fn change_password(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    CurrentUser(user): CurrentUser,
    Json(req): Json<PasswordChange>,
) -> Result<impl IntoResponse, ApiError> {
    check_password(&req.new_password)?;
    if req.current_password.chars().count() > MAX_PASSWORD {
        return Err(ApiError::InvalidCredentials);
    }
    let addr = client_address(&state, &extensions, &headers);
    let now = crate::store::now_ms();
    // Proving the current password is throttled like a login.
    let throttle = Throttle::choose(&state, &headers, Some(&user.id), addr);
    throttle.admit(&state, &user.email, now).await?;
    let hash = state.store.password_hash(&user.id).await?;
    if !verify_password(req.current_password, hash).await? {
        tracing::info!(user_id = %user.id, %addr, device = throttle.by_device(), "password change refused");
        return Err(ApiError::InvalidCredentials);
    }
    throttle.succeeded(&state, &user.email, now).await?;
    let new_hash = hash_password(req.new_password).await?;
    let token = session::new_token();
    state
        .store
        .set_password(
            &crate::store::Actor::user(&user.id, &user.email),
            &user.id,
            &new_hash,
            Some((
                &state.session_key.token_hash(&token),
                session::SESSION_TTL_SECONDS * 1000,
            )),
        )
        .await?;
    tracing::info!(user_id = %user.id, %addr, "password changed");
    let mut out = HeaderMap::new();
    session::set_cookie(
        &mut out,
        session::cookie(&token, session::SESSION_TTL_SECONDS, state.cookie_secure),
    );
    Ok((StatusCode::NO_CONTENT, out))
}

//! The REST API under `/api`, with Checkgate's paths and JSON shapes. Every error is
//! `{"error":{"code","message"}}` with the right status (see `ApiError`).

mod access;
mod audit;
mod auth;
mod caller;
mod committed;
mod connections;
mod csrf;
mod device;
mod documents;
mod edges;
mod error;
mod feed;
mod flag_insights;
mod flags;
mod fleet_alerts;
mod impressions;
mod keys;
mod limiter;
mod openapi;
mod params;
mod projects;
pub mod scheduler;
mod schedules;
mod segments;
mod session;
mod time;
mod tokens;
mod users;
mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::{Router, middleware};

pub use error::{ApiError, Json, Path};
pub use impressions::IMPRESSIONS_BODY_LIMIT;

use crate::forwarded::TrustedProxies;
use crate::store::Store;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 1 << 20;

/// The default cap on the bytes of regex automata (DFAs) the flags and segments of one
/// environment hold together — what every edge holds for it. Each flag or segment holds at
/// most [`checkgate_core::MAX_AUTOMATON_BYTES`] (1 MiB).
pub const ENVIRONMENT_AUTOMATON_CAP: u64 = 32 << 20;

pub use limiter::LoginLimiter;
pub use session::SessionKey;

/// What the API's handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// Keys the hashes under which sessions are stored (from `SESSION_SECRET`).
    pub session_key: SessionKey,
    /// Signs device cookies; derived from the session key, so it needs no setting of its own.
    device_key: device::DeviceKey,
    /// Whether session and device cookies are marked `Secure`.
    pub cookie_secure: bool,
    /// This instance's login throttle.
    pub login_limiter: std::sync::Arc<LoginLimiter>,
    /// Whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`); empty: nobody's.
    pub trusted_proxies: std::sync::Arc<TrustedProxies>,
    /// Most bytes of regex automata one environment's flags and segments may hold together:
    /// a write that would pass it is refused (422). [`ENVIRONMENT_AUTOMATON_CAP`] unless set.
    pub automaton_cap: u64,
    /// What the HTTP feed route reads of the feed: the heads, and the fleet rows it refreshed.
    pub feed: crate::feed::exchange::FeedRoute,
    /// The impressions' ingest service and the insights reads.
    pub insights: crate::insights::Insights,
    /// Wakes this instance's scheduler ([`scheduler::run`]) when a change is scheduled here.
    pub schedule_wake: std::sync::Arc<tokio::sync::Notify>,
    /// Seals webhook URLs and secrets (`CHECKGATE_MASTER_KEY`); `None`: no webhook can be stored.
    pub master_key: Option<std::sync::Arc<crate::vault::MasterKey>>,
}

impl AppState {
    pub fn new(store: Store, session_key: SessionKey, cookie_secure: bool) -> Self {
        let insights = crate::insights::Insights::new(
            store.clone(),
            &session_key,
            crate::insights::InsightsSettings::default(),
        );
        Self {
            store,
            insights,
            device_key: device::DeviceKey::new(&session_key),
            login_limiter: std::sync::Arc::new(LoginLimiter::new(&session_key)),
            session_key,
            cookie_secure,
            trusted_proxies: std::sync::Arc::default(),
            automaton_cap: ENVIRONMENT_AUTOMATON_CAP,
            feed: crate::feed::exchange::FeedRoute::default(),
            schedule_wake: std::sync::Arc::default(),
            master_key: None,
        }
    }

    /// Seals webhook URLs and secrets with `key`.
    #[must_use]
    pub fn with_master_key(mut self, key: Option<crate::vault::MasterKey>) -> Self {
        self.master_key = key.map(std::sync::Arc::new);
        self
    }

    /// Keeps insights as `settings` say (retention, stale days).
    #[must_use]
    pub fn with_insights(mut self, settings: crate::insights::InsightsSettings) -> Self {
        self.insights =
            crate::insights::Insights::new(self.store.clone(), &self.session_key, settings);
        self
    }

    /// Serves the feed route from the process's heads (kept current by its head tracker).
    #[must_use]
    pub fn with_feed_heads(mut self, heads: std::sync::Arc<crate::feed::Heads>) -> Self {
        self.feed.heads = heads;
        self
    }

    /// Believes `X-Forwarded-For` from these proxies (see [`crate::forwarded`]).
    #[must_use]
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = std::sync::Arc::new(proxies);
        self
    }
}

/// The API's routes, written once: [`ROUTES`] (the table tests read), the router ([`routes`])
/// and the operations of the OpenAPI document ([`Routed`], each handler's `#[utoipa::path]`)
/// are all made from this list, so none can name a route another lacks.
macro_rules! api_routes {
    ($($path:literal => $first:ident($handler:path) $(.$method:ident($more:path))*,)*) => {
        /// Every `(method, path)` the API serves, the method in lower case.
        pub const ROUTES: &[(&str, &str)] = &[
            $((stringify!($first), $path), $((stringify!($method), $path),)*)*
        ];

        fn router() -> Router<AppState> {
            Router::new()$(.route($path, axum::routing::$first($handler)$(.$method($more))*))*
        }

        /// The operations of every routed handler.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($handler, $($more,)*)*))]
        struct Routed;
    };
}

api_routes! {
    "/api/setup/complete" => post(auth::complete_setup),
    "/api/auth/login" => post(auth::login),
    "/api/auth/logout" => post(auth::logout),
    "/api/auth/me" => get(auth::me),
    "/api/auth/password" => post(auth::change_password),
    "/api/auth/workspace" => get(auth::workspace),
    "/api/projects" => get(projects::list).post(projects::create),
    "/api/projects/{id}" => get(projects::get).patch(projects::rename).delete(projects::delete),
    "/api/projects/{id}/environments" => get(projects::environments)
        .post(projects::create_environment),
    "/api/projects/{id}/environments/{env}" => patch(projects::update_environment)
        .delete(projects::delete_environment),
    "/api/projects/{id}/environments/{env}/default" => post(projects::set_default),
    "/api/projects/{id}/keys" => get(keys::list).post(keys::create),
    "/api/projects/{id}/keys/{key}" => delete(keys::revoke),
    "/api/projects/{id}/tokens" => get(tokens::list).post(tokens::create),
    "/api/projects/{id}/tokens/{token}" => delete(tokens::revoke),
    "/api/environments/{env}/segments" => get(segments::list).post(segments::create),
    "/api/environments/{env}/segments/{key}" => get(segments::get)
        .patch(segments::patch)
        .delete(segments::delete),
    "/api/edge-tokens" => get(edges::list).post(edges::create),
    "/api/edge-tokens/{id}" => delete(edges::revoke),
    "/api/edges" => get(edges::fleet),
    "/api/fleet/alerts" => get(fleet_alerts::list),
    "/api/health/connections" => get(connections::fleet),
    "/api/environments/{env}/connections" => get(connections::environment),
    "/api/feed" => post(feed::exchange),
    "/api/audit" => get(audit::list),
    "/api/environments/{env}/audit" => get(audit::environment),
    "/api/users" => get(users::list).post(users::create),
    "/api/users/{id}" => patch(users::update).delete(users::delete),
    "/api/projects/{id}/members" => get(users::members).post(users::add_member),
    "/api/projects/{id}/members/{user}" => patch(users::set_role).delete(users::remove_member),
    "/api/environments/{env}/flags" => get(flags::list).post(flags::put),
    "/api/environments/{env}/flags/{key}" => get(flags::get)
        .patch(flags::patch)
        .delete(flags::delete),
    "/api/environments/{env}/flags/{key}/promote" => post(flags::promote),
    "/api/environments/{env}/flags/{key}/evaluate" => post(flags::evaluate),
    "/api/environments/{env}/flags/{key}/insights" => get(flag_insights::flag),
    "/api/environments/{env}/impressions" => get(impressions::list).post(impressions::report),
    "/api/environments/{env}/impressions/stats" => get(impressions::stats),
    "/api/environments/{env}/insights" => get(flag_insights::flag_list),
    "/api/environments/{env}/scheduled-changes" => get(schedules::list),
    "/api/environments/{env}/scheduled-changes/{id}" => delete(schedules::cancel),
    "/api/environments/{env}/flags/{key}/scheduled-changes" => get(schedules::list_flag)
        .post(schedules::create),
    "/api/environments/{env}/webhooks" => get(webhooks::list).post(webhooks::create),
    "/api/environments/{env}/webhooks/{id}" => patch(webhooks::update).delete(webhooks::delete),
    "/api/environments/{env}/webhooks/{id}/deliveries" => get(webhooks::deliveries),
    "/api/environments/{env}/webhooks/{id}/test" => post(webhooks::test),
    "/api/openapi.json" => get(openapi::document),
}

/// The `/api` routes.
pub fn routes(state: AppState) -> Router {
    router()
        .layer(middleware::from_fn(csrf::guard))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

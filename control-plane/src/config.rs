//! The control plane's configuration. The variable names are Checkgate's (`DATABASE_URL`,
//! `REDIS_URL`, `SESSION_SECRET`, `COOKIE_SECURE`, `PORT`, `PUBLIC_DIR`,
//! `DB_MAX_CONNECTIONS`, `RUST_LOG`), so an existing deployment's settings carry over; every
//! one is also a flag, so `checkgate-control --help` documents all of them.

use std::path::PathBuf;

use checkgate_ops::CommonArgs;
use checkgate_ops::config::InvalidSetting;
use checkgate_ops::telemetry;
use checkgate_protocol::Secret;
use checkgate_serve::ServeArgs;
use clap::Parser;
use clap::builder::BoolishValueParser;

use crate::forwarded::TrustedProxies;

/// Shortest accepted `SESSION_SECRET`: 32 bytes of key material.
pub const MIN_SESSION_SECRET: usize = 32;

/// Checkgate control plane: REST API, dashboard, durable store and change feed.
#[derive(Debug, Clone, Parser)]
#[command(name = "checkgate-control", version, about)]
pub struct ControlConfig {
    /// Port of the public listener (API, dashboard, health).
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// The durable store: `postgres://user@host/db` for PostgreSQL, or `sqlite:path` for a
    /// SQLite file. Unset: the embedded SQLite file in CHECKGATE_DATA_DIR.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Most connections the store pool opens.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_max_connections: u32,

    /// Seconds to wait for the database at start-up (and for a pooled connection later)
    /// before giving up with an error.
    #[arg(long, env = "DB_CONNECT_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub db_connect_timeout_seconds: u64,

    /// Redis, which tells the other control-plane instances that something changed
    /// (`redis://host:6379` or `rediss://…`). Unset: a single instance needs none.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// Key material for session cookies, at least 32 characters. Unset: one is generated into
    /// CHECKGATE_DATA_DIR (mode 0600) on first start.
    #[arg(long, env = "SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<Secret>,

    /// Mark session cookies `Secure` (sent over HTTPS only). Turn off only for plain-HTTP
    /// development.
    #[arg(long, env = "COOKIE_SECURE", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = BoolishValueParser::new())]
    pub cookie_secure: bool,

    /// Reverse proxies whose `X-Forwarded-For` names the client, as comma-separated CIDRs or
    /// addresses (`10.0.0.0/8,fd00::/8`). The client address (for sign-in throttling and
    /// logs) is then the right-most address in that header that is not one of them. Unset:
    /// the header is ignored and the client is the connection's peer.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "", hide_default_value = true,
          value_parser = TrustedProxies::parse)]
    pub trusted_proxies: TrustedProxies,

    /// Directory of the built dashboard to serve at `/`.
    #[arg(long, env = "PUBLIC_DIR")]
    pub public_dir: Option<PathBuf>,

    /// Serve the change feed that edge relays dial (QUIC over UDP). Turn off for an instance
    /// that only serves the API.
    #[arg(long, env = "FEED_ENABLED", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = BoolishValueParser::new())]
    pub feed_enabled: bool,

    /// UDP port of the change feed (on HOST).
    #[arg(long, env = "FEED_PORT", default_value_t = 3443)]
    pub feed_port: u16,

    /// PEM certificate chain the feed presents, with FEED_KEY. Unset: a self-signed
    /// certificate generated into CHECKGATE_DATA_DIR, whose SHA-256 fingerprint is logged at
    /// start-up for edges to pin (FEED_FINGERPRINT).
    #[arg(long, env = "FEED_CERT", requires = "feed_key")]
    pub feed_cert: Option<PathBuf>,

    /// PEM private key of FEED_CERT.
    #[arg(long, env = "FEED_KEY", requires = "feed_cert")]
    pub feed_key: Option<PathBuf>,

    /// Change rows kept per environment for edges that catch up; an edge further behind is
    /// sent a snapshot instead.
    #[arg(long, env = "FEED_RETAIN_CHANGES", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=10_000_000))]
    pub feed_retain_changes: u64,

    /// Milliseconds between heartbeats on an idle feed; edges declare a feed dead after
    /// several missed.
    #[arg(long, env = "FEED_HEARTBEAT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub feed_heartbeat_ms: u64,

    /// Most edges connected at once to this instance.
    #[arg(long, env = "FEED_MAX_EDGES", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub feed_max_edges: u64,

    /// NATS servers to relay the change feed to (`nats://host:4222`, comma-separated), for
    /// edges that follow it over NATS JetStream. Unset: no relay.
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,

    /// How the relay authenticates to NATS, and the stream's name.
    #[command(flatten)]
    pub nats: checkgate_feed::nats::NatsAuthArgs,

    /// Replicas of the feed's stream in a NATS cluster (1 on a single server).
    #[arg(long, env = "NATS_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=5))]
    pub nats_replicas: u64,

    /// How long the stream keeps changes (`7d`, `24h`, `3600`): an edge away for longer
    /// catches up from the control plane instead.
    #[arg(long, env = "NATS_MAX_AGE", default_value = "7d",
          value_parser = checkgate_feed::nats::parse_duration)]
    pub nats_max_age: std::time::Duration,

    /// Days raw impressions are kept (by when they arrived); a background job deletes older
    /// ones in batches.
    #[arg(long, env = "IMPRESSIONS_RETENTION_DAYS", default_value_t = crate::insights::IMPRESSIONS_RETENTION_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub impressions_retention_days: u32,

    /// Days impression rollups and evaluation counters (stats, insights, unique users) are
    /// kept; at least IMPRESSIONS_RETENTION_DAYS.
    #[arg(long, env = "INSIGHTS_RETENTION_DAYS", default_value_t = crate::insights::INSIGHTS_RETENTION_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub insights_retention_days: u32,

    /// Days after which a flag counts as stale: not evaluated for that long, or serving one
    /// value to everyone for that long.
    #[arg(long, env = "STALE_AFTER_DAYS", default_value_t = crate::insights::STALE_AFTER_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub stale_after_days: u32,

    /// Seconds an edge may stay stale or disconnected before the `edge.stale` fleet alert
    /// opens (it resolves, `edge.recovered`, when the edge is connected again).
    #[arg(long, env = "EDGE_STALE_ALERT_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub edge_stale_alert_seconds: u64,

    /// Versions a connected edge may be behind an environment's head before the
    /// `edge.lagging` fleet alert opens.
    #[arg(long, env = "EDGE_LAG_ALERT_VERSIONS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub edge_lag_alert_versions: u64,

    /// Where the embedded store, generated secrets and certificates live.
    #[arg(long, env = "CHECKGATE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Secrets at rest (CHECKGATE_MASTER_KEY) and webhook delivery.
    #[command(flatten)]
    pub webhooks: crate::webhooks::WebhookArgs,

    /// SDK serving settings (MIN_VERSION_WAIT_MS) of the routes served in-process, shared with
    /// the other binary.
    #[command(flatten)]
    pub serving: ServeArgs,

    /// Listener, logging, metrics and shutdown settings, shared with the other binary.
    #[command(flatten)]
    pub common: CommonArgs,
}

fn invalid(
    variable: &'static str,
    flag: &'static str,
    problem: impl Into<String>,
) -> InvalidSetting {
    InvalidSetting {
        variable,
        flag,
        problem: problem.into(),
    }
}

impl ControlConfig {
    /// How long insights are kept, and when a flag is stale.
    pub fn fleet_alerts(&self) -> crate::fleet_alerts::AlertSettings {
        crate::fleet_alerts::AlertSettings {
            stale_after: std::time::Duration::from_secs(self.edge_stale_alert_seconds),
            lag_versions: self.edge_lag_alert_versions,
        }
    }

    pub fn insights(&self) -> crate::insights::InsightsSettings {
        crate::insights::InsightsSettings {
            impressions_retention_days: self.impressions_retention_days,
            insights_retention_days: self.insights_retention_days,
            stale_after_days: self.stale_after_days,
        }
    }

    /// Checks what clap's types cannot. Never echoes a secret value.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if let Some(url) = &self.database_url {
            let url = url.expose();
            let ok = ["postgres://", "postgresql://", "sqlite:"]
                .iter()
                .any(|s| url.starts_with(s));
            if !ok {
                let scheme = url.split(':').next().unwrap_or_default();
                return Err(invalid(
                    "DATABASE_URL",
                    "database-url",
                    format!("unsupported scheme {scheme:?} (use postgres://… or sqlite:…)"),
                ));
            }
        }
        if let Some(url) = &self.redis_url {
            let url = url.expose();
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(invalid(
                    "REDIS_URL",
                    "redis-url",
                    "must start with redis:// or rediss://",
                ));
            }
        }
        if let Some(secret) = &self.session_secret {
            let len = secret.expose().chars().count();
            if len < MIN_SESSION_SECRET {
                return Err(invalid(
                    "SESSION_SECRET",
                    "session-secret",
                    format!("must be at least {MIN_SESSION_SECRET} characters, got {len}"),
                ));
            }
        }
        if let Some(dir) = &self.public_dir
            && !dir.is_dir()
        {
            return Err(invalid(
                "PUBLIC_DIR",
                "public-dir",
                format!("{} is not a directory", dir.display()),
            ));
        }
        for (path, variable, flag) in [
            (&self.feed_cert, "FEED_CERT", "feed-cert"),
            (&self.feed_key, "FEED_KEY", "feed-key"),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                return Err(invalid(
                    variable,
                    flag,
                    format!("{} is not a file", path.display()),
                ));
            }
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid(
                "CHECKGATE_DATA_DIR",
                "data-dir",
                "must not be empty",
            ));
        }
        if self.insights_retention_days < self.impressions_retention_days {
            return Err(invalid(
                "INSIGHTS_RETENTION_DAYS",
                "insights-retention-days",
                format!(
                    "must be at least IMPRESSIONS_RETENTION_DAYS ({}): stats of kept impressions come from the rollups",
                    self.impressions_retention_days
                ),
            ));
        }
        self.relay()?;
        self.webhooks
            .validate()
            .map_err(|p| invalid("CHECKGATE_MASTER_KEY", "master-key", p))?;
        telemetry::check_filter(&self.common.rust_log).map_err(|p| invalid("RUST_LOG", "log", p))
    }

    /// The NATS relay's settings; `None` without NATS_URL.
    pub fn relay(&self) -> Result<Option<crate::feed::relay::RelaySettings>, InvalidSetting> {
        let Some(url) = &self.nats_url else {
            return Ok(None);
        };
        let refused = |r: checkgate_feed::nats::Refused| invalid(r.variable, r.flag, r.problem);
        let servers = checkgate_feed::nats::parse_servers("NATS_URL", url).map_err(refused)?;
        let nats = self.nats.settings(servers).map_err(refused)?;
        if self.nats_max_age < std::time::Duration::from_secs(60) {
            return Err(invalid(
                "NATS_MAX_AGE",
                "nats-max-age",
                "must be at least 60 seconds",
            ));
        }
        if self.nats_max_age > std::time::Duration::from_secs(3650 * 86_400) {
            return Err(invalid(
                "NATS_MAX_AGE",
                "nats-max-age",
                "must be at most 3650 days",
            ));
        }
        Ok(Some(crate::feed::relay::RelaySettings {
            nats,
            replicas: usize::try_from(self.nats_replicas).unwrap_or(1),
            max_age: self.nats_max_age,
        }))
    }
}

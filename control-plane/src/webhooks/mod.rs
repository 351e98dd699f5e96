//! Webhooks: events for every change an environment sees, delivered durably. The store writes
//! the outbox (`store/webhooks.rs`, in each change's transaction); [`delivery`] sends it from
//! one instance at a time; [`ssrf`] decides where a webhook may go; [`sign`] signs; [`event`]
//! names events and shapes bodies; [`client`] makes the request.

pub mod client;
pub mod delivery;
pub mod event;
pub mod sign;
pub mod ssrf;

pub use delivery::DeliverySettings;
pub use ssrf::AllowHosts;

use checkgate_protocol::Secret;

/// The settings of secrets at rest and of webhook delivery.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Key that encrypts stored secrets (webhook signing secrets and URLs): 32 bytes as 64 hex
    /// digits or base64 (`openssl rand -hex 32`). Unset: on the embedded store one is generated
    /// into CHECKGATE_DATA_DIR (mode 0600); with DATABASE_URL, no webhook can be stored.
    #[arg(long, env = "CHECKGATE_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<Secret>,

    /// Hosts webhooks may reach even when they resolve to loopback, private, link-local or
    /// other internal addresses, comma-separated (`hooks.internal,127.0.0.1:8080`).
    #[arg(long, env = "WEBHOOK_ALLOW_HOSTS", default_value = "", hide_default_value = true,
          value_parser = AllowHosts::parse)]
    pub webhook_allow_hosts: AllowHosts,

    /// Deliver webhooks from this instance (the one holding the delivery lease does). Turn
    /// off for an instance that only serves the API.
    #[arg(long, env = "WEBHOOK_DELIVERY", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub webhook_delivery: bool,

    /// Requests in flight at once to one webhook.
    #[arg(long, env = "WEBHOOK_MAX_IN_FLIGHT", default_value_t = 4,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub webhook_max_in_flight: u64,

    /// Failed attempts in a row after which a webhook counts as failing: `webhook.failing`
    /// is sent to the environment's other webhooks (once per run of failures).
    #[arg(long, env = "WEBHOOK_FAILING_AFTER", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub webhook_failing_after: u64,
}

impl WebhookArgs {
    /// How the delivery worker runs.
    pub fn delivery(&self) -> DeliverySettings {
        DeliverySettings {
            allow: self.webhook_allow_hosts.clone(),
            per_webhook: usize::try_from(self.webhook_max_in_flight).unwrap_or(4),
            failing_after: self.webhook_failing_after,
        }
    }

    /// Checks the master key's format (never echoing it).
    pub fn validate(&self) -> Result<(), String> {
        if let Some(key) = &self.master_key {
            crate::vault::MasterKey::parse("CHECKGATE_MASTER_KEY", key.expose())
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

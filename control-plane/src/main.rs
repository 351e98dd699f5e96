//! `checkgate-control`: parses its configuration and opens (and migrates) the store, refusing
//! bad settings before any port is bound; then serves until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use checkgate_control::api::{AppState, SessionKey};
use checkgate_control::config::ControlConfig;
use checkgate_control::secrets::{self, Origin};
use checkgate_control::store::{self, Store};
use checkgate_control::{STORE_CHECK, app};
use checkgate_edge::ops::{self, Health};

#[tokio::main]
#[allow(
    clippy::exit,
    reason = "a refused configuration ends the process with its own status, 0 or 2"
)]
async fn main() -> anyhow::Result<()> {
    let config = match ops::parse::<ControlConfig>("checkgate-control", ControlConfig::validate) {
        Ok(config) => config,
        Err(stop) => std::process::exit(stop.report()),
    };
    ops::telemetry::init(&config.common.rust_log, config.common.log_format)?;
    ops::metrics::describe_process("checkgate-control");

    let url = match &config.database_url {
        Some(url) => url.expose().to_owned(),
        None => {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!("creating the data directory {}", config.data_dir.display())
            })?;
            store::embedded_url(&config.data_dir)
        }
    };
    let timeout = std::time::Duration::from_secs(config.db_connect_timeout_seconds);
    let store = Store::open(&url, config.db_max_connections, timeout)
        .await
        .context("opening the store")?;
    tracing::info!(backend = ?store.backend(), epoch = store.epoch(), "store ready");

    let (secret, origin) =
        secrets::session_secret(config.session_secret.as_ref(), &config.data_dir)
            .context("preparing the session secret")?;
    match origin {
        Origin::Configured => {}
        Origin::Generated(path) | Origin::Loaded(path) => tracing::warn!(
            file = %path.display(),
            "SESSION_SECRET is not set; using the secret generated in the data directory \
             (set SESSION_SECRET when several instances share one database)"
        ),
    }
    let state = AppState::new(
        store.clone(),
        SessionKey::new(secret.expose()),
        config.cookie_secure,
    );
    let health = Health::new();
    let result = ops::run_service(
        &config.common,
        config.port,
        |metrics| app(state, health.clone(), metrics),
        || health.set(STORE_CHECK, true, "migrated and answering"),
    );
    // Readiness follows the store for as long as the service runs.
    let upkeep = tokio::spawn(checkgate_control::upkeep::run(
        store.clone(),
        health.clone(),
    ));
    let result = result.await;
    upkeep.abort();
    store.close().await;
    result
}

//! `checkgate-control`: parses its configuration and opens (and migrates) the store, refusing
//! bad settings before any port is bound; then serves until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use checkgate_control::api::{AppState, SessionKey};
use checkgate_control::config::ControlConfig;
use checkgate_control::feed::{self, Heads};
use checkgate_control::secrets::{self, Origin};
use checkgate_control::store::{self, Store};
use checkgate_control::vault::{self, MasterKey};
use checkgate_control::{STORE_CHECK, app_with_dashboard, dashboard};
use checkgate_ops::{self as ops, Health};

/// jemalloc, as in `checkgate-edge`: a one-node install serves the same SDK routes in-process.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
#[allow(
    clippy::exit,
    reason = "a refused configuration ends the process with its own status, 0 or 2"
)]
async fn main() -> anyhow::Result<()> {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "rotate-master-key")
    {
        return rotate_master_key().await;
    }
    let config = match ops::parse::<ControlConfig>("checkgate-control", ControlConfig::validate) {
        Ok(config) => config,
        Err(stop) => std::process::exit(stop.report()),
    };
    ops::telemetry::init(&config.common.rust_log, config.common.log_format)?;
    ops::metrics::describe_process("checkgate-control");

    let url = match &config.database_url {
        Some(url) => url.expose().to_owned(),
        None => {
            secrets::create_private_dir(&config.data_dir).with_context(|| {
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

    // Stored secrets open with the configured master key, or the start-up stops here.
    let master_key = master_key(&config, &store).await?;

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
    // The dashboard is read before any port is bound: a PUBLIC_DIR without a built
    // dashboard is a configuration error, not a blank page.
    let assets = match &config.public_dir {
        Some(dir) => {
            let assets =
                dashboard::Assets::load(dir).context("loading the dashboard (PUBLIC_DIR)")?;
            tracing::info!(dir = %dir.display(), "serving the dashboard");
            assets
        }
        None => {
            tracing::info!("PUBLIC_DIR is not set: the dashboard is not served (the API is)");
            dashboard::Assets::default()
        }
    };
    let heads = Heads::new();
    let state = AppState::new(
        store.clone(),
        SessionKey::new(secret.expose()),
        config.cookie_secure,
    )
    .with_trusted_proxies(config.trusted_proxies.clone())
    .with_feed_heads(heads.clone())
    .with_insights(config.insights())
    .with_master_key(master_key.clone());
    if !config.trusted_proxies.is_empty() {
        tracing::info!(proxies = %config.trusted_proxies, "trusting x-forwarded-for from these proxies");
    }
    let health = Health::new();

    // The change feed: heads kept current (own commits, a poll, Redis), and the QUIC server.
    let mut tasks = ops::Owned::default();
    tasks.spawn(
        "head tracker",
        feed::track_heads(store.clone(), heads.clone()),
    );
    if let Some(url) = config.redis_url.clone() {
        tasks.spawn(
            "redis sync",
            feed::sync::run(url, store.clone(), heads.clone()),
        );
    }
    if config.feed_enabled {
        let configured = config.feed_cert.as_deref().zip(config.feed_key.as_deref());
        let identity = feed::cert::identity(configured, &config.data_dir)
            .context("preparing the feed's certificate")?;
        let fingerprint = identity.fingerprint();
        let addr = SocketAddr::new(config.common.host, config.feed_port);
        let server_config = checkgate_feed::quic::server_config(identity.chain, identity.key)
            .context("configuring the feed's TLS")?;
        let endpoint = quinn::Endpoint::server(server_config, addr)
            .with_context(|| format!("cannot listen for the feed on udp {addr}"))?;
        let bound = endpoint.local_addr()?;
        tracing::info!(addr = %bound, listener = %"feed", fingerprint = %fingerprint, certificate = %identity.cert_path.display(), "listening");
        let settings = feed::FeedSettings {
            addr: bound,
            max_edges: usize::try_from(config.feed_max_edges).unwrap_or(usize::MAX),
            session: feed::SessionSettings {
                heartbeat: Duration::from_millis(config.feed_heartbeat_ms),
                token_check: Duration::from_secs(1),
            },
        };
        let (store, heads, insights) = (store.clone(), heads.clone(), state.insights.clone());
        tasks.spawn_with_stop("feed server", |stopping| {
            feed::serve(endpoint, store, heads, settings, insights, stopping)
        });
    }

    // Validated with the rest of the configuration; cannot fail here.
    if let Some(relay) = config.relay().ok().flatten() {
        tracing::info!(stream = %relay.nats.stream, "relaying the feed to NATS JetStream");
        let (store, heads) = (store.clone(), heads.clone());
        tasks.spawn_with_stop("nats relay", |stopping| {
            feed::relay::run(store, heads, relay, stopping)
        });
    }

    // The routes SDKs call, served in-process from a replica of the database: a one-node
    // install needs no separate edge.
    let local = feed::local::Local::new();
    tasks.spawn(
        "local replica",
        feed::local::run(store.clone(), heads.clone(), local.clone()),
    );
    let (sdk, sdk_events) = checkgate_serve::SdkState::new(local.served(), &config.serving);
    tasks.spawn("event hub", sdk_events);
    // Impressions reported to the in-process routes, and its evaluation counts, stored
    // straight through the insights service.
    {
        let (queued, direct) = (
            sdk.insights.clone(),
            std::sync::Arc::new(feed::insights::Direct::new(state.insights.clone())),
        );
        tasks.spawn_with_stop("insights flusher", |stopping| {
            checkgate_serve::insights::flush::run(queued, direct, stopping)
        });
    }
    // Webhook deliveries, from the outbox, by whichever instance holds the delivery lease.
    if config.webhooks.webhook_delivery {
        let (store, key, settings) = (
            store.clone(),
            master_key.map(std::sync::Arc::new),
            config.webhooks.delivery(),
        );
        tasks.spawn_with_stop("webhook delivery", |stopping| {
            checkgate_control::webhooks::delivery::run(store, key, settings, stopping)
        });
    } else {
        tracing::info!("WEBHOOK_DELIVERY=false: this instance delivers no webhooks");
    }
    // Fleet alerts (edge.stale, edge.recovered, edge.lagging), by the lease's holder only.
    tasks.spawn(
        "fleet alerts",
        checkgate_control::fleet_alerts::run(store.clone(), config.fleet_alerts()),
    );
    // Readiness follows the store for as long as the service runs.
    tasks.spawn(
        "store upkeep",
        checkgate_control::upkeep::run(store.clone(), health.clone(), config.feed_retain_changes),
    );

    // Scheduled changes applied when due (every instance runs one; each change is claimed in
    // the transaction that applies it).
    tasks.spawn(
        "scheduler",
        checkgate_control::api::scheduler::run(state.clone()),
    );

    // Impression users merged into sketches; what is past its retention deleted in batches.
    tasks.spawn(
        "insights upkeep",
        checkgate_control::upkeep::insights(state.insights.clone()),
    );

    let result = ops::run_service(
        &config.common,
        config.port,
        Some(std::sync::Arc::new(sdk.clone())),
        |metrics| app_with_dashboard(state, health.clone(), metrics, Some(sdk), assets),
        axum::Router::new(),
        || health.set(STORE_CHECK, true, "migrated and answering"),
        tasks,
    )
    .await;
    store.close().await;
    result
}

/// The master key to run with, refused (one line, before any port is bound) when stored
/// secrets exist and it is missing or another key. With a key, webhook URLs stored before URLs
/// were sealed are sealed now.
async fn master_key(config: &ControlConfig, store: &Store) -> anyhow::Result<Option<MasterKey>> {
    let sealed = store
        .sealed_values()
        .await
        .context("reading stored secrets")?;
    let values: Vec<String> = sealed.iter().map(|v| v.sealed.clone()).collect();
    let embedded = config.database_url.is_none();
    let (key, origin) = match vault::prepare(
        config.webhooks.master_key.as_ref(),
        &config.data_dir,
        embedded,
        &values,
    ) {
        Ok(found) => found,
        Err(e) => anyhow::bail!("refusing to start: {e}"),
    };
    // The ids match; one value opening proves the key itself.
    if let (Some(key), Some(value)) = (&key, sealed.first())
        && let Err(e) = key.open(
            &vault::context(value.field, &value.webhook_id),
            &value.sealed,
        )
    {
        anyhow::bail!("refusing to start: {e}");
    }
    match origin {
        vault::Origin::Configured => {}
        vault::Origin::Generated(path) | vault::Origin::Loaded(path) => tracing::warn!(
            file = %path.display(),
            "CHECKGATE_MASTER_KEY is not set; using the key generated in the data directory \
             (set CHECKGATE_MASTER_KEY when several instances share one database, and back it up)"
        ),
        vault::Origin::Absent => tracing::warn!(
            "CHECKGATE_MASTER_KEY is not set: webhooks cannot be created or given new URLs or \
             signing secrets"
        ),
    }
    match &key {
        Some(key) => {
            let sealed = vault::seal_plain_urls(store, key)
                .await
                .context("sealing webhook URLs")?;
            if sealed > 0 {
                tracing::info!(webhooks = sealed, key_id = key.id(), "sealed webhook URLs");
            }
        }
        None => {
            let plain = store.plain_urls().await.context("reading webhook URLs")?;
            if !plain.is_empty() {
                tracing::warn!(
                    webhooks = plain.len(),
                    "webhook URLs are stored in plain text; set CHECKGATE_MASTER_KEY and restart \
                     to seal them"
                );
            }
        }
    }
    Ok(key)
}

/// `checkgate-control rotate-master-key`: re-encrypts every stored secret under a new key.
#[derive(Debug, clap::Parser)]
#[command(
    name = "checkgate-control rotate-master-key",
    about = "Re-encrypts every stored secret from CHECKGATE_MASTER_KEY to CHECKGATE_MASTER_KEY_NEW; \
             safe to run again after an interruption"
)]
struct RotateArgs {
    /// The store (as for the server). Unset: the embedded file in CHECKGATE_DATA_DIR.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<checkgate_protocol::Secret>,
    #[arg(long, env = "CHECKGATE_DATA_DIR", default_value = "./data")]
    data_dir: std::path::PathBuf,
    /// The key the secrets are sealed with now. Unset: the key generated in CHECKGATE_DATA_DIR,
    /// which is then replaced by the new one.
    #[arg(long, env = "CHECKGATE_MASTER_KEY", hide_env_values = true)]
    master_key: Option<checkgate_protocol::Secret>,
    /// The key to seal them with from now on (64 hex digits or base64 of 32 bytes).
    #[arg(long, env = "CHECKGATE_MASTER_KEY_NEW", hide_env_values = true)]
    master_key_new: checkgate_protocol::Secret,
}

#[allow(clippy::print_stdout, reason = "a command-line tool reports on stdout")]
async fn rotate_master_key() -> anyhow::Result<()> {
    use clap::Parser as _;
    let args = RotateArgs::parse_from(std::env::args_os().skip(1));
    let new = MasterKey::parse("CHECKGATE_MASTER_KEY_NEW", args.master_key_new.expose())?;
    let key_file = args.data_dir.join(vault::MASTER_KEY_FILE);
    let (old, from_file) = match &args.master_key {
        Some(text) => (
            MasterKey::parse("CHECKGATE_MASTER_KEY", text.expose())?,
            false,
        ),
        None => match vault::load_file(&key_file)? {
            Some(key) => (key, true),
            None => anyhow::bail!(
                "CHECKGATE_MASTER_KEY is not set and {} does not exist",
                key_file.display()
            ),
        },
    };
    let url = match &args.database_url {
        Some(url) => url.expose().to_owned(),
        None => store::embedded_url(&args.data_dir),
    };
    let store = Store::open(&url, 2, Duration::from_secs(10))
        .await
        .context("opening the store")?;
    let done = vault::rotate(&store, &old, &new).await;
    store.close().await;
    let done = done?;
    if from_file {
        vault::replace_file(&key_file, &new)?;
        println!("{} now holds the new key", key_file.display());
    }
    println!(
        "re-encrypted {} sealed value(s) (webhook secrets and URLs) from key {} to key {} ({} already \
         under the new key); \
         start the control planes with CHECKGATE_MASTER_KEY set to the new key",
        done.resealed,
        old.id(),
        new.id(),
        done.already
    );
    Ok(())
}

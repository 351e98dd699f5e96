//! `checkgate-edge`: parses its configuration (refusing a bad value before binding any port),
//! loads its snapshot file, follows the control plane's change feed, and serves until SIGTERM
//! or Ctrl-C — saving the snapshot file once more on the way out.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use checkgate_edge::config::EdgeConfig;
use checkgate_edge::feed::client::{self, ClientSettings, FeedState, Via};
use checkgate_edge::feed::upstream;
use checkgate_edge::journal::{self, Journal};
use checkgate_edge::relay::Relay;
use checkgate_edge::{DATA_CHECK, JOURNAL_FILE, SNAPSHOT_FILE, app, snapshot_file};
use checkgate_feed::quic::{Trust, parse_fingerprint};
use checkgate_ops::{self as ops, Health};
use checkgate_serve::SdkState;
use checkgate_serve::insights::{Insights, flush};
use checkgate_serve::replica::Replica;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// jemalloc: the request paths allocate small, short-lived buffers on every core (hyper's,
/// axum's, the answers'), often freed on another core than they came from. glibc's allocator
/// spent about 12 % of the edge's CPU on them under load; jemalloc's per-thread caches take
/// single-flag evaluation from about 55 % to about 70 % of the machine's HTTP ceiling, at the
/// same idle memory (BENCHMARKS.md, "Evaluation on an edge"). mimalloc was as fast but held
/// three times the idle memory.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
#[allow(
    clippy::exit,
    reason = "a refused configuration ends the process with its own status, 0 or 2"
)]
async fn main() -> anyhow::Result<()> {
    let config = match ops::parse::<EdgeConfig>("checkgate-edge", EdgeConfig::validate) {
        Ok(config) => config,
        Err(stop) => std::process::exit(stop.report()),
    };
    ops::telemetry::init(&config.common.rust_log, config.common.log_format)?;
    ops::metrics::describe_process("checkgate-edge");

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let snapshot_path = config.data_dir.join(SNAPSHOT_FILE);
    let replica = Replica::new();
    let mut refused = None;
    match snapshot_file::load(&snapshot_path) {
        Ok(Some(persisted)) => {
            replica.load(&persisted);
            metrics::counter!("checkgate_snapshot_loads_total", "outcome" => "loaded").increment(1);
            tracing::info!(environments = persisted.environments.len(), file = %snapshot_path.display(), "loaded the snapshot file");
        }
        Ok(None) => {
            tracing::info!(file = %snapshot_path.display(), "no snapshot file yet");
        }
        Err(e) => {
            metrics::counter!("checkgate_snapshot_loads_total", "outcome" => "refused")
                .increment(1);
            tracing::error!(cause = %e, "refusing the snapshot file; not ready until the control plane sends data");
            refused = Some(e.to_string());
        }
    }
    let feed_state = Arc::new(FeedState::default());
    let journal = open_journal(
        &config.data_dir.join(JOURNAL_FILE),
        &replica,
        refused.is_some(),
        &feed_state,
    );
    let insights = Arc::new(Insights::from_args(&config.serving));
    let relay = Arc::new(Relay {
        replica,
        feed: feed_state,
        feed_addr: config.feed_addr.clone(),
        snapshot_path: snapshot_path.clone(),
        snapshot_refused: refused,
        insights: insights.clone(),
    });

    let mut tasks = ops::Owned::default();
    match client_settings(&config, snapshot_path)? {
        Some(settings) => {
            let (replica, state) = (relay.replica.clone(), relay.feed.clone());
            // Impressions and evaluation counts go upstream on the feed's session; the client
            // stays until the flusher's final flush is done (or the deadline nears).
            let (feed_upstream, outbox) = upstream::channel();
            tasks.spawn_with_stop("insights flusher", |stopping| {
                flush::run(insights.clone(), Arc::new(feed_upstream), stopping)
            });
            tasks.spawn_with_stop("feed client", |stopping| {
                client::run(settings, replica, state, journal, outbox, stopping)
            });
        }
        None => {
            tracing::warn!("FEED_ADDR is not set: serving the snapshot file only, with no updates");
        }
    }

    let health = Health::new();
    {
        let (relay, health) = (relay.clone(), health.clone());
        tasks.spawn("readiness", async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                let (ok, detail) = relay.readiness();
                health.set(DATA_CHECK, ok, detail);
            }
        });
    }
    let (ok, detail) = relay.readiness();
    health.set(DATA_CHECK, ok, detail);
    let (sdk, events) = SdkState::with_insights(relay.served(), &config.serving, insights);
    tasks.spawn("event hub", events);
    ops::run_service(
        &config.common,
        config.port,
        Some(Arc::new(sdk.clone())),
        |metrics| app(health.clone(), metrics, sdk, relay.clone()),
        checkgate_edge::operations(relay.clone()),
        || {},
        tasks,
    )
    .await
}

/// Opens the change journal and replays it over what the snapshot file brought back (unless
/// that file was refused: its journal then has nothing to build on). A journal that cannot be
/// read is set aside (renamed `.refused`) and a new one started; `/status` then says that what
/// was served before may have been newer than what is served now.
fn open_journal(
    path: &std::path::Path,
    replica: &Replica,
    snapshot_refused: bool,
    feed: &FeedState,
) -> Option<Journal> {
    let at_ms = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64);
    match Journal::open(path) {
        Ok((journal, recovered)) => {
            if recovered.discarded_bytes > 0 {
                tracing::warn!(
                    bytes = recovered.discarded_bytes,
                    "cut an unfinished record from the end of the change journal"
                );
            }
            if !snapshot_refused && !recovered.entries.is_empty() {
                tracing::info!(
                    entries = recovered.entries.len(),
                    "replaying the change journal"
                );
                journal::replay(replica, recovered.entries, at_ms);
            }
            Some(journal)
        }
        Err(e) => {
            metrics::counter!("checkgate_journal_failures_total").increment(1);
            tracing::error!(cause = %e, "refusing the change journal; the snapshot file may be older than what was served");
            let mut aside = path.as_os_str().to_owned();
            aside.push(".refused");
            if let Err(e) = std::fs::rename(path, &aside) {
                tracing::error!(cause = %e, "cannot set the change journal aside; running without one");
                return None;
            }
            feed.journal_failed(format!("the change journal was refused at start ({e}); the snapshot file may be older than what was served before"));
            Journal::open(path)
                .map_err(|e| tracing::error!(cause = %e, "cannot start a new change journal; running without one"))
                .ok()
                .map(|(journal, _)| journal)
        }
    }
}

/// The feed client's settings, when a feed is configured (validated with the configuration).
fn client_settings(
    config: &EdgeConfig,
    snapshot_path: std::path::PathBuf,
) -> anyhow::Result<Option<ClientSettings>> {
    let (Some(_), Some(token)) = (&config.feed_addr, &config.edge_token) else {
        return Ok(None);
    };
    let via = if config.feed_over_nats() {
        let (nats, control) = config
            .nats_feed()
            .map_err(|e| anyhow::anyhow!("{}: {}", e.variable, e.problem))?;
        Via::Nats {
            nats: Box::new(nats),
            control,
        }
    } else {
        let trust = match (&config.feed_fingerprint, &config.feed_ca) {
            (Some(fingerprint), _) => Trust::Fingerprint(
                parse_fingerprint(fingerprint)
                    .map_err(|e| anyhow::anyhow!("FEED_FINGERPRINT {e}"))?,
            ),
            (None, Some(ca)) => Trust::Roots(
                CertificateDer::pem_file_iter(ca)
                    .with_context(|| format!("reading FEED_CA {}", ca.display()))?
                    .collect::<Result<Vec<_>, _>>()
                    .with_context(|| format!("FEED_CA {} is not PEM certificates", ca.display()))?,
            ),
            (None, None) => anyhow::bail!("FEED_FINGERPRINT or FEED_CA is required with FEED_ADDR"),
        };
        let server_name = config
            .feed_server_name
            .clone()
            .or_else(|| config.feed_host())
            .unwrap_or_else(|| "localhost".into());
        Via::Quic { server_name, trust }
    };
    Ok(Some(ClientSettings {
        addrs: config.feed_addrs(),
        via,
        token: token.clone(),
        name: config.edge_name.clone(),
        region: config.edge_region.clone(),
        anti_entropy: Duration::from_secs(config.anti_entropy_seconds),
        snapshot_path,
    }))
}

//! `checkgate-edge`: parses its configuration (refusing a bad value before binding any port),
//! then serves until SIGTERM or Ctrl-C.

use std::net::SocketAddr;

use checkgate_edge::config::EdgeConfig;
use checkgate_edge::ops::{self, Health};
use checkgate_edge::{DATA_CHECK, app};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: EdgeConfig = ops::parse_or_exit("checkgate-edge", EdgeConfig::validate);
    ops::telemetry::init(&config.common.rust_log, config.common.log_format)?;
    let metrics = ops::metrics::handle();
    ops::metrics::describe_process("checkgate-edge");

    let health = Health::new();
    health.set(DATA_CHECK, false, "no flag data loaded yet");

    let main_addr = SocketAddr::new(config.common.host, config.port);
    let mut servers = Vec::new();
    match config.common.metrics_addr {
        Some(addr) => {
            servers.push((ops::bind(main_addr).await?, app(health.clone(), None)));
            servers.push((
                ops::bind(addr).await?,
                ops::health::metrics_routes(metrics.clone()),
            ));
        }
        None => servers.push((
            ops::bind(main_addr).await?,
            app(health.clone(), Some(metrics.clone())),
        )),
    }
    let upkeep = tokio::spawn(ops::metrics::upkeep(metrics));
    let result = ops::serve(
        servers,
        ops::shutdown_signal(),
        config.common.shutdown_grace(),
    )
    .await;
    upkeep.abort();
    tracing::info!("stopped");
    result
}

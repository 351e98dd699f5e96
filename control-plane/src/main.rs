//! `checkgate-control`: parses its configuration (refusing a bad value before binding any
//! port), then serves until SIGTERM or Ctrl-C.

use std::net::SocketAddr;

use checkgate_control::config::ControlConfig;
use checkgate_control::{STARTED_CHECK, app};
use checkgate_edge::ops::{self, Health};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: ControlConfig = ops::parse_or_exit("checkgate-control", ControlConfig::validate);
    ops::telemetry::init(&config.common.rust_log, config.common.log_format)?;
    let metrics = ops::metrics::handle();
    ops::metrics::describe_process("checkgate-control");

    let health = Health::new();
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
    health.set(STARTED_CHECK, true, "accepting requests");
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

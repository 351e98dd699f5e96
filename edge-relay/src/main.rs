//! `checkgate-edge`: parses its configuration (refusing a bad value before binding any port),
//! then serves until SIGTERM or Ctrl-C.

use checkgate_edge::config::EdgeConfig;
use checkgate_edge::ops::{self, Health};
use checkgate_edge::{DATA_CHECK, app};

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
    let health = Health::new();
    health.set(DATA_CHECK, false, "no flag data loaded yet");
    ops::run_service(
        &config.common,
        config.port,
        |metrics| app(health.clone(), metrics),
        || {},
    )
    .await
}

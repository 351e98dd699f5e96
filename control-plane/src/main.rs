//! `checkgate-control`: parses its configuration (refusing a bad value before binding any
//! port), then serves until SIGTERM or Ctrl-C.

use checkgate_control::config::ControlConfig;
use checkgate_control::{STARTED_CHECK, app};
use checkgate_edge::ops::{self, Health};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: ControlConfig = ops::parse_or_exit("checkgate-control", ControlConfig::validate);
    ops::telemetry::init(&config.common.rust_log, config.common.log_format)?;
    ops::metrics::describe_process("checkgate-control");
    let health = Health::new();
    ops::run_service(
        &config.common,
        config.port,
        |metrics| app(health.clone(), metrics),
        || health.set(STARTED_CHECK, true, "accepting requests"),
    )
    .await
}

//! The edge's configuration: every setting is a flag and an environment variable, so
//! `checkgate-edge --help` documents all of them.

use std::path::PathBuf;

use clap::Parser;

use crate::ops::CommonArgs;
use crate::ops::config::InvalidSetting;
use crate::ops::telemetry;

/// Checkgate edge relay: serves flags near the SDKs.
#[derive(Debug, Clone, Parser)]
#[command(name = "checkgate-edge", version, about)]
pub struct EdgeConfig {
    /// Port of the public listener (SDK stream, evaluation, health).
    #[arg(long, env = "PORT", default_value_t = 3100)]
    pub port: u16,

    /// Where the edge keeps its snapshot of the flags, to serve after a restart even when the
    /// control plane is unreachable.
    #[arg(long, env = "CHECKGATE_DATA_DIR", default_value = "./data/edge")]
    pub data_dir: PathBuf,

    /// Listener, logging, metrics and shutdown settings, shared with the other binary.
    #[command(flatten)]
    pub common: CommonArgs,
}

impl EdgeConfig {
    /// Checks what clap's types cannot.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        telemetry::check_filter(&self.common.rust_log).map_err(|problem| InvalidSetting {
            variable: "RUST_LOG",
            flag: "log",
            problem,
        })?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(InvalidSetting {
                variable: "CHECKGATE_DATA_DIR",
                flag: "data-dir",
                problem: "must not be empty".into(),
            });
        }
        Ok(())
    }
}

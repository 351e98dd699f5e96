//! Configuration plumbing: the settings both binaries share, and parsing that reports a bad
//! value in one line naming the environment variable and exits with status 2, before any port
//! is bound.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, FromArgMatches, ValueEnum};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Settings every Checkgate process has.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Address to listen on. Use 0.0.0.0 (or ::) to accept connections from other hosts.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Log filter, in `tracing` syntax (`info`, `checkgate_edge=debug,info`, ...).
    #[arg(long = "log", env = "RUST_LOG", default_value = "info")]
    pub rust_log: String,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Serve /metrics on this separate address (e.g. 127.0.0.1:9464) instead of the main port,
    /// to keep it off the public surface.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Seconds that open requests and streams get to finish after a shutdown signal.
    #[arg(long = "shutdown-grace-seconds", env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace_seconds: u64,
}

impl CommonArgs {
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }
}

/// A configuration value that parsed but is not acceptable.
#[derive(Debug, thiserror::Error)]
#[error("{variable} (--{flag}): {problem}")]
pub struct InvalidSetting {
    pub variable: &'static str,
    pub flag: &'static str,
    pub problem: String,
}

/// Renders a clap error as one line, naming the environment variable behind the argument.
pub fn one_line<C: CommandFactory>(err: &clap::Error) -> String {
    let rendered = err.to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .trim();
    let arg = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    // "--port <PORT>" → "port"
    let long = arg
        .trim_start_matches("--")
        .split([' ', '='])
        .next()
        .unwrap_or("")
        .to_owned();
    let env = C::command()
        .get_arguments()
        .find(|a| a.get_long() == Some(long.as_str()))
        .and_then(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()));
    match env {
        Some(env) => format!("{env} (--{long}): {first}"),
        None => first.to_owned(),
    }
}

/// Parses the process's arguments and environment into `C`, then validates it. `--help` and
/// `--version` print and exit 0; anything wrong prints one line to standard error and exits
/// with status 2.
#[allow(
    clippy::exit,
    clippy::print_stderr,
    reason = "the one place a binary reports bad configuration and stops"
)]
pub fn parse_or_exit<C>(binary: &str, validate: impl FnOnce(&C) -> Result<(), InvalidSetting>) -> C
where
    C: CommandFactory + FromArgMatches,
{
    let parsed = C::command()
        .try_get_matches()
        .and_then(|m| C::from_arg_matches(&m));
    let config = match parsed {
        Ok(c) => c,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // A closed pipe (`--help | head`) is not an error worth a panic.
            let _ = write!(std::io::stdout(), "{e}");
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("{binary}: invalid configuration: {}", one_line::<C>(&e));
            std::process::exit(2);
        }
    };
    if let Err(e) = validate(&config) {
        eprintln!("{binary}: invalid configuration: {e}");
        std::process::exit(2);
    }
    config
}

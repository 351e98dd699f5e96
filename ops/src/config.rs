//! Configuration plumbing: the settings both binaries share, and parsing that turns a bad
//! value into one line naming the environment variable (and exit status 2), so `main` can
//! refuse it before any port is bound.

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

    /// The operations listener: serve /metrics (and an edge's /status) on this separate address
    /// (e.g. 127.0.0.1:9464) instead of the main port, to keep them off the public surface.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Seconds the whole shutdown may take after a shutdown signal: open requests finish and
    /// background work winds down against this one deadline (SSE streams end at once, so
    /// their SDKs reconnect elsewhere).
    #[arg(long = "shutdown-grace-seconds", env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace_seconds: u64,

    /// Seconds a connection gets to send a whole request head: one that sends an incomplete
    /// head, or nothing, is closed after this long. It is also how long a keep-alive
    /// connection may sit idle between two requests.
    #[arg(long = "header-timeout-seconds", env = "HEADER_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_seconds: u64,

    /// Open connections the public listener holds at most (SSE streams included); past it, a
    /// new connection is answered 503 with Retry-After and closed. Default: the process's
    /// open-file limit less room for the feed, the store and files.
    #[arg(long = "max-connections", env = "MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_connections: Option<u64>,
}

/// File descriptors kept back from [`CommonArgs::max_connections`]'s default, for the feed,
/// the store, the snapshot and journal files, the operations listener and logs.
pub const RESERVED_FILES: u64 = 256;

impl CommonArgs {
    /// How long open requests and streams get to finish after a shutdown signal.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }

    /// How long a connection gets to send a request head (and may idle between requests).
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_seconds)
    }

    /// The cap on open public connections: `MAX_CONNECTIONS`, or the open-file limit less
    /// [`RESERVED_FILES`] (at least 64).
    pub fn max_connections(&self) -> usize {
        let limit = self
            .max_connections
            .unwrap_or_else(|| open_file_limit().saturating_sub(RESERVED_FILES).max(64));
        usize::try_from(limit).unwrap_or(usize::MAX)
    }
}

/// The soft limit on this process's open files, read from `/proc/self/limits` (1,024, the
/// usual default, where it cannot be read).
pub fn open_file_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| soft_open_files(&text))
        .unwrap_or(1024)
}

/// The soft "Max open files" limit in the text of `/proc/self/limits`.
fn soft_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line.split_whitespace().nth(3)? {
        "unlimited" => Some(u64::MAX),
        soft => soft.parse().ok(),
    }
}

/// A configuration value that parsed but is not acceptable.
#[derive(Debug, thiserror::Error)]
#[error("{variable} (--{flag}): {problem}")]
pub struct InvalidSetting {
    /// The environment variable, named first because that is how services are configured.
    pub variable: &'static str,
    /// The matching command-line flag, without the leading `--`.
    pub flag: &'static str,
    /// What is wrong, phrased without echoing a secret value.
    pub problem: String,
}

/// Why configuration parsing stopped the program instead of returning a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// `--help` or `--version` was asked for: the text belongs on standard output, exit 0.
    Info(String),
    /// A setting is missing or wrong: one line for standard error, exit 2.
    Invalid(String),
}

impl Stop {
    /// The status the process exits with: 0 for help and version, 2 for bad configuration.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Info(_) => 0,
            Self::Invalid(_) => 2,
        }
    }

    /// Writes the message where it belongs and returns [`Stop::exit_code`]. A closed pipe
    /// (`--help | head`) is not worth reporting.
    pub fn report(&self) -> i32 {
        match self {
            Self::Info(text) => {
                let _ = write!(std::io::stdout(), "{text}");
            }
            Self::Invalid(line) => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
        self.exit_code()
    }
}

/// Renders a clap error as one line naming the environment variable behind the argument:
/// `PORT (--port): invalid value 'abc': invalid digit found in string`.
pub fn one_line<C: CommandFactory>(err: &clap::Error) -> String {
    let arg = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let rendered = err.to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .trim();
    // The variable and flag lead the line, so clap's " for '--port <PORT>'" only repeats them.
    let message = if arg.is_empty() {
        first.to_owned()
    } else {
        first.replacen(&format!(" for '{arg}'"), "", 1)
    };
    // "--port <PORT>" → "port"
    let long = arg
        .trim_start_matches("--")
        .split([' ', '='])
        .next()
        .unwrap_or("");
    let env = C::command()
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()));
    match env {
        Some(env) => format!("{env} (--{long}): {message}"),
        None => message,
    }
}

/// Parses the process's arguments and environment into `C`, then validates it, without
/// printing or exiting: the binary's `main` reports the [`Stop`] and exits with its code.
pub fn parse<C>(
    binary: &str,
    validate: impl FnOnce(&C) -> Result<(), InvalidSetting>,
) -> Result<C, Stop>
where
    C: CommandFactory + FromArgMatches,
{
    parse_from(binary, std::env::args_os(), validate)
}

/// [`parse`] with explicit arguments (the first is the program name); the environment is
/// still read for every setting that has a variable.
pub fn parse_from<C, I, T>(
    binary: &str,
    args: I,
    validate: impl FnOnce(&C) -> Result<(), InvalidSetting>,
) -> Result<C, Stop>
where
    C: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let config = C::command()
        .try_get_matches_from(args)
        .and_then(|m| C::from_arg_matches(&m))
        .map_err(|e| match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Stop::Info(e.to_string()),
            _ => Stop::Invalid(format!(
                "{binary}: invalid configuration: {}",
                one_line::<C>(&e)
            )),
        })?;
    validate(&config)
        .map_err(|e| Stop::Invalid(format!("{binary}: invalid configuration: {e}")))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// A configuration of its own, with a variable no environment sets, so these tests do not
    /// depend on the environment they run in.
    #[derive(Debug, Parser)]
    #[command(name = "probe", version)]
    struct Probe {
        /// A port.
        #[arg(long, env = "CHECKGATE_CONFIG_TEST_PORT", default_value_t = 1)]
        port: u16,
    }

    fn accept(_: &Probe) -> Result<(), InvalidSetting> {
        Ok(())
    }

    #[test]
    fn a_bad_value_is_one_line_naming_variable_and_flag() {
        let stop = parse_from::<Probe, _, _>("probe", ["probe", "--port", "abc"], accept)
            .expect_err("abc is not a port");
        assert_eq!(
            stop,
            Stop::Invalid(
                "probe: invalid configuration: CHECKGATE_CONFIG_TEST_PORT (--port): \
                 invalid value 'abc': invalid digit found in string"
                    .into()
            )
        );
        assert_eq!(stop.exit_code(), 2);
    }

    #[test]
    fn semantic_refusals_take_the_same_path() {
        let stop = parse_from::<Probe, _, _>("probe", ["probe"], |_| {
            Err(InvalidSetting {
                variable: "CHECKGATE_CONFIG_TEST_PORT",
                flag: "port",
                problem: "must be odd".into(),
            })
        })
        .expect_err("refused");
        assert_eq!(
            stop,
            Stop::Invalid(
                "probe: invalid configuration: CHECKGATE_CONFIG_TEST_PORT (--port): must be odd"
                    .into()
            )
        );
    }

    #[test]
    fn help_and_version_are_not_errors() {
        for flag in ["--help", "--version"] {
            let stop =
                parse_from::<Probe, _, _>("probe", ["probe", flag], accept).expect_err("stops");
            assert!(matches!(stop, Stop::Info(_)), "{flag}: {stop:?}");
            assert_eq!(stop.exit_code(), 0);
        }
    }

    #[test]
    fn unknown_arguments_are_one_line_too() {
        let stop =
            parse_from::<Probe, _, _>("probe", ["probe", "--bogus"], accept).expect_err("refused");
        assert_eq!(
            stop,
            Stop::Invalid(
                "probe: invalid configuration: unexpected argument '--bogus' found".into()
            )
        );
    }

    #[test]
    fn the_open_file_limit_is_read_from_proc() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            20000                524288               files     \n";
        assert_eq!(soft_open_files(limits), Some(20_000));
        assert_eq!(
            soft_open_files(
                "Max open files            unlimited            unlimited            files"
            ),
            Some(u64::MAX)
        );
        assert_eq!(soft_open_files("Max processes 1 1 processes"), None);
        assert!(open_file_limit() > 0);
    }
}

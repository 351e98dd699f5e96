//! `checkgate-loadtest`: load scenarios for the hot paths. Every loop is bounded in requests
//! and time, and all traffic stays on loopback. Results are JSON on standard output (or in
//! `--out`), so runs can be compared and plotted.

mod api;
mod ceiling;
mod control;
mod driver;
mod feed;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The command line: one subcommand per scenario.
#[derive(Debug, Parser)]
#[command(
    name = "checkgate-loadtest",
    version,
    about = "Load scenarios for Checkgate's hot paths (loopback only, bounded)"
)]
struct Cli {
    /// Write the JSON result here instead of standard output.
    #[arg(long, global = true)]
    out: Option<PathBuf>,

    /// Which scenario to run, with its own settings.
    #[command(subcommand)]
    scenario: Scenario,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
enum Scenario {
    /// This machine's HTTP ceiling: a minimal in-process server with a fixed 200-byte body.
    Ceiling {
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        connections: u64,
        /// Longest the scenario runs: `5s`, `500ms`, `1m`, or a number of seconds (at most 10m).
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        duration: Duration,
        /// Most requests it sends in all.
        #[arg(long, default_value_t = 2_000_000)]
        max_requests: u64,
    },
    /// The control plane's REST API (the real binary, as a child process on loopback).
    Api {
        /// Which route to load.
        #[arg(long, value_enum)]
        route: api::Route,
        /// Flags seeded into the environment first.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        flags: u64,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1_000))]
        connections: u64,
        /// Longest the measurement runs (after seeding).
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        /// Most requests it sends in all.
        #[arg(long, default_value_t = 1_000_000)]
        max_requests: u64,
        /// Run on a fresh database of this PostgreSQL server (created and dropped by the
        /// run, e.g. `postgres://postgres@127.0.0.1:5432/postgres`) instead of the embedded
        /// SQLite default. Loopback servers only.
        #[arg(long)]
        postgres: Option<String>,
        /// The `checkgate-control` binary; default: the one beside this binary.
        #[arg(long)]
        control_bin: Option<PathBuf>,
    },
    /// Feed propagation: writes at a constant rate, each timed from its intended send until
    /// an edge (this process's feed client) has applied it.
    FeedApply {
        /// Writes a second.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        rate: u32,
        /// How long it writes.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        /// Most writes in all.
        #[arg(long, default_value_t = 100_000)]
        max_writes: u64,
        /// A fresh database on this loopback PostgreSQL server instead of SQLite.
        #[arg(long)]
        postgres: Option<String>,
        /// The `checkgate-control` binary; default: the one beside this binary.
        #[arg(long)]
        control_bin: Option<PathBuf>,
    },
    /// Feed bootstrap: an environment of N flags — time for an empty edge to be ready, the
    /// snapshot file's size, and how long loading it takes.
    FeedSnapshot {
        /// Flags in the environment.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        flags: u64,
        /// A fresh database on this loopback PostgreSQL server instead of SQLite.
        #[arg(long)]
        postgres: Option<String>,
        /// The `checkgate-control` binary; default: the one beside this binary.
        #[arg(long)]
        control_bin: Option<PathBuf>,
    },
}

/// Longest run accepted, so a typo cannot keep a machine busy for hours.
const MAX_DURATION: Duration = Duration::from_secs(600);

/// Parses `5s`, `500ms`, `1m` or a bare number of seconds, fractions allowed.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let seconds_per_unit = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(format!("unknown unit {unit:?} (use ms, s or m)")),
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a number"))?;
    let seconds = number * seconds_per_unit;
    if !(0.0..=MAX_DURATION.as_secs_f64()).contains(&seconds) {
        return Err(format!("must be between 0 and {}s", MAX_DURATION.as_secs()));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let report: serde_json::Value = match cli.scenario {
        Scenario::Ceiling {
            connections,
            duration,
            max_requests,
        } => {
            serde_json::to_value(ceiling::run(connections as usize, duration, max_requests).await?)?
        }
        Scenario::Api {
            route,
            flags,
            connections,
            duration,
            max_requests,
            postgres,
            control_bin,
        } => serde_json::to_value(
            api::run(api::Settings {
                route,
                flags: flags as usize,
                connections: connections as usize,
                duration,
                max_requests,
                postgres,
                control_bin,
            })
            .await?,
        )?,
        Scenario::FeedApply {
            rate,
            duration,
            max_writes,
            postgres,
            control_bin,
        } => {
            let postgres = postgres.map(api::loopback_postgres).transpose()?;
            let bin = control::control_bin(control_bin)?;
            serde_json::to_value(feed::apply(&bin, postgres, rate, duration, max_writes).await?)?
        }
        Scenario::FeedSnapshot {
            flags,
            postgres,
            control_bin,
        } => {
            let postgres = postgres.map(api::loopback_postgres).transpose()?;
            let bin = control::control_bin(control_bin)?;
            serde_json::to_value(feed::snapshot(&bin, postgres, flags as usize).await?)?
        }
    };
    let json = serde_json::to_string_pretty(&report)?;
    match cli.out {
        Some(path) => std::fs::write(&path, json + "\n")?,
        None => {
            use std::io::Write as _;
            writeln!(std::io::stdout(), "{json}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_plain_seconds() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "2h", "-1s", "11m", "NaN", "inf"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}

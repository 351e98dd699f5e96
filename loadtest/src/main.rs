//! `checkgate-loadtest`: load scenarios for the hot paths. Every loop is bounded in requests
//! and time, and all traffic stays on loopback. Results are JSON on standard output (or in
//! `--out`), so runs can be compared and plotted.

mod ceiling;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

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

    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// This machine's HTTP ceiling: a minimal in-process server with a fixed 200-byte body.
    Ceiling {
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        connections: u64,
        /// Longest the scenario runs, in seconds.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Most requests it sends in all.
        #[arg(long, default_value_t = 2_000_000)]
        max_requests: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let report = match cli.scenario {
        Scenario::Ceiling {
            connections,
            duration,
            max_requests,
        } => {
            anyhow::ensure!(
                duration.is_finite() && (0.0..=600.0).contains(&duration),
                "--duration must be between 0 and 600 seconds"
            );
            ceiling::run(
                connections as usize,
                Duration::from_secs_f64(duration),
                max_requests,
            )
            .await?
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

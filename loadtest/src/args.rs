//! The load test's command line: the scenarios and the settings they share.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::{api, control, feed, serve, stack};

/// The command line: one subcommand per scenario.
#[derive(Debug, Parser)]
#[command(
    name = "checkgate-loadtest",
    version,
    about = "Load scenarios for Checkgate's hot paths (loopback only, bounded)"
)]
pub(crate) struct Cli {
    /// Write the JSON result here instead of standard output.
    #[arg(long, global = true)]
    pub(crate) out: Option<PathBuf>,

    /// Write a latency plot (SVG) of the run here; for `quick`, a directory for one per
    /// scenario.
    #[arg(long, global = true)]
    pub(crate) plot: Option<PathBuf>,

    /// Every scenario, small, in a few minutes: the same as the `quick` subcommand.
    #[arg(long)]
    pub(crate) quick: bool,

    /// Which scenario to run, with its own settings.
    #[command(subcommand)]
    pub(crate) scenario: Option<Scenario>,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub(crate) enum Scenario {
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
    /// The ceiling's server, run by `ceiling` (and `--ceiling`) as a child process: answers on
    /// a loopback port it prints, until standard input closes.
    #[command(hide = true)]
    CeilingServer,
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
    /// Impressions stored end to end: batches posted to the real control plane with an SDK key
    /// (204 once committed), a check that the stats count every accepted one, then the
    /// latency of the stats route and of the live tail's `since_id` poll over what is stored.
    Impressions {
        /// Impressions per request (1–500).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=500))]
        batch: u64,
        /// Concurrent keep-alive connections posting batches.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1_000))]
        connections: u64,
        /// Longest the ingest runs.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        /// Most batches it posts in all.
        #[arg(long, default_value_t = 20_000)]
        max_requests: u64,
        /// How long each read route (stats, since_id) is measured afterwards.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        reads: Duration,
        /// Spread the impressions' `evaluated_at` over this many past days (0: all evaluated
        /// now, from 64 fixed bodies); with it every batch is new, so the stats read rollups and
        /// users sketches of many hours and days, as after weeks of traffic.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=29))]
        spread_days: u32,
        /// A fresh database on this loopback PostgreSQL server instead of SQLite.
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
        /// How the edge follows the feed.
        #[arg(long, value_enum, default_value = "quic")]
        transport: feed::Transport,
        /// With `--transport nats`: a running nats-server (`nats://127.0.0.1:PORT`, loopback
        /// only, JetStream on) instead of one of the run's own; the run uses a stream of its
        /// own there and deletes it at the end.
        #[arg(long)]
        nats_url: Option<String>,
        /// A fresh database on this loopback PostgreSQL server instead of SQLite.
        #[arg(long)]
        postgres: Option<String>,
        /// The `checkgate-control` binary; default: the one beside this binary.
        #[arg(long)]
        control_bin: Option<PathBuf>,
    },
    /// Feed fan-out: N edges (in this process) follow one environment; for each change, the
    /// time until all N have applied it, and the control plane's CPU per change.
    FeedFanout {
        /// Fleet sizes to measure, one round each: `1,10,100,200`.
        #[arg(long, value_delimiter = ',', default_value = "1,10,100,200",
              value_parser = clap::value_parser!(u64).range(1..=1_000))]
        edges: Vec<u64>,
        /// Changes per round, written one after another.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        changes: u64,
        /// Pause after every edge applied a change, before the next write.
        #[arg(long, default_value = "20ms", value_parser = parse_duration)]
        interval: Duration,
        /// How the edges follow the feed.
        #[arg(long, value_enum, default_value = "nats")]
        transport: feed::Transport,
        /// With `--transport nats`: a running loopback nats-server instead of one of the
        /// run's own (see `feed-apply`).
        #[arg(long)]
        nats_url: Option<String>,
        /// The `checkgate-control` binary; default: the one beside this binary.
        #[arg(long)]
        control_bin: Option<PathBuf>,
    },
    /// Read-your-writes: writes at a constant rate, each read back at once at an edge process
    /// with `X-Checkgate-Min-Version`; the write's answer → that evaluation answered 200.
    ReadYourWrites {
        /// Writes a second.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000))]
        rate: u32,
        /// How long it writes.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        /// Most writes in all.
        #[arg(long, default_value_t = 10_000)]
        max_writes: u64,
        /// How the edge follows the feed.
        #[arg(long, value_enum, default_value = "quic")]
        transport: feed::Transport,
        /// With `--transport nats`: a running loopback nats-server instead of one of the
        /// run's own (see `feed-apply`).
        #[arg(long)]
        nats_url: Option<String>,
        /// The `checkgate-control` binary; default: the one beside this binary (the edge's
        /// is looked for beside it).
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
    /// Evaluation on an edge: our API or OFREP, one flag or all (closed loop, or open loop
    /// with --rate).
    Eval {
        /// Which route.
        #[arg(long, value_enum)]
        route: serve::Eval,
        #[command(flatten)]
        edge: EdgeArgs,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// The rule payload on an edge (`GET /api/v1/flags`): plain, gzip, or 304.
    Rules {
        /// Which form.
        #[arg(long, value_enum, default_value = "plain")]
        form: serve::Rules,
        #[command(flatten)]
        edge: EdgeArgs,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// The SSE bootstrap on an edge: connect, read to the `ready` event, close, repeatedly.
    BootstrapSse {
        #[command(flatten)]
        edge: EdgeArgs,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1_000))]
        connections: u64,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
    },
    /// N streams open on one edge, then one flag write: write-to-receipt latency per stream,
    /// and the edge's memory per idle stream.
    SseFanout {
        #[command(flatten)]
        edge: EdgeArgs,
        /// Streams to open.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=15_000))]
        streams: u64,
    },
    /// N streams dropped at once and reconnecting at once: time until each has its bootstrap.
    ReconnectStorm {
        #[command(flatten)]
        edge: EdgeArgs,
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=15_000))]
        streams: u64,
    },
    /// API writes at a constant rate, each timed until an SDK stream on the edge receives it
    /// (control plane → feed → edge → SSE).
    Propagation {
        #[command(flatten)]
        edge: EdgeArgs,
        /// Writes a second.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=5_000))]
        rate: u32,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
    },
    /// Compile stall: flags at the regex caps written while `/health` and evaluation on the
    /// edge are polled back to back; the latency of each poll meanwhile.
    CompileStall {
        #[command(flatten)]
        edge: EdgeArgs,
        /// Seeded flags rewritten with regexes at the caps.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1_000))]
        capped: u64,
    },
    /// Feed catch-up: an environment of N flags; an edge takes its snapshot, stops, and comes
    /// back M changes behind — how fast it catches up through them.
    FeedCatchup {
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        flags: u64,
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        changes: u64,
        /// The `checkgate-control` binary; default: the one beside this binary.
        #[arg(long)]
        control_bin: Option<PathBuf>,
    },
    /// Every scenario, small: a functional check and a first look, in about two minutes.
    Quick {
        /// The `checkgate-control` binary; default: the one beside this binary (the edge's
        /// is looked for beside it).
        #[arg(long)]
        control_bin: Option<PathBuf>,
    },
}

/// What the serving scenarios run against.
#[derive(Debug, Clone, Args)]
pub(crate) struct EdgeArgs {
    /// Flags seeded into the environment.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(crate) flags: u64,
    /// Measure a running edge instead (`http://127.0.0.1:PORT`, loopback only), with --key.
    #[arg(long, requires = "key")]
    pub(crate) target: Option<String>,
    /// A server SDK key of the --target edge.
    #[arg(long)]
    pub(crate) key: Option<String>,
    /// The `checkgate-control` binary; default: the one beside this binary (the edge's is
    /// looked for beside it).
    #[arg(long)]
    pub(crate) control_bin: Option<PathBuf>,
    /// A setting of the edge this run starts, `NAME=value` (repeatable), such as
    /// `COUNT_EVALUATIONS=false` to measure what counting evaluations costs.
    #[arg(long = "edge-env", value_parser = parse_setting)]
    pub(crate) edge_env: Vec<(String, String)>,
}

/// `NAME=value`.
fn parse_setting(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=value"))?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("{name:?} is not a setting's name"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

impl EdgeArgs {
    pub(crate) async fn stack(&self) -> anyhow::Result<stack::Stack> {
        match (&self.target, &self.key) {
            (Some(url), Some(key)) => stack::Stack::target(url, key).await,
            _ => {
                stack::Stack::start_with(
                    &control::control_bin(self.control_bin.clone())?,
                    self.flags as usize,
                    &self.edge_env,
                )
                .await
            }
        }
    }
}

/// How hard a request scenario pushes.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadArgs {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) connections: u64,
    /// Longest the measurement runs.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Most requests in all.
    #[arg(long, default_value_t = 5_000_000)]
    pub(crate) max_requests: u64,
    /// Open loop: send this many requests a second, timed from their intended send time.
    /// Without it, closed loop: as fast as the server answers.
    #[arg(long)]
    pub(crate) rate: Option<u32>,
    /// Also measure this machine's ceiling (same connections and duration) in this run, and
    /// report the figure as a share of it.
    #[arg(long)]
    pub(crate) ceiling: bool,
}

impl LoadArgs {
    pub(crate) fn load(&self) -> serve::Load {
        serve::Load {
            connections: self.connections as usize,
            duration: self.duration,
            max_requests: self.max_requests,
            rate: self.rate,
        }
    }
}

/// Longest run accepted, so a typo cannot keep a machine busy for hours.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(900);

/// Parses `5s`, `500ms`, `1m` or a bare number of seconds, fractions allowed.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(crate) fn durations_take_units_or_plain_seconds() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("15m"), Ok(MAX_DURATION));
        for bad in ["", "s", "2h", "-1s", "16m", "NaN", "inf"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}

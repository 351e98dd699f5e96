//! `checkgate-loadtest`: load scenarios for the hot paths. Every loop is bounded in requests
//! and time, and all traffic stays on loopback. Results are JSON on standard output (or in
//! `--out`), so runs can be compared and plotted.

mod api;
mod args;
mod ceiling;
mod control;
mod driver;
mod fanout;
mod feed;
mod impressions;
mod nats;
mod plot;
mod progress;
mod quick;
mod report;
mod ryw;
mod serve;
mod sse;
mod stack;
mod stall;
mod watch;

use args::{Cli, LoadArgs, Scenario};
use clap::Parser as _;

/// Rounds a run with `--ceiling` is cut into, alternating with the ceiling's.
const CEILING_ROUNDS: u32 = 5;

/// Runs a request scenario; with `--ceiling`, in [`CEILING_ROUNDS`] rounds, each a slice of
/// the ceiling then a slice of the scenario, so that drift in what the shared machine gives
/// (other tenants, steal time) hits both alike. The share reported is the median of the
/// rounds' shares; the two reports cover all their rounds.
async fn with_ceiling<F, Fut>(load: &LoadArgs, mut run: F) -> anyhow::Result<Vec<report::Report>>
where
    F: FnMut(serve::Load) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<report::Report>>,
{
    if !load.ceiling {
        return Ok(vec![run(load.load()).await?]);
    }
    let slice = serve::Load {
        duration: load.duration / CEILING_ROUNDS,
        max_requests: (load.max_requests / u64::from(CEILING_ROUNDS)).max(1),
        ..load.load()
    };
    let mut both: Option<(report::Report, report::Report)> = None;
    let mut shares = Vec::new();
    for _ in 0..CEILING_ROUNDS {
        let ceiling = ceiling::run(slice.connections, slice.duration, slice.max_requests).await?;
        let report = run(slice).await?;
        shares.push(report.requests_per_second / ceiling.requests_per_second.max(1.0));
        both = Some(match both {
            None => (ceiling, report),
            Some((mut c, mut r)) => {
                c.absorb(ceiling);
                r.absorb(report);
                (c, r)
            }
        });
    }
    let (ceiling, mut report) = both.ok_or_else(|| anyhow::anyhow!("no rounds ran"))?;
    report.share_of_ceiling = Some(report::median(shares.clone()));
    report.share_of_ceiling_by_round = shares;
    Ok(vec![ceiling, report])
}

fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::to_value(value)?)
}

/// Writes the latency plot of `report` to `path`, when it has a distribution.
fn plot(report: &report::Report, path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(h) = &report.histogram {
        std::fs::write(path, plot::latency_svg(report.scenario, h))?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let scenario = match (cli.scenario, cli.quick) {
        (Some(_), true) => anyhow::bail!("--quick runs every scenario: give it without one"),
        (Some(scenario), false) => scenario,
        (None, true) => Scenario::Quick { control_bin: None },
        (None, false) => {
            use clap::CommandFactory as _;
            Cli::command().print_help()?;
            std::process::exit(2);
        }
    };
    let mut reports: Vec<report::Report> = Vec::new();
    let result: serde_json::Value = match scenario {
        Scenario::CeilingServer => return ceiling::serve().await,
        Scenario::Ceiling {
            connections,
            duration,
            max_requests,
        } => {
            reports.push(ceiling::run(connections as usize, duration, max_requests).await?);
            json(&reports[0])?
        }
        Scenario::Api {
            route,
            flags,
            connections,
            duration,
            max_requests,
            postgres,
            control_bin,
        } => {
            reports.push(
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
            );
            json(&reports[0])?
        }
        Scenario::Impressions {
            batch,
            connections,
            duration,
            max_requests,
            reads,
            spread_days,
            postgres,
            control_bin,
        } => {
            impressions::run(impressions::Settings {
                batch: batch as usize,
                connections: connections as usize,
                duration,
                max_requests,
                reads,
                spread_days,
                postgres,
                control_bin,
            })
            .await?
        }
        Scenario::FeedApply {
            rate,
            duration,
            max_writes,
            transport,
            nats_url,
            postgres,
            control_bin,
        } => {
            let postgres = postgres.map(api::loopback_postgres).transpose()?;
            let bin = control::control_bin(control_bin)?;
            let nats_url = nats_url.as_deref();
            json(
                &feed::apply(
                    &bin, postgres, transport, nats_url, rate, duration, max_writes,
                )
                .await?,
            )?
        }
        Scenario::FeedFanout {
            edges,
            changes,
            interval,
            transport,
            nats_url,
            control_bin,
        } => {
            let bin = control::control_bin(control_bin)?;
            let sizes: Vec<usize> = edges.iter().map(|&n| n as usize).collect();
            json(
                &fanout::run(
                    &bin,
                    transport,
                    nats_url.as_deref(),
                    &sizes,
                    changes as usize,
                    interval,
                )
                .await?,
            )?
        }
        Scenario::ReadYourWrites {
            rate,
            duration,
            max_writes,
            transport,
            nats_url,
            control_bin,
        } => {
            let bin = control::control_bin(control_bin)?;
            json(
                &ryw::run(
                    &bin,
                    transport,
                    nats_url.as_deref(),
                    rate,
                    duration,
                    max_writes,
                )
                .await?,
            )?
        }
        Scenario::FeedSnapshot {
            flags,
            postgres,
            control_bin,
        } => {
            let postgres = postgres.map(api::loopback_postgres).transpose()?;
            let bin = control::control_bin(control_bin)?;
            json(&feed::snapshot(&bin, postgres, flags as usize).await?)?
        }
        Scenario::Eval { route, edge, load } => {
            let stack = edge.stack().await?;
            let out = with_ceiling(&load, |l| serve::eval(&stack, route, l)).await;
            stack.stop().await?;
            reports = out?;
            json(&reports)?
        }
        Scenario::Rules { form, edge, load } => {
            let stack = edge.stack().await?;
            let out = with_ceiling(&load, |l| serve::rules(&stack, form, l)).await;
            stack.stop().await?;
            reports = out?;
            json(&reports)?
        }
        Scenario::BootstrapSse {
            edge,
            connections,
            duration,
        } => {
            let stack = edge.stack().await?;
            let out = sse::bootstrap(&stack, connections as usize, duration).await;
            stack.stop().await?;
            reports.push(out?);
            json(&reports[0])?
        }
        Scenario::SseFanout { edge, streams } => {
            let stack = edge.stack().await?;
            let out = sse::fanout(&stack, streams as usize).await;
            stack.stop().await?;
            json(&out?)?
        }
        Scenario::ReconnectStorm { edge, streams } => {
            let stack = edge.stack().await?;
            let out = sse::storm(&stack, streams as usize).await;
            stack.stop().await?;
            json(&out?)?
        }
        Scenario::Propagation {
            edge,
            rate,
            duration,
        } => {
            let stack = edge.stack().await?;
            let out = sse::propagation(&stack, rate, duration).await;
            stack.stop().await?;
            json(&out?)?
        }
        Scenario::CompileStall { edge, capped } => {
            let stack = edge.stack().await?;
            let out = stall::run(&stack, capped as usize).await;
            stack.stop().await?;
            json(&out?)?
        }
        Scenario::FeedCatchup {
            flags,
            changes,
            control_bin,
        } => {
            let bin = control::control_bin(control_bin)?;
            json(&feed::catchup(&bin, flags as usize, changes as usize).await?)?
        }
        Scenario::Quick { control_bin } => {
            let bin = control::control_bin(control_bin)?;
            quick::run(&bin, cli.plot.as_deref()).await?
        }
    };
    if let Some(path) = &cli.plot
        && let Some(last) = reports.last()
    {
        plot(last, path)?;
    }
    let text = serde_json::to_string_pretty(&result)?;
    match cli.out {
        Some(path) => std::fs::write(&path, text + "\n")?,
        None => {
            use std::io::Write as _;
            writeln!(std::io::stdout(), "{text}")?;
        }
    }
    // `quick` is a functional check: any problem it found fails the run.
    if let Some(problems) = result["problems"].as_array()
        && !problems.is_empty()
    {
        anyhow::bail!("{} problems: {problems:?}", problems.len());
    }
    Ok(())
}

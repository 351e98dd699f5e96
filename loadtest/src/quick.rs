//! `quick`: every scenario, small — the test command's functional check of the load-test
//! binary, and a first look at the figures, in about two minutes. One control plane and edge
//! serve every edge scenario; the ceiling is measured first, and each request scenario is
//! also reported as a share of it.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::report::Report;
use crate::serve::{self, Eval, Load, Rules};
use crate::stack::Stack;
use crate::{api, ceiling, feed, impressions, plot, sse};

const CONNECTIONS: usize = 8;
const SECOND: Duration = Duration::from_secs(1);

pub(crate) async fn run(bin: &Path, plot_dir: Option<&Path>) -> anyhow::Result<Value> {
    if let Some(dir) = plot_dir {
        std::fs::create_dir_all(dir)?;
    }
    let closed = Load {
        connections: CONNECTIONS,
        duration: SECOND,
        max_requests: 5_000_000,
        rate: None,
    };
    let ceiling = ceiling::run(CONNECTIONS, SECOND, 5_000_000).await?;
    let mut requests: Vec<Report> = Vec::new();
    let mut others: Vec<Value> = Vec::new();

    let stack = Stack::start(bin, 100).await?;
    let edge_scenarios = async {
        for route in [
            Eval::One,
            Eval::All,
            Eval::OfrepOne,
            Eval::OfrepBulk,
            Eval::OfrepBulkNotModified,
            Eval::Impressions,
        ] {
            requests.push(serve::eval(&stack, route, closed).await?);
        }
        let open = Load {
            rate: Some(500),
            ..closed
        };
        requests.push(serve::eval(&stack, Eval::One, open).await?);
        for form in [Rules::Plain, Rules::Gzip, Rules::NotModified] {
            requests.push(serve::rules(&stack, form, closed).await?);
        }
        requests.push(sse::bootstrap(&stack, 4, SECOND).await?);
        others.push(serde_json::to_value(sse::fanout(&stack, 200).await?)?);
        others.push(serde_json::to_value(sse::storm(&stack, 200).await?)?);
        others.push(serde_json::to_value(
            sse::propagation(&stack, 50, 2 * SECOND).await?,
        )?);
        anyhow::Ok(())
    }
    .await;
    stack.stop().await?;
    edge_scenarios?;

    for route in [api::Route::ListFlags, api::Route::UpdateFlag] {
        requests.push(
            api::run(api::Settings {
                route,
                flags: 50,
                connections: 4,
                duration: SECOND,
                max_requests: 1_000_000,
                postgres: None,
                control_bin: Some(bin.to_owned()),
            })
            .await?,
        );
    }
    let stored = impressions::run(impressions::Settings {
        batch: 100,
        connections: 4,
        duration: SECOND,
        max_requests: 200,
        reads: SECOND / 2,
        spread_days: 2,
        postgres: None,
        control_bin: Some(bin.to_owned()),
    })
    .await?;
    if stored["lost"] != 0 {
        anyhow::bail!("impressions were lost: {stored}");
    }
    others.push(stored);
    others.push(serde_json::to_value(
        feed::apply(bin, None, feed::Transport::Quic, None, 50, SECOND, 1_000).await?,
    )?);
    others.push(serde_json::to_value(feed::snapshot(bin, None, 500).await?)?);
    others.push(serde_json::to_value(feed::catchup(bin, 200, 2_000).await?)?);

    for report in &mut requests {
        report.share_of_ceiling =
            Some(report.requests_per_second / ceiling.requests_per_second.max(1.0));
        if let (Some(dir), Some(h)) = (plot_dir, &report.histogram) {
            let name = if report.rate_per_second.is_some() {
                format!("{}-open.svg", report.scenario)
            } else {
                format!("{}.svg", report.scenario)
            };
            std::fs::write(dir.join(name), plot::latency_svg(report.scenario, h))?;
        }
    }
    // What makes the run a failure, as a functional check: errors, or changes not received.
    let mut problems = Vec::new();
    for report in &requests {
        if report.errors > 0 || report.requests == 0 {
            problems.push(format!(
                "{}: {} requests, errors {:?}",
                report.scenario, report.requests, report.errors_by_kind
            ));
        }
    }
    for scenario in &others {
        let name = scenario["scenario"].as_str().unwrap_or("?");
        let missed = match name {
            "sse-fanout" => scenario["received"] != scenario["opened"] || scenario["opened"] == 0,
            "reconnect-storm" => scenario["failed"] != 0,
            "propagation" => scenario["received"] != scenario["writes"],
            "feed-apply" => scenario["errors"] != 0,
            _ => false,
        };
        if missed {
            problems.push(format!("{name}: {scenario}"));
        }
    }
    Ok(json!({
        "ceiling": ceiling,
        "requests": requests,
        "scenarios": others,
        "problems": problems,
    }))
}

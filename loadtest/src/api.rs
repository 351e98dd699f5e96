//! `api`: the control plane's REST API under load — listing an environment's flags (Checkgate
//! answers 617 req/s for 200 flags on these machines) or updating flags — against the real
//! binary on SQLite or PostgreSQL, authenticated by an API token.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::ValueEnum;
use http_body_util::Full;
use hyper::Request;

use crate::control::{Backing, Control, control_bin};
use crate::driver::{MakeRequest, closed_loop};
use crate::report::{Report, ServerUsage};

/// Which route the load goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Route {
    /// `GET /api/environments/{env}/flags?limit=…` (all seeded flags).
    ListFlags,
    /// `PATCH /api/environments/{env}/flags/{key}`: each connection changes its own flag's
    /// rollout, so writes contend only for the environment's version.
    UpdateFlag,
}

/// The scenario's settings.
pub(crate) struct Settings {
    pub(crate) route: Route,
    pub(crate) flags: usize,
    pub(crate) connections: usize,
    pub(crate) duration: Duration,
    pub(crate) max_requests: u64,
    pub(crate) postgres: Option<String>,
    pub(crate) control_bin: Option<PathBuf>,
}

/// Refuses a PostgreSQL server that is not on loopback: load stays on this machine.
pub(crate) fn loopback_postgres(server: String) -> anyhow::Result<String> {
    let host = server
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@').map_or(Some(rest), |(_, h)| Some(h)))
        .and_then(|h| h.split(['/', '?']).next())
        .map(|h| h.rsplit_once(':').map_or(h, |(host, _)| host))
        .unwrap_or_default();
    if !["127.0.0.1", "localhost", "[::1]"].contains(&host) {
        anyhow::bail!("--postgres must name a loopback server, not {host:?}");
    }
    Ok(server)
}

pub(crate) async fn run(settings: Settings) -> anyhow::Result<Report> {
    let bin = control_bin(settings.control_bin)?;
    let backing = match settings.postgres {
        Some(server) => Backing::Postgres(loopback_postgres(server)?),
        None => Backing::Sqlite,
    };
    let control = Control::start(&bin, backing).await?;
    let outcome = measure(
        &control,
        settings.route,
        settings.flags,
        settings.connections,
        settings.duration,
        settings.max_requests,
    )
    .await;
    control.stop().await?;
    outcome
}

async fn measure(
    control: &Control,
    route: Route,
    flags: usize,
    connections: usize,
    duration: Duration,
    max_requests: u64,
) -> anyhow::Result<Report> {
    control.seed_flags(flags)?;
    let host = control.addr.to_string();
    let auth = format!("Bearer {}", control.token);
    let env = control.environment.clone();
    let flags = flags.max(1);
    let make: Arc<MakeRequest> = match route {
        Route::ListFlags => {
            let path = format!("/api/environments/{env}/flags?limit={flags}");
            Arc::new(move |_, _| {
                Ok(Request::get(path.as_str())
                    .header("host", &host)
                    .header("authorization", &auth)
                    .body(Full::new(Bytes::new()))?)
            })
        }
        Route::UpdateFlag => Arc::new(move |connection, n| {
            let body = format!(r#"{{"rollout_percentage":{}}}"#, n % 101);
            Ok(Request::patch(format!(
                "/api/environments/{env}/flags/load-{}",
                connection % flags
            ))
            .header("host", &host)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?)
        }),
    };
    let before = control.usage();
    let name = match route {
        Route::ListFlags => "api-list-flags",
        Route::UpdateFlag => "api-update-flag",
    };
    let mut report = closed_loop(
        name,
        control.addr,
        connections,
        duration,
        max_requests,
        make,
    )
    .await?;
    if let (Some((_, cpu_before)), Some((rss, cpu_after))) = (before, control.usage()) {
        report.server = Some(ServerUsage {
            rss_kib: rss,
            cpu_seconds: cpu_after - cpu_before,
        });
    }
    Ok(report)
}

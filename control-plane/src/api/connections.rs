//! Connected SDKs across the fleet: Checkgate's `GET /api/health/connections`, answered for
//! every edge and control-plane instance from their latest reports
//! ([`crate::store::connections`]), and `GET /api/environments/{env}/connections`, one
//! environment's streams by server and key.
//!
//! **A caller sees only the environments of projects it has a role in** (workspace admins
//! see all); Checkgate listed every project's clients to anyone. Counts come from servers'
//! reports (every 10 s and soon after a change); client addresses appear only for servers
//! that run with `REPORT_CLIENT_ADDRESSES=true`.

use std::collections::{BTreeMap, HashSet};

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::access::in_environment;
use super::caller::Caller;
use super::openapi::{BadRequest, NotFound, Unauthorized};
use super::params::EnvironmentPath;
use super::time::Timestamp;
use super::{ApiError, AppState, Path};
use crate::store::connections::{ConnectionLabels, ConnectionReportRow, StoredCount};
use crate::store::{FLEET_REFRESH, Role, now_ms};

/// A report older than this (three missed) is not current.
const FRESH_MS: i64 = 3 * FLEET_REFRESH.as_millis() as i64;
/// Most reports read (servers).
const MAX_REPORTS: u32 = 2_000;
/// Most entries one answer lists.
const MAX_LISTED: usize = 10_000;

/// Where SDKs are connected: an edge or a control-plane instance's in-process serving.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectionServer {
    /// `edge` or `control_plane`.
    #[schema(pattern = "^(edge|control_plane)$")]
    kind: String,
    /// The edge's `EDGE_NAME`, or the control-plane instance.
    name: String,
    /// The edge's `EDGE_REGION`; null when it set none (and for the control plane).
    #[schema(required = true)]
    region: Option<String>,
    /// The edge's feed session (its row in `GET /api/edges`); null for the control plane.
    #[schema(format = "uuid", required = true)]
    session_id: Option<String>,
    /// When the server last reported.
    reported_at: Timestamp,
}

/// A connected client, listed only by servers that report addresses.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectedClientView {
    /// The client's IP address as its server saw it.
    ip: String,
    /// When its stream opened.
    connected_at: Timestamp,
}

/// Open SDK streams of one key in one environment at one server.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectionEntry {
    #[schema(format = "uuid")]
    environment_id: String,
    environment_name: String,
    #[schema(format = "uuid")]
    project_id: String,
    /// The SDK key's id.
    key_id: String,
    /// The SDK key's name; null for a key deleted since.
    #[schema(required = true)]
    key_name: Option<String>,
    server: ConnectionServer,
    /// Streams open at the last report.
    #[schema(minimum = 0)]
    count: u64,
    /// Up to 100 clients, when the server reports addresses; otherwise empty.
    clients: Vec<ConnectedClientView>,
}

/// Connected SDKs the caller may see, across the fleet.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Connections)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectionsView {
    /// Streams open in all.
    #[schema(minimum = 0)]
    total: u64,
    /// By environment, key and server; largest first.
    connections: Vec<ConnectionEntry>,
    /// Whether entries were left out (more than 10,000).
    truncated: bool,
}

fn server(report: &ConnectionReportRow) -> ConnectionServer {
    let edge = report.edge_session.is_some();
    ConnectionServer {
        kind: if edge { "edge" } else { "control_plane" }.to_owned(),
        name: report.name.clone(),
        region: (!report.region.is_empty()).then(|| report.region.clone()),
        session_id: report.edge_session.clone(),
        reported_at: Timestamp::from_ms(report.reported_at),
    }
}

fn clients(entry: &StoredCount) -> Vec<ConnectedClientView> {
    entry
        .clients
        .iter()
        .map(|c| ConnectedClientView {
            ip: c.address.clone(),
            connected_at: Timestamp::from_ms(c.connected_at),
        })
        .collect()
}

/// The current reports' entries in the environments `visible` accepts, as listed.
fn entries(
    reports: &[ConnectionReportRow],
    labels: &ConnectionLabels,
    visible: impl Fn(&str, &str) -> bool,
) -> Vec<ConnectionEntry> {
    let mut out = Vec::new();
    for report in reports {
        for entry in &report.entries {
            // An environment deleted since, or one the caller cannot see: not listed.
            let Some((project, env_name)) = labels.environments.get(&entry.env_id) else {
                continue;
            };
            if entry.count == 0 || !visible(project, &entry.env_id) {
                continue;
            }
            out.push(ConnectionEntry {
                environment_id: entry.env_id.clone(),
                environment_name: env_name.clone(),
                project_id: project.clone(),
                key_id: entry.key_id.clone(),
                key_name: labels.keys.get(&entry.key_id).cloned(),
                server: server(report),
                count: entry.count,
                clients: clients(entry),
            });
        }
    }
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.environment_id.cmp(&b.environment_id))
            .then_with(|| a.key_id.cmp(&b.key_id))
            .then_with(|| a.server.name.cmp(&b.server.name))
    });
    out
}

async fn current(
    state: &AppState,
) -> Result<(Vec<ConnectionReportRow>, ConnectionLabels), ApiError> {
    let reports = state
        .store
        .connection_reports(now_ms() - FRESH_MS, MAX_REPORTS)
        .await?;
    let labels = state.store.connection_labels().await?;
    Ok((reports, labels))
}

/// Connected SDKs across the fleet
///
/// Open SDK streams (`/stream`) at every edge and control-plane instance, by environment, SDK
/// key and server, from each server's latest report (every 10 s, and soon after a stream
/// opens or ends). Only environments of the caller's projects are listed (all for workspace
/// admins). Client addresses are listed only for servers run with
/// `REPORT_CLIENT_ADDRESSES=true`.
#[utoipa::path(get, path = "/api/health/connections", operation_id = "listConnections",
    tag = "edges",
    responses(
        (status = 200, body = ConnectionsView, description = "Connected SDKs the caller may see."),
        (status = 401, response = Unauthorized),
    ))]
pub(super) async fn fleet(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let projects: Option<HashSet<String>> = caller
        .visible_projects(&state)
        .await?
        .map(|p| p.into_iter().collect());
    let (reports, labels) = current(&state).await?;
    let mut listed = entries(&reports, &labels, |project, _| {
        projects.as_ref().is_none_or(|p| p.contains(project))
    });
    let total = listed.iter().map(|e| e.count).sum();
    let truncated = listed.len() > MAX_LISTED;
    listed.truncate(MAX_LISTED);
    Ok(axum::Json(ConnectionsView {
        total,
        connections: listed,
        truncated,
    }))
}

/// One server's streams in an environment.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvironmentServer {
    server: ConnectionServer,
    /// Streams open at this server in the environment.
    #[schema(minimum = 0)]
    total: u64,
    /// By SDK key, largest first.
    keys: Vec<EnvironmentKey>,
}

/// One key's streams at one server.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvironmentKey {
    key_id: String,
    /// The key's name; null for a key deleted since.
    #[schema(required = true)]
    key_name: Option<String>,
    #[schema(minimum = 0)]
    count: u64,
    /// Up to 100 clients, when the server reports addresses; otherwise empty.
    clients: Vec<ConnectedClientView>,
}

/// An environment's connected SDKs, by server.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EnvironmentConnections)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvironmentConnectionsView {
    #[schema(format = "uuid")]
    environment_id: String,
    /// Streams open in all.
    #[schema(minimum = 0)]
    total: u64,
    /// Every edge and control-plane instance with streams here, most streams first.
    servers: Vec<EnvironmentServer>,
}

/// An environment's connected SDKs (project viewers)
///
/// Open SDK streams of the environment at each edge and control-plane instance, by SDK key,
/// with each server's last report.
#[utoipa::path(get, path = "/api/environments/{env}/connections",
    operation_id = "environmentConnections", tag = "edges", params(EnvironmentPath),
    responses(
        (status = 200, body = EnvironmentConnectionsView, description = "The environment's connected SDKs."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub(super) async fn environment(
    State(state): State<AppState>,
    caller: Caller,
    Path(EnvironmentPath { env }): Path<EnvironmentPath>,
) -> Result<impl IntoResponse, ApiError> {
    in_environment(&state, &caller, &env, Role::Viewer).await?;
    let (reports, labels) = current(&state).await?;
    let listed = entries(&reports, &labels, |_, e| e == env);
    // By server (its reporter), keeping the order of first appearance's count.
    let mut servers: BTreeMap<String, EnvironmentServer> = BTreeMap::new();
    for entry in listed.into_iter().take(MAX_LISTED) {
        let key = format!(
            "{}|{}",
            entry.server.session_id.as_deref().unwrap_or(""),
            entry.server.name
        );
        let at = servers.entry(key).or_insert_with(|| EnvironmentServer {
            server: entry.server.clone(),
            total: 0,
            keys: Vec::new(),
        });
        at.total += entry.count;
        at.keys.push(EnvironmentKey {
            key_id: entry.key_id,
            key_name: entry.key_name,
            count: entry.count,
            clients: entry.clients,
        });
    }
    let mut servers: Vec<EnvironmentServer> = servers.into_values().collect();
    servers.sort_by(|a, b| {
        b.total
            .cmp(&a.total)
            .then_with(|| a.server.name.cmp(&b.server.name))
    });
    Ok(axum::Json(EnvironmentConnectionsView {
        environment_id: env,
        total: servers.iter().map(|s| s.total).sum(),
        servers,
    }))
}

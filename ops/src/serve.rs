//! Serving: binding, running one or more routers until a shutdown signal, then draining open
//! requests and streams for a grace period before closing what is left.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use metrics_exporter_prometheus::PrometheusHandle;

use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt as _;

use crate::config::CommonArgs;
use crate::listener::{Limits, Listener, Takeover};
use crate::tasks::Owned;
use crate::timer::ConnectionTimer;
use crate::{health, metrics};

/// The peer of a connection, for handlers that need it (login throttling keys on it):
/// `ConnectInfo<Peer>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

/// Binds a TCP listener, naming the address in the error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listen = || -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().with_context(|| format!("cannot listen on {addr}"))
}

/// Connections the kernel queues before they are accepted (it caps this at
/// `net.core.somaxconn`). Ten thousand SDKs reconnecting at once overflow tokio's default of
/// 1,024, and every SYN dropped costs its client a one-second retransmit.
const LISTEN_BACKLOG: u32 = 8192;

/// Runs a service the way both binaries do: binds the public listener on `port` (and the
/// operations listener, when `METRICS_ADDR` is set), calls `on_bound` once both listen, and
/// serves `app` until SIGTERM or Ctrl-C — or until one of the process's owned `tasks` ends on
/// its own, which is a fault: it is logged by name and the service stops with an error, so its
/// supervisor restarts it rather than leaving it serving frozen data. With an operations
/// listener, it serves `/metrics` and the `operations` routes (operator-only views such as the
/// edge's `/status`), and `app` gets `None`; without one, `app` gets the metrics handle and is
/// expected to serve both itself. `takeover` is what the public listener serves on the socket,
/// off the router (the SDK stream; see [`crate::listener`]).
///
/// Stopping has one deadline, `SHUTDOWN_GRACE_SECONDS` after it begins: HTTP drains and the
/// tasks wind down ([`crate::tasks::Stopping`]) side by side against it, and what is left at
/// the deadline is closed or aborted.
pub async fn run_service(
    common: &CommonArgs,
    port: u16,
    takeover: Option<Arc<dyn Takeover>>,
    app: impl FnOnce(Option<PrometheusHandle>) -> Router,
    operations: Router,
    on_bound: impl FnOnce(),
    mut tasks: Owned,
) -> anyhow::Result<()> {
    let handle = metrics::handle();
    let signal = shutdown_signal();
    let limits = Limits {
        header_timeout: common.header_timeout(),
        max_connections: common.max_connections(),
    };
    let public = Listener::new(bind(SocketAddr::new(common.host, port)).await?, takeover)
        .with_limits(limits);
    let servers = match common.metrics_addr {
        Some(addr) => vec![
            ("public", public, app(None)),
            (
                "metrics",
                Listener::new(bind(addr).await?, None).with_limits(limits),
                health::finish(health::metrics_routes(handle.clone()).merge(operations)),
            ),
        ],
        None => vec![("public", public, app(Some(handle.clone())))],
    };
    on_bound();
    tasks.spawn("metrics upkeep", metrics::upkeep(handle));
    let grace = common.shutdown_grace();
    let (mut fault, mut deadline) = (None, None);
    let shutdown = async {
        tokio::select! {
            () = signal => {}
            ended = tasks.fault() => {
                tracing::error!(task = ended.task, cause = %ended.cause, "a task the service needs has ended; stopping");
                fault = Some(ended);
            }
        }
        let at = tokio::time::Instant::now() + grace;
        tasks.begin_stop(at);
        deadline = Some(at);
    };
    let result = serve(servers, shutdown, grace).await;
    let left = tasks
        .finish(deadline.unwrap_or_else(tokio::time::Instant::now))
        .await;
    if !left.is_empty() {
        tracing::warn!(tasks = ?left, "grace period over; stopped these tasks where they were");
    }
    tracing::info!("stopped");
    match fault {
        Some(fault) => Err(anyhow::anyhow!(fault)),
        None => result,
    }
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that arrives right after the listeners are bound
/// (a supervisor stopping a service that just started) is a clean shutdown rather than the
/// default action that kills the process.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        [SignalKind::terminate(), SignalKind::interrupt()].map(|kind| {
            signal(kind)
                .inspect_err(|e| tracing::warn!(cause = %e, "cannot handle a signal"))
                .ok()
        })
    };
    async move {
        #[cfg(unix)]
        {
            let [term, int] = handlers;
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term) => {}
                () = wait(int) => {}
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Serves every `(name, listener, router)` until `shutdown` resolves, then lets open requests
/// finish for up to `grace`; what a listener's [`Takeover`] serves (SSE streams) ends at once,
/// so its clients reconnect elsewhere.
/// Returns the first server error, if any. The name labels the listener in logs.
pub async fn serve(
    servers: Vec<(&'static str, Listener, Router)>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let takeovers: Vec<Arc<dyn Takeover>> = servers
        .iter()
        .filter_map(|(_, listener, _)| listener.takeover().cloned())
        .collect();
    let mut tasks = JoinSet::new();
    for (name, listener, router) in servers {
        let addr = listener.local_addr()?;
        let stop = stop_rx.clone();
        tasks.spawn(async move {
            tracing::info!(%addr, listener = %name, "listening");
            run_listener(listener, router, stop)
                .await
                .with_context(|| format!("server on {addr} failed"))
        });
    }
    tokio::select! {
        () = shutdown => tracing::info!(grace_seconds = grace.as_secs(), "shutting down"),
        Some(first) = tasks.join_next() => {
            // A server stopped on its own: report why, and stop the others.
            let _ = stop_tx.send(true);
            tasks.abort_all();
            return first.context("server task panicked")?;
        }
    }
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(grace, async {
        for takeover in &takeovers {
            takeover.stop().await;
        }
        let mut result = Ok(());
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done.context("server task panicked").and_then(|r| r) {
                result = Err(e);
            }
        }
        result
    })
    .await;
    match drained {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!("grace period over; closing the connections still open");
            tasks.abort_all();
            Ok(())
        }
    }
}

/// Serves `listener`'s connections with `router` until `stop` turns true, then stops
/// accepting, asks every connection to finish its request in flight and close, and returns
/// once all have. Dropping the future (the grace period ran out) drops every connection.
async fn run_listener(
    mut listener: Listener,
    router: Router,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    // With a timer, hyper closes a connection that does not send a whole head in time: a new
    // one (after the front door handed it over) or a kept-alive one waiting for its next
    // request. Each connection gets a timer of its own (`ConnectionTimer`).
    http.header_read_timeout(listener.limits().header_timeout);
    let graceful = GracefulShutdown::new();
    // Owns the connections: dropped (grace over), it aborts them.
    let mut connections = JoinSet::new();
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        // The peer address reaches handlers (login throttling keys on it).
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(Peer(peer)));
                request
            });
        let connection = http
            .clone()
            .timer(ConnectionTimer::default())
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(cause = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::join!(graceful.shutdown(), async {
        while connections.join_next().await.is_some() {}
    });
    Ok(())
}

//! A NATS server for the scenarios that carry the change feed over NATS JetStream: by default
//! a nats-server of the run's own (JetStream on, on a free loopback port, its store in a
//! temporary directory), stopped and its store removed at the end; or a running server given
//! by URL (loopback only), on which the run uses a stream of its own, deleted at the end.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// How long a started server gets to accept connections.
const START_WAIT: Duration = Duration::from_secs(20);

/// The nats-server binary: on the PATH, or where Debian's package puts it.
fn server_bin() -> PathBuf {
    let debian = PathBuf::from("/usr/sbin/nats-server");
    if debian.is_file() {
        debian
    } else {
        PathBuf::from("nats-server")
    }
}

/// The NATS server a run's feed travels through.
pub(crate) struct Nats {
    /// The server this run started, if it did; killed on drop.
    child: Option<Child>,
    /// Its store directory, removed on drop.
    store: Option<PathBuf>,
    /// `nats://127.0.0.1:PORT`, for `NATS_URL` and an edge's `FEED_ADDR`.
    pub(crate) url: String,
    /// The stream of this run: the default name on a server of its own, a name of its own on
    /// a shared one (so a run neither disturbs nor reads another's).
    pub(crate) stream: String,
}

/// Whether `url` (`nats://host:port`) names a loopback server.
pub(crate) fn is_loopback(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("nats://") else {
        return false;
    };
    let host = rest.rsplit_once(':').map_or(rest, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Nats {
    /// Starts a nats-server of the run's own, or uses `given` (a loopback `nats://` URL).
    pub(crate) async fn start(given: Option<&str>) -> anyhow::Result<Self> {
        let run = uuid::Uuid::new_v4().simple().to_string();
        if let Some(url) = given {
            if !is_loopback(url) {
                bail!("--nats-url must be nats://<loopback address>:<port>, not {url:?}");
            }
            return Ok(Self {
                child: None,
                store: None,
                url: url.to_owned(),
                stream: format!("CG_LOAD_{}", &run[..12]),
            });
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let store = std::env::temp_dir().join(format!("cg-load-nats-{run}"));
        std::fs::create_dir_all(&store)?;
        let spawned = Command::new(server_bin())
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&store);
                return Err(e).context(
                    "starting nats-server (install it, e.g. `apt-get install nats-server`)",
                );
            }
        };
        let nats = Self {
            child: Some(child),
            store: Some(store),
            url: format!("nats://127.0.0.1:{port}"),
            stream: checkgate_feed::nats::DEFAULT_STREAM.to_owned(),
        };
        let deadline = Instant::now() + START_WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("nats-server did not accept connections within {START_WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(nats)
    }

    /// The process id of the server this run started.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The settings a control plane needs to relay to this server.
    pub(crate) fn control_env(&self) -> [(&'static str, &str); 2] {
        [("NATS_URL", &self.url), ("NATS_STREAM", &self.stream)]
    }

    /// Stops the server this run started, or deletes the run's stream from the given one.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        if self.child.is_none() {
            let client = async_nats::connect(&self.url).await?;
            let deleted = async_nats::jetstream::new(client.clone())
                .delete_stream(&self.stream)
                .await;
            client.drain().await?;
            deleted.with_context(|| format!("deleting stream {}", self.stream))?;
        }
        self.kill();
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(store) = self.store.take() {
            let _ = std::fs::remove_dir_all(store);
        }
    }
}

impl Drop for Nats {
    /// On an early return the server is killed and its store removed; on a given server, the
    /// run's stream (`CG_LOAD_…`) then remains.
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_taken() {
        for url in [
            "nats://127.0.0.1:4222",
            "nats://localhost:4222",
            "nats://[::1]:4222",
            "nats://127.0.0.2",
        ] {
            assert!(is_loopback(url), "{url} refused");
        }
        for url in [
            "nats://10.0.0.1:4222",
            "nats://example.com:4222",
            "127.0.0.1:4222",
            "tls://127.0.0.1:4222",
        ] {
            assert!(!is_loopback(url), "{url} accepted");
        }
    }
}

//! What the serving scenarios measure: the real control plane (embedded SQLite) and an edge
//! relay, both child processes on loopback, with an environment of N flags seeded through the
//! API and an SDK key of each kind. Or, with `--target`, a running edge given by URL and key.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::control::{Backing, Control, EdgeProcess};

/// A context of the seeded generator: a targeting key and attributes that the seeded flags'
/// rules look at, different for every `n`, so no answer can be cached.
pub(crate) fn context(n: u64) -> Value {
    // SplitMix64: a seeded, well-spread sequence.
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let plans = ["free", "pro", "enterprise", "team"];
    let countries = ["NZ", "DE", "US", "JP", "BR"];
    serde_json::json!({
        "targetingKey": format!("user-{z:016x}"),
        "email": format!("u{}@example.{}", z % 10_000, if z.is_multiple_of(3) { "com" } else { "org" }),
        "plan": plans[(z % 4) as usize],
        "country": countries[((z >> 8) % 5) as usize],
    })
}

/// The system under test.
pub(crate) struct Stack {
    /// Present when this run started them.
    control: Option<Control>,
    edge: Option<EdgeProcess>,
    pub(crate) addr: SocketAddr,
    pub(crate) server_key: String,
    pub(crate) client_key: String,
    pub(crate) flags: usize,
}

impl Stack {
    /// Starts a control plane and an edge with `flags` flags, and waits until the edge holds
    /// them all.
    pub(crate) async fn start(control_bin: &Path, flags: usize) -> anyhow::Result<Self> {
        Self::start_with(control_bin, flags, &[]).await
    }

    /// [`Stack::start`], with further settings of the edge (`NAME`, `value`).
    pub(crate) async fn start_with(
        control_bin: &Path,
        flags: usize,
        edge_env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let control = Control::start(control_bin, Backing::Sqlite).await?;
        control.seed_flags(flags)?;
        let server_key = control.sdk_key("server")?;
        let client_key = control.sdk_key("client")?;
        let edge = EdgeProcess::start_with(control_bin, &control, None, edge_env).await?;
        let stack = Self {
            addr: edge.addr,
            control: Some(control),
            edge: Some(edge),
            server_key,
            client_key,
            flags,
        };
        stack.wait_for_flags().await?;
        Ok(stack)
    }

    /// A running edge at `url` (`http://host:port`, loopback only) with an SDK key.
    pub(crate) async fn target(url: &str, key: &str) -> anyhow::Result<Self> {
        let hostport = url
            .strip_prefix("http://")
            .context("--target must be an http:// URL")?
            .trim_end_matches('/');
        let addr: SocketAddr = tokio::net::lookup_host(hostport)
            .await?
            .next()
            .with_context(|| format!("{hostport} resolves to nothing"))?;
        if !addr.ip().is_loopback() {
            bail!("--target must be on loopback, not {addr}");
        }
        let mut stack = Self {
            control: None,
            edge: None,
            addr,
            server_key: key.to_owned(),
            client_key: key.to_owned(),
            flags: 0,
        };
        stack.flags = stack.count_flags().await?;
        Ok(stack)
    }

    async fn count_flags(&self) -> anyhow::Result<usize> {
        let auth = format!("Bearer {}", self.server_key);
        let addr = self.addr;
        let (status, _, body) = tokio::task::spawn_blocking(move || {
            checkgate_testkit::http_request(
                addr,
                "GET",
                "/api/v1/flags",
                &[("Authorization", &auth)],
                None,
            )
        })
        .await??;
        if status != 200 {
            bail!("GET /api/v1/flags answered {status}");
        }
        let body: Value = serde_json::from_str(&body)?;
        Ok(body["flags"].as_array().map_or(0, Vec::len))
    }

    async fn wait_for_flags(&self) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while self.count_flags().await.unwrap_or(0) < self.flags {
            if std::time::Instant::now() > deadline {
                bail!("the edge did not receive the {} seeded flags", self.flags);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// The control plane, when this run started it.
    pub(crate) fn control(&self) -> Option<&Control> {
        self.control.as_ref()
    }

    /// The edge's resident memory and CPU time, when this run started it.
    pub(crate) fn edge_usage(&self) -> Option<(u64, f64)> {
        self.edge.as_ref()?.usage()
    }

    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        drop(self.edge.take());
        if let Some(control) = self.control.take() {
            control.stop().await?;
        }
        Ok(())
    }
}

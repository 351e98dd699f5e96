//! The edge's configuration: every setting is a flag and an environment variable, so
//! `checkgate-edge --help` documents all of them.

use std::path::PathBuf;

use checkgate_feed::nats::control::Upstream;
use checkgate_protocol::Secret;
use checkgate_serve::ServeArgs;
use clap::Parser;

use checkgate_ops::CommonArgs;
use checkgate_ops::config::InvalidSetting;
use checkgate_ops::telemetry;

/// Checkgate edge relay: serves flags near the SDKs.
#[derive(Debug, Clone, Parser)]
#[command(name = "checkgate-edge", version, about)]
pub struct EdgeConfig {
    /// Port of the public listener (SDK stream, evaluation, health).
    #[arg(long, env = "PORT", default_value_t = 3100)]
    pub port: u16,

    /// Where the edge keeps its snapshot of the flags, to serve after a restart even when the
    /// control plane is unreachable.
    #[arg(long, env = "CHECKGATE_DATA_DIR", default_value = "./data/edge")]
    pub data_dir: PathBuf,

    /// The change feed. QUIC, straight from the control plane: `host:port` (UDP, its
    /// FEED_PORT), or `quic://host:port`; several instances separated by commas, tried in turn
    /// when one fails. NATS JetStream: `nats://host:4222` (or `tls://…`), several servers
    /// separated by commas, with CONTROL_PLANE_URL. Unset: the edge serves its snapshot file
    /// only.
    #[arg(long, env = "FEED_ADDR")]
    pub feed_addr: Option<String>,

    /// With a NATS feed: the control plane's base URL (`https://cp.example.com`,
    /// `http://host:3000`; several separated by commas), for the edge's handshake, snapshots,
    /// digests and reports. Over plain http the edge token crosses the network in clear: use
    /// it only on a private network.
    #[arg(long, env = "CONTROL_PLANE_URL")]
    pub control_plane_url: Option<String>,

    /// PEM file of the CA(s) that issued the certificate of an `https://` CONTROL_PLANE_URL.
    /// Default: the system's CA certificates.
    #[arg(long, env = "CONTROL_PLANE_CA")]
    pub control_plane_ca: Option<PathBuf>,

    /// With a NATS feed: how the edge authenticates to NATS, and the stream's name.
    #[command(flatten)]
    pub nats: checkgate_feed::nats::NatsAuthArgs,

    /// SHA-256 fingerprint of the feed's certificate, as the control plane logs it at start-up
    /// (`ab:cd:…`). Use this or FEED_CA.
    #[arg(long, env = "FEED_FINGERPRINT")]
    pub feed_fingerprint: Option<String>,

    /// PEM file of the CA that issued the feed's certificate. Use this or FEED_FINGERPRINT.
    #[arg(long, env = "FEED_CA")]
    pub feed_ca: Option<PathBuf>,

    /// The name the feed's certificate carries (with FEED_CA). Default: the host of
    /// FEED_ADDR.
    #[arg(long, env = "FEED_SERVER_NAME")]
    pub feed_server_name: Option<String>,

    /// This edge's credential on the feed, from `POST /api/edge-tokens` (`cge_…`).
    #[arg(long, env = "EDGE_TOKEN", hide_env_values = true)]
    pub edge_token: Option<Secret>,

    /// This edge's name in the control plane's logs and fleet view.
    #[arg(long, env = "EDGE_NAME", default_value = "edge")]
    pub edge_name: String,

    /// Where this edge runs (e.g. `eu-west-1`), for the fleet view.
    #[arg(long, env = "EDGE_REGION", default_value = "")]
    pub edge_region: String,

    /// Seconds between two comparisons of each environment's digest with the control plane's
    /// (anti-entropy); a mismatch resyncs the environment.
    #[arg(long, env = "ANTI_ENTROPY_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub anti_entropy_seconds: u64,

    /// SDK serving settings (MIN_VERSION_WAIT_MS), shared with the other binary.
    #[command(flatten)]
    pub serving: ServeArgs,

    /// Listener, logging, metrics and shutdown settings, shared with the other binary.
    #[command(flatten)]
    pub common: CommonArgs,
}

fn invalid(
    variable: &'static str,
    flag: &'static str,
    problem: impl Into<String>,
) -> InvalidSetting {
    InvalidSetting {
        variable,
        flag,
        problem: problem.into(),
    }
}

/// The schemes that select the NATS feed.
const NATS_SCHEMES: [&str; 2] = ["nats://", "tls://"];

impl EdgeConfig {
    /// The addresses of FEED_ADDR (QUIC ones without their `quic://`).
    pub fn feed_addrs(&self) -> Vec<String> {
        self.feed_addr
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| a.strip_prefix("quic://").unwrap_or(a).to_owned())
            .collect()
    }

    /// Whether FEED_ADDR names NATS servers.
    pub fn feed_over_nats(&self) -> bool {
        self.feed_addrs()
            .first()
            .is_some_and(|a| NATS_SCHEMES.iter().any(|s| a.starts_with(s)))
    }

    /// The NATS settings and control planes of a NATS feed (validated; a CA file read).
    pub fn nats_feed(
        &self,
    ) -> Result<
        (
            checkgate_feed::nats::NatsSettings,
            checkgate_feed::nats::control::Upstream,
        ),
        InvalidSetting,
    > {
        let addrs = self.feed_addrs();
        if !addrs
            .iter()
            .all(|a| NATS_SCHEMES.iter().any(|s| a.starts_with(s)))
        {
            return Err(invalid(
                "FEED_ADDR",
                "feed-addr",
                "mixes NATS servers with QUIC addresses",
            ));
        }
        let refused = |r: checkgate_feed::nats::Refused| InvalidSetting {
            variable: r.variable,
            flag: r.flag,
            problem: r.problem,
        };
        let servers =
            checkgate_feed::nats::parse_servers("FEED_ADDR", &addrs.join(",")).map_err(refused)?;
        let nats = self.nats.settings(servers).map_err(refused)?;
        let Some(urls) = &self.control_plane_url else {
            return Err(invalid(
                "CONTROL_PLANE_URL",
                "control-plane-url",
                "is required with a NATS FEED_ADDR (the control plane's http://host:port)",
            ));
        };
        let bases = checkgate_feed::nats::control::parse_bases(urls)
            .map_err(|p| invalid("CONTROL_PLANE_URL", "control-plane-url", p))?;
        let upstream = Upstream::new(bases, self.control_plane_ca.as_deref())
            .map_err(|p| invalid("CONTROL_PLANE_CA", "control-plane-ca", p))?;
        Ok((nats, upstream))
    }

    /// The host part of the first FEED_ADDR (`host:port`, `[v6]:port`).
    pub fn feed_host(&self) -> Option<String> {
        let addr = self.feed_addrs().into_iter().next()?;
        let (host, _) = addr.rsplit_once(':')?;
        Some(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        )
    }

    /// Checks what clap's types cannot.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        self.validate_feed()?;
        telemetry::check_filter(&self.common.rust_log).map_err(|problem| InvalidSetting {
            variable: "RUST_LOG",
            flag: "log",
            problem,
        })?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(InvalidSetting {
                variable: "CHECKGATE_DATA_DIR",
                flag: "data-dir",
                problem: "must not be empty".into(),
            });
        }
        Ok(())
    }

    fn validate_feed(&self) -> Result<(), InvalidSetting> {
        if self.feed_addr.is_none() {
            return Ok(());
        }
        let addrs = self.feed_addrs();
        if addrs.is_empty() {
            return Err(invalid("FEED_ADDR", "feed-addr", "names no address"));
        }
        let nats = |a: &String| NATS_SCHEMES.iter().any(|s| a.starts_with(s));
        if addrs.iter().any(nats) && !addrs.iter().all(nats) {
            return Err(invalid(
                "FEED_ADDR",
                "feed-addr",
                "mixes NATS servers with QUIC addresses",
            ));
        }
        if !self.feed_over_nats() {
            let port_ok = addrs.iter().all(|addr| {
                addr.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
                })
            });
            if !port_ok {
                return Err(invalid(
                    "FEED_ADDR",
                    "feed-addr",
                    "must be host:port (QUIC), or nats://host:port",
                ));
            }
        }
        if self
            .edge_token
            .as_ref()
            .is_none_or(|t| t.expose().is_empty())
        {
            return Err(invalid(
                "EDGE_TOKEN",
                "edge-token",
                "is required with FEED_ADDR (create one with POST /api/edge-tokens)",
            ));
        }
        if self.feed_over_nats() {
            return self.nats_feed().map(|_| ());
        }
        match (&self.feed_fingerprint, &self.feed_ca) {
            (Some(_), Some(_)) => Err(invalid(
                "FEED_FINGERPRINT",
                "feed-fingerprint",
                "set either FEED_FINGERPRINT or FEED_CA, not both",
            )),
            (None, None) => Err(invalid(
                "FEED_FINGERPRINT",
                "feed-fingerprint",
                "is required with FEED_ADDR (or FEED_CA): the control plane logs it at start-up",
            )),
            (Some(fingerprint), None) => checkgate_feed::quic::parse_fingerprint(fingerprint)
                .map(|_| ())
                .map_err(|p| invalid("FEED_FINGERPRINT", "feed-fingerprint", p)),
            (None, Some(ca)) if !ca.is_file() => Err(invalid(
                "FEED_CA",
                "feed-ca",
                format!("{} is not a file", ca.display()),
            )),
            (None, Some(_)) => Ok(()),
        }
    }
}

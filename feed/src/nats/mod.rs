//! The change feed over NATS JetStream, both ends' shared parts: the settings (`NATS_*`), how
//! a client connects, and what travels on the stream ([`wire`]).
//!
//! JetStream is a transport, never the truth: the control plane's relay publishes each change
//! row of the database after it committed, one message per environment version on the subject
//! `checkgate.feed.<environment id>`, and an edge applies what arrives through the same
//! versioned replica as QUIC frames. Snapshots, digests, the handshake and the edge's reports
//! travel over the control plane's HTTP feed route ([`control`]), authenticated by the edge
//! token; [`edge`] is the edge's [`crate::Transport`] over both.

pub mod control;
pub mod edge;
mod report;
pub mod wire;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use checkgate_protocol::Secret;
use clap::Args;

/// The stream's default name.
pub const DEFAULT_STREAM: &str = "CHECKGATE_FEED";

/// How long connecting to NATS may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A setting that cannot work, for the binaries' one-line refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub variable: &'static str,
    /// The matching command-line flag, without `--`.
    pub flag: &'static str,
    pub problem: String,
}

/// The flag of each variable this module checks.
const FLAGS: [(&str, &str); 11] = [
    ("NATS_DOMAIN", "nats-domain"),
    ("NATS_INBOX_PREFIX", "nats-inbox-prefix"),
    ("NATS_URL", "nats-url"),
    ("FEED_ADDR", "feed-addr"),
    ("NATS_CREDS", "nats-creds"),
    ("NATS_USER", "nats-user"),
    ("NATS_PASSWORD", "nats-password"),
    ("NATS_CA", "nats-ca"),
    ("NATS_TLS_CERT", "nats-tls-cert"),
    ("NATS_TLS_KEY", "nats-tls-key"),
    ("NATS_STREAM", "nats-stream"),
];

fn refused(variable: &'static str, problem: impl Into<String>) -> Refused {
    let flag = FLAGS
        .iter()
        .find(|(v, _)| *v == variable)
        .map_or("", |(_, f)| f);
    Refused {
        variable,
        flag,
        problem: problem.into(),
    }
}

/// How a NATS client proves who it is and whom it trusts; both binaries take these.
#[derive(Debug, Clone, Default, Args)]
pub struct NatsAuthArgs {
    /// A NATS credentials file (a user JWT and its NKey seed), as `nsc` writes them.
    #[arg(long, env = "NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,

    /// A NATS user name (with NATS_PASSWORD), for servers configured with users.
    #[arg(long, env = "NATS_USER")]
    pub nats_user: Option<String>,

    /// The NATS user's password.
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<Secret>,

    /// PEM file of the CA that signed the NATS servers' certificates; setting it requires TLS.
    #[arg(long, env = "NATS_CA")]
    pub nats_ca: Option<PathBuf>,

    /// PEM certificate this process presents to NATS servers that ask for one (with
    /// NATS_TLS_KEY).
    #[arg(long, env = "NATS_TLS_CERT")]
    pub nats_tls_cert: Option<PathBuf>,

    /// The private key of NATS_TLS_CERT (PEM).
    #[arg(long, env = "NATS_TLS_KEY")]
    pub nats_tls_key: Option<PathBuf>,

    /// The JetStream stream the feed travels on.
    #[arg(long, env = "NATS_STREAM", default_value = DEFAULT_STREAM)]
    pub nats_stream: String,

    /// The JetStream domain of the stream, when it lives in another one than the server this
    /// process connects to (a leaf node reaching its hub's JetStream).
    #[arg(long, env = "NATS_DOMAIN")]
    pub nats_domain: Option<String>,

    /// The prefix of this client's reply and delivery subjects (default `_INBOX`). Where NATS
    /// permissions confine edges to their environments, give each edge user its own
    /// (`_INBOX.<user>`) and let it subscribe only below that: with `_INBOX.>` open to every
    /// edge, one edge's credentials could read the deliveries meant for another.
    #[arg(long, env = "NATS_INBOX_PREFIX")]
    pub nats_inbox_prefix: Option<String>,
}

/// A validated, ready-to-use NATS connection recipe.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    pub servers: Vec<async_nats::ServerAddr>,
    pub creds: Option<PathBuf>,
    pub user: Option<(String, Secret)>,
    pub ca: Option<PathBuf>,
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub stream: String,
    pub domain: Option<String>,
    pub inbox_prefix: Option<String>,
}

/// The servers of a comma-separated list (`nats://host:4222,tls://…`, or bare `host:port`).
pub fn parse_servers(
    variable: &'static str,
    list: &str,
) -> Result<Vec<async_nats::ServerAddr>, Refused> {
    let servers = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let server = async_nats::ServerAddr::from_str(s)
                .map_err(|e| refused(variable, format!("not a NATS server address: {e}")))?;
            // It would be shown in /status and logs: credentials have settings of their own.
            if server.has_user_pass() || server.username().is_some() {
                return Err(refused(
                    variable,
                    "must not carry credentials: use NATS_USER/NATS_PASSWORD or NATS_CREDS",
                ));
            }
            Ok(server)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(refused(variable, "names no server"));
    }
    Ok(servers)
}

/// Whether `prefix` can begin subjects this client subscribes to: dot-separated tokens of
/// printable characters, none empty and none a wildcard.
fn valid_inbox_prefix(prefix: &str) -> bool {
    prefix.len() <= 200
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && token.chars().all(|c| c.is_ascii_graphic())
        })
}

/// Whether `name` can name a JetStream stream: not empty, at most 64 characters, and none of
/// the characters NATS reserves.
fn valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn file(variable: &'static str, path: &std::path::Path) -> Result<PathBuf, Refused> {
    if path.is_file() {
        Ok(path.to_owned())
    } else {
        Err(refused(
            variable,
            format!("{} is not a file", path.display()),
        ))
    }
}

impl NatsAuthArgs {
    /// Checks the settings against `servers` (NATS_URL's or FEED_ADDR's) and gathers them.
    pub fn settings(&self, servers: Vec<async_nats::ServerAddr>) -> Result<NatsSettings, Refused> {
        if !valid_stream_name(&self.nats_stream) {
            return Err(refused(
                "NATS_STREAM",
                "must be 1 to 64 letters, digits, '_' or '-'",
            ));
        }
        let creds = self
            .nats_creds
            .as_deref()
            .map(|p| file("NATS_CREDS", p))
            .transpose()?;
        let user = match (&self.nats_user, &self.nats_password) {
            (Some(user), Some(password)) if !user.is_empty() => {
                Some((user.clone(), password.clone()))
            }
            (None, None) => None,
            (Some(_), None) => return Err(refused("NATS_PASSWORD", "is required with NATS_USER")),
            (None, Some(_)) => return Err(refused("NATS_USER", "is required with NATS_PASSWORD")),
            (Some(_), Some(_)) => return Err(refused("NATS_USER", "must not be empty")),
        };
        if let Some(domain) = &self.nats_domain
            && !valid_stream_name(domain)
        {
            return Err(refused(
                "NATS_DOMAIN",
                "must be 1 to 64 letters, digits, '_' or '-'",
            ));
        }
        if let Some(prefix) = &self.nats_inbox_prefix
            && !valid_inbox_prefix(prefix)
        {
            return Err(refused(
                "NATS_INBOX_PREFIX",
                "must be dot-separated subject tokens without wildcards, such as _INBOX.edge-eu-1",
            ));
        }
        if creds.is_some() && user.is_some() {
            return Err(refused(
                "NATS_CREDS",
                "set either NATS_CREDS or NATS_USER/NATS_PASSWORD, not both",
            ));
        }
        let ca = self
            .nats_ca
            .as_deref()
            .map(|p| file("NATS_CA", p))
            .transpose()?;
        let client_cert = match (&self.nats_tls_cert, &self.nats_tls_key) {
            (Some(cert), Some(key)) => {
                Some((file("NATS_TLS_CERT", cert)?, file("NATS_TLS_KEY", key)?))
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(refused("NATS_TLS_KEY", "is required with NATS_TLS_CERT"));
            }
            (None, Some(_)) => {
                return Err(refused("NATS_TLS_CERT", "is required with NATS_TLS_KEY"));
            }
        };
        Ok(NatsSettings {
            servers,
            creds,
            user,
            ca,
            client_cert,
            stream: self.nats_stream.clone(),
            domain: self.nats_domain.clone(),
            inbox_prefix: self.nats_inbox_prefix.clone(),
        })
    }
}

/// Why a connection to NATS could not be made, in one line.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("reading NATS_CREDS: {0}")]
    Creds(std::io::Error),
    #[error("connecting to NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
}

impl NatsSettings {
    /// A JetStream context over `client`, in the configured domain; requests (and a publish's
    /// wait for its acknowledgement) time out after 5 s.
    pub fn jetstream(&self, client: async_nats::Client) -> async_nats::jetstream::Context {
        let builder = async_nats::jetstream::ContextBuilder::new().timeout(Duration::from_secs(5));
        match &self.domain {
            Some(domain) => builder.domain(domain).build(client),
            None => builder.build(client),
        }
    }

    /// Connects as `name` (shown by the servers' monitoring). The client reconnects on its own
    /// after a connection it made once is lost; a first connection that fails is an error, so
    /// callers can say so in one line and retry.
    pub async fn connect(&self, name: &str) -> Result<async_nats::Client, ConnectError> {
        let mut options = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(CONNECT_TIMEOUT)
            .ping_interval(Duration::from_secs(5))
            // Backoff of its own between reconnection attempts, capped at 2 s: NATS coming
            // back is noticed quickly.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((100u64 << attempts.min(4)).min(2_000))
            });
        if let Some(prefix) = &self.inbox_prefix {
            options = options.custom_inbox_prefix(prefix);
        }
        if let Some(path) = &self.creds {
            options = options
                .credentials_file(path)
                .await
                .map_err(ConnectError::Creds)?;
        }
        if let Some((user, password)) = &self.user {
            options = options.user_and_password(user.clone(), password.expose().to_owned());
        }
        if let Some(ca) = &self.ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &self.client_cert {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(options.connect(self.servers.as_slice()).await?)
    }
}

/// Parses a duration written as a number and a unit (`90s`, `15m`, `24h`, `7d`) or as plain
/// seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 3600, 90m, 24h or 7d"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use s, m, h or d"
            ));
        }
    };
    number
        .checked_mul(unit)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_operators_write_them() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        for bad in ["", "h", "7w", "-1s", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn settings_refuse_what_cannot_work() {
        let servers = parse_servers("NATS_URL", "nats://127.0.0.1:4222, tls://h:4443").unwrap();
        assert_eq!(servers.len(), 2);
        assert!(parse_servers("NATS_URL", " , ").is_err());
        assert!(parse_servers("NATS_URL", "http://x:1").is_err());
        let with_password = parse_servers("NATS_URL", "nats://relay:s3cret@h:4222").unwrap_err();
        assert!(
            !with_password.problem.contains("s3cret"),
            "{with_password:?}"
        );

        let base = NatsAuthArgs {
            nats_stream: DEFAULT_STREAM.into(),
            ..NatsAuthArgs::default()
        };
        assert!(base.settings(servers.clone()).is_ok());
        let own_inbox = NatsAuthArgs {
            nats_inbox_prefix: Some("_INBOX.edge-eu-1".into()),
            ..base.clone()
        };
        assert!(own_inbox.settings(servers.clone()).is_ok());
        let cases: [(NatsAuthArgs, &str); 7] = [
            (
                NatsAuthArgs {
                    nats_inbox_prefix: Some("_INBOX.>".into()),
                    ..base.clone()
                },
                "NATS_INBOX_PREFIX",
            ),
            (
                NatsAuthArgs {
                    nats_inbox_prefix: Some("_INBOX..edge".into()),
                    ..base.clone()
                },
                "NATS_INBOX_PREFIX",
            ),
            (
                NatsAuthArgs {
                    nats_stream: "a.b".into(),
                    ..base.clone()
                },
                "NATS_STREAM",
            ),
            (
                NatsAuthArgs {
                    nats_user: Some("u".into()),
                    ..base.clone()
                },
                "NATS_PASSWORD",
            ),
            (
                NatsAuthArgs {
                    nats_password: Some(Secret::new("p")),
                    ..base.clone()
                },
                "NATS_USER",
            ),
            (
                NatsAuthArgs {
                    nats_creds: Some("/nonexistent".into()),
                    ..base.clone()
                },
                "NATS_CREDS",
            ),
            (
                NatsAuthArgs {
                    nats_tls_cert: Some("/etc/hostname".into()),
                    ..base.clone()
                },
                "NATS_TLS_KEY",
            ),
        ];
        for (args, variable) in cases {
            let err = args.settings(servers.clone()).unwrap_err();
            assert_eq!(err.variable, variable, "{err:?}");
        }
    }
}

//! A control plane for a scenario to measure: the real `checkgate-control` binary started as a
//! child process on loopback — on the embedded SQLite default in a temporary directory, or on
//! a fresh PostgreSQL database that is dropped afterwards — set up through its API, with an
//! API token for the load to use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use checkgate_testkit::{Service, http_request};
use serde_json::{Value, json};
use sqlx::Connection as _;

/// Where the control plane keeps its data during a run.
pub(crate) enum Backing {
    /// The embedded SQLite file, in a temporary directory.
    Sqlite,
    /// A fresh database on this PostgreSQL server (`postgres://user@host:port/any`).
    Postgres(String),
}

/// A running control plane with a project, an environment and an API token.
pub(crate) struct Control {
    service: Option<Service>,
    data_dir: PathBuf,
    database: Option<(String, String)>,
    pub(crate) addr: SocketAddr,
    pub(crate) environment: String,
    pub(crate) token: String,
    /// A session of the workspace admin, for what only a person may do.
    pub(crate) cookie: String,
    /// The first project.
    pub(crate) project: String,
}

/// The `checkgate-control` binary: `--control-bin`, or the one built beside this binary.
pub(crate) fn control_bin(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("checkgate-control"),
    };
    if !path.is_file() {
        bail!(
            "{} does not exist: build it with `cargo build --release -p checkgate-control` or pass --control-bin",
            path.display()
        );
    }
    Ok(path)
}

fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: &Value,
) -> anyhow::Result<(u16, Vec<String>, Value)> {
    let mut headers = vec![("X-Checkgate-Request", "1")];
    if let Some(c) = cookie {
        headers.push(("Cookie", c));
    }
    let text = body.to_string();
    let (status, head, body) = http_request(addr, method, path, &headers, Some(&text))
        .with_context(|| format!("{method} {path}"))?;
    if !(200..300).contains(&status) {
        bail!("{method} {path}: {status} {body}");
    }
    Ok((
        status,
        head,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    ))
}

fn text(v: &Value, field: &str) -> anyhow::Result<String> {
    v[field]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no {field:?} in {v}"))
}

impl Control {
    /// Starts the control plane and sets it up: workspace, first project, an editor token.
    pub(crate) async fn start(bin: &Path, backing: Backing) -> anyhow::Result<Self> {
        Self::start_with(bin, backing, &[]).await
    }

    /// [`Self::start`], with more settings for the process.
    pub(crate) async fn start_with(
        bin: &Path,
        backing: Backing,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let run = uuid::Uuid::new_v4().simple().to_string();
        let data_dir = std::env::temp_dir().join(format!("cg-load-{run}"));
        let database = match backing {
            Backing::Sqlite => None,
            Backing::Postgres(server) => {
                let name = format!("cg_load_{run}");
                let mut conn = sqlx::PgConnection::connect(&server)
                    .await
                    .context("connecting to PostgreSQL")?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await?;
                Some((server, name))
            }
        };
        let url = database.as_ref().map(|(server, name)| {
            let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
            format!("{base}/{name}")
        });
        let mut envs = vec![
            ("COOKIE_SECURE", "false".to_owned()),
            ("CHECKGATE_DATA_DIR", data_dir.display().to_string()),
            (
                "RUST_LOG",
                "warn,checkgate_edge=info,checkgate_feed=info,checkgate_serve=info,checkgate_ops=info,checkgate_control=info".to_owned(),
            ),
            ("DB_MAX_CONNECTIONS", "16".to_owned()),
            ("FEED_PORT", "0".to_owned()),
            ("FEED_HEARTBEAT_MS", "1000".to_owned()),
        ];
        if let Some(url) = &url {
            envs.push(("DATABASE_URL", url.clone()));
        }
        for (name, value) in extra {
            envs.push((*name, (*value).to_owned()));
        }
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let service =
            Service::start(&bin.display().to_string(), &envs).map_err(|e| anyhow::anyhow!(e))?;
        let addr = service.addr;
        let mut control = Self {
            service: Some(service),
            data_dir,
            database,
            addr,
            environment: String::new(),
            token: String::new(),
            cookie: String::new(),
            project: String::new(),
        };
        let (_, head, _) = call(
            addr,
            "POST",
            "/api/setup/complete",
            None,
            &json!({"workspace_name": "Load", "name": "Load", "email": "load@example.com", "password": "load-password-1"}),
        )?;
        let cookie = head
            .iter()
            .find(|h| h.to_ascii_lowercase().starts_with("set-cookie:"))
            .and_then(|h| h.split_once(':'))
            .and_then(|(_, v)| v.trim().split(';').next())
            .context("setup set no session cookie")?
            .to_owned();
        let (_, _, projects) = call(addr, "GET", "/api/projects", Some(&cookie), &Value::Null)?;
        let project = text(&projects[0], "id")?;
        let (_, _, envs) = call(
            addr,
            "GET",
            &format!("/api/projects/{project}/environments"),
            Some(&cookie),
            &Value::Null,
        )?;
        control.environment = text(&envs[0], "id")?;
        let (_, _, token) = call(
            addr,
            "POST",
            &format!("/api/projects/{project}/tokens"),
            Some(&cookie),
            &json!({"name": "load", "role": "editor"}),
        )?;
        control.token = text(&token, "token")?;
        control.cookie = cookie;
        control.project = project;
        Ok(control)
    }

    /// Creates `count` flags `load-0` … in the environment, each with three rules and a
    /// rollout, about the size of a real flag; over a few connections at once.
    pub(crate) fn seed_flags(&self, count: usize) -> anyhow::Result<()> {
        const SEEDERS: usize = 4;
        let auth = format!("Bearer {}", self.token);
        let path = format!("/api/environments/{}/flags", self.environment);
        let addr = self.addr;
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..SEEDERS)
                .map(|w| {
                    let (auth, path) = (&auth, &path);
                    scope.spawn(move || -> anyhow::Result<()> {
                        for i in (w..count).step_by(SEEDERS) {
                            let flag = json!({
                                "key": format!("load-{i}"), "is_enabled": true, "rollout_percentage": 50,
                                "description": "a flag of the load test",
                                "rules": [
                                    {"attribute": "email", "operator": "ends_with", "values": ["@example.com"]},
                                    {"attribute": "plan", "operator": "equals", "values": ["enterprise", "pro"]},
                                    {"attribute": "country", "operator": "equals", "values": ["NZ"]}
                                ]
                            })
                            .to_string();
                            let (status, _, body) = http_request(
                                addr,
                                "POST",
                                path,
                                &[("Authorization", auth)],
                                Some(&flag),
                            )?;
                            if !(200..300).contains(&status) {
                                bail!("seeding flag {i}: {status} {body}");
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            for worker in workers {
                worker
                    .join()
                    .map_err(|_| anyhow::anyhow!("a seeding thread panicked"))??;
            }
            Ok(())
        })
    }

    /// The feed's address and certificate fingerprint, from the start-up log.
    pub(crate) fn feed(&self) -> anyhow::Result<(std::net::SocketAddr, String)> {
        let service = self.service.as_ref().context("stopped")?;
        let line = service
            .log
            .iter()
            .find(|l| l.contains("listener=feed"))
            .context("the control plane logged no feed listener")?;
        let field = |name: &str| {
            line.split(&format!("{name}="))
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(|v| v.trim_matches('"').to_owned())
                .with_context(|| format!("no {name} in {line:?}"))
        };
        Ok((field("addr")?.parse()?, field("fingerprint")?))
    }

    /// A new edge token for every environment.
    pub(crate) fn edge_token(&self) -> anyhow::Result<String> {
        let (_, _, token) = call(
            self.addr,
            "POST",
            "/api/edge-tokens",
            Some(&self.cookie),
            &json!({"name": "load"}),
        )?;
        text(&token, "token")
    }

    /// The embedded store's URL (the control plane keeps its SQLite file in its data
    /// directory), for writing to it from this process.
    pub(crate) fn embedded_url(&self) -> String {
        checkgate_control::store::embedded_url(&self.data_dir)
    }

    /// A new SDK key of `kind` (`server` or `client`) for the environment.
    pub(crate) fn sdk_key(&self, kind: &str) -> anyhow::Result<String> {
        let (_, _, key) = call(
            self.addr,
            "POST",
            &format!("/api/projects/{}/keys", self.project),
            Some(&self.cookie),
            &json!({"name": format!("load {kind}"), "environment_id": self.environment, "kind": kind}),
        )?;
        text(&key, "key")
    }

    /// Sends a flag change through the API (as the admin); returns the version it took.
    pub(crate) fn patch_flag(&self, key: &str, patch: &Value) -> anyhow::Result<u64> {
        let (_, _, flag) = call(
            self.addr,
            "PATCH",
            &format!("/api/environments/{}/flags/{key}", self.environment),
            Some(&self.cookie),
            patch,
        )?;
        flag["version"]
            .as_u64()
            .with_context(|| format!("no version in {flag}"))
    }

    /// The server's resident memory (KiB) and CPU time (seconds) so far, from `/proc`.
    pub(crate) fn usage(&self) -> Option<(u64, f64)> {
        usage(self.service.as_ref()?.pid())
    }

    /// The server's process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.service.as_ref().map(Service::pid)
    }

    /// Stops the process and removes its data (and its PostgreSQL database).
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(service) = self.service.take() {
            service.terminate().map_err(|e| anyhow::anyhow!(e))?;
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some((server, name)) = self.database.take() {
            let mut conn = sqlx::PgConnection::connect(&server).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await?;
        }
        Ok(())
    }
}

impl Drop for Control {
    /// On an early return the process is killed (by `Service`'s own drop) and the data
    /// directory removed; only a PostgreSQL database may then remain, named `cg_load_…`.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A process's resident memory (KiB) and CPU time (seconds) so far, from `/proc`.
pub(crate) fn usage(pid: u32) -> Option<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Some((rss, ticks as f64 / 100.0))
}

/// An edge relay process following `control`'s feed, ready to serve.
pub(crate) struct EdgeProcess {
    service: Option<Service>,
    data_dir: PathBuf,
    pub(crate) addr: SocketAddr,
}

impl EdgeProcess {
    /// Starts `checkgate-edge` beside `control_bin` and waits (at most a minute) until ready;
    /// it follows `control`'s QUIC feed, or with `nats`, the feed relayed through it.
    pub(crate) async fn start(
        control_bin: &Path,
        control: &Control,
        nats: Option<&crate::nats::Nats>,
    ) -> anyhow::Result<Self> {
        Self::start_with(control_bin, control, nats, &[]).await
    }

    /// [`EdgeProcess::start`], with further settings (`NAME`, `value`).
    pub(crate) async fn start_with(
        control_bin: &Path,
        control: &Control,
        nats: Option<&crate::nats::Nats>,
        more: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let bin = control_bin.with_file_name("checkgate-edge");
        if !bin.is_file() {
            bail!(
                "{} does not exist: build it with `cargo build --release -p checkgate-edge`",
                bin.display()
            );
        }
        let token = control.edge_token()?;
        let data_dir =
            std::env::temp_dir().join(format!("cg-load-edge-{}", uuid::Uuid::new_v4().simple()));
        let data = data_dir.display().to_string();
        let mut envs: Vec<(&str, String)> = match nats {
            None => {
                let (feed, fingerprint) = control.feed()?;
                vec![
                    ("FEED_ADDR", feed.to_string()),
                    ("FEED_FINGERPRINT", fingerprint),
                ]
            }
            Some(nats) => vec![
                ("FEED_ADDR", nats.url.clone()),
                ("NATS_STREAM", nats.stream.clone()),
                ("CONTROL_PLANE_URL", format!("http://{}", control.addr)),
            ],
        };
        envs.extend([
            ("EDGE_TOKEN", token),
            ("CHECKGATE_DATA_DIR", data),
            ("RUST_LOG", "warn,checkgate_edge=info,checkgate_feed=info,checkgate_serve=info,checkgate_ops=info".to_owned()),
        ]);
        envs.extend(more.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let service =
            Service::start(&bin.display().to_string(), &envs).map_err(|e| anyhow::anyhow!(e))?;
        let edge = Self {
            addr: service.addr,
            service: Some(service),
            data_dir,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(service) = &edge.service
                && matches!(service.get("/ready"), Ok((200, _)))
            {
                return Ok(edge);
            }
            if std::time::Instant::now() > deadline {
                bail!("the edge was not ready within a minute");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn usage(&self) -> Option<(u64, f64)> {
        usage(self.service.as_ref()?.pid())
    }
}

impl Drop for EdgeProcess {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            let _ = service.terminate();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

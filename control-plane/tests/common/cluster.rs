//! Real processes for the feed's system tests: control planes on one PostgreSQL database (and
//! optionally Redis), edges dialing them, a private Redis server that a test may stop, and
//! the HTTP calls that drive them — all on loopback, every wait bounded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checkgate_testkit::{Service, http_request};
use serde_json::{Value, json};

pub const CONTROL_BIN: &str = env!("CARGO_BIN_EXE_checkgate-control");
pub const SESSION_SECRET: &str = "a-session-secret-shared-by-every-instance";

/// The edge binary, built beside this test by `cargo test --workspace`.
pub fn edge_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("checkgate-edge");
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo test --workspace` (or `cargo build -p checkgate-edge` first)",
        bin.display()
    );
    bin
}

/// A directory of the test's own, removed afterwards.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cg-{tag}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `check` until it returns `Some`, for at most `limit`.
#[allow(
    clippy::disallowed_methods,
    reason = "a synchronous test thread polling processes with a deadline, not an async worker"
)]
pub fn eventually<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for `duration` (a test's deliberate pause, such as an outage).
#[allow(
    clippy::disallowed_methods,
    reason = "a synchronous test thread holding an outage open"
)]
pub fn pause(duration: Duration) {
    std::thread::sleep(duration);
}

/// A control-plane process.
pub struct Control {
    pub service: Service,
    pub feed: SocketAddr,
    pub fingerprint: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Settings for [`Control::start`].
pub struct ControlOptions<'a> {
    pub database_url: &'a str,
    pub redis_url: Option<&'a str>,
    pub data_dir: &'a str,
    /// The feed's port; 0 for any.
    pub feed_port: u16,
    /// Present the certificate of another instance (`FEED_CERT`, `FEED_KEY`).
    pub cert: Option<(&'a Path, &'a Path)>,
    /// Further settings, as environment variables.
    pub env: &'a [(&'a str, &'a str)],
}

impl<'a> ControlOptions<'a> {
    /// One instance on its own: no Redis, any feed port, its own certificate, and `env`.
    pub fn alone(database_url: &'a str, data_dir: &'a str, env: &'a [(&'a str, &'a str)]) -> Self {
        Self {
            database_url,
            redis_url: None,
            data_dir,
            feed_port: 0,
            cert: None,
            env,
        }
    }
}

impl Control {
    pub fn start(options: &ControlOptions<'_>) -> Self {
        let feed_port = options.feed_port.to_string();
        let mut envs: Vec<(&str, &str)> = vec![
            ("DATABASE_URL", options.database_url),
            ("SESSION_SECRET", SESSION_SECRET),
            ("COOKIE_SECURE", "false"),
            ("CHECKGATE_DATA_DIR", options.data_dir),
            ("FEED_PORT", &feed_port),
            ("FEED_HEARTBEAT_MS", "500"),
            ("RUST_LOG", "info"),
        ];
        if let Some(url) = options.redis_url {
            envs.push(("REDIS_URL", url));
        }
        envs.extend_from_slice(options.env);
        let (cert, key);
        if let Some((c, k)) = options.cert {
            cert = c.display().to_string();
            key = k.display().to_string();
            envs.push(("FEED_CERT", &cert));
            envs.push(("FEED_KEY", &key));
        }
        let service = Service::start(CONTROL_BIN, &envs).unwrap();
        let line = service
            .log
            .iter()
            .find(|l| l.contains("listener=feed"))
            .unwrap_or_else(|| panic!("no feed listener in {:?}", service.log))
            .clone();
        let field = |name: &str| {
            line.split(&format!("{name}="))
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(|v| v.trim_matches('"').to_owned())
                .unwrap()
        };
        let cert = PathBuf::from(field("certificate"));
        let key = options.cert.map_or_else(
            || cert.with_file_name("feed_key.pem"),
            |(_, k)| k.to_owned(),
        );
        Self {
            feed: field("addr").parse().unwrap(),
            fingerprint: field("fingerprint"),
            service,
            cert,
            key,
        }
    }

    pub fn http(&self) -> SocketAddr {
        self.service.addr
    }
}

/// JSON over HTTP with a bearer token (or none); returns the status and body.
pub fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("X-Checkgate-Request", "1")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let text = body.map(Value::to_string);
    match http_request(addr, method, path, &headers, text.as_deref()) {
        Ok((status, _, body)) => (status, serde_json::from_str(&body).unwrap_or(Value::Null)),
        // The process is gone (a test killed it): no answer.
        Err(_) => (0, Value::Null),
    }
}

/// A workspace set up on a control plane: an admin session, a project with its environments,
/// an editor API token for writers and an edge token for edges.
pub struct Workspace {
    pub project: String,
    /// development, staging, production.
    pub envs: Vec<String>,
    pub api_token: String,
    pub edge_token: String,
    pub admin_cookie: String,
}

impl Workspace {
    pub fn set_up(control: SocketAddr) -> Self {
        let body = json!({"workspace_name": "Acme", "name": "Admin", "email": "admin@example.com", "password": "admin-password-1"});
        let (status, head, _) = http_request(
            control,
            "POST",
            "/api/setup/complete",
            &[("X-Checkgate-Request", "1")],
            Some(&body.to_string()),
        )
        .unwrap();
        assert_eq!(status, 200);
        let cookie = head
            .iter()
            .find_map(|h| {
                let (name, value) = h.split_once(':')?;
                name.eq_ignore_ascii_case("set-cookie").then(|| {
                    value
                        .trim()
                        .split(';')
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                })
            })
            .unwrap();
        let with_cookie = |method: &str, path: &str, body: Option<Value>| {
            let text = body.map(|b| b.to_string());
            let (status, _, body) = http_request(
                control,
                method,
                path,
                &[("X-Checkgate-Request", "1"), ("Cookie", &cookie)],
                text.as_deref(),
            )
            .unwrap();
            assert!(
                (200..300).contains(&status),
                "{method} {path}: {status} {body}"
            );
            serde_json::from_str::<Value>(&body).unwrap()
        };
        let project = with_cookie("GET", "/api/projects", None)[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let envs = with_cookie(
            "GET",
            &format!("/api/projects/{project}/environments"),
            None,
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
        let api_token = with_cookie(
            "POST",
            &format!("/api/projects/{project}/tokens"),
            Some(json!({"name": "writers", "role": "editor"})),
        )["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let edge_token =
            with_cookie("POST", "/api/edge-tokens", Some(json!({"name": "edges"})))["token"]
                .as_str()
                .unwrap()
                .to_owned();
        Self {
            project,
            envs,
            api_token,
            edge_token,
            admin_cookie: cookie,
        }
    }
}

/// Flags by key: (version, document).
pub type Flags = BTreeMap<String, (u64, Value)>;

/// An edge process.
pub struct Edge {
    pub service: Service,
    pub data: TempDir,
}

impl Edge {
    /// Starts an edge on `feed_addrs` (comma-separated), keeping its data in `data`.
    pub fn start(feed_addrs: &str, fingerprint: &str, token: &str, data: TempDir) -> Self {
        Self::start_with(feed_addrs, fingerprint, token, data, &[])
    }

    /// [`Edge::start`] with further settings, as environment variables.
    pub fn start_with(
        feed_addrs: &str,
        fingerprint: &str,
        token: &str,
        data: TempDir,
        more: &[(&str, &str)],
    ) -> Self {
        let bin = edge_bin();
        let mut envs = vec![
            ("FEED_ADDR", feed_addrs),
            ("FEED_FINGERPRINT", fingerprint),
            ("EDGE_TOKEN", token),
            ("EDGE_NAME", "test-edge"),
            ("CHECKGATE_DATA_DIR", data.path()),
            ("ANTI_ENTROPY_SECONDS", "2"),
            ("RUST_LOG", "info"),
        ];
        envs.extend_from_slice(more);
        let service = Service::start(bin.to_str().unwrap(), &envs).unwrap();
        Self { service, data }
    }

    /// Starts an edge following the feed over NATS (`FEED_ADDR=nats://…`), with the control
    /// planes at `control_urls` for its handshake, snapshots and reports.
    pub fn start_nats(nats_url: &str, control_urls: &str, token: &str, data: TempDir) -> Self {
        Self::start_nats_with(nats_url, control_urls, token, data, &[])
    }

    /// [`Edge::start_nats`] with further settings (NATS credentials, domain), as environment
    /// variables.
    pub fn start_nats_with(
        nats_url: &str,
        control_urls: &str,
        token: &str,
        data: TempDir,
        more: &[(&str, &str)],
    ) -> Self {
        let bin = edge_bin();
        let mut envs = vec![
            ("FEED_ADDR", nats_url),
            ("CONTROL_PLANE_URL", control_urls),
            ("EDGE_TOKEN", token),
            ("EDGE_NAME", "nats-edge"),
            // Generous on a loaded machine: a read-your-writes request waits this long.
            ("MIN_VERSION_WAIT_MS", "10000"),
            ("CHECKGATE_DATA_DIR", data.path()),
            ("ANTI_ENTROPY_SECONDS", "2"),
            ("RUST_LOG", "info"),
        ];
        envs.extend_from_slice(more);
        let service = Service::start(bin.to_str().unwrap(), &envs).unwrap();
        Self { service, data }
    }

    pub fn status(&self) -> Value {
        let (_, body) = self.service.get("/status").unwrap_or((0, String::new()));
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    /// Each environment's applied version, from `/status`.
    pub fn versions(&self) -> BTreeMap<String, u64> {
        Self::versions_at(self.service.addr)
    }

    /// Each environment's applied version, from the `/status` of the edge at `addr` (empty
    /// when it does not answer).
    pub fn versions_at(addr: SocketAddr) -> BTreeMap<String, u64> {
        let status = checkgate_testkit::http_get(addr, "/status")
            .ok()
            .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
            .unwrap_or(Value::Null);
        status["environments"]
            .as_array()
            .map(|envs| {
                envs.iter()
                    .map(|e| {
                        (
                            e["env_id"].as_str().unwrap_or_default().to_owned(),
                            e["version"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn snapshot_path(&self) -> PathBuf {
        self.data.0.join(checkgate_edge::SNAPSHOT_FILE)
    }

    /// What a restart of the edge would serve: its snapshot file with its change journal
    /// replayed over it, read without disturbing the running edge.
    pub fn restored(&self) -> Option<checkgate_edge::snapshot_file::Persisted> {
        restored(&self.data.0)
    }

    /// The flags of `env` a restart would serve (snapshot file and journal): key → (version,
    /// document).
    pub fn saved_flags(&self, env: &str) -> Option<(u64, Flags)> {
        let saved = self.restored()?;
        let env = saved
            .environments
            .into_iter()
            .find(|e| e.info.env_id == env)?;
        let flags = env
            .snapshot
            .flags
            .into_iter()
            .map(|r| (r.key, (r.version, serde_json::from_str(&r.json).unwrap())))
            .collect();
        Some((env.snapshot.version, flags))
    }
}

/// What an edge restarted on the data directory `data` would serve: its snapshot file with
/// its change journal replayed over it, read without disturbing an edge running there.
pub fn restored(data: &Path) -> Option<checkgate_edge::snapshot_file::Persisted> {
    let replica = checkgate_serve::replica::Replica::new();
    let file = data.join(checkgate_edge::SNAPSHOT_FILE);
    if let Some(persisted) = checkgate_edge::snapshot_file::load(&file).ok()? {
        replica.load(&persisted);
    }
    let journal = data.join(checkgate_edge::JOURNAL_FILE);
    checkgate_edge::journal::replay(
        &replica,
        checkgate_edge::journal::read(&journal).ok()?.entries,
        0,
    );
    Some(replica.persisted())
}

/// A Redis server of the test's own, on a port of its own, that the test can stop and restart.
pub struct Redis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl Redis {
    pub fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port and waits until it accepts connections.
    pub fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test.sh installs it)");
        self.child = Some(child);
        let port = self.port;
        eventually(
            "redis to accept connections",
            Duration::from_secs(20),
            || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
        );
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The nats-server binary: on the PATH, or where Debian's package puts it.
pub fn nats_server_bin() -> PathBuf {
    let debian = PathBuf::from("/usr/sbin/nats-server");
    if debian.is_file() {
        debian
    } else {
        PathBuf::from("nats-server")
    }
}

/// A free port on loopback (free when asked; a test binds it right after).
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct free ports on loopback: every one is held until all are chosen, so no two are
/// the same (a port freed and asked for again can come back).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|listener| listener.local_addr().unwrap().port())
        .collect()
}

/// A nats-server of the test's own (JetStream on, its store in a directory of its own, on a
/// port of its own), that the test can stop, restart, wipe and pause.
pub struct Nats {
    pub port: u16,
    /// Holds the store (`store/`), the server's log (`nats.log`) and, for a configured server,
    /// its configuration file.
    dir: TempDir,
    /// The configuration file it runs from; `None`: the command line's settings.
    config: Option<PathBuf>,
    child: Option<std::process::Child>,
}

/// How many times a server that could not listen is started again on other ports.
const NATS_LAUNCHES: usize = 3;

impl Nats {
    #[allow(
        clippy::print_stderr,
        reason = "a retry on other ports is said in the test's output"
    )]
    pub fn start() -> Self {
        let mut tries = 0;
        loop {
            tries += 1;
            match Self::launch(free_port(), TempDir::new("nats"), None) {
                Ok(nats) => return nats,
                Err(failure) if failure.port_taken() && tries < NATS_LAUNCHES => {
                    eprintln!("nats-server could not listen, trying other ports: {failure}");
                }
                Err(failure) => panic!("{failure}"),
            }
        }
    }

    /// A nats-server run from a configuration file, written by `render(port, store)` with the
    /// client port (the caller's choice) and the store directory it must use.
    pub fn configured_on(
        port: u16,
        render: impl FnOnce(u16, &str) -> String,
    ) -> Result<Self, NatsFailure> {
        let dir = TempDir::new("nats");
        let store = dir.0.join("store");
        let config = dir.0.join("nats.conf");
        std::fs::write(&config, render(port, store.to_str().unwrap())).unwrap();
        Self::launch(port, dir, Some(config))
    }

    fn launch(port: u16, dir: TempDir, config: Option<PathBuf>) -> Result<Self, NatsFailure> {
        std::fs::create_dir_all(dir.0.join("store")).unwrap();
        let mut nats = Self {
            port,
            dir,
            config,
            child: None,
        };
        nats.try_restart()?;
        Ok(nats)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port and store and waits until it accepts connections.
    pub fn restart(&mut self) {
        if let Err(failure) = self.try_restart() {
            panic!("{failure}");
        }
    }

    /// As [`Nats::restart`]; a server that exits, or does not listen within 20 s, is an error
    /// carrying the end of its log.
    pub fn try_restart(&mut self) -> Result<(), NatsFailure> {
        let store = self.dir.0.join("store");
        let log_path = self.dir.0.join("nats.log");
        let port = self.port.to_string();
        let mut args = match &self.config {
            Some(config) => vec!["-c", config.to_str().unwrap()],
            None => vec![
                "-a",
                "127.0.0.1",
                "-p",
                &port,
                "-js",
                "-sd",
                store.to_str().unwrap(),
            ],
        };
        args.extend(["-l", log_path.to_str().unwrap()]);
        let child = std::process::Command::new(nats_server_bin())
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server is installed (scripts/test.sh installs it)");
        self.child = Some(child);
        let port = self.port;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                self.stop();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(NatsFailure {
                    port,
                    what: match exited {
                        Some(status) => format!("exited ({status})"),
                        None => "did not accept connections within 20s".to_owned(),
                    },
                    log: tail.join("\n"),
                });
            }
            pause(Duration::from_millis(100));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server and deletes everything it stored.
    pub fn wipe(&mut self) {
        self.stop();
        let store = self.dir.0.join("store");
        let _ = std::fs::remove_dir_all(&store);
        std::fs::create_dir_all(&store).unwrap();
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().map(std::process::Child::id).unwrap();
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A nats-server that would not start: what happened and the end of its log.
#[derive(Debug)]
pub struct NatsFailure {
    port: u16,
    what: String,
    log: String,
}

impl NatsFailure {
    /// The server could not listen on a port the test chose for it: another process took the
    /// port between the test asking for a free one and the server binding it.
    pub fn port_taken(&self) -> bool {
        self.log.contains("address already in use")
    }
}

impl std::fmt::Display for NatsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "nats-server on port {} {}; the end of its log:\n{}",
            self.port, self.what, self.log
        )
    }
}

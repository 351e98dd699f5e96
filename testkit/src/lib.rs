//! Helpers for tests that run a Checkgate binary as a real process on loopback: start it on a
//! free port, wait (with a deadline) until it listens, talk HTTP to it, stop it with SIGTERM.
//! Shared by the edge's and the control plane's tests; not part of the product's API.

pub mod tcp_proxy;
pub mod udp_proxy;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a process gets to start or stop before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `bin` with only `envs` in its environment (plus PATH) and returns its output; for
/// runs that are expected to exit on their own (bad configuration, `--help`).
pub fn run(bin: &str, args: &[&str], envs: &[(&str, &str)]) -> std::io::Result<Output> {
    command(bin, envs).args(args).output()
}

fn command(bin: &str, envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(envs.iter().copied());
    cmd
}

/// A running service.
pub struct Service {
    child: Child,
    pub addr: SocketAddr,
    /// Every line the service logged so far, collected by a reader thread.
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl Service {
    /// Starts `bin` on 127.0.0.1 with port 0 and waits until it logs the address of its public
    /// listener. A control plane's feed also gets port 0 unless `envs` names one, so a test
    /// never collides with a service on the default port (an edge has no `FEED_PORT`).
    pub fn start(bin: &str, envs: &[(&str, &str)]) -> Result<Self, String> {
        let mut all: Vec<(&str, &str)> = vec![
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("FEED_PORT", "0"),
            ("RUST_LOG", "info"),
        ];
        all.extend_from_slice(envs);
        let mut child = command(bin, &all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning {bin}: {e}"))?;
        let (tx, lines) = mpsc::channel();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut log = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(left) else {
                // Never leave a process behind when the test gives up on it.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{bin} did not start listening:\n{}",
                    log.join("\n")
                ));
            };
            let addr = (line.contains("listening") && line.contains("listener=public"))
                .then(|| line.split("addr=").nth(1))
                .flatten()
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|a| a.trim_matches('"').parse().ok());
            log.push(line);
            if let Some(addr) = addr {
                return Ok(Self {
                    child,
                    addr,
                    lines,
                    log,
                });
            }
        }
    }

    /// The process id, to read its resource use from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET path`, returning the status code and body.
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.addr, path)
    }

    /// Waits until the service logs a line containing `needle` (it may already have), or
    /// fails after `limit` with the log so far.
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if self.log.iter().any(|l| l.contains(needle)) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "no {needle:?} in the log within {limit:?}:\n{}",
                    self.log.join("\n")
                ));
            }
            if let Ok(line) = self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                self.log.push(line);
            }
        }
    }

    /// Sends SIGTERM and waits for the exit status; collects the rest of the log.
    pub fn terminate(mut self) -> Result<(ExitStatus, Vec<String>), String> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| format!("kill: {e}"))?;
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return Err("the service did not stop after SIGTERM".into());
            }
            // Poll the exit status; the reader threads keep collecting lines meanwhile.
            let _ = self
                .lines
                .recv_timeout(Duration::from_millis(20))
                .map(|l| self.log.push(l));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.log.push(line);
        }
        Ok((status, std::mem::take(&mut self.log)))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET over a fresh connection.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, DEADLINE)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// One HTTP/1.1 request over a fresh connection: returns the status, the response's header
/// lines and its body. `body` is sent as JSON when given.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<(u16, Vec<String>, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, DEADLINE)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if let Some(body) = body {
        stream.write_all(body.as_bytes())?;
    }
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, lines.map(str::to_owned).collect(), body.to_owned()))
}

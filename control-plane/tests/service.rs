//! The control plane as a process: configuration refused before binding (one line naming the
//! variable, exit 2, never echoing a secret), `--help` documenting every variable, and a clean
//! start and stop on the embedded default.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use checkgate_testkit::{self as testkit, Service};

const BIN: &str = env!("CARGO_BIN_EXE_checkgate-control");

fn refused(envs: &[(&str, &str)]) -> String {
    let out = testkit::run(BIN, &[], envs).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{envs:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{envs:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{envs:?}");
    stderr
}

#[test]
fn each_bad_value_names_its_variable() {
    let cases = [
        ("PORT", "abc"),
        ("PORT", "65536"),
        ("DB_MAX_CONNECTIONS", "0"),
        ("DB_MAX_CONNECTIONS", "1001"),
        ("DATABASE_URL", "mysql://root@localhost/db"),
        ("REDIS_URL", "http://localhost:6379"),
        ("SESSION_SECRET", "too-short"),
        ("COOKIE_SECURE", "maybe"),
        ("PUBLIC_DIR", "/definitely/not/here"),
        ("RUST_LOG", "[[["),
        ("HOST", "example.com"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal"),
        ("TRUSTED_PROXIES", "10.1.2.3/8"),
        ("NATS_URL", "http://nats:4222"),
        ("NATS_URL", " , "),
        ("NATS_REPLICAS", "9"),
        ("NATS_MAX_AGE", "7w"),
        ("IMPRESSIONS_RETENTION_DAYS", "0"),
        // Rollups must outlive the raw impressions they summarise (30 days by default).
        ("INSIGHTS_RETENTION_DAYS", "7"),
        ("STALE_AFTER_DAYS", "0"),
    ];
    for (var, value) in cases {
        let line = refused(&[(var, value)]);
        assert!(
            line.starts_with(&format!(
                "checkgate-control: invalid configuration: {var} (--"
            )),
            "{var}={value}: {line}"
        );
    }
}

#[test]
fn nats_settings_are_checked_together_with_nats_url() {
    let url = ("NATS_URL", "nats://127.0.0.1:4222");
    for (envs, var) in [
        (vec![url, ("NATS_USER", "relay")], "NATS_PASSWORD"),
        (
            vec![url, ("NATS_CREDS", "/definitely/not/here")],
            "NATS_CREDS",
        ),
        (vec![url, ("NATS_STREAM", "a.b")], "NATS_STREAM"),
        (vec![url, ("NATS_MAX_AGE", "30s")], "NATS_MAX_AGE"),
        (
            vec![url, ("NATS_TLS_CERT", "/etc/hostname")],
            "NATS_TLS_KEY",
        ),
    ] {
        let line = refused(&envs);
        assert!(
            line.starts_with(&format!(
                "checkgate-control: invalid configuration: {var} (--"
            )),
            "{envs:?}: {line}"
        );
        assert!(!line.contains("relay-password"), "{line}");
    }
}

#[test]
fn the_line_reads_variable_flag_value_and_problem() {
    assert_eq!(
        refused(&[("PORT", "abc")]),
        "checkgate-control: invalid configuration: PORT (--port): invalid value 'abc': \
         invalid digit found in string\n"
    );
    assert_eq!(
        refused(&[("TRUSTED_PROXIES", "10.0.0.0/8, 10.1.2.3/8")]),
        "checkgate-control: invalid configuration: TRUSTED_PROXIES (--trusted-proxies): \
         invalid value '10.0.0.0/8, 10.1.2.3/8': 10.1.2.3/8 has bits set past its prefix; \
         the network is 10.0.0.0/8\n"
    );
    assert_eq!(
        refused(&[("DB_MAX_CONNECTIONS", "0")]),
        "checkgate-control: invalid configuration: DB_MAX_CONNECTIONS (--db-max-connections): \
         invalid value '0': 0 is not in 1..=1000\n"
    );
}

#[test]
fn secrets_in_bad_values_are_not_echoed() {
    let line = refused(&[("DATABASE_URL", "mysql://admin:hunter2-secret@db/prod")]);
    assert!(!line.contains("hunter2"), "{line}");
    let line = refused(&[("SESSION_SECRET", "s3cr3t-but-short")]);
    assert!(!line.contains("s3cr3t"), "{line}");
    let line = refused(&[("REDIS_URL", "http://:pa55word@cache:6379")]);
    assert!(!line.contains("pa55word"), "{line}");
}

#[test]
fn help_documents_every_variable_without_values() {
    let out = testkit::run(
        BIN,
        &["--help"],
        &[(
            "SESSION_SECRET",
            "a-session-secret-that-is-long-enough-1234",
        )],
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for var in [
        "PORT",
        "HOST",
        "DATABASE_URL",
        "DB_MAX_CONNECTIONS",
        "DB_CONNECT_TIMEOUT_SECONDS",
        "REDIS_URL",
        "SESSION_SECRET",
        "COOKIE_SECURE",
        "PUBLIC_DIR",
        "CHECKGATE_DATA_DIR",
        "RUST_LOG",
        "LOG_FORMAT",
        "METRICS_ADDR",
        "SHUTDOWN_GRACE_SECONDS",
        "TRUSTED_PROXIES",
    ] {
        assert!(
            help.contains(&format!("[env: {var}")),
            "--help does not mention {var}"
        );
    }
    assert!(
        !help.contains("a-session-secret"),
        "--help shows a secret's value"
    );
}

/// A data directory of its own for one test, removed afterwards.
struct DataDir(std::path::PathBuf);

impl DataDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "cg-control-test-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        Self(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn an_unreachable_database_stops_start_up_before_any_port_is_bound() {
    // Port 1 on loopback refuses connections; the password must not reach the output.
    let out = testkit::run(
        BIN,
        &[],
        &[
            (
                "DATABASE_URL",
                "postgres://checkgate:pa55-secret@127.0.0.1:1/checkgate",
            ),
            ("PORT", "0"),
            ("DB_CONNECT_TIMEOUT_SECONDS", "1"),
        ],
    )
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("opening the store"), "{text}");
    assert!(
        !text.contains("listening"),
        "bound a port before the store opened: {text}"
    );
    assert!(!text.contains("pa55-secret"), "{text}");
}

#[test]
fn starts_on_the_embedded_default_and_stops_on_sigterm() {
    let secret = "0123456789abcdef0123456789abcdef-unique";
    let data = DataDir::new();
    let service = Service::start(
        BIN,
        &[
            ("SESSION_SECRET", secret),
            ("COOKIE_SECURE", "false"),
            ("CHECKGATE_DATA_DIR", data.path()),
        ],
    )
    .unwrap();
    assert_eq!(
        service.get("/health").unwrap(),
        (200, r#"{"status":"ok"}"#.to_owned())
    );
    let (status, body) = service.get("/ready").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""store":{"ok":true"#), "{body}");
    assert!(
        std::path::Path::new(data.path())
            .join("checkgate.db")
            .exists(),
        "the embedded store lives in CHECKGATE_DATA_DIR"
    );
    let (status, body) = service.get("/api/nothing-here").unwrap();
    assert_eq!(status, 404);
    assert!(
        body.starts_with(r#"{"error":{"code":"not_found""#),
        "{body}"
    );
    let (exit, log) = service.terminate().unwrap();
    assert!(exit.success(), "{exit:?}\n{}", log.join("\n"));
    assert!(
        log.iter().all(|l| !l.contains(secret)),
        "a log line holds the session secret"
    );
}

/// The permission bits of a file or directory.
#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[test]
fn the_embedded_store_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let data = DataDir::new();
    let dir = std::path::Path::new(data.path()).to_owned();
    let files = ["checkgate.db", "checkgate.db-wal", "checkgate.db-shm"].map(|f| dir.join(f));
    let start = || {
        Service::start(
            BIN,
            &[
                ("COOKIE_SECURE", "false"),
                ("CHECKGATE_DATA_DIR", data.path()),
                ("FEED_ENABLED", "false"),
            ],
        )
        .unwrap()
    };
    let service = start();
    assert_eq!(
        format!("{:o}", mode(&dir)),
        "700",
        "a new data directory is private"
    );
    for file in &files {
        assert_eq!(format!("{:o}", mode(file)), "600", "{}", file.display());
    }
    assert_eq!(format!("{:o}", mode(&dir.join("session_secret"))), "600");
    // Killed, so the -wal and -shm files stay behind, as after a crash.
    drop(service);
    assert!(files.iter().all(|f| f.exists()), "{files:?}");

    // Files an earlier release left readable by everyone are made private at start.
    for file in &files {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let service = start();
    for file in &files {
        assert_eq!(format!("{:o}", mode(file)), "600", "{}", file.display());
    }
    // Logged before the listener is bound, so it is among the lines read at start.
    assert!(
        service
            .log
            .iter()
            .any(|l| l.contains("made the database file private")),
        "{}",
        service.log.join("\n")
    );
}

#[test]
fn serves_the_dashboard_from_public_dir_and_refuses_a_directory_without_one() {
    let data = DataDir::new();
    let public = std::path::Path::new(data.path()).join("public");
    std::fs::create_dir_all(public.join("assets")).unwrap();
    std::fs::write(
        public.join("index.html"),
        "<!doctype html><div id=root></div>",
    )
    .unwrap();
    std::fs::write(public.join("assets/app-0f1e.js"), "export {};").unwrap();
    let service = Service::start(
        BIN,
        &[
            ("COOKIE_SECURE", "false"),
            ("CHECKGATE_DATA_DIR", data.path()),
            ("PUBLIC_DIR", public.to_str().unwrap()),
        ],
    )
    .unwrap();
    let html = [("Accept", "text/html")];
    for path in ["/", "/projects/p/envs/e/flags/checkout"] {
        let (status, headers, body) =
            testkit::http_request(service.addr, "GET", path, &html, None).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains("<div id=root>"), "{path}: {body}");
        assert!(
            headers.iter().any(|h| h
                .to_ascii_lowercase()
                .starts_with("content-security-policy:")),
            "{headers:?}"
        );
    }
    let (status, _, body) =
        testkit::http_request(service.addr, "GET", "/assets/app-0f1e.js", &[], None).unwrap();
    assert_eq!((status, body.as_str()), (200, "export {};"));
    // The API's own 404s stay JSON, writes to unknown paths are not the app, and neither is a
    // missing script (a script is fetched with `Accept: */*`).
    for (method, path, accept) in [
        ("GET", "/api/nothing-here", "text/html"),
        ("POST", "/somewhere", "text/html"),
        ("GET", "/assets/gone.js", "*/*"),
    ] {
        let (status, _, body) =
            testkit::http_request(service.addr, method, path, &[("Accept", accept)], None).unwrap();
        assert_eq!(status, 404, "{method} {path}");
        assert!(body.starts_with(r#"{"error":"#), "{method} {path}: {body}");
    }
    drop(service);

    // A PUBLIC_DIR without a built dashboard stops start-up and says what to do.
    let empty = std::path::Path::new(data.path()).join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = testkit::run(
        BIN,
        &[],
        &[
            ("CHECKGATE_DATA_DIR", data.path()),
            ("PUBLIC_DIR", empty.to_str().unwrap()),
            ("PORT", "0"),
        ],
    )
    .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("index.html") && text.contains("npm run build"),
        "{text}"
    );
}

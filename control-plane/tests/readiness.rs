//! `/ready` follows the store: 200 once migrated and answering, 503 while PostgreSQL does not
//! answer (here: its database is dropped under the running process), 200 again when it does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use checkgate_testkit::Service;
use common::pg::Database;

const BIN: &str = env!("CARGO_BIN_EXE_checkgate-control");

/// Polls `/ready` until it answers `want`, for at most 30 s; returns the last body.
#[allow(
    clippy::disallowed_methods,
    reason = "a synchronous test thread polling a process with a deadline, not an async worker"
)]
fn ready_becomes(service: &Service, want: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = service.get("/ready").unwrap();
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/ready stayed {status} ({body}), want {want}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn readiness_follows_whether_the_store_answers() {
    let db = Database::new();
    let data = std::env::temp_dir().join(format!("cg-ready-{}", uuid::Uuid::new_v4().simple()));
    let service = Service::start(
        BIN,
        &[
            ("DATABASE_URL", &db.url()),
            ("COOKIE_SECURE", "false"),
            ("CHECKGATE_DATA_DIR", data.to_str().unwrap()),
        ],
    )
    .unwrap();
    assert!(ready_becomes(&service, 200).contains(r#""store":{"ok":true"#));

    db.admin_sql(&format!("DROP DATABASE {} WITH (FORCE)", db.name()));
    let body = ready_becomes(&service, 503);
    assert!(body.contains("does not answer"), "{body}");
    assert_eq!(
        service.get("/health").unwrap().0,
        200,
        "alive, only not ready"
    );

    db.admin_sql(&format!("CREATE DATABASE {}", db.name()));
    ready_becomes(&service, 200);

    let (exit, log) = service.terminate().unwrap();
    let _ = std::fs::remove_dir_all(&data);
    assert!(exit.success(), "{exit:?}");
    assert!(log.iter().any(|l| l.contains("store does not answer")));
    assert!(log.iter().any(|l| l.contains("store answers again")));
}

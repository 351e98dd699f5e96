//! Webhooks with real control-plane processes on one PostgreSQL database: deliveries pending
//! when a control plane is killed are made by the next one (nothing lost); two instances
//! deliver each event once; start-up refuses a missing or wrong master key; a URL stored in
//! plain text before URLs were sealed is sealed once a key is given; and `rotate-master-key`
//! re-encrypts the stored secrets and URLs (again safely after a rerun).
//!
//! The scenarios run one at a time (they start several processes each).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use checkgate_control::store::webhooks::{SealedField, SealedValue};
use checkgate_control::vault::{self, MasterKey};
use checkgate_testkit::http_request;
use common::cluster::{CONTROL_BIN, Control, ControlOptions, TempDir, Workspace, call, eventually};
use common::pg::Database;
use common::receiver::{Received, Receiver, assert_signed, body_of};
use serde_json::{Value, json};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

const KEY_1: &str = "0101010101010101010101010101010101010101010101010101010101010101";
const KEY_2: &str = "0202020202020202020202020202020202020202020202020202020202020202";
const SECRET: &str = "the-receivers-shared-secret";
/// A chat service's kind of URL: its path is a token.
const HOOK_URL: &str = "https://hooks.example.com/services/path-token";

fn control(db: &Database, dir: &TempDir, env: &[(&str, &str)]) -> Control {
    Control::start(&ControlOptions::alone(&db.url(), dir.path(), env))
}

/// A request with the admin's cookie; status and JSON body.
fn as_admin(
    addr: SocketAddr,
    ws: &Workspace,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let (status, _, body) = http_request(
        addr,
        method,
        path,
        &[("X-Checkgate-Request", "1"), ("Cookie", &ws.admin_cookie)],
        text.as_deref(),
    )
    .unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn create_flag(addr: SocketAddr, ws: &Workspace, env: &str, key: &str) {
    let (status, body) = call(
        addr,
        "POST",
        &format!("/api/environments/{env}/flags"),
        Some(&ws.api_token),
        Some(&json!({"key": key, "is_enabled": true})),
    );
    assert_eq!(status, 201, "{body}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// The `flag.created` events answered 200, by flag key: how many times each.
fn delivered_flags(got: &[Received]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for r in got.iter().filter(|r| r.answered == 200) {
        let body = body_of(r);
        if body["event"] == "flag.created" {
            *seen
                .entry(body["flag_key"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    seen
}

#[test]
fn pending_deliveries_survive_a_killed_control_plane() {
    let _one = serial();
    let rt = runtime();
    let receiver = rt.block_on(Receiver::start(&[], 503));
    let allow = receiver.addr.to_string();
    let db = Database::new();
    let dir = TempDir::new("hooks");
    let env = [
        ("CHECKGATE_MASTER_KEY", KEY_1),
        ("WEBHOOK_ALLOW_HOSTS", allow.as_str()),
    ];
    let first = control(&db, &dir, &env);
    let ws = Workspace::set_up(first.http());
    let environment = ws.envs[0].clone();
    let (status, body) = as_admin(
        first.http(),
        &ws,
        "POST",
        &format!("/api/environments/{environment}/webhooks"),
        Some(json!({"name": "r", "url": receiver.url(), "secret": SECRET})),
    );
    assert_eq!(status, 201, "{body}");
    for n in 0..5 {
        create_flag(first.http(), &ws, &environment, &format!("f{n}"));
    }
    // The receiver fails the first attempts; then the control plane is killed (SIGKILL).
    eventually("first attempts", Duration::from_secs(60), || {
        (receiver.received().len() >= 5).then_some(())
    });
    drop(first);
    receiver.answer_from_now(200);

    let second = control(&db, &dir, &env);
    let seen = eventually("every event delivered", Duration::from_secs(120), || {
        let seen = delivered_flags(&receiver.received());
        (seen.len() == 5).then_some(seen)
    });
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    for r in receiver.received() {
        assert_signed(&r, SECRET);
    }
    drop(second);
}

#[test]
fn two_control_planes_deliver_each_event_once() {
    let _one = serial();
    let rt = runtime();
    let receiver = rt.block_on(Receiver::start(&[], 200));
    let allow = receiver.addr.to_string();
    let db = Database::new();
    let (dir_a, dir_b) = (TempDir::new("hooks-a"), TempDir::new("hooks-b"));
    let env = [
        ("CHECKGATE_MASTER_KEY", KEY_1),
        ("WEBHOOK_ALLOW_HOSTS", allow.as_str()),
    ];
    let a = control(&db, &dir_a, &env);
    let ws = Workspace::set_up(a.http());
    let b = control(&db, &dir_b, &env);
    let environment = ws.envs[0].clone();
    let (status, body) = as_admin(
        a.http(),
        &ws,
        "POST",
        &format!("/api/environments/{environment}/webhooks"),
        Some(json!({"name": "r", "url": receiver.url(), "secret": SECRET})),
    );
    assert_eq!(status, 201, "{body}");
    const N: usize = 20;
    for n in 0..N {
        let to = if n % 2 == 0 { a.http() } else { b.http() };
        create_flag(to, &ws, &environment, &format!("f{n}"));
    }
    eventually("every event delivered", Duration::from_secs(120), || {
        (delivered_flags(&receiver.received()).len() == N).then_some(())
    });
    // A second delivery, if one were coming, would come within the poll interval.
    eventually("a quiet moment", Duration::from_secs(10), || {
        let before = receiver.received().len();
        common::cluster::pause(Duration::from_secs(2));
        (receiver.received().len() == before).then_some(())
    });
    let seen = delivered_flags(&receiver.received());
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    assert_eq!(receiver.received().len(), N);
    drop((a, b));
}

/// Starts a control plane expected to refuse; returns its log.
fn refused(db: &Database, dir: &TempDir, env: &[(&str, &str)]) -> String {
    let mut all = vec![
        ("DATABASE_URL", db.url()),
        ("CHECKGATE_DATA_DIR", dir.path().to_owned()),
        ("SESSION_SECRET", common::cluster::SESSION_SECRET.to_owned()),
    ];
    all.extend(env.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let envs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match checkgate_testkit::Service::start(CONTROL_BIN, &envs) {
        Ok(_) => panic!("the control plane started with {env:?}"),
        Err(log) => log,
    }
}

/// The sealed values stored: the one webhook's secret, then its URL.
fn stored_values(db: &Database) -> [SealedValue; 2] {
    runtime().block_on(async {
        let store = checkgate_control::store::Store::open(&db.url(), 1, Duration::from_secs(10))
            .await
            .unwrap();
        let rows = store.sealed_values().await.unwrap();
        store.close().await;
        let [secret, url]: [SealedValue; 2] = rows.try_into().unwrap();
        assert_eq!(
            (secret.field, url.field),
            (SealedField::Secret, SealedField::Url)
        );
        [secret, url]
    })
}

#[test]
fn start_up_refuses_a_missing_or_wrong_key_and_rotation_re_encrypts() {
    let _one = serial();
    let db = Database::new();
    let dir = TempDir::new("hooks-keys");
    let first = control(&db, &dir, &[("CHECKGATE_MASTER_KEY", KEY_1)]);
    let ws = Workspace::set_up(first.http());
    let (status, body) = as_admin(
        first.http(),
        &ws,
        "POST",
        &format!("/api/environments/{}/webhooks", ws.envs[0]),
        Some(json!({"name": "r", "url": HOOK_URL, "secret": SECRET})),
    );
    assert_eq!(status, 201, "{body}");
    first.service.terminate().unwrap();
    let id_1 = MasterKey::parse("K", KEY_1).unwrap().id().to_owned();
    let id_2 = MasterKey::parse("K", KEY_2).unwrap().id().to_owned();
    for sealed in stored_values(&db) {
        assert!(sealed.sealed.starts_with(&format!("cg1.{id_1}.")));
        assert!(!sealed.sealed.contains(SECRET) && !sealed.sealed.contains("path-token"));
    }

    let log = refused(&db, &dir, &[]);
    assert!(
        log.contains("refusing to start") && log.contains("CHECKGATE_MASTER_KEY is not set"),
        "{log}"
    );
    let log = refused(&db, &dir, &[("CHECKGATE_MASTER_KEY", KEY_2)]);
    assert!(
        log.contains("refusing to start") && log.contains(&id_1),
        "{log}"
    );
    assert!(!log.contains(KEY_2) && !log.contains(KEY_1));

    let url = db.url();
    let rotate = |old: &str| {
        let out = checkgate_testkit::run(
            CONTROL_BIN,
            &["rotate-master-key"],
            &[
                ("DATABASE_URL", url.as_str()),
                ("CHECKGATE_DATA_DIR", dir.path()),
                ("CHECKGATE_MASTER_KEY", old),
                ("CHECKGATE_MASTER_KEY_NEW", KEY_2),
            ],
        )
        .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = rotate(KEY_1);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("re-encrypted 2 sealed value(s)"),
        "{stdout}"
    );
    let resealed = stored_values(&db);
    for sealed in &resealed {
        assert!(
            sealed.sealed.starts_with(&format!("cg1.{id_2}.")),
            "{sealed:?}"
        );
    }
    // Run again (as after an interruption): nothing left to do, nothing broken.
    let (ok, stdout, stderr) = rotate(KEY_1);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("re-encrypted 0 sealed value(s)") && stdout.contains("2 already"),
        "{stdout}"
    );
    assert_eq!(stored_values(&db), resealed);

    // The old key is refused now; the new one opens the secret.
    let log = refused(&db, &dir, &[("CHECKGATE_MASTER_KEY", KEY_1)]);
    assert!(log.contains(&id_2), "{log}");
    let key_2 = MasterKey::parse("K", KEY_2).unwrap();
    let env = ws.envs[0].clone();
    let audited = runtime().block_on(async {
        let store = checkgate_control::store::Store::open(&db.url(), 1, Duration::from_secs(10))
            .await
            .unwrap();
        let audited = store.audit_for_environment(&env, 50).await.unwrap();
        store.close().await;
        audited
    });
    // The rotation is audited once per sealed value, with the keys' ids and never a secret, a
    // URL or a key.
    let id = resealed[0].webhook_id.clone();
    let reseals: Vec<_> = audited
        .iter()
        .filter(|(action, ..)| action == "webhook.secret_reseal")
        .collect();
    assert_eq!(reseals.len(), 2, "{audited:?}");
    for (_, target, before, after) in reseals {
        assert_eq!(target, &id);
        assert!(before.as_deref().unwrap().contains(&id_1), "{before:?}");
        assert!(after.as_deref().unwrap().contains(&id_2), "{after:?}");
        for text in [before, after].into_iter().flatten() {
            assert!(!text.contains(SECRET) && !text.contains(KEY_1) && !text.contains(KEY_2));
            assert!(!text.contains("path-token"), "{text}");
        }
    }
    let [secret, url] = &resealed;
    let opened = |v: &SealedValue| {
        key_2
            .open(&vault::context(v.field, &id), &v.sealed)
            .unwrap()
            .expose()
            .to_owned()
    };
    assert_eq!(opened(secret), SECRET);
    assert_eq!(opened(url), HOOK_URL);
    let again = control(&db, &dir, &[("CHECKGATE_MASTER_KEY", KEY_2)]);
    drop(again);
}

#[test]
fn a_url_stored_in_plain_text_is_sealed_once_a_key_is_given() {
    let _one = serial();
    let db = Database::new();
    let dir = TempDir::new("hooks-plain");
    let first = control(&db, &dir, &[("CHECKGATE_MASTER_KEY", KEY_1)]);
    let ws = Workspace::set_up(first.http());
    let hooks = format!("/api/environments/{}/webhooks", ws.envs[0]);
    let (status, body) = as_admin(
        first.http(),
        &ws,
        "POST",
        &hooks,
        Some(json!({"name": "r", "url": HOOK_URL})),
    );
    assert_eq!(status, 201, "{body}");
    first.service.terminate().unwrap();
    // The row as a build before sealed URLs left it: the URL in plain text.
    runtime().block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db.url()).await.unwrap();
        sqlx::query("UPDATE webhooks SET url = $1, url_shown = '', url_digest = ''")
            .bind(HOOK_URL)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });

    // Without a key: it starts, says the URL is in plain text, and still serves it.
    let keyless = control(&db, &dir, &[]);
    let (status, listed) = as_admin(keyless.http(), &ws, "GET", &hooks, None);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed[0]["url"], HOOK_URL);
    let (status, refused) = as_admin(
        keyless.http(),
        &ws,
        "PATCH",
        &format!("{hooks}/{}", listed[0]["id"].as_str().unwrap()),
        Some(json!({"url": "https://hooks.example.com/another"})),
    );
    assert_eq!(status, 409, "{refused}");
    // A change that stores nothing sealed is made, and keeps the URL.
    let (status, paused) = as_admin(
        keyless.http(),
        &ws,
        "PATCH",
        &format!("{hooks}/{}", listed[0]["id"].as_str().unwrap()),
        Some(json!({"enabled": false})),
    );
    assert_eq!(status, 200, "{paused}");
    assert_eq!(
        (&paused["enabled"], &paused["url"]),
        (&json!(false), &json!(HOOK_URL))
    );
    let (_, log) = keyless.service.terminate().unwrap();
    assert!(
        log.iter().any(|l| l.contains("stored in plain text")),
        "{log:#?}"
    );
    assert!(!log.iter().any(|l| l.contains("path-token")), "{log:#?}");

    // With a key: sealed at start-up, audited without the URL, and served whole to its admin.
    let keyed = control(&db, &dir, &[("CHECKGATE_MASTER_KEY", KEY_1)]);
    let (status, listed) = as_admin(keyed.http(), &ws, "GET", &hooks, None);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed[0]["url"], HOOK_URL);
    let (_, log) = keyed.service.terminate().unwrap();
    assert!(
        log.iter().any(|l| l.contains("sealed webhook URLs")),
        "{log:#?}"
    );
    let key_1 = MasterKey::parse("K", KEY_1).unwrap();
    let env = ws.envs[0].clone();
    let (values, plain, audited) = runtime().block_on(async {
        let store = checkgate_control::store::Store::open(&db.url(), 1, Duration::from_secs(10))
            .await
            .unwrap();
        let values = store.sealed_values().await.unwrap();
        let plain = store.plain_urls().await.unwrap();
        let audited = store.audit_for_environment(&env, 50).await.unwrap();
        store.close().await;
        (values, plain, audited)
    });
    assert!(plain.is_empty(), "{plain:?}");
    let [url]: [SealedValue; 1] = values.try_into().unwrap();
    assert_eq!(url.field, SealedField::Url);
    assert!(!url.sealed.contains("path-token"));
    let context = vault::context(SealedField::Url, &url.webhook_id);
    assert_eq!(
        key_1.open(&context, &url.sealed).unwrap().expose(),
        HOOK_URL
    );
    let seals: Vec<_> = audited
        .iter()
        .filter(|(action, ..)| action == "webhook.url_seal")
        .collect();
    assert_eq!(seals.len(), 1, "{audited:?}");
    let after = seals[0].3.as_deref().unwrap();
    assert!(after.contains("https://hooks.example.com/…"), "{after}");
    assert!(!after.contains("path-token"), "{after}");
}

//! Webhooks through the HTTP API and the delivery worker, against a real receiver on
//! 127.0.0.1 (allowed through the allow-list): secrets sealed and never shown, URLs checked,
//! changes delivered signed, retried after a 5xx, refused toward internal addresses, and
//! `webhook.failing` raised once. The routes run on SQLite and PostgreSQL
//! (`CHECKGATE_TEST_PG`); two workers on one PostgreSQL deliver each event once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use checkgate_control::store::Store;
use checkgate_control::store::fleet_alerts::{AlertKind, AlertState};
use checkgate_control::store::webhooks::SealedField;
use checkgate_control::vault::{self, MasterKey};
use checkgate_control::webhooks::{AllowHosts, DeliverySettings, delivery};
use checkgate_ops::Stopping;
use common::receiver::{RECEIVER_TOKEN, Receiver, assert_signed, body_of};
use common::{Api, World, api_over, api_with, assert_error};
use serde_json::{Value, json};

/// Runs a delivery worker for `store` until the returned handle is dropped or aborted.
fn worker(store: &Store, key: &MasterKey, allow: &str, failing_after: u64) -> AbortOnDrop {
    let settings = DeliverySettings {
        allow: AllowHosts::parse(allow).unwrap(),
        per_webhook: 4,
        failing_after,
    };
    AbortOnDrop(tokio::spawn(delivery::run(
        store.clone(),
        Some(Arc::new(key.clone())),
        settings,
        Stopping::never(),
    )))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Webhook `id`'s `field` as stored, when it is sealed.
async fn sealed_row(api: &Api, id: &str, field: SealedField) -> Option<String> {
    let store = Store::open(&api.database_url(), 1, Duration::from_secs(10))
        .await
        .unwrap();
    let rows = store.sealed_values().await.unwrap();
    assert!(store.plain_urls().await.unwrap().is_empty());
    store.close().await;
    rows.into_iter()
        .find(|v| v.webhook_id == id && v.field == field)
        .map(|v| v.sealed)
}

/// The routes on one backend: sealing, validation, audit, and no secret in any answer.
async fn routes_scenario(api: &Api, key: &MasterKey) {
    let World {
        admin,
        envs,
        project,
    } = api.world().await;
    let env = &envs[0];
    let hooks = format!("/api/environments/{env}/webhooks");
    let secret = "whsec-a-very-secret-value";
    // A chat service's incoming-webhook URL: its path is its token.
    let url = "https://hooks.example.com/services/T0001/B0001/url-path-token";

    let created = api
        .call(
            "POST",
            &hooks,
            Some(json!({"name": "Deploys", "url": url, "secret": secret})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["has_secret"], true);
    assert_eq!(created.body["enabled"], true);
    assert_eq!(created.body["format"], "checkgate");
    assert!(created.body.get("secret").is_none());
    assert!(!created.body.to_string().contains(secret));
    let id = created.body["id"].as_str().unwrap().to_owned();

    // At rest: ciphertext under this key, bound to its row and column; the URL too, since its
    // path is a token.
    let sealed = sealed_row(api, &id, SealedField::Secret).await.unwrap();
    assert!(
        sealed.starts_with(&format!("cg1.{}.", key.id())),
        "{sealed}"
    );
    assert!(!sealed.contains(secret));
    let context = vault::context(SealedField::Secret, &id);
    assert_eq!(key.open(&context, &sealed).unwrap().expose(), secret);
    assert!(key.open("webhook:another-row", &sealed).is_err());
    let sealed_url = sealed_row(api, &id, SealedField::Url).await.unwrap();
    assert!(
        sealed_url.starts_with(&format!("cg1.{}.", key.id())),
        "{sealed_url}"
    );
    assert!(!sealed_url.contains("url-path-token"));
    let url_context = vault::context(SealedField::Url, &id);
    assert_eq!(key.open(&url_context, &sealed_url).unwrap().expose(), url);
    // A secret copied into the URL's column does not open there, nor the URL in the secret's.
    assert!(key.open(&url_context, &sealed).is_err());
    assert!(key.open(&context, &sealed_url).is_err());

    let listed = api.get(&hooks, Some(&admin)).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert!(!listed.body.to_string().contains(secret));
    assert_eq!(
        listed.body[0]["url"], url,
        "a project admin sees the whole URL"
    );
    // A viewer sees the scheme and host only.
    let (viewer, _) = api.api_token(&admin, &project, "viewer").await;
    let seen = api.bearer("GET", &hooks, None, &viewer).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    assert_eq!(seen.body[0]["url"], "https://hooks.example.com/…");
    assert_eq!(seen.body[0]["has_secret"], true);
    assert!(!seen.body.to_string().contains("url-path-token"));

    // Bad input: 400 for a malformed body or id, 422 for a URL that is not http(s).
    for (body, status, code) in [
        (
            json!({"name": "x", "url": "ftp://example.com/"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"name": "x", "url": "file:///etc/passwd"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"name": "x", "url": "not a url"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"name": "x", "url": "http://u:p@example.com/"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"name": " ", "url": "https://example.com/"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"name": "x", "url": "https://example.com/", "secret": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"name": "x", "url": "https://example.com/", "format": "xml"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"name": "x", "url": "https://example.com/", "other": 1}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"url": "https://example.com/"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ] {
        let reply = api
            .call("POST", &hooks, Some(body.clone()), Some(&admin), &[])
            .await;
        assert_error(&reply, status, code);
    }
    assert_error(
        &api.call(
            "PATCH",
            &format!("{hooks}/not-a-uuid"),
            Some(json!({})),
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    let missing = uuid::Uuid::new_v4();
    assert_error(
        &api.call(
            "PATCH",
            &format!("{hooks}/{missing}"),
            Some(json!({})),
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // PATCH: disable, change the format, remove the secret.
    let patched = api
        .call(
            "PATCH",
            &format!("{hooks}/{id}"),
            Some(json!({"enabled": false, "format": "slack", "secret": null})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["enabled"], false);
    assert_eq!(patched.body["format"], "slack");
    assert_eq!(patched.body["has_secret"], false);
    assert!(sealed_row(api, &id, SealedField::Secret).await.is_none());
    let resealed = api
        .call(
            "PATCH",
            &format!("{hooks}/{id}"),
            Some(json!({"secret": "another-secret"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(resealed.body["has_secret"], true);

    // PATCH the URL: sealed anew; an admin sees the new one, a viewer its new host.
    let moved = "https://chat.example.org/hooks/another-path-token?sig=query-token";
    let patched = api
        .call(
            "PATCH",
            &format!("{hooks}/{id}"),
            Some(json!({"url": moved})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["url"], moved);
    let sealed_moved = sealed_row(api, &id, SealedField::Url).await.unwrap();
    assert_ne!(sealed_moved, sealed_url);
    assert!(!sealed_moved.contains("another-path-token") && !sealed_moved.contains("query-token"));
    assert_eq!(
        key.open(&url_context, &sealed_moved).unwrap().expose(),
        moved
    );
    assert_eq!(api.get(&hooks, Some(&admin)).await.body[0]["url"], moved);
    let seen = api.bearer("GET", &hooks, None, &viewer).await;
    assert_eq!(seen.body[0]["url"], "https://chat.example.org/…");
    for bad in ["ftp://example.com/", "not a url", ""] {
        let reply = api
            .call(
                "PATCH",
                &format!("{hooks}/{id}"),
                Some(json!({"url": bad})),
                Some(&admin),
                &[],
            )
            .await;
        assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    }
    assert_eq!(
        sealed_row(api, &id, SealedField::Url).await.unwrap(),
        sealed_moved
    );

    let tested = api
        .call(
            "POST",
            &format!("{hooks}/{id}/test"),
            None,
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(tested.status, StatusCode::ACCEPTED, "{}", tested.body);
    let deliveries = api
        .get(&format!("{hooks}/{id}/deliveries"), Some(&admin))
        .await;
    assert_eq!(deliveries.status, StatusCode::OK);
    assert_eq!(deliveries.body[0]["event"], "webhook.test");
    assert_eq!(deliveries.body[0]["state"], "pending");

    // Audited, without the secret.
    let audit = api.get("/api/audit?limit=200", Some(&admin)).await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    let text = audit.body.to_string();
    for action in ["webhook.create", "webhook.update", "webhook.test"] {
        assert!(text.contains(action), "{action} in {text}");
    }
    assert!(!text.contains(secret) && !text.contains("another-secret"));
    assert!(!text.contains("cg1."));
    // Project viewers read the audit log: it keeps the URL masked, with a digest of it.
    assert!(!text.contains("url-path-token"), "{text}");
    assert!(!text.contains("another-path-token") && !text.contains("query-token"));
    assert!(text.contains("https://hooks.example.com/…"), "{text}");
    assert!(text.contains("https://chat.example.org/…"), "{text}");
    assert!(text.contains("url_sha256"), "{text}");

    let deleted = api
        .call("DELETE", &format!("{hooks}/{id}"), None, Some(&admin), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_error(
        &api.get(&format!("{hooks}/{id}/deliveries"), Some(&admin))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn routes_seal_secrets_validate_urls_and_never_show_a_secret_sqlite() {
    let key = MasterKey::generate();
    let k = key.clone();
    let api = api_with(move |s| s.master_key = Some(Arc::new(k))).await;
    routes_scenario(&api, &key).await;
}

#[tokio::test]
async fn routes_seal_secrets_validate_urls_and_never_show_a_secret_postgres() {
    let name = format!("cg_hooks_{}", uuid::Uuid::new_v4().simple());
    let url = common::pg::create_database(&name).await;
    let key = MasterKey::generate();
    let k = key.clone();
    let api = api_over(&url, move |s| s.master_key = Some(Arc::new(k))).await;
    routes_scenario(&api, &key).await;
    api.store.close().await;
    common::pg::drop_database(&name).await.unwrap();
}

#[tokio::test]
async fn without_a_master_key_no_webhook_is_stored() {
    let api = api_with(|s| s.master_key = None).await;
    let World { admin, envs, .. } = api.world().await;
    let hooks = format!("/api/environments/{}/webhooks", envs[0]);
    // With a secret or without: its URL could not be stored sealed.
    for body in [
        json!({"name": "x", "url": "https://example.com/", "secret": "s"}),
        json!({"name": "x", "url": "https://example.com/"}),
    ] {
        let refused = api
            .call("POST", &hooks, Some(body), Some(&admin), &[])
            .await;
        assert_error(&refused, StatusCode::CONFLICT, "conflict");
        assert!(refused.body.to_string().contains("CHECKGATE_MASTER_KEY"));
    }
    // A bad URL is still named as such first.
    let bad = api
        .call(
            "POST",
            &hooks,
            Some(json!({"name": "x", "url": "ftp://example.com/"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(api.get(&hooks, Some(&admin)).await.body, json!([]));
}

#[tokio::test]
async fn changes_are_delivered_signed_and_a_5xx_is_retried() {
    let receiver = Receiver::start(&[500], 200).await;
    let key = MasterKey::generate();
    let k = key.clone();
    let api = api_with(move |s| s.master_key = Some(Arc::new(k))).await;
    let World { admin, envs, .. } = api.world().await;
    let env = &envs[0];
    let secret = "receiver-shared-secret";
    let created = api
        .call(
            "POST",
            &format!("/api/environments/{env}/webhooks"),
            Some(json!({"name": "r", "url": receiver.url(), "secret": secret})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let _worker = worker(&api.store, &key, &receiver.addr.to_string(), 5);

    let flag = api
        .call(
            "POST",
            &format!("/api/environments/{env}/flags"),
            Some(json!({"key": "new-ui", "is_enabled": true})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(flag.status, StatusCode::CREATED, "{}", flag.body);
    let version = flag.committed().unwrap();

    let got = receiver
        .until("the 500 and its retry", |got| got.len() >= 2)
        .await;
    assert_eq!(got[0].answered, 500);
    assert_eq!(got[1].answered, 200);
    // The same delivery, sent again.
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(
        got[0].headers.get("x-checkgate-delivery"),
        got[1].headers.get("x-checkgate-delivery")
    );
    for r in &got {
        assert_signed(r, secret);
        assert_eq!(r.headers.get("x-checkgate-event").unwrap(), "flag.created");
        assert_eq!(
            r.headers.get("host").unwrap().to_str().unwrap(),
            receiver.addr.to_string()
        );
    }
    let body = body_of(&got[1]);
    assert_eq!(body["event"], "flag.created");
    assert_eq!(body["flag_key"], "new-ui");
    assert_eq!(body["environment_id"], env.as_str());
    assert_eq!(body["version"], version);
    assert_eq!(body["actor"]["kind"], "user");
    assert_eq!(body["actor_email"], "admin@example.com");
    assert_eq!(body["after"]["is_enabled"], true);
    assert!(body["before"].is_null());

    // The log: delivered on the second attempt, the body kept to 1 KiB.
    let log = api
        .get(
            &format!("/api/environments/{env}/webhooks/{id}/deliveries"),
            Some(&admin),
        )
        .await;
    let first = &log.body[0];
    assert_eq!(first["state"], "delivered", "{}", log.body);
    assert_eq!(first["attempts"], 2);
    assert_eq!(first["status_code"], 200);
    // At most 1 KiB of the answer, and the path it echoed (read by the project's viewers)
    // without its token.
    let answer = first["response_body"].as_str().unwrap();
    assert!(answer.len() <= 1024 && answer.ends_with("xxxx"), "{answer}");
    assert!(answer.starts_with("POST … answered"), "{answer}");
    assert!(
        !log.body.to_string().contains(RECEIVER_TOKEN),
        "{}",
        log.body
    );

    // An update carries before and after; the test event arrives too.
    let patched = api
        .call(
            "PATCH",
            &format!("/api/environments/{env}/flags/new-ui"),
            Some(json!({"is_enabled": false})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let tested = api
        .call(
            "POST",
            &format!("/api/environments/{env}/webhooks/{id}/test"),
            None,
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(tested.status, StatusCode::ACCEPTED);
    let got = receiver
        .until("the update and the test event", |got| got.len() >= 4)
        .await;
    let events: Vec<Value> = got[2..].iter().map(body_of).collect();
    let update = events
        .iter()
        .find(|e| e["event"] == "flag.updated")
        .unwrap();
    assert_eq!(update["before"]["is_enabled"], true);
    assert_eq!(update["after"]["is_enabled"], false);
    assert!(events.iter().any(|e| e["event"] == "webhook.test"));
    for r in &got[2..] {
        assert_signed(r, secret);
    }

    // A flag promoted into this environment from another of the project.
    let staged = api
        .call(
            "POST",
            &format!("/api/environments/{}/flags", envs[1]),
            Some(json!({"key": "promoted-ui", "is_enabled": true})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(staged.status, StatusCode::CREATED, "{}", staged.body);
    let promoted = api
        .call(
            "POST",
            &format!("/api/environments/{}/flags/promoted-ui/promote", envs[1]),
            Some(json!({"target_env_id": env})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    let got = receiver.until("the promotion", |got| got.len() >= 5).await;
    let promotion = body_of(&got[4]);
    assert_eq!(promotion["event"], "flag.promoted");
    assert_eq!(promotion["flag_key"], "promoted-ui");
    assert_eq!(promotion["environment_id"], env.as_str());
    assert!(promotion["before"].is_null());
}

#[tokio::test]
async fn internal_destinations_are_refused_at_delivery_unless_allowed() {
    let receiver = Receiver::start(&[], 200).await;
    let key = MasterKey::generate();
    let k = key.clone();
    let api = api_with(move |s| s.master_key = Some(Arc::new(k))).await;
    let World { admin, envs, .. } = api.world().await;
    let env = &envs[0];
    let mut ids = Vec::new();
    for url in [
        receiver.url(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.1.2.3/hook".to_owned(),
        "http://[::1]:9/hook".to_owned(),
    ] {
        let created = api
            .call(
                "POST",
                &format!("/api/environments/{env}/webhooks"),
                Some(json!({"name": "x", "url": url})),
                Some(&admin),
                &[],
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    // No allow-list: the receiver on loopback is refused like the rest.
    let _worker = worker(&api.store, &key, "", 100);
    let flag = api
        .call(
            "POST",
            &format!("/api/environments/{env}/flags"),
            Some(json!({"key": "f", "is_enabled": true})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(flag.status, StatusCode::CREATED);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for (id, kind) in ids
        .iter()
        .zip(["loopback", "cloud metadata", "private", "loopback"])
    {
        loop {
            let log = api
                .get(
                    &format!("/api/environments/{env}/webhooks/{id}/deliveries"),
                    Some(&admin),
                )
                .await;
            if log.body[0]["state"] == "failed" {
                assert_eq!(log.body[0]["attempts"], 1, "refused once, not retried");
                let error = log.body[0]["error"].as_str().unwrap();
                assert!(error.contains(kind), "{error}");
                assert!(log.body[0]["response_body"].is_null());
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{}", log.body);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_failing_webhook_raises_webhook_failing_once_to_the_others() {
    // Refuses four deliveries, then takes what comes.
    let broken = Receiver::start(&[404, 404, 404, 404], 200).await;
    let healthy = Receiver::start(&[], 200).await;
    let key = MasterKey::generate();
    let k = key.clone();
    let api = api_with(move |s| s.master_key = Some(Arc::new(k))).await;
    let World { admin, envs, .. } = api.world().await;
    let env = &envs[0];
    let mut ids = Vec::new();
    for url in [broken.url(), healthy.url()] {
        let created = api
            .call(
                "POST",
                &format!("/api/environments/{env}/webhooks"),
                Some(json!({"name": "x", "url": url})),
                Some(&admin),
                &[],
            )
            .await;
        ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    let allow = format!("{},{}", broken.addr, healthy.addr);
    let _worker = worker(&api.store, &key, &allow, 2);
    for n in 0..4 {
        let flag = api
            .call(
                "POST",
                &format!("/api/environments/{env}/flags"),
                Some(json!({"key": format!("f{n}"), "is_enabled": true})),
                Some(&admin),
                &[],
            )
            .await;
        assert_eq!(flag.status, StatusCode::CREATED);
    }
    broken.until("four refusals", |got| got.len() >= 4).await;
    let got = healthy
        .until("four changes and one failing alert", |got| got.len() >= 5)
        .await;
    // Give a duplicate alert time to show up, if one were sent.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events: Vec<Value> = healthy.received().iter().map(body_of).collect();
    let failing: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "webhook.failing")
        .collect();
    assert_eq!(failing.len(), 1, "{events:#?}");
    assert_eq!(failing[0]["data"]["webhook_id"], ids[0].as_str());
    assert!(got.len() >= 5);
    assert!(
        broken
            .received()
            .iter()
            .all(|r| body_of(r)["event"] != "webhook.failing")
    );
    // One episode in the fleet's alert history, open while the webhook keeps failing.
    let alerts = api
        .store
        .open_alerts(AlertKind::WebhookFailing)
        .await
        .unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].subject, ids[0]);
    assert_eq!(alerts[0].environments, vec![env.to_owned()]);
    let view = api
        .get(&format!("/api/environments/{env}/webhooks"), Some(&admin))
        .await;
    assert_eq!(view.body[0]["failing"], true);
    assert_eq!(view.body[0]["consecutive_failures"], 4);

    // A delivery that succeeds ends the episode and tells the others.
    let flag = api
        .call(
            "POST",
            &format!("/api/environments/{env}/flags"),
            Some(json!({"key": "f4", "is_enabled": true})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(flag.status, StatusCode::CREATED);
    broken
        .until("the fifth delivery", |got| got.len() >= 5)
        .await;
    let got = healthy
        .until("webhook.recovered", |got| {
            got.iter()
                .any(|r| body_of(r)["event"] == "webhook.recovered")
        })
        .await;
    let recovered = got
        .iter()
        .map(body_of)
        .find(|e| e["event"] == "webhook.recovered")
        .unwrap();
    assert_eq!(recovered["data"]["webhook_id"], ids[0].as_str());
    assert!(
        api.store
            .open_alerts(AlertKind::WebhookFailing)
            .await
            .unwrap()
            .is_empty()
    );
    let (history, _) = api
        .store
        .fleet_alerts(AlertState::Resolved, 10, 0)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].kind, "webhook.failing");
}

#[tokio::test]
async fn two_workers_on_one_postgres_deliver_each_event_once() {
    let name = format!("cg_hooks_{}", uuid::Uuid::new_v4().simple());
    let url = common::pg::create_database(&name).await;
    let receiver = Receiver::start(&[], 200).await;
    let key = MasterKey::generate();
    let k = key.clone();
    let api = api_over(&url, move |s| s.master_key = Some(Arc::new(k))).await;
    let World { admin, envs, .. } = api.world().await;
    let env = &envs[0];
    let created = api
        .call(
            "POST",
            &format!("/api/environments/{env}/webhooks"),
            Some(json!({"name": "r", "url": receiver.url()})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    // Two instances: each its own pool on the one database, each a worker.
    let other = Store::open(&url, 4, Duration::from_secs(10)).await.unwrap();
    let allow = receiver.addr.to_string();
    let w1 = worker(&api.store, &key, &allow, 5);
    let w2 = worker(&other, &key, &allow, 5);
    const N: usize = 30;
    for n in 0..N {
        let flag = api
            .call(
                "POST",
                &format!("/api/environments/{env}/flags"),
                Some(json!({"key": format!("f{n}"), "is_enabled": true})),
                Some(&admin),
                &[],
            )
            .await;
        assert_eq!(flag.status, StatusCode::CREATED);
    }
    receiver.until("every event", |got| got.len() >= N).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = receiver.received();
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| body_of(r)["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N);
    assert_eq!(got.len(), N, "no event delivered twice");
    drop((w1, w2));
    other.close().await;
    api.store.close().await;
    common::pg::drop_database(&name).await.unwrap();
}

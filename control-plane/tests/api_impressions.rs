//! Impressions and insights through the API, on both backends (the embedded SQLite file and a
//! PostgreSQL database of the test's own, `CHECKGATE_TEST_PG`): who may report, limits and
//! validation, idempotent batches, the live tail's `since_id`, stats from rollups against the
//! raw rows, unique users, privacy settings, evaluation counters and the stale signal, and
//! retention in batches.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use axum::http::{Request, StatusCode, header};
use checkgate_control::api::SessionKey;
use checkgate_control::insights::{Insights, InsightsSettings, Stored};
use checkgate_control::store::impressions::NewImpression;
use checkgate_core::date::format_rfc3339;
use checkgate_protocol::impressions::{
    EvaluationCount, EvaluationCounts, Impression, ImpressionBatch,
};
use common::{Api, World, assert_error, on_both};
use serde_json::{Value, json};

const SECRET: &str = "test-session-secret-of-32-characters";

fn insights(api: &Api) -> Insights {
    Insights::new(
        api.store.clone(),
        &SessionKey::new(SECRET),
        InsightsSettings::default(),
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn report(api: &Api, env: &str, key: Option<&str>, body: &Value) -> common::Reply {
    let mut req = Request::post(format!("/api/environments/{env}/impressions"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    api.send(req.body(axum::body::Body::from(body.to_string())).unwrap())
        .await
}

async fn list(api: &Api, world: &World, query: &str) -> Value {
    let reply = api
        .get(
            &format!("/api/environments/{}/impressions?{query}", world.envs[0]),
            Some(&world.admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn only_an_sdk_key_of_the_environment_may_report() {
    on_both("imp", |api, backend| async move {
        let world = api.world().await;
        let env = &world.envs[0];
        let body = json!([{"flag_key": "checkout", "value": "true", "user_id": "u1"}]);
        let server = api
            .sdk_key(&world.admin, &world.project, env, "server")
            .await;
        let client = api
            .sdk_key(&world.admin, &world.project, env, "client")
            .await;
        for key in [&server, &client] {
            let reply = report(&api, env, Some(key), &body).await;
            assert_eq!(
                reply.status,
                StatusCode::NO_CONTENT,
                "{backend}: {}",
                reply.body
            );
        }
        // Nobody, an API token, a session: 401 (nobody without the CSRF header: 403).
        assert_error(
            &report(&api, env, None, &body).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        let anonymous = api
            .call(
                "POST",
                &format!("/api/environments/{env}/impressions"),
                Some(body.clone()),
                None,
                &[],
            )
            .await;
        assert_error(&anonymous, StatusCode::UNAUTHORIZED, "unauthorized");
        let (token, _) = api.api_token(&world.admin, &world.project, "admin").await;
        assert_error(
            &report(&api, env, Some(&token), &body).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
        assert_error(
            &report(&api, env, Some("cg_srv_0000"), &body).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
        let cookie = api
            .call(
                "POST",
                &format!("/api/environments/{env}/impressions"),
                Some(body.clone()),
                Some(&world.admin),
                &[],
            )
            .await;
        assert_error(&cookie, StatusCode::UNAUTHORIZED, "unauthorized");
        // Another environment's key, another project's key: 403, whatever the body.
        let staging = api
            .sdk_key(&world.admin, &world.project, &world.envs[1], "server")
            .await;
        assert_error(
            &report(&api, env, Some(&staging), &body).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        let other = api.new_project(&world.admin, "Other").await;
        let foreign = api
            .sdk_key(&world.admin, &other.id, &other.envs[0], "client")
            .await;
        assert_error(
            &report(&api, env, Some(&foreign), &json!("junk")).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        // A revoked key: 401.
        let keys = api
            .get(
                &format!("/api/projects/{}/keys", world.project),
                Some(&world.admin),
            )
            .await;
        let id = keys
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kind"] == "client")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let revoked = api
            .call(
                "DELETE",
                &format!("/api/projects/{}/keys/{id}", world.project),
                None,
                Some(&world.admin),
                &[],
            )
            .await;
        assert!(revoked.status.is_success(), "{}", revoked.body);
        assert_error(
            &report(&api, env, Some(&client), &body).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
        assert_eq!(list(&api, &world, "").await["total"], 2, "{backend}");
    })
    .await;
}

#[tokio::test]
async fn limits_and_validation_refuse_the_whole_batch() {
    on_both("imp", |api, backend| async move {
        let world = api.world().await;
        let env = &world.envs[0];
        let key = api
            .sdk_key(&world.admin, &world.project, env, "server")
            .await;
        let one = json!({"flag_key": "f", "value": "true"});
        let many = Value::Array(vec![one.clone(); 501]);
        assert_error(
            &report(&api, env, Some(&key), &many).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        );
        let big = json!([{"flag_key": "f", "value": "x".repeat(300 << 10)}]);
        assert_error(
            &report(&api, env, Some(&key), &big).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        );
        for (bad, index, field) in [
            (
                json!({"flag_key": "bad key", "value": "true"}),
                2,
                "flag_key",
            ),
            (json!({"flag_key": "f", "value": true}), 1, "value"),
            (
                json!({"flag_key": "f", "value": "v", "context": [1]}),
                3,
                "context",
            ),
            (
                json!({"flag_key": "f", "value": "v", "context": {"a": "x".repeat(5000)}}),
                0,
                "context",
            ),
            (json!({"flag_key": "f", "value": "a\u{0}b"}), 1, "value"),
            (
                json!({"flag_key": "f", "value": "v", "context": {"k": ["\u{0}"]}}),
                2,
                "context",
            ),
            (
                json!({"flag_key": "f", "value": "v", "evaluated_at": "yesterday"}),
                1,
                "evaluated_at",
            ),
            (
                json!({"flag_key": "f", "value": "v", "evaluated_at": "2099-01-01T00:00:00Z"}),
                2,
                "evaluated_at",
            ),
            (
                json!({"flag_key": "f", "value": "v", "evaluated_at": "2001-01-01T00:00:00Z"}),
                2,
                "evaluated_at",
            ),
        ] {
            let mut items = vec![one.clone(); 4];
            items[index] = bad;
            let reply = report(&api, env, Some(&key), &Value::Array(items)).await;
            assert_error(&reply, StatusCode::BAD_REQUEST, "bad_request");
            let message = reply.body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("item {index}")),
                "{backend}: {message}"
            );
            assert!(message.contains(field), "{backend}: {message}");
        }
        for body in [json!({"flag_key": "f"}), json!("x")] {
            assert_error(
                &report(&api, env, Some(&key), &body).await,
                StatusCode::BAD_REQUEST,
                "bad_request",
            );
        }
        let nul = api
            .get(
                &format!("/api/environments/{env}/impressions?value=%00"),
                Some(&world.admin),
            )
            .await;
        assert_error(&nul, StatusCode::BAD_REQUEST, "bad_request");
        assert_eq!(
            list(&api, &world, "").await["total"],
            0,
            "{backend}: nothing stored"
        );
        // RFC 3339 and Unix milliseconds are both times.
        let at = now_ms() - 60_000;
        let body = json!([
            {"flag_key": "f", "value": "a", "evaluated_at": format_rfc3339(at)},
            {"flag_key": "f", "value": "b", "evaluated_at": at},
        ]);
        assert_eq!(
            report(&api, env, Some(&key), &body).await.status,
            StatusCode::NO_CONTENT
        );
        let page = list(&api, &world, "").await;
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["evaluated_at"], format_rfc3339(at), "{backend}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_batch_sent_twice_is_stored_once_and_since_id_polls_only_new_rows() {
    on_both("imp", |api, backend| async move {
        let world = api.world().await;
        let env = world.envs[0].clone();
        let service = insights(&api);
        let item = |i: usize| Impression {
            flag_key: "checkout".into(),
            user_id: Some(format!("u{i}")),
            value: "true".into(),
            context: None,
            evaluated_at: now_ms(),
        };
        let batch = ImpressionBatch {
            id: [9; 16],
            environment: env.clone(),
            items: (0..3).map(item).collect(),
        };
        assert_eq!(
            service.store_batch(&batch, |_| true).await.unwrap(),
            Stored::New(3)
        );
        assert_eq!(
            service.store_batch(&batch, |_| true).await.unwrap(),
            Stored::Duplicate,
            "{backend}"
        );
        // Across a restart too: a new service over the same database.
        assert_eq!(
            insights(&api).store_batch(&batch, |_| true).await.unwrap(),
            Stored::Duplicate
        );
        let page = list(&api, &world, "").await;
        assert_eq!(page["total"], 3, "{backend}: {page}");
        let ids: Vec<i64> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
        let newest = ids[0];
        let empty = list(&api, &world, &format!("since_id={newest}")).await;
        assert_eq!(empty, json!({"items": [], "total": 0}), "{backend}");
        let more = ImpressionBatch {
            id: [10; 16],
            environment: env.clone(),
            items: (3..5).map(item).collect(),
        };
        assert_eq!(
            service.store_batch(&more, |_| true).await.unwrap(),
            Stored::New(2)
        );
        let tail = list(&api, &world, &format!("since_id={newest}")).await;
        assert_eq!(tail["total"], 2, "{backend}: {tail}");
        let users: BTreeSet<&str> = tail["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["user_id"].as_str().unwrap())
            .collect();
        assert_eq!(users, BTreeSet::from(["u3", "u4"]));
        // Filters and paging.
        let one = list(&api, &world, "user_id=u1").await;
        assert_eq!(one["total"], 1);
        let paged = list(&api, &world, "limit=2&offset=1").await;
        assert_eq!(paged["items"].as_array().unwrap().len(), 2);
        assert_eq!(paged["total"], 5);
        let bad = api
            .get(
                &format!("/api/environments/{env}/impressions?offset=20000"),
                Some(&world.admin),
            )
            .await;
        assert_error(&bad, StatusCode::BAD_REQUEST, "bad_request");
        // Another environment's batch id space is the same: a batch is one batch.
        let unknown = ImpressionBatch {
            id: [11; 16],
            environment: uuid::Uuid::new_v4().to_string(),
            items: vec![item(0)],
        };
        assert!(service.store_batch(&unknown, |_| true).await.is_err());
        let not_mine = ImpressionBatch {
            id: [12; 16],
            environment: env.clone(),
            items: vec![item(9)],
        };
        assert!(service.store_batch(&not_mine, |_| false).await.is_err());
        assert_eq!(
            list(&api, &world, "user_id=u9").await["total"],
            0,
            "{backend}"
        );
        // An edge's batch holding an item older than raw impressions are kept (an edge checks
        // against its own bound): that item is left out, the others are stored.
        let expired = Impression {
            evaluated_at: now_ms() - 400 * 86_400_000,
            ..item(7)
        };
        let aged = ImpressionBatch {
            id: [13; 16],
            environment: env.clone(),
            items: vec![item(6), expired],
        };
        assert_eq!(
            service.store_batch(&aged, |_| true).await.unwrap(),
            Stored::New(1),
            "{backend}"
        );
        assert_eq!(list(&api, &world, "user_id=u6").await["total"], 1);
        assert_eq!(list(&api, &world, "user_id=u7").await["total"], 0);
    })
    .await;
}

/// What the stats of one flag should say: total, true, false, by value, last seen.
type Want<'a> = (i64, i64, i64, BTreeMap<&'a str, i64>, i64);

#[tokio::test]
async fn stats_from_rollups_match_the_raw_rows() {
    on_both("imp", |api, backend| async move {
        let world = api.world().await;
        let env = world.envs[0].clone();
        let service = insights(&api);
        // Three days of impressions over flags, values and users, in batches of 100.
        let now = now_ms();
        let mut sent: Vec<Impression> = Vec::new();
        let values = ["true", "false", "blue"];
        for i in 0..1200u64 {
            let flag = ["checkout", "banner", "theme"][(i % 3) as usize];
            sent.push(Impression {
                flag_key: flag.into(),
                user_id: (i % 7 != 0).then(|| format!("user-{}", i % 97)),
                value: values[((i / 3) % 3) as usize].into(),
                context: None,
                evaluated_at: now - ((i * 7_919_993) % (3 * 86_400_000)) as i64,
            });
        }
        // The window starts half an hour before a whole hour, off the minute; five more
        // impressions of one flag and value in its first minutes, which the rollups hold as
        // minute rows (the store sums them).
        let hour = 3_600_000;
        let from = (now - 2 * 86_400_000).div_euclid(hour) * hour - hour / 2 + 1_234;
        for k in 0..5 {
            sent.push(Impression {
                flag_key: "checkout".into(),
                user_id: Some("user-1".into()),
                value: "true".into(),
                context: None,
                evaluated_at: from + 1_000 + k * 60_000,
            });
        }
        for (n, chunk) in sent.chunks(100).enumerate() {
            let batch = ImpressionBatch {
                id: [n as u8; 16],
                environment: env.clone(),
                items: chunk.to_vec(),
            };
            service.store_batch(&batch, |_| true).await.unwrap();
        }
        let mut want: BTreeMap<&str, Want<'_>> = BTreeMap::new();
        let mut users: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        // Users are counted over the window widened to whole hours.
        let hour_start = from - from.rem_euclid(3_600_000);
        for s in &sent {
            if s.evaluated_at >= hour_start
                && let Some(u) = &s.user_id
            {
                users.entry(&s.flag_key).or_default().insert(u);
            }
            if s.evaluated_at < from {
                continue;
            }
            let w = want.entry(&s.flag_key).or_default();
            w.0 += 1;
            if s.value == "true" {
                w.1 += 1;
            }
            if s.value == "false" {
                w.2 += 1;
            }
            *w.3.entry(&s.value).or_default() += 1;
            w.4 = w.4.max(s.evaluated_at);
        }
        // Counted from the parts before the merge, then from the rollups (whose minutes at the
        // window's ends are summed by the store).
        for phase in ["parts pending", "merged"] {
            if phase == "merged" {
                service.compact(10_000, 10).await.unwrap();
            }
            let reply = api
                .get(
                    &format!(
                        "/api/environments/{env}/impressions/stats?from={from}&to={}",
                        now + 1
                    ),
                    Some(&world.admin),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            let got = reply.body.as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{backend} {phase}: {}", reply.body);
            for entry in got {
                let flag = entry["flag_key"].as_str().unwrap();
                let w = &want[flag];
                assert_eq!(entry["total"], w.0, "{backend} {phase} {flag}");
                assert_eq!(entry["true_count"], w.1, "{backend} {phase} {flag}");
                assert_eq!(entry["false_count"], w.2, "{backend} {phase} {flag}");
                assert_eq!(
                    entry["last_seen"],
                    format_rfc3339(w.4),
                    "{backend} {phase} {flag}"
                );
                let by_value: BTreeMap<&str, i64> = entry["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| (v["value"].as_str().unwrap(), v["count"].as_i64().unwrap()))
                    .collect();
                assert_eq!(by_value, w.3, "{backend} {phase} {flag}");
                assert_eq!(
                    entry["unique_users"],
                    users[flag].len(),
                    "{backend} {phase} {flag}: small sets are exact"
                );
                assert_eq!(entry["from"], format_rfc3339(from));
            }
        }
        let bad = api
            .get(
                &format!("/api/environments/{env}/impressions/stats?from=soon"),
                Some(&world.admin),
            )
            .await;
        assert_error(&bad, StatusCode::BAD_REQUEST, "bad_request");
    })
    .await;
}

#[tokio::test]
async fn unique_users_are_within_two_percent_on_a_large_set() {
    on_both("imp", |api, backend| async move {
        let world = api.world().await;
        let env = world.envs[0].clone();
        let service = insights(&api);
        let now = now_ms();
        let users = 20_000;
        for (n, start) in (0..users).step_by(500).enumerate() {
            let items = (start..start + 500)
                .map(|u| Impression {
                    flag_key: "big".into(),
                    user_id: Some(format!("person-{u}")),
                    value: if u % 2 == 0 { "true" } else { "false" }.into(),
                    context: None,
                    evaluated_at: now - (u as i64 % 3_000_000),
                })
                .collect();
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(n as u64).to_le_bytes());
            service
                .store_batch(
                    &ImpressionBatch {
                        id,
                        environment: env.clone(),
                        items,
                    },
                    |_| true,
                )
                .await
                .unwrap();
        }
        // Before the users are merged into the sketches (read from the parts) and after.
        for compacted in [false, true] {
            if compacted {
                let merged = service.compact(1000, 100).await.unwrap();
                assert!(merged >= 40, "{backend}: merged {merged} parts");
                assert_eq!(service.compact(1000, 100).await.unwrap(), 0, "all merged");
            }
            let reply = api
                .get(
                    &format!("/api/environments/{env}/impressions/stats"),
                    Some(&world.admin),
                )
                .await;
            let entry = &reply.body[0];
            assert_eq!(entry["total"], users);
            let got = entry["unique_users"].as_f64().unwrap();
            let error = (got - f64::from(users)).abs() / f64::from(users);
            assert!(
                error <= 0.02,
                "{backend} (compacted: {compacted}): {got} users for {users}"
            );
            let insights = api
                .get(
                    &format!("/api/environments/{env}/flags/big/insights?range=24h"),
                    Some(&world.admin),
                )
                .await;
            // No such flag: insights are of flags that exist.
            assert_eq!(insights.status, StatusCode::NOT_FOUND);
        }
    })
    .await;
}

#[tokio::test]
async fn privacy_settings_keep_what_the_environment_allows() {
    on_both("imp", |api, backend| async move {
        let world = api.world().await;
        let env = &world.envs[0];
        let key = api
            .sdk_key(&world.admin, &world.project, env, "server")
            .await;
        let send = |user: &'static str| {
            json!([{"flag_key": "f", "value": "true", "user_id": user,
                    "context": {"plan": "pro", "email": "a@example.com"}}])
        };
        let patch = |settings: Value| {
            let path = format!("/api/projects/{}/environments/{env}", world.project);
            let admin = world.admin.clone();
            let api = &api;
            async move {
                let reply = api
                    .call(
                        "PATCH",
                        &path,
                        Some(json!({"impressions": settings})),
                        Some(&admin),
                        &[],
                    )
                    .await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                assert!(
                    reply.committed().is_some(),
                    "a settings change is a version"
                );
                reply.body
            }
        };
        // Default: everything (Checkgate's behaviour).
        assert_eq!(
            report(&api, env, Some(&key), &send("alice")).await.status,
            StatusCode::NO_CONTENT
        );
        let first = list(&api, &world, "").await;
        assert_eq!(
            first["items"][0]["context"],
            json!({"plan": "pro", "email": "a@example.com"})
        );
        assert_eq!(first["items"][0]["user_id"], "alice");
        let shown = patch(json!({"context": "listed", "context_attributes": ["plan"]})).await;
        assert_eq!(
            shown["impressions"]["context"], "listed",
            "{backend}: {shown}"
        );
        report(&api, env, Some(&key), &send("bob")).await;
        assert_eq!(
            list(&api, &world, "").await["items"][0]["context"],
            json!({"plan": "pro"})
        );
        patch(json!({"context": "none", "hash_user_id": true})).await;
        report(&api, env, Some(&key), &send("carol")).await;
        let hashed = list(&api, &world, "").await;
        let newest = &hashed["items"][0];
        assert_eq!(newest["context"], Value::Null, "{backend}");
        let user = newest["user_id"].as_str().unwrap();
        assert_eq!(user.len(), 32, "{user}");
        assert!(!user.contains("carol"));
        // The same user hashes the same way (unique users still count), and differently in
        // another environment.
        report(&api, env, Some(&key), &send("carol")).await;
        assert_eq!(
            list(&api, &world, &format!("user_id={user}")).await["total"],
            2
        );
        // Refused settings.
        let reply = api
            .call(
                "PATCH",
                &format!("/api/projects/{}/environments/{env}", world.project),
                Some(json!({"impressions": {"context": "all", "context_attributes": ["x"]}})),
                Some(&world.admin),
                &[],
            )
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "bad_request");
        // Audited.
        let audit = api
            .get(
                &format!("/api/audit?environment_id={env}"),
                Some(&world.admin),
            )
            .await;
        let actions: Vec<&str> = audit.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions
                .iter()
                .filter(|a| **a == "environment.settings")
                .count(),
            2,
            "{actions:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn evaluation_counts_feed_insights_and_the_stale_signal() {
    on_both("imp", |api, backend| async move {
        let world = api.world().await;
        let env = world.envs[0].clone();
        let service = insights(&api);
        for key in ["live", "quiet", "constant"] {
            let reply = api
                .post(&format!("/api/environments/{env}/flags"), json!({"key": key, "is_enabled": true}), Some(&world.admin))
                .await;
            assert!(reply.status.is_success(), "{}", reply.body);
        }
        let minute = now_ms() / 60_000;
        let counts = EvaluationCounts {
            id: [1; 16],
            counts: vec![
                EvaluationCount { environment: env.clone(), flag_key: "live".into(), variant: "true".into(), minute, count: 5 },
                EvaluationCount { environment: env.clone(), flag_key: "live".into(), variant: "false".into(), minute: minute - 1, count: 2 },
            ],
        };
        let mine = |e: &str| e == env;
        assert_eq!(service.store_counts(&counts, mine).await.unwrap(), Stored::New(2));
        assert_eq!(service.store_counts(&counts, mine).await.unwrap(), Stored::Duplicate);
        let foreign = EvaluationCounts { id: [2; 16], counts: counts.counts.clone() };
        assert!(service.store_counts(&foreign, |_| false).await.is_err(), "{backend}");
        let reply = api
            .get(&format!("/api/environments/{env}/flags/live/insights?range=1h"), Some(&world.admin))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body["evaluations"], 7, "{backend}: {}", reply.body);
        assert_eq!(reply.body["series"].as_array().unwrap().len(), 60);
        assert_eq!(reply.body["bucket_minutes"], 1);
        assert_eq!(reply.body["stale"], false);
        assert!(reply.body["last_evaluated"].is_string());
        for range in ["24h", "7d", "30d"] {
            let r = api
                .get(&format!("/api/environments/{env}/flags/live/insights?range={range}"), Some(&world.admin))
                .await;
            assert_eq!(r.body["evaluations"], 7, "{backend} {range}: {}", r.body);
        }
        let bad = api
            .get(&format!("/api/environments/{env}/flags/live/insights?range=2y"), Some(&world.admin))
            .await;
        assert_error(&bad, StatusCode::BAD_REQUEST, "bad_request");
        let missing = api
            .get(&format!("/api/environments/{env}/flags/nope/insights"), Some(&world.admin))
            .await;
        assert_error(&missing, StatusCode::NOT_FOUND, "not_found");

        // Flags older than STALE_AFTER_DAYS: one never evaluated, one serving one value for
        // that long.
        let old = now_ms() - 40 * 86_400_000;
        let pool = sqlx::AnyPool::connect(&api.database_url()).await.unwrap();
        sqlx::query("UPDATE flags SET created_at = $1 WHERE environment_id = $2 AND key IN ('quiet', 'constant')")
            .bind(old)
            .bind(&env)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let constant: Vec<NewImpression> = [old + 1000, now_ms() - 1000]
            .into_iter()
            .map(|t| NewImpression {
                flag_key: "constant".into(),
                user_id: Some("u".into()),
                value: "on".into(),
                context: None,
                evaluated_at: t,
            })
            .collect();
        api.store.store_impressions(None, &env, &constant, now_ms()).await.unwrap();
        let flags = api
            .get(&format!("/api/environments/{env}/insights"), Some(&world.admin))
            .await;
        assert_eq!(flags.status, StatusCode::OK, "{}", flags.body);
        let by_key: BTreeMap<&str, &Value> = flags
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["flag_key"].as_str().unwrap(), f))
            .collect();
        assert_eq!(by_key["live"]["stale"], false, "{backend}: {}", flags.body);
        assert_eq!(by_key["quiet"]["stale_reason"], "not_evaluated", "{backend}");
        assert_eq!(by_key["quiet"]["last_evaluated"], Value::Null);
        assert_eq!(by_key["constant"]["stale_reason"], "single_value", "{backend}");
        // Read from pending parts above; the same once merged into the rollups and activity.
        assert!(service.compact(1000, 10).await.unwrap() >= 2, "{backend}");
        let merged = api
            .get(&format!("/api/environments/{env}/insights"), Some(&world.admin))
            .await;
        assert_eq!(merged.body, flags.body, "{backend}");
    })
    .await;
}

#[tokio::test]
async fn retention_deletes_in_batches() {
    on_both("imp", |api, backend| async move {
        let world = api.world().await;
        let env = world.envs[0].clone();
        let day = 86_400_000;
        let now = now_ms();
        let rows = |t: i64, n: usize| -> Vec<NewImpression> {
            (0..n)
                .map(|i| NewImpression {
                    flag_key: "f".into(),
                    user_id: Some(format!("u{i}")),
                    value: "true".into(),
                    context: None,
                    evaluated_at: t,
                })
                .collect()
        };
        // Received 40 days ago (past the 30 days raw impressions are kept), and evaluated 401
        // days ago (past the 400 days rollups are kept); and a recent batch.
        // The first 21 merged into the rollups, the next 2 still a pending part.
        api.store
            .store_impressions(None, &env, &rows(now - 401 * day, 21), now - 40 * day)
            .await
            .unwrap();
        insights(&api).compact(1000, 10).await.unwrap();
        api.store
            .store_impressions(None, &env, &rows(now - 401 * day, 2), now - 40 * day)
            .await
            .unwrap();
        api.store
            .store_impressions(None, &env, &rows(now - 1000, 5), now)
            .await
            .unwrap();
        let before = now - 30 * day;
        let mut statements = 0;
        let mut deleted = 0;
        loop {
            let n = api.store.purge_impressions(before, 7).await.unwrap();
            assert!(n <= 7, "one statement deletes at most its batch");
            statements += 1;
            deleted += n;
            if n < 7 {
                break;
            }
        }
        assert_eq!((deleted, statements), (23, 4), "{backend}");
        assert_eq!(list(&api, &world, "").await["total"], 5);
        let old_minute = (now - 400 * day) / 60_000;
        let mut rollups = 0;
        loop {
            let n = api.store.purge_insights(old_minute, 2).await.unwrap();
            rollups += n;
            if n == 0 {
                break;
            }
        }
        // Minute, hour and day rows of the old flag, its pending part, and its activity row
        // (what it holds is old: the recent batch is a part not merged yet); nothing recent.
        assert_eq!(rollups, 5, "{backend}");
        let stats = api
            .get(
                &format!("/api/environments/{env}/impressions/stats"),
                Some(&world.admin),
            )
            .await;
        assert_eq!(stats.body[0]["total"], 5, "{backend}: {}", stats.body);
        // The service's own pass is bounded and leaves recent rows alone.
        let (raw, insights) = insights(&api)
            .purge(1000, 10, std::time::Duration::ZERO)
            .await
            .unwrap();
        assert_eq!((raw, insights), (0, 0));
    })
    .await;
}

#[tokio::test]
async fn concurrent_batches_lose_no_user_and_no_count() {
    on_both("imp", |api, backend| async move {
        let world = api.world().await;
        let env = world.envs[0].clone();
        let service = insights(&api);
        let now = now_ms();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..8u8 {
            let service = service.clone();
            let env = env.clone();
            tasks.spawn(async move {
                // Two flags in opposite key order per batch, the same hour and day rows.
                let items = (0..100)
                    .map(|i| Impression {
                        flag_key: if (i + usize::from(n)) % 2 == 0 {
                            "a"
                        } else {
                            "b"
                        }
                        .into(),
                        user_id: Some(format!("b{n}-u{i}")),
                        value: "true".into(),
                        context: None,
                        evaluated_at: now - i as i64,
                    })
                    .collect();
                service
                    .store_batch(
                        &ImpressionBatch {
                            id: [n; 16],
                            environment: env,
                            items,
                        },
                        |_| true,
                    )
                    .await
            });
        }
        while let Some(done) = tasks.join_next().await {
            assert!(matches!(done.unwrap(), Ok(Stored::New(100))), "{backend}");
        }
        let stats = api
            .get(
                &format!("/api/environments/{env}/impressions/stats"),
                Some(&world.admin),
            )
            .await;
        for entry in stats.body.as_array().unwrap() {
            assert_eq!(entry["total"], 400, "{backend}: {}", stats.body);
            assert_eq!(entry["unique_users"], 400, "{backend}: {}", stats.body);
        }
        // Two compactions at once (two instances), while batches keep coming: nothing lost.
        let other = insights(&api);
        let (a, b) = tokio::join!(service.compact(3, 100), other.compact(5, 100));
        a.unwrap();
        b.unwrap();
        let more = (0..50)
            .map(|i| Impression {
                flag_key: "a".into(),
                user_id: Some(format!("late-{i}")),
                value: "true".into(),
                context: None,
                evaluated_at: now,
            })
            .collect();
        service
            .store_batch(
                &ImpressionBatch {
                    id: [99; 16],
                    environment: env.clone(),
                    items: more,
                },
                |_| true,
            )
            .await
            .unwrap();
        service.compact(1000, 10).await.unwrap();
        let stats = api
            .get(
                &format!("/api/environments/{env}/impressions/stats"),
                Some(&world.admin),
            )
            .await;
        let a = stats
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["flag_key"] == "a")
            .unwrap();
        assert_eq!(a["total"], 450, "{backend}");
        assert_eq!(a["unique_users"], 450, "{backend}: {}", stats.body);
    })
    .await;
}

#[tokio::test]
async fn stats_see_sketches_rewritten_after_an_earlier_read() {
    on_both("imp", |api, backend| async move {
        let world = api.world().await;
        let env = world.envs[0].clone();
        // Another instance's ingest and compaction: the API's own instance keeps the merged
        // sketches it read, and must notice that they were rewritten.
        let service = insights(&api);
        let now = now_ms();
        let day = 86_400_000;
        let mut batch_id = 0u8;
        let mut send = |users: std::ops::Range<u32>| {
            batch_id += 1;
            // Whole past days (day sketches), an earlier hour of today and the current minute;
            // every user is served `true`, and the even ones `false` as well (so the flag's
            // users are a union of two values').
            let items = users
                .flat_map(|u| {
                    let values: &[&str] = if u % 2 == 0 {
                        &["true", "false"]
                    } else {
                        &["true"]
                    };
                    let times = [now - 2 * day, now - day - 3_600_000, now - 7_200_000, now];
                    values.iter().flat_map(move |value| {
                        times.map(|at| Impression {
                            flag_key: "f".into(),
                            user_id: Some(format!("user-{u}")),
                            value: (*value).into(),
                            context: None,
                            evaluated_at: at,
                        })
                    })
                })
                .collect();
            let batch = ImpressionBatch {
                id: [batch_id; 16],
                environment: env.clone(),
                items,
            };
            let service = service.clone();
            async move { service.store_batch(&batch, |_| true).await.unwrap() }
        };
        let stats = |expect: u64, expect_false: u64, step: &'static str| {
            let (api, world, env) = (&api, &world, &env);
            async move {
                let reply = api
                    .get(
                        &format!(
                            "/api/environments/{env}/impressions/stats?from={}&to={}",
                            now - 3 * day,
                            now + 60_000
                        ),
                        Some(&world.admin),
                    )
                    .await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                let f = &reply.body[0];
                assert_eq!(
                    f["unique_users"], expect,
                    "{backend} {step}: {}",
                    reply.body
                );
                assert_eq!(f["values"][0]["value"], "true", "{backend} {step}");
                assert_eq!(f["values"][0]["unique_users"], expect, "{backend} {step}");
                assert_eq!(f["values"][1]["value"], "false", "{backend} {step}");
                assert_eq!(
                    f["values"][1]["unique_users"], expect_false,
                    "{backend} {step}"
                );
                let insights = api
                    .get(
                        &format!("/api/environments/{env}/flags/f/insights?range=7d"),
                        Some(&world.admin),
                    )
                    .await;
                assert_eq!(insights.status, StatusCode::OK, "{}", insights.body);
                assert_eq!(
                    insights.body["unique_users"], expect,
                    "{backend} {step}: {}",
                    insights.body
                );
            }
        };
        let flag = api
            .post(
                &format!("/api/environments/{env}/flags"),
                json!({"key": "f", "is_enabled": true}),
                Some(&world.admin),
            )
            .await;
        assert!(flag.status.is_success(), "{}", flag.body);
        send(0..40).await;
        service.compact(1000, 10).await.unwrap();
        stats(40, 20, "first read, from the sketches").await;
        stats(40, 20, "second read, from the cache").await;
        // New users on the same past days: the sketches are rewritten by the compaction.
        send(40..70).await;
        stats(70, 35, "not compacted yet: sketches and parts").await;
        service.compact(1000, 10).await.unwrap();
        stats(70, 35, "after the sketches were rewritten").await;
        // Users already counted change nothing, and a third rewrite is seen too.
        send(0..70).await;
        send(70..75).await;
        service.compact(1000, 10).await.unwrap();
        stats(75, 38, "after a third rewrite").await;
    })
    .await;
}

/// PostgreSQL (SQLite has one writer): a batch that drew lower ids than another but commits
/// after it is never skipped — by the live tail, nor by the merge of parts. Batch A is held
/// inside its transaction after drawing its ids (a trigger of this test's database waits on an
/// advisory lock the test holds) while batch B commits. Until A ends neither the list nor a
/// `since_id` poll shows B, and a merge leaves B's part for later; afterwards a poll from the
/// same cursor shows both, and the stats count both before any merge runs again.
#[tokio::test]
async fn neither_the_tail_nor_the_merge_skips_a_batch_that_commits_late() {
    let name = format!("cg_imp_{}", uuid::Uuid::new_v4().simple());
    let url = common::pg::create_database(&name).await;
    let api = common::api_over(&url, |_| {}).await;
    let world = api.world().await;
    let env = world.envs[0].clone();
    let service = insights(&api);
    let now = now_ms();
    let batch = |id: u8, flag: &str, n: usize| ImpressionBatch {
        id: [id; 16],
        environment: env.clone(),
        items: (0..n)
            .map(|i| Impression {
                flag_key: flag.into(),
                user_id: Some(format!("{flag}-{id}-{i}")),
                value: "true".into(),
                context: None,
                evaluated_at: now,
            })
            .collect(),
    };
    let ids = |page: &Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    let total = |stats: &Value, flag: &str| -> i64 {
        stats
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["flag_key"] == flag)
            .map_or(0, |e| e["total"].as_i64().unwrap())
    };
    let stats = || async {
        let reply = api
            .get(
                &format!("/api/environments/{env}/impressions/stats"),
                Some(&world.admin),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body
    };
    service
        .store_batch(&batch(1, "early", 1), |_| true)
        .await
        .unwrap();
    service.compact(1000, 10).await.unwrap();
    let cursor = ids(&list(&api, &world, "").await)[0];

    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    for sql in [
        "CREATE FUNCTION hold_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.flag_key = 'slow' THEN PERFORM pg_advisory_xact_lock(42); END IF; \
         RETURN NEW; END $$",
        "CREATE TRIGGER hold_slow BEFORE INSERT ON impression_user_parts \
         FOR EACH ROW EXECUTE FUNCTION hold_slow()",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(42)")
        .execute(&mut *holder)
        .await
        .unwrap();
    let held = {
        let service = service.clone();
        let late = batch(2, "slow", 3);
        tokio::spawn(async move { service.store_batch(&late, |_| true).await })
    };
    // A has drawn its impressions' and its part's ids once it waits in the trigger.
    let mut waiting = 0;
    for _ in 0..200 {
        waiting = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(waiting, 1, "batch A never reached the trigger");
    assert_eq!(
        service
            .store_batch(&batch(3, "b", 2), |_| true)
            .await
            .unwrap(),
        Stored::New(2),
        "batch B waits for nothing of A's"
    );
    let raw: i64 = sqlx::query_scalar("SELECT count(*) FROM impressions WHERE flag_key = 'b'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(raw, 2, "B committed");
    let poll = list(&api, &world, &format!("since_id={cursor}")).await;
    assert_eq!(
        poll,
        json!({"items": [], "total": 0}),
        "B shown before A ended"
    );
    assert_eq!(ids(&list(&api, &world, "").await), vec![cursor]);
    // B's part is counted while pending, and a merge now takes nothing above A's part.
    assert_eq!(total(&stats().await, "b"), 2);
    assert_eq!(service.compact(1000, 10).await.unwrap(), 0, "merged past A");
    assert_eq!(total(&stats().await, "b"), 2);

    sqlx::query("SELECT pg_advisory_unlock(42)")
        .execute(&mut *holder)
        .await
        .unwrap();
    assert_eq!(held.await.unwrap().unwrap(), Stored::New(3));
    let poll = list(&api, &world, &format!("since_id={cursor}")).await;
    assert_eq!(poll["total"], 5, "{poll}");
    let flags: Vec<&str> = poll["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["flag_key"].as_str().unwrap())
        .collect();
    assert_eq!(flags.iter().filter(|f| **f == "slow").count(), 3, "{poll}");
    assert_eq!(flags.iter().filter(|f| **f == "b").count(), 2, "{poll}");
    let now_stats = stats().await;
    assert_eq!(
        (total(&now_stats, "slow"), total(&now_stats, "b")),
        (3, 2),
        "{now_stats}"
    );
    assert_eq!(service.compact(1000, 10).await.unwrap(), 2);
    let mut merged = stats().await;
    // The same but for the window, which ends now.
    for (a, b) in merged
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .zip(now_stats.as_array().unwrap())
    {
        a["from"] = b["from"].clone();
        a["to"] = b["to"].clone();
    }
    assert_eq!(merged, now_stats, "the merge changed what the stats say");
    drop(holder);
    pool.close().await;
    api.store.close().await;
    common::pg::drop_database(&name).await.unwrap();
}

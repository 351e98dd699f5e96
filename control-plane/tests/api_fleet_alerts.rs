//! Fleet alerts and connected SDKs through the API, on both backends (the embedded SQLite file
//! and a PostgreSQL database of the test's own, `CHECKGATE_TEST_PG`): an edge disconnected
//! past the threshold opens one `edge.stale` episode however many checks see it, and its
//! return resolves it; a lagging edge opens `edge.lagging`; `webhook.failing` is recorded
//! once per episode; the listing filters and pages within bounds and refuses bad parameters.
//! Connection reports are listed to each caller only for the environments of its projects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use checkgate_control::fleet_alerts::{AlertSettings, check};
use checkgate_control::store::connections::{StoredClient, StoredCount};
use common::{Api, assert_error, on_both};
use serde_json::{Value, json};

/// An edge token for every environment, made by `admin`; its id.
async fn edge_token(api: &Api, admin: &str) -> String {
    let created = api
        .call(
            "POST",
            "/api/edge-tokens",
            Some(json!({"name": "edge"})),
            Some(admin),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

async fn alerts(api: &Api, admin: &str, query: &str) -> Value {
    let reply = api
        .get(&format!("/api/fleet/alerts?{query}"), Some(admin))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

fn of_kind<'a>(page: &'a Value, kind: &str) -> Vec<&'a Value> {
    page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == kind)
        .collect()
}

/// The `edge.*` events queued for a webhook (its deliveries log), oldest first.
async fn edge_events(api: &Api, admin: &str, deliveries: &str) -> Vec<String> {
    let log = api.get(deliveries, Some(admin)).await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    let mut events: Vec<String> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event"].as_str().unwrap().to_owned())
        .filter(|e| e.starts_with("edge."))
        .collect();
    events.reverse();
    events
}

const AT_ONCE: AlertSettings = AlertSettings {
    stale_after: Duration::ZERO,
    lag_versions: 1,
};

#[tokio::test]
async fn an_edge_away_opens_one_stale_alert_and_its_return_resolves_it() {
    on_both("alert", |api, backend| async move {
        let world = api.world().await;
        let token = edge_token(&api, &world.admin).await;
        let store = &api.store;
        // A webhook of an environment the edge serves: the episode's events queue for it.
        let env = &world.envs[0];
        let hook = api
            .call(
                "POST",
                &format!("/api/environments/{env}/webhooks"),
                Some(json!({"name": "ops", "url": "https://hooks.example.com/fleet"})),
                Some(&world.admin),
                &[],
            )
            .await;
        assert_eq!(hook.status, StatusCode::CREATED, "{backend}: {}", hook.body);
        let deliveries = format!(
            "/api/environments/{env}/webhooks/{}/deliveries",
            hook.body["id"].as_str().unwrap()
        );
        let first = store
            .open_edge_session(&token, "edge-a", "eu", "127.0.0.1:1")
            .await
            .unwrap();
        check(store, AT_ONCE).await.unwrap();
        assert!(
            of_kind(&alerts(&api, &world.admin, "").await, "edge.stale").is_empty(),
            "{backend}: a connected edge raises nothing"
        );
        store
            .close_edge_session(&first, &token, None)
            .await
            .unwrap();
        // Seen by three checks: one episode.
        for _ in 0..3 {
            check(store, AT_ONCE).await.unwrap();
        }
        let open = alerts(&api, &world.admin, "state=open").await;
        let stale = of_kind(&open, "edge.stale");
        assert_eq!(stale.len(), 1, "{backend}: {open}");
        assert_eq!(stale[0]["edge_name"], "edge-a", "{backend}");
        assert_eq!(stale[0]["subject"], format!("{token}/edge-a"), "{backend}");
        assert_eq!(stale[0]["detail"]["state"], "disconnected", "{backend}");
        assert!(stale[0]["resolved_at"].is_null(), "{backend}");
        assert_eq!(
            edge_events(&api, &world.admin, &deliveries).await,
            ["edge.stale"],
            "{backend}: announced once, to the environment's webhook"
        );

        // Back: a new session of the same edge resolves the episode.
        let second = store
            .open_edge_session(&token, "edge-a", "eu", "127.0.0.1:2")
            .await
            .unwrap();
        check(store, AT_ONCE).await.unwrap();
        check(store, AT_ONCE).await.unwrap();
        let open = alerts(&api, &world.admin, "state=open").await;
        assert!(of_kind(&open, "edge.stale").is_empty(), "{backend}: {open}");
        let resolved = alerts(&api, &world.admin, "state=resolved").await;
        let stale = of_kind(&resolved, "edge.stale");
        assert_eq!(stale.len(), 1, "{backend}: {resolved}");
        assert!(stale[0]["resolved_at"].is_string(), "{backend}");
        assert_eq!(stale[0]["detail"]["recovered_session"], second, "{backend}");
        assert_eq!(
            edge_events(&api, &world.admin, &deliveries).await,
            ["edge.stale", "edge.recovered"],
            "{backend}"
        );

        // Away again: a second episode, not the first reopened.
        store
            .close_edge_session(&second, &token, None)
            .await
            .unwrap();
        check(store, AT_ONCE).await.unwrap();
        let all = alerts(&api, &world.admin, "state=all").await;
        assert_eq!(of_kind(&all, "edge.stale").len(), 2, "{backend}: {all}");
        // Within the threshold: nothing yet.
        let patient = AlertSettings {
            stale_after: Duration::from_secs(3600),
            ..AT_ONCE
        };
        let third = store
            .open_edge_session(&token, "edge-b", "", "127.0.0.1:3")
            .await
            .unwrap();
        store
            .close_edge_session(&third, &token, None)
            .await
            .unwrap();
        check(store, patient).await.unwrap();
        let open = alerts(&api, &world.admin, "state=open").await;
        assert!(
            open["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["edge_name"] != "edge-b"),
            "{backend}: {open}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_lagging_edge_opens_a_lag_alert_until_it_catches_up() {
    on_both("alert", |api, backend| async move {
        let world = api.world().await;
        let token = edge_token(&api, &world.admin).await;
        let store = &api.store;
        let env = &world.envs[0];
        let session = store
            .open_edge_session(&token, "edge-l", "", "127.0.0.1:1")
            .await
            .unwrap();
        let at = |v: u64| -> std::collections::BTreeMap<String, u64> {
            [(env.clone(), v)].into_iter().collect()
        };
        store
            .touch_edge_session(&session, &token, &at(0))
            .await
            .unwrap();
        // Two writes: the head moves past the limit of one version.
        for key in ["one", "two"] {
            let reply = api
                .call(
                    "POST",
                    &format!("/api/environments/{env}/flags"),
                    Some(json!({"key": key, "is_enabled": false})),
                    Some(&world.admin),
                    &[],
                )
                .await;
            assert!(reply.status.is_success(), "{backend}: {}", reply.body);
        }
        check(store, AT_ONCE).await.unwrap();
        check(store, AT_ONCE).await.unwrap();
        let open = alerts(&api, &world.admin, "state=open").await;
        let lagging = of_kind(&open, "edge.lagging");
        assert_eq!(lagging.len(), 1, "{backend}: {open}");
        assert_eq!(lagging[0]["environments"], json!([env]), "{backend}");
        let head = api.get("/api/edges", Some(&world.admin)).await.body["edges"][0]["environments"]
            [0]["head"]
            .as_u64()
            .unwrap();
        store
            .touch_edge_session(&session, &token, &at(head))
            .await
            .unwrap();
        check(store, AT_ONCE).await.unwrap();
        let open = alerts(&api, &world.admin, "state=open").await;
        assert!(
            of_kind(&open, "edge.lagging").is_empty(),
            "{backend}: {open}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_failing_webhook_is_one_episode_and_the_listing_pages_within_bounds() {
    on_both("alert", |api, backend| async move {
        let world = api.world().await;
        let store = &api.store;
        let env = &world.envs[0];
        let first = store
            .record_webhook_failing("wh-1", env, json!({"attempts": 3}))
            .await
            .unwrap();
        assert!(first.is_some(), "{backend}");
        let again = store
            .record_webhook_failing("wh-1", env, json!({"attempts": 4}))
            .await
            .unwrap();
        assert!(again.is_none(), "{backend}: one episode at a time");
        store
            .record_webhook_failing("wh-2", env, json!({}))
            .await
            .unwrap();
        let open = alerts(&api, &world.admin, "state=open").await;
        assert_eq!(of_kind(&open, "webhook.failing").len(), 2, "{backend}");
        assert_eq!(
            of_kind(&open, "webhook.failing")[0]["environments"],
            json!([env])
        );
        let resolved = store.resolve_webhook_failing("wh-1").await.unwrap();
        assert!(
            resolved.is_some_and(|a| a.resolved_at.is_some()),
            "{backend}"
        );
        assert!(
            store
                .resolve_webhook_failing("wh-1")
                .await
                .unwrap()
                .is_none()
        );

        // Pages: newest first, `more` while more follow.
        let page = alerts(&api, &world.admin, "limit=1").await;
        assert_eq!(page["alerts"].as_array().unwrap().len(), 1, "{backend}");
        assert_eq!(page["more"], true, "{backend}");
        let page = alerts(&api, &world.admin, "limit=1&offset=1").await;
        assert_eq!(page["more"], false, "{backend}: {page}");
        let page = alerts(&api, &world.admin, "limit=1&offset=2").await;
        assert!(page["alerts"].as_array().unwrap().is_empty(), "{backend}");

        for bad in [
            "state=bogus",
            "limit=0",
            "limit=201",
            "offset=100001",
            "limit=x",
            "colour=red",
        ] {
            let reply = api
                .get(&format!("/api/fleet/alerts?{bad}"), Some(&world.admin))
                .await;
            assert_error(&reply, StatusCode::BAD_REQUEST, "bad_request");
        }
        // Workspace admins only.
        let (token, _) = api.api_token(&world.admin, &world.project, "admin").await;
        let reply = api.bearer("GET", "/api/fleet/alerts", None, &token).await;
        assert_error(&reply, StatusCode::FORBIDDEN, "forbidden");
    })
    .await;
}

/// The id of the key named `name` in `project`.
async fn key_id(api: &Api, admin: &str, project: &str, name: &str) -> String {
    let keys = api
        .get(&format!("/api/projects/{project}/keys"), Some(admin))
        .await;
    keys.body
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn count(env: &str, key: &str, n: u64, clients: &[&str]) -> StoredCount {
    StoredCount {
        env_id: env.into(),
        key_id: key.into(),
        count: n,
        clients: clients
            .iter()
            .map(|ip| StoredClient {
                address: (*ip).into(),
                connected_at: 1_800_000_000_000,
            })
            .collect(),
    }
}

#[tokio::test]
async fn connected_sdks_are_listed_only_to_members_of_their_project() {
    on_both("alert", |api, backend| async move {
        let world = api.world().await;
        let admin = &world.admin;
        let other = api.new_project(admin, "Other").await;
        api.sdk_key(admin, &world.project, &world.envs[0], "server")
            .await;
        api.sdk_key(admin, &other.id, &other.envs[0], "client")
            .await;
        let ours = key_id(&api, admin, &world.project, "server").await;
        let theirs = key_id(&api, admin, &other.id, "client").await;
        let token = edge_token(&api, admin).await;
        let store = &api.store;
        let session = store
            .open_edge_session(&token, "edge-c", "eu-west", "127.0.0.1:1")
            .await
            .unwrap();
        let stored = store
            .put_edge_connections(
                &session,
                &token,
                &[
                    count(&world.envs[0], &ours, 3, &[]),
                    count(&other.envs[0], &theirs, 2, &["10.0.0.7"]),
                ],
            )
            .await
            .unwrap();
        assert!(stored, "{backend}");
        // Another token's session: not written.
        let refused = store
            .put_edge_connections(&session, "not-the-token", &[])
            .await
            .unwrap();
        assert!(!refused, "{backend}");
        store
            .put_instance_connections(
                "instance-1",
                "control plane instance",
                &[count(&world.envs[0], &ours, 1, &[])],
            )
            .await
            .unwrap();

        // The workspace admin: everything.
        let all = api.get("/api/health/connections", Some(admin)).await;
        assert_eq!(all.status, StatusCode::OK, "{}", all.body);
        assert_eq!(all.body["total"], 6, "{backend}: {}", all.body);
        assert_eq!(all.body["connections"].as_array().unwrap().len(), 3);
        let edge = &all.body["connections"][0];
        assert_eq!(edge["count"], 3, "{backend}: {}", all.body);
        assert_eq!(edge["key_name"], "server");
        assert_eq!(edge["server"]["kind"], "edge");
        assert_eq!(edge["server"]["name"], "edge-c");
        assert_eq!(edge["server"]["region"], "eu-west");
        assert_eq!(edge["server"]["session_id"], session);
        assert_eq!(edge["clients"], json!([]));

        // A viewer of the first project (an API token): its project only.
        let (viewer, _) = api.api_token(admin, &world.project, "viewer").await;
        let mine = api
            .bearer("GET", "/api/health/connections", None, &viewer)
            .await;
        assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
        assert_eq!(mine.body["total"], 4, "{backend}: {}", mine.body);
        assert!(
            mine.body["connections"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["project_id"] == world.project.as_str()),
            "{backend}: {}",
            mine.body
        );
        // A member of the other project only: its one entry, with the address its edge sent.
        let (user, cookie) = api.user_session("other@example.com").await;
        let added = api
            .call(
                "POST",
                &format!("/api/projects/{}/members", other.id),
                Some(json!({"user_id": user, "role": "viewer"})),
                Some(admin),
                &[],
            )
            .await;
        assert!(added.status.is_success(), "{}", added.body);
        let theirs_view = api.get("/api/health/connections", Some(&cookie)).await;
        assert_eq!(
            theirs_view.body["total"], 2,
            "{backend}: {}",
            theirs_view.body
        );
        assert_eq!(
            theirs_view.body["connections"][0]["clients"][0]["ip"], "10.0.0.7",
            "{backend}"
        );
        // A user of no project: nothing at all.
        let (_, nobody) = api.user_session("nobody@example.com").await;
        let none = api.get("/api/health/connections", Some(&nobody)).await;
        assert_eq!(none.status, StatusCode::OK);
        assert_eq!(none.body["total"], 0, "{backend}: {}", none.body);
        assert_eq!(none.body["connections"], json!([]));

        // One environment: by server, then key.
        let path = format!("/api/environments/{}/connections", world.envs[0]);
        let env = api.bearer("GET", &path, None, &viewer).await;
        assert_eq!(env.status, StatusCode::OK, "{}", env.body);
        assert_eq!(env.body["total"], 4, "{backend}: {}", env.body);
        let servers = env.body["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 2, "{backend}: {}", env.body);
        assert_eq!(servers[0]["server"]["kind"], "edge");
        assert_eq!(servers[0]["keys"][0]["key_name"], "server");
        assert_eq!(servers[1]["server"]["kind"], "control_plane");
        // Another project's environment does not exist for them.
        let reply = api.get(&path, Some(&cookie)).await;
        assert_error(&reply, StatusCode::NOT_FOUND, "not_found");
        let reply = api
            .get("/api/environments/not-a-uuid/connections", Some(admin))
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "bad_request");
        let reply = api.get("/api/health/connections", None).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");

        // The session ends: its report is no longer listed.
        store
            .close_edge_session(&session, &token, None)
            .await
            .unwrap();
        let all = api.get("/api/health/connections", Some(admin)).await;
        assert_eq!(all.body["total"], 1, "{backend}: {}", all.body);
        assert_eq!(
            all.body["connections"][0]["server"]["kind"],
            "control_plane"
        );
    })
    .await;
}

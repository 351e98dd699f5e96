//! SDK keys and environments through the HTTP API: keys shown once and stored only as hashes,
//! revocation that works (and reaches the feed), environment slugs per project — and the proof
//! that an SDK key, of either kind, grants no management access at all (Checkgate's worst flaw).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use checkgate_control::store::{ChangeKind, key_hash};
use common::{World, api, assert_error};
use serde_json::{Value, json};

#[tokio::test]
async fn keys_are_shown_once_stored_as_hashes_and_revocable() {
    let api = api().await;
    let World {
        admin,
        project,
        envs,
    } = api.world().await;
    let keys = format!("/api/projects/{project}/keys");

    let created = api
        .call(
            "POST",
            &keys,
            Some(json!({"name": "web-prod", "environment_id": envs[2]})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let secret = created.body["key"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("cg_srv_") && secret.len() > 60,
        "{secret}"
    );
    assert_eq!(created.body["kind"], "server");
    let client = api
        .call(
            "POST",
            &keys,
            Some(json!({"name": "browser", "environment_id": envs[2], "kind": "client"})),
            Some(&admin),
            &[],
        )
        .await;
    assert!(client.body["key"].as_str().unwrap().starts_with("cg_cli_"));

    let listed = api.get(&keys, Some(&admin)).await;
    let text = listed.body.to_string();
    assert_eq!(listed.body.as_array().unwrap().len(), 2);
    assert!(!text.contains(&secret), "a list never shows a key");
    assert!(listed.body[1]["prefix"].as_str().unwrap().ends_with('…'));

    // The feed carries the hash, never the key.
    let feed = api.store.changes_since(&envs[2], 0, 10).await.unwrap();
    assert_eq!(feed[0].kind, Ok(ChangeKind::SdkKeyUpsert));
    let doc = feed[0].doc.as_deref().unwrap();
    assert!(
        doc.contains(&key_hash(&secret)) && !doc.contains(&secret),
        "{doc}"
    );

    let id = created.body["id"].as_str().unwrap();
    assert_eq!(
        api.call("DELETE", &format!("{keys}/{id}"), None, Some(&admin), &[])
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &api.call("DELETE", &format!("{keys}/{id}"), None, Some(&admin), &[])
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let revoked: Vec<Value> = api
        .get(&keys, Some(&admin))
        .await
        .body
        .as_array()
        .unwrap()
        .clone();
    assert!(
        revoked
            .iter()
            .any(|k| k["id"] == id && k["revoked_at"].is_string())
    );
    assert_eq!(
        api.store
            .changes_since(&envs[2], 0, 10)
            .await
            .unwrap()
            .last()
            .unwrap()
            .kind,
        Ok(ChangeKind::SdkKeyRevoke)
    );

    for (body, status) in [
        (
            json!({"name": "x", "environment_id": envs[0], "kind": "admin"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "", "environment_id": envs[0]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "environment_id": "nope"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "environment_id": uuid::Uuid::new_v4().to_string()}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        assert_eq!(
            api.call("POST", &keys, Some(body.clone()), Some(&admin), &[])
                .await
                .status,
            status,
            "{body}"
        );
    }
}

#[tokio::test]
async fn an_sdk_key_of_either_kind_grants_no_management_access() {
    let api = api().await;
    let World {
        admin,
        project,
        envs,
    } = api.world().await;
    let keys = format!("/api/projects/{project}/keys");
    let mut secrets = Vec::new();
    for kind in ["server", "client"] {
        secrets.push(api.sdk_key(&admin, &project, &envs[0], kind).await);
    }
    let flag = json!({"key": "pwned", "is_enabled": true});
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/api/projects".into(), None),
        (
            "POST",
            "/api/projects".into(),
            Some(json!({"name": "Evil"})),
        ),
        ("GET", format!("/api/projects/{project}"), None),
        ("DELETE", format!("/api/projects/{project}"), None),
        ("GET", keys.clone(), None),
        (
            "POST",
            keys.clone(),
            Some(json!({"name": "x", "environment_id": envs[0]})),
        ),
        ("GET", format!("/api/projects/{project}/environments"), None),
        (
            "POST",
            format!("/api/projects/{project}/environments"),
            Some(json!({"name": "x", "slug": "x"})),
        ),
        ("GET", format!("/api/environments/{}/flags", envs[2]), None),
        (
            "POST",
            format!("/api/environments/{}/flags", envs[2]),
            Some(flag.clone()),
        ),
        (
            "POST",
            format!("/api/environments/{}/flags", envs[0]),
            Some(flag.clone()),
        ),
        ("GET", "/api/auth/me".into(), None),
    ];
    for secret in &secrets {
        for (method, path, body) in &routes {
            let bearer = format!("Bearer {secret}");
            let cookie = format!("cg_session={secret}");
            let sep = if path.contains('?') { '&' } else { '?' };
            let attempts = [
                api.call(
                    method,
                    path,
                    body.clone(),
                    None,
                    &[("authorization", &bearer)],
                )
                .await,
                api.call(
                    method,
                    &format!("{path}{sep}sdk_key={secret}"),
                    body.clone(),
                    None,
                    &[],
                )
                .await,
                api.call(method, path, body.clone(), Some(&cookie), &[])
                    .await,
            ];
            for reply in attempts {
                assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
            }
        }
    }
    assert_eq!(api.store.list_projects().await.unwrap().len(), 1);
    for env in &envs {
        assert!(
            api.store.flags(env, 10, 0).await.unwrap().is_empty(),
            "a key wrote a flag"
        );
    }
}

#[tokio::test]
async fn environments_have_per_project_slugs_and_keep_a_default() {
    let api = api().await;
    let World {
        admin,
        project,
        envs,
    } = api.world().await;
    let path = format!("/api/projects/{project}/environments");
    let qa = api
        .call(
            "POST",
            &path,
            Some(json!({"name": "QA", "slug": "qa", "color": "#123abc"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(qa.status, StatusCode::CREATED, "{}", qa.body);
    assert_error(
        &api.call(
            "POST",
            &path,
            Some(json!({"name": "QA 2", "slug": "qa"})),
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_error(
        &api.call(
            "POST",
            &path,
            Some(json!({"name": "Bad", "slug": "Has Space"})),
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &api.call(
            "POST",
            &path,
            Some(json!({"name": "Bad", "slug": "ok", "color": "red"})),
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );

    let other_id = api.new_project(&admin, "Other").await.id;
    let same_slug = api
        .call(
            "POST",
            &format!("/api/projects/{other_id}/environments"),
            Some(json!({"name": "QA", "slug": "qa"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(
        same_slug.status,
        StatusCode::CREATED,
        "slugs are unique per project, not per install"
    );

    assert_error(
        &api.call(
            "DELETE",
            &format!("{path}/{}", envs[0]),
            None,
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    let qa_id = qa.body["id"].as_str().unwrap();
    let made_default = api
        .call(
            "POST",
            &format!("{path}/{qa_id}/default"),
            None,
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(
        (
            made_default.status,
            made_default.body["is_default"].as_bool()
        ),
        (StatusCode::OK, Some(true))
    );
    assert_eq!(
        api.call(
            "DELETE",
            &format!("{path}/{}", envs[0]),
            None,
            Some(&admin),
            &[]
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let left: Vec<_> = api
        .get(&path, Some(&admin))
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["slug"].as_str().unwrap().to_owned(),
                e["is_default"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        left,
        [
            ("staging".to_owned(), false),
            ("production".to_owned(), false),
            ("qa".to_owned(), true)
        ]
    );
    assert_eq!(
        api.store
            .changes_since(&envs[0], 0, 10)
            .await
            .unwrap()
            .last()
            .unwrap()
            .kind,
        Ok(ChangeKind::EnvironmentDeleted)
    );
}

#[tokio::test]
async fn environments_are_renamed_and_recoloured_but_keep_their_slug() {
    let api = api().await;
    let World {
        admin,
        project,
        envs,
    } = api.world().await;
    let path = format!("/api/projects/{project}/environments/{}", envs[2]);
    let renamed = api
        .call(
            "PATCH",
            &path,
            Some(json!({"name": "Production EU", "color": "#ef4444"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "Production EU");
    assert_eq!(renamed.body["color"], "#ef4444");
    assert_eq!(renamed.body["slug"], "production");
    let recoloured = api
        .call(
            "PATCH",
            &path,
            Some(json!({"color": "#00ff00"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(
        recoloured.body["name"], "Production EU",
        "absent fields stay"
    );
    for bad in [
        json!({"color": "red"}),
        json!({"name": ""}),
        json!({"slug": "prod"}),
    ] {
        let reply = api
            .call("PATCH", &path, Some(bad.clone()), Some(&admin), &[])
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "bad_request");
    }
    let elsewhere = format!(
        "/api/projects/{project}/environments/{}",
        uuid::Uuid::new_v4()
    );
    assert_error(
        &api.call(
            "PATCH",
            &elsewhere,
            Some(json!({"name": "X"})),
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let audit = api
        .get(
            &format!("/api/audit?environment_id={}", envs[2]),
            Some(&admin),
        )
        .await;
    let actions: Vec<&str> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["environment.update", "environment.update"]);
}

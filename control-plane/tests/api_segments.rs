//! Segments through the HTTP API: compiled before they are stored, referenced by flags, and
//! protected from deletion while a flag uses them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{World, api, assert_error};
use serde_json::json;

#[tokio::test]
async fn segments_are_validated_referenced_and_protected() {
    let api = api().await;
    let World { admin, envs, .. } = api.world().await;
    let env = &envs[0];
    let segments = format!("/api/environments/{env}/segments");
    let flags = format!("/api/environments/{env}/flags");

    let beta = json!({"key": "beta", "name": "Beta users", "included": ["u1"],
                      "rules": [{"attribute": "plan", "operator": "equals", "values": ["pro"]}]});
    let created = api
        .call("POST", &segments, Some(beta.clone()), Some(&admin), &[])
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["version"], 1);
    assert_error(
        &api.call("POST", &segments, Some(beta), Some(&admin), &[])
            .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    let bad = json!({"key": "bad", "rules": [{"attribute": "email", "operator": "regex", "values": ["("]}]});
    let refused = api
        .call("POST", &segments, Some(bad), Some(&admin), &[])
        .await;
    assert_error(&refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("rules[0].values[0]: invalid regex")
    );

    let uses = json!({"key": "new-ui", "is_enabled": true, "rules": [{"segment_key": "beta", "variant": true}]});
    assert_eq!(
        api.call("POST", &flags, Some(uses), Some(&admin), &[])
            .await
            .status,
        StatusCode::CREATED
    );
    let missing = json!({"key": "other", "is_enabled": true, "rules": [{"segment_key": "gamma"}]});
    assert_error(
        &api.call("POST", &flags, Some(missing), Some(&admin), &[])
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    );

    let patched = api
        .call(
            "PATCH",
            &format!("{segments}/beta"),
            Some(json!({"excluded": ["u2"]})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(
        (
            patched.body["excluded"][0].as_str(),
            patched.body["name"].as_str()
        ),
        (Some("u2"), Some("Beta users"))
    );

    let in_use = api
        .call(
            "DELETE",
            &format!("{segments}/beta"),
            None,
            Some(&admin),
            &[],
        )
        .await;
    assert_error(&in_use, StatusCode::CONFLICT, "conflict");
    assert!(
        in_use.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("new-ui")
    );
    api.call(
        "DELETE",
        &format!("{flags}/new-ui"),
        None,
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(
        api.call(
            "DELETE",
            &format!("{segments}/beta"),
            None,
            Some(&admin),
            &[]
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &api.get(&format!("{segments}/beta"), Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let feed: Vec<_> = api
        .store
        .changes_since(env, 0, 20)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.kind.unwrap().as_str())
        .collect();
    assert_eq!(
        feed,
        [
            "segment_upsert",
            "flag_upsert",
            "segment_upsert",
            "flag_delete",
            "segment_delete"
        ]
    );
    let audit: Vec<_> = api
        .store
        .audit_for_environment(env, 20)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(
        audit,
        [
            "segment.delete",
            "flag.delete",
            "segment.update",
            "flag.create",
            "segment.create"
        ]
    );
}

#[tokio::test]
async fn segment_writes_are_conditional_on_the_version_read() {
    let api = api().await;
    let World { admin, envs, .. } = api.world().await;
    let segments = format!("/api/environments/{}/segments", envs[0]);
    let one = format!("{segments}/beta");
    let beta = json!({"key": "beta", "name": "Beta users", "included": ["u1"], "rules": []});
    let created = api
        .call("POST", &segments, Some(beta), Some(&admin), &[])
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);

    // Someone else changes it after we read version 1.
    let theirs = api
        .call(
            "PATCH",
            &one,
            Some(json!({"included": ["u1", "u2"]})),
            Some(&admin),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
    assert_eq!(theirs.body["version"], 2);
    // Our edit, from version 1, is refused and changes nothing.
    let ours = api
        .call(
            "PATCH",
            &one,
            Some(json!({"included": []})),
            Some(&admin),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_error(
        &ours,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    );
    assert_eq!(
        api.get(&one, Some(&admin)).await.body["included"],
        json!(["u1", "u2"])
    );
    assert_error(
        &api.call("DELETE", &one, None, Some(&admin), &[("if-match", "\"1\"")])
            .await,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    );
    assert_error(
        &api.call("DELETE", &one, None, Some(&admin), &[("if-match", "soon")])
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    let deleted = api
        .call("DELETE", &one, None, Some(&admin), &[("if-match", "\"2\"")])
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
}

/// Concurrent creates of one key: exactly one wins (201), every other gets 409, and what is
/// stored is the winner's document. The check that the key is free is made inside the write's
/// transaction; made before it, several creates could all pass it and overwrite each other.
#[tokio::test]
async fn concurrent_creates_of_one_key_have_one_winner() {
    let api = api().await;
    let World { admin, envs, .. } = api.world().await;
    let segments = format!("/api/environments/{}/segments", envs[0]);
    let attempts = (0..8).map(|i| {
        let body =
            json!({"key": "race", "name": format!("writer {i}"), "included": [format!("u{i}")]});
        let (api, segments, admin) = (&api, &segments, &admin);
        async move {
            let reply = api
                .call("POST", segments, Some(body), Some(admin), &[])
                .await;
            (i, reply)
        }
    });
    let replies = futures_util::future::join_all(attempts).await;
    let won: Vec<_> = replies
        .iter()
        .filter(|(_, r)| r.status == StatusCode::CREATED)
        .collect();
    assert_eq!(
        won.len(),
        1,
        "{:?}",
        replies.iter().map(|(_, r)| r.status).collect::<Vec<_>>()
    );
    for (_, reply) in replies
        .iter()
        .filter(|(_, r)| r.status != StatusCode::CREATED)
    {
        assert_error(reply, StatusCode::CONFLICT, "conflict");
    }
    let winner = won[0].0;
    let stored = api.get(&format!("{segments}/race"), Some(&admin)).await;
    assert_eq!(stored.body["name"], format!("writer {winner}"));
    assert_eq!(stored.body["version"], won[0].1.body["version"]);
}

/// A flag that names a segment is refused with 422 only when the segment does not exist; when
/// the store cannot say (here: its segments table is gone), the answer is an error of ours,
/// never "does not exist".
#[tokio::test]
async fn a_store_failure_is_not_a_missing_segment() {
    use sqlx::Connection as _;
    let api = api().await;
    let World { admin, envs, .. } = api.world().await;
    let flags = format!("/api/environments/{}/flags", envs[0]);
    let uses = json!({"key": "uses-beta", "is_enabled": true,
                      "rules": [{"segment_key": "beta", "variant": true}]});
    let missing = api
        .call("POST", &flags, Some(uses.clone()), Some(&admin), &[])
        .await;
    assert_error(&missing, StatusCode::UNPROCESSABLE_ENTITY, "invalid");

    let mut conn = sqlx::AnyConnection::connect(&api.database_url())
        .await
        .unwrap();
    sqlx::query("ALTER TABLE segments RENAME TO segments_gone")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let failed = api
        .call("POST", &flags, Some(uses), Some(&admin), &[])
        .await;
    assert_error(&failed, StatusCode::INTERNAL_SERVER_ERROR, "internal");
}

//! Projects and flags through the HTTP API: Checkgate's routes and shapes, compilation errors
//! with their path (422), conditional writes (`If-Match`, 412), PATCH merge, promote, and the
//! role matrix (admin, editor, viewer, outsider, anonymous).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use checkgate_control::store::{Actor, Role};
use common::{World, api, assert_error};
use serde_json::{Value, json};

fn checkout() -> Value {
    json!({"key": "checkout", "is_enabled": true, "rollout_percentage": 50, "description": null,
           "rules": [{"attribute": "plan", "operator": "equals", "values": ["pro"], "variant": "v3"}],
           "flag_type": "string", "default_value": "v2", "disabled_value": "v1"})
}

/// Setup, then the first project's environments: (admin cookie, project id, [dev, staging, prod]).

#[tokio::test]
async fn flags_round_trip_in_checkgates_shape_with_versions() {
    let api = api().await;
    let World { admin, envs, .. } = api.world().await;
    let flags = format!("/api/environments/{}/flags", envs[0]);

    let created = api
        .call("POST", &flags, Some(checkout()), Some(&admin), &[])
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let mut expected = checkout();
    expected["version"] = json!(1);
    expected["updated_at"] = created.body["updated_at"].clone();
    assert!(expected["updated_at"].is_string(), "{}", created.body);
    assert_eq!(created.body, expected);

    let got = api.get(&format!("{flags}/checkout"), Some(&admin)).await;
    assert_eq!(got.body, expected);
    let replaced = api
        .call("POST", &flags, Some(checkout()), Some(&admin), &[])
        .await;
    assert_eq!(
        (replaced.status, replaced.body["version"].as_u64()),
        (StatusCode::OK, Some(2))
    );

    let list = api.get(&flags, Some(&admin)).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_error(
        &api.get(&format!("{flags}?limit=0"), Some(&admin)).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &api.get(&format!("{flags}?limit=abc"), Some(&admin)).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &api.get("/api/environments/not-a-uuid/flags", Some(&admin))
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &api.get(
            &format!("/api/environments/{}/flags", uuid::Uuid::new_v4()),
            Some(&admin),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let deleted = api
        .call(
            "DELETE",
            &format!("{flags}/checkout"),
            None,
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_error(
        &api.get(&format!("{flags}/checkout"), Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Every write left its audit row and its change row.
    let audit = api.store.audit_for_environment(&envs[0], 10).await.unwrap();
    let actions: Vec<_> = audit.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(actions, ["flag.delete", "flag.update", "flag.create"]);
    assert_eq!(
        api.store
            .changes_since(&envs[0], 0, 10)
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn a_flag_that_does_not_compile_is_refused_with_the_path_of_the_problem() {
    let api = api().await;
    let World { admin, envs, .. } = api.world().await;
    let flags = format!("/api/environments/{}/flags", envs[0]);
    let cases = [
        (
            json!({"key": "r", "is_enabled": true, "rules": [{"attribute": "email", "operator": "regex", "values": ["(unclosed"]}]}),
            "rules[0].values[0]: invalid regex",
        ),
        (
            // The reported flag: 40 costly regexes, which every edge took 1.3 s to compile.
            json!({"key": "costly", "is_enabled": true, "rules": [{"attribute": "email",
                   "operator": "regex", "values": (0..40)
                       .map(|i| format!("[ab]*a[ab]{{13}}{}", "x".repeat(i)))
                       .collect::<Vec<_>>()}]}),
            "rules[0].values[0]: regex is too costly to compile",
        ),
        (
            json!({"key": "t", "is_enabled": true, "flag_type": "string", "default_value": true}),
            "default_value: expected a string",
        ),
        (
            json!({"key": "p", "is_enabled": true, "rollout_percentage": 150}),
            "rollout_percentage: must be between 0 and 100",
        ),
        (
            json!({"key": "s", "is_enabled": true, "rules": [{"segment_key": "beta"}]}),
            "rules: segment \"beta\" does not exist",
        ),
        (
            json!({"key": "q", "is_enabled": true, "prerequisites": [{"key": "missing"}]}),
            "prerequisites[0].key: no flag \"missing\"",
        ),
    ];
    for (doc, message) in cases {
        let reply = api.call("POST", &flags, Some(doc), Some(&admin), &[]).await;
        assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(message),
            "{}",
            reply.body
        );
    }
    assert_error(
        &api.call("POST", &flags, Some(json!({"key": "x"})), Some(&admin), &[])
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert!(
        api.store
            .changes_since(&envs[0], 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing refused was written"
    );

    // A prerequisite cycle is refused too.
    api.call(
        "POST",
        &flags,
        Some(json!({"key": "a", "is_enabled": true})),
        Some(&admin),
        &[],
    )
    .await;
    api.call(
        "POST",
        &flags,
        Some(json!({"key": "b", "is_enabled": true, "prerequisites": [{"key": "a"}]})),
        Some(&admin),
        &[],
    )
    .await;
    let cycle = api
        .call(
            "POST",
            &flags,
            Some(json!({"key": "a", "is_enabled": true, "prerequisites": [{"key": "b"}]})),
            Some(&admin),
            &[],
        )
        .await;
    assert_error(&cycle, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert!(
        cycle.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cycle: a → b → a"),
        "{}",
        cycle.body
    );
}

#[tokio::test]
async fn conditional_updates_patch_merge_and_promote() {
    let api = api().await;
    let World { admin, envs, .. } = api.world().await;
    let flags = format!("/api/environments/{}/flags", envs[0]);
    api.call("POST", &flags, Some(checkout()), Some(&admin), &[])
        .await;
    let one = format!("{flags}/checkout");

    let stale = api
        .call(
            "PATCH",
            &one,
            Some(json!({"rollout_percentage": 10})),
            Some(&admin),
            &[("if-match", "\"7\"")],
        )
        .await;
    assert_error(
        &stale,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    );
    assert_eq!(
        api.get(&one, Some(&admin)).await.body["rollout_percentage"],
        50,
        "a stale write changed nothing"
    );
    assert_error(
        &api.call(
            "PATCH",
            &one,
            Some(json!({})),
            Some(&admin),
            &[("if-match", "soon")],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );

    let patched = api
        .call(
            "PATCH",
            &one,
            Some(json!({"rollout_percentage": 10, "key": "renamed"})),
            Some(&admin),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(
        (
            patched.body["rollout_percentage"].as_u64(),
            patched.body["key"].as_str()
        ),
        (Some(10), Some("checkout"))
    );
    assert_eq!(
        patched.body["rules"],
        checkout()["rules"],
        "fields not in the patch are kept"
    );
    assert_error(
        &api.call(
            "PATCH",
            &one,
            Some(json!({"rollout_percentage": 150})),
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    );
    assert_error(
        &api.call(
            "PATCH",
            &format!("{flags}/nope"),
            Some(json!({})),
            Some(&admin),
            &[],
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let put_stale = api
        .call(
            "POST",
            &flags,
            Some(checkout()),
            Some(&admin),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_error(
        &put_stale,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    );

    let promoted = api
        .call(
            "POST",
            &format!("{one}/promote"),
            Some(json!({"target_env_id": envs[2]})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    assert_eq!(
        api.get(
            &format!("/api/environments/{}/flags/checkout", envs[2]),
            Some(&admin)
        )
        .await
        .body["rollout_percentage"],
        10
    );

    let other = api.new_project(&admin, "Other").await;
    let foreign = &other.envs[0];
    let across = api
        .call(
            "POST",
            &format!("{one}/promote"),
            Some(json!({"target_env_id": foreign})),
            Some(&admin),
            &[],
        )
        .await;
    assert_error(&across, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn roles_decide_who_reads_and_who_writes() {
    let api = api().await;
    let World {
        admin,
        project,
        envs,
    } = api.world().await;
    let flags = format!("/api/environments/{}/flags", envs[0]);
    api.call("POST", &flags, Some(checkout()), Some(&admin), &[])
        .await;

    let (viewer_id, viewer) = api.user_session("viewer@example.com").await;
    let (editor_id, editor) = api.user_session("editor@example.com").await;
    let (_, outsider) = api.user_session("outsider@example.com").await;
    api.store
        .set_member(&Actor::system(), &project, &viewer_id, Role::Viewer)
        .await
        .unwrap();
    api.store
        .set_member(&Actor::system(), &project, &editor_id, Role::Editor)
        .await
        .unwrap();

    assert_eq!(api.get(&flags, Some(&viewer)).await.status, StatusCode::OK);
    assert_error(
        &api.call("POST", &flags, Some(checkout()), Some(&viewer), &[])
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &api.call(
            "DELETE",
            &format!("{flags}/checkout"),
            None,
            Some(&viewer),
            &[],
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        api.call("POST", &flags, Some(checkout()), Some(&editor), &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_error(
        &api.call(
            "PATCH",
            &format!("/api/projects/{project}"),
            Some(json!({"name": "Mine"})),
            Some(&editor),
            &[],
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &api.call(
            "POST",
            "/api/projects",
            Some(json!({"name": "New"})),
            Some(&editor),
            &[],
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &api.call(
            "DELETE",
            &format!("/api/projects/{project}"),
            None,
            Some(&editor),
            &[],
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    // To an outsider the project does not exist.
    assert_error(
        &api.get(&flags, Some(&outsider)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.get(&format!("/api/projects/{project}"), Some(&outsider))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(
        api.get("/api/projects", Some(&outsider)).await.body,
        json!([])
    );
    assert_eq!(
        api.get("/api/projects", Some(&viewer))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Without a session, nothing.
    assert_error(
        &api.get(&flags, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &api.call("POST", &flags, Some(checkout()), None, &[]).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    let renamed = api
        .call(
            "PATCH",
            &format!("/api/projects/{project}"),
            Some(json!({"name": "Shop"})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(
        (renamed.status, renamed.body["name"].as_str()),
        (StatusCode::OK, Some("Shop"))
    );
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/api/projects/{project}"),
            None,
            Some(&admin),
            &[]
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &api.get(&flags, Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn a_stored_flag_evaluates_for_a_context_with_its_segments_and_prerequisites() {
    let api = api().await;
    let World { admin, envs, .. } = api.world().await;
    let env = &envs[0];
    let flags = format!("/api/environments/{env}/flags");
    let segment = json!({"key": "beta", "name": "Beta users", "included": ["u-beta"], "rules": []});
    let made = api
        .call(
            "POST",
            &format!("/api/environments/{env}/segments"),
            Some(segment),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let gate = json!({"key": "gate", "is_enabled": true, "rollout_percentage": null,
                      "description": null, "rules": [], "flag_type": "boolean",
                      "default_value": true, "disabled_value": false});
    api.call("POST", &flags, Some(gate), Some(&admin), &[])
        .await;
    let mut checkout = checkout();
    checkout["rollout_percentage"] = json!(null);
    checkout["rules"] = json!([
        {"attribute": "plan", "operator": "equals", "values": ["pro"], "variant": "v3"},
        {"attribute": "key", "operator": "in_segment", "values": ["beta"], "variant": "v4"}
    ]);
    checkout["prerequisites"] = json!([{"key": "gate"}]);
    let created = api
        .call("POST", &flags, Some(checkout), Some(&admin), &[])
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let evaluate = format!("{flags}/checkout/evaluate");

    let pro = api
        .post(
            &evaluate,
            json!({"context": {"targetingKey": "u1", "plan": "pro"}}),
            Some(&admin),
        )
        .await;
    assert_eq!(pro.status, StatusCode::OK, "{}", pro.body);
    assert_eq!(
        (&pro.body["value"], &pro.body["reason"], &pro.body["key"]),
        (&json!("v3"), &json!("TARGETING_MATCH"), &json!("checkout")),
        "{}",
        pro.body
    );
    assert_eq!(pro.body["version"], created.body["version"]);
    let beta = api
        .post(
            &evaluate,
            json!({"context": {"targetingKey": "u-beta"}}),
            Some(&admin),
        )
        .await;
    assert_eq!(
        beta.body["value"], "v4",
        "the segment is read: {}",
        beta.body
    );
    let other = api
        .post(
            &evaluate,
            json!({"context": {"targetingKey": "u2"}}),
            Some(&admin),
        )
        .await;
    assert_eq!(
        (&other.body["value"], &other.body["reason"]),
        (&json!("v2"), &json!("DEFAULT")),
        "{}",
        other.body
    );

    // The prerequisite is read too: with the gate off, checkout is off.
    let off = api
        .call(
            "PATCH",
            &format!("{flags}/gate"),
            Some(json!({"is_enabled": false})),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let blocked = api
        .post(
            &evaluate,
            json!({"context": {"targetingKey": "u1", "plan": "pro"}}),
            Some(&admin),
        )
        .await;
    assert_eq!(
        (
            &blocked.body["value"],
            &blocked.body["reason"],
            &blocked.body["enabled"]
        ),
        (&json!("v1"), &json!("DISABLED"), &json!(false)),
        "{}",
        blocked.body
    );

    // Bad input is a 4xx with the API's error body.
    assert_error(
        &api.post(
            &evaluate,
            json!({"context": {"targetingKey": 7}}),
            Some(&admin),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    );
    assert_error(
        &api.post(&evaluate, json!({"context": {}, "extra": 1}), Some(&admin))
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &api.post(
            &format!("{flags}/missing/evaluate"),
            json!({"context": {}}),
            Some(&admin),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.post(&evaluate, json!({"context": {}}), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn flags_say_when_they_last_changed_and_a_patch_may_send_it_back() {
    let api = api().await;
    let World { admin, envs, .. } = api.world().await;
    let flags = format!("/api/environments/{}/flags", envs[0]);
    let created = api
        .call("POST", &flags, Some(checkout()), Some(&admin), &[])
        .await;
    let at = created.body["updated_at"].as_str().unwrap().to_owned();
    assert!(at.ends_with('Z') && at.len() == 24, "{at}");
    let listed = api.get(&flags, Some(&admin)).await;
    assert_eq!(listed.body[0]["updated_at"], at.as_str());
    assert_eq!(listed.body[0]["version"], 1);
    // The whole answer sent back as a patch: the read-only fields are ignored.
    let mut back = created.body.clone();
    back["is_enabled"] = json!(false);
    let patched = api
        .call(
            "PATCH",
            &format!("{flags}/checkout"),
            Some(back),
            Some(&admin),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["is_enabled"], false);
}

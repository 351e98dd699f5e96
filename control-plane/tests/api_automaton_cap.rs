//! The cap on the regex automata of an environment: a flag or segment write (create, replace,
//! PATCH, promote) that would take the environment's flags and segments past it is refused with
//! 422 and the path of the regexes that hold the most; the entry being replaced does not count
//! against itself, and a write that fits is accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{Reply, World, api_with, assert_error};
use serde_json::{Value, json};

/// Room for two Unicode `^\w+$` (161 KiB of DFA each), not three.
const CAP: u64 = 400 << 10;

fn word_rule() -> Value {
    json!({"attribute": "name", "operator": "regex", "values": [r"^\w+$"], "variant": true})
}

fn word_flag(key: &str) -> Value {
    json!({"key": key, "is_enabled": true, "rules": [word_rule()]})
}

fn assert_over_cap(reply: &Reply, path: &str) {
    assert_error(reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let message = reply.body["error"]["message"].as_str().unwrap();
    let expected = format!("{path}: this environment's regexes would take ");
    assert!(
        message.starts_with(&expected)
            && message.ends_with(" KiB of automaton, over its cap of 400 KiB"),
        "{message}"
    );
}

#[tokio::test]
async fn a_flag_write_that_would_cross_the_cap_is_refused_and_one_that_fits_is_accepted() {
    let api = api_with(|state| state.automaton_cap = CAP).await;
    let World { admin, envs, .. } = api.world().await;
    let flags = format!("/api/environments/{}/flags", envs[0]);
    let post = |doc: Value| api.call("POST", &flags, Some(doc), Some(&admin), &[]);

    assert_eq!(post(word_flag("a")).await.status, StatusCode::CREATED);
    assert_eq!(post(word_flag("b")).await.status, StatusCode::CREATED);
    let c = json!({"key": "c", "is_enabled": true, "rules": [{"conditions": [
        {"attribute": "plan", "operator": "equals", "values": ["pro"]},
        {"attribute": "name", "operator": "regex", "values": [r"^\w+$"]},
    ], "variant": true}]});
    assert_over_cap(&post(c.clone()).await, "rules[0].conditions[1].values");
    assert_error(
        &api.get(&format!("{flags}/c"), Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Replacing a flag does not count its old regexes against it.
    let mut a = word_flag("a");
    a["description"] = json!("rewritten");
    assert_eq!(post(a).await.status, StatusCode::OK);
    // Flags without regexes are never held back.
    assert_eq!(
        post(json!({"key": "plain", "is_enabled": true}))
            .await
            .status,
        StatusCode::CREATED
    );

    // An ASCII class instead of Unicode \w frees most of a's room, and c fits.
    let ascii = json!({"rules": [{"attribute": "name", "operator": "regex",
                                   "values": ["^[A-Za-z0-9_]+$"], "variant": true}]});
    let patched = api
        .call(
            "PATCH",
            &format!("{flags}/a"),
            Some(ascii),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(post(c).await.status, StatusCode::CREATED);
    // A PATCH that grows a flag past the cap is refused.
    let back = api
        .call(
            "PATCH",
            &format!("{flags}/a"),
            Some(json!({"rules": [word_rule()]})),
            Some(&admin),
            &[],
        )
        .await;
    assert_over_cap(&back, "rules[0].values");
}

#[tokio::test]
async fn promoting_into_a_full_environment_is_refused() {
    let api = api_with(|state| state.automaton_cap = CAP).await;
    let World { admin, envs, .. } = api.world().await;
    let dev = format!("/api/environments/{}/flags", envs[0]);
    let staging = format!("/api/environments/{}/flags", envs[1]);
    for key in ["a", "b"] {
        let reply = api
            .call("POST", &staging, Some(word_flag(key)), Some(&admin), &[])
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    api.call("POST", &dev, Some(word_flag("c")), Some(&admin), &[])
        .await;
    let target = json!({"target_env_id": envs[1]});
    let (promote_c, promote_a) = (format!("{dev}/c/promote"), format!("{dev}/a/promote"));
    let promote = |path| api.call("POST", path, Some(target.clone()), Some(&admin), &[]);
    assert_over_cap(&promote(&promote_c).await, "rules[0].values");
    // Promoting a flag over its own copy is a replacement: it fits.
    api.call("POST", &dev, Some(word_flag("a")), Some(&admin), &[])
        .await;
    assert_eq!(promote(&promote_a).await.status, StatusCode::OK);
}

#[tokio::test]
async fn segments_count_and_are_held_to_the_cap_too() {
    let api = api_with(|state| state.automaton_cap = CAP).await;
    let World { admin, envs, .. } = api.world().await;
    let segments = format!("/api/environments/{}/segments", envs[0]);
    let flags = format!("/api/environments/{}/flags", envs[0]);
    let segment = |key: &str, pattern: &str| {
        json!({"key": key, "name": key,
               "rules": [{"attribute": "name", "operator": "regex", "values": [pattern]}]})
    };

    let created = api
        .call(
            "POST",
            &segments,
            Some(segment("s", r"^\w+$")),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let a = api
        .call("POST", &flags, Some(word_flag("a")), Some(&admin), &[])
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    // The segment's regexes count against a flag write…
    assert_over_cap(
        &api.call("POST", &flags, Some(word_flag("b")), Some(&admin), &[])
            .await,
        "rules[0].values",
    );
    // …and segment writes are held to the cap as flag writes are.
    assert_over_cap(
        &api.call(
            "POST",
            &segments,
            Some(segment("t", r"^\w+$")),
            Some(&admin),
            &[],
        )
        .await,
        "rules[0].values",
    );
    let small = api
        .call(
            "POST",
            &segments,
            Some(segment("t", "^[a-z]+$")),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(small.status, StatusCode::CREATED, "{}", small.body);
    let grown = api
        .call(
            "PATCH",
            &format!("{segments}/t"),
            Some(json!({"rules": [{"attribute": "name", "operator": "regex",
                                   "values": ["^x$", r"^\w+$"]}]})),
            Some(&admin),
            &[],
        )
        .await;
    assert_over_cap(&grown, "rules[0].values");
}

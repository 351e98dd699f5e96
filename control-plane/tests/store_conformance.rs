//! One conformance suite for the store, run against both backends: the embedded SQLite file
//! and PostgreSQL (`CHECKGATE_TEST_PG`, default `postgres://postgres@127.0.0.1:5432/postgres`),
//! each test on a database of its own that is removed afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use checkgate_control::store::{Actor, Backend, Store, StoreError};
use checkgate_core::{CompiledFlag, FlagDoc, compile_flag};
use common::pg::{create_database, drop_database};
use sqlx::Connection;

/// A fresh, empty database of one backend; removed by `cleanup`.
struct Fresh {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Database(String),
}

async fn fresh(backend: Backend) -> Fresh {
    let name = format!("cg_test_{}", uuid::Uuid::new_v4().simple());
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            Fresh {
                url: checkgate_control::store::embedded_url(&dir),
                cleanup: Cleanup::File(dir),
            }
        }
        Backend::Postgres => Fresh {
            url: create_database(&name).await,
            cleanup: Cleanup::Database(name),
        },
    }
}

impl Fresh {
    async fn remove(self) {
        match self.cleanup {
            Cleanup::File(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database(name) => drop_database(&name).await.unwrap(),
        }
    }
}

/// Runs `test` on a fresh store of each backend; the database is removed even when it fails.
async fn on_both<F, Fut>(test: F)
where
    F: Fn(Store, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = fresh(backend).await;
        let store = Store::open(&db.url, 5, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e:?}"));
        assert_eq!(store.backend(), backend);
        let outcome = tokio::spawn(test(store.clone(), db.url.clone())).await;
        store.close().await;
        db.remove().await;
        if let Err(panic) = outcome {
            panic!("on {backend:?}: {panic}");
        }
    }
}

fn flag(key: &str, rollout: u32) -> FlagDoc {
    serde_json::from_value(
        serde_json::json!({"key": key, "is_enabled": true, "rollout_percentage": rollout}),
    )
    .unwrap()
}

fn admin() -> Actor {
    Actor::user("u-1", "admin@example.com")
}

#[tokio::test]
async fn epoch_is_stable_per_database() {
    on_both(|store, url| async move {
        let again = Store::open(&url, 2, Duration::from_secs(10)).await.unwrap();
        assert_eq!(again.epoch(), store.epoch(), "reopening keeps the epoch");
        again.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_new_project_gets_three_environments_and_slugs_are_per_project() {
    on_both(|store, _| async move {
        let (web, envs) = store.create_project(&admin(), "Web Shop").await.unwrap();
        assert_eq!(web.slug, "web-shop");
        let slugs: Vec<_> = envs
            .iter()
            .map(|e| (e.slug.as_str(), e.is_default))
            .collect();
        assert_eq!(
            slugs,
            [
                ("development", true),
                ("staging", false),
                ("production", false)
            ]
        );
        assert_eq!(store.environments(&web.id).await.unwrap(), envs);

        // A second project may have `production` too (Checkgate made slugs install-wide).
        let (api, api_envs) = store.create_project(&admin(), "API").await.unwrap();
        assert!(api_envs.iter().any(|e| e.slug == "production"));
        assert!(matches!(
            store.create_project(&admin(), "web shop").await,
            Err(StoreError::Conflict(_))
        ));

        let names: Vec<_> = store
            .list_projects()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["API", "Web Shop"]);
        store.delete_project(&admin(), &api.id).await.unwrap();
        assert!(matches!(
            store.project(&api.id).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.environment(&api_envs[0].id).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.delete_project(&admin(), &api.id).await,
            Err(StoreError::NotFound(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn every_flag_write_takes_the_next_version_with_its_change_and_audit_rows() {
    on_both(|store, _| async move {
        let (_, envs) = store.create_project(&admin(), "P").await.unwrap();
        let env = &envs[0].id;
        let (created, is_new) = store
            .put_flag(&admin(), env, &flag("checkout", 10), None)
            .await
            .unwrap();
        assert!(is_new);
        assert_eq!(created.version, 1);
        let (updated, is_new) = store
            .put_flag(&admin(), env, &flag("checkout", 20), Some(1))
            .await
            .unwrap();
        assert!(!is_new);
        assert_eq!(
            (updated.version, updated.created_at),
            (2, created.created_at)
        );
        store
            .put_flag(&admin(), env, &flag("banner", 0), None)
            .await
            .unwrap();
        assert_eq!(
            store
                .delete_flag(&admin(), env, "banner", None)
                .await
                .unwrap(),
            4
        );

        let changes = store.changes_since(env, 0, 100).await.unwrap();
        let feed: Vec<_> = changes
            .iter()
            .map(|c| (c.version, c.kind.as_ref().unwrap().as_str(), c.key.as_str()))
            .collect();
        assert_eq!(
            feed,
            [
                (1, "flag_upsert", "checkout"),
                (2, "flag_upsert", "checkout"),
                (3, "flag_upsert", "banner"),
                (4, "flag_delete", "banner")
            ]
        );
        assert!(
            changes[1]
                .doc
                .as_deref()
                .unwrap()
                .contains("\"rollout_percentage\":20")
        );
        assert_eq!(store.changes_since(env, 2, 1).await.unwrap()[0].version, 3);
        assert_eq!(store.environment(env).await.unwrap().version, 4);

        let audit = store.audit_for_environment(env, 10).await.unwrap();
        let actions: Vec<_> = audit
            .iter()
            .map(|(a, k, _, _)| (a.as_str(), k.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("flag.delete", "banner"),
                ("flag.create", "banner"),
                ("flag.update", "checkout"),
                ("flag.create", "checkout")
            ]
        );
        let (_, _, before, after) = &audit[2];
        assert!(
            before
                .as_deref()
                .unwrap()
                .contains("\"rollout_percentage\":10")
        );
        assert!(
            after
                .as_deref()
                .unwrap()
                .contains("\"rollout_percentage\":20")
        );

        assert_eq!(
            store.flag(env, "checkout").await.unwrap().doc,
            flag("checkout", 20)
        );
        assert_eq!(store.flags(env, 10, 0).await.unwrap().len(), 1);
        // Other environments are untouched.
        assert_eq!(store.changes_since(&envs[2].id, 0, 10).await.unwrap(), []);
    })
    .await;
}

#[tokio::test]
async fn a_stale_conditional_write_changes_nothing_and_leaves_no_gap() {
    on_both(|store, _| async move {
        let (_, envs) = store.create_project(&admin(), "P").await.unwrap();
        let env = &envs[0].id;
        store
            .put_flag(&admin(), env, &flag("f", 1), None)
            .await
            .unwrap();
        store
            .put_flag(&admin(), env, &flag("f", 2), None)
            .await
            .unwrap();
        let stale = store.put_flag(&admin(), env, &flag("f", 99), Some(1)).await;
        assert!(
            matches!(
                stale,
                Err(StoreError::VersionMismatch {
                    expected: 1,
                    current: 2,
                    ..
                })
            ),
            "{stale:?}"
        );
        assert!(matches!(
            store.delete_flag(&admin(), env, "f", Some(1)).await,
            Err(StoreError::VersionMismatch { .. })
        ));
        assert!(matches!(
            store
                .put_flag(&admin(), env, &flag("new", 1), Some(3))
                .await,
            Err(StoreError::VersionMismatch { current: 0, .. })
        ));
        assert!(matches!(
            store.delete_flag(&admin(), env, "missing", None).await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(store.flag(env, "f").await.unwrap().doc, flag("f", 2));
        // The refused writes consumed no version.
        let (next, _) = store
            .put_flag(&admin(), env, &flag("f", 3), Some(2))
            .await
            .unwrap();
        assert_eq!(next.version, 3);
        assert!(matches!(
            store
                .put_flag(&admin(), "no-such-env", &flag("f", 1), None)
                .await,
            Err(StoreError::NotFound(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn concurrent_writers_get_gapless_distinct_versions() {
    on_both(|store, _| async move {
        let (_, envs) = store.create_project(&admin(), "P").await.unwrap();
        let env: Arc<str> = envs[0].id.as_str().into();
        let mut writers = tokio::task::JoinSet::new();
        for w in 0..4 {
            let (store, env) = (store.clone(), env.clone());
            writers.spawn(async move {
                let mut versions = Vec::new();
                for i in 0..25 {
                    let (f, _) = store
                        .put_flag(&admin(), &env, &flag(&format!("w{w}"), i), None)
                        .await
                        .unwrap();
                    versions.push(f.version);
                }
                versions
            });
        }
        let mut all = Vec::new();
        while let Some(v) = writers.join_next().await {
            all.extend(v.unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, (1..=100).collect::<Vec<u64>>());
        let feed: Vec<u64> = store
            .changes_since(&env, 0, 1000)
            .await
            .unwrap()
            .iter()
            .map(|c| c.version)
            .collect();
        assert_eq!(feed, (1..=100).collect::<Vec<u64>>());
        for w in 0..4 {
            assert_eq!(
                store
                    .flag(&env, &format!("w{w}"))
                    .await
                    .unwrap()
                    .doc
                    .rollout_percentage,
                Some(24)
            );
        }
    })
    .await;
}

#[tokio::test]
async fn api_tokens_are_hashed_scoped_and_revocable() {
    use checkgate_control::store::{Role, TOKEN_TAG, key_hash};
    on_both(|store, _| async move {
        let (web, _) = store.create_project(&admin(), "Web").await.unwrap();
        let (other, _) = store.create_project(&admin(), "Other").await.unwrap();
        let (token, secret) = store
            .create_api_token(&admin(), &web.id, "ci", Role::Editor)
            .await
            .unwrap();
        assert!(secret.starts_with(TOKEN_TAG) && secret.len() == TOKEN_TAG.len() + 64);
        assert!(secret.starts_with(&token.prefix));
        assert_eq!(token.last_used_at, None);

        let found = store
            .authenticate_api_token(&key_hash(&secret))
            .await
            .unwrap()
            .expect("a live token authenticates");
        assert_eq!(
            (found.id.as_str(), found.role),
            (token.id.as_str(), Role::Editor)
        );
        let listed = store.api_tokens(&web.id).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].last_used_at.is_some(), "use is recorded");
        assert!(store.api_tokens(&other.id).await.unwrap().is_empty());

        // Revoking needs the token's own project.
        assert!(matches!(
            store.revoke_api_token(&admin(), &other.id, &token.id).await,
            Err(StoreError::NotFound(_))
        ));
        store
            .revoke_api_token(&admin(), &web.id, &token.id)
            .await
            .unwrap();
        assert!(
            store
                .authenticate_api_token(&key_hash(&secret))
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            store.revoke_api_token(&admin(), &web.id, &token.id).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(
            store.api_tokens(&web.id).await.unwrap()[0]
                .revoked_at
                .is_some()
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_demotions_never_leave_the_workspace_without_an_admin() {
    on_both(|store, _| async move {
        let mut admins = Vec::new();
        for n in 0..2 {
            let u = store
                .create_user(&admin(), &format!("a{n}@example.com"), "A", "x", false)
                .await
                .unwrap();
            store
                .update_user(&admin(), &u.id, None, Some(true))
                .await
                .unwrap();
            admins.push(u.id);
        }
        let mut racers = tokio::task::JoinSet::new();
        for id in admins.clone() {
            let store = store.clone();
            racers.spawn(async move { store.update_user(&admin(), &id, None, Some(false)).await });
        }
        let mut refused = 0;
        while let Some(outcome) = racers.join_next().await {
            match outcome.unwrap() {
                Ok(u) => assert!(!u.is_admin),
                Err(StoreError::Refused(_)) => refused += 1,
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(refused, 1, "exactly one demotion must be refused");
        assert_eq!(store.admin_count().await.unwrap(), 1);
        let last = store
            .users()
            .await
            .unwrap()
            .into_iter()
            .find(|u| u.is_admin)
            .unwrap();
        assert!(matches!(
            store.delete_user(&admin(), &last.id).await,
            Err(StoreError::Refused(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn segment_writes_are_versioned_and_a_used_segment_cannot_be_deleted() {
    use checkgate_core::SegmentDoc;
    on_both(|store, _| async move {
        let (_, envs) = store.create_project(&admin(), "P").await.unwrap();
        let env = envs[0].id.clone();
        let segment: SegmentDoc = serde_json::from_value(serde_json::json!({
            "key": "beta", "name": "Beta", "rules": [{"attribute": "plan", "operator": "equals", "values": ["pro"]}]
        }))
        .unwrap();
        let (created, fresh) = store.put_segment(&admin(), &env, &segment, None).await.unwrap();
        assert!(fresh);
        assert_eq!(created.version, 1);
        assert!(matches!(
            store.put_segment(&admin(), &env, &segment, Some(7)).await,
            Err(StoreError::VersionMismatch { expected: 7, current: 1, .. })
        ));
        let user: FlagDoc = serde_json::from_value(serde_json::json!({
            "key": "f", "is_enabled": true,
            "rules": [{"attribute": "plan", "operator": "equals", "values": ["pro"], "segment_key": "beta"}]
        }))
        .unwrap();
        store.put_flag(&admin(), &env, &user, None).await.unwrap();
        assert!(matches!(
            store.delete_segment(&admin(), &env, "beta", None).await,
            Err(StoreError::Refused(_))
        ));
        store.delete_flag(&admin(), &env, "f", None).await.unwrap();
        let deleted_at = store.delete_segment(&admin(), &env, "beta", None).await.unwrap();
        assert_eq!(deleted_at, 4, "create, flag put, flag delete, segment delete");
        let kinds: Vec<&str> = store
            .changes_since(&env, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.kind.unwrap().as_str())
            .collect();
        assert_eq!(
            kinds,
            ["segment_upsert", "flag_upsert", "flag_delete", "segment_delete"]
        );
        assert!(matches!(
            store.segment(&env, "beta").await,
            Err(StoreError::NotFound(_))
        ));

        // A flag naming the segment, written after it was deleted (the writer checked before
        // the delete committed): refused under the environment's lock, nothing written.
        let head = store.environment(&env).await.unwrap().version;
        let naming = compile_flag(user.clone()).unwrap();
        let refused = store
            .put_flag_within(&admin(), &env, &naming, None, u64::MAX)
            .await;
        assert!(
            matches!(&refused, Err(StoreError::MissingSegment(key)) if key == "beta"),
            "{refused:?}"
        );
        assert_eq!(store.environment(&env).await.unwrap().version, head);
        assert!(matches!(
            store.flag(&env, "f").await,
            Err(StoreError::NotFound(_))
        ));

        // Racing: a segment's delete and a flag naming it, many times. Either may win, never
        // both — no flag ever names a segment that is gone.
        for round in 0..20 {
            store.put_segment(&admin(), &env, &segment, None).await.unwrap();
            let (a, b) = (store.clone(), store.clone());
            let (env_a, env_b) = (env.clone(), env.clone());
            let naming = naming.clone();
            let (deleted, written) = tokio::join!(
                tokio::spawn(async move { a.delete_segment(&admin(), &env_a, "beta", None).await }),
                tokio::spawn(async move {
                    b.put_flag_within(&admin(), &env_b, &naming, None, u64::MAX)
                        .await
                }),
            );
            let (deleted, written) = (deleted.unwrap(), written.unwrap());
            match (&deleted, &written) {
                (Ok(_), Err(StoreError::MissingSegment(_))) => {}
                (Err(StoreError::Refused(_)), Ok(_)) => {
                    store.delete_flag(&admin(), &env, "f", None).await.unwrap();
                    store.delete_segment(&admin(), &env, "beta", None).await.unwrap();
                }
                other => panic!("round {round}: {other:?}"),
            }
            assert!(matches!(
                store.flag(&env, "f").await,
                Err(StoreError::NotFound(_))
            ));
        }
    })
    .await;
}

#[tokio::test]
async fn concurrent_project_writes_that_read_first_all_succeed() {
    on_both(|store, _| async move {
        let (project, envs) = store.create_project(&admin(), "P").await.unwrap();
        let mut writers = tokio::task::JoinSet::new();
        for n in 0..12 {
            let (store, project, env) = (store.clone(), project.id.clone(), envs[n % 3].id.clone());
            writers.spawn(async move {
                match n % 3 {
                    0 => store
                        .rename_project(&admin(), &project, &format!("P {n}"))
                        .await
                        .map(|_| ()),
                    1 => store
                        .create_environment(
                            &admin(),
                            &project,
                            "E",
                            &format!("e{n}"),
                            "#123456",
                            false,
                        )
                        .await
                        .map(|_| ()),
                    _ => store
                        .set_default_environment(&admin(), &project, &env)
                        .await
                        .map(|_| ()),
                }
            });
        }
        while let Some(done) = writers.join_next().await {
            done.unwrap().unwrap();
        }
        assert_eq!(store.environments(&project.id).await.unwrap().len(), 3 + 4);
    })
    .await;
}

#[tokio::test]
async fn the_feed_reads_consistent_snapshots_and_compacts_old_changes() {
    on_both(|store, _| async move {
        let (project, envs) = store.create_project(&admin(), "P").await.unwrap();
        let env = envs[0].id.clone();
        for i in 0..5 {
            store
                .put_flag(&admin(), &env, &flag(&format!("f{i}"), i), None)
                .await
                .unwrap();
        }
        store.delete_flag(&admin(), &env, "f0", None).await.unwrap();
        let created = store
            .create_sdk_key(
                &admin(),
                &env,
                "k",
                checkgate_control::store::KeyKind::Client,
            )
            .await
            .unwrap();
        assert_eq!(
            created.version, 7,
            "the version the key's creation committed"
        );
        let (key, secret) = (created.key, created.secret);
        let snap = store.feed_snapshot(&env).await.unwrap().unwrap();
        assert_eq!(snap.env.version, 7);
        let keys: Vec<&str> = snap.flags.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(keys, ["f1", "f2", "f3", "f4"]);
        assert_eq!(
            snap.flags[0].1, 2,
            "each flag carries the version that wrote it"
        );
        assert_eq!(snap.sdk_keys.len(), 1);
        assert_eq!(snap.sdk_keys[0].id, key.id);
        assert_eq!(
            snap.sdk_keys[0].hash,
            checkgate_control::store::key_hash(&secret)
        );
        assert!(store.feed_snapshot("no-such-env").await.unwrap().is_none());

        assert_eq!(store.oldest_change(&env).await.unwrap(), Some(1));
        let removed = store.compact_changes(3, 1_000).await.unwrap();
        assert!(removed >= 4, "{removed}");
        assert_eq!(store.oldest_change(&env).await.unwrap(), Some(5));
        assert_eq!(store.changes_since(&env, 4, 100).await.unwrap().len(), 3);

        // Deleting the project leaves each environment a final change row.
        let mut commits = store.subscribe_commits();
        store.delete_project(&admin(), &project.id).await.unwrap();
        let last = store.changes_since(&env, 7, 100).await.unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(
            (last[0].version, last[0].kind.as_ref().unwrap().as_str()),
            (8, "environment_deleted")
        );
        let mut announced = Vec::new();
        for _ in 0..3 {
            let c = commits.recv().await.unwrap();
            announced.push((c.environment_id, c.version));
        }
        announced.sort();
        let mut want: Vec<(String, u64)> = envs
            .iter()
            .map(|e| (e.id.clone(), if e.id == env { 8 } else { 1 }))
            .collect();
        want.sort();
        assert_eq!(
            announced, want,
            "each environment's final version is announced"
        );
        assert!(
            store
                .feed_environments()
                .await
                .unwrap()
                .iter()
                .all(|e| e.project_id != project.id)
        );
    })
    .await;
}

#[tokio::test]
async fn a_batch_of_flags_takes_one_version_each_in_one_transaction() {
    on_both(|store, _| async move {
        let (_, envs) = store.create_project(&admin(), "P").await.unwrap();
        let env = envs[0].id.clone();
        let docs: Vec<FlagDoc> = (0..20).map(|i| flag(&format!("f{}", i % 5), i)).collect();
        let last = store.put_flags(&admin(), &env, &docs).await.unwrap();
        assert_eq!(last, 20);
        let feed: Vec<u64> = store
            .changes_since(&env, 0, 100)
            .await
            .unwrap()
            .iter()
            .map(|c| c.version)
            .collect();
        assert_eq!(feed, (1..=20).collect::<Vec<u64>>());
        assert_eq!(store.flag(&env, "f4").await.unwrap().version, 20);
        assert_eq!(
            store.flag(&env, "f4").await.unwrap().doc.rollout_percentage,
            Some(19)
        );
        // A batch that fails half way writes nothing.
        let missing = store.put_flags(&admin(), "no-such-env", &docs).await;
        assert!(matches!(missing, Err(StoreError::NotFound(_))));
        assert_eq!(store.changes_since(&env, 20, 100).await.unwrap().len(), 0);
    })
    .await;
}

/// Applies the migrations before `version` only, as a database from an older release has them.
async fn migrate_before(backend: Backend, url: &str, version: i64) {
    sqlx::any::install_default_drivers();
    let dir = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(dir);
    let mut migrator = sqlx::migrate::Migrator::new(path).await.unwrap();
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version < version)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    migrator.run(&pool).await.unwrap();
    pool.close().await;
}

#[tokio::test]
async fn emails_are_unique_regardless_of_case_and_old_duplicates_are_set_aside() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = fresh(backend).await;
        // A database from before emails were unique regardless of case, holding a group of
        // three that differ only in case (the oldest created second), and someone else.
        migrate_before(backend, &db.url, 7).await;
        let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
        let rows = [
            (
                "00000000-0000-4000-8000-000000000002",
                "Admin@Example.com",
                2000,
            ),
            (
                "00000000-0000-4000-8000-000000000001",
                "admin@example.com",
                1000,
            ),
            (
                "00000000-0000-4000-8000-000000000003",
                "ADMIN@EXAMPLE.COM",
                2000,
            ),
            (
                "00000000-0000-4000-8000-000000000004",
                "other@example.com",
                500,
            ),
        ];
        for (id, email, created) in rows {
            sqlx::query("INSERT INTO users (id, email, name, password_hash, is_admin, created_at) VALUES ($1, $2, $3, 'hash', 0, $4)")
                .bind(id)
                .bind(email)
                .bind(email)
                .bind(created)
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, 0, 9999999999999)")
                .bind(format!("session-of-{id}"))
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;

        let store = Store::open(&db.url, 5, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e:?}"));
        let outcome = tokio::spawn({
            let store = store.clone();
            async move {
                let users = store.users().await.unwrap();
                let email_of = |id: &str| users.iter().find(|u| u.id == id).unwrap().email.clone();
                // The oldest keeps its email (and signs in); the later ones are renamed.
                assert_eq!(
                    email_of("00000000-0000-4000-8000-000000000001"),
                    "admin@example.com"
                );
                assert_eq!(
                    email_of("00000000-0000-4000-8000-000000000002"),
                    "Admin@Example.com#duplicate-00000000-0000-4000-8000-000000000002"
                );
                assert_eq!(
                    email_of("00000000-0000-4000-8000-000000000003"),
                    "ADMIN@EXAMPLE.COM#duplicate-00000000-0000-4000-8000-000000000003"
                );
                assert_eq!(
                    email_of("00000000-0000-4000-8000-000000000004"),
                    "other@example.com"
                );
                let (user, hash) = store
                    .user_for_login("ADMIN@example.COM")
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(user.id, "00000000-0000-4000-8000-000000000001");
                assert_eq!(hash.as_deref(), Some("hash"));
                // The renamed ones cannot sign in (no password) and their sessions are gone.
                for id in [
                    "00000000-0000-4000-8000-000000000002",
                    "00000000-0000-4000-8000-000000000003",
                ] {
                    assert_eq!(store.password_hash(id).await.unwrap(), None);
                    assert_eq!(
                        store
                            .session_user(&format!("session-of-{id}"))
                            .await
                            .unwrap(),
                        None
                    );
                }
                assert!(
                    store
                        .session_user("session-of-00000000-0000-4000-8000-000000000001")
                        .await
                        .unwrap()
                        .is_some()
                );
                let audit = store
                    .audit(&checkgate_control::store::AuditFilter {
                        limit: 100,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                let renames: Vec<_> = audit
                    .iter()
                    .filter(|e| e.action == "user.email_deduplicate")
                    .collect();
                assert_eq!(renames.len(), 2, "{audit:?}");
                assert!(renames.iter().all(|e| e.actor_kind == "system"));

                // From now on a user whose email differs only in case is refused.
                for email in ["ADMIN@example.com", "Other@Example.COM"] {
                    let err = store
                        .create_user(&Actor::system(), email, "Twin", "hash", false)
                        .await
                        .unwrap_err();
                    assert!(matches!(err, StoreError::Conflict(_)), "{email}: {err:?}");
                }
                store
                    .create_user(&Actor::system(), "new@example.com", "New", "hash", false)
                    .await
                    .unwrap();
            }
        })
        .await;
        store.close().await;
        db.remove().await;
        if let Err(panic) = outcome {
            panic!("on {backend:?}: {panic}");
        }
    }
}

/// A flag holding one Unicode `^\w+$` (161 KiB of DFA).
fn word_flag(key: &str) -> CompiledFlag {
    compile_flag(
        serde_json::from_value(
            serde_json::json!({"key": key, "is_enabled": true, "rules": [
                {"attribute": "name", "operator": "regex", "values": ["^\\w+$"], "variant": true}
            ]}),
        )
        .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_automaton_cap_holds_against_concurrent_writers_and_counts_rows_written_before_it() {
    on_both(|store, url| async move {
        let (_, envs) = store.create_project(&admin(), "P").await.unwrap();
        let env: Arc<str> = envs[0].id.as_str().into();
        let one = word_flag("probe").automaton_bytes() as u64;
        assert!(one > 100 << 10);
        // Room for two such flags, not three.
        let cap = 2 * one + one / 2;

        // Four writers race, each adding a flag that fits alone: exactly two get in.
        let mut writers = tokio::task::JoinSet::new();
        for w in 0..4 {
            let (store, env) = (store.clone(), env.clone());
            writers.spawn(async move {
                store
                    .put_flag_within(&admin(), &env, &word_flag(&format!("w{w}")), None, cap)
                    .await
                    .map(|(f, _)| f.key)
            });
        }
        let mut won = Vec::new();
        while let Some(outcome) = writers.join_next().await {
            match outcome.unwrap() {
                Ok(key) => won.push(key),
                Err(StoreError::AutomatonCap { total, cap: c }) => {
                    assert_eq!((total, c), (3 * one, cap));
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(won.len(), 2, "{won:?}");

        // A row written before automaton_bytes existed holds NULL; a capped write measures it.
        store
            .delete_flag(&admin(), &env, &won[0], None)
            .await
            .unwrap();
        let old = word_flag("old");
        store
            .put_flag(&admin(), &env, old.doc(), None)
            .await
            .unwrap();
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE flags SET automaton_bytes = NULL WHERE key = 'old'")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let refused = store
            .put_flag_within(&admin(), &env, &word_flag("new"), None, cap)
            .await;
        assert!(
            matches!(refused, Err(StoreError::AutomatonCap { total, .. }) if total == 3 * one),
            "{refused:?}"
        );
        // Rewriting a flag with what it held already passes, even over the cap.
        store
            .put_flag_within(&admin(), &env, &old, None, one)
            .await
            .unwrap();
    })
    .await;
}

/// The environment's head (0 once it is gone), its change rows after `after` as
/// `(version, kind)`, and how many audit rows it has.
async fn feed_state(
    store: &Store,
    env: &str,
    after: u64,
) -> (u64, Vec<(u64, &'static str)>, usize) {
    let head = match store.environment(env).await {
        Ok(e) => e.version,
        Err(StoreError::NotFound(_)) => 0,
        Err(e) => panic!("{e:?}"),
    };
    let changes = store
        .changes_since(env, after, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.version, c.kind.unwrap().as_str()))
        .collect();
    let audited = store.audit_for_environment(env, 1000).await.unwrap().len();
    (head, changes, audited)
}

/// Runs one write and checks what it left: the head moved by one per change, the change rows
/// are the next versions without a gap with the given kinds, and the newest audit rows of the
/// environment are the given actions (none for a write audited for its project).
async fn wrote<T: std::fmt::Debug>(
    store: &Store,
    env: &str,
    write: impl Future<Output = Result<T, StoreError>>,
    kinds: &[&str],
    actions: &[&str],
) -> T {
    let (head, _, audited) = feed_state(store, env, 0).await;
    let done = write.await.unwrap();
    let (new_head, changes, new_audited) = feed_state(store, env, head).await;
    let expected: Vec<(u64, &str)> = (head + 1..).zip(kinds.iter().copied()).collect();
    assert_eq!(changes, expected, "the change rows of {done:?}");
    if kinds != ["environment_deleted"] {
        assert_eq!(
            new_head,
            head + kinds.len() as u64,
            "the head after {done:?}"
        );
    }
    assert_eq!(
        new_audited - audited,
        actions.len(),
        "audit rows of {done:?}"
    );
    let newest: Vec<String> = store
        .audit_for_environment(env, actions.len() as u32)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|(action, _, _, _)| action)
        .collect();
    assert_eq!(newest, actions, "the audit rows of {done:?}");
    done
}

/// Runs one write that must be refused and checks that it left nothing: no version taken, no
/// change row, no audit row.
async fn refused<T: std::fmt::Debug>(
    store: &Store,
    env: &str,
    write: impl Future<Output = Result<T, StoreError>>,
) -> StoreError {
    let before = feed_state(store, env, 0).await;
    let err = write.await.unwrap_err();
    assert_eq!(feed_state(store, env, 0).await, before, "after {err:?}");
    err
}

#[tokio::test]
async fn every_writer_takes_the_next_version_with_one_change_row_and_its_audit_row() {
    use checkgate_control::store::KeyKind;
    use checkgate_core::SegmentDoc;
    on_both(|store, _| async move {
        let admin = &admin();
        let (project, envs) = store.create_project(admin, "P").await.unwrap();
        let (env, other) = (envs[1].id.as_str(), envs[2].id.as_str());
        let s = &store;
        let segment: SegmentDoc =
            serde_json::from_value(serde_json::json!({"key": "beta", "rules": []})).unwrap();
        let user: FlagDoc = serde_json::from_value(serde_json::json!({
            "key": "uses-beta", "is_enabled": true,
            "rules": [{
                "attribute": "plan", "operator": "equals", "values": ["pro"], "segment_key": "beta"
            }]
        }))
        .unwrap();

        // Flags: create, update, a batch, delete.
        wrote(
            s,
            env,
            s.put_flag(admin, env, &flag("a", 10), None),
            &["flag_upsert"],
            &["flag.create"],
        )
        .await;
        wrote(
            s,
            env,
            s.put_flag(admin, env, &flag("a", 20), Some(1)),
            &["flag_upsert"],
            &["flag.update"],
        )
        .await;
        let batch = [flag("b", 1), flag("a", 30)];
        let put = s.put_flags(admin, env, &batch);
        let kinds = ["flag_upsert", "flag_upsert"];
        assert_eq!(
            wrote(s, env, put, &kinds, &["flag.create", "flag.update"]).await,
            4
        );
        wrote(
            s,
            env,
            s.delete_flag(admin, env, "b", Some(3)),
            &["flag_delete"],
            &["flag.delete"],
        )
        .await;

        // Segments: create, update, a refused delete, delete.
        wrote(
            s,
            env,
            s.put_segment(admin, env, &segment, Some(0)),
            &["segment_upsert"],
            &["segment.create"],
        )
        .await;
        wrote(
            s,
            env,
            s.put_segment(admin, env, &segment, Some(6)),
            &["segment_upsert"],
            &["segment.update"],
        )
        .await;
        let taken = refused(s, env, s.put_segment(admin, env, &segment, Some(0))).await;
        assert!(matches!(taken, StoreError::Conflict(_)), "{taken:?}");
        wrote(
            s,
            env,
            s.put_flag(admin, env, &user, None),
            &["flag_upsert"],
            &["flag.create"],
        )
        .await;
        let used = refused(s, env, s.delete_segment(admin, env, "beta", None)).await;
        assert!(matches!(used, StoreError::Refused(_)), "{used:?}");
        wrote(
            s,
            env,
            s.delete_flag(admin, env, "uses-beta", None),
            &["flag_delete"],
            &["flag.delete"],
        )
        .await;
        wrote(
            s,
            env,
            s.delete_segment(admin, env, "beta", Some(7)),
            &["segment_delete"],
            &["segment.delete"],
        )
        .await;

        // Conditional writes that lose, and writes of what is not there.
        let stale = refused(s, env, s.put_flag(admin, env, &flag("a", 1), Some(1))).await;
        assert!(
            matches!(stale, StoreError::VersionMismatch { .. }),
            "{stale:?}"
        );
        let gone = refused(s, env, s.delete_flag(admin, env, "b", None)).await;
        assert!(matches!(gone, StoreError::NotFound(_)), "{gone:?}");

        // SDK keys: create and revoke; revoking again is refused.
        let created = wrote(
            s,
            env,
            s.create_sdk_key(admin, env, "k", KeyKind::Server),
            &["sdk_key_upsert"],
            &["sdk_key.create"],
        )
        .await;
        assert_eq!(created.version, feed_state(s, env, 0).await.0);
        let revoked = wrote(
            s,
            env,
            s.revoke_sdk_key(admin, &project.id, &created.key.id),
            &["sdk_key_revoke"],
            &["sdk_key.revoke"],
        )
        .await;
        assert_eq!(
            revoked,
            feed_state(s, env, 0).await.0,
            "a revocation returns its version"
        );
        let key = created.key;
        let again = refused(s, env, s.revoke_sdk_key(admin, &project.id, &key.id)).await;
        assert!(matches!(again, StoreError::NotFound(_)), "{again:?}");

        // Settings: in the environment's project only.
        let edit = s.edit_environment_settings(admin, &project.id, env, |settings| {
            settings.client_keys_read_rules = true;
        });
        let version = wrote(
            s,
            env,
            edit,
            &["settings_update"],
            &["environment.settings"],
        )
        .await;
        assert_eq!(store.environment(env).await.unwrap().version, version);
        assert!(store.environment(env).await.unwrap().client_keys_read_rules);
        let elsewhere = s.edit_environment_settings(admin, "no-such-project", env, |_| {});
        let elsewhere = refused(s, env, elsewhere).await;
        assert!(
            matches!(elsewhere, StoreError::NotFound(_)),
            "{elsewhere:?}"
        );

        // Environments: the default cannot go; another can, with its final change row.
        let default = envs[0].id.as_str();
        let refusal = s.delete_environment(admin, &project.id, default);
        let refusal = refused(s, default, refusal).await;
        assert!(matches!(refusal, StoreError::Refused(_)), "{refusal:?}");
        let (before, _, _) = feed_state(s, env, 0).await;
        let deleted = wrote(
            s,
            env,
            s.delete_environment(admin, &project.id, env),
            &["environment_deleted"],
            &["environment.delete"],
        )
        .await;
        assert_eq!(deleted, before + 1, "a deletion returns its final version");

        // Deleting the project: a final change row in each environment left, audited once,
        // for the project.
        let (head, _, _) = feed_state(s, other, 0).await;
        s.delete_project(admin, &project.id).await.unwrap();
        for gone in [default, other] {
            let (_, changes, _) = feed_state(s, gone, 0).await;
            let last = *changes.last().unwrap();
            assert_eq!(last.1, "environment_deleted");
            if gone == other {
                assert_eq!(last.0, head + 1);
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires_and_each_new_holder_a_higher_token() {
    on_both(|store, _| async move {
        let first = store
            .acquire_lease("relay", "a", 60_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store.acquire_lease("relay", "b", 60_000).await.unwrap(),
            None,
            "held by a"
        );
        assert!(
            store
                .renew_lease("relay", "a", first, 60_000)
                .await
                .unwrap()
        );
        assert!(
            !store
                .renew_lease("relay", "b", first, 60_000)
                .await
                .unwrap(),
            "only the holder renews"
        );
        // Expired (a stopped renewing): b takes it with a higher token, and a can no longer
        // renew with its own.
        assert!(store.renew_lease("relay", "a", first, -1).await.unwrap());
        let second = store
            .acquire_lease("relay", "b", 60_000)
            .await
            .unwrap()
            .unwrap();
        assert!(second.token > first.token);
        assert!(
            !store
                .renew_lease("relay", "a", first, 60_000)
                .await
                .unwrap()
        );
        // Given up: taken at once.
        store.release_lease("relay", "b", second).await.unwrap();
        let third = store
            .acquire_lease("relay", "a", 60_000)
            .await
            .unwrap()
            .unwrap();
        assert!(third.token > second.token);
        // Another lease is another name.
        assert!(
            store
                .acquire_lease("other", "b", 60_000)
                .await
                .unwrap()
                .is_some()
        );
    })
    .await;
}

#[tokio::test]
async fn login_windows_are_charged_refused_and_purged_alike() {
    use checkgate_control::store::login_throttle::Charge;
    on_both(|store, _| async move {
        let now = 1_800_000_000_000;
        let window = 900_000;
        let charge = |key: &'static str| Charge {
            scope: "pair",
            key,
            limit: Some(2),
        };
        for _ in 0..2 {
            assert_eq!(
                store
                    .charge_login(&[charge("k")], now, window)
                    .await
                    .unwrap(),
                Ok(())
            );
        }
        assert_eq!(
            store
                .charge_login(&[charge("k")], now + 1, window)
                .await
                .unwrap(),
            Err(900),
            "refused until the window ends"
        );
        assert_eq!(
            store
                .charge_login(&[charge("k")], now + window, window)
                .await
                .unwrap(),
            Ok(()),
            "a new window"
        );
        store
            .login_succeeded(&[], &[], Some("known-pair"), now)
            .await
            .unwrap();
        assert!(store.login_known("known-pair").await.unwrap());
        // The window of `now + window` stays; the pair goes once forgotten.
        assert_eq!(
            store.purge_login_throttle(now + 1, now - 1).await.unwrap(),
            0
        );
        assert_eq!(
            store
                .purge_login_throttle(now + window + 1, now + 1)
                .await
                .unwrap(),
            2
        );
        assert!(!store.login_known("known-pair").await.unwrap());
    })
    .await;
}

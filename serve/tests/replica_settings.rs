//! An environment's settings in the replica: parsed once as they arrive (by snapshot, by
//! change, from the snapshot file), read as a field, and written back to the snapshot file with
//! the fields this version does not know.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use checkgate_protocol::EnvironmentSettings;
use checkgate_protocol::frame::{ChangeRecord, Changes, EnvironmentInfo, Item, Snapshot};
use checkgate_serve::replica::{Applied, Replica, Source};

const ENV: &str = "env-1";
const EPOCH: u64 = 7;

fn info() -> EnvironmentInfo {
    EnvironmentInfo {
        env_id: ENV.into(),
        project_id: "p".into(),
        slug: "production".into(),
        name: "Production".into(),
    }
}

fn snapshot(settings_json: &str) -> Snapshot {
    Snapshot {
        env_id: ENV.into(),
        epoch: EPOCH,
        version: 3,
        flags: vec![],
        segments: vec![],
        sdk_keys: vec![],
        settings_json: settings_json.into(),
    }
}

fn settings_update(version: u64, json: &str) -> Changes {
    Changes {
        env_id: ENV.into(),
        epoch: EPOCH,
        changes: vec![ChangeRecord {
            version,
            item: Item::SettingsUpdate { json: json.into() },
        }],
    }
}

#[test]
fn settings_arrive_parsed_by_snapshot_and_by_change() {
    let replica = Replica::new();
    assert!(!replica.client_keys_read_rules(ENV), "not held: off");
    assert_eq!(replica.settings(ENV), None);

    replica.install(
        &snapshot(r#"{"client_keys_read_rules":true}"#),
        info(),
        Source::Upstream,
    );
    assert!(replica.client_keys_read_rules(ENV));

    let applied = replica.apply(&settings_update(4, r#"{"client_keys_read_rules":false}"#));
    assert_eq!(applied, Applied::InOrder { applied: 1 });
    assert!(!replica.client_keys_read_rules(ENV));

    replica.apply(&settings_update(5, r#"{"client_keys_read_rules":true}"#));
    assert!(replica.client_keys_read_rules(ENV));
    assert!(replica.settings(ENV).unwrap().client_keys_read_rules);
}

#[test]
fn unreadable_settings_count_as_the_defaults() {
    for text in ["", "not json", "[]", r#"{"client_keys_read_rules":"yes"}"#] {
        let replica = Replica::new();
        replica.install(&snapshot(text), info(), Source::Upstream);
        assert!(!replica.client_keys_read_rules(ENV), "{text:?}");
        assert_eq!(
            replica.settings(ENV),
            Some(EnvironmentSettings::default()),
            "{text:?}"
        );
    }
}

#[test]
fn the_snapshot_file_keeps_fields_this_version_does_not_know() {
    // What the current code writes, and what a newer control plane might add.
    let text = r#"{"client_keys_read_rules":true,"stream_heartbeat_seconds":15}"#;
    let replica = Replica::new();
    replica.install(&snapshot(text), info(), Source::Upstream);
    let saved = replica.persisted();
    let written = &saved.environments[0].snapshot.settings_json;
    let value: serde_json::Value = serde_json::from_str(written).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"client_keys_read_rules": true, "stream_heartbeat_seconds": 15})
    );

    // Read back at boot, they mean the same.
    let restarted = Replica::new();
    restarted.load(&saved);
    assert!(restarted.client_keys_read_rules(ENV));
    assert_eq!(
        restarted.settings(ENV).unwrap().unknown()["stream_heartbeat_seconds"],
        15
    );

    // The settings of a file written before they were typed read the same way.
    let old = r#"{"client_keys_read_rules":false}"#;
    let replica = Replica::new();
    replica.install(&snapshot(old), info(), Source::SnapshotFile);
    assert_eq!(
        replica.persisted().environments[0].snapshot.settings_json,
        old
    );
}

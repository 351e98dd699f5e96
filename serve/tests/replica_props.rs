//! The replica under duplicated, reordered and dropped feed frames: whatever arrives, and in
//! whatever order, the environment it shows is always exactly the control plane's at some
//! version that never goes back; and once a snapshot fills what was dropped, it equals the
//! result of applying every change in order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use checkgate_protocol::frame::{
    ChangeRecord, Changes, EnvironmentInfo, Item, SdkKeyKind, SdkKeyRecord, Snapshot,
};
use checkgate_serve::replica::PersistedEnv;
use checkgate_serve::replica::{Applied, Replica, Source};
use proptest::prelude::*;

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

fn empty(version: u64) -> Snapshot {
    Snapshot {
        env_id: ENV.into(),
        epoch: EPOCH,
        version,
        flags: vec![],
        segments: vec![],
        sdk_keys: vec![],
        settings_json: "{}".into(),
    }
}

/// One generated change, before it gets its version.
#[derive(Debug, Clone)]
enum Op {
    Upsert(u8, u8),
    Delete(u8),
    AddKey(u8),
    RevokeKey(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, 0u8..101).prop_map(|(k, r)| Op::Upsert(k, r)),
        2 => (0u8..4).prop_map(Op::Delete),
        1 => (0u8..3).prop_map(Op::AddKey),
        1 => (0u8..3).prop_map(Op::RevokeKey),
    ]
}

fn record(version: u64, op: &Op) -> ChangeRecord {
    let item = match op {
        Op::Upsert(k, rollout) => Item::FlagUpsert {
            key: format!("f{k}"),
            json: format!(r#"{{"key":"f{k}","is_enabled":true,"rollout_percentage":{rollout}}}"#),
        },
        Op::Delete(k) => Item::FlagDelete {
            key: format!("f{k}"),
        },
        Op::AddKey(k) => Item::SdkKeyUpsert(SdkKeyRecord {
            id: format!("k{k}"),
            version,
            kind: SdkKeyKind::Server,
            hash: [*k; 32],
            prefix: format!("cg_srv_{k}"),
        }),
        Op::RevokeKey(k) => Item::SdkKeyRevoke {
            id: format!("k{k}"),
        },
    };
    ChangeRecord { version, item }
}

fn frame(changes: Vec<ChangeRecord>) -> Changes {
    Changes {
        env_id: ENV.into(),
        epoch: EPOCH,
        changes,
    }
}

/// The environment as persisted, without the time it was taken.
fn content(replica: &Replica) -> Option<PersistedEnv> {
    let mut state = replica.persisted();
    state.environments.pop().map(|mut env| {
        env.snapshot.sdk_keys.sort_by(|a, b| a.id.cmp(&b.id));
        // Key records carry the version they were persisted at; the content is the rest.
        for key in &mut env.snapshot.sdk_keys {
            key.version = 0;
        }
        env
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_delivery_shows_only_states_of_the_control_plane_and_converges(
        ops in proptest::collection::vec(op(), 1..25),
        deliveries in proptest::collection::vec((any::<prop::sample::Index>(), 1usize..4), 0..60),
    ) {
        let changes: Vec<ChangeRecord> =
            ops.iter().enumerate().map(|(i, op)| record(i as u64 + 1, op)).collect();

        // The control plane's state after each version, by applying in order.
        let truth = Replica::new();
        truth.install(&empty(0), info(), Source::Upstream);
        let mut states = vec![content(&truth)];
        for change in &changes {
            let applied = truth.apply(&frame(vec![change.clone()]));
            prop_assert_eq!(applied, Applied::InOrder { applied: 1 });
            states.push(content(&truth));
        }

        // The edge gets runs of consecutive changes, duplicated, reordered, some never.
        let edge = Replica::new();
        edge.install(&empty(0), info(), Source::Upstream);
        let mut seen = 0;
        for (start, len) in deliveries {
            let from = start.index(changes.len());
            let batch: Vec<ChangeRecord> =
                changes[from..(from + len).min(changes.len())].to_vec();
            let outcome = edge.apply(&frame(batch));
            prop_assert!(
                matches!(outcome, Applied::InOrder { .. } | Applied::Gap { .. }),
                "{outcome:?}"
            );
            let (_, version) = edge.version(ENV).unwrap();
            prop_assert!(version >= seen, "went back from {seen} to {version}");
            seen = version;
            prop_assert_eq!(&content(&edge), &states[version as usize], "at version {}", version);
        }

        // What was dropped comes back as a snapshot of the head (as the control plane answers
        // a resync); the edge then equals in-order application.
        let head = changes.len() as u64;
        if seen < head {
            let snapshot = truth.persisted().environments.remove(0).snapshot;
            edge.install(&snapshot, info(), Source::Upstream);
        }
        prop_assert_eq!(content(&edge), content(&truth));
        prop_assert_eq!(edge.digest(ENV), truth.digest(ENV));
        // Late duplicates after that change nothing.
        let replayed = edge.apply(&frame(changes.clone()));
        prop_assert_eq!(replayed, Applied::InOrder { applied: 0 });
        prop_assert_eq!(content(&edge), content(&truth));
    }
}

#[test]
fn another_epoch_or_an_unknown_environment_needs_a_snapshot() {
    let edge = Replica::new();
    let change = record(1, &Op::Upsert(0, 50));
    assert_eq!(
        edge.apply(&frame(vec![change.clone()])),
        Applied::NeedsSnapshot
    );
    edge.install(&empty(0), info(), Source::Upstream);
    let mut other = frame(vec![change]);
    other.epoch = EPOCH + 1;
    assert_eq!(edge.apply(&other), Applied::NeedsSnapshot);
    assert_eq!(edge.version(ENV), Some((EPOCH, 0)));
}

#[test]
fn sdk_keys_are_found_by_hash_until_revoked_and_a_deletion_forgets_everything() {
    let edge = Replica::new();
    edge.install(&empty(0), info(), Source::Upstream);
    edge.apply(&frame(vec![
        record(1, &Op::AddKey(1)),
        record(2, &Op::Upsert(0, 10)),
    ]));
    assert_eq!(edge.key(&[1; 32]).unwrap().env_id, ENV);
    edge.apply(&frame(vec![record(3, &Op::RevokeKey(1))]));
    assert!(edge.key(&[1; 32]).is_none());
    edge.apply(&frame(vec![record(4, &Op::AddKey(2))]));
    let deleted = edge.apply(&frame(vec![ChangeRecord {
        version: 5,
        item: Item::EnvironmentDeleted,
    }]));
    assert_eq!(deleted, Applied::Deleted);
    assert!(edge.key(&[2; 32]).is_none());
    assert!(edge.environment(ENV).is_none());
    assert!(edge.environment_ids().is_empty());
}

/// A digest is always of the version it is given with, while changes apply on another thread:
/// the digest reads its items outside the replica's lock, so a change landing mid-read must
/// not produce the items of one version under the number of another (which the control plane
/// would take for divergence, and resync).
#[test]
fn a_digest_read_while_changes_apply_is_of_the_version_it_names() {
    let ops: Vec<Op> = (0..2_000u32)
        .map(|i| Op::Upsert((i % 40) as u8, (i % 101) as u8))
        .collect();
    let changes: Vec<ChangeRecord> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| record(i as u64 + 1, op))
        .collect();
    let truth = Replica::new();
    truth.install(&empty(0), info(), Source::Upstream);
    let mut digests = vec![truth.digest(ENV).unwrap().2];
    for change in &changes {
        truth.apply(&frame(vec![change.clone()]));
        digests.push(truth.digest(ENV).unwrap().2);
    }

    let edge = Replica::new();
    edge.install(&empty(0), info(), Source::Upstream);
    let last = changes.len() as u64;
    let checked = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut checked = 0u64;
            loop {
                if let Some((epoch, version, digest)) = edge.digest(ENV) {
                    assert_eq!(epoch, EPOCH);
                    assert_eq!(digest, digests[version as usize], "at version {version}");
                    checked += 1;
                    if version == last {
                        return checked;
                    }
                }
            }
        });
        for change in &changes {
            edge.apply(&frame(vec![change.clone()]));
        }
        reader.join().unwrap()
    });
    assert!(checked > 0);
}

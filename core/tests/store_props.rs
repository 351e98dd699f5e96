//! The FlagStore converges: any duplication and reordering of a change sequence ends in the
//! same store as applying it in order, and that store holds, for every key, the change with the
//! highest version.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use checkgate_core::{Applied, Change, EntryState, Environment, ItemKind};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Flag { key: usize, rollout: u32 },
    BrokenFlag { key: usize },
    DeleteFlag { key: usize },
    Segment { key: usize, included: usize },
    DeleteSegment { key: usize },
}

const FLAG_KEYS: [&str; 4] = ["alpha", "beta", "gamma", "delta"];
const SEGMENT_KEYS: [&str; 2] = ["beta-users", "staff"];

fn change(op: &Op, version: u64) -> Change {
    match *op {
        Op::Flag { key, rollout } => {
            let k = FLAG_KEYS[key];
            let json =
                format!(r#"{{"key":"{k}","is_enabled":true,"rollout_percentage":{rollout}}}"#);
            Change::flag_json(k, version, &json)
        }
        Op::BrokenFlag { key } => {
            let k = FLAG_KEYS[key];
            Change::flag_json(
                k,
                version,
                &format!(r#"{{"key":"{k}","is_enabled":true,"rollout_percentage":500}}"#),
            )
        }
        Op::DeleteFlag { key } => Change::Delete {
            kind: ItemKind::Flag,
            key: FLAG_KEYS[key].into(),
            version,
        },
        Op::Segment { key, included } => {
            let k = SEGMENT_KEYS[key];
            Change::segment_json(
                k,
                version,
                &format!(r#"{{"key":"{k}","included":["user-{included}"]}}"#),
            )
        }
        Op::DeleteSegment { key } => Change::Delete {
            kind: ItemKind::Segment,
            key: SEGMENT_KEYS[key].into(),
            version,
        },
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, 0..=100u32).prop_map(|(key, rollout)| Op::Flag { key, rollout }),
        1 => (0..4usize).prop_map(|key| Op::BrokenFlag { key }),
        2 => (0..4usize).prop_map(|key| Op::DeleteFlag { key }),
        2 => (0..2usize, 0..5usize).prop_map(|(key, included)| Op::Segment { key, included }),
        1 => (0..2usize).prop_map(|key| Op::DeleteSegment { key }),
    ]
}

/// A sequence, and a delivery of it: every change at least once, in any order, some repeated.
fn sequence_and_delivery() -> impl Strategy<Value = (Vec<Op>, Vec<usize>)> {
    proptest::collection::vec(op(), 1..40).prop_flat_map(|ops| {
        let n = ops.len();
        let extra = proptest::collection::vec(0..n, 0..n * 2);
        (Just(ops), extra).prop_flat_map(move |(ops, extra)| {
            let mut delivery: Vec<usize> = (0..n).chain(extra).collect();
            delivery.sort_unstable();
            (Just(ops), Just(delivery).prop_shuffle())
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn duplicates_and_reordering_converge((ops, delivery) in sequence_and_delivery()) {
        let in_order = Environment::new();
        for (i, op) in ops.iter().enumerate() {
            prop_assert_eq!(in_order.apply(change(op, i as u64 + 1)), Applied::Changed);
        }
        let shuffled = Environment::new();
        for &i in &delivery {
            shuffled.apply(change(&ops[i], i as u64 + 1));
        }
        prop_assert_eq!(shuffled.dump(), in_order.dump());

        // The store holds, for each key, the last change made to it.
        let mut last: BTreeMap<(ItemKind, String), (u64, &Op)> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            let (kind, key) = match *op {
                Op::Flag { key, .. } | Op::BrokenFlag { key } | Op::DeleteFlag { key } => (ItemKind::Flag, FLAG_KEYS[key]),
                Op::Segment { key, .. } | Op::DeleteSegment { key } => (ItemKind::Segment, SEGMENT_KEYS[key]),
            };
            last.insert((kind, key.to_owned()), (i as u64 + 1, op));
        }
        let dump = in_order.dump();
        prop_assert_eq!(dump.len(), last.len());
        for (kind, key, version, state) in dump {
            let (want_version, op) = last[&(kind, key.clone())];
            prop_assert_eq!(version, want_version);
            let ok = match (op, &state) {
                (Op::DeleteFlag { .. } | Op::DeleteSegment { .. }, EntryState::Deleted) => true,
                (Op::BrokenFlag { .. }, EntryState::Invalid(e)) => e.starts_with("rollout_percentage"),
                (Op::Flag { rollout, .. }, EntryState::Live(json)) => json.contains(&format!("\"rollout_percentage\":{rollout}")),
                (Op::Segment { included, .. }, EntryState::Live(json)) => json.contains(&format!("user-{included}")),
                _ => false,
            };
            prop_assert!(ok, "{key}: {op:?} left {state:?}");
        }
    }
}

#[test]
fn a_late_upsert_does_not_resurrect_a_deleted_flag() {
    let env = Environment::new();
    env.apply(change(&Op::DeleteFlag { key: 0 }, 5));
    assert_eq!(
        env.apply(change(
            &Op::Flag {
                key: 0,
                rollout: 10
            },
            4
        )),
        Applied::Stale
    );
    assert!(env.flag_for_eval("alpha").is_err());
    assert_eq!(
        env.apply(change(
            &Op::Flag {
                key: 0,
                rollout: 10
            },
            6
        )),
        Applied::Changed
    );
    assert!(env.flag_for_eval("alpha").is_ok());
}

#[test]
fn purge_drops_only_old_tombstones() {
    let env = Environment::new();
    env.apply(change(&Op::DeleteFlag { key: 0 }, 3));
    env.apply(change(&Op::DeleteFlag { key: 1 }, 7));
    env.apply(change(&Op::Flag { key: 2, rollout: 1 }, 2));
    env.purge_deleted(5);
    let keys: Vec<_> = env.dump().into_iter().map(|(_, k, v, _)| (k, v)).collect();
    assert_eq!(keys, [("beta".to_owned(), 7), ("gamma".to_owned(), 2)]);
}

#[test]
fn prerequisite_cycles_and_unknown_keys_are_reported() {
    let env = Environment::new();
    env.apply(Change::flag_json(
        "a",
        1,
        r#"{"key":"a","is_enabled":true,"prerequisites":[{"key":"b"}]}"#,
    ));
    let b = checkgate_core::compile_flag_json(
        r#"{"key":"b","is_enabled":true,"prerequisites":[{"key":"a"}]}"#,
    )
    .unwrap();
    let err = env.check_prerequisites(&b).unwrap_err();
    assert_eq!(
        err.to_string(),
        "prerequisites[0].key: prerequisite cycle: b → a → b"
    );
    let c = checkgate_core::compile_flag_json(
        r#"{"key":"c","is_enabled":true,"prerequisites":[{"key":"zzz"}]}"#,
    )
    .unwrap();
    assert_eq!(
        env.check_prerequisites(&c).unwrap_err().to_string(),
        "prerequisites[0].key: no flag \"zzz\" in this environment"
    );
}

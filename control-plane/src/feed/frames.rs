//! From the store's rows to feed frames: a consistent snapshot becomes a [`Snapshot`], change
//! rows become [`ChangeRecord`]s, and an environment's content its anti-entropy digest.

use checkgate_protocol::digest::{DigestItem, environment_digest};
use checkgate_protocol::frame::{
    ChangeRecord, EnvironmentInfo, Item, Record, SdkKeyKind, SdkKeyRecord, Snapshot,
};

use crate::store::{ChangeKind, ChangeRow, FeedEnvironment, FeedSdkKey, SnapshotData};

/// What the feed could not turn into a frame: stored data it does not understand.
#[derive(Debug, thiserror::Error)]
#[error("change {version} of environment {env}: {problem}")]
pub struct BadRow {
    pub env: String,
    pub version: u64,
    pub problem: String,
}

/// The environment as edges see it.
pub fn info(env: &FeedEnvironment) -> EnvironmentInfo {
    EnvironmentInfo {
        env_id: env.id.clone(),
        project_id: env.project_id.clone(),
        slug: env.slug.clone(),
        name: env.name.clone(),
    }
}

fn hash_bytes(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn kind(text: &str) -> Option<SdkKeyKind> {
    match text {
        "server" => Some(SdkKeyKind::Server),
        "client" => Some(SdkKeyKind::Client),
        _ => None,
    }
}

fn key_record(key: &FeedSdkKey, version: u64) -> Option<SdkKeyRecord> {
    Some(SdkKeyRecord {
        id: key.id.clone(),
        version,
        kind: kind(&key.kind)?,
        hash: hash_bytes(&key.hash)?,
        prefix: key.prefix.clone(),
    })
}

/// The snapshot frame of an environment. Its SDK keys carry the snapshot's version: the store
/// keeps no version per key, and any later change of a key has a higher one.
pub fn snapshot(data: &SnapshotData, epoch: u64) -> Result<Snapshot, BadRow> {
    let version = data.env.version;
    let records = |items: &[(String, u64, String)]| {
        items
            .iter()
            .map(|(key, version, json)| Record {
                key: key.clone(),
                version: *version,
                json: json.clone(),
            })
            .collect()
    };
    let sdk_keys = data
        .sdk_keys
        .iter()
        .map(|k| {
            key_record(k, version).ok_or_else(|| BadRow {
                env: data.env.id.clone(),
                version,
                problem: format!("SDK key {:?} has an unreadable kind or hash", k.id),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Snapshot {
        env_id: data.env.id.clone(),
        epoch,
        version,
        flags: records(&data.flags),
        segments: records(&data.segments),
        sdk_keys,
        settings_json: data.settings.clone(),
    })
}

/// The digest of a snapshot's content (see `checkgate_protocol::digest`).
pub fn digest(data: &SnapshotData) -> [u8; 32] {
    let flags = data
        .flags
        .iter()
        .map(|(k, v, _)| (DigestItem::Flag, k.as_str(), *v));
    let segments = data
        .segments
        .iter()
        .map(|(k, v, _)| (DigestItem::Segment, k.as_str(), *v));
    let keys = data
        .sdk_keys
        .iter()
        .map(|k| (DigestItem::SdkKey, k.id.as_str(), 0));
    environment_digest(flags.chain(segments).chain(keys))
}

/// One change row as a feed change.
pub fn change(row: &ChangeRow) -> Result<ChangeRecord, BadRow> {
    let bad = |problem: String| BadRow {
        env: row.environment_id.clone(),
        version: row.version,
        problem,
    };
    let kind = row.kind.as_ref().map_err(|e| bad(e.to_string()))?;
    let doc = || {
        row.doc
            .clone()
            .ok_or_else(|| bad(format!("{kind} without a document")))
    };
    let item = match kind {
        ChangeKind::FlagUpsert => Item::FlagUpsert {
            key: row.key.clone(),
            json: doc()?,
        },
        ChangeKind::FlagDelete => Item::FlagDelete {
            key: row.key.clone(),
        },
        ChangeKind::SegmentUpsert => Item::SegmentUpsert {
            key: row.key.clone(),
            json: doc()?,
        },
        ChangeKind::SegmentDelete => Item::SegmentDelete {
            key: row.key.clone(),
        },
        ChangeKind::SdkKeyUpsert => {
            #[derive(serde::Deserialize)]
            struct Stored {
                id: String,
                kind: String,
                hash: String,
                prefix: String,
            }
            let stored: Stored =
                serde_json::from_str(&doc()?).map_err(|e| bad(format!("SDK key record: {e}")))?;
            let key = FeedSdkKey {
                id: stored.id,
                kind: stored.kind,
                hash: stored.hash,
                prefix: stored.prefix,
            };
            Item::SdkKeyUpsert(
                key_record(&key, row.version)
                    .ok_or_else(|| bad("SDK key record: unreadable kind or hash".into()))?,
            )
        }
        ChangeKind::SdkKeyRevoke => Item::SdkKeyRevoke {
            id: row.key.clone(),
        },
        ChangeKind::SettingsUpdate => Item::SettingsUpdate { json: doc()? },
        ChangeKind::EnvironmentDeleted => Item::EnvironmentDeleted,
    };
    Ok(ChangeRecord {
        version: row.version,
        item,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn row(kind: &str, doc: Option<&str>) -> ChangeRow {
        ChangeRow {
            environment_id: "e".into(),
            version: 7,
            kind: kind.parse(),
            key: "k".into(),
            doc: doc.map(str::to_owned),
            at: 0,
        }
    }

    #[test]
    fn every_stored_kind_becomes_its_item() {
        let hash = "ab".repeat(32);
        let key = format!(r#"{{"id":"k","kind":"client","hash":"{hash}","prefix":"cg_cli_123"}}"#);
        let cases = [
            (
                row("flag_upsert", Some("{}")),
                Item::FlagUpsert {
                    key: "k".into(),
                    json: "{}".into(),
                },
            ),
            (
                row("flag_delete", None),
                Item::FlagDelete { key: "k".into() },
            ),
            (
                row("segment_upsert", Some("{}")),
                Item::SegmentUpsert {
                    key: "k".into(),
                    json: "{}".into(),
                },
            ),
            (
                row("segment_delete", None),
                Item::SegmentDelete { key: "k".into() },
            ),
            (
                row("sdk_key_revoke", None),
                Item::SdkKeyRevoke { id: "k".into() },
            ),
            (row("environment_deleted", None), Item::EnvironmentDeleted),
            (
                row("settings_update", Some("{}")),
                Item::SettingsUpdate { json: "{}".into() },
            ),
            (
                row("sdk_key_upsert", Some(&key)),
                Item::SdkKeyUpsert(SdkKeyRecord {
                    id: "k".into(),
                    version: 7,
                    kind: SdkKeyKind::Client,
                    hash: [0xab; 32],
                    prefix: "cg_cli_123".into(),
                }),
            ),
        ];
        let covered: Vec<ChangeKind> = cases.iter().map(|(r, _)| r.kind.clone().unwrap()).collect();
        assert!(ChangeKind::ALL.iter().all(|k| covered.contains(k)));
        for (row, item) in cases {
            assert_eq!(change(&row).unwrap(), ChangeRecord { version: 7, item });
        }
        for bad in [
            row("flag_upsert", None),
            row("teleport", None),
            row("sdk_key_upsert", Some("{}")),
            row(
                "sdk_key_upsert",
                Some(r#"{"id":"k","kind":"root","hash":"00","prefix":"x"}"#),
            ),
        ] {
            let err = change(&bad).unwrap_err();
            assert!(
                err.to_string().starts_with("change 7 of environment e:"),
                "{err}"
            );
        }
    }
}

//! What each environment's regexes hold. Every flag and segment row records the bytes of DFA
//! its regexes compile to (`automaton_bytes`); a capped write adds up the environment's rows in
//! its own transaction, after it has taken the environment's write lock (`NextVersion::take`), so
//! two writers can never both pass the cap, and a write is checked against every write
//! committed before it — not against a replica that may lag.

use checkgate_core::{compile_flag_json, compile_segment_json};

use super::StoreError;
use super::items::Table;

/// The automaton a write brings, and the cap its environment's total must stay under (none for
/// the writes that are not checked: imports and tests).
#[derive(Debug, Clone, Copy)]
pub(super) struct Automaton {
    pub(super) bytes: u64,
    pub(super) cap: Option<u64>,
}

impl Automaton {
    /// Refuses the write of `key` to `table` if it would take the environment past the cap.
    /// Must run after `NextVersion::take`, in the same transaction.
    pub(super) async fn check(
        self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        env: &str,
        table: Table,
        key: &str,
    ) -> Result<(), StoreError> {
        match self.cap {
            Some(cap) => check_cap(tx, env, table, key, self.bytes, cap).await,
            None => Ok(()),
        }
    }
}

impl Table {
    /// Bytes of DFA a stored document compiles to. One that does not compile holds none: an
    /// edge keeps it as an error.
    pub(super) fn measure(self, json: &str) -> u64 {
        let bytes = match self {
            Self::Flags => compile_flag_json(json).map_or(0, |f| f.automaton_bytes()),
            Self::Segments => compile_segment_json(json).map_or(0, |s| s.automaton_bytes()),
        };
        bytes as u64
    }
}

/// Measures the environment's rows that were written before `automaton_bytes` existed.
async fn measure_unmeasured(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    env: &str,
) -> Result<(), StoreError> {
    for table in [Table::Flags, Table::Segments] {
        let rows: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT key, doc FROM {} WHERE environment_id = $1 AND automaton_bytes IS NULL",
            table.name()
        ))
        .bind(env)
        .fetch_all(&mut **tx)
        .await?;
        for (key, doc) in rows {
            sqlx::query(&format!(
                "UPDATE {} SET automaton_bytes = $3 WHERE environment_id = $1 AND key = $2",
                table.name()
            ))
            .bind(env)
            .bind(&key)
            .bind(table.measure(&doc) as i64)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Refuses writing `bytes` of automaton under `key` of `table` when that takes the
/// environment's total past `cap`. A write that holds no more than the row it replaces always
/// passes, so an environment over its cap (the cap was lowered, or its rows predate it) can
/// still be brought back under it.
async fn check_cap(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    env: &str,
    table: Table,
    key: &str,
    bytes: u64,
    cap: u64,
) -> Result<(), StoreError> {
    measure_unmeasured(tx, env).await?;
    let replaced: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT automaton_bytes FROM {} WHERE environment_id = $1 AND key = $2",
        table.name()
    ))
    .bind(env)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?
    .flatten();
    if bytes <= replaced.unwrap_or(0).max(0) as u64 {
        return Ok(());
    }
    let mut others = 0u64;
    for t in [Table::Flags, Table::Segments] {
        // The entry being replaced is left out of its own table's sum (keys are never empty,
        // so the other table's sum leaves nothing out).
        let sum: i64 = sqlx::query_scalar(&format!(
            "SELECT CAST(COALESCE(SUM(automaton_bytes), 0) AS BIGINT) FROM {} \
             WHERE environment_id = $1 AND key <> $2",
            t.name()
        ))
        .bind(env)
        .bind(if t == table { key } else { "" })
        .fetch_one(&mut **tx)
        .await?;
        others += sum.max(0) as u64;
    }
    let total = others + bytes;
    if total > cap {
        return Err(StoreError::AutomatonCap { total, cap });
    }
    Ok(())
}

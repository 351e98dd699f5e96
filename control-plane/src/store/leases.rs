//! Leases: a job only one control-plane instance may do at a time (the NATS relay) is done by
//! the holder of its lease. A holder renews its lease well before it expires; when it stops
//! renewing (killed, paused, cut off from the database), another instance takes the lease
//! once it has expired. Each new holder gets a fencing token one higher than the last, which
//! it stamps on its work so that work from an older holder can be told apart.
//!
//! Expiry is reckoned on the database's clock, which every instance shares, so two instances
//! whose own clocks disagree still agree on when a lease ran out.

use super::{Backend, Store, StoreError};

/// A lease held: its fencing token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub token: u64,
}

impl Store {
    /// SQL for the database's time now, in milliseconds since the Unix epoch.
    pub(super) fn clock_ms(&self) -> &'static str {
        match self.backend() {
            Backend::Postgres => "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
        }
    }

    /// Takes the lease `name` for `holder` for `ttl_ms` when it is free or expired; `None`
    /// while another holder's lease runs.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        let now = self.clock_ms();
        let token: Option<i64> = sqlx::query_scalar(&format!(
            "INSERT INTO leases (name, holder, token, expires_at) VALUES ($1, $2, 1, {now} + $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             token = leases.token + 1, expires_at = excluded.expires_at \
             WHERE leases.expires_at < {now} \
             RETURNING token"
        ))
        .bind(name)
        .bind(holder)
        .bind(ttl_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(token.map(|t| Lease {
            token: t.max(0) as u64,
        }))
    }

    /// Extends a lease still held by `holder` with `lease`'s token; `false` once it is not.
    pub async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        lease: Lease,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "UPDATE leases SET expires_at = {} + $4 WHERE name = $1 AND holder = $2 AND token = $3",
            self.clock_ms()
        ))
        .bind(name)
        .bind(holder)
        .bind(lease.token as i64)
        .bind(ttl_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a lease up, so another instance can take it at once.
    pub async fn release_lease(
        &self,
        name: &str,
        holder: &str,
        lease: Lease,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND token = $3",
        )
        .bind(name)
        .bind(holder)
        .bind(lease.token as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

//! Login throttling, shared by every control-plane instance on one database.
//!
//! An attempt is throttled one of two ways. A browser that presents a valid device cookie for
//! the account it tries (see `device`) has proved it signed into that account before: its
//! failures are counted per device cookie, and no address-based limit applies to it, so
//! failures from an address that many people share — an office NAT, or every user behind a
//! reverse proxy — cannot lock it out, and a stolen device cookie still allows only a few
//! guesses per window. Every other attempt is counted in fixed windows per (account, client
//! address) and per client address, so one address cannot guess at will, and guessing from
//! elsewhere cannot lock a real user out: their own address has its own count. An IPv6
//! address is counted by its /64. A ceiling per
//! account across all addresses stops a guess spread over many addresses, but it never blocks
//! an address that has signed into that account before.
//!
//! The counts are the store's (`store::login_throttle`), so guesses spread over several
//! instances add up, and a restart forgets none. Each is kept under an HMAC of what it counts
//! (a key derived from `SESSION_SECRET`), never the email or the address; the upkeep task
//! deletes windows that ended and pairs not seen for 90 days.
//!
//! The client address is the TCP peer, or, behind a proxy listed in `TRUSTED_PROXIES`, the
//! client it names in `X-Forwarded-For` (see `crate::forwarded`).

use std::net::IpAddr;

use super::session::{SessionKey, hmac};
use crate::store::login_throttle::Charge;
use crate::store::{Store, StoreError};

/// Failures allowed per (account, address) in a window.
const PER_PAIR: u32 = 5;
/// Failures allowed per address, across accounts, in a window.
const PER_ADDRESS: u32 = 30;
/// Failures allowed per account, across addresses without a past sign-in, in a window.
const PER_ACCOUNT: u32 = 100;
/// Failures allowed per device cookie in a window.
pub(super) const PER_DEVICE: u32 = 10;
/// A window, in ms.
const WINDOW_MS: i64 = 15 * 60 * 1000;
/// How long a pair that signed in is remembered after its last sign-in, in ms (the device
/// cookie's lifetime).
const KNOWN_FOR_MS: i64 = 90 * 24 * 3600 * 1000;

/// What a login attempt is counted under.
#[derive(Debug, Clone)]
pub struct LoginLimiter {
    key: [u8; 32],
}

/// The keys of an attempt by address.
struct AddressKeys {
    pair: String,
    address: String,
    account: String,
}

/// What an address is counted as: an IPv4 address itself, an IPv6 address by its /64 (one
/// host is handed a whole /64, and could otherwise guess from each of its addresses in turn).
fn network(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl LoginLimiter {
    pub fn new(session_key: &SessionKey) -> Self {
        Self {
            key: session_key.derive("login throttle"),
        }
    }

    fn hashed(&self, scope: &str, text: &str) -> String {
        hex(&hmac(&self.key, format!("{scope}\0{text}").as_bytes()))
    }

    fn address_keys(&self, email: &str, addr: IpAddr) -> AddressKeys {
        let account = email.trim().to_lowercase();
        let addr = network(addr);
        AddressKeys {
            pair: self.hashed("pair", &format!("{account}\0{addr}")),
            address: self.hashed("address", &addr.to_string()),
            account: self.hashed("account", &account),
        }
    }

    /// Admits a login attempt, charging it as a failure up front (so parallel guesses cannot
    /// all pass before the first is counted), or says how many seconds to wait.
    pub async fn attempt(
        &self,
        store: &Store,
        email: &str,
        addr: IpAddr,
        now: i64,
    ) -> Result<Result<(), u64>, StoreError> {
        let keys = self.address_keys(email, addr);
        // The account's ceiling does not apply to an address that signed into it before; the
        // attempt still counts toward it.
        let known = store.login_known(&keys.pair).await?;
        let charges = [
            Charge {
                scope: "pair",
                key: &keys.pair,
                limit: Some(PER_PAIR),
            },
            Charge {
                scope: "address",
                key: &keys.address,
                limit: Some(PER_ADDRESS),
            },
            Charge {
                scope: "account",
                key: &keys.account,
                limit: (!known).then_some(PER_ACCOUNT),
            },
        ];
        store.charge_login(&charges, now, WINDOW_MS).await
    }

    /// The attempt was right: its pair starts again, its charge to the address and the
    /// account is refunded, and the address is remembered for this account.
    pub async fn succeeded(
        &self,
        store: &Store,
        email: &str,
        addr: IpAddr,
        now: i64,
    ) -> Result<(), StoreError> {
        let keys = self.address_keys(email, addr);
        store
            .login_succeeded(
                &[("pair", &keys.pair)],
                &[("address", &keys.address), ("account", &keys.account)],
                Some(&keys.pair),
                now,
            )
            .await
    }

    /// Admits an attempt from a browser whose device cookie (random id `device`) is good for
    /// the account it tries, charging it up front, or says how many seconds to wait. Only the
    /// device's own count applies.
    pub async fn attempt_device(
        &self,
        store: &Store,
        device: &str,
        now: i64,
    ) -> Result<Result<(), u64>, StoreError> {
        let key = self.hashed("device", device);
        let charge = Charge {
            scope: "device",
            key: &key,
            limit: Some(PER_DEVICE),
        };
        store.charge_login(&[charge], now, WINDOW_MS).await
    }

    /// Deletes the windows that have ended and the pairs not signed in from for
    /// [`KNOWN_FOR_MS`]; how many rows.
    pub async fn purge(store: &Store, now: i64) -> Result<u64, StoreError> {
        store
            .purge_login_throttle(now - WINDOW_MS, now - KNOWN_FOR_MS)
            .await
    }

    /// The device's attempt was right: its count starts again.
    pub async fn device_succeeded(&self, store: &Store, device: &str) -> Result<(), StoreError> {
        let key = self.hashed("device", device);
        store
            .login_succeeded(&[("device", &key)], &[], None, 0)
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A limiter over a fresh embedded store of its own.
    async fn limiter() -> (LoginLimiter, Store, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("cg-limiter-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = crate::store::embedded_url(&dir);
        let store = Store::open(&url, 2, std::time::Duration::from_secs(10))
            .await
            .unwrap();
        let key = SessionKey::new("a-session-secret-for-the-limiter-tests");
        (LoginLimiter::new(&key), store, dir)
    }

    async fn done(store: Store, dir: std::path::PathBuf) {
        store.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    }

    const NOW: i64 = 1_800_000_000_000;

    #[tokio::test]
    async fn a_pair_is_blocked_after_five_failures_and_the_real_user_is_not() {
        let (l, store, dir) = limiter().await;
        let attempt = |email: &'static str, from: &'static str, now: i64| {
            let (l, store) = (l.clone(), store.clone());
            async move { l.attempt(&store, email, ip(from), now).await.unwrap() }
        };
        for _ in 0..PER_PAIR {
            assert_eq!(
                attempt("Victim@example.com", "203.0.113.9", NOW).await,
                Ok(())
            );
        }
        let refused = attempt("victim@example.com", "203.0.113.9", NOW + 1000).await;
        assert_eq!(refused, Err((WINDOW_MS / 1000 - 1) as u64));
        assert_eq!(
            attempt("victim@example.com", "198.51.100.1", NOW).await,
            Ok(()),
            "the user's own address is unaffected"
        );
        assert_eq!(
            attempt("victim@example.com", "203.0.113.9", NOW + WINDOW_MS).await,
            Ok(()),
            "the block ends with the window"
        );
        done(store, dir).await;
    }

    #[tokio::test]
    async fn an_ipv6_host_cannot_step_through_its_64() {
        let (l, store, dir) = limiter().await;
        for i in 0..PER_PAIR {
            let from = format!("2001:db8:1:2::{:x}", i + 1);
            l.attempt(&store, "v@example.com", ip(&from), NOW)
                .await
                .unwrap()
                .unwrap();
        }
        let next = l
            .attempt(&store, "v@example.com", ip("2001:db8:1:2:ffff::9"), NOW)
            .await;
        assert!(next.unwrap().is_err(), "the same /64");
        let other = l
            .attempt(&store, "v@example.com", ip("2001:db8:1:3::1"), NOW)
            .await;
        assert_eq!(other.unwrap(), Ok(()), "another /64");
        assert_eq!(network(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        done(store, dir).await;
    }

    #[tokio::test]
    async fn a_refused_attempt_charges_nothing() {
        let (l, store, dir) = limiter().await;
        for _ in 0..PER_PAIR {
            l.attempt(&store, "a@example.com", ip("192.0.2.9"), NOW)
                .await
                .unwrap()
                .unwrap();
        }
        for _ in 0..50 {
            let refused = l
                .attempt(&store, "a@example.com", ip("192.0.2.9"), NOW)
                .await;
            assert!(refused.unwrap().is_err());
        }
        // The address was charged the five, not the fifty refused: other accounts from it
        // still have 25 to go.
        for i in 0..(PER_ADDRESS - PER_PAIR) {
            let email = format!("other{i}@example.com");
            let admitted = l.attempt(&store, &email, ip("192.0.2.9"), NOW).await;
            assert_eq!(admitted.unwrap(), Ok(()), "attempt {i}");
        }
        let over = l
            .attempt(&store, "last@example.com", ip("192.0.2.9"), NOW)
            .await;
        assert!(over.unwrap().is_err());
        done(store, dir).await;
    }

    #[tokio::test]
    async fn the_account_ceiling_spares_addresses_that_signed_in_before() {
        let (l, store, dir) = limiter().await;
        let user = "user@example.com";
        l.attempt(&store, user, ip("192.0.2.1"), NOW)
            .await
            .unwrap()
            .unwrap();
        l.succeeded(&store, user, ip("192.0.2.1"), NOW)
            .await
            .unwrap();
        for i in 0..PER_ACCOUNT {
            let from = IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
            l.attempt(&store, user, from, NOW).await.unwrap().unwrap();
        }
        let distributed = l.attempt(&store, user, ip("198.51.100.7"), NOW).await;
        assert!(
            distributed.unwrap().is_err(),
            "a distributed guess is stopped"
        );
        assert_eq!(
            l.attempt(&store, user, ip("192.0.2.1"), NOW).await.unwrap(),
            Ok(()),
            "the owner still gets in"
        );
        done(store, dir).await;
    }

    #[tokio::test]
    async fn successful_logins_from_one_address_never_add_up_to_a_block() {
        let (l, store, dir) = limiter().await;
        let office = ip("192.0.2.50");
        for i in 0..(PER_ADDRESS * 2) {
            let email = format!("colleague{i}@example.com");
            l.attempt(&store, &email, office, NOW)
                .await
                .unwrap()
                .unwrap();
            l.succeeded(&store, &email, office, NOW).await.unwrap();
        }
        assert_eq!(
            l.attempt(&store, "late@example.com", office, NOW)
                .await
                .unwrap(),
            Ok(()),
            "an office behind one NAT keeps signing in"
        );
        done(store, dir).await;
    }

    #[tokio::test]
    async fn a_device_is_limited_by_its_own_count_only() {
        let (l, store, dir) = limiter().await;
        let shared = ip("192.0.2.80");
        for i in 0..PER_ADDRESS {
            let email = format!("made-up{i}@example.com");
            l.attempt(&store, &email, shared, NOW)
                .await
                .unwrap()
                .unwrap();
        }
        let blocked = l.attempt(&store, "user@example.com", shared, NOW).await;
        assert!(blocked.unwrap().is_err());
        for _ in 0..PER_DEVICE {
            assert_eq!(
                l.attempt_device(&store, "device-a", NOW).await.unwrap(),
                Ok(())
            );
        }
        let capped = l.attempt_device(&store, "device-a", NOW).await.unwrap();
        assert!(capped.is_err(), "a device's guesses are capped");
        let other = l.attempt_device(&store, "device-b", NOW).await.unwrap();
        assert_eq!(other, Ok(()), "other devices are not");
        let later = l.attempt_device(&store, "device-a", NOW + WINDOW_MS).await;
        assert_eq!(later.unwrap(), Ok(()), "the block ends with the window");
        l.device_succeeded(&store, "device-a").await.unwrap();
        for _ in 0..PER_DEVICE {
            let again = l.attempt_device(&store, "device-a", NOW + WINDOW_MS).await;
            assert_eq!(again.unwrap(), Ok(()));
        }
        done(store, dir).await;
    }

    #[tokio::test]
    async fn ended_windows_and_forgotten_pairs_are_purged_and_nothing_is_kept_in_clear() {
        let (l, store, dir) = limiter().await;
        l.attempt(&store, "who@example.com", ip("198.51.100.20"), NOW)
            .await
            .unwrap()
            .unwrap();
        l.succeeded(&store, "who@example.com", ip("198.51.100.20"), NOW)
            .await
            .unwrap();
        l.attempt_device(&store, "device-z", NOW)
            .await
            .unwrap()
            .unwrap();
        let pool = sqlx::AnyPool::connect(&crate::store::embedded_url(&dir))
            .await
            .unwrap();
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT key FROM login_windows UNION ALL SELECT key FROM login_known",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            keys.len(),
            4,
            "address, account, device windows and the known pair"
        );
        for key in &keys {
            assert!(
                key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
                "an HMAC, not what it counts: {key}"
            );
        }
        // Nothing ended yet; then the windows, then the pair.
        assert_eq!(
            store
                .purge_login_throttle(NOW - WINDOW_MS, NOW - KNOWN_FOR_MS)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .purge_login_throttle(NOW + 1, NOW - KNOWN_FOR_MS)
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            store.purge_login_throttle(NOW + 1, NOW + 1).await.unwrap(),
            1
        );
        pool.close().await;
        done(store, dir).await;
    }
}

//! Login throttling with bounded memory.
//!
//! An attempt is throttled one of two ways. A browser that presents a valid device cookie for
//! the account it tries (see `device`) has proved it signed into that account before: its
//! failures are counted per device cookie, and no address-based limit applies to it, so
//! failures from an address that many people share — an office NAT, or every user behind a
//! reverse proxy — cannot lock it out, and a stolen device cookie still allows only a few
//! guesses per window. Every other attempt is counted in fixed windows per (account, client
//! address) and per client address, so one address cannot guess at will, and guessing from
//! elsewhere cannot lock a real user out: their own address has its own count. A ceiling per
//! account across all addresses stops a guess spread over many addresses, but it never blocks
//! an address that has signed into that account before. Every table is capped; expired
//! entries are purged first, then the oldest go.
//!
//! The client address is the TCP peer, or, behind a proxy listed in `TRUSTED_PROXIES`, the
//! client it names in `X-Forwarded-For` (see `crate::forwarded`).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per (account, address) in a window.
const PER_PAIR: u32 = 5;
/// Failures allowed per address, across accounts, in a window.
const PER_ADDRESS: u32 = 30;
/// Failures allowed per account, across addresses without a past sign-in, in a window.
const PER_ACCOUNT: u32 = 100;
/// Failures allowed per device cookie in a window.
pub(super) const PER_DEVICE: u32 = 10;
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Largest number of entries in each table.
const CAPACITY: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// A capped table of failure windows.
#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Window>,
    limit: u32,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(limit: u32) -> Self {
        Self {
            entries: HashMap::new(),
            limit,
        }
    }

    /// Seconds until `key` may try again, if it is blocked now.
    fn blocked(&self, key: &K, now: Instant) -> Option<u64> {
        let w = self.entries.get(key)?;
        let age = now.duration_since(w.started);
        (age < WINDOW && w.failures >= self.limit).then(|| (WINDOW - age).as_secs().max(1))
    }

    fn fail(&mut self, key: K, now: Instant) {
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(&key) {
            self.entries
                .retain(|_, w| now.duration_since(w.started) < WINDOW);
            if self.entries.len() >= CAPACITY {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, w)| w.started)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.entries.remove(&k);
                }
            }
        }
        let w = self.entries.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.duration_since(w.started) >= WINDOW {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures += 1;
    }

    /// Returns one failure charged by an attempt that succeeded.
    fn refund(&mut self, key: &K) {
        if let Some(w) = self.entries.get_mut(key) {
            w.failures = w.failures.saturating_sub(1);
        }
    }

    fn clear(&mut self, key: &K) {
        self.entries.remove(key);
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[derive(Debug)]
struct Tables {
    pairs: Table<(String, IpAddr)>,
    addresses: Table<IpAddr>,
    accounts: Table<String>,
    /// Device cookies, by their random id.
    devices: Table<String>,
    /// (account, address) pairs that signed in successfully: exempt from the account ceiling.
    known: HashMap<(String, IpAddr), Instant>,
}

/// The login throttle of one control-plane instance.
#[derive(Debug)]
pub struct LoginLimiter {
    tables: Mutex<Tables>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self {
            tables: Mutex::new(Tables {
                pairs: Table::new(PER_PAIR),
                addresses: Table::new(PER_ADDRESS),
                accounts: Table::new(PER_ACCOUNT),
                devices: Table::new(PER_DEVICE),
                known: HashMap::new(),
            }),
        }
    }
}

fn account(email: &str) -> String {
    email.trim().to_lowercase()
}

impl LoginLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a login attempt, charging it as a failure up front (so parallel guesses cannot
    /// all pass before the first is counted), or says how many seconds to wait.
    pub fn attempt(&self, email: &str, addr: IpAddr, now: Instant) -> Result<(), u64> {
        let mut t = self.lock();
        let pair = (account(email), addr);
        let mut wait = t
            .pairs
            .blocked(&pair, now)
            .into_iter()
            .chain(t.addresses.blocked(&addr, now))
            .max();
        if !t.known.contains_key(&pair) {
            wait = wait
                .into_iter()
                .chain(t.accounts.blocked(&pair.0, now))
                .max();
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        t.accounts.fail(pair.0.clone(), now);
        t.pairs.fail(pair, now);
        t.addresses.fail(addr, now);
        Ok(())
    }

    /// The attempt was right: refund its charge and remember the address for this account.
    pub fn succeeded(&self, email: &str, addr: IpAddr, now: Instant) {
        let mut t = self.lock();
        let pair = (account(email), addr);
        t.pairs.clear(&pair);
        t.addresses.refund(&addr);
        t.accounts.refund(&pair.0);
        if t.known.len() >= CAPACITY && !t.known.contains_key(&pair) {
            let oldest = t
                .known
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                t.known.remove(&k);
            }
        }
        t.known.insert(pair, now);
    }

    /// Admits an attempt from a browser whose device cookie (random id `device`) is good for
    /// the account it tries, charging it up front, or says how many seconds to wait. Only the
    /// device's own count applies.
    pub fn attempt_device(&self, device: &str, now: Instant) -> Result<(), u64> {
        let mut t = self.lock();
        if let Some(wait) = t.devices.blocked(&device.to_owned(), now) {
            return Err(wait);
        }
        t.devices.fail(device.to_owned(), now);
        Ok(())
    }

    /// The device's attempt was right: its count starts again.
    pub fn device_succeeded(&self, device: &str) {
        self.lock().devices.clear(&device.to_owned());
    }

    /// Entries held, for tests of the memory bound.
    pub fn entries(&self) -> usize {
        let t = self.lock();
        t.pairs.len() + t.addresses.len() + t.accounts.len() + t.devices.len() + t.known.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_pair_is_blocked_after_five_failures_and_the_real_user_is_not() {
        let l = LoginLimiter::default();
        let now = Instant::now();
        for _ in 0..PER_PAIR {
            assert_eq!(
                l.attempt("Victim@example.com", ip("203.0.113.9"), now),
                Ok(())
            );
        }
        assert!(
            l.attempt("victim@example.com", ip("203.0.113.9"), now)
                .is_err()
        );
        assert_eq!(
            l.attempt("victim@example.com", ip("198.51.100.1"), now),
            Ok(()),
            "the user's own address is unaffected"
        );
        assert_eq!(
            l.attempt("victim@example.com", ip("203.0.113.9"), now + WINDOW),
            Ok(()),
            "the block ends with the window"
        );
    }

    #[test]
    fn the_account_ceiling_spares_addresses_that_signed_in_before() {
        let l = LoginLimiter::default();
        let now = Instant::now();
        l.attempt("user@example.com", ip("192.0.2.1"), now).unwrap();
        l.succeeded("user@example.com", ip("192.0.2.1"), now);
        for i in 0..PER_ACCOUNT {
            l.attempt(
                "user@example.com",
                IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]),
                now,
            )
            .unwrap();
        }
        assert!(
            l.attempt("user@example.com", ip("198.51.100.7"), now)
                .is_err(),
            "a distributed guess is stopped"
        );
        assert_eq!(
            l.attempt("user@example.com", ip("192.0.2.1"), now),
            Ok(()),
            "the owner still gets in"
        );
    }

    #[test]
    fn successful_logins_from_one_address_never_add_up_to_a_block() {
        let l = LoginLimiter::default();
        let now = Instant::now();
        for i in 0..(PER_ADDRESS * 3) {
            let email = format!("colleague{i}@example.com");
            l.attempt(&email, ip("192.0.2.50"), now).unwrap();
            l.succeeded(&email, ip("192.0.2.50"), now);
        }
        assert_eq!(
            l.attempt("late@example.com", ip("192.0.2.50"), now),
            Ok(()),
            "an office behind one NAT keeps signing in"
        );
    }

    #[test]
    fn a_device_is_limited_by_its_own_count_only() {
        let l = LoginLimiter::default();
        let now = Instant::now();
        let shared = ip("192.0.2.80");
        for i in 0..PER_ADDRESS {
            l.attempt(&format!("made-up{i}@example.com"), shared, now)
                .unwrap();
        }
        assert!(l.attempt("user@example.com", shared, now).is_err());
        for _ in 0..PER_DEVICE {
            assert_eq!(l.attempt_device("device-a", now), Ok(()));
        }
        assert!(
            l.attempt_device("device-a", now).is_err(),
            "a device's guesses are capped"
        );
        assert_eq!(
            l.attempt_device("device-b", now),
            Ok(()),
            "other devices are not"
        );
        assert_eq!(
            l.attempt_device("device-a", now + WINDOW),
            Ok(()),
            "the block ends with the window"
        );
        l.device_succeeded("device-a");
        for _ in 0..PER_DEVICE {
            assert_eq!(l.attempt_device("device-a", now + WINDOW), Ok(()));
        }
    }

    #[test]
    fn memory_stays_bounded() {
        let l = LoginLimiter::default();
        let now = Instant::now();
        for i in 0..(CAPACITY as u32 + 500) {
            let _ = l.attempt(
                &format!("u{i}@example.com"),
                IpAddr::from(i.to_be_bytes()),
                now,
            );
            let _ = l.attempt_device(&format!("d{i}"), now);
        }
        assert!(l.entries() <= 4 * CAPACITY, "{}", l.entries());
    }
}

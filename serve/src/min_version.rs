//! Read your writes, the serving half. A write to the control plane answers with the
//! environment version it committed (`X-Checkgate-Version`); a client that sends it back here
//! as `X-Checkgate-Min-Version: <version>` is answered only once this replica has applied at
//! least that version of the caller's environment (the one its SDK key belongs to). The answer
//! waits for it — woken by the replica's change notifications, never by polling — for at most
//! `MIN_VERSION_WAIT_MS`, and is otherwise a 503 with `Retry-After: 1`: never older data, said
//! to be new enough.
//!
//! The header is read after the key (a bad key is 401 at once) and a malformed one is 400.
//! Without it a request pays one header lookup: nothing is allocated, nothing waits.
//!
//! Versions count within the environment's epoch: the control plane's version and the
//! replica's are the same counter unless the database was replaced, when edges take a
//! snapshot of the new epoch.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, StatusCode};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::SdkError;
use crate::events::EnvEvents;
use crate::served::Served;

/// The request header that names the version an answer must reflect at least.
pub const HEADER: HeaderName = HeaderName::from_static("x-checkgate-min-version");

/// How long an answer waits for its version unless configured otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_millis(500);

/// Seconds a client is told to wait before asking again for a version not reached in time:
/// the version is committed, so it is on its way.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// The version a request asks for: `None` without the header, 400 when it is not a version.
pub fn requested(headers: &HeaderMap) -> Result<Option<u64>, SdkError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            SdkError::new(
                StatusCode::BAD_REQUEST,
                "bad_header",
                "X-Checkgate-Min-Version must be a version: a whole number, as a write's \
                 X-Checkgate-Version gave it",
            )
        })
}

/// Waits until `reached` holds: checked at once, then again each time `changes` says
/// something changed, until `deadline`. Returns whether it holds. `reached` is called with no
/// lock of the channel held, so it may read state whose writers notify under their own lock.
pub async fn wait_until<T>(
    changes: &mut watch::Receiver<T>,
    deadline: Instant,
    mut reached: impl FnMut() -> bool,
) -> bool {
    loop {
        // Seen before checking: a change after the check wakes the wait below at once.
        changes.borrow_and_update();
        if reached() {
            return true;
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {}
            // The deadline passed, or nothing will change any more: one last look.
            Ok(Err(_)) | Err(_) => return reached(),
        }
    }
}

/// The answer when the version did not arrive in time.
pub fn not_reached(min: u64) -> SdkError {
    let mut error = SdkError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "version_not_reached",
        format!("this server has not yet applied version {min} of the environment; retry shortly"),
    );
    error.retry_after = RETRY_AFTER_SECONDS;
    error
}

/// Waits, when the request asked for `min`, until the replica has applied at least that
/// version of `env` (for evaluation answers, read from the replica).
pub async fn replica_at(
    served: &Served,
    env: &str,
    min: Option<u64>,
    wait: Duration,
) -> Result<(), SdkError> {
    let Some(min) = min else {
        return Ok(());
    };
    let applied = || {
        served
            .replica
            .version(env)
            .is_some_and(|(_, version)| version >= min)
    };
    let mut changes = served.replica.subscribe();
    if wait_until(&mut changes, Instant::now() + wait, applied).await {
        Ok(())
    } else {
        Err(not_reached(min))
    }
}

/// Waits until the SSE events of an environment have reached `min` (a stream's bootstrap is
/// built at the events' version, which follows the replica's).
pub async fn events_at(events: &EnvEvents, min: u64, wait: Duration) -> Result<(), SdkError> {
    let mut changes = events.subscribe();
    let reached = || events.position().2 >= min;
    if wait_until(&mut changes, Instant::now() + wait, reached).await {
        Ok(())
    } else {
        Err(not_reached(min))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use axum::http::HeaderValue;

    use super::*;

    fn with(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn the_header_is_a_version_or_a_bad_request() {
        assert_eq!(requested(&HeaderMap::new()).unwrap(), None);
        assert_eq!(requested(&with("42")).unwrap(), Some(42));
        assert_eq!(requested(&with(" 7 ")).unwrap(), Some(7));
        assert_eq!(
            requested(&with("18446744073709551615")).unwrap(),
            Some(u64::MAX)
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "abc",
            "0x10",
            "18446744073709551616",
            "\"3\"",
        ] {
            let error = requested(&with(bad)).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{bad:?}");
            assert_eq!(error.code, "bad_header", "{bad:?}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_bytes(b"\xff").unwrap());
        assert!(requested(&headers).is_err());
    }

    #[test]
    fn a_version_not_reached_is_a_503_to_retry_in_a_second() {
        let error = not_reached(9);
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.retry_after, 1);
        assert!(error.message.contains('9'), "{}", error.message);
    }

    /// A shared version and its change notification, as the replica has them.
    fn source() -> (Arc<AtomicU64>, watch::Sender<u64>) {
        (Arc::new(AtomicU64::new(0)), watch::channel(0).0)
    }

    fn set(version: &AtomicU64, changes: &watch::Sender<u64>, to: u64) {
        version.store(to, Ordering::SeqCst);
        changes.send_modify(|g| *g += 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_version_already_there_is_answered_at_once() {
        let (version, changes) = source();
        set(&version, &changes, 5);
        let started = Instant::now();
        let reached = wait_until(&mut changes.subscribe(), started, || {
            version.load(Ordering::SeqCst) >= 5
        })
        .await;
        assert!(reached);
        assert_eq!(Instant::now(), started, "no time passed");
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_ends_when_a_change_brings_the_version() {
        let (version, changes) = source();
        let mut receiver = changes.subscribe();
        let writer = {
            let version = Arc::clone(&version);
            tokio::spawn(async move {
                // Changes that do not reach it yet, then the one that does.
                for v in 1..=3 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    set(&version, &changes, v);
                }
                changes
            })
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let reached = wait_until(&mut receiver, deadline, || {
            version.load(Ordering::SeqCst) >= 3
        })
        .await;
        assert!(reached);
        assert!(
            Instant::now() < deadline,
            "woken by the change, not the deadline"
        );
        drop(writer.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_version_that_never_comes_ends_the_wait_at_its_deadline() {
        let (version, changes) = source();
        let mut receiver = changes.subscribe();
        let deadline = Instant::now() + Duration::from_millis(500);
        let writer = {
            let version = Arc::clone(&version);
            tokio::spawn(async move {
                set(&version, &changes, 1);
                changes
            })
        };
        let reached = wait_until(&mut receiver, deadline, || {
            version.load(Ordering::SeqCst) >= 2
        })
        .await;
        assert!(!reached);
        assert_eq!(Instant::now(), deadline);
        drop(writer.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_source_is_looked_at_once_more_when_it_goes() {
        let (version, changes) = source();
        let mut receiver = changes.subscribe();
        version.store(4, Ordering::SeqCst);
        drop(changes);
        let deadline = Instant::now() + Duration::from_secs(60);
        assert!(
            wait_until(&mut receiver, deadline, || version.load(Ordering::SeqCst)
                >= 4)
            .await
        );
        assert!(
            !wait_until(&mut receiver, deadline, || version.load(Ordering::SeqCst)
                >= 5)
            .await
        );
        assert!(
            Instant::now() < deadline,
            "a closed channel ends the wait at once"
        );
    }
}

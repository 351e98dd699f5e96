//! The delivery worker. One control-plane instance delivers at a time: the holder of the
//! `webhook-delivery` lease (`store/leases.rs`). It claims each due row before sending it
//! (`claimed_until`, a visibility timeout longer than any attempt), so even a holder that
//! lost its lease mid-request leaves its rows to no one else until the claim runs out.
//!
//! Retries: a transport error, a timeout ([`ATTEMPT_TIMEOUT`]), a 5xx, 408 or 429 is tried
//! again after an exponential backoff with jitter, for up to [`GIVE_UP_AFTER`] after the event;
//! then the delivery is failed. Any other 4xx, a 3xx (redirects are not followed) and a refused
//! destination are final. At most `per_webhook` requests are in flight per webhook. Pending
//! rows are in the database, so a restart picks them up again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderName;
use bytes::Bytes;
use checkgate_ops::Stopping;
use tokio::task::JoinSet;

use super::client::{self, Answer};
use super::sign;
use super::ssrf::{self, AllowHosts};
use crate::store::webhook_delivery::{AttemptOutcome, DueDelivery, Verdict};
use crate::store::webhooks::SealedField;
use crate::store::{Store, now_ms};
use crate::vault::MasterKey;

/// The lease of the delivering instance.
pub const LEASE: &str = "webhook-delivery";
const LEASE_TTL: Duration = Duration::from_secs(10);
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// How often due rows are looked for (a commit of this instance wakes the worker sooner).
const POLL_EVERY: Duration = Duration::from_millis(500);
/// The shortest gap between two looks woken by commits.
const MIN_LOOK_GAP: Duration = Duration::from_millis(100);
/// The longest one attempt may take, connection to last byte read.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed row is left to its claimant: longer than an attempt and its recording.
const CLAIM_FOR: Duration = Duration::from_secs(60);
/// Rows read per look.
const BATCH: u32 = 100;
/// Requests in flight at once over all webhooks.
const MAX_IN_FLIGHT: usize = 64;
/// How long a delivery is retried after its event.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The first retry's delay; each further one doubles, up to [`RETRY_MAX`], plus up to half
/// again of random jitter.
const RETRY_BASE: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(3600);
/// Finished deliveries are kept this long in the log.
const KEEP_FINISHED: Duration = Duration::from_secs(7 * 24 * 3600);
const PURGE_EVERY: Duration = Duration::from_secs(600);
const PURGE_BATCH: i64 = 1000;
const PURGE_STATEMENTS: usize = 20;

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Hosts reached whatever they resolve to (`WEBHOOK_ALLOW_HOSTS`).
    pub allow: AllowHosts,
    /// Requests in flight at once per webhook (`WEBHOOK_MAX_IN_FLIGHT`).
    pub per_webhook: usize,
    /// Failed attempts in a row after which `webhook.failing` is raised
    /// (`WEBHOOK_FAILING_AFTER`).
    pub failing_after: u64,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            allow: AllowHosts::default(),
            per_webhook: 4,
            failing_after: 5,
        }
    }
}

/// The delay before retry number `attempt` (1 for the first retry), before jitter.
pub fn backoff(attempt: u64) -> Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(20);
    RETRY_BASE.saturating_mul(1 << doublings).min(RETRY_MAX)
}

fn jitter(delay: Duration) -> Duration {
    use chacha20poly1305::aead::rand_core::RngCore as _;
    let half = u64::try_from(delay.as_millis() / 2).unwrap_or(0);
    if half == 0 {
        return delay;
    }
    let extra = chacha20poly1305::aead::OsRng.next_u64() % half;
    delay + Duration::from_millis(extra)
}

/// What an answer (or its absence) makes of a delivery: delivered, retried or failed.
pub fn verdict(answer: &Result<Answer, String>) -> Retry {
    match answer {
        Ok(a) if (200..300).contains(&a.status) => Retry::Delivered,
        Ok(a) if a.status == 408 || a.status == 429 || a.status >= 500 => Retry::Again,
        Ok(_) => Retry::Final,
        Err(_) => Retry::Again,
    }
}

/// The kind of [`verdict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    Delivered,
    Again,
    Final,
}

/// Delivers webhooks until the process stops, while this instance holds the lease.
pub async fn run(
    store: Store,
    key: Option<Arc<MasterKey>>,
    settings: DeliverySettings,
    mut stopping: Stopping,
) {
    let holder = uuid::Uuid::new_v4().to_string();
    let tls = match client::tls_config() {
        Ok(tls) => Some(tls),
        Err(e) => {
            tracing::warn!(cause = %e, "https webhooks cannot be delivered");
            None
        }
    };
    let worker = Worker {
        store,
        key,
        settings: Arc::new(settings),
        tls,
    };
    loop {
        let lease = match worker
            .store
            .acquire_lease(LEASE, &holder, LEASE_TTL.as_millis() as i64)
            .await
        {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                tokio::select! {
                    _ = stopping.begun() => return,
                    () = tokio::time::sleep(RENEW_EVERY) => continue,
                }
            }
            Err(e) => {
                tracing::warn!(cause = %e, "the webhook worker cannot read its lease");
                tokio::select! {
                    _ = stopping.begun() => return,
                    () = tokio::time::sleep(RENEW_EVERY) => continue,
                }
            }
        };
        tracing::info!(
            token = lease.token,
            "holding the webhook delivery lease; delivering"
        );
        let stopped = worker.hold(&holder, lease, &mut stopping).await;
        if let Err(e) = worker.store.release_lease(LEASE, &holder, lease).await {
            tracing::warn!(cause = %e, "giving up the webhook delivery lease failed; it expires");
        }
        if stopped {
            return;
        }
    }
}

struct Worker {
    store: Store,
    key: Option<Arc<MasterKey>>,
    settings: Arc<DeliverySettings>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Worker {
    /// Delivers while the lease is held; `true` when the process is stopping.
    async fn hold(
        &self,
        holder: &str,
        lease: crate::store::Lease,
        stopping: &mut Stopping,
    ) -> bool {
        let mut commits = self.store.subscribe_commits();
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purge = tokio::time::interval(PURGE_EVERY);
        purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut renewed = Instant::now();
        let mut looked = Instant::now();
        let mut in_flight: JoinSet<String> = JoinSet::new();
        let mut per_webhook: HashMap<String, usize> = HashMap::new();
        let stopped = loop {
            tokio::select! {
                _ = stopping.begun() => break true,
                _ = poll.tick() => {}
                _ = commits.recv() => {
                    // A burst of commits looks once; the poll catches the rest.
                    if looked.elapsed() < MIN_LOOK_GAP {
                        continue;
                    }
                }
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Ok(webhook) = done {
                        release(&mut per_webhook, &webhook);
                    }
                    continue;
                }
                _ = purge.tick() => {
                    self.purge().await;
                    continue;
                }
            }
            if renewed.elapsed() >= RENEW_EVERY {
                match self
                    .store
                    .renew_lease(LEASE, holder, lease, LEASE_TTL.as_millis() as i64)
                    .await
                {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => {
                        tracing::warn!("lost the webhook delivery lease");
                        break false;
                    }
                    Err(e) if renewed.elapsed() < LEASE_TTL => {
                        tracing::warn!(cause = %e, "renewing the webhook delivery lease failed");
                    }
                    Err(_) => break false,
                }
            }
            looked = Instant::now();
            self.dispatch(&mut in_flight, &mut per_webhook).await;
        };
        // Attempts under way finish (each is bounded by ATTEMPT_TIMEOUT) and are recorded;
        // a row whose recording is cut short is retried after its claim runs out.
        let wind_down = async { while in_flight.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(ATTEMPT_TIMEOUT + Duration::from_secs(2), wind_down).await;
        stopped
    }

    /// Claims and starts the due rows there is room for.
    async fn dispatch(
        &self,
        in_flight: &mut JoinSet<String>,
        per_webhook: &mut HashMap<String, usize>,
    ) {
        if in_flight.len() >= MAX_IN_FLIGHT {
            return;
        }
        let now = now_ms();
        let due = match self.store.due_deliveries(now, BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(cause = %e, "reading due webhook deliveries failed");
                return;
            }
        };
        for delivery in due {
            if in_flight.len() >= MAX_IN_FLIGHT {
                break;
            }
            let busy = per_webhook.get(&delivery.webhook_id).copied().unwrap_or(0);
            if busy >= self.settings.per_webhook {
                continue;
            }
            let until = now + CLAIM_FOR.as_millis() as i64;
            match self.store.claim_delivery(&delivery.id, now, until).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(cause = %e, "claiming a webhook delivery failed");
                    return;
                }
            }
            *per_webhook.entry(delivery.webhook_id.clone()).or_default() += 1;
            let (store, key, settings, tls) = (
                self.store.clone(),
                self.key.clone(),
                Arc::clone(&self.settings),
                self.tls.clone(),
            );
            in_flight.spawn(async move {
                let webhook = delivery.webhook_id.clone();
                let outcome = attempt(&delivery, key.as_deref(), &settings, tls.as_ref()).await;
                let label = match outcome.verdict {
                    Verdict::Delivered => "delivered",
                    Verdict::RetryAt(_) => "retry",
                    Verdict::Failed => "failed",
                };
                metrics::counter!("checkgate_webhook_attempts_total", "outcome" => label)
                    .increment(1);
                match store
                    .finish_attempt(&delivery, &outcome, settings.failing_after)
                    .await
                {
                    Ok(true) => tracing::warn!(webhook = %webhook, "webhook is failing; raised webhook.failing"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(cause = %e, "recording a webhook attempt failed"),
                }
                webhook
            });
        }
    }

    async fn purge(&self) {
        let now = now_ms();
        let keep = KEEP_FINISHED.as_millis() as i64;
        let give_up = GIVE_UP_AFTER.as_millis() as i64;
        match self
            .store
            .purge_deliveries(now - keep, now - give_up, PURGE_BATCH, PURGE_STATEMENTS)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged old webhook deliveries"),
            Err(e) => tracing::warn!(cause = %e, "purging old webhook deliveries failed"),
        }
    }
}

fn release(per_webhook: &mut HashMap<String, usize>, webhook: &str) {
    if let Some(n) = per_webhook.get_mut(webhook) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            per_webhook.remove(webhook);
        }
    }
}

/// Makes one attempt and says what it came to.
async fn attempt(
    delivery: &DueDelivery,
    key: Option<&MasterKey>,
    settings: &DeliverySettings,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> AttemptOutcome {
    let started = Instant::now();
    let final_error = |error: String| AttemptOutcome {
        status_code: None,
        latency_ms: 0,
        error: Some(error),
        response_body: None,
        verdict: Verdict::Failed,
    };
    let url = match crate::vault::open_url(key, &delivery.webhook_id, &delivery.url) {
        Ok(url) => url,
        Err(e) => return final_error(format!("the URL cannot be used: {e}")),
    };
    let target = match ssrf::parse(url.expose()) {
        Ok(target) => target,
        Err(e) => return final_error(e.to_string()),
    };
    let secret = match (&delivery.secret, key) {
        (None, _) => None,
        (Some(sealed), Some(key)) => {
            let context = crate::vault::context(SealedField::Secret, &delivery.webhook_id);
            match key.open(&context, sealed) {
                Ok(secret) => Some(secret),
                Err(e) => return final_error(format!("the signing secret cannot be used: {e}")),
            }
        }
        (Some(_), None) => {
            return final_error("the signing secret cannot be used: no master key".into());
        }
    };
    let timestamp = now_ms() / 1000;
    let body = Bytes::from(delivery.body.clone());
    let mut headers = vec![
        (
            HeaderName::from_static("x-checkgate-event"),
            delivery.event.clone(),
        ),
        (
            HeaderName::from_static("x-checkgate-event-id"),
            delivery.event_id.clone(),
        ),
        (
            HeaderName::from_static("x-checkgate-delivery"),
            delivery.id.clone(),
        ),
        (
            HeaderName::from_static(sign::TIMESTAMP),
            timestamp.to_string(),
        ),
    ];
    if let Some(secret) = &secret {
        headers.push((
            HeaderName::from_static(sign::SIGNATURE),
            sign::legacy(secret.expose(), &body),
        ));
        headers.push((
            HeaderName::from_static(sign::SIGNATURE_256),
            sign::timestamped(secret.expose(), timestamp, &body),
        ));
    }
    let sent = tokio::time::timeout(ATTEMPT_TIMEOUT, async {
        let addr = ssrf::resolve(&target, &settings.allow)
            .await
            .map_err(Refusal::Refused)?;
        client::post(&target, addr, &headers, body, tls)
            .await
            .map_err(Refusal::Transport)
    })
    .await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let answer = match sent {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(Refusal::Refused(e @ ssrf::Refused::Unresolved { .. }))) => Err(e.to_string()),
        Ok(Err(Refusal::Refused(e))) => {
            return AttemptOutcome {
                latency_ms,
                ..final_error(e.to_string())
            };
        }
        Ok(Err(Refusal::Transport(e))) => Err(e),
        Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
    };
    let kind = verdict(&answer);
    let (status_code, response_body, error) = match answer {
        Ok(a) => {
            let error = match kind {
                Retry::Delivered => None,
                _ if (300..400).contains(&a.status) => Some(format!(
                    "answered {} (redirects are not followed)",
                    a.status
                )),
                _ => Some(format!("answered {}", a.status)),
            };
            (Some(a.status), Some(a.body), error)
        }
        Err(e) => (None, None, Some(e)),
    };
    // The log is read by the project's viewers: a receiver echoing the request's path (a
    // "Cannot POST /hooks/<token>" page) must not show them the token.
    let fragments = secret_fragments(&target.path);
    let response_body = response_body.map(|body| redacted(body, &fragments));
    let error = error.map(|e| redacted(e, &fragments));
    let verdict = match kind {
        Retry::Delivered => Verdict::Delivered,
        Retry::Final => Verdict::Failed,
        Retry::Again => {
            let at = now_ms() + jitter(backoff(delivery.attempts + 1)).as_millis() as i64;
            if at > delivery.created_at + GIVE_UP_AFTER.as_millis() as i64 {
                Verdict::Failed
            } else {
                Verdict::RetryAt(at)
            }
        }
    };
    AttemptOutcome {
        status_code,
        latency_ms,
        error,
        response_body,
        verdict,
    }
}

enum Refusal {
    Refused(ssrf::Refused),
    Transport(String),
}

/// Shortest piece of a URL's path or query that is taken for a token.
const TOKEN_MIN: usize = 8;

/// The parts of a webhook's path and query (`path`, from `/`) that may be a token, longest
/// first: the whole, without its query, and each segment or query value of [`TOKEN_MIN`]
/// characters or more.
fn secret_fragments(path: &str) -> Vec<String> {
    let mut fragments: Vec<String> = vec![path.to_owned()];
    if let Some((bare, _)) = path.split_once('?') {
        fragments.push(bare.to_owned());
    }
    fragments.extend(
        path.split(['/', '?', '&', '=', '#'])
            .filter(|piece| piece.len() >= TOKEN_MIN)
            .map(str::to_owned),
    );
    fragments.retain(|f| f.len() > 1);
    fragments.sort_by_key(|f| std::cmp::Reverse(f.len()));
    fragments.dedup();
    fragments
}

/// `text` with every fragment replaced by `…`.
fn redacted(mut text: String, fragments: &[String]) -> String {
    for fragment in fragments {
        if text.contains(fragment.as_str()) {
            text = text.replace(fragment.as_str(), "…");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> Result<Answer, String> {
        Ok(Answer {
            status,
            body: String::new(),
        })
    }

    #[test]
    fn retries_on_5xx_408_429_and_transport_errors_only() {
        assert_eq!(verdict(&answered(200)), Retry::Delivered);
        assert_eq!(verdict(&answered(204)), Retry::Delivered);
        for status in [500, 502, 503, 504, 408, 429] {
            assert_eq!(verdict(&answered(status)), Retry::Again, "{status}");
        }
        for status in [301, 302, 307, 400, 401, 403, 404, 410, 422] {
            assert_eq!(verdict(&answered(status)), Retry::Final, "{status}");
        }
        assert_eq!(verdict(&Err("reset".into())), Retry::Again);
    }

    #[test]
    fn an_echoed_path_or_token_is_redacted_from_what_the_log_keeps() {
        let fragments = secret_fragments("/services/T0001/B0001/abcdefghijkl?sig=0123456789ab");
        let echoed = "Cannot POST /services/T0001/B0001/abcdefghijkl?sig=0123456789ab".to_owned();
        assert_eq!(redacted(echoed, &fragments), "Cannot POST …");
        let parts = "no route abcdefghijkl; bad signature 0123456789ab".to_owned();
        assert_eq!(redacted(parts, &fragments), "no route …; bad signature …");
        // A root path hides nothing, and short segments are not taken for tokens.
        assert!(secret_fragments("/").is_empty());
        let plain = "answered 404 at /a/b".to_owned();
        assert_eq!(
            redacted(plain.clone(), &secret_fragments("/a/b?x=1")),
            "answered 404 at …"
        );
        assert_eq!(redacted(plain.clone(), &secret_fragments("/c")), plain);
    }

    #[test]
    fn backoff_doubles_up_to_an_hour_and_jitter_adds_at_most_half() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(5), Duration::from_secs(32));
        assert_eq!(backoff(40), RETRY_MAX);
        assert_eq!(backoff(u64::MAX), RETRY_MAX);
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(10));
            assert!(d >= Duration::from_secs(10) && d < Duration::from_secs(15));
        }
    }
}

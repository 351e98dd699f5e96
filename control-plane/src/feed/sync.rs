//! Head hints between control-plane instances, through Redis pub/sub: each instance publishes
//! the heads its own commits reach, and advances its [`Heads`] by what the others publish, so
//! a write through instance A reaches an edge connected to instance B in milliseconds rather
//! than at B's next poll.
//!
//! Redis is never the truth and never required: a message lost while Redis is down only
//! delays a change until the next poll (at most a second). Both connections are re-established
//! with backoff whenever they fail, so a Redis restart heals by itself.

use std::sync::Arc;
use std::time::Duration;

use checkgate_protocol::Secret;
use futures_util::StreamExt as _;
use redis::AsyncCommands as _;

use super::heads::Heads;
use crate::store::Store;

/// The channel every instance publishes and subscribes to.
pub const CHANNEL: &str = "checkgate:feed:heads";

const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// `"{env} {version}"`, the message for one head.
fn message(env: &str, version: u64) -> String {
    format!("{env} {version}")
}

/// Parses a message; anything malformed is ignored (it is only a hint).
fn parse(text: &str) -> Option<(&str, u64)> {
    let (env, version) = text.split_once(' ')?;
    if env.is_empty() || env.len() > 64 {
        return None;
    }
    Some((env, version.parse().ok()?))
}

/// Runs both directions until aborted.
pub async fn run(url: Secret, store: Store, heads: Arc<Heads>) {
    let client = match redis::Client::open(url.expose()) {
        Ok(c) => c,
        Err(e) => {
            // The URL was validated with the configuration; this is a bug or an odd scheme.
            tracing::error!(cause = %e, "REDIS_URL cannot be used; instances sync by polling only");
            return;
        }
    };
    tokio::join!(publish(client.clone(), store), subscribe(client, heads));
}

/// Publishes this process's commits. A failed publish drops the connection; the next commit
/// opens a new one (after a pause while Redis stays away).
async fn publish(client: redis::Client, store: Store) {
    let mut commits = store.subscribe_commits();
    let mut connection: Option<redis::aio::MultiplexedConnection> = None;
    let mut retry_at = tokio::time::Instant::now();
    loop {
        let commit = match commits.recv().await {
            Ok(c) => c,
            // Missed some announcements: the others' polls cover them.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        if connection.is_none() && tokio::time::Instant::now() >= retry_at {
            match client.get_multiplexed_async_connection().await {
                Ok(c) => connection = Some(c),
                Err(e) => {
                    tracing::debug!(cause = %e, "redis unreachable for publishing");
                    retry_at = tokio::time::Instant::now() + BACKOFF_CAP;
                }
            }
        }
        if let Some(c) = connection.as_mut() {
            let sent: redis::RedisResult<()> = c
                .publish(CHANNEL, message(&commit.environment_id, commit.version))
                .await;
            if let Err(e) = sent {
                tracing::debug!(cause = %e, "publishing a head to redis failed");
                connection = None;
            }
        }
    }
}

/// Follows the others' heads, resubscribing with backoff whenever the subscription ends.
async fn subscribe(client: redis::Client, heads: Arc<Heads>) {
    let mut backoff = BACKOFF_START;
    let mut was_connected = true;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(CHANNEL).await {
                Ok(()) => {
                    if !was_connected {
                        tracing::info!("redis is back; following other instances' heads again");
                    }
                    was_connected = true;
                    metrics::gauge!("checkgate_redis_connected").set(1.0);
                    backoff = BACKOFF_START;
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        if let Ok(text) = msg.get_payload::<String>()
                            && let Some((env, version)) = parse(&text)
                        {
                            heads.advance(env, version);
                        }
                    }
                }
                Err(e) => tracing::debug!(cause = %e, "subscribing to redis failed"),
            },
            Err(e) => tracing::debug!(cause = %e, "redis unreachable"),
        }
        if was_connected {
            tracing::warn!("lost redis; other instances' changes arrive by polling meanwhile");
            was_connected = false;
        }
        metrics::gauge!("checkgate_redis_connected").set(0.0);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_junk_is_ignored() {
        let text = message("6f1c0b0e-0000-4000-8000-000000000001", 42);
        assert_eq!(
            parse(&text),
            Some(("6f1c0b0e-0000-4000-8000-000000000001", 42))
        );
        for junk in [
            "",
            "x",
            "e -1",
            "e 1.5",
            " 3",
            &format!("{} 1", "e".repeat(65)),
        ] {
            assert_eq!(parse(junk), None, "{junk:?}");
        }
    }
}

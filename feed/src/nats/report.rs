//! The NATS session's reporter: every [`REPORT_EVERY`] it sends the edge's positions to the
//! control plane (the fleet view, and the token check) and turns the answer into frames for
//! the session; it also checks the stream's identity, and says when the session must start
//! over (the stream recreated or gone, the grant changed, an environment stuck behind its head
//! or ahead of a restored database).

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;
use checkgate_protocol::Frame;
use checkgate_protocol::frame::{Close, CloseCode, EnvPosition, Heartbeat};
use tokio::sync::mpsc;

use super::control::{Control, ControlError};
use super::edge::{Arrived, Event, Positions, lock_arrived};

/// How often the edge reports its positions (and learns the heads and whether its token
/// still stands).
pub(super) const REPORT_EVERY: Duration = Duration::from_millis(500);
/// How often the stream's identity is checked.
const STREAM_CHECK_EVERY: Duration = Duration::from_secs(2);
/// How long an environment may stay behind the control plane's head with nothing arriving
/// before the session is started over (and catches up from the database).
pub(super) const BEHIND_PATIENCE: Duration = Duration::from_secs(3);

/// What the reporter needs of the session.
pub(super) struct Reporter {
    pub(super) control: Control,
    pub(super) fleet: Option<String>,
    pub(super) positions: Positions,
    pub(super) arrived: Arrived,
    pub(super) granted: Vec<String>,
}

/// Reports the edge's positions every [`REPORT_EVERY`] until the session ends; checks the
/// stream's identity every [`STREAM_CHECK_EVERY`] and how far behind the heads the edge is.
pub(super) async fn report(
    reporter: Reporter,
    mut stream: jetstream::stream::Stream,
    created: i128,
    events: mpsc::Sender<Event>,
) {
    let Reporter {
        mut control,
        fleet,
        positions,
        arrived,
        granted,
    } = reporter;
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stream_check = tokio::time::interval(STREAM_CHECK_EVERY);
    stream_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    stream_check.reset();
    // Since when each environment is behind its head, at which version.
    let mut behind: HashMap<String, (tokio::time::Instant, u64)> = HashMap::new();
    // Since when some environment holds more than the control plane's database.
    let mut ahead_since: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let held = positions();
                let report = Frame::Heartbeat(Heartbeat { heads: held.clone() });
                // What arrived counts too: the apply thread may be a moment behind.
                let seen: Vec<EnvPosition> = {
                    let arrived = lock_arrived(&arrived);
                    held.iter()
                        .map(|p| EnvPosition {
                            version: p.version.max(arrived.get(&p.env_id).copied().unwrap_or(0)),
                            ..p.clone()
                        })
                        .collect()
                };
                match control.exchange(&report, fleet.as_deref(), REPORT_EVERY * 4).await {
                    Ok(exchanged) => {
                        for frame in exchanged.frames {
                            let over = match &frame {
                                Frame::Heartbeat(beat) => lagging(&mut behind, &seen, &beat.heads)
                                    .or_else(|| ahead(&mut ahead_since, &held, &beat.heads)),
                                // Sent when the report's environments are not the granted
                                // ones; news only if they are not this session's either.
                                Frame::Welcome(w) => {
                                    let same = w.environments.len() == granted.len()
                                        && w.environments.iter().all(|e| granted.contains(&e.env_id));
                                    if same {
                                        continue;
                                    }
                                    Some("the environments granted to this edge changed".to_owned())
                                }
                                _ => None,
                            };
                            if let Some(why) = over {
                                let _ = events.send(Event::Over(why)).await;
                                return;
                            }
                            if events.send(Event::Frame(frame)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(ControlError::Unauthorized(message)) => {
                        let close = Frame::Close(Close { code: CloseCode::Revoked, message });
                        let _ = events.send(Event::Frame(close)).await;
                        return;
                    }
                    Err(e) => tracing::debug!(cause = %e, "reporting to the control plane failed"),
                }
            }
            _ = stream_check.tick() => match stream.info().await {
                Ok(info) if info.created.unix_timestamp_nanos() != created => {
                    tracing::warn!("the feed's NATS stream was recreated; resyncing from the control plane");
                    metrics::counter!("checkgate_feed_stream_resets_total").increment(1);
                    let _ = events.send(Event::Over("the NATS stream was recreated".into())).await;
                    return;
                }
                Ok(_) => {}
                Err(e) if e.to_string().to_ascii_lowercase().contains("not found") => {
                    tracing::warn!("the feed's NATS stream is gone (did NATS lose its data?); resyncing from the control plane");
                    metrics::counter!("checkgate_feed_stream_resets_total").increment(1);
                    let _ = events.send(Event::Over("the NATS stream is gone".into())).await;
                    return;
                }
                Err(e) => tracing::debug!(cause = %e, "reading the feed stream's info failed"),
            },
        }
    }
}

/// The reason to start over once some environment has held a version past its head (in the
/// same epoch) for [`BEHIND_PATIENCE`]: the database went back in time (restored from a backup
/// of the same epoch), and a new hello replaces what the edge holds.
fn ahead(
    since: &mut Option<tokio::time::Instant>,
    held: &[EnvPosition],
    heads: &[EnvPosition],
) -> Option<String> {
    let past = heads.iter().find(|head| {
        held.iter()
            .any(|p| p.env_id == head.env_id && p.epoch == head.epoch && p.version > head.version)
    });
    let Some(head) = past else {
        *since = None;
        return None;
    };
    let first = *since.get_or_insert_with(tokio::time::Instant::now);
    (first.elapsed() >= BEHIND_PATIENCE).then(|| {
        format!(
            "environment {} holds more than the control plane's head {} (a database restored from a backup?)",
            head.env_id, head.version
        )
    })
}

/// Notes which environments are behind their heads; the reason to start over once one has
/// stayed behind, at the same version, for [`BEHIND_PATIENCE`].
fn lagging(
    behind: &mut HashMap<String, (tokio::time::Instant, u64)>,
    held: &[EnvPosition],
    heads: &[EnvPosition],
) -> Option<String> {
    let now = tokio::time::Instant::now();
    let mut still = HashMap::new();
    for head in heads {
        let version = held
            .iter()
            .find(|p| p.env_id == head.env_id && p.epoch == head.epoch)
            .map_or(0, |p| p.version);
        if head.version <= version {
            continue;
        }
        let since = match behind.get(&head.env_id) {
            Some((since, at)) if *at == version => *since,
            _ => now,
        };
        if now.duration_since(since) >= BEHIND_PATIENCE {
            return Some(format!(
                "environment {} stayed at version {version} behind head {} for {BEHIND_PATIENCE:?}",
                head.env_id, head.version
            ));
        }
        still.insert(head.env_id.clone(), (since, version));
    }
    *behind = still;
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(env: &str, version: u64) -> EnvPosition {
        EnvPosition {
            env_id: env.into(),
            epoch: 1,
            version,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_environment_behind_its_head_without_progress_ends_the_session() {
        let mut behind = HashMap::new();
        // Caught up: nothing noted.
        assert_eq!(lagging(&mut behind, &[at("a", 5)], &[at("a", 5)]), None);
        assert!(behind.is_empty());
        // Behind, then moving: the clock restarts at each new version.
        assert_eq!(lagging(&mut behind, &[at("a", 5)], &[at("a", 9)]), None);
        tokio::time::advance(BEHIND_PATIENCE - Duration::from_millis(100)).await;
        assert_eq!(lagging(&mut behind, &[at("a", 6)], &[at("a", 9)]), None);
        tokio::time::advance(BEHIND_PATIENCE - Duration::from_millis(100)).await;
        assert_eq!(lagging(&mut behind, &[at("a", 6)], &[at("a", 9)]), None);
        // Stuck at 6 for the whole patience: over.
        tokio::time::advance(Duration::from_millis(200)).await;
        let over = lagging(&mut behind, &[at("a", 6)], &[at("a", 9)]);
        assert!(over.is_some_and(|why| why.contains("stayed at version 6")));
        // Another epoch's position counts as holding nothing.
        let mut behind = HashMap::new();
        let other = EnvPosition {
            epoch: 2,
            ..at("b", 9)
        };
        assert_eq!(lagging(&mut behind, &[other], &[at("b", 9)]), None);
        assert_eq!(behind.get("b").map(|(_, v)| *v), Some(0));
    }
}

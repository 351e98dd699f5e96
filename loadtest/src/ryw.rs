//! `read-your-writes`: flag writes through the control plane's REST API at a constant rate;
//! each write's `X-Checkgate-Version` is sent straight back to an edge (the real binary, a child
//! process, following the feed over QUIC or NATS JetStream) as `X-Checkgate-Min-Version` on an
//! evaluation of the written flag. Measured: the write's answer → that evaluation answered 200,
//! i.e. how long a client that reads its own write waits for it. An edge that has not applied
//! the version within its `MIN_VERSION_WAIT_MS` answers 503; the client asks again at once
//! (counted), until a limit.

use std::time::{Duration, Instant};

use checkgate_testkit::http_request;
use serde::Serialize;

use crate::control::{Backing, EdgeProcess};
use crate::feed::{FeedStack, Transport, histogram, micros};
use crate::report::Latency;

/// Flags in the environment; the writes go round them.
const FLAGS: usize = 10;
/// How long a write may take to become readable before it counts as failed.
const READ_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize)]
pub(crate) struct RywReport {
    scenario: &'static str,
    transport: Transport,
    rate_per_second: u32,
    writes: u64,
    /// Writes not answered 200 with a version, or not readable within the limit.
    errors: u64,
    /// Evaluations answered 503 (the version not reached within the edge's wait) and asked
    /// again.
    not_reached_503: u64,
    seconds: f64,
    /// Intended send time → the write's answer (the control plane committed it).
    write_latency: Latency,
    /// The write's answer → an evaluation at the edge with its version as
    /// `X-Checkgate-Min-Version` answered 200 (one HTTP/1 request on a new loopback
    /// connection included).
    write_to_read: Latency,
}

/// The value of header `name` among `head`'s lines (`Name: value`), case-insensitively.
pub(crate) fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// What one write measured.
enum Outcome {
    Read {
        write: Duration,
        read: Duration,
        retries: u64,
    },
    Failed {
        retries: u64,
    },
}

/// One write, then reading it at the edge.
fn write_then_read(
    control: (std::net::SocketAddr, &str, &str),
    edge: (std::net::SocketAddr, &str),
    flag: &str,
    rollout: u64,
    intended: Instant,
) -> Outcome {
    let (control_addr, env, token) = control;
    let (edge_addr, key) = edge;
    let patched = http_request(
        control_addr,
        "PATCH",
        &format!("/api/environments/{env}/flags/{flag}"),
        &[("Authorization", &format!("Bearer {token}"))],
        Some(&format!(r#"{{"rollout_percentage":{rollout}}}"#)),
    );
    let written = Instant::now();
    let version = match &patched {
        Ok((200, head, _)) => header(head, "x-checkgate-version").map(str::to_owned),
        _ => None,
    };
    let Some(version) = version else {
        return Outcome::Failed { retries: 0 };
    };
    let (path, auth) = (format!("/api/v1/evaluate/{flag}"), format!("Bearer {key}"));
    let mut retries = 0;
    while written.elapsed() < READ_LIMIT {
        let answer = http_request(
            edge_addr,
            "POST",
            &path,
            &[
                ("Authorization", &auth),
                ("X-Checkgate-Min-Version", &version),
            ],
            Some(r#"{"context":{"targetingKey":"reader"}}"#),
        );
        match answer {
            Ok((200, _, _)) => {
                return Outcome::Read {
                    write: written - intended,
                    read: written.elapsed(),
                    retries,
                };
            }
            Ok((503, _, _)) => retries += 1,
            _ => return Outcome::Failed { retries },
        }
    }
    Outcome::Failed { retries }
}

/// `read-your-writes`: `rate` writes a second for `duration` (at most `max_writes`).
pub(crate) async fn run(
    bin: &std::path::Path,
    transport: Transport,
    nats_url: Option<&str>,
    rate: u32,
    duration: Duration,
    max_writes: u64,
) -> anyhow::Result<RywReport> {
    let stack = FeedStack::start(bin, Backing::Sqlite, transport, nats_url, &[]).await?;
    let measured = measure(&stack, bin, transport, rate, duration, max_writes).await;
    stack.stop().await?;
    measured
}

async fn measure(
    stack: &FeedStack,
    bin: &std::path::Path,
    transport: Transport,
    rate: u32,
    duration: Duration,
    max_writes: u64,
) -> anyhow::Result<RywReport> {
    let control = &stack.control;
    control.seed_flags(FLAGS)?;
    let key = control.sdk_key("server")?;
    let edge = EdgeProcess::start(bin, control, stack.nats.as_ref()).await?;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let started = Instant::now();
    let mut writes = tokio::task::JoinSet::new();
    let mut n: u64 = 0;
    while started.elapsed() < duration && n < max_writes {
        let intended = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(intended.into()).await;
        let (control_addr, env, token) = (
            control.addr,
            control.environment.clone(),
            control.token.clone(),
        );
        let (edge_addr, key) = (edge.addr, key.clone());
        let flag = format!("load-{}", n as usize % FLAGS);
        writes.spawn_blocking(move || {
            write_then_read(
                (control_addr, &env, &token),
                (edge_addr, &key),
                &flag,
                n % 101,
                intended,
            )
        });
        n += 1;
    }
    let (mut write_h, mut read_h) = (histogram()?, histogram()?);
    let (mut errors, mut not_reached) = (0, 0);
    while let Some(done) = writes.join_next().await {
        match done {
            Ok(Outcome::Read {
                write,
                read,
                retries,
            }) => {
                write_h.saturating_record(micros(write));
                read_h.saturating_record(micros(read));
                not_reached += retries;
            }
            Ok(Outcome::Failed { retries }) => {
                errors += 1;
                not_reached += retries;
            }
            Err(_) => errors += 1,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(edge);
    Ok(RywReport {
        scenario: "read-your-writes",
        transport,
        rate_per_second: rate,
        writes: n,
        errors,
        not_reached_503: not_reached,
        seconds,
        write_latency: Latency::of(&write_h),
        write_to_read: Latency::of(&read_h),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_whatever_their_case() {
        let head = vec![
            "content-type: application/json".to_owned(),
            "X-Checkgate-Version:  42 ".to_owned(),
        ];
        assert_eq!(header(&head, "x-checkgate-version"), Some("42"));
        assert_eq!(header(&head, "Content-Type"), Some("application/json"));
        assert_eq!(header(&head, "etag"), None);
    }
}

//! Each rule of a stream, with a log and a replica made of plain values: no socket, no clock,
//! no task.

use super::*;

/// An environment as a cursor sees it; records which facts were asked for, in order.
struct Fake {
    key_stands: bool,
    client_keys_read_rules: bool,
    generation: u64,
    /// The oldest version whose events are kept: a stream at `oldest - 1` or later is held.
    oldest: u64,
    /// Each version's events (`""` for a version with nothing to send), oldest first.
    log: Vec<(u64, &'static str)>,
    gone: bool,
    /// Announces a new generation as a move, as OFREP's notices do, rather than a loss.
    notices: bool,
    asked: Vec<&'static str>,
}

impl Fake {
    /// Generation 1 at version 3, everything kept, the key standing, rules not for clients.
    fn new() -> Self {
        Self {
            key_stands: true,
            client_keys_read_rules: false,
            generation: 1,
            oldest: 1,
            log: vec![(1, "one "), (2, "two "), (3, "three ")],
            gone: false,
            notices: false,
            asked: Vec::new(),
        }
    }

    fn version(&self) -> u64 {
        self.log.last().map_or(0, |(v, _)| *v)
    }

    fn push(&mut self, events: &'static str) {
        let next = self.version() + 1;
        self.log.push((next, events));
    }
}

impl Env for Fake {
    type Chunk = String;

    fn key_stands(&mut self, _: &[u8; 32]) -> bool {
        self.asked.push("key");
        self.key_stands
    }

    fn client_keys_read_rules(&mut self) -> bool {
        self.asked.push("rules");
        self.client_keys_read_rules
    }

    fn ahead(&mut self, generation: u64, sent: u64) -> Ahead<String> {
        self.asked.push("log");
        let version = self.version();
        if self.gone {
            return Ahead::Gone;
        }
        if generation != self.generation {
            return if self.notices {
                Ahead::Moved {
                    generation: self.generation,
                    version,
                    chunk: Some(format!("notice {version}")),
                }
            } else {
                Ahead::Lost
            };
        }
        if sent >= version {
            return Ahead::Nothing;
        }
        if sent + 1 < self.oldest {
            return Ahead::Lost;
        }
        let events: String = self
            .log
            .iter()
            .filter(|(v, _)| *v > sent)
            .map(|(_, e)| *e)
            .collect();
        Ahead::Moved {
            generation,
            version,
            chunk: (!events.is_empty()).then_some(events),
        }
    }
}

const KEY: [u8; 32] = [7; 32];

fn t0() -> Instant {
    Instant::now()
}

/// A server key's stream at version 3 of generation 1, ending an hour after `start`.
fn cursor(start: Instant) -> Cursor {
    Cursor::new(KEY, false, (1, 3), start + MAX_AGE)
}

#[test]
fn a_change_sends_every_missed_version_at_once_and_then_nothing() {
    let (start, mut env) = (t0(), Fake::new());
    let mut c = cursor(start);
    assert_eq!(c.on_change(&mut env), Step::Idle, "nothing new yet");
    env.push("four ");
    env.push("five ");
    assert_eq!(c.on_change(&mut env), Step::Send("four five ".into()));
    assert_eq!(c.position(), (1, 5));
    assert_eq!(c.on_change(&mut env), Step::Idle, "never sent twice");
    assert_eq!(c.ended(), None);
}

#[test]
fn a_version_with_nothing_to_send_moves_the_stream_on_without_a_chunk() {
    let (start, mut env) = (t0(), Fake::new());
    let mut c = cursor(start);
    env.push("");
    assert_eq!(c.on_change(&mut env), Step::Idle);
    assert_eq!(c.position(), (1, 4));
    env.push("");
    assert_eq!(
        c.on_tick(start, &mut env),
        Step::KeepAlive,
        "a tick with nothing to send keeps the connection alive"
    );
    assert_eq!(c.position(), (1, 5));
}

#[test]
fn the_key_is_checked_before_anything_is_sent() {
    let (start, mut env) = (t0(), Fake::new());
    let mut c = cursor(start);
    env.push("four ");
    env.key_stands = false;
    assert_eq!(c.on_change(&mut env), Step::End(EndReason::Revoked));
    assert_eq!(env.asked, ["key"], "the log is not read for a revoked key");
    assert_eq!(c.position(), (1, 3));

    let mut env = Fake::new();
    let mut c = cursor(start);
    env.key_stands = false;
    assert_eq!(
        c.on_tick(start, &mut env),
        Step::End(EndReason::Revoked),
        "the tick is the backstop"
    );
}

#[test]
fn a_client_keys_stream_of_rules_ends_when_rules_are_withdrawn() {
    let (start, mut env) = (t0(), Fake::new());
    env.client_keys_read_rules = true;
    let mut client = Cursor::new(KEY, true, (1, 3), start + MAX_AGE);
    env.push("four ");
    assert_eq!(client.on_change(&mut env), Step::Send("four ".into()));
    env.client_keys_read_rules = false;
    env.push("");
    assert_eq!(
        client.on_change(&mut env),
        Step::End(EndReason::RulesWithdrawn)
    );

    // A server key's stream, or a stream of evaluations (OFREP), does not depend on it, and
    // does not read the settings.
    let mut env = Fake::new();
    let mut server = cursor(start);
    env.push("four ");
    assert_eq!(server.on_change(&mut env), Step::Send("four ".into()));
    assert_eq!(server.on_tick(start, &mut env), Step::KeepAlive);
    assert!(!env.asked.contains(&"rules"), "{:?}", env.asked);
}

#[test]
fn a_tick_keeps_alive_sends_what_is_ahead_and_ends_at_the_deadline() {
    let (start, mut env) = (t0(), Fake::new());
    let mut c = cursor(start);
    assert_eq!(c.on_tick(start, &mut env), Step::KeepAlive);
    env.push("four ");
    assert_eq!(
        c.on_tick(start + KEEP_ALIVE_EVERY, &mut env),
        Step::Send("four ".into()),
        "events a change has not brought yet go instead of a comment"
    );
    let deadline = c.deadline();
    assert_eq!(
        c.on_tick(deadline - Duration::from_millis(1), &mut env),
        Step::KeepAlive
    );
    assert_eq!(c.on_tick(deadline, &mut env), Step::End(EndReason::MaxAge));
    // A change carries no time: the age is a tick's rule.
    let mut c = cursor(start);
    env.push("five ");
    assert_eq!(c.on_change(&mut env), Step::Send("four five ".into()));
}

#[test]
fn a_revoked_key_is_the_reason_even_past_the_deadline() {
    let (start, mut env) = (t0(), Fake::new());
    let mut c = cursor(start);
    env.key_stands = false;
    assert_eq!(
        c.on_tick(start + MAX_AGE * 2, &mut env),
        Step::End(EndReason::Revoked)
    );
}

#[test]
fn a_stream_the_log_no_longer_holds_ends_behind() {
    let (start, mut env) = (t0(), Fake::new());
    let mut c = cursor(start);
    for _ in 0..5 {
        env.push("more ");
    }
    env.oldest = 6;
    assert_eq!(c.on_change(&mut env), Step::End(EndReason::Behind));

    // A new generation (the environment was replaced) ends a stream of events...
    let mut env = Fake::new();
    let mut c = cursor(start);
    env.generation = 2;
    assert_eq!(c.on_tick(start, &mut env), Step::End(EndReason::Behind));
    // ...while a stream of notices moves to it and stays there.
    let mut env = Fake::new();
    env.notices = true;
    let mut c = cursor(start);
    env.generation = 2;
    assert_eq!(c.on_change(&mut env), Step::Send("notice 3".into()));
    assert_eq!(c.position(), (2, 3));
    assert_eq!(c.on_tick(start, &mut env), Step::KeepAlive);
}

#[test]
fn a_stream_whose_environment_is_gone_ends() {
    let (start, mut env) = (t0(), Fake::new());
    let mut c = cursor(start);
    env.gone = true;
    assert_eq!(c.on_change(&mut env), Step::End(EndReason::EnvironmentGone));
}

#[test]
fn a_driver_still_writing_only_checks() {
    let (start, mut env) = (t0(), Fake::new());
    let mut c = cursor(start);
    env.push("four ");
    assert_eq!(c.check(start, &mut env), None);
    assert_eq!(
        c.position(),
        (1, 3),
        "it does not move on while it cannot send"
    );
    assert_eq!(c.on_change(&mut env), Step::Send("four ".into()));

    env.oldest = 10;
    env.push("five ");
    let mut lost = cursor(start);
    assert_eq!(lost.check(start, &mut env), Some(EndReason::Behind));
    let mut old = cursor(start);
    assert_eq!(
        old.check(old.deadline(), &mut Fake::new()),
        Some(EndReason::MaxAge)
    );
    let mut revoked = cursor(start);
    let mut env = Fake::new();
    env.key_stands = false;
    assert_eq!(revoked.check(start, &mut env), Some(EndReason::Revoked));
}

#[test]
fn catching_up_between_changes_does_not_check_the_key() {
    let (start, mut env) = (t0(), Fake::new());
    let mut c = cursor(start);
    env.push("four ");
    assert_eq!(c.catch_up(&mut env), Step::Send("four ".into()));
    assert_eq!(env.asked, ["log"]);
    assert_eq!(c.catch_up(&mut env), Step::Idle);
    env.oldest = 10;
    env.push("five ");
    let mut lost = cursor(start);
    assert_eq!(lost.catch_up(&mut env), Step::End(EndReason::Behind));
}

#[test]
fn a_stop_ends_a_stream_wherever_it_is_and_for_good() {
    let (start, mut env) = (t0(), Fake::new());
    // Behind, with events ahead, and with the log lost: a stop is a shutdown all the same.
    env.push("four ");
    let mut ahead = cursor(start);
    assert_eq!(ahead.on_stop(), EndReason::Shutdown);
    assert_eq!(ahead.position(), (1, 3), "nothing was sent");
    env.oldest = 10;
    let mut lost = cursor(start);
    assert_eq!(lost.on_stop(), EndReason::Shutdown);

    // After the end, every event answers the same end and reads nothing.
    env.asked.clear();
    assert_eq!(lost.on_change(&mut env), Step::End(EndReason::Shutdown));
    assert_eq!(
        lost.on_tick(start, &mut env),
        Step::End(EndReason::Shutdown)
    );
    assert_eq!(lost.catch_up(&mut env), Step::End(EndReason::Shutdown));
    assert_eq!(lost.check(start, &mut env), Some(EndReason::Shutdown));
    assert!(env.asked.is_empty(), "{:?}", env.asked);
    assert_eq!(lost.ended(), Some(EndReason::Shutdown));

    // The first reason stays.
    let mut revoked = cursor(start);
    let mut env = Fake::new();
    env.key_stands = false;
    assert_eq!(revoked.on_change(&mut env), Step::End(EndReason::Revoked));
    assert_eq!(revoked.on_stop(), EndReason::Revoked);
    assert_eq!(revoked.end(EndReason::ClientGone), EndReason::Revoked);
    let mut left = cursor(start);
    assert_eq!(left.end(EndReason::ClientGone), EndReason::ClientGone);
    assert_eq!(left.on_stop(), EndReason::ClientGone);
}

#[test]
fn every_reason_has_a_label_of_its_own() {
    let labels: Vec<&str> = EndReason::ALL.iter().map(|r| r.as_label()).collect();
    for (i, label) in labels.iter().enumerate() {
        assert!(
            !label.is_empty() && label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{label}"
        );
        assert!(!labels[..i].contains(label), "{label} twice");
    }
}

#[test]
fn the_maximum_age_loses_at_most_a_tenth_to_jitter() {
    assert_eq!(max_age(0), MAX_AGE);
    assert_eq!(max_age(u8::MAX), MAX_AGE - MAX_AGE / 10);
    for r in 1..=u8::MAX {
        assert!(max_age(r) <= max_age(r - 1));
    }
}

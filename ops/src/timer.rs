//! The header-read timer, cheaper per request.
//!
//! hyper's HTTP/1 server arms a timer each time it starts reading a request head and drops it
//! once the head is in. With tokio's timer behind it (hyper-util's `TokioTimer`) that is an
//! insertion into and a removal from the runtime's timer wheel, under its lock, for every
//! request. This timer gives each connection one tokio `Sleep`, its alarm; a request's timer
//! is a deadline and a handle to the alarm. The alarm is moved only when it rings before the
//! deadline that is waiting on it, so a connection serving requests back to back touches the
//! timer wheel about once per timeout period, not per request, and still ends exactly at its
//! deadline. Measured with callgrind (`scripts/callgrind-edge.sh one`), a single-flag
//! evaluation costs 39,099 instructions with no header timeout, 42,128 with tokio's timer and
//! 41,547 with this one: the rest of the timeout's cost is hyper's own (with a timeout set it
//! polls the connection once more per request, to start the next head's timer).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

/// A connection's timer: hand one to each connection's `http1::Builder`. It serves one
/// deadline at a time, as hyper's HTTP/1 server asks for them (the header-read timeout only).
#[derive(Debug, Default)]
pub(crate) struct ConnectionTimer {
    alarm: Arc<Mutex<Option<Alarm>>>,
}

#[derive(Debug)]
struct Alarm {
    sleep: Pin<Box<Sleep>>,
    /// When `sleep` rings.
    at: tokio::time::Instant,
}

impl hyper::rt::Timer for ConnectionTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Deadline {
            at: tokio::time::Instant::from_std(deadline),
            alarm: Arc::clone(&self.alarm),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Deadline>() {
            Some(mut deadline) => deadline.at = tokio::time::Instant::from_std(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// One deadline of a connection, waited for on the connection's alarm.
#[derive(Debug)]
struct Deadline {
    at: tokio::time::Instant,
    alarm: Arc<Mutex<Option<Alarm>>>,
}

impl hyper::rt::Sleep for Deadline {}

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let at = self.at;
        let mut alarm = self.alarm.lock().unwrap_or_else(PoisonError::into_inner);
        let alarm = alarm.get_or_insert_with(|| Alarm {
            sleep: Box::pin(tokio::time::sleep_until(at)),
            at,
        });
        loop {
            // Set for a later deadline (one that has since been given up): ring sooner.
            if alarm.at > at {
                alarm.sleep.as_mut().reset(at);
                alarm.at = at;
            }
            match alarm.sleep.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if alarm.at >= at => return Poll::Ready(()),
                // Rang for an earlier deadline, since given up: wait on for this one.
                Poll::Ready(()) => {
                    alarm.sleep.as_mut().reset(at);
                    alarm.at = at;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer as _;

    fn poll(sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>) -> Poll<()> {
        let waker = std::task::Waker::noop();
        sleep.as_mut().poll(&mut Context::from_waker(waker))
    }

    #[tokio::test(start_paused = true)]
    async fn each_deadline_is_kept_exactly_while_the_alarm_moves_only_when_it_rings_early() {
        let timer = ConnectionTimer::default();
        let start = tokio::time::Instant::now().into_std();
        let mut first = timer.sleep_until(start + Duration::from_secs(10));
        assert_eq!(poll(&mut first), Poll::Pending);
        drop(first);

        // The next request's deadline is later; the alarm stays where the first one set it.
        tokio::time::advance(Duration::from_secs(4)).await;
        let mut second = timer.sleep_until(start + Duration::from_secs(14));
        assert_eq!(poll(&mut second), Poll::Pending);
        let armed = |timer: &ConnectionTimer| {
            timer
                .alarm
                .lock()
                .unwrap()
                .as_ref()
                .map(|a| a.at.into_std())
        };
        assert_eq!(armed(&timer), Some(start + Duration::from_secs(10)));

        // The alarm rings at 10 s, for a deadline given up: the second waits on to 14 s.
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(poll(&mut second), Poll::Pending);
        assert_eq!(armed(&timer), Some(start + Duration::from_secs(14)));
        tokio::time::advance(Duration::from_millis(3_999)).await;
        assert_eq!(poll(&mut second), Poll::Pending);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(poll(&mut second), Poll::Ready(()));

        // Reset moves a deadline without a new alarm; an earlier one pulls the alarm in.
        timer.reset(&mut second, start + Duration::from_secs(30));
        assert_eq!(poll(&mut second), Poll::Pending);
        timer.reset(&mut second, start + Duration::from_secs(20));
        assert_eq!(poll(&mut second), Poll::Pending);
        assert_eq!(armed(&timer), Some(start + Duration::from_secs(20)));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(poll(&mut second), Poll::Ready(()));
    }
}

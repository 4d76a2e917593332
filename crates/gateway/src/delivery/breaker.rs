//! The circuit breaker of one queue's other side (GoTo for registrations, the user's URL
//! for forwarded events).
//!
//! Closed: attempts go out as items come due. After `THRESHOLD` failures in a row (or
//! one 429 with `Retry-After`) it opens: nothing is attempted except one probe at a
//! time, spaced 1 s, 2 s, … up to `PROBE_CAP`. The first answer that is not a failure
//! closes it, and the engine then makes the whole backlog due at once, so a long outage
//! does not leave items waiting out long backoffs after the other side is back.
//!
//! `Retry-After` is a promise kept for the whole queue: after a 429 saying "wait N s"
//! at time t, nothing is attempted before t + N ([`Breaker::quiet_until`]), whether the
//! breaker is open or not. And only an attempt sent after the latest failure can close
//! it: a probe already in flight when the 429 arrived proves nothing about now.
//!
//! Times are on the gateway's clock, so tests move them.

use std::sync::Mutex;
use std::time::Duration;

use g2w_goto::Timestamp;

/// Failures in a row that open the breaker.
const THRESHOLD: u32 = 3;
/// The first wait between probes; it doubles up to the cap.
const PROBE_BASE: Duration = Duration::from_secs(1);
/// The longest wait between probes: after GoTo comes back, the backlog starts draining
/// within this long, however long the outage was.
pub(crate) const PROBE_CAP: Duration = Duration::from_secs(4);
/// A `Retry-After` longer than this is cut to it.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

/// What the breaker allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit {
    /// Deliver as usual.
    Deliver,
    /// Deliver one registration, whatever its backoff says, to learn whether GoTo is back.
    Probe,
    /// Deliver nothing before this time.
    WaitUntil(Timestamp),
}

/// The breaker's state, for `/readyz` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BreakerState {
    /// Deliveries flow.
    Closed,
    /// Deliveries wait for a probe to succeed.
    Open {
        /// Since when.
        since: Timestamp,
        /// The failure that opened it (or the latest probe's).
        reason: String,
    },
}

#[derive(Debug)]
struct Open {
    since: Timestamp,
    reason: String,
    probes: u32,
    next_probe_at: Timestamp,
    probing: bool,
}

#[derive(Debug, Default)]
struct Inner {
    failures_in_a_row: u32,
    open: Option<Open>,
    /// When the latest failure was seen.
    last_failure_at: Option<Timestamp>,
    /// Nothing goes out before this (the latest `Retry-After`).
    quiet_until: Option<Timestamp>,
}

/// The breaker.
#[derive(Debug, Default)]
pub(crate) struct Breaker(Mutex<Inner>);

fn retry_after(retry_after: Option<Duration>) -> Duration {
    retry_after.map_or(Duration::ZERO, |d| d.min(RETRY_AFTER_CAP))
}

impl Breaker {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// What a loop may do at `now`. A [`Permit::Probe`] must be followed by
    /// [`Self::succeeded`], [`Self::failed`] or [`Self::no_probe`].
    pub fn permit(&self, now: Timestamp) -> Permit {
        self.with(|inner| match &mut inner.open {
            _ if inner.quiet_until.is_some_and(|q| now < q) => {
                Permit::WaitUntil(inner.quiet_until.unwrap_or(now))
            }
            None => Permit::Deliver,
            Some(open) if open.probing => Permit::WaitUntil(now + PROBE_BASE),
            Some(open) if now >= open.next_probe_at => {
                open.probing = true;
                Permit::Probe
            }
            Some(open) => Permit::WaitUntil(open.next_probe_at),
        })
    }

    /// Until when nothing may be attempted, if a `Retry-After` still holds at `now`.
    pub fn quiet_until(&self, now: Timestamp) -> Option<Timestamp> {
        self.with(|inner| inner.quiet_until.filter(|q| now < *q))
    }

    /// The other side answered (anything but a failure) an attempt sent at `sent_at`.
    /// True when this closed an open breaker. An attempt sent before the latest failure
    /// changes nothing: it says how the other side was, not how it is.
    pub fn succeeded(&self, sent_at: Timestamp) -> bool {
        self.with(|inner| {
            if inner.last_failure_at.is_some_and(|failed| sent_at < failed) {
                if let Some(open) = &mut inner.open {
                    open.probing = false;
                }
                return false;
            }
            inner.failures_in_a_row = 0;
            inner.open.take().is_some()
        })
    }

    /// An attempt failed at `now` in a way that says the other side is unwell (5xx,
    /// timeout, 429, a token refused after a refresh).
    pub fn failed(&self, now: Timestamp, retry_after: Option<Duration>, reason: &str) {
        let wait_at_least = self::retry_after(retry_after);
        self.with(|inner| {
            inner.last_failure_at = Some(inner.last_failure_at.map_or(now, |t| t.max(now)));
            if !wait_at_least.is_zero() {
                let until = now + wait_at_least;
                inner.quiet_until = Some(inner.quiet_until.map_or(until, |q| q.max(until)));
            }
            inner.failures_in_a_row = inner.failures_in_a_row.saturating_add(1);
            match &mut inner.open {
                Some(open) => {
                    open.probing = false;
                    open.probes = open.probes.saturating_add(1);
                    let backoff = PROBE_BASE
                        .saturating_mul(1 << open.probes.min(8))
                        .min(PROBE_CAP);
                    open.next_probe_at = now + backoff.max(wait_at_least);
                    reason.clone_into(&mut open.reason);
                }
                None if inner.failures_in_a_row >= THRESHOLD || !wait_at_least.is_zero() => {
                    tracing::warn!(reason, "GoTo is failing: deliveries wait for a probe");
                    inner.open = Some(Open {
                        since: now,
                        reason: reason.to_owned(),
                        probes: 0,
                        next_probe_at: now + PROBE_BASE.max(wait_at_least),
                        probing: false,
                    });
                }
                None => {}
            }
        });
    }

    /// The probe found nothing to deliver or learned nothing about GoTo (paused, the
    /// store failed): another loop may probe.
    pub fn no_probe(&self) {
        self.with(|inner| {
            if let Some(open) = &mut inner.open {
                open.probing = false;
            }
        });
    }

    /// Whether deliveries are held back (cheaper than [`Self::state`] on hot paths).
    pub fn is_open(&self) -> bool {
        self.with(|inner| inner.open.is_some())
    }

    /// The state now.
    pub fn state(&self) -> BreakerState {
        self.with(|inner| match &inner.open {
            None => BreakerState::Closed,
            Some(open) => BreakerState::Open {
                since: open.since,
                reason: open.reason.clone(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ms` milliseconds into a test.
    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn opens_after_failures_in_a_row_and_probes_one_at_a_time() {
        let b = Breaker::default();
        b.failed(t(0), None, "503");
        b.failed(t(1), None, "503");
        assert_eq!(
            b.permit(t(2)),
            Permit::Deliver,
            "two failures are not an outage"
        );
        b.failed(t(2), None, "503");
        assert_eq!(b.permit(t(3)), Permit::WaitUntil(t(1_002)));
        assert_eq!(b.permit(t(1_002)), Permit::Probe);
        assert!(
            matches!(b.permit(t(1_003)), Permit::WaitUntil(_)),
            "one probe at a time"
        );
        b.failed(t(1_100), None, "503");
        assert_eq!(
            b.permit(t(1_200)),
            Permit::WaitUntil(t(3_100)),
            "the wait doubles"
        );
        assert_eq!(b.permit(t(3_100)), Permit::Probe);
        assert!(b.succeeded(t(3_100)), "a success closes it");
        assert_eq!(b.permit(t(3_200)), Permit::Deliver);
        assert!(!b.succeeded(t(3_200)), "already closed");
    }

    #[test]
    fn probes_are_never_further_apart_than_the_cap() {
        let b = Breaker::default();
        let mut now = Timestamp::EPOCH;
        for _ in 0..3 {
            b.failed(now, None, "down");
        }
        for _ in 0..50 {
            let Permit::WaitUntil(at) = b.permit(now) else {
                panic!("open")
            };
            assert!(at.since(now) <= PROBE_CAP);
            now = at;
            assert_eq!(b.permit(now), Permit::Probe);
            b.failed(now, None, "down");
        }
    }

    #[test]
    fn retry_after_opens_at_once_and_is_honoured_up_to_a_cap() {
        let b = Breaker::default();
        b.failed(t(0), Some(Duration::from_secs(7)), "429");
        assert_eq!(b.permit(t(1)), Permit::WaitUntil(t(7_000)));
        assert_eq!(b.permit(t(7_000)), Permit::Probe);
        b.failed(t(7_000), Some(Duration::from_secs(86_400)), "429");
        assert_eq!(
            b.permit(t(7_001)),
            Permit::WaitUntil(t(7_000) + RETRY_AFTER_CAP)
        );
        b.no_probe();
        assert!(matches!(
            b.state(),
            BreakerState::Open {
                since: Timestamp::EPOCH,
                ..
            }
        ));
    }

    #[test]
    fn retry_after_holds_everything_back_and_only_a_later_attempt_closes_it() {
        let b = Breaker::default();
        // A 429 arrives at 1 s saying "wait 2 s"; another attempt was sent at 0.5 s.
        b.failed(t(1_000), Some(Duration::from_secs(2)), "429");
        assert_eq!(b.quiet_until(t(1_500)), Some(t(3_000)));
        assert_eq!(b.permit(t(2_999)), Permit::WaitUntil(t(3_000)));
        assert!(
            !b.succeeded(t(500)),
            "the attempt sent before the 429 proves nothing"
        );
        assert!(b.is_open());
        assert_eq!(b.quiet_until(t(3_000)), None);
        assert_eq!(b.permit(t(3_000)), Permit::Probe);
        assert!(b.succeeded(t(3_000)), "an attempt sent after it does");
        assert_eq!(b.permit(t(3_001)), Permit::Deliver);
        // Retry-After holds even while the breaker stays closed (a lone 429 opens it,
        // and a later success closes it, but the promise stands until it runs out).
        b.failed(t(4_000), Some(Duration::from_secs(5)), "429");
        assert!(b.succeeded(t(4_500)));
        assert_eq!(b.permit(t(4_600)), Permit::WaitUntil(t(9_000)));
    }
}

//! The circuit breaker of one queue's other side (GoTo for registrations, the user's URL
//! for forwarded events).
//!
//! Its only job is the other side being unwell (5xx, timeouts, dropped connections, a
//! token refused even after a refresh). A 429 is not that: it is the other side asking
//! for a slower pace, which the queue's rate limiter keeps, and the breaker never hears
//! of it.
//!
//! Closed: attempts go out as items come due. After `THRESHOLD` failures in a row it
//! opens: nothing is attempted except one probe at a time, spaced 1 s, 2 s, … up to
//! `PROBE_CAP`. The first answer that is not a failure closes it, and the engine then
//! makes the whole backlog due at once, so a long outage does not leave items waiting
//! out long backoffs after the other side is back. Only an attempt sent after the latest
//! failure can close it: one already in flight when the failure arrived proves nothing
//! about now.
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
}

/// The breaker.
#[derive(Debug, Default)]
pub(crate) struct Breaker(Mutex<Inner>);

impl Breaker {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// What a loop may do at `now`. A [`Permit::Probe`] must be followed by
    /// [`Self::succeeded`], [`Self::failed`] or [`Self::no_probe`].
    pub fn permit(&self, now: Timestamp) -> Permit {
        self.with(|inner| match &mut inner.open {
            None => Permit::Deliver,
            Some(open) if open.probing => Permit::WaitUntil(now + PROBE_BASE),
            Some(open) if now >= open.next_probe_at => {
                open.probing = true;
                Permit::Probe
            }
            Some(open) => Permit::WaitUntil(open.next_probe_at),
        })
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
    /// timeout, a token refused after a refresh; never a 429).
    pub fn failed(&self, now: Timestamp, reason: &str) {
        self.with(|inner| {
            inner.last_failure_at = Some(inner.last_failure_at.map_or(now, |t| t.max(now)));
            inner.failures_in_a_row = inner.failures_in_a_row.saturating_add(1);
            match &mut inner.open {
                Some(open) => {
                    open.probing = false;
                    open.probes = open.probes.saturating_add(1);
                    let backoff = PROBE_BASE
                        .saturating_mul(1 << open.probes.min(8))
                        .min(PROBE_CAP);
                    open.next_probe_at = now + backoff;
                    reason.clone_into(&mut open.reason);
                }
                None if inner.failures_in_a_row >= THRESHOLD => {
                    tracing::warn!(
                        reason,
                        "the other side is failing: attempts wait for a probe"
                    );
                    inner.open = Some(Open {
                        since: now,
                        reason: reason.to_owned(),
                        probes: 0,
                        next_probe_at: now + PROBE_BASE,
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
        b.failed(t(0), "503");
        b.failed(t(1), "503");
        assert_eq!(
            b.permit(t(2)),
            Permit::Deliver,
            "two failures are not an outage"
        );
        b.failed(t(2), "503");
        assert_eq!(b.permit(t(3)), Permit::WaitUntil(t(1_002)));
        assert_eq!(b.permit(t(1_002)), Permit::Probe);
        assert!(
            matches!(b.permit(t(1_003)), Permit::WaitUntil(_)),
            "one probe at a time"
        );
        b.failed(t(1_100), "503");
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
            b.failed(now, "down");
        }
        for _ in 0..50 {
            let Permit::WaitUntil(at) = b.permit(now) else {
                panic!("open")
            };
            assert!(at.since(now) <= PROBE_CAP);
            now = at;
            assert_eq!(b.permit(now), Permit::Probe);
            b.failed(now, "down");
        }
    }

    #[test]
    fn an_attempt_sent_before_the_latest_failure_closes_nothing() {
        let b = Breaker::default();
        for at in [1_000, 1_001, 1_002] {
            b.failed(t(at), "503");
        }
        assert!(
            !b.succeeded(t(500)),
            "an answer to a call sent before the failures proves nothing"
        );
        assert!(b.is_open());
        assert_eq!(b.permit(t(2_002)), Permit::Probe);
        assert!(b.succeeded(t(2_002)), "a call sent after them does");
        assert_eq!(b.permit(t(2_003)), Permit::Deliver);
    }
}

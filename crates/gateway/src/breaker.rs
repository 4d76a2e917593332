//! The circuit breaker for one GoTo account's deliveries.
//!
//! Closed: deliveries go out as they come due. After `THRESHOLD` failures in a row (or
//! one 429 with `Retry-After`) it opens: no delivery is attempted except one probe at a
//! time, spaced 1 s, 2 s, … up to `PROBE_CAP` (or as long as GoTo's `Retry-After` asks).
//! The first answer GoTo gives that is not a failure closes it, and the worker then
//! makes the whole backlog due at once, so a long outage does not leave registrations
//! waiting out long backoffs after GoTo is back.
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

    /// What a delivery loop may do at `now`. A [`Permit::Probe`] must be followed by
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

    /// GoTo answered (anything but a failure). True when this closed an open breaker.
    pub fn succeeded(&self) -> bool {
        self.with(|inner| {
            inner.failures_in_a_row = 0;
            inner.open.take().is_some()
        })
    }

    /// A delivery failed in a way that says GoTo is unwell (5xx, timeout, 429, a token
    /// refused after a refresh).
    pub fn failed(&self, now: Timestamp, retry_after: Option<Duration>, reason: &str) {
        let wait_at_least = self::retry_after(retry_after);
        self.with(|inner| {
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
        assert!(b.succeeded(), "a success closes it");
        assert_eq!(b.permit(t(3_200)), Permit::Deliver);
        assert!(!b.succeeded(), "already closed");
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
}

//! How soon a registration just stored would be delivered: the queue ahead of it, at
//! the pace deliveries go. Intake uses it so that a visitor never sits out the sync wait
//! for an answer that was certain from the start (a `202` behind a long backlog).
//!
//! The pace is the smaller of GoTo's rate for this account as the limiter now keeps it
//! (slower after GoTo's 429s; less the share kept for form look-ups) and what the
//! delivery slots manage at GoTo's recent answer time. The
//! queue is counted in the store (due and in-flight registrations, from indexes) at most
//! every [`RECOUNT_EVERY`], plus what this gateway stored since; deliveries since the
//! count are not subtracted, so the estimate errs towards answering at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use g2w_goto::{RateLimiter, Timestamp};
use g2w_store::QueueName;

/// How old a count of the queue may be.
const RECOUNT_EVERY: Duration = Duration::from_millis(250);
/// GoTo's answer time assumed before any delivery was timed.
const FIRST_GUESS: Duration = Duration::from_millis(250);
/// How much each new answer time moves the smoothed one.
const SMOOTHING: f64 = 0.2;

/// The delivery pace and the queue.
#[derive(Debug)]
pub(crate) struct Pace {
    /// The account's pace.
    limiter: Arc<RateLimiter>,
    /// GoTo calls a second kept for form look-ups.
    lookups: f64,
    /// Deliveries in flight at once.
    slots: f64,
    /// GoTo's recent answer time, smoothed, in seconds.
    latency: Mutex<f64>,
    /// The queue as last counted, and when.
    counted: Mutex<Option<(Instant, u64)>>,
    /// Registrations this gateway stored since that count.
    stored_since: AtomicU64,
    recounting: AtomicBool,
}

impl Pace {
    /// The pace `limiter` keeps for the account, of which form look-ups may use
    /// `lookup_rate`; `slots` deliveries at once.
    pub(crate) fn new(limiter: Arc<RateLimiter>, lookup_rate: u32, slots: usize) -> Self {
        Self {
            limiter,
            lookups: f64::from(lookup_rate),
            slots: slots.max(1) as f64,
            latency: Mutex::new(FIRST_GUESS.as_secs_f64()),
            counted: Mutex::new(None),
            stored_since: AtomicU64::new(0),
            recounting: AtomicBool::new(false),
        }
    }

    /// A delivery took `took` (GoTo's answer, and waiting for the rate limit).
    pub(crate) fn delivered_in(&self, took: Duration) {
        let mut latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        *latency += SMOOTHING * (took.as_secs_f64() - *latency);
    }

    /// A registration joined the queue.
    pub(crate) fn stored(&self) {
        self.stored_since.fetch_add(1, Ordering::Relaxed);
    }

    /// How long the newest registration of `profile` should take to be delivered: the
    /// queue (itself included) at the current pace, and GoTo's answer time.
    pub(crate) async fn expected_delivery(
        &self,
        store: &g2w_store::Store,
        profile: &str,
        now: Timestamp,
    ) -> Duration {
        let queue = self.queue(store, profile, now).await;
        let latency = *self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let by_slots = self.slots / latency.max(0.001);
        let per_second = self.rate().map_or(by_slots, |r| r.min(by_slots));
        Duration::from_secs_f64(queue as f64 / per_second + latency)
    }

    /// Deliveries a second the account's pace leaves, if limited.
    fn rate(&self) -> Option<f64> {
        self.limiter.current_rate().map(|r| {
            if r > self.lookups {
                r - self.lookups
            } else {
                r
            }
        })
    }

    /// The queue: the last count if recent (or being renewed by another request), else
    /// a new one.
    async fn queue(&self, store: &g2w_store::Store, profile: &str, now: Timestamp) -> u64 {
        let last = *self.counted.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = last.is_some_and(|(at, _)| at.elapsed() < RECOUNT_EVERY);
        let since = self.stored_since.load(Ordering::Relaxed);
        if fresh || self.recounting.swap(true, Ordering::AcqRel) {
            return last.map_or(since, |(_, n)| n + since);
        }
        let counted = store
            .jobs_waiting(QueueName::Registrations, profile, now)
            .await;
        self.recounting.store(false, Ordering::Release);
        match counted {
            Ok(n) => {
                self.stored_since.fetch_sub(since, Ordering::Relaxed);
                *self.counted.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), n));
                n + self.stored_since.load(Ordering::Relaxed)
            }
            Err(e) => {
                tracing::debug!("cannot count the delivery queue: {e}");
                last.map_or(since, |(_, n)| n + since)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(pace: &Pace, queue: u64) -> Duration {
        let latency = *pace.latency.lock().unwrap_or_else(|e| e.into_inner());
        let by_slots = pace.slots / latency;
        Duration::from_secs_f64(
            queue as f64 / pace.rate().map_or(by_slots, |r| r.min(by_slots)) + latency,
        )
    }

    fn limiter(rate: u32) -> Arc<RateLimiter> {
        Arc::new(RateLimiter::new(rate, 1))
    }

    #[test]
    fn the_pace_is_the_slower_of_the_rate_and_the_slots() {
        // GoTo's 10 a second (kept at 9.5), 2 of them for look-ups: 7.5 deliveries a second.
        let pace = Pace::new(limiter(10), 2, 4);
        for _ in 0..50 {
            pace.delivered_in(Duration::from_millis(100));
        }
        let backlog = expected(&pace, 698);
        assert!(
            backlog > Duration::from_secs(88) && backlog < Duration::from_secs(98),
            "{backlog:?}"
        );
        assert!(expected(&pace, 1) < Duration::from_millis(300));
        // Slow answers: four slots at 2 s each deliver 2 a second.
        for _ in 0..50 {
            pace.delivered_in(Duration::from_secs(2));
        }
        let slow = expected(&pace, 10);
        assert!(slow > Duration::from_secs(6), "{slow:?}");
        // No rate limit: the slots alone.
        let unlimited = Pace::new(limiter(0), 2, 4);
        assert!(expected(&unlimited, 4) < Duration::from_millis(600));
    }
}

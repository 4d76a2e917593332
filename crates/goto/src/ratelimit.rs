//! A client-side rate limiter shared by every call of one GoTo account, so g2w stays
//! under GoTo's limit (10 requests a second by default) instead of learning it from
//! 429s. Calls wait their turn; they are spaced evenly, with an optional burst.
//!
//! GoTo's limit belongs to the account, not to a process: with a [`SharedBudget`] (kept
//! in g2w's database) every gateway and import run books from one schedule.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// A schedule of permits kept outside this process, shared by every process that uses it.
#[async_trait::async_trait]
pub trait SharedBudget: Send + Sync {
    /// Books `permits` (one every `interval`, `burst` back to back) and says how long to
    /// wait before using them; `None` (nothing booked) when that would exceed
    /// `max_wait`.
    ///
    /// # Errors
    /// Why the schedule could not be read or written.
    async fn book(
        &self,
        interval: Duration,
        burst: u32,
        permits: u32,
        max_wait: Option<Duration>,
    ) -> Result<Option<Duration>, crate::StoreFailure>;

    /// Books nothing for `wait` from now (GoTo answered 429 with `Retry-After`): every
    /// process sharing the schedule waits it out.
    ///
    /// # Errors
    /// Why the schedule could not be written.
    async fn hold(&self, wait: Duration) -> Result<(), crate::StoreFailure>;
}

/// Evenly spaced permits (GCRA): at most `rate` a second, `burst` of them back to back.
pub struct RateLimiter {
    interval: Option<Duration>,
    tolerance: Duration,
    burst: u32,
    /// When the next permit is theoretically due.
    next_due: Mutex<Option<Instant>>,
    /// No permit before this (GoTo's latest `Retry-After`), limited or not, on `clock`.
    held_until: Mutex<Option<crate::Timestamp>>,
    /// The clock `Retry-After` is kept on (the gateway's, which tests move).
    clock: crate::Clock,
    shared: Option<Arc<dyn SharedBudget>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("interval", &self.interval)
            .field("burst", &self.burst)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// `rate` permits a second (0 = unlimited), the first `burst` (at least 1) at once.
    pub fn new(rate: u32, burst: u32) -> Self {
        let interval = (rate > 0).then(|| Duration::from_secs(1) / rate);
        let tolerance = interval.unwrap_or_default() * burst.saturating_sub(1);
        Self {
            interval,
            tolerance,
            burst: burst.max(1),
            next_due: Mutex::new(None),
            held_until: Mutex::new(None),
            clock: crate::system_clock(),
            shared: None,
        }
    }

    /// A limiter that books from `budget`, shared with other processes. When the budget
    /// cannot be reached it falls back to this process's own schedule (and says so).
    pub fn shared(rate: u32, burst: u32, budget: Arc<dyn SharedBudget>) -> Self {
        Self {
            shared: Some(budget),
            ..Self::new(rate, burst)
        }
    }

    /// Books from the shared budget: `Some(Some(at))` to wait for, `Some(None)` refused,
    /// `None` when there is no shared budget or it failed (use the local schedule).
    async fn book_shared(
        &self,
        permits: u32,
        max_wait: Option<Duration>,
    ) -> Option<Option<Instant>> {
        let (budget, interval) = (self.shared.clone()?, self.interval?);
        let burst = self.burst;
        match budget.book(interval, burst, permits, max_wait).await {
            Ok(wait) => Some(wait.map(|w| Instant::now() + w)),
            Err(e) => {
                tracing::warn!(
                    "shared GoTo budget unavailable ({}); pacing this process alone",
                    crate::chain(&e)
                );
                None
            }
        }
    }

    /// Permits a second, or `None` when unlimited.
    pub fn per_second(&self) -> Option<f64> {
        self.interval.map(|i| 1.0 / i.as_secs_f64())
    }

    /// Keeps `Retry-After` on `clock` instead of the system's (tests move it).
    #[must_use]
    pub fn with_clock(mut self, clock: crate::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// GoTo answered 429 with `Retry-After: wait`: no permit is given before it has run
    /// out, here and (with a shared budget) in every process booking from the same one.
    pub async fn hold(&self, wait: Duration) {
        let until = (self.clock)() + wait;
        {
            let mut held = self.held_until.lock().unwrap_or_else(|e| e.into_inner());
            *held = Some(held.map_or(until, |h| h.max(until)));
        }
        if let Some(budget) = &self.shared
            && let Err(e) = budget.hold(wait).await
        {
            tracing::warn!(
                "cannot tell other processes to wait out GoTo's Retry-After ({})",
                crate::chain(&e)
            );
        }
    }

    /// How long GoTo's latest `Retry-After` still holds everything back.
    fn held(&self) -> Option<Duration> {
        let held = *self.held_until.lock().unwrap_or_else(|e| e.into_inner());
        let now = (self.clock)();
        held.filter(|h| *h > now).map(|h| h.since(now))
    }

    /// Waits until a permit is free and takes it.
    pub async fn acquire(&self) {
        if let Some(wait) = self.held() {
            tokio::time::sleep(wait).await;
        }
        let at = match self.book_shared(1, None).await {
            Some(at) => at,
            None => self.reserve(1, None),
        };
        if let Some(at) = at {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Takes `permits` permits if they are free within `max_wait`, waiting for them;
    /// otherwise takes nothing and returns false at once. For work that may be
    /// skipped (a cache refresh, a page view) so it never queues up behind itself.
    pub async fn try_acquire(&self, permits: u32, max_wait: Duration) -> bool {
        if let Some(wait) = self.held() {
            if wait > max_wait {
                return false;
            }
            tokio::time::sleep(wait).await;
        }
        let at = match self.book_shared(permits, Some(max_wait)).await {
            Some(at) => at,
            None => self.reserve(permits, Some(max_wait)),
        };
        match at {
            Some(at) => {
                tokio::time::sleep_until(at).await;
                true
            }
            None => self.interval.is_none(),
        }
    }

    /// Books `permits` permits and says when the last may be used; `None` when
    /// unlimited, or when it would be later than `max_wait` from now (nothing booked).
    fn reserve(&self, permits: u32, max_wait: Option<Duration>) -> Option<Instant> {
        let interval = self.interval?;
        let mut due = self.next_due.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut tat = due.map_or(now, |t| t.max(now));
        let mut allowed_at = now;
        for _ in 0..permits.max(1) {
            allowed_at = tat.checked_sub(self.tolerance).map_or(now, |t| t.max(now));
            tat = tat.max(allowed_at) + interval;
        }
        if max_wait.is_some_and(|max| allowed_at > now + max) {
            return None;
        }
        *due = Some(tat);
        Some(allowed_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_every_permit_back_limited_or_not() {
        for limiter in [RateLimiter::new(10, 1), RateLimiter::new(0, 1)] {
            // A clock that follows tokio's paused one.
            let origin = (crate::Timestamp::now(), Instant::now());
            let limiter =
                limiter.with_clock(std::sync::Arc::new(move || origin.0 + origin.1.elapsed()));
            let start = Instant::now();
            limiter.hold(Duration::from_secs(2)).await;
            assert!(
                !limiter.try_acquire(1, Duration::from_secs(1)).await,
                "a look-up gives up rather than wait it out"
            );
            limiter.acquire().await;
            assert!(start.elapsed() >= Duration::from_secs(2));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn permits_are_spaced_by_the_rate() {
        let limiter = RateLimiter::new(10, 1);
        let start = Instant::now();
        for _ in 0..11 {
            limiter.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "11 permits: the first free, 10 spaced"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_then_spacing_resumes() {
        let limiter = RateLimiter::new(10, 5);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_rate() {
        let limiter = std::sync::Arc::new(RateLimiter::new(20, 1));
        let start = Instant::now();
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move { l.acquire().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::from_millis(1950));
    }

    #[tokio::test(start_paused = true)]
    async fn try_acquire_takes_nothing_when_the_wait_is_too_long() {
        let limiter = RateLimiter::new(10, 1);
        let start = Instant::now();
        assert!(limiter.try_acquire(2, Duration::from_millis(100)).await);
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(100),
            "the second permit"
        );
        assert!(
            !limiter.try_acquire(2, Duration::from_millis(150)).await,
            "two more would need 200 ms"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(100),
            "refused at once"
        );
        limiter.acquire().await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(200),
            "the refusal booked nothing"
        );
        assert!(RateLimiter::new(0, 1).try_acquire(5, Duration::ZERO).await);
    }

    #[tokio::test]
    async fn zero_is_unlimited() {
        let limiter = RateLimiter::new(0, 1);
        let start = std::time::Instant::now();
        for _ in 0..10_000 {
            limiter.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}

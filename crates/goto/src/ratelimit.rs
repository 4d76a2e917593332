//! A client-side rate limiter shared by every call of one GoTo account, so g2w stays
//! under GoTo's limit (10 requests a second by default) instead of learning it from
//! 429s. Calls wait their turn; they are spaced evenly, with an optional burst.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Evenly spaced permits (GCRA): at most `rate` a second, `burst` of them back to back.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Option<Duration>,
    tolerance: Duration,
    /// When the next permit is theoretically due.
    next_due: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// `rate` permits a second (0 = unlimited), the first `burst` (at least 1) at once.
    pub fn new(rate: u32, burst: u32) -> Self {
        let interval = (rate > 0).then(|| Duration::from_secs(1) / rate);
        let tolerance = interval.unwrap_or_default() * burst.saturating_sub(1);
        Self {
            interval,
            tolerance,
            next_due: Mutex::new(None),
        }
    }

    /// Waits until a permit is free and takes it.
    pub async fn acquire(&self) {
        if let Some(at) = self.reserve(1, None) {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Takes `permits` permits if they are free within `max_wait`, waiting for them;
    /// otherwise takes nothing and returns false at once. For work that may be
    /// skipped (a cache refresh, a page view) so it never queues up behind itself.
    pub async fn try_acquire(&self, permits: u32, max_wait: Duration) -> bool {
        match self.reserve(permits, Some(max_wait)) {
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

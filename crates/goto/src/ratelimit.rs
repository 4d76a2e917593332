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
        let Some(interval) = self.interval else {
            return;
        };
        let wait_until = {
            let mut due = self.next_due.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let tat = due.map_or(now, |t| t.max(now));
            let allowed_at = tat.checked_sub(self.tolerance).map_or(now, |t| t.max(now));
            *due = Some(tat.max(allowed_at) + interval);
            allowed_at
        };
        tokio::time::sleep_until(wait_until).await;
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

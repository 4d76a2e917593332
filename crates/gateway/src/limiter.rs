//! Token buckets: one per visitor address for intake requests and look-ups of uncached
//! webinars, and single ones for budgets shared by everybody (failed admin sign-ins).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket: `burst` tokens at most, refilled at `rate` a second.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            at: now,
        }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        self.tokens =
            (self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * rate).min(burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Returns a token taken for something that turned out not to count.
    pub fn give_back(&mut self, burst: f64) {
        self.tokens = (self.tokens + 1.0).min(burst);
    }

    /// When it was last used.
    pub fn last_used(&self) -> Instant {
        self.at
    }
}

/// Token buckets by visitor address.
#[derive(Debug)]
pub(crate) struct IpLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl IpLimiter {
    /// `rate` requests a second per address (0 = no limit), `burst` at once.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn allow(&self, ip: IpAddr) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // Forget idle clients rather than grow without bound.
            buckets.retain(|_, b| now.duration_since(b.last_used()).as_secs() < 60);
        }
        buckets
            .entry(ip)
            .or_insert_with(|| Bucket::full(self.burst, now))
            .take(self.rate, self.burst, now)
    }
}

/// Failures by address within a sliding window: an address that failed `most` times
/// within `window` is refused until its oldest failure leaves the window. For whatever
/// a guesser could try (passwords, API keys): guessing costs the guesser the wait, and
/// the server a lookup in this map.
#[derive(Debug)]
pub(crate) struct FailureWindow {
    window: Duration,
    most: usize,
    by_address: Mutex<HashMap<IpAddr, Vec<Instant>>>,
}

/// Past this many addresses with failures, those with none in the window are forgotten.
const FAILING_ADDRESSES_KEPT: usize = 10_000;

impl FailureWindow {
    pub(crate) fn new(most: usize, window: Duration) -> Self {
        Self {
            window,
            most: most.max(1),
            by_address: Mutex::default(),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Vec<Instant>>> {
        self.by_address.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an attempt of `ip` as a failure until it is given back, unless `ip` has
    /// failed too often lately: then how long it must wait. Counting before the attempt
    /// is checked means a burst sent at once gets no more tries than the window allows.
    pub(crate) fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut by_address = self.map();
        if by_address.len() > FAILING_ADDRESSES_KEPT {
            by_address.retain(|_, failed| failed.iter().any(|t| now - *t < self.window));
        }
        let failed = by_address.entry(ip).or_default();
        failed.retain(|t| now - *t < self.window);
        if failed.len() >= self.most {
            let oldest = failed.first().copied().unwrap_or(now);
            return Err(self
                .window
                .saturating_sub(now - oldest)
                .max(Duration::from_secs(1)));
        }
        failed.push(now);
        Ok(())
    }

    /// How long `ip` must wait before it may try again, or `None` when it may now. With
    /// [`Self::failed`], for checks cheap enough that a burst of them may run before
    /// their failures are counted.
    pub(crate) fn refused_for(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut by_address = self.map();
        let failed = by_address.get_mut(&ip)?;
        failed.retain(|t| now - *t < self.window);
        let oldest = *failed.first()?;
        (failed.len() >= self.most).then(|| {
            self.window
                .saturating_sub(now - oldest)
                .max(Duration::from_secs(1))
        })
    }

    /// Counts a failure of `ip`.
    pub(crate) fn failed(&self, ip: IpAddr, now: Instant) {
        let mut by_address = self.map();
        if by_address.len() > FAILING_ADDRESSES_KEPT {
            by_address.retain(|_, failed| failed.iter().any(|t| now - *t < self.window));
        }
        by_address.entry(ip).or_default().push(now);
    }

    /// An attempt counted by [`Self::take`] did not fail: it no longer counts.
    pub(crate) fn give_back(&self, ip: IpAddr) {
        let mut by_address = self.map();
        if let Some(failed) = by_address.get_mut(&ip) {
            failed.pop();
            if failed.is_empty() {
                by_address.remove(&ip);
            }
        }
    }

    /// Forgets `ip`'s failures (it proved itself).
    pub(crate) fn forgive(&self, ip: IpAddr) {
        self.map().remove(&ip);
    }
}

//! Keeping every call of one GoTo account under GoTo's limit, and slowing down when GoTo
//! says so, instead of learning the limit from a storm of 429s.
//!
//! - **The pace**: calls are spaced evenly (GCRA), at most `rate` a second with an
//!   optional burst, a little under GoTo's rate (see [`SPREAD`]) so that the spread of
//!   sending never puts one call too many into any second at GoTo.
//! - **A 429 with `Retry-After`**: nothing more is sent for the account until it has run
//!   out; a call that already has its turn checks again just before it leaves.
//! - **A 429 without one** (real GoTo sends none): the pace halves, at most once for the
//!   calls that were already under way, never below [`FLOOR_PERMILLE`] of the rate; it
//!   then recovers by a tenth of the rate every second (AIMD, as TCP does).
//!
//! A 429 is GoTo asking for a slower pace, not GoTo being unwell: it never counts as a
//! failure anywhere else (the delivery engine's breaker, a registration's attempts).
//!
//! GoTo's limit belongs to the account, not to a process: with a [`SharedBudget`] (kept
//! in g2w's database) every gateway and import run books from one schedule, holds and
//! slows down together. [`Schedule`] is the arithmetic, kept in this process when there is
//! no shared budget (or it cannot be reached); the store keeps the same arithmetic in SQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{Clock, Timestamp};

/// How much wider than GoTo's rate calls are spaced: 5 %, so that a call sent late (a
/// busy machine's scheduling, up to 50 ms at 10/s) never makes `rate + 1` calls fall
/// into one second at GoTo. 2 % (20 ms) was seen not to be enough on two cores shared by
/// three gateways, an import run and the database.
pub const SPREAD: f64 = 1.05;
/// The slowest pace a run of 429s brings the account to, in thousandths of its rate.
pub const FLOOR_PERMILLE: u32 = 50;
/// How fast the pace recovers: thousandths of the rate gained per second without a cut.
pub const RECOVERY_PERMILLE_PER_SEC: u32 = 100;
/// The pace a 429 without `Retry-After` cuts from when no rate is configured (GoTo's
/// documented default), until it has recovered.
const UNLIMITED_CUT_FROM: Duration = Duration::from_millis(100);

/// A schedule of calls kept outside this process, shared by every process that uses it.
#[async_trait::async_trait]
pub trait SharedBudget: Send + Sync {
    /// Books `permits` calls of `account` (one every `interval` at full pace, `burst`
    /// back to back) and says how long to wait before making them; `None` (nothing
    /// booked) when that would exceed `max_wait`. GoTo's `Retry-After` and the pace's cuts
    /// are part of the answer.
    ///
    /// # Errors
    /// Why the schedule could not be read or written.
    async fn book(
        &self,
        account: &str,
        interval: Duration,
        burst: u32,
        permits: u32,
        max_wait: Option<Duration>,
    ) -> Result<Option<Duration>, crate::StoreFailure>;

    /// How much longer GoTo's latest `Retry-After` holds `account` back.
    ///
    /// # Errors
    /// Why the schedule could not be read.
    async fn held(&self, account: &str) -> Result<Option<Duration>, crate::StoreFailure>;

    /// GoTo answered 429 with `Retry-After: wait`: nothing of `account` is sent for
    /// `wait` from now, by any process sharing the schedule.
    ///
    /// # Errors
    /// Why the schedule could not be written.
    async fn hold(&self, account: &str, wait: Duration) -> Result<(), crate::StoreFailure>;

    /// GoTo answered 429 without `Retry-After` to a call sent `ago`: halves `account`'s
    /// pace, unless it was already cut after that call left.
    ///
    /// # Errors
    /// Why the schedule could not be written.
    async fn slow_down(&self, account: &str, ago: Duration) -> Result<(), crate::StoreFailure>;
}

/// One account's schedule: the arithmetic every budget follows (GCRA over a
/// "theoretical arrival time", a hold, and an AIMD pace), on whatever clock it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// When the next call is theoretically due.
    pub tat: Timestamp,
    /// Nothing is sent before this (GoTo's latest `Retry-After`).
    pub held_until: Timestamp,
    /// The pace right after the last cut, in thousandths of the full rate.
    pub pace_permille: u32,
    /// When the pace was last cut.
    pub cut_at: Timestamp,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            tat: Timestamp::EPOCH,
            held_until: Timestamp::EPOCH,
            pace_permille: 1000,
            cut_at: Timestamp::EPOCH,
        }
    }
}

/// `at` moved by `n` times `step` (back, for negative `n`).
fn shifted(at: Timestamp, step: Duration, n: i64) -> Timestamp {
    let step = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
    Timestamp::from_millis(at.as_millis().saturating_add(step.saturating_mul(n)))
}

impl Schedule {
    /// The pace at `now`, in thousandths of the full rate: the last cut, plus a tenth of
    /// the rate for every second since.
    pub fn pace_at(&self, now: Timestamp) -> u32 {
        let recovered =
            now.since(self.cut_at).as_millis() * u128::from(RECOVERY_PERMILLE_PER_SEC) / 1000;
        u32::try_from(u128::from(self.pace_permille) + recovered)
            .unwrap_or(1000)
            .min(1000)
    }

    /// The spacing of calls at `now`: `interval` at full pace, wider after a cut; `None`
    /// when there is no limit and no cut to recover from.
    pub fn interval_at(&self, now: Timestamp, interval: Option<Duration>) -> Option<Duration> {
        let pace = self.pace_at(now);
        let full = match interval {
            Some(i) => i,
            None if pace < 1000 => UNLIMITED_CUT_FROM,
            None => return None,
        };
        Some(full * 1000 / pace.max(1))
    }

    /// Books `permits` calls at `now`; the wait before making them, or `None` (nothing
    /// booked) when that would exceed `max_wait`.
    pub fn book(
        &mut self,
        now: Timestamp,
        interval: Option<Duration>,
        burst: u32,
        permits: u32,
        max_wait: Option<Duration>,
    ) -> Option<Duration> {
        let held = self.held_until.max(now);
        // No limit and no cut: only a Retry-After holds calls back.
        let interval = self.interval_at(now, interval).unwrap_or_default();
        let permits = permits.max(1);
        let start = self.tat.max(held);
        let ahead = i64::from(permits) - i64::from(burst.max(1));
        let last = shifted(start, interval, ahead).max(held);
        let wait = last.since(now);
        if max_wait.is_some_and(|max| wait > max) {
            return None;
        }
        self.tat = shifted(start, interval, i64::from(permits));
        Some(wait)
    }

    /// GoTo said `Retry-After: wait` at `now`.
    pub fn hold(&mut self, now: Timestamp, wait: Duration) {
        self.held_until = self.held_until.max(now + wait);
    }

    /// How much longer the latest `Retry-After` holds calls back at `now`.
    pub fn held(&self, now: Timestamp) -> Option<Duration> {
        (self.held_until > now).then(|| self.held_until.since(now))
    }

    /// GoTo answered 429 without `Retry-After` at `now` to a call sent at `sent_at`:
    /// the pace halves, unless it was cut after that call left.
    pub fn slow_down(&mut self, now: Timestamp, sent_at: Timestamp) {
        if sent_at <= self.cut_at {
            return;
        }
        self.pace_permille = (self.pace_at(now) / 2).max(FLOOR_PERMILLE);
        self.cut_at = now;
    }
}

/// The calls of one GoTo account: its pace, kept here or in a [`SharedBudget`].
pub struct RateLimiter {
    /// The spacing at full pace, or `None` when unlimited.
    interval: Option<Duration>,
    burst: u32,
    /// This process's schedule (the whole schedule without a shared budget; with one,
    /// only `Retry-After` is mirrored here, so the process's own calls never wait for
    /// the store to say what it already knows).
    local: Mutex<Schedule>,
    /// The clock schedules are kept on (the gateway's, which tests move).
    clock: Clock,
    shared: Option<Arc<dyn SharedBudget>>,
    /// The shared budget's `Retry-After` as last read, and when (for unlimited accounts).
    shared_held: Mutex<Option<(Timestamp, Timestamp)>>,
    /// Turns taken through this limiter (calls let go to GoTo), for showing how much of
    /// the budget is in use.
    granted: std::sync::atomic::AtomicU64,
}

/// How often an unlimited account's calls read the shared budget for another process's
/// `Retry-After`.
const UNLIMITED_HOLD_CHECK: Duration = Duration::from_millis(100);

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("interval", &self.interval)
            .field("burst", &self.burst)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// Waits until `at` on `clock`. A clock that a test moves forward wakes the wait within
/// a few milliseconds; on the system clock this is one sleep.
async fn sleep_until(clock: &Clock, at: Timestamp) {
    loop {
        let now = clock();
        if now >= at {
            return;
        }
        tokio::time::sleep(at.since(now).min(Duration::from_millis(20))).await;
    }
}

impl RateLimiter {
    /// `rate` calls a second (0 = unlimited), the first `burst` (at least 1) at once.
    pub fn new(rate: u32, burst: u32) -> Self {
        let interval = (rate > 0).then(|| {
            let micros = (1_000_000.0 / f64::from(rate) * SPREAD).ceil();
            // Whole milliseconds: the shared budget keeps milliseconds.
            Duration::from_millis((micros / 1000.0).ceil() as u64)
        });
        Self {
            interval,
            burst: burst.max(1),
            local: Mutex::new(Schedule::default()),
            clock: crate::system_clock(),
            shared: None,
            shared_held: Mutex::new(None),
            granted: std::sync::atomic::AtomicU64::new(0),
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

    /// Keeps schedules on `clock` instead of the system's (tests move it). A shared
    /// budget keeps its own (the database's).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Calls a second at full pace, or `None` when unlimited.
    pub fn per_second(&self) -> Option<f64> {
        self.interval.map(|i| 1.0 / i.as_secs_f64())
    }

    fn local(&self) -> std::sync::MutexGuard<'_, Schedule> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Books from the shared budget: `Some(answer)`, or `None` when there is none, the
    /// account is unlimited (then only this process paces it, after its own 429s), or the
    /// budget failed: then the local schedule answers.
    async fn book_shared(
        &self,
        account: &str,
        permits: u32,
        max_wait: Option<Duration>,
    ) -> Option<Option<Duration>> {
        let (budget, interval) = (self.shared.as_ref()?, self.interval?);
        match budget
            .book(account, interval, self.burst, permits, max_wait)
            .await
        {
            Ok(wait) => Some(wait),
            Err(e) => {
                tracing::warn!(
                    "shared GoTo budget unavailable ({}); pacing this process alone",
                    crate::chain(&e)
                );
                None
            }
        }
    }

    /// Books `permits` calls of `account`: the wait, or `None` when longer than
    /// `max_wait` (nothing booked).
    async fn book(
        &self,
        account: &str,
        permits: u32,
        max_wait: Option<Duration>,
    ) -> Option<Duration> {
        let local_hold = self.local().held((self.clock)());
        if let Some(hold) = local_hold
            && max_wait.is_some_and(|max| hold > max)
        {
            return None;
        }
        let wait = match self.book_shared(account, permits, max_wait).await {
            Some(wait) => wait,
            None => {
                let now = (self.clock)();
                self.local()
                    .book(now, self.interval, self.burst, permits, max_wait)
            }
        }?;
        Some(wait.max(local_hold.unwrap_or_default()))
    }

    /// Whether a call may leave now: no `Retry-After` arrived (here or, with a shared
    /// budget, anywhere) since it was booked; else how long it must still wait.
    async fn still_held(&self, account: &str) -> Option<Duration> {
        if let Some(wait) = self.local().held((self.clock)()) {
            return Some(wait);
        }
        self.shared_hold(account, Duration::ZERO).await
    }

    /// Another process's `Retry-After` for `account`, as the shared budget says it: read
    /// again only when the last reading is older than `fresh`.
    async fn shared_hold(&self, account: &str, fresh: Duration) -> Option<Duration> {
        let budget = self.shared.as_ref()?;
        let now = (self.clock)();
        let known = *self.shared_held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((read_at, until)) = known
            && read_at <= now
            && now.since(read_at) < fresh
        {
            return (until > now).then(|| until.since(now));
        }
        let held = budget.held(account).await.ok().flatten();
        *self.shared_held.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((now, now + held.unwrap_or_default()));
        held
    }

    /// Turns taken through this limiter so far (calls let go to GoTo).
    pub fn granted(&self) -> u64 {
        self.granted.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn took(&self, permits: u32) {
        self.granted
            .fetch_add(u64::from(permits), std::sync::atomic::Ordering::Relaxed);
    }

    /// Waits until a call of `account` (the budget's name: a GoTo account) may leave, and
    /// takes its turn.
    pub async fn acquire(&self, account: &str) {
        loop {
            let wait = match self.interval {
                Some(_) => self.book(account, 1, None).await.unwrap_or_default(),
                // No limit: nothing to book, every call would otherwise cost the store a
                // write. Only a Retry-After (another process's is read at most every
                // UNLIMITED_HOLD_CHECK) or this process's own cut holds a call back.
                None => {
                    let local = self.book(account, 1, None).await.unwrap_or_default();
                    let shared = self.shared_hold(account, UNLIMITED_HOLD_CHECK).await;
                    local.max(shared.unwrap_or_default())
                }
            };
            if wait.is_zero() {
                self.took(1);
                return;
            }
            sleep_until(&self.clock, (self.clock)() + wait).await;
            // A turn booked before a Retry-After arrived is no turn: wait it out and
            // book again.
            match self.still_held(account).await {
                Some(hold) if !hold.is_zero() => {
                    sleep_until(&self.clock, (self.clock)() + hold).await;
                }
                _ => {
                    self.took(1);
                    return;
                }
            }
        }
    }

    /// Takes `permits` turns if they are free within `max_wait`, waiting for them;
    /// otherwise takes nothing and returns false at once. For work that may be skipped
    /// (a cache refresh, a page view), so it never queues up behind itself.
    pub async fn try_acquire(&self, account: &str, permits: u32, max_wait: Duration) -> bool {
        match self.book(account, permits, Some(max_wait)).await {
            Some(wait) => {
                sleep_until(&self.clock, (self.clock)() + wait).await;
                self.took(permits);
                true
            }
            None => false,
        }
    }

    /// GoTo answered a call of `account` with 429 and `Retry-After: wait`: nothing of
    /// the account leaves before it has run out, here and (with a shared budget) in
    /// every process booking from the same one.
    pub async fn hold(&self, account: &str, wait: Duration) {
        let now = (self.clock)();
        self.local().hold(now, wait);
        if let Some(budget) = &self.shared
            && let Err(e) = budget.hold(account, wait).await
        {
            tracing::warn!(
                "cannot tell other processes to wait out GoTo's Retry-After ({})",
                crate::chain(&e)
            );
        }
    }

    /// GoTo answered a call of `account` sent at `sent_at` with 429 and no
    /// `Retry-After`: the pace halves (once for the calls already under way).
    pub async fn slow_down(&self, account: &str, sent_at: Timestamp) {
        let now = (self.clock)();
        self.local().slow_down(now, sent_at);
        if let Some(budget) = &self.shared
            && let Err(e) = budget.slow_down(account, now.since(sent_at)).await
        {
            tracing::warn!(
                "cannot tell other processes to slow down ({})",
                crate::chain(&e)
            );
        }
    }

    /// Calls a second at the pace this process last knew (after its own cuts), or `None`
    /// when unlimited.
    pub fn current_rate(&self) -> Option<f64> {
        let now = (self.clock)();
        self.local()
            .interval_at(now, self.interval)
            .map(|i| 1.0 / i.as_secs_f64().max(1e-6))
    }

    /// Until when GoTo's latest `Retry-After` (as this process knows it) holds calls
    /// back, if it still does.
    pub fn held_until(&self) -> Option<Timestamp> {
        let schedule = *self.local();
        schedule.held((self.clock)()).map(|_| schedule.held_until)
    }

    /// The clock schedules are kept on.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    const EVERY: Option<Duration> = Some(Duration::from_millis(100));

    #[test]
    fn calls_are_spaced_and_a_burst_goes_at_once() {
        let mut s = Schedule::default();
        assert_eq!(s.book(at(1_000), EVERY, 1, 1, None), Some(ms(0)));
        assert_eq!(s.book(at(1_000), EVERY, 1, 1, None), Some(ms(100)));
        assert_eq!(
            s.book(at(1_000), EVERY, 1, 2, Some(ms(150))),
            None,
            "two more would need 300 ms"
        );
        assert_eq!(
            s.book(at(1_000), EVERY, 1, 1, None),
            Some(ms(200)),
            "the refusal booked nothing"
        );
        let mut b = Schedule::default();
        for _ in 0..3 {
            assert_eq!(
                b.book(at(0), EVERY, 3, 1, None),
                Some(ms(0)),
                "a burst of 3"
            );
        }
        assert_eq!(b.book(at(0), EVERY, 3, 1, None), Some(ms(100)));
    }

    #[test]
    fn retry_after_holds_every_call_limited_or_not() {
        for interval in [EVERY, None] {
            let mut s = Schedule::default();
            s.hold(at(1_000), ms(2_000));
            assert_eq!(s.held(at(1_500)), Some(ms(1_500)));
            assert_eq!(s.book(at(1_500), interval, 1, 1, Some(ms(1_000))), None);
            assert_eq!(s.book(at(1_500), interval, 1, 1, None), Some(ms(1_500)));
            assert_eq!(s.held(at(3_000)), None);
        }
    }

    #[test]
    fn a_429_without_retry_after_halves_the_pace_once_and_it_recovers() {
        let mut s = Schedule::default();
        assert_eq!(s.interval_at(at(0), EVERY), EVERY);
        s.slow_down(at(1_000), at(990));
        assert_eq!(s.pace_at(at(1_000)), 500);
        assert_eq!(s.interval_at(at(1_000), EVERY), Some(ms(200)));
        // Calls already under way when the cut was made do not cut again.
        s.slow_down(at(1_010), at(995));
        assert_eq!(s.pace_at(at(1_010)), 501);
        // One sent after it does.
        s.slow_down(at(1_500), at(1_200));
        assert_eq!(s.pace_at(at(1_500)), 275, "(500 + 50) / 2");
        // A tenth of the rate back every second, never past the full rate.
        assert_eq!(s.pace_at(at(3_500)), 475);
        assert_eq!(s.pace_at(at(60_000)), 1000);
        for i in 0..20 {
            s.slow_down(at(100_000 + i), at(100_000 + i));
        }
        assert_eq!(
            s.pace_at(at(100_020)),
            FLOOR_PERMILLE,
            "never below the floor"
        );
    }

    #[test]
    fn an_unlimited_account_is_paced_only_after_a_cut() {
        let mut s = Schedule::default();
        assert_eq!(s.book(at(0), None, 1, 1, None), Some(ms(0)));
        assert_eq!(s.book(at(0), None, 1, 1, None), Some(ms(0)));
        s.slow_down(at(1_000), at(1_000));
        assert_eq!(
            s.interval_at(at(1_000), None),
            Some(ms(200)),
            "GoTo's 10/s, halved"
        );
        assert_eq!(
            s.interval_at(at(11_000), None),
            None,
            "recovered: unlimited again"
        );
    }

    #[test]
    fn the_rate_is_kept_a_little_under_gotos() {
        let limiter = RateLimiter::new(10, 1);
        assert_eq!(limiter.interval, Some(ms(105)));
        assert_eq!(RateLimiter::new(0, 1).interval, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_booked_before_a_retry_after_waits_it_out() {
        // A clock that follows tokio's paused one.
        let origin = (Timestamp::now(), tokio::time::Instant::now());
        let clock: Clock = Arc::new(move || origin.0 + origin.1.elapsed());
        let limiter = Arc::new(RateLimiter::new(10, 1).with_clock(clock));
        let account = "7";
        let start = tokio::time::Instant::now();
        limiter.acquire(account).await;
        // The next turn is 105 ms away; a 429 saying "2 s" arrives after 10 ms.
        let waiting = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(account).await })
        };
        tokio::time::sleep(ms(10)).await;
        limiter.hold(account, ms(2_000)).await;
        waiting.await.unwrap();
        assert!(start.elapsed() >= ms(2_010), "{:?}", start.elapsed());
        assert!(
            !limiter.try_acquire(account, 1, ms(0)).await,
            "the next turn is the pace away"
        );
    }
}

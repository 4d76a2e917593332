//! The engine every durable queue runs on: registrations to GoTo, and GoTo's events to
//! the user's own URL. A [`Queue`] says how to claim, keep, release and finish its items
//! and how to attempt one; the engine decides everything else, the same way for both:
//!
//! - **Leases with a heartbeat**: an attempt holds its item for `lease`, renewed every
//!   third of that while the attempt runs, so a slow answer never lets a second attempt
//!   start, and a killed process's items are taken up again within the lease.
//! - **Fencing**: every claim bumps the item's fence; an attempt whose lease was taken
//!   over records nothing.
//! - **Backoff** with jitter, doubling from `backoff_base` to `backoff_cap`; a 429 waits
//!   for `Retry-After` and uses up no attempt.
//! - **Give up on time, not on count**: an item fails for good only after failing for
//!   `give_up_after` without a break.
//! - **A circuit breaker** per queue: while the other side is down, one probe at a time;
//!   its first success makes the whole backlog due at once. `Retry-After` holds every
//!   attempt of the queue back until it has run out (see the breaker).
//! - **Pausing**: when nothing can be attempted (no usable GoTo login), items go back
//!   without using attempts and the queue waits, checking at each step whether it can go
//!   on.
//!
//! Tests drive an engine by hand with [`Engine::step`], on the gateway's injected clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use g2w_goto::{Clock, Timestamp};
use g2w_store::{Claim, QueueName, Release, StoreError};
use tokio::sync::Notify;

use super::breaker::{Breaker, BreakerState, Permit};
use crate::metrics::{AttemptResult, Metrics};

/// How long an idle loop sleeps before something is due in `until`: at least 10 ms,
/// at most a second (new work also wakes it).
fn nap(until: Duration) -> Duration {
    until.clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// What the engine needs to know of an item.
pub trait Item: Send + Sync + 'static {
    /// Its key in the queue.
    fn key(&self) -> &str;
    /// Attempts so far.
    fn attempts(&self) -> u32;
    /// When its current run of failures began.
    fn failing_since(&self) -> Option<Timestamp>;
}

/// How an attempt went.
#[derive(Debug)]
pub enum Outcome<D> {
    /// Finished (delivered, or refused for good): record `done`, counted as `result`.
    Done(D, AttemptResult),
    /// Finished without asking the other side (the item cannot be sent at all): record
    /// `done`; the breaker learns nothing.
    Unsendable(D, AttemptResult),
    /// A failure that may pass: try again later.
    Retry {
        /// What went wrong.
        error: String,
        /// How long the other side asked to wait.
        retry_after: Option<Duration>,
        /// A 429: no attempt is used up.
        throttled: bool,
    },
    /// Nothing could be tried (no usable login): wait for someone, use nothing up.
    Paused(String),
    /// Our own side failed (the token store): try again shortly, use nothing up.
    Hiccup(String),
}

/// One kind of durable work.
#[async_trait::async_trait]
pub trait Queue: Send + Sync + 'static {
    /// What it holds.
    type Item: Item;
    /// How an item ends.
    type Done: Send + 'static;
    /// Its name in metrics and logs.
    const NAME: QueueName;

    /// Leases the next item `which` allows to `holder` until `now + lease`.
    async fn claim(
        &self,
        holder: &str,
        now: Timestamp,
        lease: Duration,
        which: Claim,
    ) -> Result<Option<Self::Item>, StoreError>;
    /// Extends the lease of the attempt holding `item`.
    async fn renew(&self, item: &Self::Item, until: Timestamp) -> Result<bool, StoreError>;
    /// Gives `item` back as pending, due at `due`.
    async fn release(
        &self,
        item: &Self::Item,
        now: Timestamp,
        due: Timestamp,
        error: &str,
        why: Release,
    ) -> Result<Option<Self::Item>, StoreError>;
    /// Ends the attempt holding `item` with `done`.
    async fn finish(
        &self,
        item: &Self::Item,
        now: Timestamp,
        done: Self::Done,
    ) -> Result<Option<Self::Item>, StoreError>;
    /// Makes every pending item due at `now`.
    async fn make_due(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// When the earliest item is due.
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;
    /// An item as it now stands.
    async fn current(&self, key: &str) -> Result<Option<Self::Item>, StoreError>;
    /// Why nothing can be attempted now, if that is so (checked while paused).
    async fn blocked(&self) -> Option<String> {
        None
    }
    /// The attempt itself.
    async fn attempt(&self, item: &Self::Item) -> Outcome<Self::Done>;
    /// How an item given up after failing for too long ends.
    fn given_up(&self, reason: String) -> Self::Done;
    /// Told when an item reached a final state.
    fn settled(&self, _item: &Self::Item) {}
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<I> {
    /// Nothing is due.
    Idle,
    /// Nothing can be attempted until someone acts (a new login).
    Paused(String),
    /// The other side is failing, or asked to wait: nothing goes out before this time.
    Waiting(Timestamp),
    /// One item was attempted; this is its state now.
    Attempted(Box<I>),
}

/// How an engine paces and gives up.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// How long an attempt's lease lasts (a heartbeat renews it).
    pub lease: Duration,
    /// The first backoff; it doubles up to `backoff_cap`.
    pub backoff_base: Duration,
    /// The longest backoff.
    pub backoff_cap: Duration,
    /// How long an item may keep failing before it is given up.
    pub give_up_after: Duration,
    /// Attempts in flight at once.
    pub concurrency: usize,
}

/// Runs one queue.
pub struct Engine<Q: Queue> {
    queue: Q,
    policy: Policy,
    clock: Clock,
    holder: String,
    breaker: Breaker,
    paused: Mutex<Option<String>>,
    wake: Notify,
    metrics: Arc<Metrics>,
    /// Since when the store has been failing the loops, and when that was last logged.
    store_failing: Mutex<Option<(std::time::Instant, std::time::Instant)>>,
}

/// While the store keeps failing, the loops say so at most this often (each loop would
/// otherwise log every second).
const STORE_FAILURE_LOGGED_EVERY: Duration = Duration::from_secs(60);

impl<Q: Queue> std::fmt::Debug for Engine<Q> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("queue", &Q::NAME)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl<Q: Queue> Engine<Q> {
    pub(crate) fn new(queue: Q, policy: Policy, clock: Clock, metrics: Arc<Metrics>) -> Self {
        Self {
            holder: format!(
                "{}-{}-{:x}",
                Q::NAME,
                std::process::id(),
                rand::random::<u64>()
            ),
            queue,
            policy,
            clock,
            breaker: Breaker::default(),
            paused: Mutex::new(None),
            store_failing: Mutex::new(None),
            wake: Notify::new(),
            metrics,
        }
    }

    /// The queue this engine runs.
    pub(crate) fn queue(&self) -> &Q {
        &self.queue
    }

    /// Asks an idle loop to look for work now (a new item arrived).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The circuit breaker's state.
    pub(crate) fn breaker(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Whether the other side is failing (the breaker holds attempts back).
    pub(crate) fn failing(&self) -> bool {
        self.breaker.is_open()
    }

    /// Why the queue is paused, if it is.
    pub fn paused(&self) -> Option<String> {
        self.paused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_paused(&self, reason: Option<String>) {
        let mut paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        match (&*paused, &reason) {
            (None, Some(r)) => tracing::warn!(queue = %Q::NAME, reason = %r, "paused"),
            (Some(_), None) => tracing::info!(queue = %Q::NAME, "resumed"),
            _ => {}
        }
        *paused = reason;
    }

    /// A loop's step failed in the store: logged at once, then at most once a minute.
    fn store_failed(&self, e: &StoreError) {
        let now = std::time::Instant::now();
        let mut failing = self.store_failing.lock().unwrap_or_else(|e| e.into_inner());
        match *failing {
            Some((_, logged)) if now - logged < STORE_FAILURE_LOGGED_EVERY => {}
            Some((since, _)) => {
                tracing::error!(queue = %Q::NAME, failing_for = ?(now - since), "the store still fails: {}", g2w_goto::chain(e));
                *failing = Some((since, now));
            }
            None => {
                tracing::error!(queue = %Q::NAME, "{}", g2w_goto::chain(e));
                *failing = Some((now, now));
            }
        }
    }

    /// A loop's step worked: if the store had been failing, say it is back.
    fn store_answers(&self) {
        let mut failing = self.store_failing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((since, _)) = failing.take() {
            tracing::info!(queue = %Q::NAME, after = ?since.elapsed(), "the store answers again");
        }
    }

    /// Attempts at most one item.
    ///
    /// # Errors
    /// Only store failures; the other side's answers become states.
    pub async fn step(&self) -> Result<Step<Q::Item>, StoreError> {
        self.step_as(&self.holder).await
    }

    async fn step_as(&self, holder: &str) -> Result<Step<Q::Item>, StoreError> {
        if self.paused().is_some() {
            if let Some(still) = self.queue.blocked().await {
                return Ok(Step::Paused(still));
            }
            self.set_paused(None);
        }
        let now = (self.clock)();
        let which = match self.breaker.permit(now) {
            Permit::Deliver => Claim::Due,
            Permit::Probe => Claim::Probe,
            Permit::WaitUntil(at) => return Ok(Step::Waiting(at)),
        };
        match self
            .queue
            .claim(holder, now, self.policy.lease, which)
            .await
        {
            Ok(Some(item)) => self.attempt(item).await,
            Ok(None) => {
                self.breaker.no_probe();
                Ok(Step::Idle)
            }
            Err(e) => {
                self.breaker.no_probe();
                Err(e)
            }
        }
    }

    async fn attempt(&self, item: Q::Item) -> Result<Step<Q::Item>, StoreError> {
        // A 429 may have arrived between the claim and now: nothing leaves before its
        // Retry-After has run out, so the item goes back (no attempt used) until then.
        let sent_at = (self.clock)();
        if let Some(until) = self.breaker.quiet_until(sent_at) {
            self.breaker.no_probe();
            self.release(&item, until, "waiting out Retry-After", Release::Throttled)
                .await?;
            return Ok(Step::Waiting(until));
        }
        let outcome = self.with_heartbeat(&item, self.queue.attempt(&item)).await;
        let now = (self.clock)();
        match outcome {
            Outcome::Done(done, result) => {
                if self.breaker.succeeded(sent_at) {
                    self.backlog_due(now).await;
                }
                self.finish(&item, done, result).await
            }
            Outcome::Unsendable(done, result) => {
                self.breaker.no_probe();
                self.finish(&item, done, result).await
            }
            Outcome::Retry {
                error,
                retry_after,
                throttled,
            } => {
                self.retry_later(&item, now, &error, retry_after, throttled)
                    .await
            }
            Outcome::Paused(reason) => {
                self.breaker.no_probe();
                self.set_paused(Some(reason.clone()));
                self.metrics.attempt(Q::NAME, AttemptResult::Paused);
                self.release(&item, now, &reason, Release::Paused).await?;
                Ok(Step::Paused(reason))
            }
            Outcome::Hiccup(reason) => {
                self.breaker.no_probe();
                self.release(
                    &item,
                    now + Duration::from_secs(1),
                    &reason,
                    Release::Paused,
                )
                .await
            }
        }
    }

    /// Runs `attempt` while renewing the item's lease every third of its length.
    async fn with_heartbeat<T>(
        &self,
        item: &Q::Item,
        attempt: impl std::future::Future<Output = T>,
    ) -> T {
        let every = (self.policy.lease / 3).max(Duration::from_millis(10));
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                out = &mut attempt => return out,
                _ = beat.tick() => {
                    let until = (self.clock)() + self.policy.lease;
                    match self.queue.renew(item, until).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(queue = %Q::NAME, key = item.key(), "lease taken over; this attempt's outcome will not be recorded"),
                        Err(e) => tracing::warn!(queue = %Q::NAME, key = item.key(), "cannot renew a lease: {}", g2w_goto::chain(&e)),
                    }
                }
            }
        }
    }

    /// A failure that may pass: back off (or give up when it has been failing for too
    /// long), and tell the breaker.
    async fn retry_later(
        &self,
        item: &Q::Item,
        now: Timestamp,
        error: &str,
        retry_after: Option<Duration>,
        throttled: bool,
    ) -> Result<Step<Q::Item>, StoreError> {
        self.breaker.failed(now, retry_after, error);
        let failing_for = now.since(item.failing_since().unwrap_or(now));
        if failing_for >= self.policy.give_up_after {
            let reason = format!(
                "failing for {} h ({} attempts); last: {error}",
                failing_for.as_secs() / 3_600,
                item.attempts()
            );
            return self
                .finish(item, self.queue.given_up(reason), AttemptResult::Dead)
                .await;
        }
        let wait = match retry_after {
            Some(wait) => wait.min(self.policy.backoff_cap),
            None => self.backoff(item.attempts()),
        };
        let why = if throttled {
            Release::Throttled
        } else {
            Release::Failed
        };
        self.metrics.attempt(
            Q::NAME,
            if throttled {
                AttemptResult::Throttled
            } else {
                AttemptResult::Retry
            },
        );
        self.release(item, now + wait, error, why).await
    }

    /// The wait after `attempts` failed attempts: doubling from the base to the cap,
    /// somewhere in the upper half of that window.
    fn backoff(&self, attempts: u32) -> Duration {
        let window = self
            .policy
            .backoff_base
            .saturating_mul(2_u32.saturating_pow(attempts.saturating_sub(1)))
            .min(self.policy.backoff_cap);
        window / 2 + window.mul_f64(rand::random::<f64>() / 2.0)
    }

    /// The other side is back: everything waiting out a backoff is due now, and every
    /// loop wakes.
    async fn backlog_due(&self, now: Timestamp) {
        match self.queue.make_due(now).await {
            Ok(n) => {
                tracing::info!(queue = %Q::NAME, backlog = n, "answers again: the backlog is due")
            }
            Err(e) => {
                tracing::warn!(queue = %Q::NAME, "cannot make the backlog due: {}", g2w_goto::chain(&e))
            }
        }
        self.wake.notify_waiters();
    }

    async fn release(
        &self,
        item: &Q::Item,
        due: Timestamp,
        error: &str,
        why: Release,
    ) -> Result<Step<Q::Item>, StoreError> {
        let now = (self.clock)();
        match self.queue.release(item, now, due, error, why).await? {
            Some(released) => Ok(Step::Attempted(Box::new(released))),
            None => {
                tracing::warn!(queue = %Q::NAME, key = item.key(), "lease lost before release; another attempt has it");
                self.current(item.key()).await
            }
        }
    }

    async fn finish(
        &self,
        item: &Q::Item,
        done: Q::Done,
        result: AttemptResult,
    ) -> Result<Step<Q::Item>, StoreError> {
        self.metrics.attempt(Q::NAME, result);
        let now = (self.clock)();
        match self.queue.finish(item, now, done).await? {
            Some(finished) => {
                self.queue.settled(&finished);
                Ok(Step::Attempted(Box::new(finished)))
            }
            None => {
                tracing::warn!(queue = %Q::NAME, key = item.key(), "lease lost before the outcome; another attempt has it");
                self.current(item.key()).await
            }
        }
    }

    async fn current(&self, key: &str) -> Result<Step<Q::Item>, StoreError> {
        Ok(match self.queue.current(key).await? {
            Some(item) => Step::Attempted(Box::new(item)),
            None => Step::Idle,
        })
    }

    /// Runs `concurrency` loops, each holding its own leases, until `stop` fires;
    /// attempts in flight finish.
    pub(crate) async fn run(self: Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        let loops: Vec<_> = (0..self.policy.concurrency.max(1))
            .map(|n| {
                let engine = self.clone();
                let holder = format!("{}-{n}", self.holder);
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    while !*stop.borrow() {
                        let step = engine.step_as(&holder).await;
                        if step.is_ok() {
                            engine.store_answers();
                        }
                        let idle = match step {
                            Ok(Step::Attempted(_)) => None,
                            Ok(Step::Idle) => Some(engine.until_next_due().await),
                            Ok(Step::Paused(_)) => Some(Duration::from_secs(5)),
                            Ok(Step::Waiting(at)) => Some(nap(at.since((engine.clock)()))),
                            Err(e) => {
                                engine.store_failed(&e);
                                Some(Duration::from_secs(1))
                            }
                        };
                        if let Some(wait) = idle {
                            tokio::select! {
                                () = engine.wake.notified() => {}
                                () = tokio::time::sleep(wait) => {}
                                _ = stop.changed() => {}
                            }
                        }
                    }
                })
            })
            .collect();
        for l in loops {
            let _ = l.await;
        }
    }

    async fn until_next_due(&self) -> Duration {
        let now = (self.clock)();
        match self.queue.next_due().await {
            Ok(Some(due)) => nap(due.since(now)),
            _ => Duration::from_secs(1),
        }
    }
}

//! The engine every durable queue runs on: registrations to GoTo, and GoTo's events to
//! the user's own URL. Each kind of work is a job in the store's `jobs` table; the
//! engine claims, keeps, releases and finishes jobs the same way for every kind, and a
//! [`Queue`] only says what a job's row is, how to attempt it and what to keep of the
//! outcome:
//!
//! - **Leases with a heartbeat**: an attempt holds its job for `lease`, renewed every
//!   third of that while the attempt runs, so a slow answer never lets a second attempt
//!   start, and a killed process's jobs are taken up again within the lease.
//! - **Fencing**: every claim bumps the job's fence; an attempt whose lease was taken
//!   over records nothing.
//! - **Pacing, not failing, on 429**: the queue's [`RateLimiter`] keeps the other side's
//!   pace (a `Retry-After` holds every attempt of the account back until it has run out;
//!   a 429 without one halves the pace). A throttled attempt goes back due at once (or
//!   when the `Retry-After` ends), uses up no attempt, and tells the breaker nothing.
//! - **Backoff** with jitter for real failures (5xx, timeouts, dropped connections),
//!   doubling from `backoff_base` to `backoff_cap`.
//! - **Give up on time, not on count**: a job fails for good only after failing for
//!   `give_up_after` without a break.
//! - **A circuit breaker** per queue, for the other side being unwell: while it is down,
//!   one probe at a time; its first success makes the whole backlog due at once.
//! - **Pausing**: when nothing can be attempted (no usable GoTo login), jobs go back
//!   without using attempts and the queue waits, checking at each step whether it can go
//!   on.
//! - **Group commit**: claims of loops that ask together are one store call, and so are
//!   outcomes that arrive together.
//!
//! Tests drive an engine by hand with [`Engine::step`], on the gateway's injected clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use g2w_goto::{Clock, RateLimiter, Timestamp};
use g2w_store::{Claim, Job, QueueName, Release, Store, StoreError};
use tokio::sync::Notify;

use super::breaker::{Breaker, BreakerState, Permit};
use super::group::Group;
use crate::metrics::{AttemptResult, Metrics};

/// How long an idle loop sleeps before something is due in `until`: at least 10 ms,
/// at most a second (new work also wakes it).
fn nap(until: Duration) -> Duration {
    until.clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// The most claims, or outcomes, in one store call.
const MAX_GROUP: usize = 64;

/// The longest a `Retry-After` keeps a throttled job back.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

/// What the engine needs to know of the row a job works on.
pub trait Item: Send + Sync + 'static {
    /// Its key (the job's id).
    fn key(&self) -> &str;
    /// The fencing token of the attempt that holds it.
    fn fence(&self) -> i64;
    /// Attempts so far.
    fn attempts(&self) -> u32;
    /// When its current run of failures began.
    fn failing_since(&self) -> Option<Timestamp>;
    /// The item as `job` now leaves it.
    #[must_use]
    fn with_job(self, job: &Job) -> Self;
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
    },
    /// The other side asked for a slower pace (429): the limiter has slowed down; the
    /// item goes back as soon as `retry_after` (if any) has run out.
    Throttled {
        /// What the other side said.
        error: String,
        /// How long it asked to wait.
        retry_after: Option<Duration>,
    },
    /// Nothing could be tried (no usable login): wait for someone, use nothing up.
    Paused(String),
    /// Our own side failed (the token store): try again shortly, use nothing up.
    Hiccup(String),
}

/// One kind of durable work.
#[async_trait::async_trait]
pub trait Queue: Send + Sync + 'static {
    /// The row a job works on.
    type Item: Item;
    /// How an item ends.
    type Done: Send + 'static;
    /// Its kind in the `jobs` table, metrics and logs.
    const NAME: QueueName;

    /// Whose jobs this engine works (a profile), or empty.
    fn owner(&self) -> &str {
        ""
    }
    /// The pace attempts keep (`Retry-After` holds it back).
    fn limiter(&self) -> &RateLimiter;
    /// The rows `jobs` work on, each as its job leaves it, in the jobs' order.
    async fn load(&self, store: &Store, jobs: Vec<Job>) -> Result<Vec<Self::Item>, StoreError>;
    /// Ends the attempts that hold `done`'s items, keeping what the kind keeps of each
    /// outcome; each item as it now stands, or `None` where its attempt no longer held it.
    async fn finish(
        &self,
        store: &Store,
        now: Timestamp,
        done: Vec<(Self::Item, Self::Done)>,
    ) -> Result<Vec<Option<Self::Item>>, StoreError>;
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

/// A delivery loop asking for its next job.
struct Ask {
    holder: String,
    now: Timestamp,
    lease: Duration,
}

/// An attempt's outcome to record.
struct Finished<Q: Queue> {
    item: Q::Item,
    now: Timestamp,
    done: Q::Done,
}

/// Runs one queue.
pub struct Engine<Q: Queue> {
    queue: Arc<Q>,
    store: Arc<Store>,
    policy: Policy,
    clock: Clock,
    holder: String,
    breaker: Breaker,
    /// Claims of loops asking together, made as one.
    claims: Group<Ask, Option<Q::Item>>,
    /// Outcomes arriving together, recorded as one.
    outcomes: Group<Finished<Q>, Option<Q::Item>>,
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
    pub(crate) fn new(
        queue: Q,
        store: Arc<Store>,
        policy: Policy,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Self {
        let queue = Arc::new(queue);
        let claims = {
            let (queue, store) = (queue.clone(), store.clone());
            Group::start(MAX_GROUP, move |asks: Vec<Ask>| {
                let (queue, store) = (queue.clone(), store.clone());
                async move {
                    let Some(first) = asks.first() else {
                        return Ok(Vec::new());
                    };
                    let now = asks.iter().map(|a| a.now).max().unwrap_or(first.now);
                    let n = u32::try_from(asks.len()).unwrap_or(u32::MAX);
                    let jobs = store
                        .claim_jobs(
                            Q::NAME,
                            queue.owner(),
                            &first.holder,
                            now,
                            first.lease,
                            Claim::Due,
                            n,
                        )
                        .await?;
                    let mut answers: Vec<_> = queue
                        .load(&store, jobs)
                        .await?
                        .into_iter()
                        .map(Some)
                        .collect();
                    answers.resize_with(asks.len(), || None);
                    Ok(answers)
                }
            })
        };
        let outcomes = {
            let (queue, store) = (queue.clone(), store.clone());
            Group::start(MAX_GROUP, move |finished: Vec<Finished<Q>>| {
                let (queue, store) = (queue.clone(), store.clone());
                async move {
                    let Some(now) = finished.iter().map(|f| f.now).max() else {
                        return Ok(Vec::new());
                    };
                    let done = finished.into_iter().map(|f| (f.item, f.done)).collect();
                    queue.finish(&store, now, done).await
                }
            })
        };
        Self {
            holder: format!(
                "{}-{}-{:x}",
                Q::NAME,
                std::process::id(),
                rand::random::<u64>()
            ),
            queue,
            store,
            policy,
            clock,
            breaker: Breaker::default(),
            claims,
            outcomes,
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

    /// Asks an idle loop to look for work now (a new job arrived).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The circuit breaker's state.
    pub(crate) fn breaker(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Whether the other side is failing (the breaker holds attempts back).
    pub fn failing(&self) -> bool {
        self.breaker.is_open()
    }

    /// Until when the other side asked for nothing to be sent (its `Retry-After`), if
    /// it still holds.
    pub(crate) fn held_until(&self) -> Option<Timestamp> {
        self.queue.limiter().held_until()
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
        // The other side asked for quiet: claim nothing until it ends.
        if let Some(until) = self.held_until() {
            return Ok(Step::Waiting(until));
        }
        let now = (self.clock)();
        let which = match self.breaker.permit(now) {
            Permit::Deliver => Claim::Due,
            Permit::Probe => Claim::Probe,
            Permit::WaitUntil(at) => return Ok(Step::Waiting(at)),
        };
        let lease = self.policy.lease;
        let claimed = match which {
            // Loops that ask together claim in one statement.
            Claim::Due => self
                .claims
                .call(Ask {
                    holder: holder.to_owned(),
                    now,
                    lease,
                })
                .await
                .map_err(StoreError::from),
            // A probe is one job whatever its backoff says: on its own.
            Claim::Probe => self.claim_one(holder, now, which).await,
        };
        match claimed {
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

    async fn claim_one(
        &self,
        holder: &str,
        now: Timestamp,
        which: Claim,
    ) -> Result<Option<Q::Item>, StoreError> {
        let jobs = self
            .store
            .claim_jobs(
                Q::NAME,
                self.queue.owner(),
                holder,
                now,
                self.policy.lease,
                which,
                1,
            )
            .await?;
        Ok(self.queue.load(&self.store, jobs).await?.into_iter().next())
    }

    async fn attempt(&self, item: Q::Item) -> Result<Step<Q::Item>, StoreError> {
        let sent_at = (self.clock)();
        let outcome = self.with_heartbeat(&item, self.queue.attempt(&item)).await;
        let now = (self.clock)();
        match outcome {
            Outcome::Done(done, result) => {
                if self.breaker.succeeded(sent_at) {
                    self.backlog_due(now).await;
                }
                self.finish(item, done, result).await
            }
            Outcome::Unsendable(done, result) => {
                self.breaker.no_probe();
                self.finish(item, done, result).await
            }
            Outcome::Retry { error } => self.retry_later(item, now, &error).await,
            Outcome::Throttled { error, retry_after } => {
                // The other side is fine, only busy: the breaker learns nothing, a probe
                // that met this may be made again by anyone.
                self.breaker.no_probe();
                self.metrics.attempt(Q::NAME, AttemptResult::Throttled);
                let due = now + retry_after.unwrap_or_default().min(RETRY_AFTER_CAP);
                self.release(item, due, &error, Release::Throttled).await
            }
            Outcome::Paused(reason) => {
                self.breaker.no_probe();
                self.set_paused(Some(reason.clone()));
                self.metrics.attempt(Q::NAME, AttemptResult::Paused);
                self.release(item, now, &reason, Release::Paused).await?;
                Ok(Step::Paused(reason))
            }
            Outcome::Hiccup(reason) => {
                self.breaker.no_probe();
                self.release(item, now + Duration::from_secs(1), &reason, Release::Paused)
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
                    match self.store.renew_job(Q::NAME, item.key(), item.fence(), until).await {
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
        item: Q::Item,
        now: Timestamp,
        error: &str,
    ) -> Result<Step<Q::Item>, StoreError> {
        self.breaker.failed(now, error);
        let failing_for = now.since(item.failing_since().unwrap_or(now));
        if failing_for >= self.policy.give_up_after {
            let reason = format!(
                "failing for {} h ({} attempts); last: {error}",
                failing_for.as_secs() / 3_600,
                item.attempts()
            );
            let done = self.queue.given_up(reason);
            return self.finish(item, done, AttemptResult::Dead).await;
        }
        let wait = self.backoff(item.attempts());
        self.metrics.attempt(Q::NAME, AttemptResult::Retry);
        self.release(item, now + wait, error, Release::Failed).await
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
        match self
            .store
            .make_jobs_due(Q::NAME, self.queue.owner(), now)
            .await
        {
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
        item: Q::Item,
        due: Timestamp,
        error: &str,
        why: Release,
    ) -> Result<Step<Q::Item>, StoreError> {
        let now = (self.clock)();
        let released = self
            .store
            .release_job(Q::NAME, item.key(), item.fence(), now, due, error, why)
            .await?;
        match released {
            Some(job) => Ok(Step::Attempted(Box::new(item.with_job(&job)))),
            None => {
                tracing::warn!(queue = %Q::NAME, key = item.key(), "lease lost before release; another attempt has it");
                self.current(item.key()).await
            }
        }
    }

    async fn finish(
        &self,
        item: Q::Item,
        done: Q::Done,
        result: AttemptResult,
    ) -> Result<Step<Q::Item>, StoreError> {
        self.metrics.attempt(Q::NAME, result);
        let now = (self.clock)();
        let key = item.key().to_owned();
        let finished = self.outcomes.call(Finished { item, now, done }).await?;
        match finished {
            Some(finished) => {
                self.queue.settled(&finished);
                Ok(Step::Attempted(Box::new(finished)))
            }
            None => {
                tracing::warn!(queue = %Q::NAME, key = %key, "lease lost before the outcome; another attempt has it");
                self.current(&key).await
            }
        }
    }

    async fn current(&self, key: &str) -> Result<Step<Q::Item>, StoreError> {
        let Some(job) = self.store.job(Q::NAME, key).await? else {
            return Ok(Step::Idle);
        };
        Ok(match self.queue.load(&self.store, vec![job]).await?.pop() {
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
        match self.store.next_job_due(Q::NAME, self.queue.owner()).await {
            Ok(Some(due)) => nap(due.since(now)),
            _ => Duration::from_secs(1),
        }
    }
}

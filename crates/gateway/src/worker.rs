//! The delivery worker: takes due registrations from the outbox and registers them with
//! GoTo, one GoTo call per attempt.
//!
//! - 2xx → `delivered`; 409 → `already_registered`, with the existing join URL looked up
//!   by email; 400 `RegistrationInvalid` and other refusals → `failed` with the reason.
//! - 5xx, timeouts, dropped connections, a token GoTo refuses even after a refresh →
//!   retried with capped exponential backoff and jitter. 429 → retried after
//!   `Retry-After`, without using up an attempt. A registration is given up (`dead`)
//!   only when it has been failing for `give_up_after` without a break.
//! - The [`Breaker`] watches those failures: while GoTo is down, one probe at a time;
//!   its first success makes the whole backlog due at once.
//! - A dead grant (reauthorization required) pauses delivery without using up attempts;
//!   intake goes on. Each step checks the stored login again, so delivery resumes by
//!   itself once someone has logged in again.
//! - Each attempt holds a short lease, renewed by a heartbeat while GoTo is being
//!   asked, and a fencing token: an attempt whose lease was taken over records nothing.
//!
//! Tests call [`Worker::deliver_next`] directly instead of running the loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use g2w_goto::{Clock, GotoClient, GotoError, NewRegistrant, RetryPolicy, Timestamp, WebinarKey};
use g2w_store::{Claim, Completion, Registration, Release, Store};
use tokio::sync::Notify;

use crate::breaker::{Breaker, Permit};
use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::waiters::Waiters;

/// How long an idle loop sleeps before something is due in `until`: at least 10 ms,
/// at most a second (new work also wakes it).
fn nap(until: Duration) -> Duration {
    until.clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing is due.
    Idle,
    /// Delivery is paused until someone logs in again.
    Paused(String),
    /// GoTo is failing: nothing is delivered before this time, when the next probe is
    /// due.
    WaitingForGoto(Timestamp),
    /// One registration was attempted; this is its state now.
    Attempted(Box<Registration>),
}

/// Delivers the outbox.
pub struct Worker {
    store: Arc<Store>,
    client: GotoClient,
    config: GatewayConfig,
    holder: String,
    clock: Clock,
    paused: std::sync::Mutex<Option<String>>,
    wake: Notify,
    waiters: Arc<Waiters>,
    metrics: Arc<Metrics>,
    backoff: RetryPolicy,
    breaker: Breaker,
    pace: crate::pace::Pace,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

fn error_text(e: &GotoError) -> String {
    e.to_string().chars().take(500).collect()
}

impl Worker {
    /// A worker; `client` should not retry by itself (the outbox retries, durably).
    pub(crate) fn new(
        store: Arc<Store>,
        client: GotoClient,
        config: GatewayConfig,
        clock: Clock,
        waiters: Arc<Waiters>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let backoff = RetryPolicy {
            // Attempts never run out: the give-up clock decides.
            max_attempts: u32::MAX,
            base: config.backoff_base,
            cap: config.backoff_cap,
            max_retry_after: config.backoff_cap,
        };
        let pace = crate::pace::Pace::new(
            client.rate_limit(),
            config.lookup_rate,
            config.delivery_concurrency,
        );
        Self {
            pace,
            store,
            client,
            config,
            holder: format!("worker-{}-{:x}", std::process::id(), rand::random::<u64>()),
            clock,
            paused: std::sync::Mutex::new(None),
            wake: Notify::new(),
            waiters,
            metrics,
            backoff,
            breaker: Breaker::default(),
        }
    }

    /// Asks an idle worker to look for work now (new registration arrived).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// How fast deliveries go, for intake to judge whether waiting is worth it.
    pub(crate) fn pace(&self) -> &crate::pace::Pace {
        &self.pace
    }

    /// The circuit breaker's state.
    pub(crate) fn breaker(&self) -> crate::breaker::BreakerState {
        self.breaker.state()
    }

    /// Whether GoTo is failing (the breaker holds deliveries back).
    pub(crate) fn goto_failing(&self) -> bool {
        self.breaker.is_open()
    }

    /// Why delivery is paused, if it is.
    pub fn paused(&self) -> Option<String> {
        self.paused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_paused(&self, reason: Option<String>) {
        let mut paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        match (&*paused, &reason) {
            (None, Some(r)) => tracing::warn!(reason = %r, "delivery paused: GoTo login needed"),
            (Some(_), None) => tracing::info!("delivery resumed"),
            _ => {}
        }
        *paused = reason;
    }

    /// Whether the stored login is usable again (someone logged in while paused).
    async fn login_usable(&self) -> bool {
        matches!(self.client.tokens().record().await, Ok(r) if r.unusable().is_none())
    }

    /// Delivers at most one registration.
    ///
    /// # Errors
    /// Only store failures; GoTo's answers become states.
    pub async fn deliver_next(&self) -> Result<Step, g2w_store::StoreError> {
        self.deliver_next_as(&self.holder).await
    }

    async fn deliver_next_as(&self, holder: &str) -> Result<Step, g2w_store::StoreError> {
        if let Some(reason) = self.paused() {
            if !self.login_usable().await {
                return Ok(Step::Paused(reason));
            }
            self.set_paused(None);
        }
        let now = (self.clock)();
        let which = match self.breaker.permit(now) {
            Permit::Deliver => Claim::Due,
            Permit::Probe => Claim::Probe,
            Permit::WaitUntil(at) => return Ok(Step::WaitingForGoto(at)),
        };
        let lease = self.config.lease;
        let (holder, profile) = (holder.to_owned(), self.config.profile.clone());
        let claimed = self.store.claim(&profile, &holder, now, lease, which).await;
        match claimed {
            Ok(Some(reg)) => self.deliver(reg).await,
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

    async fn deliver(&self, reg: Registration) -> Result<Step, g2w_store::StoreError> {
        let parsed = serde_json::from_str::<NewRegistrant>(&reg.payload)
            .map(|p| (reg.webinar_key, p))
            .map_err(|e| e.to_string());
        let (webinar, registrant) = match parsed {
            Ok(v) => v,
            Err(why) => {
                self.breaker.no_probe();
                let reason = format!("unreadable outbox row: {why}");
                return self
                    .finish(&reg, Completion::Failed { reason }, "failed")
                    .await;
            }
        };
        let started = Instant::now();
        let result = self
            .with_heartbeat(&reg, self.register(webinar, &registrant, &reg.email))
            .await;
        self.metrics.goto_latency(started.elapsed());
        self.pace.delivered_in(started.elapsed());
        let now = (self.clock)();
        let (completion, metric) = match result {
            Ok(completion) => {
                let metric = match &completion {
                    Completion::Delivered { .. } => "delivered",
                    _ => "already_registered",
                };
                (completion, metric)
            }
            Err(e @ GotoError::ReauthorizationRequired { .. }) => {
                self.breaker.no_probe();
                let reason = error_text(&e);
                self.set_paused(Some(reason.clone()));
                self.metrics.delivery("paused");
                self.release(&reg, now, &reason, Release::Paused).await?;
                return Ok(Step::Paused(reason));
            }
            Err(GotoError::Store(e)) => {
                // Our own token store failed: not GoTo's doing, and not the
                // registration's: try again shortly.
                self.breaker.no_probe();
                let reason = format!("token store: {e}");
                return self
                    .release(&reg, now + Duration::from_secs(1), &reason, Release::Paused)
                    .await;
            }
            Err(e) if e.is_retryable() => return self.retry_later(&reg, now, &e).await,
            Err(e) => (
                Completion::Failed {
                    reason: error_text(&e),
                },
                "failed",
            ),
        };
        if self.breaker.succeeded() {
            self.backlog_due(now).await;
        }
        self.finish(&reg, completion, metric).await
    }

    /// One registration's GoTo calls: create it; on 409, find the existing join URL.
    async fn register(
        &self,
        webinar: WebinarKey,
        registrant: &NewRegistrant,
        email: &str,
    ) -> Result<Completion, GotoError> {
        match self
            .client
            .create_registrant(webinar, registrant, false)
            .await
        {
            Ok(created) => Ok(Completion::Delivered {
                registrant_key: created.registrant_key,
                join_url: created.join_url,
            }),
            Err(GotoError::AlreadyRegistered {
                registrant_key,
                join_url: Some(url),
            }) => Ok(Completion::AlreadyRegistered {
                registrant_key,
                join_url: Some(url),
            }),
            Err(GotoError::AlreadyRegistered {
                registrant_key,
                join_url: None,
            }) => Ok(match self.client.find_registrant(webinar, email).await {
                Ok(Some(found)) => Completion::AlreadyRegistered {
                    registrant_key: Some(found.registrant_key),
                    join_url: found.join_url,
                },
                _ => Completion::AlreadyRegistered {
                    registrant_key,
                    join_url: None,
                },
            }),
            Err(e) => Err(e),
        }
    }

    /// Runs `call` while renewing the attempt's lease every third of its length, so a
    /// slow GoTo never lets another worker take a registration that is still in flight.
    async fn with_heartbeat<T>(
        &self,
        reg: &Registration,
        call: impl std::future::Future<Output = T>,
    ) -> T {
        let every = (self.config.lease / 3).max(Duration::from_millis(10));
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tokio::pin!(call);
        loop {
            tokio::select! {
                out = &mut call => return out,
                _ = beat.tick() => {
                    let (id, fence) = (reg.id.clone(), reg.fence);
                    let until = (self.clock)() + self.config.lease;
                    match self.store.renew(&id, fence, until).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(id = %reg.id, "lease taken over; this attempt's outcome will not be recorded"),
                        Err(e) => tracing::warn!(id = %reg.id, "cannot renew a lease: {e}"),
                    }
                }
            }
        }
    }

    /// GoTo failed in a way that may pass: back off (or give up when it has been
    /// failing for too long), and tell the breaker.
    async fn retry_later(
        &self,
        reg: &Registration,
        now: Timestamp,
        e: &GotoError,
    ) -> Result<Step, g2w_store::StoreError> {
        let reason = error_text(e);
        let retry_after = match e {
            GotoError::RateLimited { retry_after } => *retry_after,
            _ => None,
        };
        self.breaker.failed(now, retry_after, &reason);
        let failing_for = now.since(reg.failing_since.unwrap_or(now));
        if failing_for >= self.config.give_up_after {
            let reason = format!(
                "GoTo kept failing for {} h ({} attempts); last: {reason}",
                failing_for.as_secs() / 3_600,
                reg.attempts
            );
            return self.finish(reg, Completion::Dead { reason }, "dead").await;
        }
        let (why, wait) = match e {
            GotoError::RateLimited { .. } => (
                Release::Throttled,
                self.backoff.delay(reg.attempts, e).unwrap_or_default(),
            ),
            _ => (
                Release::Failed,
                self.backoff
                    .delay(reg.attempts, e)
                    .unwrap_or_else(|| self.backoff.backoff(reg.attempts, rand::random())),
            ),
        };
        self.metrics.delivery(if why == Release::Throttled {
            "throttled"
        } else {
            "retry"
        });
        self.release(reg, now + wait, &reason, why).await
    }

    /// GoTo is back: everything waiting out a backoff is due now, and every loop wakes.
    async fn backlog_due(&self, now: Timestamp) {
        let profile = self.config.profile.clone();
        match self.store.make_due(&profile, now).await {
            Ok(n) => tracing::info!(backlog = n, "GoTo answers again: delivering the backlog"),
            Err(e) => tracing::warn!("cannot make the backlog due: {e}"),
        }
        self.wake.notify_waiters();
    }

    /// Gives a registration back as pending, due at `due`; the step is its new state.
    async fn release(
        &self,
        reg: &Registration,
        due: Timestamp,
        error: &str,
        why: Release,
    ) -> Result<Step, g2w_store::StoreError> {
        let (id, fence, error, now) = (reg.id.clone(), reg.fence, error.to_owned(), (self.clock)());
        let released = self
            .store
            .release(&id, fence, now, due, &error, why)
            .await?;
        match released {
            Some(r) => Ok(Step::Attempted(Box::new(r))),
            None => {
                tracing::warn!(id = %reg.id, "lease lost before release; another attempt has it");
                self.current(&reg.id).await
            }
        }
    }

    async fn current(&self, id: &str) -> Result<Step, g2w_store::StoreError> {
        let id = id.to_owned();
        match self.store.registration(&id).await? {
            Some(r) => Ok(Step::Attempted(Box::new(r))),
            None => Ok(Step::Idle),
        }
    }

    async fn finish(
        &self,
        reg: &Registration,
        completion: Completion,
        metric: &'static str,
    ) -> Result<Step, g2w_store::StoreError> {
        self.metrics.delivery(metric);
        let (id, fence, now) = (reg.id.clone(), reg.fence, (self.clock)());
        let completed = self.store.complete(&id, fence, now, &completion).await?;
        match completed {
            Some(r) => {
                self.waiters.resolve(&r);
                Ok(Step::Attempted(Box::new(r)))
            }
            None => {
                tracing::warn!(id = %reg.id, "lease lost before completion; another attempt has it");
                self.current(&reg.id).await
            }
        }
    }

    /// Refreshes the GoTo token if the last refresh is older than the keep-alive
    /// interval, so the refresh token never expires from disuse. Returns whether it
    /// refreshed.
    pub async fn keep_alive_tick(&self) -> Result<bool, GotoError> {
        let record = self.client.tokens().record().await?;
        if record.reauthorization_required.is_some() {
            return Ok(false);
        }
        let now = self.client.tokens().now();
        let stale = record
            .last_refresh_at
            .is_none_or(|t| now.since(t) >= self.config.keep_alive);
        if stale {
            self.client.tokens().force_refresh().await?;
        }
        Ok(stale)
    }

    /// Runs `concurrency` delivery loops, each holding its own leases, until `stop`
    /// fires; in-flight deliveries finish.
    pub(crate) async fn run(self: Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        let loops: Vec<_> = (0..self.config.delivery_concurrency.max(1))
            .map(|n| {
                let worker = self.clone();
                let holder = format!("{}-{n}", self.holder);
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    while !*stop.borrow() {
                        let idle = match worker.deliver_next_as(&holder).await {
                            Ok(Step::Attempted(_)) => None,
                            Ok(Step::Idle) => Some(worker.until_next_due().await),
                            Ok(Step::Paused(_)) => Some(Duration::from_secs(5)),
                            Ok(Step::WaitingForGoto(at)) => Some(nap(at.since((worker.clock)()))),
                            Err(e) => {
                                tracing::error!("outbox: {e}");
                                Some(Duration::from_secs(1))
                            }
                        };
                        if let Some(wait) = idle {
                            tokio::select! {
                                () = worker.wake.notified() => {}
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
        let profile = self.config.profile.clone();
        match self.store.next_due(&profile).await {
            Ok(Some(due)) => nap(due.since(now)),
            _ => Duration::from_secs(1),
        }
    }

    /// Runs the keep-alive check every hour until `stop` fires.
    pub(crate) async fn keep_alive(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.keep_alive_tick().await {
                Ok(true) => tracing::info!("keep-alive: GoTo token refreshed"),
                Ok(false) => {}
                Err(e) => tracing::warn!("keep-alive refresh failed: {e}"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

//! The delivery worker: takes due registrations from the outbox and registers them with
//! GoTo, one GoTo call per attempt.
//!
//! - 2xx → `delivered`; 409 → `already_registered`, with the existing join URL looked up
//!   by email; 400 `RegistrationInvalid` and other refusals → `failed` with the reason.
//! - 5xx, timeouts, dropped connections, 429 → retried with capped exponential backoff
//!   and jitter (`Retry-After` wins); after `max_attempts` → `dead`.
//! - A dead grant (reauthorization required) pauses delivery without using up attempts;
//!   intake goes on. Each step checks the stored login again, so delivery resumes by
//!   itself once someone has logged in again.
//!
//! Tests call [`Worker::deliver_next`] directly instead of running the loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use g2w_goto::{GotoClient, GotoError, NewRegistrant, RetryPolicy, WebinarKey};
use g2w_store::{Completion, OutboxStore, Registration};
use tokio::sync::Notify;

use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::waiters::Waiters;

/// Milliseconds since the epoch; tests replace it to make backoffs due at once.
pub type MillisClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The real clock.
pub fn system_millis() -> MillisClock {
    Arc::new(|| chrono::Utc::now().timestamp_millis())
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing is due.
    Idle,
    /// Delivery is paused until someone logs in again.
    Paused(String),
    /// One registration was attempted; this is its state now.
    Attempted(Box<Registration>),
}

/// Delivers the outbox.
pub struct Worker {
    store: Arc<dyn OutboxStore>,
    client: GotoClient,
    config: GatewayConfig,
    holder: String,
    clock: MillisClock,
    paused: std::sync::Mutex<Option<String>>,
    wake: Notify,
    waiters: Arc<Waiters>,
    metrics: Arc<Metrics>,
    backoff: RetryPolicy,
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
        store: Arc<dyn OutboxStore>,
        client: GotoClient,
        config: GatewayConfig,
        clock: MillisClock,
        waiters: Arc<Waiters>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let backoff = RetryPolicy {
            max_attempts: config.max_attempts,
            base: config.backoff_base,
            cap: config.backoff_cap,
            max_retry_after: config.backoff_cap,
        };
        Self {
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
        }
    }

    /// Asks an idle worker to look for work now (new registration arrived).
    pub fn wake(&self) {
        self.wake.notify_one();
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
        matches!(self.client.tokens().record().await, Ok(r) if r.reauthorization_required.is_none())
    }

    /// Delivers at most one registration.
    ///
    /// # Errors
    /// Only store failures; GoTo's answers become states.
    pub async fn deliver_next(&self) -> Result<Step, g2w_store::StoreError> {
        if let Some(reason) = self.paused() {
            if !self.login_usable().await {
                return Ok(Step::Paused(reason));
            }
            self.set_paused(None);
        }
        let now = (self.clock)();
        let lease = i64::try_from(self.config.lease.as_millis()).unwrap_or(60_000);
        let holder = self.holder.clone();
        let profile = self.config.profile.clone();
        let claimed =
            crate::off_thread(&self.store, move |s| s.claim(&profile, &holder, now, lease)).await?;
        let Some(reg) = claimed else {
            return Ok(Step::Idle);
        };
        self.deliver(reg).await
    }

    async fn deliver(&self, reg: Registration) -> Result<Step, g2w_store::StoreError> {
        let parsed = serde_json::from_str::<NewRegistrant>(&reg.payload)
            .map_err(|e| e.to_string())
            .and_then(|p| {
                reg.webinar_key
                    .parse::<WebinarKey>()
                    .map(|k| (k, p))
                    .map_err(|e| e.to_string())
            });
        let (webinar, registrant) = match parsed {
            Ok(v) => v,
            Err(why) => {
                let reason = format!("unreadable outbox row: {why}");
                return self
                    .finish(&reg, Completion::Failed { reason }, "failed")
                    .await;
            }
        };
        let started = Instant::now();
        let result = self
            .client
            .create_registrant(webinar, &registrant, false)
            .await;
        self.metrics.goto_latency(started.elapsed());
        let (completion, metric) = match result {
            Ok(created) => (
                Completion::Delivered {
                    registrant_key: created.registrant_key.to_string(),
                    join_url: created.join_url,
                },
                "delivered",
            ),
            Err(GotoError::AlreadyRegistered {
                registrant_key,
                join_url,
            }) => {
                let (key, url) = match join_url {
                    Some(url) => (registrant_key.map(|k| k.to_string()), Some(url)),
                    None => match self.client.find_registrant(webinar, &reg.email).await {
                        Ok(Some(found)) => (Some(found.registrant_key.to_string()), found.join_url),
                        _ => (registrant_key.map(|k| k.to_string()), None),
                    },
                };
                (
                    Completion::AlreadyRegistered {
                        registrant_key: key,
                        join_url: url,
                    },
                    "already_registered",
                )
            }
            Err(e @ (GotoError::ReauthorizationRequired { .. } | GotoError::InvalidToken)) => {
                let reason = error_text(&e);
                self.set_paused(Some(reason.clone()));
                self.metrics.delivery("paused");
                let now = (self.clock)();
                self.release(&reg, now, &reason, false).await?;
                return Ok(Step::Paused(reason));
            }
            Err(e) if e.is_retryable() => {
                let reason = error_text(&e);
                let Some(wait) = self.backoff.delay(reg.attempts, &e) else {
                    let reason = format!("{} attempts; last: {reason}", reg.attempts);
                    return self.finish(&reg, Completion::Dead { reason }, "dead").await;
                };
                self.metrics.delivery("retry");
                let due = (self.clock)() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
                self.release(&reg, due, &reason, true).await?;
                return self.current(&reg.id).await;
            }
            Err(e) => (
                Completion::Failed {
                    reason: error_text(&e),
                },
                "failed",
            ),
        };
        self.finish(&reg, completion, metric).await
    }

    /// Gives a registration back as pending, due at `due`.
    async fn release(
        &self,
        reg: &Registration,
        due: i64,
        why: &str,
        count_attempt: bool,
    ) -> Result<(), g2w_store::StoreError> {
        let (id, holder, why, now) = (
            reg.id.clone(),
            self.holder.clone(),
            why.to_owned(),
            (self.clock)(),
        );
        crate::off_thread(&self.store, move |s| {
            s.release(&id, &holder, now, due, &why, count_attempt)
        })
        .await?;
        Ok(())
    }

    async fn current(&self, id: &str) -> Result<Step, g2w_store::StoreError> {
        let id = id.to_owned();
        match crate::off_thread(&self.store, move |s| s.registration(&id)).await? {
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
        let (id, holder, now) = (reg.id.clone(), self.holder.clone(), (self.clock)());
        let completed = crate::off_thread(&self.store, move |s| {
            s.complete(&id, &holder, now, &completion)
        })
        .await?;
        if !completed {
            tracing::warn!(id = %reg.id, "lease lost before completion; another worker has it");
        }
        let step = self.current(&reg.id).await?;
        if let Step::Attempted(r) = &step {
            self.waiters.resolve(r);
        }
        Ok(step)
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
        let interval = i64::try_from(self.config.keep_alive.as_secs()).unwrap_or(i64::MAX);
        let stale = record.last_refresh_at.is_none_or(|t| now - t >= interval);
        if stale {
            self.client.tokens().force_refresh().await?;
        }
        Ok(stale)
    }

    /// Runs `concurrency` delivery loops until `stop` fires; in-flight deliveries finish.
    pub(crate) async fn run(self: Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        let loops: Vec<_> = (0..self.config.delivery_concurrency.max(1))
            .map(|_| {
                let worker = self.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    while !*stop.borrow() {
                        let idle = match worker.deliver_next().await {
                            Ok(Step::Attempted(_)) => None,
                            Ok(Step::Idle) => Some(worker.until_next_due().await),
                            Ok(Step::Paused(_)) => Some(Duration::from_secs(5)),
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
        match crate::off_thread(&self.store, move |s| s.next_due(&profile)).await {
            Ok(Some(due)) => {
                Duration::from_millis(u64::try_from((due - now).clamp(10, 1000)).unwrap_or(1000))
            }
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

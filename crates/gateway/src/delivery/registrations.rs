//! Registrations to GoTo: the outbox as a [`Queue`] for the [`Engine`], one GoTo call
//! per attempt.
//!
//! - 2xx → `delivered`; 409 → `already_registered`, with the existing join URL looked up
//!   by email; 400 `RegistrationInvalid` and other refusals → `failed` with the reason.
//! - 5xx, timeouts, dropped connections, a token GoTo refuses even after a refresh →
//!   retried by the engine; 429 → the account's pace slows (or waits out
//!   `Retry-After`) and the registration goes again, using up no attempt.
//! - A dead grant (reauthorization required) pauses delivery without using up attempts;
//!   intake goes on, and delivery resumes by itself once someone has logged in again.
//!
//! [`Worker`] is the engine over this queue; tests call [`Engine::step`] (or
//! [`Worker::deliver_next`]) instead of running its loops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use g2w_goto::{GotoClient, GotoError, NewRegistrant, RateLimiter, Timestamp, WebinarKey};
use g2w_store::{Completion, Job, QueueName, Registration, Store, StoreError};

use super::engine::{Engine, Item, Outcome, Queue, Step};
use super::pace::Pace;
use super::payload::Payload;
use super::waiters::Waiters;
use crate::metrics::{AttemptResult, Metrics};

/// The delivery engine: registrations to GoTo.
pub type Worker = Engine<Registrations>;

impl Item for Registration {
    fn key(&self) -> &str {
        &self.id
    }

    fn attempts(&self) -> u32 {
        self.attempts
    }

    fn failing_since(&self) -> Option<Timestamp> {
        self.failing_since
    }

    fn fence(&self) -> i64 {
        self.fence
    }

    fn with_job(self, job: &Job) -> Self {
        let outcome = matches!(
            self.state,
            g2w_store::OutboxState::Delivered | g2w_store::OutboxState::AlreadyRegistered
        )
        .then_some(self.state);
        Registration::with_job(self, job, outcome)
    }
}

/// The registrations of one profile (GoTo login), delivered with its client.
pub struct Registrations {
    client: GotoClient,
    profile: String,
    waiters: Arc<Waiters>,
    metrics: Arc<Metrics>,
    pace: Pace,
    /// The GoTo token is refreshed at least this often.
    keep_alive: Duration,
}

fn error_text(e: &GotoError) -> String {
    g2w_goto::chain(e).chars().take(500).collect()
}

impl Registrations {
    /// The registrations of `profile`; `client` should not retry by itself (the
    /// engine retries, durably).
    pub(crate) fn new(
        client: GotoClient,
        profile: String,
        waiters: Arc<Waiters>,
        metrics: Arc<Metrics>,
        pace: Pace,
        keep_alive: Duration,
    ) -> Self {
        Self {
            client,
            profile,
            waiters,
            metrics,
            pace,
            keep_alive,
        }
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
}

#[async_trait::async_trait]
impl Queue for Registrations {
    type Item = Registration;
    type Done = Completion;
    const NAME: QueueName = QueueName::Registrations;

    fn owner(&self) -> &str {
        &self.profile
    }

    fn limiter(&self) -> &RateLimiter {
        self.client.limiter()
    }

    async fn load(&self, store: &Store, jobs: Vec<Job>) -> Result<Vec<Registration>, StoreError> {
        store.registrations_of(jobs).await
    }

    async fn finish(
        &self,
        store: &Store,
        now: Timestamp,
        done: Vec<(Registration, Completion)>,
    ) -> Result<Vec<Option<Registration>>, StoreError> {
        store.complete(now, done).await
    }

    /// While paused, each step asks whether a usable login is stored again.
    async fn blocked(&self) -> Option<String> {
        match self.client.tokens().record().await {
            Ok(record) => record.unusable(),
            Err(e) => Some(error_text(&e)),
        }
    }

    async fn attempt(&self, reg: &Registration) -> Outcome<Completion> {
        let registrant = match serde_json::from_str::<Payload>(&reg.payload) {
            Ok(Payload::Ready(r)) => r,
            Ok(Payload::Pending {
                registrant,
                by_text,
            }) => match self.client.registration_fields(reg.webinar_key).await {
                Ok(form) => Payload::matched(registrant, &by_text, &form),
                Err(e) => return failed(e),
            },
            Err(e) => {
                let reason = format!("unreadable outbox row: {e}");
                return Outcome::Unsendable(Completion::Failed { reason }, AttemptResult::Failed);
            }
        };
        let started = Instant::now();
        let result = self
            .register(reg.webinar_key, &registrant, &reg.email)
            .await;
        self.metrics.goto_latency(started.elapsed());
        self.pace.delivered_in(started.elapsed());
        match result {
            Ok(completion @ Completion::Delivered { .. }) => {
                Outcome::Done(completion, AttemptResult::Delivered)
            }
            Ok(completion) => Outcome::Done(completion, AttemptResult::AlreadyRegistered),
            Err(e) => failed(e),
        }
    }

    fn given_up(&self, reason: String) -> Completion {
        Completion::Dead {
            reason: format!("GoTo kept {reason}"),
        }
    }

    fn settled(&self, reg: &Registration) {
        self.waiters.resolve(reg);
    }
}

/// What GoTo's refusal makes of an attempt.
fn failed(e: GotoError) -> Outcome<Completion> {
    match e {
        e @ GotoError::ReauthorizationRequired { .. } => Outcome::Paused(error_text(&e)),
        // Our own token store failed: not GoTo's doing, and not the registration's.
        e @ GotoError::Store(_) => Outcome::Hiccup(error_text(&e)),
        GotoError::RateLimited { retry_after } => Outcome::Throttled {
            error: "GoTo answered 429 (too many requests)".into(),
            retry_after,
        },
        e if e.is_retryable() => Outcome::Retry {
            error: error_text(&e),
        },
        e => Outcome::Done(
            Completion::Failed {
                reason: error_text(&e),
            },
            AttemptResult::Failed,
        ),
    }
}

impl Worker {
    /// Delivers at most one registration.
    ///
    /// # Errors
    /// Only store failures; GoTo's answers become states.
    pub async fn deliver_next(&self) -> Result<Step<Registration>, StoreError> {
        self.step().await
    }

    /// How fast deliveries go, for intake to judge whether waiting is worth it.
    pub(crate) fn pace(&self) -> &Pace {
        &self.queue().pace
    }

    /// Refreshes the GoTo token if the last refresh is older than the keep-alive
    /// interval, so the refresh token never expires from disuse. Returns whether it
    /// refreshed.
    ///
    /// # Errors
    /// When the stored login cannot be read or GoTo refuses the refresh.
    pub async fn keep_alive_tick(&self) -> Result<bool, GotoError> {
        let every = self.queue().keep_alive;
        let tokens = self.queue().client.tokens();
        let record = tokens.record().await?;
        if record.reauthorization_required.is_some() {
            return Ok(false);
        }
        let now = tokens.now();
        let stale = record.last_refresh_at.is_none_or(|t| now.since(t) >= every);
        if stale {
            tokens.force_refresh().await?;
        }
        Ok(stale)
    }

    /// Runs the keep-alive check every hour until `stop` fires.
    pub(crate) async fn keep_alive(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.keep_alive_tick().await {
                Ok(true) => tracing::info!("keep-alive: GoTo token refreshed"),
                Ok(false) => {}
                Err(e) => tracing::warn!("keep-alive refresh failed: {}", g2w_goto::chain(&e)),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

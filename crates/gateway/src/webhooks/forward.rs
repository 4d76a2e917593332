//! Forwarding received events to the user's own URL: forwarding jobs as a [`Queue`] for
//! the delivery [`Engine`], so forwards get what deliveries get (leases with a heartbeat,
//! fencing, backoff, the give-up horizon, a pace that keeps `Retry-After`, a breaker that
//! probes a URL that is down one event at a time).
//!
//! Each request is signed by g2w (not GoTo): `X-G2W-Timestamp` is Unix seconds and
//! `X-G2W-Signature` is `sha256=` and the hex HMAC-SHA256, under the forward secret, of
//! the timestamp, a dot, and the body. A receiver recomputes it and refuses old
//! timestamps, so a captured request cannot be replayed later.

use std::time::Duration;

use g2w_goto::{Clock, ExposeSecret as _, RateLimiter, SecretString, Timestamp};
use g2w_store::{Job, JobEnd, QueueName, Store, StoreError, StoredEvent};

use crate::delivery::engine::{Engine, Item, Outcome, Queue};
use crate::metrics::AttemptResult;

/// The header with g2w's signature.
pub const SIGNATURE_HEADER: &str = "x-g2w-signature";
/// The header with the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-g2w-timestamp";

/// The longest wait between attempts to forward one event.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(600);

/// `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` under `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = crate::signing::hmac_sha256(
        secret.as_bytes(),
        &[timestamp.to_string().as_bytes(), b".", body],
    );
    format!("sha256={}", crate::signing::hex(&mac))
}

/// The forwarding engine.
pub type Forwarder = Engine<Forwards>;

impl Item for StoredEvent {
    fn key(&self) -> &str {
        &self.event_key
    }

    fn attempts(&self) -> u32 {
        self.forward_attempts
    }

    fn failing_since(&self) -> Option<Timestamp> {
        self.forward_failing_since
    }

    fn fence(&self) -> i64 {
        self.forward_fence
    }

    fn with_job(self, job: &Job) -> Self {
        StoredEvent::with_job(self, job)
    }
}

/// The events waiting for the user's URL.
pub struct Forwards {
    http: reqwest::Client,
    url: String,
    secret: Option<SecretString>,
    clock: Clock,
    /// The URL's pace: unlimited, until it answers 429.
    limiter: RateLimiter,
}

/// The name of the forward URL's budget (kept in this process only).
const THE_URL: &str = "forward URL";

impl Forwards {
    pub(crate) fn new(
        http: reqwest::Client,
        url: String,
        secret: Option<SecretString>,
        clock: Clock,
    ) -> Self {
        Self {
            http,
            url,
            secret,
            limiter: RateLimiter::new(0, 1).with_clock(clock.clone()),
            clock,
        }
    }
}

/// A `Retry-After` in seconds, from a response that has one.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[async_trait::async_trait]
impl Queue for Forwards {
    type Item = StoredEvent;
    type Done = JobEnd;
    const NAME: QueueName = QueueName::Forwards;

    fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    async fn load(&self, store: &Store, jobs: Vec<Job>) -> Result<Vec<StoredEvent>, StoreError> {
        store.events_of(jobs).await
    }

    async fn finish(
        &self,
        store: &Store,
        now: Timestamp,
        done: Vec<(StoredEvent, JobEnd)>,
    ) -> Result<Vec<Option<StoredEvent>>, StoreError> {
        let ends: Vec<_> = done
            .iter()
            .map(|(e, end)| (e.event_key.clone(), e.forward_fence, end.clone()))
            .collect();
        let jobs = store.finish_jobs(Self::NAME, now, &ends).await?;
        Ok(jobs
            .into_iter()
            .zip(done)
            .map(|(job, (event, _))| Some(event.with_job(&job?)))
            .collect())
    }

    /// One signed POST of the event's raw body. Any failure may pass (the URL is the
    /// user's own, and may be down or redeploying): it is retried until the give-up
    /// horizon.
    async fn attempt(&self, e: &StoredEvent) -> Outcome<JobEnd> {
        self.limiter.acquire(THE_URL).await;
        let now = (self.clock)();
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-g2w-event-key", &e.event_key)
            .header("x-g2w-event-name", e.event_name.as_str())
            .header("x-g2w-source", e.source.as_str())
            .header(TIMESTAMP_HEADER, now.as_secs().to_string())
            .body(e.body.clone());
        if let Some(secret) = &self.secret {
            request = request.header(
                SIGNATURE_HEADER,
                signature(secret.expose_secret(), now.as_secs(), e.body.as_bytes()),
            );
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => {
                Outcome::Done(JobEnd::Done, AttemptResult::Forwarded)
            }
            Ok(r) if r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                let wait = retry_after(&r);
                match wait {
                    Some(wait) => self.limiter.hold(THE_URL, wait).await,
                    None => self.limiter.slow_down(THE_URL, now).await,
                }
                Outcome::Throttled {
                    error: format!("{} answered HTTP 429", self.url),
                    retry_after: wait,
                }
            }
            Ok(r) => Outcome::Retry {
                error: format!("{} answered HTTP {}", self.url, r.status().as_u16()),
            },
            Err(err) => Outcome::Retry {
                error: format!("{}: {}", self.url, g2w_goto::describe_transport(&err)),
            },
        }
    }

    fn given_up(&self, reason: String) -> JobEnd {
        JobEnd::Dead(format!("the forward URL kept {reason}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_time_and_body() {
        let s = signature("k", 1_700_000_000, b"{}");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
        assert_ne!(s, signature("k", 1_700_000_001, b"{}"));
        assert_ne!(s, signature("k", 1_700_000_000, b"{ }"));
        assert_ne!(s, signature("other", 1_700_000_000, b"{}"));
    }
}

//! Forwarding received events to the user's own URL, through the store's outbox: each
//! event is leased, POSTed with its raw body, and retried with backoff until the URL
//! answers 2xx or the event has failed for `give_up_after`.
//!
//! Each request is signed by g2w (not GoTo): `X-G2W-Timestamp` is Unix seconds and
//! `X-G2W-Signature` is `sha256=` and the hex HMAC-SHA256, under the forward secret, of
//! the timestamp, a dot, and the body. A receiver recomputes it and refuses old
//! timestamps, so a captured request cannot be replayed later.

use std::sync::Arc;
use std::time::Duration;

use g2w_goto::ExposeSecret as _;
use g2w_store::{ForwardOutcome, StoredEvent};
use hmac::{Hmac, Mac as _};

use crate::state::AppState;

/// The header with g2w's signature.
pub const SIGNATURE_HEADER: &str = "x-g2w-signature";
/// The header with the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-g2w-timestamp";

/// How long one forwarding attempt holds an event: longer than a request may take,
/// so a slow URL is never sent the same event by a second attempt meanwhile.
const LEASE: Duration = Duration::from_secs(g2w_goto::REQUEST_TIMEOUT.as_secs() + 30);
/// While the URL fails, the loop waits this long after the first failure (doubling up
/// to `PAUSE_CAP`) before trying the next event: a URL that is down is probed, not
/// flooded with the whole backlog.
const PAUSE_BASE: Duration = Duration::from_secs(1);
const PAUSE_CAP: Duration = Duration::from_secs(60);
/// The longest wait between attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(600);

/// `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` under `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1_u64 << attempts.min(10)).min(BACKOFF_CAP)
}

async fn send(
    state: &AppState,
    http: &reqwest::Client,
    url: &str,
    e: &StoredEvent,
) -> Result<(), String> {
    let now = (state.clock)();
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-g2w-event-key", &e.event_key)
        .header("x-g2w-event-name", &e.event_name)
        .header("x-g2w-source", e.source.as_str())
        .header(TIMESTAMP_HEADER, now.as_secs().to_string())
        .body(e.body.clone());
    if let Some(secret) = &state.config.forward_secret {
        request = request.header(
            SIGNATURE_HEADER,
            signature(secret.expose_secret(), now.as_secs(), e.body.as_bytes()),
        );
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("{url} answered HTTP {}", r.status().as_u16())),
        Err(e) => Err(format!("{url}: {}", g2w_goto::describe_transport(&e))),
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing was due.
    Idle,
    /// An event went out.
    Forwarded,
    /// The URL did not take it.
    Failed,
}

/// One step: forwards the next due event, if any.
pub(crate) async fn step(
    state: &AppState,
    http: &reqwest::Client,
    url: &str,
) -> Result<Step, g2w_store::StoreError> {
    let now = (state.clock)();
    let Some(event) = state.store.claim_forward(now, LEASE).await? else {
        return Ok(Step::Idle);
    };
    let outcome = match send(state, http, url, &event).await {
        Ok(()) => ForwardOutcome::Delivered,
        Err(error) if now.since(event.received_at) >= state.config.give_up_after => {
            ForwardOutcome::Failed { error }
        }
        Err(error) => ForwardOutcome::Retry {
            at: (state.clock)() + backoff(event.forward_attempts),
            error,
        },
    };
    let step = if outcome == ForwardOutcome::Delivered {
        Step::Forwarded
    } else {
        Step::Failed
    };
    state.metrics.webhook(match outcome {
        ForwardOutcome::Delivered => "forwarded",
        ForwardOutcome::Retry { .. } => "forward_retry",
        ForwardOutcome::Failed { .. } => "forward_failed",
    });
    let (key, attempt) = (event.event_key.clone(), event.forward_attempts);
    let recorded = state.store.settle_forward(&key, attempt, &outcome).await?;
    if !recorded {
        tracing::warn!(
            event = %event.event_key,
            "forwarding lease lost before its outcome was recorded; another attempt has it"
        );
    }
    Ok(step)
}

/// Forwards until `stop` fires. Idle, it waits for a new event or a second; after a
/// failure it waits before the next event (1 s, doubling to a minute).
pub(crate) async fn run(state: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(url) = state.config.forward_url.clone() else {
        return;
    };
    let http = match g2w_goto::http_client() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("cannot forward GoTo events: {e}");
            return;
        }
    };
    let mut pause = PAUSE_BASE;
    while !*stop.borrow() {
        let stepped = step(&state, &http, &url).await;
        if let Err(e) = &stepped {
            tracing::warn!("forwarding: {e}");
        }
        match stepped {
            Ok(Step::Forwarded) => pause = PAUSE_BASE,
            Ok(Step::Failed) => {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => {}
                }
                pause = (pause * 2).min(PAUSE_CAP);
            }
            Ok(Step::Idle) | Err(_) => {
                tokio::select! {
                    () = state.forward_wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
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

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), BACKOFF_CAP);
    }
}

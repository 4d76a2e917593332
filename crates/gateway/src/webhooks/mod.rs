//! GoTo's webhook events: received at an unguessable path, kept once, counted for the
//! admin console's attendance page, forwarded to the user's own URL through an outbox,
//! and reconciled against GoTo's lists so that nothing depends on a delivery arriving.
//!
//! GoTo's signature scheme is not documented well enough to check, so the path is the
//! credential: `g2w webhooks setup` makes a random one and registers it with GoTo.

mod forward;
mod reconcile;
mod setup;

use g2w_store::Setting;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use g2w_goto::{EventName, RegistrantKey, SessionKey, WebinarKey};
use g2w_store::{EventSource, NewEvent, Store};
use serde_json::{Value, json};

pub use forward::{Forwarder, Forwards, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature};

pub use reconcile::{ReconcileError, Reconciled, reconcile};
pub use setup::{SetUp, SetupError, base_url, our_webhooks, remove, setup, setup_all};

pub(crate) use reconcile::Reconciler;

use crate::delivery::engine::{Engine, Policy};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// The forwarding engine, when a forward URL is configured.
pub(crate) fn forwarder(
    config: &crate::config::GatewayConfig,
    store: &Arc<Store>,
    clock: &g2w_goto::Clock,
    metrics: &Arc<Metrics>,
    policy: Policy,
) -> Option<Arc<Forwarder>> {
    let url = config.forward_url.clone()?;
    let http = match g2w_goto::http_client() {
        Ok(http) => http,
        Err(e) => {
            tracing::error!("cannot forward GoTo events: {e}");
            return None;
        }
    };
    let forwards = Forwards::new(http, url, config.forward_secret.clone(), clock.clone());
    // As many in flight as deliveries: after a restart the backlog drains while the
    // killed process's leases run out, as registrations' does.
    let policy = Policy {
        backoff_base: std::time::Duration::from_secs(1),
        backoff_cap: forward::BACKOFF_CAP,
        ..policy
    };
    Some(Arc::new(Engine::new(
        forwards,
        store.clone(),
        policy,
        clock.clone(),
        metrics.clone(),
    )))
}

/// Where the receiver lives: `/hooks/goto/<secret>`.
pub const RECEIVER_PREFIX: &str = "/hooks/goto/";

/// How long a matching path is trusted before the store is read again.
const PATH_TTL: Duration = Duration::from_secs(5);
/// The least time between store reads for paths that do not match (a flood of
/// guesses costs the store at most 20 reads a second).
const REREAD_GAP: Duration = Duration::from_millis(50);
/// The longest `eventKey` kept.
const MAX_EVENT_KEY: usize = 200;

/// The secret path, read from the store at most every few seconds.
#[derive(Default)]
pub(crate) struct HookPath(Mutex<Option<(Option<[u8; 32]>, Instant)>>);

/// A new secret path: 256 random bits, URL-safe.
pub fn new_receiver_path() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The receiver's secret path from its setting: `webhooks remove` leaves it empty.
pub fn configured_path(setting: Option<String>) -> Option<String> {
    setting.filter(|p| !p.trim().is_empty())
}

fn digest(text: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes()).into()
}

impl HookPath {
    /// Whether `candidate` is the configured secret (compared as digests, so timing
    /// says nothing about it). A match is trusted for a few seconds; a mismatch reads
    /// the store again (at most every 50 ms), so a path `g2w webhooks setup` has just
    /// written works at once, for GoTo's check that follows. `Err` when the store
    /// cannot say: the caller answers 503, so GoTo sends the event again.
    pub(crate) async fn matches(
        &self,
        store: &Arc<Store>,
        candidate: &str,
    ) -> Result<bool, ApiError> {
        let wanted = digest(candidate);
        let cached = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        let reread = match cached {
            Some((known, at)) if known == Some(wanted) => at.elapsed() >= PATH_TTL,
            Some((_, at)) => at.elapsed() >= REREAD_GAP,
            None => true,
        };
        if !reread {
            return Ok(cached.is_some_and(|(known, _)| known == Some(wanted)));
        }
        let read = store.setting(Setting::WebhookPath).await;
        let known = match read {
            Ok(path) => configured_path(path).as_deref().map(digest),
            Err(e) => {
                tracing::warn!("cannot read the webhook path: {e}");
                return Err(unavailable());
            }
        };
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((known, Instant::now()));
        Ok(known == Some(wanted))
    }

    /// `Ok` at the configured path; 404 anywhere else; 503 when the store cannot say.
    pub(crate) async fn admit(&self, store: &Arc<Store>, candidate: &str) -> Result<(), ApiError> {
        if self.matches(store, candidate).await? {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such resource",
            ))
        }
    }
}

pub(crate) fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the event cannot be stored now; send it again",
    )
}

/// A key from an event field (number or digits), if present and valid.
fn key_field<K: std::str::FromStr>(
    event: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<K>, String> {
    match event.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_u64() => n
            .to_string()
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} is not a key")),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} is not a key")),
        Some(_) => Err(format!("{name} is not a key")),
    }
}

/// The request's headers as a JSON object, without credentials a proxy may add.
fn headers_json(headers: &HeaderMap) -> String {
    let map: serde_json::Map<String, Value> = headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "authorization" | "cookie"))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                json!(String::from_utf8_lossy(value.as_bytes())),
            )
        })
        .collect();
    Value::Object(map).to_string()
}

/// The event a body states, to keep as received at `received_at`; the reason when it
/// is not one.
pub(crate) fn parse_event(
    body: &[u8],
    headers: &HeaderMap,
    received_at: g2w_goto::Timestamp,
    forward: bool,
) -> Result<NewEvent, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    let Ok(Value::Object(event)) = serde_json::from_str::<Value>(text) else {
        return Err("the body is not a JSON object".to_owned());
    };
    let event_name = match event.get("eventName") {
        Some(Value::String(n)) if !n.is_empty() && n.len() <= 100 => EventName::parse(n),
        _ => return Err("eventName is missing".to_owned()),
    };
    let event_key = match event.get("eventKey") {
        Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_EVENT_KEY => k.clone(),
        _ => {
            return Err(format!(
                "eventKey is missing or longer than {MAX_EVENT_KEY}"
            ));
        }
    };
    Ok(NewEvent {
        event_key,
        event_name,
        source: EventSource::Webhook,
        webinar_key: key_field::<WebinarKey>(&event, "webinarKey")?,
        registrant_key: key_field::<RegistrantKey>(&event, "registrantKey")?,
        session_key: key_field::<SessionKey>(&event, "sessionKey")?,
        email: event
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_owned),
        headers: headers_json(headers),
        body: text.to_owned(),
        received_at,
        forward,
    })
}

//! GoTo's webhook deliveries. When a registrant is added or joins, or a webinar is
//! created or changed, every active subscription of the webinar's organizer to that
//! event (through an active webhook) gets a POST of the event as JSON.
//!
//! GoTo does not document how it signs events. The emulator signs the raw body with
//! HMAC-SHA256 under the application's newest valid secret key and sends it base64 in
//! `X-Webhook-Signature`; receivers must not rely on that being GoTo's scheme. A failed
//! delivery is tried three times, a second apart. The control API can drop or
//! duplicate the next deliveries, and lists what was sent.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde_json::{Map, Value, json};

use crate::clock::{Timestamp, to_iso};
use crate::shared::Shared;
use crate::state::{EventName, HookState, Registrant, State, Webinar};

/// The header carrying the emulator's signature.
pub const SIGNATURE_HEADER: &str = "x-webhook-signature";

/// HMAC-SHA256 of `body` under `secret`, base64.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The fields every registrant event carries.
pub(crate) fn registrant_payload(w: &Webinar, r: &Registrant) -> Map<String, Value> {
    let Value::Object(map) = json!({
        "firstName": r.first_name,
        "lastName": r.last_name,
        "email": r.email,
        "responses": r.answers.iter().map(|a| json!({"question": a.question, "answer": a.answer})).collect::<Vec<_>>(),
        "registrationDate": to_iso(r.registered_at),
        "status": r.status,
        "webinarKey": w.key,
        "webinarTitle": w.subject,
        "experienceType": w.experience_type,
        "recurrenceType": w.kind,
        "webinarCreatorKey": w.organizer_key,
        "registrantKey": r.key,
        "joinUrl": r.join_url,
    }) else {
        unreachable!("json! of an object literal is an object")
    };
    map
}

/// The fields of `webinar.created` and `webinar.changed`.
pub(crate) fn webinar_payload(world: &State, w: &Webinar, status: &str) -> Map<String, Value> {
    let account = world
        .organizers
        .get(&w.organizer_key)
        .map_or(0, |o| o.account_key);
    let Value::Object(map) = json!({
        "webinarKey": w.key,
        "webinarTitle": w.subject,
        "experienceType": w.experience_type,
        "recurrenceType": w.kind,
        "webinarCreationDate": to_iso(w.starts_at()),
        "times": w.times.iter().map(|&(s, e)| json!({"startTime": to_iso(s), "endTime": to_iso(e)})).collect::<Vec<_>>(),
        "status": status,
        "timeZone": w.time_zone,
        "organizerKey": w.organizer_key,
        "accountKey": account,
    }) else {
        unreachable!("json! of an object literal is an object")
    };
    map
}

/// One POST to make.
struct Delivery {
    url: String,
    body: Vec<u8>,
    signature: Option<String>,
    event_key: String,
    event_name: EventName,
}

/// Publishes `event_name` about `organizer_key`'s webinar to every active subscription;
/// deliveries run in the background. Call with the world locked; nothing here waits.
pub(crate) fn publish(
    shared: &Arc<Shared>,
    world: &State,
    organizer_key: u64,
    event_name: EventName,
    mut payload: Map<String, Value>,
    now: Timestamp,
) {
    let hooks = &world.webhooks;
    let event_key = uuid_like();
    payload.insert("eventName".into(), json!(event_name.as_str()));
    payload.insert("eventVersion".into(), json!("1.0.0"));
    payload.insert("product".into(), json!("g2w"));
    payload.insert("eventKey".into(), json!(event_key));
    payload.insert("timestamp".into(), json!(to_iso(now)));
    let Ok(body) = serde_json::to_vec(&Value::Object(payload)) else {
        return;
    };
    for sub in hooks.subscriptions.values() {
        if sub.organizer_key != organizer_key || sub.state != HookState::Active {
            continue;
        }
        let Some(hook) = hooks.hooks.get(&sub.webhook_key) else {
            continue;
        };
        if hook.state != HookState::Active || hook.event_name != event_name {
            continue;
        }
        let secret = hooks
            .secrets
            .iter()
            .filter(|k| k.client_id == hook.client_id && k.valid_from <= now)
            .max_by_key(|k| (k.valid_from, k.id));
        let delivery = Delivery {
            url: sub
                .callback_url
                .clone()
                .unwrap_or_else(|| hook.callback_url.clone()),
            signature: secret.map(|k| sign(&k.value, &body)),
            body: body.clone(),
            event_key: event_key.clone(),
            event_name,
        };
        let log = shared.clone();
        tokio::spawn(async move { deliver(&log, delivery).await });
    }
}

async fn deliver(shared: &Shared, d: Delivery) {
    let log = &shared.events;
    let entry = |outcome: &str, attempts: u32| {
        json!({
            "eventKey": d.event_key,
            "eventName": d.event_name.as_str(),
            "callbackUrl": d.url,
            "outcome": outcome,
            "attempts": attempts,
            "body": serde_json::from_slice::<Value>(&d.body).unwrap_or(Value::Null),
        })
    };
    if log.take_drop() {
        log.record(entry("dropped", 0));
        return;
    }
    let times = if log.take_duplicate() { 2 } else { 1 };
    for _ in 0..times {
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let mut request = shared
                .http
                .post(&d.url)
                .header("content-type", "application/json")
                .body(d.body.clone());
            if let Some(sig) = &d.signature {
                request = request.header(SIGNATURE_HEADER, sig);
            }
            match request.send().await {
                Ok(r) if r.status().is_success() => break "delivered".to_owned(),
                Ok(r) if attempts >= 3 => break format!("failed: HTTP {}", r.status().as_u16()),
                Err(e) if attempts >= 3 => break format!("failed: {e}"),
                _ => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        };
        log.record(entry(&outcome, attempts));
    }
}

/// A random UUID (version 4), as GoTo's `eventKey`s are.
pub(crate) fn uuid_like() -> String {
    use rand::Rng as _;
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Whether GoTo (as emulated) accepts `url` as a callback: HTTPS, or plain HTTP on
/// this machine (the emulator's one allowance, so tests need no certificates).
pub(crate) fn acceptable_callback(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    match parsed.scheme() {
        "https" => parsed.host_str().is_some(),
        "http" => matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
        _ => false,
    }
}

/// GoTo's check of a callback: a GET that must answer 200.
pub(crate) async fn validate_callback(shared: &Shared, url: &str) -> Result<(), String> {
    if !acceptable_callback(url) {
        return Err(format!("callbackUrl {url:?} must be an https URL"));
    }
    match shared
        .http
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(r) if r.status() == reqwest::StatusCode::OK => Ok(()),
        Ok(r) => Err(format!(
            "callbackUrl {url:?} answered the validation GET with HTTP {}, not 200",
            r.status().as_u16()
        )),
        Err(e) => Err(format!("callbackUrl {url:?} cannot be reached: {e}")),
    }
}

/// Publishes `webinar.created` or `webinar.changed` for webinar `key`.
pub(crate) fn webinar_event(shared: &Arc<Shared>, world: &State, key: u64, created: bool) {
    let Some(w) = world.webinars.get(&key) else {
        return;
    };
    let (name, status) = if created {
        (EventName::WebinarCreated, "NEW")
    } else {
        (EventName::WebinarChanged, "UPDATED")
    };
    let payload = webinar_payload(world, w, status);
    publish(
        shared,
        world,
        w.organizer_key,
        name,
        payload,
        shared.clock.now(),
    );
}

/// Publishes `registrant.added` (or, with a session, `registrant.joined`) for one
/// registrant of webinar `key`.
pub(crate) fn registrant_event(
    shared: &Arc<Shared>,
    world: &State,
    key: u64,
    registrant: u64,
    joined: Option<(u64, Timestamp)>,
) {
    let Some(w) = world.webinars.get(&key) else {
        return;
    };
    let Some(r) = w.registrants.by_key.get(&registrant) else {
        return;
    };
    let mut payload = registrant_payload(w, r);
    let name = match joined {
        Some((session, at)) => {
            // Not in any published sample; the emulator adds them so a receiver can
            // count per session, and a receiver must cope without them.
            payload.insert("sessionKey".into(), json!(session));
            payload.insert("joinTime".into(), json!(to_iso(at)));
            EventName::RegistrantJoined
        }
        None => EventName::RegistrantAdded,
    };
    publish(
        shared,
        world,
        w.organizer_key,
        name,
        payload,
        shared.clock.now(),
    );
}

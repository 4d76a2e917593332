//! Reconciliation: GoTo's registrant and attendee lists compared with the events
//! received. What no delivery brought is kept (and forwarded) as a `reconciliation`
//! event, so the attendance page and the user's URL never depend on a webhook arriving.

use g2w_store::Setting;
use std::sync::Arc;
use std::time::Duration;

use g2w_goto::{EventName, GotoClient, RegistrantKey, SessionKey, Timestamp, WebinarKey};
use g2w_store::{EventSource, NewEvent, Store, StoreError};
use serde_json::{Value, json};

use crate::delivery::registrations::Worker;
use crate::webhooks::Forwarder;

/// What one reconciliation found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Webinars looked at.
    pub webinars: usize,
    /// `registrant.added` events no delivery had brought.
    pub added: usize,
    /// `registrant.joined` events no delivery had brought.
    pub joined: usize,
    /// Webinars GoTo could not describe this time (tried again next round).
    pub failed: usize,
}

impl std::fmt::Display for Reconciled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Checked {} webinar(s) with GoTo: {} registration(s) and {} join(s) no webhook had brought.",
            self.webinars, self.added, self.joined
        )?;
        if self.failed > 0 {
            write!(
                f,
                " GoTo could not answer for {} webinar(s); they are checked again next time.",
                self.failed
            )?;
        }
        Ok(())
    }
}

/// Why a reconciliation stopped: GoTo could not list the webinars, or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// GoTo failed.
    #[error(transparent)]
    Goto(#[from] g2w_goto::GotoError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How far back webinars are reconciled (their sessions may have ended since).
const LOOK_BACK_DAYS: i64 = 30;
/// How far ahead (registrations arrive before the webinar).
const LOOK_AHEAD_DAYS: i64 = 90;

/// A registrant GoTo lists, as the event reconciliation keeps if none was received.
struct Listed {
    registrant: RegistrantKey,
    email: String,
    body: Value,
}

/// Keeps, as `name` events of `webinar` (and `session`), those of `listed` that no
/// received event states yet: one store call for the look-up and the writes.
async fn keep_missing(
    store: &Arc<Store>,
    name: EventName,
    (webinar, session): (WebinarKey, Option<SessionKey>),
    listed: Vec<Listed>,
    now: Timestamp,
    forward: bool,
) -> Result<usize, StoreError> {
    let s = store;
    let known = s.known_registrants(&name, webinar, session).await?;
    {
        let mut kept = 0;
        for l in listed
            .into_iter()
            .filter(|l| !known.contains(&l.registrant))
        {
            let suffix = session.map(|s| s.to_string()).unwrap_or_default();
            let event_key = format!("reconciled:{name}:{webinar}:{}:{suffix}", l.registrant);
            let mut body = l.body;
            if let Value::Object(map) = &mut body {
                map.insert("eventName".into(), json!(name.as_str()));
                map.insert("eventKey".into(), json!(event_key));
                map.insert("webinarKey".into(), json!(webinar));
                map.insert("registrantKey".into(), json!(l.registrant));
                map.insert("reconciled".into(), json!(true));
                if let Some(s) = session {
                    map.insert("sessionKey".into(), json!(s));
                }
            }
            let event = NewEvent {
                event_key,
                event_name: name.clone(),
                source: EventSource::Reconciliation,
                webinar_key: Some(webinar),
                registrant_key: Some(l.registrant),
                session_key: session,
                email: Some(l.email),
                headers: "{}".into(),
                body: body.to_string(),
                received_at: now,
                forward,
            };
            if s.record_event(&event).await? {
                kept += 1;
            }
        }
        Ok(kept)
    }
}

/// Reconciles one webinar: its registrants, then each ended session's attendees.
async fn reconcile_webinar(
    client: &GotoClient,
    store: &Arc<Store>,
    w: &g2w_goto::Webinar,
    now: Timestamp,
    forward: bool,
) -> Result<(usize, usize), ReconcileError> {
    let webinar = w.webinar_key;
    let registrants = client
        .registrants(webinar)
        .await?
        .into_iter()
        .map(|r| Listed {
            registrant: r.registrant_key,
            body: json!({
                "firstName": r.first_name, "lastName": r.last_name, "email": r.email,
                "registrationDate": r.registration_date, "status": r.status,
                "joinUrl": r.join_url, "webinarTitle": w.subject,
            }),
            email: r.email,
        })
        .collect();
    let added = keep_missing(
        store,
        EventName::RegistrantAdded,
        (webinar, None),
        registrants,
        now,
        forward,
    )
    .await?;
    let mut joined = 0;
    for session in client.sessions(webinar).await? {
        let s = session.session_key;
        let attendees = client
            .session_attendees(webinar, s)
            .await?
            .into_iter()
            .map(|a| Listed {
                registrant: a.registrant_key,
                body: json!({
                    "firstName": a.first_name, "lastName": a.last_name, "email": a.email,
                    "joinTime": a.attendance.iter().map(|x| x.join_time).min(),
                    "attendanceTimeInSeconds": a.attendance_time_in_seconds,
                    "webinarTitle": w.subject,
                }),
                email: a.email,
            })
            .collect();
        joined += keep_missing(
            store,
            EventName::RegistrantJoined,
            (webinar, Some(s)),
            attendees,
            now,
            forward,
        )
        .await?;
    }
    Ok((added, joined))
}

/// Compares GoTo's lists for every webinar of the last 30 and next 90 days with the
/// events in `store`, and keeps what is missing (to be forwarded when `forward`). A
/// webinar GoTo cannot describe now is counted in `failed` and the others go on.
///
/// # Errors
/// GoTo cannot list the webinars, or the store fails; what was kept stays kept.
pub async fn reconcile(
    client: &GotoClient,
    store: &Arc<Store>,
    now: Timestamp,
    forward: bool,
) -> Result<Reconciled, ReconcileError> {
    let today = now.to_utc();
    let webinars = client
        .webinars(
            today - chrono::Duration::days(LOOK_BACK_DAYS),
            today + chrono::Duration::days(LOOK_AHEAD_DAYS),
        )
        .await?;
    let mut found = Reconciled {
        webinars: webinars.len(),
        ..Reconciled::default()
    };
    for w in &webinars {
        match reconcile_webinar(client, store, w, now, forward).await {
            Ok((added, joined)) => {
                found.added += added;
                found.joined += joined;
            }
            Err(ReconcileError::Goto(e)) => {
                tracing::warn!(webinar = %w.webinar_key, "reconciliation skipped a webinar: {e}");
                found.failed += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// Reconciles on a schedule, with what that needs and nothing more.
pub(crate) struct Reconciler {
    pub client: GotoClient,
    pub store: Arc<Store>,
    /// Whose state says whether GoTo answers (reconciling waits while it does not).
    pub delivery: Arc<Worker>,
    /// Told when events were found, to forward them.
    pub forwarder: Option<Arc<Forwarder>>,
    pub clock: g2w_goto::Clock,
}

impl Reconciler {
    /// Reconciles every `every` while webhooks are set up, until `stop` fires.
    pub(crate) async fn run(self, every: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            let set_up = self
                .store
                .setting(Setting::WebhookPath)
                .await
                .is_ok_and(|p| super::configured_path(p).is_some());
            // GoTo failing, or no usable login: deliveries wait for GoTo, and so does this.
            if !set_up || self.delivery.failing() || self.delivery.paused().is_some() {
                continue;
            }
            let forward = self.forwarder.is_some();
            match reconcile(&self.client, &self.store, (self.clock)(), forward).await {
                Ok(found) if found.added + found.joined > 0 => {
                    tracing::info!("reconciliation: {found}");
                    if let Some(forwarder) = &self.forwarder {
                        forwarder.wake();
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("reconciliation failed: {}", g2w_goto::chain(&e)),
            }
        }
    }
}

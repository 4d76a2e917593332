//! Reconciliation: GoTo's registrant and attendee lists compared with the events
//! received. What no delivery brought is kept (and forwarded) as a `reconciliation`
//! event, so the attendance page and the user's URL never depend on a webhook arriving.

use std::sync::Arc;
use std::time::Duration;

use g2w_goto::{GotoClient, RegistrantKey, SessionKey, Timestamp, WebinarKey};
use g2w_store::{EventSource, NewEvent, Store, StoreError};
use serde_json::{Value, json};

use crate::state::AppState;

/// What one reconciliation found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Webinars looked at.
    pub webinars: usize,
    /// `registrant.added` events no delivery had brought.
    pub added: usize,
    /// `registrant.joined` events no delivery had brought.
    pub joined: usize,
}

/// Why a reconciliation stopped: GoTo or the store failed.
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

struct Missing {
    name: &'static str,
    webinar: WebinarKey,
    registrant: RegistrantKey,
    session: Option<SessionKey>,
    email: String,
    body: Value,
}

fn event(m: Missing, now: Timestamp, forward: bool) -> NewEvent {
    let session = m.session.map(|s| s.to_string()).unwrap_or_default();
    let mut body = m.body;
    if let Value::Object(map) = &mut body {
        map.insert("eventName".into(), json!(m.name));
        map.insert("webinarKey".into(), json!(m.webinar));
        map.insert("registrantKey".into(), json!(m.registrant));
        map.insert("reconciled".into(), json!(true));
        if let Some(s) = m.session {
            map.insert("sessionKey".into(), json!(s));
        }
    }
    let event_key = format!(
        "reconciled:{}:{}:{}:{session}",
        m.name, m.webinar, m.registrant
    );
    if let Value::Object(map) = &mut body {
        map.insert("eventKey".into(), json!(event_key));
    }
    NewEvent {
        event_key,
        event_name: m.name.to_owned(),
        source: EventSource::Reconciliation,
        webinar_key: Some(m.webinar),
        registrant_key: Some(m.registrant),
        session_key: m.session,
        email: Some(m.email),
        headers: "{}".into(),
        body: body.to_string(),
        received_at: now,
        forward,
    }
}

async fn keep(store: &Arc<dyn Store>, missing: Vec<NewEvent>) -> Result<usize, StoreError> {
    crate::blocking::off_thread(store, move |s| {
        let mut kept = 0;
        for e in &missing {
            if s.record_event(e)? {
                kept += 1;
            }
        }
        Ok(kept)
    })
    .await
}

/// Compares GoTo's lists for every webinar of the last 30 and next 90 days with the
/// events in `store`, and keeps what is missing (to be forwarded when `forward`).
///
/// # Errors
/// GoTo or the store failing; what was kept before the failure stays kept.
pub async fn reconcile(
    client: &GotoClient,
    store: &Arc<dyn Store>,
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
    for w in webinars {
        let webinar = w.webinar_key;
        let registrants = client.registrants(webinar).await?;
        let known = crate::blocking::off_thread(store, move |s| {
            s.known_registrants("registrant.added", webinar, None)
        })
        .await?;
        let missing: Vec<NewEvent> = registrants
            .into_iter()
            .filter(|r| !known.contains(&r.registrant_key))
            .map(|r| {
                let body = json!({
                    "firstName": r.first_name, "lastName": r.last_name, "email": r.email,
                    "registrationDate": r.registration_date, "status": r.status,
                    "joinUrl": r.join_url, "webinarTitle": w.subject,
                });
                event(
                    Missing {
                        name: "registrant.added",
                        webinar,
                        registrant: r.registrant_key,
                        session: None,
                        email: r.email,
                        body,
                    },
                    now,
                    forward,
                )
            })
            .collect();
        found.added += keep(store, missing).await?;
        for session in client.sessions(webinar).await? {
            let s = session.session_key;
            let attendees = client.session_attendees(webinar, s).await?;
            let known = crate::blocking::off_thread(store, move |st| {
                st.known_registrants("registrant.joined", webinar, Some(s))
            })
            .await?;
            let missing: Vec<NewEvent> = attendees
                .into_iter()
                .filter(|a| !known.contains(&a.registrant_key))
                .map(|a| {
                    let joined = a.attendance.iter().map(|x| x.join_time).min();
                    let body = json!({
                        "firstName": a.first_name, "lastName": a.last_name, "email": a.email,
                        "joinTime": joined, "attendanceTimeInSeconds": a.attendance_time_in_seconds,
                        "webinarTitle": w.subject,
                    });
                    event(
                        Missing {
                            name: "registrant.joined",
                            webinar,
                            registrant: a.registrant_key,
                            session: Some(s),
                            email: a.email,
                            body,
                        },
                        now,
                        forward,
                    )
                })
                .collect();
            found.joined += keep(store, missing).await?;
        }
    }
    Ok(found)
}

/// Reconciles every `every` while webhooks are set up, until `stop` fires.
pub(crate) async fn run(
    state: Arc<AppState>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let set_up = crate::blocking::off_thread(&state.store, |s| s.setting(super::PATH_SETTING))
            .await
            .is_ok_and(|p| super::configured_path(p).is_some());
        if !set_up {
            continue;
        }
        let forward = state.config.forward_url.is_some();
        match reconcile(&state.client, &state.store, (state.clock)(), forward).await {
            Ok(found) if found.added + found.joined > 0 => {
                tracing::info!(?found, "reconciliation found events no webhook had brought");
                state.forward_wake.notify_one();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("reconciliation failed: {e}"),
        }
    }
}

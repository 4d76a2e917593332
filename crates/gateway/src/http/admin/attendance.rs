//! The attendance page: people registered and joined per webinar and session, as
//! GoTo's webhooks (and reconciliation) reported them, and the latest events with how
//! forwarding them went. It reloads itself only when asked to (`?live=1`).

use g2w_store::Setting;
use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use g2w_goto::{EventName, WebinarKey};

use super::{Admin, AdminForm, Layout, done, notice, render};
use crate::organizers::{Organizer, Organizers};
use crate::state::{Console, Delivery, Shared};

struct SessionRow {
    session: String,
    joined: u64,
    last: String,
}

struct WebinarRow {
    key: String,
    /// Whose webinar it is, when several organizers are served.
    organizer: String,
    subject: String,
    registered: u64,
    sessions: Vec<SessionRow>,
}

struct EventRow {
    at: String,
    name: String,
    email: String,
    source: &'static str,
    forward: String,
}

#[derive(Template)]
#[template(path = "admin_attendance.html")]
struct AttendancePage {
    layout: Layout,
    callback: Option<String>,
    set_up: bool,
    webinars: Vec<WebinarRow>,
    events: Vec<EventRow>,
    /// Whether the page reloads itself (the user asked for it: WCAG 2.2.1).
    live: bool,
    /// The forwarding backlog, when a forward URL is set.
    forwarding: Option<String>,
}

/// `?live=1`: reload every 15 seconds.
#[derive(serde::Deserialize)]
pub(crate) struct Follow {
    #[serde(default)]
    live: Option<String>,
}

fn utc_time(t: g2w_goto::Timestamp) -> String {
    t.to_utc().format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `GET /admin/attendance`.
pub(crate) async fn attendance(
    State(console): State<Arc<Console>>,
    State(shared): State<Shared>,
    State(delivery): State<Delivery>,
    State(organizers): State<Organizers>,
    Query(follow): Query<Follow>,
    admin: Admin,
) -> Response {
    let shown = notice(&console, &admin.csrf);
    let s = &shared.store;
    let read = async {
        Ok::<_, g2w_store::StoreError>((
            s.attendance().await?,
            s.recent_events(20).await?,
            crate::webhooks::configured_path(s.setting(Setting::WebhookPath).await?).is_some(),
            s.setting(Setting::WebhookCallback).await?,
        ))
    }
    .await;
    let forwarding = match &delivery.forwarder {
        Some(forwarder) => {
            let gauges = s.forward_gauges().await.unwrap_or_default();
            let mut said = gauges.summary(shared.now(), "events", "be forwarded");
            if let crate::delivery::breaker::BreakerState::Open { reason, .. } = forwarder.breaker()
            {
                said.push_str(&format!(
                    "; the URL is failing ({reason}), probed one event at a time"
                ));
            }
            Some(said)
        }
        None => None,
    };
    let (counts, recent, set_up, callback) = match read {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Attendance cannot be read: {e}"),
            )
                .into_response();
        }
    };
    // Titles from the webinar list the cache holds (this page never waits on GoTo),
    // else from the webinar's own registrant events.
    let mut titles: BTreeMap<WebinarKey, String> = BTreeMap::new();
    let mut owners: BTreeMap<WebinarKey, String> = BTreeMap::new();
    for o in organizers.all() {
        for w in o.webinars.held_upcoming().iter().flat_map(|l| l.iter()) {
            titles.insert(w.webinar_key, w.subject.clone());
            if organizers.several() {
                owners.insert(w.webinar_key, o.profile.clone());
            }
        }
    }
    for e in &recent {
        if let Some(w) = e.webinar_key
            && !titles.contains_key(&w)
            && let Ok(body) = serde_json::from_str::<serde_json::Value>(&e.body)
            && let Some(title) = body["webinarTitle"].as_str()
        {
            titles.insert(w, title.to_owned());
        }
    }
    let mut webinars: BTreeMap<WebinarKey, WebinarRow> = BTreeMap::new();
    for c in counts {
        let row = webinars.entry(c.webinar_key).or_insert_with(|| WebinarRow {
            key: c.webinar_key.to_string(),
            organizer: owners.get(&c.webinar_key).cloned().unwrap_or_default(),
            subject: titles
                .get(&c.webinar_key)
                .cloned()
                .unwrap_or_else(|| "(title not known yet)".to_owned()),
            registered: 0,
            sessions: Vec::new(),
        });
        if c.event_name == EventName::RegistrantAdded {
            row.registered = c.people;
        } else {
            row.sessions.push(SessionRow {
                session: c
                    .session_key
                    .map_or_else(|| "(not named)".to_owned(), |s| s.to_string()),
                joined: c.people,
                last: utc_time(c.last_at),
            });
        }
    }
    let events = recent
        .into_iter()
        .map(|e| EventRow {
            at: utc_time(e.received_at),
            name: e.event_name.to_string(),
            email: e.email.unwrap_or_default(),
            source: e.source.as_str(),
            forward: match (&e.forward_error, e.forward_state) {
                (Some(err), g2w_store::ForwardState::Pending) => format!("retrying: {err}"),
                (Some(err), g2w_store::ForwardState::Failed) => format!("failed: {err}"),
                (_, s) => s.as_str().to_owned(),
            },
        })
        .collect();
    render(&AttendancePage {
        layout: Layout {
            signed_in: true,
            active: "attendance",
            csrf: admin.csrf,
            notice: shown,
        },
        callback,
        set_up,
        webinars: webinars.into_values().collect(),
        events,
        live: follow.live.as_deref() == Some("1"),
        forwarding,
    })
}

/// `POST /admin/attendance/reconcile`: "Check GoTo now".
pub(crate) async fn reconcile(
    State(shared): State<Shared>,
    State(delivery): State<Delivery>,
    State(organizers): State<Organizers>,
    State(console): State<Arc<Console>>,
    AdminForm { csrf, .. }: AdminForm,
) -> Response {
    let forward = shared.config.forward_url.is_some();
    let mut said = Vec::new();
    for o in organizers.all() {
        let found =
            crate::webhooks::reconcile(&o.client, &shared.store, shared.now(), forward).await;
        said.push(match found {
            Ok(found) => {
                delivery.wake_forwarder();
                format!("{}{found}", owner_prefix(&organizers, o))
            }
            Err(e) => format!(
                "{}GoTo could not be checked: {e}",
                owner_prefix(&organizers, o)
            ),
        });
    }
    let notice = said.join(" ");
    done(&console, &csrf, "/admin/attendance", notice)
}

/// "Organizer PROFILE: " when several are served.
fn owner_prefix(organizers: &Organizers, o: &Organizer) -> String {
    if organizers.several() {
        format!("Organizer {}: ", o.profile)
    } else {
        String::new()
    }
}

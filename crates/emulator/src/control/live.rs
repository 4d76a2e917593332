//! What happens at GoTo outside the API, for tests and the demo: a session runs and
//! registrants join and leave at chosen times, someone registers on GoTo's own page,
//! and the webhook deliveries those cause can be dropped, duplicated and inspected.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{BadRequest, ControlResult, KeyInput, parse};
use crate::clock::{Timestamp, parse_iso, to_iso};
use crate::events::registrant_event;
use crate::shared::Shared;
use crate::state::{Registrant, Session, new_key};

fn time(text: Option<&str>, name: &str, default: Timestamp) -> Result<Timestamp, BadRequest> {
    text.map_or(Ok(default), |t| {
        parse_iso(t).ok_or_else(|| BadRequest(format!("{name} {t:?} is not an ISO 8601 date-time")))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Stay {
    #[serde(default)]
    registrant_key: Option<KeyInput>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    join_time: Option<String>,
    #[serde(default)]
    leave_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SessionInput {
    webinar_key: KeyInput,
    /// Adds to a session already started instead of starting one.
    #[serde(default)]
    session_key: Option<KeyInput>,
    #[serde(default)]
    start_time: Option<String>,
    /// Ends the session then; without it the session keeps running.
    #[serde(default)]
    end_time: Option<String>,
    #[serde(default)]
    attendance: Vec<Stay>,
}

/// `POST /_emulator/sessions`: starts (or continues) a session, records who joined and
/// left when, and ends it if `endTime` is given. Each join is a `registrant.joined`.
pub(super) async fn run_session(State(shared): State<Arc<Shared>>, body: Bytes) -> ControlResult {
    let input: SessionInput = parse(&body)?;
    let now = shared.clock.now();
    let webinar_key = input.webinar_key.get();
    let mut world = shared.state();
    let w = world
        .webinars
        .get_mut(&webinar_key)
        .ok_or_else(|| BadRequest(format!("no webinar {webinar_key}")))?;
    let index = match input.session_key.map(KeyInput::get) {
        Some(key) => w
            .sessions
            .iter()
            .position(|s| s.key == key)
            .ok_or_else(|| BadRequest(format!("no session {key} of webinar {webinar_key}")))?,
        None => {
            let started_at = time(input.start_time.as_deref(), "startTime", now)?;
            w.sessions.push(Session {
                key: new_key(),
                started_at,
                ended_at: None,
                attendance: std::collections::BTreeMap::new(),
            });
            w.sessions.len() - 1
        }
    };
    let started_at = w.sessions[index].started_at;
    let mut joins = Vec::new();
    for (i, stay) in input.attendance.iter().enumerate() {
        let registrant = match (&stay.registrant_key, &stay.email) {
            (Some(k), _) => k.get(),
            (None, Some(email)) => *w
                .registrants
                .by_email
                .get(&email.to_lowercase())
                .ok_or_else(|| {
                    BadRequest(format!("attendance {i}: nobody registered as {email}"))
                })?,
            (None, None) => {
                return Err(BadRequest(format!(
                    "attendance {i}: give registrantKey or email"
                )));
            }
        };
        if !w.registrants.by_key.contains_key(&registrant) {
            return Err(BadRequest(format!(
                "attendance {i}: {registrant} is not a registrant of this webinar"
            )));
        }
        let join = time(stay.join_time.as_deref(), "joinTime", now.max(started_at))?;
        let leave = stay
            .leave_time
            .as_deref()
            .map(|t| time(Some(t), "leaveTime", now))
            .transpose()?;
        if join < started_at || leave.is_some_and(|l| l < join) {
            return Err(BadRequest(format!(
                "attendance {i}: must join after the session starts and leave after joining"
            )));
        }
        joins.push((registrant, join, leave));
    }
    let session = &mut w.sessions[index];
    for &(registrant, join, leave) in &joins {
        session
            .attendance
            .entry(registrant)
            .or_default()
            .push((join, leave));
    }
    if let Some(end) = input.end_time.as_deref() {
        let end = time(Some(end), "endTime", now)?;
        if end < session.started_at {
            return Err(BadRequest("endTime is before the session started".into()));
        }
        session.ended_at = Some(end);
    }
    let answer = json!({
        "webinarKey": webinar_key.to_string(),
        "sessionKey": session.key.to_string(),
        "startTime": to_iso(session.started_at),
        "endTime": session.ended_at.map(to_iso),
        "attendees": session.attendance.len(),
    });
    let session_key = session.key;
    for (registrant, join, _) in joins {
        registrant_event(
            &shared,
            &world,
            webinar_key,
            registrant,
            Some((session_key, join)),
        );
    }
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OutsideRegistrant {
    first_name: String,
    last_name: String,
    email: String,
}

/// `POST /_emulator/webinars/{w}/registrants`: someone registers on GoTo's own page
/// (not through the API): a `registrant.added` that g2w did not cause.
pub(super) async fn register_outside(
    State(shared): State<Arc<Shared>>,
    Path(webinar_key): Path<String>,
    body: Bytes,
) -> ControlResult {
    let input: OutsideRegistrant = parse(&body)?;
    let webinar_key: u64 = webinar_key
        .parse()
        .map_err(|_| BadRequest(format!("{webinar_key:?} is not a webinar key")))?;
    let now = shared.clock.now();
    let mut world = shared.state();
    let w = world
        .webinars
        .get_mut(&webinar_key)
        .ok_or_else(|| BadRequest(format!("no webinar {webinar_key}")))?;
    let email_key = input.email.to_lowercase();
    if w.registrants.by_email.contains_key(&email_key) {
        return Err(BadRequest(format!("{} is already registered", input.email)));
    }
    let key = new_key();
    let join_url = shared.join_url(webinar_key, key);
    w.registrants.by_email.insert(email_key, key);
    w.registrants.by_key.insert(
        key,
        Registrant {
            key,
            first_name: input.first_name,
            last_name: input.last_name,
            email: input.email,
            registered_at: now,
            status: "APPROVED",
            join_url: join_url.clone(),
            source: Some("GoTo registration page".into()),
            fields: std::collections::BTreeMap::new(),
            answers: Vec::new(),
        },
    );
    registrant_event(&shared, &world, webinar_key, key, None);
    Ok((
        StatusCode::CREATED,
        Json(json!({"registrantKey": key.to_string(), "joinUrl": join_url})),
    )
        .into_response())
}

/// `GET /_emulator/events`: every webhook delivery, oldest first.
pub(super) async fn events(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(Value::Array(shared.events.list()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Count {
    count: u32,
}

/// `POST /_emulator/events/drop {"count": n}`: the next n deliveries are lost.
pub(super) async fn drop_events(State(shared): State<Arc<Shared>>, body: Bytes) -> ControlResult {
    let Count { count } = parse(&body)?;
    shared.events.drop_next(count);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /_emulator/events/duplicate {"count": n}`: the next n deliveries go twice.
pub(super) async fn duplicate_events(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> ControlResult {
    let Count { count } = parse(&body)?;
    shared.events.duplicate_next(count);
    Ok(StatusCode::NO_CONTENT.into_response())
}

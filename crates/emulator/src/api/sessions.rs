//! Sessions and attendees: what ran, and who was there for how long. Like GoTo's
//! reporting API, only sessions that have ended are reported; a running session is
//! known only through `registrant.joined` events.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Json};
use serde_json::{Value, json};

use super::{Caller, check_organizer, find_webinar, page_params, parse_key};
use crate::clock::{Timestamp, to_iso};
use crate::errors::{ApiResult, AppError};
use crate::shared::Shared;
use crate::state::{Session, Webinar};

/// The reporting calls' page sizes.
const REPORT_PAGE_SIZE: u64 = 20;
const REPORT_MAX_PAGE_SIZE: u64 = 200;

/// `_embedded.<name>` and `page` around one page of `items`.
pub(crate) fn envelope(name: &str, items: Vec<Value>, page: u64, size: u64) -> Value {
    let total = items.len() as u64;
    let shown: Vec<Value> = items
        .into_iter()
        .skip(usize::try_from(page.saturating_mul(size)).unwrap_or(usize::MAX))
        .take(usize::try_from(size).unwrap_or(usize::MAX))
        .collect();
    json!({
        "_embedded": {name: shown},
        "page": {"size": size, "totalElements": total, "totalPages": total.div_ceil(size), "number": page},
    })
}

/// Who ran the sessions: (account key, organizer name).
type Host = (u64, String);

fn session_json(w: &Webinar, s: &Session, (account_key, organizer): &Host) -> Value {
    json!({
        "sessionKey": s.key.to_string(),
        "webinarKey": w.key.to_string(),
        "webinarName": w.subject,
        "startTime": to_iso(s.started_at),
        "endTime": to_iso(s.ended_at.unwrap_or(s.started_at)),
        "registrantsAttended": s.attendance.len(),
        "registrantCount": w.registrants.by_key.len(),
        "accountKey": account_key.to_string(),
        "creatingOrganizerKey": w.organizer_key.to_string(),
        "creatingOrganizerName": organizer,
        "startingOrganizerKey": w.organizer_key.to_string(),
        "startingOrganizerName": organizer,
        "totalPollCount": 0,
        "timeZone": w.time_zone,
        "experienceType": w.experience_type,
        "webinarID": w.webinar_id,
    })
}

/// One attendee of one session, as GoTo reports it.
fn attendee_json(w: &Webinar, s: &Session, registrant: u64, now: Timestamp) -> Option<Value> {
    let r = w.registrants.by_key.get(&registrant)?;
    let until = s.ended_at.unwrap_or(now);
    let stays = s.attendance.get(&registrant)?;
    Some(json!({
        "registrantKey": r.key,
        "firstName": r.first_name,
        "lastName": r.last_name,
        "email": r.email,
        "attendanceTimeInSeconds": s.seconds_attended(registrant, now),
        "sessionKey": s.key,
        "attendance": stays.iter().map(|&(join, leave)| json!({
            "joinTime": to_iso(join),
            "leaveTime": to_iso(leave.unwrap_or(until)),
        })).collect::<Vec<_>>(),
    }))
}

fn ended(w: &Webinar) -> impl Iterator<Item = &Session> {
    w.sessions.iter().filter(|s| s.ended_at.is_some())
}

/// `GET …/webinars/{w}/sessions`: the sessions that have ended.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((organizer_key, webinar_key)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let organizer_key = check_organizer(&caller, &organizer_key)?;
    let (page, size) = page_params(&q, REPORT_PAGE_SIZE, REPORT_MAX_PAGE_SIZE)?;
    let mut world = shared.state();
    let host: Host = world.organizers.get(&organizer_key).map_or_else(
        || (0, String::new()),
        |o| (o.account_key, format!("{} {}", o.first_name, o.last_name)),
    );
    let w = find_webinar(&mut world, organizer_key, &webinar_key)?;
    let items = ended(w).map(|s| session_json(w, s, &host)).collect();
    Ok(Json(envelope("sessionInfoResources", items, page, size)).into_response())
}

/// `GET …/sessions/{s}` and `GET …/sessions/{s}/attendees`: a bare array of attendees.
pub(crate) async fn attendees(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((organizer_key, webinar_key, session_key)): Path<(String, String, String)>,
) -> ApiResult {
    let organizer_key = check_organizer(&caller, &organizer_key)?;
    let session_key = parse_key(&session_key, "Session")?;
    let now = shared.clock.now();
    let mut world = shared.state();
    let w = find_webinar(&mut world, organizer_key, &webinar_key)?;
    let s = ended(w)
        .find(|s| s.key == session_key)
        .ok_or_else(|| AppError::not_found("Session"))?;
    let items: Vec<Value> = s
        .attendance
        .keys()
        .filter_map(|&r| attendee_json(w, s, r, now))
        .collect();
    Ok(Json(items).into_response())
}

/// `GET …/webinars/{w}/attendees`: attendees of every ended session, paged.
pub(crate) async fn all_attendees(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((organizer_key, webinar_key)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let organizer_key = check_organizer(&caller, &organizer_key)?;
    let (page, size) = page_params(&q, REPORT_PAGE_SIZE, REPORT_MAX_PAGE_SIZE)?;
    let now = shared.clock.now();
    let mut world = shared.state();
    let w: &Webinar = find_webinar(&mut world, organizer_key, &webinar_key)?;
    let items = ended(w)
        .flat_map(|s| {
            s.attendance
                .keys()
                .filter_map(move |&r| attendee_json(w, s, r, now))
        })
        .collect();
    Ok(Json(envelope(
        "attendeeParticipationResponses",
        items,
        page,
        size,
    ))
    .into_response())
}

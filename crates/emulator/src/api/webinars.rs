//! Webinars: list (by organizer and by account, paged), get, create, update, cancel, copy.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{Caller, bool_param, check_organizer, find_webinar, json_object, parse_key};
use crate::clock::{Timestamp, parse_iso, to_iso};
use crate::errors::{ApiResult, AppError};
use crate::shared::Shared;
use crate::state::{NewWebinar, Organizer, State as World, Webinar};

const MAX_PAGE_SIZE: u64 = 200;
const DEFAULT_PAGE_SIZE: u64 = 20;

fn times_json(w: &Webinar) -> Value {
    Value::Array(
        w.times
            .iter()
            .map(|&(s, e)| json!({"startTime": to_iso(s), "endTime": to_iso(e)}))
            .collect(),
    )
}

fn approval(w: &Webinar) -> &'static str {
    if w.manual_approval {
        "MANUAL"
    } else {
        "AUTOMATIC"
    }
}

/// The reporting-list item (`Webinar` in the spec): keys as strings.
fn list_item(shared: &Shared, w: &Webinar, account_key: u64) -> Value {
    json!({
        "webinarKey": w.key.to_string(),
        "webinarID": w.webinar_id,
        "organizerKey": w.organizer_key.to_string(),
        "accountKey": account_key.to_string(),
        "subject": w.subject,
        "description": w.description,
        "times": times_json(w),
        "timeZone": w.time_zone,
        "locale": w.locale,
        "approvalType": approval(w),
        "registrationUrl": shared.registration_url(w.key),
        "impromptu": false,
        "isPasswordProtected": w.password_protected,
        "recurrenceType": w.kind,
        "recurrenceKey": w.recurrence_key.map(|k| k.to_string()),
        "experienceType": w.experience_type,
    })
}

/// `WebinarByKey`: keys as numbers, as the spec says.
fn detail(shared: &Shared, w: &Webinar, organizer: Option<&Organizer>, now: Timestamp) -> Value {
    json!({
        "webinarKey": w.key,
        "webinarID": w.webinar_id,
        "subject": w.subject,
        "description": w.description,
        "organizerKey": w.organizer_key,
        "organizerEmail": organizer.map(|o| o.email.clone()).unwrap_or_default(),
        "organizerName": organizer
            .map(|o| format!("{} {}", o.first_name, o.last_name))
            .unwrap_or_default(),
        "times": times_json(w),
        "registrationUrl": shared.registration_url(w.key),
        "inSession": w.in_session(now),
        "impromptu": false,
        "type": w.kind,
        "timeZone": w.time_zone,
        "numberOfRegistrants": w.registrants.by_key.len(),
        "registrationLimit": w.registration_limit,
        "locale": w.locale,
        "accountKey": organizer.map(|o| o.account_key.to_string()).unwrap_or_default(),
        "recurrencePeriod": w.kind,
        "recurrenceKey": w.recurrence_key,
        "experienceType": w.experience_type,
        "isPasswordProtected": w.password_protected,
        "approvalType": approval(w),
    })
}

struct Range {
    from: Timestamp,
    to: Timestamp,
    page: u64,
    size: u64,
}

fn range(q: &HashMap<String, String>) -> Result<Range, AppError> {
    let time = |name: &str| -> Result<Timestamp, AppError> {
        let text = q
            .get(name)
            .ok_or_else(|| AppError::validation(format!("{name} is required")))?;
        parse_iso(text)
            .ok_or_else(|| AppError::validation(format!("{name} is not an ISO 8601 date-time")))
    };
    let (from, to) = (time("fromTime")?, time("toTime")?);
    if from > to {
        return Err(AppError::validation("fromTime is after toTime"));
    }
    let (page, size) = super::page_params(q, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    Ok(Range {
        from,
        to,
        page,
        size,
    })
}

/// The `_embedded`/`page` envelope around one page of webinars.
fn paged(shared: &Shared, r: &Range, mut found: Vec<(&Webinar, u64)>) -> Response {
    found.sort_by_key(|(w, _)| (w.starts_at(), w.key));
    let total = found.len() as u64;
    let items: Vec<Value> = found
        .into_iter()
        .skip(usize::try_from(r.page.saturating_mul(r.size)).unwrap_or(usize::MAX))
        .take(usize::try_from(r.size).unwrap_or(usize::MAX))
        .map(|(w, account)| list_item(shared, w, account))
        .collect();
    Json(json!({
        "_embedded": {"webinars": items},
        "page": {
            "size": r.size,
            "totalElements": total,
            "totalPages": total.div_ceil(r.size),
            "number": r.page,
        }
    }))
    .into_response()
}

fn scheduled_in(w: &Webinar, r: &Range) -> bool {
    !w.cancelled && w.times.iter().any(|&(s, _)| s >= r.from && s <= r.to)
}

/// `GET /organizers/{o}/webinars`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(organizer_key): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let organizer_key = check_organizer(&caller, &organizer_key)?;
    let r = range(&q)?;
    let world = shared.state();
    let account = world
        .organizers
        .get(&organizer_key)
        .map(|o| o.account_key)
        .unwrap_or_default();
    let found = world
        .webinars
        .values()
        .filter(|w| w.organizer_key == organizer_key && scheduled_in(w, &r))
        .map(|w| (w, account))
        .collect();
    Ok(paged(&shared, &r, found))
}

/// `GET /accounts/{accountKey}/webinars`.
pub(crate) async fn list_for_account(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(account_key): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let account_key = parse_key(&account_key, "Account")?;
    let r = range(&q)?;
    let world = shared.state();
    let caller_account = world
        .organizers
        .get(&caller.organizer_key)
        .map(|o| o.account_key);
    if caller_account != Some(account_key) {
        return Err(AppError::forbidden(
            "The token does not grant access to this account",
        ));
    }
    let found = world
        .webinars
        .values()
        .filter(|w| {
            world
                .organizers
                .get(&w.organizer_key)
                .map(|o| o.account_key)
                == Some(account_key)
                && scheduled_in(w, &r)
        })
        .map(|w| (w, account_key))
        .collect();
    Ok(paged(&shared, &r, found))
}

/// `GET /organizers/{o}/webinars/{w}`; a cancelled webinar is not found.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((organizer_key, webinar_key)): Path<(String, String)>,
) -> ApiResult {
    let organizer_key = check_organizer(&caller, &organizer_key)?;
    let now = shared.clock.now();
    let mut world = shared.state();
    let organizer = world.organizers.get(&organizer_key).cloned();
    let webinar = find_webinar(&mut world, organizer_key, &webinar_key)?;
    Ok(Json(detail(&shared, webinar, organizer.as_ref(), now)).into_response())
}

fn string_field<'a>(
    body: &'a Map<String, Value>,
    name: &str,
    max: usize,
) -> Result<Option<&'a str>, AppError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s)),
        Some(Value::String(_)) => Err(AppError::validation(format!(
            "{name} is longer than {max} characters"
        ))),
        Some(_) => Err(AppError::validation(format!("{name} must be a string"))),
    }
}

/// Parses `times: [{startTime, endTime}]`; every session must lie in the future.
fn parse_times(value: &Value, now: Timestamp) -> Result<Vec<(Timestamp, Timestamp)>, AppError> {
    let invalid = || AppError::validation("times not valid");
    let items = value
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(invalid)?;
    items
        .iter()
        .map(|t| {
            let start = t
                .get("startTime")
                .and_then(Value::as_str)
                .and_then(parse_iso);
            let end = t.get("endTime").and_then(Value::as_str).and_then(parse_iso);
            match (start, end) {
                (Some(s), Some(e)) if s < e && s > now => Ok((s, e)),
                _ => Err(invalid()),
            }
        })
        .collect()
}

/// IANA time zone names, as GoTo takes them.
const TIME_ZONES: &str = include_str!("time_zones.txt");

/// `tz` if it is an IANA time zone (GoTo refuses others).
fn known_time_zone(tz: &str) -> Result<&str, AppError> {
    if TIME_ZONES
        .lines()
        .any(|known| !known.starts_with('#') && known == tz)
    {
        Ok(tz)
    } else {
        Err(AppError::validation(format!(
            "timeZone {tz:?} is not a known time zone (an IANA name such as Europe/Berlin)"
        )))
    }
}

/// Reads what create and copy share (`subject`, `description`, `timeZone`, `type`,
/// `times`, `experienceType`, `isPasswordProtected`) over `new`, which holds the
/// defaults: GoTo's for a create, the source webinar's for a copy.
fn schedule_from(
    body: &Map<String, Value>,
    mut new: NewWebinar,
    now: Timestamp,
) -> Result<NewWebinar, AppError> {
    if let Some(subject) = string_field(body, "subject", 128)? {
        if subject.trim().is_empty() {
            return Err(AppError::validation("subject is required"));
        }
        subject.clone_into(&mut new.subject);
    }
    if let Some(times) = body.get("times") {
        new.times = parse_times(times, now)?;
    }
    if let Some(d) = string_field(body, "description", 2048)? {
        d.clone_into(&mut new.description);
    }
    if let Some(tz) = string_field(body, "timeZone", 64)? {
        known_time_zone(tz)?.clone_into(&mut new.time_zone);
    }
    if let Some(kind) = string_field(body, "type", 32)? {
        if !matches!(kind, "single_session" | "series" | "sequence") {
            return Err(AppError::validation(format!("type {kind:?} is not valid")));
        }
        kind.clone_into(&mut new.kind);
    }
    if matches!(new.kind.as_str(), "series" | "sequence") && new.times.len() < 2 {
        return Err(AppError::validation(format!(
            "a {} needs at least two times",
            new.kind
        )));
    }
    if new.kind == "single_session" && new.times.len() > 1 {
        return Err(AppError::validation(
            "a single_session webinar has one time",
        ));
    }
    if let Some(exp) = string_field(body, "experienceType", 32)? {
        if !matches!(exp, "CLASSIC" | "BROADCAST" | "SIMULIVE") {
            return Err(AppError::validation(format!(
                "experienceType {exp:?} is not valid"
            )));
        }
        exp.clone_into(&mut new.experience_type);
    }
    match body.get("isPasswordProtected") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => new.password_protected = *b,
        Some(_) => {
            return Err(AppError::validation(
                "isPasswordProtected must be a boolean",
            ));
        }
    }
    Ok(new)
}

/// Stores `new` (a series as one webinar per time), publishes `webinar.created` for
/// each, and answers 201 `{"webinarKey", "recurrenceKey"?}`.
fn schedule(shared: &Arc<Shared>, new: NewWebinar) -> ApiResult {
    let mut world = shared.state();
    let (keys, recurrence) = world.insert_scheduled(new);
    for &k in &keys {
        crate::events::webinar_event(shared, &world, k, true);
    }
    drop(world);
    let first = keys.first().copied().unwrap_or_default();
    let mut answer = json!({"webinarKey": first.to_string()});
    if let Some(r) = recurrence {
        answer["recurrenceKey"] = json!(r.to_string());
    }
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `POST /organizers/{o}/webinars` → 201 `{"webinarKey": "<string>"}`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(organizer_key): Path<String>,
    body: Bytes,
) -> ApiResult {
    let organizer_key = check_organizer(&caller, &organizer_key)?;
    let body = json_object(&body)?;
    if string_field(&body, "subject", 128)?.is_none() {
        return Err(AppError::validation("subject is required"));
    }
    if body.get("times").is_none() {
        return Err(AppError::validation("times not valid"));
    }
    let defaults = NewWebinar::basic(organizer_key, "", 0, 0);
    let new = schedule_from(&body, defaults, shared.clock.now())?;
    schedule(&shared, new)
}

/// `PUT /webinars/{w}/copy` → 201 `{"webinarKey": "<string>"}`: a new webinar with the
/// source's form and settings. Only the source's organizer may copy it.
pub(crate) async fn copy(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(webinar_key): Path<String>,
    body: Bytes,
) -> ApiResult {
    let key = parse_key(&webinar_key, "Webinar")?;
    let body = json_object(&body)?;
    if body.get("times").is_none() {
        return Err(AppError::validation("times not valid"));
    }
    let source = match shared.state().webinars.get(&key) {
        Some(w) if !w.cancelled => w.clone(),
        _ => return Err(AppError::not_found("Webinar")),
    };
    if source.organizer_key != caller.organizer_key {
        return Err(AppError::forbidden(
            "Only the webinar's organizer may copy it",
        ));
    }
    let mut defaults = World::copy_of(&source);
    // The copy is as many sessions as it is given times, whatever the source was.
    if defaults.kind == "series" {
        "single_session".clone_into(&mut defaults.kind);
    }
    let new = schedule_from(&body, defaults, shared.clock.now())?;
    if new.experience_type == "SIMULIVE" && new.kind == "sequence" {
        return Err(AppError::validation(
            "a simulive webinar cannot be copied as a sequence",
        ));
    }
    schedule(&shared, new)
}

/// `PUT /organizers/{o}/webinars/{w}` → 202, no body.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((organizer_key, webinar_key)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult {
    let organizer_key = check_organizer(&caller, &organizer_key)?;
    bool_param(q.get("notifyParticipants"), "notifyParticipants")?;
    let body = json_object(&body)?;
    let now = shared.clock.now();
    let subject = string_field(&body, "subject", 128)?;
    let description = string_field(&body, "description", 2048)?;
    let time_zone = string_field(&body, "timeZone", 64)?
        .map(known_time_zone)
        .transpose()?;
    let locale = string_field(&body, "locale", 8)?;
    if let Some(l) = locale
        && !matches!(l, "en_US" | "de_DE" | "es_ES" | "fr_FR" | "it_IT" | "zh_CN")
    {
        return Err(AppError::validation(format!(
            "locale {l:?} is not supported"
        )));
    }
    let times = body.get("times").map(|t| parse_times(t, now)).transpose()?;
    if subject.is_none()
        && description.is_none()
        && time_zone.is_none()
        && locale.is_none()
        && times.is_none()
    {
        return Err(AppError::validation("nothing to update"));
    }
    let mut world = shared.state();
    let webinar = find_webinar(&mut world, organizer_key, &webinar_key)?;
    if webinar.in_session(now) {
        return Err(AppError::validation("webinar in progress"));
    }
    if webinar.ends_at() <= now {
        return Err(AppError::validation("webinar ended"));
    }
    if let Some(s) = subject {
        webinar.subject = s.to_owned();
    }
    if let Some(d) = description {
        webinar.description = d.to_owned();
    }
    if let Some(tz) = time_zone {
        webinar.time_zone = tz.to_owned();
    }
    if let Some(l) = locale {
        webinar.locale = l.to_owned();
    }
    if let Some(t) = times {
        webinar.times = t;
    }
    let key = webinar.key;
    crate::events::webinar_event(&shared, &world, key, false);
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `DELETE /organizers/{o}/webinars/{w}`: 204; 405 when past, 409 when in session.
pub(crate) async fn cancel(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((organizer_key, webinar_key)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let organizer_key = check_organizer(&caller, &organizer_key)?;
    bool_param(q.get("sendCancellationEmails"), "sendCancellationEmails")?;
    let now = shared.clock.now();
    let mut world = shared.state();
    let webinar = find_webinar(&mut world, organizer_key, &webinar_key)?;
    if webinar.in_session(now) {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "WebinarInSession",
            "The webinar is in session",
        ));
    }
    if webinar.ends_at() <= now {
        return Err(AppError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "WebinarInPast",
            "The webinar is in the past",
        ));
    }
    webinar.cancelled = true;
    Ok(StatusCode::NO_CONTENT.into_response())
}

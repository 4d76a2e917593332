//! The control API under `/_emulator`: not part of GoTo. Tests and the demo use it to
//! move the clock, inject faults, read counters, set up webinars, mint personal access
//! tokens, revoke tokens and reset everything. JSON in and out, no authentication.

mod live;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::{parse_iso, to_iso};
use crate::faults::FaultSpec;
use crate::shared::Shared;
use crate::state::{
    FieldDef, NewWebinar, OPTIONAL_STANDARD_FIELDS, Organizer, QuestionKind, new_key, new_token,
};

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/clock", get(clock))
        .route("/clock/advance", post(advance_clock))
        .route(
            "/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/stats", get(stats))
        .route("/organizers", get(list_organizers).post(add_organizer))
        .route("/webinars", post(add_webinar))
        .route("/pats", post(mint_pat))
        .route("/reset", post(reset))
        .route("/tokens/revoke", post(revoke))
        .route("/sessions", post(live::run_session))
        .route(
            "/webinars/{webinar_key}/registrants",
            post(live::register_outside),
        )
        .route("/events", get(live::events))
        .route("/events/drop", post(live::drop_events))
        .route("/events/duplicate", post(live::duplicate_events))
}

/// A control request that makes no sense: 400 with the reason.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, Json(json!({"error": self.0}))).into_response()
    }
}

type ControlResult = Result<Response, BadRequest>;

/// Parses a JSON body into `T`; an empty body counts as `{}`.
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, BadRequest> {
    let bytes: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(bytes).map_err(|e| BadRequest(format!("invalid body: {e}")))
}

/// A key given as a JSON number or string.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
enum KeyInput {
    Number(u64),
    Text(#[serde(deserialize_with = "digits")] u64),
}

fn digits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = String::deserialize(d)?;
    s.trim().parse().map_err(serde::de::Error::custom)
}

impl KeyInput {
    fn get(self) -> u64 {
        match self {
            Self::Number(k) | Self::Text(k) => k,
        }
    }
}

fn clock_json(shared: &Shared) -> Value {
    let now = shared.clock.now();
    json!({"now": to_iso(now), "unix": now, "offsetSeconds": shared.clock.offset()})
}

async fn clock(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(clock_json(&shared))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: i64,
}

async fn advance_clock(State(shared): State<Arc<Shared>>, body: Bytes) -> ControlResult {
    let advance: Advance = parse(&body)?;
    if advance.seconds < 0 {
        return Err(BadRequest("the clock only moves forward".into()));
    }
    shared.clock.advance(advance.seconds);
    Ok(Json(clock_json(&shared)).into_response())
}

async fn add_fault(State(shared): State<Arc<Shared>>, body: Bytes) -> ControlResult {
    let spec: FaultSpec = parse(&body)?;
    if let Err(why) = spec.validate() {
        return Err(BadRequest(why));
    }
    let id = shared
        .faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .add(spec);
    Ok((StatusCode::CREATED, Json(json!({"id": id}))).into_response())
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(Value::Array(
        shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .list(),
    ))
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared
        .faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    StatusCode::NO_CONTENT
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(serde_json::to_value(shared.stats.snapshot()).unwrap_or(Value::Null))
}

fn organizer_json(o: &Organizer, default: bool) -> Value {
    json!({
        "organizerKey": o.key.to_string(),
        "accountKey": o.account_key.to_string(),
        "email": o.email,
        "firstName": o.first_name,
        "lastName": o.last_name,
        "default": default,
    })
}

async fn list_organizers(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let st = shared.state();
    Json(Value::Array(
        st.organizers
            .values()
            .map(|o| organizer_json(o, o.key == st.default_organizer))
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewOrganizer {
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    /// Join an existing account instead of getting a new one.
    #[serde(default)]
    account_key: Option<KeyInput>,
}

async fn add_organizer(State(shared): State<Arc<Shared>>, body: Bytes) -> ControlResult {
    let new: NewOrganizer = parse(&body)?;
    let organizer = Organizer {
        key: new_key(),
        account_key: new.account_key.map_or_else(new_key, KeyInput::get),
        email: new.email,
        first_name: new.first_name,
        last_name: new.last_name,
    };
    let body = organizer_json(&organizer, false);
    shared.state().organizers.insert(organizer.key, organizer);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FieldInput {
    field: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    answers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QuestionInput {
    question: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    max_size: Option<usize>,
    #[serde(default)]
    answers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WebinarInput {
    #[serde(default)]
    organizer_key: Option<KeyInput>,
    subject: String,
    #[serde(default)]
    description: String,
    /// Start of the (single) session; defaults to a week from now on the emulator clock.
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    duration_minutes: Option<u32>,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    approval_type: Option<String>,
    #[serde(default)]
    registration_limit: Option<u32>,
    /// Webinars added with the same recurrence key are one series.
    #[serde(default)]
    recurrence_key: Option<KeyInput>,
    #[serde(default)]
    fields: Vec<FieldInput>,
    #[serde(default)]
    questions: Vec<QuestionInput>,
}

fn build_webinar(shared: &Shared, input: WebinarInput) -> Result<NewWebinar, String> {
    let organizer_key = input
        .organizer_key
        .map_or(shared.default_organizer(), KeyInput::get);
    if !shared.state().organizers.contains_key(&organizer_key) {
        return Err(format!("no organizer {organizer_key}"));
    }
    let start = match &input.start_time {
        Some(t) => parse_iso(t).ok_or_else(|| format!("startTime {t:?} is not ISO 8601"))?,
        None => shared.clock.now() + 7 * 24 * 3600,
    };
    let end = start + i64::from(input.duration_minutes.unwrap_or(60).max(1)) * 60;
    let mut new = NewWebinar::basic(organizer_key, &input.subject, start, end);
    new.description = input.description;
    if let Some(tz) = input.time_zone {
        new.time_zone = tz;
    }
    new.manual_approval = match input.approval_type.as_deref() {
        None | Some("AUTOMATIC") => false,
        Some("MANUAL") => true,
        Some(other) => return Err(format!("approvalType {other:?} is not AUTOMATIC or MANUAL")),
    };
    if let Some(limit) = input.registration_limit {
        new.registration_limit = limit;
    }
    if let Some(recurrence) = input.recurrence_key {
        new.recurrence_key = Some(recurrence.get());
        "series".clone_into(&mut new.kind);
    }
    for f in input.fields {
        if !OPTIONAL_STANDARD_FIELDS.contains(&f.field.as_str()) {
            return Err(format!("{:?} is not a GoTo standard field", f.field));
        }
        new.fields.push(FieldDef {
            name: f.field,
            required: f.required,
            choices: f.answers,
        });
    }
    for q in input.questions {
        let kind = match q.kind.as_str() {
            "shortAnswer" => QuestionKind::ShortAnswer,
            "multipleChoice" if !q.answers.is_empty() => QuestionKind::MultipleChoice,
            "multipleChoice" => return Err("a multipleChoice question needs answers".into()),
            other => {
                return Err(format!(
                    "question type {other:?} is not shortAnswer or multipleChoice"
                ));
            }
        };
        let max_size = q.max_size.unwrap_or(1000).min(1000);
        new.questions
            .push((q.question, kind, q.required, max_size, q.answers));
    }
    Ok(new)
}

async fn add_webinar(State(shared): State<Arc<Shared>>, body: Bytes) -> ControlResult {
    let input: WebinarInput = parse(&body)?;
    let new = build_webinar(&shared, input).map_err(BadRequest)?;
    let mut st = shared.state();
    let key = st.insert_webinar(new);
    crate::events::webinar_event(&shared, &st, key, true);
    let Some(w) = st.webinars.get(&key) else {
        return Err(BadRequest("webinar vanished".into()));
    };
    let questions: Vec<Value> = w
        .questions
        .iter()
        .map(|q| {
            json!({
                "questionKey": q.key.to_string(),
                "question": q.text,
                "type": q.kind.as_str(),
                "required": q.required,
                "answers": q.answers.iter()
                    .map(|(k, a)| json!({"answerKey": k.to_string(), "answer": a}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let body = json!({
        "webinarKey": key.to_string(),
        "organizerKey": w.organizer_key.to_string(),
        "subject": w.subject,
        "startTime": to_iso(w.starts_at()),
        "endTime": to_iso(w.ends_at()),
        "recurrenceKey": w.recurrence_key.map(|k| k.to_string()),
        "questions": questions,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PatInput {
    #[serde(default)]
    organizer_key: Option<KeyInput>,
}

async fn mint_pat(State(shared): State<Arc<Shared>>, body: Bytes) -> ControlResult {
    let input: PatInput = parse(&body)?;
    let organizer_key = input
        .organizer_key
        .map_or(shared.default_organizer(), KeyInput::get);
    let mut st = shared.state();
    if !st.organizers.contains_key(&organizer_key) {
        return Err(BadRequest(format!("no organizer {organizer_key}")));
    }
    let pat = new_token();
    st.pats.insert(pat.clone(), organizer_key);
    Ok((
        StatusCode::CREATED,
        Json(json!({"pat": pat, "organizerKey": organizer_key.to_string()})),
    )
        .into_response())
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.reset();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RevokeInput {
    /// Only this client's tokens; every client's when absent.
    #[serde(default)]
    client_id: Option<String>,
    /// Only this organizer's tokens; every organizer's when absent.
    #[serde(default)]
    organizer_key: Option<KeyInput>,
}

async fn revoke(State(shared): State<Arc<Shared>>, body: Bytes) -> ControlResult {
    let input: RevokeInput = parse(&body)?;
    let mut st = shared.state();
    let organizer = input.organizer_key.map(KeyInput::get);
    let keep = |g: &crate::state::TokenGrant| {
        input.client_id.as_deref().is_some_and(|c| c != g.client_id)
            || organizer.is_some_and(|o| o != g.organizer_key)
    };
    let (access_before, refresh_before) = (st.access_tokens.len(), st.refresh_tokens.len());
    st.access_tokens.retain(|_, g| keep(g));
    st.refresh_tokens.retain(|_, g| keep(g));
    // A revoked organizer's personal access tokens go too: logging in again takes a new one.
    if let Some(o) = organizer {
        st.pats.retain(|_, owner| *owner != o);
    }
    Ok(Json(json!({
        "revokedAccessTokens": access_before - st.access_tokens.len(),
        "revokedRefreshTokens": refresh_before - st.refresh_tokens.len(),
    }))
    .into_response())
}

//! Registrants: create (with GoTo's validation, duplicates and `Accept` modes), list,
//! get, delete, and the registration fields of a webinar.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use super::{Caller, bool_param, check_organizer, find_webinar, json_object, parse_key};
use crate::clock::to_iso;
use crate::errors::{ApiResult, AppError};
use crate::shared::Shared;
use crate::state::{
    Answer, FIELD_MAX_SIZE, OPTIONAL_STANDARD_FIELDS, QuestionKind, Registrant, Webinar, new_key,
};

/// The `Accept` value with which GoTo keeps only first name, last name and email.
const BASIC_ONLY_ACCEPT: &str = "application/vnd.citrix.g2wapi-v1.1+json";

/// One reason a registration is refused, named as GoTo's `invalidFields` entries.
#[derive(Debug)]
struct Invalid {
    field: String,
    reason: String,
    question_key: Option<u64>,
}

impl Invalid {
    fn field(field: &str, reason: &str) -> Self {
        Self {
            field: field.to_owned(),
            reason: reason.to_owned(),
            question_key: None,
        }
    }

    fn question(key: u64, reason: &str) -> Self {
        Self {
            field: "responses".to_owned(),
            reason: reason.to_owned(),
            question_key: Some(key),
        }
    }

    fn to_json(&self) -> Value {
        let mut v = json!({"field": self.field, "reason": self.reason});
        if let Some(k) = self.question_key {
            v["questionKey"] = json!(k);
        }
        v
    }
}

fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A key given as a JSON number or a string of digits.
fn key_value(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// What a valid registration stores.
struct Accepted {
    first_name: String,
    last_name: String,
    email: String,
    source: Option<String>,
    fields: BTreeMap<String, String>,
    answers: Vec<Answer>,
}

/// Checks a registrant body against the webinar's form, as GoTo does: each problem named.
fn validate(webinar: &Webinar, body: &Map<String, Value>) -> Result<Accepted, Vec<Invalid>> {
    let mut invalid = Vec::new();
    let mut text = |name: &str, required: bool, choices: &[String]| -> Option<String> {
        match body.get(name) {
            None | Some(Value::Null) => {
                if required {
                    invalid.push(Invalid::field(name, "is required"));
                }
                None
            }
            Some(Value::String(s)) => {
                let s = s.trim();
                if s.is_empty() {
                    if required {
                        invalid.push(Invalid::field(name, "is required"));
                    }
                    None
                } else if s.chars().count() > FIELD_MAX_SIZE {
                    invalid.push(Invalid::field(name, "is longer than 128 characters"));
                    None
                } else if !choices.is_empty() && !choices.iter().any(|c| c == s) {
                    invalid.push(Invalid::field(name, "is not one of the allowed answers"));
                    None
                } else {
                    Some(s.to_owned())
                }
            }
            Some(_) => {
                invalid.push(Invalid::field(name, "must be a string"));
                None
            }
        }
    };
    let first_name = text("firstName", true, &[]);
    let last_name = text("lastName", true, &[]);
    let email = text("email", true, &[]);
    let source = text("source", false, &[]);
    let mut fields = BTreeMap::new();
    for name in OPTIONAL_STANDARD_FIELDS {
        let def = webinar.fields.iter().find(|f| f.name == *name);
        let required = def.is_some_and(|f| f.required);
        let choices = def.map(|f| f.choices.as_slice()).unwrap_or_default();
        if let Some(value) = text(name, required, choices) {
            fields.insert((*name).to_owned(), value);
        }
    }
    if let Some(e) = &email
        && !plausible_email(e)
    {
        invalid.push(Invalid::field("email", "is not a valid email address"));
    }

    let mut answers = Vec::new();
    let mut answered = Vec::new();
    let responses = match body.get("responses") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(items)) => items.as_slice(),
        Some(_) => {
            invalid.push(Invalid::field("responses", "must be an array"));
            &[][..]
        }
    };
    for response in responses {
        let Some(question_key) = key_value(response.get("questionKey")) else {
            invalid.push(Invalid::field(
                "responses",
                "each response needs a questionKey",
            ));
            continue;
        };
        let Some(question) = webinar.questions.iter().find(|q| q.key == question_key) else {
            invalid.push(Invalid::question(
                question_key,
                "no such question on this webinar",
            ));
            continue;
        };
        let answer = match question.kind {
            QuestionKind::ShortAnswer => match response.get("responseText") {
                Some(Value::String(t)) if t.trim().is_empty() => None,
                Some(Value::String(t)) if t.chars().count() > question.max_size => {
                    invalid.push(Invalid::question(question_key, "answer is too long"));
                    continue;
                }
                Some(Value::String(t)) => Some(t.trim().to_owned()),
                _ => None,
            },
            QuestionKind::MultipleChoice => {
                let key = key_value(response.get("answerKey"));
                match key.and_then(|k| question.answers.iter().find(|(ak, _)| *ak == k)) {
                    Some((_, text)) => Some(text.clone()),
                    None if key.is_some() => {
                        invalid.push(Invalid::question(
                            question_key,
                            "answerKey is not an answer",
                        ));
                        continue;
                    }
                    None => None,
                }
            }
        };
        if let Some(answer) = answer {
            answered.push(question_key);
            answers.push(Answer {
                question: question.text.clone(),
                answer,
            });
        }
    }
    for q in webinar.questions.iter().filter(|q| q.required) {
        if !answered.contains(&q.key) {
            invalid.push(Invalid::question(q.key, "an answer is required"));
        }
    }

    match (first_name, last_name, email) {
        (Some(first_name), Some(last_name), Some(email)) if invalid.is_empty() => Ok(Accepted {
            first_name,
            last_name,
            email,
            source,
            fields,
            answers,
        }),
        _ => Err(invalid),
    }
}

/// Keeps only what GoTo's basic (v1.1) registration keeps.
fn basic_only(mut body: Map<String, Value>) -> Map<String, Value> {
    body.retain(|k, _| matches!(k.as_str(), "firstName" | "lastName" | "email"));
    body
}

/// `POST …/registrants` → 201 `{registrantKey, joinUrl, status, asset}`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((organizer_key, webinar_key)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let organizer_key = check_organizer(&caller, &organizer_key)?;
    bool_param(q.get("resendConfirmation"), "resendConfirmation")?;
    let mut body = json_object(&body)?;
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains(BASIC_ONLY_ACCEPT) {
        body = basic_only(body);
    }
    let now = shared.clock.now();
    let mut world = shared.state();
    let webinar = find_webinar(&mut world, organizer_key, &webinar_key)?;
    let accepted = validate(webinar, &body).map_err(|invalid| {
        let mut names: Vec<String> = Vec::new();
        for i in &invalid {
            let name = i
                .question_key
                .map_or(i.field.clone(), |k| format!("question {k}"));
            if !names.contains(&name) {
                names.push(name);
            }
        }
        AppError::new(
            StatusCode::BAD_REQUEST,
            "RegistrationInvalid",
            format!("Invalid registration fields: {}", names.join(", ")),
        )
        .with(
            "invalidFields",
            Value::Array(invalid.iter().map(Invalid::to_json).collect()),
        )
    })?;
    let email_key = accepted.email.to_lowercase();
    if let Some(existing) = webinar.registrants.by_email.get(&email_key) {
        let join_url = webinar
            .registrants
            .by_key
            .get(existing)
            .map(|r| r.join_url.clone());
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "DuplicateRegistrant",
            "The user is already registered",
        )
        .with("registrantKey", json!(existing))
        .with("joinUrl", json!(join_url)));
    }
    if webinar.registrants.by_key.len() >= webinar.registration_limit as usize {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "RegistrationLimitReached",
            "The webinar has reached its registration limit",
        ));
    }
    let key = new_key();
    let join_url = shared.join_url(webinar.key, key);
    let status = if webinar.manual_approval {
        "WAITING"
    } else {
        "APPROVED"
    };
    webinar.registrants.by_email.insert(email_key, key);
    webinar.registrants.by_key.insert(
        key,
        Registrant {
            key,
            first_name: accepted.first_name,
            last_name: accepted.last_name,
            email: accepted.email,
            registered_at: now,
            status,
            join_url: join_url.clone(),
            source: accepted.source,
            fields: accepted.fields,
            answers: accepted.answers,
        },
    );
    let webinar_key = webinar.key;
    crate::events::registrant_event(&shared, &world, webinar_key, key, None);
    drop(world);
    shared.stats.registrant_created();
    Ok((
        StatusCode::CREATED,
        Json(json!({"registrantKey": key, "joinUrl": join_url, "status": status, "asset": true})),
    )
        .into_response())
}

fn summary(r: &Registrant, time_zone: &str) -> Map<String, Value> {
    let Value::Object(map) = json!({
        "firstName": r.first_name,
        "lastName": r.last_name,
        "email": r.email,
        "registrantKey": r.key,
        "registrationDate": to_iso(r.registered_at),
        "status": r.status,
        "joinUrl": r.join_url,
        "timeZone": time_zone,
    }) else {
        unreachable!("json! of an object literal is an object")
    };
    map
}

/// `GET …/registrants`: a bare array; `page` and `limit` cut it when given.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((organizer_key, webinar_key)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let organizer_key = check_organizer(&caller, &organizer_key)?;
    let page = match super::whole_number(&q, "page")? {
        Some(n) if n < 0 => {
            return Err(AppError::validation(format!(
                "page must be 0 or more, not {n}"
            )));
        }
        n => n.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    };
    let limit = match super::whole_number(&q, "limit")? {
        Some(n) if !(1..=200).contains(&n) => {
            return Err(AppError::validation(format!(
                "limit must be between 1 and 200, not {n}"
            )));
        }
        n => n.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    };
    let mut world = shared.state();
    let webinar = find_webinar(&mut world, organizer_key, &webinar_key)?;
    let mut all: Vec<&Registrant> = webinar.registrants.by_key.values().collect();
    all.sort_by_key(|r| (r.registered_at, r.key));
    let items: Vec<Value> = match (page, limit) {
        (None, None) => all
            .into_iter()
            .map(|r| summary(r, &webinar.time_zone).into())
            .collect(),
        (page, limit) => {
            let limit = limit.unwrap_or(200);
            all.into_iter()
                .skip(page.unwrap_or(0).saturating_mul(limit))
                .take(limit)
                .map(|r| summary(r, &webinar.time_zone).into())
                .collect()
        }
    };
    Ok(Json(Value::Array(items)).into_response())
}

/// `GET …/registrants/{r}`: `RegistrantDetailed`, answers as question and answer text.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((organizer_key, webinar_key, registrant_key)): Path<(String, String, String)>,
) -> ApiResult {
    let organizer_key = check_organizer(&caller, &organizer_key)?;
    let registrant_key = parse_key(&registrant_key, "Registrant")?;
    let mut world = shared.state();
    let webinar = find_webinar(&mut world, organizer_key, &webinar_key)?;
    let starts_at = webinar.starts_at();
    let registrant = webinar
        .registrants
        .by_key
        .get(&registrant_key)
        .ok_or_else(|| AppError::not_found("Registrant"))?;
    let mut body = summary(registrant, &webinar.time_zone);
    for (name, value) in &registrant.fields {
        body.insert(name.clone(), json!(value));
    }
    if let Some(source) = &registrant.source {
        body.insert("source".into(), json!(source));
    }
    let late = registrant.registered_at >= starts_at;
    body.insert("type".into(), json!(if late { "LATE" } else { "REGULAR" }));
    body.insert("unsubscribed".into(), json!(false));
    body.insert(
        "responses".into(),
        Value::Array(
            registrant
                .answers
                .iter()
                .map(|a| json!({"question": a.question, "answer": a.answer}))
                .collect(),
        ),
    );
    Ok(Json(Value::Object(body)).into_response())
}

/// `DELETE …/registrants/{r}`: only while the webinar is still ahead.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((organizer_key, webinar_key, registrant_key)): Path<(String, String, String)>,
) -> ApiResult {
    let organizer_key = check_organizer(&caller, &organizer_key)?;
    let registrant_key = parse_key(&registrant_key, "Registrant")?;
    let now = shared.clock.now();
    let mut world = shared.state();
    let webinar = find_webinar(&mut world, organizer_key, &webinar_key)?;
    if !webinar.registrants.by_key.contains_key(&registrant_key) {
        return Err(AppError::not_found("Registrant"));
    }
    if webinar.starts_at() <= now {
        return Err(AppError::validation(
            "The webinar must be a scheduled, future webinar",
        ));
    }
    if let Some(r) = webinar.registrants.by_key.remove(&registrant_key) {
        webinar.registrants.by_email.remove(&r.email.to_lowercase());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET …/registrants/fields`: the standard fields on the form and the custom questions.
pub(crate) async fn fields(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((organizer_key, webinar_key)): Path<(String, String)>,
) -> ApiResult {
    let organizer_key = check_organizer(&caller, &organizer_key)?;
    let mut world = shared.state();
    let webinar = find_webinar(&mut world, organizer_key, &webinar_key)?;
    let mut fields: Vec<Value> = ["firstName", "lastName", "email"]
        .iter()
        .map(|f| json!({"field": f, "required": true, "maxSize": FIELD_MAX_SIZE}))
        .collect();
    fields.extend(webinar.fields.iter().map(|f| {
        let mut v = json!({"field": f.name, "required": f.required, "maxSize": FIELD_MAX_SIZE});
        if !f.choices.is_empty() {
            v["answers"] = json!(f.choices);
        }
        v
    }));
    let questions: Vec<Value> = webinar
        .questions
        .iter()
        .map(|q| {
            let mut v = json!({
                "questionKey": q.key,
                "question": q.text,
                "required": q.required,
                "type": q.kind.as_str(),
                "maxSize": q.max_size,
            });
            if q.kind == QuestionKind::MultipleChoice {
                v["answers"] = Value::Array(
                    q.answers
                        .iter()
                        .map(|(k, a)| json!({"answer": a, "answerKey": k}))
                        .collect(),
                );
            }
            v
        })
        .collect();
    Ok(Json(json!({"fields": fields, "questions": questions})).into_response())
}

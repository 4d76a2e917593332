//! What landing pages read: a registration's status and the upcoming webinars.

use axum::Json;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use g2w_goto::{RecurrenceKey, Webinar};
use g2w_store::Registration;
use serde_json::{Value, json};

use crate::cache::Lookup;
use crate::error::ApiError;
use crate::http::register::status_name;
use crate::organizers::Organizers;
use crate::state::Shared;

fn registration_json(reg: &Registration) -> Value {
    json!({
        "registrationId": reg.id,
        "status": status_name(reg),
        "state": reg.state.as_str(),
        "webinarKey": reg.webinar_key,
        "registrantKey": reg.registrant_key,
        "joinUrl": reg.join_url,
        "attempts": reg.attempts,
        "error": if reg.state.is_final() { reg.last_error.clone() } else { None },
        "createdAt": reg.created_at.to_utc().to_rfc3339(),
    })
}

/// `GET /api/v1/registrations/{id}`.
pub(crate) async fn registration(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    match shared.store.registration(&id).await {
        Ok(Some(reg)) => Json(registration_json(&reg)).into_response(),
        Ok(None) => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such registration")
            .into_response(),
        Err(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        )
        .into_response(),
    }
}

/// `GET /api/v1/webinars`: upcoming webinars with their forms, for landing pages. While
/// GoTo fails, the last list and forms are served; a form GoTo cannot give in time is
/// `null`. With `?series=RECURRENCE_KEY`, only that series' dates that still take
/// registrations (not started, not full), for a page's own date picker.
pub(crate) async fn webinars(
    State(shared): State<Shared>,
    State(organizers): State<Organizers>,
    State(visitors): State<std::sync::Arc<crate::state::Visitors>>,
    client: crate::http::client::Client,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    // Landing pages call this to build their pages, not while a visitor waits: it may
    // wait longer than intake for a cold cache to fill.
    let deadline = shared.config.lookup_deadline.max(LIST_DEADLINE);
    if let Some(series) = query.get("series") {
        let Ok(recurrence) = series.trim().parse::<RecurrenceKey>() else {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_series",
                "series must be a recurrence key (digits)",
            )
            .into_response();
        };
        return match organizers
            .series(recurrence, deadline, || visitors.lookups.allow(client.ip))
            .await
        {
            Ok(dates) => {
                let items: Vec<Value> = dates
                    .iter()
                    .map(|d| item(&d.listed, json!(d.info.form)))
                    .collect();
                Json(json!({"webinars": items})).into_response()
            }
            Err(e) => ApiError::new(StatusCode::BAD_GATEWAY, "goto_unavailable", e).into_response(),
        };
    }
    // Every organizer's webinars; one GoTo cannot list is left out (and logged), so
    // the others' landing pages keep working.
    let (mut list, errors) = organizers.upcoming(deadline).await;
    if list.is_empty() && !errors.is_empty() {
        return ApiError::new(
            StatusCode::BAD_GATEWAY,
            "goto_unavailable",
            errors.join("; "),
        )
        .into_response();
    }
    for e in &errors {
        tracing::warn!("a webinar list is missing: {e}");
    }
    list.sort_by_key(|(_, w)| (w.times.first().map(|t| t.start_time), w.webinar_key));
    let mut forms = tokio::task::JoinSet::new();
    for (i, (o, w)) in list.iter().enumerate() {
        let (cache, key) = (o.webinars.clone(), w.webinar_key);
        forms.spawn(async move { (i, cache.lookup(key, deadline).await) });
    }
    let mut found = vec![Value::Null; list.len()];
    while let Some(Ok((i, lookup))) = forms.join_next().await {
        if let Lookup::Found(info) = lookup {
            found[i] = json!(info.form);
        }
    }
    let items: Vec<Value> = list
        .iter()
        .zip(found)
        .map(|((_, w), form)| item(w, form))
        .collect();
    Json(json!({"webinars": items})).into_response()
}

/// One webinar of the list, with its form.
fn item(w: &Webinar, form: Value) -> Value {
    json!({
        "webinarKey": w.webinar_key,
        "subject": w.subject,
        "description": w.description,
        "times": w.times,
        "timeZone": w.time_zone,
        "recurrenceKey": w.recurrence_key,
        "registrationFields": form,
    })
}

/// The longest `GET /api/v1/webinars` waits for GoTo.
const LIST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

//! Intake: `POST /api/v1/webinars/{webinarKey}/registrations` (JSON, or a plain HTML
//! form): parse → check against the webinar's form → store durably → wait for delivery
//! only as long as it is worth it → answer.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use g2w_goto::WebinarKey;
use g2w_store::{OutboxState, Registration};
use serde_json::json;

use crate::error::ApiError;
use crate::http::client::Client;
use crate::intake::{
    self, Attempt, Caller, FieldErrors, Intake, Invalid, Refused, SeriesForm, Submission, Target,
};
use crate::keys::Scope;
use crate::keys::check::carries_key;
use crate::metrics::IntakeOutcome;
use crate::pages::SeriesChoice;
use crate::state::AppState;

impl FromRequestParts<AppState> for Intake {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        _parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(state))
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The public name of a registration's state.
pub(crate) fn status_name(reg: &Registration) -> &'static str {
    match reg.state {
        OutboxState::Pending | OutboxState::Delivering if !reg.validated => "pending_validation",
        OutboxState::Pending | OutboxState::Delivering => "queued",
        OutboxState::Delivered => "registered",
        OutboxState::AlreadyRegistered => "already_registered",
        OutboxState::Failed | OutboxState::Dead => "failed",
    }
}

/// The API's answer for a registration's current state (JSON).
pub(crate) fn json_answer(reg: &Registration) -> Response {
    let body = match reg.state {
        OutboxState::Delivered => (
            StatusCode::CREATED,
            json!({"status": "registered", "registrationId": reg.id, "registrantKey": reg.registrant_key, "joinUrl": reg.join_url}),
        ),
        OutboxState::AlreadyRegistered => (
            StatusCode::OK,
            json!({"status": "already_registered", "registrationId": reg.id, "joinUrl": reg.join_url}),
        ),
        OutboxState::Failed | OutboxState::Dead => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"status": "failed", "registrationId": reg.id, "reason": reg.last_error}),
        ),
        OutboxState::Pending | OutboxState::Delivering => (
            StatusCode::ACCEPTED,
            json!({"status": status_name(reg), "registrationId": reg.id}),
        ),
    };
    (body.0, Json(body.1)).into_response()
}

fn redirect_browser(state: &Intake, status: &str, id: &str, join_url: Option<&str>) -> Response {
    let target = match &state.shared.config.thank_you_url {
        Some(base) => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("status", status);
            q.append_pair("registrationId", id);
            if let Some(url) = join_url {
                q.append_pair("joinUrl", url);
            }
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}{}", q.finish())
        }
        None => format!("/confirmation/{id}"),
    };
    Redirect::to(&target).into_response()
}

/// A link back to the form a submission came from.
fn back(target: Target<'_>) -> Option<crate::pages::Back> {
    match target {
        Target::Webinar(w) => w
            .parse::<WebinarKey>()
            .ok()
            .map(|key| crate::pages::Back::new(format!("/r/{key}"), "Back to the form")),
        Target::Series(s) | Target::NextOfSeries(s) => Some(crate::pages::Back::new(
            format!("/r/series/{s}"),
            "Back to the form",
        )),
    }
}

/// An API error's message as a sentence for a page.
fn sentence(message: &str) -> String {
    let mut chars = message.trim().trim_end_matches('.').chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// The answer to a submission that was refused: pages for a browser (its form again,
/// with each problem beside its field, where it can), JSON otherwise.
fn refusal(state: &Intake, target: Target<'_>, refused: Refused, html: bool) -> Response {
    let brand = &state.shared.config.brand;
    match refused {
        Refused::Invalid(invalid) => {
            let Invalid {
                errors,
                submission,
                form,
                series,
            } = *invalid;
            if !html {
                // `fields` by name for programs; `message` names each question by its
                // text for the people reading it.
                let message =
                    intake::describe(&errors, form.as_deref().map(|f| &f.form)).join("; ");
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "validation", "message": message, "fields": errors})),
                )
                    .into_response();
            }
            invalid_page(state, target, &errors, &submission, form.as_deref(), series)
        }
        other if html => {
            let error = other.api_error();
            let (status, message) = error.parts();
            crate::pages::problem(
                brand,
                status,
                "Registration did not go through",
                vec![sentence(message)],
                back(target),
            )
        }
        other => other.api_error().into_response(),
    }
}

/// The form again with the problems beside their fields: the series' form (its date
/// still chosen) for a series, else the webinar's, else a page that lists them.
fn invalid_page(
    state: &Intake,
    target: Target<'_>,
    errors: &FieldErrors,
    submission: &Submission,
    form: Option<&crate::cache::WebinarInfo>,
    series: Option<SeriesForm>,
) -> Response {
    let brand = &state.shared.config.brand;
    if let Some(series) = series.filter(|s| !s.dates.is_empty()) {
        return crate::pages::series_form(
            brand,
            &SeriesChoice {
                recurrence: series.recurrence,
                dates: &series.dates,
                chosen: series.chosen,
            },
            Some((submission, errors)),
        );
    }
    match form {
        Some(info) => {
            crate::pages::form(brand, &info.detail, &info.form, Some((submission, errors)))
        }
        None => crate::pages::problem(
            brand,
            StatusCode::BAD_REQUEST,
            "Please check your registration",
            intake::describe(errors, None),
            back(target),
        ),
    }
}

/// `POST /api/v1/webinars/{webinarKey}/registrations`: JSON, or pages for a browser that
/// asks for HTML.
pub(crate) async fn register(
    state: Intake,
    client: Client,
    Path(webinar): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = wants_html(&headers);
    submit(
        &state,
        client,
        Target::Webinar(&webinar),
        &headers,
        &body,
        html,
    )
    .await
}

/// `POST /r/{webinarKey}`: the hosted form's own post. Always pages, and a refused post
/// shows the form again at the form's own address.
pub(crate) async fn register_from_form(
    state: Intake,
    client: Client,
    Path(webinar): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    submit(
        &state,
        client,
        Target::Webinar(&webinar),
        &headers,
        &body,
        true,
    )
    .await
}

/// A visitor's submission, JSON or a form, through intake; answered as JSON or pages.
pub(super) async fn submit(
    state: &Intake,
    client: Client,
    target: Target<'_>,
    headers: &HeaderMap,
    body: &[u8],
    html: bool,
) -> Response {
    let caller = if carries_key(headers) {
        // A program with a key: refused as JSON, whatever it asked for.
        match state
            .keys
            .check(
                &state.shared.store,
                client.ip,
                headers,
                Scope::Register,
                state.shared.now(),
            )
            .await
        {
            Ok(key) => Caller::Key {
                name: key.name,
                organizers: key.organizers,
            },
            Err(denied) => {
                state.shared.metrics.intake(IntakeOutcome::KeyRefused);
                return denied.api_error().into_response();
            }
        }
    } else {
        Caller::Visitor(client.ip)
    };
    let caller = match state.admit(caller) {
        Ok(caller) => caller,
        Err(refused) => return refusal(state, target, refused, html),
    };
    let submission = match parse(state, target, headers, body, html) {
        Ok(submission) => submission,
        Err(refusal) => return *refusal,
    };
    let idempotency_key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.trim().is_empty() && k.len() <= 255 => Some(k.trim().to_owned()),
        Some(_) => {
            state.shared.metrics.intake(IntakeOutcome::Invalid);
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible characters",
            )
            .into_response();
        }
    };
    let attempt = Attempt {
        target,
        submission,
        caller,
        idempotency_key,
    };
    match state.register(attempt).await {
        Ok(registered) => {
            let reg = state.wait_for_delivery(registered).await;
            if html {
                redirect_browser(state, status_name(&reg), &reg.id, reg.join_url.as_deref())
            } else {
                json_answer(&reg)
            }
        }
        Err(refused) => refusal(state, target, refused, html),
    }
}

/// The body as a submission: JSON or a form, well formed; a filled honeypot ends here
/// with a normal-looking answer.
fn parse(
    state: &Intake,
    target: Target<'_>,
    headers: &HeaderMap,
    body: &[u8],
    html: bool,
) -> Result<Submission, Box<Response>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parsed = if content_type.starts_with("application/json") {
        intake::parse_json(body)
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        intake::parse_form(body)
    } else {
        state
            .shared
            .metrics
            .intake(IntakeOutcome::UnsupportedMediaType);
        let error = ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json or application/x-www-form-urlencoded",
        );
        return Err(Box::new(if html {
            let (status, message) = error.parts();
            crate::pages::problem(
                &state.shared.config.brand,
                status,
                "Registration did not go through",
                vec![sentence(message)],
                back(target),
            )
        } else {
            error.into_response()
        }));
    };
    let submission = parsed.map_err(|errors| {
        state.shared.metrics.intake(IntakeOutcome::Invalid);
        Box::new(if html {
            crate::pages::problem(
                &state.shared.config.brand,
                StatusCode::BAD_REQUEST,
                "Please check your registration",
                intake::describe(&errors, None),
                back(target),
            )
        } else {
            let message = intake::describe(&errors, None).join("; ");
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "validation", "message": message, "fields": errors})),
            )
                .into_response()
        })
    })?;
    if submission.honeypot {
        // Look like success so the bot learns nothing; store nothing.
        state.shared.metrics.intake(IntakeOutcome::Honeypot);
        let fake = intake::new_id(state.shared.now());
        return Err(Box::new(if html {
            redirect_browser(state, "queued", &fake, None)
        } else {
            (
                StatusCode::ACCEPTED,
                Json(json!({"status": "queued", "registrationId": fake})),
            )
                .into_response()
        }));
    }
    Ok(submission)
}

//! Intake: `POST /api/v1/webinars/{webinarKey}/registrations` (JSON, or a plain HTML
//! form): parse → check against the webinar's form → store durably → wait for delivery
//! only as long as it is worth it → answer.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRef, FromRequestParts, Path};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use g2w_goto::WebinarKey;
use g2w_store::{Enqueued, NewRegistration, OutboxState, Registration};
use serde_json::json;

use super::series::Picked;
use crate::cache::{Lookup, WebinarInfo};
use crate::error::ApiError;
use crate::http::client::Client;
use crate::intake::{self, FieldErrors, Submission};
use crate::metrics::IntakeOutcome;
use crate::organizers::{Organizer, Organizers};
use crate::state::{AppState, Delivery, Shared, Visitors};

/// What intake uses: the parts of the gateway's state a registration passes through.
pub(crate) struct Intake {
    pub(super) shared: Shared,
    delivery: Delivery,
    pub(super) organizers: Organizers,
    visitors: Arc<Visitors>,
}

impl FromRequestParts<AppState> for Intake {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        _parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self {
            shared: Shared::from_ref(state),
            delivery: Delivery::from_ref(state),
            organizers: FromRef::from_ref(state),
            visitors: FromRef::from_ref(state),
        })
    }
}

/// A time-ordered id: milliseconds then randomness, hex.
/// A time-ordered id: the arrival in milliseconds, then randomness.
fn new_id(now: g2w_goto::Timestamp) -> String {
    format!("{:012x}{:016x}", now.as_millis(), rand::random::<u64>())
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

/// The intake answer for a registration's current state.
fn answer(state: &Intake, reg: &Registration, html: bool) -> Response {
    if html {
        return redirect_browser(state, status_name(reg), &reg.id, reg.join_url.as_deref());
    }
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

/// A link back to the hosted form of `webinar`, when it names one.
fn back_to_form(webinar: &str) -> Option<crate::pages::Back> {
    webinar
        .parse::<WebinarKey>()
        .ok()
        .map(|key| crate::pages::Back::new(format!("/r/{key}"), "Back to the form"))
}

/// An API error's message as a sentence for a page.
fn sentence(message: &str) -> String {
    let mut chars = message.trim().trim_end_matches('.').chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

fn validation_failed(
    state: &Intake,
    back: Option<crate::pages::Back>,
    errors: &FieldErrors,
    html: bool,
    page: Option<(&WebinarInfo, &Submission)>,
    series: Option<&Picked>,
) -> Response {
    if html {
        // A series' submission comes back on the series' form, its date still chosen.
        let series_page = series.zip(page).and_then(|(picked, (_, submission))| {
            picked.page(&state.shared.config.brand, (submission, errors))
        });
        if let Some(page) = series_page {
            return page;
        }
        return match page {
            Some((info, submission)) => crate::pages::form(
                &state.shared.config.brand,
                &info.detail,
                &info.form,
                Some((submission, errors)),
            ),
            None => crate::pages::problem(
                &state.shared.config.brand,
                StatusCode::BAD_REQUEST,
                "Please check your registration",
                intake::describe(errors, None),
                back,
            ),
        };
    }
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "validation", "fields": errors})),
    )
        .into_response()
}

/// Why intake said no (or, for a bot, pretended yes): counted under `outcome` in
/// the metrics and answered with `response`.
pub(super) struct Refusal {
    outcome: IntakeOutcome,
    response: Box<Response>,
    /// For an API error: its status and sentence, for a browser's page.
    page: Option<(StatusCode, String)>,
}

impl Refusal {
    pub(super) fn new(outcome: IntakeOutcome, response: Response) -> Self {
        Self {
            outcome,
            response: Box::new(response),
            page: None,
        }
    }

    pub(super) fn api(outcome: IntakeOutcome, error: ApiError) -> Self {
        let (status, message) = error.parts();
        let page = Some((status, message.to_owned()));
        Self {
            page,
            ..Self::new(outcome, error.into_response())
        }
    }
}

/// A submission that passed every check, ready to store.
struct Checked {
    webinar_key: WebinarKey,
    /// Whose webinar it is: that organizer delivers it.
    organizer: Arc<Organizer>,
    registrant: g2w_goto::NewRegistrant,
    idempotency_key: Option<String>,
    /// Whether it was checked against the webinar's own form.
    validated: bool,
}

/// `POST /api/v1/webinars/{webinarKey}/registrations`: parse → validate → enqueue →
/// answer (JSON, or pages for a browser that asks for HTML).
pub(crate) async fn register(
    state: Intake,
    client: Client,
    Path(webinar): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = wants_html(&headers);
    intake(
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
    intake(
        &state,
        client,
        Target::Webinar(&webinar),
        &headers,
        &body,
        true,
    )
    .await
}

/// What a submission registers for.
#[derive(Clone, Copy)]
pub(super) enum Target<'a> {
    /// The webinar the path names.
    Webinar(&'a str),
    /// The date picked on a series' form (the path names the series).
    Series(&'a str),
}

pub(super) async fn intake(
    state: &Intake,
    client: Client,
    target: Target<'_>,
    headers: &HeaderMap,
    body: &[u8],
    html: bool,
) -> Response {
    let back = match target {
        Target::Webinar(w) => back_to_form(w),
        Target::Series(s) => Some(crate::pages::Back::new(
            format!("/r/series/{s}"),
            "Back to the form",
        )),
    };
    let stored = async {
        let mut submission = parse(state, client, back.clone(), headers, body, html)?;
        let (webinar, series) = match target {
            Target::Webinar(w) => (w.to_owned(), None),
            Target::Series(s) => {
                let picked = super::series::choose(state, s, &mut submission, html).await?;
                (picked.webinar.to_string(), Some(picked))
            }
        };
        let checked = validate(
            state,
            client,
            &webinar,
            headers,
            submission,
            html,
            series.as_ref(),
        )
        .await?;
        enqueue(state, checked).await
    }
    .await;
    match stored {
        Ok((reg, organizer)) => {
            organizer.worker.wake();
            let reg = wait_for_delivery(state, &organizer, reg).await;
            answer(state, &reg, html)
        }
        Err(refusal) => {
            state.shared.metrics.intake(refusal.outcome);
            match refusal.page {
                Some((status, message)) if html => crate::pages::problem(
                    &state.shared.config.brand,
                    status,
                    "Registration did not go through",
                    vec![sentence(&message)],
                    back,
                ),
                _ => *refusal.response,
            }
        }
    }
}

/// The body as a submission: within the address's limit, JSON or a form, well formed;
/// a filled honeypot ends here with a normal-looking answer.
fn parse(
    state: &Intake,
    client: Client,
    back: Option<crate::pages::Back>,
    headers: &HeaderMap,
    body: &[u8],
    html: bool,
) -> Result<Submission, Refusal> {
    if !state.visitors.intake.allow(client.ip) {
        return Err(Refusal::api(
            IntakeOutcome::RateLimited,
            ApiError::rate_limited(),
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parsed = if content_type.starts_with("application/json") {
        intake::parse_json(body)
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        intake::parse_form(body)
    } else {
        return Err(Refusal::api(
            IntakeOutcome::UnsupportedMediaType,
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send application/json or application/x-www-form-urlencoded",
            ),
        ));
    };
    let submission = parsed.map_err(|errors| {
        Refusal::new(
            IntakeOutcome::Invalid,
            validation_failed(state, back, &errors, html, None, None),
        )
    })?;
    if submission.honeypot {
        // Look like success so the bot learns nothing; store nothing.
        let fake = new_id(state.shared.now());
        let response = if html {
            redirect_browser(state, "queued", &fake, None)
        } else {
            (
                StatusCode::ACCEPTED,
                Json(json!({"status": "queued", "registrationId": fake})),
            )
                .into_response()
        };
        return Err(Refusal::new(IntakeOutcome::Honeypot, response));
    }
    Ok(submission)
}

/// Checks the submission against the webinar's own form, from the cache or GoTo
/// within the look-up deadline; when GoTo cannot say in time, on the basics only.
async fn validate(
    state: &Intake,
    client: Client,
    webinar: &str,
    headers: &HeaderMap,
    submission: Submission,
    html: bool,
    series: Option<&Picked>,
) -> Result<Checked, Refusal> {
    let unknown = || {
        Refusal::api(
            IntakeOutcome::UnknownWebinar,
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such webinar (or it was cancelled)",
            ),
        )
    };
    let webinar_key = webinar.parse::<WebinarKey>().map_err(|_| unknown())?;
    let costs_nothing = state
        .organizers
        .all()
        .iter()
        .any(|o| o.webinars.costs_nothing(webinar_key));
    if !costs_nothing && !state.visitors.lookups.allow(client.ip) {
        return Err(Refusal::api(
            IntakeOutcome::RateLimited,
            ApiError::rate_limited(),
        ));
    }
    let found = state
        .organizers
        .find(webinar_key, state.shared.config.lookup_deadline)
        .await;
    let organizer = found.organizer;
    let info = match found.lookup {
        Lookup::Found(info) if info.is_over((state.shared.clock)()) => {
            return Err(Refusal::api(
                IntakeOutcome::WebinarOver,
                ApiError::new(StatusCode::GONE, "webinar_over", "this webinar is over"),
            ));
        }
        Lookup::Found(info) => Some(info),
        Lookup::NotFound => return Err(unknown()),
        Lookup::Unavailable(why) => {
            // GoTo is slow, down or the login is gone: accept on the basics and let
            // GoTo check the rest at delivery. Losing the registration would be worse.
            tracing::warn!(%webinar_key, "no registration form ({why}); accepting for GoTo to check");
            None
        }
    };
    let accepted =
        intake::validate(&submission, info.as_deref().map(|i| &i.form)).map_err(|errors| {
            Refusal::new(
                IntakeOutcome::Invalid,
                validation_failed(
                    state,
                    back_to_form(webinar),
                    &errors,
                    html,
                    info.as_deref().map(|i| (i, &submission)),
                    series,
                ),
            )
        })?;
    let idempotency_key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.trim().is_empty() && k.len() <= 255 => Some(k.trim().to_owned()),
        Some(_) => {
            return Err(Refusal::api(
                IntakeOutcome::Invalid,
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 255 visible characters",
                ),
            ));
        }
    };
    Ok(Checked {
        webinar_key,
        organizer,
        registrant: accepted.registrant,
        idempotency_key,
        validated: info.is_some(),
    })
}

/// Stores the registration durably (or finds the one its idempotency key names), for
/// its organizer to deliver.
async fn enqueue(
    state: &Intake,
    checked: Checked,
) -> Result<(Registration, Arc<Organizer>), Refusal> {
    let Checked {
        webinar_key,
        organizer,
        registrant,
        idempotency_key,
        validated,
    } = checked;
    let payload = serde_json::to_string(&registrant).map_err(|e| {
        Refusal::api(
            IntakeOutcome::Internal,
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        )
    })?;
    let now = state.shared.now();
    let item = NewRegistration {
        id: new_id(now),
        profile: organizer.profile.clone(),
        webinar_key,
        email: registrant.email.clone(),
        payload,
        idempotency_key,
        source: registrant.source.clone(),
        created_at: now,
        validated,
    };
    // The store gets as long as GoTo would: a visitor waits on neither for long.
    let deadline = state
        .shared
        .config
        .lookup_deadline
        .max(STORE_DEADLINE_FLOOR);
    let stored = state
        .delivery
        .batcher
        .enqueue(item, deadline)
        .await
        .map_err(|e| {
            tracing::error!("cannot store a registration: {}", g2w_goto::chain(&e));
            Refusal::api(
                IntakeOutcome::StorageError,
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the registration could not be stored; please try again",
                ),
            )
        })?;
    match stored {
        Enqueued::New(r) => {
            state.shared.metrics.intake(IntakeOutcome::Accepted);
            organizer.worker.pace().stored();
            Ok((r, organizer))
        }
        Enqueued::Existing(r)
            if r.webinar_key != webinar_key || !r.email.eq_ignore_ascii_case(&registrant.email) =>
        {
            Err(Refusal::api(
                IntakeOutcome::IdempotencyConflict,
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_conflict",
                    "this Idempotency-Key was used for a different registration",
                ),
            ))
        }
        Enqueued::Existing(r) => {
            state.shared.metrics.intake(IntakeOutcome::Replayed);
            Ok((r, organizer))
        }
        Enqueued::InFlight(r) => {
            state.shared.metrics.intake(IntakeOutcome::Joined);
            Ok((r, organizer))
        }
    }
}

/// Waits up to `sync_wait` for a registration to reach a final state, when it can
/// reach one in that time.
async fn wait_for_delivery(
    state: &Intake,
    organizer: &Organizer,
    reg: Registration,
) -> Registration {
    // Waiting only makes sense while GoTo answers and the queue is short: never make a
    // visitor wait on a GoTo that is failing or asked for quiet, a paused delivery, a
    // form GoTo was already too slow to describe, or a backlog that cannot be delivered
    // within the wait.
    if reg.state.is_final()
        || state.shared.config.sync_wait.is_zero()
        || !reg.validated
        || organizer.worker.failing()
        || organizer.worker.held_until().is_some()
        || organizer.worker.paused().is_some()
    {
        return reg;
    }
    let expected = organizer
        .worker
        .pace()
        .expected_delivery(&state.shared.store, &reg.profile, state.shared.now())
        .await;
    if expected > state.shared.config.sync_wait {
        return reg;
    }
    let rx = state.delivery.waiters.subscribe(&reg.id);
    // It may have finished between the write and the subscription.
    let id = reg.id.clone();
    if let Ok(Some(now)) = state.shared.store.registration(&id).await
        && now.state.is_final()
    {
        state.delivery.waiters.forget(&reg.id);
        return now;
    }
    match tokio::time::timeout(state.shared.config.sync_wait, rx).await {
        Ok(Ok(done)) => done,
        _ => {
            state.delivery.waiters.forget(&reg.id);
            let id = reg.id.clone();
            state
                .shared
                .store
                .registration(&id)
                .await
                .ok()
                .flatten()
                .unwrap_or(reg)
        }
    }
}

/// The least time intake gives the store to commit a registration.
pub(crate) const STORE_DEADLINE_FLOOR: std::time::Duration = std::time::Duration::from_secs(1);

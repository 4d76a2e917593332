//! The HTTP surface: intake, registration status, upcoming webinars, health, metrics,
//! and the built-in confirmation page. CORS and the per-IP intake limit live here too.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use g2w_goto::WebinarKey;
use g2w_store::{Enqueued, NewRegistration, OutboxState, Registration};
use serde_json::{Value, json};

use crate::cache::{Lookup, WebinarInfo};
use crate::client::Client;
use crate::delivery::breaker::BreakerState;
pub(crate) use crate::error::ApiError;
use crate::intake::{self, FieldErrors, Submission};
use crate::state::AppState;

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
fn status_name(reg: &Registration) -> &'static str {
    match reg.state {
        OutboxState::Pending | OutboxState::Delivering if !reg.validated => "pending_validation",
        OutboxState::Pending | OutboxState::Delivering => "queued",
        OutboxState::Delivered => "registered",
        OutboxState::AlreadyRegistered => "already_registered",
        OutboxState::Failed | OutboxState::Dead => "failed",
    }
}

/// The intake answer for a registration's current state.
fn answer(state: &AppState, reg: &Registration, html: bool) -> Response {
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

fn redirect_browser(state: &AppState, status: &str, id: &str, join_url: Option<&str>) -> Response {
    let target = match &state.config.thank_you_url {
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

fn validation_failed(
    state: &AppState,
    errors: &FieldErrors,
    html: bool,
    page: Option<(&WebinarInfo, &Submission)>,
) -> Response {
    if html {
        return match page {
            Some((info, submission)) => crate::pages::form(
                &state.config.brand,
                &info.detail,
                &info.form,
                Some((submission, errors)),
            ),
            None => crate::pages::problem(
                &state.config.brand,
                StatusCode::BAD_REQUEST,
                "Please check your registration",
                errors.iter().map(|(f, m)| format!("{f}: {m}")).collect(),
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
struct Refusal {
    outcome: &'static str,
    response: Box<Response>,
}

impl Refusal {
    fn new(outcome: &'static str, response: Response) -> Self {
        Self {
            outcome,
            response: Box::new(response),
        }
    }

    fn api(outcome: &'static str, error: ApiError) -> Self {
        Self::new(outcome, error.into_response())
    }
}

/// A submission that passed every check, ready to store.
struct Checked {
    webinar_key: WebinarKey,
    registrant: g2w_goto::NewRegistrant,
    idempotency_key: Option<String>,
    /// Whether it was checked against the webinar's own form.
    validated: bool,
}

/// `POST /api/v1/webinars/{webinarKey}/registrations`: parse → validate → enqueue →
/// answer.
pub(crate) async fn register(
    State(state): State<Arc<AppState>>,
    client: Client,
    Path(webinar): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = wants_html(&headers);
    let stored = async {
        let submission = parse(&state, client, &headers, &body, html)?;
        let checked = validate(&state, client, &webinar, &headers, submission, html).await?;
        enqueue(&state, checked).await
    }
    .await;
    match stored {
        Ok(reg) => {
            state.worker.wake();
            let reg = wait_for_delivery(&state, reg).await;
            answer(&state, &reg, html)
        }
        Err(refusal) => {
            state.metrics.intake(refusal.outcome);
            *refusal.response
        }
    }
}

/// The body as a submission: within the address's limit, JSON or a form, well formed;
/// a filled honeypot ends here with a normal-looking answer.
fn parse(
    state: &AppState,
    client: Client,
    headers: &HeaderMap,
    body: &[u8],
    html: bool,
) -> Result<Submission, Refusal> {
    if !state.ip_limiter.allow(client.ip) {
        return Err(Refusal::api("rate_limited", ApiError::rate_limited()));
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
            "unsupported_media_type",
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send application/json or application/x-www-form-urlencoded",
            ),
        ));
    };
    let submission = parsed
        .map_err(|errors| Refusal::new("invalid", validation_failed(state, &errors, html, None)))?;
    if submission.honeypot {
        // Look like success so the bot learns nothing; store nothing.
        let fake = new_id((state.clock)());
        let response = if html {
            redirect_browser(state, "queued", &fake, None)
        } else {
            (
                StatusCode::ACCEPTED,
                Json(json!({"status": "queued", "registrationId": fake})),
            )
                .into_response()
        };
        return Err(Refusal::new("honeypot", response));
    }
    Ok(submission)
}

/// Checks the submission against the webinar's own form, from the cache or GoTo
/// within the look-up deadline; when GoTo cannot say in time, on the basics only.
async fn validate(
    state: &AppState,
    client: Client,
    webinar: &str,
    headers: &HeaderMap,
    submission: Submission,
    html: bool,
) -> Result<Checked, Refusal> {
    let unknown = || {
        Refusal::api(
            "unknown_webinar",
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such webinar (or it was cancelled)",
            ),
        )
    };
    let webinar_key = webinar.parse::<WebinarKey>().map_err(|_| unknown())?;
    if !state.cache.costs_nothing(webinar_key) && !state.lookup_limiter.allow(client.ip) {
        return Err(Refusal::api("rate_limited", ApiError::rate_limited()));
    }
    let info = match state
        .cache
        .lookup(webinar_key, state.config.lookup_deadline)
        .await
    {
        Lookup::Found(info) if is_over(&info) => {
            return Err(Refusal::api(
                "webinar_over",
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
                "invalid",
                validation_failed(
                    state,
                    &errors,
                    html,
                    info.as_deref().map(|i| (i, &submission)),
                ),
            )
        })?;
    let idempotency_key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.trim().is_empty() && k.len() <= 255 => Some(k.trim().to_owned()),
        Some(_) => {
            return Err(Refusal::api(
                "invalid",
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
        registrant: accepted.registrant,
        idempotency_key,
        validated: info.is_some(),
    })
}

/// Stores the registration durably (or finds the one its idempotency key names).
async fn enqueue(state: &AppState, checked: Checked) -> Result<Registration, Refusal> {
    let Checked {
        webinar_key,
        registrant,
        idempotency_key,
        validated,
    } = checked;
    let payload = serde_json::to_string(&registrant).map_err(|e| {
        Refusal::api(
            "internal",
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        )
    })?;
    let now = (state.clock)();
    let item = NewRegistration {
        id: new_id(now),
        profile: state.config.profile.clone(),
        webinar_key,
        email: registrant.email.clone(),
        payload,
        idempotency_key,
        source: registrant.source.clone(),
        created_at: now,
        validated,
    };
    // The store gets as long as GoTo would: a visitor waits on neither for long.
    let deadline = state.config.lookup_deadline.max(STORE_DEADLINE_FLOOR);
    let stored = state.batcher.enqueue(item, deadline).await.map_err(|e| {
        tracing::error!("cannot store a registration: {}", g2w_goto::chain(&e));
        Refusal::api(
            "storage_error",
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the registration could not be stored; please try again",
            ),
        )
    })?;
    match stored {
        Enqueued::New(r) => {
            state.metrics.intake("accepted");
            state.worker.pace().stored();
            Ok(r)
        }
        Enqueued::Existing(r)
            if r.webinar_key != webinar_key || !r.email.eq_ignore_ascii_case(&registrant.email) =>
        {
            Err(Refusal::api(
                "idempotency_conflict",
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_conflict",
                    "this Idempotency-Key was used for a different registration",
                ),
            ))
        }
        Enqueued::Existing(r) => {
            state.metrics.intake("replayed");
            Ok(r)
        }
    }
}

fn is_over(info: &WebinarInfo) -> bool {
    let now = chrono::Utc::now();
    !info.detail.times.is_empty() && info.detail.times.iter().all(|t| t.end_time <= now)
}

/// `GET /r/{webinarKey}`: the hosted registration form.
pub(crate) async fn hosted_form(
    State(state): State<Arc<AppState>>,
    client: Client,
    Path(webinar): Path<String>,
    headers: HeaderMap,
) -> Response {
    let brand = &state.config.brand;
    let not_found = || {
        crate::pages::problem(
            brand,
            StatusCode::NOT_FOUND,
            "Webinar not found",
            vec!["This registration link is not valid (or the webinar was cancelled).".to_owned()],
        )
    };
    let Ok(key) = webinar.parse::<WebinarKey>() else {
        return not_found();
    };
    if !state.cache.costs_nothing(key) && !state.lookup_limiter.allow(client.ip) {
        return crate::pages::problem(
            brand,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            vec!["Please wait a minute and try again.".to_owned()],
        );
    }
    match state.cache.lookup(key, state.config.lookup_deadline).await {
        Lookup::Found(info) if is_over(&info) => crate::pages::problem(
            brand,
            StatusCode::GONE,
            &info.detail.subject,
            vec!["This webinar is over; registration is closed.".to_owned()],
        ),
        Lookup::Found(info) => crate::pages::cached_form(
            brand,
            &info,
            headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok()),
        ),
        Lookup::NotFound => not_found(),
        Lookup::Unavailable(why) => {
            tracing::warn!(%key, "cannot show the form: {why}");
            crate::pages::problem(
                brand,
                StatusCode::SERVICE_UNAVAILABLE,
                "Registration is unavailable",
                vec!["Please try again in a few minutes.".to_owned()],
            )
        }
    }
}

/// `GET /favicon.ico`: nothing to show, said without a 404 in every log.
pub(crate) async fn favicon() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /embed.js`.
pub(crate) async fn embed_js() -> Response {
    crate::pages::embed_js()
}

/// Waits up to `sync_wait` for a registration to reach a final state, when it can
/// reach one in that time.
async fn wait_for_delivery(state: &AppState, reg: Registration) -> Registration {
    // Waiting only makes sense while GoTo answers and the queue is short: never make a
    // visitor wait on a GoTo that is failing, a paused delivery, a form GoTo was already
    // too slow to describe, or a backlog that cannot be delivered within the wait.
    if reg.state.is_final()
        || state.config.sync_wait.is_zero()
        || !reg.validated
        || state.worker.failing()
        || state.worker.paused().is_some()
    {
        return reg;
    }
    let expected = state
        .worker
        .pace()
        .expected_delivery(&state.store, &reg.profile, (state.clock)())
        .await;
    if expected > state.config.sync_wait {
        return reg;
    }
    let rx = state.waiters.subscribe(&reg.id);
    // It may have finished between the write and the subscription.
    let id = reg.id.clone();
    if let Ok(Some(now)) = state.store.registration(&id).await
        && now.state.is_final()
    {
        state.waiters.forget(&reg.id);
        return now;
    }
    match tokio::time::timeout(state.config.sync_wait, rx).await {
        Ok(Ok(done)) => done,
        _ => {
            state.waiters.forget(&reg.id);
            let id = reg.id.clone();
            state
                .store
                .registration(&id)
                .await
                .ok()
                .flatten()
                .unwrap_or(reg)
        }
    }
}

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
pub(crate) async fn registration(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    match state.store.registration(&id).await {
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
/// `null`.
pub(crate) async fn webinars(State(state): State<Arc<AppState>>) -> Response {
    // Landing pages call this to build their pages, not while a visitor waits: it may
    // wait longer than intake for a cold cache to fill.
    let deadline = state.config.lookup_deadline.max(LIST_DEADLINE);
    let list = match state.cache.upcoming(deadline).await {
        Ok(l) => l,
        Err(e) => {
            return ApiError::new(StatusCode::BAD_GATEWAY, "goto_unavailable", e).into_response();
        }
    };
    let mut forms = tokio::task::JoinSet::new();
    for (i, w) in list.iter().enumerate() {
        let (cache, key) = (state.cache.clone(), w.webinar_key);
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
        .map(|(w, form)| {
            json!({
                "webinarKey": w.webinar_key,
                "subject": w.subject,
                "description": w.description,
                "times": w.times,
                "timeZone": w.time_zone,
                "registrationFields": form,
            })
        })
        .collect();
    Json(json!({"webinars": items})).into_response()
}

/// The least time intake gives the store to commit a registration.
const STORE_DEADLINE_FLOOR: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// The longest `GET /api/v1/webinars` waits for GoTo.
const LIST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a failed intake write keeps `/readyz` at 503 when no write succeeds since.
const WRITE_FAILURE_MEMORY: std::time::Duration = std::time::Duration::from_secs(30);

/// `GET /readyz`: 200 when registrations can be stored and are being delivered; 503
/// with the reasons when the store cannot be written, the GoTo login is unusable
/// (delivery paused), or GoTo is failing (the breaker is open).
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let now = (state.clock)();
    // A health check must answer whatever the database does: it waits as intake does.
    let deadline = state.config.lookup_deadline.max(STORE_DEADLINE_FLOOR);
    let late = || format!("no answer within {} ms", deadline.as_millis());
    let probe = tokio::time::timeout(deadline, state.store.probe_write(now)).await;
    let store = match (probe, state.batcher.recent_failure(WRITE_FAILURE_MEMORY)) {
        (Err(_), _) => Err(late()),
        (Ok(Err(e)), _) => Err(g2w_goto::chain(&e)),
        (Ok(Ok(())), Some(e)) => Err(e),
        (Ok(Ok(())), None) => Ok(()),
    };
    let token = match tokio::time::timeout(deadline, state.client.tokens().record()).await {
        Err(_) => Err(late()),
        Ok(Ok(r)) => r.unusable().map_or(Ok(()), Err),
        Ok(Err(e)) => Err(g2w_goto::chain(&e)),
    };
    let paused = state.worker.paused();
    let breaker = state.worker.breaker();
    let mut reasons = Vec::new();
    if let Err(e) = &store {
        reasons.push(format!("the store cannot be written: {e}"));
    }
    if let Err(e) = &token {
        reasons.push(format!("the GoTo login is not usable: {e}"));
    } else if let Some(p) = &paused {
        reasons.push(format!("delivery is paused: {p}"));
    }
    if let BreakerState::Open { reason, .. } = &breaker {
        reasons.push(format!("GoTo is failing: {reason}"));
    }
    let body = json!({
        "status": if reasons.is_empty() { "ready" } else { "not_ready" },
        "reason": reasons.first(),
        "reasons": reasons,
        "store": store.err().unwrap_or_else(|| "ok".to_owned()),
        "token": token.err().unwrap_or_else(|| "ok".to_owned()),
        "deliveryPaused": paused,
        "goto": match breaker {
            BreakerState::Closed => json!({"breaker": "closed"}),
            BreakerState::Open { since, reason } => json!({
                "breaker": "open",
                "since": since.to_utc().to_rfc3339(),
                "reason": reason,
            }),
        },
    });
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text. The queue gauges come from the store's indexes:
/// a scrape costs the same however much history the queues hold.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let now = (state.clock)();
    let age = |g: &g2w_store::QueueGauges| {
        g.oldest_waiting
            .map_or(0.0, |at| now.since(at).as_secs_f64())
    };
    let registrations = state.store.registration_gauges().await.unwrap_or_default();
    let mut queues = vec![(
        g2w_store::QueueName::Registrations,
        crate::metrics::QueueState {
            oldest_waiting_secs: age(&registrations),
            items: registrations,
            paused: state.worker.paused().is_some(),
            breaker_open: state.worker.failing(),
        },
    )];
    if let Some(forwarder) = &state.forwarder {
        let forwards = state.store.forward_gauges().await.unwrap_or_default();
        queues.push((
            g2w_store::QueueName::Forwards,
            crate::metrics::QueueState {
                oldest_waiting_secs: age(&forwards),
                items: forwards,
                paused: forwarder.paused().is_some(),
                breaker_open: forwarder.failing(),
            },
        ));
    }
    let gauges = crate::metrics::Gauges {
        queues,
        token_refreshes: state.client.tokens().refresh_count(),
    };
    let text = state.metrics.render(&gauges);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `GET /confirmation/{id}`: what a browser sees after a plain form post.
pub(crate) async fn confirmation(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    let reg = state.store.registration(&id).await.ok().flatten();
    // Name the webinar when the cache (or GoTo, briefly) can; the page works without.
    let webinar = match reg.as_ref().map(|r| r.webinar_key) {
        Some(key) => match state.cache.lookup(key, state.config.lookup_deadline).await {
            Lookup::Found(info) => Some(info),
            _ => None,
        },
        None => None,
    };
    crate::pages::confirmation(
        &state.config.brand,
        webinar.as_deref().map(|i| &i.detail),
        reg.as_ref().map(|r| r.state),
        reg.and_then(|r| r.join_url),
    )
}

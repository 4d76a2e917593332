//! The Webinar v2 API under `/G2W/rest/v2`. Every route needs a bearer token; the
//! middleware here checks it, applies the per-client rate limit, and hands handlers
//! the [`Caller`] (whose organizer the token belongs to).

mod registrants;
mod webinars;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use crate::errors::{AppError, invalid_token, too_many_requests};
use crate::oauth::authenticate;
use crate::shared::Shared;
use crate::state::{State as World, Webinar};

/// Who is calling: the organizer the access token was issued for.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub organizer_key: u64,
}

pub(crate) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    let w = "/organizers/{organizer_key}/webinars/{webinar_key}";
    Router::new()
        .route(
            "/accounts/{account_key}/webinars",
            get(webinars::list_for_account),
        )
        .route(
            "/organizers/{organizer_key}/webinars",
            get(webinars::list).post(webinars::create),
        )
        .route(
            w,
            get(webinars::get)
                .put(webinars::update)
                .delete(webinars::cancel),
        )
        .route(
            &format!("{w}/registrants"),
            get(registrants::list).post(registrants::create),
        )
        // A static segment outranks `{registrant_key}`, so `fields` is never taken for a key.
        .route(&format!("{w}/registrants/fields"), get(registrants::fields))
        .route(
            &format!("{w}/registrants/{{registrant_key}}"),
            get(registrants::get).delete(registrants::delete),
        )
        .fallback(|| async { AppError::not_found("Resource").into_response() })
        .layer(middleware::from_fn_with_state(shared, require_token))
}

async fn require_token(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(grant) = authenticate(&shared, request.headers()) else {
        return invalid_token();
    };
    if !shared.limiter.allow(&grant.client_id) {
        return too_many_requests();
    }
    request.extensions_mut().insert(Caller {
        organizer_key: grant.organizer_key,
    });
    next.run(request).await
}

/// Parses a key from a path segment; anything but digits is simply not found.
pub(crate) fn parse_key(text: &str, what: &str) -> Result<u64, AppError> {
    text.parse().map_err(|_| AppError::not_found(what))
}

/// Checks that the caller may act for the organizer in the path.
pub(crate) fn check_organizer(caller: &Caller, organizer_key: &str) -> Result<u64, AppError> {
    let key = parse_key(organizer_key, "Organizer")?;
    if key == caller.organizer_key {
        Ok(key)
    } else {
        Err(AppError::forbidden(
            "The token does not grant access to this organizer",
        ))
    }
}

/// The organizer's webinar, if it exists and is not cancelled.
pub(crate) fn find_webinar<'a>(
    world: &'a mut World,
    organizer_key: u64,
    webinar_key: &str,
) -> Result<&'a mut Webinar, AppError> {
    let key = parse_key(webinar_key, "Webinar")?;
    match world.webinars.get_mut(&key) {
        Some(w) if w.organizer_key == organizer_key && !w.cancelled => Ok(w),
        _ => Err(AppError::not_found("Webinar")),
    }
}

/// Parses a JSON object body; malformed JSON is GoTo's 400 RequestValidationError.
pub(crate) fn json_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, AppError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(AppError::validation(
            "The request body must be a JSON object",
        )),
        Err(err) => Err(AppError::validation(format!("Malformed JSON: {err}"))),
    }
}

/// A boolean query parameter (`true`/`false`); anything else is a 400.
pub(crate) fn bool_param(value: Option<&String>, name: &str) -> Result<bool, AppError> {
    match value.map(String::as_str) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(AppError::validation(format!(
            "{name} must be true or false, not {v:?}"
        ))),
    }
}

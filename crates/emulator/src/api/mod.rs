//! The Webinar v2 API under `/G2W/rest/v2`. Every route needs a bearer token; the
//! middleware here checks it, applies the per-account rate limit, and hands handlers
//! the [`Caller`] (whose organizer the token belongs to).

mod registrants;
mod sessions;
mod webhooks;
mod webinars;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::Value;

use crate::errors::{AppError, invalid_token, too_many_requests};
use crate::oauth::authenticate;
use crate::shared::Shared;
use crate::state::{State as World, Webinar};

/// Who is calling: the organizer the access token was issued for.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub organizer_key: u64,
    /// The application the token was issued to (webhooks belong to it).
    pub client_id: String,
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
        .route(&format!("{w}/sessions"), get(sessions::list))
        .route(
            &format!("{w}/sessions/{{session_key}}"),
            get(sessions::attendees),
        )
        .route(
            &format!("{w}/sessions/{{session_key}}/attendees"),
            get(sessions::attendees),
        )
        .route(&format!("{w}/attendees"), get(sessions::all_attendees))
        .route("/webinars/{webinar_key}/copy", put(webinars::copy))
        .route("/webhooks/secretkey", post(webhooks::create_secret))
        .route(
            "/webhooks",
            get(webhooks::list)
                .post(webhooks::create)
                .put(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/webhooks/{webhook_key}", get(webhooks::get))
        .route(
            "/userSubscriptions",
            get(webhooks::subscriptions)
                .post(webhooks::subscribe)
                .put(webhooks::update_subscriptions)
                .delete(webhooks::unsubscribe),
        )
        .route(
            "/userSubscriptions/{subscription_key}",
            get(webhooks::subscription),
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
    // GoTo's limit is the account's: organizers of one account share it.
    let account = shared
        .state()
        .organizers
        .get(&grant.organizer_key)
        .map_or(grant.organizer_key, |o| o.account_key);
    let account = account.to_string();
    shared.stats.arrival(&account);
    if !shared.limiter.allow(&account) {
        return too_many_requests();
    }
    request.extensions_mut().insert(Caller {
        organizer_key: grant.organizer_key,
        client_id: grant.client_id.clone(),
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

/// A whole-number query parameter, if given (negative numbers are numbers too: the
/// caller says what range it takes).
pub(crate) fn whole_number(
    q: &HashMap<String, String>,
    name: &str,
) -> Result<Option<i64>, AppError> {
    q.get(name)
        .map(|text| {
            text.trim().parse::<i64>().map_err(|_| {
                AppError::validation(format!("{name} must be a whole number, not {text:?}"))
            })
        })
        .transpose()
}

/// `page` (from 0) and `size` (1 to `max`), as GoTo's paged calls take them.
pub(crate) fn page_params(
    q: &HashMap<String, String>,
    default_size: u64,
    max: u64,
) -> Result<(u64, u64), AppError> {
    let number = |name: &str| whole_number(q, name);
    let page = match number("page")? {
        None => 0,
        Some(n) if n >= 0 => n.unsigned_abs(),
        Some(n) => {
            return Err(AppError::validation(format!(
                "page must be 0 or more, not {n}"
            )));
        }
    };
    let size = match number("size")? {
        None => default_size,
        Some(n) if (1..=i64::try_from(max).unwrap_or(i64::MAX)).contains(&n) => n.unsigned_abs(),
        Some(n) => {
            return Err(AppError::validation(format!(
                "size must be between 1 and {max}, not {n}"
            )));
        }
    };
    Ok((page, size))
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

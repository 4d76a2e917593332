//! The admin console (`/admin`): connect a GoTo account, watch the tokens, see upcoming
//! webinars with their form links, handle what the outbox could not deliver, and see the
//! form builders posting sign-ups with what they could not map.
//!
//! Protection: a password (`G2W_ADMIN_PASSWORD`, or one generated, printed once and
//! stored as an argon2id hash); a session cookie (HttpOnly, SameSite=Strict, Secure
//! behind HTTPS); a CSRF token in every form, checked on every POST; sign-in attempts
//! limited per address and for everyone together, and checked a few at a time
//! (`throttle`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use g2w_goto::{ClientCredentials, ExposeSecret as _, SecretString, TokenRecord};
use g2w_store::OutboxState;
use rand::Rng as _;

use crate::http::client::Client;
use crate::organizers::{Organizer, Organizers};
use crate::sign_in::{AdminPassword, Verdict, same};
use crate::state::{AppState, Console, PendingConnect, Shared};

mod attendance;
mod connect;
mod keys;
mod pages;
mod pictures;
mod signin;
mod sources;

pub(crate) use attendance::{attendance, reconcile};
pub(crate) use connect::{connect, oauth_callback, save_client, start_connect};
pub(crate) use keys::{create as create_key, keys_page, revoke as revoke_key};
use pages::OrganizerField;
pub(crate) use pages::{disconnect, outbox, outbox_action, refresh, tokens, webinars};
pub(crate) use pictures::{activity, webinar};
pub(crate) use signin::{index, login, login_page, logout};
pub(crate) use sources::{replay as replay_source, sources};

const COOKIE: &str = "g2w_admin";
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
fn token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The session id the request's cookie carries.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_owned)
        })
}

/// What the store keeps of a session id: its digest, so a copy of the database signs
/// nobody in.
fn session_digest(id: &str) -> String {
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(id.as_bytes()))
}

/// The signed-in session's CSRF token, if the request has a live session.
async fn session(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let digest = session_digest(&session_id(headers)?);
    match shared.store.session(&digest, (shared.clock)()).await {
        Ok(found) => found.map(|s| s.csrf),
        Err(e) => {
            tracing::warn!("cannot read admin sessions: {e}");
            None
        }
    }
}

/// Ends a console action (post/redirect/get): its outcome is shown once on `page`, and
/// reloading that page repeats nothing.
fn done(console: &Console, csrf: &str, page: &str, notice: String) -> Response {
    let mut notices = lock(&console.notices);
    if notices.len() > 10_000 {
        notices.clear();
    }
    notices.insert(csrf.to_owned(), notice);
    Redirect::to(page).into_response()
}

/// The notice an action left for this session, once.
fn notice(console: &Console, csrf: &str) -> Option<String> {
    lock(&console.notices).remove(csrf)
}

/// `scheme://host` of the console as the browser sees it (HTTPS only when a trusted
/// proxy says so).
pub(crate) struct ConsoleOrigin(String);

impl FromRequestParts<AppState> for ConsoleOrigin {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, StatusCode> {
        let client = Client::from_request_parts(parts, state).await?;
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1");
        let scheme = if client.https { "https" } else { "http" };
        Ok(Self(format!("{scheme}://{host}")))
    }
}

fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("admin template failed: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Why a console request was refused.
pub(crate) enum Denied {
    /// No live session: sign in.
    SignIn,
    /// A POST without this session's CSRF token.
    Csrf,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn => Redirect::to("/admin/login").into_response(),
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "The form expired or did not come from this console; reload the page.",
            )
                .into_response(),
        }
    }
}

/// A signed-in console request; `csrf` goes into the page's forms.
pub(crate) struct Admin {
    csrf: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Denied;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Denied> {
        session(&state.shared, &parts.headers)
            .await
            .map(|csrf| Self { csrf })
            .ok_or(Denied::SignIn)
    }
}

/// What every console page's layout shows: the navigation (when signed in, with the
/// current page marked), the sign-out form's CSRF token, and an action's notice.
pub(crate) struct Layout {
    signed_in: bool,
    active: &'static str,
    csrf: String,
    notice: Option<String>,
}

/// A signed-in console form post whose CSRF token is the session's, with its fields.
pub(crate) struct AdminForm<T = NoFields> {
    csrf: String,
    fields: T,
}

/// A console form with nothing but its CSRF token.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct NoFields {}

/// What a console form posts: the CSRF token beside the form's own fields.
#[derive(serde::Deserialize)]
struct Posted<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    fields: T,
}

impl<T: serde::de::DeserializeOwned + Send> FromRequest<AppState> for AdminForm<T> {
    type Rejection = Denied;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Denied> {
        let (mut parts, body) = request.into_parts();
        let Admin { csrf } = Admin::from_request_parts(&mut parts, state).await?;
        let request = Request::from_parts(parts, body);
        let axum::Form(posted) = axum::Form::<Posted<T>>::from_request(request, state)
            .await
            .map_err(|_| Denied::Csrf)?;
        if !same(posted.csrf.as_bytes(), csrf.as_bytes()) {
            return Err(Denied::Csrf);
        }
        Ok(Self {
            csrf,
            fields: posted.fields,
        })
    }
}

//! The admin console (`/admin`): connect a GoTo account, watch the tokens, see upcoming
//! webinars with their form links, and handle what the outbox could not deliver.
//!
//! Protection: a password (`G2W_ADMIN_PASSWORD`, or one generated, printed once and
//! stored as an argon2id hash); a session cookie (HttpOnly, SameSite=Strict, Secure
//! behind HTTPS); a CSRF token in every form, checked on every POST; at most five
//! sign-in attempts checked per address in five minutes, counted before the (slow)
//! check so that a burst sent at once cannot get more.

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

use crate::client::Client;
use crate::password::{AdminPassword, Verdict, same};
use crate::state::{AppState, PendingConnect};

const COOKIE: &str = "g2w_admin";
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const LOGIN_WINDOW: Duration = Duration::from_secs(300);
const LOGIN_FAILURES: usize = 5;
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
async fn session(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let digest = session_digest(&session_id(headers)?);
    let now = chrono::Utc::now().timestamp();
    match crate::blocking::off_thread(&state.store, move |s| s.session(&digest, now)).await {
        Ok(found) => found.map(|s| s.csrf),
        Err(e) => {
            tracing::warn!("cannot read admin sessions: {e}");
            None
        }
    }
}

/// Ends a console action (post/redirect/get): its outcome is shown once on `page`, and
/// reloading that page repeats nothing.
fn done(state: &AppState, csrf: &str, page: &str, notice: String) -> Response {
    let mut notices = lock(&state.admin.notices);
    if notices.len() > 10_000 {
        notices.clear();
    }
    notices.insert(csrf.to_owned(), notice);
    Redirect::to(page).into_response()
}

/// The notice an action left for this session, once.
fn notice(state: &AppState, csrf: &str) -> Option<String> {
    lock(&state.admin.notices).remove(csrf)
}

/// `scheme://host` of the console as the browser sees it (HTTPS only when a trusted
/// proxy says so).
pub(crate) struct ConsoleOrigin(String);

impl FromRequestParts<Arc<AppState>> for ConsoleOrigin {
    type Rejection = StatusCode;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, StatusCode> {
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

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = Denied;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Denied> {
        session(state, &parts.headers)
            .await
            .map(|csrf| Self { csrf })
            .ok_or(Denied::SignIn)
    }
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

impl<T: serde::de::DeserializeOwned + Send> FromRequest<Arc<AppState>> for AdminForm<T> {
    type Rejection = Denied;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, Denied> {
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

/// `POST /admin/connect`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ClientFields {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
}

/// `POST /admin/login`.
#[derive(serde::Deserialize)]
pub(crate) struct SignIn {
    #[serde(default)]
    password: String,
}

/// `GET /admin/oauth/callback`: what GoTo sends back.
#[derive(serde::Deserialize)]
pub(crate) struct Callback {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// `GET /admin/outbox`.
#[derive(serde::Deserialize)]
pub(crate) struct OutboxQuery {
    email: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_login.html")]
struct LoginPage {
    signed_in: bool,
    active: &'static str,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
}

/// `GET /admin`.
pub(crate) async fn index(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match session(&state, &headers).await {
        Some(_) => Redirect::to("/admin/tokens").into_response(),
        None => Redirect::to("/admin/login").into_response(),
    }
}

/// `GET /admin/login`.
pub(crate) async fn login_page() -> Response {
    render(&LoginPage {
        signed_in: false,
        active: "",
        csrf: String::new(),
        notice: None,
        error: None,
    })
}

/// The sign-in page again, with why it refused.
fn login_refused(status: StatusCode, why: &str) -> Response {
    let mut page = render(&LoginPage {
        signed_in: false,
        active: "",
        csrf: String::new(),
        notice: None,
        error: Some(why.to_owned()),
    });
    *page.status_mut() = status;
    page
}

/// `POST /admin/login`.
pub(crate) async fn login(
    State(state): State<Arc<AppState>>,
    client: Client,
    axum::Form(SignIn {
        password: candidate,
    }): axum::Form<SignIn>,
) -> Response {
    let Some(password) = &state.config.admin_password else {
        return (StatusCode::NOT_FOUND, "The admin console is off.").into_response();
    };
    let ip = client.ip;
    {
        // The attempt is counted now, before the slow check: thirty guesses sent at
        // once must not all be checked.
        let mut failures = lock(&state.admin.failures);
        let recent = failures.entry(ip).or_default();
        recent.retain(|t| t.elapsed() < LOGIN_WINDOW);
        if recent.len() >= LOGIN_FAILURES {
            return login_refused(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed attempts; wait a few minutes.",
            );
        }
        recent.push(Instant::now());
    }
    let password = lock(&state.admin.upgraded)
        .clone()
        .unwrap_or_else(|| password.clone());
    let verdict = tokio::task::spawn_blocking(move || password.verify(&candidate))
        .await
        .unwrap_or(Verdict::Refused);
    match verdict {
        Verdict::Refused => {
            return login_refused(StatusCode::UNAUTHORIZED, "Wrong password.");
        }
        Verdict::Accepted => {}
        Verdict::AcceptedUpgrade(hash) => {
            let stored = hash.clone();
            match crate::blocking::off_thread(&state.store, move |s| {
                s.set_setting("admin_password", &stored)
            })
            .await
            {
                Ok(()) => {
                    tracing::info!("admin password hash upgraded to argon2id");
                    *lock(&state.admin.upgraded) = Some(AdminPassword::Hashed(hash));
                }
                Err(e) => tracing::warn!("cannot upgrade the admin password hash: {e}"),
            }
        }
    }
    lock(&state.admin.failures).remove(&ip);
    let id = token();
    let (digest, session) = (
        session_digest(&id),
        g2w_store::AdminSession {
            csrf: token(),
            expires_at: chrono::Utc::now().timestamp()
                + i64::try_from(SESSION_TTL.as_secs()).unwrap_or(i64::MAX / 2),
        },
    );
    if let Err(e) =
        crate::blocking::off_thread(&state.store, move |s| s.put_session(&digest, &session)).await
    {
        tracing::error!("cannot store an admin session: {e}");
        return login_refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in is unavailable: the store cannot be written.",
        );
    }
    let secure = if client.https { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={id}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_TTL.as_secs()
    );
    let mut response = Redirect::to("/admin/tokens").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `POST /admin/logout`.
pub(crate) async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    _form: AdminForm,
) -> Response {
    if let Some(id) = session_id(&headers) {
        let (digest, now) = (session_digest(&id), chrono::Utc::now().timestamp());
        if let Err(e) =
            crate::blocking::off_thread(&state.store, move |s| s.end_session(&digest, now)).await
        {
            tracing::warn!("cannot end an admin session: {e}");
        }
    }
    let mut response = Redirect::to("/admin/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("g2w_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

#[derive(Template)]
#[template(path = "admin_tokens.html")]
struct TokensPage {
    signed_in: bool,
    active: &'static str,
    csrf: String,
    notice: Option<String>,
    connected: bool,
    reauth: Option<String>,
    state: String,
    principal: String,
    organizer_key: String,
    access_expires: String,
    refresh_age: String,
    last_refresh: String,
    delivery: String,
}

fn when(ts: Option<i64>) -> String {
    ts.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

async fn tokens_page(state: &AppState, csrf: String, notice: Option<String>) -> Response {
    let tokens = state.client.tokens();
    let record = tokens.record().await.ok();
    let now = tokens.now();
    let connected = record.as_ref().is_some_and(|r| {
        r.access_token.is_some() || r.refresh_token.is_some() || r.personal_access_token.is_some()
    });
    let r = record.unwrap_or_default();
    render(&TokensPage {
        signed_in: true,
        active: "tokens",
        csrf,
        notice,
        connected,
        reauth: r.reauthorization_required.clone(),
        state: r.state(now).replace('_', " "),
        principal: r.principal.clone().unwrap_or_else(|| "-".into()),
        organizer_key: r
            .organizer_key
            .map_or_else(|| "-".into(), |k| k.to_string()),
        access_expires: when(r.access_expires_at),
        refresh_age: r.refresh_token_since.map_or_else(
            || "-".into(),
            |t| {
                format!(
                    "{:.1} days (GoTo renews it near day 30)",
                    (now - t) as f64 / 86_400.0
                )
            },
        ),
        last_refresh: when(r.last_refresh_at),
        delivery: state
            .worker
            .paused()
            .map_or_else(|| "running".into(), |p| format!("paused: {p}")),
    })
}

/// `GET /admin/tokens`.
pub(crate) async fn tokens(State(state): State<Arc<AppState>>, admin: Admin) -> Response {
    let shown = notice(&state, &admin.csrf);
    tokens_page(&state, admin.csrf, shown).await
}

/// `POST /admin/tokens/refresh`: "Refresh now".
pub(crate) async fn refresh(
    State(state): State<Arc<AppState>>,
    AdminForm { csrf, .. }: AdminForm,
) -> Response {
    let notice = match state.client.tokens().force_refresh().await {
        Ok(r) => format!(
            "Refreshed: the access token is valid until {}.",
            when(r.access_expires_at)
        ),
        Err(e) => format!("The refresh failed: {e}"),
    };
    done(&state, &csrf, "/admin/tokens", notice)
}

#[derive(Template)]
#[template(path = "admin_connect.html")]
struct ConnectPage {
    signed_in: bool,
    active: &'static str,
    csrf: String,
    notice: Option<String>,
    redirect_uri: String,
    client_id: String,
    has_secret: bool,
}

fn redirect_uri(origin: &str) -> String {
    format!("{origin}/admin/oauth/callback")
}

async fn connect_page(
    state: &AppState,
    origin: &str,
    csrf: String,
    notice: Option<String>,
) -> Response {
    let record = state.client.tokens().record().await.ok();
    let configured = state.client.tokens().oauth().credentials().clone();
    let (client_id, has_secret) = match &record {
        Some(r) if !r.client_id.is_empty() => (r.client_id.clone(), r.client_secret.is_some()),
        _ => (
            configured.client_id.clone(),
            !configured.client_id.is_empty()
                && !configured.client_secret.expose_secret().is_empty(),
        ),
    };
    render(&ConnectPage {
        signed_in: true,
        active: "connect",
        csrf,
        notice,
        redirect_uri: redirect_uri(origin),
        client_id,
        has_secret,
    })
}

/// `GET /admin/connect`.
pub(crate) async fn connect(
    State(state): State<Arc<AppState>>,
    ConsoleOrigin(origin): ConsoleOrigin,
    admin: Admin,
) -> Response {
    let shown = notice(&state, &admin.csrf);
    connect_page(&state, &origin, admin.csrf, shown).await
}

/// The OAuth client to connect with: the stored one, else the configured one.
async fn credentials(state: &AppState) -> Option<ClientCredentials> {
    if let Ok(r) = state.client.tokens().record().await
        && let Some(secret) = r.client_secret
        && !r.client_id.is_empty()
    {
        return Some(ClientCredentials {
            client_id: r.client_id,
            client_secret: secret,
        });
    }
    let configured = state.client.tokens().oauth().credentials().clone();
    (!configured.client_id.is_empty() && !configured.client_secret.expose_secret().is_empty())
        .then_some(configured)
}

/// `POST /admin/connect`: saves the OAuth client (id and secret, encrypted).
pub(crate) async fn save_client(
    State(state): State<Arc<AppState>>,
    AdminForm { csrf, fields }: AdminForm<ClientFields>,
) -> Response {
    let id = fields.client_id.trim().to_owned();
    let secret = fields.client_secret.trim().to_owned();
    if id.is_empty() || id.len() > 200 || secret.len() > 500 {
        return done(
            &state,
            &csrf,
            "/admin/connect",
            "Enter the client id (and its secret).".into(),
        );
    }
    let tokens = state.client.tokens();
    let mut record = tokens.record().await.unwrap_or_default();
    if record.client_id != id {
        // Another client: the old tokens are not its tokens.
        record = TokenRecord::default();
    }
    record.client_id = id;
    if !secret.is_empty() {
        record.client_secret = Some(SecretString::from(secret));
    }
    let notice = match (record.client_secret.is_some(), tokens.save(&record).await) {
        (_, Err(e)) => format!("Could not save: {e}"),
        (false, Ok(())) => "Saved the client id; enter its secret too.".to_owned(),
        (true, Ok(())) => "Saved. Now connect the GoTo account.".to_owned(),
    };
    done(&state, &csrf, "/admin/connect", notice)
}

/// `POST /admin/connect/start`: off to GoTo's authorize page, with state and PKCE.
pub(crate) async fn start_connect(
    State(state): State<Arc<AppState>>,
    ConsoleOrigin(origin): ConsoleOrigin,
    AdminForm { csrf, .. }: AdminForm,
) -> Response {
    let Some(credentials) = credentials(&state).await else {
        return done(
            &state,
            &csrf,
            "/admin/connect",
            "Save the client id and secret first.".into(),
        );
    };
    let oauth = state.client.tokens().oauth().with_credentials(credentials);
    let redirect = redirect_uri(&origin);
    let request = oauth.authorize(&redirect, true);
    let mut connects = lock(&state.admin.connects);
    connects.retain(|_, p| p.expires > Instant::now());
    connects.insert(
        request.state.clone(),
        PendingConnect {
            verifier: request.pkce_verifier,
            redirect_uri: redirect,
            expires: Instant::now() + Duration::from_secs(600),
        },
    );
    Redirect::to(request.url.as_str()).into_response()
}

#[derive(Template)]
#[template(path = "admin_callback.html")]
struct CallbackPage {
    signed_in: bool,
    active: &'static str,
    csrf: String,
    notice: Option<String>,
    heading: String,
    message: String,
}

fn callback_page(status: StatusCode, heading: &str, message: String) -> Response {
    let mut page = render(&CallbackPage {
        signed_in: false,
        active: "",
        csrf: String::new(),
        notice: None,
        heading: heading.to_owned(),
        message,
    });
    *page.status_mut() = status;
    page
}

/// `GET /admin/oauth/callback`: GoTo sends the browser back here. The SameSite=Strict
/// cookie does not come along on this cross-site return, so the single-use `state` is
/// what identifies the flow an admin started.
pub(crate) async fn oauth_callback(
    State(state): State<Arc<AppState>>,
    Query(q): Query<Callback>,
) -> Response {
    let pending = q
        .state
        .as_deref()
        .and_then(|s| lock(&state.admin.connects).remove(s));
    let Some(pending) = pending.filter(|p| p.expires > Instant::now()) else {
        return callback_page(
            StatusCode::BAD_REQUEST,
            "This link is not valid",
            "Start again from the console's Connect page.".into(),
        );
    };
    if let Some(error) = &q.error {
        return callback_page(
            StatusCode::OK,
            "Not connected",
            format!(
                "GoTo did not authorize g2w ({}).",
                error.chars().take(60).collect::<String>()
            ),
        );
    }
    let Some(code) = &q.code else {
        return callback_page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            "GoTo sent no code.".into(),
        );
    };
    let Some(credentials) = credentials(&state).await else {
        return callback_page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            "The OAuth client is not saved.".into(),
        );
    };
    let oauth = state
        .client
        .tokens()
        .oauth()
        .with_credentials(credentials.clone());
    let answer = match oauth
        .exchange_code(code, &pending.redirect_uri, pending.verifier.as_ref())
        .await
    {
        Ok(a) => a,
        Err(e) => {
            return callback_page(
                StatusCode::BAD_GATEWAY,
                "Not connected",
                format!("GoTo refused the code: {e}"),
            );
        }
    };
    let record = TokenRecord::new_login(&credentials, answer, state.client.tokens().now());
    let record = match state.client.save_login(record).await {
        Ok(r) => r,
        Err(e) => {
            return callback_page(
                StatusCode::BAD_GATEWAY,
                "Not connected",
                format!("Could not complete the login: {e}"),
            );
        }
    };
    state.worker.wake();
    callback_page(
        StatusCode::OK,
        "Connected",
        format!(
            "Connected as {}, organizer key {}. Queued registrations are being delivered.",
            record.principal.unwrap_or_default(),
            record
                .organizer_key
                .map(|k| k.to_string())
                .unwrap_or_default()
        ),
    )
}

struct WebinarRow {
    key: String,
    subject: String,
    start: String,
    registrants: String,
    snippet: String,
}

#[derive(Template)]
#[template(path = "admin_webinars.html")]
struct WebinarsPage {
    signed_in: bool,
    active: &'static str,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    webinars: Vec<WebinarRow>,
}

/// `GET /admin/webinars`.
pub(crate) async fn webinars(
    State(state): State<Arc<AppState>>,
    ConsoleOrigin(origin): ConsoleOrigin,
    Admin { csrf }: Admin,
) -> Response {
    let deadline = state.config.lookup_deadline;
    let (list, error) = match state.cache.upcoming(deadline).await {
        Ok(l) => (l, None),
        Err(e) => (Arc::default(), Some(format!("Cannot list webinars: {e}"))),
    };
    let mut rows = Vec::with_capacity(list.len());
    for w in list.iter() {
        let registrants = match state.cache.lookup(w.webinar_key, deadline).await {
            crate::cache::Lookup::Found(info) => info
                .detail
                .number_of_registrants
                .map_or_else(|| "-".into(), |n| n.to_string()),
            _ => "-".into(),
        };
        rows.push(WebinarRow {
            key: w.webinar_key.to_string(),
            start: w.times.first().map(|t| t.start_time.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default(),
            subject: w.subject.clone(),
            registrants,
            snippet: format!(
                "<div data-g2w-webinar=\"{}\"></div>\n<script src=\"{origin}/embed.js\" async></script>",
                w.webinar_key
            ),
        });
    }
    render(&WebinarsPage {
        signed_in: true,
        active: "webinars",
        csrf,
        notice: None,
        error,
        webinars: rows,
    })
}

struct OutboxRow {
    id: String,
    email: String,
    state: String,
    attempts: u32,
    note: String,
    retryable: bool,
}

#[derive(Template)]
#[template(path = "admin_outbox.html")]
struct OutboxPage {
    signed_in: bool,
    active: &'static str,
    csrf: String,
    notice: Option<String>,
    counts: Vec<(String, u64)>,
    email: String,
    heading: String,
    rows: Vec<OutboxRow>,
}

async fn outbox_page(
    state: &AppState,
    csrf: String,
    email: Option<String>,
    notice: Option<String>,
) -> Response {
    let email = email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    let search = email.clone();
    let listed = crate::blocking::off_thread(&state.store, move |s| {
        let counts = s.counts()?;
        let rows = match &search {
            Some(e) => s.list(None, Some(e), 200)?,
            None => {
                let mut rows = s.list(Some(OutboxState::Failed), None, 100)?;
                rows.extend(s.list(Some(OutboxState::Dead), None, 100)?);
                rows
            }
        };
        Ok((counts, rows))
    })
    .await;
    let (counts, rows) = match listed {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("The outbox cannot be read: {e}"),
            )
                .into_response();
        }
    };
    render(&OutboxPage {
        signed_in: true,
        active: "outbox",
        csrf,
        notice,
        counts: counts
            .into_iter()
            .map(|(k, v)| (k.as_str().replace('_', " "), v))
            .collect(),
        heading: match &email {
            Some(e) => format!("Registrations for {e}"),
            None => "Failed and dead registrations".to_owned(),
        },
        email: email.unwrap_or_default(),
        rows: rows
            .into_iter()
            .map(|r| OutboxRow {
                retryable: matches!(r.state, OutboxState::Failed | OutboxState::Dead),
                note: r
                    .join_url
                    .clone()
                    .or(r.last_error.clone())
                    .unwrap_or_default(),
                state: r.state.as_str().replace('_', " "),
                id: r.id,
                email: r.email,
                attempts: r.attempts,
            })
            .collect(),
    })
}

/// `GET /admin/outbox?email=`.
pub(crate) async fn outbox(
    State(state): State<Arc<AppState>>,
    Query(q): Query<OutboxQuery>,
    admin: Admin,
) -> Response {
    let shown = notice(&state, &admin.csrf);
    outbox_page(&state, admin.csrf, q.email, shown).await
}

/// `POST /admin/outbox/{id}/retry` and `…/discard`.
pub(crate) async fn outbox_action(
    State(state): State<Arc<AppState>>,
    Path((id, action)): Path<(String, String)>,
    AdminForm { csrf, .. }: AdminForm,
) -> Response {
    let now = (state.clock)();
    let (target, retry) = (id.clone(), action == "retry");
    if !retry && action != "discard" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let changed = crate::blocking::off_thread(&state.store, move |s| {
        if retry {
            s.retry(&target, now)
        } else {
            s.discard(&target)
        }
    })
    .await;
    let notice = match (changed, retry) {
        (Ok(true), true) => {
            state.worker.wake();
            format!("Registration {id} will be delivered again.")
        }
        (Ok(true), false) => format!("Registration {id} was discarded."),
        (Ok(false), _) => format!("Registration {id} is not failed or dead (any more)."),
        (Err(e), _) => format!("The outbox could not be changed: {e}"),
    };
    done(&state, &csrf, "/admin/outbox", notice)
}

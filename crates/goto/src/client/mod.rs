//! The Webinar v2 client. Every call goes through the shared rate limiter, gets its
//! token from the [`TokenManager`], retries by the [`RetryPolicy`], and turns GoTo's
//! answers into typed values or a [`GotoError`].

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret as _;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use url::Url;

use crate::error::{GotoError, Result};
use crate::keys::{AccountKey, WebinarKey};
use crate::models::{Organizer, RegistrationFields, Webinar, WebinarDetail};
use crate::ratelimit::RateLimiter;
use crate::retry::RetryPolicy;
use crate::tokens::{Access, TokenManager};
use crate::transport::describe_transport;

mod answers;
mod forward;

pub use forward::Raw;

use answers::{classify, read_body};
pub(crate) use answers::{decode, to_json};

/// GoTo's authentication server.
pub const DEFAULT_AUTH_URL: &str = "https://authentication.logmeininc.com";
/// GoTo's API server.
pub const DEFAULT_API_URL: &str = "https://api.getgo.com";
/// GoTo's documented default limit.
pub const DEFAULT_RATE_LIMIT: u32 = 10;

/// A typed GoTo Webinar v2 client for one organizer.
#[derive(Debug, Clone)]
pub struct GotoClient {
    http: reqwest::Client,
    api_url: Url,
    tokens: Arc<TokenManager>,
    limiter: Arc<RateLimiter>,
    retry: RetryPolicy,
    /// One look-up of a login's account at a time (see `account`).
    learning: Arc<tokio::sync::Mutex<()>>,
}

/// The organizer-scoped part of API paths; `execute` fills in the organizer of the
/// token it uses, so a call reads the stored login once, not twice.
pub(crate) const ORGANIZER: &str = "/G2W/rest/v2/organizers/{organizer}";

/// The longest `Retry-After` kept: a hostile or broken header must not stall an account
/// for hours.
const MAX_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// How many 429s in a row a retrying client goes through (each slows the account's
/// pace or waits out GoTo's `Retry-After`) before giving up: GoTo saying 429 for this
/// long is a daily limit, not a pace.
const MAX_THROTTLED: u32 = 100;

fn no_organizer() -> GotoError {
    GotoError::ReauthorizationRequired {
        reason: "the stored login has no organizer key".into(),
        hint: "g2w auth login".into(),
    }
}

/// One API request to make.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'a str, String)>,
    pub body: Option<Vec<u8>>,
    pub registering: bool,
    /// Whether it may be sent again after GoTo may have acted on it (a 5xx or a lost
    /// answer); a call that makes something is repeated only after a 429.
    pub repeatable: bool,
}

impl Call<'_> {
    /// A call that is not a registration, with no query.
    pub fn plain(method: Method, path: String, body: Option<Vec<u8>>) -> Self {
        Self {
            method,
            path,
            query: Vec::new(),
            body,
            registering: false,
            repeatable: true,
        }
    }
}

impl GotoClient {
    /// A client for the API at `api_url`, sharing `limiter` with every other client of
    /// the same account.
    pub fn new(
        http: reqwest::Client,
        api_url: Url,
        tokens: Arc<TokenManager>,
        limiter: Arc<RateLimiter>,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            http,
            api_url,
            tokens,
            limiter,
            retry,
            learning: Arc::default(),
        }
    }

    /// The rate limiter every call of this client's account goes through.
    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// GoTo requests a second this client keeps to, or `None` when unlimited.
    pub fn rate_limit(&self) -> Option<f64> {
        self.limiter.per_second()
    }

    /// The token manager behind this client.
    pub fn tokens(&self) -> &Arc<TokenManager> {
        &self.tokens
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.api_url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{path}"));
        url
    }

    pub(crate) async fn execute(&self, call: Call<'_>) -> Result<(StatusCode, Vec<u8>)> {
        let mut attempts = 0;
        let mut throttled = 0;
        let mut refreshed = false;
        loop {
            let Some((access, budget)) = self.login_and_budget(&mut refreshed).await? else {
                continue;
            };
            self.limiter.acquire(&budget).await;
            let sent_at = (self.limiter.clock())();
            attempts += 1;
            let error = match self.send(&call, &access).await {
                Ok(answer) => return Ok(answer),
                Err(e) => e,
            };
            if let GotoError::RateLimited { retry_after } = &error {
                self.throttled(&budget, *retry_after, sent_at).await;
            }
            match error {
                GotoError::InvalidToken if !refreshed => {
                    refreshed = true;
                    attempts -= 1;
                    self.tokens.refresh_after_rejection(&access.token).await?;
                }
                // The limiter has slowed down: going again costs no attempt and no wait
                // of its own, unless GoTo keeps saying 429 for far too long.
                GotoError::RateLimited { .. }
                    if self.retry.max_attempts > 1 && throttled < MAX_THROTTLED =>
                {
                    throttled += 1;
                    attempts -= 1;
                }
                error if !call.repeatable => return Err(error),
                error => match self.retry.delay(attempts, &error) {
                    Some(wait) => {
                        // Said once, at the first failure: a person waiting on a command
                        // knows why it is quiet; the rest is detail.
                        if attempts == 1 {
                            tracing::warn!(
                                path = %call.path,
                                %error,
                                "GoTo did not answer as expected; retrying (up to {} attempts)",
                                self.retry.max_attempts
                            );
                        } else {
                            tracing::debug!(path = %call.path, ?wait, %error, "retrying GoTo call");
                        }
                        tokio::time::sleep(wait).await;
                    }
                    None => return Err(error),
                },
            }
        }
    }

    /// The login to call with and the budget (its account) to book from; `None` when GoTo
    /// rejected the token while the account was being learned and it was refreshed (once:
    /// `refreshed` says so), so the caller starts over with the new one.
    async fn login_and_budget(&self, refreshed: &mut bool) -> Result<Option<(Access, String)>> {
        let access = self.tokens.access().await?;
        match self.account(&access).await {
            Ok(account) => Ok(Some((access, account.to_string()))),
            Err(GotoError::InvalidToken) if !*refreshed => {
                *refreshed = true;
                self.tokens.refresh_after_rejection(&access.token).await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// GoTo answered 429 to a call of `budget`'s account sent at `sent_at`. The account's
    /// limit, not this call's: every call of the account waits out GoTo's `Retry-After`,
    /// or goes slower when GoTo gave none.
    async fn throttled(
        &self,
        budget: &str,
        retry_after: Option<std::time::Duration>,
        sent_at: crate::Timestamp,
    ) {
        match retry_after {
            Some(wait) => self.limiter.hold(budget, wait.min(MAX_RETRY_AFTER)).await,
            None => self.limiter.slow_down(budget, sent_at).await,
        }
    }

    /// One request of `call` with `access`'s token: GoTo's answer, or what went wrong.
    async fn send(&self, call: &Call<'_>, access: &Access) -> Result<(StatusCode, Vec<u8>)> {
        let path = if call.path.contains("{organizer}") {
            let organizer = access.organizer.ok_or_else(no_organizer)?;
            call.path.replace("{organizer}", &organizer.to_string())
        } else {
            call.path.clone()
        };
        let mut url = self.url(&path);
        if !call.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&call.query);
        }
        let body = call.body.as_deref().map(|b| ("application/json", b));
        let answer = self.send_raw(&call.method, url, body, access).await?;
        if answer.status.is_success() {
            return Ok((answer.status, answer.body));
        }
        Err(classify(
            answer.status,
            &answer.headers,
            &answer.body,
            call.registering,
        ))
    }

    /// One request to `url` with `access`'s token: GoTo's answer as it came, whatever its
    /// status, or why none came.
    async fn send_raw(
        &self,
        method: &Method,
        url: Url,
        body: Option<(&str, &[u8])>,
        access: &Access,
    ) -> Result<Raw> {
        let mut request = self
            .http
            .request(method.clone(), url)
            .bearer_auth(access.token.expose_secret())
            // application/json keeps custom-question answers on create registrant.
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some((content_type, body)) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.to_vec());
        }
        let response = request
            .send()
            .await
            .map_err(|e| GotoError::Transport(describe_transport(&e)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_body(response).await?;
        if status.is_success() {
            self.tokens.accepted(&access.token);
        }
        Ok(Raw {
            status,
            headers,
            body,
        })
    }

    /// The GoTo account of this client's login, asked of GoTo once if the login does not
    /// know it yet.
    ///
    /// # Errors
    /// The login is unusable, or GoTo or the store failed.
    pub async fn account_key(&self) -> Result<AccountKey> {
        let access = self.tokens.access().await?;
        self.account(&access).await
    }

    /// The GoTo account whose budget `access`'s calls book from. A login stored before
    /// g2w kept the account learns it here, once (one call to `/admin/rest/v1/me`, booked
    /// from no budget since none is known yet), and keeps it.
    async fn account(&self, access: &Access) -> Result<AccountKey> {
        if let Some(account) = access.account {
            return Ok(account);
        }
        let _one_at_a_time = self.learning.lock().await;
        if let Some(account) = self.tokens.record().await?.account_key {
            return Ok(account);
        }
        let me = self.me_unbooked(access).await?;
        let account = me
            .account_key
            .unwrap_or_else(|| AccountKey::new(me.key.get()));
        self.tokens.remember_account(account).await?;
        Ok(account)
    }

    /// `/admin/rest/v1/me`, outside any budget.
    async fn me_unbooked(&self, access: &Access) -> Result<Organizer> {
        let call = Call::plain(Method::GET, "/admin/rest/v1/me".into(), None);
        let (_, body) = self.send(&call, access).await?;
        decode(&body, "me")
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: String,
        query: Vec<(&str, String)>,
        what: &str,
    ) -> Result<T> {
        let (_, body) = self
            .execute(Call {
                method: Method::GET,
                path,
                query,
                body: None,
                registering: false,
                repeatable: true,
            })
            .await?;
        decode(&body, what)
    }

    /// Stores a fresh login for this client's profile and completes it with the
    /// organizer and its account: from the token answer when GoTo named both, else from
    /// `/admin/rest/v1/me` (an organizer whose account GoTo does not name books from a
    /// budget of its own). Returns what was stored.
    ///
    /// # Errors
    /// Store failures, or GoTo refusing the look-up.
    pub async fn save_login(&self, mut record: crate::TokenRecord) -> Result<crate::TokenRecord> {
        self.tokens.save(&record).await?;
        if record.organizer_key.is_some() && record.account_key.is_some() {
            return Ok(record);
        }
        // Before the account is known no budget can be booked: one call, on its own.
        let me = self.me_unbooked(&self.tokens.access().await?).await?;
        // The look-up may have refreshed the tokens: complete what is stored now.
        record = self.tokens.record().await?;
        record.organizer_key = Some(me.key);
        record.account_key = me
            .account_key
            .or(record.account_key)
            .or(Some(AccountKey::new(me.key.get())));
        if record.principal.is_none() {
            record.principal = me.email;
        }
        self.tokens.save(&record).await?;
        Ok(record)
    }

    /// The organizer behind the token (`GET /admin/rest/v1/me`).
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn me(&self) -> Result<Organizer> {
        self.get("/admin/rest/v1/me".into(), Vec::new(), "me").await
    }

    /// Every webinar with a session starting between `from` and `to`, all pages.
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn webinars(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Webinar>> {
        let path = format!("{}/webinars", ORGANIZER);
        let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let range = vec![("fromTime", fmt(from)), ("toTime", fmt(to))];
        self.every_page(path, range, "webinars", 200).await
    }

    /// Every item of a paged list (`{_embedded: {<field>: [...]}, page: {totalPages}}`),
    /// fetching `size` per page.
    pub(crate) async fn every_page<T: DeserializeOwned>(
        &self,
        path: String,
        query: Vec<(&str, String)>,
        field: &str,
        size: u32,
    ) -> Result<Vec<T>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct PageInfo {
            total_pages: u64,
        }
        #[derive(serde::Deserialize)]
        struct Envelope {
            #[serde(rename = "_embedded", default)]
            embedded: Option<Map<String, Value>>,
            page: Option<PageInfo>,
        }
        let mut all = Vec::new();
        let mut page = 0_u64;
        loop {
            let mut paged = query.clone();
            paged.push(("page", page.to_string()));
            paged.push(("size", size.to_string()));
            let envelope: Envelope = self.get(path.clone(), paged, field).await?;
            let items = envelope
                .embedded
                .and_then(|mut e| e.remove(field))
                .unwrap_or(Value::Array(Vec::new()));
            let items: Vec<T> = decode(&serde_json::to_vec(&items).unwrap_or_default(), field)?;
            let empty = items.is_empty();
            all.extend(items);
            page += 1;
            let total = envelope.page.map_or(0, |p| p.total_pages);
            if empty || page >= total {
                return Ok(all);
            }
        }
    }

    /// One webinar.
    ///
    /// # Errors
    /// [`GotoError::NotFound`] for unknown or cancelled webinars.
    pub async fn webinar(&self, webinar: WebinarKey) -> Result<WebinarDetail> {
        let path = format!("{}/webinars/{webinar}", ORGANIZER);
        self.get(path, Vec::new(), "webinar").await
    }

    /// The webinar's registration form.
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn registration_fields(&self, webinar: WebinarKey) -> Result<RegistrationFields> {
        let path = format!("{}/webinars/{webinar}/registrants/fields", ORGANIZER);
        self.get(path, Vec::new(), "fields").await
    }
}

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
use crate::keys::WebinarKey;
use crate::models::{Organizer, RegistrationFields, Webinar, WebinarDetail};
use crate::ratelimit::RateLimiter;
use crate::retry::RetryPolicy;
use crate::tokens::TokenManager;
use crate::transport::describe_transport;

mod answers;

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
}

/// The organizer-scoped part of API paths; `execute` fills in the organizer of the
/// token it uses, so a call reads the stored login once, not twice.
pub(crate) const ORGANIZER: &str = "/G2W/rest/v2/organizers/{organizer}";

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
        }
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
        let mut refreshed = false;
        loop {
            self.limiter.acquire().await;
            let (token, organizer) = self.tokens.access().await?;
            let path = if call.path.contains("{organizer}") {
                let organizer = organizer.ok_or_else(no_organizer)?;
                call.path.replace("{organizer}", &organizer.to_string())
            } else {
                call.path.clone()
            };
            attempts += 1;
            let mut request = self
                .http
                .request(call.method.clone(), self.url(&path))
                .bearer_auth(token.expose_secret())
                // application/json keeps custom-question answers on create registrant.
                .header(reqwest::header::ACCEPT, "application/json");
            if !call.query.is_empty() {
                request = request.query(&call.query);
            }
            if let Some(body) = &call.body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let error = match request.send().await {
                Err(e) => GotoError::Transport(describe_transport(&e)),
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match read_body(response).await {
                        Err(e) => e,
                        Ok(body) if status.is_success() => {
                            self.tokens.accepted(&token);
                            return Ok((status, body));
                        }
                        Ok(body) => classify(status, &headers, &body, call.registering),
                    }
                }
            };
            if let GotoError::RateLimited {
                retry_after: Some(wait),
            } = &error
            {
                // The account's limit, not this call's: every call waits it out.
                self.limiter
                    .hold((*wait).min(self.retry.max_retry_after))
                    .await;
            }
            match error {
                GotoError::InvalidToken if !refreshed => {
                    refreshed = true;
                    attempts -= 1;
                    self.tokens.refresh_after_rejection(&token).await?;
                }
                error if !call.repeatable && !matches!(error, GotoError::RateLimited { .. }) => {
                    return Err(error);
                }
                error => match self.retry.delay(attempts, &error) {
                    Some(wait) => {
                        tracing::debug!(path = %call.path, ?wait, %error, "retrying GoTo call");
                        tokio::time::sleep(wait).await;
                    }
                    None => return Err(error),
                },
            }
        }
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
    /// organizer: from the token answer when GoTo named it, else from
    /// `/admin/rest/v1/me`. Returns what was stored.
    ///
    /// # Errors
    /// Store failures, or GoTo refusing the look-up.
    pub async fn save_login(&self, mut record: crate::TokenRecord) -> Result<crate::TokenRecord> {
        self.tokens.save(&record).await?;
        if record.organizer_key.is_some() {
            return Ok(record);
        }
        let me = self.me().await?;
        // The look-up may have refreshed the tokens: complete what is stored now.
        record = self.tokens.record().await?;
        record.organizer_key = Some(me.key);
        record.account_key = me.account_key.or(record.account_key);
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

//! The Webinar v2 client. Every call goes through the shared rate limiter, gets its
//! token from the [`TokenManager`], retries by the [`RetryPolicy`], and turns GoTo's
//! answers into typed values or a [`GotoError`].

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use url::Url;

use crate::error::{GotoError, InvalidField, Result};
use crate::keys::{RegistrantKey, WebinarKey};
use crate::models::{
    NewRegistrant, Organizer, Registrant, RegistrantCreated, RegistrantDetail, RegistrationFields,
    Webinar, WebinarDetail,
};
use crate::ratelimit::RateLimiter;
use crate::retry::RetryPolicy;
use crate::tokens::TokenManager;
use crate::transport::describe_transport;

/// GoTo's authentication server.
pub const DEFAULT_AUTH_URL: &str = "https://authentication.logmeininc.com";
/// GoTo's API server.
pub const DEFAULT_API_URL: &str = "https://api.getgo.com";
/// GoTo's documented default limit.
pub const DEFAULT_RATE_LIMIT: u32 = 10;
/// The largest body read from GoTo; anything bigger is refused, not buffered.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// A typed GoTo Webinar v2 client for one organizer.
#[derive(Debug, Clone)]
pub struct GotoClient {
    http: reqwest::Client,
    api_url: Url,
    tokens: Arc<TokenManager>,
    limiter: Arc<RateLimiter>,
    retry: RetryPolicy,
}

/// The part of an error answer GoTo sends, in either of its two shapes.
#[derive(Debug, Default)]
struct ErrorBody {
    code: Option<String>,
    message: String,
    registrant_key: Option<RegistrantKey>,
    join_url: Option<String>,
    invalid_fields: Vec<InvalidField>,
    invalid_token: bool,
}

fn parse_error_body(bytes: &[u8]) -> ErrorBody {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(bytes) else {
        return ErrorBody {
            message: String::from_utf8_lossy(bytes).chars().take(300).collect(),
            ..ErrorBody::default()
        };
    };
    let text = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_owned);
    let invalid_fields = map
        .get("invalidFields")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| match item {
                    Value::String(name) => Some(InvalidField {
                        field: name.clone(),
                        question_key: None,
                        reason: None,
                    }),
                    Value::Object(o) => Some(InvalidField {
                        field: o
                            .get("field")
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                            .to_owned(),
                        question_key: o
                            .get("questionKey")
                            .and_then(|k| serde_json::from_value(k.clone()).ok()),
                        reason: o.get("reason").and_then(Value::as_str).map(str::to_owned),
                    }),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    ErrorBody {
        invalid_token: text("int_err_code").as_deref() == Some("InvalidToken"),
        code: text("errorCode").or_else(|| text("int_err_code")),
        message: text("description")
            .or_else(|| text("msg"))
            .unwrap_or_default(),
        registrant_key: map
            .get("registrantKey")
            .and_then(|k| serde_json::from_value(k.clone()).ok()),
        join_url: text("joinUrl"),
        invalid_fields,
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Turns a non-2xx answer into the error a caller can act on.
fn classify(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    registering: bool,
) -> GotoError {
    let e = parse_error_body(body);
    match status.as_u16() {
        401 => GotoError::InvalidToken,
        403 if e.invalid_token => GotoError::InvalidToken,
        403 => GotoError::Forbidden {
            code: e.code,
            message: e.message,
        },
        404 => GotoError::NotFound { message: e.message },
        409 if registering => GotoError::AlreadyRegistered {
            registrant_key: e.registrant_key,
            join_url: e.join_url,
        },
        400 if registering || e.code.as_deref() == Some("RegistrationInvalid") => {
            GotoError::RegistrationInvalid {
                fields: e.invalid_fields,
                message: e.message,
            }
        }
        429 => GotoError::RateLimited {
            retry_after: retry_after(headers),
        },
        s if s >= 500 => GotoError::Upstream {
            status: s,
            message: e.message,
        },
        s => GotoError::BadRequest {
            status: s,
            code: e.code,
            message: e.message,
        },
    }
}

/// Parses a body, naming the field that failed.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| GotoError::Decode {
        path: format!("{what}.{}", e.path()),
        message: e.inner().to_string(),
    })
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

    /// Every registrant of a webinar (GoTo's condensed list).
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn registrants(&self, webinar: WebinarKey) -> Result<Vec<Registrant>> {
        let path = format!("{}/webinars/{webinar}/registrants", ORGANIZER);
        let (_, body) = self
            .execute(Call {
                method: Method::GET,
                path,
                query: Vec::new(),
                body: None,
                registering: false,
            })
            .await?;
        // Newer GoTo versions may wrap the list; accept both shapes.
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) if map.contains_key("data") => {
                let data = serde_json::to_vec(&map["data"]).unwrap_or_default();
                decode(&data, "registrants.data")
            }
            _ => decode(&body, "registrants"),
        }
    }

    /// One registrant with everything GoTo keeps.
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn registrant(
        &self,
        webinar: WebinarKey,
        registrant: RegistrantKey,
    ) -> Result<RegistrantDetail> {
        let path = format!("{}/webinars/{webinar}/registrants/{registrant}", ORGANIZER);
        self.get(path, Vec::new(), "registrant").await
    }

    /// Every registrant of a webinar with everything GoTo keeps (answers included): one
    /// call for the list, then one per registrant.
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn registrant_details(&self, webinar: WebinarKey) -> Result<Vec<RegistrantDetail>> {
        let list = self.registrants(webinar).await?;
        let mut details = Vec::with_capacity(list.len());
        for r in &list {
            details.push(self.registrant(webinar, r.registrant_key).await?);
        }
        Ok(details)
    }

    /// The registrant with this email (case-insensitive), if any.
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn find_registrant(
        &self,
        webinar: WebinarKey,
        email: &str,
    ) -> Result<Option<Registrant>> {
        let all = self.registrants(webinar).await?;
        Ok(all
            .into_iter()
            .find(|r| r.email.eq_ignore_ascii_case(email.trim())))
    }

    /// Registers someone, always with `Accept: application/json` so that custom
    /// answers are kept. A 409 comes back as [`GotoError::AlreadyRegistered`].
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn create_registrant(
        &self,
        webinar: WebinarKey,
        registrant: &NewRegistrant,
        resend_confirmation: bool,
    ) -> Result<RegistrantCreated> {
        let path = format!("{}/webinars/{webinar}/registrants", ORGANIZER);
        let body = to_json(registrant)?;
        let query = vec![("resendConfirmation", resend_confirmation.to_string())];
        let (_, body) = self
            .execute(Call {
                method: Method::POST,
                path,
                query,
                body: Some(body),
                registering: true,
            })
            .await?;
        decode(&body, "registrant")
    }

    /// Removes a registrant (only while the webinar is ahead).
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn delete_registrant(
        &self,
        webinar: WebinarKey,
        registrant: RegistrantKey,
    ) -> Result<()> {
        let path = format!("{}/webinars/{webinar}/registrants/{registrant}", ORGANIZER);
        self.execute(Call {
            method: Method::DELETE,
            path,
            query: Vec::new(),
            body: None,
            registering: false,
        })
        .await
        .map(|_| ())
    }
}

pub(crate) fn to_json(value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| GotoError::Decode {
        path: "request".into(),
        message: e.to_string(),
    })
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(GotoError::Decode {
                        path: "body".into(),
                        message: format!("answer larger than {MAX_BODY} bytes"),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(GotoError::Transport(describe_transport(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> reqwest::header::HeaderMap {
        reqwest::header::HeaderMap::new()
    }

    #[test]
    fn answers_map_to_the_errors_callers_decide_on() {
        let e = classify(
            StatusCode::FORBIDDEN,
            &headers(),
            br#"{"int_err_code":"InvalidToken","msg":"Invalid token passed"}"#,
            false,
        );
        assert!(matches!(e, GotoError::InvalidToken));
        let e = classify(
            StatusCode::FORBIDDEN,
            &headers(),
            br#"{"errorCode":"RegistrationLimitReached","description":"full"}"#,
            true,
        );
        assert!(
            matches!(e, GotoError::Forbidden { ref code, .. } if code.as_deref() == Some("RegistrationLimitReached"))
        );
        let e = classify(StatusCode::CONFLICT, &headers(), br#"{"errorCode":"DuplicateRegistrant","registrantKey":9007199254740993,"joinUrl":"j"}"#, true);
        assert!(
            matches!(e, GotoError::AlreadyRegistered { registrant_key: Some(k), .. } if k.get() == 9_007_199_254_740_993)
        );
        let e = classify(StatusCode::BAD_REQUEST, &headers(), br#"{"errorCode":"RegistrationInvalid","invalidFields":["email",{"field":"responses","questionKey":"7","reason":"required"}]}"#, true);
        let GotoError::RegistrationInvalid { fields, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].question_key.map(crate::QuestionKey::get), Some(7));
        let mut h = headers();
        h.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert!(
            matches!(classify(StatusCode::TOO_MANY_REQUESTS, &h, b"", false), GotoError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(3))
        );
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, &headers(), b"<html>", false),
            GotoError::Upstream { status: 502, .. }
        ));
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, &headers(), b"", false),
            GotoError::NotFound { .. }
        ));
        assert!(matches!(
            classify(StatusCode::METHOD_NOT_ALLOWED, &headers(), b"{}", false),
            GotoError::BadRequest { status: 405, .. }
        ));
    }

    #[test]
    fn decode_errors_name_the_field() {
        let e = decode::<Vec<Registrant>>(
            br#"[{"registrantKey":1,"email":"a"},{"registrantKey":1.5,"email":"b"}]"#,
            "registrants",
        )
        .unwrap_err();
        let GotoError::Decode { path, .. } = e else {
            panic!()
        };
        assert_eq!(path, "registrants.[1].registrantKey");
    }
}

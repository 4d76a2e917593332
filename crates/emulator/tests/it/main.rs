//! Integration tests: each starts an emulator on port 0 and talks HTTP to it, as a
#![allow(clippy::unwrap_used)]
//! GoTo client would.

mod api;
mod attendance;
mod control;
mod fidelity;
mod oauth;
mod organizers;
mod series;
mod spec;

use g2w_emulator::{EmulatorConfig, EmulatorHandle, spawn};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A running emulator and an HTTP client that does not follow redirects.
pub(crate) struct TestGoto {
    pub(crate) emu: EmulatorHandle,
    pub(crate) http: reqwest::Client,
}

/// A status and a parsed JSON body (Null when the body is empty or not JSON).
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) text: String,
    pub(crate) json: Value,
}

impl TestGoto {
    pub(crate) async fn start() -> Self {
        Self::start_with(EmulatorConfig::default()).await
    }

    pub(crate) async fn start_with(config: EmulatorConfig) -> Self {
        let emu = spawn(config).await.expect("emulator starts");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client builds");
        Self { emu, http }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.base_url())
    }

    pub(crate) fn organizer(&self) -> u64 {
        self.emu.default_organizer_key()
    }

    /// `/G2W/rest/v2/organizers/{default organizer}` + `rest`.
    pub(crate) fn org_path(&self, rest: &str) -> String {
        format!("/G2W/rest/v2/organizers/{}{rest}", self.organizer())
    }

    pub(crate) async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body readable");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        Self::reply(request.send().await.expect("request sent")).await
    }

    pub(crate) async fn get(&self, token: &str, path: &str) -> Reply {
        self.send(self.http.get(self.url(path)).bearer_auth(token))
            .await
    }

    pub(crate) async fn post_json(&self, token: &str, path: &str, body: &Value) -> Reply {
        self.send(self.http.post(self.url(path)).bearer_auth(token).json(body))
            .await
    }

    pub(crate) async fn put_json(&self, token: &str, path: &str, body: &Value) -> Reply {
        self.send(self.http.put(self.url(path)).bearer_auth(token).json(body))
            .await
    }

    /// Adds an organizer through the control API; `account` joins an existing account.
    pub(crate) async fn add_organizer(&self, email: &str, account: Option<&str>) -> (u64, u64) {
        let mut body = json!({"email": email});
        if let Some(account) = account {
            body["accountKey"] = json!(account);
        }
        let reply = self.control("/organizers", &body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        (
            key(&reply.json["organizerKey"]),
            key(&reply.json["accountKey"]),
        )
    }

    pub(crate) async fn delete(&self, token: &str, path: &str) -> Reply {
        self.send(self.http.delete(self.url(path)).bearer_auth(token))
            .await
    }

    /// POSTs a form to the token endpoint with HTTP Basic client authentication.
    pub(crate) async fn token_request(&self, pairs: &[(&str, &str)]) -> Reply {
        self.token_request_as("demo-client", "demo-secret", pairs)
            .await
    }

    pub(crate) async fn token_request_as(
        &self,
        id: &str,
        secret: &str,
        pairs: &[(&str, &str)],
    ) -> Reply {
        let body = form(pairs);
        self.send(
            self.http
                .post(self.url("/oauth/token"))
                .basic_auth(id, Some(secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    pub(crate) async fn control(&self, path: &str, body: &Value) -> Reply {
        self.send(
            self.http
                .post(self.url(&format!("/_emulator{path}")))
                .json(body),
        )
        .await
    }

    /// A personal access token for the default organizer, minted by the control API.
    pub(crate) async fn pat(&self) -> String {
        self.control("/pats", &json!({})).await.json["pat"]
            .as_str()
            .expect("pat minted")
            .to_owned()
    }

    /// An access token for the default organizer, through a personal access token.
    pub(crate) async fn token(&self) -> String {
        let pat = self.pat().await;
        self.token_from_pat(&pat).await
    }

    /// An access token for `organizer`, through a personal access token of theirs.
    pub(crate) async fn token_for(&self, organizer: u64) -> String {
        let minted = self
            .control("/pats", &json!({"organizerKey": organizer.to_string()}))
            .await;
        assert_eq!(minted.status, StatusCode::CREATED, "{}", minted.text);
        let pat = minted.json["pat"].as_str().expect("pat minted").to_owned();
        self.token_from_pat(&pat).await
    }

    async fn token_from_pat(&self, pat: &str) -> String {
        let reply = self
            .token_request(&[("grant_type", "personal_access_token"), ("pat", pat)])
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json["access_token"]
            .as_str()
            .expect("access token")
            .to_owned()
    }

    /// Creates a webinar through the control API and returns its key.
    pub(crate) async fn webinar(&self, spec: Value) -> (u64, Value) {
        let reply = self.control("/webinars", &spec).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let key = reply.json["webinarKey"]
            .as_str()
            .and_then(|k| k.parse().ok())
            .expect("key");
        (key, reply.json)
    }

    pub(crate) fn stats(&self) -> g2w_emulator::Stats {
        self.emu.stats()
    }
}

/// A key the control API gave as a string of digits.
pub(crate) fn key(value: &Value) -> u64 {
    value
        .as_str()
        .and_then(|k| k.parse().ok())
        .expect("a key as a string of digits")
}

pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The query parameters of a redirect's `Location`.
pub(crate) fn location_query(reply: &Reply) -> (String, std::collections::HashMap<String, String>) {
    let location = reply
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned();
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    let params = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    (location, params)
}

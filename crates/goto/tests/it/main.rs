//! The GoTo client and token manager against the emulator.
#![allow(clippy::unwrap_used, missing_docs)]

mod client;
mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use g2w_emulator::{EmulatorConfig, EmulatorHandle};
use g2w_goto::{
    ClientCredentials, Clock, GotoClient, OAuthClient, RateLimiter, RetryPolicy, SecretString,
    StoreFailure, Timestamp, TokenManager, TokenRecord, TokenStore, Url,
};
use serde_json::{Value, json};

/// A token store in memory, with the same lease semantics as the real one.
#[derive(Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, TokenRecord>>,
    locks: Mutex<HashMap<String, (String, Timestamp)>>,
}

impl MemoryStore {
    pub fn get(&self, profile: &str) -> Option<TokenRecord> {
        self.records.lock().unwrap().get(profile).cloned()
    }

    pub fn put(&self, profile: &str, record: &TokenRecord) {
        self.records
            .lock()
            .unwrap()
            .insert(profile.to_owned(), record.clone());
    }
}

#[async_trait::async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self, profile: &str) -> Result<Option<TokenRecord>, StoreFailure> {
        Ok(self.get(profile))
    }

    async fn save(&self, profile: &str, record: &TokenRecord) -> Result<(), StoreFailure> {
        self.put(profile, record);
        Ok(())
    }

    async fn try_lock_refresh(
        &self,
        profile: &str,
        holder: &str,
        now: Timestamp,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreFailure> {
        let mut locks = self.locks.lock().unwrap();
        match locks.get(profile) {
            Some((h, exp)) if h != holder && *exp > now => Ok(false),
            _ => {
                locks.insert(profile.to_owned(), (holder.to_owned(), now + ttl));
                Ok(true)
            }
        }
    }

    async fn unlock_refresh(&self, profile: &str, holder: &str) -> Result<(), StoreFailure> {
        let mut locks = self.locks.lock().unwrap();
        if locks.get(profile).is_some_and(|(h, _)| h == holder) {
            locks.remove(profile);
        }
        Ok(())
    }

    async fn save_account(
        &self,
        profile: &str,
        account: g2w_goto::AccountKey,
    ) -> Result<(), StoreFailure> {
        if let Some(record) = self.records.lock().unwrap().get_mut(profile) {
            record.account_key = Some(account);
        }
        Ok(())
    }
}

/// An emulator, a logged-in profile and a client, all on the emulator's clock.
pub struct Fixture {
    pub emu: Arc<EmulatorHandle>,
    pub store: Arc<MemoryStore>,
    pub tokens: Arc<TokenManager>,
    pub client: GotoClient,
    pub http: reqwest::Client,
}

pub const REDIRECT: &str = "http://127.0.0.1:45678/callback";

pub fn oauth(emu: &EmulatorHandle) -> OAuthClient {
    OAuthClient::new(
        g2w_goto::http_client().unwrap(),
        Url::parse(emu.base_url()).unwrap(),
        ClientCredentials {
            client_id: "demo-client".into(),
            client_secret: SecretString::from("demo-secret"),
        },
    )
}

/// Plays the browser against an auto-approving emulator and returns the code.
pub async fn authorize(http: &reqwest::Client, url: &Url) -> String {
    let response = http.get(url.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

impl Fixture {
    pub async fn start() -> Self {
        Self::start_with(
            EmulatorConfig {
                auto_approve: true,
                rate_limit: 0,
                ..Default::default()
            },
            true,
        )
        .await
    }

    /// `emulator_clock`: the manager sees the emulator's time (proactive refresh);
    /// otherwise it keeps real time and learns of expiry from 403s.
    pub async fn start_with(config: EmulatorConfig, emulator_clock: bool) -> Self {
        let emu = Arc::new(g2w_emulator::spawn(config).await.unwrap());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let oauth = oauth(&emu);
        let request = oauth.authorize(REDIRECT, true);
        let code = authorize(&http, &request.url).await;
        let answer = oauth
            .exchange_code(&code, REDIRECT, request.pkce_verifier.as_ref())
            .await
            .unwrap();
        let clock: Clock = if emulator_clock {
            let e = emu.clone();
            Arc::new(move || Timestamp::from_secs(e.now()))
        } else {
            g2w_goto::system_clock()
        };
        let mut record = TokenRecord {
            client_id: "demo-client".into(),
            ..TokenRecord::default()
        };
        record.apply(answer, clock());
        record.organizer_key = Some(g2w_goto::OrganizerKey::new(emu.default_organizer_key()));
        // As `g2w auth login` stores it: the account whose budget calls book from.
        record.account_key = Some(g2w_goto::AccountKey::new(emu.default_organizer_key()));
        let store = Arc::new(MemoryStore::default());
        store.put("default", &record);
        let tokens = Arc::new(TokenManager::new(store.clone(), oauth, "default", clock));
        let client = GotoClient::new(
            g2w_goto::http_client().unwrap(),
            Url::parse(emu.base_url()).unwrap(),
            tokens.clone(),
            Arc::new(RateLimiter::new(0, 1)),
            RetryPolicy {
                base: std::time::Duration::from_millis(1),
                cap: std::time::Duration::from_millis(5),
                max_retry_after: std::time::Duration::from_millis(20),
                ..RetryPolicy::default()
            },
        );
        Self {
            emu,
            store,
            tokens,
            client,
            http,
        }
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/_emulator{path}", self.emu.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        r.json().await.unwrap_or(Value::Null)
    }

    pub async fn webinar(&self, spec: Value) -> (g2w_goto::WebinarKey, Value) {
        let v = self.control("/webinars", spec).await;
        (v["webinarKey"].as_str().unwrap().parse().unwrap(), v)
    }

    pub async fn fault(&self, spec: Value) {
        self.control("/faults", spec).await;
    }

    pub fn record(&self) -> TokenRecord {
        self.store.get("default").unwrap()
    }
}

pub fn person(email: &str) -> g2w_goto::NewRegistrant {
    g2w_goto::NewRegistrant {
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        email: email.into(),
        ..Default::default()
    }
}

pub fn unused() -> Value {
    json!(null)
}

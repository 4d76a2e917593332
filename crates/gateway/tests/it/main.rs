//! The gateway over HTTP, against the emulator, with the worker stepped by hand.
#![allow(clippy::unwrap_used, missing_docs)]

mod admin;
mod architecture;
mod bad_days;
mod delivery;
mod edge;
mod frozen_db;
mod intake;
mod keys;
mod organizers;
mod pacing;
mod pages;
mod pictures;
mod series;
mod sources;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use g2w_emulator::{EmulatorConfig, EmulatorHandle};
use g2w_gateway::{Gateway, GatewayConfig, Step, Worker};
use g2w_goto::{
    ClientCredentials, GotoClient, OAuthClient, RateLimiter, RetryPolicy, SecretString,
    TokenManager, TokenRecord, Url,
};
use g2w_store::{OutboxState, Store};
use serde_json::{Value, json};

pub struct TestApp {
    pub emu: Arc<EmulatorHandle>,
    pub store: Arc<Store>,
    pub worker: Arc<Worker>,
    /// Every organizer's delivery engine, by profile (the first is `worker`).
    pub workers: Vec<(String, Arc<Worker>)>,
    /// The second organizer's key, when the gateway serves two (profile `second`).
    pub second: Option<u64>,
    /// The forwarding engine, when a forward URL is configured.
    pub forwarder: Option<Arc<g2w_gateway::Forwarder>>,
    pub base: String,
    pub http: reqwest::Client,
    pub clock_offset: Arc<AtomicI64>,
    pub tokens: Arc<TokenManager>,
    /// The gateway being served (a clone), for what the CLI does beside it.
    pub gateway: Gateway,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
    pub text: String,
}

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

/// How far the test moved the gateway's clock.
fn millis(offset: i64) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(offset).unwrap_or(0))
}

/// Whether this run keeps each test's state in PostgreSQL (`G2W_GATEWAY_TESTS_ON=postgres`,
/// which CI sets for a second run of this suite) rather than a SQLite file.
pub fn on_postgres() -> bool {
    std::env::var("G2W_GATEWAY_TESTS_ON").is_ok_and(|v| v == "postgres")
}

/// A fresh store for one test: a SQLite file in `dir`, or a new PostgreSQL database.
pub async fn fresh_store(dir: &std::path::Path) -> Arc<Store> {
    if on_postgres() {
        let url = g2w_store::test_database_url()
            .expect("G2W_GATEWAY_TESTS_ON=postgres needs G2W_TEST_DATABASE_URL");
        return Arc::new(
            Store::postgres(&url, &g2w_store::SecretKey::generate())
                .await
                .unwrap(),
        );
    }
    Arc::new(Store::open_in(dir, None).await.unwrap())
}

/// Logs in to the emulator (authorization code, auto-approved) and stores the tokens.
pub async fn login(emu: &EmulatorHandle, store: &Store) {
    login_as(emu, store, "default", emu.default_organizer_key(), None).await;
}

/// Logs in through the consent page (approved at once) as the organizer `hint` names
/// by email (the default one without), and stores the login as `profile`.
pub async fn login_as(
    emu: &EmulatorHandle,
    store: &Store,
    profile: &str,
    organizer_key: u64,
    hint: Option<&str>,
) {
    let oauth = oauth(emu);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let request = oauth.authorize("http://127.0.0.1:1/cb", true);
    let mut url = request.url.clone();
    if let Some(hint) = hint {
        url.query_pairs_mut().append_pair("login_hint", hint);
    }
    let response = http.get(url.as_str()).send().await.unwrap();
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let answer = oauth
        .exchange_code(
            &code,
            "http://127.0.0.1:1/cb",
            request.pkce_verifier.as_ref(),
        )
        .await
        .unwrap();
    let mut record = TokenRecord {
        client_id: "demo-client".into(),
        client_secret: Some(SecretString::from("demo-secret")),
        organizer_key: Some(g2w_goto::OrganizerKey::new(organizer_key)),
        ..TokenRecord::default()
    };
    record.apply(answer, g2w_goto::Timestamp::now());
    store.save_profile(profile, &record).await.unwrap();
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut GatewayConfig)) -> Self {
        Self::start_limited(0, tune).await
    }

    /// With GoTo's limit of `goto_rate` requests a second on both sides: the emulator
    /// answers 429 past it, and the gateway's client keeps under it.
    pub async fn start_limited(goto_rate: u32, tune: impl FnOnce(&mut GatewayConfig)) -> Self {
        Self::start_on(None, goto_rate, tune).await
    }

    /// With the worker, keep-alive, forwarder and reconciler running by themselves,
    /// as in `g2w serve`, instead of stepped by the test.
    pub async fn start_running(tune: impl FnOnce(&mut GatewayConfig)) -> Self {
        Self::start_full(None, 0, true, tune).await
    }

    /// Running by itself, keeping `rate` GoTo calls a second (on the gateway's clock,
    /// which the test moves) against an emulator with no limit of its own: what the
    /// gateway's pace does is all there is.
    pub async fn start_paced(rate: u32, tune: impl FnOnce(&mut GatewayConfig)) -> Self {
        Self::start_with_organizers(None, (0, rate), true, 1, tune).await
    }

    /// On `store` (a PostgreSQL one, say) instead of a fresh SQLite file.
    pub async fn start_on(
        store: Option<Arc<Store>>,
        goto_rate: u32,
        tune: impl FnOnce(&mut GatewayConfig),
    ) -> Self {
        Self::start_full(store, goto_rate, false, tune).await
    }

    /// Serving two organizers, each its own account: the emulator's default one as
    /// profile `default`, and another (`sam@example.com`) as profile `second`.
    pub async fn start_two(tune: impl FnOnce(&mut GatewayConfig)) -> Self {
        Self::start_with_organizers(None, (0, 0), false, 2, tune).await
    }

    /// [`Self::start_two`] with GoTo's limit of `goto_rate` requests a second per
    /// account on both sides, and delivery running by itself as in `g2w serve`.
    pub async fn start_two_running(goto_rate: u32, tune: impl FnOnce(&mut GatewayConfig)) -> Self {
        Self::start_with_organizers(None, (goto_rate, goto_rate), true, 2, tune).await
    }

    async fn start_full(
        store: Option<Arc<Store>>,
        goto_rate: u32,
        running: bool,
        tune: impl FnOnce(&mut GatewayConfig),
    ) -> Self {
        Self::start_with_organizers(store, (goto_rate, goto_rate), running, 1, tune).await
    }

    /// `rates`: GoTo's limit at the emulator, and the one the gateway keeps.
    async fn start_with_organizers(
        store: Option<Arc<Store>>,
        (goto_rate, gateway_rate): (u32, u32),
        running: bool,
        organizers: usize,
        tune: impl FnOnce(&mut GatewayConfig),
    ) -> Self {
        let emu = Arc::new(
            g2w_emulator::spawn(EmulatorConfig {
                auto_approve: true,
                rate_limit: goto_rate,
                ..Default::default()
            })
            .await
            .unwrap(),
        );
        let dir = tempfile::tempdir().unwrap();
        let store = match store {
            Some(store) => store,
            None => fresh_store(dir.path()).await,
        };
        login(&emu, &store).await;
        let second = if organizers > 1 {
            let added: Value = reqwest::Client::new()
                .post(format!("{}/_emulator/organizers", emu.base_url()))
                .json(&json!({"email": "sam@example.com"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let key: u64 = added["organizerKey"].as_str().unwrap().parse().unwrap();
            login_as(&emu, &store, "second", key, Some("sam@example.com")).await;
            Some(key)
        } else {
            None
        };
        // One clock for the gateway and its GoTo client (Retry-After), moved by tests.
        let offset = Arc::new(AtomicI64::new(0));
        let o = offset.clone();
        let clock: g2w_goto::Clock =
            Arc::new(move || g2w_goto::Timestamp::now() + millis(o.load(Ordering::SeqCst)));
        let tokens = Arc::new(TokenManager::new(
            store.clone(),
            oauth(&emu),
            "default",
            g2w_goto::system_clock(),
        ));
        let client = GotoClient::new(
            g2w_goto::http_client().unwrap(),
            Url::parse(emu.base_url()).unwrap(),
            tokens.clone(),
            Arc::new(RateLimiter::new(gateway_rate, 1).with_clock(clock.clone())),
            RetryPolicy::NEVER,
        );
        let mut config = GatewayConfig {
            sync_wait: Duration::ZERO,
            intake_rate_per_ip: 0,
            backoff_base: Duration::from_millis(1000),
            backoff_cap: Duration::from_secs(60),
            // The look-up budget is a share of GoTo's rate: without one, none (its
            // real-time refills would make tests depend on the machine's speed).
            lookup_rate: if gateway_rate == 0 {
                0
            } else {
                GatewayConfig::default().lookup_rate
            },
            ..GatewayConfig::default()
        };
        tune(&mut config);
        let mut served = vec![("default".to_owned(), client)];
        if second.is_some() {
            let tokens = Arc::new(TokenManager::new(
                store.clone(),
                oauth(&emu),
                "second",
                g2w_goto::system_clock(),
            ));
            served.push((
                "second".to_owned(),
                GotoClient::new(
                    g2w_goto::http_client().unwrap(),
                    Url::parse(emu.base_url()).unwrap(),
                    tokens,
                    Arc::new(RateLimiter::new(gateway_rate, 1).with_clock(clock.clone())),
                    RetryPolicy::NEVER,
                ),
            ));
        }
        let mut gateway = Gateway::for_organizers(config, store.clone(), served, clock);
        if !running {
            gateway = gateway.stepped();
        }
        let worker = gateway.worker();
        let workers = gateway.workers();
        let forwarder = gateway.forwarder();
        let served_gateway = gateway.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(gateway.serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            emu,
            store,
            worker,
            workers,
            second,
            forwarder,
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            clock_offset: offset,
            tokens,
            gateway: served_gateway,
            _dir: dir,
            _stop: stop,
        }
    }

    pub async fn reply(r: reqwest::Response) -> Reply {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        Reply {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn post_json(&self, webinar: &str, body: &Value) -> Reply {
        Self::reply(
            self.http
                .post(format!(
                    "{}/api/v1/webinars/{webinar}/registrations",
                    self.base
                ))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_raw(&self, webinar: &str, content_type: &str, body: Vec<u8>) -> Reply {
        Self::reply(
            self.http
                .post(format!(
                    "{}/api/v1/webinars/{webinar}/registrations",
                    self.base
                ))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        Self::reply(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Injects a fault at the emulator (`POST /_emulator/faults`).
    pub async fn fault(&self, spec: Value) {
        let added = self.control("/faults", spec).await;
        assert!(added.get("id").is_some(), "fault refused: {added}");
    }

    pub async fn clear_faults(&self) {
        self.http
            .delete(format!("{}/_emulator/faults", self.emu.base_url()))
            .send()
            .await
            .unwrap();
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

    pub async fn webinar(&self, spec: Value) -> (String, Value) {
        let v = self.control("/webinars", spec).await;
        (v["webinarKey"].as_str().unwrap().to_owned(), v)
    }

    /// Now on the gateway's clock.
    pub fn now(&self) -> g2w_goto::Timestamp {
        g2w_goto::Timestamp::now() + millis(self.clock_offset.load(Ordering::SeqCst))
    }

    /// Moves the gateway's clock (backoff) forward.
    pub fn advance(&self, ms: i64) {
        self.clock_offset.fetch_add(ms, Ordering::SeqCst);
    }

    /// Steps every organizer's worker until nothing is due now; returns the attempts made.
    pub async fn deliver_due(&self) -> usize {
        let mut attempts = 0;
        for (_, worker) in &self.workers {
            attempts += Self::step_until_idle(worker).await;
        }
        attempts
    }

    async fn step_until_idle(worker: &Worker) -> usize {
        let mut attempts = 0;
        for _ in 0..10_000 {
            match worker.deliver_next().await.unwrap() {
                Step::Attempted(_) => attempts += 1,
                Step::Idle | Step::Paused(_) | Step::Waiting(_) => return attempts,
            }
        }
        panic!("the worker never went idle");
    }

    /// Steps and moves time until every registration is final (or `max_rounds`).
    pub async fn deliver_all(&self, max_rounds: usize) {
        for _ in 0..max_rounds {
            self.deliver_due().await;
            let counts = self.store.counts().await.unwrap();
            if counts[&OutboxState::Pending] + counts[&OutboxState::Delivering] == 0 {
                return;
            }
            self.advance(61_000);
        }
        panic!(
            "not all delivered: {:?} {:#?}",
            self.store.counts().await.unwrap(),
            self.store
                .list(Some(OutboxState::Pending), None, 5)
                .await
                .unwrap()
        );
    }

    pub async fn count(&self, state: OutboxState) -> u64 {
        self.store.counts().await.unwrap()[&state]
    }

    pub async fn total(&self) -> u64 {
        self.store.counts().await.unwrap().values().sum()
    }
}

pub fn person(email: &str) -> Value {
    json!({"firstName": "Ada", "lastName": "Lovelace", "email": email})
}

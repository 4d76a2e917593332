//! One gateway, two organizers in accounts of their own, GoTo's 10 requests a second
//! kept per account: every registration reaches its own organizer exactly once, and one
//! organizer's revoked login holds only that organizer's registrations until it logs
//! in again. Runs on SQLite, and on PostgreSQL in CI's second run of this suite.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use g2w_emulator::EmulatorConfig;
use g2w_gateway::{Gateway, GatewayConfig};
use g2w_goto::{GotoClient, RateLimiter, RetryPolicy, TokenManager, Url};
use g2w_store::{OutboxState, Registration, Store};
use serde_json::{Value, json};

use crate::{fresh_store, login_as, oauth, person};

const RATE: u32 = 10;
const EACH: usize = 150;

struct TwoOrganizers {
    emu: g2w_emulator::EmulatorHandle,
    store: Arc<Store>,
    base: String,
    http: reqwest::Client,
    /// (profile, organizer key, email, webinar keys)
    organizers: Vec<(&'static str, u64, &'static str, Vec<String>)>,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TwoOrganizers {
    async fn control(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}/_emulator{path}", self.emu.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    async fn all(&self) -> Vec<Registration> {
        self.store.list(None, None, 10_000).await.unwrap()
    }

    /// Waits (bounded, on real time: the rate limit is real time) until `done` holds.
    async fn until(&self, what: &str, done: impl Fn(&[Registration]) -> bool) -> Vec<Registration> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let all = self.all().await;
            if done(&all) {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {:?}",
                self.store.counts().await.unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn readyz(&self) -> Value {
        self.http
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

async fn start() -> TwoOrganizers {
    let emu = g2w_emulator::spawn(EmulatorConfig {
        auto_approve: true,
        rate_limit: RATE,
        ..Default::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let second: Value = http
        .post(format!("{}/_emulator/organizers", emu.base_url()))
        .json(&json!({"email": "sam@example.com", "firstName": "Sam", "lastName": "Second"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second_key: u64 = second["organizerKey"].as_str().unwrap().parse().unwrap();
    let mut organizers = vec![
        (
            "default",
            emu.default_organizer_key(),
            "dana.demo@example.com",
            Vec::new(),
        ),
        ("second", second_key, "sam@example.com", Vec::new()),
    ];
    for (_, key, _, webinars) in &mut organizers {
        for n in 0..3 {
            let made: Value = http
                .post(format!("{}/_emulator/webinars", emu.base_url()))
                .json(&json!({"subject": format!("Webinar {n}"), "organizerKey": key.to_string()}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            webinars.push(made["webinarKey"].as_str().unwrap().to_owned());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = fresh_store(dir.path()).await;
    let mut clients = Vec::new();
    for (profile, key, email, _) in &organizers {
        let hint = (*profile != "default").then_some(*email);
        login_as(&emu, &store, profile, *key, hint).await;
        let tokens = Arc::new(TokenManager::new(
            store.clone(),
            oauth(&emu),
            profile,
            g2w_goto::system_clock(),
        ));
        // Each organizer is its own GoTo account here: a budget each.
        let client = GotoClient::new(
            g2w_goto::http_client().unwrap(),
            Url::parse(emu.base_url()).unwrap(),
            tokens,
            Arc::new(RateLimiter::new(RATE, 1)),
            RetryPolicy::NEVER,
        );
        clients.push(((*profile).to_owned(), client));
    }
    let config = GatewayConfig {
        sync_wait: Duration::ZERO,
        intake_rate_per_ip: 0,
        backoff_base: Duration::from_millis(200),
        backoff_cap: Duration::from_secs(1),
        lookup_rate: 0,
        ..GatewayConfig::default()
    };
    let gateway = Gateway::for_organizers(config, store.clone(), clients, g2w_goto::system_clock());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway.serve(listener, async {
        let _ = stopped.await;
    }));
    TwoOrganizers {
        emu,
        store,
        base,
        http,
        organizers,
        _dir: dir,
        _stop: stop,
    }
}

#[tokio::test]
async fn two_organizers_each_get_their_own_registrations_and_a_revoked_login_holds_only_its_own() {
    let app = start().await;
    // 300 registrations spread over both organizers' webinars, as landing pages send them.
    let mut expected: BTreeMap<String, (&str, String)> = BTreeMap::new();
    for i in 0..2 * EACH {
        let (profile, _, _, webinars) = &app.organizers[i % 2];
        let webinar = &webinars[(i / 2) % webinars.len()];
        let email = format!("person{i}@example.com");
        let answer = app
            .http
            .post(format!(
                "{}/api/v1/webinars/{webinar}/registrations",
                app.base
            ))
            .json(&person(&email))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202, "{}", answer.text().await.unwrap());
        expected.insert(email, (profile, webinar.clone()));
        if i == EACH {
            // Mid-run, the second organizer's login is revoked at GoTo.
            let revoked = app
                .control(
                    "/tokens/revoke",
                    json!({"organizerKey": app.organizers[1].1.to_string()}),
                )
                .await;
            assert!(
                revoked["revokedRefreshTokens"].as_u64().unwrap() >= 1,
                "{revoked}"
            );
        }
    }
    let all = app.all().await;
    for r in &all {
        let (profile, webinar) = &expected[&r.email];
        assert_eq!(
            &r.profile, profile,
            "{} recorded for its organizer",
            r.email
        );
        assert_eq!(&r.webinar_key.to_string(), webinar);
    }

    // The first organizer's all arrive; the second's wait, held, not failed.
    let all = app
        .until("the first organizer's registrations delivered", |all| {
            all.iter()
                .filter(|r| r.profile == "default")
                .all(|r| r.state == OutboxState::Delivered)
        })
        .await;
    let second: Vec<_> = all.iter().filter(|r| r.profile == "second").collect();
    assert!(
        second
            .iter()
            .all(|r| !matches!(r.state, OutboxState::Failed | OutboxState::Dead)),
        "a revoked login fails nothing"
    );
    let held = second
        .iter()
        .filter(|r| matches!(r.state, OutboxState::Pending | OutboxState::Delivering))
        .count();
    assert!(held > 0, "the second organizer's registrations are held");
    let ready = app.readyz().await;
    let reasons = ready["reasons"].to_string();
    assert!(reasons.contains("organizer second"), "{ready}");
    assert!(!reasons.contains("organizer default"), "{ready}");
    assert_eq!(ready["organizers"][0]["token"], "ok");

    // Logging in again lets them through, each exactly once.
    let (profile, key, email, _) = &app.organizers[1];
    login_as(&app.emu, &app.store, profile, *key, Some(email)).await;
    let all = app
        .until("every registration delivered", |all| {
            all.len() == 2 * EACH && all.iter().all(|r| r.state == OutboxState::Delivered)
        })
        .await;
    assert_eq!(all.len(), 2 * EACH);
    let stats = app.emu.stats();
    assert_eq!(
        stats.registrants_created,
        (2 * EACH) as u64,
        "each registration created once at GoTo"
    );
    // GoTo has each person on the webinar they chose, under its own organizer.
    for (profile, key, _, webinars) in &app.organizers {
        let token = app
            .control("/pats", json!({"organizerKey": key.to_string()}))
            .await;
        let pat = token["pat"].as_str().unwrap();
        let answer = oauth(&app.emu)
            .exchange_pat(&pat.to_owned().into())
            .await
            .unwrap();
        let access = answer.access_token;
        let mut people = 0;
        for webinar in webinars {
            let list: Value = app
                .http
                .get(format!(
                    "{}/G2W/rest/v2/organizers/{key}/webinars/{webinar}/registrants",
                    app.emu.base_url()
                ))
                .bearer_auth(g2w_goto::ExposeSecret::expose_secret(&access))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for r in list.as_array().unwrap() {
                let (owner, chosen) = &expected[r["email"].as_str().unwrap()];
                assert_eq!((owner, chosen), (profile, webinar));
                people += 1;
            }
        }
        assert_eq!(people, EACH, "organizer {profile}");
    }
}

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

#[tokio::test]
async fn the_console_names_each_organizer_and_disconnects_one_while_the_other_delivers() {
    use crate::admin::{act, get_with, sign_in};
    use crate::{Reply, TestApp};
    use g2w_gateway::{AdminPassword, Step};

    let app = TestApp::start_two(|c| {
        c.admin_password = Some(AdminPassword::Hashed(AdminPassword::hash("right password")));
    })
    .await;
    let second = app.second.unwrap();
    let (ours, _) = app.webinar(json!({"subject": "Ours"})).await;
    let (theirs, _) = app
        .webinar(json!({"subject": "Theirs", "organizerKey": second.to_string()}))
        .await;
    let (cookie, csrf) = sign_in(&app).await;

    let tokens = get_with(&app, "/admin/tokens", &cookie).await;
    assert!(
        tokens.text.contains("Organizer <code>default</code>"),
        "{}",
        tokens.text
    );
    assert!(tokens.text.contains("Organizer <code>second</code>"));
    assert!(tokens.text.contains("sam@example.com"));
    let webinars = get_with(&app, "/admin/webinars", &cookie).await;
    assert!(webinars.text.contains("<th scope=\"col\">Organizer</th>"));
    let row = webinars
        .text
        .split("<tr>")
        .find(|r| r.contains("Theirs"))
        .unwrap();
    assert!(row.contains("<code>second</code>"), "{row}");

    let page = act(
        &app,
        "/admin/organizers/disconnect",
        &format!("csrf={csrf}&organizer=second"),
        &cookie,
    )
    .await;
    assert!(
        page.text.contains("Disconnected (organizer second)"),
        "{}",
        page.text
    );
    assert!(page.text.contains("disconnected in the admin console"));

    // Each webinar's registration goes to its organizer's queue; the disconnected one waits.
    let theirs_reg: Reply = app.post_json(&theirs, &person("held@example.com")).await;
    let ours_reg: Reply = app.post_json(&ours, &person("flows@example.com")).await;
    assert_eq!((theirs_reg.status, ours_reg.status), (202, 202));
    for (profile, worker) in &app.workers {
        let step = worker.deliver_next().await.unwrap();
        match profile.as_str() {
            "default" => assert!(matches!(step, Step::Attempted(_)), "{step:?}"),
            _ => assert!(matches!(step, Step::Paused(_)), "{step:?}"),
        }
    }
    let outbox = get_with(&app, "/admin/outbox?email=held%40example.com", &cookie).await;
    assert!(
        outbox.text.contains("<code>second</code>"),
        "{}",
        outbox.text
    );
    assert!(outbox.text.contains("pending"));
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert!(
        ready.json["reasons"]
            .to_string()
            .contains("organizer second")
    );

    // Connecting it again starts from its own page, with its profile carried along.
    let connect = get_with(&app, "/admin/connect?organizer=second", &cookie).await;
    assert!(
        connect.text.contains("<option value=\"second\" selected>"),
        "{}",
        connect.text
    );
    assert!(connect.text.contains("name=\"organizer\" value=\"second\""));
}

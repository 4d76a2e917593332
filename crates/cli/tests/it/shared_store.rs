//! Two gateways on one PostgreSQL database and one GoTo account: what a load balancer
//! in front of several `g2w serve` processes relies on. Runs when
//! `G2W_TEST_DATABASE_URL` names a server (CI starts one), and says it skipped otherwise.

use std::time::{Duration, Instant};

use g2w_emulator::EmulatorConfig;
use g2w_store::{OutboxState, SecretKey, Store};
use serde_json::json;

use crate::Env;
use crate::serve::{post, start_serve};

const CREATE: &str =
    "POST /G2W/rest/v2/organizers/{organizer_key}/webinars/{webinar_key}/registrants";

/// Processes sharing a new PostgreSQL database and one GoTo account held to GoTo's 10
/// requests a second, logged in; the database's URL and key, and a webinar. `None`
/// without a server.
async fn on_one_database(subject: &str) -> Option<(Env, String, SecretKey, String)> {
    let url = g2w_store::test_database_url()?;
    let mut env = Env::start(EmulatorConfig {
        rate_limit: 10,
        ..Default::default()
    })
    .await;
    let key = SecretKey::generate();
    env.shared_store = Some((url.clone(), key.to_base64()));
    env.login_pat().await;
    let webinar = env.control("/webinars", json!({"subject": subject})).await["webinarKey"]
        .as_str()
        .unwrap()
        .to_owned();
    Some((env, url, key, webinar))
}

/// `g2w serve` for `env`, with no per-address limit and no sync wait.
fn gateway(env: &Env) -> (std::process::Child, String) {
    let mut cmd = env.g2w(&["serve", "--listen", "127.0.0.1:0", "--sync-wait", "0"]);
    cmd.env("G2W_INTAKE_RATE_PER_IP", "0");
    start_serve(cmd)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_share_the_outbox_the_budget_and_one_refresh_through_a_kill_9() {
    let Some((env, url, key, webinar)) = on_one_database("Two gateways").await else {
        return;
    };
    // A slow GoTo keeps deliveries in flight when one gateway is killed.
    env.control(
        "/faults",
        json!({"method": "POST", "pathPrefix": "/G2W", "delayMs": 150}),
    )
    .await;
    let (mut first, first_base) = gateway(&env);
    let (mut second, second_base) = gateway(&env);

    // 500 registrations, spread over both, 20 at a time.
    let emails: Vec<String> = (0..500).map(|i| format!("lb{i}@example.com")).collect();
    for (n, chunk) in emails.chunks(20).enumerate() {
        let posts: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, email)| {
                let base = if (n + i) % 2 == 0 {
                    &first_base
                } else {
                    &second_base
                };
                let (http, base, webinar, email) = (
                    env.http.clone(),
                    base.clone(),
                    webinar.clone(),
                    email.clone(),
                );
                tokio::spawn(async move { post(&http, &base, &webinar, &email).await })
            })
            .collect();
        for p in posts {
            p.await.unwrap();
        }
    }
    let store = Store::postgres(&url, &key).await.unwrap();
    let grants = |env: &Env| {
        let s = env.emu.stats();
        s.grants("refresh_token") + s.grants("personal_access_token")
    };
    let grants_at_start = grants(&env);

    // The access token dies at GoTo while both deliver: one refresh between them.
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.emu.stats().registrants_created < 100 {
        assert!(Instant::now() < deadline, "deliveries did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env.emu.advance_clock(2 * 3600);
    while env.emu.stats().registrants_created < 200 {
        assert!(
            Instant::now() < deadline,
            "deliveries stopped after the token died"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // kill -9 one gateway mid-delivery: the survivor takes its registrations over.
    first.kill().unwrap();
    first.wait().unwrap();
    let killed_at = Instant::now();
    let orphans: Vec<String> = store
        .list(Some(OutboxState::Delivering), None, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    let mut orphans_settled = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let counts = store.counts().await.unwrap();
        let mut all_final = true;
        for id in &orphans {
            all_final &= store
                .registration(id)
                .await
                .unwrap()
                .is_some_and(|r| r.state.is_final());
        }
        if orphans_settled.is_none() && all_final {
            orphans_settled = Some(killed_at.elapsed());
        }
        if counts[&OutboxState::Pending] + counts[&OutboxState::Delivering] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not drained: {counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let settled = orphans_settled.unwrap();
    assert!(
        settled <= Duration::from_secs(15),
        "{} orphans took {settled:?}",
        orphans.len()
    );
    let stats = env.emu.stats();
    let mut not_delivered = Vec::new();
    for state in [
        OutboxState::Failed,
        OutboxState::Dead,
        OutboxState::AlreadyRegistered,
    ] {
        for r in store.list(Some(state), None, 10).await.unwrap() {
            not_delivered.push((r.email, r.state, r.last_error));
        }
    }
    assert_eq!(
        stats.registrants_created,
        500,
        "every person registered once; the outbox: {:?}, not delivered: {not_delivered:?}",
        store.counts().await.unwrap(),
    );
    assert_eq!(store.counts().await.unwrap()[&OutboxState::Delivered], 500);
    assert_eq!(
        stats.rate_limited, 0,
        "one budget for the account: GoTo never said 429"
    );
    assert!(
        stats.busiest_second.values().all(|n| *n <= 10),
        "never more than GoTo's 10 in any second: {:?}",
        stats.busiest_second
    );
    assert_eq!(
        grants(&env) - grants_at_start,
        1,
        "exactly one token refresh across both gateways"
    );
    assert!(stats.route_status(CREATE, 201) == 500);
    crate::signal(&second, "TERM");
    assert!(second.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn three_gateways_and_an_import_run_keep_to_gotos_limit_together() {
    let Some((env, _, _, webinar)) = on_one_database("Everyone at once").await else {
        return;
    };
    let gateways: Vec<_> = (0..3).map(|_| gateway(&env)).collect();
    let csv: String = std::iter::once("firstName,lastName,email\n".to_owned())
        .chain((0..150).map(|i| format!("Imported,Person {i},imp{i}@example.com\n")))
        .collect();
    let file = env.data.path().join("import.csv");
    std::fs::write(&file, csv).unwrap();
    let import = tokio::spawn(Env::run_cmd(
        env.g2w(&[
            "registrants",
            "import",
            &webinar,
            &file.to_string_lossy(),
            "--concurrency",
            "8",
        ]),
        "",
    ));
    let posts: Vec<_> = (0..150)
        .map(|i| {
            let (http, base, webinar) =
                (env.http.clone(), gateways[i % 3].1.clone(), webinar.clone());
            tokio::spawn(async move {
                post(&http, &base, &webinar, &format!("gw{i}@example.com")).await
            })
        })
        .collect();
    for p in posts {
        p.await.unwrap();
    }
    crate::assert_ok(&import.await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(120);
    while env.emu.stats().registrants_created < 300 {
        assert!(
            Instant::now() < deadline,
            "{} of 300 at GoTo",
            env.emu.stats().registrants_created
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = env.emu.stats();
    eprintln!(
        "three gateways and an import: busiest second {:?}, {} × 429",
        stats.busiest_second, stats.rate_limited
    );
    assert_eq!(stats.route_status(CREATE, 201), 300, "each once");
    assert_eq!(stats.rate_limited, 0, "one budget: GoTo never said 429");
    assert!(
        stats.busiest_second.values().all(|n| *n <= 10),
        "never more than GoTo's 10 in any second: {:?}",
        stats.busiest_second
    );
    for (mut child, _) in gateways {
        crate::signal(&child, "TERM");
        child.wait().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn store_copy_moves_a_sqlite_gateway_into_postgres_logins_and_waiting_registrations_included()
{
    let env = Env::start(EmulatorConfig::default()).await;
    env.login_pat().await;
    // Two registrations still waiting in the SQLite outbox, one already delivered.
    let delivered = {
        let sqlite = Store::open_in(env.data.path(), None).await.unwrap();
        let new = |id: &str, key: Option<&str>| g2w_store::NewRegistration {
            id: id.into(),
            profile: "default".into(),
            webinar_key: g2w_goto::WebinarKey::new(9_007_199_254_740_993),
            email: format!("{id}@example.com"),
            payload: "{}".into(),
            idempotency_key: key.map(str::to_owned),
            source: None,
            created_at: g2w_goto::Timestamp::from_millis(1),
            validated: false,
        };
        sqlite
            .enqueue(&[new("w1", Some("k1")), new("w2", None), new("done", None)])
            .await
            .unwrap();
        let jobs = sqlite
            .claim_jobs(
                g2w_store::QueueName::Registrations,
                "default",
                "w",
                g2w_goto::Timestamp::from_millis(2),
                std::time::Duration::from_secs(1),
                g2w_store::Claim::Due,
                1,
            )
            .await
            .unwrap();
        let claimed = sqlite.registrations_of(jobs).await.unwrap().remove(0);
        let done = g2w_store::Completion::Delivered {
            registrant_key: g2w_goto::RegistrantKey::new(1),
            join_url: "https://j/1".into(),
        };
        sqlite
            .complete(
                g2w_goto::Timestamp::from_millis(3),
                vec![(claimed.clone(), done)],
            )
            .await
            .unwrap();
        // GoTo posts events to this path: a copy without it would refuse them.
        sqlite
            .set_setting(g2w_store::Setting::WebhookPath, "s3cr3t-path")
            .await
            .unwrap();
        claimed.id
    };

    // A form builder's source, with the secret its URL carries.
    crate::assert_ok(
        &env.run(
            &[
                "sources",
                "add",
                "unbounce",
                "--name",
                "landing",
                "--webinar",
                "1234",
            ],
            "",
        )
        .await,
    );
    let out = env
        .run(&["store", "copy", "--to", "mysql://nope"], "")
        .await;
    crate::assert_exit(&out, 1);
    assert!(crate::text(&out.stderr).contains("not a postgres:// URL"));
    let Some(url) = g2w_store::test_database_url() else {
        return;
    };
    let out = env.run(&["store", "copy", "--to", &url], "").await;
    crate::assert_ok(&out);
    let said = crate::text(&out.stdout);
    assert!(
        said.contains("Copied 1 login(s), 1 setting(s), 1 source(s) and 2 waiting registration(s)"),
        "{said}"
    );
    assert!(
        !crate::text(&out.stdout).contains("password@"),
        "no password in output"
    );
    let again = env.run(&["store", "copy", "--to", &url], "").await;
    assert!(
        crate::text(&again.stdout).contains("Nothing to copy"),
        "a second run copies only what is missing, and says so: {}",
        crate::text(&again.stdout)
    );

    // The same key (the data directory's key file) opens the copy: tokens and all.
    let key = SecretKey::resolve(None, env.data.path()).unwrap();
    let pg = Store::postgres(&url, &key).await.unwrap();
    let sqlite = Store::open_in(env.data.path(), None).await.unwrap();
    assert_eq!(
        pg.load_profile("default")
            .await
            .unwrap()
            .unwrap()
            .access_token
            .map(|t| g2w_goto_secret(&t)),
        sqlite
            .load_profile("default")
            .await
            .unwrap()
            .unwrap()
            .access_token
            .map(|t| g2w_goto_secret(&t))
    );
    assert_eq!(
        pg.setting(g2w_store::Setting::WebhookPath)
            .await
            .unwrap()
            .as_deref(),
        Some("s3cr3t-path"),
        "the webhook receiver's path came along"
    );
    let (copied, original) = (
        pg.source("landing").await.unwrap().unwrap(),
        sqlite.source("landing").await.unwrap().unwrap(),
    );
    assert_eq!(
        copied.secret.as_ref().map(g2w_goto_secret),
        original.secret.as_ref().map(g2w_goto_secret),
        "the source's URL still works on the copy"
    );
    let waiting = pg.list(Some(OutboxState::Pending), None, 10).await.unwrap();
    assert_eq!(waiting.len(), 2);
    assert!(waiting.iter().all(|r| !r.validated), "flags carried over");
    assert_eq!(
        pg.registration(&delivered).await.unwrap(),
        None,
        "history stays behind"
    );

    // The CLI now works on PostgreSQL with that login.
    let mut cmd = env.g2w(&["auth", "status"]);
    cmd.env("G2W_DATABASE_URL", &url);
    let status = cmd.output().unwrap();
    crate::assert_ok(&status);
}

fn g2w_goto_secret(s: &g2w_goto::SecretString) -> String {
    g2w_goto::ExposeSecret::expose_secret(s).to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_keep_and_forward_each_webhook_event_once() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    let Some(url) = g2w_store::test_database_url() else {
        return;
    };
    let mut env = Env::start(EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    let key = SecretKey::generate();
    env.shared_store = Some((url.clone(), key.to_base64()));
    env.login_pat().await;

    // The user's URL, a little slow, counting each event key it is given.
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let counted = seen.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let counted = counted.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let key = headers["x-g2w-event-key"].to_str().unwrap().to_owned();
                *counted.lock().unwrap().entry(key).or_default() += 1;
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let forward = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let serve = || {
        let mut cmd = env.g2w(&["serve", "--listen", "127.0.0.1:0"]);
        cmd.env("G2W_FORWARD_URL", &forward);
        start_serve(cmd)
    };
    let (mut first, first_base) = serve();
    let (mut second, second_base) = serve();
    let setup = env
        .run(&["webhooks", "setup", "--url", &first_base], "")
        .await;
    crate::assert_ok(&setup);
    let store = Store::postgres(&url, &key).await.unwrap();
    let path = store
        .setting(g2w_store::Setting::WebhookPath)
        .await
        .unwrap()
        .unwrap();

    // 200 events, each sent to both gateways at once (GoTo repeating itself across a
    // load balancer): each must be kept once and forwarded once.
    let mut sends = Vec::new();
    for i in 0..200 {
        let body = json!({"eventName": "registrant.added", "eventKey": format!("lb-{i}"),
            "webinarKey": 9_007_199_254_740_993_u64, "registrantKey": 1000 + i})
        .to_string();
        for base in [&first_base, &second_base] {
            let (http, url, body) = (
                env.http.clone(),
                format!("{base}/hooks/goto/{path}"),
                body.clone(),
            );
            sends.push(tokio::spawn(async move {
                let r = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.json::<serde_json::Value>().await.unwrap()["duplicate"] == false
            }));
        }
    }
    let mut fresh = 0;
    for s in sends {
        fresh += usize::from(s.await.unwrap());
    }
    assert_eq!(fresh, 200, "each event new exactly once over both gateways");

    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < 200 {
        assert!(
            Instant::now() < deadline,
            "forwarded {} of 200",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let twice: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k.clone())
        .collect();
    assert!(twice.is_empty(), "forwarded more than once: {twice:?}");
    for child in [&mut first, &mut second] {
        crate::signal(child, "TERM");
        child.wait().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_accepts_and_never_answers_fails_start_up_in_time_naming_it() {
    // Accepts connections, reads what it is sent, answers nothing.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let env = Env::start(EmulatorConfig::default()).await;
    let mut cmd = env.g2w(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.env(
        "G2W_DATABASE_URL",
        format!("postgres://g2w:hunter2@127.0.0.1:{port}/g2w"),
    )
    .env("G2W_SECRET_KEY", SecretKey::generate().to_base64());
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let took = started.elapsed();
    let said = crate::text(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(took <= Duration::from_secs(16), "gave up after {took:?}");
    assert!(
        said.contains(&format!("127.0.0.1:{port}/g2w")) && said.contains("unavailable"),
        "names the database: {said}"
    );
    assert!(!said.contains("hunter2"), "never the password: {said}");
}

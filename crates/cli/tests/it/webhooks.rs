//! `g2w webhooks setup|status|remove` with a running `g2w serve`: GoTo's events reach
//! the gateway and are forwarded to the user's URL, signed by g2w.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use g2w_emulator::EmulatorConfig;
use serde_json::json;

use crate::serve::{post, start_serve};
use crate::{Env, assert_ok, text};

type Kept = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// The user's own URL, keeping what g2w forwards.
async fn user_url() -> (String, Kept) {
    let got: Kept = Arc::default();
    let kept = got.clone();
    let app = axum::Router::new().route(
        "/g2w-events",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push((headers, body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/g2w-events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_sends_goto_events_through_the_gateway_to_the_users_url_and_remove_undoes_it() {
    let env = Env::start(EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    env.login_pat().await;
    let webinar = env.control("/webinars", json!({"subject": "Hooked"})).await["webinarKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let (forward, got) = user_url().await;
    let mut cmd = env.g2w(&["serve", "--listen", "127.0.0.1:0", "--sync-wait", "0"]);
    cmd.env("G2W_INTAKE_RATE_PER_IP", "0")
        .env("G2W_FORWARD_URL", &forward)
        .env("G2W_FORWARD_SECRET", "user-shared-secret");
    let (mut gateway, base) = start_serve(cmd);

    let setup = env.run(&["webhooks", "setup", "--url", &base], "").await;
    assert_ok(&setup);
    let said = text(&setup.stdout);
    assert!(said.contains("GoTo now sends registrant.added"), "{said}");
    assert!(
        said.contains("4 webhook(s), 4 active subscription(s)"),
        "{said}"
    );

    post(&env.http, &base, &webinar, "ada@example.com").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "nothing forwarded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (headers, body) = got.lock().unwrap()[0].clone();
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["eventName"], "registrant.added");
    assert_eq!(event["email"], "ada@example.com");
    assert_eq!(event["webinarKey"].to_string(), webinar, "exact 64-bit key");
    let ts: i64 = headers["x-g2w-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        headers["x-g2w-signature"].to_str().unwrap(),
        g2w_gateway::signature("user-shared-secret", ts, &body)
    );

    let status = env.run(&["webhooks", "status"], "").await;
    assert_ok(&status);
    let shown = text(&status.stdout);
    assert!(shown.contains("registrant.joined  ACTIVE"), "{shown}");
    assert!(
        shown.contains("received:       1 registration(s), 0 join(s)"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("receiver:       {base}/hooks/goto/…\n")),
        "the secret path is never printed: {shown}"
    );

    // A set-up pointed somewhere GoTo cannot reach fails and changes nothing.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let failed = env.run(&["webhooks", "setup", "--url", &nowhere], "").await;
    assert!(!failed.status.success());
    let status = env.run(&["webhooks", "status"], "").await;
    assert_eq!(
        text(&status.stdout).matches("ACTIVE").count(),
        4,
        "the working webhooks are still there: {}",
        text(&status.stdout)
    );

    let again = env.run(&["webhooks", "setup", "--url", &base], "").await;
    assert_ok(&again);
    assert!(text(&again.stdout).contains("Replaced 4 earlier webhook(s)."));

    // Once forwarded, old events can give their space back; the fact stays known.
    let purged = env
        .run(&["webhooks", "purge", "--before", "2999-01-01"], "")
        .await;
    assert_ok(&purged);
    assert!(
        text(&purged.stdout).starts_with("1 event(s) received before 2999-01-01T00:00:00Z"),
        "{}",
        text(&purged.stdout)
    );
    let status = env.run(&["webhooks", "status"], "").await;
    assert!(text(&status.stdout).contains("received:       1 registration(s)"));
    let bad = env
        .run(&["webhooks", "purge", "--before", "soon"], "")
        .await;
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("\"soon\" is not a date"),
        "{}",
        text(&bad.stderr)
    );

    let removed = env.run(&["webhooks", "remove"], "").await;
    assert_ok(&removed);
    assert!(text(&removed.stdout).contains("Removed 4 webhook(s)"));
    let status = env.run(&["webhooks", "status"], "").await;
    assert!(
        text(&status.stdout).contains("not set up"),
        "{}",
        text(&status.stdout)
    );
    crate::signal(&gateway, "TERM");
    gateway.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_refuses_bad_urls_and_says_when_the_gateway_cannot_be_reached() {
    let env = Env::start(EmulatorConfig::default()).await;
    env.login_pat().await;
    for (url, expected) in [
        ("not a url", "is not a URL"),
        ("ftp://example.com", "must be https"),
        ("http://example.com", "must be https"),
        ("https://example.com/?x=1", "must not have a query"),
    ] {
        let out = env.run(&["webhooks", "setup", "--url", url], "").await;
        assert!(!out.status.success(), "{url}");
        assert!(
            text(&out.stderr).contains(expected),
            "{url}: {}",
            text(&out.stderr)
        );
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = env
        .run(
            &[
                "webhooks",
                "setup",
                "--url",
                &format!("http://127.0.0.1:{port}"),
            ],
            "",
        )
        .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is `g2w serve` running and reachable there?"),
        "{}",
        text(&out.stderr)
    );
}

/// A user's URL that takes 2 s to answer each event, counting them by event key.
async fn slow_user_url() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = seen.clone();
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::post(move |headers: HeaderMap| {
            let kept = kept.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let key = headers["x-g2w-event-key"].to_str().unwrap().to_owned();
                kept.lock().unwrap().push(key);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_killed_mid_forward_settles_its_events_within_15_s_of_a_restart() {
    let env = Env::start(EmulatorConfig::default()).await;
    env.login_pat().await;
    let (forward, seen) = slow_user_url().await;
    let serve = || {
        let mut cmd = env.g2w(&["serve", "--listen", "127.0.0.1:0"]);
        cmd.env("G2W_FORWARD_URL", &forward);
        start_serve(cmd)
    };
    let (mut first, base) = serve();
    assert_ok(&env.run(&["webhooks", "setup", "--url", &base], "").await);
    let store = g2w_store::Store::open_in(env.data.path(), None)
        .await
        .unwrap();
    let path = store
        .setting(g2w_store::Setting::WebhookPath)
        .await
        .unwrap()
        .unwrap();
    // Twenty events at 2 s each: more than one lease's worth one at a time.
    let keys: Vec<String> = (0..20).map(|i| format!("kill-{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let event = json!({"eventName": "registrant.added", "eventKey": key,
            "webinarKey": 9_007_199_254_740_993_u64, "registrantKey": (1_u64 << 60) + i as u64,
            "email": format!("k{i}@example.com")});
        let r = env
            .http
            .post(format!("{base}{}{path}", g2w_gateway::RECEIVER_PREFIX))
            .json(&event)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    // The first event is at the user's URL (it answers in 2 s): kill -9 now.
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.forward_gauges().await.unwrap().delivering == 0 {
        assert!(Instant::now() < deadline, "nothing was being forwarded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();

    let mut status = env.g2w(&["webhooks", "status"]);
    status.env("G2W_FORWARD_URL", &forward);
    let status = tokio::task::spawn_blocking(move || status.output().unwrap())
        .await
        .unwrap();
    assert_ok(&status);
    assert!(
        text(&status.stdout).contains("forwarding:     20 event(s) waiting to be forwarded"),
        "the backlog shows: {}",
        text(&status.stdout)
    );

    let (mut second, _) = serve();
    let restarted = Instant::now();
    loop {
        let g = store.forward_gauges().await.unwrap();
        if g.pending + g.delivering == 0 {
            break;
        }
        assert!(
            restarted.elapsed() <= Duration::from_secs(30),
            "still waiting: {g:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let settled = restarted.elapsed();
    eprintln!("forwarding settled {settled:?} after the restart");
    assert!(
        settled <= Duration::from_secs(15),
        "settled {settled:?} after the restart"
    );
    for key in &keys {
        let event = store.event(key).await.unwrap().unwrap();
        assert_eq!(
            event.forward_state,
            g2w_store::ForwardState::Delivered,
            "{key}"
        );
        assert!(seen.lock().unwrap().contains(key), "{key} reached the URL");
    }
    crate::signal(&second, "TERM");
    second.wait().unwrap();
}

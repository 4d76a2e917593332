//! GoTo's webhooks into the gateway: the secret path, dedupe, hostile bodies, the
//! attendance page, forwarding with retries and g2w's signature, and reconciliation
//! after GoTo's deliveries were lost.

use g2w_store::Setting;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use g2w_gateway::{AdminPassword, Step};
use g2w_goto::ExposeSecret as _;
use g2w_store::ForwardState;
use serde_json::{Value, json};

use crate::admin::{act, get_with, sign_in};
use crate::{Reply, TestApp};

const PATH: &str = "K7m2-secret-path-for-tests";

async fn hook_app(tune: impl FnOnce(&mut g2w_gateway::GatewayConfig)) -> TestApp {
    let app = TestApp::start_with(|c| {
        c.admin_password = Some(AdminPassword::Hashed(AdminPassword::hash("right password")));
        tune(c);
    })
    .await;
    app.store
        .set_setting(Setting::WebhookPath, PATH)
        .await
        .unwrap();
    app
}

async fn post_event(app: &TestApp, path: &str, body: impl Into<reqwest::Body>) -> Reply {
    TestApp::reply(
        app.http
            .post(format!("{}/hooks/goto/{path}", app.base))
            .header("content-type", "application/json")
            .header("authorization", "Bearer should-not-be-kept")
            .header("x-webhook-signature", "opaque")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn joined(event_key: &str, registrant: u64) -> String {
    json!({"eventName": "registrant.joined", "eventKey": event_key, "product": "g2w",
           "webinarKey": 9_007_199_254_740_993_u64, "registrantKey": registrant,
           "sessionKey": 9_007_199_254_740_995_u64, "email": "ada@example.com"})
    .to_string()
}

/// Waits (real time: GoTo's deliveries are real HTTP) until the store holds `n` events.
async fn events(app: &TestApp, n: usize) -> Vec<g2w_store::StoredEvent> {
    for _ in 0..500 {
        let got = app.store.recent_events(100).await.unwrap();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.store.recent_events(100).await.unwrap()
}

#[tokio::test]
async fn the_receiver_answers_only_at_its_secret_path_and_keeps_each_event_once() {
    let app = hook_app(|_| {}).await;
    assert_eq!(app.get("/hooks/goto/guess").await.status, 404);
    assert_eq!(post_event(&app, "guess", joined("e1", 1)).await.status, 404);
    assert_eq!(
        app.get(&format!("/hooks/goto/{PATH}")).await.status,
        200,
        "GoTo's check"
    );

    let first = post_event(&app, PATH, joined("e1", 1)).await;
    assert_eq!(
        (first.status, &first.json["duplicate"]),
        (200, &json!(false)),
        "{}",
        first.text
    );
    let again = post_event(&app, PATH, joined("e1", 1)).await;
    assert_eq!(
        (again.status, &again.json["duplicate"]),
        (200, &json!(true))
    );

    let kept = app.store.recent_events(10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].body, joined("e1", 1), "the raw body, byte for byte");
    assert_eq!(
        kept[0].registrant_key.map(|k| k.get()),
        Some(1),
        "keys read exactly"
    );
    let headers: Value = serde_json::from_str(&kept[0].headers).unwrap();
    assert_eq!(headers["x-webhook-signature"], "opaque");
    assert!(
        headers.get("authorization").is_none(),
        "credentials are not kept"
    );
    assert_eq!(kept[0].forward_state, ForwardState::None, "no forward URL");
}

#[tokio::test]
async fn without_a_configured_path_nothing_is_accepted_and_a_new_path_works_at_once() {
    let app = TestApp::start().await;
    assert_eq!(post_event(&app, "", joined("e1", 1)).await.status, 404);
    assert_eq!(
        post_event(&app, "anything", joined("e1", 1)).await.status,
        404
    );
    app.store
        .set_setting(Setting::WebhookPath, "")
        .await
        .unwrap();
    assert_eq!(
        post_event(&app, "anything", joined("e1", 1)).await.status,
        404,
        "empty is none"
    );
    // `g2w webhooks setup` writes the path, then GoTo checks it straight away.
    app.store
        .set_setting(Setting::WebhookPath, PATH)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await; // past the re-read gap
    assert_eq!(app.get(&format!("/hooks/goto/{PATH}")).await.status, 200);
    assert!(app.store.recent_events(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn hostile_event_bodies_are_refused_and_nothing_is_kept() {
    let app = hook_app(|_| {}).await;
    let long_key = "k".repeat(500);
    for (body, why) in [
        (b"not json".to_vec(), "not JSON"),
        (b"[1,2]".to_vec(), "an array"),
        (
            br#"{"eventName":"registrant.added"}"#.to_vec(),
            "no eventKey",
        ),
        (
            json!({"eventName": "registrant.added", "eventKey": long_key})
                .to_string()
                .into_bytes(),
            "huge eventKey",
        ),
        (
            br#"{"eventName":"registrant.added","eventKey":"f","registrantKey":1.5}"#.to_vec(),
            "float key",
        ),
        (
            br#"{"eventName":"registrant.added","eventKey":"n","registrantKey":-3}"#.to_vec(),
            "negative key",
        ),
        (vec![b'{', 0xff, 0xfe, b'}'], "not UTF-8"),
    ] {
        let reply = post_event(&app, PATH, body).await;
        assert_eq!(reply.status, 400, "{why}: {}", reply.text);
        assert_eq!(reply.json["error"], "invalid_event", "{why}");
    }
    let huge = format!(
        r#"{{"eventName":"x","eventKey":"big","pad":"{}"}}"#,
        "a".repeat(100_000)
    );
    assert_eq!(post_event(&app, PATH, huge).await.status, 413);
    assert!(app.store.recent_events(10).await.unwrap().is_empty());
}

/// Points the emulator's webhooks at the gateway, as `g2w webhooks setup` does.
async fn subscribe_gateway(app: &TestApp) {
    let token = app.tokens.access_token().await.unwrap();
    let api = format!("{}/G2W/rest/v2", app.emu.base_url());
    let send = |method: reqwest::Method, path: &str, body: Value| {
        app.http
            .request(method, format!("{api}{path}"))
            .bearer_auth(token.expose_secret())
            .json(&body)
            .send()
    };
    let callback = format!("{}/hooks/goto/{PATH}", app.base);
    let hooks: Vec<Value> = ["registrant.added", "registrant.joined"]
        .iter()
        .map(|e| json!({"callbackUrl": callback, "eventName": e, "eventVersion": "1.0.0", "product": "g2w"}))
        .collect();
    let created: Value = send(reqwest::Method::POST, "/webhooks", json!(hooks))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys: Vec<Value> = created["_embedded"]["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["webhookKey"].clone())
        .collect();
    let activate: Vec<Value> = keys
        .iter()
        .map(|k| json!({"webhookKey": k, "state": "ACTIVE"}))
        .collect();
    assert!(
        send(reqwest::Method::PUT, "/webhooks", json!(activate))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let subs: Vec<Value> = keys.iter().map(|k| json!({"webhookKey": k})).collect();
    assert!(
        send(reqwest::Method::POST, "/userSubscriptions", json!(subs))
            .await
            .unwrap()
            .status()
            .is_success()
    );
}

#[tokio::test]
async fn goto_deliveries_flow_in_and_the_attendance_page_counts_people_once() {
    let app = hook_app(|_| {}).await;
    subscribe_gateway(&app).await;
    let (webinar, _) = app.webinar(json!({"subject": "Live count"})).await;
    for email in ["ada@example.com", "bo@example.com"] {
        app.control(
            &format!("/webinars/{webinar}/registrants"),
            json!({"firstName": "P", "lastName": "Q", "email": email}),
        )
        .await;
    }
    // GoTo repeats the first join: it is one person in the count.
    app.control("/events/duplicate", json!({"count": 1})).await;
    let session = app
        .control(
            "/sessions",
            json!({"webinarKey": webinar, "attendance": [{"email": "ada@example.com"}, {"email": "bo@example.com"}]}),
        )
        .await;
    let session = session["sessionKey"].as_str().unwrap().to_owned();
    let kept = events(&app, 4).await;
    assert_eq!(
        kept.len(),
        4,
        "2 added + 2 joined, the repeat not kept: {kept:?}"
    );

    let (cookie, _) = sign_in(&app).await;
    let page = get_with(&app, "/admin/attendance", &cookie).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains(&format!("data-joined=\"{session}\">2<")),
        "{}",
        page.text
    );
    assert!(
        !page.text.contains("http-equiv=\"refresh\""),
        "no reload the user did not ask for"
    );
    let live = get_with(&app, "/admin/attendance?live=1", &cookie).await;
    assert!(
        live.text.contains("http-equiv=\"refresh\" content=\"15\""),
        "following live"
    );
    assert!(page.text.contains("ada@example.com"));
    assert!(
        page.text.contains("Live count"),
        "the title, from GoTo's events"
    );
}

/// The user's URL: refuses the first `fail` requests with 503, then keeps them.
async fn user_url(fail: usize) -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let seen = Arc::new(Mutex::new(0_usize));
    let kept = got.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (kept, seen) = (kept.clone(), seen.clone());
            async move {
                let mut n = seen.lock().unwrap();
                *n += 1;
                if *n <= fail {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                kept.lock().unwrap().push((headers, body));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test]
async fn forwarding_retries_until_the_users_url_takes_the_event_signed_by_g2w() {
    let (url, got) = user_url(2).await;
    let app = hook_app(|c| {
        c.forward_url = Some(url);
        c.forward_secret = Some("forward-secret".into());
    })
    .await;
    let body = joined("fwd-1", 7);
    assert_eq!(post_event(&app, PATH, body.clone()).await.status, 200);
    // Stepped by hand; backoffs are on the gateway's clock: move it instead of waiting.
    let forwarder = app.forwarder.clone().unwrap();
    let mut attempts = 0;
    while got.lock().unwrap().is_empty() {
        match forwarder.step().await.unwrap() {
            Step::Attempted(_) => attempts += 1,
            Step::Idle | Step::Waiting(_) => app.advance(60_000),
            Step::Paused(why) => panic!("{why}"),
        }
        assert!(attempts <= 3, "forwarded by the third attempt");
    }
    let (headers, received) = got.lock().unwrap().first().cloned().expect("forwarded");
    assert_eq!(received, body.as_bytes(), "the raw body");
    assert_eq!(headers["x-g2w-event-key"], "fwd-1");
    let ts: i64 = headers[g2w_gateway::TIMESTAMP_HEADER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        headers[g2w_gateway::SIGNATURE_HEADER].to_str().unwrap(),
        g2w_gateway::signature("forward-secret", ts, body.as_bytes())
    );
    let event = app.store.recent_events(1).await.unwrap().remove(0);
    assert_eq!(event.forward_state, ForwardState::Delivered);
    assert_eq!(
        event.forward_attempts, 3,
        "two refusals, then taken: {event:?}"
    );
}

#[tokio::test]
async fn a_users_url_that_is_down_is_probed_not_flooded_with_the_backlog() {
    // A URL that refuses everything, counting the requests.
    let seen = Arc::new(Mutex::new(0_usize));
    let counted = seen.clone();
    let front = axum::Router::new().route(
        "/events",
        axum::routing::post(move || {
            let counted = counted.clone();
            async move {
                *counted.lock().unwrap() += 1;
                axum::http::StatusCode::BAD_GATEWAY
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front_url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, front).await });
    let app = hook_app(|c| c.forward_url = Some(front_url)).await;
    for i in 0..30 {
        let reply = post_event(&app, PATH, joined(&format!("down-{i}"), i)).await;
        assert_eq!(reply.status, 200, "receipt does not wait on the user's URL");
    }
    // Stepped by hand on the gateway's clock: three failures in a row open the breaker,
    // and then one probe goes out at a time, ever further apart (up to 4 s).
    let forwarder = app.forwarder.clone().unwrap();
    let mut steps = Vec::new();
    for _ in 0..10 {
        let step = forwarder.step().await.unwrap();
        let waiting = matches!(step, Step::Waiting(_));
        steps.push(step);
        if waiting {
            break;
        }
    }
    assert_eq!(*seen.lock().unwrap(), 3, "then it waits: {steps:?}");
    let Some(Step::Waiting(until)) = steps.last().cloned() else {
        panic!("{steps:?}")
    };
    assert!(until.since(app.now()) <= Duration::from_secs(1));
    assert!(matches!(forwarder.step().await.unwrap(), Step::Waiting(_)));
    let mut probes = Vec::new();
    for _ in 0..5 {
        let Step::Waiting(until) = forwarder.step().await.unwrap() else {
            panic!("a probe at a time")
        };
        app.advance(i64::try_from(until.since(app.now()).as_millis()).unwrap() + 1);
        let before = *seen.lock().unwrap();
        assert!(matches!(
            forwarder.step().await.unwrap(),
            Step::Attempted(_)
        ));
        assert_eq!(*seen.lock().unwrap(), before + 1, "one probe");
        probes.push(until);
    }
    let gaps: Vec<Duration> = probes.windows(2).map(|w| w[1].since(w[0])).collect();
    assert!(
        gaps.windows(2)
            .all(|w| w[1] + Duration::from_millis(50) >= w[0])
            && gaps.iter().all(|g| *g <= Duration::from_secs(5)),
        "growing pauses, up to the cap: {gaps:?}"
    );
    let pending = app
        .store
        .recent_events(100)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.forward_state == ForwardState::Pending)
        .count();
    assert_eq!(pending, 30, "every event still waits to be forwarded");
    // The backlog shows where operators look: /metrics, with the same gauges as the
    // registrations', and the console's attendance page.
    app.advance(90_000);
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains("g2w_queue_items{queue=\"forwards\",state=\"pending\"} 30"),
        "{metrics}"
    );
    assert!(metrics.contains("g2w_queue_breaker_open{queue=\"forwards\"} 1"));
    let oldest: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("g2w_queue_oldest_waiting_seconds{queue=\"forwards\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(oldest >= 90.0, "{oldest}");
    let (cookie, _) = sign_in(&app).await;
    let page = get_with(&app, "/admin/attendance", &cookie).await;
    assert!(
        page.text.contains("30 events waiting to be forwarded"),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn reconciliation_finds_what_lost_deliveries_never_brought() {
    let app = hook_app(|_| {}).await;
    subscribe_gateway(&app).await;
    let (webinar, _) = app.webinar(json!({"subject": "Lossy"})).await;
    app.control("/events/drop", json!({"count": 2})).await;
    app.control(
        &format!("/webinars/{webinar}/registrants"),
        json!({"firstName": "Lost", "lastName": "One", "email": "lost@example.com"}),
    )
    .await;
    let now = app.emu.now();
    app.control(
        "/sessions",
        json!({"webinarKey": webinar,
               "startTime": g2w_emulator::to_iso(now - 3_600), "endTime": g2w_emulator::to_iso(now - 60),
               "attendance": [{"email": "lost@example.com", "joinTime": g2w_emulator::to_iso(now - 3_000), "leaveTime": g2w_emulator::to_iso(now - 600)}]}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        app.store.recent_events(10).await.unwrap().is_empty(),
        "both deliveries were lost"
    );

    let (cookie, csrf) = sign_in(&app).await;
    let page = act(
        &app,
        "/admin/attendance/reconcile",
        &format!("csrf={csrf}"),
        &cookie,
    )
    .await;
    assert!(
        page.text
            .contains("1 registration(s) and 1 join(s) no webhook had brought"),
        "{}",
        page.text
    );
    let kept = app.store.recent_events(10).await.unwrap();
    assert_eq!(kept.len(), 2);
    assert!(
        kept.iter()
            .all(|e| e.source == g2w_store::EventSource::Reconciliation)
    );
    let again = act(
        &app,
        "/admin/attendance/reconcile",
        &format!("csrf={csrf}"),
        &cookie,
    )
    .await;
    assert!(
        again.text.contains("0 registration(s) and 0 join(s)"),
        "{}",
        again.text
    );
}

#[tokio::test]
async fn an_event_that_cannot_be_stored_is_answered_503_so_goto_sends_it_again() {
    if crate::on_postgres() {
        // A disk that refuses writes is SQLite's failure; PostgreSQL's (a server that
        // stops answering) are in frozen_db.
        return;
    }
    let app = hook_app(|_| {}).await;
    app.store.refuse_writes(true).await.unwrap();
    let refused = post_event(&app, PATH, joined("disk-full", 1)).await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    app.store.refuse_writes(false).await.unwrap();
    let retried = post_event(&app, PATH, joined("disk-full", 1)).await;
    assert_eq!(
        (retried.status, &retried.json["duplicate"]),
        (200, &json!(false))
    );
    assert_eq!(app.store.recent_events(10).await.unwrap().len(), 1);
}

/// Sends each (path, body) at once from its own task; the answers' statuses and bodies.
async fn all_at_once(app: &TestApp, sends: Vec<(String, String)>) -> Vec<(u16, Value)> {
    let tasks: Vec<_> = sends
        .into_iter()
        .map(|(path, body)| {
            let (http, url) = (app.http.clone(), format!("{}/hooks/goto/{path}", app.base));
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            })
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    replies
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_event_sent_fifty_times_at_once_is_kept_once() {
    let app = hook_app(|_| {}).await;
    let replies = all_at_once(&app, vec![(PATH.to_owned(), joined("burst", 5)); 50]).await;
    assert!(
        replies.iter().all(|(status, _)| *status == 200),
        "{replies:?}"
    );
    let fresh = replies
        .iter()
        .filter(|(_, body)| body["duplicate"] == json!(false))
        .count();
    assert_eq!(fresh, 1, "exactly one was new");
    assert_eq!(app.store.recent_events(10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_guessed_paths_finds_nothing_and_the_real_path_still_works() {
    let app = hook_app(|_| {}).await;
    let guesses = (0..300)
        .map(|i| (format!("guess-{i}"), joined(&format!("g{i}"), 1)))
        .collect();
    let replies = all_at_once(&app, guesses).await;
    assert!(replies.iter().all(|(status, _)| *status == 404));
    assert!(app.store.recent_events(10).await.unwrap().is_empty());
    assert_eq!(post_event(&app, PATH, joined("real", 1)).await.status, 200);
}

#[tokio::test]
async fn reconciliation_goes_on_past_a_webinar_goto_cannot_describe_and_skips_while_goto_fails() {
    let app = hook_app(|_| {}).await;
    let (flaky, _) = app.webinar(json!({"subject": "Flaky"})).await;
    let (fine, _) = app.webinar(json!({"subject": "Fine"})).await;
    for (webinar, email) in [(&flaky, "f@example.com"), (&fine, "g@example.com")] {
        app.control(
            &format!("/webinars/{webinar}/registrants"),
            json!({"firstName": "P", "lastName": "Q", "email": email}),
        )
        .await;
    }
    let organizer = app.emu.default_organizer_key();
    app.fault(json!({"method": "GET", "status": 503, "count": 1,
        "pathPrefix": format!("/G2W/rest/v2/organizers/{organizer}/webinars/{flaky}/registrants")}))
        .await;
    let (cookie, csrf) = sign_in(&app).await;
    let page = act(
        &app,
        "/admin/attendance/reconcile",
        &format!("csrf={csrf}"),
        &cookie,
    )
    .await;
    assert!(
        page.text
            .contains("Checked 2 webinar(s) with GoTo: 1 registration(s) and 0 join(s)")
            && page.text.contains("GoTo could not answer for 1 webinar(s)"),
        "{}",
        page.text
    );
    let again = act(
        &app,
        "/admin/attendance/reconcile",
        &format!("csrf={csrf}"),
        &cookie,
    )
    .await;
    assert!(
        again
            .text
            .contains("1 registration(s) and 0 join(s) no webhook had brought."),
        "the flaky one, next time: {}",
        again.text
    );
    assert_eq!(app.store.recent_events(10).await.unwrap().len(), 2);
}

const LIST_WEBINARS: &str = "GET /G2W/rest/v2/organizers/{organizer_key}/webinars";

/// Polls `/metrics` (moving the gateway's clock, so backoffs and probes come due) until
/// it shows `line`.
async fn until_metrics_show(app: &TestApp, line: &str) {
    for _ in 0..400 {
        if app.get("/metrics").await.text.contains(line) {
            return;
        }
        app.advance(5_000);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("/metrics never showed {line:?}");
}

#[tokio::test]
async fn periodic_reconciliation_waits_while_goto_fails_and_resumes_after() {
    let app = TestApp::start_running(|c| {
        c.reconcile_every = Some(Duration::from_millis(100));
    })
    .await;
    let (webinar, _) = app.webinar(json!({"subject": "Outage"})).await;
    app.fault(json!({"method": "POST", "pathPrefix": "/G2W", "status": 500}))
        .await;
    for i in 0..3 {
        app.post_json(&webinar, &crate::person(&format!("o{i}@example.com")))
            .await;
    }
    until_metrics_show(&app, "g2w_queue_breaker_open{queue=\"registrations\"} 1\n").await;

    let before = app.emu.stats().route_total(LIST_WEBINARS);
    app.store
        .set_setting(Setting::WebhookPath, PATH)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        app.emu.stats().route_total(LIST_WEBINARS),
        before,
        "no reconciliation while GoTo fails"
    );

    app.clear_faults().await;
    until_metrics_show(&app, "g2w_queue_breaker_open{queue=\"registrations\"} 0\n").await;
    for _ in 0..200 {
        if app.emu.stats().route_total(LIST_WEBINARS) > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("reconciliation did not resume after GoTo came back");
}

//! GoTo's limits kept right: a 429 slows the account's pace and costs nothing else (no
//! breaker, no backoff, no attempt, no registration), a `Retry-After` holds every call
//! of the account until it ends, a 429 without one halves the pace until it recovers,
//! and one person submitting many times at once is one GoTo call. Timed with the
//! gateway's clock, which the tests move.

use std::collections::BTreeMap;
use std::time::Duration;

use g2w_store::OutboxState;
use serde_json::json;

use crate::{TestApp, person};

const CREATE: &str =
    "POST /G2W/rest/v2/organizers/{organizer_key}/webinars/{webinar_key}/registrants";

/// Posts `n` people to `webinar`, 20 at a time.
async fn post_many(app: &TestApp, webinar: &str, n: usize, prefix: &str) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(20) {
        let posts: Vec<_> = chunk
            .iter()
            .map(|i| {
                let (http, url, body) = (
                    app.http.clone(),
                    format!("{}/api/v1/webinars/{webinar}/registrations", app.base),
                    person(&format!("{prefix}{i}@example.com")),
                );
                tokio::spawn(async move { http.post(url).json(&body).send().await.unwrap() })
            })
            .collect();
        for p in posts {
            assert_eq!(p.await.unwrap().status(), 202);
        }
    }
}

/// GoTo's create-registrant calls so far: all of them, and those answered 429.
fn creates(app: &TestApp) -> (u64, u64) {
    let stats = app.emu.stats();
    (stats.route_total(CREATE), stats.route_status(CREATE, 429))
}

#[tokio::test]
async fn a_429_storm_with_retry_after_costs_each_429_its_wait_and_nothing_more() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(json!({"subject": "Storm"})).await;
    post_many(&app, &webinar, 200, "s").await;
    app.fault(
        json!({"method": "POST", "pathPrefix": "/G2W", "status": 429,
        "retryAfter": 2, "probability": 0.5}),
    )
    .await;

    let started = app.now();
    let mut quiet_until = None;
    let mut breaker_opened = false;
    loop {
        let before = creates(&app);
        app.deliver_due().await;
        let after = creates(&app);
        let now = app.now();
        if quiet_until.is_some_and(|until| now < until) {
            assert_eq!(
                after.0,
                before.0,
                "a request left {} ms before GoTo's Retry-After ended",
                quiet_until.map_or(0, |u: g2w_goto::Timestamp| u.since(now).as_millis())
            );
        }
        if after.1 > before.1 {
            assert_eq!(after.1, before.1 + 1, "one 429, then quiet");
            quiet_until = Some(now + Duration::from_secs(2));
        }
        breaker_opened |= app.worker.failing();
        if app.count(OutboxState::Delivered).await == 200 {
            break;
        }
        assert!(
            now.since(started) < Duration::from_secs(3_600),
            "still waiting after an hour"
        );
        app.advance(100);
    }
    let took = app.now().since(started);
    let (calls, throttled) = creates(&app);
    eprintln!(
        "200 registrations through {throttled} × 429 (Retry-After: 2) in {took:?} of the clock"
    );
    let stats = app.emu.stats();
    assert_eq!(stats.registrants_created, 200);
    assert_eq!(calls, 200 + throttled, "every call is a 201 or a 429");
    assert_eq!(stats.route_status(CREATE, 409), 0, "none twice");
    assert!(!breaker_opened, "a 429 is not GoTo being unwell");
    // Each 429 costs its Retry-After and at most one step of this test on top.
    assert!(
        took <= Duration::from_millis(throttled * 2_100 + 500),
        "{took:?} for {throttled} × Retry-After: 2"
    );
    let delivered = app
        .store
        .list(Some(OutboxState::Delivered), None, 300)
        .await
        .unwrap();
    assert!(
        delivered.iter().all(|r| r.attempts == 1),
        "a 429 uses up no attempt"
    );
}

/// Lets about `seconds` of the gateway's clock pass while it runs by itself, five times
/// faster than real time; returns GoTo's create calls a second, in each second of the
/// gateway's clock.
async fn live(app: &TestApp, seconds: u64) -> Vec<u64> {
    let mut per_second = Vec::new();
    for _ in 0..seconds {
        let ((before, _), started) = (creates(app), app.now());
        while app.now().since(started) < Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            app.advance(80);
        }
        let calls = (creates(app).0 - before) as f64;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        per_second.push((calls / app.now().since(started).as_secs_f64()).round() as u64);
    }
    per_second
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_storm_without_retry_after_halves_the_pace_and_it_recovers() {
    // GoTo's 10 a second kept by the gateway; the emulator limits nothing itself.
    let app = TestApp::start_paced(10, |c| c.sync_wait = Duration::ZERO).await;
    let (webinar, _) = app.webinar(json!({"subject": "Busy"})).await;
    let full = live(&app, 0).await;
    assert!(full.is_empty());
    post_many(&app, &webinar, 400, "b").await;
    let paced = live(&app, 5).await;
    assert!(
        paced.iter().skip(1).all(|n| (7..=11).contains(n)),
        "the account's own pace: {paced:?}"
    );

    // Half of GoTo's answers are 429 without Retry-After (as real GoTo sends them).
    app.fault(
        json!({"method": "POST", "pathPrefix": "/G2W", "status": 429,
        "probability": 0.5}),
    )
    .await;
    let storm = live(&app, 20).await;
    let late: u64 = storm[10..].iter().sum();
    assert!(
        late <= 35,
        "the pace halves with each 429 of a call sent after the last cut: {storm:?}"
    );
    assert!(
        storm[10..].iter().filter(|n| **n == 0).count() <= 4,
        "never below a twentieth of the rate: {storm:?}"
    );

    app.clear_faults().await;
    let after = live(&app, 16).await;
    eprintln!("GoTo calls a second: paced {paced:?}, storm {storm:?}, after {after:?}");
    assert!(
        after[12..].iter().all(|n| *n >= 7),
        "a tenth of the rate back every second: {after:?}"
    );
    assert_eq!(app.emu.stats().route_status(CREATE, 409), 0, "none twice");
    assert_eq!(
        app.get("/readyz").await.json["goto"]["breaker"],
        "closed",
        "a 429 is not GoTo being unwell"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_person_submitting_twenty_times_at_once_is_one_goto_call() {
    let app = TestApp::start_running(|c| c.sync_wait = Duration::from_secs(2)).await;
    let (webinar, _) = app.webinar(json!({"subject": "Double click"})).await;
    // GoTo answers slowly enough that all twenty arrive while the first is on its way.
    app.fault(json!({"method": "POST", "pathPrefix": "/G2W", "delayMs": 300, "count": 1}))
        .await;
    let posts: Vec<_> = (0..20)
        .map(|_| {
            let (http, url) = (
                app.http.clone(),
                format!("{}/api/v1/webinars/{webinar}/registrations", app.base),
            );
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .json(&person("Twice@Example.com"))
                    .send()
                    .await
                    .unwrap();
                (
                    r.status().as_u16(),
                    r.json::<serde_json::Value>().await.unwrap(),
                )
            })
        })
        .collect();
    let mut answers = BTreeMap::new();
    for p in posts {
        let (status, body) = p.await.unwrap();
        *answers
            .entry((status, body["joinUrl"].as_str().map(str::to_owned)))
            .or_insert(0) += 1;
    }
    assert_eq!(answers.len(), 1, "everyone the same answer: {answers:?}");
    let ((status, join), n) = answers.into_iter().next().unwrap();
    assert_eq!((status, n), (201, 20));
    assert!(join.is_some_and(|j| j.contains("/join/")));
    let stats = app.emu.stats();
    assert_eq!(stats.route_total(CREATE), 1, "one GoTo call");
    assert_eq!(stats.registrants_created, 1);
    assert_eq!(app.total().await, 1, "one registration stored");
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains("g2w_intake_total{outcome=\"joined\"} 19"),
        "{metrics}"
    );
}

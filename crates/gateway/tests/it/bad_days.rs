//! GoTo's bad moments: slow, down, throttling, refusing tokens, flooded; and a store that
//! cannot be written. Each test is one row of "what happened → what must hold", driven
//! through the emulator's faults and the gateway's clock.

use std::time::{Duration, Instant};

use g2w_gateway::Step;
use g2w_store::OutboxState;
use serde_json::json;

use crate::{TestApp, person};

const GET_WEBINAR: &str = "GET /G2W/rest/v2/organizers/{organizer_key}/webinars/{webinar_key}";
const GET_FIELDS: &str =
    "GET /G2W/rest/v2/organizers/{organizer_key}/webinars/{webinar_key}/registrants/fields";
const GET_LIST: &str = "GET /G2W/rest/v2/organizers/{organizer_key}/webinars";
const CREATE: &str =
    "POST /G2W/rest/v2/organizers/{organizer_key}/webinars/{webinar_key}/registrants";

impl TestApp {
    /// Moves the gateway's clock forward `total_ms` in steps of `step_ms`, delivering
    /// whatever is due after each step.
    async fn live_through(&self, total_ms: i64, step_ms: i64) {
        let mut passed = 0;
        while passed < total_ms {
            self.advance(step_ms);
            passed += step_ms;
            self.deliver_due().await;
        }
    }

    /// Steps through time until nothing waits; returns how long that took on the clock.
    async fn drain(&self, limit_ms: i64) -> i64 {
        let mut passed = 0;
        loop {
            self.deliver_due().await;
            let c = self.store.counts().await.unwrap();
            if c[&OutboxState::Pending] + c[&OutboxState::Delivering] == 0 {
                return passed;
            }
            assert!(passed < limit_ms, "still waiting after {passed} ms: {c:?}");
            self.advance(250);
            passed += 250;
        }
    }
}

#[tokio::test]
async fn fifty_first_registrations_for_a_webinar_share_one_form_fetch() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(json!({"subject": "Stampede"})).await;
    // A slow GoTo makes sure every request arrives while the first fetch is in flight.
    app.fault(json!({"method": "GET", "pathPrefix": "/G2W", "delayMs": 300}))
        .await;
    let posts: Vec<_> = (0..50)
        .map(|i| {
            let (http, url) = (
                app.http.clone(),
                format!("{}/api/v1/webinars/{webinar}/registrations", app.base),
            );
            tokio::spawn(async move {
                http.post(url)
                    .json(&person(&format!("s{i}@example.com")))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for p in posts {
        assert_eq!(p.await.unwrap(), 202);
    }
    let stats = app.emu.stats();
    assert_eq!(stats.route_total(GET_WEBINAR), 1, "{:?}", stats.requests);
    assert_eq!(stats.route_total(GET_FIELDS), 1);
    assert_eq!(
        app.store
            .list(None, None, 100)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.validated)
            .count(),
        50,
        "every one checked against the form"
    );
}

#[tokio::test]
async fn when_goto_is_too_slow_to_describe_a_webinar_intake_stores_and_goto_checks_later() {
    let app = TestApp::start().await;
    let (webinar, spec) = app
        .webinar(json!({"subject": "Slow", "questions": [{"question": "Why?", "type": "shortAnswer", "required": true}]}))
        .await;
    app.fault(json!({"method": "GET", "pathPrefix": "/G2W", "delayMs": 25_000}))
        .await;
    let started = Instant::now();
    let reply = app.post_json(&webinar, &person("slow@example.com")).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered without waiting out GoTo's 25 s ({:?})",
        started.elapsed()
    );
    assert_eq!(
        (reply.status, reply.json["status"].as_str()),
        (202, Some("pending_validation")),
        "{}",
        reply.text
    );
    let id = reply.json["registrationId"].as_str().unwrap();
    let status = app.get(&format!("/api/v1/registrations/{id}")).await;
    assert_eq!(status.json["status"], "pending_validation");

    // The required answer was missing: GoTo refuses at delivery, and says why.
    app.deliver_due().await;
    let refused = app.get(&format!("/api/v1/registrations/{id}")).await;
    assert_eq!(refused.json["status"], "failed", "{}", refused.text);
    let q = spec["questions"][0]["questionKey"].as_str().unwrap();
    assert!(
        refused.json["error"].as_str().unwrap().contains(q),
        "{}",
        refused.text
    );
    assert_eq!(app.emu.stats().registrants_created, 0);
}

#[tokio::test]
async fn a_minute_of_429s_kills_nothing_and_costs_no_attempts() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(json!({"subject": "Throttled"})).await;
    app.fault(json!({"method": "POST", "pathPrefix": "/G2W", "status": 429, "retryAfter": 2}))
        .await;
    for i in 0..10 {
        app.post_json(&webinar, &person(&format!("t{i}@example.com")))
            .await;
    }
    app.live_through(60_000, 500).await;
    let throttled = app.emu.stats().route_status(CREATE, 429);
    assert!(
        (25..=31).contains(&throttled),
        "one call per Retry-After, not one per registration: {throttled}"
    );
    assert_eq!(
        app.get("/readyz").await.json["goto"]["breaker"],
        "closed",
        "GoTo asked for a slower pace; it is not failing"
    );
    assert_eq!(app.count(OutboxState::Dead).await, 0);
    let waiting = app
        .store
        .list(Some(OutboxState::Pending), None, 20)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 10);
    assert!(
        waiting.iter().all(|r| r.attempts == 0),
        "429s use no attempts"
    );

    app.clear_faults().await;
    app.drain(5_000).await;
    assert_eq!(app.count(OutboxState::Delivered).await, 10);
    assert_eq!(app.emu.stats().registrants_created, 10);
}

#[tokio::test]
async fn after_a_five_minute_outage_the_backlog_goes_out_within_seconds_of_gotos_return() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(json!({"subject": "Outage"})).await;
    app.fault(json!({"method": "POST", "pathPrefix": "/G2W", "status": 500}))
        .await;
    for i in 0..20 {
        assert_eq!(
            app.post_json(&webinar, &person(&format!("o{i}@example.com")))
                .await
                .status,
            202
        );
    }
    app.live_through(300_000, 1_000).await;
    let during = app.emu.stats().route_status(CREATE, 500);
    assert!(
        during <= 300 / 4 + 10,
        "one probe at a time, at most every 4 s: {during} calls"
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert!(
        ready.json["reason"]
            .as_str()
            .unwrap()
            .contains("GoTo is failing"),
        "{}",
        ready.text
    );
    let balancer = app.get("/readyz?intake").await;
    assert_eq!(
        balancer.status, 200,
        "intake goes on while GoTo fails: a load balancer keeps the gateway"
    );
    assert_eq!(
        balancer.json["status"], "not_ready",
        "the body still says why"
    );
    assert!(
        app.get("/metrics")
            .await
            .text
            .contains("g2w_queue_breaker_open{queue=\"registrations\"} 1\n")
    );

    app.clear_faults().await;
    let took = app.drain(30_000).await;
    assert!(
        took <= 5_000,
        "the backlog waited {took} ms after GoTo came back"
    );
    let stats = app.emu.stats();
    assert_eq!(stats.registrants_created, 20, "exactly once each");
    assert_eq!(stats.route_status(CREATE, 201), 20);
    assert_eq!(app.get("/readyz").await.status, 200);
}

#[tokio::test]
async fn thirty_seconds_of_401s_cost_one_refresh_and_readyz_tells_the_truth() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(json!({"subject": "Refused"})).await;
    app.fault(json!({"method": "POST", "pathPrefix": "/G2W", "status": 401}))
        .await;
    for i in 0..10 {
        app.post_json(&webinar, &person(&format!("r{i}@example.com")))
            .await;
    }
    app.live_through(30_000, 500).await;
    assert_eq!(
        app.emu.stats().grants("refresh_token"),
        1,
        "one refresh for the episode"
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.json["goto"]["breaker"], "open");
    assert_eq!(app.count(OutboxState::Dead).await, 0);
    assert_eq!(app.count(OutboxState::Failed).await, 0);

    app.clear_faults().await;
    app.drain(5_000).await;
    assert_eq!(app.count(OutboxState::Delivered).await, 10);
    assert_eq!(app.emu.stats().grants("refresh_token"), 1);
    assert_eq!(app.get("/readyz").await.status, 200);
}

#[tokio::test]
async fn unknown_webinar_keys_cost_goto_nothing_after_the_first_miss() {
    let app = TestApp::start_with(|c| c.lookups_per_ip_per_minute = 10).await;
    // The same unknown key, again and again: one look-up.
    for _ in 0..20 {
        assert_eq!(app.get("/r/123456789").await.status, 404);
    }
    assert_eq!(app.emu.stats().route_total(GET_WEBINAR), 1);
    // A flood of made-up keys from one address: only its small allowance reaches GoTo.
    let mut limited = 0;
    for i in 0..300_u64 {
        let status = app.get(&format!("/r/{}", 1_000_000 + i)).await.status;
        match status {
            429 => limited += 1,
            // 503: past the look-up budget, refused without asking GoTo.
            404 | 503 => {}
            other => panic!("{other}"),
        }
    }
    assert!(limited >= 285, "{limited} of 300 limited");
    assert!(app.emu.stats().route_total(GET_WEBINAR) <= 1 + 15);
}

#[tokio::test]
async fn page_views_cannot_starve_deliveries_of_gotos_budget() {
    // GoTo's 10 requests a second on both sides; no per-address limit, so only the
    // look-up budget (2 a second) stands between a flood and deliveries.
    let app = TestApp::start_limited(10, |c| c.lookups_per_ip_per_minute = 0).await;
    let (webinar, _) = app.webinar(json!({"subject": "Busy"})).await;
    for i in 0..10 {
        app.post_json(&webinar, &person(&format!("b{i}@example.com")))
            .await;
    }
    let gets_before = app.emu.stats().route_total(GET_WEBINAR);
    let started = Instant::now();
    let flood: Vec<_> = (0..200_u64)
        .map(|i| {
            let (http, url) = (
                app.http.clone(),
                format!("{}/r/{}", app.base, 5_000_000 + i),
            );
            tokio::spawn(async move { http.get(url).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    app.deliver_due().await;
    assert_eq!(app.count(OutboxState::Delivered).await, 10);
    for f in flood {
        let status = f.await.unwrap().unwrap();
        assert!([404, 503].contains(&status), "{status}");
    }
    let secs = started.elapsed().as_secs_f64();
    let lookups = app.emu.stats().route_total(GET_WEBINAR) - gets_before;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    // Two a second, after a burst of five seconds' worth.
    let allowance = (2.0 * secs).ceil() as u64 + 10;
    assert!(
        lookups <= allowance,
        "{lookups} look-ups in {secs:.1} s (allowance {allowance})"
    );
    assert_eq!(app.emu.stats().rate_limited, 0, "GoTo never had to say 429");
}

#[tokio::test]
async fn while_goto_fails_stale_forms_and_lists_are_served() {
    let app = TestApp::start_with(|c| c.cache_ttl = Duration::from_secs(60)).await;
    let (webinar, _) = app.webinar(json!({"subject": "Cached"})).await;
    assert_eq!(app.get(&format!("/r/{webinar}")).await.status, 200);
    assert_eq!(app.get("/api/v1/webinars").await.status, 200);
    let fetched = app.emu.stats().route_total(GET_WEBINAR);

    // Past the TTL GoTo fails: the stale entries are served, at once.
    app.fault(json!({"method": "GET", "pathPrefix": "/G2W", "status": 500}))
        .await;
    app.advance(2 * 3600 * 1000);
    let form = app.get(&format!("/r/{webinar}")).await;
    assert_eq!(form.status, 200);
    assert!(form.text.contains("Cached"));
    let list = app.get("/api/v1/webinars").await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.json["webinars"][0]["webinarKey"], webinar.as_str());
    assert!(list.json["webinars"][0]["registrationFields"].is_object());
    let post = app.post_json(&webinar, &person("stale@example.com")).await;
    assert_eq!(
        post.json["status"], "queued",
        "checked against the stale form"
    );
    // Visitors keep coming while GoTo is down: one renewal attempt each for the form
    // and the list, then a pause, not a GoTo call per page view.
    for _ in 0..10 {
        assert_eq!(app.get(&format!("/r/{webinar}")).await.status, 200);
        assert_eq!(app.get("/api/v1/webinars").await.status, 200);
    }
    for _ in 0..100 {
        let s = app.emu.stats();
        if s.route_status(GET_WEBINAR, 500) > 0 && s.route_status(GET_LIST, 500) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let during = app.emu.stats();
    assert_eq!(
        during.route_status(GET_WEBINAR, 500),
        1,
        "{:?}",
        during.requests
    );
    assert_eq!(
        during.route_status(GET_LIST, 500),
        1,
        "{:?}",
        during.requests
    );

    // A day past the TTL, nothing stale is left to serve.
    app.advance(24 * 3600 * 1000);
    assert_eq!(app.get(&format!("/r/{webinar}")).await.status, 503);
    assert_eq!(app.get("/api/v1/webinars").await.status, 502);

    // GoTo is back: a stale entry is answered and renewed behind the visitor's back.
    app.clear_faults().await;
    assert_eq!(app.get(&format!("/r/{webinar}")).await.status, 200);
    app.advance(61_000);
    let before = app.emu.stats().route_total(GET_WEBINAR);
    assert_eq!(app.get(&format!("/r/{webinar}")).await.status, 200);
    for _ in 0..100 {
        if app.emu.stats().route_total(GET_WEBINAR) > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.emu.stats().route_total(GET_WEBINAR), before + 1);
    assert!(fetched >= 1);
}

#[tokio::test]
async fn a_store_that_cannot_be_written_makes_readyz_say_so() {
    if crate::on_postgres() {
        // A disk that refuses writes is SQLite's failure; PostgreSQL's (a server that
        // stops answering) are in frozen_db.
        return;
    }
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(json!({"subject": "Full"})).await;
    assert_eq!(app.get("/readyz").await.status, 200);
    app.store.refuse_writes(true).await.unwrap();
    let post = app.post_json(&webinar, &person("full@example.com")).await;
    assert_eq!(post.status, 503);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert!(
        ready.json["reason"]
            .as_str()
            .unwrap()
            .contains("store cannot be written"),
        "{}",
        ready.text
    );
    assert_eq!(
        app.get("/readyz?intake").await.status,
        503,
        "a gateway that cannot store registrations leaves the load balancer"
    );
    app.store.refuse_writes(false).await.unwrap();
    assert_eq!(
        app.post_json(&webinar, &person("full@example.com"))
            .await
            .status,
        202
    );
    assert_eq!(app.get("/readyz").await.status, 200);
}

#[tokio::test]
async fn a_heartbeat_keeps_a_slow_delivery_from_being_taken_over() {
    let app = TestApp::start_with(|c| c.lease = Duration::from_millis(600)).await;
    let (webinar, _) = app.webinar(json!({"subject": "Slow POST"})).await;
    app.post_json(&webinar, &person("slowpost@example.com"))
        .await;
    app.fault(json!({"method": "POST", "pathPrefix": "/G2W", "delayMs": 2_000, "count": 1}))
        .await;
    let worker = app.worker.clone();
    let first = tokio::spawn(async move { worker.deliver_next().await.unwrap() });
    // Three leases' worth of waiting: without the heartbeat the row would be free.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(app.deliver_due().await, 0, "the lease is still held");
    first.await.unwrap();
    assert_eq!(app.count(OutboxState::Delivered).await, 1);
    assert_eq!(app.emu.stats().route_total(CREATE), 1, "sent once");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_429_nothing_leaves_before_retry_after_and_the_breaker_stays_closed() {
    let app = TestApp::start().await;
    let (slow, _) = app.webinar(json!({"subject": "Slow answer"})).await;
    let (limited, _) = app.webinar(json!({"subject": "Throttled"})).await;
    let organizer = app.emu.default_organizer_key();
    let path = |w: &str| format!("/G2W/rest/v2/organizers/{organizer}/webinars/{w}/registrants");
    // One attempt is in flight (GoTo answers it after 400 ms, successfully) when
    // another gets a 429 with Retry-After: 2.
    app.fault(json!({"method": "POST", "pathPrefix": path(&slow), "delayMs": 400, "count": 1}))
        .await;
    app.fault(json!({"method": "POST", "pathPrefix": path(&limited), "status": 429, "retryAfter": 2, "count": 1}))
        .await;
    app.post_json(&slow, &person("in-flight@example.com")).await;
    app.post_json(&limited, &person("throttled@example.com"))
        .await;
    let (a, b) = tokio::join!(app.worker.deliver_next(), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        app.worker.deliver_next().await
    });
    // A backlog waits behind the hold (posted now: ids made in one millisecond are in
    // no set order, and these must not be claimed before the throttled one).
    for i in 0..5 {
        app.post_json(&slow, &person(&format!("backlog{i}@example.com")))
            .await;
    }
    let states: Vec<OutboxState> = [a.unwrap(), b.unwrap()]
        .into_iter()
        .map(|s| match s {
            Step::Attempted(r) => r.state,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(
        states.contains(&OutboxState::Delivered) && states.contains(&OutboxState::Pending),
        "{states:?}"
    );
    let throttled = app
        .store
        .list(None, Some("throttled@example.com"), 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (throttled.attempts, throttled.failing_since.is_some()),
        (0, true),
        "a 429 uses no attempt (the give-up clock runs)"
    );
    let ready = app.get("/readyz").await;
    assert!(
        ready.text.contains("\"breaker\":\"closed\""),
        "a 429 is GoTo asking for a slower pace, not GoTo being unwell: {}",
        ready.text
    );
    let posts = app.emu.stats().route_total(CREATE);
    for _ in 0..3 {
        assert!(
            matches!(app.worker.deliver_next().await.unwrap(), Step::Waiting(_)),
            "nothing goes out before Retry-After has run out"
        );
    }
    app.advance(1_500);
    assert!(matches!(
        app.worker.deliver_next().await.unwrap(),
        Step::Waiting(_)
    ));
    assert_eq!(
        app.emu.stats().route_total(CREATE),
        posts,
        "no request left"
    );
    app.advance(600);
    app.drain(5_000).await;
    assert_eq!(app.count(OutboxState::Delivered).await, 7);
    assert_eq!(
        app.emu.stats().route_total(CREATE),
        posts + 6,
        "each waiting registration once, at once"
    );
}

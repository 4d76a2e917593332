//! Delivery: outcomes, dead tokens, crashed workers, keep-alive, sync wait. Outages,
//! 429 storms and the like are in `bad_days`.

use std::time::Duration;

use g2w_gateway::Step;
use g2w_store::OutboxState;
use serde_json::json;

use crate::{TestApp, person};

#[tokio::test]
async fn duplicates_failures_and_dead_letters() {
    let app = TestApp::start_with(|c| c.give_up_after = Duration::from_secs(150)).await;
    let (webinar, spec) = app.webinar(json!({"subject": "Outcomes", "questions": [{"question": "Why?", "type": "shortAnswer"}]})).await;
    // Registered at GoTo already (say, by GoTo's own page): 409 -> already_registered with the join URL.
    let token = app.tokens.access_token().await.unwrap();
    let direct: serde_json::Value = app
        .http
        .post(format!(
            "{}/G2W/rest/v2/organizers/{}/webinars/{webinar}/registrants",
            app.emu.base_url(),
            app.emu.default_organizer_key()
        ))
        .bearer_auth(g2w_goto::ExposeSecret::expose_secret(&token))
        .json(&person("known@example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let known = app.post_json(&webinar, &person("KNOWN@example.com")).await;
    app.deliver_due().await;
    let status = app
        .get(&format!(
            "/api/v1/registrations/{}",
            known.json["registrationId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status.json["status"], "already_registered");
    assert_eq!(status.json["joinUrl"], direct["joinUrl"]);

    // GoTo refuses for good (an answer the form check could not see): failed, with the reason.
    let q = spec["questions"][0]["questionKey"].as_str().unwrap();
    let mut odd = person("odd@example.com");
    odd["responses"] = json!([{"questionKey": q, "responseText": "x".repeat(1001)}]);
    assert_eq!(
        app.post_json(&webinar, &odd).await.status,
        400,
        "caught at intake"
    );
    app.control("/faults", json!({"method": "POST", "pathPrefix": "/G2W", "status": 400, "count": 1,
        "body": {"errorCode": "RegistrationInvalid", "invalidFields": [{"field": "email", "reason": "blocked domain"}]}})).await;
    let refused = app
        .post_json(&webinar, &person("blocked@example.com"))
        .await;
    app.deliver_due().await;
    let status = app
        .get(&format!(
            "/api/v1/registrations/{}",
            refused.json["registrationId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status.json["state"], "failed");
    assert!(
        status.json["error"]
            .as_str()
            .unwrap()
            .contains("blocked domain")
    );

    // Failing for longer than give_up_after: dead; a manual retry brings it back.
    app.control(
        "/faults",
        json!({"method": "POST", "pathPrefix": "/G2W", "status": 503}),
    )
    .await;
    let doomed = app.post_json(&webinar, &person("doomed@example.com")).await;
    app.deliver_all(5).await;
    let id = doomed.json["registrationId"].as_str().unwrap();
    let dead = app.store.registration(id).await.unwrap().unwrap();
    assert_eq!(dead.state, OutboxState::Dead);
    assert!(
        dead.last_error.as_deref().unwrap().contains("kept failing"),
        "{dead:?}"
    );
    app.clear_faults().await;
    assert!(app.store.retry(id, app.now()).await.unwrap());
    app.deliver_all(3).await;
    assert_eq!(
        app.store.registration(id).await.unwrap().unwrap().state,
        OutboxState::Delivered
    );
}

#[tokio::test]
async fn revoked_tokens_pause_delivery_intake_goes_on_and_a_new_login_resumes() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(json!({"subject": "Revoked"})).await;
    app.post_json(&webinar, &person("before@example.com")).await;
    app.control("/tokens/revoke", json!({})).await;
    app.emu.advance_clock(2 * 3600);
    let step = app.worker.deliver_next().await.unwrap();
    assert!(matches!(step, Step::Paused(_)), "{step:?}");
    assert_eq!(app.get("/readyz").await.status, 503);

    // Intake goes on (the form cannot be fetched either: basics only, GoTo checks later).
    let (other, _) = app.webinar(json!({"subject": "New while paused"})).await;
    assert_eq!(
        app.post_json(&other, &person("during@example.com"))
            .await
            .status,
        202
    );
    assert!(matches!(
        app.worker.deliver_next().await.unwrap(),
        Step::Paused(_)
    ));
    let pending = app
        .store
        .list(Some(OutboxState::Pending), None, 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 2);
    assert!(
        pending.iter().all(|r| r.attempts == 0),
        "a pause uses up no attempts"
    );

    crate::login(&app.emu, &app.store).await;
    app.deliver_all(3).await;
    assert_eq!(app.count(OutboxState::Delivered).await, 2);
    assert_eq!(app.get("/readyz").await.status, 200);
}

#[tokio::test]
async fn a_crashed_workers_lease_expires_and_the_registration_is_delivered_once() {
    let app = TestApp::start_with(|c| c.lease = Duration::from_secs(30)).await;
    let (webinar, _) = app.webinar(json!({"subject": "Crash"})).await;
    app.post_json(&webinar, &person("crash@example.com")).await;
    let taken = app
        .store
        .claim_jobs(
            g2w_store::QueueName::Registrations,
            "default",
            "crashed-worker",
            app.now(),
            std::time::Duration::from_secs(30),
            g2w_store::Claim::Due,
            1,
        )
        .await
        .unwrap()
        .remove(0);
    assert_eq!(app.deliver_due().await, 0, "leased to the crashed worker");
    app.advance(31_000);
    assert_eq!(app.deliver_due().await, 1);
    assert_eq!(
        app.store
            .registration(&taken.id)
            .await
            .unwrap()
            .unwrap()
            .state,
        OutboxState::Delivered
    );
    assert_eq!(app.emu.stats().registrants_created, 1);
}

#[tokio::test]
async fn keep_alive_refreshes_a_login_idle_for_a_day() {
    let app = TestApp::start().await;
    assert!(
        !app.worker.keep_alive_tick().await.unwrap(),
        "fresh login: nothing to do"
    );
    let mut record = app.store.load_profile("default").await.unwrap().unwrap();
    record.last_refresh_at =
        Some(g2w_goto::Timestamp::now() - std::time::Duration::from_secs(25 * 3600));
    app.store.save_profile("default", &record).await.unwrap();
    assert!(app.worker.keep_alive_tick().await.unwrap());
    assert_eq!(app.emu.stats().grants("refresh_token"), 1);
}

#[tokio::test]
async fn with_the_worker_running_a_post_answers_with_the_join_url() {
    let app = TestApp::start_running(|c| {
        c.sync_wait = Duration::from_secs(5);
    })
    .await;
    let (webinar, _) = app.webinar(json!({"subject": "Sync"})).await;
    let reply = app.post_json(&webinar, &person("sync@example.com")).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json["status"], "registered");
    assert!(reply.json["joinUrl"].as_str().unwrap().contains("/join/"));
    let again = app.post_json(&webinar, &person("sync@example.com")).await;
    assert_eq!(
        (again.status, again.json["status"].as_str()),
        (200, Some("already_registered"))
    );
    assert_eq!(again.json["joinUrl"], reply.json["joinUrl"]);
}

fn queued(app: &TestApp, webinar: &str, n: usize) -> Vec<g2w_store::NewRegistration> {
    let key: g2w_goto::WebinarKey = webinar.parse().unwrap();
    (0..n)
        .map(|i| g2w_store::NewRegistration {
            id: format!("backlog{i:04}"),
            profile: "default".into(),
            webinar_key: key,
            email: format!("b{i}@example.com"),
            payload: serde_json::to_string(&person(&format!("b{i}@example.com"))).unwrap(),
            idempotency_key: None,
            source: None,
            created_at: app.now(),
            validated: true,
        })
        .collect()
}

#[tokio::test]
async fn behind_a_backlog_that_cannot_be_delivered_in_time_the_answer_comes_at_once() {
    // GoTo's 10 a second; a generous sync wait that a short queue would use.
    let app = TestApp::start_limited(10, |c| c.sync_wait = Duration::from_secs(5)).await;
    let (webinar, _) = app.webinar(json!({"subject": "Backlog"})).await;
    app.store
        .enqueue(&queued(&app, &webinar, 300))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let reply = app.post_json(&webinar, &person("late@example.com")).await;
    let took = started.elapsed();
    assert_eq!(
        (reply.status, reply.json["status"].as_str()),
        (202, Some("queued"))
    );
    assert!(
        took < Duration::from_millis(2500),
        "waited {took:?} for a 202 that was certain: 301 registrations at 8 a second"
    );
}

#[tokio::test]
async fn while_delivery_is_paused_for_a_login_nobody_waits() {
    let app = TestApp::start_with(|c| c.sync_wait = Duration::from_secs(5)).await;
    let (webinar, _) = app.webinar(json!({"subject": "Paused"})).await;
    app.store.enqueue(&queued(&app, &webinar, 1)).await.unwrap();
    // The form is cached, so intake can check the registration in full.
    assert_eq!(app.get(&format!("/r/{webinar}")).await.status, 200);
    // The grant dies; the worker finds out on its next attempt and pauses.
    app.control("/tokens/revoke", json!({})).await;
    app.emu.advance_clock(2 * 3600);
    let step = app.worker.deliver_next().await.unwrap();
    assert!(matches!(step, Step::Paused(_)), "{step:?}");
    let started = std::time::Instant::now();
    let reply = app.post_json(&webinar, &person("p2@example.com")).await;
    assert_eq!(
        (reply.status, reply.json["status"].as_str()),
        (202, Some("queued")),
        "{}",
        reply.text
    );
    assert!(started.elapsed() < Duration::from_millis(2500));
}

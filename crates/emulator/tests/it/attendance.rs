//! Sessions, attendance and webhook deliveries, as a webhook receiver and a reporting
//! client see them.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::TestGoto;

/// A webhook receiver on port 0 that keeps what it is sent.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

async fn receiver() -> Receiver {
    let got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let kept = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::get(|| async { "ok" }).post(move |headers: HeaderMap, body: Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push((headers, body));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, got }
}

impl Receiver {
    /// Waits (up to 5 s of real time: deliveries are real HTTP) for `n` events.
    async fn events(&self, n: usize) -> Vec<(HeaderMap, Value)> {
        for _ in 0..500 {
            if self.got.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(h, b)| (h.clone(), serde_json::from_slice(b).unwrap()))
            .collect()
    }
}

/// Subscribes the default organizer to `events`, delivered to `url`; returns the secret.
async fn subscribe(goto: &TestGoto, token: &str, url: &str, events: &[&str]) -> String {
    let secret = goto
        .post_json(token, "/G2W/rest/v2/webhooks/secretkey", &json!({}))
        .await;
    let hooks: Vec<Value> = events
        .iter()
        .map(|e| json!({"callbackUrl": url, "eventName": e, "eventVersion": "1.0.0", "product": "g2w"}))
        .collect();
    let created = goto
        .post_json(token, "/G2W/rest/v2/webhooks", &json!(hooks))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let keys: Vec<Value> = created.json["_embedded"]["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["state"], "INACTIVE", "webhooks start inactive");
            json!({"webhookKey": h["webhookKey"], "state": "ACTIVE"})
        })
        .collect();
    let put = goto
        .send(
            goto.http
                .put(goto.url("/G2W/rest/v2/webhooks"))
                .bearer_auth(token)
                .json(&json!(keys)),
        )
        .await;
    assert_eq!(put.status, StatusCode::NO_CONTENT, "{}", put.text);
    let subs: Vec<Value> = keys
        .iter()
        .map(|k| json!({"webhookKey": k["webhookKey"]}))
        .collect();
    let subscribed = goto
        .post_json(token, "/G2W/rest/v2/userSubscriptions", &json!(subs))
        .await;
    assert_eq!(subscribed.status, StatusCode::OK, "{}", subscribed.text);
    assert!(
        subscribed.json["_embedded"]["userSubscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["activationState"] == "ACTIVE")
    );
    secret.json["value"].as_str().unwrap().to_owned()
}

async fn register(goto: &TestGoto, token: &str, webinar: u64, email: &str) -> u64 {
    let reply = goto
        .post_json(
            token,
            &goto.org_path(&format!("/webinars/{webinar}/registrants")),
            &json!({"firstName": "Ada", "lastName": "L", "email": email}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.json["registrantKey"].as_u64().unwrap()
}

#[tokio::test]
async fn events_are_signed_carry_exact_keys_and_a_unique_event_key() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    let hook = receiver().await;
    let secret = subscribe(
        &goto,
        &token,
        &hook.url,
        &["registrant.added", "registrant.joined", "webinar.created"],
    )
    .await;
    let (webinar, _) = goto.webinar(json!({"subject": "Events"})).await;
    let ada = register(&goto, &token, webinar, "ada@example.com").await;
    let outside = goto
        .control(
            &format!("/webinars/{webinar}/registrants"),
            &json!({"firstName": "Bo", "lastName": "K", "email": "bo@example.com"}),
        )
        .await;
    assert_eq!(outside.status, StatusCode::CREATED, "{}", outside.text);
    let ran = goto
        .control(
            "/sessions",
            &json!({"webinarKey": webinar, "attendance": [{"email": "ada@example.com"}]}),
        )
        .await;
    assert_eq!(ran.status, StatusCode::CREATED, "{}", ran.text);

    let events = hook.events(4).await;
    // Deliveries run concurrently: compare them sorted.
    let mut names: Vec<&str> = events
        .iter()
        .map(|(_, e)| e["eventName"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "registrant.added",
            "registrant.added",
            "registrant.joined",
            "webinar.created"
        ]
    );
    let raw = hook.got.lock().unwrap().clone();
    for (headers, body) in &raw {
        let signature = headers[g2w_emulator::SIGNATURE_HEADER].to_str().unwrap();
        assert_eq!(signature, g2w_emulator::sign_event(&secret, body));
    }
    let joined = &events
        .iter()
        .find(|(_, e)| e["eventName"] == "registrant.joined")
        .unwrap()
        .1;
    assert_eq!(
        joined["registrantKey"].as_u64(),
        Some(ada),
        "exact above 2^53"
    );
    assert!(ada > 1 << 53);
    assert_eq!(
        joined["sessionKey"].to_string(),
        ran.json["sessionKey"].as_str().unwrap()
    );
    let keys: std::collections::BTreeSet<&str> = events
        .iter()
        .map(|(_, e)| e["eventKey"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 4, "eventKey is unique per event");
}

#[tokio::test]
async fn creating_and_changing_a_webinar_through_the_api_are_events_too() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    let hook = receiver().await;
    subscribe(
        &goto,
        &token,
        &hook.url,
        &["webinar.created", "webinar.changed"],
    )
    .await;
    let now = goto.emu.now();
    let times = json!([{"startTime": g2w_emulator::to_iso(now + 86_400), "endTime": g2w_emulator::to_iso(now + 90_000)}]);
    let created = goto
        .post_json(
            &token,
            &goto.org_path("/webinars"),
            &json!({"subject": "Made", "times": times}),
        )
        .await;
    let key = created.json["webinarKey"].as_str().unwrap().to_owned();
    let changed = goto
        .send(
            goto.http
                .put(goto.url(&goto.org_path(&format!("/webinars/{key}"))))
                .bearer_auth(&token)
                .json(&json!({"subject": "Renamed"})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::ACCEPTED);
    let events = hook.events(2).await;
    let renamed = events
        .iter()
        .find(|(_, e)| e["eventName"] == "webinar.changed")
        .expect("webinar.changed delivered");
    assert_eq!(renamed.1["webinarTitle"], "Renamed");
    assert_eq!(
        renamed.1["webinarKey"].to_string(),
        key,
        "an integer, exact"
    );
    assert!(
        events
            .iter()
            .any(|(_, e)| e["eventName"] == "webinar.created" && e["status"] == "NEW")
    );
}

#[tokio::test]
async fn deliveries_can_be_dropped_or_duplicated_and_are_logged() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    let hook = receiver().await;
    subscribe(&goto, &token, &hook.url, &["registrant.added"]).await;
    let (webinar, _) = goto.webinar(json!({"subject": "Lossy"})).await;
    goto.control("/events/drop", &json!({"count": 1})).await;
    register(&goto, &token, webinar, "lost@example.com").await;
    goto.control("/events/duplicate", &json!({"count": 1}))
        .await;
    register(&goto, &token, webinar, "twice@example.com").await;
    let events = hook.events(2).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].1["eventKey"], events[1].1["eventKey"], "a repeat");
    assert_eq!(events[0].1["email"], "twice@example.com");
    let log = goto
        .send(goto.http.get(goto.url("/_emulator/events")))
        .await
        .json;
    let outcomes: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["dropped", "delivered", "delivered"]);
}

#[tokio::test]
async fn a_callback_that_fails_the_validation_get_is_refused() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    let reply = goto
        .post_json(
            &token,
            "/G2W/rest/v2/webhooks",
            &json!([{"callbackUrl": goto.url("/nothing-here"), "eventName": "registrant.added", "eventVersion": "1.0.0", "product": "g2w"}]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json["description"].as_str().unwrap().contains("404"),
        "{}",
        reply.text
    );
    let plain_http = goto
        .post_json(
            &token,
            "/G2W/rest/v2/webhooks",
            &json!([{"callbackUrl": "http://example.com/hook", "eventName": "registrant.added", "eventVersion": "1.0.0", "product": "g2w"}]),
        )
        .await;
    assert_eq!(plain_http.status, StatusCode::BAD_REQUEST, "https only");
}

#[tokio::test]
async fn attendance_is_reported_per_stay_with_minutes_only_after_the_session_ends() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    let (webinar, _) = goto.webinar(json!({"subject": "Report"})).await;
    let ada = register(&goto, &token, webinar, "ada@example.com").await;
    register(&goto, &token, webinar, "noshow@example.com").await;
    let t = |s: i64| g2w_emulator::to_iso(goto.emu.now() + s);
    let ran = goto
        .control(
            "/sessions",
            &json!({"webinarKey": webinar, "startTime": t(0), "attendance": [
                {"registrantKey": ada, "joinTime": t(60), "leaveTime": t(660)},
            ]}),
        )
        .await;
    let session = ran.json["sessionKey"].as_str().unwrap().to_owned();
    let w = goto.org_path(&format!("/webinars/{webinar}"));
    let running = goto.get(&token, &format!("{w}/sessions")).await;
    assert_eq!(
        running.json["page"]["totalElements"], 0,
        "a running session is not reported"
    );
    goto.control(
        "/sessions",
        &json!({"webinarKey": webinar, "sessionKey": session, "attendance": [
            {"registrantKey": ada, "joinTime": t(900), "leaveTime": t(1200)}
        ], "endTime": t(3600)}),
    )
    .await;
    let sessions = goto.get(&token, &format!("{w}/sessions")).await.json;
    let listed = &sessions["_embedded"]["sessionInfoResources"][0];
    assert_eq!(listed["sessionKey"], session.as_str());
    assert_eq!(
        (
            listed["registrantsAttended"].as_u64(),
            listed["registrantCount"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let attendees = goto
        .get(&token, &format!("{w}/sessions/{session}/attendees"))
        .await
        .json;
    assert_eq!(attendees[0]["registrantKey"].as_u64(), Some(ada));
    assert_eq!(
        attendees[0]["attendanceTimeInSeconds"], 900,
        "600 s + 300 s"
    );
    assert_eq!(attendees[0]["attendance"].as_array().unwrap().len(), 2);
    let all = goto.get(&token, &format!("{w}/attendees")).await.json;
    assert_eq!(
        all["_embedded"]["attendeeParticipationResponses"][0]["email"],
        "ada@example.com"
    );
    let bad = goto
        .control(
            "/sessions",
            &json!({"webinarKey": webinar, "attendance": [{"email": "stranger@example.com"}]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

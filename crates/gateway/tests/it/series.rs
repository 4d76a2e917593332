//! One form for a series: the dates that still take registrations, a pick, and the
//! registration for the webinar of that date, with and without script.

use g2w_store::OutboxState;
use serde_json::{Value, json};

use crate::TestApp;

const SERIES: &str = "9007199254740993";

fn iso(t: g2w_goto::Timestamp) -> String {
    g2w_emulator::to_iso(t.as_millis() / 1000)
}

/// A series of four dates: two open, one over, one full. Each date numbers its
/// question and answers differently, as separate webinars do. Returns (open dates in
/// order, the full one, the over one), each as (key, control API answer).
async fn series(app: &TestApp) -> (Vec<(String, Value)>, String, String) {
    let day = 24 * 3600 * 1000;
    let now = app.now();
    let at = |ms: i64| g2w_goto::Timestamp::from_millis(now.as_millis() + ms);
    let date = |start: g2w_goto::Timestamp, limit: u32| {
        json!({
            "subject": "Office hours", "recurrenceKey": SERIES, "timeZone": "Europe/Berlin",
            "startTime": iso(start), "durationMinutes": 30, "registrationLimit": limit,
            "questions": [{"question": "Your role?", "type": "multipleChoice", "required": true,
                           "answers": ["Marketing", "Engineering"]}],
        })
    };
    let second = app.webinar(date(at(14 * day), 100)).await;
    let first = app.webinar(date(at(7 * day), 100)).await;
    let (full, _) = app.webinar(date(at(3 * day), 1)).await;
    app.control(
        &format!("/webinars/{full}/registrants"),
        json!({"firstName": "Fay", "lastName": "Full", "email": "fay@example.com"}),
    )
    .await;
    let (over, _) = app.webinar(date(at(-2 * 3600 * 1000), 100)).await;
    // Another series and a lone webinar stay out of it.
    app.webinar(json!({"subject": "Elsewhere", "recurrenceKey": "9007199254740995"}))
        .await;
    app.webinar(json!({"subject": "Alone"})).await;
    (vec![first, second], full, over)
}

fn answer_key(spec: &Value, text: &str) -> String {
    spec["questions"][0]["answers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["answer"] == text)
        .unwrap()["answerKey"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn question_key(spec: &Value) -> String {
    spec["questions"][0]["questionKey"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_series_form_offers_open_dates_and_registers_for_the_one_picked_without_script() {
    let app = TestApp::start().await;
    let (open, full, over) = series(&app).await;
    let page = app.get(&format!("/r/series/{SERIES}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let html = &page.text;
    for (key, _) in &open {
        assert!(
            html.contains(&format!("name=\"webinarKey\" value=\"{key}\"")),
            "{key} offered"
        );
    }
    assert!(!html.contains(&full), "a full date is not offered");
    assert!(!html.contains(&over), "a past date is not offered");
    assert!(html.contains("<legend>Date"));
    assert!(html.contains(&format!("action=\"/r/series/{SERIES}\"")));
    assert!(
        html.contains("(Europe/Berlin)</time>"),
        "dates in the series' own zone"
    );
    let (first, first_spec) = &open[0];
    let first_at = html.find(first.as_str()).unwrap();
    let second_at = html.find(open[1].0.as_str()).unwrap();
    assert!(first_at < second_at, "soonest first");
    assert!(html.contains(&format!("name=\"formOf\" value=\"{first}\"")));

    // No date picked: the form again, the problem named, the answers kept.
    let q = question_key(first_spec);
    let engineering = answer_key(first_spec, "Engineering");
    let body = format!(
        "firstName=Ada&lastName=Lovelace&email=ada%40example.com&formOf={first}&q_{q}={engineering}"
    );
    let post = |body: String| {
        app.http
            .post(format!("{}/r/series/{SERIES}", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let refused = TestApp::reply(post(body.clone()).await.unwrap()).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.text.contains("“Date”: an answer is required."),
        "{}",
        refused.text
    );
    assert!(refused.text.contains("value=\"Lovelace\""), "values kept");
    // A date the series no longer offers.
    let gone = TestApp::reply(post(format!("{body}&webinarKey={full}")).await.unwrap()).await;
    assert_eq!(gone.status, 400);
    assert!(
        gone.text.contains("is not open for registration any more"),
        "{}",
        gone.text
    );

    // The second date, answered on the first date's questions: moved to its own.
    let (second, second_spec) = &open[1];
    let accepted = post(format!("{body}&webinarKey={second}")).await.unwrap();
    assert_eq!(accepted.status(), 303);
    app.deliver_all(3).await;
    let regs = app
        .store
        .list(None, Some("ada@example.com"), 10)
        .await
        .unwrap();
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].webinar_key.to_string(), *second);
    assert_eq!(
        regs[0].state,
        OutboxState::Delivered,
        "{:?}",
        regs[0].last_error
    );
    assert!(
        regs[0].payload.contains(&question_key(second_spec))
            && regs[0]
                .payload
                .contains(&answer_key(second_spec, "Engineering")),
        "{}",
        regs[0].payload
    );

    for missing in ["/r/series/123", "/r/series/not-a-key"] {
        let page = app.get(missing).await;
        assert_eq!(page.status, 404);
        assert!(page.text.contains("No dates to register for"));
    }
}

#[tokio::test]
async fn the_forms_script_registers_for_a_date_with_json_and_the_api_lists_the_dates() {
    let app = TestApp::start().await;
    let (open, _, _) = series(&app).await;
    let listed = app.get(&format!("/api/v1/webinars?series={SERIES}")).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let keys: Vec<&str> = listed.json["webinars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["webinarKey"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec![open[0].0.as_str(), open[1].0.as_str()]);
    assert!(listed.json["webinars"][0]["registrationFields"]["questions"].is_array());
    assert_eq!(app.get("/api/v1/webinars?series=abc").await.status, 400);
    let none = app.get("/api/v1/webinars?series=42").await;
    assert_eq!(none.json["webinars"], json!([]));

    let (first, spec) = &open[0];
    let body = json!({
        "firstName": "Grace", "lastName": "Hopper", "email": "grace@example.com",
        "webinarKey": first, "formOf": first,
        "responses": [{"questionKey": question_key(spec), "answerKey": answer_key(spec, "Marketing")}],
    });
    let sent = TestApp::reply(
        app.http
            .post(format!("{}/r/series/{SERIES}", app.base))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    assert_eq!(sent.json["status"], "queued");
    let mut unpicked = body.clone();
    unpicked.as_object_mut().unwrap().remove("webinarKey");
    let refused = TestApp::reply(
        app.http
            .post(format!("{}/r/series/{SERIES}", app.base))
            .json(&unpicked)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.json["fields"]["webinarKey"],
        "an answer is required"
    );
    app.deliver_all(3).await;
    assert_eq!(app.count(OutboxState::Delivered).await, 1);
}

#[tokio::test]
async fn a_refused_field_brings_the_series_form_back_with_the_date_still_picked() {
    let app = TestApp::start().await;
    let (open, _, _) = series(&app).await;
    let second = &open[1].0;
    let body = format!(
        "firstName=Ada&lastName=&email=ada%40example.com&webinarKey={second}&formOf={}&q_{}={}",
        open[0].0,
        question_key(&open[0].1),
        answer_key(&open[0].1, "Marketing"),
    );
    let refused = TestApp::reply(
        app.http
            .post(format!("{}/r/series/{SERIES}", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.text.contains("Last name is required."),
        "{}",
        refused.text
    );
    assert!(
        refused
            .text
            .contains(&format!("name=\"webinarKey\" value=\"{second}\" checked")),
        "the series' form again, the date still picked: {}",
        refused.text
    );
    assert!(
        refused
            .text
            .contains(&format!("action=\"/r/series/{SERIES}\""))
    );
}

#[tokio::test]
async fn while_goto_cannot_list_the_series_the_date_picked_is_taken_and_delivered_later() {
    let app = TestApp::start().await;
    let (open, _, _) = series(&app).await;
    // Nothing cached yet, and GoTo answers nothing but 503.
    app.fault(json!({"method": "GET", "pathPrefix": "/G2W", "status": 503}))
        .await;
    let (first, spec) = &open[0];
    let sent = TestApp::reply(
        app.http
            .post(format!("{}/r/series/{SERIES}", app.base))
            .json(&json!({"firstName": "Ada", "lastName": "Lovelace",
                          "email": "ada@example.com", "webinarKey": first, "formOf": first,
                          "responses": [{"questionKey": question_key(spec),
                                         "answerKey": answer_key(spec, "Marketing")}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    assert_eq!(sent.json["status"], "pending_validation");
    // Without a date there is nothing to take: the visitor is asked to pick one.
    let unpicked = TestApp::reply(
        app.http
            .post(format!("{}/r/series/{SERIES}", app.base))
            .json(&json!({"firstName": "Bo", "lastName": "B", "email": "bo@example.com"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(unpicked.status, 400, "{}", unpicked.text);
    app.clear_faults().await;
    app.deliver_all(3).await;
    let regs = app
        .store
        .list(None, Some("ada@example.com"), 10)
        .await
        .unwrap();
    assert_eq!(
        regs[0].state,
        OutboxState::Delivered,
        "{:?}",
        regs[0].last_error
    );
    assert_eq!(regs[0].webinar_key.to_string(), *first);
}

#[tokio::test]
async fn a_series_far_ahead_or_made_after_the_list_was_read_is_offered() {
    let app = TestApp::start().await;
    let day = 24 * 3600 * 1000;
    let at = |ms: i64| g2w_goto::Timestamp::from_millis(app.now().as_millis() + ms);
    let weekly = |series: &str, first_day: i64, week: i64| {
        json!({"subject": "Far ahead", "recurrenceKey": series, "timeZone": "Europe/Berlin",
               "startTime": iso(at((first_day + 7 * week) * day)), "durationMinutes": 30})
    };
    // Weekly, from 105 days ahead: beyond the 90 days the list holds.
    let far = "9007199254740997";
    for week in 0..3 {
        app.webinar(weekly(far, 105, week)).await;
    }
    // The list is read (and cached) before the next series is made.
    assert_eq!(app.get("/api/v1/webinars").await.status, 200);
    let soon = "9007199254740999";
    for week in 0..2 {
        app.webinar(weekly(soon, 10, week)).await;
    }
    for (series, dates) in [(far, 3), (soon, 2)] {
        let listed = app.get(&format!("/api/v1/webinars?series={series}")).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        assert_eq!(
            listed.json["webinars"].as_array().unwrap().len(),
            dates,
            "{series}: {}",
            listed.text
        );
        let form = app.get(&format!("/r/series/{series}")).await;
        assert_eq!(form.status, 200, "{series}: {}", form.text);
    }
    // A series GoTo does not have is still 404, and asking again soon costs GoTo nothing.
    let asked = app
        .emu
        .stats()
        .route_total("GET /G2W/rest/v2/organizers/{organizer_key}/webinars");
    assert_eq!(app.get("/r/series/123456789").await.status, 404);
    assert_eq!(app.get("/r/series/123456789").await.status, 404);
    assert_eq!(
        app.emu
            .stats()
            .route_total("GET /G2W/rest/v2/organizers/{organizer_key}/webinars")
            - asked,
        1,
        "one look-up for an unknown series"
    );
}

#[tokio::test]
async fn made_up_series_keys_from_one_address_cost_goto_a_bounded_number_of_look_ups() {
    let app = TestApp::start_with(|c| c.lookups_per_ip_per_minute = 5).await;
    assert_eq!(
        app.get("/api/v1/webinars").await.status,
        200,
        "the list is held"
    );
    let route = "GET /G2W/rest/v2/organizers/{organizer_key}/webinars";
    let before = app.emu.stats().route_total(route);
    let mut answers = std::collections::BTreeMap::new();
    for n in 0..40_u64 {
        let form = app.get(&format!("/r/series/{}", 1_000_000 + n)).await;
        *answers.entry(form.status).or_insert(0) += 1;
        let api = app
            .get(&format!("/api/v1/webinars?series={}", 2_000_000 + n))
            .await;
        *answers.entry(api.status).or_insert(0) += 1;
    }
    let asked = app.emu.stats().route_total(route) - before;
    assert!(asked <= 5, "GoTo asked {asked} times for 80 made-up series");
    assert!(
        answers.keys().all(|s| [404, 200, 502, 503].contains(s)),
        "{answers:?}"
    );
    assert!(
        answers.get(&503).copied().unwrap_or(0) + answers.get(&502).copied().unwrap_or(0) > 0,
        "the address is told to come back later: {answers:?}"
    );
}

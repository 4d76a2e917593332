//! The control API: clock, faults, stats, reset, set-up helpers.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::TestGoto;

const ALL_TIME: &str = "fromTime=2000-01-01T00:00:00Z&toTime=2100-01-01T00:00:00Z";

#[tokio::test]
async fn the_clock_moves_forward_only() {
    let goto = TestGoto::start().await;
    let before = goto
        .send(goto.http.get(goto.url("/_emulator/clock")))
        .await
        .json;
    assert_eq!(before["offsetSeconds"], 0);
    let after = goto
        .control("/clock/advance", &json!({"seconds": 7200}))
        .await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.json["offsetSeconds"], 7200);
    assert!(after.json["unix"].as_i64().unwrap() - before["unix"].as_i64().unwrap() >= 7200);
    assert!(after.json["now"].as_str().unwrap().ends_with('Z'));
    for bad in [json!({"seconds": -1}), json!({"secs": 5}), json!("x")] {
        assert_eq!(
            goto.control("/clock/advance", &bad).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn status_faults_apply_to_the_next_n_matching_requests() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    let path = goto.org_path(&format!("/webinars?{ALL_TIME}"));
    let fault = goto
        .control("/faults", &json!({"method": "GET", "pathPrefix": "/G2W/rest/v2/", "status": 503, "retryAfter": 2, "count": 2}))
        .await;
    assert_eq!(fault.status, StatusCode::CREATED);
    for _ in 0..2 {
        let reply = goto.get(&token, &path).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.headers["retry-after"], "2");
    }
    assert_eq!(goto.get(&token, &path).await.status, StatusCode::OK);
    // Other methods and paths are untouched by a method-specific fault.
    goto.control(
        "/faults",
        &json!({"method": "POST", "pathPrefix": "/G2W", "status": 500}),
    )
    .await;
    assert_eq!(goto.get(&token, &path).await.status, StatusCode::OK);
    let listed = goto
        .send(goto.http.get(goto.url("/_emulator/faults")))
        .await;
    assert_eq!(listed.json.as_array().unwrap().len(), 1);
    let cleared = goto
        .send(goto.http.delete(goto.url("/_emulator/faults")))
        .await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT);
    let stats = goto.stats();
    let route = "GET /G2W/rest/v2/organizers/{organizer_key}/webinars";
    assert_eq!(stats.route_status(route, 503), 2);
    assert_eq!(stats.route_status(route, 200), 2);
}

#[tokio::test]
async fn injected_429_with_a_custom_body_and_probability_one() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    goto.control(
        "/faults",
        &json!({"pathPrefix": "/admin", "status": 429, "probability": 1.0}),
    )
    .await;
    let reply = goto.get(&token, "/admin/rest/v1/me").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.json["int_err_code"], "TooManyRequests");
    goto.send(goto.http.delete(goto.url("/_emulator/faults")))
        .await;
    goto.control(
        "/faults",
        &json!({"pathPrefix": "/admin", "status": 500, "body": {"custom": true}, "count": 1}),
    )
    .await;
    assert_eq!(
        goto.get(&token, "/admin/rest/v1/me").await.json,
        json!({"custom": true})
    );
    assert_eq!(goto.stats().rate_limited, 1);
}

#[tokio::test]
async fn a_drop_fault_closes_the_connection_without_a_response() {
    let goto = TestGoto::start().await;
    goto.control(
        "/faults",
        &json!({"pathPrefix": "/oauth/token", "drop": true, "count": 1}),
    )
    .await;
    let result = goto
        .http
        .post(goto.url("/oauth/token"))
        .basic_auth("demo-client", Some("demo-secret"))
        .body("grant_type=refresh_token&refresh_token=x")
        .send()
        .await;
    let err = result.expect_err("the connection was dropped");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    // The next request goes through.
    let next = goto
        .token_request(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .await;
    assert_eq!(next.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        goto.stats()
            .route_status("POST /oauth/token", g2w_emulator::DROPPED),
        1
    );
}

#[tokio::test]
async fn a_delay_fault_slows_the_answer() {
    let goto = TestGoto::start().await;
    goto.control(
        "/faults",
        &json!({"pathPrefix": "/admin", "delayMs": 300, "count": 1}),
    )
    .await;
    let token = goto.token().await;
    let started = Instant::now();
    let reply = goto.get(&token, "/admin/rest/v1/me").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn bad_fault_specs_are_refused_and_the_control_api_is_never_faulted() {
    let goto = TestGoto::start().await;
    for bad in [
        json!({"pathPrefix": "/"}),
        json!({"status": 1000}),
        json!({"drop": true, "status": 500}),
        json!({"status": 500, "probability": 2}),
        json!({"status": 500, "unknownField": 1}),
    ] {
        let reply = goto.control("/faults", &bad).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply.json["error"].is_string());
    }
    goto.control("/faults", &json!({"status": 500})).await;
    let stats = goto.send(goto.http.get(goto.url("/_emulator/stats"))).await;
    assert_eq!(stats.status, StatusCode::OK, "faults skip /_emulator");
    assert_eq!(
        goto.send(goto.http.get(goto.url("/oauth/authorize")))
            .await
            .status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn stats_count_grants_routes_and_registrants_and_reset_forgets_everything() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    let (webinar, _) = goto.webinar(json!({"subject": "S"})).await;
    let path = goto.org_path(&format!("/webinars/{webinar}/registrants"));
    goto.post_json(
        &token,
        &path,
        &json!({"firstName": "A", "lastName": "B", "email": "a@b.co"}),
    )
    .await;
    let stats = goto
        .send(goto.http.get(goto.url("/_emulator/stats")))
        .await
        .json;
    assert_eq!(stats["tokenGrants"]["personal_access_token"], 1);
    assert_eq!(stats["registrantsCreated"], 1);
    assert_eq!(
        stats["requests"]["POST /G2W/rest/v2/organizers/{organizer_key}/webinars/{webinar_key}/registrants"]
            ["201"],
        1
    );

    goto.control("/clock/advance", &json!({"seconds": 100}))
        .await;
    assert_eq!(
        goto.control("/reset", &json!({})).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(goto.stats(), g2w_emulator::Stats::default());
    assert_eq!(
        goto.get(&token, "/admin/rest/v1/me").await.status,
        StatusCode::FORBIDDEN,
        "tokens forgotten"
    );
    let token = goto.token().await;
    let list = goto
        .get(&token, &goto.org_path(&format!("/webinars?{ALL_TIME}")))
        .await;
    assert_eq!(list.json["page"]["totalElements"], 0);
    let clock = goto
        .send(goto.http.get(goto.url("/_emulator/clock")))
        .await
        .json;
    assert_eq!(clock["offsetSeconds"], 0);
}

#[tokio::test]
async fn seed_demo_has_two_organizers_webinars_with_questions_and_a_series() {
    let goto = TestGoto::start_with(g2w_emulator::EmulatorConfig {
        seed_demo: true,
        ..Default::default()
    })
    .await;
    let token = goto.token().await;
    let list = goto
        .get(&token, &goto.org_path(&format!("/webinars?{ALL_TIME}")))
        .await;
    let all = list.json["_embedded"]["webinars"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(all.len(), 5, "two webinars and a series of three");
    let (series, webinars): (Vec<_>, Vec<_>) =
        all.iter().partition(|w| w["recurrenceType"] == "series");
    assert_eq!(series.len(), 3);
    assert!(
        series
            .iter()
            .all(|w| w["recurrenceKey"].is_string()
                && w["recurrenceKey"] == series[0]["recurrenceKey"]),
        "{series:?}"
    );
    let mut kinds = Vec::new();
    for w in &webinars {
        let key = w["webinarKey"].as_str().unwrap();
        let fields = goto
            .get(
                &token,
                &goto.org_path(&format!("/webinars/{key}/registrants/fields")),
            )
            .await;
        let questions = fields.json["questions"].as_array().unwrap().clone();
        kinds.push(
            questions
                .iter()
                .map(|q| {
                    (
                        q["type"].as_str().unwrap().to_owned(),
                        q["required"].as_bool().unwrap(),
                    )
                })
                .collect::<Vec<_>>(),
        );
    }
    assert!(
        kinds.contains(&vec![
            ("shortAnswer".to_owned(), true),
            ("multipleChoice".to_owned(), false)
        ]),
        "{kinds:?}"
    );
    assert!(kinds.contains(&vec![]));

    // The second organizer, in an account of their own, with a webinar of theirs.
    let organizers = goto
        .send(goto.http.get(goto.url("/_emulator/organizers")))
        .await
        .json;
    let second = organizers
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["default"] == false)
        .expect("a second organizer")
        .clone();
    let first = organizers
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["default"] == true)
        .unwrap();
    assert_ne!(second["accountKey"], first["accountKey"]);
    let second_key = crate::key(&second["organizerKey"]);
    let theirs = goto
        .get(
            &goto.token_for(second_key).await,
            &format!("/G2W/rest/v2/organizers/{second_key}/webinars?{ALL_TIME}"),
        )
        .await;
    assert_eq!(theirs.json["page"]["totalElements"], 1, "{}", theirs.text);

    // Reset brings the demo data back, with the same organizers.
    goto.control("/reset", &json!({})).await;
    let token = goto.token().await;
    let list = goto
        .get(&token, &goto.org_path(&format!("/webinars?{ALL_TIME}")))
        .await;
    assert_eq!(list.json["page"]["totalElements"], 5);
    assert!(goto.token_for(second_key).await.len() > 20);
}

#[tokio::test]
async fn setup_helpers_refuse_nonsense() {
    let goto = TestGoto::start().await;
    for bad in [
        json!({}),
        json!({"subject": "x", "organizerKey": "42"}),
        json!({"subject": "x", "fields": [{"field": "shoeSize"}]}),
        json!({"subject": "x", "questions": [{"question": "q", "type": "multipleChoice"}]}),
        json!({"subject": "x", "questions": [{"question": "q", "type": "essay"}]}),
        json!({"subject": "x", "approvalType": "SOMETIMES"}),
        json!({"subject": "x", "startTime": "tomorrow"}),
    ] {
        assert_eq!(
            goto.control("/webinars", &bad).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(
        goto.control("/pats", &json!({"organizerKey": 1}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let organizers = goto
        .send(goto.http.get(goto.url("/_emulator/organizers")))
        .await
        .json;
    assert_eq!(organizers[0]["default"], true);
    assert_eq!(organizers[0]["organizerKey"], goto.organizer().to_string());
}

//! Webinar and registrant calls against the emulator, faults included.

use g2w_goto::{GotoError, QuestionResponse, QuestionType};
use serde_json::json;

use crate::{Fixture, person};

#[tokio::test]
async fn webinars_walk_every_page_and_keys_stay_exact() {
    let f = Fixture::start().await;
    let mut made = Vec::new();
    for i in 0..450 {
        made.push(f.webinar(json!({"subject": format!("W{i}")})).await.0);
    }
    let now = chrono::Utc::now();
    let all = f
        .client
        .webinars(now, now + chrono::Duration::days(30))
        .await
        .unwrap();
    assert_eq!(all.len(), 450);
    let mut keys: Vec<_> = all.iter().map(|w| w.webinar_key).collect();
    keys.sort();
    made.sort();
    assert_eq!(keys, made, "every key exact, none twice");
    assert_eq!(
        f.emu
            .stats()
            .route_total("GET /G2W/rest/v2/organizers/{organizer_key}/webinars"),
        3,
        "three pages of 200"
    );
    let detail = f.client.webinar(made[0]).await.unwrap();
    assert_eq!(detail.webinar_key, made[0]);
    assert!(made[0].get() > 1 << 53);
}

#[tokio::test]
async fn registration_with_answers_duplicates_and_invalid_fields() {
    let f = Fixture::start().await;
    let (webinar, spec) = f
        .webinar(json!({"subject": "Q", "questions": [
            {"question": "Why?", "type": "shortAnswer", "required": true},
            {"question": "Size?", "type": "multipleChoice", "answers": ["S", "L"]}
        ]}))
        .await;
    let fields = f.client.registration_fields(webinar).await.unwrap();
    assert_eq!(fields.questions.len(), 2);
    assert_eq!(fields.questions[1].kind, QuestionType::MultipleChoice);
    assert_eq!(fields.questions[1].answers[1].answer, "L");
    assert_eq!(
        fields.questions[0].question_key.to_string(),
        spec["questions"][0]["questionKey"].as_str().unwrap()
    );

    let mut ada = person("ada@example.com");
    ada.responses = vec![
        QuestionResponse {
            question_key: fields.questions[0].question_key,
            response_text: Some("Engines".into()),
            answer_key: None,
        },
        QuestionResponse {
            question_key: fields.questions[1].question_key,
            response_text: None,
            answer_key: Some(fields.questions[1].answers[1].answer_key),
        },
    ];
    let created = f
        .client
        .create_registrant(webinar, &ada, false)
        .await
        .unwrap();
    let detail = f
        .client
        .registrant(webinar, created.registrant_key)
        .await
        .unwrap();
    assert_eq!(
        detail.responses.len(),
        2,
        "answers kept: Accept: application/json"
    );
    assert_eq!(detail.responses[1].answer, "L");

    let again = f
        .client
        .create_registrant(webinar, &ada, false)
        .await
        .unwrap_err();
    let GotoError::AlreadyRegistered {
        registrant_key,
        join_url,
    } = again
    else {
        panic!("{again:?}")
    };
    assert_eq!(registrant_key, Some(created.registrant_key));
    assert_eq!(join_url.as_deref(), Some(created.join_url.as_str()));
    let found = f
        .client
        .find_registrant(webinar, " ADA@example.com ")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.registrant_key, created.registrant_key);

    let invalid = f
        .client
        .create_registrant(webinar, &person("grace@example.com"), false)
        .await
        .unwrap_err();
    let GotoError::RegistrationInvalid { fields: bad, .. } = &invalid else {
        panic!("{invalid:?}")
    };
    assert_eq!(bad[0].question_key, Some(fields.questions[0].question_key));
    assert!(!invalid.is_retryable());

    f.client
        .delete_registrant(webinar, created.registrant_key)
        .await
        .unwrap();
    assert!(
        f.client
            .find_registrant(webinar, "ada@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let gone = f
        .client
        .webinar(g2w_goto::WebinarKey::new(42))
        .await
        .unwrap_err();
    assert!(matches!(gone, GotoError::NotFound { .. }));
}

#[tokio::test]
async fn five_hundreds_429s_and_dropped_connections_are_retried_to_exactly_one_registrant() {
    let f = Fixture::start().await;
    let (webinar, _) = f.webinar(json!({"subject": "Faults"})).await;
    let path = "/G2W/rest/v2/organizers";
    f.fault(json!({"method": "POST", "pathPrefix": path, "status": 500, "count": 2}))
        .await;
    f.fault(
        json!({"method": "POST", "pathPrefix": path, "status": 429, "retryAfter": 1, "count": 1}),
    )
    .await;
    f.fault(json!({"method": "POST", "pathPrefix": path, "drop": true, "count": 1}))
        .await;
    let created = f
        .client
        .create_registrant(webinar, &person("retry@example.com"), false)
        .await
        .unwrap();
    assert!(created.join_url.contains(&webinar.to_string()));
    let stats = f.emu.stats();
    let route = "POST /G2W/rest/v2/organizers/{organizer_key}/webinars/{webinar_key}/registrants";
    assert_eq!(stats.route_status(route, 500), 2);
    assert_eq!(stats.route_status(route, 429), 1);
    assert_eq!(stats.route_status(route, g2w_emulator::DROPPED), 1);
    assert_eq!(stats.registrants_created, 1);

    // Past the attempt limit the error comes back, marked retryable.
    f.fault(json!({"method": "POST", "pathPrefix": path, "status": 503}))
        .await;
    let err = f
        .client
        .create_registrant(webinar, &person("down@example.com"), false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, GotoError::Upstream { status: 503, .. }) && err.is_retryable(),
        "{err:?}"
    );
    assert_eq!(
        f.emu.stats().route_status(route, 503),
        5,
        "five attempts in all"
    );
}

#[tokio::test]
async fn a_malformed_answer_is_a_decode_error_naming_the_field() {
    let f = Fixture::start().await;
    let (webinar, _) = f.webinar(json!({"subject": "Odd"})).await;
    f.fault(
        json!({"method": "GET", "pathPrefix": "/G2W", "status": 200, "count": 1,
        "body": [{"registrantKey": 1.5, "email": "x@example.com"}]}),
    )
    .await;
    let err = f.client.registrants(webinar).await.unwrap_err();
    let GotoError::Decode { path, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, "registrants.[0].registrantKey");
    f.fault(json!({"method": "GET", "pathPrefix": "/G2W", "status": 200, "count": 1, "body": {"data": [{"registrantKey": "9007199254740993", "email": "x@example.com"}]}})).await;
    let wrapped = f.client.registrants(webinar).await.unwrap();
    assert_eq!(
        wrapped[0].registrant_key.get(),
        9_007_199_254_740_993,
        "the enveloped shape is read too"
    );
}

#[tokio::test]
async fn another_organizers_webinar_is_forbidden_not_a_token_problem() {
    let f = Fixture::start().await;
    let other = f
        .control("/organizers", json!({"email": "o@example.com"}))
        .await;
    let (webinar, _) = f
        .webinar(json!({"subject": "Theirs", "organizerKey": other["organizerKey"]}))
        .await;
    let err = f.client.webinar(webinar).await.unwrap_err();
    assert!(matches!(err, GotoError::NotFound { .. }), "{err:?}");
    assert_eq!(
        f.emu.stats().grants("refresh_token"),
        0,
        "no refresh for a non-token 403/404"
    );
}

#[tokio::test]
async fn a_login_stored_without_its_account_learns_it_once_before_booking_anything() {
    let f = std::sync::Arc::new(Fixture::start().await);
    let mut legacy = f.record();
    legacy.account_key = None;
    f.store.put("default", &legacy);
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move {
                let now = chrono::Utc::now();
                f.client
                    .webinars(now, now + chrono::Duration::days(30))
                    .await
            })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let stats = f.emu.stats();
    assert_eq!(
        stats.route_total("GET /admin/rest/v1/me"),
        1,
        "one look-up for sixteen calls"
    );
    let learned = f.record().account_key.unwrap();
    let now = chrono::Utc::now();
    f.client
        .webinars(now, now + chrono::Duration::days(30))
        .await
        .unwrap();
    assert_eq!(
        f.emu.stats().route_total("GET /admin/rest/v1/me"),
        1,
        "kept with the login"
    );
    let organizers: serde_json::Value = f
        .http
        .get(format!("{}/_emulator/organizers", f.emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        organizers[0]["accountKey"].as_str().unwrap(),
        learned.to_string(),
        "the organizer's own account"
    );
}

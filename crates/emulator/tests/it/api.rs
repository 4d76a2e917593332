//! The Webinar v2 API: auth, webinars, registrants, rate limit, 64-bit keys.

use g2w_emulator::EmulatorConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{TestGoto, key};

const ALL_TIME: &str = "fromTime=2000-01-01T00:00:00Z&toTime=2100-01-01T00:00:00Z";

fn questions_spec() -> Value {
    json!({
        "subject": "Questions webinar",
        "fields": [{"field": "organization", "required": true}, {"field": "industry", "answers": ["Retail", "Health"]}],
        "questions": [
            {"question": "Why are you here?", "type": "shortAnswer", "required": true, "maxSize": 20},
            {"question": "Team size?", "type": "multipleChoice", "answers": ["1-10", "11+"]}
        ]
    })
}

fn person(email: &str) -> Value {
    json!({"firstName": "Ada", "lastName": "Lovelace", "email": email})
}

#[tokio::test]
async fn missing_or_unknown_tokens_get_invalid_token_and_other_organizers_a_plain_403() {
    let goto = TestGoto::start().await;
    let path = goto.org_path(&format!("/webinars?{ALL_TIME}"));
    let anonymous = goto.send(goto.http.get(goto.url(&path))).await;
    assert_eq!(anonymous.status, StatusCode::FORBIDDEN);
    assert_eq!(
        anonymous.json,
        json!({"int_err_code": "InvalidToken", "msg": "Invalid token passed"})
    );
    assert_eq!(
        goto.get("made-up", &path).await.json["int_err_code"],
        "InvalidToken"
    );

    let other = goto
        .control("/organizers", &json!({"email": "other@example.com"}))
        .await;
    let other_key = other.json["organizerKey"].as_str().unwrap().to_owned();
    let token = goto.token().await;
    let foreign = goto
        .get(
            &token,
            &format!("/G2W/rest/v2/organizers/{other_key}/webinars?{ALL_TIME}"),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert!(
        foreign.json.get("int_err_code").is_none(),
        "not an InvalidToken: {}",
        foreign.text
    );
    assert!(foreign.json["errorCode"].is_string());
}

#[tokio::test]
async fn webinar_list_needs_a_range_and_pages_through_the_envelope() {
    let goto = TestGoto::start().await;
    for i in 0..45 {
        goto.webinar(json!({"subject": format!("W{i}")})).await;
    }
    let token = goto.token().await;
    let missing = goto.get(&token, &goto.org_path("/webinars")).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.json["errorCode"], "RequestValidationError");
    assert!(missing.json["incident"].is_u64());
    let too_big = goto
        .get(
            &token,
            &goto.org_path(&format!("/webinars?{ALL_TIME}&size=201")),
        )
        .await;
    assert_eq!(too_big.status, StatusCode::BAD_REQUEST);

    let first = goto
        .get(&token, &goto.org_path(&format!("/webinars?{ALL_TIME}")))
        .await;
    assert_eq!(
        first.json["page"],
        json!({"size": 20, "totalElements": 45, "totalPages": 3, "number": 0})
    );
    let mut seen = std::collections::HashSet::new();
    for page in 0..3 {
        let reply = goto
            .get(
                &token,
                &goto.org_path(&format!("/webinars?{ALL_TIME}&page={page}")),
            )
            .await;
        let items = reply.json["_embedded"]["webinars"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(items.len(), if page < 2 { 20 } else { 5 });
        for w in items {
            let key = w["webinarKey"]
                .as_str()
                .expect("list keys are strings")
                .to_owned();
            assert!(key.parse::<u64>().unwrap() > 1 << 53);
            seen.insert(key);
        }
    }
    assert_eq!(seen.len(), 45, "every webinar exactly once across pages");
    let big_page = goto
        .get(
            &token,
            &goto.org_path(&format!("/webinars?{ALL_TIME}&size=200")),
        )
        .await;
    assert_eq!(
        big_page.json["_embedded"]["webinars"]
            .as_array()
            .unwrap()
            .len(),
        45
    );
    let narrow = goto
        .get(
            &token,
            &goto.org_path("/webinars?fromTime=2000-01-01T00:00:00Z&toTime=2000-02-01T00:00:00Z"),
        )
        .await;
    assert_eq!(narrow.json["page"]["totalElements"], 0);

    let account = goto.get(&token, "/admin/rest/v1/me").await.json["accountKey"]
        .as_u64()
        .unwrap();
    let by_account = goto
        .get(
            &token,
            &format!("/G2W/rest/v2/accounts/{account}/webinars?{ALL_TIME}"),
        )
        .await;
    assert_eq!(by_account.json["page"]["totalElements"], 45);
    let other_account = goto
        .get(
            &token,
            &format!("/G2W/rest/v2/accounts/{}/webinars?{ALL_TIME}", account + 1),
        )
        .await;
    assert_eq!(other_account.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn webinar_create_get_update_cancel() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    let now = goto.emu.now();
    let start = g2w_emulator::to_iso(now + 86400);
    let end = g2w_emulator::to_iso(now + 90000);
    let created = goto
        .post_json(&token, &goto.org_path("/webinars"), &json!({
            "subject": "Launch", "description": "d", "times": [{"startTime": start, "endTime": end}],
            "timeZone": "Europe/Paris"
        }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let key = created.json["webinarKey"]
        .as_str()
        .expect("created key is a string")
        .to_owned();

    let got = goto
        .get(&token, &goto.org_path(&format!("/webinars/{key}")))
        .await;
    assert_eq!(
        got.json["webinarKey"].as_u64().map(|k| k.to_string()),
        Some(key.clone())
    );
    assert!(
        got.text.contains(&format!("\"webinarKey\":{key}")),
        "WebinarByKey keys are numbers"
    );
    assert_eq!(got.json["timeZone"], "Europe/Paris");
    assert_eq!(got.json["numberOfRegistrants"], 0);
    assert_eq!(got.json["inSession"], false);

    let past = goto
        .post_json(&token, &goto.org_path("/webinars"), &json!({
            "subject": "Old", "times": [{"startTime": "2001-01-01T00:00:00Z", "endTime": "2001-01-01T01:00:00Z"}]
        }))
        .await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST);
    let no_subject = goto
        .post_json(&token, &goto.org_path("/webinars"), &json!({"times": []}))
        .await;
    assert_eq!(no_subject.status, StatusCode::BAD_REQUEST);
    let garbage = goto
        .send(
            goto.http
                .post(goto.url(&goto.org_path("/webinars")))
                .bearer_auth(&token)
                .body("{not json"),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);

    let update = goto
        .send(
            goto.http
                .put(goto.url(&goto.org_path(&format!("/webinars/{key}"))))
                .bearer_auth(&token)
                .json(&json!({"subject": "Launch 2"})),
        )
        .await;
    assert_eq!(update.status, StatusCode::ACCEPTED);
    assert_eq!(
        goto.get(&token, &goto.org_path(&format!("/webinars/{key}")))
            .await
            .json["subject"],
        "Launch 2"
    );

    assert_eq!(
        goto.delete(&token, &goto.org_path(&format!("/webinars/{key}")))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        goto.get(&token, &goto.org_path(&format!("/webinars/{key}")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn cancel_refuses_past_and_running_webinars() {
    let goto = TestGoto::start().await;
    let (running, _) = goto
        .webinar(json!({"subject": "Soon", "durationMinutes": 120}))
        .await;
    let (short, _) = goto
        .webinar(json!({"subject": "Short", "durationMinutes": 30}))
        .await;
    let token_path = |key: u64| goto.org_path(&format!("/webinars/{key}"));
    // A week and an hour later: "Soon" runs, "Short" is over.
    goto.emu.advance_clock(7 * 86400 + 3600);
    let token = goto.token().await;
    let in_session = goto.delete(&token, &token_path(running)).await;
    assert_eq!(
        (in_session.status, in_session.json["errorCode"].as_str()),
        (StatusCode::CONFLICT, Some("WebinarInSession"))
    );
    assert_eq!(
        goto.get(&token, &token_path(running)).await.json["inSession"],
        true
    );
    let past = goto.delete(&token, &token_path(short)).await;
    assert_eq!(past.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn registrant_create_duplicate_and_lookup() {
    let goto = TestGoto::start().await;
    let (webinar, spec) = goto.webinar(questions_spec()).await;
    let q_short = key(&spec["questions"][0]["questionKey"]);
    let q_choice = key(&spec["questions"][1]["questionKey"]);
    let a_big = key(&spec["questions"][1]["answers"][1]["answerKey"]);
    let token = goto.token().await;
    let path = goto.org_path(&format!("/webinars/{webinar}/registrants"));

    let mut body = person("ada@example.com");
    body["organization"] = json!("Analytical Engines");
    body["industry"] = json!("Health");
    // Keys as a bare number above 2^53 and as a string: both accepted.
    body["responses"] = json!([
        {"questionKey": q_short, "responseText": "To learn"},
        {"questionKey": q_choice.to_string(), "answerKey": a_big}
    ]);
    let created = goto
        .send(
            goto.http
                .post(goto.url(&format!("{path}?resendConfirmation=true")))
                .bearer_auth(&token)
                .header("accept", "application/json")
                .json(&body),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let key = created.json["registrantKey"]
        .as_u64()
        .expect("registrantKey is a number");
    assert!(key > 1 << 53);
    assert!(created.text.contains(&format!("\"registrantKey\":{key}")));
    assert_eq!(created.json["status"], "APPROVED");
    assert_eq!(created.json["asset"], true);
    let join_url = created.json["joinUrl"].as_str().unwrap().to_owned();

    let mut again = person("ADA@Example.com");
    again["organization"] = json!("x");
    again["responses"] = json!([{"questionKey": q_short, "responseText": "again"}]);
    let dup = goto.post_json(&token, &path, &again).await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.text);
    assert_eq!(dup.json["errorCode"], "DuplicateRegistrant");
    assert_eq!(dup.json["registrantKey"].as_u64(), Some(key));
    assert_eq!(dup.json["joinUrl"], join_url.as_str());
    assert_eq!(goto.stats().registrants_created, 1);

    let detailed = goto.get(&token, &format!("{path}/{key}")).await;
    assert_eq!(detailed.json["organization"], "Analytical Engines");
    assert_eq!(detailed.json["type"], "REGULAR");
    assert_eq!(
        detailed.json["responses"],
        json!([{"question": "Why are you here?", "answer": "To learn"}, {"question": "Team size?", "answer": "11+"}])
    );
    let list = goto.get(&token, &path).await;
    let items = list.json.as_array().expect("a bare array");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["registrantKey"].as_u64(), Some(key));
    assert!(
        items[0].get("organization").is_none(),
        "the list is condensed"
    );

    // `fields` is a route of its own, never a registrant key.
    let fields = goto.get(&token, &format!("{path}/fields")).await;
    assert_eq!(fields.status, StatusCode::OK);
    let names: Vec<&str> = fields.json["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["firstName", "lastName", "email", "organization", "industry"]
    );
    assert_eq!(fields.json["fields"][3]["required"], true);
    assert_eq!(
        fields.json["fields"][4]["answers"],
        json!(["Retail", "Health"])
    );
    assert_eq!(
        fields.json["questions"][1]["answers"][1]["answerKey"].as_u64(),
        Some(a_big)
    );
    assert_eq!(fields.json["questions"][0]["maxSize"], 20);
    assert_eq!(
        goto.get(&token, &format!("{path}/not-a-key")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        goto.get(&token, &format!("{path}/{}", key + 1))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        goto.delete(&token, &format!("{path}/{key}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(goto.get(&token, &path).await.json, json!([]));
    // Once deleted, the same email may register again.
    let mut back = body.clone();
    back["email"] = json!("ada@example.com");
    assert_eq!(
        goto.post_json(&token, &path, &back).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn registrant_validation_names_every_invalid_field() {
    let goto = TestGoto::start().await;
    let (webinar, spec) = goto.webinar(questions_spec()).await;
    let q_short = key(&spec["questions"][0]["questionKey"]);
    let q_choice = key(&spec["questions"][1]["questionKey"]);
    let token = goto.token().await;
    let path = goto.org_path(&format!("/webinars/{webinar}/registrants"));

    let bad = json!({
        "firstName": "", "email": "not-an-email", "industry": "Mining",
        "responses": [{"questionKey": q_choice, "answerKey": 12345}]
    });
    let reply = goto.post_json(&token, &path, &bad).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.json["errorCode"], "RegistrationInvalid");
    let fields: Vec<String> = reply.json["invalidFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| match f["questionKey"].as_u64() {
            Some(k) => format!("q{k}"),
            None => f["field"].as_str().unwrap().to_owned(),
        })
        .collect();
    for expected in ["firstName", "lastName", "email", "organization", "industry"] {
        assert!(
            fields.contains(&expected.to_owned()),
            "{expected} not named in {fields:?}"
        );
    }
    assert!(
        fields.contains(&format!("q{q_short}")),
        "required question not named"
    );
    assert!(
        fields.contains(&format!("q{q_choice}")),
        "wrong answer key not named"
    );

    let mut long = person("long@example.com");
    long["organization"] = json!("o");
    long["responses"] = json!([{"questionKey": q_short, "responseText": "x".repeat(21)}]);
    assert_eq!(
        goto.post_json(&token, &path, &long).await.status,
        StatusCode::BAD_REQUEST
    );
    let mut long_name = person("name@example.com");
    long_name["firstName"] = json!("n".repeat(129));
    assert_eq!(
        goto.post_json(&token, &path, &long_name).await.status,
        StatusCode::BAD_REQUEST
    );
    for raw in ["[]", "null", "{\"firstName\": 5}", "not json"] {
        let r = goto
            .send(
                goto.http
                    .post(goto.url(&path))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(raw),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{raw}");
    }
    let flag = goto
        .post_json(
            &token,
            &format!("{path}?resendConfirmation=maybe"),
            &person("f@example.com"),
        )
        .await;
    assert_eq!(flag.status, StatusCode::BAD_REQUEST);
    assert_eq!(goto.stats().registrants_created, 0);
}

#[tokio::test]
async fn the_v1_1_accept_header_drops_custom_answers_as_goto_documents() {
    let goto = TestGoto::start().await;
    let (required_q, spec) = goto.webinar(questions_spec()).await;
    let q_short = spec["questions"][0]["questionKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let (optional_q, spec2) = goto
        .webinar(
            json!({"subject": "opt", "questions": [{"question": "Hi?", "type": "shortAnswer"}]}),
        )
        .await;
    let q_opt = spec2["questions"][0]["questionKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = goto.token().await;
    let v11 = "application/vnd.citrix.g2wapi-v1.1+json";

    let mut body = person("v11@example.com");
    body["organization"] = json!("Org");
    body["responses"] = json!([{"questionKey": q_short, "responseText": "answer"}]);
    let path = goto.org_path(&format!("/webinars/{required_q}/registrants"));
    let refused = goto
        .send(
            goto.http
                .post(goto.url(&path))
                .bearer_auth(&token)
                .header("accept", v11)
                .json(&body),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "required answers were dropped"
    );

    let mut body = person("v11@example.com");
    body["responses"] = json!([{"questionKey": q_opt, "responseText": "kept?"}]);
    let path = goto.org_path(&format!("/webinars/{optional_q}/registrants"));
    let created = goto
        .send(
            goto.http
                .post(goto.url(&path))
                .bearer_auth(&token)
                .header("accept", v11)
                .json(&body),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let key = created.json["registrantKey"].as_u64().unwrap();
    assert_eq!(
        goto.get(&token, &format!("{path}/{key}")).await.json["responses"],
        json!([])
    );
}

#[tokio::test]
async fn manual_approval_waits_and_limits_and_past_webinars_are_enforced() {
    let goto = TestGoto::start().await;
    let (manual, _) = goto
        .webinar(json!({"subject": "M", "approvalType": "MANUAL", "registrationLimit": 1}))
        .await;
    let token = goto.token().await;
    let path = goto.org_path(&format!("/webinars/{manual}/registrants"));
    let first = goto
        .post_json(&token, &path, &person("a@example.com"))
        .await;
    assert_eq!(first.json["status"], "WAITING");
    let full = goto
        .post_json(&token, &path, &person("b@example.com"))
        .await;
    assert_eq!(full.status, StatusCode::FORBIDDEN);
    assert!(
        full.json.get("int_err_code").is_none(),
        "a limit is not a token problem"
    );

    let key = first.json["registrantKey"].as_u64().unwrap();
    goto.emu.advance_clock(8 * 86400);
    let token = goto.token().await;
    let late = goto.delete(&token, &format!("{path}/{key}")).await;
    assert_eq!(
        late.status,
        StatusCode::BAD_REQUEST,
        "delete only before the webinar"
    );
    let unknown = goto
        .post_json(
            &token,
            &goto.org_path("/webinars/123/registrants"),
            &person("c@example.com"),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_rate_limit_answers_429_per_client_and_can_be_turned_off() {
    let goto = TestGoto::start_with(EmulatorConfig {
        rate_limit: 5,
        ..Default::default()
    })
    .await;
    let token = goto.token().await;
    let path = goto.org_path(&format!("/webinars?{ALL_TIME}"));
    let mut statuses = Vec::new();
    for _ in 0..15 {
        statuses.push(goto.get(&token, &path).await);
    }
    let limited: Vec<_> = statuses
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(limited.len() >= 8, "only {} of 15 limited", limited.len());
    assert_eq!(limited[0].json["int_err_code"], "TooManyRequests");
    assert_eq!(goto.stats().rate_limited, limited.len() as u64);

    let open = TestGoto::start_with(EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    let token = open.token().await;
    let path = open.org_path(&format!("/webinars?{ALL_TIME}"));
    for _ in 0..100 {
        assert_eq!(open.get(&token, &path).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn unknown_paths_are_json_404s() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    for path in [
        "/G2W/rest/v2/nothing",
        "/nothing",
        &goto.org_path("/webinars/1/sessions"),
    ] {
        let reply = goto.get(&token, path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(reply.json.is_object(), "{path}: {}", reply.text);
    }
}

//! Intake: validation, answers, hostile input, idempotency, browsers, CORS, limits.

use serde_json::{Value, json};
use std::time::Duration;

use crate::{TestApp, person};

fn questions() -> Value {
    json!({"subject": "Q", "fields": [{"field": "organization", "required": true}],
        "questions": [{"question": "Why?", "type": "shortAnswer", "required": true, "maxSize": 30},
                      {"question": "Size?", "type": "multipleChoice", "answers": ["Small", "Large"]}]})
}

#[tokio::test]
async fn a_registration_is_stored_then_delivered_with_its_answers() {
    let app = TestApp::start().await;
    let (webinar, spec) = app.webinar(questions()).await;
    let q_short = spec["questions"][0]["questionKey"].as_str().unwrap();
    let q_choice = spec["questions"][1]["questionKey"].as_str().unwrap();
    let mut body = person("ada@example.com");
    body["organization"] = json!("Engines");
    body["responses"] = json!([{"questionKey": q_short, "responseText": "To learn"}, {"questionKey": q_choice, "answer": "Large"}]);
    let reply = app.post_json(&webinar, &body).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.json["status"], "queued");
    let id = reply.json["registrationId"].as_str().unwrap().to_owned();
    assert_eq!(app.total().await, 1, "stored before the answer");
    assert_eq!(app.emu.stats().registrants_created, 0);

    assert_eq!(app.deliver_due().await, 1);
    let status = app.get(&format!("/api/v1/registrations/{id}")).await;
    assert_eq!(status.json["status"], "registered");
    let join = status.json["joinUrl"].as_str().unwrap();
    assert!(join.contains(&webinar));
    assert_eq!(app.emu.stats().registrants_created, 1);
    // The answers reached GoTo.
    let token = app.tokens.access_token().await.unwrap();
    let detail: Value = app
        .http
        .get(format!(
            "{}/G2W/rest/v2/organizers/{}/webinars/{webinar}/registrants/{}",
            app.emu.base_url(),
            app.emu.default_organizer_key(),
            status.json["registrantKey"].as_str().unwrap()
        ))
        .bearer_auth(g2w_goto::ExposeSecret::expose_secret(&token))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["responses"][1]["answer"], "Large");
    assert_eq!(app.get("/api/v1/registrations/nope").await.status, 404);
}

#[tokio::test]
async fn validation_names_each_bad_field_and_stores_nothing() {
    let app = TestApp::start().await;
    let (webinar, spec) = app.webinar(questions()).await;
    let q_short = spec["questions"][0]["questionKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = app.post_json(&webinar, &json!({"firstName": "Ada", "email": "not-an-email", "responses": [{"questionKey": "1", "responseText": "x"}]})).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"], "validation");
    let fields: Vec<&str> = reply.json["fields"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "email",
            "lastName",
            "organization",
            "q_1",
            &format!("q_{q_short}")
        ]
    );
    // People read the question by its text, not its key.
    let message = reply.json["message"].as_str().unwrap();
    assert!(
        message.contains("\"Why?\" an answer is required"),
        "{message}"
    );
    assert!(!message.contains(&format!("q_{q_short}")), "{message}");
    assert_eq!(
        app.post_json("123", &person("a@example.com")).await.status,
        404,
        "unknown webinar"
    );
    assert_eq!(
        app.post_json("not-a-key", &person("a@example.com"))
            .await
            .status,
        404
    );
    let (past, _) = app
        .webinar(json!({"subject": "Past", "startTime": "2020-01-01T10:00:00Z"}))
        .await;
    assert_eq!(
        app.post_json(&past, &person("a@example.com")).await.status,
        410
    );
    assert_eq!(app.total().await, 0);
}

#[tokio::test]
async fn hostile_bodies_get_a_clear_4xx_and_store_nothing() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(json!({"subject": "Plain"})).await;
    let many_fields: String = (0..10_000).map(|_| "a=1&").collect();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("application/json", vec![b'{'; 100 * 1024], 413),
        (
            "application/json",
            b"{\"firstName\": \"Ada\",".to_vec(),
            400,
        ),
        ("application/json", b"[\"array\"]".to_vec(), 400),
        ("text/plain", b"firstName=Ada".to_vec(), 415),
        ("application/xml", b"<registrant/>".to_vec(), 415),
        (
            "application/x-www-form-urlencoded",
            many_fields.into_bytes(),
            400,
        ),
        (
            "application/json",
            br#"{"firstName":"A\u0007","lastName":"B","email":"a@example.com"}"#.to_vec(),
            400,
        ),
        (
            "application/json",
            b"'; DROP TABLE outbox; --".to_vec(),
            400,
        ),
        (
            "application/json",
            b"<script>alert(1)</script>".to_vec(),
            400,
        ),
        (
            "application/json",
            br#"{"firstName":{"$ne":null},"lastName":"B","email":"a@example.com"}"#.to_vec(),
            400,
        ),
        ("application/json", vec![0xff, 0xfe, 0x00], 400),
    ];
    for (content_type, body, expected) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let reply = app.post_raw(&webinar, content_type, body).await;
        assert_eq!(
            reply.status, expected,
            "{content_type} {shown}: {}",
            reply.text
        );
        assert!(
            reply.json["error"].is_string(),
            "every refusal is the API's JSON error: {}",
            reply.text
        );
    }
    assert_eq!(app.total().await, 0, "nothing stored");
    // Injection strings inside fields are just text: stored verbatim, the table intact.
    let reply = app
        .post_json(&webinar, &json!({"firstName": "Robert'); DROP TABLE outbox;--", "lastName": "<img src=x onerror=alert(1)>", "email": "bobby@example.com"}))
        .await;
    assert_eq!(reply.status, 202);
    app.deliver_due().await;
    assert_eq!(app.total().await, 1);
    let page = app
        .get(&format!(
            "/confirmation/{}",
            reply.json["registrationId"].as_str().unwrap()
        ))
        .await;
    assert!(!page.text.contains("<img"), "nothing unescaped on pages");
}

#[tokio::test]
async fn look_alike_addresses_invisible_characters_and_repeated_keys_are_refused_by_field() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(json!({"subject": "Spoofing"})).await;
    let with = |field: &str, text: &str| {
        let mut body = person("ada@example.com");
        body[field] = json!(text);
        body
    };
    for (field, text) in [
        ("email", "x@exa\u{202e}mple.com"),
        ("email", "x@b..com"),
        ("email", "x@-b.com"),
        ("email", "x@ex_ample.com"),
        ("firstName", "Ada\u{202e}"),
        ("lastName", "Love\u{200c}lace"),
        ("organization", "Engines\u{e0041}"),
    ] {
        let reply = app.post_json(&webinar, &with(field, text)).await;
        assert_eq!(reply.status, 400, "{field} {text:?}: {}", reply.text);
        assert_eq!(reply.json["error"], "validation");
        assert!(
            reply.json["fields"][field].is_string(),
            "{field} named: {}",
            reply.text
        );
    }
    let twice = app
        .post_raw(
            &webinar,
            "application/json",
            br#"{"firstName":"Ada","lastName":"L","email":"ada@example.com","email":"eve@example.com"}"#.to_vec(),
        )
        .await;
    assert_eq!(twice.status, 400, "{}", twice.text);
    assert_eq!(twice.json["fields"]["email"], "given more than once");
    assert_eq!(app.total().await, 0, "nothing stored");
    assert_eq!(
        app.post_json(&webinar, &person("ada@example.com"))
            .await
            .status,
        202
    );
}

#[tokio::test]
async fn the_same_idempotency_key_never_registers_twice() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(json!({"subject": "Idem"})).await;
    let send = |body: Value, key: &'static str| {
        let app = &app;
        let webinar = webinar.clone();
        async move {
            TestApp::reply(
                app.http
                    .post(format!(
                        "{}/api/v1/webinars/{webinar}/registrations",
                        app.base
                    ))
                    .header("idempotency-key", key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let first = send(person("once@example.com"), "abc-123").await;
    let again = send(person("once@example.com"), "abc-123").await;
    assert_eq!(first.json["registrationId"], again.json["registrationId"]);
    assert_eq!((first.status, again.status), (202, 202));
    app.deliver_due().await;
    let after = send(person("once@example.com"), "abc-123").await;
    assert_eq!(
        (after.status, after.json["status"].as_str()),
        (201, Some("registered"))
    );
    assert_eq!(after.json["registrationId"], first.json["registrationId"]);
    let conflict = send(person("other@example.com"), "abc-123").await;
    assert_eq!(conflict.status, 422);
    assert_eq!(app.total().await, 1);
    assert_eq!(app.emu.stats().registrants_created, 1);
}

#[tokio::test]
async fn a_browser_form_post_is_redirected_and_the_honeypot_stores_nothing() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(json!({"subject": "Form"})).await;
    let post_form = |body: &'static str| {
        let app = &app;
        let webinar = webinar.clone();
        async move {
            TestApp::reply(
                app.http
                    .post(format!(
                        "{}/api/v1/webinars/{webinar}/registrations",
                        app.base
                    ))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("accept", "text/html,application/xhtml+xml")
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let reply = post_form("firstName=Ada&lastName=Lovelace&email=ada%40example.com").await;
    assert_eq!(reply.status, 303);
    let location = reply.headers["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/confirmation/"), "{location}");
    app.deliver_due().await;
    let page = app.get(&location).await;
    assert!(
        page.text.contains("/join/"),
        "the join URL is shown: {}",
        page.text
    );

    let bot = post_form(
        "firstName=Spam&lastName=Bot&email=bot%40example.com&website=http%3A%2F%2Fspam.example",
    )
    .await;
    assert_eq!(bot.status, 303, "looks like success");
    assert_eq!(app.total().await, 1, "nothing stored for the bot");
    let json_bot = app
        .post_json(
            &webinar,
            &json!({"firstName": "S", "lastName": "B", "email": "s@example.com", "website": "x"}),
        )
        .await;
    assert_eq!(
        (json_bot.status, json_bot.json["status"].as_str()),
        (202, Some("queued"))
    );
    assert_eq!(app.total().await, 1);

    let invalid = post_form("firstName=&lastName=L&email=x").await;
    assert_eq!(invalid.status, 400);
    assert!(invalid.text.contains("firstName") && invalid.text.contains("<li>"));
}

#[tokio::test]
async fn thank_you_url_cors_and_the_per_ip_limit() {
    let app = TestApp::start_with(|c| {
        c.thank_you_url = Some("https://example.com/thanks".into());
        c.allowed_origins = vec!["https://landing.example".into()];
        c.intake_rate_per_ip = 1;
        c.intake_burst = 2;
    })
    .await;
    let (webinar, _) = app.webinar(json!({"subject": "Limits"})).await;
    let url = format!("{}/api/v1/webinars/{webinar}/registrations", app.base);
    let form = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .header("origin", "https://landing.example")
        .body("firstName=A&lastName=B&email=a%40example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 303);
    let location = form.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://example.com/thanks?status=queued&registrationId="),
        "{location}"
    );
    assert_eq!(
        form.headers()["access-control-allow-origin"],
        "https://landing.example"
    );

    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://landing.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "https://landing.example");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && !methods.contains("DELETE"),
        "{methods}"
    );
    let allowed = h["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("idempotency-key"), "{allowed}");
    assert!(
        !allowed.contains('*'),
        "exactly the headers a landing page sends"
    );
    let foreign = app
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "a foreign origin's preflight gets no permission"
    );

    let third = app
        .http
        .post(&url)
        .header("origin", "https://evil.example")
        .json(&person("c@example.com"))
        .send()
        .await
        .unwrap();
    assert!(third.headers().get("access-control-allow-origin").is_none());
    // The burst of 2 is used up; at 1/s, a quick run of ten gets at most a refill or two.
    let mut limited = 0;
    for i in 0..10 {
        let r = app
            .http
            .post(&url)
            .json(&person(&format!("d{i}@example.com")))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 7, "only {limited} of 10 limited");
    assert_eq!(
        app.total().await,
        2 + 10 - limited,
        "a limited request stores nothing"
    );
}

#[tokio::test]
async fn health_readiness_metrics_and_the_webinar_list() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(questions()).await;
    assert_eq!(app.get("/healthz").await.status, 200);
    let ready = app.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.json["status"].as_str()),
        (200, Some("ready"))
    );
    let list = app.get("/api/v1/webinars").await;
    let w = &list.json["webinars"][0];
    assert_eq!(w["webinarKey"], webinar.as_str(), "keys as exact strings");
    assert_eq!(
        w["registrationFields"]["questions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    app.post_json(&webinar, &json!({"firstName": "x"})).await;
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains("g2w_intake_total{outcome=\"invalid\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("g2w_queue_items{queue=\"registrations\",state=\"pending\"} 0"));
    assert!(metrics.contains("g2w_goto_request_duration_seconds_count"));
}

#[tokio::test]
async fn field_limits_come_from_the_webinars_form_as_goto_states_them() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(json!({"subject": "Limits"})).await;
    // GoTo's form says maxSize 128 for email; 132 characters would pass RFC 5321.
    let long = format!("{}@example.com", "a".repeat(120));
    let refused = app.post_json(&webinar, &person(&long)).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(
        refused.json["fields"]["email"],
        "is longer than 128 characters"
    );
    let page = app.get(&format!("/r/{webinar}")).await;
    assert!(
        page.text
            .contains(r#"name="email" value="" maxlength="128""#),
        "the hosted form says the same"
    );
    // 128 exactly: a local part at RFC 5321's 64, a long domain.
    let fits = format!("{}@{}.com", "a".repeat(64), "b".repeat(59));
    assert_eq!(fits.len(), 128);
    assert_eq!(app.post_json(&webinar, &person(&fits)).await.status, 202);
    let local_too_long = format!("{}@example.com", "a".repeat(65));
    let refused = app.post_json(&webinar, &person(&local_too_long)).await;
    assert_eq!(
        refused.json["fields"]["email"],
        "is not a valid email address"
    );
}

#[tokio::test]
async fn any_origin_is_a_star_never_the_callers_origin_reflected() {
    let app = TestApp::start_with(|c| c.allowed_origins = vec!["*".into()]).await;
    let (webinar, _) = app.webinar(json!({"subject": "Anyone"})).await;
    let reply = app
        .http
        .post(format!(
            "{}/api/v1/webinars/{webinar}/registrations",
            app.base
        ))
        .header("origin", "https://whoever.example")
        .json(&person("star@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_visitor_has_their_own_limit() {
    let app = TestApp::start_with(|c| {
        c.intake_rate_per_ip = 1;
        c.intake_burst = 2;
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let (webinar, _) = app.webinar(json!({"subject": "Proxied"})).await;
    let url = format!("{}/api/v1/webinars/{webinar}/registrations", app.base);
    let post = |visitor: &'static str, i: u32| {
        let (http, url) = (app.http.clone(), url.clone());
        async move {
            http.post(url)
                .header("x-forwarded-for", format!("6.6.6.6, {visitor}"))
                .json(&person(&format!("v{i}@example.com")))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let mut first = Vec::new();
    for i in 0..6 {
        first.push(post("203.0.113.1", i).await);
    }
    assert!(first.contains(&429), "one visitor is limited: {first:?}");
    assert_eq!(
        post("203.0.113.2", 99).await,
        202,
        "another visitor behind the same proxy is not"
    );
}

#[tokio::test]
async fn registration_closes_when_the_webinar_ends_on_the_gateways_clock() {
    let app = TestApp::start().await;
    let start = (app.now() + Duration::from_secs(3600)).to_rfc3339();
    let (webinar, _) = app
        .webinar(json!({"subject": "Soon", "startTime": start, "durationMinutes": 60}))
        .await;
    assert_eq!(
        app.post_json(&webinar, &person("early@example.com"))
            .await
            .status,
        202
    );
    assert_eq!(app.get(&format!("/r/{webinar}")).await.status, 200);
    app.advance(2 * 3600 * 1000 + 1000);
    assert_eq!(
        app.post_json(&webinar, &person("late@example.com"))
            .await
            .status,
        410,
        "the webinar ended by the injected clock"
    );
    assert_eq!(app.get(&format!("/r/{webinar}")).await.status, 410);
}

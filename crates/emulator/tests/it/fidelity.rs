//! Where an independent OAuth client library and a spec-driven fuzzer found the
//! emulator kinder than RFC 6749/7636 or GoTo: each case answers as the standard says.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::TestGoto;
use crate::form;
use crate::oauth::{REDIRECT, auto_approving, auto_code, exchange_with};

#[tokio::test]
async fn pkce_verifiers_must_have_rfc7636_form_and_match_how_the_code_was_issued() {
    let goto = auto_approving().await;
    let short = "too-short";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(short.as_bytes()));
    let pkce = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let reply = exchange_with(&goto, &auto_code(&goto, &pkce).await, Some(short)).await;
    assert_eq!(
        (reply.status, reply.json["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "a 9-character verifier is malformed even if it matches: {}",
        reply.text
    );
    let bad_chars = "space and slash / are not unreserved characters at all!!";
    let reply = exchange_with(&goto, &auto_code(&goto, &[]).await, Some(bad_chars)).await;
    assert_eq!(reply.json["error"], "invalid_request");

    let verifier = "a-verifier-that-is-long-enough-for-rfc7636-0123456789";
    let reply = exchange_with(&goto, &auto_code(&goto, &[]).await, Some(verifier)).await;
    assert_eq!(
        reply.json["error"], "invalid_grant",
        "a code issued without a challenge is not redeemed with a verifier"
    );
}

#[tokio::test]
async fn missing_or_repeated_parameters_are_invalid_request() {
    let goto = auto_approving().await;
    let code = auto_code(&goto, &[]).await;
    for (pairs, why) in [
        (
            vec![
                ("grant_type", "authorization_code"),
                ("redirect_uri", REDIRECT),
            ],
            "no code",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
            ],
            "no redirect_uri",
        ),
        (vec![("grant_type", "refresh_token")], "no refresh_token"),
        (vec![("grant_type", "personal_access_token")], "no pat"),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("grant_type", "refresh_token"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
            ],
            "grant_type twice",
        ),
    ] {
        let reply = goto.token_request(&pairs).await;
        assert_eq!(
            (reply.status, reply.json["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{why}: {}",
            reply.text
        );
        assert_eq!(reply.headers["pragma"], "no-cache", "{why}");
        assert_eq!(reply.headers["cache-control"], "no-store", "{why}");
    }
    // The code was not spent by the malformed requests.
    let reply = exchange_with(&goto, &code, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.headers["pragma"], "no-cache");
}

#[tokio::test]
async fn a_refresh_asking_for_another_scope_is_invalid_scope() {
    let goto = auto_approving().await;
    let tokens = exchange_with(&goto, &auto_code(&goto, &[]).await, None).await;
    let rt = tokens.json["refresh_token"].as_str().unwrap();
    let reply = goto
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("scope", "collab: admin:everything"),
        ])
        .await;
    assert_eq!(
        (reply.status, reply.json["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let same = goto
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("scope", "collab:"),
        ])
        .await;
    assert_eq!(same.status, StatusCode::OK, "the granted scope is fine");
}

#[tokio::test]
async fn basic_credentials_are_form_decoded_and_a_refusal_names_the_scheme() {
    let goto = TestGoto::start_with(g2w_emulator::EmulatorConfig {
        clients: vec![("team a".into(), "p@ss:word".into())],
        ..Default::default()
    })
    .await;
    let pat = goto.pat().await;
    let grant = [
        ("grant_type", "personal_access_token"),
        ("pat", pat.as_str()),
    ];
    // RFC 6749 §2.3.1: id and secret are form-url-encoded, then joined with ':'.
    let reply = goto
        .token_request_as("team+a", "p%40ss%3Aword", &grant)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    let refused = goto.token_request_as("team+a", "wrong", &grant).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        refused.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic"),
        "{:?}",
        refused.headers
    );
    let in_body = goto
        .send(
            goto.http
                .post(goto.url("/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[
                    ("grant_type", "personal_access_token"),
                    ("pat", &pat),
                    ("client_id", "team a"),
                    ("client_secret", "wrong"),
                ])),
        )
        .await;
    assert_eq!(in_body.status, StatusCode::UNAUTHORIZED);
    assert!(
        in_body.headers.get("www-authenticate").is_none(),
        "no Basic challenge to a client that did not use Basic"
    );
}

#[tokio::test]
async fn webinars_in_time_zones_that_do_not_exist_are_refused() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    let now = goto.emu.now();
    let times = json!([{"startTime": g2w_emulator::to_iso(now + 86_400), "endTime": g2w_emulator::to_iso(now + 90_000)}]);
    let mars = goto
        .post_json(
            &token,
            &goto.org_path("/webinars"),
            &json!({"subject": "Mars", "times": times, "timeZone": "Mars/Olympus"}),
        )
        .await;
    assert_eq!(mars.status, StatusCode::BAD_REQUEST, "{}", mars.text);
    assert!(
        mars.json["description"]
            .as_str()
            .unwrap()
            .contains("Mars/Olympus")
    );
    let berlin = goto
        .post_json(
            &token,
            &goto.org_path("/webinars"),
            &json!({"subject": "Berlin", "times": times, "timeZone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(berlin.status, StatusCode::CREATED, "{}", berlin.text);
    let key = berlin.json["webinarKey"].as_str().unwrap();
    let update = goto
        .send(
            goto.http
                .put(goto.url(&goto.org_path(&format!("/webinars/{key}"))))
                .bearer_auth(&token)
                .json(&json!({"timeZone": "Mars/Olympus"})),
        )
        .await;
    assert_eq!(update.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn negative_pages_and_sizes_say_what_range_is_allowed() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    let range = "fromTime=2000-01-01T00:00:00Z&toTime=2100-01-01T00:00:00Z";
    for (query, expected) in [
        ("size=-1", "size must be between 1 and 200, not -1"),
        ("page=-1", "page must be 0 or more, not -1"),
        ("size=ten", "size must be a whole number"),
    ] {
        let reply = goto
            .get(
                &token,
                &goto.org_path(&format!("/webinars?{range}&{query}")),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        let description = reply.json["description"].as_str().unwrap();
        assert!(description.starts_with(expected), "{query}: {description}");
    }
}

#[tokio::test]
async fn a_refused_registration_names_each_field_once() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    let (webinar, _) = goto
        .webinar(json!({"subject": "Q", "questions": [
            {"question": "A?", "type": "shortAnswer", "required": true},
            {"question": "B?", "type": "shortAnswer", "required": true},
            {"question": "C?", "type": "shortAnswer", "required": true}
        ]}))
        .await;
    let reply = goto
        .post_json(
            &token,
            &goto.org_path(&format!("/webinars/{webinar}/registrants")),
            &json!({"firstName": "A", "lastName": "B", "email": "a@example.com", "responses": [{}, {}, {}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    let description = reply.json["description"].as_str().unwrap();
    let names: Vec<&str> = description
        .trim_start_matches("Invalid registration fields: ")
        .split(", ")
        .collect();
    assert_eq!(
        names.iter().filter(|n| **n == "responses").count(),
        1,
        "three responses without a questionKey are one problem: {description}"
    );
    assert_eq!(
        reply.json["invalidFields"].as_array().unwrap().len(),
        6,
        "each problem is still listed in invalidFields"
    );
}

//! The OAuth server: authorize, consent, token grants, lifetimes, rotation, /me.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use g2w_emulator::EmulatorConfig;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::{TestGoto, form, location_query};

pub(crate) const REDIRECT: &str = "http://127.0.0.1:53682/callback";

pub(crate) fn authorize_path(extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("client_id", "demo-client"),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("state", "st-123"),
    ];
    pairs.extend_from_slice(extra);
    format!("/oauth/authorize?{}", form(&pairs))
}

/// Plays the browser: opens the consent page and presses a button.
async fn consent(goto: &TestGoto, path: &str, decision: &str) -> crate::Reply {
    let page = goto.send(goto.http.get(goto.url(path))).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Allow") && page.text.contains("Deny"));
    assert_eq!(
        page.headers["x-frame-options"], "DENY",
        "no clickjacking into Allow"
    );
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let id = page
        .text
        .split("name=\"request_id\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("consent form carries a request id")
        .to_owned();
    goto.send(
        goto.http
            .post(goto.url("/oauth/authorize/decision"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("request_id", &id), ("decision", decision)])),
    )
    .await
}

async fn code_via_consent(goto: &TestGoto, extra: &[(&str, &str)]) -> String {
    let reply = consent(goto, &authorize_path(extra), "allow").await;
    assert_eq!(reply.status, StatusCode::FOUND);
    let (location, q) = location_query(&reply);
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(q["state"], "st-123");
    q["code"].clone()
}

pub(crate) async fn exchange(goto: &TestGoto, code: &str) -> crate::Reply {
    goto.token_request(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ])
    .await
}

#[tokio::test]
async fn consent_allow_gives_a_single_use_code_and_tokens() {
    let goto = TestGoto::start().await;
    let code = code_via_consent(&goto, &[]).await;
    let reply = exchange(&goto, &code).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = &reply.json;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "collab:");
    assert_eq!(body["principal"], "dana.demo@example.com");
    assert!(body["access_token"].as_str().is_some_and(|t| t.len() >= 32));
    assert!(body["refresh_token"].is_string());
    assert!(
        body.get("organizer_key").is_none(),
        "owner fields only with --legacy-token-fields"
    );

    let again = exchange(&goto, &code).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.json["error"], "invalid_grant");
    assert_eq!(goto.stats().grants("authorization_code"), 1);
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_the_state() {
    let goto = TestGoto::start().await;
    let reply = consent(&goto, &authorize_path(&[]), "deny").await;
    let (_, q) = location_query(&reply);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn unknown_clients_and_foreign_redirects_get_an_error_page_never_a_redirect() {
    let goto = TestGoto::start_with(EmulatorConfig {
        redirect_uris: vec!["https://app.example.com/oauth".into()],
        ..EmulatorConfig::default()
    })
    .await;
    let cases = [
        authorize_path(&[]).replace("demo-client", "nobody"),
        authorize_path(&[]).replace("127.0.0.1%3A53682", "evil.example"),
        authorize_path(&[]).replace("127.0.0.1%3A53682", "127.0.0.1%40evil.example"),
        "/oauth/authorize?client_id=demo-client&response_type=code".to_owned(),
    ];
    for path in cases {
        let reply = goto.send(goto.http.get(goto.url(&path))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(reply.headers.get("location").is_none(), "{path} redirected");
        assert!(reply.text.contains("Authorization failed"));
    }
    // A registered non-loopback URI is fine.
    let ok = authorize_path(&[]).replace(
        &form(&[("redirect_uri", REDIRECT)]),
        &form(&[("redirect_uri", "https://app.example.com/oauth")]),
    );
    let reply = goto.send(goto.http.get(goto.url(&ok))).await;
    assert_eq!(reply.status, StatusCode::OK);
    // A wrong response_type is reported to the (valid) redirect URI.
    let reply = goto
        .send(
            goto.http
                .get(goto.url(&authorize_path(&[]).replace("=code", "=token"))),
        )
        .await;
    assert_eq!(
        location_query(&reply).1["error"],
        "unsupported_response_type"
    );
}

#[tokio::test]
async fn auto_approve_redirects_at_once() {
    let goto = auto_approving().await;
    let reply = goto
        .send(goto.http.get(goto.url(&authorize_path(&[]))))
        .await;
    assert_eq!(reply.status, StatusCode::FOUND);
    let (_, q) = location_query(&reply);
    assert_eq!(q["state"], "st-123");
    assert_eq!(exchange(&goto, &q["code"]).await.status, StatusCode::OK);
}

/// An emulator that approves every authorization at once.
pub(crate) async fn auto_approving() -> TestGoto {
    TestGoto::start_with(EmulatorConfig {
        auto_approve: true,
        ..Default::default()
    })
    .await
}

pub(crate) async fn auto_code(goto: &TestGoto, extra: &[(&str, &str)]) -> String {
    let reply = goto
        .send(goto.http.get(goto.url(&authorize_path(extra))))
        .await;
    location_query(&reply).1["code"].clone()
}

pub(crate) async fn exchange_with(
    goto: &TestGoto,
    code: &str,
    verifier: Option<&str>,
) -> crate::Reply {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        pairs.push(("code_verifier", v));
    }
    goto.token_request(&pairs).await
}

#[tokio::test]
async fn pkce_verifier_is_checked_when_a_challenge_was_sent() {
    let goto = auto_approving().await;
    let verifier = "a-verifier-that-is-long-enough-for-rfc7636-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let pkce = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];

    let missing = exchange_with(&goto, &auto_code(&goto, &pkce).await, None).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.json["error"], "invalid_grant");
    let wrong = exchange_with(
        &goto,
        &auto_code(&goto, &pkce).await,
        Some("another-verifier-just-as-long-as-rfc7636-wants-0123"),
    )
    .await;
    assert_eq!(wrong.json["error"], "invalid_grant");
    let right = exchange_with(&goto, &auto_code(&goto, &pkce).await, Some(verifier)).await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.text);

    // `plain` is refused at the authorize step.
    let plain = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "plain"),
    ];
    let reply = goto
        .send(goto.http.get(goto.url(&authorize_path(&plain))))
        .await;
    assert_eq!(location_query(&reply).1["error"], "invalid_request");
}

#[tokio::test]
async fn client_authentication_by_basic_or_body_and_its_failures() {
    let goto = TestGoto::start_with(EmulatorConfig {
        clients: vec![("acme".into(), "s3cret".into())],
        ..Default::default()
    })
    .await;
    let pat = goto.pat().await;
    let grant = [
        ("grant_type", "personal_access_token"),
        ("pat", pat.as_str()),
    ];

    let none = goto
        .send(
            goto.http
                .post(goto.url("/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&grant)),
        )
        .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.json["error"], "invalid_client");
    assert!(none.json["error_description"].is_string());

    let wrong = goto.token_request_as("acme", "guess", &grant).await;
    assert_eq!(
        (wrong.status, wrong.json["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert_eq!(
        goto.token_request_as("acme", "s3cret", &grant).await.status,
        StatusCode::OK
    );

    let mut in_body = grant.to_vec();
    in_body.extend([("client_id", "acme"), ("client_secret", "s3cret")]);
    let reply = goto
        .send(
            goto.http
                .post(goto.url("/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&in_body)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    let unsupported = goto.token_request(&[("grant_type", "password")]).await;
    assert_eq!(unsupported.json["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn codes_expire_after_ten_minutes_and_bind_the_redirect_uri() {
    let goto = auto_approving().await;
    let code = auto_code(&goto, &[]).await;
    let mismatch = goto
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:1/other"),
        ])
        .await;
    assert_eq!(mismatch.json["error"], "invalid_grant");

    let code = auto_code(&goto, &[]).await;
    goto.emu.advance_clock(601);
    let expired = exchange(&goto, &code).await;
    assert_eq!(
        (expired.status, expired.json["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

async fn refresh(goto: &TestGoto, rt: &str) -> crate::Reply {
    goto.token_request(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .await
}

#[tokio::test]
async fn refresh_keeps_the_refresh_token_until_its_last_two_days_then_rotates() {
    let goto = auto_approving().await;
    let tokens = exchange(&goto, &auto_code(&goto, &[]).await).await.json;
    let first_rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let webinars =
        goto.org_path("/webinars?fromTime=2020-01-01T00:00:00Z&toTime=2030-01-01T00:00:00Z");

    // The access token dies after an hour: 403 InvalidToken, GoTo's exact body.
    assert_eq!(goto.get(&access, &webinars).await.status, StatusCode::OK);
    goto.emu.advance_clock(3600);
    let dead = goto.get(&access, &webinars).await;
    assert_eq!(dead.status, StatusCode::FORBIDDEN);
    assert_eq!(
        dead.json,
        json!({"int_err_code": "InvalidToken", "msg": "Invalid token passed"})
    );

    let r1 = refresh(&goto, &first_rt).await;
    assert_eq!(r1.status, StatusCode::OK, "{}", r1.text);
    assert!(
        r1.json.get("refresh_token").is_none(),
        "no new refresh token mid-life"
    );
    let new_access = r1.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        goto.get(&new_access, &webinars).await.status,
        StatusCode::OK
    );

    // Day 28 and a bit: inside the last two days, a new refresh token comes back.
    goto.emu.advance_clock(28 * 86400);
    let r2 = refresh(&goto, &first_rt).await;
    let second_rt = r2.json["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    assert_ne!(second_rt, first_rt);
    assert_eq!(goto.stats().refresh_tokens_issued, 2);

    // Past day 30 the first one is dead, the second works.
    goto.emu.advance_clock(2 * 86400);
    let old = refresh(&goto, &first_rt).await;
    assert_eq!(
        (old.status, old.json["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(refresh(&goto, &second_rt).await.status, StatusCode::OK);
    assert_eq!(
        refresh(&goto, "never-issued").await.json["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn personal_access_tokens_and_legacy_owner_fields() {
    let goto = TestGoto::start_with(EmulatorConfig {
        legacy_token_fields: true,
        ..Default::default()
    })
    .await;
    let pat = goto.pat().await;
    let reply = goto
        .token_request(&[("grant_type", "personal_access_token"), ("pat", &pat)])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json;
    assert_eq!(
        body["organizer_key"],
        goto.organizer().to_string(),
        "legacy keys are strings"
    );
    assert!(body["account_key"].is_string());
    for field in ["account_type", "email", "firstName", "lastName", "version"] {
        assert!(body[field].is_string(), "{field} missing");
    }
    assert!(
        body.get("refresh_token").is_none(),
        "a PAT is its own refresh"
    );
    assert_eq!(goto.stats().grants("personal_access_token"), 1);

    let unknown = goto
        .token_request(&[("grant_type", "personal_access_token"), ("pat", "nope")])
        .await;
    assert_eq!(unknown.json["error"], "invalid_grant");
}

#[tokio::test]
async fn me_names_the_organizer_with_exact_64_bit_keys() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    let me = goto.get(&token, "/admin/rest/v1/me").await;
    assert_eq!(me.status, StatusCode::OK);
    assert!(goto.organizer() > 1 << 53);
    assert_eq!(me.json["key"].as_u64(), Some(goto.organizer()));
    assert!(
        me.text.contains(&format!("\"key\":{}", goto.organizer())),
        "key is a bare number"
    );
    assert_eq!(me.json["email"], "dana.demo@example.com");
    assert!(me.json["accountKey"].as_u64().is_some());
    let anonymous = goto
        .send(goto.http.get(goto.url("/admin/rest/v1/me")))
        .await;
    assert_eq!(anonymous.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn revoking_a_clients_tokens_forces_reauthorization() {
    let goto = auto_approving().await;
    let tokens = exchange(&goto, &auto_code(&goto, &[]).await).await.json;
    let revoked = goto
        .control("/tokens/revoke", &json!({"clientId": "demo-client"}))
        .await;
    assert_eq!(revoked.json["revokedAccessTokens"], 1);
    assert_eq!(revoked.json["revokedRefreshTokens"], 1);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        goto.get(access, "/admin/rest/v1/me").await.status,
        StatusCode::FORBIDDEN
    );
    let rt = tokens["refresh_token"].as_str().unwrap();
    let refresh = goto
        .token_request(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .await;
    assert_eq!(refresh.json["error"], "invalid_grant");
    assert_eq!(goto.stats().token_errors.get("invalid_grant"), Some(&1));
}

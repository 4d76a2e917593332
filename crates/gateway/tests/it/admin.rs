//! The admin console over HTTP: sign-in, cookie flags, CSRF, the login limit, and the
//! pages' actions. (The browser suite walks the same console in Chromium.)

use g2w_gateway::AdminPassword;
use g2w_store::Setting;
use serde_json::json;

use crate::{Reply, TestApp, person};

pub(crate) async fn app() -> TestApp {
    TestApp::start_with(|c| {
        c.admin_password = Some(AdminPassword::Hashed(AdminPassword::hash("right password")))
    })
    .await
}

pub(crate) async fn post_form(
    app: &TestApp,
    path: &str,
    body: &str,
    cookie: Option<&str>,
) -> Reply {
    let mut request = app
        .http
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    TestApp::reply(request.send().await.unwrap()).await
}

pub(crate) async fn get_with(app: &TestApp, path: &str, cookie: &str) -> Reply {
    TestApp::reply(
        app.http
            .get(format!("{}{path}", app.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A console action as a browser does it: post, follow the 303, read the page.
pub(crate) async fn act(app: &TestApp, path: &str, body: &str, cookie: &str) -> Reply {
    let posted = post_form(app, path, body, Some(cookie)).await;
    assert_eq!(posted.status, 303, "post/redirect/get: {}", posted.text);
    let page = posted.headers["location"].to_str().unwrap().to_owned();
    assert!(page.starts_with("/admin/") && !page.contains("refresh"));
    get_with(app, &page, cookie).await
}

/// Signs in saying `X-Forwarded-Proto: https`; returns the cookie the console set.
async fn cookie_claiming_https(app: &TestApp) -> String {
    let reply = TestApp::reply(
        app.http
            .post(format!("{}/admin/login", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-proto", "https")
            .body("password=right+password")
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply.headers["set-cookie"].to_str().unwrap().to_owned()
}

/// Signs in; returns the cookie to send and the page's CSRF token.
pub(crate) async fn sign_in(app: &TestApp) -> (String, String) {
    let reply = post_form(app, "/admin/login", "password=right+password", None).await;
    assert_eq!(reply.status, 303);
    let set = reply.headers["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = get_with(app, "/admin/tokens", &cookie).await;
    let csrf = page
        .text
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_wrong_passwords_are_limited() {
    let app = app().await;
    let anonymous = app.get("/admin/tokens").await;
    assert_eq!(
        (
            anonymous.status,
            anonymous.headers["location"].to_str().unwrap()
        ),
        (303, "/admin/login")
    );
    let reply = post_form(&app, "/admin/login", "password=right+password", None).await;
    let cookie = reply.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/admin")
    );
    assert!(!cookie.contains("Secure"), "plain HTTP on loopback");
    assert!(
        !cookie_claiming_https(&app).await.contains("Secure"),
        "a client that is not a trusted proxy cannot claim HTTPS"
    );
    let proxied = TestApp::start_with(|c| {
        c.admin_password = Some(AdminPassword::Hashed(AdminPassword::hash("right password")));
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    assert!(
        cookie_claiming_https(&proxied).await.contains("Secure"),
        "the trusted proxy says the browser used HTTPS"
    );

    for _ in 0..5 {
        assert_eq!(
            post_form(&app, "/admin/login", "password=guess", None)
                .await
                .status,
            401
        );
    }
    let limited = post_form(&app, "/admin/login", "password=right+password", None).await;
    assert_eq!(
        limited.status, 429,
        "even the right password waits after five failures"
    );
}

#[tokio::test]
async fn every_post_needs_the_sessions_csrf_token() {
    let app = app().await;
    let (cookie, csrf) = sign_in(&app).await;
    let forged = post_form(&app, "/admin/tokens/refresh", "csrf=forged", Some(&cookie)).await;
    assert_eq!(forged.status, 403);
    let missing = post_form(&app, "/admin/tokens/refresh", "", Some(&cookie)).await;
    assert_eq!(missing.status, 403);
    assert_eq!(app.emu.stats().grants("refresh_token"), 0);
    let ok = act(
        &app,
        "/admin/tokens/refresh",
        &format!("csrf={csrf}"),
        &cookie,
    )
    .await;
    assert_eq!(ok.status, 200);
    assert!(ok.text.contains("Refreshed"), "{}", ok.text);
    assert_eq!(app.emu.stats().grants("refresh_token"), 1);
    let reloaded = get_with(&app, "/admin/tokens", &cookie).await;
    assert!(
        !reloaded.text.contains("Refreshed:"),
        "the notice is shown once"
    );
    assert_eq!(
        app.emu.stats().grants("refresh_token"),
        1,
        "reloading the page refreshes nothing"
    );
    let other_session = post_form(
        &app,
        "/admin/tokens/refresh",
        &format!("csrf={csrf}"),
        Some("g2w_admin=stolen"),
    )
    .await;
    assert_eq!(other_session.status, 303, "no session: back to sign-in");

    let out = post_form(
        &app,
        "/admin/logout",
        &format!("csrf={csrf}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(out.status, 303);
    assert_eq!(
        get_with(&app, "/admin/tokens", &cookie).await.status,
        303,
        "the session is gone"
    );
}

#[tokio::test]
async fn pages_show_tokens_webinars_and_failed_registrations_with_actions() {
    let app = app().await;
    let (cookie, csrf) = sign_in(&app).await;
    let tokens = get_with(&app, "/admin/tokens", &cookie).await;
    assert!(
        tokens
            .text
            .contains(&app.emu.default_organizer_key().to_string())
    );
    assert!(tokens.text.contains("Refresh now"));

    let (webinar, _) = app.webinar(json!({"subject": "Console <b>test</b>"})).await;
    let page = get_with(&app, "/admin/webinars", &cookie).await;
    assert!(page.text.contains(&format!("href=\"/r/{webinar}\"")));
    assert!(page.text.contains("data-g2w-webinar"), "embed snippet");
    assert!(!page.text.contains("<b>test</b>"), "escaped");

    app.control("/faults", json!({"method": "POST", "pathPrefix": "/G2W", "status": 400, "count": 1,
        "body": {"errorCode": "RegistrationInvalid", "invalidFields": [{"field": "email", "reason": "blocked"}]}})).await;
    let reply = app
        .post_json(&webinar, &person("blocked@example.com"))
        .await;
    let id = reply.json["registrationId"].as_str().unwrap().to_owned();
    app.deliver_due().await;
    let outbox = get_with(&app, "/admin/outbox", &cookie).await;
    assert!(
        outbox.text.contains("blocked@example.com") && outbox.text.contains("blocked"),
        "{}",
        outbox.text
    );
    let search = get_with(&app, "/admin/outbox?email=BLOCKED@example.com", &cookie).await;
    assert!(search.text.contains(&id));
    let retried = act(
        &app,
        &format!("/admin/outbox/{id}/retry"),
        &format!("csrf={csrf}"),
        &cookie,
    )
    .await;
    assert!(retried.text.contains("will be delivered again"));
    app.deliver_due().await;
    let status = app.get(&format!("/api/v1/registrations/{id}")).await;
    assert_eq!(status.json["status"], "registered");
    let again = act(
        &app,
        &format!("/admin/outbox/{id}/discard"),
        &format!("csrf={csrf}"),
        &cookie,
    )
    .await;
    assert!(
        again.text.contains("not failed or dead"),
        "a delivered registration is not discarded"
    );
}

#[tokio::test]
async fn without_a_password_the_console_is_off() {
    let app = TestApp::start().await;
    assert_eq!(
        post_form(&app, "/admin/login", "password=x", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn thirty_guesses_sent_at_once_get_five_checks() {
    let app = app().await;
    let guesses: Vec<_> = (0..30)
        .map(|i| {
            let (http, url) = (app.http.clone(), format!("{}/admin/login", app.base));
            tokio::spawn(async move {
                http.post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("password=guess{i}"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut checked = 0;
    for g in guesses {
        match g.await.unwrap() {
            401 => checked += 1,
            429 => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(checked, 5, "the attempt is counted before the slow check");
    let right = post_form(&app, "/admin/login", "password=right+password", None).await;
    assert_eq!(
        right.status, 429,
        "even the right password waits out the window"
    );
}

/// A client whose connections come from `127.0.0.N`.
fn from_address(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from([127, 0, 0, n]))
        .build()
        .unwrap()
}

#[tokio::test]
async fn guesses_from_many_addresses_share_one_budget_checked_before_any_hash() {
    let app = TestApp::start_with(|c| {
        c.admin_password = Some(AdminPassword::Hashed(AdminPassword::hash("right password")));
        c.signin_failures_per_minute = 8;
        c.signin_concurrency = 2;
    })
    .await;
    // Twenty addresses, three guesses each: every address stays within its own five.
    let guesses: Vec<_> = (0..60_u8)
        .map(|i| {
            let http = from_address(10 + i % 20);
            let url = format!("{}/admin/login", app.base);
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("password=guess{i}"))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            })
        })
        .collect();
    let (mut checked, mut refused) = (0, 0);
    for g in guesses {
        match g.await.unwrap() {
            (401, _) => checked += 1,
            (429, page) => {
                assert!(
                    page.contains("from everyone") || page.contains("this console lately"),
                    "{page}"
                );
                refused += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        (checked, refused),
        (8, 52),
        "the shared budget, not 60 hashes"
    );
    // The budget refills (8 a minute); the right password then gets in and gives its
    // token back.
    let fresh = from_address(99);
    let started = std::time::Instant::now();
    loop {
        let r = fresh
            .post(format!("{}/admin/login", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("password=right+password")
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 303 {
            break;
        }
        assert_eq!(r.status().as_u16(), 429);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "never refilled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_tampered_hash_asking_for_gigabytes_is_refused_not_run() {
    // m = 4 GiB: computing it would take the machine's memory.
    let app = TestApp::start_with(|c| {
        c.admin_password = Some(AdminPassword::Hashed(
            "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g".to_owned(),
        ));
    })
    .await;
    let started = std::time::Instant::now();
    let reply = post_form(&app, "/admin/login", "password=anything", None).await;
    assert_eq!(reply.status, 401);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[tokio::test]
async fn an_old_sha256_hash_still_signs_in_and_is_upgraded_to_argon2id() {
    let app = TestApp::start_with(|c| {
        c.admin_password = Some(AdminPassword::Hashed(AdminPassword::legacy_hash(
            "right password",
            1_000,
        )));
    })
    .await;
    assert_eq!(
        post_form(&app, "/admin/login", "password=wrong", None)
            .await
            .status,
        401
    );
    sign_in(&app).await;
    let stored = app
        .store
        .setting(Setting::AdminPassword)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    sign_in(&app).await;
    assert_eq!(
        post_form(&app, "/admin/login", "password=wrong", None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn a_tampered_hash_with_absurd_rounds_is_refused_not_run() {
    let app = TestApp::start_with(|c| {
        c.admin_password = Some(AdminPassword::Hashed(
            "sha256i$4000000000$c2FsdA$aGFzaA".to_owned(),
        ));
    })
    .await;
    let started = std::time::Instant::now();
    let reply = post_form(&app, "/admin/login", "password=anything", None).await;
    assert_eq!(reply.status, 401);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn new_hashes_are_salted_argon2id() {
    let hash = AdminPassword::hash("pw");
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert_ne!(hash, AdminPassword::hash("pw"), "salted");
}

#[tokio::test]
async fn saving_another_client_drops_the_login_and_readyz_says_so_at_once() {
    let app = app().await;
    assert_eq!(app.get("/readyz").await.status, 200);
    let (cookie, csrf) = sign_in(&app).await;
    let page = act(
        &app,
        "/admin/connect",
        &format!("csrf={csrf}&client_id=another-client&client_secret=its-secret"),
        &cookie,
    )
    .await;
    assert!(page.text.contains("Saved"), "{}", page.text);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    let reason = ready.json["reason"].as_str().unwrap();
    assert!(
        reason.contains("no GoTo login is stored") && reason.contains("another-client"),
        "{reason}"
    );
    assert!(!ready.text.contains("its-secret"));
}

#[tokio::test]
async fn a_session_ends_after_twelve_hours_on_the_gateways_clock() {
    let app = app().await;
    let (cookie, _) = sign_in(&app).await;
    app.advance(11 * 3600 * 1000);
    assert_eq!(get_with(&app, "/admin/tokens", &cookie).await.status, 200);
    app.advance(3600 * 1000 + 1000);
    let expired = get_with(&app, "/admin/tokens", &cookie).await;
    assert_eq!(
        (
            expired.status,
            expired.headers["location"].to_str().unwrap()
        ),
        (303, "/admin/login"),
        "twelve hours after signing in, by the injected clock"
    );
}

#[tokio::test]
async fn the_webinars_page_says_how_old_a_registrant_count_is() {
    let app = app().await;
    let (webinar, _) = app
        .webinar(json!({"subject": "Counted", "timeZone": "Europe/Berlin"}))
        .await;
    let (cookie, _) = sign_in(&app).await;
    let page = get_with(&app, "/admin/webinars", &cookie).await;
    assert!(page.text.contains(&webinar), "{}", page.text);
    assert!(!page.text.contains("as of"), "fresh: no age: {}", page.text);
    assert!(
        page.text.contains(" CET</span>") || page.text.contains(" CEST</span>"),
        "the start in the webinar's own zone, named: {}",
        page.text
    );
    app.advance(4 * 60 * 1000);
    let later = get_with(&app, "/admin/webinars", &cookie).await;
    assert!(
        later
            .text
            .contains("0 (GoTo&#39;s 0 as of 4 min ago, and 0 delivered by g2w since)"),
        "{}",
        later.text
    );
}

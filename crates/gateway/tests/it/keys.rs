//! Programs holding a g2w API key, as such a program sees the gateway: a fresh token on
//! request (one refresh however many ask), calls to GoTo through `/goto/`, registrations
//! without the per-address limit, and every refusal a key can meet. Runs on SQLite, and
//! on PostgreSQL in CI's second run of this suite.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use g2w_gateway::keys::{self, Scope};
use g2w_goto::{ExposeSecret as _, Timestamp};
use serde_json::{Value, json};

use crate::{Reply, TestApp, person};

/// A key named `name` for `organizers` with `scopes`, as `g2w keys create` makes it.
async fn key(app: &TestApp, name: &str, organizers: &[&str], scopes: &[Scope]) -> String {
    let organizers: Vec<String> = organizers.iter().map(|&o| o.to_owned()).collect();
    keys::create(&app.store, name, &organizers, scopes, None, app.now())
        .await
        .unwrap()
        .key
        .expose_secret()
        .to_owned()
}

async fn with_key(app: &TestApp, method: reqwest::Method, path: &str, key: &str) -> Reply {
    TestApp::reply(
        app.http
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn token(app: &TestApp, organizer: &str, query: &str, key: &str) -> Reply {
    with_key(
        app,
        reqwest::Method::GET,
        &format!("/api/v1/organizers/{organizer}/token{query}"),
        key,
    )
    .await
}

/// The stored login's access token is made to expire in `seconds`.
async fn expire_in(app: &TestApp, profile: &str, seconds: u64) {
    let mut login = app.store.load_profile(profile).await.unwrap().unwrap();
    login.access_expires_at = Some(Timestamp::now() + Duration::from_secs(seconds));
    app.store.save_profile(profile, &login).await.unwrap();
}

fn error(reply: &Reply) -> &str {
    reply.json["error"].as_str().unwrap_or("")
}

#[tokio::test]
async fn fifty_callers_wanting_more_life_than_the_token_has_cause_one_refresh() {
    let app = TestApp::start().await;
    let crm = key(&app, "crm-sync", &["default"], &[Scope::Token]).await;
    expire_in(&app, "default", 200).await;
    let grants = app.emu.stats().grants("refresh_token");

    let mut asked = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (http, crm) = (app.http.clone(), crm.clone());
        let url = format!("{}/api/v1/organizers/default/token?min_ttl=600", app.base);
        asked.spawn(async move {
            TestApp::reply(http.get(url).bearer_auth(crm).send().await.unwrap()).await
        });
    }
    let answers = asked.join_all().await;

    assert_eq!(
        app.emu.stats().grants("refresh_token") - grants,
        1,
        "one refresh for fifty callers"
    );
    let first = &answers[0].json;
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.headers["cache-control"], "no-store");
        assert_eq!(a.json["access_token"], first["access_token"], "one token");
        assert!(a.json["expires_in"].as_u64().unwrap() >= 600, "{}", a.text);
    }
    assert_eq!(first["token_type"], "Bearer");
    // Keys as strings: a 64-bit key survives every JSON reader.
    assert_eq!(
        first["organizer_key"],
        app.emu.default_organizer_key().to_string()
    );
    assert!(first["account_key"].is_string(), "{first}");
    let expires_at = first["expires_at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(expires_at).is_ok());
    // The token works at GoTo.
    let me = app
        .http
        .get(format!("{}/admin/rest/v1/me", app.emu.base_url()))
        .bearer_auth(first["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // By the organizer key too; the token has enough life already: no second refresh.
    let by_key = token(
        &app,
        &app.emu.default_organizer_key().to_string(),
        "?min_ttl=3000",
        &crm,
    )
    .await;
    assert_eq!(by_key.status, 200, "{}", by_key.text);
    assert_eq!(app.emu.stats().grants("refresh_token") - grants, 1);
    for bad in ["?min_ttl=3001", "?min_ttl=-1", "?min_ttl=ten", "?min_ttl="] {
        let refused = token(&app, "default", bad, &crm).await;
        assert_eq!(
            (refused.status, error(&refused)),
            (400, "invalid_min_ttl"),
            "{bad}"
        );
    }

    // Every hand-out audited with a fingerprint and its expiry; never the token.
    let audit = app
        .store
        .key_audit(Some("crm-sync"), Timestamp::from_secs(0), 1_000)
        .await
        .unwrap();
    assert_eq!(audit.len(), 51);
    let handed = first["access_token"].as_str().unwrap();
    for row in &audit {
        assert_eq!(
            (row.action.as_str(), row.status, row.organizer.as_str()),
            ("token", 200, "default")
        );
        assert!(
            row.token_fingerprint
                .as_deref()
                .is_some_and(|f| f.starts_with("sha256:"))
        );
        assert!(row.token_expires_at.is_some());
        assert!(!format!("{row:?}").contains(handed), "a token in the audit");
    }
    let listed = app.store.keys().await.unwrap();
    assert!(listed[0].last_used_at.is_some(), "last use noted");
}

#[tokio::test]
async fn a_key_is_refused_for_what_it_may_not_do() {
    let app = TestApp::start_two(|c| {
        c.intake_rate_per_ip = 1;
        c.intake_burst = 1;
    })
    .await;
    let main_only = key(&app, "main-tokens", &["default"], &[Scope::Token]).await;
    let (webinar, _) = app.webinar(json!({"subject": "Keys"})).await;

    let other = token(&app, "second", "", &main_only).await;
    assert_eq!(
        (other.status, error(&other)),
        (403, "organizer_not_allowed")
    );
    let nobody = token(&app, "nosuch", "", &main_only).await;
    assert_eq!((nobody.status, error(&nobody)), (404, "unknown_organizer"));
    let proxied = with_key(
        &app,
        reqwest::Method::GET,
        "/goto/default/G2W/rest/v2/organizers/1/webinars",
        &main_only,
    )
    .await;
    assert_eq!(
        (proxied.status, error(&proxied)),
        (403, "scope_not_allowed")
    );
    let register = |key: String, email: &'static str| {
        let app = &app;
        let url = format!("{}/api/v1/webinars/{webinar}/registrations", app.base);
        async move {
            TestApp::reply(
                app.http
                    .post(url)
                    .bearer_auth(key)
                    .json(&person(email))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let refused = register(main_only.clone(), "a@example.com").await;
    assert_eq!(
        (refused.status, error(&refused)),
        (403, "scope_not_allowed")
    );

    // A key with `register`: no per-address limit (the visitors' is 1 here) …
    let crm = key(&app, "crm-import", &["default"], &[Scope::Register]).await;
    for n in 0..5 {
        let email = Box::leak(format!("bulk{n}@example.com").into_boxed_str());
        let r = register(crm.clone(), email).await;
        assert_eq!(r.status, 202, "{}", r.text);
    }
    let sources: Vec<_> = app
        .store
        .list(None, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.source)
        .collect();
    assert!(
        sources
            .iter()
            .all(|s| s.as_deref() == Some("key:crm-import")),
        "{sources:?}"
    );
    // … and only for its own organizers' webinars.
    let theirs = app
        .webinar(json!({"subject": "Theirs", "organizerKey": app.second.unwrap().to_string()}))
        .await
        .0;
    let r = TestApp::reply(
        app.http
            .post(format!(
                "{}/api/v1/webinars/{theirs}/registrations",
                app.base
            ))
            .bearer_auth(&crm)
            .json(&person("c@example.com"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((r.status, error(&r)), (403, "organizer_not_allowed"));

    // Revoked: refused at once.
    app.store
        .revoke_key("main-tokens", app.now())
        .await
        .unwrap()
        .unwrap();
    let revoked = token(&app, "default", "", &main_only).await;
    assert_eq!((revoked.status, error(&revoked)), (401, "key_revoked"));
    // Expired (on the gateway's clock): refused too.
    let soon = keys::create(
        &app.store,
        "short-lived",
        &["default".to_owned()],
        &[Scope::Token],
        Some(app.now() + Duration::from_secs(60)),
        app.now(),
    )
    .await
    .unwrap();
    let soon = soon.key.expose_secret().to_owned();
    assert_eq!(token(&app, "default", "", &soon).await.status, 200);
    app.advance(61_000);
    let expired = token(&app, "default", "", &soon).await;
    assert_eq!((expired.status, error(&expired)), (401, "key_revoked"));
    assert_eq!(expired.json["expired"], true);

    // Wrong keys: each 401; past ten a minute the address waits, even with a good key.
    let good = key(&app, "good", &["default"], &[Scope::Token]).await;
    let prefix = &good[..12];
    let wrong = [
        String::new(),
        "not-a-key".to_owned(),
        format!("{prefix}_{}", "A".repeat(43)),
        format!("{}X", &good[..good.len() - 1]),
        "g2w_zzzzzzzz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
    ];
    let mut refusals = Vec::new();
    for n in 0..12 {
        let r = token(&app, "default", "", &wrong[n % wrong.len()]).await;
        refusals.push((r.status, error(&r).to_owned()));
        if r.status == 429 {
            let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
        }
    }
    // The expired key above counts as no guess; the revoked one neither.
    assert!(
        refusals[..10]
            .iter()
            .all(|(s, e)| *s == 401 && e == "invalid_key"),
        "{refusals:?}"
    );
    assert!(
        refusals[10..]
            .iter()
            .all(|(s, e)| *s == 429 && e == "rate_limited"),
        "{refusals:?}"
    );
    assert_eq!(token(&app, "default", "", &good).await.status, 429);
    let no_header = TestApp::reply(
        app.http
            .get(format!("{}/api/v1/organizers/default/token", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(no_header.status, 429, "the address is waiting");
}

#[tokio::test]
async fn a_token_is_handed_out_over_https_or_to_this_machine_only() {
    let app = TestApp::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let crm = key(&app, "crm", &["default"], &[Scope::Token]).await;
    let via_proxy = |proto: &'static str| {
        let (app, crm) = (&app, crm.clone());
        async move {
            TestApp::reply(
                app.http
                    .get(format!("{}/api/v1/organizers/default/token", app.base))
                    .bearer_auth(crm)
                    .header("x-forwarded-for", "203.0.113.9")
                    .header("x-forwarded-proto", proto)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let plain = via_proxy("http").await;
    assert_eq!((plain.status, error(&plain)), (403, "https_required"));
    assert!(plain.json.get("access_token").is_none());
    assert_eq!(via_proxy("https").await.status, 200);
    // Straight from this machine.
    assert_eq!(token(&app, "default", "", &crm).await.status, 200);
}

#[tokio::test]
async fn a_dead_login_says_needs_reauthorization_and_how_to_fix_it() {
    let app = TestApp::start().await;
    let script = key(&app, "script", &["default"], &[Scope::Token, Scope::Proxy]).await;
    expire_in(&app, "default", 100).await;
    app.control(
        "/tokens/revoke",
        json!({"organizerKey": app.emu.default_organizer_key().to_string()}),
    )
    .await;
    let dead = token(&app, "default", "?min_ttl=600", &script).await;
    assert_eq!(
        (dead.status, error(&dead)),
        (409, "needs_reauthorization"),
        "{}",
        dead.text
    );
    assert_eq!(dead.json["profile"], "default");
    assert!(
        dead.json["message"]
            .as_str()
            .unwrap()
            .contains("g2w auth login"),
        "{}",
        dead.text
    );
    let proxied = with_key(
        &app,
        reqwest::Method::GET,
        &format!(
            "/goto/default/G2W/rest/v2/organizers/{}/webinars",
            app.emu.default_organizer_key()
        ),
        &script,
    )
    .await;
    assert_eq!(
        (proxied.status, error(&proxied)),
        (409, "needs_reauthorization")
    );
}

#[tokio::test]
async fn the_pass_through_forwards_gotos_webinar_api_and_nothing_else() {
    let app = TestApp::start().await;
    let script = key(&app, "report", &["default"], &[Scope::Proxy]).await;
    let organizer = app.emu.default_organizer_key();
    let (webinar, _) = app.webinar(json!({"subject": "Through g2w"})).await;
    let direct = |path: String| {
        let app = &app;
        async move {
            let token = app.tokens.access_token().await.unwrap();
            let r = app
                .http
                .get(format!("{}{path}", app.emu.base_url()))
                .bearer_auth(token.expose_secret())
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    let path = format!("/G2W/rest/v2/organizers/{organizer}/webinars/{webinar}");
    let through = with_key(
        &app,
        reqwest::Method::GET,
        &format!("/goto/default{path}"),
        &script,
    )
    .await;
    assert_eq!(through.status, 200, "{}", through.text);
    assert_eq!(through.json, direct(path.clone()).await);
    assert_eq!(through.headers["cache-control"], "no-store");

    // A registrant made through it, with the body and query as sent.
    let made = TestApp::reply(
        app.http
            .post(format!(
                "{}/goto/default/G2W/rest/v2/organizers/{organizer}/webinars/{webinar}/registrants?resendConfirmation=false",
                app.base
            ))
            .bearer_auth(&script)
            .json(&json!({"firstName": "Grace", "lastName": "Hopper", "email": "grace@example.com"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert!(made.json["joinUrl"].is_string());
    assert_eq!(app.emu.stats().registrants_created, 1);
    // GoTo's own refusals come back as they are.
    let again = TestApp::reply(
        app.http
            .post(format!(
                "{}/goto/default/G2W/rest/v2/organizers/{organizer}/webinars/{webinar}/registrants",
                app.base
            ))
            .bearer_auth(&script)
            .json(
                &json!({"firstName": "Grace", "lastName": "Hopper", "email": "grace@example.com"}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.text);

    for (path, status, code) in [
        (
            "/goto/default/admin/rest/v1/me".to_owned(),
            404,
            "not_forwarded",
        ),
        (
            "/goto/default/oauth/v2/token".to_owned(),
            404,
            "not_forwarded",
        ),
        (
            "/goto/default/G2W/rest/v2/../../admin/rest/v1/me".to_owned(),
            404,
            "not_forwarded",
        ),
        (
            "/goto/default/G2W/rest/v2/%2e%2e/%2e%2e/admin/rest/v1/me".to_owned(),
            404,
            "not_forwarded",
        ),
        (
            format!(
                "/goto/default/G2W/rest/v2/organizers/{}/webinars",
                organizer + 1
            ),
            403,
            "organizer_not_allowed",
        ),
        (
            "/goto/default/G2W/rest/v2/accounts/1/webinars".to_owned(),
            403,
            "organizer_not_allowed",
        ),
    ] {
        let r = with_key(&app, reqwest::Method::GET, &path, &script).await;
        // reqwest folds `..` segments itself, so such a path may arrive as another path
        // outside the API (a plain 404); every other refusal is exactly the one named.
        let folded = path.contains("/../") && r.status == 404;
        assert!(
            folded || (r.status == status && error(&r) == code),
            "{path}: {} {}",
            r.status,
            r.text
        );
    }

    // GoTo's 429: a read waits it out and goes again; anything else gets it back.
    app.fault(
        json!({"method": "GET", "pathPrefix": "/G2W", "status": 429, "retryAfter": 1, "count": 1}),
    )
    .await;
    let started = Instant::now();
    let read = with_key(
        &app,
        reqwest::Method::GET,
        &format!("/goto/default{path}"),
        &script,
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited Retry-After"
    );
    app.fault(json!({"method": "DELETE", "pathPrefix": "/G2W", "status": 429, "retryAfter": 1, "count": 1}))
        .await;
    let delete = with_key(
        &app,
        reqwest::Method::DELETE,
        &format!(
            "/goto/default/G2W/rest/v2/organizers/{organizer}/webinars/{webinar}/registrants/1"
        ),
        &script,
    )
    .await;
    assert_eq!(delete.status, 429);
    assert_eq!(delete.headers["retry-after"], "1");

    let audit = app
        .store
        .key_audit(Some("report"), Timestamp::from_secs(0), 100)
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .all(|r| r.action == "proxy" && r.method.is_some())
    );
    assert!(audit.iter().any(|r| {
        r.status == 201
            && r.method.as_deref() == Some("POST")
            && r.path
                .as_deref()
                .is_some_and(|p| p.ends_with("/registrants"))
    }));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_at_thirty_a_second_and_three_hundred_deliveries_share_gotos_limit() {
    const RATE: u32 = 10;
    let app = TestApp::start_two_running(RATE, |_| {}).await;
    let script = key(&app, "busy-script", &["default"], &[Scope::Proxy]).await;
    let organizer = app.emu.default_organizer_key();
    let (webinar, _) = app.webinar(json!({"subject": "Shared budget"})).await;
    for n in 0..300 {
        let r = app
            .post_json(&webinar, &person(&format!("p{n}@example.com")))
            .await;
        assert_eq!(r.status, 202, "{}", r.text);
    }
    // The script: a call every 1/30 s, each in its own task, until the deliveries end;
    // three times what the account allows.
    let done = Arc::new(AtomicBool::new(false));
    let (answered, failed, slowed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let url = format!(
        "{}/goto/default/G2W/rest/v2/organizers/{organizer}/webinars/{webinar}",
        app.base
    );
    let ticker = {
        let (done, answered, failed, slowed, http) = (
            done.clone(),
            answered.clone(),
            failed.clone(),
            slowed.clone(),
            app.http.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(33));
            let mut calls = tokio::task::JoinSet::new();
            while !done.load(Ordering::SeqCst) {
                tick.tick().await;
                let (http, url, script) = (http.clone(), url.clone(), script.clone());
                let (answered, failed, slowed) = (answered.clone(), failed.clone(), slowed.clone());
                calls.spawn(async move {
                    let r = http.get(url).bearer_auth(script).send().await.unwrap();
                    let (status, wait) = (r.status(), r.headers().contains_key("retry-after"));
                    let told_to_wait =
                        status == 429 && wait && r.text().await.unwrap().contains("rate_limited");
                    if told_to_wait {
                        slowed.fetch_add(1, Ordering::SeqCst);
                    } else if status == 200 {
                        answered.fetch_add(1, Ordering::SeqCst);
                    } else {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
            while calls.join_next().await.is_some() {}
        })
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    while app.emu.stats().registrants_created < 300 {
        assert!(Instant::now() < deadline, "{:?}", app.store.counts().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done.store(true, Ordering::SeqCst);
    ticker.await.unwrap();
    let stats = app.emu.stats();
    assert_eq!(stats.registrants_created, 300, "each once, none lost");
    assert_eq!(stats.rate_limited, 0, "GoTo never said 429");
    let busiest = stats.busiest_second.values().copied().max().unwrap();
    assert!(busiest <= u64::from(RATE), "busiest second {busiest}");
    // The script got its share, and was told (by g2w, not GoTo) to slow down past it.
    let (answered, slowed) = (
        answered.load(Ordering::SeqCst),
        slowed.load(Ordering::SeqCst),
    );
    assert_eq!(failed.load(Ordering::SeqCst), 0);
    assert!(
        answered > 0 && slowed > 0,
        "answered {answered}, slowed {slowed}"
    );
}

#[tokio::test]
async fn the_console_makes_a_key_shows_it_once_and_revokes_it_after_asking() {
    use crate::admin::{app as console_app, get_with, post_form, sign_in};
    let app = console_app().await;
    let (cookie, csrf) = sign_in(&app).await;
    let empty = get_with(&app, "/admin/keys", &cookie).await;
    assert_eq!(empty.status, 200);
    assert!(empty.text.contains("No keys yet"), "{}", empty.text);

    let made = post_form(
        &app,
        "/admin/keys",
        &format!(
            "csrf={csrf}&name=landing-app&organizer%3Adefault=on&scope%3Atoken=on&expires_days=90"
        ),
        Some(&cookie),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.text);
    assert_eq!(made.headers["cache-control"], "no-store");
    let key = made
        .text
        .split("id=\"made-key\" readonly size=\"64\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(key.starts_with("g2w_"), "{key}");
    assert_eq!(token(&app, "default", "", &key).await.status, 200);
    // Shown once: the page never shows it again.
    let later = get_with(&app, "/admin/keys", &cookie).await;
    assert!(!later.text.contains(&key));
    assert!(later.text.contains(&key[..12]) && later.text.contains("landing-app"));
    assert!(
        later.text.contains("token sha256:"),
        "the hand-out is audited"
    );
    // Refused without a name, organizer or scope; or without the session's token.
    for body in [
        format!("csrf={csrf}&name=&organizer%3Adefault=on&scope%3Atoken=on"),
        format!("csrf={csrf}&name=x&scope%3Atoken=on"),
        format!("csrf={csrf}&name=x&organizer%3Adefault=on"),
    ] {
        let refused = post_form(&app, "/admin/keys", &body, Some(&cookie)).await;
        assert_eq!(refused.status, 400, "{body}");
        assert!(refused.text.contains("No key made"));
    }
    let forged = post_form(
        &app,
        "/admin/keys",
        "csrf=forged&name=x&organizer%3Adefault=on&scope%3Atoken=on",
        Some(&cookie),
    )
    .await;
    assert_eq!(forged.status, 403);

    // Revoke asks first …
    let prefix = &key[..12];
    let asked = post_form(
        &app,
        &format!("/admin/keys/{prefix}/revoke"),
        &format!("csrf={csrf}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(asked.status, 200);
    assert!(asked.text.contains("Revoke landing-app"), "{}", asked.text);
    assert_eq!(
        token(&app, "default", "", &key).await.status,
        200,
        "not yet"
    );
    // … and revokes on the answer.
    let revoked = post_form(
        &app,
        &format!("/admin/keys/{prefix}/revoke"),
        &format!("csrf={csrf}&confirm=yes"),
        Some(&cookie),
    )
    .await;
    assert_eq!(revoked.status, 303);
    assert_eq!(token(&app, "default", "", &key).await.status, 401);
    let page = get_with(&app, "/admin/keys", &cookie).await;
    assert!(
        page.text.contains("is revoked") && page.text.contains(">revoked<"),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn hostile_keys_paths_and_bodies_get_clear_refusals_and_nothing_breaks() {
    let app = TestApp::start().await;
    let script = key(&app, "script", &["default"], &[Scope::Proxy, Scope::Token]).await;
    let organizer = app.emu.default_organizer_key();
    // Keys that are huge, binary-looking or not bearer at all: 401, never a 5xx.
    for header in [
        format!("Bearer g2w_{}", "a".repeat(8_000)),
        "Bearer g2w_abcd2345_\u{7f}".to_owned(),
        format!("Basic {script}"),
        format!("Bearer  {script}x"),
        "Bearer".to_owned(),
    ] {
        let r = app
            .http
            .get(format!("{}/api/v1/organizers/default/token", app.base))
            .header("authorization", header.as_bytes())
            .send()
            .await;
        let Ok(r) = r else { continue }; // the client itself refused to send it
        assert!(
            r.status() == 401 || r.status() == 400 || r.status() == 431,
            "{header:.40}: {}",
            r.status()
        );
    }
    // An organizer name of every shape: 404 or a refusal, never a 5xx.
    for organizer in [
        "%00",
        "..",
        "a%2Fb",
        &"x".repeat(2_000),
        "18446744073709551616",
    ] {
        let r = token(&app, organizer, "", &script).await;
        assert!(r.status < 500, "{organizer:.40}: {} {}", r.status, r.text);
    }
    // A body past the gateway's limit is refused before it reaches GoTo.
    let big = vec![b'a'; 2 * 1024 * 1024];
    let r = app
        .http
        .post(format!(
            "{}/goto/default/G2W/rest/v2/organizers/{organizer}/webinars",
            app.base
        ))
        .bearer_auth(&script)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        app.emu
            .stats()
            .route_total("POST /G2W/rest/v2/organizers/{organizer_key}/webinars"),
        0,
        "nothing reached GoTo"
    );
    // Malformed JSON goes to GoTo as sent, and GoTo's refusal comes back as it is.
    let r = app
        .http
        .post(format!(
            "{}/goto/default/G2W/rest/v2/organizers/{organizer}/webinars",
            app.base
        ))
        .bearer_auth(&script)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

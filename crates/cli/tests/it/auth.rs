//! `g2w auth` end to end: login (browser played by the test, PAT), import, status,
//! refresh through rotation and expiry, concurrency across processes, broken stores.

use std::collections::HashMap;

use g2w_emulator::EmulatorConfig;
use serde_json::Value;

use crate::{Env, Running, assert_exit, assert_ok, contains, text};

fn consent_config() -> EmulatorConfig {
    EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    }
}

/// Plays the browser: opens the authorize URL, presses Allow (or Deny), follows the
/// redirect to g2w's loopback callback.
/// Opens the consent page at `authorize_url`, presses a button, returns the redirect.
async fn consent(env: &Env, authorize_url: &str, decision: &str) -> String {
    let page = env
        .http
        .get(authorize_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let id = page
        .split("name=\"request_id\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let answer = env
        .http
        .post(format!("{}/oauth/authorize/decision", env.emu.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("request_id={id}&decision={decision}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 302);
    answer.headers()["location"].to_str().unwrap().to_owned()
}

/// Plays the browser: consent, then the redirect to g2w's loopback callback.
async fn play_browser(env: &Env, authorize_url: &str, decision: &str) -> u16 {
    let callback = consent(env, authorize_url, decision).await;
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
    env.http
        .get(callback)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn url_line(line: &str) -> bool {
    line.trim_start().starts_with("http://")
}

#[tokio::test(flavor = "multi_thread")]
async fn login_with_no_browser_stores_tokens_and_prints_the_organizer() {
    let env = Env::start(consent_config()).await;
    let running = Running::spawn(env.g2w(&["auth", "login", "--no-browser"]));
    let url = running.wait_line(url_line).trim().to_owned();
    let query: HashMap<String, String> = g2w_goto::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(query["code_challenge_method"], "S256", "PKCE on by default");
    assert!(query["state"].len() >= 32);
    let redirect = query["redirect_uri"].clone();

    // A stray callback with the wrong state is refused and the login keeps waiting.
    let stray = env
        .http
        .get(format!("{redirect}?code=evil&state=wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(stray.status(), 400);

    assert_eq!(play_browser(&env, &url, "allow").await, 200);
    let out = running.finish().await;
    assert_ok(&out);
    let organizer = env.emu.default_organizer_key();
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("dana.demo@example.com") && stdout.contains(&organizer.to_string()),
        "{stdout}"
    );
    assert_eq!(env.emu.stats().grants("authorization_code"), 1);

    let status = env.run(&["auth", "status", "--json"], "").await;
    assert_ok(&status);
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["state"], "ok");
    assert_eq!(v["organizerKey"], organizer.to_string(), "64-bit key exact");
    assert_eq!(v["grant"], "refresh_token");
    assert!(
        !contains(&env.database_bytes(), "demo-secret"),
        "client secret encrypted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn login_without_pkce_denied_and_timed_out() {
    let env = Env::start(consent_config()).await;
    let running = Running::spawn(env.g2w(&["auth", "login", "--no-browser", "--no-pkce"]));
    let url = running.wait_line(url_line).trim().to_owned();
    assert!(!url.contains("code_challenge"));
    assert_eq!(play_browser(&env, &url, "deny").await, 200);
    let out = running.finish().await;
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("did not authorize"),
        "{}",
        text(&out.stderr)
    );

    let out = env
        .run(&["auth", "login", "--no-browser", "--timeout", "1"], "")
        .await;
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("gave up after 1 seconds"),
        "{}",
        text(&out.stderr)
    );
    let status = env.run(&["auth", "status"], "").await;
    assert_exit(&status, 3);
    assert!(text(&status.stderr).contains("g2w auth login"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pat_login_keeps_the_pat_encrypted_and_out_of_every_output() {
    let env = Env::start(consent_config()).await;
    let pat = env.login_pat().await;
    assert_eq!(env.emu.stats().grants("personal_access_token"), 1);
    assert!(
        !contains(&env.database_bytes(), &pat),
        "PAT stored in plaintext"
    );
    for args in [
        &["auth", "status"][..],
        &["auth", "status", "--json", "--check"],
    ] {
        let out = env.run(args, "").await;
        assert_ok(&out);
        assert!(!text(&out.stdout).contains(&pat) && !text(&out.stderr).contains(&pat));
    }
    env.emu.advance_clock(2 * 3600);
    assert_ok(&env.run(&["auth", "refresh"], "").await);
    assert_eq!(
        env.emu.stats().grants("personal_access_token"),
        2,
        "renewed with the PAT"
    );
    for bad in ["", "has spaces in it", "nope"] {
        let out = env
            .run(&["auth", "login", "--pat", "--profile", "other"], bad)
            .await;
        assert_exit(&out, 1);
    }
}

/// A refresh token obtained outside g2w, as a `.env` set-up would hold it.
pub(crate) async fn outside_refresh_token(env: &Env) -> String {
    let url = format!(
        "{}/oauth/authorize?client_id=demo-client&response_type=code&redirect_uri=http://127.0.0.1:9/cb&state=s",
        env.emu.base_url()
    );
    let location = g2w_goto::Url::parse(&consent(env, &url, "allow").await).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = env
        .http
        .post(format!("{}/oauth/token", env.emu.base_url()))
        .basic_auth("demo-client", Some("demo-secret"))
        .body(format!(
            "grant_type=authorization_code&code={code}&redirect_uri=http://127.0.0.1:9/cb"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn import_proves_the_refresh_token_and_refuses_a_dead_one() {
    let env = Env::start(consent_config()).await;
    let rt = outside_refresh_token(&env).await;
    let bad = env
        .run(
            &["auth", "import", "--refresh-token-stdin"],
            "not-a-real-token\n",
        )
        .await;
    assert_exit(&bad, 3);
    assert!(
        text(&bad.stderr).contains("nothing was changed"),
        "{}",
        text(&bad.stderr)
    );
    assert_exit(&env.run(&["auth", "status"], "").await, 3);

    let out = env
        .run(
            &["auth", "import", "--refresh-token-stdin"],
            &format!("{rt}\n"),
        )
        .await;
    assert_ok(&out);
    assert!(text(&out.stdout).contains(&env.emu.default_organizer_key().to_string()));
    assert_eq!(
        env.emu.stats().grants("refresh_token"),
        1,
        "proved by one refresh"
    );
    assert!(!contains(&env.database_bytes(), &rt));
}

#[tokio::test(flavor = "multi_thread")]
async fn after_two_hours_a_check_refreshes_once() {
    let env = Env::start(consent_config()).await;
    env.login_pat().await;
    env.emu.advance_clock(2 * 3600);
    let out = env.run(&["auth", "status", "--check", "--json"], "").await;
    assert_ok(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["check"]["ok"], true);
    let stats = env.emu.stats();
    assert_eq!(
        stats.route_status("GET /admin/rest/v1/me", 403),
        1,
        "g2w learnt of expiry from GoTo"
    );
    assert_eq!(stats.grants("personal_access_token"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn daily_refreshes_for_ninety_days_then_expiry_needs_reauthorization() {
    let env = Env::start(consent_config()).await;
    let rt = outside_refresh_token(&env).await;
    assert_ok(
        &env.run(&["auth", "import", "--refresh-token-stdin"], &rt)
            .await,
    );
    for day in 1..=90 {
        env.emu.advance_clock(86_400);
        let out = env.run(&["auth", "refresh"], "").await;
        assert!(out.status.success(), "day {day}: {}", text(&out.stderr));
    }
    assert_eq!(
        env.emu.stats().refresh_tokens_issued,
        4,
        "the login's and three rotations"
    );
    assert_ok(&env.run(&["auth", "status", "--check"], "").await);

    // Thirty-one days without a refresh: the refresh token has died.
    env.emu.advance_clock(31 * 86_400);
    let out = env.run(&["auth", "refresh"], "").await;
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains("reauthorization required")
            && text(&out.stderr).contains("g2w auth login"),
        "{}",
        text(&out.stderr)
    );
    let status = env.run(&["auth", "status", "--json"], "").await;
    assert_exit(&status, 3);
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["state"], "reauthorization_required");
    assert_eq!(
        v["organizerKey"],
        env.emu.default_organizer_key().to_string(),
        "nothing deleted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_sharing_one_store_make_one_refresh() {
    let env = Env::start(consent_config()).await;
    let rt = outside_refresh_token(&env).await;
    assert_ok(
        &env.run(&["auth", "import", "--refresh-token-stdin"], &rt)
            .await,
    );
    for round in 0..3 {
        env.emu.advance_clock(2 * 3600);
        let before = env.emu.stats().grants("refresh_token");
        let (a, b) = tokio::join!(
            env.run(&["auth", "status", "--check"], ""),
            env.run(&["auth", "status", "--check"], "")
        );
        assert_ok(&a);
        assert_ok(&b);
        assert_eq!(
            env.emu.stats().grants("refresh_token") - before,
            1,
            "round {round}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_stores_give_clear_errors_not_panics() {
    let env = Env::start(consent_config()).await;
    env.login_pat().await;

    let wrong_key = env
        .g2w(&["auth", "status"])
        .env(
            "G2W_SECRET_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .output()
        .unwrap();
    assert_exit(&wrong_key, 1);
    assert!(
        text(&wrong_key.stderr).contains("secret key does not match"),
        "{}",
        text(&wrong_key.stderr)
    );
    let bad_key = env
        .g2w(&["auth", "status"])
        .env("G2W_SECRET_KEY", "short")
        .output()
        .unwrap();
    assert_exit(&bad_key, 1);
    assert!(text(&bad_key.stderr).contains("G2W_SECRET_KEY"));

    let corrupt = Env::start(consent_config()).await;
    std::fs::write(
        corrupt.data.path().join("g2w.db"),
        b"this is not sqlite, just text that goes on and on ".repeat(100),
    )
    .unwrap();
    let out = corrupt.run(&["auth", "status"], "").await;
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("not a usable database"),
        "{}",
        text(&out.stderr)
    );

    let foreign = Env::start(consent_config()).await;
    let db = rusqlite_like_foreign(foreign.data.path());
    let out = foreign.run(&["auth", "status"], "").await;
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("not g2w's"),
        "{} ({db})",
        text(&out.stderr)
    );
}

/// Another program's SQLite database where g2w's would be.
fn rusqlite_like_foreign(dir: &std::path::Path) -> String {
    let path = dir.join("g2w.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY);")
        .unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_credentials_and_logout() {
    let env = Env::start(consent_config()).await;
    let out = env
        .g2w(&["auth", "login", "--pat"])
        .env_remove("G2W_CLIENT_SECRET")
        .output()
        .unwrap();
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("G2W_CLIENT_SECRET"),
        "{}",
        text(&out.stderr)
    );

    env.login_pat().await;
    // Once logged in, the stored client is enough.
    let out = env
        .g2w(&["auth", "refresh"])
        .env_remove("G2W_CLIENT_ID")
        .env_remove("G2W_CLIENT_SECRET")
        .output()
        .unwrap();
    assert_ok(&out);
    let out = env.run(&["auth", "logout"], "").await;
    assert_ok(&out);
    assert_exit(&env.run(&["auth", "status"], "").await, 3);
    assert_ok(&env.run(&["auth", "logout"], "").await);
    let bad_profile = env
        .run(&["auth", "status", "--profile", "../etc"], "")
        .await;
    assert_exit(&bad_profile, 2);
}

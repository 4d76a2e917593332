//! `g2w keys` and `g2w auth token` as a user runs them beside `g2w serve`: a key made,
//! listed, used for a token and a call through g2w, revoked, audited; a local script's
//! token; and the token searched for in every log, audit row, error and database file.

use std::time::{Duration, Instant};

use g2w_emulator::EmulatorConfig;
use g2w_store::{SecretKey, Store};
use serde_json::{Value, json};

use crate::serve::start_serve;
use crate::{Env, assert_exit, assert_ok, contains, text};

/// `g2w keys create … --format json`: the key, and what was printed.
async fn create(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["keys", "create", "--format", "json"];
    all.extend(args);
    let out = env.run(&all, "").await;
    assert_ok(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn get(http: &reqwest::Client, url: &str, key: &str) -> (u16, Value) {
    let r = http.get(url).bearer_auth(key).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_from_creation_to_revocation_and_the_token_is_never_written_down() {
    let env = Env::start(EmulatorConfig::default()).await;
    env.login_pat().await;
    let organizer = env.emu.default_organizer_key();

    let made = create(
        &env,
        &[
            "--name",
            "crm-sync",
            "--organizer",
            "default",
            "--scope",
            "token,proxy",
            "--expires",
            "90d",
        ],
    )
    .await;
    let key = made["key"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with("g2w_") && key.len() >= 4 + 8 + 1 + 43,
        "{key}"
    );
    assert_eq!(made["scopes"], json!(["proxy", "token"]));
    assert!(made["expires_at"].is_string());
    // Refusals say what to do.
    for (args, code, says) in [
        (
            vec![
                "--name",
                "crm-sync",
                "--organizer",
                "default",
                "--scope",
                "token",
            ],
            1,
            "exists already",
        ),
        (
            vec![
                "--name",
                "other",
                "--organizer",
                "nosuch",
                "--scope",
                "token",
            ],
            1,
            "g2w auth login --profile nosuch",
        ),
        (
            vec![
                "--name",
                "other",
                "--organizer",
                "default",
                "--scope",
                "admin",
            ],
            2,
            "unknown scope",
        ),
        (
            vec![
                "--name",
                "bad name",
                "--organizer",
                "default",
                "--scope",
                "token",
            ],
            1,
            "cannot name a key",
        ),
        (
            vec![
                "--name",
                "other",
                "--organizer",
                "default",
                "--scope",
                "token",
                "--expires",
                "soon",
            ],
            2,
            "90d",
        ),
    ] {
        let mut all = vec!["keys", "create"];
        all.extend(args);
        let out = env.run(&all, "").await;
        assert_exit(&out, code);
        assert!(
            text(&out.stderr).contains(says),
            "{all:?}: {}",
            text(&out.stderr)
        );
    }
    // Listed without the key.
    let out = env.run(&["keys", "list", "--format", "json"], "").await;
    assert_ok(&out);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "crm-sync");
    assert_eq!(listed[0]["prefix"], &key[..12]);
    assert_eq!(listed[0]["state"], "active");
    assert_eq!(listed[0]["organizers"], json!(["default"]));
    let table = env.run(&["keys", "list"], "").await;
    assert!(
        text(&table.stdout).contains(&key[..12]),
        "{}",
        text(&table.stdout)
    );

    // A local script's token, as `gh auth token` gives one.
    let out = env.run(&["auth", "token"], "").await;
    assert_ok(&out);
    let local = text(&out.stdout).trim().to_owned();
    assert!(!local.is_empty() && !local.contains(' '));
    let out = env
        .run(
            &["auth", "token", "--min-ttl", "600", "--format", "json"],
            "",
        )
        .await;
    assert_ok(&out);
    let local_json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(local_json["expires_in"].as_u64().unwrap() >= 600);
    assert_eq!(local_json["organizer_key"], organizer.to_string());
    assert_exit(
        &env.run(&["auth", "token", "--min-ttl", "4000"], "").await,
        2,
    );
    assert_exit(
        &env.run(&["--profile", "nosuch", "auth", "token"], "").await,
        3,
    );

    // Used through a running gateway, with everything it logs.
    let mut cmd = env.g2w(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.env("G2W_LOG", "debug");
    let (gateway, base) = start_serve(cmd);
    let (status, handed) = get(
        &env.http,
        &format!("{base}/api/v1/organizers/default/token?min_ttl=900"),
        &key,
    )
    .await;
    assert_eq!(status, 200, "{handed}");
    let handed_token = handed["access_token"].as_str().unwrap().to_owned();
    let (status, webinars) = get(
        &env.http,
        &format!("{base}/goto/default/G2W/rest/v2/organizers/{organizer}/webinars?fromTime=2020-01-01T00:00:00Z&toTime=2040-01-01T00:00:00Z"),
        &key,
    )
    .await;
    assert_eq!(status, 200, "{webinars}");
    // Revoked from the CLI: the running gateway refuses it within a second.
    assert_ok(&env.run(&["keys", "revoke", "crm-sync"], "").await);
    let revoked_at = Instant::now();
    let (status, refused) = get(
        &env.http,
        &format!("{base}/api/v1/organizers/default/token"),
        &key,
    )
    .await;
    assert!(revoked_at.elapsed() < Duration::from_secs(1));
    assert_eq!(
        (status, refused["error"].as_str()),
        (401, Some("key_revoked"))
    );
    assert_exit(&env.run(&["keys", "revoke", "nosuch"], "").await, 1);

    let out = env.run(&["keys", "audit", "--format", "json"], "").await;
    assert_ok(&out);
    let audit: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = audit.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{audit}");
    assert_eq!(rows[1]["action"], "token");
    assert!(
        rows[1]["token_fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(rows[0]["action"], "proxy");
    assert_eq!(rows[0]["method"], "GET");
    assert_eq!(rows[0]["caller"], "127.0.0.1");
    let table = env
        .run(&["keys", "audit", "--key", "crm-sync", "--since", "1h"], "")
        .await;
    assert_ok(&table);
    let listed = env.run(&["keys", "list", "--format", "json"], "").await;
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["state"], "revoked");
    assert!(listed[0]["last_used_at"].is_string());

    crate::signal(&gateway, "TERM");
    let logs = tokio::task::spawn_blocking(move || gateway.wait_with_output().unwrap())
        .await
        .unwrap();
    // The token handed out, and the one `auth token` printed: in no log, audit row,
    // error or database file.
    for token in [&handed_token, &local] {
        for (what, bytes) in [
            ("the gateway's log", &logs.stderr),
            ("the audit", &out.stdout),
            ("the audit table", &table.stdout),
            ("the refusal", &refused.to_string().into_bytes()),
        ] {
            assert!(!contains(bytes, token), "a token in {what}");
        }
        assert!(
            !contains(&env.database_bytes(), token),
            "a token in the database"
        );
    }
    assert!(
        !contains(&env.database_bytes(), &key),
        "a key in the database"
    );
    assert!(text(&logs.stderr).contains("DEBUG"), "the log was verbose");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_revoked_on_one_gateway_is_refused_by_another_on_the_same_database_within_a_second() {
    let Some(url) = g2w_store::test_database_url() else {
        return;
    };
    let mut env = Env::start(EmulatorConfig::default()).await;
    let secret = SecretKey::generate();
    env.shared_store = Some((url.clone(), secret.to_base64()));
    env.login_pat().await;
    let key = create(
        &env,
        &[
            "--name",
            "landing-app",
            "--organizer",
            "default",
            "--scope",
            "token",
        ],
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut first, first_base) = start_serve(env.g2w(&["serve", "--listen", "127.0.0.1:0"]));
    let (mut second, second_base) = start_serve(env.g2w(&["serve", "--listen", "127.0.0.1:0"]));
    for base in [&first_base, &second_base] {
        let (status, _) = get(
            &env.http,
            &format!("{base}/api/v1/organizers/default/token"),
            &key,
        )
        .await;
        assert_eq!(status, 200);
    }
    // Revoked through the first gateway's store (as its console would).
    let store = Store::postgres(&url, &secret).await.unwrap();
    store
        .revoke_key("landing-app", g2w_goto::Timestamp::now())
        .await
        .unwrap()
        .unwrap();
    let revoked = Instant::now();
    loop {
        let (status, body) = get(
            &env.http,
            &format!("{second_base}/api/v1/organizers/default/token"),
            &key,
        )
        .await;
        if status == 401 {
            assert_eq!(body["error"], "key_revoked");
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "still {status} after a second"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = get(
        &env.http,
        &format!("{first_base}/api/v1/organizers/default/token"),
        &key,
    )
    .await;
    assert_eq!(status, 401);
    let _ = first.kill();
    let _ = second.kill();
    let _ = first.wait();
    let _ = second.wait();
}

//! The admin console's password as a user meets it in the second week: a made-up one is in
//! a file only its owner can read (never in a log line, JSON or not), every line is JSON in
//! JSON mode, and `g2w admin reset-password` gives a new one that the running gateway
//! takes at the next sign-in.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use g2w_emulator::EmulatorConfig;
use serde_json::Value;

use crate::{Env, assert_ok, text};

async fn sign_in(http: &reqwest::Client, base: &str, password: &str) -> u16 {
    http.post(format!("{base}/admin/login"))
        .form(&[("password", password)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_made_up_password_is_handed_over_in_a_private_file_and_never_logged() {
    let env = Env::start(EmulatorConfig::default()).await;
    env.login_pat().await;
    let mut child = env
        .g2w(&["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .env("G2W_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let listening: Value =
        serde_json::from_str(&first).unwrap_or_else(|_| panic!("not JSON: {first}"));
    let base = listening["url"].as_str().unwrap().to_owned();

    let file = env.data.path().join("admin-password");
    let password = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(password.len() >= 16, "{password}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "readable by its owner only");
    }
    assert_eq!(sign_in(&env.http, &base, &password).await, 303);

    // A new one, taken by the running gateway at the next sign-in.
    let reset = env.run(&["admin", "reset-password"], "").await;
    assert_ok(&reset);
    assert!(
        text(&reset.stderr).contains("admin-password"),
        "{}",
        text(&reset.stderr)
    );
    let renewed = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert_ne!(renewed, password);
    assert!(!text(&reset.stderr).contains(&renewed), "not on a pipe");
    assert_eq!(
        sign_in(&env.http, &base, &password).await,
        401,
        "the old one is gone"
    );
    assert_eq!(sign_in(&env.http, &base, &renewed).await, 303);

    crate::signal(&child, "TERM");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let logs = text(&out.stderr);
    assert!(logs.contains("admin-password"), "the file is named: {logs}");
    for line in logs.lines().chain(text(&out.stdout).lines()) {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not JSON: {line}"
        );
        assert!(
            !line.contains(&password) && !line.contains(&renewed),
            "a password in: {line}"
        );
    }

    // An error in JSON mode is a JSON line too.
    let failed = env
        .run(&["--log-format", "json", "keys", "revoke", "nosuch"], "")
        .await;
    assert_eq!(failed.status.code(), Some(1));
    let line: Value = serde_json::from_str(text(&failed.stderr).trim()).unwrap();
    assert_eq!(line["level"], "ERROR");
    assert!(line.to_string().contains("nosuch"));
}

//! What a user trips on in the second week (issue 26), each as they would meet it through
//! the binary: messages that name the profile and the command that fixes it, every
//! login listed, a gateway that says whom it serves.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use g2w_emulator::EmulatorConfig;
use serde_json::Value;

use crate::{Env, assert_exit, assert_ok, text};

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_login_is_named_with_the_command_that_fixes_it() {
    let env = Env::start(EmulatorConfig::default()).await;
    // A fresh home: no login at all.
    let fresh = env.run(&["webinars", "list"], "").await;
    assert_exit(&fresh, 3);
    let said = text(&fresh.stderr);
    assert!(
        said.contains("no GoTo login is stored for profile \"default\""),
        "{said}"
    );
    assert!(
        said.contains("run `g2w auth login`") && !said.contains("OAuth client"),
        "{said}"
    );

    env.login_pat().await;
    for args in [
        &["--profile", "nosuch", "webinars", "list"][..],
        &["--profile", "nosuch", "auth", "status"],
        &["--profile", "nosuch", "auth", "token"],
    ] {
        let out = env.run(args, "").await;
        assert_exit(&out, 3);
        let said = text(&out.stderr);
        assert!(
            said.contains("g2w auth login --profile nosuch"),
            "{args:?}: {said}"
        );
    }

    // Every stored login, with its state.
    let out = env
        .run(&["auth", "status", "--all", "--format", "json"], "")
        .await;
    assert_ok(&out);
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all[0]["profile"], "default");
    assert_eq!(all[0]["state"], "ok");
    assert!(all[0]["organizerKey"].is_string());
    let table = env.run(&["auth", "status", "--all"], "").await;
    assert!(
        text(&table.stdout).contains("default"),
        "{}",
        text(&table.stdout)
    );
    // Times as RFC 3339, like every other JSON of g2w.
    let one = env.run(&["auth", "status", "--format", "json"], "").await;
    let one: Value = serde_json::from_slice(&one.stdout).unwrap();
    let expires = one["accessTokenExpiresAt"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(expires).is_ok(),
        "{expires}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_says_whom_it_serves_and_warns_for_each_organizer_not_logged_in() {
    let env = Env::start(EmulatorConfig::default()).await;
    env.login_pat().await;
    let mut child = env
        .g2w(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--profiles",
            "default,sales,support",
        ])
        .env("G2W_ADMIN_PASSWORD", "x")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("g2w gateway listening on"), "{first}");
    crate::signal(&child, "TERM");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let said = text(&out.stderr);
    assert!(
        said.contains("Serving organizers: default (")
            && said.contains("sales (not logged in), support (not logged in)"),
        "{said}"
    );
    for p in ["sales", "support"] {
        assert!(
            said.contains(&format!("g2w auth login --profile {p}")),
            "{said}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_remembers_the_goto_it_was_made_against_and_a_retry_is_said() {
    let env = Env::start(EmulatorConfig::default()).await;
    env.login_pat().await;
    env.control("/webinars", serde_json::json!({"subject": "Remembered"}))
        .await;
    // Later, without G2W_AUTH_URL or G2W_API_URL: still the emulator, not GoTo's address.
    let mut cmd = env.g2w(&["webinars", "list", "--format", "json"]);
    cmd.env_remove("G2W_AUTH_URL").env_remove("G2W_API_URL");
    let out = Env::run_cmd(cmd, "").await;
    assert_ok(&out);
    assert!(
        text(&out.stdout).contains("Remembered"),
        "{}",
        text(&out.stdout)
    );
    // A configured GoTo still wins.
    let mut elsewhere = env.g2w(&["webinars", "list"]);
    elsewhere
        .env("G2W_API_URL", "http://127.0.0.1:9")
        .env("G2W_AUTH_URL", "http://127.0.0.1:9");
    let out = Env::run_cmd(elsewhere, "").await;
    assert_exit(&out, 1);
    // A command that retries says so at the first failure.
    env.control(
        "/faults",
        serde_json::json!({"method": "GET", "pathPrefix": "/G2W", "status": 503, "count": 1}),
    )
    .await;
    let out = env.run(&["webinars", "list"], "").await;
    assert_ok(&out);
    assert!(
        text(&out.stderr).contains("retrying"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn times_across_a_change_of_the_clocks_carry_their_own_offsets() {
    let env = Env::start(EmulatorConfig::default()).await;
    env.login_pat().await;
    // The night Berlin's clocks go forward: 01:30 CET to 03:30 CEST is one hour.
    for times in [&["--end", "03:30"][..], &["--duration", "1h"]] {
        let mut args = vec![
            "webinars",
            "create",
            "--subject",
            "Night owls",
            "--start",
            "2027-03-28 01:30",
            "--time-zone",
            "Europe/Berlin",
        ];
        args.extend(times);
        let out = env.run(&args, "").await;
        assert_ok(&out);
        assert!(
            text(&out.stdout).contains("01:30 CET – 03:30 CEST"),
            "{times:?}: {}",
            text(&out.stdout)
        );
    }
    // An error speaks of the time in the zone it was typed in.
    let past = env
        .run(
            &[
                "webinars",
                "create",
                "--subject",
                "Too late",
                "--start",
                "2020-01-06 09:00",
                "--duration",
                "90m",
                "--time-zone",
                "Europe/Berlin",
            ],
            "",
        )
        .await;
    assert_exit(&past, 1);
    assert!(
        text(&past.stderr).contains("2020-01-06 09:00 CET is in the past"),
        "{}",
        text(&past.stderr)
    );
    let both = env
        .run(
            &[
                "webinars",
                "create",
                "--subject",
                "x",
                "--start",
                "2027-05-05 09:00",
                "--end",
                "10:00",
                "--duration",
                "1h",
            ],
            "",
        )
        .await;
    assert_exit(&both, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_emulator_takes_addresses_as_serve_does_and_shows_only_its_own_options() {
    let env = Env::start(EmulatorConfig::default()).await;
    let help = env.run(&["emulator", "--help"], "").await;
    assert_ok(&help);
    let shown = text(&help.stdout);
    assert!(
        shown.contains("--seed-demo") && shown.contains("--listen"),
        "{shown}"
    );
    for foreign in ["--profile", "--client-id", "--client-secret", "--config"] {
        assert!(
            !shown.contains(foreign),
            "{foreign} does not apply: {shown}"
        );
    }
    // A bare port, as `serve --listen` takes it: this machine only.
    let mut child = env
        .g2w(&["emulator", "--listen", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("emulator listening on http://127.0.0.1:"),
        "{line}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

//! `g2w serve` for two organizers: each connected with `g2w --profile … auth login`,
//! each webinar's registrations delivered with its own organizer's login, one revoked
//! login held alone until `g2w auth login --profile …` again.

use g2w_emulator::EmulatorConfig;
use serde_json::{Value, json};

use crate::serve::{post, start_serve, wait_delivered};
use crate::{Env, assert_exit, assert_ok, text};

async fn pat_for(env: &Env, organizer: &str) -> String {
    env.control("/pats", json!({"organizerKey": organizer}))
        .await["pat"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn readyz(env: &Env, base: &str) -> Value {
    env.get_json(&format!("{base}/readyz")).await
}

#[tokio::test(flavor = "multi_thread")]
async fn one_gateway_serves_every_connected_organizer_and_a_revoked_one_waits_alone() {
    let env = Env::start(EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    let first = env.emu.default_organizer_key().to_string();
    let second = env
        .control("/organizers", json!({"email": "sam@example.com"}))
        .await["organizerKey"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ok(
        &env.run(&["auth", "login", "--pat"], &pat_for(&env, &first).await)
            .await,
    );
    let pat = pat_for(&env, &second).await;
    assert_ok(
        &env.run(&["--profile", "emea", "auth", "login", "--pat"], &pat)
            .await,
    );
    let webinar = |organizer: String, subject: &'static str| {
        let env = &env;
        async move {
            env.control(
                "/webinars",
                json!({"subject": subject, "organizerKey": organizer}),
            )
            .await["webinarKey"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (theirs, ours) = (
        webinar(second.clone(), "EMEA launch").await,
        webinar(first.clone(), "US launch").await,
    );

    let mut cmd = env.g2w(&["serve", "--listen", "127.0.0.1:0", "--sync-wait", "5s"]);
    cmd.env("G2W_RATE_LIMIT", "0");
    let (child, base) = start_serve(cmd);
    for (webinar, email) in [(&ours, "us@example.com"), (&theirs, "emea@example.com")] {
        let answer = post(&env.http, &base, webinar, email).await;
        let done = wait_delivered(&env, &base, answer["registrationId"].as_str().unwrap()).await;
        assert!(
            done["joinUrl"].as_str().unwrap().contains(webinar.as_str()),
            "{done}"
        );
    }
    let ready = readyz(&env, &base).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let served: Vec<&str> = ready["organizers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["profile"].as_str().unwrap())
        .collect();
    assert_eq!(served, ["default", "emea"]);

    // The EMEA organizer's login is revoked: its registration waits, the other flows.
    env.control("/tokens/revoke", json!({"organizerKey": second}))
        .await;
    let held = post(&env.http, &base, &theirs, "held@example.com").await;
    let flowing = post(&env.http, &base, &ours, "flowing@example.com").await;
    wait_delivered(&env, &base, flowing["registrationId"].as_str().unwrap()).await;
    let held_id = held["registrationId"].as_str().unwrap();
    let mut ready = readyz(&env, &base).await;
    for _ in 0..100 {
        if ready["status"] == "not_ready" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        ready = readyz(&env, &base).await;
    }
    let reasons = ready["reasons"].to_string();
    assert!(reasons.contains("organizer emea"), "{ready}");
    assert!(!reasons.contains("organizer default"), "{ready}");
    let status = env
        .get_json(&format!("{base}/api/v1/registrations/{held_id}"))
        .await;
    assert_eq!(status["status"], "queued", "held, not failed: {status}");

    // Logging in again from the command line lets it through.
    let pat = pat_for(&env, &second).await;
    assert_ok(
        &env.run(&["--profile", "emea", "auth", "login", "--pat"], &pat)
            .await,
    );
    let done = wait_delivered(&env, &base, held_id).await;
    assert!(done["joinUrl"].as_str().unwrap().contains(theirs.as_str()));
    crate::signal(&child, "TERM");
    let _ = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait()
    })
    .await;
}

#[tokio::test]
async fn profiles_that_cannot_be_served_are_refused_before_listening() {
    let env = Env::start(EmulatorConfig::default()).await;
    for (args, var, expected) in [
        (vec!["--profiles", "a,a"], None, "named twice"),
        (vec!["--profiles", "a,"], None, "1 to 64 letters"),
        (vec![], Some("ok,no way"), "1 to 64 letters"),
    ] {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend(args);
        let mut cmd = env.g2w(&all);
        if let Some(v) = var {
            cmd.env("G2W_PROFILES", v);
        }
        let out = Env::run_cmd(cmd, "").await;
        assert_exit(&out, 1);
        assert!(
            text(&out.stderr).contains(expected),
            "{}",
            text(&out.stderr)
        );
        assert!(!text(&out.stdout).contains("listening"));
    }
}

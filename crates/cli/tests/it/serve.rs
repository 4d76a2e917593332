//! `g2w serve` as a process: the demo, graceful stop, crash safety, the outbox commands.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use g2w_emulator::EmulatorConfig;
use serde_json::{Value, json};

use crate::{Env, assert_exit, assert_ok, text};

/// Starts `g2w serve` and returns it with its base URL (from its first stdout line).
pub fn start_serve(mut cmd: Command) -> (Child, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("g2w gateway listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in stdout.lines() {});
    (child, base)
}

fn sigterm(child: &Child) {
    crate::signal(child, "TERM");
}

/// Polls a registration's status (bounded) until it is registered or already so;
/// returns its last status.
pub async fn wait_delivered(env: &Env, base: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reg = env
            .get_json(&format!("{base}/api/v1/registrations/{id}"))
            .await;
        match reg["status"].as_str() {
            Some("registered" | "already_registered") => return reg,
            Some("queued" | "pending_validation") => {
                assert!(Instant::now() < deadline, "{id} never delivered: {reg}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("{id}: {other:?} {reg}"),
        }
    }
}

pub async fn post(http: &reqwest::Client, base: &str, webinar: &str, email: &str) -> Value {
    let r = http
        .post(format!("{base}/api/v1/webinars/{webinar}/registrations"))
        .json(&json!({"firstName": "Test", "lastName": "Person", "email": email}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_registers_someone_and_stops_cleanly() {
    let env = Env::start(EmulatorConfig::default()).await;
    let mut cmd = env.g2w(&["serve", "--demo", "--listen", "127.0.0.1:0"]);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        banner.push_str(&line);
        if line.starts_with("Stop with Ctrl-C") {
            break;
        }
        line.clear();
    }
    let base = banner
        .lines()
        .next()
        .unwrap()
        .strip_prefix("g2w gateway listening on ")
        .unwrap()
        .to_owned();
    // The banner's first curl command, run as a user would paste it.
    let command = banner.split("  curl -s -X POST ").nth(1).unwrap();
    let url = command.split_whitespace().next().unwrap();
    let body = command
        .split("-d '")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(url.starts_with(&base));
    let answer: Value = env
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], "registered", "{answer}");
    assert!(answer["joinUrl"].as_str().unwrap().contains("/join/"));

    // The banner's session command: GoTo (the emulator) tells the gateway Ada joined.
    let session = banner
        .lines()
        .find(|l| l.contains("/_emulator/sessions"))
        .unwrap();
    let session_url = session.split_whitespace().nth(4).unwrap();
    let session_body = session.split("-d '").nth(1).unwrap().trim_end_matches('\'');
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let metrics = env
            .http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("g2w_webhook_events_total{what=\"received\"}") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no webhook event reached the demo gateway"
        );
        // Set-up runs beside start-up: a join before it is not sent, so join again.
        let r = env
            .http
            .post(session_url)
            .body(session_body.to_owned())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_delivery_loses_nothing_and_registers_nobody_twice() {
    let env = Env::start(EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    env.login_pat().await;
    let webinar = env
        .control("/webinars", json!({"subject": "Crash test"}))
        .await["webinarKey"]
        .as_str()
        .unwrap()
        .to_owned();
    // Slow GoTo down so that deliveries are in flight when the gateway dies.
    env.control(
        "/faults",
        json!({"method": "POST", "pathPrefix": "/G2W", "delayMs": 400}),
    )
    .await;
    let serve = |extra: &[(&str, &str)]| {
        // The default lease: orphans must come back within 15 s without tuning.
        let mut cmd = env.g2w(&["serve", "--listen", "127.0.0.1:0", "--sync-wait", "0"]);
        cmd.env("G2W_INTAKE_RATE_PER_IP", "0")
            .env("G2W_RATE_LIMIT", "0");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        start_serve(cmd)
    };
    let (mut first, base) = serve(&[("G2W_DELIVERY_CONCURRENCY", "4")]);
    let mut ids = Vec::new();
    for i in 0..30 {
        let answer = post(&env.http, &base, &webinar, &format!("crash{i}@example.com")).await;
        ids.push(answer["registrationId"].as_str().unwrap().to_owned());
    }
    // Wait (bounded) until GoTo has seen some deliveries, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.emu.stats().route_total(
        "POST /G2W/rest/v2/organizers/{organizer_key}/webinars/{webinar_key}/registrants",
    ) < 6
    {
        assert!(Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let at_crash = env.emu.stats().registrants_created;
    assert!(
        at_crash < 30,
        "the crash came mid-delivery ({at_crash} done)"
    );

    env.http
        .delete(format!("{}/_emulator/faults", env.emu.base_url()))
        .send()
        .await
        .unwrap();
    let restarted = Instant::now();
    let (mut second, base) = serve(&[]);
    for id in &ids {
        wait_delivered(&env, &base, id).await;
    }
    let settled = restarted.elapsed();
    assert!(
        settled <= Duration::from_secs(15),
        "orphans took {settled:?} to settle after the restart"
    );
    sigterm(&second);
    assert!(second.wait().unwrap().success());
    assert_eq!(
        env.emu.stats().registrants_created,
        30,
        "every person registered exactly once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_without_a_login_queues_until_one_is_stored() {
    let env = Env::start(EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    let bad = env
        .g2w(&["serve"])
        .env("G2W_LISTEN", "nowhere")
        .output()
        .unwrap();
    assert_exit(&bad, 1);
    assert!(text(&bad.stderr).contains("nowhere"));
    let webinar = env.control("/webinars", json!({"subject": "Later"})).await["webinarKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut cmd = env.g2w(&["serve", "--listen", "127.0.0.1:0", "--sync-wait", "0"]);
    cmd.env_remove("G2W_CLIENT_ID")
        .env_remove("G2W_CLIENT_SECRET")
        .env("G2W_RATE_LIMIT", "0");
    let (child, base) = start_serve(cmd);
    let queued = post(&env.http, &base, &webinar, "early@example.com").await;
    assert_eq!(
        queued["status"], "pending_validation",
        "stored; GoTo checks the form at delivery"
    );
    let ready = env.http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "not connected yet");
    env.login_pat().await;
    let id = queued["registrationId"].as_str().unwrap();
    let reg = wait_delivered(&env, &base, id).await;
    assert_eq!(reg["status"], "registered", "delivered after the login");
    sigterm(&child);
}

#[tokio::test(flavor = "multi_thread")]
async fn outbox_commands_manage_failures() {
    let env = Env::start(EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    env.login_pat().await;
    let webinar = env.control("/webinars", json!({"subject": "Outbox"})).await["webinarKey"]
        .as_str()
        .unwrap()
        .to_owned();
    env.control(
        "/faults",
        json!({"method": "POST", "pathPrefix": "/G2W", "status": 400, "count": 1,
        "body": {"errorCode": "RegistrationInvalid", "invalidFields": ["email"]}}),
    )
    .await;
    let mut cmd = env.g2w(&["serve", "--listen", "127.0.0.1:0", "--sync-wait", "5s"]);
    cmd.env("G2W_RATE_LIMIT", "0");
    let (child, base) = start_serve(cmd);
    let refused = env
        .http
        .post(format!("{base}/api/v1/webinars/{webinar}/registrations"))
        .json(&json!({"firstName": "F", "lastName": "L", "email": "refused@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let id = refused.json::<Value>().await.unwrap()["registrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    sigterm(&child);

    let list = env
        .run(
            &["outbox", "list", "--state", "failed", "--format", "json"],
            "",
        )
        .await;
    assert_ok(&list);
    let rows: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows[0]["id"], id.as_str());
    assert!(rows[0]["lastError"].as_str().unwrap().contains("email"));
    assert_ok(&env.run(&["outbox", "retry", &id], "").await);
    let again = env.run(&["outbox", "retry", &id], "").await;
    assert_exit(&again, 1);
    assert!(
        text(&again.stderr).contains("pending"),
        "{}",
        text(&again.stderr)
    );
    assert_exit(&env.run(&["outbox", "retry", "nope"], "").await, 1);
    assert_ok(&env.run(&["outbox", "retry", "--all-failed"], "").await);
    let table = env.run(&["outbox", "list"], "").await;
    assert!(text(&table.stdout).contains("refused@example.com"));
    assert_exit(
        &env.run(&["outbox", "list", "--state", "lost"], "").await,
        2,
    );
    let purge = env
        .run(&["outbox", "purge", "--delivered-before", "2999-01-01"], "")
        .await;
    assert_ok(&purge);
    assert!(
        text(&purge.stdout).contains("nothing to delete"),
        "the pending one stays: {}",
        text(&purge.stdout)
    );
    assert_exit(
        &env.run(&["outbox", "purge", "--delivered-before", "yesterday"], "")
            .await,
        1,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn config_example_is_a_valid_config_file() {
    let env = Env::start(EmulatorConfig::default()).await;
    let out = env.run(&["config", "example"], "").await;
    assert_ok(&out);
    let example = text(&out.stdout);
    assert!(example.contains("[serve]") && example.contains("allowed_origins"));
    let path = env.data.path().join("example.toml");
    std::fs::write(&path, &example).unwrap();
    assert_ok(
        &env.g2w(&["outbox", "list", "--config", path.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    std::fs::write(&path, "[serve]\nlisten = 8080\n").unwrap();
    let bad = env
        .g2w(&["outbox", "list", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&bad, 1);
    assert!(text(&bad.stderr).contains("invalid config file"));
}

//! `g2w emulator`: the one stdout line, a working server behind it, clean stop.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};

fn g2w() -> Command {
    Command::new(env!("CARGO_BIN_EXE_g2w"))
}

#[tokio::test]
async fn prints_one_line_serves_and_stops_on_sigterm() {
    let mut child = g2w()
        .args([
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--seed-demo",
            "--auto-approve",
        ])
        .args(["--client", "acme:s3cret", "--rate-limit", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base = line
        .trim_end()
        .strip_prefix("emulator listening on http://")
        .map(|addr| format!("http://{addr}"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));

    let http = reqwest::Client::new();
    let organizers: serde_json::Value = http
        .get(format!("{base}/_emulator/organizers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        organizers.as_array().unwrap().len(),
        2,
        "--seed-demo has two organizers"
    );
    // The extra client is registered.
    let pat: serde_json::Value = http
        .post(format!("{base}/_emulator/pats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = http
        .post(format!("{base}/oauth/token"))
        .basic_auth("acme", Some("s3cret"))
        .body(format!(
            "grant_type=personal_access_token&pat={}",
            pat["pat"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);

    crate::signal(&child, "TERM");
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "exactly one line on stdout");
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        vec!["emulator", "--client", "no-secret"],
        vec!["emulator", "--listen", "not-an-address"],
        vec!["emulator", "--rate-limit", "-1"],
        vec!["no-such-command"],
    ] {
        let out = g2w().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?} gave no message");
    }
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = g2w()
        .args(["emulator", "--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(out.stdout.is_empty());
}

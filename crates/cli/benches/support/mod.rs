//! What the benchmarks need: `g2w` pointed at an emulator and a data directory, a
//! login, a webinar with one required question, and `g2w serve` started.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// With `BENCH_DATABASE_URL` (a PostgreSQL server), a fresh database on it for this
/// run: every `g2w` then keeps its state there instead of the SQLite file.
pub fn database() -> Option<&'static str> {
    static URL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        let admin = std::env::var("BENCH_DATABASE_URL").ok()?;
        Some(g2w_store::create_test_database(&admin).unwrap())
    })
    .as_deref()
}

/// Where this run keeps its state, for the report.
#[allow(dead_code)] // not every benchmark reports it
pub fn store_name() -> &'static str {
    if database().is_some() {
        "PostgreSQL (BENCH_DATABASE_URL)"
    } else {
        "SQLite"
    }
}

/// `g2w ARGS` against `emulator`, storing its state in `data` (or in PostgreSQL).
#[allow(dead_code)] // the store benchmark names its database
pub fn g2w(emulator: &str, data: &Path, args: &[&str]) -> Command {
    g2w_on(database(), emulator, data, args)
}

/// `g2w ARGS` keeping its state in the PostgreSQL database `database`, else in `data`.
pub fn g2w_on(database: Option<&str>, emulator: &str, data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_g2w"));
    if let Some(url) = database {
        c.env("G2W_DATABASE_URL", url);
    }
    c.args(args)
        .env("G2W_DATA_DIR", data)
        .env("G2W_AUTH_URL", emulator)
        .env("G2W_API_URL", emulator)
        .env("G2W_CLIENT_ID", "demo-client")
        .env("G2W_CLIENT_SECRET", "demo-secret")
        .env("XDG_CONFIG_HOME", data);
    c
}

/// Starts `g2w serve` from `cmd`; returns it with its base URL (its first stdout line).
#[allow(dead_code)] // the import benchmark serves nothing
pub fn serve(mut cmd: Command) -> (Child, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("g2w gateway listening on ")
        .unwrap()
        .to_owned();
    (child, base)
}

/// Logs `g2w` in with a personal access token minted by the emulator.
#[allow(dead_code)] // the store benchmark names its database
pub async fn login(http: &reqwest::Client, emulator: &str, data: &Path) {
    login_on(database(), http, emulator, data).await;
}

/// A personal access token minted by the emulator (`pat`, `organizerKey`).
pub async fn pat(http: &reqwest::Client, emulator: &str) -> Value {
    http.post(format!("{emulator}/_emulator/pats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Logs in, keeping the login in `database` (else in `data`).
pub async fn login_on(database: Option<&str>, http: &reqwest::Client, emulator: &str, data: &Path) {
    let pat = pat(http, emulator).await;
    let mut login = g2w_on(database, emulator, data, &["auth", "login", "--pat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    login
        .stdin
        .take()
        .unwrap()
        .write_all(pat["pat"].as_str().unwrap().as_bytes())
        .unwrap();
    assert!(login.wait().unwrap().success());
}

/// A webinar with one required short-answer question: (webinar key, question key).
#[allow(dead_code)] // the webhooks benchmark makes its own
pub async fn webinar(http: &reqwest::Client, emulator: &str, subject: &str) -> (String, String) {
    let webinar: Value = http
        .post(format!("{emulator}/_emulator/webinars"))
        .json(&json!({"subject": subject, "questions": [{"question": "Why?", "type": "shortAnswer", "required": true}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        webinar["webinarKey"].as_str().unwrap().to_owned(),
        webinar["questions"][0]["questionKey"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

/// A number from the environment (`BENCH_SECONDS`, …), else `default`.
#[allow(dead_code)] // not every benchmark is tuned this way
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Waits (at most ten minutes) until the gateway at `base` has delivered everything,
/// as its `/metrics` says.
#[allow(dead_code)] // not every benchmark delivers
pub async fn drained(http: &reqwest::Client, base: &str) {
    for _ in 0..6_000 {
        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let waiting: u64 = metrics
            .lines()
            .filter(|l| {
                l.starts_with("g2w_queue_items{queue=\"registrations\",state=\"pending\"}")
                    || l.starts_with(
                        "g2w_queue_items{queue=\"registrations\",state=\"delivering\"}",
                    )
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        if waiting == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the outbox never drained");
}

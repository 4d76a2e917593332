//! Form builders' posts beside the JSON API, in one run: `cargo bench -p g2w --bench sources`.
//!
//! One `g2w serve` (sync wait 0, no per-address limit, no GoTo rate limit, 16 deliveries in
//! flight against a GoTo that answers at once) with a source per tool. Each measurement
//! posts for `BENCH_SECONDS` (10) from 32 connections, every post someone new: the JSON
//! API's registration with its answers by key, then each tool's own example
//! (`crates/gateway/tests/fixtures/sources`) for another person, signed the tool's way.
//! Every request is made and signed before its measurement starts, each measurement starts
//! from an empty outbox (its own deliveries run beside it), and the same load generator
//! (in this process) sends every door's, so the figures compare; `BENCH_ROUNDS` (3)
//! rounds, medians printed.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

mod support;

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use g2w_gateway::sources::fake;
use g2w_gateway::sources::{Kind, Source};
use serde_json::{Value, json};

const CONNECTIONS: usize = 32;
const SECRET: &str = "bench-signing-secret";
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../gateway/tests/fixtures/sources"
);

/// Each tool: its fixture and its body's type.
const TOOLS: [(Kind, &str, &str); 5] = fake::EXAMPLES;

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// One door: how to make the request for person `n`.
type Door = Arc<dyn Fn(usize) -> reqwest::RequestBuilder + Send + Sync>;

/// The most posts a second any door could take here: requests are made before the clock
/// starts (signing and writing bodies would otherwise compete with the gateway for the
/// same two cores, more for the tools' bodies than for the API's).
const MOST_PER_SECOND: usize = 20_000;

/// Posts from `CONNECTIONS` connections for `seconds`, people `first..`; accepted posts a
/// second.
async fn load(http: &reqwest::Client, door: &Door, first: usize, seconds: u64) -> f64 {
    let total = MOST_PER_SECOND * usize::try_from(seconds).unwrap();
    let mut chunks: Vec<Vec<reqwest::Request>> = (0..CONNECTIONS).map(|_| Vec::new()).collect();
    for n in 0..total {
        chunks[n % CONNECTIONS].push(door(first + n).build().unwrap());
    }
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for mut chunk in chunks {
        let http = http.clone();
        chunk.reverse();
        tasks.spawn(async move {
            let mut accepted = 0_u64;
            while Instant::now() < until {
                let Some(request) = chunk.pop() else {
                    panic!("more than {MOST_PER_SECOND} posts a second: raise MOST_PER_SECOND");
                };
                let r = http.execute(request).await.unwrap();
                assert!(
                    r.status().is_success(),
                    "{}: {}",
                    r.status(),
                    r.text().await.unwrap()
                );
                accepted += 1;
            }
            accepted
        });
    }
    let mut accepted = 0;
    while let Some(done) = tasks.join_next().await {
        accepted += done.unwrap();
    }
    accepted as f64 / started.elapsed().as_secs_f64()
}

/// Adds a source per tool with `g2w sources add` (the secret on stdin).
fn add_sources(emulator: &str, data: &std::path::Path, webinar: &str) {
    for (kind, _, _) in TOOLS {
        let name = format!("bench-{kind}");
        let mut args = vec![
            "sources",
            "add",
            kind.as_str(),
            "--name",
            &name,
            "--webinar",
            webinar,
            "--secret-stdin",
        ];
        if kind == Kind::Generic {
            args.extend([
                "--signature-header",
                "X-Signature",
                "--id-field",
                "submission.id",
            ]);
        }
        let mut child = support::g2w(emulator, data, &args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(SECRET.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "sources add {kind}");
    }
}

#[tokio::main]
async fn main() {
    let seconds = support::env_number("BENCH_SECONDS", 10);
    let rounds = support::env_number("BENCH_ROUNDS", 3);
    let emu = g2w_emulator::spawn(g2w_emulator::EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();
    let created: Value = http
        .post(format!("{}/_emulator/webinars", emu.base_url()))
        .json(&json!({"subject": "Spring launch", "fields": [{"field": "organization"}],
            "questions": [
                {"question": "What would you like to learn?", "type": "shortAnswer", "required": true},
                {"question": "Team size", "type": "multipleChoice", "answers": ["1-10", "11-50", "51+"]}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webinar = created["webinarKey"].as_str().unwrap().to_owned();
    let question = created["questions"][0]["questionKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = tempfile::tempdir().unwrap();
    support::login(&http, emu.base_url(), data.path()).await;
    add_sources(emu.base_url(), data.path(), &webinar);
    let mut cmd = support::g2w(
        emu.base_url(),
        data.path(),
        &["serve", "--listen", "127.0.0.1:0", "--sync-wait", "0"],
    );
    cmd.env("G2W_RATE_LIMIT", "0")
        .env("G2W_INTAKE_RATE_PER_IP", "0")
        .env("G2W_DELIVERY_CONCURRENCY", "16");
    let (serve, base) = support::serve(cmd);

    let mut doors: Vec<(String, Door)> = Vec::new();
    {
        let (http, url, question) = (
            http.clone(),
            format!("{base}/api/v1/webinars/{webinar}/registrations"),
            question.clone(),
        );
        doors.push((
            "JSON API".to_owned(),
            Arc::new(move |n| {
                http.post(&url)
                    .json(&json!({"firstName": "Ada", "lastName": "Lovelace",
                    "email": format!("api{n}@example.com"), "organization": "Engines",
                    "responses": [{"questionKey": question, "responseText": "benchmark"}]}))
            }),
        ));
    }
    let store = g2w_store::Store::open(support::database(), data.path(), None)
        .await
        .unwrap();
    for (kind, file, content_type) in TOOLS {
        let record = store
            .source(&format!("bench-{kind}"))
            .await
            .unwrap()
            .unwrap();
        let source = Source::from_record(record).unwrap();
        let fixture = std::fs::read(format!("{FIXTURES}/{file}")).unwrap();
        let url = format!("{base}{}", fake::path_with(&source, SECRET));
        let http = http.clone();
        doors.push((
            kind.to_string(),
            Arc::new(move |n| {
                // Someone new each time, signed now (Webflow's timestamp stays fresh).
                let body = fake::someone(kind, &fixture, n);
                let headers =
                    fake::signed_headers(&source, SECRET, &body, g2w_goto::Timestamp::now());
                let mut r = http
                    .post(&url)
                    .header("content-type", content_type)
                    .body(body);
                for (name, value) in headers {
                    r = r.header(name, value);
                }
                r
            }),
        ));
    }
    drop(store);
    // Warm: each door's first post fetches the webinar's form once.
    for (name, door) in &doors {
        let r = door(usize::MAX - 1).send().await.unwrap();
        assert!(
            r.status().is_success(),
            "{name}: {}",
            r.text().await.unwrap()
        );
    }
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); doors.len()];
    for round in 0..rounds {
        for (i, (_, door)) in doors.iter().enumerate() {
            // Each round its own people: the same person twice is answered from the first.
            let first = (round as usize + 1) * 10_000_000 * (i + 1);
            support::drained(&http, &base).await;
            figures[i].push(load(&http, door, first, seconds).await);
        }
    }
    stop(serve);
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "sources benchmark ({}): {rounds} rounds of {seconds} s, {CONNECTIONS} connections, every post someone new",
        support::store_name()
    );
    let api = median(figures[0].clone());
    for ((name, _), rates) in doors.iter().zip(&figures) {
        let m = median(rates.clone());
        println!(
            "  {name:<9} {} /s; median {m:.0} /s = {:.2}× the JSON API",
            rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(" · "),
            m / api
        );
    }
}

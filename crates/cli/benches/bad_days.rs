//! The gateway on GoTo's bad days: `cargo bench -p g2w --bench bad_days`.
//!
//! Runs the real `g2w serve` binary (default settings: GoTo's 10 requests/s, sync wait
//! 2 s) against an in-process emulator that enforces 10 requests/s, and measures:
//! - the stampede: 50 first registrations for a webinar at once (cold cache): answer
//!   latency and how many times GoTo was asked for the form;
//! - the outage: `BENCH_BACKLOG` registrations (default 200) arrive while GoTo answers
//!   500 for `BENCH_OUTAGE_SECS` (default 300); how long after GoTo's return the last
//!   one is delivered, against backlog ÷ 10/s + 5 s.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CREATE: &str =
    "POST /G2W/rest/v2/organizers/{organizer_key}/webinars/{webinar_key}/registrants";
const GET_WEBINAR: &str = "GET /G2W/rest/v2/organizers/{organizer_key}/webinars/{webinar_key}";
const GET_FIELDS: &str =
    "GET /G2W/rest/v2/organizers/{organizer_key}/webinars/{webinar_key}/registrants/fields";

fn body(question: &str, email: &str) -> Value {
    json!({"firstName": "Bench", "lastName": "Mark", "email": email,
        "responses": [{"questionKey": question, "responseText": "load"}]})
}

#[tokio::main]
async fn main() {
    let backlog = support::env_number("BENCH_BACKLOG", 200);
    let outage = Duration::from_secs(support::env_number("BENCH_OUTAGE_SECS", 300));
    let emu = g2w_emulator::spawn(g2w_emulator::EmulatorConfig::default())
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    support::login(&http, emu.base_url(), data.path()).await;
    let mut cmd = support::g2w(
        emu.base_url(),
        data.path(),
        &["serve", "--listen", "127.0.0.1:0"],
    );
    cmd.env("G2W_INTAKE_RATE_PER_IP", "0");
    let (mut serve, base) = support::serve(cmd);

    // The stampede.
    let (webinar, question) = support::webinar(&http, emu.base_url(), "Stampede").await;
    let url = format!("{base}/api/v1/webinars/{webinar}/registrations");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (http, url, b) = (
                http.clone(),
                url.clone(),
                body(&question, &format!("s{i}@example.com")),
            );
            tokio::spawn(async move {
                let started = Instant::now();
                let status = http.post(url).json(&b).send().await.unwrap().status();
                (started.elapsed(), status.as_u16())
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    for t in tasks {
        let (took, status) = t.await.unwrap();
        latencies.push(took);
        *statuses.entry(status).or_default() += 1;
    }
    latencies.sort();
    let stats = emu.stats();
    println!(
        "stampede: 50 first registrations, answers {statuses:?}; p50 {:?}, p99 {:?}, max {:?}; GoTo GETs: {} details + {} fields",
        latencies[24],
        latencies[49 * 99 / 100],
        latencies[49],
        stats.route_total(GET_WEBINAR),
        stats.route_total(GET_FIELDS),
    );

    // The outage.
    let (webinar, question) = support::webinar(&http, emu.base_url(), "Outage").await;
    let url = format!("{base}/api/v1/webinars/{webinar}/registrations");
    // Warm the form cache the way a landing page's first visitor would.
    http.get(format!("{base}/r/{webinar}"))
        .send()
        .await
        .unwrap();
    http.post(format!("{}/_emulator/faults", emu.base_url()))
        .json(&json!({"method": "POST", "pathPrefix": "/G2W", "status": 500}))
        .send()
        .await
        .unwrap();
    let down_at = Instant::now();
    for i in 0..backlog {
        let r = http
            .post(&url)
            .json(&body(&question, &format!("o{i}@example.com")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let created_before = emu.stats().registrants_created;
    tokio::time::sleep(outage.saturating_sub(down_at.elapsed())).await;
    let failed_calls = emu.stats().route_status(CREATE, 500);
    http.delete(format!("{}/_emulator/faults", emu.base_url()))
        .send()
        .await
        .unwrap();
    let back_at = Instant::now();
    while emu.stats().registrants_created < created_before + backlog {
        assert!(
            back_at.elapsed() < Duration::from_secs(600),
            "never drained"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = back_at.elapsed();
    #[allow(clippy::cast_precision_loss)]
    let target = backlog as f64 / 10.0 + 5.0;
    println!(
        "outage: {backlog} registrations during {} s of 500s ({failed_calls} GoTo calls while down); last delivered {:.1} s after GoTo's return (target {target:.0} s); 429s from GoTo: {}",
        outage.as_secs(),
        drained.as_secs_f64(),
        emu.stats().rate_limited,
    );
    let _ = serve.kill();
    let _ = serve.wait();
}

//! How many registrant creations per second the emulator sustains with its rate limit
//! off. Run: `cargo bench -p g2w-emulator --bench registrants`.
//! `BENCH_REQUESTS` (default 200000) and `BENCH_CONCURRENCY` (default 64) tune it.
//!
//! The load generator runs in the same process and on the same cores as the emulator,
//! so the figure is a lower bound of what the emulator alone can do.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use g2w_emulator::{EmulatorConfig, spawn};
use serde_json::{Value, json};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let requests = env_or("BENCH_REQUESTS", 200_000);
    let concurrency = env_or("BENCH_CONCURRENCY", 64);
    let emu = spawn(EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let base = emu.base_url().to_owned();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency as usize)
        .build()
        .unwrap();

    let webinar: Value = http
        .post(format!("{base}/_emulator/webinars"))
        .json(&json!({"subject": "Bench", "questions": [{"question": "Why?", "type": "shortAnswer", "required": true}]}))
        .send().await.unwrap().json().await.unwrap();
    let question = webinar["questions"][0]["questionKey"].clone();
    let pat: Value = http
        .post(format!("{base}/_emulator/pats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token: Value = http
        .post(format!("{base}/oauth/token"))
        .basic_auth("demo-client", Some("demo-secret"))
        .body(format!(
            "grant_type=personal_access_token&pat={}",
            pat["pat"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let url = format!(
        "{base}/G2W/rest/v2/organizers/{}/webinars/{}/registrants",
        emu.default_organizer_key(),
        webinar["webinarKey"].as_str().unwrap()
    );

    let next = Arc::new(AtomicU64::new(0));
    let created = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, token, next, created, question) = (
            http.clone(),
            url.clone(),
            token.clone(),
            next.clone(),
            created.clone(),
            question.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let body = json!({
                    "firstName": "Load", "lastName": format!("Test {i}"), "email": format!("load{i}@example.com"),
                    "responses": [{"questionKey": question, "responseText": "benchmark"}]
                });
                let response = http.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                if response.status() == 201 {
                    created.fetch_add(1, Ordering::Relaxed);
                }
                let _ = response.bytes().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let created = created.load(Ordering::Relaxed);
    assert_eq!(created, requests, "every request must create a registrant");
    assert_eq!(emu.stats().registrants_created, requests);
    println!(
        "{created} registrants in {elapsed:.2} s with {concurrency} connections: {:.0} creations/s",
        created as f64 / elapsed
    );
}

//! The store under load and with history: `cargo bench -p g2w --bench store`.
//!
//! Runs the real `g2w serve` on SQLite and, with `BENCH_DATABASE_URL` (a PostgreSQL
//! server), on a fresh PostgreSQL database, each empty and then with `BENCH_HISTORY`
//! (default 500,000) delivered registrations already kept. For each: durably accepted
//! registrations/s with delivery running at full speed (64 connections, sync wait 0,
//! emulator rate limit off), how long until all of them reached GoTo, a `/metrics`
//! scrape, and listing the failed registrations. Everything in one run, so the ratios
//! compare like with like.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use g2w_store::{OutboxState, SecretKey, Store};
use serde_json::json;

struct Run {
    store: &'static str,
    history: u32,
    intake_per_sec: f64,
    delivered_after: f64,
    metrics_p50_ms: f64,
    metrics_max_ms: f64,
    list_failed_ms: f64,
}

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn open(database: Option<&str>, data: &Path) -> Store {
    match database {
        Some(url) => {
            let key = SecretKey::resolve(None, data).unwrap();
            Store::postgres(url, &key).await.unwrap()
        }
        None => Store::open_in(data, None).await.unwrap(),
    }
}

async fn run(store: &'static str, database: Option<&str>, history: u32, requests: u64) -> Run {
    let emu = g2w_emulator::spawn(g2w_emulator::EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    support::login_on(database, &http, emu.base_url(), data.path()).await;
    let (webinar, question) = support::webinar(&http, emu.base_url(), "Load").await;
    if history > 0 {
        let kept = open(database, data.path()).await;
        let added = kept
            .add_delivered_history("default", "1", history, g2w_goto::Timestamp::now())
            .await
            .unwrap();
        assert_eq!(added, u64::from(history));
    }
    let mut cmd = support::g2w_on(
        database,
        emu.base_url(),
        data.path(),
        &["serve", "--listen", "127.0.0.1:0", "--sync-wait", "0"],
    );
    cmd.env("G2W_RATE_LIMIT", "0")
        .env("G2W_INTAKE_RATE_PER_IP", "0")
        .env("G2W_DELIVERY_CONCURRENCY", "16");
    let (mut serve, base) = support::serve(cmd);
    let url = Arc::new(format!("{base}/api/v1/webinars/{webinar}/registrations"));
    let body = move |question: &str, i: u64| {
        json!({"firstName": "Load", "lastName": format!("T{i}"), "email": format!("load{i}@example.com"),
        "responses": [{"questionKey": question, "responseText": "benchmark"}]})
    };
    // Warm the form cache so the run measures intake, not the first GoTo look-up.
    let warm = http
        .post(url.as_str())
        .json(&body(&question, u64::MAX))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 202);

    // /metrics, scraped one at a time, before the load.
    let mut scrapes = Vec::new();
    for _ in 0..50 {
        let s = Instant::now();
        let r = http.get(format!("{base}/metrics")).send().await.unwrap();
        assert!(r.status().is_success());
        let _ = r.bytes().await;
        scrapes.push(s.elapsed());
    }
    scrapes.sort();

    // Listing the failed registrations (none) among the history.
    let kept = open(database, data.path()).await;
    let s = Instant::now();
    let failed = kept
        .list(Some(OutboxState::Failed), None, 100)
        .await
        .unwrap();
    let list_failed = s.elapsed();
    assert!(failed.is_empty());
    drop(kept);

    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (http, url, next, question) =
                (http.clone(), url.clone(), next.clone(), question.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let r = http
                        .post(url.as_str())
                        .json(&body(&question, i))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 202);
                    let _ = r.bytes().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let intake = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(600);
    while emu.stats().registrants_created < requests + 1 {
        assert!(Instant::now() < deadline, "delivery did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered_after = started.elapsed().as_secs_f64();
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let _ = serve.wait();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Run {
        store,
        history,
        intake_per_sec: requests as f64 / intake,
        delivered_after,
        metrics_p50_ms: ms(scrapes[scrapes.len() / 2]),
        metrics_max_ms: ms(*scrapes.last().unwrap()),
        list_failed_ms: ms(list_failed),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let requests = u64::from(env_number("BENCH_REQUESTS", 20_000));
    let history = env_number("BENCH_HISTORY", 500_000);
    let rounds = env_number("BENCH_ROUNDS", 3);
    let postgres = std::env::var("BENCH_DATABASE_URL").ok();
    let mut runs = Vec::new();
    // Rounds interleave the stores, so a slow minute of the machine hits both.
    for _ in 0..rounds {
        for rows in [0, history] {
            runs.push(run("SQLite", None, rows, requests).await);
            if let Some(admin) = &postgres {
                let database = g2w_store::create_test_database(admin).unwrap();
                runs.push(run("PostgreSQL", Some(&database), rows, requests).await);
            }
        }
    }
    println!(
        "store benchmark: {requests} registrations, 64 connections, delivery at full speed \
         (emulator rate limit off), sync wait 0; {rounds} rounds"
    );
    println!(
        "  {:<11} {:>9} {:>13} {:>15} {:>17} {:>16}",
        "store", "history", "accepted/s", "delivered after", "/metrics p50/max", "list failed"
    );
    for r in &runs {
        println!(
            "  {:<11} {:>9} {:>13.0} {:>13.2} s {:>8.2}/{:.2} ms {:>13.2} ms",
            r.store,
            r.history,
            r.intake_per_sec,
            r.delivered_after,
            r.metrics_p50_ms,
            r.metrics_max_ms,
            r.list_failed_ms
        );
    }
    let of = |store: &str, rows: u32, f: fn(&Run) -> f64| {
        let values: Vec<f64> = runs
            .iter()
            .filter(|r| r.store == store && r.history == rows)
            .map(f)
            .collect();
        (!values.is_empty()).then(|| median(values))
    };
    println!("  medians:");
    for store in ["SQLite", "PostgreSQL"] {
        let intake = |rows| of(store, rows, |r| r.intake_per_sec);
        let delivery = |rows| of(store, rows, |r| r.delivered_after);
        if let (Some(empty), Some(full), Some(de), Some(df)) =
            (intake(0), intake(history), delivery(0), delivery(history))
        {
            println!(
                "  {store}: {empty:.0}/s empty, {full:.0}/s with {history} rows kept \
                 (intake {:.2}x, delivery time {:.2}x of the empty store)",
                full / empty,
                df / de
            );
        }
    }
    if let (Some(sqlite), Some(pg)) = (
        of("SQLite", 0, |r| r.intake_per_sec),
        of("PostgreSQL", 0, |r| r.intake_per_sec),
    ) {
        println!(
            "  PostgreSQL intake / SQLite intake, same run: {:.2}",
            pg / sqlite
        );
    }
}

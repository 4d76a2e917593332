//! The gateway under load: `cargo bench -p g2w --bench gateway`.
//!
//! Runs the real `g2w serve` binary against an in-process emulator (rate limit off) and
//! measures: idle RSS; durably accepted registrations per second (sync wait 0, many
//! connections); latency percentiles at a paced 1,000 requests/s; and GoTo calls per
//! delivered registration. `BENCH_REQUESTS` (default 20000) sets the throughput run;
//! `BENCH_HOLD_DELIVERY=1` measures intake alone (deliveries stalled at GoTo);
//! `BENCH_DATABASE_URL=postgres://…` runs it on a fresh database on that server instead
//! of the SQLite file.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

const CREATE: &str =
    "POST /G2W/rest/v2/organizers/{organizer_key}/webinars/{webinar_key}/registrants";

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let requests: u64 = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
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
    let g2w = |args: &[&str]| {
        let mut c = support::g2w(emu.base_url(), data.path(), args);
        c.env("G2W_RATE_LIMIT", "0")
            .env("G2W_INTAKE_RATE_PER_IP", "0")
            .env("G2W_DELIVERY_CONCURRENCY", "16");
        c
    };
    support::login(&http, emu.base_url(), data.path()).await;
    let (webinar, question) = support::webinar(&http, emu.base_url(), "Load").await;

    let (mut serve, base) = support::serve(g2w(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--sync-wait",
        "0",
    ]));
    let url = Arc::new(format!("{base}/api/v1/webinars/{webinar}/registrations"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_kib(serve.id());

    // Warm the form cache so the run measures intake, not the first GoTo look-up.
    let body = |i: u64| {
        json!({"firstName": "Load", "lastName": format!("T{i}"), "email": format!("load{i}@example.com"),
        "responses": [{"questionKey": question, "responseText": "benchmark"}]})
    };
    assert_eq!(
        http.post(url.as_str())
            .json(&body(u64::MAX))
            .send()
            .await
            .unwrap()
            .status(),
        202
    );

    if std::env::var_os("BENCH_HOLD_DELIVERY").is_some() {
        // Intake alone: GoTo holds the first deliveries for a minute, so the workers idle.
        http.post(format!("{}/_emulator/faults", emu.base_url()))
            .json(&json!({"method": "POST", "pathPrefix": "/G2W", "delayMs": 60000, "count": 16}))
            .send()
            .await
            .unwrap();
    }
    // 1. Throughput: as fast as 64 connections go.
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (http, url, next, accepted, question) = (http.clone(), url.clone(), next.clone(), accepted.clone(), question.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let b = json!({"firstName": "Load", "lastName": format!("T{i}"), "email": format!("load{i}@example.com"),
                        "responses": [{"questionKey": question, "responseText": "benchmark"}]});
                    let r = http.post(url.as_str()).json(&b).send().await.unwrap();
                    if r.status() == 202 || r.status() == 201 {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = r.bytes().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let accepted = accepted.load(Ordering::Relaxed);
    assert_eq!(accepted, requests);
    let loaded_rss = rss_kib(serve.id());

    // Let delivery catch up before measuring latency.
    let deadline = Instant::now() + Duration::from_secs(300);
    while emu.stats().registrants_created < requests + 1 {
        assert!(Instant::now() < deadline, "delivery did not catch up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered_at = started.elapsed().as_secs_f64();

    // 2. Latency at a paced 1,000 requests/s (open loop: sends do not wait for answers).
    let paced = 5_000_u64;
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(paced as usize)));
    let t0 = tokio::time::Instant::now();
    let mut sends = Vec::new();
    for k in 0..paced {
        tokio::time::sleep_until(t0 + Duration::from_micros(k * 1000)).await;
        let (http, url, latencies) = (http.clone(), url.clone(), latencies.clone());
        let b = body(requests + 1 + k);
        sends.push(tokio::spawn(async move {
            let s = Instant::now();
            let r = http.post(url.as_str()).json(&b).send().await.unwrap();
            let ok = r.status().is_success();
            let _ = r.bytes().await;
            let took = s.elapsed();
            if std::env::var_os("BENCH_DIAG").is_some() && took > Duration::from_millis(50) {
                eprintln!(
                    "slow: sent at {:?} took {took:?}",
                    s.duration_since(t0.into_std())
                );
            }
            latencies.lock().unwrap().push(took);
            assert!(ok);
        }));
    }
    for s in sends {
        s.await.unwrap();
    }
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    let deadline = Instant::now() + Duration::from_secs(120);
    let total = requests + 1 + paced;
    while emu.stats().registrants_created < total {
        assert!(
            Instant::now() < deadline,
            "delivery did not catch up after the paced run"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = emu.stats();
    let calls = stats.route_total(CREATE);
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let _ = serve.wait();

    println!(
        "gateway benchmark (g2w serve on {}, emulator rate limit off, sync wait 0)",
        support::store_name()
    );
    println!(
        "  idle RSS after start:          {:.1} MiB",
        idle_rss as f64 / 1024.0
    );
    println!(
        "  RSS after the throughput run:  {:.1} MiB",
        loaded_rss as f64 / 1024.0
    );
    println!(
        "  durably accepted:              {requests} in {secs:.2} s = {:.0}/s (64 connections)",
        requests as f64 / secs
    );
    println!("  all delivered to GoTo after:   {delivered_at:.2} s");
    println!(
        "  latency at 1,000 req/s ({paced} requests): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lat, 0.5).as_secs_f64() * 1000.0,
        percentile(&lat, 0.99).as_secs_f64() * 1000.0,
        lat.last().unwrap().as_secs_f64() * 1000.0
    );
    println!(
        "  GoTo create calls / registrations delivered: {calls} / {} (token grants: {:?})",
        stats.registrants_created, stats.token_grants
    );
}
